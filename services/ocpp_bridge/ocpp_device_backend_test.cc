// The OCPP chargers as DeviceDriver devices, against the Central System and a
// fake link: inventory, link health, status and meter values as events, the
// failsafe profile at boot, setpoints as live profiles and every way one can
// fail, and the fallback when setpoints stop. Every SetChargingProfile is
// checked against the OCPP 1.6 schema by the fake link. Bad inputs tried: a
// current limit for a DC charger, a negative (discharge) limit, a limit above
// the EVSE maximum and one below its minimum, an unknown EVSE, a charger that
// rejects, one that answers with a CALLERROR, one that does not answer, one
// that is not connected, one that takes limits only in A.
#include "services/ocpp_bridge/ocpp_device_backend.h"

#include <atomic>
#include <cstdlib>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/ocpp_bridge/ocpp_schemas.h"
#include "services/ocpp_bridge/rpc_frame.h"
#include "services/ocpp_bridge/testing/fake_link.h"
#include "services/session/stop_reasons.h"

namespace evgate::ocpp {
namespace {

using nlohmann::json;
using testing::Answer;
using testing::FakeLink;
using ::testing::HasSubstr;
using testing::SentCall;

class RecordingSink final : public devices::DeviceEventSink {
 public:
  void Publish(v1::WatchDevicesResponse event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }
  std::vector<v1::WatchDevicesResponse> Take() {
    absl::MutexLock lock(&mu_);
    return std::exchange(events_, {});
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::WatchDevicesResponse> events_ ABSL_GUARDED_BY(mu_);
};

class AcceptAll final : public IdTagAuthorizer {
 public:
  absl::StatusOr<json> Authorize(const std::string&, const std::string&) override {
    return json{{"status", "Accepted"}};
  }
};

site::SiteConfig Site() {
  site::SiteConfig site;
  site::DeviceConfig ds60;
  ds60.id = "ds60-1";
  ds60.profile_name = "ds60";
  ds60.charge_point_id = "DS60-1";
  site.devices.push_back(ds60);
  site::StationConfig station;
  station.id = "dc-station";
  station.device = "ds60-1";
  station.max_power_w = 60000;
  for (int connector : {1, 2}) {
    site::EvseConfig evse;
    evse.id = absl::StrCat("dc", connector);
    evse.connector = connector;
    site::DcEvseLimits dc;
    dc.min_power_w = 5000;
    dc.failsafe_power_w = 10000;
    evse.dc = dc;
    station.evses.push_back(evse);
  }
  site.stations.push_back(station);
  // An ICE-22 V2X: one bidirectional connector.
  site::DeviceConfig ice22;
  ice22.id = "ice22-1";
  ice22.profile_name = "ice22_v2x";
  ice22.charge_point_id = "ICE22-1";
  site.devices.push_back(ice22);
  site::StationConfig v2x;
  v2x.id = "v2x";
  v2x.device = "ice22-1";
  v2x.max_power_w = 22000;
  site::EvseConfig evse;
  evse.id = "v2x1";
  site::DcEvseLimits dc;
  dc.min_power_w = 2000;
  dc.max_power_w = 22000;
  dc.failsafe_power_w = 5000;
  dc.bidirectional = true;
  dc.max_discharge_power_w = 22000;
  dc.max_discharge_power_offgrid_w = 19800;
  evse.dc = dc;
  v2x.evses.push_back(evse);
  site.stations.push_back(v2x);
  return site;
}

class OcppDeviceBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    book_ = *TransactionBook::Open(
        std::string(std::getenv("TEST_TMPDIR")) + "/" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db",
        clock_);
    cs_ = std::make_shared<CentralSystem>(site_, clock_, CentralSystemOptions{}, &authorizer_,
                                          book_.get());
    OcppDeviceBackendOptions options;
    options.answer_wait = absl::Milliseconds(300);
    backend_ = std::make_unique<OcppDeviceBackend>(site_, cs_, clock_, options);
    cs_->SetListener(backend_.get());
    backend_->SetSink(&sink_);
  }

