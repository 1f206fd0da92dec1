// The control loop's allocation behaviour, stepped on a FakeClock with fake
// drivers (control_loop_test_fixture.h): failsafe without data, ramps and
// immediate cuts, fair sharing across rotated wiring, dynamic limits,
// priorities, base load, authorization gating.
#include <cmath>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "services/load_balancer/control_loop_test_fixture.h"

namespace evgate::load_balancer {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;
using namespace loop_testing;  // NOLINT: the fixture's vocabulary

TEST_F(ControlLoopTest, WithoutMeterDataPluggedEvsesGetTheirFailsafeCurrent) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  EXPECT_EQ(Limit("wb1"), 6);
  EXPECT_EQ(Limit("wb2"), -1) << "nothing plugged into wb2: paused";
  const std::vector<Record::Taken> taken = Taken();
  ASSERT_FALSE(taken.empty());
  EXPECT_EQ(TimeUtil::DurationToSeconds(taken.back().request.ttl()), 3);
  EXPECT_EQ(Driver(0).deadlines().back(), absl::Seconds(1)) << "(TTL 3 s - tick 1 s) / 2";
  EXPECT_TRUE(loop_->Snapshot().failsafe);
}

TEST_F(ControlLoopTest, RampsUpOnMeterSamplesAndCutsAtOnceWhenTheBuildingNeedsIt) {
  ChargeOne();
  ASSERT_TRUE(Reached("wb1", 32)) << Limit("wb1") << " A: alone on 32 A, it reaches the fuse";

  // The building takes 20 A: wb1 must drop to 12 A on the very next sample.
  const size_t before = loop_->ReactionTimes().size();
  clock_.Advance(absl::Milliseconds(200));
  Sample(20);
  EXPECT_EQ(Limit("wb1"), 12);
  EXPECT_GT(loop_->ReactionTimes().size(), before);
}

TEST_F(ControlLoopTest, SharesMaxMinFairAcrossRotatedWiringAndSendsOneBatchPerDriver) {
  ChargeBoth();
  ASSERT_TRUE(Reached("wb1", 16) && Reached("wb2", 16)) << Limit("wb1") << " " << Limit("wb2");
  const std::vector<Record::Taken> taken = Taken();
  const v1::ApplySetpointsRequest& last = taken.back().request;
  for (const v1::Setpoint& s : last.setpoints()) {
    if (s.evse_id() == "wb2") {
      EXPECT_TRUE(s.value().current_limit_a().has_l2());
    }
  }
  for (const Record::Taken& t : taken) {
    EXPECT_EQ(t.request.setpoints_size(), 2) << "every batch carries the driver's whole set";
  }
  const v1::EvseAllocation wb2 = Shown("wb2");
  EXPECT_DOUBLE_EQ(wb2.phase_current_a().l3(), wb2.current_a()) << "wired to all three";
  EXPECT_TRUE(wb2.not_controlled_reason().empty());
}

TEST_F(ControlLoopTest, AStaleMeterFallsBackToFailsafeAndRecovers) {
  ChargeOne();
  ASSERT_TRUE(Reached("wb1", 32));
  clock_.Advance(absl::Seconds(4));  // no sample for longer than the 3 s timeout
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), 6);
  EXPECT_TRUE(loop_->Snapshot().failsafe);
  EXPECT_TRUE(loop_->Snapshot().grid_sample_at.has_value());
  Second(0);  // fresh again: increases ramp from the failsafe value
  Second(0);
  EXPECT_GT(Limit("wb1"), 6);
}

TEST_F(ControlLoopTest, DynamicLimitsBindUntilCleared) {
  ChargeOne();
  ASSERT_TRUE(Reached("wb1", 32));
  ASSERT_TRUE(SetLimit(20).ok());
  EXPECT_EQ(Limit("wb1"), 20);
  EXPECT_EQ(loop_->Snapshot().dynamic_limits.size(), 1u);
  ASSERT_TRUE(SetLimit(20, absl::ZeroDuration()).ok());  // clears
  EXPECT_TRUE(loop_->Snapshot().dynamic_limits.empty());
  for (int s = 0; s < 4; ++s) Second(0);
  EXPECT_TRUE(Reached("wb1", 32));
}

