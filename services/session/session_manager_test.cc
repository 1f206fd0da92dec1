#include "services/session/session_manager.h"

#include <cstdlib>
#include <limits>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "services/session/testing/device_events.h"
#include "services/session/testing/test_site.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::session {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace ::evgate::session::testing;  // NOLINT: event builders and cards

constexpr auto kAvailable = v1::CONNECTOR_STATUS_AVAILABLE;
constexpr auto kPreparing = v1::CONNECTOR_STATUS_PREPARING;
constexpr auto kCharging = v1::CONNECTOR_STATUS_CHARGING;
constexpr auto kSuspendedEvse = v1::CONNECTOR_STATUS_SUSPENDED_EVSE;

class SessionManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", Name(), ".db");
    std::remove(path.c_str());
    auto config = site::LoadSiteConfigString(TestSiteYaml(path), "site.yaml");
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *std::move(config);
    auto store = SessionStore::Open(path, clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    authorizer_ = std::make_unique<Authorizer>(config_, store_.get(), clock_);
    Restart();
  }

  static std::string Name() {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  // A new manager on the same database, as after a process restart.
  void Restart() {
    manager_.reset();
    SessionManagerOptions options;
    options.random_seed = 42;
    options.max_queued_watch_events = 100;
    auto manager =
        SessionManager::Create(config_, store_.get(), authorizer_.get(), clock_, options);
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = *std::move(manager);
    auto watch = manager_->Watch({});
    ASSERT_TRUE(watch.ok());
    watch_ = *watch;
    Drain();
  }

  // Every device on the test site reports: nothing plugged in, meters at
  // `import_wh`.
  void AllIdle(double import_wh = 1000) {
    manager_->OnStreamStarted();
    for (const auto& [device, evses] :
         std::vector<std::pair<std::string, std::vector<std::string>>>{{"wallbox-1", {"wb1"}},
                                                                       {"wallbox-2", {"wb2"}},
                                                                       {"wallbox-4", {"wb4"}},
                                                                       {"ds60-1", {"dc1", "dc2"}},
                                                                       {"ice22-1", {"v2x1"}}}) {
      std::vector<v1::EvseState> states;
      uint32_t connector = 1;
      for (const std::string& evse : evses) {
        states.push_back(
            Evse(evse, kAvailable, v1::IEC61851_STATE_A,
                 Meter(import_wh, 0, evse == "v2x1" ? std::optional<double>(0) : std::nullopt),
                 connector++));
      }
      manager_->OnDeviceEvent(Snapshot(device, states));
    }
    manager_->OnDeviceEvent(SnapshotComplete());
  }

  void State(const std::string& device, const std::string& evse, v1::ConnectorStatus status,
             v1::Iec61851State iec, std::optional<double> import_wh = {},
             std::optional<double> power_w = {}, uint32_t connector = 1) {
    manager_->OnDeviceEvent(
        StateChange(device, Evse(evse, status, iec, Meter(import_wh, power_w), connector)));
  }

  std::vector<v1::WatchSessionsResponse> Drain() {
    std::vector<v1::WatchSessionsResponse> events;
    v1::WatchSessionsResponse event;
    absl::Status end;
    while (watch_->Wait(absl::ZeroDuration(), &event, &end) == SessionWatch::Next::kEvent) {
      events.push_back(event);
    }
    return events;
  }

  std::vector<std::string> EventTypes(const std::vector<v1::WatchSessionsResponse>& events) {
    std::vector<std::string> types;
    for (const auto& e : events) {
      types.push_back(absl::StrCat(
          EnumShortName(v1::SessionEventType_descriptor(), e.event()), e.has_session() ? ":" : "",
          e.has_session() ? EnumShortName(v1::SessionState_descriptor(), e.session().state())
                          : ""));
    }
    return types;
  }

  std::optional<v1::Session> OpenOn(const std::string& evse) {
    for (const v1::Session& s : manager_->OpenSessions()) {
      if (s.evse_id() == evse) return s;
    }
    return std::nullopt;
  }

  v1::Session Stored(const std::string& id) { return store_->GetSession(id)->session; }
  int64_t Count() { return *store_->CountSessions(); }

  FakeClock clock_;
  site::SiteConfig config_;
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<SessionManager> manager_;
  std::shared_ptr<SessionWatch> watch_;
};

