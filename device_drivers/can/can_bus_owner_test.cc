// The CAN bus owner against scripted wallboxes on an in-memory bus, driven by
// a FakeClock: every frame the "wallboxes" send is built with the protocol
// codec, every frame the owner sends is decoded and checked.
#include "device_drivers/can/can_bus_owner.h"

#include <google/protobuf/util/time_util.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "device_drivers/can/loopback_can_bus.h"
#include "gtest/gtest.h"
#include "runtime/clock.h"

namespace evgate::can {
namespace {

namespace v1 = evgate::v1;
using google::protobuf::util::TimeUtil;
using site::Phase;

class RecordingSink : public devices::DeviceEventSink {
 public:
  void Publish(v1::WatchDevicesResponse event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }
  // Events of one kind since the last Take() of that kind.
  std::vector<v1::WatchDevicesResponse> Take(v1::WatchDevicesResponse::EventCase kind) {
    absl::MutexLock lock(&mu_);
    std::vector<v1::WatchDevicesResponse> taken, kept;
    for (auto& e : events_) (e.event_case() == kind ? taken : kept).push_back(std::move(e));
    events_ = std::move(kept);
    return taken;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::WatchDevicesResponse> events_ ABSL_GUARDED_BY(mu_);
};

// wb-a: 22 kW three-phase at address 1, wired with rotation L2-L3-L1,
// failsafe 8 A. wb-b: 7.4 kW single-phase at address 3 on L3, max 16 A,
// failsafe 0 (pause).
std::vector<CanWallboxConfig> Wallboxes() {
  CanWallboxConfig a;
  a.device_id = "wallbox-a";
  a.profile = "cabur_ev_plus_22kw";
  a.address = 1;
  a.station_id = "st-a";
  a.evse_id = "wb-a";
  a.phases = {Phase::kL2, Phase::kL3, Phase::kL1};
  a.max_current_a = 32;
  a.failsafe_current_a = 8;
  CanWallboxConfig b;
  b.device_id = "wallbox-b";
  b.profile = "cabur_ev_plus_7kw";
  b.address = 3;
  b.station_id = "st-b";
  b.evse_id = "wb-b";
  b.phases = {Phase::kL3};
  b.max_current_a = 16;
  b.failsafe_current_a = 0;
  return {a, b};
}

wallbox::Status Charging(int address, std::array<double, 3> current, int applied = 0) {
  wallbox::Status s;
  s.address = address;
  s.state = wallbox::IecState::kC;
  s.relay_closed = true;
  s.watchdog_configured = true;
  s.applied_sequence = applied;
  s.current_a = current;
  return s;
}

v1::Setpoint Current(const std::string& evse, std::optional<double> l1, std::optional<double> l2,
                     std::optional<double> l3) {
  v1::Setpoint sp;
  sp.set_evse_id(evse);
  v1::PhaseValues* c = sp.mutable_value()->mutable_current_limit_a();
  if (l1) c->set_l1(*l1);
  if (l2) c->set_l2(*l2);
  if (l3) c->set_l3(*l3);
  return sp;
}

v1::Setpoint AllPhases(const std::string& evse, double a) { return Current(evse, a, a, a); }

class CanBusOwnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(wallboxes_->Open().ok());
    CanBusOwnerOptions options;
    options.bus_id = "can-test";
    owner_ =
        std::make_unique<CanBusOwner>(options, Wallboxes(), network_.Endpoint("owner"), clock_);
    owner_->SetSink(&sink_);
    ASSERT_TRUE(owner_->Open().ok());
    Pump();
    Sent();  // the first AvailableCurrent
  }

  // The owner handles everything on the bus and what is due now.
  // (Bounded: a bus that is down reports so on every call.)
  void Pump() {
    for (int i = 0; i < 100 && owner_->PollOnce(absl::ZeroDuration()); ++i) {
    }
  }
  // Moves time forward in 50 ms steps, the wallboxes sending `status` (if
  // given) every 200 ms as the protocol says.
  void Advance(absl::Duration d, const std::vector<wallbox::Status>& statuses = {}) {
    const absl::Time end = clock_.Now() + d;
    while (clock_.Now() < end) {
      clock_.Advance(absl::Milliseconds(50));
      if (++ticks_ % 4 == 0) {
        for (const wallbox::Status& s : statuses) SendFromWallbox(s, /*pump=*/false);
      }
      Pump();
    }
  }
  template <typename M>
  void SendFromWallbox(const M& message, bool pump = true) {
    absl::StatusOr<CanFrame> frame = wallbox::Encode(message);
    ASSERT_TRUE(frame.ok()) << frame.status();
    SendRaw(*frame, pump);
  }
  void SendRaw(const CanFrame& frame, bool pump = true) {
    ASSERT_TRUE(wallboxes_->Send(frame).ok());
    if (pump) Pump();
  }
  // Frames the owner put on the bus since the last call, decoded.
  std::vector<wallbox::Message> Sent() {
    std::vector<wallbox::Message> messages;
    while (true) {
      BusEvent event = wallboxes_->Receive(absl::ZeroDuration());
      if (event.kind != BusEventKind::kFrame) break;
      absl::StatusOr<wallbox::Message> m = wallbox::Decode(*event.frame);
      EXPECT_TRUE(m.ok()) << "the owner sent an undecodable frame " << FrameToString(*event.frame)
                          << ": " << m.status();
      if (m.ok()) messages.push_back(*m);
    }
    return messages;
  }
  template <typename M>
  std::vector<M> SentOf(const std::vector<wallbox::Message>& messages) {
    std::vector<M> out;
    for (const auto& m : messages) {
      if (const M* x = std::get_if<M>(&m)) out.push_back(*x);
    }
    return out;
  }
  v1::DeviceState Device(const std::string& id) {
    std::optional<v1::DeviceState> d = owner_->GetDevice(id);
    EXPECT_TRUE(d.has_value()) << id;
    return d.value_or(v1::DeviceState());
  }
  v1::EvseState Evse(const std::string& device) { return Device(device).evses(0); }
  // Both wallboxes report, so neither is stale.
  void BringUp() {
    SendFromWallbox(Charging(1, {0, 0, 0}));
    SendFromWallbox(Charging(3, {0, 0, 0}));
    Sent();
  }
  v1::SetpointResult Apply(const v1::Setpoint& sp, absl::Duration ttl = absl::Seconds(10)) {
    std::vector<v1::SetpointResult> results = owner_->ApplySetpoints({sp}, ttl, "batch-7");
    EXPECT_EQ(results.size(), 1u);
    return results.empty() ? v1::SetpointResult() : results[0];
  }