TEST_F(ControlLoopTest, ADynamicLimitExpiresOnTheMonotonicClock) {
  ChargeOne();
  ASSERT_TRUE(SetLimit(20, absl::Seconds(10)).ok());
  EXPECT_EQ(Limit("wb1"), 20);
  clock_.StepWall(absl::Hours(1));  // does not end it early
  Second(0);
  EXPECT_EQ(Limit("wb1"), 20);
  EXPECT_EQ(loop_->Snapshot().dynamic_limits.size(), 1u);
  for (int s = 0; s < 12; ++s) Second(0);
  EXPECT_GT(Limit("wb1"), 20);
  EXPECT_TRUE(loop_->Snapshot().dynamic_limits.empty());
}

TEST_F(ControlLoopTest, PriorityOverrideDecidesWhoPausesWhenMinimumsDoNotFit) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  ASSERT_TRUE(SetLimit(10).ok());  // room for one minimum only
  for (int s = 0; s < 3; ++s) {
    clock_.Advance(absl::Seconds(1));
    EvseTelemetry("wallbox-1", "wb1", 0);
    EvseTelemetry("wallbox-2", "wb2", 0);
    Meter(0, 0, 0);
  }
  EXPECT_GT(Limit("wb1"), 0) << "wb1 was plugged in first";
  EXPECT_EQ(Limit("wb2"), -1);
  ASSERT_TRUE(
      WhileStepping([&] { return loop_->SetEvsePriority("wb2", 5, absl::InfiniteFuture()); }).ok());
  EXPECT_EQ(Limit("wb1"), -1);
  EXPECT_EQ(Limit("wb2"), -1) << "wb1's car may draw its 6 A for 5 s yet (IEC 61851-1)";
  for (int s = 0; s < 5; ++s) {
    EXPECT_EQ(Limit("wb2"), -1) << s << " s after";
    clock_.Advance(absl::Seconds(1));
    EvseTelemetry("wallbox-1", "wb1", 0);
    Meter(0, 0, 0);
  }
  EXPECT_GT(Limit("wb2"), 0);
}

TEST_F(ControlLoopTest, BaseLoadComparesTheMeterWithEvCurrentsOfTheSameMoment) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  double a = 0;
  for (int s = 0; s < 9; ++s) {
    clock_.Advance(absl::Seconds(1));
    a = std::max(0.0, Limit("wb1"));
    EvseTelemetry("wallbox-1", "wb1", a);  // the vehicle follows at once
    Meter(a, a, a);
  }
  ASSERT_TRUE(Reached("wb1", 32));
  a = Limit("wb1");

  // The building starts drawing 10 A; the meter sees it and wb1 drops to 22 A.
  clock_.Advance(absl::Milliseconds(200));
  Meter(10 + a, 10 + a, 10 + a);
  ASSERT_EQ(Limit("wb1"), 22);
  // The vehicle follows 300 ms later, before the meter's next poll: against
  // the old meter reading that would look like 20 A of building load.
  clock_.Advance(absl::Milliseconds(300));
  EvseTelemetry("wallbox-1", "wb1", 22);
  loop_->Step();
  clock_.Advance(absl::Seconds(1));  // a tick, still no new meter sample
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), 22) << "no second, needless cut";
}

TEST_F(ControlLoopTest, ADriversNonsenseDoesNotStopTheLoop) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  v1::WatchDevicesResponse event;
  event.set_device_id("wallbox-1");
  v1::EvseTelemetry* t = event.mutable_telemetry()->add_evses();
  t->set_evse_id("wb1");
  t->mutable_measurements()->mutable_current_a()->set_l1(std::nan(""));
  t->mutable_measurements()->set_soc_pct(255);  // "unknown" in some protocols
  t->mutable_measurements()->set_session_energy_wh(-5);
  Driver(0).Emit(event);
  Meter(0, 0, 0);
  for (int s = 0; s < 4; ++s) Second(0);
  EXPECT_GT(Limit("wb1"), 6) << "the loop still leaves failsafe and ramps";
}

TEST_F(ControlLoopTest, WithoutTheGridEveryEvseIsPausedAndChargingRampsBackAfter) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 6; ++s) Second(0);
  ASSERT_GT(Limit("wb1"), 20);
  control::GridModeDirective off;
  off.grid_supply = false;
  off.reason = "GRID_MODE_OUTAGE_STANDBY";
  loop_->SetGridMode(off);
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), -1) << "paused at once";
  EXPECT_EQ(Shown("wb1").pause_reason(), v1::PAUSE_REASON_GRID_MODE);
  Second(0);
  Second(0);
  EXPECT_EQ(Limit("wb1"), -1) << "stays paused while off grid";
  loop_->SetGridMode(control::GridModeDirective{});
  loop_->Step();
  Second(0);
  EXPECT_GT(Limit("wb1"), 0);
  EXPECT_LE(Limit("wb1"), 6 + 5) << "back from the pause with the ramp, not at once";
}