// The Cabur flow of the issue: tap to start, charge, tap to stop.
TEST_F(SessionManagerTest, TapPlugChargeTapUnplugMakesOneCompleteRecord) {
  AllIdle();
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", "04b2c3d4e5f607"));  // lower case: same card
  auto pending = OpenOn("wb1");
  ASSERT_TRUE(pending.has_value());
  EXPECT_EQ(pending->state(), v1::SESSION_STATE_PENDING_PLUG_IN);
  EXPECT_EQ(pending->id_tag(), kVanCard);
  EXPECT_EQ(pending->card_name(), "Van 12");
  EXPECT_EQ(pending->start_mode(), v1::START_MODE_RFID);
  EXPECT_TRUE(pending->energy_authorized());

  clock_.Advance(absl::Seconds(30));
  State("wallbox-1", "wb1", kPreparing, v1::IEC61851_STATE_B, 1000);
  auto active = OpenOn("wb1");
  EXPECT_EQ(active->state(), v1::SESSION_STATE_ACTIVE);
  EXPECT_EQ(TimeUtil::TimestampToSeconds(active->start_time()),
            absl::ToUnixSeconds(clock_.Now()));  // the plug-in time
  EXPECT_EQ(active->meter_start_wh(), 1000);

  State("wallbox-1", "wb1", kCharging, v1::IEC61851_STATE_C, 1000, 11000);
  clock_.Advance(absl::Minutes(30));
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", Meter(6500, 11000)));
  EXPECT_EQ(OpenOn("wb1")->energy_charged_wh(), 5500);  // live energy
  EXPECT_EQ(OpenOn("wb1")->power_w(), 11000);
  // What is live is also what is stored (written before it is published).
  EXPECT_EQ(Stored(active->session_id()).energy_charged_wh(), 5500);

  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  auto finishing = OpenOn("wb1");
  EXPECT_EQ(finishing->state(), v1::SESSION_STATE_FINISHING);
  EXPECT_FALSE(finishing->energy_authorized());  // the load balancer pauses it now

  State("wallbox-1", "wb1", kSuspendedEvse, v1::IEC61851_STATE_B, 6510, 0);
  EXPECT_FALSE(OpenOn("wb1").has_value());
  const v1::Session done = Stored(active->session_id());
  EXPECT_EQ(done.state(), v1::SESSION_STATE_COMPLETED);
  EXPECT_EQ(done.stop_reason(), v1::STOP_REASON_LOCAL);
  EXPECT_EQ(done.meter_start_wh(), 1000);
  EXPECT_EQ(done.meter_stop_wh(), 6510);
  EXPECT_EQ(done.energy_charged_wh(), 5510);
  EXPECT_EQ(done.peak_power_w(), 11000);
  EXPECT_EQ(done.power_w(), 0);
  EXPECT_TRUE(done.has_end_time());

  // Unplugging afterwards does not start or change anything.
  State("wallbox-1", "wb1", kAvailable, v1::IEC61851_STATE_A, 6510, 0);
  EXPECT_EQ(Count(), 1);
  EXPECT_THAT(EventTypes(Drain()),
              ElementsAre("STARTED:PENDING_PLUG_IN", "UPDATED:ACTIVE", "UPDATED:ACTIVE",
                          "UPDATED:ACTIVE", "UPDATED:FINISHING", "ENDED:COMPLETED"));
}

TEST_F(SessionManagerTest, UnplugEndsTheSessionWithEvDisconnected) {
  AllIdle();
  State("wallbox-1", "wb1", kPreparing, v1::IEC61851_STATE_B, 1000);
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  const std::string id = OpenOn("wb1")->session_id();
  EXPECT_EQ(OpenOn("wb1")->state(), v1::SESSION_STATE_ACTIVE);  // already plugged in
  State("wallbox-1", "wb1", kAvailable, v1::IEC61851_STATE_A, 1800);
  EXPECT_EQ(Stored(id).stop_reason(), v1::STOP_REASON_EV_DISCONNECTED);
  EXPECT_EQ(Stored(id).energy_charged_wh(), 800);
  EXPECT_EQ(Stored(id).meter_stop_wh(), 1800);
}

TEST_F(SessionManagerTest, MasterCardStopsAnySessionOtherCardsDoNot) {
  AllIdle();
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  const std::string id = OpenOn("wb1")->session_id();
  Drain();
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kOtherVanCard));
  EXPECT_TRUE(OpenOn("wb1").has_value());
  EXPECT_TRUE(Drain().empty());  // nothing changed, nothing written
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kMasterCard));
  EXPECT_FALSE(OpenOn("wb1").has_value());
  EXPECT_EQ(Stored(id).state(), v1::SESSION_STATE_CANCELLED);  // never plugged in
  EXPECT_EQ(Stored(id).stop_reason(), v1::STOP_REASON_LOCAL);
  EXPECT_THAT(Stored(id).vendor_stop_description(), HasSubstr("master card"));
}

TEST_F(SessionManagerTest, RefusedTapsWriteNothing) {
  AllIdle();
  // Known cards are refused even at a free-vend EVSE; unknown ones elsewhere.
  for (const char* card : {kBlockedCard, kTempCard, "not hex!"}) {
    manager_->OnDeviceEvent(Tap("wallbox-4", "wb4", card));
  }
  manager_->OnDeviceEvent(Tap("wallbox-2", "wb2", "0102030405060708"));
  // Not allowed here: the van card belongs to group fleet, wb4 is not in it.
  manager_->OnDeviceEvent(Tap("wallbox-4", "wb4", kVanCard));
  manager_->OnDeviceEvent(Tap("no-such-device", "", kVanCard));
  EXPECT_EQ(Count(), 0);
  EXPECT_TRUE(Drain().empty());
}

