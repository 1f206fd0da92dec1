// The session manager against the real CAN bus owner and the Cabur EV PLUS
// simulators on an in-memory bus, in closed loop on a FakeClock: the events
// it handles are the ones the CAN driver really publishes (connector status,
// IEC 61851 state, energy registers, RFID taps, ERR codes). A small gate
// plays the load balancer's part of the WatchSessions contract: 16 A for an
// EVSE with an energy-authorized session, a pause otherwise.
#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "device_drivers/can/can_bus_owner.h"
#include "device_drivers/can/loopback_can_bus.h"
#include "device_drivers/sim/cabur_wallbox_simulator.h"
#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "services/session/session_manager.h"
#include "services/session/testing/device_events.h"
#include "services/session/testing/test_site.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::session {
namespace {

// Hands the owner's events to the manager, as DeviceDriver.WatchDevices
// would.
class ToManager final : public devices::DeviceEventSink {
 public:
  void Publish(v1::WatchDevicesResponse event) override {
    if (manager != nullptr) manager->OnDeviceEvent(event);
  }
  SessionManager* manager = nullptr;
};

const std::vector<uint8_t> kVanCardUid = {0x04, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07};

class SessionWithCanWallboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/can.db");
    std::remove(path.c_str());
    auto config = site::LoadSiteConfigString(testing::TestSiteYaml(path), "site.yaml");
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    store_ = *SessionStore::Open(path, clock_);
    authorizer_ = std::make_unique<Authorizer>(config_, store_.get(), clock_);
    manager_ = *SessionManager::Create(config_, store_.get(), authorizer_.get(), clock_, {});

    can::CanWallboxConfig wb1;
    wb1.device_id = "wallbox-1";
    wb1.profile = "cabur_ev_plus_22kw";
    wb1.address = 1;
    wb1.station_id = "wb1";
    wb1.evse_id = "wb1";
    wb1.phases = {site::Phase::kL1, site::Phase::kL2, site::Phase::kL3};
    wb1.failsafe_current_a = 0;
    can::CanBusOwnerOptions options;
    options.bus_id = "can-wallboxes";
    owner_ = std::make_unique<can::CanBusOwner>(options, std::vector<can::CanWallboxConfig>{wb1},
                                                network_.Endpoint("owner"), clock_);
    owner_->SetSink(&sink_);
    ASSERT_TRUE(owner_->Open().ok());
    ASSERT_TRUE(sim_bus_->Open().ok());
    sim::CaburWallboxConfig sim;
    sim.address = 1;
    sim.model = can::wallbox::Model::kEvPlus22kW3Phase;
    wallbox_ = std::make_unique<sim::CaburWallboxSimulator>(sim, clock_.Now());

    Run(absl::Seconds(1));
    // A new WatchDevices stream starts with the snapshots.
    sink_.manager = manager_.get();
    manager_->OnStreamStarted();
    manager_->OnDeviceEvent(
        testing::Snapshot("wallbox-1", {owner_->GetDevice("wallbox-1")->evses(0)}));
    manager_->OnDeviceEvent(testing::SnapshotComplete());
  }

  // 50 ms of the world, with the load balancer's gate once a second.
  void Step() {
    clock_.Advance(absl::Milliseconds(50));
    const absl::Time now = clock_.Now();
    while (true) {
      can::BusEvent event = sim_bus_->Receive(absl::ZeroDuration());
      if (event.kind != can::BusEventKind::kFrame) break;
      for (const can::CanFrame& f : wallbox_->OnFrame(*event.frame, now)) {
        ASSERT_TRUE(sim_bus_->Send(f).ok());
      }
    }
    for (const can::CanFrame& f : wallbox_->Tick(now)) ASSERT_TRUE(sim_bus_->Send(f).ok());
    for (int i = 0; i < 1000 && owner_->PollOnce(absl::ZeroDuration()); ++i) {
    }
    if (manager_ != nullptr && ++steps_ % 20 == 0) {
      manager_->Tick();
      Gate();
    }
  }
  void Run(absl::Duration d) {
    for (absl::Duration t; t < d; t += absl::Milliseconds(50)) Step();
  }

  void Gate() {
    std::optional<v1::Session> s = Open();
    v1::Setpoint setpoint;
    setpoint.set_evse_id("wb1");
    if (s && s->energy_authorized()) {
      v1::PhaseValues* current = setpoint.mutable_value()->mutable_current_limit_a();
      current->set_l1(16);
      current->set_l2(16);
      current->set_l3(16);
    } else {
      setpoint.mutable_value()->mutable_pause();
    }
    owner_->ApplySetpoints({setpoint}, absl::Seconds(10), "gate");
  }

  std::optional<v1::Session> Open() {
    for (const v1::Session& s : manager_->OpenSessions()) {
      if (s.evse_id() == "wb1") return s;
    }
    return std::nullopt;
  }

  FakeClock clock_;
  site::SiteConfig config_;
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<SessionManager> manager_;
  ToManager sink_;
  can::LoopbackCanNetwork network_{clock_};
  std::unique_ptr<can::CanBus> sim_bus_ = network_.Endpoint("wallboxes");
  std::unique_ptr<sim::CaburWallboxSimulator> wallbox_;
  std::unique_ptr<can::CanBusOwner> owner_;
  int steps_ = 0;
};

