// ControlPolicy under missing or untrustworthy data (issue #10): stale and invalid circuit
// sub-meters put only their circuit in failsafe; EVSEs the loop cannot command are counted at
// their worst case and not allocated.

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "site_controller/control/control_policy.h"

namespace evgate::control {
namespace {

using allocation::AllocationInput;
using allocation::Circuit;
using allocation::Evse;
using allocation::Phase;

// Monotonic timeline of the tests.
const absl::Time kT0 = absl::FromUnixSeconds(1000);
absl::Time At(double s) { return kT0 + absl::Seconds(s); }

// Grid 3 × 50 A, metered. Circuits c1 and c2 (3 × 32 A each, both metered) under the grid; a
// wallbox on each (3-phase, 6–32 A, failsafe 6 A), and a third one, "g", on the grid itself.
AllocationInput TwoCircuits() {
  AllocationInput in;
  in.grid.limit_a = {50.0, 50.0, 50.0};
  in.grid.meter_timeout_s = 3;
  for (const char* id : {"c1", "c2"}) {
    Circuit c;
    c.id = id;
    c.limit_a = {32.0, 32.0, 32.0};
    c.measured_a = allocation::PhaseValues{0, 0, 0};  // metered
    in.circuits.push_back(c);
  }
  for (auto [id, circuit] : {std::pair{"a", "c1"}, std::pair{"b", "c2"}, std::pair{"g", "grid"}}) {
    Evse e;
    e.id = id;
    e.circuit = circuit;
    e.phases = {Phase::kL1, Phase::kL2, Phase::kL3};
    e.failsafe_a = 6;
    in.evses.push_back(e);
  }
  return in;
}

ControlParams Params() {
  ControlParams p;
  p.margin_a = 0;
  p.ramp_up_a_per_s = 100;  // ramps in one step: these tests are about limits
  p.hysteresis_a = 0.5;
  p.meter_timeout_s = 3;
  p.min_pause_s = 0;
  p.setpoint_ttl_s = 3;
  p.device_watchdog_s = 10;
  return p;
}

MeterSample Sample(const std::string& node, double t, double a) {
  MeterSample m;
  m.node = node;
  m.at = At(t);
  m.current_a = {a, a, a};
  return m;
}

class ControlPolicySafetyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ControlPolicy> policy = ControlPolicy::Create(TwoCircuits(), Params());
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_.emplace(*std::move(policy));
  }
  Decision Ok(absl::StatusOr<Decision> d) {
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *std::move(d) : Decision{};
  }
  // One poll cycle at `t` of a simulated site without building load: the meters in `nodes`
  // measure what the EVs draw (their setpoint, or `draw_` for the EVSEs listed there), and every
  // EVSE reports its draw, except those in `down_`, whose driver stream is down: they are
  // reported uncommandable and unmeasured.
  Decision Poll(double t, const std::vector<std::string>& nodes) {
    const std::vector<Setpoint>& sp = policy_->setpoints();
    std::vector<double> draw;
    for (const Setpoint& s : sp) {
      draw.push_back(draw_.count(s.evse) ? draw_.at(s.evse) : s.current_a);
    }
    std::vector<MeterSample> meters;
    for (const std::string& n : nodes) {
      meters.push_back(Sample(n, t,
                              n == "grid" ? draw[0] + draw[1] + draw[2]
                              : n == "c1" ? draw[0]
                                          : draw[1]));
    }
    std::vector<EvseUpdate> evses;
    for (size_t i = 0; i < sp.size(); ++i) {
      EvseUpdate u;
      u.evse = sp[i].evse;
      u.at = At(t);
      u.active = true;
      if (down_.count(u.evse)) {
        u.commandable = false;
      } else {
        u.measured_a = std::vector<double>(3, draw[i]);
      }
      evses.push_back(u);
    }
    return Ok(policy_->OnSamples(meters, evses, At(t)));
  }
  const NodeFailsafe* FailedNode(const Decision& d, const std::string& node) {
    for (const NodeFailsafe& f : d.failsafe_nodes) {
      if (f.node == node) return &f;
    }
    return nullptr;
  }
  double A(const Decision& d, int i) { return d.setpoints.at(i).current_a; }

  std::optional<ControlPolicy> policy_;
  std::map<std::string, double> draw_;
  std::set<std::string> down_;
};

