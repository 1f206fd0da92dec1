// One test per rule of grid_mode_machine.h, driven by explicit steps of a fake timeline.

#include "site_controller/grid/grid_mode_machine.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::grid {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class GridModeMachineTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(GridModeSettings{}, {V2x("v2x1")}); }

  static V2xEvseSettings V2x(std::string id, double max_offgrid_w = 19800) {
    V2xEvseSettings evse;
    evse.evse_id = std::move(id);
    evse.soc_min_pct = 30;
    evse.soc_max_pct = 100;
    evse.max_offgrid_discharge_power_w = max_offgrid_w;
    return evse;
  }

  void Make(GridModeSettings settings, std::vector<V2xEvseSettings> evses) {
    auto machine = GridModeMachine::Create(settings, evses);
    ASSERT_TRUE(machine.ok()) << machine.status();
    m_ = *std::move(machine);
    world_ = Observation{};
    world_.box.reachable = true;
    world_.box.grid_present = true;
    world_.box.transfer_switch = TransferSwitch::kOnGrid;
    world_.box.qf1_closed = true;
    world_.box.qf2_closed = true;
    for (const V2xEvseSettings& evse : evses) {
      V2xEvseObservation seen;
      seen.evse_id = evse.evse_id;
      seen.reachable = true;
      world_.evses.push_back(seen);
    }
  }

  V2xEvseObservation& Evse(const std::string& id) {
    for (V2xEvseObservation& evse : world_.evses) {
      if (evse.evse_id == id) return evse;
    }
    ADD_FAILURE() << "no " << id;
    return world_.evses.front();
  }
  void Plug(const std::string& id, double soc_pct) {
    Evse(id).vehicle_connected = true;
    Evse(id).soc_pct = soc_pct;
  }
  void LoseGrid() {
    world_.box.grid_present = false;
    world_.box.transfer_switch = TransferSwitch::kOpen;
  }

  StepResult Observe() { return m_->Observe(now_, world_); }
  StepResult Wait(absl::Duration d) {
    now_ += d;
    return m_->Tick(now_);
  }
  StepResult WaitAndObserve(absl::Duration d) {
    now_ += d;
    return Observe();
  }
  GridMode mode() const { return m_->status().mode; }

  // ON_GRID, then the grid lost: OUTAGE_STANDBY.
  void StartInOutage() {
    Observe();
    LoseGrid();
    Observe();
    ASSERT_EQ(mode(), GridMode::kOutageStandby);
  }
  // OUTAGE_STANDBY, vehicle at `soc_pct` on v2x1, automatic start, the box transfers: OFF_GRID.
  void StartOffGrid(double soc_pct = 80) {
    StartInOutage();
    Plug("v2x1", soc_pct);
    StepResult step = Observe();
    ASSERT_THAT(step.box_commands, ElementsAre(BoxCommand::kTransferToOffGrid));
    world_.box.transfer_switch = TransferSwitch::kOffGrid;
    Observe();
    ASSERT_EQ(mode(), GridMode::kOffGrid);
  }

  absl::Time now_ = absl::UnixEpoch() + absl::Hours(5);
  std::unique_ptr<GridModeMachine> m_;
  Observation world_;
};

// --- Startup ---------------------------------------------------------------------------------

TEST_F(GridModeMachineTest, StartsOnGridWhenTheBoxReportsTheGrid) {
  StepResult step = Observe();
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].from, GridMode::kUnknown);
  EXPECT_EQ(step.transitions[0].to, GridMode::kOnGrid);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kStartup);
  EXPECT_TRUE(step.directives.grid_supply);
  EXPECT_THAT(step.directives.forming_evse, IsEmpty());
}

TEST_F(GridModeMachineTest, StaysUnknownUntilTheBoxAnswers) {
  world_.box.reachable = false;
  StepResult step = Observe();
  EXPECT_THAT(step.transitions, IsEmpty());
  EXPECT_EQ(mode(), GridMode::kUnknown);
  EXPECT_TRUE(step.directives.grid_supply);  // the load balancer's meter failsafe covers this
  world_.box.reachable = true;
  EXPECT_EQ(WaitAndObserve(absl::Seconds(1)).transitions.size(), 1u);
  EXPECT_EQ(mode(), GridMode::kOnGrid);
}

