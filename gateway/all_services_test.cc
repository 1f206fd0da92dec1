#include "gateway/all_services.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::gateway {
namespace {

TEST(AllServicesTest, EveryServiceOnceInStartOrder) {
  std::vector<std::string> names;
  for (const ServiceEntry& entry : AllServices()) {
    EXPECT_TRUE(entry.create) << entry.name << " has no factory";
    EXPECT_FALSE(entry.description.empty()) << entry.name;
    names.push_back(entry.name);
  }
  // The simulator first (the demo's devices exist before anything reads
  // them), the bridge before the drivers (its chargers become their devices),
  // the drivers before their consumers.
  EXPECT_THAT(names,
              ::testing::ElementsAre("simulator", "ocpp_bridge", "device_drivers", "load_balancer",
                                     "session", "grid_controller", "metrics_exporter"));
}

TEST(AllServicesTest, EvgateRunSelectsByName) {
  auto selected = SelectServices(AllServices(), "session,device_drivers");
  ASSERT_TRUE(selected.ok()) << selected.status();
  ASSERT_EQ(selected->size(), 2u);
  EXPECT_EQ((*selected)[0]->name, "device_drivers");
  EXPECT_EQ((*selected)[1]->name, "session");
}

}  // namespace
}  // namespace evgate::gateway
