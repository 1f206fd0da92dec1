#include "site_controller/control/control_policy.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace evgate::control {
namespace {

using allocation::AllocationInput;
using allocation::Evse;
using allocation::Phase;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);
absl::Time At(double s) { return kT0 + absl::Seconds(s); }

// Grid 3 × 32 A, metered; two 3-phase AC wallboxes 6–32 A (failsafe 6 A); no margin.
AllocationInput TwoWallboxes() {
  AllocationInput in;
  in.grid.limit_a = {32.0, 32.0, 32.0};
  in.grid.meter_timeout_s = 3;
  for (const char* id : {"a", "b"}) {
    Evse e;
    e.id = id;
    e.phases = {Phase::kL1, Phase::kL2, Phase::kL3};
    e.failsafe_a = 6;
    in.evses.push_back(e);
  }
  return in;
}

ControlParams Params() {
  ControlParams p;
  p.margin_a = 0;
  p.ramp_up_a_per_s = 5;
  p.hysteresis_a = 0.5;
  p.meter_timeout_s = 3;
  p.min_pause_s = 0;
  return p;
}

class ControlPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ControlPolicy> policy = ControlPolicy::Create(TwoWallboxes(), Params());
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_.emplace(*std::move(policy));
  }
  Decision Ok(absl::StatusOr<Decision> d) {
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *std::move(d) : Decision{};
  }
  Decision Grid(double t, double a) {
    return Ok(policy_->OnMeterSample({"grid", At(t), {a, a, a}}));
  }
  Decision Plug(const std::string& id, double t) {
    EvseUpdate u;
    u.evse = id;
    u.at = At(t);
    u.active = true;
    return Ok(policy_->OnEvseUpdate(u));
  }
  Decision Tick(double t) { return Ok(policy_->OnTick(At(t))); }
  Decision Measured(const std::string& id, double t, double a) {
    EvseUpdate u;
    u.evse = id;
    u.at = At(t);
    u.active = true;
    u.measured_a = std::vector<double>{a, a, a};
    return Ok(policy_->OnEvseUpdate(u));
  }
  // A grid sample at `t` as a site whose EVs follow their setpoints instantly would show it.
  Decision Follow(double t, double building_a = 0) {
    double a = building_a;
    for (const Setpoint& sp : policy_->setpoints()) a += sp.current_a;
    return Grid(t, a);
  }
  double A(const Decision& d, int i) { return d.setpoints.at(i).current_a; }

  std::optional<ControlPolicy> policy_;
};

TEST_F(ControlPolicyTest, IncreasesRampAtTheConfiguredRate) {
  Grid(0, 0);
  Decision d = Plug("a", 0);
  EXPECT_FALSE(d.failsafe);
  EXPECT_DOUBLE_EQ(d.target.evses[0].current_a, 32);
  EXPECT_DOUBLE_EQ(A(d, 0), 6) << "resumes at its minimum, not at the target";
  EXPECT_TRUE(d.setpoints[0].changed);
  d = Follow(1);
  EXPECT_NEAR(A(d, 0), 11, 1e-9);
  d = Follow(2);
  EXPECT_NEAR(A(d, 0), 16, 1e-9);
  for (double t = 3; t <= 6; ++t) d = Follow(t);
  EXPECT_NEAR(A(d, 0), 32, 1e-9) << "reaches the target and stays there";
  d = Follow(7);
  EXPECT_NEAR(A(d, 0), 32, 1e-9);
  EXPECT_FALSE(d.any_changed);
}

TEST_F(ControlPolicyTest, IncreasesBelowTheHysteresisAreNotSent) {
  Grid(0, 0);
  Plug("a", 0);
  Decision d = Tick(0.05);  // 0.25 A of ramp: below 0.5 A
  EXPECT_DOUBLE_EQ(A(d, 0), 6);
  EXPECT_FALSE(d.setpoints[0].changed);
  EXPECT_FALSE(d.any_changed);
  d = Tick(0.1);  // 0.5 A accumulated since the increase became pending
  EXPECT_NEAR(A(d, 0), 6.5, 1e-9);
  EXPECT_TRUE(d.setpoints[0].changed);
}

TEST_F(ControlPolicyTest, SmallTargetChangesBelowTheHysteresisAreIgnored) {
  Grid(0, 0);
  Plug("a", 0);
  for (double t = 1; t <= 6; ++t) Follow(t);
  // Building load 20 A: target 12 A, applied at once; then the load drops by 0.3 A.
  Decision d = Measured("a", 7, 32);
  d = Grid(7, 52);
  EXPECT_NEAR(A(d, 0), 12, 1e-9);
  // The EV follows; meter and EVSE readings agree again (20 A building + 12 A).
  d = Grid(8, 32);
  d = Measured("a", 8, 12);
  d = Grid(9, 31.7);
  d = Tick(10);  // 5 A of ramp allowance: only the hysteresis holds the 0.3 A back
  EXPECT_NEAR(d.target.evses[0].current_a, 12.3, 1e-9);
  EXPECT_NEAR(A(d, 0), 12, 1e-9);
  EXPECT_FALSE(d.any_changed);
}

