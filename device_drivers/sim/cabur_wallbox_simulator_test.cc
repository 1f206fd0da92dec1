#include "device_drivers/sim/cabur_wallbox_simulator.h"

#include "device_drivers/can/loopback_can_bus.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::sim {
namespace {

namespace wb = can::wallbox;
using can::CanFrame;
using ::testing::DoubleNear;
using ::testing::ElementsAre;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

CanFrame Enc(const wb::Setpoint& s) { return *wb::Encode(s); }
CanFrame Enc(const wb::WatchdogConfig& w) { return *wb::Encode(w); }

wb::Setpoint Setpoint(int address, double amps, int sequence = 1) {
  wb::Setpoint s;
  s.address = address;
  s.max_current_a = amps;
  s.sequence = sequence;
  return s;
}

// Decoded frames of one type from a batch.
template <typename M>
std::vector<M> Of(const std::vector<CanFrame>& frames) {
  std::vector<M> out;
  for (const CanFrame& f : frames) {
    absl::StatusOr<wb::Message> m = wb::Decode(f);
    EXPECT_TRUE(m.ok()) << m.status();
    if (m.ok() && std::holds_alternative<M>(*m)) out.push_back(std::get<M>(*m));
  }
  return out;
}

CaburWallboxConfig ThreePhase(int address = 2) {
  CaburWallboxConfig c;
  c.address = address;
  c.model = wb::Model::kEvPlus22kW3Phase;
  c.ev_lag = absl::Seconds(2);
  return c;
}

TEST(CaburWallboxSimulator, PowerUpAnnouncesItselfAndStartsInFailsafe) {
  CaburWallboxConfig c = ThreePhase(7);
  c.serial = "022101000266JSS070RE3CA02";
  c.firmware = {9, 15, 6};
  CaburWallboxSimulator sim(c, kT0);
  const std::vector<CanFrame> frames = sim.Tick(kT0);
  EXPECT_EQ(Of<wb::IdentityInfo>(frames).size(), 1u);
  EXPECT_EQ(Of<wb::IdentitySerial>(frames).size(), 4u);
  wb::IdentityAssembler assembler;
  std::optional<wb::Identity> id;
  for (const auto& info : Of<wb::IdentityInfo>(frames)) id = assembler.Add(info);
  for (const auto& page : Of<wb::IdentitySerial>(frames)) id = assembler.Add(page);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->serial, "022101000266JSS070RE3CA02");
  EXPECT_EQ(id->info.model, wb::Model::kEvPlus22kW3Phase);
  EXPECT_THAT(id->info.firmware, ElementsAre(9, 15, 6));
  const auto status = Of<wb::Status>(frames);
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].state, wb::IecState::kA);
  EXPECT_TRUE(status[0].failsafe_active);
  EXPECT_FALSE(status[0].watchdog_configured);
  EXPECT_EQ(Of<wb::Measurements>(frames).size(), 1u);
  EXPECT_EQ(Of<wb::Energy>(frames).size(), 1u);
  // Power-up failsafe: 6 A on every phase until the first setpoint.
  EXPECT_THAT(sim.Snapshot(kT0).offered_current_a, ElementsAre(6, 6, 6));
}

TEST(CaburWallboxSimulator, ReportsAtFiveHertzAndMeasuresAtOneHertz) {
  CaburWallboxSimulator sim(ThreePhase(), kT0);
  int status = 0, measurements = 0, energy = 0, identity = 0;
  for (int ms = 0; ms < 10'000; ms += 10) {
    const auto frames = sim.Tick(kT0 + absl::Milliseconds(ms));
    status += Of<wb::Status>(frames).size();
    measurements += Of<wb::Measurements>(frames).size();
    energy += Of<wb::Energy>(frames).size();
    identity += Of<wb::IdentityInfo>(frames).size();
  }
  EXPECT_EQ(status, 50);
  EXPECT_EQ(measurements, 10);
  EXPECT_EQ(energy, 10);
  EXPECT_EQ(identity, 1);  // power-up; the next one at 10 s
  EXPECT_EQ(Of<wb::IdentityInfo>(sim.Tick(kT0 + absl::Seconds(10))).size(), 1u);
}