TEST_F(SessionManagerTest, FreeVendStartsOnPlugInWithoutACard) {
  AllIdle();
  State("wallbox-4", "wb4", kPreparing, v1::IEC61851_STATE_B, 1000);
  auto s = OpenOn("wb4");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->start_mode(), v1::START_MODE_FREE_VEND_PLUG_IN);
  EXPECT_EQ(s->state(), v1::SESSION_STATE_ACTIVE);
  EXPECT_TRUE(s->id_tag().empty());
  EXPECT_TRUE(s->energy_authorized());
  // Plug-in on a non-free-vend EVSE starts nothing.
  State("wallbox-2", "wb2", kPreparing, v1::IEC61851_STATE_B, 1000);
  EXPECT_FALSE(OpenOn("wb2").has_value());
}

TEST_F(SessionManagerTest, NoPlugInWithinTheConnectionTimeoutCancels) {
  AllIdle();
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  const std::string id = OpenOn("wb1")->session_id();
  clock_.Advance(absl::Seconds(119));
  manager_->Tick();
  EXPECT_TRUE(OpenOn("wb1").has_value());
  clock_.Advance(absl::Seconds(1));
  manager_->Tick();
  EXPECT_FALSE(OpenOn("wb1").has_value());
  const v1::Session s = Stored(id);
  EXPECT_EQ(s.state(), v1::SESSION_STATE_CANCELLED);
  EXPECT_EQ(s.stop_reason(), v1::STOP_REASON_AUTHORIZATION_TIMEOUT);
  EXPECT_FALSE(s.has_meter_stop_wh());  // no energy phase, no meter
}

TEST_F(SessionManagerTest, RemoteStartAndStop) {
  AllIdle();
  State("wallbox-2", "wb2", kSuspendedEvse, v1::IEC61851_STATE_B, 1000);
  v1::StartSessionRequest start;
  start.set_evse_id("wb2");
  start.set_id_tag(kVanCard);
  auto started = manager_->StartSession(start);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->state(), v1::SESSION_STATE_ACTIVE);
  EXPECT_EQ(started->start_mode(), v1::START_MODE_REMOTE);
  EXPECT_EQ(Stored(started->session_id()).state(), v1::SESSION_STATE_ACTIVE);  // durable

  v1::StopSessionRequest stop;
  stop.set_evse_id("wb2");
  auto stopped = manager_->StopSession(stop);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->state(), v1::SESSION_STATE_COMPLETED);  // not charging: closes at once
  EXPECT_EQ(stopped->stop_reason(), v1::STOP_REASON_REMOTE);
  EXPECT_THAT(EventTypes(Drain()), ElementsAre("STARTED:ACTIVE", "ENDED:COMPLETED"));
}

TEST_F(SessionManagerTest, BadRequestsGetCanonicalErrorsAndWriteNothing) {
  AllIdle();
  v1::StartSessionRequest start;
  start.set_evse_id("wb1");
  start.set_id_tag(kVanCard);
  auto first = manager_->StartSession(start);
  ASSERT_TRUE(first.ok());
  const std::vector<v1::WatchSessionsResponse> after_first = Drain();
  const int64_t rows = Count();

  auto expect = [&](const absl::StatusOr<v1::Session>& result, absl::StatusCode code,
                    const std::string& text) {
    EXPECT_EQ(result.status().code(), code) << result.status();
    EXPECT_THAT(result.status().message(), HasSubstr(text));
  };
  v1::StartSessionRequest r = start;
  r.set_evse_id("wb9");
  expect(manager_->StartSession(r), absl::StatusCode::kNotFound, "unknown EVSE 'wb9'");
  expect(manager_->StartSession(start), absl::StatusCode::kFailedPrecondition,
         "wb1 already has session");  // double start
  r = start;
  r.set_evse_id("wb2");
  r.set_id_tag(kBlockedCard);
  expect(manager_->StartSession(r), absl::StatusCode::kPermissionDenied, "BLOCKED");
  r.set_id_tag("0A0B0C0D");
  expect(manager_->StartSession(r), absl::StatusCode::kPermissionDenied, "unknown card 0A0B0C0D");
  r.set_id_tag(kVanCard);  // has its session on wb1
  expect(manager_->StartSession(r), absl::StatusCode::kPermissionDenied, "CONCURRENT_TX");
  r.set_id_tag("");
  expect(manager_->StartSession(r), absl::StatusCode::kInvalidArgument, "id_tag is empty");
  r.set_id_tag(kOtherVanCard);
  r.set_mode(v1::CHARGE_MODE_DISCHARGE);
  expect(manager_->StartSession(r), absl::StatusCode::kFailedPrecondition, "cannot discharge");
  r.clear_mode();
  r.set_energy_limit_wh(-5);
  expect(manager_->StartSession(r), absl::StatusCode::kInvalidArgument, "energy_limit_wh");

  v1::StopSessionRequest stop;
  expect(manager_->StopSession(stop), absl::StatusCode::kInvalidArgument, "give session_id");
  stop.set_session_id("01NOSUCHSESSION");
  expect(manager_->StopSession(stop), absl::StatusCode::kNotFound, "no session '01NOSUCHSESSION'");
  stop.set_evse_id("wb2");
  expect(manager_->StopSession(stop), absl::StatusCode::kNotFound, "wb2 has no open session");

  stop.set_session_id(first->session_id());
  ASSERT_TRUE(manager_->StopSession(stop).ok());
  const std::vector<v1::WatchSessionsResponse> stop_events = Drain();
  expect(manager_->StopSession(stop), absl::StatusCode::kFailedPrecondition, "already ended");

  // Only the start and the one good stop were written.
  EXPECT_EQ(Count(), rows);
  EXPECT_EQ(after_first.size(), 1u);
  EXPECT_EQ(stop_events.size(), 1u);
  EXPECT_TRUE(Drain().empty());
}

