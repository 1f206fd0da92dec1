// The control loop end to end in one process: fake bus owners behind the
// real DeviceDriver service, the load balancer reaching it in-process over
// gRPC as in `evgate run`, time driven by a FakeClock.
#include "services/load_balancer/control_loop.h"

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "device_drivers/driver/device_driver_service.h"
#include "device_drivers/driver/fake_backend.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "runtime/server_host.h"
#include "services/load_balancer/load_balancer_service.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::load_balancer {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;

// Grid 3 x 32 A metered, margin 0; two 3-phase wallboxes 6-32 A on one CAN
// bus, wb2 wired with rotation; failsafe 6 A.
constexpr char kSite[] = R"(
site:
  id: test-site
grid:
  fuse_limit_a: 32
  meter: grid-meter
buses:
  - id: rs485-1
    type: modbus_tcp
    host: 127.0.0.1
  - id: can0
    type: can
    interface: vcan0
    transport: udp
devices:
  - id: grid-meter
    profile: eastron_sdm630
    bus: rs485-1
    address: 1
  - id: wallbox-1
    profile: cabur_ev_plus_22kw
    bus: can0
    address: 1
  - id: wallbox-2
    profile: cabur_ev_plus_22kw
    bus: can0
    address: 2
stations:
  - id: wb1
    device: wallbox-1
    circuit: grid
    evses:
      - id: wb1
        phases: [L1, L2, L3]
        max_current_a: 32
  - id: wb2
    device: wallbox-2
    circuit: grid
    evses:
      - id: wb2
        phases: [L2, L3, L1]
        max_current_a: 32
controller:
  margin_a: 0
  ramp_up_a_per_s: 5
  hysteresis_a: 0.5
  tick_ms: 1000
  meter_timeout_ms: 3000
  min_pause_s: 0
  failsafe_current_a: 6
services:
  session_database: /var/lib/evgate/test.db
insecure_demo: true
)";

v1::DeviceState WallboxState(const std::string& device, const std::string& evse,
                             v1::ConnectorStatus status) {
  v1::DeviceState state;
  state.set_device_id(device);
  state.set_kind(v1::DEVICE_KIND_AC_WALLBOX);
  v1::EvseState* e = state.add_evses();
  e->set_evse_id(evse);
  e->set_connector_status(status);
  return state;
}

// The current limit (A) of `evse` in a batch, -1 when paused, -2 when absent.
double LimitIn(const devices::FakeBackend::Batch& batch, const std::string& evse) {
  for (const v1::Setpoint& s : batch.setpoints) {
    if (s.evse_id() != evse) continue;
    if (s.value().has_pause()) return -1;
    return s.value().current_limit_a().l1();
  }
  return -2;
}

// Within the 0.5 A hysteresis below `target`: an increase smaller than that
// is never sent, so a ramp may stop just short of its target.
bool Reached(const devices::FakeBackend::Batch& batch, const std::string& evse, double target) {
  const double a = LimitIn(batch, evse);
  return a <= target && a >= target - 0.5;
}

class ControlLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = site::LoadSiteConfigString(kSite, "test.yaml");
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    MakeDrivers(v1::CONNECTOR_STATUS_AVAILABLE);
    balancer_ = std::make_unique<LoadBalancerService>(config_, clock_);
    ServerOptions server;
    server.listen = "127.0.0.1:0";
    server.insecure = true;
    auto host = ServerHost::Start(server, {drivers_.get(), balancer_.get()});
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = std::move(*host);
    stub_ = v1::LoadBalancer::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(host_->port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { host_->Shutdown(absl::Seconds(1)); }

  // The grid meter on one fake bus, both wallboxes (in `status`) on another,
  // behind a real DeviceDriver service.
  void MakeDrivers(v1::ConnectorStatus status) {
    auto modbus = std::make_unique<devices::FakeBackend>("rs485-1");
    auto can = std::make_unique<devices::FakeBackend>("can0");
    modbus_ = modbus.get();
    can_ = can.get();
    v1::DeviceState meter;
    meter.set_device_id("grid-meter");
    meter.set_kind(v1::DEVICE_KIND_METER);
    modbus_->SetDevice(meter);
    can_->SetDevice(WallboxState("wallbox-1", "wb1", status));
    can_->SetDevice(WallboxState("wallbox-2", "wb2", status));
    std::vector<std::unique_ptr<devices::DeviceBackend>> backends;
    backends.push_back(std::move(modbus));
    backends.push_back(std::move(can));
    drivers_ = std::make_unique<devices::DeviceDriverService>(std::move(backends), clock_);
  }

  // Waits (real time, up to 5 s) until `done` holds for the CAN bus's batches.
  bool WaitForBatch(const std::function<bool(const devices::FakeBackend::Batch&)>& done) {
    for (int i = 0; i < 500; ++i) {
      auto batches = can_->batches();
      if (!batches.empty() && done(batches.back())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto batches = can_->batches();
    std::string shown;
    for (size_t i = batches.size() > 5 ? batches.size() - 5 : 0; i < batches.size(); ++i) {
      shown += absl::StrFormat(" [wb1 %g wb2 %g]", LimitIn(batches[i], "wb1"),
                               LimitIn(batches[i], "wb2"));
    }
    ADD_FAILURE() << batches.size() << " batches, the last ones:" << shown;
    return false;
  }

  void Meter(double l1, double l2, double l3) {
    v1::WatchDevicesResponse event;
    event.set_device_id("grid-meter");
    v1::MeterReading* reading = event.mutable_telemetry()->mutable_meter();
    reading->mutable_current_a()->set_l1(l1);
    reading->mutable_current_a()->set_l2(l2);
    reading->mutable_current_a()->set_l3(l3);
    *reading->mutable_measured_at() =
        TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_.Now()));
    modbus_->Emit(event);
  }

  // The first batch: the load balancer has the drivers' snapshots.
  void WaitConnected() {
    ASSERT_TRUE(WaitForBatch([](const auto&) { return true; }));
  }

  // The wallbox reports its vehicle drawing `a` on every phase as of now.
  void EvseTelemetry(const std::string& device, const std::string& evse, double a) {
    v1::WatchDevicesResponse event;
    event.set_device_id(device);
    v1::EvseTelemetry* t = event.mutable_telemetry()->add_evses();
    t->set_evse_id(evse);
    t->mutable_measurements()->mutable_current_a()->set_l1(a);
    t->mutable_measurements()->mutable_current_a()->set_l2(a);
    t->mutable_measurements()->mutable_current_a()->set_l3(a);
    *t->mutable_measurements()->mutable_measured_at() =
        TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_.Now()));
    can_->Emit(event);
  }

  void Plug(const std::string& device, const std::string& evse) {
    can_->SetDevice(WallboxState(device, evse, v1::CONNECTOR_STATUS_CHARGING));
    v1::WatchDevicesResponse event;
    event.set_device_id(device);
    *event.mutable_evse_state_change()->mutable_state() =
        WallboxState(device, evse, v1::CONNECTOR_STATUS_CHARGING).evses(0);
    can_->Emit(event);
  }

  // Steps one second: a meter sample with `base` A of building load plus
  // what the EVSEs were last given (they follow at once).
  void Second(double base) {
    clock_.Advance(absl::Seconds(1));
    Sample(base);
  }

  // A meter sample now: `base` A of building load plus what the EVSEs were
  // last given.
  void Sample(double base) {
    auto batches = can_->batches();
    double l[3] = {base, base, base};
    if (!batches.empty()) {
      for (const char* evse : {"wb1", "wb2"}) {
        double a = std::max(0.0, LimitIn(batches.back(), evse));
        for (double& phase : l) phase += a;
      }
    }
    Meter(l[0], l[1], l[2]);
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
  }

  FakeClock clock_;
  site::SiteConfig config_;
  devices::FakeBackend* modbus_ = nullptr;
  devices::FakeBackend* can_ = nullptr;
  std::unique_ptr<devices::DeviceDriverService> drivers_;
  std::unique_ptr<LoadBalancerService> balancer_;
  std::unique_ptr<ServerHost> host_;
  std::unique_ptr<v1::LoadBalancer::Stub> stub_;
};

TEST_F(ControlLoopTest, WithoutMeterDataPluggedEvsesGetTheirFailsafeCurrent) {
  Plug("wallbox-1", "wb1");
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return LimitIn(b, "wb1") == 6; }));
  auto batch = can_->batches().back();
  EXPECT_EQ(LimitIn(batch, "wb2"), -1) << "nothing plugged into wb2: paused";
  EXPECT_EQ(batch.ttl, absl::Seconds(3));
  EXPECT_TRUE(modbus_->batches().empty()) << "the meter's bus has no EVSE: no batch";

  grpc::ClientContext context;
  v1::GetSiteStatusResponse status;
  ASSERT_TRUE(stub_->GetSiteStatus(&context, {}, &status).ok());
  EXPECT_TRUE(status.failsafe());
  EXPECT_EQ(status.failsafe_reason(), v1::FAILSAFE_REASON_NO_METER_DATA);
}

