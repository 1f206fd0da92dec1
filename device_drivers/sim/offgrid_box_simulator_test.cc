#include "device_drivers/sim/offgrid_box_simulator.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::sim {
namespace {

using ::testing::ElementsAre;
using Switch = OffGridBoxSimulator::Switch;

class OffGridBoxSimulatorTest : public ::testing::Test {
 protected:
  std::vector<uint16_t> Input() { return box_.Read(RegisterTable::kInput, 0, 0x1A).values; }
  ModbusException Command(uint16_t command) {
    const uint16_t v[] = {command};
    return box_.Write(0x0100, v);
  }

  FakeClock clock_;
  OffGridBoxSimulator box_{clock_};
};

TEST_F(OffGridBoxSimulatorTest, OnGridMeasuresTheGridAndMeter1) {
  box_.SetGridVoltage(231.5, 49.98);
  box_.SetMeter1Currents({10, 5, -2});
  clock_.Advance(absl::Hours(1));
  std::vector<uint16_t> r = Input();
  EXPECT_EQ(r[0], 2315);  // 0.1 V
  EXPECT_EQ(r[3], 4998);  // 0.01 Hz
  EXPECT_EQ(r[4], 1);     // grid present
  EXPECT_EQ(r[5], 1);     // on-grid
  EXPECT_EQ(r[6], 1);     // QF1 closed
  EXPECT_EQ(r[8], 2640);  // backup battery 26.4 V, charged
  EXPECT_EQ(r[9], 0);     // not powering the box
  EXPECT_EQ(r[0x10], 1000);
  EXPECT_EQ(static_cast<int16_t>(r[0x12]), -200);
  EXPECT_EQ((r[0x14] << 16) | r[0x15], 3010);  // 231.5 V x 13 A = 3009.5 W
  EXPECT_NEAR(box_.meter_1_import_wh(), 231.5 * 13, 1e-6);
  EXPECT_EQ((r[0x16] << 16) | r[0x17], 3009);  // whole Wh
}

TEST_F(OffGridBoxSimulatorTest, GridLossOpensTheSwitchAndStartsTheStandbyCountdown) {
  box_.SetGridPresent(false);
  EXPECT_EQ(box_.transfer_switch(), Switch::kOpen);
  std::vector<uint16_t> r = Input();
  EXPECT_EQ(r[0], 0);
  EXPECT_EQ(r[4], 0);
  EXPECT_EQ(r[5], 3);
  EXPECT_EQ(r[9], 1);       // the backup battery powers the box
  EXPECT_EQ(r[0x0B], 180);  // default countdown, s
  clock_.Advance(absl::Seconds(100));
  EXPECT_EQ(Input()[0x0B], 80);
  // The V2X charger is ready: transfer to off-grid, P-N pull-in enabled.
  const uint16_t pn[] = {1};
  ASSERT_EQ(box_.Write(0x0101, pn), ModbusException::kNone);
  ASSERT_EQ(Command(OffGridBoxSimulator::kTransferToOffGrid), ModbusException::kNone);
  EXPECT_EQ(box_.transfer_switch(), Switch::kOffGrid);
  EXPECT_TRUE(box_.pn_pull_in_active());
  EXPECT_EQ(Input()[0x0A], 1);
  EXPECT_EQ(Input()[0x0B], 0);  // countdown stopped
  // Back on-grid is refused while there is no grid...
  EXPECT_EQ(Command(OffGridBoxSimulator::kTransferToOnGrid), ModbusException::kServerDeviceFailure);
  // ...and the box stays off-grid when the grid returns, until told.
  box_.SetGridPresent(true);
  EXPECT_EQ(box_.transfer_switch(), Switch::kOffGrid);
  ASSERT_EQ(Command(OffGridBoxSimulator::kTransferToOnGrid), ModbusException::kNone);
  EXPECT_EQ(box_.transfer_switch(), Switch::kOnGrid);
  EXPECT_FALSE(box_.pn_pull_in_active());
}

TEST_F(OffGridBoxSimulatorTest, CountdownRunsOutAndTheBoxShutsDownUntilTheGridReturns) {
  const uint16_t countdown[] = {30};
  ASSERT_EQ(box_.Write(0x0102, countdown), ModbusException::kNone);
  box_.SetGridPresent(false);
  clock_.Advance(absl::Seconds(29));
  EXPECT_TRUE(box_.Responding());
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(box_.shut_down());
  EXPECT_FALSE(box_.Responding());
  box_.PressBackupBatteryButton();  // awake again, a new countdown
  EXPECT_TRUE(box_.Responding());
  EXPECT_EQ(box_.standby_remaining(), absl::Seconds(30));
  clock_.Advance(absl::Seconds(30));
  EXPECT_FALSE(box_.Responding());
  box_.SetGridPresent(true);
  EXPECT_TRUE(box_.Responding());
  EXPECT_EQ(box_.transfer_switch(), Switch::kOnGrid);  // from open: back by itself
}

TEST_F(OffGridBoxSimulatorTest, Qf1OpenRefusesTransferAndBadValuesAreRefused) {
  box_.SetQf1Closed(false);
  EXPECT_EQ(Input()[6], 0);
  EXPECT_EQ(Command(OffGridBoxSimulator::kTransferToOffGrid),
            ModbusException::kServerDeviceFailure);
  EXPECT_EQ(Command(7), ModbusException::kIllegalDataValue);
  const uint16_t too_long[] = {901};  // the ICE-22 allows at most 15 minutes
  EXPECT_EQ(box_.Write(0x0102, too_long), ModbusException::kIllegalDataValue);
  EXPECT_THAT(box_.Read(RegisterTable::kHolding, 0x0100, 3).values, ElementsAre(0, 0, 180));
  EXPECT_EQ(box_.Read(RegisterTable::kHolding, 0x0103, 1).exception,
            ModbusException::kIllegalDataAddress);
}

}  // namespace
}  // namespace evgate::sim
