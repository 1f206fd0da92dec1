// The CAN bus owner with the Cabur wallbox simulators (device_drivers/sim):
//  - in closed loop on an in-memory bus with a FakeClock (deterministic):
//    watchdog programming, setpoints followed by the vehicle, TTL expiry,
//    the wallbox's own watchdog when the owner dies, faults, RFID;
//  - built by MakeCanBackend from site.yaml on evgate's UDP virtual bus, with
//    its own thread and a simulator host on another endpoint (real time).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "device_drivers/can/can_bus_owner.h"
#include "device_drivers/can/loopback_can_bus.h"
#include "device_drivers/can/udp_can_bus.h"
#include "device_drivers/sim/cabur_wallbox_simulator.h"
#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::can {
namespace {

namespace v1 = evgate::v1;
using sim::CaburWallboxConfig;
using sim::CaburWallboxSimulator;
using site::Phase;

class RecordingSink : public devices::DeviceEventSink {
 public:
  void Publish(v1::WatchDevicesResponse event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }
  int Count(v1::WatchDevicesResponse::EventCase kind) {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const auto& e : events_) n += e.event_case() == kind;
    return n;
  }
  std::vector<v1::WatchDevicesResponse> Of(v1::WatchDevicesResponse::EventCase kind) {
    absl::MutexLock lock(&mu_);
    std::vector<v1::WatchDevicesResponse> out;
    for (const auto& e : events_) {
      if (e.event_case() == kind) out.push_back(e);
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::WatchDevicesResponse> events_ ABSL_GUARDED_BY(mu_);
};

v1::Setpoint AllPhases(const std::string& evse, double a) {
  v1::Setpoint sp;
  sp.set_evse_id(evse);
  v1::PhaseValues* c = sp.mutable_value()->mutable_current_limit_a();
  c->set_l1(a);
  c->set_l2(a);
  c->set_l3(a);
  return sp;
}

// ---------------------------------------------------------------------------
// Closed loop, FakeClock.

class OwnerWithSimulatorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CanWallboxConfig a;
    a.device_id = "wallbox-1";
    a.profile = "cabur_ev_plus_22kw";
    a.address = 1;
    a.station_id = "wb1";
    a.evse_id = "wb1";
    a.phases = {Phase::kL2, Phase::kL3, Phase::kL1};
    a.failsafe_current_a = 8;
    CanWallboxConfig b;
    b.device_id = "wallbox-3";
    b.profile = "cabur_ev_plus_7kw";
    b.address = 3;
    b.station_id = "wb3";
    b.evse_id = "wb3";
    b.phases = {Phase::kL1};
    b.max_current_a = 16;
    b.failsafe_current_a = 0;
    CanBusOwnerOptions options;
    options.bus_id = "can-wallboxes";
    owner_ = std::make_unique<CanBusOwner>(options, std::vector<CanWallboxConfig>{a, b},
                                           network_.Endpoint("owner"), clock_);
    owner_->SetSink(&sink_);
    ASSERT_TRUE(owner_->Open().ok());
    ASSERT_TRUE(sim_bus_->Open().ok());

    CaburWallboxConfig sim22;
    sim22.address = 1;
    sim22.model = wallbox::Model::kEvPlus22kW3Phase;
    sim22.serial = "022101000266JSS070RE3CA02";
    sims_.push_back(std::make_unique<CaburWallboxSimulator>(sim22, clock_.Now()));
    CaburWallboxConfig sim7;
    sim7.address = 3;
    sim7.model = wallbox::Model::kEvPlus7kW1Phase;
    sims_.push_back(std::make_unique<CaburWallboxSimulator>(sim7, clock_.Now()));
  }