TEST_F(ControlPolicyTest, DecreasesAreImmediate) {
  Grid(0, 0);
  Plug("a", 0);
  for (double t = 1; t <= 6; ++t) Follow(t);
  ASSERT_NEAR(policy_->setpoints()[0].current_a, 32, 1e-9);
  Measured("a", 6.5, 32);
  // 25 A of building load appears: 7 A left, sent at once.
  Decision d = Grid(6.6, 57);
  EXPECT_NEAR(A(d, 0), 7, 1e-9);
  EXPECT_TRUE(d.setpoints[0].changed);
  // A second EV arrives: both get their minimum (fair share would be 3.5 A each < 6 A), so one
  // is paused and the other keeps running; nothing is above the room.
  d = Plug("b", 7);
  EXPECT_LE(A(d, 0) + A(d, 1), 7 + 1e-9);
}

// a charges alone at 32 A, measured; then b plugs in and the fair split is 16 A each.
class VehicleLagTest : public ControlPolicyTest {
 protected:
  Decision LowerAForB() {
    Grid(0, 0);
    Plug("a", 0);
    for (double t = 1; t <= 6; ++t) Follow(t);
    Sample(6.5, 32);
    return Plug("b", 7);
  }
  // One poll: a measured at `a_draws`, the grid meter seeing it (b draws nothing yet).
  Decision Sample(double t, double a_draws) {
    EvseUpdate u;
    u.evse = "a";
    u.at = At(t);
    u.active = true;
    u.measured_a = std::vector<double>{a_draws, a_draws, a_draws};
    return Ok(policy_->OnSamples({{"grid", At(t), {a_draws, a_draws, a_draws}}}, {u}, At(t)));
  }
};

TEST_F(VehicleLagTest, CurrentFreedByADecreaseWaitsForTheVehicleResponseTime) {
  ASSERT_DOUBLE_EQ(policy_->params().ev_response_s, 5);
  Decision d = LowerAForB();
  EXPECT_NEAR(d.target.evses[1].current_a, 16, 1e-9);
  EXPECT_NEAR(A(d, 0), 16, 1e-9) << "the decrease is sent at once";
  // a's car may draw 32 A for seconds yet: b's 6 A on top would be 38 A on a 32 A fuse.
  EXPECT_EQ(A(d, 1), 0) << "b waits";
  d = Sample(7.5, 31.8);
  EXPECT_EQ(A(d, 1), 0);
  // Measured at its new setpoint, a's car may still be on its way to an older offer.
  d = Sample(9, 16);
  EXPECT_EQ(A(d, 1), 0);
  d = Sample(11.9, 16);
  EXPECT_EQ(A(d, 1), 0) << "4.9 s after the decrease";
  d = Sample(12, 16);
  EXPECT_NEAR(A(d, 1), 6, 1e-9) << "IEC 61851-1's 5 s have passed: b resumes at its minimum";
  EXPECT_NEAR(A(d, 0), 16, 1e-9);
}

TEST_F(VehicleLagTest, AnEvseWithoutItsOwnMeasurementHoldsToo) {
  Grid(0, 0);
  Plug("a", 0);
  for (double t = 1; t <= 6; ++t) Follow(t);
  Decision d = Plug("b", 7);
  EXPECT_NEAR(A(d, 0), 16, 1e-9);
  EXPECT_EQ(A(d, 1), 0);
}

TEST_F(ControlPolicyTest, StaleGridMeterGivesFailsafeAndAFreshSampleRecovers) {
  Decision d = Plug("a", 0);
  EXPECT_TRUE(d.failsafe) << "no reading yet";
  EXPECT_DOUBLE_EQ(A(d, 0), 6);
  d = Grid(0.5, 0);
  EXPECT_FALSE(d.failsafe);
  for (double t = 1; t <= 3.5; t += 0.5) d = Tick(t);
  EXPECT_FALSE(d.failsafe) << "3.0 s old: still within the timeout";
  EXPECT_GT(A(d, 0), 6);
  d = Tick(3.6);
  EXPECT_TRUE(d.failsafe);
  EXPECT_FALSE(d.failsafe_reason.empty());
  EXPECT_DOUBLE_EQ(A(d, 0), 6) << "failsafe value applied at once";
  EXPECT_DOUBLE_EQ(A(d, 1), 0) << "inactive EVSE stays off";
  EXPECT_TRUE(d.setpoints[0].changed);
  d = Grid(4, 6);
  EXPECT_FALSE(d.failsafe);
  EXPECT_LE(A(d, 0), 6.0 + 1e-9) << "recovery ramps from the failsafe value";
  d = Tick(5);
  EXPECT_NEAR(A(d, 0), 11, 1e-9);
}

