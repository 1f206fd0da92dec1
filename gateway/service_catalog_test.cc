#include "gateway/service_catalog.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::gateway {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> Names(const std::vector<const ServiceEntry*>& entries) {
  std::vector<std::string> names;
  for (const ServiceEntry* e : entries) names.push_back(e->name);
  return names;
}

TEST(ServiceCatalogTest, EmptySelectionMeansEveryServiceInThisBuild) {
  auto selected = SelectServices("");
  ASSERT_TRUE(selected.ok()) << selected.status();
  for (const ServiceEntry* entry : *selected) EXPECT_TRUE(entry->create) << entry->name;
  EXPECT_THAT(Names(*selected), ::testing::Contains("load_balancer"));
}

TEST(ServiceCatalogTest, UnknownServiceNamesWhatIsAvailable) {
  auto selected = SelectServices("load_balancer,billing");
  ASSERT_FALSE(selected.ok());
  EXPECT_EQ(selected.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(selected.status().message(), HasSubstr("unknown service 'billing'"));
  EXPECT_THAT(selected.status().message(), HasSubstr("available: simulator, ocpp_bridge, device_drivers, "));
  EXPECT_THAT(selected.status().message(), HasSubstr("load_balancer"));
}

TEST(ServiceCatalogTest, ServiceNotInThisBuildSaysSoPlainly) {
  for (const ServiceEntry& entry : ServiceCatalog()) {
    if (entry.create) continue;
    auto selected = SelectServices(entry.name);
    ASSERT_FALSE(selected.ok()) << entry.name;
    EXPECT_EQ(selected.status().code(), absl::StatusCode::kUnimplemented);
    EXPECT_THAT(selected.status().message(), HasSubstr("not part of this build yet"));
  }
}

TEST(ServiceCatalogTest, SelectionFollowsCatalogStartOrder) {
  // Whatever order the user lists them in, drivers start before consumers.
  std::vector<std::string> available;
  for (const ServiceEntry& entry : ServiceCatalog()) {
    if (entry.create) available.push_back(entry.name);
  }
  std::string reversed;
  for (auto it = available.rbegin(); it != available.rend(); ++it) {
    reversed += (reversed.empty() ? "" : ",") + *it;
  }
  auto selected = SelectServices(reversed);
  ASSERT_TRUE(selected.ok());
  EXPECT_EQ(Names(*selected), available);
}

}  // namespace
}  // namespace evgate::gateway