TEST_F(GridModeMachineTest, StartingDuringAnOutageTakesTheBoxCountdownButNeverMoreThanConfigured) {
  LoseGrid();
  world_.box.standby_remaining = absl::Seconds(60);
  Observe();
  EXPECT_EQ(mode(), GridMode::kOutageStandby);
  EXPECT_EQ(m_->status().last_reason, TransitionReason::kStartup);
  EXPECT_EQ(m_->status().standby_remaining, absl::Seconds(60));

  SetUp();
  LoseGrid();
  world_.box.standby_remaining = absl::Minutes(15);  // box configured longer than site.yaml
  Observe();
  EXPECT_EQ(m_->status().standby_remaining, absl::Seconds(180));
}

TEST_F(GridModeMachineTest, StartingWithTheSwitchOnTheIslandIsOffGrid) {
  LoseGrid();
  world_.box.transfer_switch = TransferSwitch::kOffGrid;
  Plug("v2x1", 70);
  StepResult step = Observe();
  EXPECT_EQ(mode(), GridMode::kOffGrid);
  EXPECT_EQ(m_->status().last_reason, TransitionReason::kStartup);
  EXPECT_EQ(step.directives.forming_evse, "v2x1");
  EXPECT_EQ(step.directives.forming_discharge_limit_w, 19800);
}

// --- ON_GRID ---------------------------------------------------------------------------------

TEST_F(GridModeMachineTest, GridLossStartsTheCountdownAndPausesCharging) {
  Observe();
  LoseGrid();
  StepResult step = WaitAndObserve(absl::Seconds(1));
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].to, GridMode::kOutageStandby);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kGridLost);
  EXPECT_THAT(step.transitions[0].detail, HasSubstr("grid lost"));
  EXPECT_EQ(step.transitions[0].at, now_);
  EXPECT_FALSE(step.directives.grid_supply);
  EXPECT_EQ(m_->status().standby_remaining, absl::Seconds(180));
  EXPECT_EQ(m_->status().since, now_);
}

TEST_F(GridModeMachineTest, AnOpenTransferSwitchWithTheGridPresentIsAnOutageToo) {
  Observe();
  world_.box.transfer_switch = TransferSwitch::kOpen;
  StepResult step = Observe();
  EXPECT_EQ(mode(), GridMode::kOutageStandby);
  EXPECT_THAT(step.transitions[0].detail, HasSubstr("switch is open"));
}

TEST_F(GridModeMachineTest, AnUnreachableBoxOnGridChangesNothingButIsVisible) {
  Observe();
  world_.box.reachable = false;
  world_.box.grid_present = false;  // stale values of a box that does not answer are not news
  StepResult step = WaitAndObserve(absl::Seconds(10));
  EXPECT_THAT(step.transitions, IsEmpty());
  EXPECT_EQ(mode(), GridMode::kOnGrid);
  EXPECT_FALSE(m_->status().box_reachable);
}

TEST_F(GridModeMachineTest, OffGridIsRefusedWhileTheGridIsPresent) {
  Observe();
  Plug("v2x1", 80);
  Observe();
  auto request = m_->RequestOffGrid(now_, "v2x1", "test");
  ASSERT_FALSE(request.ok());
  EXPECT_EQ(request.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(request.status().message(),
              AllOf(HasSubstr("never islands while the grid is present"),
                    HasSubstr("reports the grid present")));
}

// --- OUTAGE_STANDBY --------------------------------------------------------------------------

TEST_F(GridModeMachineTest, TheCountdownEndingWithoutDischargePutsTheSystemToSleep) {
  StartInOutage();
  EXPECT_THAT(Wait(absl::Seconds(179)).transitions, IsEmpty());
  EXPECT_EQ(m_->status().standby_remaining, absl::Seconds(1));
  StepResult step = Wait(absl::Seconds(1));
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].to, GridMode::kOutageSleep);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kStandbyTimeout);
  EXPECT_THAT(step.transitions[0].detail, HasSubstr("180 s"));
  EXPECT_FALSE(m_->status().standby_remaining.has_value());
  EXPECT_FALSE(step.directives.grid_supply);
}