TEST_F(SessionManagerTest, EnergyAndTimeLimitsStopTheSession) {
  AllIdle();
  State("wallbox-1", "wb1", kCharging, v1::IEC61851_STATE_C, 1000, 7000);
  State("wallbox-2", "wb2", kCharging, v1::IEC61851_STATE_C, 1000, 7000);
  // Energy flowed before any session: recorded as device-local; the remote
  // starts below supersede them.
  v1::StartSessionRequest energy;
  energy.set_evse_id("wb1");
  energy.set_id_tag(kVanCard);
  energy.set_energy_limit_wh(2000);
  ASSERT_TRUE(manager_->StartSession(energy).ok());
  v1::StartSessionRequest time;
  time.set_evse_id("wb2");
  time.set_id_tag(kOtherVanCard);
  *time.mutable_time_limit() = TimeUtil::SecondsToDuration(3600);
  ASSERT_TRUE(manager_->StartSession(time).ok());

  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", Meter(2999, 7000)));
  EXPECT_EQ(OpenOn("wb1")->state(), v1::SESSION_STATE_ACTIVE);
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", Meter(3000, 7000)));
  EXPECT_EQ(OpenOn("wb1")->state(), v1::SESSION_STATE_FINISHING);
  EXPECT_EQ(OpenOn("wb1")->stop_reason(), v1::STOP_REASON_ENERGY_LIMIT_REACHED);

  clock_.Advance(absl::Seconds(3599));
  manager_->Tick();
  EXPECT_EQ(OpenOn("wb2")->state(), v1::SESSION_STATE_ACTIVE);
  clock_.Advance(absl::Seconds(1));
  manager_->Tick();
  EXPECT_EQ(OpenOn("wb2")->state(), v1::SESSION_STATE_FINISHING);
  EXPECT_EQ(OpenOn("wb2")->stop_reason(), v1::STOP_REASON_TIME_LIMIT_REACHED);
}

TEST_F(SessionManagerTest, TheEvseThatKeepsChargingAfterAStopIsClosedAndRecordedAsDeviceLocal) {
  AllIdle();
  State("wallbox-1", "wb1", kPreparing, v1::IEC61851_STATE_B, 1000);
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  const std::string id = OpenOn("wb1")->session_id();
  State("wallbox-1", "wb1", kCharging, v1::IEC61851_STATE_C, 1000, 11000);
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  EXPECT_EQ(OpenOn("wb1")->state(), v1::SESSION_STATE_FINISHING);
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", Meter(1100, 11000)));
  clock_.Advance(absl::Seconds(60));
  manager_->Tick();
  const v1::Session closed = Stored(id);
  EXPECT_EQ(closed.state(), v1::SESSION_STATE_COMPLETED);
  EXPECT_EQ(closed.stop_reason(), v1::STOP_REASON_LOCAL);
  EXPECT_EQ(closed.meter_stop_wh(), 1100);
  EXPECT_THAT(closed.vendor_stop_description(), HasSubstr("still reported Charging"));
  // Energy still flows: it is accounted for, but not authorized.
  State("wallbox-1", "wb1", kCharging, v1::IEC61851_STATE_C, 1150, 11000);
  auto local = OpenOn("wb1");
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->start_mode(), v1::START_MODE_DEVICE_LOCAL);
  EXPECT_FALSE(local->energy_authorized());
  // A card tap takes over: the device-local session ends, an RFID one starts.
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kOtherVanCard));
  EXPECT_EQ(OpenOn("wb1")->start_mode(), v1::START_MODE_RFID);
  EXPECT_EQ(Stored(local->session_id()).state(), v1::SESSION_STATE_COMPLETED);
  EXPECT_THAT(Stored(local->session_id()).vendor_stop_description(), HasSubstr("superseded"));
}

