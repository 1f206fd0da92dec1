// What the control loop cannot trust or command (issue #10): wall-clock
// steps, stale and refused wallboxes, failed batches, drivers down, EVSEs
// nobody reported, invalid meter readings, stale circuit sub-meters.
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

// Issue #10 item 4: ages on the monotonic clock. With wall-clock ages, a step
// back (NTP correcting a box that booted without RTC) froze the meter's age
// and the failsafe never came.
TEST_F(ControlLoopTest, AWallClockStepBackDoesNotFreezeTheMeterAge) {
  ChargeOne();
  ASSERT_TRUE(Reached("wb1", 32));
  clock_.StepWall(-absl::Hours(1));
  clock_.Advance(absl::Seconds(4));  // the meter went quiet
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), 6) << "4 s without a sample is stale, whatever the wall clock did";
  EXPECT_TRUE(loop_->Snapshot().failsafe);
}

TEST_F(ControlLoopTest, AWallClockStepForwardDoesNotAgeFreshSamples) {
  ChargeOne();
  ASSERT_TRUE(Reached("wb1", 32));
  clock_.StepWall(absl::Hours(1));
  Second(0);  // stamped by the driver with the new wall time: fresh
  Second(0);
  EXPECT_TRUE(Reached("wb1", 32)) << Limit("wb1");
  EXPECT_FALSE(loop_->Snapshot().failsafe);
}

// Issue #10 item 2: a stale wallbox cannot be commanded. It used to be
// allocated as if it obeyed (this test expected it ramped to 32 A).
TEST_F(ControlLoopTest, AStaleWallboxIsNotCommandedAndCountsAtItsWorstCase) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) {
    clock_.Advance(absl::Seconds(1));
    EvseTelemetry("wallbox-1", "wb1", std::max(0.0, Limit("wb1")));
    EvseTelemetry("wallbox-2", "wb2", std::max(0.0, Limit("wb2")));
    Sample(0);
  }
  ASSERT_TRUE(Reached("wb1", 16) && Reached("wb2", 16));
  const double held = Limit("wb1");

  v1::WatchDevicesResponse stale;
  stale.set_device_id("wallbox-1");
  stale.mutable_link_state_change()->mutable_link()->set_stale(true);
  Driver(0).Emit(stale);
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), 6) << "told its failsafe value, for when it answers again";
  EXPECT_THAT(Shown("wb1").not_controlled_reason(), HasSubstr("stale"));
  for (int s = 0; s < 10; ++s) Second(0);
  EXPECT_LE(Limit("wb2"), 32 - held + 1e-9)
      << "wb1 may still draw its " << held << " A: wb2 gets only what is left";

  // Its own watchdog (65.535 s after the last refresh, plus the 3 s TTL)
  // has provably put it at its 6 A failsafe: wb2 gets the rest.
  // Unmeasured, its draw cannot be told apart from the building's in the
  // meter's reading: it counts there (up to 6 A) and at its failsafe, 20 A
  // are left for wb2.
  for (int s = 0; s < 60; ++s) Second(0);
  EXPECT_LE(Limit("wb2"), 32 - held + 1e-9);
  for (int s = 0; s < 15; ++s) Second(0);
  EXPECT_TRUE(Reached("wb2", 20)) << Limit("wb2");

  // It answers again: back under control, shared fairly.
  stale.mutable_link_state_change()->mutable_link()->set_stale(false);
  Driver(0).Emit(stale);
  loop_->Step();
  EXPECT_TRUE(Shown("wb1").not_controlled_reason().empty());
  for (int s = 0; s < 8; ++s) Second(0);
  EXPECT_TRUE(Reached("wb1", 16) && Reached("wb2", 16)) << Limit("wb1") << " " << Limit("wb2");
}