TEST_F(GridModeMachineTest, AConfiguredCountdownIsHonoured) {
  GridModeSettings settings;
  settings.standby_countdown = absl::Minutes(15);
  Make(settings, {V2x("v2x1")});
  StartInOutage();
  Wait(absl::Seconds(899));
  EXPECT_EQ(mode(), GridMode::kOutageStandby);
  Wait(absl::Seconds(1));
  EXPECT_EQ(mode(), GridMode::kOutageSleep);
}

TEST_F(GridModeMachineTest, TheButtonRestartsTheCountdown) {
  StartInOutage();
  Wait(absl::Seconds(100));
  StepResult step = m_->PressButton(now_);
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].from, GridMode::kOutageStandby);
  EXPECT_EQ(step.transitions[0].to, GridMode::kOutageStandby);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kButtonPressed);
  EXPECT_EQ(m_->status().standby_remaining, absl::Seconds(180));
}

TEST_F(GridModeMachineTest, TheBoxCountdownJumpingUpIsItsButton) {
  StartInOutage();
  world_.box.standby_remaining = absl::Seconds(80);
  WaitAndObserve(absl::Seconds(100));
  EXPECT_EQ(m_->status().standby_remaining, absl::Seconds(80));  // never longer than the box's
  world_.box.standby_remaining = absl::Seconds(180);
  StepResult step = WaitAndObserve(absl::Seconds(1));
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kButtonPressed);
  EXPECT_EQ(m_->status().standby_remaining, absl::Seconds(180));
}

TEST_F(GridModeMachineTest, AReadyVehicleStartsOffGridDischargeByItself) {
  StartInOutage();
  Plug("v2x1", 80);
  StepResult step = WaitAndObserve(absl::Seconds(5));
  EXPECT_THAT(step.transitions, IsEmpty());  // OFF_GRID once the box has transferred
  EXPECT_THAT(step.box_commands, ElementsAre(BoxCommand::kTransferToOffGrid));
  EXPECT_EQ(step.directives.forming_evse, "v2x1");
  EXPECT_EQ(step.directives.forming_discharge_limit_w, 19800);
  EXPECT_EQ(m_->status().transfer_pending, BoxCommand::kTransferToOffGrid);
  EXPECT_THAT(Observe().box_commands, IsEmpty());  // each command once

  world_.box.transfer_switch = TransferSwitch::kOffGrid;
  step = WaitAndObserve(absl::Seconds(1));
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].to, GridMode::kOffGrid);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kDischargeStarted);
  EXPECT_THAT(step.transitions[0].detail, HasSubstr("SOC 80 %"));
  EXPECT_EQ(m_->status().forming_evse, "v2x1");
  EXPECT_EQ(m_->status().forming_soc_pct, 80);
  EXPECT_FALSE(step.directives.grid_supply);
  EXPECT_EQ(step.directives.forming_discharge_limit_w, 19800);
}

TEST_F(GridModeMachineTest, TheVehicleWithTheHighestSocFormsTheIsland) {
  Make(GridModeSettings{}, {V2x("v2x1"), V2x("v2x2", 11000)});
  StartInOutage();
  Plug("v2x1", 60);
  Plug("v2x2", 90);
  StepResult step = Observe();
  EXPECT_EQ(step.directives.forming_evse, "v2x2");
  EXPECT_EQ(step.directives.forming_discharge_limit_w, 11000);  // its own off-grid limit
}

