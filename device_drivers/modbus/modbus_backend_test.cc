// ModbusBackend on a fake transport and a fake clock: what integrators see
// (DeviceState, events, setpoint results) for meters, a Heidelberg wallbox
// and an off-grid box, including programming, TTL fallback and recovery.
#include "device_drivers/modbus/modbus_backend.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "device_drivers/modbus/fake_modbus_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::modbus {
namespace {

namespace v1 = ::evgate::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int kMeter = 1;
constexpr int kBox = 2;
constexpr int kWallbox = 3;
constexpr int kWallbox1ph = 4;
constexpr auto kInput = RegisterTable::kInput;
constexpr auto kHolding = RegisterTable::kHolding;

// An RS-485 bus at the Heidelberg's 19200 8E1 with a grid meter, an
// off-grid box and two Heidelberg boxes (one rotated three-phase, one
// single-phase on L3 with a pause failsafe).
constexpr char kSite[] = R"(insecure_demo: true
site: {id: test-site}
grid: {fuse_limit_a: 63, meter: grid-meter}
services: {session_database: /var/lib/evgate/test.db}
buses:
  - {id: rs485-1, type: modbus_rtu, port: /dev/ttyUSB0, baud: 19200, parity: even}
  - {id: can-1, type: can, interface: can0}
devices:
  - {id: wallbox-1, profile: heidelberg_energy_control, bus: rs485-1, address: 3, poll_period_ms: 1000}
  - {id: grid-meter, profile: eastron_sdm630, bus: rs485-1, address: 1, poll_period_ms: 1000}
  - {id: box, profile: v2x_offgrid_box, bus: rs485-1, address: 2, poll_period_ms: 1000}
  - {id: wallbox-2, profile: heidelberg_energy_control, bus: rs485-1, address: 4}
stations:
  - id: wb1
    device: wallbox-1
    circuit: grid
    evses: [{id: wb1, phases: [L2, L3, L1], max_current_a: 16}]
  - id: wb2
    device: wallbox-2
    circuit: grid
    evses: [{id: wb2, phases: [L3], max_current_a: 16, failsafe_current_a: 0}]
controller: {failsafe_current_a: 6}
)";

class RecordingSink : public devices::DeviceEventSink {
 public:
  void Publish(v1::WatchDevicesResponse event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }
  std::vector<v1::WatchDevicesResponse> Take() {
    absl::MutexLock lock(&mu_);
    return std::move(events_);
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::WatchDevicesResponse> events_;
};

// Events of one kind for one device.
std::vector<v1::WatchDevicesResponse> Of(const std::vector<v1::WatchDevicesResponse>& events,
                                         const std::string& device,
                                         v1::WatchDevicesResponse::EventCase kind) {
  std::vector<v1::WatchDevicesResponse> out;
  for (const auto& e : events) {
    if (e.device_id() == device && e.event_case() == kind) out.push_back(e);
  }
  return out;
}

v1::Setpoint Current(const std::string& evse, std::optional<double> l1, std::optional<double> l2,
                     std::optional<double> l3) {
  v1::Setpoint s;
  s.set_evse_id(evse);
  v1::PhaseValues* p = s.mutable_value()->mutable_current_limit_a();
  if (l1) p->set_l1(*l1);
  if (l2) p->set_l2(*l2);
  if (l3) p->set_l3(*l3);
  return s;
}

v1::Setpoint Current(const std::string& evse, double all) { return Current(evse, all, all, all); }

v1::Setpoint Pause(const std::string& evse) {
  v1::Setpoint s;
  s.set_evse_id(evse);
  s.mutable_value()->mutable_pause();
  return s;
}

class ModbusBackendTest : public ::testing::Test {
 protected:
  ModbusBackendTest() {
    auto loaded = site::LoadSiteConfigString(kSite, "site.yaml");
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    site_ = *std::move(loaded);
    auto transport = std::make_unique<FakeModbusTransport>(&clock_, absl::Milliseconds(10),
                                                           absl::Milliseconds(100));
    fake_ = transport.get();
    SetMeter();
    SetBox(/*grid=*/true, /*switch_position=*/1);
    for (int unit : {kWallbox, kWallbox1ph}) {
      PowerUpWallbox(unit);
      SetChargingState(unit, 3);
    }
    auto backend =
        MakeModbusBackendOn(site_, *site_.FindBus("rs485-1"), clock_, std::move(transport));
    EXPECT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
    backend_->SetSink(&sink_);
  }