TEST_F(ControlLoopTest, RampsUpOnMeterSamplesAndCutsAtOnceWhenTheBuildingNeedsIt) {
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return Reached(b, "wb1", 32); }))
      << "alone on 32 A, it reaches the fuse after ramping";

  // The building takes 20 A: wb1 must drop to 12 A on the very next sample.
  const size_t before = balancer_->control_loop()->ReactionTimes().size();
  clock_.Advance(absl::Milliseconds(200));
  Sample(20);
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return LimitIn(b, "wb1") == 12; }));
  std::vector<absl::Duration> reactions = balancer_->control_loop()->ReactionTimes();
  ASSERT_GT(reactions.size(), before);
  EXPECT_LT(reactions.back(), absl::Seconds(1));
}

TEST_F(ControlLoopTest, SharesMaxMinFairAcrossRotatedWiringAndSendsOneBatchPerBus) {
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(
      WaitForBatch([](const auto& b) { return Reached(b, "wb1", 16) && Reached(b, "wb2", 16); }));
  const auto batches = can_->batches();
  const v1::Setpoint* wb2 = nullptr;
  for (const v1::Setpoint& s : batches.back().setpoints) {
    if (s.evse_id() == "wb2") wb2 = &s;
  }
  ASSERT_NE(wb2, nullptr);
  EXPECT_TRUE(wb2->value().current_limit_a().has_l2());
  for (const auto& batch : batches) {
    EXPECT_EQ(batch.setpoints.size(), 2u) << "every batch carries the bus's whole set";
  }
  grpc::ClientContext context;
  v1::GetSiteStatusResponse status;
  ASSERT_TRUE(stub_->GetSiteStatus(&context, {}, &status).ok());
  ASSERT_EQ(status.allocation().evses_size(), 2);
  const v1::EvseAllocation& alloc = status.allocation().evses(1);
  EXPECT_EQ(alloc.evse_id(), "wb2");
  EXPECT_DOUBLE_EQ(alloc.phase_current_a().l3(), alloc.current_a()) << "wired to all three";
  EXPECT_GT(status.grid().measured_a().l1(), 0);
}

TEST_F(ControlLoopTest, AStaleMeterFallsBackToFailsafeAndRecovers) {
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return Reached(b, "wb1", 32); }));
  clock_.Advance(absl::Seconds(4));  // no sample for longer than the 3 s timeout
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return LimitIn(b, "wb1") == 6; }));
  grpc::ClientContext context;
  v1::GetSiteStatusResponse status;
  ASSERT_TRUE(stub_->GetSiteStatus(&context, {}, &status).ok());
  EXPECT_TRUE(status.failsafe());
  EXPECT_EQ(status.failsafe_reason(), v1::FAILSAFE_REASON_METER_STALE);
  Second(0);  // fresh again: increases ramp from the failsafe value
  Second(0);
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return LimitIn(b, "wb1") > 6; }));
}

TEST_F(ControlLoopTest, DynamicLimitsBindUntilCleared) {
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return Reached(b, "wb1", 32); }));

  v1::SetDynamicLimitsRequest request;
  v1::DynamicLimitUpdate* update = request.add_updates();
  update->mutable_limit()->set_source("utility");
  update->mutable_limit()->mutable_current_limit_a()->set_l1(20);
  update->mutable_limit()->mutable_current_limit_a()->set_l2(20);
  update->mutable_limit()->mutable_current_limit_a()->set_l3(20);
  {
    grpc::ClientContext context;
    v1::SetDynamicLimitsResponse response;
    ASSERT_TRUE(stub_->SetDynamicLimits(&context, request, &response).ok());
    ASSERT_EQ(response.active_limits_size(), 1);
    EXPECT_EQ(response.active_limits(0).circuit_id(), "grid");
  }
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return LimitIn(b, "wb1") == 20; }));
  {
    grpc::ClientContext context;
    v1::GetSiteStatusResponse status;
    ASSERT_TRUE(stub_->GetSiteStatus(&context, {}, &status).ok());
    EXPECT_EQ(status.dynamic_limits_size(), 1);
    EXPECT_DOUBLE_EQ(status.grid().effective_limit_a().l1(), 20);
  }
  *update->mutable_ttl() = TimeUtil::SecondsToDuration(0);  // clears
  {
    grpc::ClientContext context;
    v1::SetDynamicLimitsResponse response;
    ASSERT_TRUE(stub_->SetDynamicLimits(&context, request, &response).ok());
    EXPECT_EQ(response.active_limits_size(), 0);
  }
  for (int s = 0; s < 4; ++s) Second(0);
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return Reached(b, "wb1", 32); }));
}