TEST_F(GridModeMachineTest, WithoutTheAutomaticPolicyOnlyAnOperatorStartsOffGrid) {
  GridModeSettings settings;
  settings.auto_off_grid = false;
  Make(settings, {V2x("v2x1")});
  StartInOutage();
  Plug("v2x1", 80);
  EXPECT_THAT(Observe().box_commands, IsEmpty());
  auto step = m_->RequestOffGrid(now_, "", "building on backup");
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_THAT(step->box_commands, ElementsAre(BoxCommand::kTransferToOffGrid));
  world_.box.transfer_switch = TransferSwitch::kOffGrid;
  StepResult done = Observe();
  ASSERT_EQ(done.transitions.size(), 1u);
  EXPECT_EQ(done.transitions[0].reason, TransitionReason::kOperatorRequest);
  EXPECT_THAT(done.transitions[0].detail, HasSubstr("building on backup"));
}

TEST_F(GridModeMachineTest, OffGridRequestListsEveryUnmetCondition) {
  StartInOutage();
  Plug("v2x1", 25);
  Evse("v2x1").blocking_fault = true;
  Evse("v2x1").fault_detail = "CA 104 DC overvoltage";
  world_.box.qf1_closed = false;
  world_.box.qf2_closed.reset();
  Observe();
  auto request = m_->RequestOffGrid(now_, "v2x1", "");
  ASSERT_EQ(request.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(request.status().message(),
              AllOf(HasSubstr("QF1 is not closed"), HasSubstr("QF2 is not closed"),
                    HasSubstr("CA 104 DC overvoltage"),
                    HasSubstr("SOC 25 % at or below its lower limit 30 %")));

  EXPECT_EQ(m_->RequestOffGrid(now_, "wb1", "").status().code(), absl::StatusCode::kNotFound);
  Evse("v2x1").vehicle_connected = false;
  Evse("v2x1").soc_pct.reset();
  Observe();
  EXPECT_THAT(m_->RequestOffGrid(now_, "v2x1", "").status().message(),
              HasSubstr("no vehicle on v2x1"));
}

TEST_F(GridModeMachineTest, NoAutomaticStartForAVehicleAtItsLowerLimitOrOfUnknownSoc) {
  StartInOutage();
  Plug("v2x1", 30);
  EXPECT_THAT(Observe().box_commands, IsEmpty());
  Evse("v2x1").soc_pct.reset();
  EXPECT_THAT(Observe().box_commands, IsEmpty());
  Evse("v2x1").soc_pct = 31;
  EXPECT_THAT(Observe().box_commands, ElementsAre(BoxCommand::kTransferToOffGrid));
}

TEST_F(GridModeMachineTest, ATransferTheBoxDoesNotMakeIsGivenUpAndTriedAgainLater) {
  StartInOutage();
  Plug("v2x1", 80);
  EXPECT_THAT(Observe().box_commands, ElementsAre(BoxCommand::kTransferToOffGrid));
  StepResult step = Wait(absl::Seconds(10));
  EXPECT_FALSE(m_->status().transfer_pending.has_value());
  EXPECT_THAT(m_->status().last_detail, HasSubstr("did not transfer to the island within 10 s"));
  EXPECT_THAT(step.directives.forming_evse, IsEmpty());
  EXPECT_THAT(Wait(absl::Seconds(9)).box_commands, IsEmpty());
  EXPECT_THAT(Wait(absl::Seconds(1)).box_commands, ElementsAre(BoxCommand::kTransferToOffGrid));
}

TEST_F(GridModeMachineTest, APendingStartIsDroppedWhenItsVehicleIsNoLongerReady) {
  StartInOutage();
  Plug("v2x1", 80);
  Observe();
  Evse("v2x1").vehicle_connected = false;
  StepResult step = Observe();
  EXPECT_FALSE(m_->status().transfer_pending.has_value());
  EXPECT_THAT(step.directives.forming_evse, IsEmpty());
  EXPECT_THAT(m_->status().last_detail, HasSubstr("no vehicle on v2x1"));
}

TEST_F(GridModeMachineTest, TheGridBackDuringTheCountdownIsOnGridAgain) {
  StartInOutage();
  world_.box.grid_present = true;
  world_.box.transfer_switch = TransferSwitch::kOnGrid;
  StepResult step = WaitAndObserve(absl::Seconds(30));
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].to, GridMode::kOnGrid);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kGridRestored);
  EXPECT_TRUE(step.directives.grid_supply);
}

// --- OUTAGE_SLEEP ----------------------------------------------------------------------------