// Σ of the three setpoints on the grid, and each circuit, within its limit; checked on every
// decision of the tests below.
void ExpectWithinLimits(const Decision& d, double reserved_a = 0) {
  const double a = d.setpoints[0].current_a, b = d.setpoints[1].current_a,
               g = d.setpoints[2].current_a;
  EXPECT_LE(a + b + g + reserved_a, 50 + 1e-9);
  EXPECT_LE(a, 32 + 1e-9);
  EXPECT_LE(b, 32 + 1e-9);
}

TEST_F(ControlPolicySafetyTest, StaleCircuitMeterPutsOnlyItsCircuitInFailsafe) {
  const std::vector<std::string> all = {"grid", "c1", "c2"};
  Decision d;
  for (double t = 0; t <= 2; t += 0.5) d = Poll(t, all);
  ASSERT_TRUE(d.failsafe_nodes.empty());
  ASSERT_FALSE(d.failsafe);
  // Fair share of 50 A among three: 16.6 A each, and two of them 0.1 A more (Pareto).
  EXPECT_NEAR(A(d, 0), 16.65, 0.06);
  EXPECT_NEAR(A(d, 1), 16.65, 0.06);
  const double a_before = A(d, 0);
  // c1's meter stops answering after t = 2.
  for (double t = 2.5; t <= 5; t += 0.5) d = Poll(t, {"grid", "c2"});
  EXPECT_TRUE(d.failsafe_nodes.empty()) << "3.0 s old: still within the timeout";
  d = Poll(5.1, {"grid", "c2"});
  EXPECT_FALSE(d.failsafe) << "the grid meter is fresh: not a whole-site failsafe";
  const NodeFailsafe* c1 = FailedNode(d, "c1");
  ASSERT_NE(c1, nullptr);
  EXPECT_EQ(d.failsafe_nodes.size(), 1u);
  EXPECT_NE(c1->reason.find("old"), std::string::npos) << c1->reason;
  EXPECT_EQ(c1->since, At(5.1));
  EXPECT_DOUBLE_EQ(A(d, 0), 6) << "a, under c1, gets its failsafe at once";
  EXPECT_TRUE(d.setpoints[0].failsafe);
  EXPECT_TRUE(d.setpoints[0].changed);
  EXPECT_FALSE(d.setpoints[1].failsafe);
  EXPECT_FALSE(d.setpoints[2].failsafe);
  // a still draws what it had until it follows: the others must leave that room.
  EXPECT_LE(A(d, 1) + A(d, 2), 50 - a_before + 1e-9);
  EXPECT_GE(A(d, 1) + A(d, 2), 50 - a_before - 0.2);
  ExpectWithinLimits(d, a_before - 6);
  // a follows its failsafe: the rest of the site shares what is left of 50 − 6 A.
  for (double t = 5.5; t <= 8; t += 0.5) d = Poll(t, {"grid", "c2"});
  EXPECT_DOUBLE_EQ(A(d, 0), 6);
  EXPECT_NEAR(A(d, 1), 22, 1e-9);
  EXPECT_NEAR(A(d, 2), 22, 1e-9);
  ExpectWithinLimits(d);
  EXPECT_EQ(FailedNode(d, "c1")->since, At(5.1)) << "since stays put while it lasts";
  // A fresh c1 sample recovers; a's increase ramps from its failsafe value.
  d = Poll(8.5, all);
  EXPECT_TRUE(d.failsafe_nodes.empty());
  EXPECT_FALSE(d.setpoints[0].failsafe);
  EXPECT_DOUBLE_EQ(A(d, 0), 6) << "the ramp starts here (no time has passed)";
  for (double t = 9; t < 13.5; t += 0.5) {
    d = Poll(t, all);
    EXPECT_DOUBLE_EQ(A(d, 0), 6) << "b and c were lowered at 8.5 s: their cars may lag 5 s";
  }
  d = Poll(13.5, all);
  d = Poll(14.5, all);
  EXPECT_NEAR(A(d, 0), 16.65, 0.06);
  ExpectWithinLimits(d);
}

TEST_F(ControlPolicySafetyTest, CircuitMeterThatNeverAnsweredIsInFailsafe) {
  Decision d = Poll(0, {"grid", "c2"});
  ASSERT_NE(FailedNode(d, "c1"), nullptr);
  EXPECT_NE(FailedNode(d, "c1")->reason.find("missing"), std::string::npos);
  EXPECT_EQ(FailedNode(d, "c2"), nullptr);
  EXPECT_DOUBLE_EQ(A(d, 0), 6);
}