  void SetMeter() {
    for (uint16_t a : {0x00, 0x02, 0x04}) fake_->SetFloat(kMeter, kInput, a, 230);
    fake_->SetFloat(kMeter, kInput, 0x06, 21.5f);
    fake_->SetFloat(kMeter, kInput, 0x34, 9000);
    fake_->SetFloat(kMeter, kInput, 0x46, 50);
    fake_->SetFloat(kMeter, kInput, 0x48, 1234.5f);
  }
  void SetBox(bool grid, uint16_t switch_position) {
    for (uint16_t a = 0; a < 3; ++a) fake_->SetRegister(kBox, kInput, a, grid ? 2300 : 0);
    fake_->SetRegister(kBox, kInput, 3, grid ? 5000 : 0);
    fake_->SetRegister(kBox, kInput, 4, grid ? 1 : 0);
    fake_->SetRegister(kBox, kInput, 5, switch_position);
    fake_->SetRegister(kBox, kInput, 6, 1);
    fake_->SetRegister(kBox, kInput, 7, 1);
    fake_->SetRegister(kBox, kInput, 8, 2640);
    fake_->SetRegister(kBox, kInput, 9, switch_position == 1 ? 0 : 1);
    fake_->SetRegister(kBox, kInput, 0x0B, switch_position == 3 ? 170 : 0);
    fake_->SetRegister(kBox, kInput, 0x10, 1250);
    fake_->SetRegister(kBox, kHolding, 0x0102, 180);
  }
  // The Heidelberg's power-up holding registers 257..262.
  void PowerUpWallbox(int unit) {
    const uint16_t defaults[] = {15000, 0, 1, 0, 160, 0};
    for (int i = 0; i < 6; ++i) fake_->SetRegister(unit, kHolding, 257 + i, defaults[i]);
    for (uint16_t a = 10; a <= 12; ++a) fake_->SetRegister(unit, kInput, a, 230);
  }
  void SetChargingState(int unit, uint16_t code) { fake_->SetRegister(unit, kInput, 5, code); }
  std::optional<uint16_t> Holding(int unit, uint16_t address) {
    return fake_->GetRegister(unit, kHolding, address);
  }

  // Polls like the bus owner's thread would, jumping the fake clock to the
  // next due time.
  void RunFor(absl::Duration duration) {
    const absl::Time end = clock_.Now() + duration;
    while (clock_.Now() < end) {
      const absl::Time next = backend_->PollOnce();
      if (next > clock_.Now()) clock_.Set(std::min(next, end));
    }
  }

  v1::EvseState Evse(const std::string& device) {
    std::optional<v1::DeviceState> s = backend_->GetDevice(device);
    EXPECT_TRUE(s.has_value());
    EXPECT_EQ(s->evses_size(), 1);
    return s->evses(0);
  }