TEST_F(SessionWithCanWallboxTest, TapChargeTapGivesOneRecordWithTheWallboxEnergy) {
  wallbox_->PlugIn(sim::EvParams{32, 3, 50'000}, clock_.Now());
  Run(absl::Seconds(2));
  EXPECT_FALSE(Open().has_value());  // plugged in, no card: paused, no session

  ASSERT_TRUE(wallbox_->TapCard(kVanCardUid, clock_.Now()).ok());
  Run(absl::Seconds(1));
  std::optional<v1::Session> s = Open();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->id_tag(), testing::kVanCard);
  EXPECT_EQ(s->start_mode(), v1::START_MODE_RFID);
  EXPECT_EQ(s->state(), v1::SESSION_STATE_ACTIVE);  // the vehicle was already there

  Run(absl::Minutes(10));
  s = Open();
  EXPECT_EQ(s->connector_status(), v1::CONNECTOR_STATUS_CHARGING);
  EXPECT_GT(s->power_w(), 10000);  // 3 x 16 A
  // 11 kW for about 10 minutes.
  EXPECT_GT(s->energy_charged_wh(), 1600);
  EXPECT_LT(s->energy_charged_wh(), 1900);

  ASSERT_TRUE(wallbox_->TapCard(kVanCardUid, clock_.Now()).ok());
  Run(absl::Seconds(5));  // the gate pauses it, the wallbox stops
  EXPECT_FALSE(Open().has_value());
  const v1::Session done = store_->GetSession(s->session_id())->session;
  EXPECT_EQ(done.state(), v1::SESSION_STATE_COMPLETED);
  EXPECT_EQ(done.stop_reason(), v1::STOP_REASON_LOCAL);
  // The MID register moves in 0.1 kWh steps; the energy comes from the
  // wallbox's Wh session counter.
  EXPECT_NEAR(done.meter_stop_wh() - done.meter_start_wh(), done.energy_charged_wh(), 100);
  EXPECT_GE(done.energy_charged_wh(), s->energy_charged_wh());
  EXPECT_EQ(done.peak_power_w() > 10000, true);

  wallbox_->Unplug(clock_.Now());
  Run(absl::Seconds(2));
  EXPECT_EQ(*store_->CountSessions(), 1);
}

TEST_F(SessionWithCanWallboxTest, AWallboxErrorEndsTheSessionWithItsErrCode) {
  wallbox_->PlugIn(sim::EvParams{32, 3, 50'000}, clock_.Now());
  ASSERT_TRUE(wallbox_->TapCard(kVanCardUid, clock_.Now()).ok());
  Run(absl::Seconds(30));
  std::optional<v1::Session> s = Open();
  ASSERT_TRUE(s.has_value());
  EXPECT_GT(s->energy_charged_wh(), 0);
  wallbox_->InjectFault(can::wallbox::ErrorCode::kOcp, clock_.Now());
  Run(absl::Seconds(2));
  EXPECT_FALSE(Open().has_value());
  EXPECT_EQ(*store_->CountSessions(), 1);  // no record of the moment the status lagged
  const v1::Session done = store_->GetSession(s->session_id())->session;
  EXPECT_EQ(done.stop_reason(), v1::STOP_REASON_FAULT);
  EXPECT_EQ(done.vendor_stop_code(), "ERR OCP");
  EXPECT_FALSE(done.vendor_stop_description().empty());
}

TEST_F(SessionWithCanWallboxTest, UnpluggingEndsTheSession) {
  wallbox_->PlugIn(sim::EvParams{32, 3, 50'000}, clock_.Now());
  ASSERT_TRUE(wallbox_->TapCard(kVanCardUid, clock_.Now()).ok());
  Run(absl::Seconds(20));
  const std::string id = Open()->session_id();
  wallbox_->Unplug(clock_.Now());
  Run(absl::Seconds(2));
  const v1::Session done = store_->GetSession(id)->session;
  EXPECT_EQ(done.stop_reason(), v1::STOP_REASON_EV_DISCONNECTED);
  EXPECT_GT(done.energy_charged_wh(), 0);
}

}  // namespace
}  // namespace evgate::session