  // Connects DS60-1, boots it through configuration to Accepted, answers
  // everything evgate sends then (the failsafe profiles included).
  std::vector<std::string> ConnectAndAccept(const std::vector<std::string>& rate_units = {"Current",
                                                                                          "Power"},
                                            const std::string& identity = "DS60-1") {
    link_ = std::make_shared<FakeLink>(identity);
    handler_ = cs_->OnConnected(link_);
    Send("BootNotification", {{"chargePointVendor", "DS"}, {"chargePointModel", "DS60"}});
    std::optional<SentCall> get = link_->Take();
    Answer(*get,
           {{"configurationKey", json::array({{{"key", "ChargingScheduleAllowedChargingRateUnit"},
                                               {"readonly", true},
                                               {"value", absl::StrJoin(rate_units, ",")}}})}});
    link_->TakeAllActions();
    Send("BootNotification", {{"chargePointVendor", "DS"}, {"chargePointModel", "DS60"}});
    return link_->TakeAllActions();
  }
  json Send(const std::string& action, json payload) {
    std::variant<json, CallError> answer = handler_(ocpp::Call{"m", action, std::move(payload)});
    EXPECT_TRUE(std::holds_alternative<json>(answer)) << action;
    return std::holds_alternative<json>(answer) ? std::get<json>(answer) : json();
  }
  static v1::Setpoint Power(const std::string& evse, double watts) {
    v1::Setpoint setpoint;
    setpoint.set_evse_id(evse);
    setpoint.mutable_value()->set_power_limit_w(watts);
    return setpoint;
  }
  // Applies `setpoints` while a thread answers each SetChargingProfile with
  // `answer` (nullopt: no answer).
  std::vector<v1::SetpointResult> Apply(const std::vector<v1::Setpoint>& setpoints,
                                        std::optional<json> answer,
                                        std::vector<json>* sent = nullptr) {
    std::atomic<bool> done{false};
    std::thread charger([&] {
      while (!done) {
        if (std::optional<SentCall> call = link_ ? link_->Take() : std::nullopt) {
          if (call->action != "SetChargingProfile") {
            absl::MutexLock lock(&others_mu_);
            others_.push_back(*std::move(call));
            continue;
          }
          if (sent != nullptr) sent->push_back(call->payload);
          if (answer) Answer(*call, *answer);
        } else {
          absl::SleepFor(absl::Milliseconds(1));
        }
      }
    });
    std::vector<v1::SetpointResult> results =
        backend_->ApplySetpoints(setpoints, absl::Seconds(3), "batch-1");
    done = true;
    charger.join();
    while (std::optional<SentCall> call = link_ ? link_->Take() : std::nullopt) {
      absl::MutexLock lock(&others_mu_);
      others_.push_back(*std::move(call));
    }
    return results;
  }
  // The CALLs other than SetChargingProfile that Apply left unanswered.
  std::vector<SentCall> Others() {
    absl::MutexLock lock(&others_mu_);
    return std::exchange(others_, {});
  }
  // A net power sample on `connector` at the clock's time.
  void Meter(int connector, double watts) {
    Send("MeterValues",
         {{"connectorId", connector},
          {"meterValue",
           json::array(
               {{{"timestamp", FormatOcppTime(clock_.Now())},
                 {"sampledValue", json::array({{{"value", absl::StrCat(watts)},
                                                {"unit", "W"},
                                                {"measurand", "Power.Active.Import"}}})}}})}});
  }
  static json Schedule(double limit_w) {
    return {
        {"status", "Accepted"},
        {"connectorId", 1},
        {"chargingSchedule",
         {{"chargingRateUnit", "W"},
          {"chargingSchedulePeriod", json::array({{{"startPeriod", 0}, {"limit", limit_w}}})}}}};
  }
  std::vector<std::string> NotFollowed(int evse_index) {
    std::vector<std::string> problems;
    const v1::DeviceState device = *backend_->GetDevice("ds60-1");
    for (const v1::Fault& f : device.evses(evse_index).faults()) {
      if (f.code() == "SETPOINT_NOT_FOLLOWED") problems.push_back(f.description());
    }
    return problems;
  }

  absl::Mutex others_mu_;
  std::vector<SentCall> others_ ABSL_GUARDED_BY(others_mu_);