  FakeClock clock_;
  LoopbackCanNetwork network_{clock_};
  std::unique_ptr<CanBus> wallboxes_ = network_.Endpoint("wallboxes");
  RecordingSink sink_;
  std::unique_ptr<CanBusOwner> owner_;
  int ticks_ = 0;
};

TEST_F(CanBusOwnerTest, InventoryAndCapabilitiesFromSiteYaml) {
  EXPECT_EQ(owner_->bus_id(), "can-test");
  EXPECT_EQ(owner_->DeviceIds(), (std::vector<std::string>{"wallbox-a", "wallbox-b"}));
  EXPECT_EQ(owner_->EvseIds(), (std::vector<std::string>{"wb-a", "wb-b"}));
  EXPECT_FALSE(owner_->GetDevice("nope").has_value());

  v1::DeviceState a = Device("wallbox-a");
  EXPECT_EQ(a.kind(), v1::DEVICE_KIND_AC_WALLBOX);
  EXPECT_EQ(a.profile(), "cabur_ev_plus_22kw");
  EXPECT_EQ(a.bus_id(), "can-test");
  EXPECT_EQ(a.address(), "1");
  EXPECT_EQ(a.station_id(), "st-a");
  EXPECT_TRUE(a.link().stale());  // until its first Status
  ASSERT_EQ(a.evses_size(), 1);
  const v1::EvseCapabilities& caps = a.evses(0).capabilities();
  EXPECT_EQ(caps.phases_size(), 3);
  EXPECT_EQ(caps.phases(0), v1::PHASE_L2);  // wiring order
  EXPECT_EQ(caps.phases(1), v1::PHASE_L3);
  EXPECT_EQ(caps.phases(2), v1::PHASE_L1);
  EXPECT_EQ(caps.min_current_a(), 6);
  EXPECT_EQ(caps.max_current_a(), 32);
  EXPECT_DOUBLE_EQ(caps.current_step_a(), 0.1);
  EXPECT_EQ(a.evses(0).kind(), v1::EVSE_KIND_AC);
}

TEST_F(CanBusOwnerTest, StatusCurrentsLandOnSitePhasesThroughTheWiring) {
  SendFromWallbox(Charging(1, {10.0, 11.0, 12.0}));  // the wallbox's own L1, L2, L3
  SendFromWallbox(Charging(3, {7.5, 0, 0}));

  v1::EvseState a = Evse("wallbox-a");
  EXPECT_DOUBLE_EQ(a.measurements().current_a().l2(), 10.0);  // wallbox L1 on site L2
  EXPECT_DOUBLE_EQ(a.measurements().current_a().l3(), 11.0);
  EXPECT_DOUBLE_EQ(a.measurements().current_a().l1(), 12.0);
  EXPECT_EQ(a.iec61851_state(), v1::IEC61851_STATE_C);
  EXPECT_TRUE(a.relay_closed());
  EXPECT_EQ(a.connector_status(), v1::CONNECTOR_STATUS_CHARGING);

  v1::EvseState b = Evse("wallbox-b");
  EXPECT_DOUBLE_EQ(b.measurements().current_a().l3(), 7.5);
  EXPECT_FALSE(b.measurements().current_a().has_l1());  // not wired: absent, not 0
  EXPECT_FALSE(b.measurements().current_a().has_l2());

  EXPECT_FALSE(Device("wallbox-a").link().stale());
  EXPECT_EQ(sink_.Take(v1::WatchDevicesResponse::kLinkStateChange).size(), 2u);
  EXPECT_EQ(sink_.Take(v1::WatchDevicesResponse::kTelemetry).size(), 2u);
  std::vector<v1::WatchDevicesResponse> changes =
      sink_.Take(v1::WatchDevicesResponse::kEvseStateChange);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].device_id(), "wallbox-a");
  EXPECT_EQ(changes[0].evse_state_change().state().connector_status(),
            v1::CONNECTOR_STATUS_CHARGING);
  EXPECT_EQ(TimeUtil::TimestampToNanoseconds(changes[0].at()), absl::ToUnixNanos(clock_.Now()));
}

TEST_F(CanBusOwnerTest, MeasurementsAndEnergyOnSitePhases) {
  SendFromWallbox(Charging(1, {16, 16, 16}));
  wallbox::Measurements m;
  m.address = 1;
  m.voltage_v = {230.1, 229.9, 231.0};
  m.active_power_w = 11000;
  SendFromWallbox(m);
  wallbox::Energy e;
  e.address = 1;
  e.session_energy_wh = 12345;
  e.lifetime_energy_wh = 1234500;
  e.relay_temperature_c = 41;
  e.ambient_temperature_c = -5;
  SendFromWallbox(e);

  v1::EvseMeasurements got = Evse("wallbox-a").measurements();
  EXPECT_DOUBLE_EQ(got.voltage_v().l2(), 230.1);
  EXPECT_DOUBLE_EQ(got.voltage_v().l3(), 229.9);
  EXPECT_DOUBLE_EQ(got.voltage_v().l1(), 231.0);
  EXPECT_EQ(got.power_w(), 11000);
  EXPECT_EQ(got.session_energy_wh(), 12345);
  EXPECT_EQ(got.energy_import_wh(), 1234500);
  ASSERT_EQ(got.temperatures_size(), 2);
  EXPECT_EQ(got.temperatures(0).name(), "relay");
  EXPECT_EQ(got.temperatures(0).temperature_c(), 41);
  EXPECT_EQ(got.temperatures(1).temperature_c(), -5);

  // Status keeps coming, Measurements/Energy stop: after 3 s they are left out.
  Advance(absl::Milliseconds(3100), {Charging(1, {16, 16, 16})});
  got = Evse("wallbox-a").measurements();
  EXPECT_FALSE(got.voltage_v().has_l1());
  EXPECT_FALSE(got.has_power_w());
  EXPECT_FALSE(got.has_session_energy_wh());
  EXPECT_TRUE(got.current_a().has_l1());
}