TEST_F(ControlPolicyTest, DynamicLimitAppliesAtOnceAndExpires) {
  Grid(0, 0);
  Plug("a", 0);
  for (double t = 1; t <= 6; ++t) Follow(t);
  DynamicLimit limit;
  limit.source = "utility";
  limit.limit_a = {16.0, 16.0, 16.0};
  limit.expires_at = At(20);
  Follow(10);
  Decision d = Ok(policy_->OnDynamicLimit(limit, At(10)));
  EXPECT_NEAR(A(d, 0), 16, 1e-9);
  d = Follow(19);
  EXPECT_NEAR(A(d, 0), 16, 1e-9);
  d = Follow(20);
  EXPECT_NEAR(d.target.evses[0].current_a, 32, 1e-9) << "limit gone at its expiry";
  EXPECT_LT(A(d, 0), 32) << "and the increase ramps";
  // A power limit on the grid: 11,040 W / (3 × 230 V) = 16 A per phase.
  DynamicLimit power;
  power.source = "ems";
  power.power_w = 11040;
  power.expires_at = At(40);
  for (double t = 21; t <= 30; ++t) d = Follow(t);
  EXPECT_NEAR(A(d, 0), 32, 1e-9);
  d = Ok(policy_->OnDynamicLimit(power, At(30)));
  EXPECT_NEAR(A(d, 0), 16, 1e-9);
  DynamicLimit unknown;
  unknown.node = "nowhere";
  EXPECT_FALSE(policy_->OnDynamicLimit(unknown, At(30)).ok());
  DynamicLimit negative_export;
  negative_export.source = "ems";
  negative_export.export_limit_w = -1;
  EXPECT_FALSE(policy_->OnDynamicLimit(negative_export, At(30)).ok());
}

TEST_F(ControlPolicyTest, PriorityOverrideWinsUntilItExpires) {
  DynamicLimit limit;  // room for one minimum only
  limit.source = "test";
  limit.limit_a = {10.0, 10.0, 10.0};
  Ok(policy_->OnDynamicLimit(limit, At(0)));
  Grid(0, 0);
  Plug("a", 0);
  Decision d = Plug("b", 1);
  EXPECT_GT(A(d, 0), 0) << "a plugged in first";
  EXPECT_EQ(A(d, 1), 0);
  d = Ok(policy_->OnPriorityOverride("b", 5, At(10), At(2)));
  EXPECT_EQ(A(d, 0), 0) << "a paused at once";
  EXPECT_EQ(A(d, 1), 0) << "a's car may draw its minimum for 5 s yet";
  for (double t = 3; t <= 7; ++t) d = Follow(t);
  EXPECT_GT(A(d, 1), 0);
  d = Follow(9);
  EXPECT_GT(A(d, 1), 0);
  d = Follow(10);
  EXPECT_EQ(A(d, 1), 0) << "override expired: b paused at once";
  EXPECT_EQ(A(d, 0), 0) << "a waits for b's car";
  for (double t = 11; t <= 15; ++t) d = Follow(t);
  EXPECT_GT(A(d, 0), 0) << "a ranks first again (min_pause_s 0)";
  EXPECT_EQ(A(d, 1), 0);
  EXPECT_FALSE(policy_->OnPriorityOverride("zz", 1, At(20), At(11)).ok());
}

TEST_F(ControlPolicyTest, PausedEvsesRespectTheMinimumPause) {
  ControlParams p = Params();
  p.min_pause_s = 60;
  absl::StatusOr<ControlPolicy> policy = ControlPolicy::Create(TwoWallboxes(), p);
  ASSERT_TRUE(policy.ok());
  policy_.emplace(*std::move(policy));
  DynamicLimit limit;
  limit.source = "test";
  limit.limit_a = {10.0, 10.0, 10.0};
  Ok(policy_->OnDynamicLimit(limit, At(0)));
  Grid(0, 0);
  Plug("a", 0);
  Plug("b", 1);
  // b outranks a for 5 s: a is paused by the load balancer at t = 2.
  Decision d = Ok(policy_->OnPriorityOverride("b", 5, At(7), At(2)));
  ASSERT_EQ(A(d, 0), 0);
  // After the override, b has run less than min_run (= min_pause) and a was paused less than
  // min_pause: no rotation back yet.
  d = Follow(30);
  EXPECT_EQ(A(d, 0), 0);
  EXPECT_GT(A(d, 1), 0);
}