  FakeClock clock_;
  site::SiteConfig site_ = Site();
  AcceptAll authorizer_;
  std::unique_ptr<TransactionBook> book_;
  std::shared_ptr<CentralSystem> cs_;
  std::unique_ptr<OcppDeviceBackend> backend_;
  RecordingSink sink_;
  std::shared_ptr<FakeLink> link_;
  RpcEndpoint::CallHandler handler_;
};

TEST_F(OcppDeviceBackendTest, InventoryFromSiteYamlAndStaleUntilAccepted) {
  EXPECT_EQ(backend_->bus_id(), "ocpp");
  EXPECT_THAT(backend_->DeviceIds(), ::testing::ElementsAre("ds60-1", "ice22-1"));
  EXPECT_THAT(backend_->EvseIds(), ::testing::ElementsAre("dc1", "dc2", "v2x1"));
  std::optional<v1::DeviceState> device = backend_->GetDevice("ds60-1");
  ASSERT_TRUE(device.has_value());
  EXPECT_EQ(device->kind(), v1::DEVICE_KIND_DC_CHARGER);
  EXPECT_EQ(device->address(), "DS60-1");
  EXPECT_EQ(device->station_id(), "dc-station");
  EXPECT_TRUE(device->link().stale());
  EXPECT_THAT(device->link().last_error(), HasSubstr("not connected"));
  ASSERT_EQ(device->evses_size(), 2);
  EXPECT_EQ(device->evses(1).connector_id(), 2u);
  EXPECT_EQ(device->evses(1).kind(), v1::EVSE_KIND_DC);
  EXPECT_EQ(device->evses(1).capabilities().max_power_w(), 60000);
  EXPECT_EQ(device->evses(1).capabilities().min_power_w(), 5000);
  EXPECT_FALSE(backend_->GetDevice("nope").has_value());

  link_ = std::make_shared<FakeLink>("DS60-1");
  handler_ = cs_->OnConnected(link_);
  EXPECT_TRUE(backend_->GetDevice("ds60-1")->link().stale());  // connected, not accepted
  EXPECT_THAT(backend_->GetDevice("ds60-1")->link().last_error(), HasSubstr("not yet accepted"));
}

TEST_F(OcppDeviceBackendTest, AcceptedBootSetsTheFailsafeProfileOnEveryConnector) {
  std::vector<std::string> sent = ConnectAndAccept();
  std::vector<std::string> failsafe;
  std::vector<json> station;
  for (const std::string& call : sent) {
    if (!absl::StartsWith(call, "SetChargingProfile")) continue;
    json payload = json::parse(call.substr(std::string("SetChargingProfile ").size()));
    if (payload["csChargingProfiles"]["chargingProfilePurpose"] == "ChargePointMaxProfile") {
      station.push_back(payload);
    } else {
      failsafe.push_back(call);
    }
  }
  // The station's 60 kW on the whole charge point (connector 0), no end.
  ASSERT_EQ(station.size(), 1u);
  EXPECT_EQ(station[0]["connectorId"], 0);
  EXPECT_EQ(station[0]["csChargingProfiles"]["chargingProfileId"],
            OcppDeviceBackend::ChargePointMaxProfileId());
  EXPECT_EQ(station[0]["csChargingProfiles"]["stackLevel"], 0);
  EXPECT_FALSE(station[0]["csChargingProfiles"].contains("validTo"));
  EXPECT_EQ(
      station[0]["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"],
      60000);
  ASSERT_EQ(failsafe.size(), 2u);
  json first = json::parse(failsafe[0].substr(std::string("SetChargingProfile ").size()));
  EXPECT_EQ(first["connectorId"], 1);
  const json& profile = first["csChargingProfiles"];
  EXPECT_EQ(profile["stackLevel"], 0);
  EXPECT_EQ(profile["chargingProfileId"], OcppDeviceBackend::FailsafeProfileId(1));
  EXPECT_EQ(profile["chargingProfilePurpose"], "TxDefaultProfile");
  EXPECT_FALSE(profile.contains("validTo"));
  EXPECT_EQ(profile["chargingSchedule"]["chargingRateUnit"], "W");
  EXPECT_EQ(profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"], 10000);
  EXPECT_FALSE(backend_->GetDevice("ds60-1")->link().stale());
  // The link came up: published once.
  int link_events = 0;
  for (const v1::WatchDevicesResponse& e : sink_.Take()) {
    if (e.has_link_state_change()) {
      ++link_events;
      EXPECT_FALSE(e.link_state_change().link().stale());
    }
  }
  EXPECT_EQ(link_events, 1);
}

TEST_F(OcppDeviceBackendTest, StatusAndMeterValuesBecomeEvents) {
  ConnectAndAccept();
  sink_.Take();
  Send("StatusNotification",
       {{"connectorId", 1}, {"status", "Preparing"}, {"errorCode", "NoError"}});
  Send("StatusNotification",
       {{"connectorId", 1}, {"status", "Preparing"}, {"errorCode", "NoError"}});
  Send("StatusNotification",
       {{"connectorId", 1}, {"status", "Charging"}, {"errorCode", "NoError"}});
  Send("MeterValues",
       {{"connectorId", 1},
        {"meterValue",
         json::array(
             {{{"timestamp", "2027-01-15T08:00:00Z"},
               {"sampledValue",
                json::array(
                    {{{"value", "48.5"}, {"unit", "kW"}, {"measurand", "Power.Active.Import"}},
                     {{"value", "120.5"}, {"unit", "kWh"}},
                     {{"value", "63"}, {"measurand", "SoC"}, {"location", "EV"}}})}}})}});
  std::vector<v1::WatchDevicesResponse> events = sink_.Take();
  std::vector<v1::EvseStateChange> changes;
  std::vector<v1::Telemetry> telemetry;
  for (const auto& e : events) {
    if (e.has_evse_state_change()) changes.push_back(e.evse_state_change());
    if (e.has_telemetry()) telemetry.push_back(e.telemetry());
  }
  ASSERT_EQ(changes.size(), 2u);  // the repeated Preparing is no change
  EXPECT_EQ(changes[0].state().evse_id(), "dc1");
  EXPECT_EQ(changes[0].state().iec61851_state(), v1::IEC61851_STATE_B);
  EXPECT_EQ(changes[1].state().connector_status(), v1::CONNECTOR_STATUS_CHARGING);
  EXPECT_EQ(changes[1].state().iec61851_state(), v1::IEC61851_STATE_C);
  EXPECT_EQ(changes[1].previous_iec61851_state(), v1::IEC61851_STATE_B);
  ASSERT_EQ(telemetry.size(), 1u);
  ASSERT_EQ(telemetry[0].evses_size(), 1);
  const v1::EvseMeasurements& m = telemetry[0].evses(0).measurements();
  EXPECT_EQ(m.power_w(), 48500);
  EXPECT_EQ(m.energy_import_wh(), 120500);
  EXPECT_EQ(m.soc_pct(), 63);
}

TEST_F(OcppDeviceBackendTest, ASetpointIsALiveProfileValidForItsTtl) {
  ConnectAndAccept();
  std::vector<json> sent;
  v1::Setpoint pause;
  pause.set_evse_id("dc2");
  pause.mutable_value()->mutable_pause();
  std::vector<v1::SetpointResult> results =
      Apply({Power("dc1", 30000.4), pause}, json{{"status", "Accepted"}}, &sent);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status(), v1::SETPOINT_STATUS_ACCEPTED) << results[0].message();
  EXPECT_EQ(results[0].in_force().value().power_limit_w(), 30000.4);
  EXPECT_EQ(results[0].in_force().source(), v1::SETPOINT_SOURCE_CONTROLLER);
  EXPECT_EQ(results[0].in_force().expires_at().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Seconds(3)));
  EXPECT_EQ(results[1].status(), v1::SETPOINT_STATUS_ACCEPTED);
  EXPECT_TRUE(results[1].in_force().value().has_pause());
  ASSERT_EQ(sent.size(), 2u);
  const json& live = sent[0]["csChargingProfiles"];
  EXPECT_EQ(live["stackLevel"], 1);
  EXPECT_EQ(live["chargingProfileId"], OcppDeviceBackend::LiveProfileId(1));
  EXPECT_EQ(live["validTo"], FormatOcppTime(clock_.Now() + absl::Seconds(3)));
  EXPECT_EQ(live["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"], 30000);
  EXPECT_EQ(sent[1]["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"],
            0);
  std::vector<std::optional<v1::SetpointValue>> in_force =
      backend_->SetpointsInForce({"dc1", "dc2", "wb9"});
  ASSERT_TRUE(in_force[0].has_value());
  EXPECT_EQ(in_force[0]->power_limit_w(), 30000.4);
  EXPECT_FALSE(in_force[2].has_value());
}