TEST(CaburWallboxSimulator, VehicleChargesAtTheSmallerOfSetpointAndItsMaximumAfterTheLag) {
  CaburWallboxSimulator sim(ThreePhase(), kT0);
  sim.Tick(kT0);
  sim.OnFrame(Enc(Setpoint(2, 16)), kT0);
  sim.PlugIn({.max_current_a = 32, .phases = 3, .energy_to_full_wh = 50'000}, kT0);
  EXPECT_EQ(sim.Snapshot(kT0).state, wb::IecState::kB);
  EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Milliseconds(1999)), ElementsAre(0, 0, 0));
  EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(2)), ElementsAre(16, 16, 16));
  CaburWallboxSnapshot s = sim.Snapshot(kT0 + absl::Seconds(2));
  EXPECT_EQ(s.state, wb::IecState::kC);
  EXPECT_TRUE(s.relay_closed);
  // A new setpoint above what the vehicle takes: it draws its maximum, after the lag.
  sim.OnFrame(Enc(Setpoint(2, 32, 2)), kT0 + absl::Seconds(3));
  EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(4)), ElementsAre(16, 16, 16));
  EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(5)), ElementsAre(32, 32, 32));
  // A setpoint for another wallbox changes nothing.
  sim.OnFrame(Enc(Setpoint(3, 6, 3)), kT0 + absl::Seconds(5));
  EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(9)), ElementsAre(32, 32, 32));
  // The status reports the draw and the applied sequence.
  const auto status = Of<wb::Status>(sim.Tick(kT0 + absl::Seconds(9)));
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].applied_sequence, 2);
  EXPECT_THAT(status[0].current_a, ElementsAre(32, 32, 32));
  EXPECT_FALSE(status[0].failsafe_active);
}

TEST(CaburWallboxSimulator, SmallerVehicleAndSinglePhaseModel) {
  CaburWallboxConfig c = ThreePhase(4);
  c.model = wb::Model::kEvPlus7kW1Phase;
  CaburWallboxSimulator sim(c, kT0);
  sim.OnFrame(Enc(Setpoint(4, 32)), kT0);
  sim.PlugIn({.max_current_a = 20, .phases = 3, .energy_to_full_wh = 50'000}, kT0);
  EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(3)), ElementsAre(20, 0, 0));
  const auto frames = sim.Tick(kT0 + absl::Seconds(3));
  const auto m = Of<wb::Measurements>(frames);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_THAT(m[0].voltage_v, ElementsAre(230, 0, 0));
  EXPECT_EQ(m[0].active_power_w, 4600);
}