  // 50 ms of the world: the wallboxes see what is on the bus and report,
  // the owner (while alive) handles what they sent and what is due.
  void Step() {
    clock_.Advance(absl::Milliseconds(50));
    const absl::Time now = clock_.Now();
    while (true) {
      BusEvent event = sim_bus_->Receive(absl::ZeroDuration());
      if (event.kind != BusEventKind::kFrame) break;
      for (auto& s : sims_) SendFromSims(s->OnFrame(*event.frame, now));
    }
    for (auto& s : sims_) SendFromSims(s->Tick(now));
    if (owner_alive_) {
      for (int i = 0; i < 1000 && owner_->PollOnce(absl::ZeroDuration()); ++i) {
      }
    }
  }
  void Run(absl::Duration d) {
    for (absl::Duration t; t < d; t += absl::Milliseconds(50)) Step();
  }
  void SendFromSims(const std::vector<CanFrame>& frames) {
    for (const CanFrame& f : frames) ASSERT_TRUE(sim_bus_->Send(f).ok());
  }
  v1::EvseState Evse(const std::string& device) { return owner_->GetDevice(device)->evses(0); }

  FakeClock clock_;
  LoopbackCanNetwork network_{clock_};
  std::unique_ptr<CanBus> sim_bus_ = network_.Endpoint("wallboxes");
  std::vector<std::unique_ptr<CaburWallboxSimulator>> sims_;
  RecordingSink sink_;
  std::unique_ptr<CanBusOwner> owner_;
  bool owner_alive_ = true;
};

TEST_F(OwnerWithSimulatorsTest, ProgramsTheWallboxesAtPowerUp) {
  Run(absl::Seconds(1));
  for (int i = 0; i < 2; ++i) {
    sim::CaburWallboxSnapshot s = sims_[i]->Snapshot(clock_.Now());
    EXPECT_TRUE(s.watchdog_configured);
    EXPECT_EQ(s.watchdog_timeout_ms, 5000);
    EXPECT_TRUE(s.failsafe_active);  // no setpoint yet: the failsafe is in force
  }
  EXPECT_DOUBLE_EQ(sims_[0]->Snapshot(clock_.Now()).failsafe_current_a, 8.0);
  EXPECT_DOUBLE_EQ(sims_[1]->Snapshot(clock_.Now()).failsafe_current_a, 0.0);

  v1::DeviceState d = *owner_->GetDevice("wallbox-1");
  EXPECT_FALSE(d.link().stale());
  EXPECT_EQ(d.identity().serial_number(), "022101000266JSS070RE3CA02");
  EXPECT_EQ(d.evses(0).setpoint().source(), v1::SETPOINT_SOURCE_FAILSAFE);
  EXPECT_DOUBLE_EQ(d.evses(0).setpoint().value().current_limit_a().l1(), 8.0);
  EXPECT_TRUE(Evse("wallbox-3").setpoint().value().has_pause());  // failsafe 0
  EXPECT_EQ(owner_->Counters("wallbox-1").bad_frames_total, 0u);
  EXPECT_EQ(owner_->BusCounters().unknown_address_frames_total, 0u);
}