TEST_F(OcppDeviceBackendTest, SetpointsTheChargerCannotTake) {
  ConnectAndAccept();
  v1::Setpoint current;
  current.set_evse_id("dc1");
  current.mutable_value()->mutable_current_limit_a()->set_l1(16);
  std::vector<v1::SetpointResult> results = Apply(
      {current, Power("dc1", -5000), Power("dc2", 70000), Power("dc2", 1000), Power("wb1", 7000)},
      json{{"status", "Accepted"}});
  EXPECT_EQ(results[0].reason(), v1::SETPOINT_REJECT_REASON_NOT_SUPPORTED);
  EXPECT_EQ(results[1].reason(), v1::SETPOINT_REJECT_REASON_NOT_SUPPORTED);
  EXPECT_THAT(results[1].message(), HasSubstr("dc1 is not bidirectional"));
  EXPECT_EQ(results[2].reason(), v1::SETPOINT_REJECT_REASON_INVALID_VALUE);
  EXPECT_EQ(results[3].reason(), v1::SETPOINT_REJECT_REASON_INVALID_VALUE);
  EXPECT_EQ(results[4].reason(), v1::SETPOINT_REJECT_REASON_UNKNOWN_EVSE);
  for (const auto& r : results) EXPECT_EQ(r.status(), v1::SETPOINT_STATUS_REJECTED);
}