TEST_F(CanBusOwnerTest, ProgramsTheWatchdogAtPowerUpAndAfterAReboot) {
  // Power-up: Identity page 0, Status says not configured and in failsafe.
  wallbox::IdentityInfo info;
  info.address = 1;
  info.model = wallbox::Model::kEvPlus22kW3Phase;
  info.firmware = {1, 2, 3};
  info.max_current_a = 32;
  SendFromWallbox(info);
  std::vector<wallbox::WatchdogConfig> configs = SentOf<wallbox::WatchdogConfig>(Sent());
  ASSERT_EQ(configs.size(), 1u);
  EXPECT_EQ(configs[0].address, 1);
  EXPECT_EQ(configs[0].timeout_ms, 5000);
  EXPECT_DOUBLE_EQ(configs[0].failsafe_current_a, 8.0);  // site.yaml failsafe

  wallbox::Status booting;
  booting.address = 1;
  booting.failsafe_active = true;
  booting.watchdog_configured = false;
  SendFromWallbox(booting);
  // Not again within a second ...
  EXPECT_TRUE(SentOf<wallbox::WatchdogConfig>(Sent()).empty());
  // ... the power-up default is in force (6 A, the wallbox's own) ...
  v1::SetpointInForce in_force = Evse("wallbox-a").setpoint();
  EXPECT_EQ(in_force.source(), v1::SETPOINT_SOURCE_DEVICE_DEFAULT);
  EXPECT_DOUBLE_EQ(in_force.value().current_limit_a().l1(), 6.0);
  // ... but again if the wallbox still says unconfigured after it.
  Advance(absl::Milliseconds(1000), {booting});
  EXPECT_GE(SentOf<wallbox::WatchdogConfig>(Sent()).size(), 1u);

  wallbox::Status configured = booting;
  configured.watchdog_configured = true;
  Advance(absl::Seconds(3), {configured});
  EXPECT_TRUE(SentOf<wallbox::WatchdogConfig>(Sent()).empty());
  in_force = Evse("wallbox-a").setpoint();
  EXPECT_EQ(in_force.source(), v1::SETPOINT_SOURCE_FAILSAFE);  // our failsafe, 8 A
  EXPECT_DOUBLE_EQ(in_force.value().current_limit_a().l2(), 8.0);

  // The controller takes over; then the wallbox reboots.
  SendFromWallbox(Charging(1, {0, 0, 0}));
  ASSERT_EQ(Apply(AllPhases("wb-a", 20)).status(), v1::SETPOINT_STATUS_ACCEPTED);
  Sent();
  SendFromWallbox(booting);
  std::vector<wallbox::Message> after_reboot = Sent();
  ASSERT_EQ(SentOf<wallbox::WatchdogConfig>(after_reboot).size(), 1u);
  std::vector<wallbox::Setpoint> resent = SentOf<wallbox::Setpoint>(after_reboot);
  ASSERT_EQ(resent.size(), 1u);  // at once, not at the next refresh
  EXPECT_DOUBLE_EQ(resent[0].max_current_a, 20.0);
  EXPECT_EQ(owner_->Counters("wallbox-a").reboots_total, 1u);
}

TEST_F(CanBusOwnerTest, ReprogramsAWallboxConfiguredByAnEarlierProcess) {
  // The wallbox says configured (an earlier evgate did it, maybe with
  // another failsafe): this owner programs it once, then leaves it alone.
  SendFromWallbox(Charging(1, {0, 0, 0}));
  std::vector<wallbox::WatchdogConfig> configs = SentOf<wallbox::WatchdogConfig>(Sent());
  ASSERT_EQ(configs.size(), 1u);
  EXPECT_DOUBLE_EQ(configs[0].failsafe_current_a, 8.0);
  Advance(absl::Seconds(3), {Charging(1, {0, 0, 0})});
  EXPECT_TRUE(SentOf<wallbox::WatchdogConfig>(Sent()).empty());
  EXPECT_EQ(owner_->Counters("wallbox-a").watchdog_configs_total, 1u);
}

TEST_F(CanBusOwnerTest, ApplySetpointSendsItAndReportsItInForce) {
  BringUp();
  sink_.Take(v1::WatchDevicesResponse::kEvseStateChange);
  const absl::Time now = clock_.Now();
  v1::SetpointResult r = Apply(AllPhases("wb-a", 16.07), absl::Seconds(30));
  EXPECT_EQ(r.status(), v1::SETPOINT_STATUS_ACCEPTED) << r.message();
  EXPECT_EQ(r.evse_id(), "wb-a");
  EXPECT_EQ(r.in_force().source(), v1::SETPOINT_SOURCE_CONTROLLER);
  EXPECT_EQ(r.in_force().batch_id(), "batch-7");
  EXPECT_DOUBLE_EQ(r.in_force().value().current_limit_a().l1(), 16.0);  // down to 0.1 A
  EXPECT_DOUBLE_EQ(r.in_force().value().current_limit_a().l2(), 16.0);
  EXPECT_DOUBLE_EQ(r.in_force().value().current_limit_a().l3(), 16.0);
  EXPECT_EQ(TimeUtil::TimestampToNanoseconds(r.in_force().expires_at()),
            absl::ToUnixNanos(now + absl::Seconds(30)));

  std::vector<wallbox::Setpoint> sent = SentOf<wallbox::Setpoint>(Sent());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].address, 1);
  EXPECT_DOUBLE_EQ(sent[0].max_current_a, 16.0);
  EXPECT_EQ(sent[0].phase_enabled, (std::array<bool, 3>{true, true, true}));
  EXPECT_FALSE(sent[0].pause);
  EXPECT_EQ(sent[0].sequence, 1);

  std::vector<v1::WatchDevicesResponse> changes =
      sink_.Take(v1::WatchDevicesResponse::kEvseStateChange);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].evse_state_change().state().setpoint().source(),
            v1::SETPOINT_SOURCE_CONTROLLER);
  EXPECT_EQ(Evse("wallbox-a").setpoint().batch_id(), "batch-7");

  // Single-phase: only its wired phase is used; the others are ignored.
  r = Apply(Current("wb-b", std::nullopt, std::nullopt, 10.0));
  EXPECT_EQ(r.status(), v1::SETPOINT_STATUS_ACCEPTED) << r.message();
  EXPECT_DOUBLE_EQ(r.in_force().value().current_limit_a().l3(), 10.0);
  EXPECT_FALSE(r.in_force().value().current_limit_a().has_l1());
  sent = SentOf<wallbox::Setpoint>(Sent());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].address, 3);
  EXPECT_EQ(sent[0].phase_enabled, (std::array<bool, 3>{true, false, false}));
}

TEST_F(CanBusOwnerTest, CurrentLimitIsTheMinimumOverTheWiredPhases) {
  BringUp();
  v1::SetpointResult r = Apply(Current("wb-a", 20.0, 12.34, 30.0));
  EXPECT_EQ(r.status(), v1::SETPOINT_STATUS_ACCEPTED);
  std::vector<wallbox::Setpoint> sent = SentOf<wallbox::Setpoint>(Sent());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_DOUBLE_EQ(sent[0].max_current_a, 12.3);
}