TEST_F(GridModeMachineTest, TheButtonWakesASleepingSystem) {
  StartInOutage();
  Wait(absl::Seconds(180));
  ASSERT_EQ(mode(), GridMode::kOutageSleep);
  StepResult step = m_->PressButton(now_);
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].to, GridMode::kOutageStandby);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kButtonPressed);
  EXPECT_EQ(m_->status().standby_remaining, absl::Seconds(180));
}

TEST_F(GridModeMachineTest, TheBoxAnsweringAgainAfterSleepingIsAWakeUp) {
  StartInOutage();
  Wait(absl::Seconds(180));
  EXPECT_THAT(Observe().transitions, IsEmpty());  // still answering just after: stays asleep
  world_.box.reachable = false;
  WaitAndObserve(absl::Seconds(5));
  EXPECT_EQ(mode(), GridMode::kOutageSleep);
  world_.box.reachable = true;
  world_.box.standby_remaining = absl::Seconds(180);
  StepResult step = WaitAndObserve(absl::Seconds(600));
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kButtonPressed);
  EXPECT_EQ(mode(), GridMode::kOutageStandby);
}

TEST_F(GridModeMachineTest, ACountdownRunningAgainAtASleepingBoxIsItsButton) {
  StartInOutage();
  world_.box.standby_remaining = absl::Seconds(1);
  WaitAndObserve(absl::Seconds(179));
  Wait(absl::Seconds(1));
  ASSERT_EQ(mode(), GridMode::kOutageSleep);
  world_.box.standby_remaining.reset();  // its countdown ended; still answering
  EXPECT_THAT(WaitAndObserve(absl::Seconds(1)).transitions, IsEmpty());
  world_.box.standby_remaining = absl::Seconds(180);  // woken before it was seen asleep
  StepResult step = WaitAndObserve(absl::Seconds(1));
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kButtonPressed);
  EXPECT_EQ(mode(), GridMode::kOutageStandby);
  EXPECT_EQ(m_->status().standby_remaining, absl::Seconds(180));
}

TEST_F(GridModeMachineTest, OffGridFromSleepNeedsTheBoxAwake) {
  GridModeSettings settings;
  settings.standby_countdown = absl::Seconds(10);
  Make(settings, {V2x("v2x1")});
  StartInOutage();
  Wait(absl::Seconds(10));
  ASSERT_EQ(mode(), GridMode::kOutageSleep);
  world_.box.reachable = false;
  Plug("v2x1", 80);
  Observe();
  EXPECT_THAT(m_->RequestOffGrid(now_, "v2x1", "").status().message(),
              HasSubstr("press its backup battery button"));
}

// --- OFF_GRID --------------------------------------------------------------------------------

TEST_F(GridModeMachineTest, TheLowerSocLimitStopsDischargeAndTheSystemSleeps) {
  StartOffGrid(31);
  Evse("v2x1").soc_pct = 30;
  StepResult step = WaitAndObserve(absl::Seconds(60));
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].to, GridMode::kOutageSleep);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kSocLowerLimit);
  EXPECT_THAT(step.transitions[0].detail, HasSubstr("v2x1: SOC 30 % reached its lower limit 30 %"));
  EXPECT_THAT(step.directives.forming_evse, IsEmpty());
  EXPECT_EQ(step.directives.forming_discharge_limit_w, 0);
}

TEST_F(GridModeMachineTest, AnUnknownSocStopsDischarge) {
  StartOffGrid();
  Evse("v2x1").soc_pct.reset();
  StepResult step = Observe();
  EXPECT_EQ(mode(), GridMode::kOutageSleep);
  EXPECT_THAT(step.transitions[0].detail, HasSubstr("SOC unknown"));
}