TEST_F(ControlLoopTest, PriorityOverrideDecidesWhoPausesWhenMinimumsDoNotFit) {
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  WaitConnected();
  {
    grpc::ClientContext context;
    v1::SetDynamicLimitsRequest request;  // 10 A: room for one minimum only
    v1::DynamicLimit* limit = request.add_updates()->mutable_limit();
    limit->set_source("test");
    limit->mutable_current_limit_a()->set_l1(10);
    limit->mutable_current_limit_a()->set_l2(10);
    limit->mutable_current_limit_a()->set_l3(10);
    v1::SetDynamicLimitsResponse response;
    ASSERT_TRUE(stub_->SetDynamicLimits(&context, request, &response).ok());
  }
  // Nothing draws yet: the meter and both wallboxes measure 0 A.
  for (int s = 0; s < 3; ++s) {
    clock_.Advance(absl::Seconds(1));
    EvseTelemetry("wallbox-1", "wb1", 0);
    EvseTelemetry("wallbox-2", "wb2", 0);
    Meter(0, 0, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
  }
  ASSERT_TRUE(WaitForBatch([](const auto& b) {
    return LimitIn(b, "wb1") > 0 && LimitIn(b, "wb2") == -1;
  })) << "wb1 was plugged in first";
  grpc::ClientContext context;
  v1::SetEvsePriorityRequest request;
  request.set_evse_id("wb2");
  request.set_priority(5);
  v1::SetEvsePriorityResponse response;
  ASSERT_TRUE(stub_->SetEvsePriority(&context, request, &response).ok());
  ASSERT_TRUE(
      WaitForBatch([](const auto& b) { return LimitIn(b, "wb1") == -1 && LimitIn(b, "wb2") > 0; }));
}

TEST_F(ControlLoopTest, WatchAllocationsStreamsTheCurrentThenEachChange) {
  grpc::ClientContext context;
  v1::WatchAllocationsRequest request;
  request.add_evse_ids("wb1");
  auto reader = stub_->WatchAllocations(&context, request);
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  v1::WatchAllocationsResponse message;
  uint64_t last_sequence = 0;
  bool saw_running = false;
  for (int i = 0; i < 20 && !saw_running; ++i) {
    Second(0);
    ASSERT_TRUE(reader->Read(&message));
    ASSERT_EQ(message.allocation().evses_size(), 1) << "filtered to wb1";
    EXPECT_GT(message.allocation().sequence(), last_sequence);
    last_sequence = message.allocation().sequence();
    saw_running = !message.allocation().failsafe() && message.allocation().evses(0).current_a() > 6;
  }
  EXPECT_TRUE(saw_running);
  context.TryCancel();
}

TEST_F(ControlLoopTest, AStaleWallboxCountsAtItsSetpointNotAtAnOldMeasurement) {
  Plug("wallbox-1", "wb1");
  v1::WatchDevicesResponse stale;
  stale.set_device_id("wallbox-1");
  stale.mutable_link_state_change()->mutable_link()->set_stale(true);
  can_->Emit(stale);
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return Reached(b, "wb1", 32); }));
  grpc::ClientContext context;
  v1::GetSiteStatusResponse status;
  ASSERT_TRUE(stub_->GetSiteStatus(&context, {}, &status).ok());
  for (const v1::EvseStatus& evse : status.evses()) {
    if (evse.evse_id() == "wb1") {
      EXPECT_FALSE(evse.measured_a().has_l1());
    }
  }
}

TEST_F(ControlLoopTest, BaseLoadComparesTheMeterWithEvCurrentsOfTheSameMoment) {
  Plug("wallbox-1", "wb1");
  WaitConnected();
  double a = 0;
  for (int s = 0; s < 9; ++s) {
    clock_.Advance(absl::Seconds(1));
    auto batches = can_->batches();
    a = std::max(0.0, LimitIn(batches.back(), "wb1"));
    EvseTelemetry("wallbox-1", "wb1", a);  // the vehicle follows at once
    Meter(a, a, a);
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
  }
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return Reached(b, "wb1", 32); }));
  a = LimitIn(can_->batches().back(), "wb1");

  // The building starts drawing 10 A; the meter sees it and wb1 drops to 22 A.
  clock_.Advance(absl::Milliseconds(200));
  Meter(10 + a, 10 + a, 10 + a);
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return LimitIn(b, "wb1") == 22; }));
  // The vehicle follows 300 ms later, before the meter's next poll: against
  // the old meter reading that would look like 20 A of building load.
  clock_.Advance(absl::Milliseconds(300));
  EvseTelemetry("wallbox-1", "wb1", 22);
  clock_.Advance(absl::Seconds(1));  // a tick, still no new meter sample
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(LimitIn(can_->batches().back(), "wb1"), 22) << "no second, needless cut";
}

