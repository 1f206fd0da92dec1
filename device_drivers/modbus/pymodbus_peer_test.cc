// Our transport and bus owner against a meter served by a third-party Modbus
// stack: python3-pymodbus 3.0 (Debian), run by /usr/bin/python3.
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "device_drivers/modbus/builtin_profiles.h"
#include "device_drivers/modbus/bus_owner.h"
#include "device_drivers/modbus/libmodbus_transport.h"
#include "device_drivers/modbus/testdata/peer_process.h"
#include "gtest/gtest.h"

namespace evgate::modbus {
namespace {

int WaitForPortFile(const std::string& path, const testing::PeerProcess& peer) {
  for (int i = 0; i < 200 && peer.running(); ++i) {  // up to 10 s for Python to start
    std::ifstream in(path);
    int port = 0;
    if (in >> port && port > 0) return port;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

TEST(PymodbusPeer, BusOwnerReadsSdm630ServedByPymodbus) {
  const std::string port_file = std::string(getenv("TEST_TMPDIR")) + "/pymodbus.port";
  testing::PeerProcess peer({"/usr/bin/python3",
                             "device_drivers/modbus/testdata/pymodbus_sdm630_server.py",
                             "--port-file", port_file, "--unit", "7"});
  ASSERT_TRUE(peer.started());
  const int port = WaitForPortFile(port_file, peer);
  ASSERT_GT(port, 0) << "pymodbus server did not start";

  TcpOptions tcp{"127.0.0.1", port, absl::Milliseconds(500)};
  auto transport = LibmodbusTransport::Tcp(tcp);
  ASSERT_TRUE(transport.ok()) << transport.status();
  PolledDevice meter;
  meter.id = "grid-meter";
  meter.unit_id = 7;
  meter.map = *BuiltinRegisterMap("eastron_sdm630");
  meter.poll_period = absl::Milliseconds(100);
  meter.slow_poll_period = absl::Milliseconds(200);
  BusOptions options;
  options.bus_id = "tcp-1";
  ModbusBusOwner owner(options, {meter}, *std::move(transport), SystemClock::Get());
  owner.Start();
  DeviceStatus s;
  for (int i = 0; i < 100; ++i) {
    s = *owner.Device("grid-meter");
    if (!s.stale && s.values.Get(Quantity::kEnergyTotal)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  owner.Stop();
  ASSERT_FALSE(s.stale) << s.last_error;
  EXPECT_EQ(s.values.Get(Quantity::kVoltageL1), 229.5);
  EXPECT_EQ(s.values.Get(Quantity::kVoltageL2), 230.25);
  EXPECT_EQ(s.values.Get(Quantity::kVoltageL3), 231.0);
  EXPECT_EQ(s.values.Get(Quantity::kCurrentL1), 12.5);
  EXPECT_EQ(s.values.Get(Quantity::kCurrentL2), 7.25);
  EXPECT_EQ(s.values.Get(Quantity::kCurrentL3), 0.5);
  EXPECT_EQ(s.values.Get(Quantity::kPowerL1), 2868.75);
  EXPECT_EQ(s.values.Get(Quantity::kPowerL3), 115.5);
  EXPECT_EQ(s.values.Get(Quantity::kTotalPower), 4653.5625);
  EXPECT_NEAR(*s.values.Get(Quantity::kFrequency), 49.98, 1e-5);  // float32
  EXPECT_EQ(s.values.Get(Quantity::kEnergyImport), 12345500);
  EXPECT_EQ(s.values.Get(Quantity::kEnergyExport), 6250);
  EXPECT_EQ(s.values.Get(Quantity::kEnergyTotal), 12351750);
  EXPECT_EQ(s.counters.errors_total, 0u) << s.last_error;
  EXPECT_EQ(s.counters.timeouts_total, 0u) << s.last_error;
}

}  // namespace
}  // namespace evgate::modbus