TEST_F(CanBusOwnerTest, ClampsRejectsAndNeverSendsAWrongSetpoint) {
  BringUp();
  // Above the EVSE maximum: clamped.
  v1::SetpointResult r = Apply(AllPhases("wb-a", 40));
  EXPECT_EQ(r.status(), v1::SETPOINT_STATUS_CLAMPED);
  EXPECT_DOUBLE_EQ(r.in_force().value().current_limit_a().l1(), 32.0);
  EXPECT_NE(r.message().find("32.0 A"), std::string::npos) << r.message();
  std::vector<wallbox::Setpoint> sent = SentOf<wallbox::Setpoint>(Sent());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_DOUBLE_EQ(sent[0].max_current_a, 32.0);

  struct Case {
    v1::Setpoint setpoint;
    v1::SetpointRejectReason reason;
  };
  v1::Setpoint power;
  power.set_evse_id("wb-a");
  power.mutable_value()->set_power_limit_w(7000);
  v1::Setpoint empty;
  empty.set_evse_id("wb-a");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<Case> cases = {
      {AllPhases("wb-a", 5.0), v1::SETPOINT_REJECT_REASON_INVALID_VALUE},  // below 6 A: use pause
      {AllPhases("wb-a", 5.99), v1::SETPOINT_REJECT_REASON_INVALID_VALUE},
      {AllPhases("wb-a", 0.05), v1::SETPOINT_REJECT_REASON_INVALID_VALUE},
      {AllPhases("wb-a", -1), v1::SETPOINT_REJECT_REASON_INVALID_VALUE},
      {AllPhases("wb-a", nan), v1::SETPOINT_REJECT_REASON_INVALID_VALUE},
      {Current("wb-a", 16, 16, std::nullopt), v1::SETPOINT_REJECT_REASON_INVALID_VALUE},
      {Current("wb-b", 10, std::nullopt, std::nullopt), v1::SETPOINT_REJECT_REASON_INVALID_VALUE},
      {power, v1::SETPOINT_REJECT_REASON_NOT_SUPPORTED},
      {empty, v1::SETPOINT_REJECT_REASON_INVALID_VALUE},
      {AllPhases("wb-zz", 16), v1::SETPOINT_REJECT_REASON_UNKNOWN_EVSE},
  };
  for (const Case& c : cases) {
    v1::SetpointResult rejected = Apply(c.setpoint);
    EXPECT_EQ(rejected.status(), v1::SETPOINT_STATUS_REJECTED) << c.setpoint.ShortDebugString();
    EXPECT_EQ(rejected.reason(), c.reason) << c.setpoint.ShortDebugString();
    EXPECT_FALSE(rejected.message().empty());
    if (c.reason != v1::SETPOINT_REJECT_REASON_UNKNOWN_EVSE && c.setpoint.evse_id() == "wb-a") {
      // The previous setpoint stays in force.
      EXPECT_DOUBLE_EQ(rejected.in_force().value().current_limit_a().l1(), 32.0);
    }
  }
  EXPECT_TRUE(SentOf<wallbox::Setpoint>(Sent()).empty());  // nothing reached the bus
  EXPECT_DOUBLE_EQ(Evse("wallbox-a").setpoint().value().current_limit_a().l1(), 32.0);

  // Zero and pause are valid ways to stop.
  r = Apply(AllPhases("wb-a", 0));
  EXPECT_EQ(r.status(), v1::SETPOINT_STATUS_ACCEPTED);
  v1::Setpoint pause;
  pause.set_evse_id("wb-a");
  pause.mutable_value()->mutable_pause();
  r = Apply(pause);
  EXPECT_EQ(r.status(), v1::SETPOINT_STATUS_ACCEPTED);
  EXPECT_TRUE(r.in_force().value().has_pause());
  sent = SentOf<wallbox::Setpoint>(Sent());
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_DOUBLE_EQ(sent[0].max_current_a, 0);
  EXPECT_FALSE(sent[0].pause);
  EXPECT_TRUE(sent[1].pause);
  EXPECT_EQ(sent[1].sequence, (sent[0].sequence + 1) % 16);
}

TEST_F(CanBusOwnerTest, TheWallboxsOwnMaxCurrentNarrowsTheCapabilities) {
  BringUp();
  wallbox::Identity identity;
  identity.info.address = 1;
  identity.info.model = wallbox::Model::kEvPlus22kW3Phase;
  identity.info.max_current_a = 16;  // the installer's Max Current setting
  identity.serial = "022101000266JSS070RE3CA02";
  absl::StatusOr<std::vector<CanFrame>> frames = wallbox::EncodeIdentity(identity);
  ASSERT_TRUE(frames.ok());
  for (const CanFrame& f : *frames) SendRaw(f);
  EXPECT_EQ(Evse("wallbox-a").capabilities().max_current_a(), 16);
  v1::DeviceState device = Device("wallbox-a");
  EXPECT_EQ(device.identity().vendor(), "Cabur");
  EXPECT_EQ(device.identity().serial_number(), "022101000266JSS070RE3CA02");
  EXPECT_EQ(sink_.Take(v1::WatchDevicesResponse::kSnapshot).size(), 1u);

  v1::SetpointResult r = Apply(AllPhases("wb-a", 20));
  EXPECT_EQ(r.status(), v1::SETPOINT_STATUS_CLAMPED);
  std::vector<wallbox::Setpoint> sent = SentOf<wallbox::Setpoint>(Sent());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_DOUBLE_EQ(sent[0].max_current_a, 16.0);
}

TEST_F(CanBusOwnerTest, RefreshesSetpointsWellWithinTheWatchdog) {
  BringUp();
  Apply(AllPhases("wb-a", 16), absl::Seconds(60));
  Sent();
  absl::Time last = clock_.Now();
  absl::Duration longest_gap;
  int refreshes = 0;
  for (int i = 0; i < 100; ++i) {  // 5 s
    Advance(absl::Milliseconds(50), {Charging(1, {16, 16, 16}, 1), Charging(3, {0, 0, 0})});
    for (const wallbox::Setpoint& sp : SentOf<wallbox::Setpoint>(Sent())) {
      EXPECT_EQ(sp.sequence, 1);  // a refresh repeats the sequence
      EXPECT_DOUBLE_EQ(sp.max_current_a, 16);
      longest_gap = std::max(longest_gap, clock_.Now() - last);
      last = clock_.Now();
      ++refreshes;
    }
  }
  EXPECT_GE(refreshes, 4);
  EXPECT_LE(longest_gap, absl::Seconds(1));  // the watchdog is 5 s
}

TEST_F(CanBusOwnerTest, BroadcastsTheAvailableCurrentEverySecond) {
  BringUp();
  Apply(AllPhases("wb-a", 16));                            // on site L2, L3, L1
  Apply(Current("wb-b", std::nullopt, std::nullopt, 10));  // on site L3
  Sent();
  Advance(absl::Seconds(1));
  std::vector<wallbox::AvailableCurrent> broadcasts = SentOf<wallbox::AvailableCurrent>(Sent());
  ASSERT_EQ(broadcasts.size(), 1u);
  EXPECT_DOUBLE_EQ(broadcasts[0].available_current_a[0], 16);
  EXPECT_DOUBLE_EQ(broadcasts[0].available_current_a[1], 16);
  EXPECT_DOUBLE_EQ(broadcasts[0].available_current_a[2], 26);
  EXPECT_EQ(broadcasts[0].active_wallboxes, 2);
  const int counter = broadcasts[0].counter;
  Advance(absl::Seconds(1));
  broadcasts = SentOf<wallbox::AvailableCurrent>(Sent());
  ASSERT_EQ(broadcasts.size(), 1u);
  EXPECT_EQ(broadcasts[0].counter, (counter + 1) % 16);
  EXPECT_GE(owner_->BusCounters().available_current_sent_total, 3u);
}