TEST_F(GridModeMachineTest, AnUnpluggedOrUnreachableFormingVehicleIsStandbyAgain) {
  StartOffGrid();
  Evse("v2x1").vehicle_connected = false;
  StepResult step = WaitAndObserve(absl::Seconds(30));
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].to, GridMode::kOutageStandby);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kVehicleStopped);
  EXPECT_EQ(m_->status().standby_remaining, absl::Seconds(180));

  SetUp();
  StartOffGrid();
  Evse("v2x1").reachable = false;
  Observe();
  EXPECT_EQ(m_->status().last_reason, TransitionReason::kVehicleStopped);
  EXPECT_THAT(m_->status().last_detail, HasSubstr("v2x1 does not answer"));
}

TEST_F(GridModeMachineTest, AnotherReadyVehicleTakesOverTheIsland) {
  Make(GridModeSettings{}, {V2x("v2x1"), V2x("v2x2")});
  StartOffGrid();
  Plug("v2x2", 50);
  Evse("v2x1").vehicle_connected = false;
  StepResult step = Observe();
  EXPECT_EQ(step.directives.forming_evse, "v2x2");
  EXPECT_EQ(mode(), GridMode::kOffGrid);  // the switch is still on the island
  EXPECT_EQ(m_->status().forming_evse, "v2x2");
}

TEST_F(GridModeMachineTest, AFaultEndsTheIslandAndSuppressesAutomaticRestarts) {
  StartOffGrid();
  world_.box.qf2_closed = false;
  StepResult step = Observe();
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].to, GridMode::kOutageStandby);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kFault);
  EXPECT_THAT(step.transitions[0].detail, HasSubstr("QF2"));
  EXPECT_TRUE(m_->status().auto_off_grid_suppressed);
  EXPECT_THAT(step.directives.forming_evse, IsEmpty());

  world_.box.qf2_closed = true;
  world_.box.transfer_switch = TransferSwitch::kOpen;
  EXPECT_THAT(WaitAndObserve(absl::Seconds(20)).box_commands, IsEmpty());
  m_->PressButton(now_);
  EXPECT_FALSE(m_->status().auto_off_grid_suppressed);
  EXPECT_EQ(m_->status().transfer_pending, BoxCommand::kTransferToOffGrid);
}

TEST_F(GridModeMachineTest, ABlockingFaultOfTheFormingEvseEndsTheIsland) {
  StartOffGrid();
  Evse("v2x1").blocking_fault = true;
  Evse("v2x1").fault_detail = "CA 301 inverter fault";
  Observe();
  EXPECT_EQ(m_->status().last_reason, TransitionReason::kFault);
  EXPECT_THAT(m_->status().last_detail, HasSubstr("CA 301 inverter fault"));
}

TEST_F(GridModeMachineTest, OverloadRaisesTheAlarmAtOnceAndTripsOnlyWhenItLasts) {
  StartOffGrid();
  world_.box.backup_load_power_w = 21000;
  Observe();
  EXPECT_TRUE(m_->status().overload_alarm);
  EXPECT_EQ(mode(), GridMode::kOffGrid);
  WaitAndObserve(absl::Seconds(1));
  EXPECT_EQ(mode(), GridMode::kOffGrid);
  world_.box.backup_load_power_w = 15000;  // a motor start, then back under
  WaitAndObserve(absl::Milliseconds(500));
  EXPECT_FALSE(m_->status().overload_alarm);
  world_.box.backup_load_power_w = 21000;  // the overload time counts from here
  WaitAndObserve(absl::Seconds(1));
  WaitAndObserve(absl::Seconds(1));
  EXPECT_EQ(mode(), GridMode::kOffGrid);
  StepResult step = WaitAndObserve(absl::Seconds(1));
  EXPECT_EQ(mode(), GridMode::kOutageStandby);
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kFault);
  EXPECT_THAT(step.transitions[0].detail, HasSubstr("21.0 kW above the 19.8 kW off-grid limit"));
  EXPECT_TRUE(m_->status().auto_off_grid_suppressed);
}

TEST_F(GridModeMachineTest, TheOffGridLimitIsTheEvsesOwnAndNeverAbove19_8kW) {
  Make(GridModeSettings{}, {V2x("v2x1", 11000)});
  StartOffGrid();
  EXPECT_EQ(Observe().directives.forming_discharge_limit_w, 11000);
  world_.box.backup_load_power_w = 12000;  // above this EVSE's limit: overload
  Observe();
  EXPECT_TRUE(m_->status().overload_alarm);

  auto too_big = GridModeMachine::Create(GridModeSettings{}, {V2x("v2x1", 22000)});
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_big.status().message(), HasSubstr("22000 W outside (0, 19800]"));
}