TEST_F(OcppDeviceBackendTest, ADischargeIsANegativeLimitOfABidirectionalEvseWithinItsMaximum) {
  ConnectAndAccept({"Current", "Power"}, "ICE22-1");
  std::vector<json> sent;
  std::vector<v1::SetpointResult> results =
      Apply({Power("v2x1", -10000)}, json{{"status", "Accepted"}}, &sent);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status(), v1::SETPOINT_STATUS_ACCEPTED) << results[0].message();
  EXPECT_EQ(results[0].in_force().value().power_limit_w(), -10000);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"],
            -10000);
  // Valid for the schema as evgate sends it (the official one allows a negative limit).
  std::optional<CallError> invalid = ocpp::ValidateCall(
      ocpp::OcppSchemas::Ocpp16(), ocpp::Call{"m1", "SetChargingProfile", sent[0]});
  EXPECT_FALSE(invalid.has_value()) << invalid->description;

  // Beyond the discharge maximum, or below the minimum power: refused, nothing sent.
  sent.clear();
  results = Apply({Power("v2x1", -22500)}, json{{"status", "Accepted"}}, &sent);
  EXPECT_EQ(results[0].reason(), v1::SETPOINT_REJECT_REASON_INVALID_VALUE);
  EXPECT_THAT(results[0].message(), HasSubstr("outside 2000..22000 W"));
  results = Apply({Power("v2x1", -1000)}, json{{"status", "Accepted"}}, &sent);
  EXPECT_EQ(results[0].reason(), v1::SETPOINT_REJECT_REASON_INVALID_VALUE);
  EXPECT_TRUE(sent.empty());
}

TEST_F(OcppDeviceBackendTest, RefusalsTimeoutsAndOfflineAreNotCountedAsApplied) {
  ConnectAndAccept();
  std::vector<v1::SetpointResult> rejected =
      Apply({Power("dc1", 20000)}, json{{"status", "Rejected"}});
  EXPECT_EQ(rejected[0].reason(), v1::SETPOINT_REJECT_REASON_DEVICE_REJECTED);
  EXPECT_THAT(rejected[0].message(), HasSubstr("Rejected"));
  std::vector<v1::SetpointResult> silent = Apply({Power("dc1", 20000)}, std::nullopt);
  EXPECT_EQ(silent[0].reason(), v1::SETPOINT_REJECT_REASON_TIMEOUT);
  EXPECT_FALSE(backend_->SetpointsInForce({"dc1"})[0].has_value());

  cs_->OnDisconnected(*link_, "EOF");
  std::vector<v1::SetpointResult> offline =
      Apply({Power("dc1", 20000)}, json{{"status", "Accepted"}});
  EXPECT_EQ(offline[0].reason(), v1::SETPOINT_REJECT_REASON_DEVICE_OFFLINE);
  EXPECT_TRUE(backend_->GetDevice("ds60-1")->link().stale());
}

TEST_F(OcppDeviceBackendTest, AChargerThatTakesOnlyAmperesIsRefusedPowerLimits) {
  ConnectAndAccept({"Current"});
  std::vector<v1::SetpointResult> results =
      Apply({Power("dc1", 20000)}, json{{"status", "Accepted"}});
  EXPECT_EQ(results[0].reason(), v1::SETPOINT_REJECT_REASON_NOT_SUPPORTED);
  EXPECT_THAT(results[0].message(), HasSubstr("only in A"));
}

TEST_F(OcppDeviceBackendTest, WithoutNewSetpointsTheFailsafeIsInForceAfterTheTtl) {
  ConnectAndAccept();
  ASSERT_EQ(Apply({Power("dc1", 30000)}, json{{"status", "Accepted"}})[0].status(),
            v1::SETPOINT_STATUS_ACCEPTED);
  sink_.Take();
  clock_.Advance(absl::Seconds(2));
  backend_->Tick();
  EXPECT_EQ(backend_->SetpointsInForce({"dc1"})[0]->power_limit_w(), 30000);
  EXPECT_TRUE(sink_.Take().empty());
  EXPECT_EQ(backend_->GetBusHealth().setpoints_expired_total(), 0u);
  clock_.Advance(absl::Seconds(1));
  backend_->Tick();
  backend_->Tick();  // counted once, not at every tick
  EXPECT_EQ(backend_->GetBusHealth().setpoints_expired_total(), 1u);
  EXPECT_EQ(backend_->GetBusHealth().kind(), "ocpp");
  std::optional<v1::SetpointValue> in_force = backend_->SetpointsInForce({"dc1"})[0];
  ASSERT_TRUE(in_force.has_value());
  EXPECT_EQ(in_force->power_limit_w(), 10000);
  EXPECT_EQ(backend_->GetDevice("ds60-1")->evses(0).setpoint().source(),
            v1::SETPOINT_SOURCE_FAILSAFE);
  bool published = false;
  for (const auto& e : sink_.Take()) {
    if (e.has_evse_state_change() &&
        e.evse_state_change().state().setpoint().source() == v1::SETPOINT_SOURCE_FAILSAFE) {
      published = true;
    }
  }
  EXPECT_TRUE(published);
}

