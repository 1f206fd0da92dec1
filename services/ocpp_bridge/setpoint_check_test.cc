#include "services/ocpp_bridge/setpoint_check.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::ocpp {
namespace {

using ::testing::HasSubstr;

const absl::Time t0 = absl::FromUnixSeconds(1796000000);

TEST(SetpointCheckTest, NothingIsKnownBeforeALimit) {
  SetpointCheck check;
  EXPECT_FALSE(check.Meter(60000, t0));
  EXPECT_FALSE(check.Meter(60000, t0 + absl::Minutes(5)));
  EXPECT_FALSE(check.problem().has_value());
}

TEST(SetpointCheckTest, AChargerThatDrawsAboveItsLimitPastTheGraceDisobeys) {
  SetpointCheck check;
  check.LimitInForce(60000, t0);
  EXPECT_FALSE(check.Meter(55000, t0));
  check.LimitInForce(20000, t0 + absl::Seconds(1));  // lowered: 20 s to get there
  EXPECT_FALSE(check.Meter(50000, t0 + absl::Seconds(10)));
  // Still within 20 s of the 60 kW limit: judged against it.
  EXPECT_FALSE(check.Meter(40000, t0 + absl::Seconds(20)));
  EXPECT_FALSE(check.Meter(40000, t0 + absl::Seconds(21)));  // over once: maybe a spike
  EXPECT_TRUE(check.Meter(40000, t0 + absl::Seconds(31)));
  ASSERT_TRUE(check.problem().has_value());
  EXPECT_THAT(*check.problem(), HasSubstr("draws 40000 W, above its 20000 W limit"));
  // It follows again: cleared by the first sample within the limit.
  EXPECT_TRUE(check.Meter(20500, t0 + absl::Seconds(40)));  // within 1 kW
  EXPECT_FALSE(check.problem().has_value());
}

TEST(SetpointCheckTest, ARaisedLimitNeedsNoGraceAndTheToleranceScales) {
  SetpointCheck check;
  check.LimitInForce(10000, t0);
  // 1 kW or 5 %, whichever is larger: 10 kW + 1 kW, 60 kW + 3 kW.
  EXPECT_FALSE(check.Meter(11000, t0 + absl::Minutes(1)));
  EXPECT_FALSE(check.Meter(11001, t0 + absl::Minutes(2)));  // over from here
  EXPECT_TRUE(check.Meter(11001, t0 + absl::Minutes(2) + absl::Seconds(20)));
  check.LimitInForce(60000, t0 + absl::Minutes(3));        // a raise
  EXPECT_TRUE(check.Meter(62900, t0 + absl::Minutes(3)));  // within 3 kW: cleared
  EXPECT_FALSE(check.Meter(63001, t0 + absl::Minutes(4)));
  // The raise did not restart the grace: 20 s over is enough.
  EXPECT_TRUE(check.Meter(63001, t0 + absl::Minutes(4) + absl::Seconds(20)));
}

TEST(SetpointCheckTest, ADischargeLimitIsACapAndOnlyGridImportDisobeysIt) {
  SetpointCheck check;
  check.LimitInForce(-10000, t0);
  // Discharging less than the cap (an island's small loads) or not at all (SOC limit): fine.
  EXPECT_FALSE(check.Meter(-3000, t0 + absl::Minutes(1)));
  EXPECT_FALSE(check.Meter(0, t0 + absl::Minutes(2)));
  EXPECT_FALSE(check.Meter(900, t0 + absl::Minutes(3)));  // within the 1 kW tolerance of 0
  EXPECT_FALSE(check.problem().has_value());
  // Charging while told to discharge: disobeys.
  EXPECT_FALSE(check.Meter(5000, t0 + absl::Minutes(4)));
  EXPECT_TRUE(check.Meter(5000, t0 + absl::Minutes(4) + absl::Seconds(10)));
  EXPECT_THAT(*check.problem(), HasSubstr("draws 5000 W, above its 0 W limit"));
}

TEST(SetpointCheckTest, AnOverdrawThatEndsWithinTheGraceIsNoProblem) {
  SetpointCheck check;
  check.LimitInForce(30000, t0);
  check.LimitInForce(0, t0 + absl::Seconds(60));  // a pause
  EXPECT_FALSE(check.Meter(30000, t0 + absl::Seconds(65)));
  EXPECT_FALSE(check.Meter(15000, t0 + absl::Seconds(75)));
  EXPECT_FALSE(check.Meter(500, t0 + absl::Seconds(79)));    // within 1 kW of 0
  EXPECT_FALSE(check.Meter(3000, t0 + absl::Seconds(100)));  // over again: a new grace
  EXPECT_FALSE(check.problem().has_value());
}

TEST(SetpointCheckTest, ALimitThatMovesEverySecondIsJudgedByItsHighestInTheGrace) {
  // A load balancer ramping a charger up and down around 10-14 kW: a
  // charger that follows with a few seconds of lag is never flagged ...
  SetpointCheck follows;
  SetpointCheck ignores;
  for (int s = 0; s <= 120; ++s) {
    const double limit = 10000 + 4000 * (s % 4 == 0);
    follows.LimitInForce(limit, t0 + absl::Seconds(s));
    ignores.LimitInForce(limit, t0 + absl::Seconds(s));
    if (s % 10 == 0) {
      follows.Meter(14000, t0 + absl::Seconds(s));
      ignores.Meter(30000, t0 + absl::Seconds(s));  // ... one that draws 30 kW is
    }
  }
  EXPECT_FALSE(follows.problem().has_value());
  ASSERT_TRUE(ignores.problem().has_value());
  EXPECT_THAT(*ignores.problem(), HasSubstr("above its 14000 W limit"));
}

TEST(SetpointCheckTest, TheReadBackFindsAcceptedAndIgnoredProfiles) {
  SetpointCheck check;
  check.LimitInForce(20000, t0);
  EXPECT_FALSE(check.Readback(20000, 20000));
  EXPECT_FALSE(check.Readback(15000, 20000));  // lower (a station limit): safe
  EXPECT_TRUE(check.Readback(60000, 20000));
  EXPECT_THAT(*check.problem(), HasSubstr("allows 60000 W where evgate set 20000 W"));
  EXPECT_TRUE(check.Readback(std::nullopt, 20000));  // another problem
  EXPECT_THAT(*check.problem(), HasSubstr("no composite schedule"));
  // Both checks at once are both reported.
  EXPECT_FALSE(check.Meter(50000, t0));  // not judged: the limit is too new
  EXPECT_FALSE(check.Meter(50000, t0 + absl::Seconds(20)));
  EXPECT_TRUE(check.Meter(50000, t0 + absl::Seconds(25)));
  EXPECT_THAT(*check.problem(), HasSubstr("draws 50000 W"));
  EXPECT_THAT(*check.problem(), HasSubstr("no composite schedule"));
  EXPECT_TRUE(check.Readback(20000, 20000));
  EXPECT_TRUE(check.Meter(19000, t0 + absl::Seconds(30)));
  EXPECT_FALSE(check.problem().has_value());
}

}  // namespace
}  // namespace evgate::ocpp