  FakeClock clock_;
  site::SiteConfig site_;
  FakeModbusTransport* fake_;
  std::unique_ptr<ModbusBackend> backend_;
  RecordingSink sink_;
};

TEST_F(ModbusBackendTest, InventoryInSiteOrder) {
  EXPECT_EQ(backend_->bus_id(), "rs485-1");
  EXPECT_THAT(backend_->DeviceIds(), ElementsAre("wallbox-1", "grid-meter", "box", "wallbox-2"));
  EXPECT_THAT(backend_->EvseIds(), ElementsAre("wb1", "wb2"));
  EXPECT_FALSE(backend_->GetDevice("nope").has_value());
  v1::DeviceState wb = *backend_->GetDevice("wallbox-1");
  EXPECT_EQ(wb.kind(), v1::DEVICE_KIND_AC_WALLBOX);
  EXPECT_EQ(wb.profile(), "heidelberg_energy_control");
  EXPECT_EQ(wb.address(), "3");
  EXPECT_EQ(wb.station_id(), "wb1");
  EXPECT_TRUE(wb.link().stale());  // nothing read yet
  const v1::EvseCapabilities& caps = wb.evses(0).capabilities();
  EXPECT_THAT(caps.phases(), ElementsAre(v1::PHASE_L2, v1::PHASE_L3, v1::PHASE_L1));
  EXPECT_EQ(caps.min_current_a(), 6);
  EXPECT_EQ(caps.max_current_a(), 16);
  EXPECT_DOUBLE_EQ(caps.current_step_a(), 0.1);
}

TEST_F(ModbusBackendTest, GridMeterIsPolledFirstAndReadsAsAMeterReading) {
  backend_->PollOnce();
  ASSERT_FALSE(fake_->requests().empty());
  EXPECT_EQ(fake_->requests()[0].unit, kMeter);  // the grid meter has the highest priority
  RunFor(absl::Milliseconds(500));
  v1::DeviceState m = *backend_->GetDevice("grid-meter");
  EXPECT_EQ(m.kind(), v1::DEVICE_KIND_METER);
  EXPECT_FALSE(m.link().stale());
  EXPECT_EQ(m.meter().current_a().l1(), 21.5);
  EXPECT_EQ(m.meter().total_power_w(), 9000);
  EXPECT_EQ(m.meter().frequency_hz(), 50);
  EXPECT_EQ(m.meter().energy_import_wh(), 1234500);
  EXPECT_GT(m.link().requests_total(), 0u);
  // Sampled by the first poll, 10 ms (one request) after the start.
  EXPECT_EQ(absl::FromUnixSeconds(m.meter().measured_at().seconds()) +
                absl::Nanoseconds(m.meter().measured_at().nanos()),
            absl::FromUnixSeconds(1'800'000'000) + absl::Milliseconds(10));
}

TEST_F(ModbusBackendTest, TelemetryOnEveryPollAndLinkChangesBothWays) {
  RunFor(absl::Seconds(3));
  std::vector<v1::WatchDevicesResponse> events = sink_.Take();
  EXPECT_GE(Of(events, "grid-meter", v1::WatchDevicesResponse::kTelemetry).size(), 3u);
  std::vector<v1::WatchDevicesResponse> link =
      Of(events, "grid-meter", v1::WatchDevicesResponse::kLinkStateChange);
  ASSERT_EQ(link.size(), 1u);
  EXPECT_FALSE(link[0].link_state_change().link().stale());
  const std::vector<v1::WatchDevicesResponse> wallbox =
      Of(events, "wallbox-1", v1::WatchDevicesResponse::kTelemetry);
  ASSERT_FALSE(wallbox.empty());
  const v1::Telemetry& t = wallbox.back().telemetry();
  ASSERT_EQ(t.evses_size(), 1);
  EXPECT_EQ(t.evses(0).evse_id(), "wb1");

  fake_->SetSilent(kMeter, true);
  RunFor(absl::Seconds(5));
  events = sink_.Take();
  link = Of(events, "grid-meter", v1::WatchDevicesResponse::kLinkStateChange);
  ASSERT_EQ(link.size(), 1u);
  EXPECT_TRUE(link[0].link_state_change().link().stale());
  EXPECT_THAT(link[0].link_state_change().link().last_error(), HasSubstr("timeout"));
  fake_->SetSilent(kMeter, false);
  RunFor(absl::Seconds(12));  // within the backoff cap
  link = Of(sink_.Take(), "grid-meter", v1::WatchDevicesResponse::kLinkStateChange);
  ASSERT_EQ(link.size(), 1u);
  EXPECT_FALSE(link[0].link_state_change().link().stale());
}

TEST_F(ModbusBackendTest, WallboxIsProgrammedWithWatchdogFailsafeAndStandbyOff) {
  RunFor(absl::Milliseconds(500));
  // Watchdog 10 s (the default TTL), standby disabled, unlocked; failsafe
  // 6 A (controller.failsafe_current_a) also as the limit until the
  // controller decides.
  EXPECT_EQ(Holding(kWallbox, 257), 10000);
  EXPECT_EQ(Holding(kWallbox, 258), 4);
  EXPECT_EQ(Holding(kWallbox, 259), 1);
  EXPECT_EQ(Holding(kWallbox, 262), 60);
  EXPECT_EQ(Holding(kWallbox, 261), 60);
  // The single-phase box pauses on failsafe.
  EXPECT_EQ(Holding(kWallbox1ph, 262), 0);
  EXPECT_EQ(Holding(kWallbox1ph, 261), 0);
  const v1::SetpointInForce sp = Evse("wallbox-1").setpoint();
  EXPECT_EQ(sp.source(), v1::SETPOINT_SOURCE_FAILSAFE);
  EXPECT_EQ(sp.value().current_limit_a().l1(), 6);
  EXPECT_EQ(sp.value().current_limit_a().l3(), 6);
  EXPECT_FALSE(sp.has_expires_at());
  EXPECT_TRUE(Evse("wallbox-2").setpoint().value().has_pause());
  // Programmed once, not on every poll.
  fake_->ClearRequests();
  RunFor(absl::Seconds(15));  // including a slow poll of the settings
  for (const auto& r : fake_->requests()) EXPECT_NE(r.function, 6) << r.address;
  for (const auto& r : fake_->requests()) EXPECT_NE(r.function, 16) << r.address;
}

TEST_F(ModbusBackendTest, ChargingStateBecomesIecStateConnectorStatusAndRelay) {
  RunFor(absl::Milliseconds(500));
  v1::EvseState e = Evse("wallbox-1");
  EXPECT_EQ(e.iec61851_state(), v1::IEC61851_STATE_A);
  EXPECT_EQ(e.connector_status(), v1::CONNECTOR_STATUS_AVAILABLE);
  EXPECT_FALSE(e.relay_closed());
  sink_.Take();
  SetChargingState(kWallbox, 7);                 // C2
  fake_->SetRegister(kWallbox, kInput, 6, 100);  // 10 A on the box's L1, L2, L3
  fake_->SetRegister(kWallbox, kInput, 7, 101);
  fake_->SetRegister(kWallbox, kInput, 8, 102);
  fake_->SetRegister(kWallbox, kInput, 9, static_cast<uint16_t>(-45));
  fake_->SetRegister(kWallbox, kInput, 14, 6969);
  RunFor(absl::Seconds(1));
  e = Evse("wallbox-1");
  EXPECT_EQ(e.iec61851_state(), v1::IEC61851_STATE_C);
  EXPECT_EQ(e.connector_status(), v1::CONNECTOR_STATUS_CHARGING);
  EXPECT_TRUE(e.relay_closed());
  // Box L1 is wired to site L2, box L2 to L3, box L3 to L1.
  EXPECT_DOUBLE_EQ(e.measurements().current_a().l2(), 10.0);
  EXPECT_DOUBLE_EQ(e.measurements().current_a().l3(), 10.1);
  EXPECT_DOUBLE_EQ(e.measurements().current_a().l1(), 10.2);
  EXPECT_EQ(e.measurements().power_w(), 6969);
  ASSERT_EQ(e.measurements().temperatures_size(), 1);
  EXPECT_DOUBLE_EQ(e.measurements().temperatures(0).temperature_c(), -4.5);
  std::vector<v1::WatchDevicesResponse> changes =
      Of(sink_.Take(), "wallbox-1", v1::WatchDevicesResponse::kEvseStateChange);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].evse_state_change().previous_iec61851_state(), v1::IEC61851_STATE_A);
  EXPECT_EQ(changes[0].evse_state_change().state().iec61851_state(), v1::IEC61851_STATE_C);
  // B2: the EV does not ask; C1: the box does not allow.
  SetChargingState(kWallbox, 5);
  RunFor(absl::Seconds(1));
  EXPECT_EQ(Evse("wallbox-1").connector_status(), v1::CONNECTOR_STATUS_SUSPENDED_EV);
  SetChargingState(kWallbox, 6);
  RunFor(absl::Seconds(1));
  EXPECT_EQ(Evse("wallbox-1").connector_status(), v1::CONNECTOR_STATUS_SUSPENDED_EVSE);
  // The single-phase box maps its L1 to site L3 only.
  fake_->SetRegister(kWallbox1ph, kInput, 6, 160);
  RunFor(absl::Seconds(1));
  const v1::EvseState one = Evse("wallbox-2");
  EXPECT_EQ(one.measurements().current_a().l3(), 16);
  EXPECT_FALSE(one.measurements().current_a().has_l1());
}

TEST_F(ModbusBackendTest, SetpointIsMinOverWiredPhasesRoundedDownWrittenAndReadBack) {
  RunFor(absl::Milliseconds(500));
  sink_.Take();
  fake_->ClearRequests();
  std::vector<v1::SetpointResult> r =
      backend_->ApplySetpoints({Current("wb1", 12, 9.87, 16)}, absl::Seconds(10), "batch-7");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status(), v1::SETPOINT_STATUS_ACCEPTED) << r[0].message();
  EXPECT_EQ(Holding(kWallbox, 261), 98);  // 9.8 A
  const auto requests = fake_->requests();
  ASSERT_GE(requests.size(), 2u);
  EXPECT_EQ(requests[0].function, 6);
  EXPECT_EQ(requests[1].function, 3);  // read back
  const v1::SetpointInForce& f = r[0].in_force();
  EXPECT_EQ(f.source(), v1::SETPOINT_SOURCE_CONTROLLER);
  EXPECT_DOUBLE_EQ(f.value().current_limit_a().l1(), 9.8);
  EXPECT_DOUBLE_EQ(f.value().current_limit_a().l2(), 9.8);
  EXPECT_EQ(f.batch_id(), "batch-7");
  EXPECT_EQ(f.expires_at().seconds(), absl::ToUnixSeconds(clock_.Now() + absl::Seconds(10)));
  std::vector<v1::WatchDevicesResponse> changes =
      Of(sink_.Take(), "wallbox-1", v1::WatchDevicesResponse::kEvseStateChange);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].evse_state_change().state().setpoint().source(),
            v1::SETPOINT_SOURCE_CONTROLLER);
}