TEST(CaburWallboxSimulator, CountsEnergyAndStopsWhenFull) {
  CaburWallboxSimulator sim(ThreePhase(), kT0);
  sim.OnFrame(Enc(Setpoint(2, 16)), kT0);
  sim.PlugIn({.max_current_a = 32, .phases = 3, .energy_to_full_wh = 11'040}, kT0);
  // 3 x 16 A x 230 V = 11,040 W from t0 + 2 s; the controller keeps the
  // watchdog fed every second.
  CaburWallboxSnapshot snap;
  for (int s = 0; s <= 3700; s += 1) {
    sim.OnFrame(Enc(Setpoint(2, 16)), kT0 + absl::Seconds(s));
    if (s == 1802) {
      snap = sim.Snapshot(kT0 + absl::Seconds(s));
      EXPECT_THAT(snap.session_energy_wh, DoubleNear(5520, 1e-6));
      EXPECT_EQ(snap.state, wb::IecState::kC);
    }
    if (s == 3602) {
      snap = sim.Snapshot(kT0 + absl::Seconds(s));
      EXPECT_THAT(snap.session_energy_wh, DoubleNear(11040, 1e-6));
      EXPECT_EQ(snap.state, wb::IecState::kB);  // full: the vehicle stopped asking
    }
  }
  EXPECT_FALSE(snap.relay_closed);
  EXPECT_THAT(snap.current_a, ElementsAre(0, 0, 0));
  const auto energy = Of<wb::Energy>(sim.Tick(kT0 + absl::Seconds(3700)));
  ASSERT_EQ(energy.size(), 1u);
  EXPECT_EQ(energy[0].session_energy_wh, 11040);
  EXPECT_EQ(energy[0].lifetime_energy_wh, 11000);  // 0.1 kWh steps on the wire
  // Unplugging: state A; the next vehicle starts a new session.
  sim.Unplug(kT0 + absl::Seconds(3800));
  EXPECT_EQ(sim.Snapshot(kT0 + absl::Seconds(3800)).state, wb::IecState::kA);
  sim.PlugIn({.max_current_a = 10, .phases = 1, .energy_to_full_wh = 1000},
             kT0 + absl::Seconds(3801));
  // The watchdog (10 s default) expired long ago: the failsafe 6 A applies.
  sim.Tick(kT0 + absl::Seconds(3801));
  snap = sim.Snapshot(kT0 + absl::Seconds(3804));
  EXPECT_EQ(snap.session_energy_wh > 0, true);
  EXPECT_THAT(snap.current_a, ElementsAre(6, 0, 0));
  EXPECT_DOUBLE_EQ(snap.lifetime_energy_wh, 11040 + snap.session_energy_wh);
}

TEST(CaburWallboxSimulator, WatchdogExpiryFallsBackToTheProgrammedFailsafe) {
  CaburWallboxSimulator sim(ThreePhase(), kT0);
  sim.OnFrame(Enc(wb::WatchdogConfig{2, 1000, 8.0}), kT0);
  sim.OnFrame(Enc(Setpoint(2, 20)), kT0);
  sim.PlugIn({.max_current_a = 32, .phases = 3, .energy_to_full_wh = 50'000}, kT0);
  for (int ms = 0; ms <= 5000; ms += 500) {
    sim.OnFrame(Enc(Setpoint(2, 20)), kT0 + absl::Milliseconds(ms));
    sim.Tick(kT0 + absl::Milliseconds(ms));
  }
  EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(5)), ElementsAre(20, 20, 20));
  // The controller dies at 5 s. At 6 s the watchdog is not yet expired...
  EXPECT_FALSE(Of<wb::Status>(sim.Tick(kT0 + absl::Seconds(6)))[0].failsafe_active);
  // ... just after, it is: failsafe reported at once, 8 A after the vehicle's lag.
  std::vector<wb::Status> status = Of<wb::Status>(sim.Tick(kT0 + absl::Milliseconds(6020)));
  ASSERT_EQ(status.size(), 1u);
  EXPECT_TRUE(status[0].failsafe_active);
  EXPECT_THAT(sim.Snapshot(kT0 + absl::Milliseconds(6020)).offered_current_a, ElementsAre(8, 8, 8));
  EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Milliseconds(8010)), ElementsAre(20, 20, 20));
  EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Milliseconds(8020)), ElementsAre(8, 8, 8));
  // The controller is back: the next setpoint applies and clears the flag.
  sim.OnFrame(Enc(Setpoint(2, 12, 5)), kT0 + absl::Seconds(9));
  CaburWallboxSnapshot s = sim.Snapshot(kT0 + absl::Seconds(11));
  EXPECT_FALSE(s.failsafe_active);
  EXPECT_THAT(s.current_a, ElementsAre(12, 12, 12));
  EXPECT_TRUE(s.watchdog_configured);
}

TEST(CaburWallboxSimulator, PauseAndPhaseEnable) {
  CaburWallboxSimulator sim(ThreePhase(), kT0);
  sim.OnFrame(Enc(Setpoint(2, 16)), kT0);
  sim.PlugIn({.max_current_a = 32, .phases = 3, .energy_to_full_wh = 50'000}, kT0);
  EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(2)), ElementsAre(16, 16, 16));
  wb::Setpoint one_phase = Setpoint(2, 16, 2);
  one_phase.phase_enabled = {true, false, false};
  sim.OnFrame(Enc(one_phase), kT0 + absl::Seconds(3));
  EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(5)), ElementsAre(16, 0, 0));
  wb::Setpoint pause = Setpoint(2, 16, 3);
  pause.pause = true;
  const auto frames = sim.OnFrame(Enc(pause), kT0 + absl::Seconds(6));
  // A visible change is reported at once.
  ASSERT_EQ(Of<wb::Status>(frames).size(), 1u);
  EXPECT_TRUE(Of<wb::Status>(frames)[0].paused);
  CaburWallboxSnapshot s = sim.Snapshot(kT0 + absl::Seconds(8));
  EXPECT_EQ(s.state, wb::IecState::kB);
  EXPECT_FALSE(s.relay_closed);
  EXPECT_TRUE(s.paused);
  sim.OnFrame(Enc(Setpoint(2, 10, 4)), kT0 + absl::Seconds(8));
  EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(10)), ElementsAre(10, 10, 10));
}

