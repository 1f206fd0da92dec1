// Setpoint values: which way a change goes decides the dispatch order, and a
// failed call that may have been applied decides what an EVSE is counted at.
#include "services/load_balancer/setpoint_values.h"

#include "gtest/gtest.h"

namespace evgate::load_balancer {
namespace {

v1::SetpointValue Amps(double l1, double l2, double l3) {
  v1::SetpointValue v;
  v.mutable_current_limit_a()->set_l1(l1);
  v.mutable_current_limit_a()->set_l2(l2);
  v.mutable_current_limit_a()->set_l3(l3);
  return v;
}

v1::SetpointValue Pause() {
  v1::SetpointValue v;
  v.mutable_pause();
  return v;
}

TEST(SetpointValues, DrawOrdersPausesBelowCurrentsAndDischargeBelowPauses) {
  v1::SetpointValue discharge;
  discharge.set_power_limit_w(-5000);
  EXPECT_EQ(Draw(Pause()), 0);
  EXPECT_EQ(Draw(Amps(6, 10, 8)), 10) << "the highest phase";
  EXPECT_LT(Draw(discharge), Draw(Pause()));
}

TEST(SetpointValues, SameValueComparesKindAndEveryPhase) {
  EXPECT_TRUE(SameValue(Amps(6, 6, 6), Amps(6, 6, 6)));
  EXPECT_FALSE(SameValue(Amps(6, 6, 6), Amps(6, 6, 7)));
  v1::SetpointValue two = Amps(6, 6, 6);
  two.mutable_current_limit_a()->clear_l3();
  EXPECT_FALSE(SameValue(Amps(6, 6, 6), two)) << "a missing phase is not 6 A";
  EXPECT_FALSE(SameValue(Pause(), Amps(0, 0, 0)));
  EXPECT_TRUE(SameValue(Pause(), Pause()));
}

TEST(SetpointValues, AcceptedCarriesTheValueAndItsTime) {
  const absl::Time at = absl::FromUnixSeconds(100);
  control::AcceptedSetpoint a = Accepted(Amps(6, 16, 10), at);
  EXPECT_FALSE(a.paused);
  EXPECT_EQ(a.current_a, 16);
  EXPECT_EQ(a.at, at);
  EXPECT_TRUE(Accepted(Pause(), at).paused);
}

TEST(SetpointValues, OnlyRefusalsBeforeAnythingRanAreNotMaybeApplied) {
  EXPECT_TRUE(MayHaveBeenApplied(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(MayHaveBeenApplied(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(MayHaveBeenApplied(absl::StatusCode::kUnknown));
  EXPECT_FALSE(MayHaveBeenApplied(absl::StatusCode::kAborted));
  EXPECT_FALSE(MayHaveBeenApplied(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(MayHaveBeenApplied(absl::StatusCode::kPermissionDenied));
}

}  // namespace
}  // namespace evgate::load_balancer