TEST_F(ControlPolicyTest, FirstDecisionSendsEverythingThenOnlyChanges) {
  Decision d = Grid(0, 0);
  EXPECT_TRUE(d.any_changed);
  EXPECT_TRUE(d.setpoints[0].changed && d.setpoints[1].changed);
  d = Tick(1);
  EXPECT_FALSE(d.any_changed);
  EvseUpdate unknown;
  unknown.evse = "nope";
  unknown.at = At(1);
  EXPECT_FALSE(policy_->OnEvseUpdate(unknown).ok());
}

}  // namespace
}  // namespace evgate::control

namespace evgate::control {
namespace {

// Grid 3 × 63 A; an AC wallbox and a bidirectional 22 kW DC EVSE (the ICE-22).
AllocationInput WallboxAndV2x() {
  AllocationInput in = TwoWallboxes();
  in.grid.limit_a = {63.0, 63.0, 63.0};
  in.evses.pop_back();
  Evse v2x;
  v2x.id = "v2x";
  v2x.type = allocation::EvseType::kDc;
  v2x.phases = {Phase::kL1, Phase::kL2, Phase::kL3};
  v2x.min_w = 2000;
  v2x.max_w = 22000;
  v2x.efficiency = 0.95;
  v2x.max_discharge_w = 22000;
  v2x.soc_pct = 80;
  v2x.soc_min_pct = 30;
  in.evses.push_back(v2x);
  return in;
}

// Bad inputs tried: an unknown forming EVSE, an AC one, a negative limit.
TEST(GridModeTest, OffGridEveryEvseIsPausedAtOnceAndTheFormerDischargesThenChargingRampsBack) {
  absl::StatusOr<ControlPolicy> created = ControlPolicy::Create(WallboxAndV2x(), Params());
  ASSERT_TRUE(created.ok()) << created.status();
  ControlPolicy policy = *std::move(created);
  auto ok = [](absl::StatusOr<Decision> d) {
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *std::move(d) : Decision{};
  };
  for (const char* id : {"a", "v2x"}) {
    EvseUpdate u;
    u.evse = id;
    u.at = At(0);
    u.active = true;
    ok(policy.OnEvseUpdate(u));
  }
  Decision d;
  for (int t = 0; t <= 10; ++t) d = ok(policy.OnMeterSample({"grid", At(t), {0, 0, 0}}));
  ASSERT_GT(d.setpoints[0].current_a, 20);  // charging at the ramp's end
  ASSERT_GT(d.setpoints[1].power_w, 10000);

  GridModeDirective off;
  off.grid_supply = false;
  off.forming_evse = "v2x";
  off.forming_discharge_limit_w = 19800;
  off.reason = "OFF_GRID";
  d = ok(policy.OnGridMode(off, At(11)));
  EXPECT_FALSE(d.grid_supply);
  EXPECT_EQ(d.grid_mode_reason, "OFF_GRID");
  EXPECT_TRUE(d.setpoints[0].paused);
  EXPECT_TRUE(d.setpoints[0].grid_mode);
  EXPECT_TRUE(d.setpoints[0].changed);
  EXPECT_EQ(d.setpoints[1].power_w, -19800);
  EXPECT_FALSE(d.setpoints[1].paused);
  // Stays so at every input while off grid.
  d = ok(policy.OnMeterSample({"grid", At(12), {0, 0, 0}}));
  EXPECT_TRUE(d.setpoints[0].paused);
  EXPECT_EQ(d.setpoints[1].power_w, -19800);
  // The island's former told to stop: 0 W.
  off.forming_discharge_limit_w = 0;
  d = ok(policy.OnGridMode(off, At(13)));
  EXPECT_TRUE(d.setpoints[1].paused);

  // Back on the grid: no step to full current, the ramp from the pause.
  d = ok(policy.OnGridMode(GridModeDirective{}, At(20)));
  EXPECT_TRUE(d.grid_supply);
  EXPECT_FALSE(d.setpoints[0].grid_mode);
  EXPECT_LE(d.setpoints[0].current_a, 6.0 + 1e-9);  // resumes at its minimum
  d = ok(policy.OnMeterSample({"grid", At(21), {0, 0, 0}}));
  EXPECT_LE(d.setpoints[0].current_a, 6.0 + 5.0 + 1e-9);  // + 5 A/s

  off.forming_evse = "nope";
  EXPECT_EQ(policy.OnGridMode(off, At(30)).status().code(), absl::StatusCode::kNotFound);
  off.forming_evse = "a";
  EXPECT_EQ(policy.OnGridMode(off, At(30)).status().code(), absl::StatusCode::kInvalidArgument);
  off.forming_evse = "v2x";
  off.forming_discharge_limit_w = -5;
  EXPECT_EQ(policy.OnGridMode(off, At(30)).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace evgate::control