TEST(CaburWallboxSimulator, EveryErrCodeStopsChargingAndIsReported) {
  for (int i = 0; i < wb::kErrorCodeCount; ++i) {
    const auto code = static_cast<wb::ErrorCode>(i);
    CaburWallboxSimulator sim(ThreePhase(), kT0);
    sim.OnFrame(Enc(Setpoint(2, 16)), kT0);
    sim.PlugIn({.max_current_a = 32, .phases = 3, .energy_to_full_wh = 50'000}, kT0);
    sim.Tick(kT0 + absl::Seconds(2));
    sim.InjectFault(code, kT0 + absl::Seconds(3));
    EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(3)), ElementsAre(0, 0, 0));
    const auto status = Of<wb::Status>(sim.Tick(kT0 + absl::Seconds(3)));
    ASSERT_EQ(status.size(), 1u) << wb::ErrorCodeName(code);
    EXPECT_EQ(status[0].state, wb::IecState::kF);
    EXPECT_EQ(status[0].errors, wb::ErrorBit(code));
    EXPECT_FALSE(status[0].relay_closed);
    sim.OnFrame(Enc(Setpoint(2, 16, 2)), kT0 + absl::Seconds(4));
    EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(8)), ElementsAre(0, 0, 0));
    sim.ClearFault(code, kT0 + absl::Seconds(8));
    sim.OnFrame(Enc(Setpoint(2, 16, 3)), kT0 + absl::Seconds(8));
    EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(9)), ElementsAre(0, 0, 0));
    EXPECT_THAT(sim.CurrentDraw(kT0 + absl::Seconds(10)), ElementsAre(16, 16, 16));
  }
}

