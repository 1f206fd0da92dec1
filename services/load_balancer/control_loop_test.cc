// The control loop driven step by step: fake drivers behind the DeviceLink
// interface, time from a FakeClock, every round an explicit Step(). Nothing
// here waits on real time, except the one test of a driver that hangs, which
// waits on notifications.
#include "services/load_balancer/control_loop.h"

#include <atomic>
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
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "services/load_balancer/proto_conversions.h"
#include "site_controller/config/api_conversions.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::load_balancer {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;

// Grid 3 x 32 A metered, margin 0; two 3-phase wallboxes 6-32 A, wb2 wired
// with rotation; failsafe 6 A; setpoint TTL 3 s (tick 1 s).
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
    {
      absl::MutexLock lock(&mu_);
      if (!entered_.HasBeenNotified()) entered_.Notify();
    }
    if (hold_ != nullptr) hold_->WaitForNotification();
    absl::MutexLock lock(&mu_);
    deadlines_.push_back(deadline);
    if (request.sequence() <= last_applied_) {
      return absl::AbortedError(
          absl::StrCat("sequence ", request.sequence(), " is not newer than ", last_applied_));
    }
    if (!fail_with_.ok()) return fail_with_;
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
      }
    }
    return response;
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
  // Apply() waits for `hold` before it does anything; entered() is notified
  // when it is called.
  void Hold(absl::Notification* hold) { hold_ = hold; }
  absl::Notification& entered() { return entered_; }

 private:
  const std::string name_;
  Record* const record_;
  EventHandler on_event_;
  DownHandler on_down_;
  absl::Notification* hold_ = nullptr;
  absl::Notification entered_;
  absl::Mutex mu_;
  uint64_t last_applied_ ABSL_GUARDED_BY(mu_) = 0;
  int sequence_queries_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> refuse_ ABSL_GUARDED_BY(mu_);
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

// The current limit (A, phase of the EVSE's L1) of `evse` in a request, -1
// when paused, -2 when absent.
double LimitIn(const v1::ApplySetpointsRequest& request, const std::string& evse) {
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
    if (loop_ != nullptr) loop_->Stop();
  }

  // A loop with `drivers` fake drivers (driver 0 has the meter and
  // wallbox-1; with two, driver 1 has wallbox-2). `keep`: reuse the drivers
  // of the previous loop (a restart of the load balancer).
  void Make(int drivers = 1, std::unique_ptr<SessionLink> sessions = nullptr,
            const char* yaml = kSite, bool keep = false, bool stepped = true) {
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

TEST_F(ControlLoopTest, WithoutMeterDataPluggedEvsesGetTheirFailsafeCurrent) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  EXPECT_EQ(Limit("wb1"), 6);
  EXPECT_EQ(Limit("wb2"), -1) << "nothing plugged into wb2: paused";
  const std::vector<Record::Taken> taken = Taken();
  ASSERT_FALSE(taken.empty());
  EXPECT_EQ(TimeUtil::DurationToSeconds(taken.back().request.ttl()), 3);
  EXPECT_EQ(Driver(0).deadlines().back(), absl::Seconds(1)) << "(TTL 3 s - tick 1 s) / 2";
  EXPECT_TRUE(loop_->Snapshot().failsafe);
}

TEST_F(ControlLoopTest, RampsUpOnMeterSamplesAndCutsAtOnceWhenTheBuildingNeedsIt) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(Reached("wb1", 32)) << Limit("wb1") << " A: alone on 32 A, it reaches the fuse";

  // The building takes 20 A: wb1 must drop to 12 A on the very next sample.
  const size_t before = loop_->ReactionTimes().size();
  clock_.Advance(absl::Milliseconds(200));
  Sample(20);
  EXPECT_EQ(Limit("wb1"), 12);
  EXPECT_GT(loop_->ReactionTimes().size(), before);
}

TEST_F(ControlLoopTest, SharesMaxMinFairAcrossRotatedWiringAndSendsOneBatchPerDriver) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(Reached("wb1", 16) && Reached("wb2", 16)) << Limit("wb1") << " " << Limit("wb2");
  const std::vector<Record::Taken> taken = Taken();
  const v1::ApplySetpointsRequest& last = taken.back().request;
  for (const v1::Setpoint& s : last.setpoints()) {
    if (s.evse_id() == "wb2") {
      EXPECT_TRUE(s.value().current_limit_a().has_l2());
    }
  }
  for (const Record::Taken& t : taken) {
    EXPECT_EQ(t.request.setpoints_size(), 2) << "every batch carries the driver's whole set";
  }
  const v1::EvseAllocation wb2 = Shown("wb2");
  EXPECT_DOUBLE_EQ(wb2.phase_current_a().l3(), wb2.current_a()) << "wired to all three";
  EXPECT_TRUE(wb2.not_controlled_reason().empty());
}