TEST_F(ControlPolicySafetyTest, StaleGridMeterStaysTheWholeSiteFailsafe) {
  Decision d;
  for (double t = 0; t <= 2; t += 0.5) d = Poll(t, {"grid", "c1", "c2"});
  for (double t = 2.5; t <= 5.5; t += 0.5) d = Poll(t, {"c1", "c2"});
  EXPECT_TRUE(d.failsafe);
  ASSERT_NE(FailedNode(d, "grid"), nullptr);
  EXPECT_EQ(FailedNode(d, "grid")->reason, d.failsafe_reason);
  for (int i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(A(d, i), 6);
    EXPECT_TRUE(d.setpoints[i].failsafe);
  }
}

TEST_F(ControlPolicySafetyTest, InvalidCircuitSampleIsFailsafeAtOnceUntilAValidOne) {
  Decision d;
  for (double t = 0; t <= 2; t += 0.5) d = Poll(t, {"grid", "c1", "c2"});
  ASSERT_TRUE(d.failsafe_nodes.empty());
  MeterSample bad = Sample("c1", 2.6, 0);
  bad.invalid_reason = "L2 carries no value";
  d = Ok(policy_->OnMeterSample(bad));
  const NodeFailsafe* c1 = FailedNode(d, "c1");
  ASSERT_NE(c1, nullptr) << "at once, not after the timeout";
  EXPECT_NE(c1->reason.find("L2 carries no value"), std::string::npos) << c1->reason;
  EXPECT_EQ(c1->since, At(2.6));
  EXPECT_DOUBLE_EQ(A(d, 0), 6);
  EXPECT_FALSE(d.failsafe);
  // Fresh but still invalid: stays.
  d = Poll(3, {"grid", "c2"});
  EXPECT_NE(FailedNode(d, "c1"), nullptr);
  // A valid sample recovers.
  d = Poll(3.5, {"grid", "c1", "c2"});
  EXPECT_EQ(FailedNode(d, "c1"), nullptr);
  EXPECT_FALSE(d.setpoints[0].failsafe);
}

TEST_F(ControlPolicySafetyTest, InvalidGridSampleIsTheWholeSiteFailsafe) {
  Decision d;
  for (double t = 0; t <= 1; t += 0.5) d = Poll(t, {"grid", "c1", "c2"});
  ASSERT_FALSE(d.failsafe);
  MeterSample bad = Sample("grid", 1.2, 0);
  bad.invalid_reason = "L3 carries no value";
  d = Ok(policy_->OnMeterSample(bad));
  EXPECT_TRUE(d.failsafe);
  EXPECT_NE(d.failsafe_reason.find("L3 carries no value"), std::string::npos) << d.failsafe_reason;
  for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(A(d, i), 6);
  d = Poll(1.5, {"grid", "c1", "c2"});
  EXPECT_FALSE(d.failsafe);
  // A non-finite value without a reason is just as invalid (not an error that drops the
  // decision, which would stop every refresh).
  MeterSample nan = Sample("c2", 1.7, 0);
  nan.current_a[1] = std::numeric_limits<double>::quiet_NaN();
  d = Ok(policy_->OnMeterSample(nan));
  ASSERT_NE(FailedNode(d, "c2"), nullptr);
  EXPECT_DOUBLE_EQ(A(d, 1), 6);
}

// --- EVSEs the loop cannot command. ---

EvseUpdate Uncommandable(const std::string& id, double t, std::optional<double> measured,
                         std::optional<std::pair<double, double>> accepted /* A, at */) {
  EvseUpdate u;
  u.evse = id;
  u.at = At(t);
  u.active = true;
  u.commandable = false;
  if (measured) u.measured_a = std::vector<double>(3, *measured);
  if (accepted) {
    AcceptedSetpoint s;
    s.current_a = accepted->first;
    s.paused = accepted->first == 0;
    s.at = At(accepted->second);
    u.last_accepted = s;
  }
  return u;
}

