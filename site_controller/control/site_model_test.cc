#include "site_controller/control/site_model.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::control {
namespace {

using allocation::EvseType;
using allocation::Phase;
using ::testing::ElementsAre;

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "evgate", "/", path);
}

const allocation::Evse& FindEvse(const allocation::AllocationInput& in, const std::string& id) {
  for (const allocation::Evse& e : in.evses) {
    if (e.id == id) return e;
  }
  ADD_FAILURE() << "no EVSE " << id;
  static const allocation::Evse kMissing;
  return kMissing;
}

class DemoSite : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<site::SiteConfig> config =
        site::LoadSiteConfigFile(Runfile("gateway/sites/demo.yaml"));
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    absl::StatusOr<allocation::AllocationInput> in = AllocationInputFromConfig(config_);
    ASSERT_TRUE(in.ok()) << in.status();
    in_ = *in;
  }
  site::SiteConfig config_;
  allocation::AllocationInput in_;
};

TEST_F(DemoSite, GridIsMeteredWithItsLimitsAndStartsInFailsafe) {
  EXPECT_EQ(in_.grid.limit_a[0], 63);
  EXPECT_EQ(in_.grid.limit_a[2], 63);
  EXPECT_EQ(in_.grid.contract_power_w, 43000);
  EXPECT_EQ(in_.grid.export_limit_w, 0);
  EXPECT_EQ(in_.grid.meter_timeout_s, 3.0);
  EXPECT_FALSE(in_.grid.measured_a.has_value());
  EXPECT_EQ(in_.margin_a, 1.0);
  EXPECT_EQ(in_.min_pause_s, 120);
  absl::StatusOr<allocation::Allocation> out = allocation::Allocate(in_);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->failsafe) << "no grid reading yet must mean failsafe";
}

TEST_F(DemoSite, CircuitTreeKeepsPhasesPerCircuit) {
  ASSERT_EQ(in_.circuits.size(), 3u);
  EXPECT_EQ(in_.circuits[1].id, "garage-1ph");
  EXPECT_EQ(in_.circuits[1].parent, "garage");
  EXPECT_EQ(in_.circuits[1].limit_a[0], 16);
  EXPECT_EQ(in_.circuits[1].limit_a[1], 16);
  EXPECT_FALSE(in_.circuits[1].limit_a[2].has_value());
}

TEST_F(DemoSite, MeteredCircuitsAreMarkedMetered) {
  EXPECT_FALSE(in_.circuits[0].measured_a.has_value()) << "the demo's circuits have no meter";
  site::SiteConfig config = config_;
  config.circuits[0].meter = "garage-meter";
  absl::StatusOr<allocation::AllocationInput> in = AllocationInputFromConfig(config);
  ASSERT_TRUE(in.ok()) << in.status();
  ASSERT_TRUE(in->circuits[0].measured_a.has_value());
  EXPECT_EQ(*in->circuits[0].measured_a, (allocation::PhaseValues{0, 0, 0}));
  EXPECT_FALSE(in->circuits[1].measured_a.has_value());
}

TEST_F(DemoSite, EvsesKeepWiringLimitsPriorityAndFailsafe) {
  const allocation::Evse& wb2 = FindEvse(in_, "wb2");
  EXPECT_EQ(wb2.type, EvseType::kAc);
  EXPECT_THAT(wb2.phases, ElementsAre(Phase::kL2, Phase::kL3, Phase::kL1));
  EXPECT_EQ(wb2.max_a, 32);
  EXPECT_EQ(wb2.failsafe_a, 6);
  const allocation::Evse& wb4 = FindEvse(in_, "wb4");
  EXPECT_THAT(wb4.phases, ElementsAre(Phase::kL2));
  EXPECT_EQ(wb4.circuit, "garage-1ph");
  EXPECT_EQ(wb4.priority, -1);
  EXPECT_EQ(wb4.failsafe_a, 0);
  const allocation::Evse& dc1 = FindEvse(in_, "dc1");
  EXPECT_EQ(dc1.type, EvseType::kDc);
  EXPECT_EQ(dc1.station, "dc");
  EXPECT_EQ(dc1.connector, 1);
  EXPECT_EQ(dc1.phases.size(), 3u);
  EXPECT_EQ(dc1.max_w, 60000);
  const allocation::Evse& v2x = FindEvse(in_, "v2x1");
  EXPECT_TRUE(v2x.bidirectional);
  EXPECT_EQ(v2x.max_discharge_w, 22000);
  EXPECT_EQ(v2x.soc_min_pct, 30);
  for (const allocation::Evse& e : in_.evses) EXPECT_FALSE(e.active) << e.id;
}

TEST_F(DemoSite, ControllerTuningIsCarriedOver) {
  const ControlParams p = ControlParamsFromConfig(config_.controller);
  EXPECT_EQ(p.ramp_up_a_per_s, 5);
  EXPECT_EQ(p.hysteresis_a, 0.5);
  EXPECT_EQ(p.meter_timeout_s, 3.0);
  EXPECT_EQ(p.min_pause_s, 120);
}

TEST(SiteModel, MismatchedLimitsAreAnErrorWithThePath) {
  site::SiteConfig config;
  config.grid.phases = {site::Phase::kL1, site::Phase::kL2};
  config.grid.fuse_limit_a = {63};
  absl::StatusOr<allocation::AllocationInput> in = AllocationInputFromConfig(config);
  ASSERT_FALSE(in.ok());
  EXPECT_THAT(in.status().message(), ::testing::HasSubstr("grid.fuse_limit_a"));
}

TEST(SetpointTtlTest, ThreeTicksButNeverUnderThreeSeconds) {
  site::ControllerConfig controller;
  controller.tick_ms = 1000;
  EXPECT_EQ(SetpointTtl(controller), absl::Seconds(3));
  controller.tick_ms = 200;  // a fast loop must not make the devices jumpy
  EXPECT_EQ(SetpointTtl(controller), absl::Seconds(3));
  controller.tick_ms = 5000;
  EXPECT_EQ(SetpointTtl(controller), absl::Seconds(15));
}

}  // namespace
}  // namespace evgate::control