// After a restart, an EVSE no driver has reported yet may still be at what a
// previous instance left it: at most its maximum, until TTL + the longest
// device watchdog have passed.
TEST_F(ControlLoopTest, AnEvseNoDriverReportedCountsAtItsMaximumUntilItsWatchdogPassed) {
  Make(2);
  v1::WatchDevicesResponse meter;  // driver 1 (wallbox-2) never answers
  meter.set_device_id("grid-meter");
  meter.mutable_snapshot()->set_device_id("grid-meter");
  meter.mutable_snapshot()->set_kind(v1::DEVICE_KIND_METER);
  Driver(0).Emit(meter);
  v1::WatchDevicesResponse wallbox;
  wallbox.set_device_id("wallbox-1");
  *wallbox.mutable_snapshot() = WallboxState("wallbox-1", "wb1", v1::CONNECTOR_STATUS_AVAILABLE);
  Driver(0).Emit(wallbox);
  v1::WatchDevicesResponse complete;
  complete.mutable_initial_snapshot_complete();
  Driver(0).Emit(complete);
  loop_->Step();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 10; ++s) Second(0);
  EXPECT_EQ(Limit("wb1"), -1) << "wb2 may draw the whole 32 A";
  EXPECT_THAT(loop_->Snapshot().evses.at("wb2").not_commandable, HasSubstr("no driver"));
  for (int s = 0; s < 70; ++s) Second(0);
  // wb2 is at its 6 A failsafe now (the meter shows it draws nothing).
  EXPECT_TRUE(Reached("wb1", 26)) << Limit("wb1");
}

// Issue #10 item 2: a refused setpoint was recorded as sent and the EVSE
// counted as obeying.
TEST_F(ControlLoopTest, ARefusedSetpointIsNotCountedAsObeyed) {
  ChargeBoth();
  ASSERT_TRUE(Reached("wb1", 16) && Reached("wb2", 16));
  const double held = Limit("wb1");

  Driver(0).Refuse("wb1", true);
  const uint64_t published = loop_->Snapshot().allocation->sequence();
  Second(0);  // the tick's refresh is refused for wb1
  EXPECT_THAT(Shown("wb1").not_controlled_reason(), HasSubstr("the wallbox said no"));
  std::optional<v1::Allocation> streamed =
      loop_->WaitForAllocation(published, absl::ZeroDuration());
  ASSERT_TRUE(streamed.has_value()) << "WatchAllocations streams the change of control";
  for (int s = 0; s < 10; ++s) Second(0);
  EXPECT_LE(Limit("wb2"), 32 - held + 1e-9) << "wb1 still has its " << held << " A in force";

  Driver(0).Refuse("wb1", false);
  Second(0);  // the refresh is taken: under control again
  EXPECT_TRUE(Shown("wb1").not_controlled_reason().empty());
  for (int s = 0; s < 8; ++s) Second(0);
  EXPECT_TRUE(Reached("wb1", 16) && Reached("wb2", 16)) << Limit("wb1") << " " << Limit("wb2");
}

// A batch that failed (deadline) may have been applied: its EVSEs count at
// the higher of what they had and what was sent.
TEST_F(ControlLoopTest, AFailedBatchLeavesItsEvsesNotCommandable) {
  ChargeBoth(2);
  ASSERT_TRUE(Reached("wb1", 16) && Reached("wb2", 16));
  Driver(1).FailWith(absl::DeadlineExceededError("ApplySetpoints on driver-1: deadline"));
  Second(0);
  EXPECT_THAT(Shown("wb2").not_controlled_reason(), HasSubstr("deadline"));
  // Retried with the tick only, not at every input.
  const size_t calls = Driver(1).deadlines().size();
  clock_.Advance(absl::Milliseconds(300));
  Sample(5);
  EXPECT_EQ(Driver(1).deadlines().size(), calls);
  clock_.Advance(absl::Seconds(1));
  loop_->Step();
  EXPECT_EQ(Driver(1).deadlines().size(), calls + 1);
  for (int s = 0; s < 5; ++s) Second(0);
  EXPECT_LE(Limit("wb1"), 16.0 + 1e-9);
  Driver(1).FailWith(absl::OkStatus());
  Second(0);
  EXPECT_TRUE(Shown("wb2").not_controlled_reason().empty());
}