TEST_F(SessionManagerTest, TheDevicesSessionCounterIsPreferredToACoarseRegister) {
  AllIdle();
  State("wallbox-1", "wb1", kPreparing, v1::IEC61851_STATE_B, 1000);
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  auto meter = [](double register_wh, double counter_wh) {
    v1::EvseMeasurements m = Meter(register_wh, 7400);
    m.set_session_energy_wh(counter_wh);
    return m;
  };
  // The MID register moves in 100 Wh steps, the session counter in Wh.
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", meter(1000, 40)));
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", meter(1000, 77)));
  EXPECT_EQ(OpenOn("wb1")->energy_charged_wh(), 37);
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", meter(1100, 140)));
  EXPECT_EQ(OpenOn("wb1")->energy_charged_wh(), 100);
  // The wallbox restarts and its counter starts again from 0: no drop, and
  // the energy goes on from there.
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", meter(1100, 0)));
  EXPECT_EQ(OpenOn("wb1")->energy_charged_wh(), 100);
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", meter(1100, 25)));
  EXPECT_EQ(OpenOn("wb1")->energy_charged_wh(), 125);
  EXPECT_EQ(OpenOn("wb1")->meter_start_wh(), 1000);
}

TEST_F(SessionManagerTest, ADriversBadNumbersAreNotMeasurements) {
  AllIdle();
  State("wallbox-1", "wb1", kPreparing, v1::IEC61851_STATE_B, 1000);
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  const std::string id = OpenOn("wb1")->session_id();
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", Meter(1500, 7000)));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", Meter(nan, nan)));
  manager_->OnDeviceEvent(
      Telemetry("wallbox-1", "wb1", Meter(-5, std::numeric_limits<double>::infinity())));
  EXPECT_EQ(OpenOn("wb1")->energy_charged_wh(), 500);
  EXPECT_EQ(OpenOn("wb1")->power_w(), 7000);
  // A bad value does not cost the good one next to it.
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", Meter(1550, nan)));
  EXPECT_EQ(OpenOn("wb1")->energy_charged_wh(), 550);
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", Meter(1600, 7000)));
  EXPECT_EQ(Stored(id).energy_charged_wh(), 600);  // and it is still being stored
}

TEST_F(SessionManagerTest, BidirectionalDischargeCountsDischargedEnergySeparately) {
  AllIdle();
  manager_->OnDeviceEvent(StateChange(
      "ice22-1", Evse("v2x1", kPreparing, v1::IEC61851_STATE_UNSPECIFIED, Meter(5000, 0, 100))));
  v1::StartSessionRequest start;
  start.set_evse_id("v2x1");
  start.set_id_tag(kVanCard);
  start.set_mode(v1::CHARGE_MODE_DISCHARGE);
  start.set_energy_limit_wh(3000);
  auto s = manager_->StartSession(start);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->mode(), v1::CHARGE_MODE_DISCHARGE);
  EXPECT_EQ(s->meter_export_start_wh(), 100);
  manager_->OnDeviceEvent(StateChange(
      "ice22-1",
      Evse("v2x1", kCharging, v1::IEC61851_STATE_UNSPECIFIED, Meter(5000, -21800, 100))));
  manager_->OnDeviceEvent(Telemetry("ice22-1", "v2x1", Meter(5000, -21850, 2100)));
  auto open = OpenOn("v2x1");
  EXPECT_EQ(open->energy_discharged_wh(), 2000);
  EXPECT_EQ(open->energy_charged_wh(), 0);
  EXPECT_EQ(open->peak_power_w(), 21850);
  EXPECT_EQ(open->power_w(), -21850);
  manager_->OnDeviceEvent(Telemetry("ice22-1", "v2x1", Meter(5000, -21850, 3100)));
  EXPECT_EQ(OpenOn("v2x1")->stop_reason(), v1::STOP_REASON_ENERGY_LIMIT_REACHED);
  manager_->OnDeviceEvent(StateChange(
      "ice22-1", Evse("v2x1", kAvailable, v1::IEC61851_STATE_UNSPECIFIED, Meter(5000, 0, 3110))));
  const v1::Session done = Stored(s->session_id());
  EXPECT_EQ(done.meter_export_stop_wh(), 3110);
  EXPECT_EQ(done.energy_discharged_wh(), 3010);
}