TEST_F(ControlPolicySafetyTest, UncommandableEvseCountsAtItsWorstCaseUntilItsWatchdogPassed) {
  const std::vector<std::string> all = {"grid", "c1", "c2"};
  Decision d;
  for (double t = 0; t <= 2; t += 0.5) d = Poll(t, all);
  const double b = A(d, 1);
  ASSERT_NEAR(b, 16.65, 0.06);
  // b's driver stream drops at t = 2.2; its last accepted setpoint was `b` at t = 2, and it keeps
  // drawing that. Worst case: `b` until 2 + 3 (TTL) + 10 (watchdog) = 15 s. Unmeasured, its draw
  // is also in the meters' base load: counted twice rather than assumed away.
  down_ = {"b"};
  draw_["b"] = b;
  d = Ok(policy_->OnEvseUpdate(Uncommandable("b", 2.2, std::nullopt, std::pair{b, 2.0})));
  EXPECT_FALSE(d.setpoints[1].commandable);
  EXPECT_TRUE(d.setpoints[0].commandable);
  EXPECT_DOUBLE_EQ(A(d, 1), 6) << "its setpoint is its failsafe, retried by the loop";
  EXPECT_FALSE(d.target.evses[1].controlled);
  // a and g share 50 − b (base) − b (reserved).
  EXPECT_LE(A(d, 0) + A(d, 2), 50 - 2 * b + 1e-9);
  EXPECT_GE(A(d, 0) + A(d, 2), 50 - 2 * b - 0.2);
  // The reservation is on every phase of b's wiring on every node of its path.
  for (const allocation::CircuitLoad& c : d.target.circuits) {
    for (int p = 0; p < 3; ++p) {
      if (c.id == "c1") {
        EXPECT_NEAR(*c.load_a[p], A(d, 0), 0.01) << c.id << " " << p;
      } else {
        EXPECT_GE(*c.load_a[p], 2 * b - 0.01) << c.id << " " << p;
      }
    }
  }
  for (double t = 2.5; t < 15; t += 0.5) {
    d = Poll(t, all);
    EXPECT_LE(A(d, 0) + A(d, 2), 50 - 2 * b + 1e-9) << "t = " << t;
    EXPECT_GE(A(d, 0) + A(d, 2), 50 - 2 * b - 0.2) << "t = " << t;
    EXPECT_DOUBLE_EQ(A(d, 1), 6);
  }
  // From 15 s it is provably at its failsafe (the simulated one is): 6 A reserved, 6 A of base.
  draw_["b"] = 6;
  d = Poll(15, all);
  EXPECT_NEAR(d.target.evses[0].current_a, 19, 1e-9);
  d = Poll(15.5, all);
  EXPECT_NEAR(A(d, 0), 19, 1e-9);
  EXPECT_NEAR(A(d, 2), 19, 1e-9);
  EXPECT_DOUBLE_EQ(A(d, 1), 6);
  // Commandable again: allocated again, ramping from its failsafe value.
  down_.clear();
  draw_.clear();
  d = Poll(16, all);
  EXPECT_TRUE(d.setpoints[1].commandable);
  EXPECT_TRUE(d.target.evses[1].controlled);
  EXPECT_DOUBLE_EQ(A(d, 1), 6);
  d = Poll(20.5, all);
  EXPECT_DOUBLE_EQ(A(d, 1), 6) << "a and c were lowered at 16 s: their cars may lag 5 s";
  d = Poll(21, all);
  d = Poll(22, all);
  EXPECT_NEAR(A(d, 1), 16.65, 0.06);
}

TEST_F(ControlPolicySafetyTest, UncommandableEvseWithNothingKnownCountsAtItsMaximum) {
  // g never reported anything nor accepted a setpoint: it may draw its 32 A.
  down_ = {"g"};
  draw_["g"] = 0;
  Decision d = Poll(0, {"grid", "c1", "c2"});
  d = Poll(1, {"grid", "c1", "c2"});
  // a and b share 50 − 32 = 18 A.
  EXPECT_NEAR(A(d, 0), 9, 1e-9);
  EXPECT_NEAR(A(d, 1), 9, 1e-9);
  EXPECT_DOUBLE_EQ(A(d, 2), 6);
  EXPECT_FALSE(d.setpoints[2].commandable);
  // Never accepted a setpoint: no proof that it fell back, however long it lasts.
  d = Poll(2.5, {"grid", "c1", "c2"});
  EXPECT_NEAR(A(d, 0), 9, 1e-9);
  // A measurement above what it accepted counts: worst = max(measured, accepted, failsafe) =
  // 20 A; a and b share 30 A.
  d = Ok(policy_->OnEvseUpdate(Uncommandable("g", 2.6, 20, std::pair{10.0, 2.5})));
  EXPECT_NEAR(d.target.evses[0].current_a, 15, 1e-9);
  d = Ok(policy_->OnTick(At(2.7)));  // the increase ramps from when it became pending
  EXPECT_NEAR(A(d, 0), 15, 1e-9);
  EXPECT_NEAR(A(d, 1), 15, 1e-9);
}

}  // namespace
}  // namespace evgate::control