TEST_F(CanBusOwnerTest, TtlExpirySendsTheFailsafeOnceAndStopsRefreshing) {
  BringUp();
  Apply(AllPhases("wb-a", 20), absl::Seconds(3));
  Apply(Current("wb-b", std::nullopt, std::nullopt, 12), absl::Seconds(3));
  Sent();
  sink_.Take(v1::WatchDevicesResponse::kEvseStateChange);
  Advance(absl::Milliseconds(2950), {Charging(1, {20, 20, 20}, 1), Charging(3, {12, 0, 0}, 1)});
  EXPECT_EQ(Evse("wallbox-a").setpoint().source(), v1::SETPOINT_SOURCE_CONTROLLER);
  Sent();
  Advance(absl::Milliseconds(100), {Charging(1, {20, 20, 20}, 1), Charging(3, {12, 0, 0}, 1)});

  std::vector<wallbox::Setpoint> sent = SentOf<wallbox::Setpoint>(Sent());
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].address, 1);
  EXPECT_DOUBLE_EQ(sent[0].max_current_a, 8.0);  // wb-a's failsafe
  EXPECT_EQ(sent[0].sequence, 2);
  EXPECT_EQ(sent[1].address, 3);
  EXPECT_DOUBLE_EQ(sent[1].max_current_a, 0.0);  // wb-b pauses on failsafe
  EXPECT_EQ(owner_->GetBusHealth().setpoints_expired_total(), 2u);
  v1::SetpointInForce a = Evse("wallbox-a").setpoint();
  EXPECT_EQ(a.source(), v1::SETPOINT_SOURCE_FAILSAFE);
  EXPECT_DOUBLE_EQ(a.value().current_limit_a().l1(), 8.0);
  EXPECT_FALSE(a.has_expires_at());
  EXPECT_TRUE(Evse("wallbox-b").setpoint().value().has_pause());
  std::vector<v1::WatchDevicesResponse> changes =
      sink_.Take(v1::WatchDevicesResponse::kEvseStateChange);
  ASSERT_GE(changes.size(), 2u);
  EXPECT_EQ(changes[0].evse_state_change().state().setpoint().source(),
            v1::SETPOINT_SOURCE_FAILSAFE);

  // No more setpoints: from here the wallbox's watchdog holds the failsafe.
  Advance(absl::Seconds(10), {Charging(1, {8, 8, 8}, 2), Charging(3, {0, 0, 0}, 2)});
  EXPECT_TRUE(SentOf<wallbox::Setpoint>(Sent()).empty());
  wallbox::Status watchdog_fired = Charging(1, {8, 8, 8}, 2);
  watchdog_fired.failsafe_active = true;
  SendFromWallbox(watchdog_fired);
  EXPECT_EQ(Evse("wallbox-a").setpoint().source(), v1::SETPOINT_SOURCE_FAILSAFE);
  EXPECT_DOUBLE_EQ(Evse("wallbox-a").setpoint().value().current_limit_a().l3(), 8.0);
}

TEST_F(CanBusOwnerTest, SetpointsInForceFollowWhatWasSentAndTheWatchdog) {
  BringUp();
  auto in_force = owner_->SetpointsInForce({"wb-a", "nope"});
  ASSERT_EQ(in_force.size(), 2u);
  EXPECT_FALSE(in_force[0].has_value());  // nothing sent yet
  EXPECT_FALSE(in_force[1].has_value());
  Apply(AllPhases("wb-a", 20), absl::Seconds(30));
  in_force = owner_->SetpointsInForce({"wb-a"});
  ASSERT_TRUE(in_force[0].has_value());
  EXPECT_DOUBLE_EQ(in_force[0]->current_limit_a().l3(), 20.0);
  wallbox::Status watchdog_fired = Charging(1, {8, 8, 8}, 1);
  watchdog_fired.failsafe_active = true;
  SendFromWallbox(watchdog_fired);
  in_force = owner_->SetpointsInForce({"wb-a"});
  ASSERT_TRUE(in_force[0].has_value());
  EXPECT_DOUBLE_EQ(in_force[0]->current_limit_a().l1(), 8.0);  // wb-a's failsafe
}

TEST_F(CanBusOwnerTest, SilentWallboxTurnsStaleAndRecovers) {
  BringUp();
  Apply(AllPhases("wb-a", 16));
  sink_.Take(v1::WatchDevicesResponse::kLinkStateChange);
  // wb-b keeps reporting, wb-a goes quiet.
  Advance(absl::Milliseconds(950), {Charging(3, {0, 0, 0})});
  EXPECT_FALSE(Device("wallbox-a").link().stale());
  Advance(absl::Milliseconds(100), {Charging(3, {0, 0, 0})});
  v1::DeviceState a = Device("wallbox-a");
  EXPECT_TRUE(a.link().stale());
  EXPECT_EQ(a.link().timeouts_total(), 1u);
  EXPECT_NE(a.link().last_error().find("no Status frame"), std::string::npos)
      << a.link().last_error();
  EXPECT_FALSE(Device("wallbox-b").link().stale());
  std::vector<v1::WatchDevicesResponse> links =
      sink_.Take(v1::WatchDevicesResponse::kLinkStateChange);
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].device_id(), "wallbox-a");
  EXPECT_TRUE(links[0].link_state_change().link().stale());

  v1::SetpointResult r = Apply(AllPhases("wb-a", 20));
  EXPECT_EQ(r.status(), v1::SETPOINT_STATUS_REJECTED);
  EXPECT_EQ(r.reason(), v1::SETPOINT_REJECT_REASON_DEVICE_OFFLINE);

  SendFromWallbox(Charging(1, {16, 16, 16}, 1));
  EXPECT_FALSE(Device("wallbox-a").link().stale());
  links = sink_.Take(v1::WatchDevicesResponse::kLinkStateChange);
  ASSERT_EQ(links.size(), 1u);
  EXPECT_FALSE(links[0].link_state_change().link().stale());
}