TEST_F(ControlLoopTest, ADriversNonsenseDoesNotStopTheLoop) {
  Plug("wallbox-1", "wb1");
  WaitConnected();
  v1::WatchDevicesResponse event;
  event.set_device_id("wallbox-1");
  v1::EvseTelemetry* t = event.mutable_telemetry()->add_evses();
  t->set_evse_id("wb1");
  t->mutable_measurements()->mutable_current_a()->set_l1(std::nan(""));
  t->mutable_measurements()->set_soc_pct(255);  // "unknown" in some protocols
  t->mutable_measurements()->set_session_energy_wh(-5);
  can_->Emit(event);
  Meter(0, 0, 0);
  for (int s = 0; s < 4; ++s) Second(0);
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return LimitIn(b, "wb1") > 6; }))
      << "the loop still leaves failsafe and ramps";
}

// A session service stand-in: the test says what WatchSessions would stream.
class FakeSessionLink final : public SessionLink {
 public:
  void Start(EventHandler on_event, DownHandler) override {
    absl::MutexLock lock(&mu_);
    on_event_ = std::move(on_event);
  }
  void Stop() override {}
  void Emit(v1::SessionEventType type, const std::string& evse, bool authorized) {
    v1::WatchSessionsResponse event;
    event.set_event(type);
    if (type != v1::SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE) {
      event.mutable_session()->set_evse_id(evse);
      event.mutable_session()->set_energy_authorized(authorized);
    }
    absl::MutexLock lock(&mu_);
    on_event_(event);
  }

 private:
  absl::Mutex mu_;
  EventHandler on_event_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ControlLoopTest, WithASessionServiceOnlyAuthorizedSessionsGetEnergy) {
  // A second load balancer on its own server, reaching the drivers over TCP
  // and gated by a (fake) session service.
  auto sessions = std::make_unique<FakeSessionLink>();
  FakeSessionLink* session_feed = sessions.get();
  LoadBalancerService::Links links;
  const std::string drivers = "127.0.0.1:" + std::to_string(host_->port());
  links.drivers.push_back(std::make_unique<GrpcDeviceLink>(
      drivers, grpc::CreateChannel(drivers, grpc::InsecureChannelCredentials())));
  links.sessions = std::move(sessions);
  host_->Shutdown(absl::Seconds(1));  // the first load balancer must not dispatch too
  drivers_ = nullptr;
  balancer_ = nullptr;

  MakeDrivers(v1::CONNECTOR_STATUS_CHARGING);
  ServerOptions server;
  server.listen = drivers;  // the address the link was given
  server.insecure = true;
  auto driver_host = ServerHost::Start(server, {drivers_.get()});
  ASSERT_TRUE(driver_host.ok()) << driver_host.status();
  balancer_ = std::make_unique<LoadBalancerService>(config_, clock_, std::move(links));
  server.listen = "127.0.0.1:0";
  auto balancer_host = ServerHost::Start(server, {balancer_.get()});
  ASSERT_TRUE(balancer_host.ok()) << balancer_host.status();
  host_ = std::move(*balancer_host);

  // Both plugged in, no session yet: nobody gets current.
  session_feed->Emit(v1::SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE, "", false);
  Meter(0, 0, 0);
  ASSERT_TRUE(WaitForBatch(
      [](const auto& b) { return LimitIn(b, "wb1") == -1 && LimitIn(b, "wb2") == -1; }));
  // A card authorizes wb2 only.
  session_feed->Emit(v1::SESSION_EVENT_TYPE_STARTED, "wb2", true);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(
      WaitForBatch([](const auto& b) { return LimitIn(b, "wb1") == -1 && Reached(b, "wb2", 32); }));
  // The session ends: wb2 is paused at once.
  session_feed->Emit(v1::SESSION_EVENT_TYPE_ENDED, "wb2", false);
  ASSERT_TRUE(WaitForBatch([](const auto& b) { return LimitIn(b, "wb2") == -1; }));
  (*driver_host)->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace evgate::load_balancer