TEST_F(OwnerWithSimulatorsTest, VehicleFollowsTheSetpointOnTheRightSitePhases) {
  Run(absl::Seconds(1));
  sims_[0]->PlugIn(sim::EvParams{32, 3, 50'000}, clock_.Now());
  v1::SetpointResult r = owner_->ApplySetpoints({AllPhases("wb1", 16)}, absl::Seconds(60), "b1")[0];
  ASSERT_EQ(r.status(), v1::SETPOINT_STATUS_ACCEPTED) << r.message();
  Run(absl::Seconds(3));  // the vehicle follows after its 2 s lag

  sim::CaburWallboxSnapshot s = sims_[0]->Snapshot(clock_.Now());
  EXPECT_FALSE(s.failsafe_active);
  EXPECT_DOUBLE_EQ(s.current_a[0], 16.0);
  v1::EvseState evse = Evse("wallbox-1");
  EXPECT_EQ(evse.connector_status(), v1::CONNECTOR_STATUS_CHARGING);
  EXPECT_EQ(evse.setpoint().source(), v1::SETPOINT_SOURCE_CONTROLLER);
  EXPECT_DOUBLE_EQ(evse.measurements().current_a().l1(), 16.0);
  EXPECT_DOUBLE_EQ(evse.measurements().current_a().l2(), 16.0);
  EXPECT_DOUBLE_EQ(evse.measurements().current_a().l3(), 16.0);
  EXPECT_GT(evse.measurements().power_w(), 10000);
  EXPECT_EQ(owner_->Counters("wallbox-1").not_applied_total, 0u);

  // Lower: applied at once (decreases are never delayed by the owner).
  owner_->ApplySetpoints({AllPhases("wb1", 10)}, absl::Seconds(60), "b2");
  Run(absl::Seconds(3));
  EXPECT_DOUBLE_EQ(sims_[0]->Snapshot(clock_.Now()).current_a[0], 10.0);
  EXPECT_DOUBLE_EQ(Evse("wallbox-1").measurements().current_a().l2(), 10.0);
}

TEST_F(OwnerWithSimulatorsTest, SinglePhaseVehicleOnARotatedWallboxLoadsOneSitePhase) {
  Run(absl::Seconds(1));
  sims_[0]->PlugIn(sim::EvParams{16, 1, 50'000}, clock_.Now());  // on the wallbox's L1
  owner_->ApplySetpoints({AllPhases("wb1", 13)}, absl::Seconds(60), "b1");
  Run(absl::Seconds(3));
  const v1::PhaseValues current = Evse("wallbox-1").measurements().current_a();
  EXPECT_DOUBLE_EQ(current.l2(), 13.0);  // wallbox L1 is site L2
  EXPECT_DOUBLE_EQ(current.l3(), 0.0);
  EXPECT_DOUBLE_EQ(current.l1(), 0.0);
}

TEST_F(OwnerWithSimulatorsTest, TtlExpiryBringsTheWallboxToItsFailsafe) {
  Run(absl::Seconds(1));
  sims_[0]->PlugIn(sim::EvParams{32, 3, 50'000}, clock_.Now());
  owner_->ApplySetpoints({AllPhases("wb1", 20)}, absl::Seconds(4), "b1");
  Run(absl::Seconds(3));
  EXPECT_DOUBLE_EQ(sims_[0]->Snapshot(clock_.Now()).offered_current_a[0], 20.0);
  Run(absl::Seconds(2));  // TTL passed: the owner sent the failsafe
  EXPECT_DOUBLE_EQ(sims_[0]->Snapshot(clock_.Now()).offered_current_a[0], 8.0);
  EXPECT_EQ(Evse("wallbox-1").setpoint().source(), v1::SETPOINT_SOURCE_FAILSAFE);
  Run(absl::Seconds(6));  // and the wallbox's own watchdog now holds it
  sim::CaburWallboxSnapshot s = sims_[0]->Snapshot(clock_.Now());
  EXPECT_TRUE(s.failsafe_active);
  EXPECT_DOUBLE_EQ(s.offered_current_a[0], 8.0);
  EXPECT_DOUBLE_EQ(s.current_a[0], 8.0);
  EXPECT_EQ(Evse("wallbox-1").setpoint().source(), v1::SETPOINT_SOURCE_FAILSAFE);
}

TEST_F(OwnerWithSimulatorsTest, WallboxesFallBackToFailsafeWhenTheOwnerDies) {
  Run(absl::Seconds(1));
  sims_[0]->PlugIn(sim::EvParams{32, 3, 50'000}, clock_.Now());
  sims_[1]->PlugIn(sim::EvParams{16, 1, 50'000}, clock_.Now());
  owner_->ApplySetpoints({AllPhases("wb1", 25), AllPhases("wb3", 16)}, absl::Hours(1), "b1");
  Run(absl::Seconds(3));
  ASSERT_DOUBLE_EQ(sims_[0]->Snapshot(clock_.Now()).current_a[0], 25.0);
  ASSERT_DOUBLE_EQ(sims_[1]->Snapshot(clock_.Now()).current_a[0], 16.0);

  owner_alive_ = false;  // the gateway dies: no more refreshes
  Run(absl::Milliseconds(4900));
  EXPECT_FALSE(sims_[0]->Snapshot(clock_.Now()).failsafe_active);  // within the 5 s watchdog
  Run(absl::Seconds(3));
  sim::CaburWallboxSnapshot a = sims_[0]->Snapshot(clock_.Now());
  EXPECT_TRUE(a.failsafe_active);
  EXPECT_DOUBLE_EQ(a.current_a[0], 8.0);
  sim::CaburWallboxSnapshot b = sims_[1]->Snapshot(clock_.Now());
  EXPECT_TRUE(b.failsafe_active);
  EXPECT_DOUBLE_EQ(b.current_a[0], 0.0);  // failsafe 0: paused
}

TEST_F(OwnerWithSimulatorsTest, InjectedFaultAndCardTapReachTheSink) {
  Run(absl::Seconds(1));
  sims_[1]->InjectFault(wallbox::ErrorCode::kRot, clock_.Now());
  ASSERT_TRUE(sims_[1]->TapCard({0x04, 0xA2, 0xB3, 0xC4}, clock_.Now()).ok());
  Run(absl::Milliseconds(500));
  std::vector<v1::WatchDevicesResponse> faults = sink_.Of(v1::WatchDevicesResponse::kFaultRaised);
  ASSERT_EQ(faults.size(), 1u);
  EXPECT_EQ(faults[0].device_id(), "wallbox-3");
  EXPECT_EQ(faults[0].fault_raised().fault().vendor_code(), "ERR ROT");
  EXPECT_EQ(Evse("wallbox-3").connector_status(), v1::CONNECTOR_STATUS_FAULTED);
  std::vector<v1::WatchDevicesResponse> taps = sink_.Of(v1::WatchDevicesResponse::kRfidTap);
  ASSERT_EQ(taps.size(), 1u);
  EXPECT_EQ(taps[0].rfid_tap().id_tag(), "04A2B3C4");
  EXPECT_EQ(taps[0].rfid_tap().evse_id(), "wb3");

  sims_[1]->ClearFault(wallbox::ErrorCode::kRot, clock_.Now());
  Run(absl::Milliseconds(500));
  EXPECT_EQ(sink_.Count(v1::WatchDevicesResponse::kFaultCleared), 1);
  EXPECT_TRUE(Evse("wallbox-3").faults().empty());
}

// ---------------------------------------------------------------------------
// site.yaml -> MakeCanBackend, on the UDP virtual bus, real threads.

// A site with two Cabur wallboxes on one CAN bus (transport and port filled
// in by the test).
constexpr char kSite[] = R"yaml(
insecure_demo: true
site:
  id: can-test
grid:
  fuse_limit_a: 63
buses:
  - id: can-1
    type: can
    interface: vcan-test
TRANSPORT
devices:
  - id: wallbox-1
    profile: cabur_ev_plus_22kw
    bus: can-1
    address: 1
  - id: wallbox-2
    profile: cabur_ev_plus_7kw
    bus: can-1
    address: 2
stations:
  - id: wb1
    device: wallbox-1
    circuit: grid
    evses:
      - id: wb1
        phases: [L2, L3, L1]
        max_current_a: 32
  - id: wb2
    device: wallbox-2
    circuit: grid
    evses:
      - id: wb2
        phases: [L3]
        max_current_a: 16
        failsafe_current_a: 0
controller:
  failsafe_current_a: 10
services:
  session_database: /var/lib/evgate/sessions.db
)yaml";

// A UDP port that is free now (the kernel's pick for port 0).
int FreeUdpPort() {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  (void)bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

absl::StatusOr<site::SiteConfig> Site(const std::string& transport, int port) {
  const std::string bus =
      transport == "udp"
          ? absl::StrCat("    transport: udp\n    udp_group: 239.255.77.2\n    udp_port: ", port)
          : absl::StrCat("    transport: ", transport);
  return site::LoadSiteConfigString(absl::StrReplaceAll(kSite, {{"TRANSPORT", bus}}), "site.yaml");
}

TEST(MakeCanBackendTest, WallboxesComeFromTheSite) {
  absl::StatusOr<site::SiteConfig> site = Site("udp", 15999);
  ASSERT_TRUE(site.ok()) << site.status();
  absl::StatusOr<std::vector<CanWallboxConfig>> wallboxes =
      CanWallboxesOnBus(*site, site->buses[0]);
  ASSERT_TRUE(wallboxes.ok()) << wallboxes.status();
  ASSERT_EQ(wallboxes->size(), 2u);
  const CanWallboxConfig& a = (*wallboxes)[0];
  EXPECT_EQ(a.device_id, "wallbox-1");
  EXPECT_EQ(a.evse_id, "wb1");
  EXPECT_EQ(a.station_id, "wb1");
  EXPECT_EQ(a.address, 1);
  EXPECT_EQ(a.phases, (std::vector<Phase>{Phase::kL2, Phase::kL3, Phase::kL1}));
  EXPECT_EQ(a.max_current_a, 32);
  EXPECT_EQ(a.failsafe_current_a, 10);         // controller.failsafe_current_a
  EXPECT_EQ(a.stale_after, absl::Seconds(1));  // 5 Status periods (3 missed polls is less)
  EXPECT_EQ((*wallboxes)[1].failsafe_current_a, 0);
  EXPECT_EQ((*wallboxes)[1].phases, (std::vector<Phase>{Phase::kL3}));
}

// The demo site's CAN bus as `evgate run` will build it.
TEST(MakeCanBackendTest, TheDemoSitesWallboxes) {
  absl::StatusOr<site::SiteConfig> site = site::LoadSiteConfigFile("gateway/sites/demo.yaml");
  ASSERT_TRUE(site.ok()) << site.status();
  const site::BusConfig* bus = site->FindBus("can-wallboxes");
  ASSERT_NE(bus, nullptr);
  absl::StatusOr<std::unique_ptr<devices::DeviceBackend>> backend =
      MakeCanBackend(*site, *bus, SystemClock::Get());
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ((*backend)->bus_id(), "can-wallboxes");
  EXPECT_EQ((*backend)->DeviceIds(),
            (std::vector<std::string>{"wallbox-1", "wallbox-2", "wallbox-3", "wallbox-4"}));
  EXPECT_EQ((*backend)->EvseIds(), (std::vector<std::string>{"wb1", "wb2", "wb3", "wb4"}));
  const v1::EvseState wb2 = (*backend)->GetDevice("wallbox-2")->evses(0);
  ASSERT_EQ(wb2.capabilities().phases_size(), 3);
  EXPECT_EQ(wb2.capabilities().phases(0), v1::PHASE_L2);  // rotated wiring
  EXPECT_EQ((*backend)->GetDevice("wallbox-3")->evses(0).capabilities().max_current_a(), 16);
}

TEST(MakeCanBackendTest, SocketCanFailsAtStartWithAClearMessage) {
  absl::StatusOr<site::SiteConfig> site = Site("socketcan", 15030);
  ASSERT_TRUE(site.ok()) << site.status();
  absl::StatusOr<std::unique_ptr<devices::DeviceBackend>> backend =
      MakeCanBackend(*site, site->buses[0], SystemClock::Get());
  ASSERT_TRUE(backend.ok()) << backend.status();
  // This machine has no AF_CAN (or no vcan-test interface): Start says so.
  absl::Status started = (*backend)->Start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.message().find("CAN bus can-1: socketcan vcan-test"), std::string::npos)
      << started;
}

TEST(MakeCanBackendTest, RejectsANonCanBus) {
  absl::StatusOr<site::SiteConfig> site = Site("udp", 15999);
  ASSERT_TRUE(site.ok()) << site.status();
  site::BusConfig modbus;
  modbus.id = "rs485";
  modbus.type = site::BusType::kModbusTcp;
  EXPECT_EQ(MakeCanBackend(*site, modbus, SystemClock::Get()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The real thing in one process: the owner thread on one UDP endpoint, the
// simulator host on another; the owner is stopped ("killed") and the
// wallboxes fall back to the failsafe the owner programmed.
TEST(MakeCanBackendTest, OverUdpWithSimulatedWallboxes) {
  const int port = FreeUdpPort();
  absl::StatusOr<site::SiteConfig> site = Site("udp", port);
  ASSERT_TRUE(site.ok()) << site.status();
  absl::StatusOr<std::unique_ptr<devices::DeviceBackend>> made =
      MakeCanBackend(*site, site->buses[0], SystemClock::Get());
  ASSERT_TRUE(made.ok()) << made.status();
  devices::DeviceBackend& backend = **made;
  RecordingSink sink;
  backend.SetSink(&sink);

  UdpCanBusOptions sim_options;
  sim_options.name = "sim";
  sim_options.group = "239.255.77.2";
  sim_options.port = port;
  UdpCanBus sim_bus(sim_options, SystemClock::Get());
  sim::CanWallboxSimHost host(sim_bus, SystemClock::Get());
  CaburWallboxConfig wb1;
  wb1.address = 1;
  wb1.ev_lag = absl::Milliseconds(100);
  CaburWallboxConfig wb2;
  wb2.address = 2;
  wb2.model = wallbox::Model::kEvPlus7kW1Phase;
  wb2.max_current_a = 16;
  ASSERT_TRUE(host.AddWallbox(wb1).ok());
  ASSERT_TRUE(host.AddWallbox(wb2).ok());
  ASSERT_TRUE(backend.Start().ok());
  ASSERT_TRUE(host.Start().ok());
  ASSERT_TRUE(host.PlugIn(1, sim::EvParams{32, 3, 50'000}).ok());

  auto wait_for = [](auto condition) {
    const absl::Time end = absl::Now() + absl::Seconds(10);
    while (absl::Now() < end) {
      if (condition()) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  };
  ASSERT_TRUE(wait_for([&] {
    auto a = backend.GetDevice("wallbox-1");
    auto b = backend.GetDevice("wallbox-2");
    return !a->link().stale() && !b->link().stale() && host.Snapshot(1)->watchdog_configured;
  })) << "the wallboxes did not report / were not configured";

  // A short watchdog, so the fall-back below is quick.
  v1::CommandRequest failsafe;
  failsafe.set_device_id("wallbox-1");
  failsafe.mutable_set_failsafe()->mutable_value()->mutable_current_limit_a()->set_l1(9);
  failsafe.mutable_set_failsafe()->mutable_value()->mutable_current_limit_a()->set_l2(9);
  failsafe.mutable_set_failsafe()->mutable_value()->mutable_current_limit_a()->set_l3(9);
  failsafe.mutable_set_failsafe()->mutable_watchdog_timeout()->set_nanos(800'000'000);
  ASSERT_EQ(backend.Command(failsafe).status(), v1::COMMAND_STATUS_ACCEPTED);

  std::vector<v1::SetpointResult> results =
      backend.ApplySetpoints({AllPhases("wb1", 20)}, absl::Minutes(1), "live");
  ASSERT_EQ(results[0].status(), v1::SETPOINT_STATUS_ACCEPTED) << results[0].message();
  ASSERT_TRUE(wait_for([&] {
    auto s = host.Snapshot(1);
    return s->watchdog_timeout_ms == 800 && !s->failsafe_active && s->current_a[0] == 20.0;
  })) << "the wallbox did not follow the setpoint";
  EXPECT_TRUE(wait_for([&] {
    return backend.GetDevice("wallbox-1")->evses(0).measurements().current_a().l2() == 20.0;
  }));

  backend.Stop();  // the driver dies
  const absl::Time stopped = absl::Now();
  ASSERT_TRUE(wait_for([&] {
    auto s = host.Snapshot(1);
    return s->failsafe_active && s->current_a[0] == 9.0;
  })) << "the wallbox did not fall back to its failsafe";
  EXPECT_GE(absl::Now() - stopped, absl::Milliseconds(300));  // held until its watchdog fired
  host.Stop();
  EXPECT_GT(sink.Count(v1::WatchDevicesResponse::kTelemetry), 0);
}

}  // namespace
}  // namespace evgate::can