TEST_F(ControlLoopTest, AStaleMeterFallsBackToFailsafeAndRecovers) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(Reached("wb1", 32));
  clock_.Advance(absl::Seconds(4));  // no sample for longer than the 3 s timeout
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), 6);
  EXPECT_TRUE(loop_->Snapshot().failsafe);
  EXPECT_TRUE(loop_->Snapshot().grid_sample_at.has_value());
  Second(0);  // fresh again: increases ramp from the failsafe value
  Second(0);
  EXPECT_GT(Limit("wb1"), 6);
}

// Issue #10 item 4: ages on the monotonic clock. With wall-clock ages, a step
// back (NTP correcting a box that booted without RTC) froze the meter's age
// and the failsafe never came.
TEST_F(ControlLoopTest, AWallClockStepBackDoesNotFreezeTheMeterAge) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(Reached("wb1", 32));
  clock_.StepWall(-absl::Hours(1));
  clock_.Advance(absl::Seconds(4));  // the meter went quiet
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), 6) << "4 s without a sample is stale, whatever the wall clock did";
  EXPECT_TRUE(loop_->Snapshot().failsafe);
}

TEST_F(ControlLoopTest, AWallClockStepForwardDoesNotAgeFreshSamples) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(Reached("wb1", 32));
  clock_.StepWall(absl::Hours(1));
  Second(0);  // stamped by the driver with the new wall time: fresh
  Second(0);
  EXPECT_TRUE(Reached("wb1", 32)) << Limit("wb1");
  EXPECT_FALSE(loop_->Snapshot().failsafe);
}

// Issue #10 item 4: sequences from the driver, not from the wall clock.
TEST_F(ControlLoopTest, SequencesContinueFromTheDriverAcrossRestartsAndClockSteps) {
  Make();
  Driver(0).SetLastApplied(41);  // what a previous instance left
  Connect();
  Plug("wallbox-1", "wb1");
  std::vector<Record::Taken> taken = Taken();
  ASSERT_FALSE(taken.empty());
  EXPECT_EQ(taken.front().request.sequence(), 42u);
  EXPECT_EQ(Driver(0).sequence_queries(), 1);

  clock_.StepWall(-absl::Hours(24));  // NTP after a boot without RTC
  Meter(0, 0, 0);
  Second(0);
  taken = Taken();
  for (size_t i = 1; i < taken.size(); ++i) {
    EXPECT_EQ(taken[i].request.sequence(), taken[i - 1].request.sequence() + 1);
  }
  const size_t before_restart = taken.size();

  // A restarted load balancer, with the wall clock a day behind.
  Make(1, nullptr, kSite, /*keep=*/true);
  const uint64_t last = Driver(0).last_applied();
  Connect();
  Plug("wallbox-1", "wb1");
  taken = Taken();
  ASSERT_GT(taken.size(), before_restart) << "the restarted loop is not locked out";
  EXPECT_EQ(taken[before_restart].request.sequence(), last + 1);

  // Another instance with our id moved the driver on: ABORTED, asked again,
  // retried once — taken.
  Driver(0).SetLastApplied(last + 1000);
  const int queries = Driver(0).sequence_queries();
  clock_.Advance(absl::Seconds(1));
  loop_->Step();  // the tick's refresh
  taken = Taken();
  EXPECT_EQ(taken.back().request.sequence(), last + 1001);
  EXPECT_EQ(Driver(0).sequence_queries(), queries + 1);
}

TEST_F(ControlLoopTest, DynamicLimitsBindUntilCleared) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(Reached("wb1", 32));
  ASSERT_TRUE(SetLimit(20).ok());
  EXPECT_EQ(Limit("wb1"), 20);
  EXPECT_EQ(loop_->Snapshot().dynamic_limits.size(), 1u);
  ASSERT_TRUE(SetLimit(20, absl::ZeroDuration()).ok());  // clears
  EXPECT_TRUE(loop_->Snapshot().dynamic_limits.empty());
  for (int s = 0; s < 4; ++s) Second(0);
  EXPECT_TRUE(Reached("wb1", 32));
}