TEST_F(OcppDeviceBackendTest, StatusNotificationFaultsAreStateAndEvents) {
  ConnectAndAccept();
  sink_.Take();
  // The DS60's door code on connector 1, then cleared.
  Send("StatusNotification", {{"connectorId", 1},
                              {"status", "Faulted"},
                              {"errorCode", "OtherError"},
                              {"vendorErrorCode", "012252"}});
  const v1::EvseState dc1 = backend_->GetDevice("ds60-1")->evses(0);
  ASSERT_EQ(dc1.faults_size(), 1);
  EXPECT_EQ(dc1.faults(0).code(), "DOOR_OPEN");
  EXPECT_TRUE(dc1.faults(0).blocks_charging());
  std::vector<v1::WatchDevicesResponse> events = sink_.Take();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].has_evse_state_change());  // the state that carries it, first
  ASSERT_TRUE(events[1].has_fault_raised());
  EXPECT_EQ(events[1].fault_raised().evse_id(), "dc1");
  EXPECT_EQ(events[1].fault_raised().fault().vendor_code(), "012252");
  // The same status again: nothing new.
  Send("StatusNotification", {{"connectorId", 1},
                              {"status", "Faulted"},
                              {"errorCode", "OtherError"},
                              {"vendorErrorCode", "012252"}});
  EXPECT_TRUE(sink_.Take().empty());
  Send("StatusNotification",
       {{"connectorId", 1}, {"status", "Available"}, {"errorCode", "NoError"}});
  EXPECT_EQ(backend_->GetDevice("ds60-1")->evses(0).faults_size(), 0);
  events = sink_.Take();
  ASSERT_EQ(events.size(), 2u);
  ASSERT_TRUE(events[1].has_fault_cleared());
  EXPECT_EQ(events[1].fault_cleared().fault().code(), "DOOR_OPEN");

  // Connector 0 reports for the whole charger: a device-wide fault.
  Send("StatusNotification", {{"connectorId", 0},
                              {"status", "Faulted"},
                              {"errorCode", "OtherError"},
                              {"vendorErrorCode", "012251"}});
  const v1::DeviceState device = *backend_->GetDevice("ds60-1");
  ASSERT_EQ(device.faults_size(), 1);
  EXPECT_EQ(device.faults(0).code(), "EMERGENCY_STOP");
  EXPECT_EQ(device.evses(0).faults_size(), 0);
  events = sink_.Take();
  ASSERT_EQ(events.size(), 1u);
  ASSERT_TRUE(events[0].has_fault_raised());
  EXPECT_EQ(events[0].fault_raised().evse_id(), "");
}

TEST_F(OcppDeviceBackendTest, TransactionsBecomeSessionEvents) {
  ConnectAndAccept();
  sink_.Take();
  const json start = {{"connectorId", 2},
                      {"idTag", "04A2B3C4D5E680"},
                      {"meterStart", 1000},
                      {"timestamp", "2027-01-15T08:00:00Z"}};
  const int64_t id = Send("StartTransaction", start)["transactionId"];
  std::vector<v1::WatchDevicesResponse> events = sink_.Take();
  ASSERT_EQ(events.size(), 1u);
  ASSERT_TRUE(events[0].has_transaction_started());
  EXPECT_EQ(events[0].device_id(), "ds60-1");
  EXPECT_EQ(events[0].transaction_started().evse_id(), "dc2");
  EXPECT_EQ(events[0].transaction_started().id_tag(), "04A2B3C4D5E680");
  EXPECT_EQ(events[0].transaction_started().transaction_id(), absl::StrCat(id));
  // Repeated after a reconnect: the same id, announced once.
  EXPECT_EQ(Send("StartTransaction", start)["transactionId"], id);
  EXPECT_TRUE(sink_.Take().empty());

  const json stop = {{"transactionId", id},
                     {"meterStop", 21000},
                     {"timestamp", "2027-01-15T09:00:00Z"},
                     {"reason", "EVDisconnected"}};
  Send("StopTransaction", stop);
  events = sink_.Take();
  ASSERT_EQ(events.size(), 3u);
  // meterStop as the last reading, nothing flowing...
  ASSERT_TRUE(events[0].has_telemetry());
  ASSERT_EQ(events[0].telemetry().evses_size(), 1);
  EXPECT_EQ(events[0].telemetry().evses(0).evse_id(), "dc2");
  EXPECT_EQ(events[0].telemetry().evses(0).measurements().energy_import_wh(), 21000);
  EXPECT_EQ(events[0].telemetry().evses(0).measurements().power_w(), 0);
  // ... then why it stopped, as the session service's stop-reason catalog.
  ASSERT_TRUE(events[1].has_fault_raised());
  EXPECT_EQ(events[1].fault_raised().evse_id(), "dc2");
  EXPECT_EQ(events[1].fault_raised().fault().vendor(), session::kOcppStopReasonCatalog);
  EXPECT_EQ(events[1].fault_raised().fault().vendor_code(), "EVDisconnected");
  EXPECT_FALSE(events[1].fault_raised().fault().blocks_charging());
  ASSERT_TRUE(events[2].has_fault_cleared());
  EXPECT_EQ(events[2].fault_cleared().fault().vendor_code(), "EVDisconnected");
  EXPECT_EQ(backend_->GetDevice("ds60-1")->evses(1).faults_size(), 0);
  // A repeated stop is recorded once and ends nothing again.
  Send("StopTransaction", stop);
  EXPECT_TRUE(sink_.Take().empty());
  // Nor does an orphan stop.
  Send("StopTransaction",
       {{"transactionId", 999999}, {"meterStop", 5}, {"timestamp", "2027-01-15T09:00:00Z"}});
  EXPECT_TRUE(sink_.Take().empty());
}