TEST_F(ModbusBackendTest, SetpointClampedRejectedPausedAndNotSupported) {
  RunFor(absl::Milliseconds(500));
  v1::Setpoint power;
  power.set_evse_id("wb1");
  power.mutable_value()->set_power_limit_w(7000);
  std::vector<v1::SetpointResult> r = backend_->ApplySetpoints(
      {Current("wb1", 20), Current("wb2", std::nullopt, std::nullopt, 5.95), power,
       Current("wb2", 10, 10, std::nullopt), Current("nope", 10)},
      absl::Seconds(10), "b");
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0].status(), v1::SETPOINT_STATUS_CLAMPED);
  EXPECT_EQ(r[0].in_force().value().current_limit_a().l1(), 16);
  EXPECT_EQ(Holding(kWallbox, 261), 160);
  EXPECT_EQ(r[1].status(), v1::SETPOINT_STATUS_REJECTED);
  EXPECT_EQ(r[1].reason(), v1::SETPOINT_REJECT_REASON_INVALID_VALUE);
  EXPECT_THAT(r[1].message(), HasSubstr("5.9 A (after the 0.1 A step) is below the EVSE minimum"));
  EXPECT_TRUE(r[1].in_force().value().has_pause());  // the previous one stays
  EXPECT_EQ(r[2].reason(), v1::SETPOINT_REJECT_REASON_NOT_SUPPORTED);
  EXPECT_EQ(r[3].reason(), v1::SETPOINT_REJECT_REASON_INVALID_VALUE);
  EXPECT_THAT(r[3].message(), HasSubstr("wired phase L3"));
  EXPECT_EQ(r[4].reason(), v1::SETPOINT_REJECT_REASON_UNKNOWN_EVSE);
  // wb2 takes only its L3 value; pause writes 0.
  r = backend_->ApplySetpoints({Current("wb2", std::nullopt, std::nullopt, 7.04), Pause("wb1")},
                               absl::Seconds(10), "c");
  EXPECT_EQ(r[0].status(), v1::SETPOINT_STATUS_ACCEPTED);
  EXPECT_EQ(Holding(kWallbox1ph, 261), 70);
  EXPECT_EQ(r[1].status(), v1::SETPOINT_STATUS_ACCEPTED);
  EXPECT_EQ(Holding(kWallbox, 261), 0);
  EXPECT_TRUE(r[1].in_force().value().has_pause());
}

TEST_F(ModbusBackendTest, RefreshWithTheSameValueReadsTheLimitBackAndWritesNothing) {
  RunFor(absl::Milliseconds(500));
  ASSERT_EQ(backend_->ApplySetpoints({Current("wb1", 10)}, absl::Seconds(10), "1")[0].status(),
            v1::SETPOINT_STATUS_ACCEPTED);
  fake_->ClearRequests();
  clock_.Advance(absl::Seconds(1));
  const auto r = backend_->ApplySetpoints({Current("wb1", 10)}, absl::Seconds(10), "2");
  EXPECT_EQ(r[0].status(), v1::SETPOINT_STATUS_ACCEPTED);
  const auto requests = fake_->requests();
  ASSERT_EQ(requests.size(), 1u);  // one read of 261, no write
  EXPECT_EQ(requests[0].unit, kWallbox);
  EXPECT_EQ(requests[0].function, 3);
  EXPECT_EQ(requests[0].address, 261);
  EXPECT_EQ(requests[0].count, 1);
  EXPECT_EQ(r[0].in_force().batch_id(), "2");
  EXPECT_EQ(r[0].in_force().expires_at().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Seconds(10)));
}