TEST_F(ControlLoopTest, ADynamicLimitExpiresOnTheMonotonicClock) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(SetLimit(20, absl::Seconds(10)).ok());
  EXPECT_EQ(Limit("wb1"), 20);
  clock_.StepWall(absl::Hours(1));  // does not end it early
  Second(0);
  EXPECT_EQ(Limit("wb1"), 20);
  EXPECT_EQ(loop_->Snapshot().dynamic_limits.size(), 1u);
  for (int s = 0; s < 12; ++s) Second(0);
  EXPECT_GT(Limit("wb1"), 20);
  EXPECT_TRUE(loop_->Snapshot().dynamic_limits.empty());
}

TEST_F(ControlLoopTest, PriorityOverrideDecidesWhoPausesWhenMinimumsDoNotFit) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  ASSERT_TRUE(SetLimit(10).ok());  // room for one minimum only
  for (int s = 0; s < 3; ++s) {
    clock_.Advance(absl::Seconds(1));
    EvseTelemetry("wallbox-1", "wb1", 0);
    EvseTelemetry("wallbox-2", "wb2", 0);
    Meter(0, 0, 0);
  }
  EXPECT_GT(Limit("wb1"), 0) << "wb1 was plugged in first";
  EXPECT_EQ(Limit("wb2"), -1);
  ASSERT_TRUE(
      WhileStepping([&] { return loop_->SetEvsePriority("wb2", 5, absl::InfiniteFuture()); }).ok());
  EXPECT_EQ(Limit("wb1"), -1);
  EXPECT_GT(Limit("wb2"), 0);
}

// Issue #10 item 2: a stale wallbox cannot be commanded. It used to be
// allocated as if it obeyed (this test expected it ramped to 32 A).
TEST_F(ControlLoopTest, AStaleWallboxIsNotCommandedAndCountsAtItsWorstCase) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) {
    clock_.Advance(absl::Seconds(1));
    EvseTelemetry("wallbox-1", "wb1", std::max(0.0, Limit("wb1")));
    EvseTelemetry("wallbox-2", "wb2", std::max(0.0, Limit("wb2")));
    Sample(0);
  }
  ASSERT_TRUE(Reached("wb1", 16) && Reached("wb2", 16));
  const double held = Limit("wb1");

  v1::WatchDevicesResponse stale;
  stale.set_device_id("wallbox-1");
  stale.mutable_link_state_change()->mutable_link()->set_stale(true);
  Driver(0).Emit(stale);
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), 6) << "told its failsafe value, for when it answers again";
  EXPECT_THAT(Shown("wb1").not_controlled_reason(), HasSubstr("stale"));
  for (int s = 0; s < 10; ++s) Second(0);
  EXPECT_LE(Limit("wb2"), 32 - held + 1e-9)
      << "wb1 may still draw its " << held << " A: wb2 gets only what is left";

  // Its own watchdog (65.535 s after the last refresh, plus the 3 s TTL)
  // has provably put it at its 6 A failsafe: wb2 gets the rest.
  // Unmeasured, its draw cannot be told apart from the building's in the
  // meter's reading: it counts there (up to 6 A) and at its failsafe, 20 A
  // are left for wb2.
  for (int s = 0; s < 60; ++s) Second(0);
  EXPECT_LE(Limit("wb2"), 32 - held + 1e-9);
  for (int s = 0; s < 15; ++s) Second(0);
  EXPECT_TRUE(Reached("wb2", 20)) << Limit("wb2");

  // It answers again: back under control, shared fairly.
  stale.mutable_link_state_change()->mutable_link()->set_stale(false);
  Driver(0).Emit(stale);
  loop_->Step();
  EXPECT_TRUE(Shown("wb1").not_controlled_reason().empty());
  for (int s = 0; s < 8; ++s) Second(0);
  EXPECT_TRUE(Reached("wb1", 16) && Reached("wb2", 16)) << Limit("wb1") << " " << Limit("wb2");
}

