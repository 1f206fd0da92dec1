// The Modbus driver as deployed (MakeModbusBackend: libmodbus, Modbus RTU at
// 19200 8E1) against the simulators behind one RS-485 line (a pty): a grid
// meter, an off-grid box and a Heidelberg wallbox with an EV. Checks what the
// issue asks of the real thing: live values, setpoints followed by the EV,
// grid loss reported, and the wallbox at its failsafe when the driver dies.
// The simulators run on a fake clock the test moves; the driver on the real
// one.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "device_drivers/modbus/modbus_backend.h"
#include "device_drivers/sim/heidelberg_simulator.h"
#include "device_drivers/sim/modbus_server.h"
#include "device_drivers/sim/offgrid_box_simulator.h"
#include "device_drivers/sim/sdm630_simulator.h"
#include "gtest/gtest.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::sim {
namespace {

namespace v1 = ::evgate::v1;

class Sink : public devices::DeviceEventSink {
 public:
  void Publish(v1::WatchDevicesResponse event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }
  bool Saw(const std::string& device, v1::WatchDevicesResponse::EventCase kind) {
    absl::MutexLock lock(&mu_);
    for (const auto& e : events_) {
      if (e.device_id() == device && e.event_case() == kind) return true;
    }
    return false;
  }
  std::vector<v1::WatchDevicesResponse> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::WatchDevicesResponse> events_;
};

// Waits up to 10 s (real time) for `done`.
template <typename F>
bool WaitFor(F done) {
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

class DriverAgainstSimulators : public ::testing::Test {
 protected:
  void SetUp() override {
    meter_.SetPhase(0, {230, 20, 1});
    server_.AddUnit(1, &meter_);
    server_.AddUnit(2, &box_);
    server_.AddUnit(3, &wallbox_);
    absl::StatusOr<std::string> pty = server_.ServeRtuPty({});
    ASSERT_TRUE(pty.ok()) << pty.status();
    const std::string yaml = absl::StrCat(R"(insecure_demo: true
site: {id: sim-site}
grid: {fuse_limit_a: 63, meter: grid-meter}
services: {session_database: /var/lib/evgate/test.db}
buses:
  - {id: rs485-1, type: modbus_rtu, port: )",
                                          *pty, R"(, baud: 19200, parity: even, rs485: false,
     timeout_ms: 200}
devices:
  - {id: grid-meter, profile: eastron_sdm630, bus: rs485-1, address: 1, poll_period_ms: 100}
  - {id: box, profile: v2x_offgrid_box, bus: rs485-1, address: 2, poll_period_ms: 100}
  - {id: wallbox, profile: heidelberg_energy_control, bus: rs485-1, address: 3,
     poll_period_ms: 100}
stations:
  - {id: wb, device: wallbox, circuit: grid, evses: [{id: wb, phases: [L1, L2, L3]}]}
controller: {failsafe_current_a: 6, meter_timeout_ms: 1000}
)");
    absl::StatusOr<site::SiteConfig> site = site::LoadSiteConfigString(yaml, "site.yaml");
    ASSERT_TRUE(site.ok()) << site.status();
    site_ = *std::move(site);
    auto backend = modbus::MakeModbusBackend(site_, site_.buses[0], SystemClock::Get());
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
    backend_->SetSink(&sink_);
    ASSERT_TRUE(backend_->Start().ok());
  }
  void TearDown() override {
    if (backend_) backend_->Stop();
    server_.Stop();
  }

  FakeClock sim_clock_;
  Sdm630Simulator meter_{sim_clock_};
  OffGridBoxSimulator box_{sim_clock_};
  HeidelbergSimulator wallbox_{sim_clock_};
  ModbusServer server_;
  site::SiteConfig site_;
  std::unique_ptr<devices::DeviceBackend> backend_;
  Sink sink_;
};

TEST_F(DriverAgainstSimulators, LiveValuesSetpointsGridLossAndFailsafeWhenTheDriverDies) {
  // The driver programs the wallbox: watchdog, standby off, failsafe 6 A in
  // force until the controller decides.
  ASSERT_TRUE(WaitFor([&] { return wallbox_.holding(258) == 4 && wallbox_.holding(261) == 60; }))
      << "258=" << wallbox_.holding(258) << " 261=" << wallbox_.holding(261);
  EXPECT_EQ(wallbox_.holding(257), 10000);
  EXPECT_EQ(wallbox_.holding(262), 60);
  ASSERT_TRUE(WaitFor([&] { return !backend_->GetDevice("grid-meter")->link().stale(); }));
  EXPECT_EQ(backend_->GetDevice("grid-meter")->meter().current_a().l1(), 20);

  // The EV takes the controller's 10 A after its lag.
  wallbox_.PlugIn(32);
  std::vector<v1::Setpoint> setpoints(1);
  setpoints[0].set_evse_id("wb");
  for (auto* p : {&setpoints[0]}) {
    p->mutable_value()->mutable_current_limit_a()->set_l1(10);
    p->mutable_value()->mutable_current_limit_a()->set_l2(10);
    p->mutable_value()->mutable_current_limit_a()->set_l3(10);
  }
  ASSERT_TRUE(WaitFor([&] { return !backend_->GetDevice("wallbox")->link().stale(); }));
  std::vector<v1::SetpointResult> r = backend_->ApplySetpoints(setpoints, absl::Seconds(10), "1");
  ASSERT_EQ(r[0].status(), v1::SETPOINT_STATUS_ACCEPTED) << r[0].message();
  EXPECT_EQ(wallbox_.current_limit_a(), 10);
  sim_clock_.Advance(absl::Seconds(3));
  ASSERT_TRUE(WaitFor([&] {
    const v1::EvseState e = backend_->GetDevice("wallbox")->evses(0);
    return e.measurements().current_a().l2() == 10 &&
           e.connector_status() == v1::CONNECTOR_STATUS_CHARGING;
  }));
  EXPECT_TRUE(sink_.Saw("wallbox", v1::WatchDevicesResponse::kEvseStateChange));

  // A refresh checks what the box holds: a limit changed behind the driver's
  // back (here as another master would) is written again at once, not at the
  // next slow poll.
  ASSERT_EQ(wallbox_.Write(261, std::vector<uint16_t>{160}), ModbusException::kNone);
  r = backend_->ApplySetpoints(setpoints, absl::Seconds(10), "2");
  ASSERT_EQ(r[0].status(), v1::SETPOINT_STATUS_ACCEPTED) << r[0].message();
  EXPECT_EQ(wallbox_.holding(261), 100);
  EXPECT_EQ(wallbox_.current_limit_a(), 10);

  // Grid loss: the box opens and the driver says so.
  box_.SetGridPresent(false);
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& e : sink_.events()) {
      if (e.device_id() == "box" && e.has_off_grid_box_change() &&
          !e.off_grid_box_change().grid_present()) {
        return e.off_grid_box_change().transfer_switch() == v1::TRANSFER_SWITCH_POSITION_OPEN;
      }
    }
    return false;
  }));
  auto* modbus_backend = static_cast<modbus::ModbusBackend*>(backend_.get());
  ASSERT_TRUE(modbus_backend->TransferToOffGrid("box").ok());
  EXPECT_EQ(box_.transfer_switch(), OffGridBoxSimulator::Switch::kOffGrid);
  EXPECT_EQ(modbus_backend->TransferToOnGrid("box").code(), absl::StatusCode::kFailedPrecondition);

  // While the driver lives, its polls keep the wallbox's watchdog quiet: 12 s
  // of the wallbox's time (watchdog 10 s), each second seeing a request.
  for (int i = 0; i < 12; ++i) {
    sim_clock_.Advance(absl::Seconds(1));
    const absl::Time now = sim_clock_.Now();
    ASSERT_TRUE(WaitFor([&] { return wallbox_.last_request() >= now; })) << "second " << i;
  }
  EXPECT_FALSE(wallbox_.in_failsafe());
  EXPECT_EQ(wallbox_.current_limit_a(), 10);
  // ...and when it dies, the wallbox falls back to its failsafe on its own.
  backend_->Stop();
  sim_clock_.Advance(absl::Seconds(10));
  EXPECT_TRUE(wallbox_.in_failsafe());
  EXPECT_EQ(wallbox_.current_limit_a(), 6);
  sim_clock_.Advance(absl::Seconds(3));
  EXPECT_EQ(wallbox_.PhaseCurrents()[0], 6);
}

}  // namespace
}  // namespace evgate::sim