TEST_F(ModbusBackendTest, RefreshRewritesALimitTheBoxNoLongerHolds) {
  RunFor(absl::Milliseconds(500));
  ASSERT_EQ(backend_->ApplySetpoints({Current("wb1", 10)}, absl::Seconds(10), "1")[0].status(),
            v1::SETPOINT_STATUS_ACCEPTED);
  ASSERT_EQ(Holding(kWallbox, 261), 100);
  // The box lost the limit (a brown-out, another master) between two slow
  // polls: it would let the EV draw 16 A.
  fake_->SetRegister(kWallbox, kHolding, 261, 160);
  clock_.Advance(absl::Seconds(1));
  const auto r = backend_->ApplySetpoints({Current("wb1", 10)}, absl::Seconds(10), "2");
  EXPECT_EQ(r[0].status(), v1::SETPOINT_STATUS_ACCEPTED) << r[0].message();
  EXPECT_EQ(Holding(kWallbox, 261), 100);
  EXPECT_EQ(r[0].in_force().batch_id(), "2");
  EXPECT_EQ(r[0].in_force().value().current_limit_a().l1(), 10);
}

TEST_F(ModbusBackendTest, ARefreshThatCannotReadTheLimitBackIsNotAccepted) {
  RunFor(absl::Milliseconds(500));
  ASSERT_EQ(backend_->ApplySetpoints({Current("wb1", 10)}, absl::Seconds(10), "1")[0].status(),
            v1::SETPOINT_STATUS_ACCEPTED);
  fake_->SetSilent(kWallbox, true);
  clock_.Advance(absl::Seconds(1));
  const auto r = backend_->ApplySetpoints({Current("wb1", 10)}, absl::Seconds(10), "2");
  EXPECT_EQ(r[0].status(), v1::SETPOINT_STATUS_REJECTED);
  EXPECT_EQ(r[0].reason(), v1::SETPOINT_REJECT_REASON_TIMEOUT);
  EXPECT_EQ(r[0].in_force().batch_id(), "1");  // validity not extended
}

TEST_F(ModbusBackendTest, LongerTtlReprogramsTheWatchdog) {
  RunFor(absl::Milliseconds(500));
  backend_->ApplySetpoints({Current("wb1", 10)}, absl::Seconds(30), "1");
  EXPECT_EQ(Holding(kWallbox, 257), 30000);
  backend_->ApplySetpoints({Current("wb1", 11)}, absl::Seconds(120), "2");
  EXPECT_EQ(Holding(kWallbox, 257), 65535);  // the register's maximum
}

TEST_F(ModbusBackendTest, ExpiredSetpointFallsBackToTheFailsafe) {
  RunFor(absl::Milliseconds(500));
  backend_->ApplySetpoints({Current("wb1", 14)}, absl::Seconds(5), "1");
  ASSERT_EQ(Holding(kWallbox, 261), 140);
  sink_.Take();
  RunFor(absl::Milliseconds(4900));
  EXPECT_EQ(Holding(kWallbox, 261), 140);
  EXPECT_EQ(backend_->GetBusHealth().setpoints_expired_total(), 0u);
  RunFor(absl::Milliseconds(200));
  EXPECT_EQ(Holding(kWallbox, 261), 60);
  EXPECT_EQ(backend_->GetBusHealth().setpoints_expired_total(), 1u);
  EXPECT_EQ(backend_->GetBusHealth().kind(), "modbus");
  const v1::SetpointInForce sp = Evse("wallbox-1").setpoint();
  EXPECT_EQ(sp.source(), v1::SETPOINT_SOURCE_FAILSAFE);
  EXPECT_EQ(sp.value().current_limit_a().l2(), 6);
  std::vector<v1::WatchDevicesResponse> changes =
      Of(sink_.Take(), "wallbox-1", v1::WatchDevicesResponse::kEvseStateChange);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].evse_state_change().state().setpoint().source(),
            v1::SETPOINT_SOURCE_FAILSAFE);
}

TEST_F(ModbusBackendTest, SetpointsInForceFollowWritesAndTheFailsafe) {
  auto in_force = backend_->SetpointsInForce({"wb1", "nope"});
  ASSERT_EQ(in_force.size(), 2u);
  EXPECT_FALSE(in_force[0].has_value());  // nothing written or read yet
  EXPECT_FALSE(in_force[1].has_value());
  RunFor(absl::Milliseconds(500));
  backend_->ApplySetpoints({Current("wb1", 14), Pause("wb2")}, absl::Seconds(5), "1");
  in_force = backend_->SetpointsInForce({"wb2", "wb1"});
  ASSERT_EQ(in_force.size(), 2u);
  ASSERT_TRUE(in_force[0].has_value());
  EXPECT_TRUE(in_force[0]->has_pause());
  ASSERT_TRUE(in_force[1].has_value());
  EXPECT_EQ(in_force[1]->current_limit_a().l2(), 14);
  RunFor(absl::Milliseconds(5100));  // expired: the failsafe, 6 A
  in_force = backend_->SetpointsInForce({"wb1"});
  ASSERT_TRUE(in_force[0].has_value());
  EXPECT_EQ(in_force[0]->current_limit_a().l2(), 6);
}