// After a restart, an EVSE no driver has reported yet may still be at what a
// previous instance left it: at most its maximum, until TTL + the longest
// device watchdog have passed.
TEST_F(ControlLoopTest, AnEvseNoDriverReportedCountsAtItsMaximumUntilItsWatchdogPassed) {
  Make(2);
  v1::WatchDevicesResponse meter;  // driver 1 (wallbox-2) never answers
  meter.set_device_id("grid-meter");
  meter.mutable_snapshot()->set_device_id("grid-meter");
  meter.mutable_snapshot()->set_kind(v1::DEVICE_KIND_METER);
  Driver(0).Emit(meter);
  v1::WatchDevicesResponse wallbox;
  wallbox.set_device_id("wallbox-1");
  *wallbox.mutable_snapshot() = WallboxState("wallbox-1", "wb1", v1::CONNECTOR_STATUS_AVAILABLE);
  Driver(0).Emit(wallbox);
  v1::WatchDevicesResponse complete;
  complete.mutable_initial_snapshot_complete();
  Driver(0).Emit(complete);
  loop_->Step();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 10; ++s) Second(0);
  EXPECT_EQ(Limit("wb1"), -1) << "wb2 may draw the whole 32 A";
  EXPECT_THAT(loop_->Snapshot().evses.at("wb2").not_commandable, HasSubstr("no driver"));
  for (int s = 0; s < 70; ++s) Second(0);
  // wb2 is at its 6 A failsafe now (the meter shows it draws nothing).
  EXPECT_TRUE(Reached("wb1", 26)) << Limit("wb1");
}

// Issue #10 item 2: a refused setpoint was recorded as sent and the EVSE
// counted as obeying.
TEST_F(ControlLoopTest, ARefusedSetpointIsNotCountedAsObeyed) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(Reached("wb1", 16) && Reached("wb2", 16));
  const double held = Limit("wb1");

  Driver(0).Refuse("wb1", true);
  const uint64_t published = loop_->Snapshot().allocation->sequence();
  Second(0);  // the tick's refresh is refused for wb1
  EXPECT_THAT(Shown("wb1").not_controlled_reason(), HasSubstr("the wallbox said no"));
  std::optional<v1::Allocation> streamed =
      loop_->WaitForAllocation(published, absl::ZeroDuration());
  ASSERT_TRUE(streamed.has_value()) << "WatchAllocations streams the change of control";
  for (int s = 0; s < 10; ++s) Second(0);
  EXPECT_LE(Limit("wb2"), 32 - held + 1e-9) << "wb1 still has its " << held << " A in force";

  Driver(0).Refuse("wb1", false);
  Second(0);  // the refresh is taken: under control again
  EXPECT_TRUE(Shown("wb1").not_controlled_reason().empty());
  for (int s = 0; s < 8; ++s) Second(0);
  EXPECT_TRUE(Reached("wb1", 16) && Reached("wb2", 16)) << Limit("wb1") << " " << Limit("wb2");
}

// A batch that failed (deadline) may have been applied: its EVSEs count at
// the higher of what they had and what was sent.
TEST_F(ControlLoopTest, AFailedBatchLeavesItsEvsesNotCommandable) {
  Make(2);
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(Reached("wb1", 16) && Reached("wb2", 16));
  Driver(1).FailWith(absl::DeadlineExceededError("ApplySetpoints on driver-1: deadline"));
  Second(0);
  EXPECT_THAT(Shown("wb2").not_controlled_reason(), HasSubstr("deadline"));
  // Retried with the tick only, not at every input.
  const size_t calls = Driver(1).deadlines().size();
  clock_.Advance(absl::Milliseconds(300));
  Sample(5);
  EXPECT_EQ(Driver(1).deadlines().size(), calls);
  clock_.Advance(absl::Seconds(1));
  loop_->Step();
  EXPECT_EQ(Driver(1).deadlines().size(), calls + 1);
  for (int s = 0; s < 5; ++s) Second(0);
  EXPECT_LE(Limit("wb1"), 16.0 + 1e-9);
  Driver(1).FailWith(absl::OkStatus());
  Second(0);
  EXPECT_TRUE(Shown("wb2").not_controlled_reason().empty());
}

