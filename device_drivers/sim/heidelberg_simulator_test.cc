#include "device_drivers/sim/heidelberg_simulator.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::sim {
namespace {

using ::testing::ElementsAre;

class HeidelbergSimulatorTest : public ::testing::Test {
 protected:
  uint16_t Input(uint16_t address) {
    return sim_.Read(RegisterTable::kInput, address, 1).values.at(0);
  }
  ModbusException SetMaxCurrent(uint16_t deci_amps) {
    const uint16_t v[] = {deci_amps};
    return sim_.Write(261, v);
  }

  FakeClock clock_;
  HeidelbergSimulator sim_{clock_};
};

TEST_F(HeidelbergSimulatorTest, EvGoesAToBToCAndStateCodesSayWhetherChargingIsAllowed) {
  EXPECT_EQ(Input(5), 3);  // A2: no vehicle, charging allowed (16 A default)
  sim_.PlugIn(16, 3, /*charge=*/false);
  EXPECT_EQ(Input(5), 5);  // B2
  sim_.SetEvCharging(true);
  EXPECT_EQ(Input(5), 7);  // C2
  ASSERT_EQ(SetMaxCurrent(0), ModbusException::kNone);
  EXPECT_EQ(Input(5), 6);  // C1: the box does not allow charging
  sim_.Unplug();
  EXPECT_EQ(Input(5), 2);  // A1
  sim_.InjectFault(HeidelbergSimulator::Fault::kStateF);
  EXPECT_EQ(Input(5), 10);
}

TEST_F(HeidelbergSimulatorTest, EvDrawsMinOfLimitAndItsMaximumAfterTheLag) {
  ASSERT_EQ(SetMaxCurrent(100), ModbusException::kNone);  // 10 A
  sim_.PlugIn(16);
  EXPECT_THAT(sim_.PhaseCurrents(), ElementsAre(0, 0, 0));
  clock_.Advance(absl::Milliseconds(1999));
  EXPECT_THAT(sim_.PhaseCurrents(), ElementsAre(0, 0, 0));
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_THAT(sim_.PhaseCurrents(), ElementsAre(10, 10, 10));
  EXPECT_EQ(Input(6), 100);  // 0.1 A
  EXPECT_EQ(Input(14), 3 * 230 * 10);
  sim_.SetEvMaxCurrent(8);  // the EV's own maximum is lower
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(sim_.PhaseCurrents(), ElementsAre(8, 8, 8));
  // Below 6 A (60) means 0.
  ASSERT_EQ(SetMaxCurrent(59), ModbusException::kNone);
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(sim_.PhaseCurrents(), ElementsAre(0, 0, 0));
  EXPECT_EQ(SetMaxCurrent(161), ModbusException::kIllegalDataValue);  // at most 160
}

TEST_F(HeidelbergSimulatorTest, SinglePhaseEvDrawsOnL1Only) {
  sim_.PlugIn(16, /*ev_phases=*/1);
  clock_.Advance(absl::Seconds(3));
  EXPECT_THAT(sim_.PhaseCurrents(), ElementsAre(16, 0, 0));
  EXPECT_EQ(Input(7), 0);
}

TEST_F(HeidelbergSimulatorTest, CountsEnergyExactlyOverTheLaggedSteps) {
  const uint16_t no_watchdog[] = {0};  // nobody polls during this hour
  ASSERT_EQ(sim_.Write(257, no_watchdog), ModbusException::kNone);
  ASSERT_EQ(SetMaxCurrent(160), ModbusException::kNone);
  sim_.PlugIn(16);
  clock_.Advance(absl::Seconds(2));  // lag: nothing drawn yet
  clock_.Advance(absl::Hours(1));    // 3 x 230 V x 16 A for one hour
  EXPECT_NEAR(sim_.energy_wh(), 11040, 1e-6);
  const std::vector<uint16_t> e = sim_.Read(RegisterTable::kInput, 17, 2).values;
  EXPECT_EQ((uint32_t{e[0]} << 16) | e[1], 11040u);
}

TEST_F(HeidelbergSimulatorTest, WatchdogFallsBackToFailsafeWhenTheMasterGoesQuiet) {
  const uint16_t settings[] = {5000, 4, 1};  // 257 watchdog 5 s, 258 standby off, 259 unlocked
  ASSERT_EQ(sim_.Write(257, settings), ModbusException::kNone);
  const uint16_t failsafe[] = {60};
  ASSERT_EQ(sim_.Write(262, failsafe), ModbusException::kNone);
  ASSERT_EQ(SetMaxCurrent(160), ModbusException::kNone);
  sim_.PlugIn(32);
  // Polled every second: the watchdog never fires.
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(absl::Seconds(1));
    Input(5);
  }
  EXPECT_FALSE(sim_.in_failsafe());
  EXPECT_THAT(sim_.PhaseCurrents(), ElementsAre(16, 16, 16));
  // The gateway dies: 5 s later the box runs at its failsafe current.
  clock_.Advance(absl::Milliseconds(4999));
  EXPECT_FALSE(sim_.in_failsafe());
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(sim_.in_failsafe());
  EXPECT_EQ(sim_.current_limit_a(), 6);
  EXPECT_EQ(sim_.holding(261), 60);  // reads back what is in force
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(sim_.PhaseCurrents(), ElementsAre(6, 6, 6));
  // A new limit ends the failsafe.
  ASSERT_EQ(SetMaxCurrent(120), ModbusException::kNone);
  EXPECT_FALSE(sim_.in_failsafe());
  EXPECT_EQ(sim_.current_limit_a(), 12);
}

TEST_F(HeidelbergSimulatorTest, StandbyStopsAnsweringUnlessDisabled) {
  clock_.Advance(absl::Minutes(10));
  EXPECT_FALSE(sim_.Responding());  // asleep: no vehicle for 10 min
  sim_.PlugIn(16);
  EXPECT_TRUE(sim_.Responding());
  sim_.Unplug();
  const uint16_t disabled[] = {4};
  ASSERT_EQ(sim_.Write(258, disabled), ModbusException::kNone);
  clock_.Advance(absl::Hours(1));
  EXPECT_TRUE(sim_.Responding());
}

TEST_F(HeidelbergSimulatorTest, RemoteLockAndPowerCycle) {
  const uint16_t locked[] = {0};
  ASSERT_EQ(sim_.Write(259, locked), ModbusException::kNone);
  sim_.PlugIn(16);
  clock_.Advance(absl::Seconds(3));
  EXPECT_THAT(sim_.PhaseCurrents(), ElementsAre(0, 0, 0));
  EXPECT_EQ(Input(5), 6);  // C1
  const uint16_t watchdog[] = {1000};
  ASSERT_EQ(sim_.Write(257, watchdog), ModbusException::kNone);
  sim_.PowerCycle();
  EXPECT_THAT(sim_.Read(RegisterTable::kHolding, 257, 6).values,
              ElementsAre(15000, 0, 1, 0, 160, 0));  // defaults again
  const uint16_t bad_standby[] = {3};
  EXPECT_EQ(sim_.Write(258, bad_standby), ModbusException::kIllegalDataValue);
  EXPECT_EQ(sim_.Write(260, locked), ModbusException::kIllegalDataAddress);
  EXPECT_EQ(sim_.Read(RegisterTable::kInput, 19, 2).exception,
            ModbusException::kIllegalDataAddress);
}

}  // namespace
}  // namespace evgate::sim