TEST_F(ModbusBackendTest, StaleWallboxRejectsSetpointsAndIsProgrammedAgainWhenBack) {
  RunFor(absl::Milliseconds(500));
  backend_->ApplySetpoints({Current("wb1", 12)}, absl::Seconds(60), "1");
  fake_->SetSilent(kWallbox, true);
  RunFor(absl::Seconds(5));
  ASSERT_TRUE(backend_->GetDevice("wallbox-1")->link().stale());
  std::vector<v1::SetpointResult> r =
      backend_->ApplySetpoints({Current("wb1", 10)}, absl::Seconds(60), "2");
  EXPECT_EQ(r[0].reason(), v1::SETPOINT_REJECT_REASON_DEVICE_OFFLINE);
  // It lost power meanwhile: settings back to its defaults.
  PowerUpWallbox(kWallbox);
  fake_->SetSilent(kWallbox, false);
  RunFor(absl::Seconds(12));
  ASSERT_FALSE(backend_->GetDevice("wallbox-1")->link().stale());
  EXPECT_EQ(Holding(kWallbox, 257), 60000);  // the TTL of the last batch
  EXPECT_EQ(Holding(kWallbox, 258), 4);
  EXPECT_EQ(Holding(kWallbox, 262), 60);
  EXPECT_EQ(Holding(kWallbox, 261), 120);  // the controller's 12 A is still valid
  EXPECT_EQ(Evse("wallbox-1").setpoint().source(), v1::SETPOINT_SOURCE_CONTROLLER);
}

TEST_F(ModbusBackendTest, RestartNoticedFromSettingsIsProgrammedAgain) {
  RunFor(absl::Milliseconds(500));
  ASSERT_EQ(Holding(kWallbox, 258), 4);
  PowerUpWallbox(kWallbox);   // a power cycle shorter than the stale timeout
  RunFor(absl::Seconds(11));  // the slow poll reads 257-262 back
  EXPECT_EQ(Holding(kWallbox, 258), 4);
  EXPECT_EQ(Holding(kWallbox, 257), 10000);
  EXPECT_EQ(Holding(kWallbox, 261), 60);
}

TEST_F(ModbusBackendTest, RefusedWriteIsDeviceRejected) {
  RunFor(absl::Milliseconds(500));
  fake_->SetRejectsWrites(kWallbox, 261);
  std::vector<v1::SetpointResult> r =
      backend_->ApplySetpoints({Current("wb1", 10)}, absl::Seconds(10), "1");
  EXPECT_EQ(r[0].reason(), v1::SETPOINT_REJECT_REASON_DEVICE_REJECTED);
  EXPECT_THAT(r[0].message(), HasSubstr("exception"));
  EXPECT_EQ(r[0].in_force().source(), v1::SETPOINT_SOURCE_FAILSAFE);
}

TEST_F(ModbusBackendTest, FaultStateRaisesAFaultAndBlocksSetpoints) {
  RunFor(absl::Milliseconds(500));
  sink_.Take();
  SetChargingState(kWallbox, 10);  // F
  RunFor(absl::Seconds(1));
  v1::EvseState e = Evse("wallbox-1");
  EXPECT_EQ(e.iec61851_state(), v1::IEC61851_STATE_F);
  EXPECT_EQ(e.connector_status(), v1::CONNECTOR_STATUS_FAULTED);
  ASSERT_EQ(e.faults_size(), 1);
  EXPECT_EQ(e.faults(0).code(), "EVSE_STATE_F");
  EXPECT_EQ(e.faults(0).vendor_code(), "charging_state=10");
  std::vector<v1::WatchDevicesResponse> events = sink_.Take();
  ASSERT_EQ(Of(events, "wallbox-1", v1::WatchDevicesResponse::kFaultRaised).size(), 1u);
  EXPECT_EQ(backend_->ApplySetpoints({Current("wb1", 10)}, absl::Seconds(10), "1")[0].reason(),
            v1::SETPOINT_REJECT_REASON_EVSE_UNAVAILABLE);
  SetChargingState(kWallbox, 3);
  RunFor(absl::Seconds(1));
  EXPECT_EQ(Of(sink_.Take(), "wallbox-1", v1::WatchDevicesResponse::kFaultCleared).size(), 1u);
  EXPECT_EQ(Evse("wallbox-1").faults_size(), 0);
}