TEST_F(ControlLoopTest, ADriverThatIsDownLeavesItsEvsesNotCommandable) {
  Make(2);
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(Reached("wb1", 16) && Reached("wb2", 16));
  const double held = Limit("wb2");
  Driver(1).Down();
  loop_->Step();
  EXPECT_THAT(Shown("wb2").not_controlled_reason(), HasSubstr("driver-1"));
  for (int s = 0; s < 10; ++s) Second(0);
  EXPECT_LE(Limit("wb1"), 32 - held + 1e-9) << "wb2 may still draw its " << held << " A";
  for (int s = 0; s < 75; ++s) {  // TTL + watchdog: wb2 is at its 6 A failsafe
    clock_.Advance(absl::Seconds(1));
    const double l = Limit("wb1") + 6;  // wb2's car follows its failsafe
    Meter(l, l, l);
  }
  // wb2 is unmeasured: up to 6 A of the meter's reading and its 6 A failsafe.
  EXPECT_TRUE(Reached("wb1", 20)) << Limit("wb1");
}

// Issue #10 item 3: decreases first, across drivers.
TEST_F(ControlLoopTest, DecreasesGoOutBeforeIncreasesAcrossDrivers) {
  Make(2);
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(Reached("wb1", 16) && Reached("wb2", 16));
  const size_t before = Taken().size();
  // wb1 (driver 0) gets priority: wb2 (driver 1) drops to its minimum at
  // once while wb1 ramps up.
  ASSERT_TRUE(
      WhileStepping([&] { return loop_->SetEvsePriority("wb1", 5, absl::InfiniteFuture()); }).ok());
  Second(0);
  const std::vector<Record::Taken> taken = Taken();
  std::optional<size_t> decrease;
  std::optional<size_t> increase;
  for (size_t i = before; i < taken.size(); ++i) {
    if (taken[i].driver == "driver-1" && LimitIn(taken[i].request, "wb2") < 16 && !decrease) {
      decrease = i;
    }
    if (taken[i].driver == "driver-0" && LimitIn(taken[i].request, "wb1") > 16.5 && !increase) {
      increase = i;
    }
  }
  ASSERT_TRUE(decrease && increase);
  EXPECT_LT(*decrease, *increase) << "driver 0 is dispatched first, but wb2's decrease must be";
}

TEST_F(ControlLoopTest, OneDriverHoldsADecreaseAndItsIncreaseInTwoRounds) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(Reached("wb1", 16) && Reached("wb2", 16));
  const double wb1_before = Limit("wb1");
  const size_t before = Taken().size();
  ASSERT_TRUE(
      WhileStepping([&] { return loop_->SetEvsePriority("wb2", 5, absl::InfiniteFuture()); }).ok());
  Second(0);
  const std::vector<Record::Taken> taken = Taken();
  // The first batch with wb1's decrease holds wb2 where it was.
  for (size_t i = before; i < taken.size(); ++i) {
    if (LimitIn(taken[i].request, "wb1") < wb1_before) {
      EXPECT_LE(LimitIn(taken[i].request, "wb2"), 16.0);
      ASSERT_LT(i + 1, taken.size()) << "the increase follows in a second batch";
      EXPECT_GT(LimitIn(taken[i + 1].request, "wb2"), 16.0);
      return;
    }
  }
  ADD_FAILURE() << "no decrease of wb1";
}

// Issue #10 item 3: one slow driver must not starve the others.
TEST_F(ControlLoopTest, ADriverThatHangsDoesNotHoldUpTheOthers) {
  Make(2);
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  absl::Notification release;
  Driver(0).Hold(&release);  // dispatched first, hangs
  std::thread step([&] { Second(0); });
  const bool other_served = Driver(1).entered().WaitForNotificationWithTimeout(absl::Seconds(10));
  release.Notify();
  step.join();
  EXPECT_TRUE(other_served) << "driver 1 waited for driver 0";
}

// The loop's own thread: a driver that failed is retried off it, so a
// retry that hangs holds up neither the ticks nor the other drivers.
TEST_F(ControlLoopTest, AHungRetryDoesNotHoldUpTheLoopThread) {
  Make(2, nullptr, kSite, /*keep=*/false, /*stepped=*/false);
  for (int i = 0; i < 2; ++i) {
    v1::WatchDevicesResponse event;
    const std::string device = i == 0 ? "wallbox-1" : "wallbox-2";
    event.set_device_id(device);
    *event.mutable_snapshot() =
        WallboxState(device, i == 0 ? "wb1" : "wb2", v1::CONNECTOR_STATUS_CHARGING);
    Driver(i).Emit(event);
    v1::WatchDevicesResponse complete;
    complete.mutable_initial_snapshot_complete();
    Driver(i).Emit(complete);
  }
  ASSERT_TRUE(WaitForTaken("driver-1", 0));
  Driver(1).FailWith(absl::DeadlineExceededError("deadline"));
  size_t before = TakenBy("driver-0");
  clock_.Advance(absl::Seconds(1));  // a tick: driver 1 fails
  ASSERT_TRUE(WaitForTaken("driver-0", before));
  absl::Notification release;
  Driver(1).FailWith(absl::OkStatus());
  Driver(1).Hold(&release);  // its retry hangs
  for (int tick = 0; tick < 3; ++tick) {
    before = TakenBy("driver-0");
    clock_.Advance(absl::Seconds(1));
    EXPECT_TRUE(WaitForTaken("driver-0", before)) << "tick " << tick << " held up";
  }
  release.Notify();
}