class RefuseThenAccept final : public IdTagAuthorizer {
 public:
  absl::StatusOr<json> Authorize(const std::string&, const std::string&) override {
    if (down) return absl::UnavailableError("session service down");
    return json{{"status", blocked ? "Blocked" : "Accepted"}};
  }
  bool down = true;
  bool blocked = false;
};

TEST(OcppDeviceBackendAuthorizationTest, AStartRetriedAfterTheSessionServiceWasDownIsAnnounced) {
  FakeClock clock;
  site::SiteConfig site = Site();
  auto book = *TransactionBook::Open(std::string(std::getenv("TEST_TMPDIR")) + "/retry.db", clock);
  RefuseThenAccept authorizer;
  auto cs =
      std::make_shared<CentralSystem>(site, clock, CentralSystemOptions{}, &authorizer, book.get());
  OcppDeviceBackend backend(site, cs, clock);
  cs->SetListener(&backend);
  RecordingSink sink;
  backend.SetSink(&sink);
  auto link = std::make_shared<FakeLink>("DS60-1");
  RpcEndpoint::CallHandler handler = cs->OnConnected(link);
  const json start = {{"connectorId", 1},
                      {"idTag", "04A2B3C4D5E680"},
                      {"meterStart", 0},
                      {"timestamp", "2027-01-15T08:00:00Z"}};
  auto announced = [&sink] {
    int n = 0;
    for (const auto& e : sink.Take()) n += e.has_transaction_started();
    return n;
  };
  // No decision: InternalError, the charger retries; the start is kept.
  EXPECT_TRUE(
      std::holds_alternative<CallError>(handler(ocpp::Call{"1", "StartTransaction", start})));
  EXPECT_EQ(announced(), 0);
  authorizer.down = false;
  authorizer.blocked = true;
  // Blocked: answered, but no session.
  ASSERT_TRUE(std::holds_alternative<json>(handler(ocpp::Call{"2", "StartTransaction", start})));
  EXPECT_EQ(announced(), 0);
  authorizer.blocked = false;
  ASSERT_TRUE(std::holds_alternative<json>(handler(ocpp::Call{"3", "StartTransaction", start})));
  EXPECT_EQ(announced(), 1);
}

TEST_F(OcppDeviceBackendTest, AChargerThatAcceptsAndIgnoresIsReportedAndNotTrusted) {
  ConnectAndAccept();
  // Accepted; the read-back follows, and shows the profile is not in force.
  std::vector<v1::SetpointResult> results =
      Apply({Power("dc1", 20000)}, json{{"status", "Accepted"}});
  EXPECT_EQ(results[0].status(), v1::SETPOINT_STATUS_ACCEPTED);
  std::vector<SentCall> others = Others();
  ASSERT_EQ(others.size(), 1u);
  EXPECT_EQ(others[0].action, "GetCompositeSchedule");
  EXPECT_EQ(others[0].payload["connectorId"], 1);
  EXPECT_EQ(others[0].payload["chargingRateUnit"], "W");
  sink_.Take();
  Answer(others[0], Schedule(60000));
  ASSERT_EQ(NotFollowed(0).size(), 1u);
  EXPECT_THAT(NotFollowed(0)[0], HasSubstr("allows 60000 W where evgate set 20000 W"));
  bool raised = false;
  for (const auto& e : sink_.Take()) {
    raised |= e.has_fault_raised() && e.fault_raised().fault().code() == "SETPOINT_NOT_FOLLOWED";
  }
  EXPECT_TRUE(raised);
  EXPECT_EQ(NotFollowed(1).size(), 0u);  // only that connector

  // From now on its setpoints are still sent, but answered as refused, so
  // the load balancer counts it at its worst case.
  std::vector<json> sent;
  results = Apply({Power("dc1", 20000), Power("dc2", 20000)}, json{{"status", "Accepted"}}, &sent);
  EXPECT_EQ(sent.size(), 2u);
  EXPECT_EQ(results[0].status(), v1::SETPOINT_STATUS_REJECTED);
  EXPECT_EQ(results[0].reason(), v1::SETPOINT_REJECT_REASON_DEVICE_REJECTED);
  EXPECT_THAT(results[0].message(), HasSubstr("does not follow its limit"));
  EXPECT_EQ(results[1].status(), v1::SETPOINT_STATUS_ACCEPTED);
  // Read back at most every 30 s: only dc2's first read-back now.
  others = Others();
  ASSERT_EQ(others.size(), 1u);
  EXPECT_EQ(others[0].payload["connectorId"], 2);
  Answer(others[0], Schedule(20000));
  EXPECT_EQ(NotFollowed(1).size(), 0u);

  // The meter says the same: 55 kW, twice, once the 20 kW limit has been
  // the highest for longer than the grace.
  Meter(1, 55000);
  clock_.Advance(absl::Seconds(21));
  Meter(1, 55000);
  EXPECT_THAT(absl::StrJoin(NotFollowed(0), ""), ::testing::Not(HasSubstr("draws")));
  clock_.Advance(absl::Seconds(10));
  Meter(1, 55000);
  EXPECT_THAT(absl::StrJoin(NotFollowed(0), ""), HasSubstr("draws 55000 W"));
  // A read-back that matches clears its verdict, not the meter's.
  clock_.Advance(absl::Seconds(30));
  Apply({Power("dc1", 20000)}, json{{"status", "Accepted"}});
  others = Others();
  ASSERT_EQ(others.size(), 1u);
  Answer(others[0], Schedule(20000));
  ASSERT_EQ(NotFollowed(0).size(), 1u);
  EXPECT_THAT(NotFollowed(0)[0], ::testing::Not(HasSubstr("composite")));
  // It follows: cleared, and trusted again.
  sink_.Take();
  Meter(1, 19500);
  EXPECT_TRUE(NotFollowed(0).empty());
  bool cleared = false;
  for (const auto& e : sink_.Take()) {
    cleared |= e.has_fault_cleared() && e.fault_cleared().fault().code() == "SETPOINT_NOT_FOLLOWED";
  }
  EXPECT_TRUE(cleared);
  results = Apply({Power("dc1", 20000)}, json{{"status", "Accepted"}});
  EXPECT_EQ(results[0].status(), v1::SETPOINT_STATUS_ACCEPTED);
}