TEST_F(CanBusOwnerTest, ErrBitsBecomeFaults) {
  BringUp();
  sink_.Take(v1::WatchDevicesResponse::kEvseStateChange);
  wallbox::Status faulted = Charging(1, {0, 0, 0});
  faulted.state = wallbox::IecState::kF;
  faulted.relay_closed = false;
  faulted.errors =
      wallbox::ErrorBit(wallbox::ErrorCode::kOcp) | wallbox::ErrorBit(wallbox::ErrorCode::kMis);
  SendFromWallbox(faulted);

  std::vector<v1::WatchDevicesResponse> raised = sink_.Take(v1::WatchDevicesResponse::kFaultRaised);
  ASSERT_EQ(raised.size(), 2u);
  const v1::Fault& ocp = raised[0].fault_raised().fault();
  EXPECT_EQ(raised[0].fault_raised().evse_id(), "wb-a");
  EXPECT_EQ(ocp.vendor_code(), "ERR OCP");
  EXPECT_EQ(ocp.vendor(), "cabur_ev_plus");
  EXPECT_EQ(ocp.code(), "OVER_CURRENT");
  EXPECT_EQ(ocp.severity(), v1::FAULT_SEVERITY_ERROR);
  EXPECT_TRUE(ocp.blocks_charging());
  EXPECT_EQ(ocp.ocpp_error_code(), v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE);
  EXPECT_EQ(raised[1].fault_raised().fault().vendor_code(), "ERR MIS");
  v1::EvseState evse = Evse("wallbox-a");
  EXPECT_EQ(evse.connector_status(), v1::CONNECTOR_STATUS_FAULTED);
  EXPECT_EQ(evse.faults_size(), 2);
  std::vector<v1::WatchDevicesResponse> changes =
      sink_.Take(v1::WatchDevicesResponse::kEvseStateChange);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].evse_state_change().previous_connector_status(),
            v1::CONNECTOR_STATUS_CHARGING);

  faulted.errors = wallbox::ErrorBit(wallbox::ErrorCode::kOcp);
  Advance(absl::Seconds(1));
  SendFromWallbox(faulted);
  std::vector<v1::WatchDevicesResponse> cleared =
      sink_.Take(v1::WatchDevicesResponse::kFaultCleared);
  ASSERT_EQ(cleared.size(), 1u);
  EXPECT_EQ(cleared[0].fault_cleared().fault().vendor_code(), "ERR MIS");
  EXPECT_TRUE(sink_.Take(v1::WatchDevicesResponse::kFaultRaised).empty());  // OCP stays
  EXPECT_EQ(Evse("wallbox-a").faults_size(), 1);
}

TEST_F(CanBusOwnerTest, ConnectorStatusFollowsTheVehicleAndTheSetpoint) {
  BringUp();
  wallbox::Status s = Charging(1, {0, 0, 0});
  s.state = wallbox::IecState::kA;
  s.relay_closed = false;
  SendFromWallbox(s);
  EXPECT_EQ(Evse("wallbox-a").connector_status(), v1::CONNECTOR_STATUS_AVAILABLE);
  s.state = wallbox::IecState::kB;
  SendFromWallbox(s);
  EXPECT_EQ(Evse("wallbox-a").connector_status(), v1::CONNECTOR_STATUS_PREPARING);
  s.state = wallbox::IecState::kC;
  s.relay_closed = true;
  SendFromWallbox(s);
  EXPECT_EQ(Evse("wallbox-a").connector_status(), v1::CONNECTOR_STATUS_CHARGING);
  s.state = wallbox::IecState::kB;  // the vehicle stopped on its own
  s.relay_closed = false;
  SendFromWallbox(s);
  EXPECT_EQ(Evse("wallbox-a").connector_status(), v1::CONNECTOR_STATUS_SUSPENDED_EV);
  v1::Setpoint pause;
  pause.set_evse_id("wb-a");
  pause.mutable_value()->mutable_pause();
  Apply(pause);
  EXPECT_EQ(Evse("wallbox-a").connector_status(), v1::CONNECTOR_STATUS_SUSPENDED_EVSE);
}

TEST_F(CanBusOwnerTest, RfidTapIsPublished) {
  BringUp();
  wallbox::RfidTap tap;
  tap.address = 3;
  tap.tap_sequence = 2;
  tap.uid = {0x04, 0xA2, 0xB3, 0xC4, 0xD5, 0xE6, 0x80, 0x11, 0x22};  // 9 bytes: 2 frames
  absl::StatusOr<std::vector<CanFrame>> frames = wallbox::EncodeRfidTap(tap);
  ASSERT_TRUE(frames.ok());
  ASSERT_EQ(frames->size(), 2u);
  SendRaw((*frames)[0]);
  EXPECT_TRUE(sink_.Take(v1::WatchDevicesResponse::kRfidTap).empty());  // half a tap
  SendRaw((*frames)[1]);
  std::vector<v1::WatchDevicesResponse> taps = sink_.Take(v1::WatchDevicesResponse::kRfidTap);
  ASSERT_EQ(taps.size(), 1u);
  EXPECT_EQ(taps[0].device_id(), "wallbox-b");
  EXPECT_EQ(taps[0].rfid_tap().evse_id(), "wb-b");
  EXPECT_EQ(taps[0].rfid_tap().id_tag(), "04A2B3C4D5E6801122");
}

TEST_F(CanBusOwnerTest, BadFramesAreCountedLoggedAndNeverUsed) {
  BringUp();
  SendFromWallbox(Charging(1, {10, 10, 10}));
  sink_.Take(v1::WatchDevicesResponse::kTelemetry);

  // A Status of wallbox-a with a wrong DLC, and one with a reserved bit.
  absl::StatusOr<CanFrame> good = wallbox::Encode(Charging(1, {30, 30, 30}));
  ASSERT_TRUE(good.ok());
  CanFrame short_frame = *good;
  short_frame.dlc = 7;
  SendRaw(short_frame);
  CanFrame reserved = *good;
  reserved.data[0] |= 0x80;  // bit 7: reserved
  SendRaw(reserved);
  // Measurements with a voltage above 500 V: out of range.
  CanFrame high_voltage = *wallbox::Encode(wallbox::Measurements{1, {230, 230, 230}, 100});
  high_voltage.data[0] = 0xFF;
  high_voltage.data[1] = 0xFF;  // 6553.5 V
  SendRaw(high_voltage);

  const CanWallboxCounters counters = owner_->Counters("wallbox-a");
  EXPECT_EQ(counters.bad_frames_total, 3u);
  EXPECT_EQ(counters.bad_frames_invalid_total, 2u);
  EXPECT_EQ(counters.bad_frames_out_of_range_total, 1u);
  v1::DeviceState a = Device("wallbox-a");
  EXPECT_EQ(a.link().errors_total(), 3u);
  EXPECT_NE(a.link().last_error().find("Measurements"), std::string::npos) << a.link().last_error();
  // Nothing of them was used.
  EXPECT_DOUBLE_EQ(a.evses(0).measurements().current_a().l1(), 10.0);
  EXPECT_FALSE(a.evses(0).measurements().has_power_w());
  EXPECT_TRUE(sink_.Take(v1::WatchDevicesResponse::kTelemetry).empty());

  // Frames of other protocols, addresses nobody configured, another master.
  CanFrame foreign;
  foreign.id = 0x18FF0101;
  foreign.extended = true;
  foreign.dlc = 8;
  SendRaw(foreign);
  SendFromWallbox(Charging(9, {0, 0, 0}));
  wallbox::Setpoint rogue;
  rogue.address = 1;
  rogue.max_current_a = 32;
  SendFromWallbox(rogue);
  const CanBusCounters bus = owner_->BusCounters();
  EXPECT_EQ(bus.foreign_frames_total, 1u);
  EXPECT_EQ(bus.unknown_address_frames_total, 1u);
  EXPECT_EQ(bus.other_controller_frames_total, 1u);
  EXPECT_EQ(owner_->Counters("wallbox-a").bad_frames_total, 3u);
}