TEST_F(SessionManagerTest, FaultsEndSessionsWithTheUnifiedReasonAndTheVendorCode) {
  AllIdle();
  State("wallbox-1", "wb1", kCharging, v1::IEC61851_STATE_C, 1000, 11000);
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));  // supersedes device-local
  const std::string cabur = OpenOn("wb1")->session_id();
  manager_->OnDeviceEvent(FaultRaised("wallbox-1", "wb1", "cabur_ev_plus", "ERR OCP", true));
  EXPECT_EQ(Stored(cabur).stop_reason(), v1::STOP_REASON_FAULT);
  EXPECT_EQ(Stored(cabur).vendor_stop_code(), "ERR OCP");
  EXPECT_EQ(Stored(cabur).vendor_stop_description(), "Over-current fault");
  // While the fault is active, nothing can start there.
  v1::StartSessionRequest start;
  start.set_evse_id("wb1");
  start.set_id_tag(kVanCard);
  EXPECT_EQ(manager_->StartSession(start).status().code(), absl::StatusCode::kFailedPrecondition);
  manager_->OnDeviceEvent(FaultCleared("wallbox-1", "wb1", "cabur_ev_plus", "ERR OCP"));
  State("wallbox-1", "wb1", kSuspendedEvse, v1::IEC61851_STATE_B, 1000, 0);
  EXPECT_TRUE(manager_->StartSession(start).ok());

  // The ICE-22 reports why it ended a session as a stop-reason code.
  for (const auto& [code, reason, description] :
       std::vector<std::tuple<std::string, v1::StopReason, std::string>>{
           {"207", v1::STOP_REASON_FAULT, "EV Relay Pull-In timeout"},
           {"215", v1::STOP_REASON_EMERGENCY_STOP, "EPO"},
           {"2", v1::STOP_REASON_EV_REQUESTED, "Normal Stop: EV Request Stop"},
           {"406", v1::STOP_REASON_LOCAL, "Canceled: One-Click Stop"}}) {
    manager_->OnDeviceEvent(StateChange(
        "ice22-1", Evse("v2x1", kCharging, v1::IEC61851_STATE_UNSPECIFIED, Meter(5000, 20000))));
    v1::StartSessionRequest v2x;
    v2x.set_evse_id("v2x1");
    v2x.set_id_tag(kOtherVanCard);
    auto s = manager_->StartSession(v2x);
    ASSERT_TRUE(s.ok()) << s.status();
    manager_->OnDeviceEvent(FaultRaised("ice22-1", "v2x1", "ice22_stop_reason", code, false));
    const v1::Session done = Stored(s->session_id());
    EXPECT_EQ(done.stop_reason(), reason) << code;
    EXPECT_EQ(done.vendor_stop_code(), code);
    EXPECT_EQ(done.vendor_stop_description(), description);
  }
}

TEST_F(SessionManagerTest, AnOcppTransactionOpensTheSessionAndItsStopReasonEndsIt) {
  AllIdle();
  State("ds60-1", "dc1", kPreparing, v1::IEC61851_STATE_UNSPECIFIED, 1000);
  manager_->OnDeviceEvent(TransactionStarted("ds60-1", "dc1", kVanCard, "7"));
  ASSERT_TRUE(OpenOn("dc1").has_value());
  const std::string id = OpenOn("dc1")->session_id();
  EXPECT_EQ(OpenOn("dc1")->state(), v1::SESSION_STATE_ACTIVE);
  EXPECT_EQ(OpenOn("dc1")->start_mode(), v1::START_MODE_RFID);
  EXPECT_EQ(OpenOn("dc1")->id_tag(), kVanCard);
  Drain();
  // Announced again (a StartTransaction retried after a reconnect or a
  // bridge restart): the same session, nothing written. An RfidTap of the
  // same card would stop it; a transaction start never does.
  manager_->OnDeviceEvent(TransactionStarted("ds60-1", "dc1", kVanCard, "7"));
  EXPECT_EQ(OpenOn("dc1")->session_id(), id);
  EXPECT_TRUE(Drain().empty());
  // Another device cannot start a transaction on this EVSE.
  manager_->OnDeviceEvent(TransactionStarted("wallbox-1", "dc2", kOtherVanCard, "8"));
  EXPECT_FALSE(OpenOn("dc2").has_value());
  // Refused cards open nothing (the charger was told so in idTagInfo).
  manager_->OnDeviceEvent(TransactionStarted("ds60-1", "dc2", kBlockedCard, "9"));
  EXPECT_FALSE(OpenOn("dc2").has_value());

  State("ds60-1", "dc1", kCharging, v1::IEC61851_STATE_UNSPECIFIED, 1000, 50000);
  manager_->OnDeviceEvent(Telemetry("ds60-1", "dc1", Meter(21000, 50000)));
  manager_->OnDeviceEvent(
      FaultRaised("ds60-1", "dc1", "ocpp_stop_reason", "EVDisconnected", false));
  EXPECT_FALSE(OpenOn("dc1").has_value());
  const v1::Session done = Stored(id);
  EXPECT_EQ(done.state(), v1::SESSION_STATE_COMPLETED);
  EXPECT_EQ(done.stop_reason(), v1::STOP_REASON_EV_DISCONNECTED);
  EXPECT_EQ(done.vendor_stop_code(), "EVDisconnected");
  EXPECT_EQ(done.energy_charged_wh(), 20000);
}