TEST_F(OcppDeviceBackendTest, AChargerWithoutGetCompositeScheduleIsCheckedByItsMeterOnly) {
  ConnectAndAccept();
  Apply({Power("dc1", 20000)}, json{{"status", "Accepted"}});
  std::vector<SentCall> others = Others();
  ASSERT_EQ(others.size(), 1u);
  CallOutcome outcome;
  outcome.error = CallError{"1", RpcErrorCode::kNotSupported, "NotSupported", "", json::object()};
  others[0].done(outcome);
  EXPECT_TRUE(NotFollowed(0).empty());
  clock_.Advance(absl::Minutes(1));
  Apply({Power("dc1", 20000)}, json{{"status", "Accepted"}});
  EXPECT_TRUE(Others().empty());  // not asked again
  // An unanswered read-back teaches nothing either way.
  Apply({Power("dc2", 20000)}, json{{"status", "Accepted"}});
  others = Others();
  ASSERT_EQ(others.size(), 1u);
  CallOutcome silent;
  silent.status = absl::DeadlineExceededError("no answer");
  others[0].done(silent);
  EXPECT_TRUE(NotFollowed(1).empty());
}

TEST(CompositeScheduleLimitTest, TheLimitInForceNow) {
  const absl::Time now = absl::FromUnixSeconds(1800000000);
  EXPECT_EQ(*CompositeScheduleLimitW({{"status", "Rejected"}}, now), std::nullopt);
  EXPECT_EQ(*CompositeScheduleLimitW({{"status", "Accepted"}}, now), std::nullopt);
  json conf = {
      {"status", "Accepted"},
      {"scheduleStart", FormatOcppTime(now - absl::Seconds(100))},
      {"chargingSchedule",
       {{"chargingRateUnit", "W"},
        {"chargingSchedulePeriod", json::array({{{"startPeriod", 0}, {"limit", 10000}},
                                                {{"startPeriod", 60}, {"limit", 20000}},
                                                {{"startPeriod", 300}, {"limit", 5000}}})}}}};
  EXPECT_EQ(*CompositeScheduleLimitW(conf, now), 20000);
  EXPECT_EQ(*CompositeScheduleLimitW(conf, now - absl::Seconds(50)), 10000);
  // The schedule's own startSchedule wins over scheduleStart.
  conf["chargingSchedule"]["startSchedule"] = FormatOcppTime(now - absl::Seconds(400));
  EXPECT_EQ(*CompositeScheduleLimitW(conf, now), 5000);
  // Not started yet: no period is in force.
  EXPECT_EQ(*CompositeScheduleLimitW(conf, now - absl::Seconds(500)), std::nullopt);
  conf["chargingSchedule"]["chargingRateUnit"] = "A";
  EXPECT_FALSE(CompositeScheduleLimitW(conf, now).ok());
}

}  // namespace
}  // namespace evgate::ocpp