// Issue #10 item 6: missing data is not zero.
TEST_F(ControlLoopTest, AMeterReadingWithoutAPhaseIsInvalidNotZero) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 8; ++s) Second(0);
  ASSERT_TRUE(Reached("wb1", 32));
  clock_.Advance(absl::Seconds(1));
  v1::WatchDevicesResponse event = MeterEvent(20, 20, 20);
  event.mutable_telemetry()->mutable_meter()->mutable_current_a()->clear_l3();
  Driver(0).Emit(event);
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), 6);
  const LoopSnapshot snapshot = loop_->Snapshot();
  EXPECT_TRUE(snapshot.failsafe);
  EXPECT_THAT(snapshot.failsafe_reason, HasSubstr("phase L3"));
  Second(0);
  Second(0);
  EXPECT_FALSE(loop_->Snapshot().failsafe) << "a valid reading recovers";
}

TEST_F(ControlLoopTest, AMeterReadingWithoutItsTimeIsInvalid) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  for (int s = 0; s < 4; ++s) Second(0);
  ASSERT_GT(Limit("wb1"), 6);
  clock_.Advance(absl::Seconds(1));
  v1::WatchDevicesResponse event = MeterEvent(0, 0, 0);
  event.mutable_telemetry()->mutable_meter()->clear_measured_at();
  Driver(0).Emit(event);
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), 6);
  EXPECT_THAT(loop_->Snapshot().failsafe_reason, HasSubstr("measured_at"));
}

// Grid 3 x 63 A and circuit c1 3 x 32 A, both metered; wb1 on c1, wb2 on the
// grid.
constexpr char kCircuitSite[] = R"(
site:
  id: test-site
grid:
  fuse_limit_a: 63
  meter: grid-meter
circuits:
  - id: c1
    parent: grid
    limit_a: 32
    meter: c1-meter
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
  - id: c1-meter
    profile: eastron_sdm630
    bus: rs485-1
    address: 2
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
    circuit: c1
    evses:
      - id: wb1
        phases: [L1, L2, L3]
        max_current_a: 32
  - id: wb2
    device: wallbox-2
    circuit: grid
    evses:
      - id: wb2
        phases: [L1, L2, L3]
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

// Issue #10 item 1: a stale circuit sub-meter fails its circuit, and only it.
TEST_F(ControlLoopTest, AStaleCircuitMeterFailsOnlyItsCircuitVisibly) {
  Make(1, nullptr, kCircuitSite);
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  auto c1 = [&](double a) {
    v1::WatchDevicesResponse event = MeterEvent(a, a, a);
    event.set_device_id("c1-meter");
    Driver(0).Emit(event);
  };
  // The wallboxes measure their cars, which follow at once.
  auto second = [&](bool c1_answers) {
    clock_.Advance(absl::Seconds(1));
    const double wb1 = std::max(0.0, Limit("wb1"));
    EvseTelemetry("wallbox-1", "wb1", wb1);
    EvseTelemetry("wallbox-2", "wb2", std::max(0.0, Limit("wb2")));
    if (c1_answers) c1(wb1);
    Sample(0);
  };
  for (int s = 0; s < 12; ++s) second(true);
  ASSERT_GE(Limit("wb1"), 20);
  ASSERT_GE(Limit("wb2"), 20);
  const double wb2_before = Limit("wb2");
  for (int s = 0; s < 4; ++s) second(false);  // c1's meter is silent
  EXPECT_EQ(Limit("wb1"), 6);

  const LoopSnapshot snapshot = loop_->Snapshot();
  EXPECT_FALSE(snapshot.failsafe) << "the rest of the site is not in failsafe";
  ASSERT_EQ(snapshot.failsafe_nodes.count("c1"), 1u);
  EXPECT_THAT(snapshot.failsafe_nodes.at("c1").reason, HasSubstr("old"));
  EXPECT_GE(Limit("wb2"), wb2_before) << "wb2, outside c1, keeps charging";
  for (int s = 0; s < 3; ++s) second(true);
  EXPECT_TRUE(loop_->Snapshot().failsafe_nodes.empty()) << "c1's meter is back";
  EXPECT_GT(Limit("wb1"), 6);
}