TEST_F(ModbusBackendTest, Commands) {
  RunFor(absl::Milliseconds(500));
  v1::CommandRequest c;
  c.set_device_id("wallbox-1");
  v1::SetFailsafeCommand* f = c.mutable_set_failsafe();
  f->set_evse_id("wb1");
  f->mutable_value()->mutable_current_limit_a()->set_l1(8);
  f->mutable_value()->mutable_current_limit_a()->set_l2(8);
  f->mutable_value()->mutable_current_limit_a()->set_l3(8);
  f->mutable_watchdog_timeout()->set_seconds(20);
  v1::CommandResponse r = backend_->Command(c);
  EXPECT_EQ(r.status(), v1::COMMAND_STATUS_ACCEPTED) << r.message();
  EXPECT_EQ(Holding(kWallbox, 262), 80);
  EXPECT_EQ(Holding(kWallbox, 257), 20000);
  EXPECT_EQ(Holding(kWallbox, 261), 80);  // the failsafe was in force: it follows
  f->mutable_value()->mutable_current_limit_a()->set_l2(3);
  r = backend_->Command(c);
  EXPECT_EQ(r.status(), v1::COMMAND_STATUS_REJECTED);
  EXPECT_THAT(r.message(), HasSubstr("must be 0 (pause) or 6-16 A"));
  f->mutable_value()->mutable_pause();
  f->mutable_watchdog_timeout()->set_seconds(100);
  EXPECT_THAT(backend_->Command(c).message(), HasSubstr("at most 65.535 s"));

  v1::CommandRequest lock;
  lock.set_device_id("wallbox-1");
  lock.mutable_change_availability()->set_availability(v1::AVAILABILITY_INOPERATIVE);
  EXPECT_EQ(backend_->Command(lock).status(), v1::COMMAND_STATUS_ACCEPTED);
  EXPECT_EQ(Holding(kWallbox, 259), 0);
  v1::DeviceState wb = *backend_->GetDevice("wallbox-1");
  EXPECT_EQ(wb.availability(), v1::AVAILABILITY_INOPERATIVE);
  EXPECT_EQ(wb.evses(0).connector_status(), v1::CONNECTOR_STATUS_UNAVAILABLE);
  EXPECT_EQ(backend_->ApplySetpoints({Current("wb1", 10)}, absl::Seconds(10), "1")[0].reason(),
            v1::SETPOINT_REJECT_REASON_EVSE_UNAVAILABLE);
  RunFor(absl::Seconds(11));  // a slow poll reads 259 = 0: that is what it should be
  EXPECT_EQ(Holding(kWallbox, 259), 0);
  lock.mutable_change_availability()->set_availability(v1::AVAILABILITY_OPERATIVE);
  EXPECT_EQ(backend_->Command(lock).status(), v1::COMMAND_STATUS_ACCEPTED);
  EXPECT_EQ(Holding(kWallbox, 259), 1);

  v1::CommandRequest other;
  other.set_device_id("wallbox-1");
  other.mutable_reset()->set_type(v1::RESET_TYPE_SOFT);
  EXPECT_EQ(backend_->Command(other).status(), v1::COMMAND_STATUS_NOT_SUPPORTED);
  other.mutable_trigger_status_report();
  EXPECT_EQ(backend_->Command(other).status(), v1::COMMAND_STATUS_ACCEPTED);
  other.set_device_id("grid-meter");
  other.mutable_set_failsafe()->set_evse_id("wb1");
  EXPECT_EQ(backend_->Command(other).status(), v1::COMMAND_STATUS_NOT_SUPPORTED);
  other.set_device_id("ghost");
  EXPECT_EQ(backend_->Command(other).status(), v1::COMMAND_STATUS_REJECTED);
}