TEST_F(CanBusOwnerTest, ReportsASetpointTheWallboxDoesNotApply) {
  BringUp();
  Apply(AllPhases("wb-a", 16));
  // The wallbox keeps echoing sequence 0 instead of 1.
  Advance(absl::Milliseconds(1900), {Charging(1, {0, 0, 0}, 0), Charging(3, {0, 0, 0})});
  EXPECT_EQ(owner_->Counters("wallbox-a").not_applied_total, 0u);
  Advance(absl::Milliseconds(200), {Charging(1, {0, 0, 0}, 0), Charging(3, {0, 0, 0})});
  EXPECT_EQ(owner_->Counters("wallbox-a").not_applied_total, 1u);
  EXPECT_NE(Device("wallbox-a").link().last_error().find("not applied"), std::string::npos);
  // A confirming wallbox never trips it.
  Apply(Current("wb-b", std::nullopt, std::nullopt, 10));
  Advance(absl::Seconds(5), {Charging(3, {10, 0, 0}, 1)});
  EXPECT_EQ(owner_->Counters("wallbox-b").not_applied_total, 0u);
}

TEST_F(CanBusOwnerTest, Commands) {
  BringUp();
  v1::CommandRequest request;
  request.set_device_id("wallbox-b");
  v1::SetFailsafeCommand* set = request.mutable_set_failsafe();
  set->set_evse_id("wb-b");
  set->mutable_value()->mutable_current_limit_a()->set_l3(10);
  set->mutable_watchdog_timeout()->set_seconds(3);
  v1::CommandResponse response = owner_->Command(request);
  EXPECT_EQ(response.status(), v1::COMMAND_STATUS_ACCEPTED) << response.message();
  std::vector<wallbox::WatchdogConfig> configs = SentOf<wallbox::WatchdogConfig>(Sent());
  ASSERT_EQ(configs.size(), 1u);
  EXPECT_EQ(configs[0].address, 3);
  EXPECT_EQ(configs[0].timeout_ms, 3000);
  EXPECT_DOUBLE_EQ(configs[0].failsafe_current_a, 10.0);

  set->mutable_value()->mutable_current_limit_a()->set_l3(4);  // below the minimum
  EXPECT_EQ(owner_->Command(request).status(), v1::COMMAND_STATUS_REJECTED);
  EXPECT_TRUE(Sent().empty());

  v1::CommandRequest reset;
  reset.set_device_id("wallbox-a");
  reset.mutable_reset()->set_type(v1::RESET_TYPE_SOFT);
  EXPECT_EQ(owner_->Command(reset).status(), v1::COMMAND_STATUS_NOT_SUPPORTED);
  v1::CommandRequest unlock;
  unlock.set_device_id("wallbox-a");
  unlock.mutable_unlock_connector()->set_evse_id("wb-a");
  EXPECT_EQ(owner_->Command(unlock).status(), v1::COMMAND_STATUS_NOT_SUPPORTED);

  v1::CommandRequest trigger;
  trigger.set_device_id("wallbox-a");
  trigger.mutable_trigger_status_report();
  sink_.Take(v1::WatchDevicesResponse::kSnapshot);
  EXPECT_EQ(owner_->Command(trigger).status(), v1::COMMAND_STATUS_ACCEPTED);
  EXPECT_EQ(sink_.Take(v1::WatchDevicesResponse::kSnapshot).size(), 1u);

  v1::CommandRequest unknown;
  unknown.set_device_id("nope");
  unknown.mutable_trigger_status_report();
  EXPECT_EQ(owner_->Command(unknown).status(), v1::COMMAND_STATUS_REJECTED);
}

TEST_F(CanBusOwnerTest, OperatorTakesAnIdleWallboxOutOfService) {
  BringUp();
  wallbox::Status idle = Charging(1, {0, 0, 0});
  idle.state = wallbox::IecState::kA;
  idle.relay_closed = false;
  SendFromWallbox(idle);
  Sent();
  v1::CommandRequest request;
  request.set_device_id("wallbox-a");
  request.mutable_change_availability()->set_availability(v1::AVAILABILITY_INOPERATIVE);
  EXPECT_EQ(owner_->Command(request).status(), v1::COMMAND_STATUS_ACCEPTED);
  std::vector<wallbox::Setpoint> sent = SentOf<wallbox::Setpoint>(Sent());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(sent[0].pause);
  EXPECT_EQ(Device("wallbox-a").availability(), v1::AVAILABILITY_INOPERATIVE);
  EXPECT_EQ(Evse("wallbox-a").connector_status(), v1::CONNECTOR_STATUS_UNAVAILABLE);
  v1::SetpointResult r = Apply(AllPhases("wb-a", 16));
  EXPECT_EQ(r.status(), v1::SETPOINT_STATUS_REJECTED);
  EXPECT_EQ(r.reason(), v1::SETPOINT_REJECT_REASON_EVSE_UNAVAILABLE);
  // Held paused: refreshed, no expiry.
  Advance(absl::Seconds(30), {idle, Charging(3, {0, 0, 0})});
  sent = SentOf<wallbox::Setpoint>(Sent());
  ASSERT_GE(sent.size(), 25u);
  for (const wallbox::Setpoint& sp : sent) EXPECT_TRUE(sp.pause);

  request.mutable_change_availability()->set_availability(v1::AVAILABILITY_OPERATIVE);
  EXPECT_EQ(owner_->Command(request).status(), v1::COMMAND_STATUS_ACCEPTED);
  EXPECT_EQ(Device("wallbox-a").availability(), v1::AVAILABILITY_OPERATIVE);
  EXPECT_EQ(Evse("wallbox-a").connector_status(), v1::CONNECTOR_STATUS_AVAILABLE);
  EXPECT_EQ(Apply(AllPhases("wb-a", 16)).status(), v1::SETPOINT_STATUS_ACCEPTED);
}