TEST_F(SessionManagerTest, AStationWideReaderPicksTheConnectorWithTheVehicle) {
  AllIdle();
  State("ds60-1", "dc2", kPreparing, v1::IEC61851_STATE_UNSPECIFIED, 1000, {}, 2);
  manager_->OnDeviceEvent(Tap("ds60-1", "", kVanCard));
  EXPECT_FALSE(OpenOn("dc1").has_value());
  ASSERT_TRUE(OpenOn("dc2").has_value());
  EXPECT_EQ(OpenOn("dc2")->connector_id(), 2u);
  EXPECT_EQ(OpenOn("dc2")->station_id(), "dc");
  // A second card goes to the free connector; the first card's tap stops its own.
  manager_->OnDeviceEvent(Tap("ds60-1", "", kOtherVanCard));
  ASSERT_TRUE(OpenOn("dc1").has_value());
  EXPECT_EQ(OpenOn("dc1")->id_tag(), kOtherVanCard);
  manager_->OnDeviceEvent(Tap("ds60-1", "", kVanCard));
  EXPECT_FALSE(OpenOn("dc2").has_value());
  EXPECT_TRUE(OpenOn("dc1").has_value());
}

TEST_F(SessionManagerTest, OneSessionPerCardAtATime) {
  AllIdle();
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  manager_->OnDeviceEvent(Tap("wallbox-2", "wb2", kVanCard));
  EXPECT_FALSE(OpenOn("wb2").has_value());
  v1::AuthorizeRequest request;
  request.set_id_tag(kVanCard);
  request.set_evse_id("wb2");
  EXPECT_EQ(manager_->Authorize(request)->status(), v1::AUTHORIZATION_STATUS_CONCURRENT_TX);
  request.set_evse_id("wb1");  // where its session is: it may (stop it)
  EXPECT_EQ(manager_->Authorize(request)->status(), v1::AUTHORIZATION_STATUS_ACCEPTED);
}

TEST_F(SessionManagerTest, AfterARestartSessionsResumeOrCloseFromTheDevicesState) {
  AllIdle();
  State("wallbox-1", "wb1", kPreparing, v1::IEC61851_STATE_B, 1000);
  State("wallbox-2", "wb2", kPreparing, v1::IEC61851_STATE_B, 2000);
  State("wallbox-4", "wb4", kPreparing, v1::IEC61851_STATE_B, 3000);  // free vend
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  manager_->OnDeviceEvent(Tap("wallbox-2", "wb2", kOtherVanCard));
  manager_->OnDeviceEvent(Tap("ds60-1", "dc1", kMasterCard));  // pending, no vehicle
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", Meter(1400, 7000)));
  manager_->OnDeviceEvent(Telemetry("wallbox-2", "wb2", Meter(2600, 7000)));
  const std::string wb1 = OpenOn("wb1")->session_id();
  const std::string wb2 = OpenOn("wb2")->session_id();
  const std::string wb4 = OpenOn("wb4")->session_id();
  const std::string dc1 = OpenOn("dc1")->session_id();

  Restart();  // evgate was killed; the devices carried on
  EXPECT_EQ(manager_->OpenSessions().size(), 4u);
  clock_.Advance(absl::Seconds(20));
  manager_->OnStreamStarted();
  // wb1 still charging (energy went on while evgate was down); wb2's vehicle
  // left; wallbox-4 does not answer.
  manager_->OnDeviceEvent(
      Snapshot("wallbox-1", {Evse("wb1", kCharging, v1::IEC61851_STATE_C, Meter(1900, 7000))}));
  manager_->OnDeviceEvent(
      Snapshot("wallbox-2", {Evse("wb2", kAvailable, v1::IEC61851_STATE_A, Meter(2900, 0))}));
  manager_->OnDeviceEvent(Snapshot("ds60-1", {Evse("dc1", kAvailable, {}, Meter(0), 1),
                                              Evse("dc2", kAvailable, {}, Meter(0), 2)}));
  manager_->OnDeviceEvent(SnapshotComplete());

  ASSERT_TRUE(OpenOn("wb1").has_value());
  EXPECT_EQ(OpenOn("wb1")->session_id(), wb1);  // resumed, same record
  EXPECT_EQ(OpenOn("wb1")->energy_charged_wh(), 900);
  const v1::Session gone = Stored(wb2);
  EXPECT_EQ(gone.state(), v1::SESSION_STATE_INTERRUPTED);
  EXPECT_EQ(gone.stop_reason(), v1::STOP_REASON_CONTROLLER_RESTART);
  EXPECT_EQ(gone.meter_stop_wh(), 2600);  // the last value recorded before the restart
  EXPECT_THAT(gone.vendor_stop_description(), HasSubstr("reported no vehicle"));
  EXPECT_EQ(OpenOn("dc1")->session_id(), dc1);  // still waiting for its vehicle
  EXPECT_EQ(OpenOn("wb4")->session_id(), wb4);  // waits for its EVSE to report

  clock_.Advance(absl::Seconds(100));  // 120 s after the restart
  manager_->Tick();
  EXPECT_EQ(Stored(wb4).state(), v1::SESSION_STATE_INTERRUPTED);
  EXPECT_THAT(Stored(wb4).vendor_stop_description(), HasSubstr("did not report its state"));
  EXPECT_EQ(Stored(wb4).meter_stop_wh(), 3000);
  EXPECT_EQ(Count(), 4);  // nothing lost, nothing duplicated
}