TEST(CaburWallboxSimulator, CardTapIsSentOnTheNextTick) {
  CaburWallboxSimulator sim(ThreePhase(), kT0);
  sim.Tick(kT0);
  ASSERT_TRUE(sim.TapCard({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, kT0).ok());
  ASSERT_TRUE(sim.TapCard({0xAA, 0xBB, 0xCC, 0xDD}, kT0).ok());
  EXPECT_FALSE(sim.TapCard({}, kT0).ok());
  const auto fragments = Of<wb::RfidFragment>(sim.Tick(kT0 + absl::Milliseconds(10)));
  ASSERT_EQ(fragments.size(), 3u);
  wb::RfidAssembler assembler;
  std::vector<wb::RfidTap> taps;
  for (const auto& f : fragments) {
    if (auto tap = assembler.Add(f)) taps.push_back(*tap);
  }
  ASSERT_EQ(taps.size(), 2u);
  EXPECT_THAT(taps[0].uid, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
  EXPECT_THAT(taps[1].uid, ElementsAre(0xAA, 0xBB, 0xCC, 0xDD));
  EXPECT_NE(taps[0].tap_sequence, taps[1].tap_sequence);
  EXPECT_TRUE(Of<wb::RfidFragment>(sim.Tick(kT0 + absl::Milliseconds(20))).empty());
}

TEST(CaburWallboxSimulator, BadFramesForItAreCountedAndDoNotFeedTheWatchdog) {
  CaburWallboxSimulator sim(ThreePhase(), kT0);
  sim.OnFrame(Enc(Setpoint(2, 16)), kT0);
  CanFrame bad = Enc(Setpoint(2, 16));
  bad.data[0] = 59;  // 5.9 A: out of range
  sim.OnFrame(bad, kT0 + absl::Seconds(9));
  CanFrame other = Enc(Setpoint(3, 16));
  other.data[0] = 59;  // not for this wallbox
  sim.OnFrame(other, kT0 + absl::Seconds(9));
  sim.Tick(kT0 + absl::Milliseconds(10'001));
  CaburWallboxSnapshot s = sim.Snapshot(kT0 + absl::Milliseconds(10'001));
  EXPECT_EQ(s.frames_rejected, 1);
  EXPECT_TRUE(s.failsafe_active);
}

// ---- the host, on the loopback bus with a fake clock ----------------------------
//
// The host runs without its thread: each Step() does what the thread would do
// next, so the tests move the fake clock and the host in lock step and wait
// for nothing in real time.

constexpr absl::Duration kIdleStep = absl::Milliseconds(10);

class HostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sim_bus_ = network_.Endpoint("sims");
    controller_ = network_.Endpoint("controller");
    ASSERT_TRUE(controller_->Open().ok());
    host_ = std::make_unique<CanWallboxSimHost>(*sim_bus_, clock_);
    CaburWallboxConfig one = ThreePhase(1);
    one.model = wb::Model::kEvPlus7kW1Phase;
    ASSERT_TRUE(host_->AddWallbox(one).ok());
    ASSERT_TRUE(host_->AddWallbox(ThreePhase(2)).ok());
    EXPECT_EQ(host_->AddWallbox(ThreePhase(2)).code(), absl::StatusCode::kAlreadyExists);
    CaburWallboxConfig bad = ThreePhase(64);
    EXPECT_FALSE(host_->AddWallbox(bad).ok());
    EXPECT_EQ(host_->Step().status().code(), absl::StatusCode::kFailedPrecondition);
    ASSERT_TRUE(host_->Open().ok());
  }
  void TearDown() override { host_->Stop(); }

  // The host handles what is on the bus and ticks at the fake clock's now.
  void Step() {
    absl::StatusOr<int> events = host_->Step();
    ASSERT_TRUE(events.ok()) << events.status();
  }

  // The next frame the controller has received, decoded and counted; nullopt
  // when there is none.
  std::optional<wb::Message> NextMessage() {
    while (true) {
      can::BusEvent e = controller_->Receive(absl::ZeroDuration());
      if (e.kind != can::BusEventKind::kFrame) return std::nullopt;
      absl::StatusOr<wb::Message> m = wb::Decode(*e.frame);
      EXPECT_TRUE(m.ok()) << m.status();
      if (!m.ok()) continue;
      ++seen_[m->index()];
      if (auto* fragment = std::get_if<wb::RfidFragment>(&*m)) {
        if (std::optional<wb::RfidTap> tap = rfid_.Add(*fragment)) taps_.push_back(*tap);
      }
      return *m;
    }
  }

  // Steps the host and reads frames until `done` holds for a decoded status
  // of `address`. While none does, the fake clock moves 10 ms per step, as
  // time would for a wallbox (it rate-limits status frames sent on a
  // change), up to `limit` of fake time.
  template <typename F>
  std::optional<wb::Status> WaitForStatus(int address, F done,
                                          absl::Duration limit = absl::Seconds(10)) {
    for (absl::Duration waited; waited <= limit; waited += kIdleStep) {
      Step();
      while (std::optional<wb::Message> m = NextMessage()) {
        if (auto* s = std::get_if<wb::Status>(&*m); s && s->address == address && done(*s)) {
          return *s;
        }
      }
      clock_.Advance(kIdleStep);
    }
    return std::nullopt;
  }
  void Send(const CanFrame& f) { ASSERT_TRUE(controller_->Send(f).ok()); }

  FakeClock clock_{kT0};
  can::LoopbackCanNetwork network_{clock_};
  std::unique_ptr<can::CanBus> sim_bus_;
  std::unique_ptr<can::CanBus> controller_;
  std::unique_ptr<CanWallboxSimHost> host_;
  std::map<size_t, int> seen_;  // frames per message variant index
  wb::RfidAssembler rfid_;
  std::vector<wb::RfidTap> taps_;  // complete card taps the controller received
};

TEST_F(HostTest, StepAppliesEveryFrameOnTheBusAndTicksAtTheFakeNow) {
  Step();  // power-up burst at kT0
  while (NextMessage().has_value()) {
  }
  Send(Enc(wb::WatchdogConfig{2, 2000, 8}));
  Send(Enc(Setpoint(2, 16, 7)));
  clock_.Advance(absl::Milliseconds(50));
  // One step: both frames, nothing waited for.
  absl::StatusOr<int> events = host_->Step();
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(*events, 2);
  std::optional<CaburWallboxSnapshot> snap = host_->Snapshot(2);
  ASSERT_TRUE(snap.has_value());
  EXPECT_TRUE(snap->watchdog_configured);
  EXPECT_FALSE(snap->failsafe_active);
  EXPECT_EQ(snap->applied_sequence, 7);
  // Its status on the change is on the bus when Step() returns: the first
  // change at once; the second at the same instant is rate-limited to 20 ms
  // later.
  auto last_status_of_2 = [&] {
    std::optional<wb::Status> status;
    while (std::optional<wb::Message> m = NextMessage()) {
      if (auto* s = std::get_if<wb::Status>(&*m); s && s->address == 2) status = *s;
    }
    return status;
  };
  std::optional<wb::Status> status = last_status_of_2();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->watchdog_configured);
  EXPECT_EQ(status->applied_sequence, 0);
  clock_.Advance(absl::Milliseconds(20));
  Step();
  status = last_status_of_2();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->applied_sequence, 7);
  // Nothing on the bus and no time passed: nothing handled, nothing sent.
  events = host_->Step();
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(*events, 0);
  EXPECT_FALSE(NextMessage().has_value());
  // Open() and Start() exclude each other; Step() needs the host without its thread.
  EXPECT_EQ(host_->Open().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(host_->Start().code(), absl::StatusCode::kFailedPrecondition);
  host_->Stop();
  EXPECT_EQ(host_->Step().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(host_->Start().ok());
  EXPECT_EQ(host_->Step().status().code(), absl::StatusCode::kFailedPrecondition);
  host_->Stop();
}

TEST_F(HostTest, WallboxesFollowTheControllerAndFallBackWhenItStops) {
  // Both announce themselves.
  ASSERT_TRUE(WaitForStatus(1, [](const wb::Status& s) { return s.failsafe_active; }));
  ASSERT_TRUE(WaitForStatus(2, [](const wb::Status& s) { return s.failsafe_active; }));
  Send(Enc(wb::WatchdogConfig{2, 2000, 0}));
  Send(Enc(Setpoint(2, 16, 1)));
  clock_.Advance(absl::Milliseconds(50));
  ASSERT_TRUE(WaitForStatus(2, [](const wb::Status& s) {
    return s.watchdog_configured && !s.failsafe_active && s.applied_sequence == 1;
  }));
  ASSERT_TRUE(
      host_->PlugIn(2, {.max_current_a = 32, .phases = 3, .energy_to_full_wh = 50'000}).ok());
  // The controller refreshes its setpoint every 500 ms for 2.5 s.
  for (int i = 0; i < 5; ++i) {
    Send(Enc(Setpoint(2, 16, 1)));
    Step();
    clock_.Advance(absl::Milliseconds(500));
  }
  ASSERT_TRUE(WaitForStatus(2, [](const wb::Status& s) {
    return s.state == wb::IecState::kC && s.current_a[2] == 16 && !s.failsafe_active;
  }));
  EXPECT_THAT(host_->CurrentDraw(2), ElementsAre(16, 16, 16));
  EXPECT_THAT(host_->CurrentDraw(1), ElementsAre(0, 0, 0));
  // The controller goes silent: after 2 s the failsafe (0 A) applies, and the
  // vehicle stops after its lag.
  clock_.Advance(absl::Milliseconds(2100));
  ASSERT_TRUE(WaitForStatus(2, [](const wb::Status& s) { return s.failsafe_active; }));
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(WaitForStatus(
      2, [](const wb::Status& s) { return s.state == wb::IecState::kB && s.current_a[0] == 0; }));
  // Faults and card taps go through the host too.
  ASSERT_TRUE(host_->InjectFault(1, wb::ErrorCode::kIrd).ok());
  ASSERT_TRUE(WaitForStatus(1, [](const wb::Status& s) {
    return s.state == wb::IecState::kF && s.HasError(wb::ErrorCode::kIrd);
  }));
  ASSERT_TRUE(host_->TapCard(1, {4, 3, 2, 1}).ok());
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(WaitForStatus(1, [](const wb::Status&) { return true; }));
  ASSERT_EQ(taps_.size(), 1u);
  EXPECT_EQ(taps_[0].address, 1);
  EXPECT_THAT(taps_[0].uid, ElementsAre(4, 3, 2, 1));
  EXPECT_EQ(host_->PlugIn(9, {}).code(), absl::StatusCode::kNotFound);
  std::optional<CaburWallboxSnapshot> snap = host_->Snapshot(2);
  ASSERT_TRUE(snap.has_value());
  EXPECT_GT(snap->session_energy_wh, 0);
  EXPECT_EQ(host_->send_errors(), 0);
}

TEST_F(HostTest, AWallboxCutOffTheBusIsSilentDeafAndFallsBackToItsFailsafe) {
  Send(Enc(wb::WatchdogConfig{2, 2000, 8}));
  Send(Enc(Setpoint(2, 16, 1)));
  clock_.Advance(absl::Milliseconds(50));
  ASSERT_TRUE(WaitForStatus(2, [](const wb::Status& s) {
    return s.watchdog_configured && !s.failsafe_active && s.applied_sequence == 1;
  }));
  ASSERT_TRUE(host_->SetResponding(2, false).ok());
  EXPECT_FALSE(host_->Responding(2));
  EXPECT_TRUE(host_->Responding(1));
  EXPECT_EQ(host_->SetResponding(9, false).code(), absl::StatusCode::kNotFound);
  Step();
  while (NextMessage().has_value()) {
  }
  // The controller keeps refreshing, but the wallbox no longer hears it: after
  // its 2 s watchdog it runs on its failsafe (8 A), and says nothing, while
  // the other wallbox goes on reporting.
  seen_.clear();
  for (int i = 0; i < 6; ++i) {
    Send(Enc(Setpoint(2, 16, 1)));
    Step();
    clock_.Advance(absl::Milliseconds(500));
  }
  EXPECT_FALSE(WaitForStatus(2, [](const wb::Status&) { return true; }).has_value());
  EXPECT_GT(seen_[wb::Message(wb::Status{}).index()], 0);  // wallbox 1's
  std::optional<CaburWallboxSnapshot> snap = host_->Snapshot(2);
  ASSERT_TRUE(snap.has_value());
  EXPECT_TRUE(snap->failsafe_active);
  EXPECT_THAT(snap->offered_current_a, ElementsAre(8, 8, 8));
  // Back on the bus, it reports again and takes setpoints.
  ASSERT_TRUE(host_->SetResponding(2, true).ok());
  Send(Enc(Setpoint(2, 16, 2)));
  clock_.Advance(absl::Milliseconds(50));
  ASSERT_TRUE(WaitForStatus(
      2, [](const wb::Status& s) { return !s.failsafe_active && s.applied_sequence == 2; }));
}

TEST_F(HostTest, StatusAtFiveHertzMeasurementsAtOneHertzOnTheBus) {
  ASSERT_TRUE(WaitForStatus(2, [](const wb::Status&) { return true; }));
  while (NextMessage().has_value()) {  // the rest of the power-up burst
  }
  seen_.clear();
  // 3 s of fake time in 10 ms steps, the host ticking at every step.
  for (int i = 0; i < 300; ++i) {
    clock_.Advance(absl::Milliseconds(10));
    Step();
  }
  while (NextMessage().has_value()) {
  }
  const size_t kStatus = wb::Message(wb::Status{}).index();
  const size_t kMeasurements = wb::Message(wb::Measurements{}).index();
  const size_t kEnergy = wb::Message(wb::Energy{}).index();
  // Two wallboxes, each: status at 0.2, 0.4 ... 3.0 s (15), measurements and
  // energy at 1, 2 and 3 s.
  EXPECT_EQ(seen_[kStatus], 30);
  EXPECT_EQ(seen_[kMeasurements], 6);
  EXPECT_EQ(seen_[kEnergy], 6);
}

}  // namespace
}  // namespace evgate::sim