TEST_F(GridModeMachineTest, AnIslandFormedAtTheChargerByHandIsFollowed) {
  StartInOutage();
  Plug("v2x1", 20);  // below its limit: evgate would not have started it
  world_.box.transfer_switch = TransferSwitch::kOffGrid;
  StepResult step = Observe();
  ASSERT_FALSE(step.transitions.empty());
  EXPECT_EQ(step.transitions[0].to, GridMode::kOffGrid);
  EXPECT_THAT(step.transitions[0].detail, HasSubstr("without a command from evgate"));
  // ... and stopped at once for its SOC.
  EXPECT_EQ(mode(), GridMode::kOutageSleep);
  EXPECT_EQ(step.directives.forming_discharge_limit_w, 0);
}

TEST_F(GridModeMachineTest, TheBoxOpeningTheIslandByItselfIsAFault) {
  StartOffGrid();
  world_.box.transfer_switch = TransferSwitch::kOpen;
  Observe();
  EXPECT_EQ(m_->status().last_reason, TransitionReason::kFault);
  EXPECT_THAT(m_->status().last_detail, HasSubstr("opened the island"));
}

// --- RESYNC ----------------------------------------------------------------------------------

TEST_F(GridModeMachineTest, TheGridBackIsResyncThenTransferAfterAStableGrid) {
  StartOffGrid();
  world_.box.grid_present = true;  // the switch stays on the island until told
  StepResult step = WaitAndObserve(absl::Seconds(1));
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].to, GridMode::kResync);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kGridRestored);
  EXPECT_EQ(step.directives.forming_evse, "v2x1");  // the loads stay supplied meanwhile
  EXPECT_EQ(step.directives.forming_discharge_limit_w, 19800);
  EXPECT_FALSE(step.directives.grid_supply);

  EXPECT_THAT(WaitAndObserve(absl::Seconds(29)).box_commands, IsEmpty());
  EXPECT_THAT(WaitAndObserve(absl::Seconds(1)).box_commands,
              ElementsAre(BoxCommand::kTransferToOnGrid));
  world_.box.transfer_switch = TransferSwitch::kOnGrid;
  step = WaitAndObserve(absl::Seconds(1));
  ASSERT_EQ(step.transitions.size(), 1u);
  EXPECT_EQ(step.transitions[0].to, GridMode::kOnGrid);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kResyncComplete);
  EXPECT_TRUE(step.directives.grid_supply);
  EXPECT_THAT(step.directives.forming_evse, IsEmpty());
}

TEST_F(GridModeMachineTest, TheGridGoingAgainDuringResyncIsOffGridAgain) {
  StartOffGrid();
  world_.box.grid_present = true;
  WaitAndObserve(absl::Seconds(20));
  world_.box.grid_present = false;
  StepResult step = WaitAndObserve(absl::Seconds(1));
  EXPECT_EQ(mode(), GridMode::kOffGrid);
  EXPECT_EQ(step.transitions[0].reason, TransitionReason::kGridLost);
  EXPECT_EQ(step.directives.forming_evse, "v2x1");
  // The stable time starts again with the next return.
  world_.box.grid_present = true;
  WaitAndObserve(absl::Seconds(1));
  EXPECT_THAT(WaitAndObserve(absl::Seconds(20)).box_commands, IsEmpty());
}

TEST_F(GridModeMachineTest, AVehicleThatCannotGoOnDuringResyncTransfersBackAtOnce) {
  StartOffGrid();
  world_.box.grid_present = true;
  WaitAndObserve(absl::Seconds(1));
  Evse("v2x1").soc_pct = 30;
  StepResult step = WaitAndObserve(absl::Seconds(1));
  EXPECT_EQ(mode(), GridMode::kResync);
  EXPECT_THAT(step.box_commands, ElementsAre(BoxCommand::kTransferToOnGrid));
  EXPECT_EQ(step.directives.forming_evse, "v2x1");
  EXPECT_EQ(step.directives.forming_discharge_limit_w, 0);
}