TEST_F(CanBusOwnerTest, InoperativeWaitsForTheVehicleToLeave) {
  BringUp();
  ASSERT_EQ(Apply(AllPhases("wb-a", 16)).status(), v1::SETPOINT_STATUS_ACCEPTED);
  Sent();
  v1::CommandRequest request;
  request.set_device_id("wallbox-a");
  request.mutable_change_availability()->set_evse_id("wb-a");
  request.mutable_change_availability()->set_availability(v1::AVAILABILITY_INOPERATIVE);
  EXPECT_EQ(owner_->Command(request).status(), v1::COMMAND_STATUS_SCHEDULED);
  EXPECT_EQ(Evse("wallbox-a").connector_status(), v1::CONNECTOR_STATUS_CHARGING);
  EXPECT_EQ(Apply(AllPhases("wb-a", 20)).status(), v1::SETPOINT_STATUS_ACCEPTED);
  Sent();
  wallbox::Status unplugged = Charging(1, {0, 0, 0}, 2);
  unplugged.state = wallbox::IecState::kA;
  unplugged.relay_closed = false;
  SendFromWallbox(unplugged);
  std::vector<wallbox::Setpoint> sent = SentOf<wallbox::Setpoint>(Sent());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(sent[0].pause);
  EXPECT_EQ(Evse("wallbox-a").connector_status(), v1::CONNECTOR_STATUS_UNAVAILABLE);
}

TEST_F(CanBusOwnerTest, BusDownRejectsSetpointsAndTellsWhy) {
  BringUp();
  network_.SetInterfaceUp(false);
  Pump();
  v1::SetpointResult r = Apply(AllPhases("wb-a", 16));
  EXPECT_EQ(r.status(), v1::SETPOINT_STATUS_REJECTED);
  EXPECT_EQ(r.reason(), v1::SETPOINT_REJECT_REASON_DEVICE_OFFLINE);
  EXPECT_GE(owner_->BusCounters().bus_events_total, 1u);
  EXPECT_NE(Device("wallbox-a").link().last_error().find("interface down"), std::string::npos)
      << Device("wallbox-a").link().last_error();
  EXPECT_NE(Device("wallbox-b").link().last_error().find("loopback bus down"), std::string::npos)
      << Device("wallbox-b").link().last_error();
  network_.SetInterfaceUp(true);
  Pump();
  SendFromWallbox(Charging(1, {0, 0, 0}));
  EXPECT_EQ(Apply(AllPhases("wb-a", 16)).status(), v1::SETPOINT_STATUS_ACCEPTED);
}

TEST_F(CanBusOwnerTest, BusHealthCountsFramesBothWaysAndErrorFramesByKind) {
  // What went on the wire before (the owner may have sent at start).
  const v1::BusHealth start = owner_->GetBusHealth();
  const int64_t before = network_.frames_sent();
  BringUp();
  SendFromWallbox(Charging(1, {0, 0, 0}));
  EXPECT_EQ(Apply(AllPhases("wb-a", 16)).status(), v1::SETPOINT_STATUS_ACCEPTED);
  Pump();
  v1::BusHealth health = owner_->GetBusHealth();
  EXPECT_EQ(health.bus_id(), "can-test");
  EXPECT_EQ(health.kind(), "can");
  EXPECT_GT(health.frames_sent_total(), 0u);
  EXPECT_GT(health.frames_received_total(), 0u);
  // Every frame on the wire is the owner's or one the wallboxes sent it.
  EXPECT_EQ(static_cast<int64_t>(health.frames_sent_total() + health.frames_received_total() -
                                 start.frames_sent_total() - start.frames_received_total()),
            network_.frames_sent() - before);

  for (BusEventKind kind :
       {BusEventKind::kErrorWarning, BusEventKind::kErrorPassive, BusEventKind::kBusOff,
        BusEventKind::kOtherError, BusEventKind::kOtherError}) {
    network_.InjectEvent("owner", {kind, std::nullopt, "injected"});
    Pump();
  }
  // Down is reported on every Receive() until the interface is back: one loss
  // per outage.
  network_.SetInterfaceUp(false);
  Pump();
  Advance(absl::Milliseconds(200));
  network_.SetInterfaceUp(true);
  Pump();
  network_.SetInterfaceUp(false);
  Pump();
  health = owner_->GetBusHealth();
  EXPECT_EQ(health.error_warning_total(), 1u);
  EXPECT_EQ(health.error_passive_total(), 1u);
  EXPECT_EQ(health.bus_off_total(), 1u);
  EXPECT_EQ(health.other_error_frames_total(), 2u);
  EXPECT_EQ(health.interface_down_total(), 2u);
  EXPECT_EQ(health.requests_total(), 0u);  // Modbus's counters stay empty
  EXPECT_FALSE(health.has_request_duration());
}

// A bus whose transmit queue is full: every Send times out.
class StuckBus : public CanBus {
 public:
  explicit StuckBus(int* sends) : sends_(sends) {}
  absl::Status Open() override { return absl::OkStatus(); }
  void Close() override {}
  absl::Status Send(const CanFrame&) override {
    ++*sends_;
    return absl::DeadlineExceededError("stuck: send timed out after 100ms");
  }
  BusEvent Receive(absl::Duration) override {
    BusEvent event;
    if (!status_sent_) {  // each wallbox reports once, so neither is stale
      event.kind = BusEventKind::kFrame;
      event.frame = *wallbox::Encode(Charging(pending_++ == 0 ? 1 : 3, {0, 0, 0}));
      status_sent_ = pending_ == 2;
    }
    return event;
  }
  std::string Describe() const override { return "stuck"; }

 private:
  int* sends_;
  int pending_ = 0;
  bool status_sent_ = false;
};

TEST(CanBusOwnerStuckBusTest, AFullQueueCostsOneSendTimeoutPerBatchNotOnePerFrame) {
  FakeClock clock;
  int sends = 0;
  CanBusOwnerOptions options;
  options.bus_id = "stuck";
  CanBusOwner owner(options, Wallboxes(), std::make_unique<StuckBus>(&sends), clock);
  ASSERT_TRUE(owner.Open().ok());
  owner.PollOnce(absl::ZeroDuration());
  owner.PollOnce(absl::ZeroDuration());
  ASSERT_FALSE(owner.GetDevice("wallbox-b")->link().stale());
  sends = 0;
  const uint64_t errors_before = owner.Counters("wallbox-b").send_errors_total;
  std::vector<v1::SetpointResult> results =
      owner.ApplySetpoints({AllPhases("wb-a", 16), Current("wb-b", std::nullopt, std::nullopt, 10)},
                           absl::Seconds(10), "b");
  ASSERT_EQ(results.size(), 2u);
  for (const v1::SetpointResult& r : results) {
    EXPECT_EQ(r.status(), v1::SETPOINT_STATUS_REJECTED);
    EXPECT_EQ(r.reason(), v1::SETPOINT_REJECT_REASON_TIMEOUT);
    EXPECT_NE(r.message().find("timed out"), std::string::npos) << r.message();
  }
  EXPECT_EQ(sends, 1);
  // Counted, though not tried.
  EXPECT_EQ(owner.Counters("wallbox-b").send_errors_total, errors_before + 1);
}

}  // namespace
}  // namespace evgate::can
