// The control loop's test fixture: fake drivers behind the DeviceLink
// interface (they keep the sequence like the real driver and accept every
// setpoint unless told otherwise), a fake session service, a FakeClock, and
// a ControlLoopTest fixture whose helpers step the loop explicitly. Used by
// control_loop_test (allocation behaviour), control_loop_safety_test (what
// the loop cannot trust or command) and control_loop_dispatch_test
// (sequences and dispatch order).
#ifndef EVGATE_SERVICES_LOAD_BALANCER_CONTROL_LOOP_TEST_FIXTURE_H_
#define EVGATE_SERVICES_LOAD_BALANCER_CONTROL_LOOP_TEST_FIXTURE_H_

#include <cmath>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "services/load_balancer/control_loop.h"
#include "services/load_balancer/proto_conversions.h"
#include "site_controller/config/api_conversions.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::load_balancer::loop_testing {

// Grid 3 x 32 A metered, margin 0; two 3-phase wallboxes 6-32 A, wb2 wired
// with rotation; failsafe 6 A; setpoint TTL 3 s (tick 1 s).
inline constexpr char kSite[] = R"(
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

// Every batch any fake driver took, in the order they took them.
struct Record {
  struct Taken {
    std::string driver;
    v1::ApplySetpointsRequest request;
  };
  absl::Mutex mu;
  std::vector<Taken> taken ABSL_GUARDED_BY(mu);
};

// A device driver as the loop sees it: the test emits its stream's events;
// it keeps the sequence like the real driver (refuses one not newer than the
// last applied as ABORTED) and accepts every setpoint unless told otherwise.
class FakeDriver final : public DeviceLink {
 public:
  FakeDriver(std::string name, Record* record) : name_(std::move(name)), record_(record) {}

  std::string name() const override { return name_; }
  void Start(EventHandler on_event, DownHandler on_down) override {
    on_event_ = std::move(on_event);
    on_down_ = std::move(on_down);
  }
  void Stop() override {}

  absl::StatusOr<v1::ApplySetpointsResponse> Apply(const v1::ApplySetpointsRequest& request,
                                                   absl::Duration deadline) override {
    absl::MutexLock lock(&mu_);
    if (!entered_.HasBeenNotified()) entered_.Notify();
    mu_.Await(absl::Condition(
        +[](bool* held) { return !*held; }, &held_));
    deadlines_.push_back(deadline);
    if (request.sequence() <= last_applied_) {
      return absl::AbortedError(
          absl::StrCat("sequence ", request.sequence(), " is not newer than ", last_applied_));
    }
    if (!fail_with_.ok()) {
      ++failures_;
      return fail_with_;
    }
    last_applied_ = request.sequence();
    {
      absl::MutexLock record_lock(&record_->mu);
      record_->taken.push_back({name_, request});
    }
    v1::ApplySetpointsResponse response;
    response.set_sequence(request.sequence());
    for (const v1::Setpoint& s : request.setpoints()) {
      v1::SetpointResult* result = response.add_results();
      result->set_evse_id(s.evse_id());
      if (refuse_.count(s.evse_id()) > 0) {
        result->set_status(v1::SETPOINT_STATUS_REJECTED);
        result->set_reason(v1::SETPOINT_REJECT_REASON_DEVICE_REJECTED);
        result->set_message("the wallbox said no");
      } else {
        result->set_status(v1::SETPOINT_STATUS_ACCEPTED);
        if (round_down_to_ > 0 && s.value().has_current_limit_a()) {
          // What a wallbox with a coarser resolution puts in force.
          v1::SetpointValue* in_force = result->mutable_in_force()->mutable_value();
          *in_force = s.value();
          v1::PhaseValues* a = in_force->mutable_current_limit_a();
          if (a->has_l1()) a->set_l1(std::floor(a->l1() / round_down_to_) * round_down_to_);
          if (a->has_l2()) a->set_l2(std::floor(a->l2() / round_down_to_) * round_down_to_);
          if (a->has_l3()) a->set_l3(std::floor(a->l3() / round_down_to_) * round_down_to_);
        }
      }
    }
    return response;
  }
  // Accepted current limits are reported in force rounded down to `step` A.
  void RoundInForceDownTo(double step) {
    absl::MutexLock lock(&mu_);
    round_down_to_ = step;
  }

  absl::StatusOr<v1::GetControllerSequenceResponse> ControllerSequence(
      const std::string& controller_id, absl::Duration) override {
    absl::MutexLock lock(&mu_);
    ++sequence_queries_;
    EXPECT_EQ(controller_id, "load_balancer");
    v1::GetControllerSequenceResponse response;
    response.set_last_applied_sequence(last_applied_);
    response.set_window(1 << 20);
    return response;
  }