TEST_F(SessionManagerTest, ADeviceThatCameBackWithoutTheVehicleEndsTheSessionAsDeviceLost) {
  AllIdle();
  State("wallbox-1", "wb1", kCharging, v1::IEC61851_STATE_C, 1000, 7000);
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  const std::string id = OpenOn("wb1")->session_id();
  manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", Meter(1200, 7000)));
  manager_->OnDeviceEvent(LinkChange("wallbox-1", true));
  EXPECT_TRUE(OpenOn("wb1").has_value());  // stays open while the device is silent
  manager_->OnDeviceEvent(LinkChange("wallbox-1", false));
  State("wallbox-1", "wb1", kAvailable, v1::IEC61851_STATE_A, 1250, 0);
  EXPECT_EQ(Stored(id).state(), v1::SESSION_STATE_INTERRUPTED);
  EXPECT_EQ(Stored(id).stop_reason(), v1::STOP_REASON_DEVICE_LOST);
}

TEST_F(SessionManagerTest, WatchStartsWithASnapshotAndFiltersByEvse) {
  AllIdle();
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  manager_->OnDeviceEvent(Tap("wallbox-2", "wb2", kOtherVanCard));
  auto watch = manager_->Watch({"wb2"});
  ASSERT_TRUE(watch.ok());
  v1::WatchSessionsResponse event;
  absl::Status end;
  ASSERT_EQ((*watch)->Wait(absl::ZeroDuration(), &event, &end), SessionWatch::Next::kEvent);
  EXPECT_EQ(event.event(), v1::SESSION_EVENT_TYPE_SNAPSHOT);
  EXPECT_EQ(event.session().evse_id(), "wb2");
  EXPECT_EQ(event.sequence(), 1u);
  ASSERT_EQ((*watch)->Wait(absl::ZeroDuration(), &event, &end), SessionWatch::Next::kEvent);
  EXPECT_EQ(event.event(), v1::SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE);
  EXPECT_FALSE(event.has_session());
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));  // wb1: filtered out
  manager_->OnDeviceEvent(Tap("wallbox-2", "wb2", kOtherVanCard));
  ASSERT_EQ((*watch)->Wait(absl::ZeroDuration(), &event, &end), SessionWatch::Next::kEvent);
  EXPECT_EQ(event.event(), v1::SESSION_EVENT_TYPE_ENDED);
  EXPECT_EQ(event.sequence(), 3u);
  EXPECT_EQ((*watch)->Wait(absl::ZeroDuration(), &event, &end), SessionWatch::Next::kTimeout);
  EXPECT_EQ(manager_->Watch({"nope"}).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SessionManagerTest, AWatcherThatFallsBehindIsEndedNotBuffered) {
  AllIdle();
  State("wallbox-1", "wb1", kCharging, v1::IEC61851_STATE_C, 1000, 7000);
  manager_->OnDeviceEvent(Tap("wallbox-1", "wb1", kVanCard));
  for (int i = 1; i <= 120; ++i) {
    manager_->OnDeviceEvent(Telemetry("wallbox-1", "wb1", Meter(1000 + i, 7000)));
  }
  v1::WatchSessionsResponse event;
  absl::Status end;
  EXPECT_EQ(watch_->Wait(absl::ZeroDuration(), &event, &end), SessionWatch::Next::kEnded);
  EXPECT_EQ(end.code(), absl::StatusCode::kResourceExhausted);
}

TEST(VehicleConnectedTest, ControlPilotFirstThenConnectorStatus) {
  EXPECT_EQ(VehicleConnected(v1::IEC61851_STATE_A, v1::CONNECTOR_STATUS_CHARGING), false);
  EXPECT_EQ(VehicleConnected(v1::IEC61851_STATE_C, v1::CONNECTOR_STATUS_FAULTED), true);
  EXPECT_EQ(VehicleConnected(v1::IEC61851_STATE_UNSPECIFIED, v1::CONNECTOR_STATUS_FINISHING), true);
  EXPECT_EQ(VehicleConnected(v1::IEC61851_STATE_F, v1::CONNECTOR_STATUS_FAULTED), std::nullopt);
}

}  // namespace
}  // namespace evgate::session
