#include "device_drivers/sim/sdm630_simulator.h"

#include <cstring>
#include <limits>
#include <memory>
#include <thread>

#include "device_drivers/modbus/builtin_profiles.h"
#include "device_drivers/modbus/bus_owner.h"
#include "device_drivers/modbus/libmodbus_transport.h"
#include "device_drivers/modbus/register_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::sim {
namespace {

using modbus::BusOptions;
using modbus::DeviceStatus;
using modbus::ModbusBusOwner;
using modbus::PolledDevice;
using modbus::Quantity;
using ::testing::HasSubstr;

float FloatAt(const std::vector<uint16_t>& regs, int address) {
  const uint32_t bits = (uint32_t{regs[address]} << 16) | regs[address + 1];
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

TEST(Sdm630Simulator, PowerFollowsPhasesAndEnergyCountsOverTime) {
  FakeClock clock;
  Sdm630Simulator sim(clock);
  for (int p = 0; p < 3; ++p) sim.SetPhase(p, {230, 10, 1});
  clock.Advance(absl::Hours(1));
  std::vector<uint16_t> regs = sim.InputRegisters();
  EXPECT_EQ(FloatAt(regs, 0x0034), 6900);
  EXPECT_EQ(FloatAt(regs, 0x000C), 2300);
  EXPECT_EQ(FloatAt(regs, 0x0048), 6.9f);  // kWh after one hour
  // Exporting (PF -1) for half an hour counts export, not import.
  for (int p = 0; p < 3; ++p) sim.SetPhase(p, {230, 10, -1});
  clock.Advance(absl::Minutes(30));
  regs = sim.InputRegisters();
  EXPECT_EQ(FloatAt(regs, 0x0034), -6900);
  EXPECT_EQ(FloatAt(regs, 0x0048), 6.9f);
  EXPECT_EQ(FloatAt(regs, 0x004A), 3.45f);
  EXPECT_EQ(FloatAt(regs, 0x0156), 10.35f);
}

class SimOverTcp : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int p = 0; p < 3; ++p) sim_.SetPhase(p, {230, 8 + 2.0 * p, 1});
    ASSERT_TRUE(sim_.Listen("127.0.0.1", 0).ok());
    auto transport =
        modbus::LibmodbusTransport::Tcp({"127.0.0.1", sim_.port(), absl::Milliseconds(100)});
    ASSERT_TRUE(transport.ok());
    PolledDevice meter;
    meter.id = "grid-meter";
    meter.unit_id = 1;
    meter.map = *modbus::BuiltinRegisterMap("eastron_sdm630");
    meter.poll_period = absl::Milliseconds(100);
    meter.slow_poll_period = absl::Milliseconds(500);
    meter.stale_after_missed_polls = 3;
    BusOptions options;
    options.bus_id = "tcp-1";
    options.retries = 1;
    owner_ = std::make_unique<ModbusBusOwner>(options, std::vector<PolledDevice>{meter},
                                              *std::move(transport), SystemClock::Get());
    owner_->Start();
  }

  // Waits up to `limit` for `done`; returns how long it took (or limit).
  template <typename F>
  absl::Duration WaitFor(absl::Duration limit, F done) {
    const absl::Time start = absl::Now();
    while (absl::Now() - start < limit && !done(*owner_->Device("grid-meter"))) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return absl::Now() - start;
  }

  FakeClock sim_clock_;
  Sdm630Simulator sim_{sim_clock_};
  std::unique_ptr<ModbusBusOwner> owner_;
};

TEST_F(SimOverTcp, BusOwnerReadsTheSimulatedPhysics) {
  WaitFor(absl::Seconds(5), [](const DeviceStatus& s) { return !s.stale; });
  DeviceStatus s = *owner_->Device("grid-meter");
  ASSERT_FALSE(s.stale) << s.last_error;
  EXPECT_EQ(s.values.Get(Quantity::kCurrentL1), 8);
  EXPECT_EQ(s.values.Get(Quantity::kCurrentL3), 12);
  EXPECT_EQ(s.values.Get(Quantity::kTotalPower), 230 * 30);
  sim_.SetPhase(0, {230, 20, 1});
  WaitFor(absl::Seconds(5),
          [](const DeviceStatus& s) { return s.values.Get(Quantity::kCurrentL1) == 20; });
  EXPECT_EQ(owner_->Device("grid-meter")->values.Get(Quantity::kCurrentL1), 20);
}

TEST_F(SimOverTcp, StoppedMeterTurnsStaleWithinItsTimeout) {
  WaitFor(absl::Seconds(5), [](const DeviceStatus& s) { return !s.stale; });
  ASSERT_FALSE(owner_->Device("grid-meter")->stale);
  sim_.SetResponding(false);
  const absl::Duration took =
      WaitFor(absl::Seconds(5), [](const DeviceStatus& s) { return s.stale; });
  DeviceStatus s = *owner_->Device("grid-meter");
  ASSERT_TRUE(s.stale);
  // Stale timeout 3 x 100 ms; noticed within one 100 ms request timeout of
  // it, plus scheduling slack on a loaded machine.
  EXPECT_LE(took, absl::Milliseconds(300 + 100 + 150));
  EXPECT_GT(s.counters.timeouts_total, 0u);
  EXPECT_THAT(s.last_error, HasSubstr("modbus tcp 127.0.0.1:"));
  EXPECT_THAT(s.last_error, HasSubstr("unit 1 input 0x0000+72: timeout after 100ms"));

  sim_.SetResponding(true);
  WaitFor(absl::Seconds(5), [](const DeviceStatus& s) { return !s.stale; });
  EXPECT_FALSE(owner_->Device("grid-meter")->stale);
}

TEST_F(SimOverTcp, MeterGoneFromTheNetworkTurnsStaleToo) {
  WaitFor(absl::Seconds(5), [](const DeviceStatus& s) { return !s.stale; });
  sim_.Stop();  // connection refused from now on
  const absl::Duration took =
      WaitFor(absl::Seconds(5), [](const DeviceStatus& s) { return s.stale; });
  EXPECT_TRUE(owner_->Device("grid-meter")->stale);
  EXPECT_LE(took, absl::Milliseconds(300 + 100 + 150));
  EXPECT_THAT(owner_->Device("grid-meter")->last_error, HasSubstr("cannot connect"));
}

TEST_F(SimOverTcp, NanFromTheMeterIsRejectedAndCounted) {
  WaitFor(absl::Seconds(5), [](const DeviceStatus& s) { return !s.stale; });
  sim_.ForceFloat(0x0008, std::numeric_limits<float>::quiet_NaN());
  WaitFor(absl::Seconds(5),
          [](const DeviceStatus& s) { return s.counters.rejected_values_total > 0; });
  DeviceStatus s = *owner_->Device("grid-meter");
  EXPECT_GT(s.counters.rejected_values_total, 0u);
  EXPECT_THAT(s.last_error, HasSubstr("device grid-meter input 0x0008 current_l2: NaN rejected"));
  EXPECT_EQ(s.values.Get(Quantity::kCurrentL2), 10);  // the last valid value, never NaN
}

}  // namespace
}  // namespace evgate::sim