  void Emit(const v1::WatchDevicesResponse& event) { on_event_(event); }
  void Down() { on_down_(absl::UnavailableError("stream lost")); }

  void Refuse(const std::string& evse, bool refuse) {
    absl::MutexLock lock(&mu_);
    if (refuse) {
      refuse_.insert(evse);
    } else {
      refuse_.erase(evse);
    }
  }
  void FailWith(absl::Status status) {
    absl::MutexLock lock(&mu_);
    fail_with_ = std::move(status);
  }
  void SetLastApplied(uint64_t sequence) {
    absl::MutexLock lock(&mu_);
    last_applied_ = sequence;
  }
  uint64_t last_applied() {
    absl::MutexLock lock(&mu_);
    return last_applied_;
  }
  int sequence_queries() {
    absl::MutexLock lock(&mu_);
    return sequence_queries_;
  }
  std::vector<absl::Duration> deadlines() {
    absl::MutexLock lock(&mu_);
    return deadlines_;
  }
  // After Hold(), Apply() waits for Release() before it does anything;
  // entered() is notified when it is called. The driver owns the hold, so a
  // call still waiting when the test body ends is released by TearDown, not
  // left waiting on a test's destroyed local.
  void Hold() {
    absl::MutexLock lock(&mu_);
    held_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
  }
  // Calls answered with FailWith's status so far; waits (up to 10 s of real
  // time) until more than `n` were.
  int failures() {
    absl::MutexLock lock(&mu_);
    return failures_;
  }
  bool WaitForFailures(int n) {
    auto more = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return failures_ > n; };
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&more), absl::Seconds(10));
  }
  absl::Notification& entered() { return entered_; }

 private:
  const std::string name_;
  Record* const record_;
  EventHandler on_event_;
  DownHandler on_down_;
  absl::Notification entered_;
  absl::Mutex mu_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_applied_ ABSL_GUARDED_BY(mu_) = 0;
  int sequence_queries_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> refuse_ ABSL_GUARDED_BY(mu_);
  double round_down_to_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_with_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> deadlines_ ABSL_GUARDED_BY(mu_);
};

// A session service stand-in: the test says what WatchSessions would stream.
class FakeSessionLink final : public SessionLink {
 public:
  void Start(EventHandler on_event, DownHandler) override { on_event_ = std::move(on_event); }
  void Stop() override {}
  void Emit(v1::SessionEventType type, const std::string& evse, bool authorized) {
    v1::WatchSessionsResponse event;
    event.set_event(type);
    if (type != v1::SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE) {
      event.mutable_session()->set_evse_id(evse);
      event.mutable_session()->set_energy_authorized(authorized);
    }
    on_event_(event);
  }

 private:
  EventHandler on_event_;
};

inline v1::DeviceState WallboxState(const std::string& device, const std::string& evse,
                                    v1::ConnectorStatus status) {
  v1::DeviceState state;
  state.set_device_id(device);
  state.set_kind(v1::DEVICE_KIND_AC_WALLBOX);
  v1::EvseState* e = state.add_evses();
  e->set_evse_id(evse);
  e->set_connector_status(status);
  return state;
}

// The current limit (A, phase of the EVSE's L1) of `evse` in a request, -1
// when paused, -2 when absent.
inline double LimitIn(const v1::ApplySetpointsRequest& request, const std::string& evse) {
  for (const v1::Setpoint& s : request.setpoints()) {
    if (s.evse_id() != evse) continue;
    if (s.value().has_pause()) return -1;
    for (int p = 0; p < 3; ++p) {
      if (std::optional<double> a = GetPhase(s.value().current_limit_a(), p)) return *a;
    }
  }
  return -2;
}

class ControlLoopTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // A call still held would keep Stop() from joining its thread.
    for (auto& driver : drivers_) driver->Release();
    if (loop_ != nullptr) loop_->Stop();
  }

  // A loop with `drivers` fake drivers (driver 0 has the meter and
  // wallbox-1; with two, driver 1 has wallbox-2). `keep`: reuse the drivers
  // of the previous loop (a restart of the load balancer).
  void Make(int drivers = 1, std::unique_ptr<SessionLink> sessions = nullptr,
            const std::string& yaml = kSite, bool keep = false, bool stepped = true) {
    auto config = site::LoadSiteConfigString(yaml, "test.yaml");
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    if (loop_ != nullptr) loop_->Stop();
    loop_.reset();
    if (!keep) {
      drivers_.clear();
      for (int i = 0; i < drivers; ++i) {
        drivers_.push_back(std::make_shared<FakeDriver>(absl::StrCat("driver-", i), &record_));
      }
    }
    std::vector<std::unique_ptr<DeviceLink>> links;
    for (const auto& driver : drivers_) links.push_back(std::make_unique<Forward>(driver));
    ControlLoopOptions options = ControlLoopOptionsFromConfig(config_.controller);
    options.stepped = stepped;
    auto loop =
        ControlLoop::Create(config_, std::move(links), std::move(sessions), clock_, options);
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
    loop_->Start();
  }

  // A loop (see Make) with wb1 plugged in, after eight seconds of meter
  // samples with no building load: it has ramped to its 32 A.
  void ChargeOne(int drivers = 1) {
    Make(drivers);
    Connect();
    Plug("wallbox-1", "wb1");
    Meter(0, 0, 0);
    for (int s = 0; s < 8; ++s) Second(0);
  }
  // The same with wb1 and wb2 plugged in: 16 A each.
  void ChargeBoth(int drivers = 1) {
    Make(drivers);
    Connect();
    Plug("wallbox-1", "wb1");
    Plug("wallbox-2", "wb2");
    Meter(0, 0, 0);
    for (int s = 0; s < 8; ++s) Second(0);
  }

  FakeDriver& Driver(size_t i) { return *drivers_.at(i); }
  FakeDriver& DriverOf(const std::string& device) {
    return drivers_.size() > 1 && device == "wallbox-2" ? Driver(1) : Driver(0);
  }

  // Every driver's initial snapshots; nothing plugged in.
  void Connect() {
    v1::WatchDevicesResponse meter;
    meter.set_device_id("grid-meter");
    meter.mutable_snapshot()->set_device_id("grid-meter");
    meter.mutable_snapshot()->set_kind(v1::DEVICE_KIND_METER);
    Driver(0).Emit(meter);
    for (auto [device, evse] : {std::pair{"wallbox-1", "wb1"}, std::pair{"wallbox-2", "wb2"}}) {
      v1::WatchDevicesResponse event;
      event.set_device_id(device);
      *event.mutable_snapshot() = WallboxState(device, evse, v1::CONNECTOR_STATUS_AVAILABLE);
      DriverOf(device).Emit(event);
    }
    for (const auto& driver : drivers_) {
      v1::WatchDevicesResponse complete;
      complete.mutable_initial_snapshot_complete();
      driver->Emit(complete);
    }
    loop_->Step();
  }

  void Plug(const std::string& device, const std::string& evse) {
    v1::WatchDevicesResponse event;
    event.set_device_id(device);
    *event.mutable_evse_state_change()->mutable_state() =
        WallboxState(device, evse, v1::CONNECTOR_STATUS_CHARGING).evses(0);
    DriverOf(device).Emit(event);
    loop_->Step();
  }

  v1::WatchDevicesResponse MeterEvent(double l1, double l2, double l3) {
    v1::WatchDevicesResponse event;
    event.set_device_id("grid-meter");
    v1::MeterReading* reading = event.mutable_telemetry()->mutable_meter();
    reading->mutable_current_a()->set_l1(l1);
    reading->mutable_current_a()->set_l2(l2);
    reading->mutable_current_a()->set_l3(l3);
    *reading->mutable_measured_at() = api::ToProto(clock_.Now());
    return event;
  }

  void Meter(double l1, double l2, double l3) {
    Driver(0).Emit(MeterEvent(l1, l2, l3));
    loop_->Step();
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
    *t->mutable_measurements()->mutable_measured_at() = api::ToProto(clock_.Now());
    DriverOf(device).Emit(event);
  }

  // The value a driver last took for `evse` (see LimitIn).
  double Limit(const std::string& evse) {
    absl::MutexLock lock(&record_.mu);
    for (auto it = record_.taken.rbegin(); it != record_.taken.rend(); ++it) {
      const double a = LimitIn(it->request, evse);
      if (a != -2) return a;
    }
    return -2;
  }
  // Within the 0.5 A hysteresis below `target`: an increase smaller than that
  // is never sent, so a ramp may stop just short of its target.
  bool Reached(const std::string& evse, double target) {
    const double a = Limit(evse);
    return a <= target && a >= target - 0.5;
  }
  std::vector<Record::Taken> Taken() {
    absl::MutexLock lock(&record_.mu);
    return record_.taken;
  }
  // With the loop's own thread: waits until `driver` took more than `n`
  // batches (no sleeping; false after 10 s).
  bool WaitForTaken(const std::string& driver, size_t n) {
    auto more = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(record_.mu) {
      size_t count = 0;
      for (const Record::Taken& t : record_.taken) count += t.driver == driver;
      return count > n;
    };
    absl::MutexLock lock(&record_.mu);
    return record_.mu.AwaitWithTimeout(absl::Condition(&more), absl::Seconds(10));
  }
  size_t TakenBy(const std::string& driver) {
    size_t count = 0;
    for (const Record::Taken& t : Taken()) count += t.driver == driver;
    return count;
  }

  // Steps one second: a meter sample with `base` A of building load plus
  // what the EVSEs were last given (they follow at once).
  void Second(double base) {
    clock_.Advance(absl::Seconds(1));
    Sample(base);
  }
  void Sample(double base) {
    double l = base;
    for (const char* evse : {"wb1", "wb2"}) l += std::max(0.0, Limit(evse));
    Meter(l, l, l);
  }

  // The allocation the loop shows now, for `evse`.
  v1::EvseAllocation Shown(const std::string& evse) {
    LoopSnapshot snapshot = loop_->Snapshot();
    if (snapshot.allocation) {
      for (const v1::EvseAllocation& e : snapshot.allocation->evses()) {
        if (e.evse_id() == evse) return e;
      }
    }
    ADD_FAILURE() << "no allocation for " << evse;
    return {};
  }

  // Runs `call` (which waits for the loop thread) while stepping the loop.
  template <typename Call>
  auto WhileStepping(Call call) {
    auto result = std::async(std::launch::async, call);
    while (result.wait_for(std::chrono::seconds(0)) != std::future_status::ready) loop_->Step();
    loop_->Step();
    return result.get();
  }

  absl::Status SetLimit(double a, absl::Duration ttl = absl::InfiniteDuration()) {
    v1::DynamicLimit limit;
    limit.set_source("utility");
    limit.mutable_current_limit_a()->set_l1(a);
    limit.mutable_current_limit_a()->set_l2(a);
    limit.mutable_current_limit_a()->set_l3(a);
    const absl::Time expires =
        ttl == absl::InfiniteDuration() ? absl::InfiniteFuture() : clock_.Now() + ttl;
    return WhileStepping([&] { return loop_->SetDynamicLimits({{limit, expires}}).status(); });
  }

  // The loop owns its links; the drivers outlive it (a restart keeps them).
  class Forward final : public DeviceLink {
   public:
    explicit Forward(std::shared_ptr<FakeDriver> driver) : driver_(std::move(driver)) {}
    std::string name() const override { return driver_->name(); }
    void Start(EventHandler on_event, DownHandler on_down) override {
      driver_->Start(std::move(on_event), std::move(on_down));
    }
    void Stop() override {}
    absl::StatusOr<v1::ApplySetpointsResponse> Apply(const v1::ApplySetpointsRequest& request,
                                                     absl::Duration deadline) override {
      return driver_->Apply(request, deadline);
    }
    absl::StatusOr<v1::GetControllerSequenceResponse> ControllerSequence(
        const std::string& controller_id, absl::Duration deadline) override {
      return driver_->ControllerSequence(controller_id, deadline);
    }

   private:
    std::shared_ptr<FakeDriver> driver_;
  };

  FakeClock clock_;
  site::SiteConfig config_;
  Record record_;
  std::vector<std::shared_ptr<FakeDriver>> drivers_;
  std::unique_ptr<ControlLoop> loop_;
};

// kSite with a grid of 3 x 63 A and a metered circuit c1 of 3 x 32 A under
// it, wb1 on c1 (meter c1-meter on rs485-1), wb2 still on the grid.
inline std::string CircuitSite() {
  std::string yaml = absl::StrReplaceAll(
      kSite, {{"  fuse_limit_a: 32\n  meter: grid-meter\n",
               "  fuse_limit_a: 63\n  meter: grid-meter\ncircuits:\n  - id: c1\n    parent: grid\n"
               "    limit_a: 32\n    meter: c1-meter\n"},
              {"devices:\n",
               "devices:\n  - id: c1-meter\n    profile: eastron_sdm630\n"
               "    bus: rs485-1\n    address: 2\n"}});
  // wb1's station is the first one on the grid.
  const std::string wb1 = "    device: wallbox-1\n    circuit: grid\n";
  yaml.replace(yaml.find(wb1), wb1.size(), "    device: wallbox-1\n    circuit: c1\n");
  return yaml;
}

}  // namespace evgate::load_balancer::loop_testing

#endif  // EVGATE_SERVICES_LOAD_BALANCER_CONTROL_LOOP_TEST_FIXTURE_H_
