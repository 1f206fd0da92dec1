#include "runtime/service_catalog.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<std::unique_ptr<Service>> NoService(const site::SiteConfig&, ProcessParts&) {
  return absl::InternalError("not built in this test");
}

// A catalog as a binary would have it: three services in start order, one
// announced but not in this build.
const ServiceCatalog& TestCatalog() {
  static const auto* catalog = new ServiceCatalog{
      {"device_drivers", "bus owners", NoService, ""},
      {"grid_controller", "grid modes", nullptr,
       "the grid controller is not part of this build yet"},
      {"load_balancer", "control loop", NoService, ""},
      {"session", "sessions", NoService, ""},
  };
  return *catalog;
}

std::vector<std::string> Names(const std::vector<const ServiceEntry*>& entries) {
  std::vector<std::string> names;
  for (const ServiceEntry* e : entries) names.push_back(e->name);
  return names;
}

TEST(ServiceCatalogTest, EmptySelectionMeansEveryServiceInThisBuild) {
  auto selected = SelectServices(TestCatalog(), "");
  ASSERT_TRUE(selected.ok()) << selected.status();
  EXPECT_THAT(Names(*selected), ElementsAre("device_drivers", "load_balancer", "session"));
}

TEST(ServiceCatalogTest, UnknownServiceNamesWhatIsAvailable) {
  auto selected = SelectServices(TestCatalog(), "load_balancer,billing");
  ASSERT_FALSE(selected.ok());
  EXPECT_EQ(selected.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(selected.status().message(), HasSubstr("unknown service 'billing'"));
  EXPECT_THAT(selected.status().message(),
              HasSubstr("available: device_drivers, load_balancer, session"));
}

TEST(ServiceCatalogTest, ServiceNotInThisBuildSaysSoPlainly) {
  auto selected = SelectServices(TestCatalog(), "session,grid_controller");
  ASSERT_FALSE(selected.ok());
  EXPECT_EQ(selected.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(
      selected.status().message(),
      HasSubstr("service 'grid_controller': the grid controller is not part of this build"));
}

TEST(ServiceCatalogTest, AServiceListedTwiceIsAnError) {
  // Two session services in one process would share one database.
  auto selected = SelectServices(TestCatalog(), "session,load_balancer,session");
  ASSERT_FALSE(selected.ok());
  EXPECT_EQ(selected.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(selected.status().message(), HasSubstr("service 'session' is listed twice"));
}

TEST(ServiceCatalogTest, SelectionFollowsCatalogStartOrder) {
  // Whatever order the user lists them in, drivers start before consumers.
  auto selected = SelectServices(TestCatalog(), "session, device_drivers,load_balancer");
  ASSERT_TRUE(selected.ok()) << selected.status();
  EXPECT_THAT(Names(*selected), ElementsAre("device_drivers", "load_balancer", "session"));
}

TEST(ServiceCatalogTest, AServiceBinaryKnowsOnlyItsOwnService) {
  // The session binary's catalog: asking it for another service is an error
  // that names the one it has.
  const ServiceCatalog one = {{"session", "sessions", NoService, ""}};
  auto selected = SelectServices(one, "load_balancer");
  ASSERT_FALSE(selected.ok());
  EXPECT_THAT(selected.status().message(), HasSubstr("available: session"));
  EXPECT_EQ(FindService(one, "load_balancer"), nullptr);
  ASSERT_NE(FindService(one, "session"), nullptr);
}

}  // namespace
}  // namespace evgate