TEST_F(GridModeMachineTest, AnOperatorEndsTheResyncWaitAndABoxThatDoesNotTransferIsAskedAgain) {
  StartOffGrid();
  world_.box.grid_present = true;
  WaitAndObserve(absl::Seconds(1));
  auto step = m_->RequestOnGrid(now_, "grid confirmed by the utility");
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_THAT(step->box_commands, ElementsAre(BoxCommand::kTransferToOnGrid));
  EXPECT_THAT(Wait(absl::Seconds(10)).box_commands, ElementsAre(BoxCommand::kTransferToOnGrid));
  EXPECT_THAT(m_->status().last_detail, HasSubstr("did not transfer back within 10 s"));
}

TEST_F(GridModeMachineTest, OnGridRequestNeedsAnIslandAndAGrid) {
  Observe();
  EXPECT_THAT(m_->RequestOnGrid(now_, "").status().message(), HasSubstr("not islanded"));
  StartOffGrid();
  auto request = m_->RequestOnGrid(now_, "");
  EXPECT_EQ(request.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(request.status().message(), HasSubstr("no grid to return to"));
}

TEST_F(GridModeMachineTest, TheBoxTransferringBackByItselfIsOnGrid) {
  StartOffGrid();
  world_.box.grid_present = true;
  world_.box.transfer_switch = TransferSwitch::kOnGrid;
  Observe();
  EXPECT_EQ(mode(), GridMode::kOnGrid);
  EXPECT_EQ(m_->status().last_reason, TransitionReason::kGridRestored);
}

TEST_F(GridModeMachineTest, TheGridBackWithTheSwitchLeftOnADeadIslandTransfersBack) {
  StartOffGrid(31);
  Evse("v2x1").soc_pct = 30;
  Observe();
  ASSERT_EQ(mode(), GridMode::kOutageSleep);  // the switch still says island
  world_.box.grid_present = true;
  StepResult step = WaitAndObserve(absl::Seconds(5));
  EXPECT_THAT(step.box_commands, ElementsAre(BoxCommand::kTransferToOnGrid));
  world_.box.transfer_switch = TransferSwitch::kOnGrid;
  Observe();
  EXPECT_EQ(mode(), GridMode::kOnGrid);
}

// --- Time ------------------------------------------------------------------------------------

TEST_F(GridModeMachineTest, AClockSteppingBackNeitherExtendsNorRestartsTheCountdown) {
  StartInOutage();
  Wait(absl::Seconds(100));
  now_ -= absl::Hours(1);
  m_->Tick(now_);
  EXPECT_EQ(m_->status().standby_remaining, absl::Seconds(80));
  now_ += absl::Hours(1);  // back where it was: still no time passed
  m_->Tick(now_);
  EXPECT_EQ(m_->status().standby_remaining, absl::Seconds(80));
  Wait(absl::Seconds(80));
  EXPECT_EQ(mode(), GridMode::kOutageSleep);
}

// --- Settings --------------------------------------------------------------------------------

TEST_F(GridModeMachineTest, BadSettingsAreAllListed) {
  GridModeSettings settings;
  settings.standby_countdown = absl::Minutes(16);
  settings.resync_stable_time = absl::ZeroDuration();
  V2xEvseSettings bad = V2x("v2x1");
  bad.soc_min_pct = 80;
  bad.soc_max_pct = 70;
  auto machine = GridModeMachine::Create(settings, {bad, V2x("v2x1")});
  ASSERT_EQ(machine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(machine.status().message(),
              AllOf(HasSubstr("outside 1s..15m"), HasSubstr("resync stable time"),
                    HasSubstr("listed twice"), HasSubstr("SOC limits 80..70")));
  EXPECT_THAT(GridModeMachine::Create(GridModeSettings{}, {}).status().message(),
              HasSubstr("no bidirectional EVSE"));
}

}  // namespace
}  // namespace evgate::grid