TEST_F(ModbusBackendTest, OffGridBoxStateChangesAndCommands) {
  RunFor(absl::Milliseconds(500));
  v1::OffGridBoxState box = backend_->GetDevice("box")->off_grid_box();
  EXPECT_TRUE(box.grid_present());
  EXPECT_EQ(box.transfer_switch(), v1::TRANSFER_SWITCH_POSITION_ON_GRID);
  EXPECT_EQ(box.grid_voltage_v().l2(), 230);
  EXPECT_EQ(box.grid_frequency_hz(), 50);
  EXPECT_TRUE(box.qf1_closed());
  EXPECT_DOUBLE_EQ(box.backup_battery_voltage_v(), 26.4);
  EXPECT_FALSE(box.backup_battery_output_on());
  EXPECT_DOUBLE_EQ(box.meter_1().current_a().l1(), 12.5);
  std::vector<v1::WatchDevicesResponse> events = sink_.Take();
  EXPECT_EQ(Of(events, "box", v1::WatchDevicesResponse::kOffGridBoxChange).size(), 1u);

  SetBox(/*grid=*/false, /*switch_position=*/3);  // grid lost: the switch opens
  RunFor(absl::Seconds(1));
  events = Of(sink_.Take(), "box", v1::WatchDevicesResponse::kOffGridBoxChange);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].off_grid_box_change().grid_present());
  EXPECT_EQ(events[0].off_grid_box_change().transfer_switch(), v1::TRANSFER_SWITCH_POSITION_OPEN);
  EXPECT_FALSE(events[0].off_grid_box_change().has_grid_frequency_hz());
  std::optional<OffGridBoxStatus> status = backend_->OffGridBox("box");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->standby_remaining, absl::Seconds(170));
  EXPECT_EQ(backend_->GetDevice("box")->off_grid_box().standby_remaining().seconds(), 170);
  RunFor(absl::Seconds(11));
  EXPECT_EQ(backend_->OffGridBox("box")->standby_countdown, absl::Seconds(180));

  EXPECT_TRUE(backend_->TransferToOffGrid("box").ok());
  EXPECT_EQ(Holding(kBox, 0x0100), 1);
  EXPECT_TRUE(backend_->SetPnPullIn("box", true).ok());
  EXPECT_EQ(Holding(kBox, 0x0101), 1);
  EXPECT_TRUE(backend_->SetStandbyCountdown("box", absl::Minutes(5)).ok());
  EXPECT_EQ(Holding(kBox, 0x0102), 300);
  EXPECT_EQ(backend_->SetStandbyCountdown("box", absl::Minutes(20)).code(),
            absl::StatusCode::kOutOfRange);  // the ICE-22 allows at most 15 min
  fake_->SetRejectsWrites(kBox, 0x0100);     // no grid: the box refuses
  absl::Status back = backend_->TransferToOnGrid("box");
  EXPECT_EQ(back.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(backend_->TransferToOffGrid("grid-meter").code(), absl::StatusCode::kNotFound);
  fake_->SetSilent(kBox, true);
  RunFor(absl::Seconds(5));
  EXPECT_EQ(backend_->TransferToOffGrid("box").code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(backend_->OffGridBox("grid-meter").has_value());
}

// The same commands as DeviceDriver.Command `off_grid_box` (what a grid controller in another
// process sends). Bad inputs tried: no command, an unspecified transfer, a countdown of 20 min,
// the command to a meter, a refused write, a silent box.
TEST_F(ModbusBackendTest, OffGridBoxCommandsThroughTheDeviceDriverApi) {
  RunFor(absl::Milliseconds(500));
  auto command = [&](const std::string& device, auto fill) {
    v1::CommandRequest request;
    request.set_device_id(device);
    fill(*request.mutable_off_grid_box());
    return backend_->Command(request);
  };
  v1::CommandResponse r = command("box", [](v1::OffGridBoxCommand& c) {
    c.set_transfer(v1::OffGridBoxCommand::TRANSFER_TO_OFF_GRID);
  });
  EXPECT_EQ(r.status(), v1::COMMAND_STATUS_ACCEPTED) << r.message();
  EXPECT_EQ(Holding(kBox, 0x0100), 1);
  r = command("box", [](v1::OffGridBoxCommand& c) { c.set_pn_pull_in_enabled(true); });
  EXPECT_EQ(r.status(), v1::COMMAND_STATUS_ACCEPTED);
  EXPECT_EQ(Holding(kBox, 0x0101), 1);
  r = command("box",
              [](v1::OffGridBoxCommand& c) { c.mutable_standby_countdown()->set_seconds(240); });
  EXPECT_EQ(r.status(), v1::COMMAND_STATUS_ACCEPTED);
  EXPECT_EQ(Holding(kBox, 0x0102), 240);

  r = command("box", [](v1::OffGridBoxCommand&) {});
  EXPECT_EQ(r.status(), v1::COMMAND_STATUS_REJECTED);
  EXPECT_THAT(r.message(), HasSubstr("no off-grid box command"));
  r = command("box", [](v1::OffGridBoxCommand& c) {
    c.set_transfer(v1::OffGridBoxCommand::TRANSFER_UNSPECIFIED);
  });
  EXPECT_EQ(r.status(), v1::COMMAND_STATUS_REJECTED);
  r = command("box",
              [](v1::OffGridBoxCommand& c) { c.mutable_standby_countdown()->set_seconds(1200); });
  EXPECT_EQ(r.status(), v1::COMMAND_STATUS_REJECTED);
  r = command("grid-meter", [](v1::OffGridBoxCommand& c) { c.set_pn_pull_in_enabled(false); });
  EXPECT_EQ(r.status(), v1::COMMAND_STATUS_NOT_SUPPORTED);
  fake_->SetRejectsWrites(kBox, 0x0100);  // no grid: the box refuses the transfer back
  r = command("box", [](v1::OffGridBoxCommand& c) {
    c.set_transfer(v1::OffGridBoxCommand::TRANSFER_TO_ON_GRID);
  });
  EXPECT_EQ(r.status(), v1::COMMAND_STATUS_REJECTED);
  fake_->SetSilent(kBox, true);
  RunFor(absl::Seconds(5));
  r = command("box", [](v1::OffGridBoxCommand& c) {
    c.set_transfer(v1::OffGridBoxCommand::TRANSFER_TO_OFF_GRID);
  });
  EXPECT_EQ(r.status(), v1::COMMAND_STATUS_FAILED);
}

TEST(MakeModbusBackend, RejectsCanBusesAndBrokenRegisterMaps) {
  FakeClock clock;
  site::SiteConfig site = *site::LoadSiteConfigString(kSite, "site.yaml");
  EXPECT_EQ(MakeModbusBackend(site, *site.FindBus("can-1"), clock).status().code(),
            absl::StatusCode::kInvalidArgument);
  site.devices[1].register_map = "/nonexistent/map.yaml";
  absl::StatusOr<std::unique_ptr<ModbusBackend>> b = MakeModbusBackendOn(
      site, *site.FindBus("rs485-1"), clock, std::make_unique<FakeModbusTransport>(&clock));
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(b.status().message(), HasSubstr("device grid-meter: /nonexistent/map.yaml"));
}

TEST(MakeModbusBackend, BuildsALibmodbusBackendThatStartsAndStops) {
  FakeClock clock;
  site::SiteConfig site = *site::LoadSiteConfigString(kSite, "site.yaml");
  // TCP: a gateway that is not up yet is not an error at start.
  site::BusConfig tcp;
  tcp.id = "rs485-1";
  tcp.type = site::BusType::kModbusTcp;
  tcp.modbus_tcp = site::ModbusTcpSettings{"127.0.0.1", 1, 100, 0};
  absl::StatusOr<std::unique_ptr<devices::DeviceBackend>> b = MakeModbusBackend(site, tcp, clock);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE((*b)->Start().ok());
  (*b)->Stop();
  // RTU: a serial port that does not exist is.
  b = MakeModbusBackend(site, *site.FindBus("rs485-1"), clock);
  ASSERT_TRUE(b.ok()) << b.status();
  absl::Status start = (*b)->Start();
  EXPECT_EQ(start.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(start.message(), HasSubstr("/dev/ttyUSB0"));
}

}  // namespace
}  // namespace evgate::modbus