TEST_F(ControlLoopTest, ADriverThatIsDownLeavesItsEvsesNotCommandable) {
  ChargeBoth(2);
  ASSERT_TRUE(Reached("wb1", 16) && Reached("wb2", 16));
  const double held = Limit("wb2");
  Driver(1).Down();
  loop_->Step();
  EXPECT_THAT(Shown("wb2").not_controlled_reason(), HasSubstr("driver-1"));
  for (int s = 0; s < 10; ++s) Second(0);
  EXPECT_LE(Limit("wb1"), 32 - held + 1e-9) << "wb2 may still draw its " << held << " A";
  for (int s = 0; s < 75; ++s) {  // TTL + watchdog: wb2 is at its 6 A failsafe
    clock_.Advance(absl::Seconds(1));
    const double l = Limit("wb1") + 6;  // wb2's car follows its failsafe
    Meter(l, l, l);
  }
  // wb2 is unmeasured: up to 6 A of the meter's reading and its 6 A failsafe.
  EXPECT_TRUE(Reached("wb1", 20)) << Limit("wb1");
}

// Issue #10 item 6: missing data is not zero.
TEST_F(ControlLoopTest, AMeterReadingWithoutAPhaseIsInvalidNotZero) {
  ChargeOne();
  ASSERT_TRUE(Reached("wb1", 32));
  clock_.Advance(absl::Seconds(1));
  v1::WatchDevicesResponse event = MeterEvent(20, 20, 20);
  event.mutable_telemetry()->mutable_meter()->mutable_current_a()->clear_l3();
  Driver(0).Emit(event);
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), 6);
  const LoopSnapshot snapshot = loop_->Snapshot();
  EXPECT_TRUE(snapshot.failsafe);
  EXPECT_THAT(snapshot.failsafe_reason, HasSubstr("phase L3"));
  Second(0);
  Second(0);
  EXPECT_FALSE(loop_->Snapshot().failsafe) << "a valid reading recovers";
}

TEST_F(ControlLoopTest, AMeterReadingWithoutItsTimeIsInvalid) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 4; ++s) Second(0);
  ASSERT_GT(Limit("wb1"), 6);
  clock_.Advance(absl::Seconds(1));
  v1::WatchDevicesResponse event = MeterEvent(0, 0, 0);
  event.mutable_telemetry()->mutable_meter()->clear_measured_at();
  Driver(0).Emit(event);
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), 6);
  EXPECT_THAT(loop_->Snapshot().failsafe_reason, HasSubstr("measured_at"));
}

// Issue #10 item 1: a stale circuit sub-meter fails its circuit, and only it.
TEST_F(ControlLoopTest, AStaleCircuitMeterFailsOnlyItsCircuitVisibly) {
  Make(1, nullptr, CircuitSite());
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  auto c1 = [&](double a) {
    v1::WatchDevicesResponse event = MeterEvent(a, a, a);
    event.set_device_id("c1-meter");
    Driver(0).Emit(event);
  };
  // The wallboxes measure their cars, which follow at once.
  auto second = [&](bool c1_answers) {
    clock_.Advance(absl::Seconds(1));
    const double wb1 = std::max(0.0, Limit("wb1"));
    EvseTelemetry("wallbox-1", "wb1", wb1);
    EvseTelemetry("wallbox-2", "wb2", std::max(0.0, Limit("wb2")));
    if (c1_answers) c1(wb1);
    Sample(0);
  };
  for (int s = 0; s < 12; ++s) second(true);
  ASSERT_GE(Limit("wb1"), 20);
  ASSERT_GE(Limit("wb2"), 20);
  const double wb2_before = Limit("wb2");
  for (int s = 0; s < 4; ++s) second(false);  // c1's meter is silent
  EXPECT_EQ(Limit("wb1"), 6);

  const LoopSnapshot snapshot = loop_->Snapshot();
  EXPECT_FALSE(snapshot.failsafe) << "the rest of the site is not in failsafe";
  ASSERT_EQ(snapshot.failsafe_nodes.count("c1"), 1u);
  EXPECT_THAT(snapshot.failsafe_nodes.at("c1").reason, HasSubstr("old"));
  EXPECT_GE(Limit("wb2"), wb2_before) << "wb2, outside c1, keeps charging";
  for (int s = 0; s < 3; ++s) second(true);
  EXPECT_TRUE(loop_->Snapshot().failsafe_nodes.empty()) << "c1's meter is back";
  EXPECT_GT(Limit("wb1"), 6);
}