TEST_F(ControlLoopTest, AllocationsArePublishedWithIncreasingSequences) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  uint64_t last = 0;
  for (int s = 0; s < 6; ++s) {
    Second(0);
    std::optional<v1::Allocation> allocation = loop_->WaitForAllocation(last, absl::ZeroDuration());
    ASSERT_TRUE(allocation.has_value()) << "second " << s << ": wb1 ramps, so it changes";
    EXPECT_GT(allocation->sequence(), last);
    last = allocation->sequence();
  }
}

TEST_F(ControlLoopTest, AReadingSentAgainWithTheSameTimeIsNoNewMeterSample) {
  // A Modbus driver re-sends the grid meter's reading when it has read only
  // the slow (energy) registers: same currents, same measured_at. Before,
  // each one was a new sample: wb1 ramped on it, and the allocation carried
  // a reaction time counted from the old reading (~100 ms on the demo, every
  // 10 s).
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  Second(0);  // wb1 ramps on each meter sample
  clock_.Advance(absl::Milliseconds(500));
  const double l = Limit("wb1");
  const v1::WatchDevicesResponse reading = MeterEvent(l, l, l);
  Driver(0).Emit(reading);
  loop_->Step();
  std::optional<v1::Allocation> latest = loop_->WaitForAllocation(0, absl::ZeroDuration());
  ASSERT_TRUE(latest.has_value());
  ASSERT_EQ(latest->trigger(), v1::ALLOCATION_TRIGGER_METER_SAMPLE);
  const double ramped = Limit("wb1");
  ASSERT_GT(ramped, l) << "wb1 still ramps";
  ASSERT_LT(ramped, 32);

  clock_.Advance(absl::Milliseconds(400));
  v1::WatchDevicesResponse again = reading;
  again.mutable_telemetry()->mutable_meter()->set_energy_import_wh(123456);  // the slow registers
  Driver(0).Emit(again);
  loop_->Step();
  std::optional<v1::Allocation> after =
      loop_->WaitForAllocation(latest->sequence(), absl::ZeroDuration());
  EXPECT_FALSE(after.has_value()) << "a decision on the re-sent reading: " << after->DebugString();
  EXPECT_EQ(Limit("wb1"), ramped);

  // The next reading is a sample again: wb1 ramps on.
  clock_.Advance(absl::Milliseconds(600));
  Sample(0);
  after = loop_->WaitForAllocation(latest->sequence(), absl::ZeroDuration());
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->trigger(), v1::ALLOCATION_TRIGGER_METER_SAMPLE);
  EXPECT_GT(Limit("wb1"), ramped);
}

// An operator sees why an idle EVSE gets nothing, not an unnamed pause.
TEST_F(ControlLoopTest, AnEvseWithoutAVehicleIsShownAsSuch) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  Second(0);
  EXPECT_TRUE(Shown("wb2").paused());
  EXPECT_EQ(Shown("wb2").pause_reason(), v1::PAUSE_REASON_NO_VEHICLE);
  EXPECT_FALSE(Shown("wb1").paused());
  EXPECT_EQ(Shown("wb1").pause_reason(), v1::PAUSE_REASON_UNSPECIFIED);
}

TEST_F(ControlLoopTest, WithASessionServiceOnlyAuthorizedSessionsGetEnergy) {
  auto sessions = std::make_unique<FakeSessionLink>();
  FakeSessionLink* feed = sessions.get();
  Make(1, std::move(sessions));
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  feed->Emit(v1::SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE, "", false);
  Meter(0, 0, 0);
  EXPECT_EQ(Limit("wb1"), -1) << "plugged in, no session: nothing";
  EXPECT_EQ(Limit("wb2"), -1);
  EXPECT_EQ(Shown("wb1").pause_reason(), v1::PAUSE_REASON_NOT_AUTHORIZED);
  feed->Emit(v1::SESSION_EVENT_TYPE_STARTED, "wb2", true);  // a card authorizes wb2 only
  for (int s = 0; s < 8; ++s) Second(0);
  EXPECT_EQ(Limit("wb1"), -1);
  EXPECT_TRUE(Reached("wb2", 32)) << Limit("wb2");
  feed->Emit(v1::SESSION_EVENT_TYPE_ENDED, "wb2", false);
  loop_->Step();
  EXPECT_EQ(Limit("wb2"), -1) << "the session ended: paused at once";
}

}  // namespace
}  // namespace evgate::load_balancer
