// The simulators' Modbus server against our libmodbus client: units behind
// one TCP port dispatched by unit id, and Modbus RTU over a pty (libmodbus
// checks our frames and CRCs, a third-party implementation of the framing).
#include "device_drivers/sim/modbus_server.h"

#include <memory>
#include <vector>

#include "absl/time/clock.h"
#include "device_drivers/modbus/libmodbus_transport.h"
#include "device_drivers/sim/heidelberg_simulator.h"
#include "device_drivers/sim/offgrid_box_simulator.h"
#include "device_drivers/sim/sdm630_simulator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::sim {
namespace {

using modbus::LibmodbusTransport;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ModbusServerTest : public ::testing::Test {
 protected:
  ModbusServerTest() {
    meter_.SetPhase(0, {230, 12.5, 1});
    server_.AddUnit(1, &meter_);
    server_.AddUnit(2, &box_);
    server_.AddUnit(3, &wallbox_);
  }

  std::unique_ptr<LibmodbusTransport> Tcp() {
    auto t = LibmodbusTransport::Tcp({"127.0.0.1", server_.tcp_port(), absl::Milliseconds(200)});
    EXPECT_TRUE(t.ok()) << t.status();
    return *std::move(t);
  }

  FakeClock clock_;
  Sdm630Simulator meter_{clock_};
  OffGridBoxSimulator box_{clock_};
  HeidelbergSimulator wallbox_{clock_};
  ModbusServer server_;
};

TEST_F(ModbusServerTest, OneTcpPortServesEveryUnitByItsId) {
  ASSERT_TRUE(server_.ListenTcp("127.0.0.1", 0).ok());
  auto client = Tcp();
  ASSERT_TRUE(client->SetSlave(1).ok());
  auto meter = client->ReadRegisters(modbus::RegisterTable::kInput, 0x0006, 2);
  ASSERT_TRUE(meter.ok()) << meter.status();
  EXPECT_THAT(*meter, ElementsAre(0x4148, 0x0000));  // 12.5f
  ASSERT_TRUE(client->SetSlave(2).ok());
  auto box = client->ReadRegisters(modbus::RegisterTable::kInput, 0x0004, 2);
  ASSERT_TRUE(box.ok()) << box.status();
  EXPECT_THAT(*box, ElementsAre(1, 1));  // grid present, on-grid
  ASSERT_TRUE(client->SetSlave(3).ok());
  ASSERT_TRUE(client->WriteRegister(261, 100).ok());         // function 06
  ASSERT_TRUE(client->WriteRegisters(257, {3000, 4}).ok());  // function 16
  auto settings = client->ReadRegisters(modbus::RegisterTable::kHolding, 257, 6);
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_THAT(*settings, ElementsAre(3000, 4, 1, 0, 100, 0));
  // The wallbox refuses 17 A with an exception; that is an answer.
  absl::Status refused = client->WriteRegister(261, 170);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  // Nobody is unit 9: no answer.
  ASSERT_TRUE(client->SetSlave(9).ok());
  EXPECT_EQ(client->ReadRegisters(modbus::RegisterTable::kInput, 0, 1).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  const ModbusServer::Counters c = server_.counters();
  EXPECT_EQ(c.requests, 6u);
  EXPECT_EQ(c.responses, 6u);
  EXPECT_EQ(c.other_units, 1u);
}

TEST_F(ModbusServerTest, DeadUnitTimesOutWhileTheOthersAnswer) {
  ASSERT_TRUE(server_.ListenTcp("127.0.0.1", 0).ok());
  wallbox_.SetResponding(false);
  auto client = Tcp();
  ASSERT_TRUE(client->SetSlave(3).ok());
  EXPECT_EQ(client->ReadRegisters(modbus::RegisterTable::kInput, 5, 1).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(client->SetSlave(1).ok());  // reconnects after the timeout
  EXPECT_TRUE(client->ReadRegisters(modbus::RegisterTable::kInput, 0, 2).ok());
}

TEST_F(ModbusServerTest, RtuOverAPtyAt19200Even) {
  absl::StatusOr<std::string> path = server_.ServeRtuPty({});
  ASSERT_TRUE(path.ok()) << path.status();
  modbus::RtuOptions options;
  options.port = *path;
  options.baud = 19200;
  options.parity = 'E';
  options.rs485 = false;
  options.timeout = absl::Milliseconds(300);
  auto client = LibmodbusTransport::Rtu(options);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->SetSlave(3).ok());
  wallbox_.PlugIn(16, 3, /*charge=*/false);
  auto state = (*client)->ReadRegisters(modbus::RegisterTable::kInput, 5, 10);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ((*state)[0], 5);    // B2
  EXPECT_EQ((*state)[5], 230);  // voltage L1
  ASSERT_TRUE((*client)->WriteRegisters(261, {60, 60}).ok());
  EXPECT_EQ(wallbox_.holding(262), 60);
  ASSERT_TRUE((*client)->SetSlave(2).ok());
  EXPECT_TRUE((*client)->ReadRegisters(modbus::RegisterTable::kInput, 0, 0x16).ok());
  ASSERT_TRUE((*client)->SetSlave(9).ok());
  absl::Status none = (*client)->ReadRegisters(modbus::RegisterTable::kInput, 0, 1).status();
  EXPECT_EQ(none.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(none.message(), HasSubstr("modbus rtu " + *path + " 19200 8E1 unit 9"));
  EXPECT_EQ(server_.counters().bad_frames, 0u);
}

TEST_F(ModbusServerTest, EmulatedLineTimingTakesTheFramesTimeAt19200) {
  RtuLineOptions line;
  line.emulate_line_timing = true;
  absl::StatusOr<std::string> path = server_.ServeRtuPty(line);
  ASSERT_TRUE(path.ok()) << path.status();
  modbus::RtuOptions options;
  options.port = *path;
  options.baud = 19200;
  options.parity = 'E';
  options.rs485 = false;
  auto client = LibmodbusTransport::Rtu(options);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->SetSlave(3).ok());
  const absl::Time start = absl::Now();
  ASSERT_TRUE((*client)->ReadRegisters(modbus::RegisterTable::kInput, 5, 10).ok());
  // Request 8 bytes + answer 5 + 20 bytes, 11 bits each at 19200 baud, plus
  // 1 ms turnaround: 19.9 ms at least.
  EXPECT_GE(absl::Now() - start, absl::Microseconds(19906));
  EXPECT_EQ(RtuCharactersTime(33, line), absl::Microseconds(18906));
}

}  // namespace
}  // namespace evgate::sim