TEST_F(ControlLoopTest, BaseLoadComparesTheMeterWithEvCurrentsOfTheSameMoment) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  double a = 0;
  for (int s = 0; s < 9; ++s) {
    clock_.Advance(absl::Seconds(1));
    a = std::max(0.0, Limit("wb1"));
    EvseTelemetry("wallbox-1", "wb1", a);  // the vehicle follows at once
    Meter(a, a, a);
  }
  ASSERT_TRUE(Reached("wb1", 32));
  a = Limit("wb1");

  // The building starts drawing 10 A; the meter sees it and wb1 drops to 22 A.
  clock_.Advance(absl::Milliseconds(200));
  Meter(10 + a, 10 + a, 10 + a);
  ASSERT_EQ(Limit("wb1"), 22);
  // The vehicle follows 300 ms later, before the meter's next poll: against
  // the old meter reading that would look like 20 A of building load.
  clock_.Advance(absl::Milliseconds(300));
  EvseTelemetry("wallbox-1", "wb1", 22);
  loop_->Step();
  clock_.Advance(absl::Seconds(1));  // a tick, still no new meter sample
  loop_->Step();
  EXPECT_EQ(Limit("wb1"), 22) << "no second, needless cut";
}

TEST_F(ControlLoopTest, ADriversNonsenseDoesNotStopTheLoop) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  v1::WatchDevicesResponse event;
  event.set_device_id("wallbox-1");
  v1::EvseTelemetry* t = event.mutable_telemetry()->add_evses();
  t->set_evse_id("wb1");
  t->mutable_measurements()->mutable_current_a()->set_l1(std::nan(""));
  t->mutable_measurements()->set_soc_pct(255);  // "unknown" in some protocols
  t->mutable_measurements()->set_session_energy_wh(-5);
  Driver(0).Emit(event);
  Meter(0, 0, 0);
  for (int s = 0; s < 4; ++s) Second(0);
  EXPECT_GT(Limit("wb1"), 6) << "the loop still leaves failsafe and ramps";
}

TEST_F(ControlLoopTest, AllocationsArePublishedWithIncreasingSequences) {
  Make();
  Connect();
  Plug("wallbox-1", "wb1");
  Meter(0, 0, 0);
  uint64_t last = 0;
  for (int s = 0; s < 6; ++s) {
    Second(0);
    std::optional<v1::Allocation> allocation = loop_->WaitForAllocation(last, absl::ZeroDuration());
    ASSERT_TRUE(allocation.has_value()) << "second " << s << ": wb1 ramps, so it changes";
    EXPECT_GT(allocation->sequence(), last);
    last = allocation->sequence();
  }
}

TEST_F(ControlLoopTest, WithASessionServiceOnlyAuthorizedSessionsGetEnergy) {
  auto sessions = std::make_unique<FakeSessionLink>();
  FakeSessionLink* feed = sessions.get();
  Make(1, std::move(sessions));
  Connect();
  Plug("wallbox-1", "wb1");
  Plug("wallbox-2", "wb2");
  feed->Emit(v1::SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE, "", false);
  Meter(0, 0, 0);
  EXPECT_EQ(Limit("wb1"), -1) << "plugged in, no session: nothing";
  EXPECT_EQ(Limit("wb2"), -1);
  feed->Emit(v1::SESSION_EVENT_TYPE_STARTED, "wb2", true);  // a card authorizes wb2 only
  for (int s = 0; s < 8; ++s) Second(0);
  EXPECT_EQ(Limit("wb1"), -1);
  EXPECT_TRUE(Reached("wb2", 32)) << Limit("wb2");
  feed->Emit(v1::SESSION_EVENT_TYPE_ENDED, "wb2", false);
  loop_->Step();
  EXPECT_EQ(Limit("wb2"), -1) << "the session ended: paused at once";
}

}  // namespace
}  // namespace evgate::load_balancer