// An OCPP charger (the bridge's DeviceDriver reports it) that has not been
// online since the loop started holds no setpoint of ours: it is building
// load to the meter, not held at its maximum (which would block the grid
// for good), and nothing is sent to it. Once it has accepted a setpoint, a
// stale charger counts at its worst case like any other EVSE.
std::string WithDcCharger() {
  std::string yaml = kSite;
  yaml.replace(yaml.find("stations:"), std::string("stations:").size(), R"(  - id: ds60-1
    profile: ds60
    charge_point_id: DS60-1
ocpp:
  local:
    listen: 127.0.0.1:0
    security_profile: 0
stations:
  - id: dc
    device: ds60-1
    circuit: grid
    evses:
      - id: dc1
        connector: 1
        max_power_w: 20000
        failsafe_power_w: 0)");
  return yaml;
}

double PowerIn(const v1::ApplySetpointsRequest& request, const std::string& evse) {
  for (const v1::Setpoint& s : request.setpoints()) {
    if (s.evse_id() != evse) continue;
    return s.value().has_pause() ? 0 : s.value().power_limit_w();
  }
  return -1;
}

TEST_F(ControlLoopTest, AnOcppChargerNeverOnlineIsBuildingLoadThenCommandedOnceOnline) {
  Make(1, nullptr, WithDcCharger());
  Connect();
  v1::WatchDevicesResponse dc;
  dc.set_device_id("ds60-1");
  v1::DeviceState* state = dc.mutable_snapshot();
  state->set_device_id("ds60-1");
  state->set_kind(v1::DEVICE_KIND_DC_CHARGER);
  state->mutable_link()->set_stale(true);
  v1::EvseState* evse = state->add_evses();
  evse->set_evse_id("dc1");
  evse->set_kind(v1::EVSE_KIND_DC);
  Driver(0).Emit(dc);
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  EXPECT_TRUE(Reached("wb1", 32)) << "dc1 (never online) must not hold the grid at its 20 kW: "
                                  << Limit("wb1");
  EXPECT_THAT(Shown("dc1").not_controlled_reason(), HasSubstr("not been online"));
  for (const Record::Taken& t : Taken()) EXPECT_EQ(PowerIn(t.request, "dc1"), -1);

  // It connects: under control, told a power limit.
  v1::WatchDevicesResponse online;
  online.set_device_id("ds60-1");
  online.mutable_link_state_change()->mutable_link()->set_stale(false);
  Driver(0).Emit(online);
  loop_->Step();
  for (int s = 0; s < 3; ++s) Second(0);
  ASSERT_FALSE(Taken().empty());
  EXPECT_GE(PowerIn(Taken().back().request, "dc1"), 0) << "dc1 gets setpoints once online";
  EXPECT_EQ(Shown("dc1").not_controlled_reason(), "");

  // It drops again after accepting one: now it may run that setpoint, so it
  // is counted at its worst case, not as building load.
  v1::WatchDevicesResponse gone = online;
  gone.mutable_link_state_change()->mutable_link()->set_stale(true);
  Driver(0).Emit(gone);
  loop_->Step();
  EXPECT_THAT(Shown("dc1").not_controlled_reason(), HasSubstr("stale"));
}

}  // namespace
}  // namespace evgate::load_balancer
