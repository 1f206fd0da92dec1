// The Central System against a fake link: the boot sequence (Pending,
// configuration, TriggerMessage, Accepted), the state requests after boot and
// after a reconnect, every charge point message, transactions through the
// book, and commands. Every CALL evgate sends is checked against the OCPP 1.6
// schemas. Bad inputs tried: an action only a Central System sends, an
// unknown action, a connector site.yaml does not map, MeterValues with a
// timestamp that is not a date, a GetConfiguration answered with a CALLERROR, a
// ChangeConfiguration rejected, the authorizer down, an unknown identity and a
// failed login of a connected charger.
#include "services/ocpp_bridge/central_system.h"

#include <cstdlib>
#include <deque>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/ocpp_bridge/ocpp_schemas.h"
#include "services/ocpp_bridge/rpc_frame.h"
#include "services/ocpp_bridge/testing/fake_link.h"

namespace evgate::ocpp {
namespace {

using nlohmann::json;
using testing::Answer;
using ::testing::Each;
using ::testing::ElementsAre;
using testing::FakeLink;
using ::testing::HasSubstr;
using testing::SentCall;

class FakeAuthorizer final : public IdTagAuthorizer {
 public:
  absl::StatusOr<json> Authorize(const std::string& id_tag, const std::string& evse_id) override {
    asked.push_back(absl::StrCat(id_tag, "@", evse_id));
    if (!up) return absl::UnavailableError("session service: connection refused");
    return json{{"status", id_tag == "BLOCKED1" ? "Blocked" : "Accepted"}};
  }
  bool up = true;
  std::vector<std::string> asked;
};

site::SiteConfig TestSite() {
  site::SiteConfig site;
  site::DeviceConfig ds60;
  ds60.id = "ds60-1";
  ds60.charge_point_id = "DS60-1";
  site.devices.push_back(ds60);
  site::DeviceConfig meter;
  meter.id = "grid-meter";
  site.devices.push_back(meter);
  site::StationConfig station;
  station.id = "dc-1";
  station.device = "ds60-1";
  for (int connector : {1, 2}) {
    site::EvseConfig evse;
    evse.id = absl::StrCat("dc-1-", connector);
    evse.connector = connector;
    station.evses.push_back(evse);
  }
  site.stations.push_back(station);
  return site;
}

class CentralSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    book_ = *TransactionBook::Open(
        std::string(std::getenv("TEST_TMPDIR")) + "/" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db",
        clock_);
    cs_ = std::make_unique<CentralSystem>(TestSite(), clock_, CentralSystemOptions{}, &authorizer_,
                                          book_.get());
  }

  // Connects DS60-1 on a new link.
  std::shared_ptr<FakeLink> Connect() {
    auto link = std::make_shared<FakeLink>("DS60-1");
    handler_ = cs_->OnConnected(link);
    return link;
  }
  std::variant<json, CallError> Send(const std::string& action, json payload) {
    return handler_(ocpp::Call{"m1", action, std::move(payload)});
  }
  json SendOk(const std::string& action, json payload) {
    std::variant<json, CallError> answer = Send(action, std::move(payload));
    if (auto* error = std::get_if<CallError>(&answer)) {
      ADD_FAILURE() << action << ": " << error->code_name << " " << error->description;
      return json();
    }
    // Our answers are valid CALLRESULTs too.
    std::optional<CallError> invalid =
        ValidateCallResult(OcppSchemas::Ocpp16(), action, CallResult{"m1", std::get<json>(answer)});
    EXPECT_FALSE(invalid.has_value()) << action << ": " << (invalid ? invalid->description : "");
    return std::get<json>(answer);
  }
  static json Boot() {
    return {{"chargePointVendor", "DS"},
            {"chargePointModel", "DS60"},
            {"chargeBoxSerialNumber", "SN-42"},
            {"firmwareVersion", "1.2.3"}};
  }
  v1::ChargePoint Ds60() const {
    for (const v1::ChargePoint& cp : cs_->ListChargePoints()) {
      if (cp.charge_point_id() == "DS60-1") return cp;
    }
    return {};
  }
  // Connect + boot + configuration answered + second boot.
  std::shared_ptr<FakeLink> ConnectAndAccept() {
    auto link = Connect();
    SendOk("BootNotification", Boot());
    link->TakeAllActions();  // GetConfiguration ... TriggerMessage, all "Accepted"
    EXPECT_EQ(SendOk("BootNotification", Boot())["status"], "Accepted");
    link->TakeAllActions();
    return link;
  }

  FakeClock clock_;
  FakeAuthorizer authorizer_;
  std::unique_ptr<TransactionBook> book_;
  std::unique_ptr<CentralSystem> cs_;
  RpcEndpoint::CallHandler handler_;
};

TEST_F(CentralSystemTest, ListsConfiguredChargePointsDisconnected) {
  std::vector<v1::ChargePoint> list = cs_->ListChargePoints();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].charge_point_id(), "DS60-1");
  EXPECT_EQ(list[0].device_id(), "ds60-1");
  EXPECT_EQ(list[0].connection_state(), v1::CHARGE_POINT_CONNECTION_STATE_DISCONNECTED);
}

TEST_F(CentralSystemTest, FirstBootIsPendingUntilConfiguredThenAccepted) {
  auto link = Connect();
  EXPECT_EQ(Ds60().connection_state(), v1::CHARGE_POINT_CONNECTION_STATE_CONNECTED);
  EXPECT_EQ(Ds60().remote_address(), "192.0.2.10:50412");
  json answer = SendOk("BootNotification", Boot());
  EXPECT_EQ(answer["status"], "Pending");
  EXPECT_EQ(answer["interval"], 30);
  EXPECT_EQ(Ds60().registration_status(), v1::REGISTRATION_STATUS_PENDING);
  EXPECT_EQ(Ds60().vendor(), "DS");
  EXPECT_EQ(Ds60().serial_number(), "SN-42");
  EXPECT_EQ(Ds60().firmware_version(), "1.2.3");

  std::optional<SentCall> get = link->Take();
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->action, "GetConfiguration");
  EXPECT_EQ(Ds60().pending_calls(), 1u);
  Answer(*get,
         {{"configurationKey",
           json::array({{{"key", "SupportedFeatureProfiles"},
                         {"readonly", true},
                         {"value", "Core,SmartCharging,RemoteTrigger"}},
                        {{"key", "ChargeProfileMaxStackLevel"}, {"readonly", true}, {"value", "8"}},
                        {{"key", "ChargingScheduleAllowedChargingRateUnit"},
                         {"readonly", true},
                         {"value", "Current,Power"}}})},
          {"unknownKey", json::array({"MeterValuesSampledData"})}});
  std::optional<SentCall> interval = link->Take();
  ASSERT_TRUE(interval.has_value());
  EXPECT_EQ(interval->payload, json({{"key", "MeterValueSampleInterval"}, {"value", "10"}}));
  Answer(*interval, {{"status", "Accepted"}});
  std::optional<SentCall> sampled = link->Take();
  ASSERT_TRUE(sampled.has_value());
  EXPECT_EQ(sampled->payload["key"], "MeterValuesSampledData");
  Answer(*sampled, {{"status", "Rejected"}});
  std::optional<SentCall> trigger = link->Take();
  ASSERT_TRUE(trigger.has_value());
  EXPECT_EQ(trigger->action, "TriggerMessage");
  EXPECT_EQ(trigger->payload, json({{"requestedMessage", "BootNotification"}}));
  Answer(*trigger, {{"status", "Accepted"}});

  std::optional<ChargerConfiguration> config = cs_->Configuration("DS60-1");
  ASSERT_TRUE(config.has_value());
  EXPECT_TRUE(config->read);
  EXPECT_THAT(config->feature_profiles, ElementsAre("Core", "SmartCharging", "RemoteTrigger"));
  EXPECT_EQ(config->max_stack_level, 8);
  EXPECT_THAT(config->allowed_rate_units, ElementsAre("Current", "Power"));
  EXPECT_EQ(config->sample_interval_s, 10);
  EXPECT_THAT(config->problems, ElementsAre("MeterValuesSampledData: unknown key",
                                            "MeterValuesSampledData: Rejected"));

  answer = SendOk("BootNotification", Boot());
  EXPECT_EQ(answer["status"], "Accepted");
  EXPECT_EQ(answer["interval"], 300);
  EXPECT_EQ(Ds60().registration_status(), v1::REGISTRATION_STATUS_ACCEPTED);
  // Then the state of every connector, right away.
  EXPECT_THAT(link->TakeAllActions(),
              ElementsAre(R"(TriggerMessage {"requestedMessage":"StatusNotification"})",
                          R"(TriggerMessage {"connectorId":1,"requestedMessage":"MeterValues"})",
                          R"(TriggerMessage {"connectorId":2,"requestedMessage":"MeterValues"})"));
  EXPECT_EQ(Ds60().pending_calls(), 0u);
}

// Every CALL each way is counted by action and result (the operators'
// evgate_ocpp_messages_total).
TEST_F(CentralSystemTest, CountsMessagesByDirectionActionAndResult) {
  auto link = ConnectAndAccept();  // 2 BootNotifications in, 6 calls out, all answered
  std::optional<SentCall> call;
  SendOk("Heartbeat", json::object());
  // A charger sending what only a Central System sends: NotSupported.
  Send("Reset", {{"type", "Soft"}});
  ASSERT_TRUE(cs_->Call("DS60-1", "Reset", {{"type", "Soft"}}, nullptr).ok());
  call = link->Take();
  ASSERT_TRUE(call.has_value());
  CallOutcome timeout;
  timeout.status = absl::DeadlineExceededError("no answer");
  call->done(timeout);
  std::map<std::string, uint64_t> counts;
  const v1::ChargePoint ds60 = Ds60();
  for (const v1::OcppMessageCount& m : ds60.messages()) {
    counts[absl::StrCat(m.direction(), " ", m.action(), " ", m.result())] = m.count();
  }
  EXPECT_EQ(counts["in BootNotification ok"], 2u);
  EXPECT_EQ(counts["in Heartbeat ok"], 1u);
  EXPECT_EQ(counts["out GetConfiguration ok"], 1u);
  EXPECT_EQ(counts["out Reset timeout"], 1u);
  EXPECT_EQ(counts["in Reset NotSupported"], 1u);
}

TEST_F(CentralSystemTest, AConfigurationTheChargerRefusesStillEndsAccepted) {
  auto link = Connect();
  SendOk("BootNotification", Boot());
  std::optional<SentCall> get = link->Take();
  ASSERT_TRUE(get.has_value());
  CallOutcome refused;
  refused.error = MakeCallError("x", RpcErrorCode::kNotSupported, "no");
  refused.error->code_name = "NotSupported";
  get->done(refused);
  link->TakeAllActions();
  std::optional<ChargerConfiguration> config = cs_->Configuration("DS60-1");
  ASSERT_TRUE(config.has_value());
  EXPECT_FALSE(config->read);
  EXPECT_THAT(config->problems, ElementsAre(HasSubstr("GetConfiguration: NotSupported")));
  EXPECT_EQ(SendOk("BootNotification", Boot())["status"], "Accepted");
}

TEST_F(CentralSystemTest, ADisconnectDuringConfigurationStartsItAgainAtTheNextBoot) {
  auto link = Connect();
  SendOk("BootNotification", Boot());
  std::optional<SentCall> get = link->Take();
  ASSERT_TRUE(get.has_value());
  CallOutcome gone;
  gone.status = absl::UnavailableError("connection ended");
  get->done(gone);
  cs_->OnDisconnected(*link, "EOF");
  EXPECT_FALSE(cs_->Configuration("DS60-1").has_value());
  auto again = Connect();
  EXPECT_EQ(SendOk("BootNotification", Boot())["status"], "Pending");
  std::optional<SentCall> retry = again->Take();
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->action, "GetConfiguration");
}

TEST_F(CentralSystemTest, AReconnectWithoutBootAsksForTheStateAtOnce) {
  auto first = ConnectAndAccept();
  cs_->OnDisconnected(*first, "network");
  EXPECT_EQ(Ds60().connection_state(), v1::CHARGE_POINT_CONNECTION_STATE_DISCONNECTED);
  EXPECT_FALSE(Ds60().has_connected_since());
  auto second = Connect();
  EXPECT_THAT(second->TakeAllActions(),
              ElementsAre(HasSubstr("StatusNotification"), HasSubstr("\"connectorId\":1"),
                          HasSubstr("\"connectorId\":2")));
}

TEST_F(CentralSystemTest, TheOldLinksDisconnectAfterAReplacementChangesNothing) {
  auto old_link = Connect();
  auto new_link = Connect();
  cs_->OnDisconnected(*old_link, "replaced by a new connection");
  EXPECT_EQ(Ds60().connection_state(), v1::CHARGE_POINT_CONNECTION_STATE_CONNECTED);
  EXPECT_TRUE(cs_->Call("DS60-1", "ClearCache", json::object(), [](CallOutcome) {}).ok());
  EXPECT_FALSE(old_link->Take().has_value());
  EXPECT_TRUE(new_link->Take().has_value());
}

TEST_F(CentralSystemTest, AChargerThatNeverBootsIsAskedToAfterBootWait) {
  auto link = Connect();
  cs_->Tick();
  EXPECT_FALSE(link->Take().has_value());
  clock_.Advance(absl::Seconds(5));
  cs_->Tick();
  EXPECT_THAT(link->TakeAllActions(),
              ElementsAre(R"(TriggerMessage {"requestedMessage":"BootNotification"})"));
  clock_.Advance(absl::Seconds(60));
  cs_->Tick();  // asked once per connection
  EXPECT_FALSE(link->Take().has_value());
}

TEST_F(CentralSystemTest, HeartbeatAndStatusNotifications) {
  auto link = ConnectAndAccept();
  clock_.Advance(absl::Seconds(1));
  json heartbeat = SendOk("Heartbeat", json::object());
  EXPECT_EQ(heartbeat["currentTime"], FormatOcppTime(clock_.Now()));
  EXPECT_TRUE(Ds60().has_last_heartbeat());

  SendOk("StatusNotification", {{"connectorId", 2},
                                {"status", "Faulted"},
                                {"errorCode", "OtherError"},
                                {"vendorErrorCode", "023010"},
                                {"info", "door open"},
                                {"timestamp", "2027-01-15T08:00:00Z"}});
  SendOk("StatusNotification",
         {{"connectorId", 0}, {"status", "Available"}, {"errorCode", "NoError"}});
  SendOk("StatusNotification",
         {{"connectorId", 1}, {"status", "Charging"}, {"errorCode", "NoError"}});
  SendOk("StatusNotification",
         {{"connectorId", 7}, {"status", "Available"}, {"errorCode", "NoError"}});
  v1::ChargePoint cp = Ds60();
  ASSERT_EQ(cp.connectors_size(), 4);
  EXPECT_EQ(cp.connectors(0).connector_id(), 0u);
  EXPECT_EQ(cp.connectors(0).evse_id(), "");
  EXPECT_EQ(cp.connectors(1).evse_id(), "dc-1-1");
  EXPECT_EQ(cp.connectors(1).status(), v1::CONNECTOR_STATUS_CHARGING);
  EXPECT_EQ(cp.connectors(2).status(), v1::CONNECTOR_STATUS_FAULTED);
  EXPECT_EQ(cp.connectors(2).error_code(), v1::OCPP_ERROR_CODE_OTHER_ERROR);
  EXPECT_EQ(cp.connectors(2).vendor_error_code(), "023010");
  EXPECT_EQ(cp.connectors(2).info(), "door open");
  EXPECT_EQ(cp.connectors(2).updated_at().seconds(),
            absl::ToUnixSeconds(*ParseOcppTime("2027-01-15T08:00:00Z")));
  EXPECT_EQ(cp.connectors(3).connector_id(), 7u);  // kept, though site.yaml has no EVSE there
  // A later status replaces the earlier one.
  SendOk("StatusNotification",
         {{"connectorId", 2}, {"status", "Available"}, {"errorCode", "NoError"}});
  EXPECT_EQ(Ds60().connectors(2).status(), v1::CONNECTOR_STATUS_AVAILABLE);
  EXPECT_EQ(Ds60().connectors(2).vendor_error_code(), "");
}

TEST_F(CentralSystemTest, MeterValuesKeepTheLatestReadingPerConnector) {
  auto link = ConnectAndAccept();
  auto sample = [](const char* time, const char* energy) {
    return json{{"timestamp", time},
                {"sampledValue", json::array({{{"value", energy}, {"unit", "kWh"}}})}};
  };
  SendOk("MeterValues", {{"connectorId", 1},
                         {"transactionId", 5},
                         {"meterValue", json::array({sample("2027-01-15T08:00:10Z", "1.5"),
                                                     sample("2027-01-15T08:00:20Z", "2.5")})}});
  // An older sample arriving late (queued while offline) does not go back.
  SendOk("MeterValues", {{"connectorId", 1},
                         {"meterValue", json::array({sample("2027-01-15T08:00:15Z", "2.0")})}});
  // A timestamp that is no date (the endpoint's schema check refuses it
  // first; the handler must not trust that): that meter value is skipped.
  SendOk("MeterValues",
         {{"connectorId", 1}, {"meterValue", json::array({sample("yesterday", "9")})}});
  std::optional<MeterReading> reading = cs_->LatestMeterReading("DS60-1", 1);
  ASSERT_TRUE(reading.has_value());
  EXPECT_EQ(reading->energy_import_wh, 2500);
  EXPECT_FALSE(cs_->LatestMeterReading("DS60-1", 2).has_value());
}

TEST_F(CentralSystemTest, AVehiclesSocLeavesWithIt) {
  auto link = ConnectAndAccept();
  SendOk("MeterValues",
         {{"connectorId", 1},
          {"meterValue", json::array({{{"timestamp", "2027-01-15T08:00:10Z"},
                                       {"sampledValue", json::array({{{"value", "80"},
                                                                      {"measurand", "SoC"},
                                                                      {"unit", "Percent"},
                                                                      {"location", "EV"}}})}}})}});
  ASSERT_EQ(cs_->LatestMeterReading("DS60-1", 1)->soc_pct, 80);
  SendOk("StatusNotification",
         {{"connectorId", 1}, {"status", "Available"}, {"errorCode", "NoError"}});
  EXPECT_FALSE(cs_->LatestMeterReading("DS60-1", 1)->soc_pct.has_value())
      << "the next vehicle's SOC is not known until its own meter values";
}

TEST_F(CentralSystemTest, AuthorizeAsksTheAuthorizer) {
  auto link = ConnectAndAccept();
  EXPECT_EQ(SendOk("Authorize", {{"idTag", "04A1B2C3"}}),
            json({{"idTagInfo", {{"status", "Accepted"}}}}));
  EXPECT_EQ(SendOk("Authorize", {{"idTag", "BLOCKED1"}})["idTagInfo"]["status"], "Blocked");
  authorizer_.up = false;
  std::variant<json, CallError> down = Send("Authorize", {{"idTag", "04A1B2C3"}});
  ASSERT_TRUE(std::holds_alternative<CallError>(down));
  EXPECT_EQ(std::get<CallError>(down).code, RpcErrorCode::kInternalError);
  EXPECT_THAT(std::get<CallError>(down).description, HasSubstr("connection refused"));
}

TEST_F(CentralSystemTest, TransactionsAreIdempotentAndStoppedOnce) {
  auto link = ConnectAndAccept();
  const json start = {{"connectorId", 2},
                      {"idTag", "04A1B2C3"},
                      {"meterStart", 1000},
                      {"timestamp", "2027-01-15T08:00:00Z"}};
  json first = SendOk("StartTransaction", start);
  EXPECT_EQ(first["idTagInfo"]["status"], "Accepted");
  EXPECT_THAT(authorizer_.asked, ElementsAre("04A1B2C3@dc-1-2"));
  // The charger did not get our answer and retries after reconnecting.
  link = Connect();
  link->TakeAllActions();
  json again = SendOk("StartTransaction", start);
  EXPECT_EQ(again["transactionId"], first["transactionId"]);

  const int64_t id = first["transactionId"].get<int64_t>();
  const json stop = {
      {"transactionId", id},
      {"meterStop", 21000},
      {"timestamp", "2027-01-15T09:00:00Z"},
      {"reason", "EVDisconnected"},
      {"idTag", "04A1B2C3"},
      {"transactionData", json::array({{{"timestamp", "2027-01-15T09:00:00Z"},
                                        {"sampledValue", json::array({{{"value", "21000"}}})}}})}};
  EXPECT_EQ(SendOk("StopTransaction", stop)["idTagInfo"]["status"], "Accepted");
  SendOk("StopTransaction", stop);
  // The stop's idTagInfo is asked for the EVSE of its transaction: the card's
  // own session there is not a concurrent one (it was, asked site-wide).
  EXPECT_THAT(authorizer_.asked, Each("04A1B2C3@dc-1-2"));
  std::optional<TransactionRecord> record = *book_->Get(id);
  ASSERT_TRUE(record.has_value() && record->stop.has_value());
  EXPECT_EQ(record->stop->meter_stop_wh, 21000);
  EXPECT_THAT(record->stop->transaction_data_json, HasSubstr("21000"));
  // A stop of a transaction evgate never gave is answered and kept once.
  json unknown = stop;
  unknown["transactionId"] = 424242;
  unknown.erase("idTag");
  EXPECT_EQ(SendOk("StopTransaction", unknown), json::object());
  EXPECT_EQ(*book_->OrphanStopCount(), 1);
}

TEST_F(CentralSystemTest, AStartWithTheAuthorizerDownIsRecordedAndTheRetryGetsTheSameId) {
  auto link = ConnectAndAccept();
  const json start = {{"connectorId", 1},
                      {"idTag", "04A1B2C3"},
                      {"meterStart", 0},
                      {"timestamp", "2027-01-15T08:00:00Z"}};
  authorizer_.up = false;
  std::variant<json, CallError> failed = Send("StartTransaction", start);
  ASSERT_TRUE(std::holds_alternative<CallError>(failed));
  EXPECT_EQ(std::get<CallError>(failed).code, RpcErrorCode::kInternalError);
  EXPECT_EQ(book_->OpenTransactions("DS60-1")->size(), 1u);
  authorizer_.up = true;
  json retry = SendOk("StartTransaction", start);
  EXPECT_EQ(retry["transactionId"], (*book_->OpenTransactions("DS60-1"))[0].transaction_id);
}

TEST_F(CentralSystemTest, OtherMessages) {
  auto link = ConnectAndAccept();
  EXPECT_EQ(SendOk("DataTransfer", {{"vendorId", "com.example"}, {"messageId", "x"}}),
            json({{"status", "UnknownVendorId"}}));
  EXPECT_EQ(SendOk("FirmwareStatusNotification", {{"status", "Downloading"}}), json::object());
  EXPECT_EQ(SendOk("DiagnosticsStatusNotification", {{"status", "Uploaded"}}), json::object());
  std::variant<json, CallError> reset = Send("Reset", {{"type", "Soft"}});
  ASSERT_TRUE(std::holds_alternative<CallError>(reset));
  EXPECT_EQ(std::get<CallError>(reset).code, RpcErrorCode::kNotSupported);
  std::variant<json, CallError> unknown = Send("Teleport", json::object());
  ASSERT_TRUE(std::holds_alternative<CallError>(unknown));
  EXPECT_EQ(std::get<CallError>(unknown).code, RpcErrorCode::kNotImplemented);
}

TEST_F(CentralSystemTest, CommandsNeedAConfiguredConnectedChargePoint) {
  absl::Status unknown = cs_->Call("NOPE", "ClearCache", json::object(), nullptr);
  EXPECT_TRUE(absl::IsNotFound(unknown)) << unknown;
  absl::Status offline = cs_->Call("DS60-1", "ClearCache", json::object(), nullptr);
  EXPECT_TRUE(absl::IsUnavailable(offline)) << offline;
  auto link = Connect();
  bool answered = false;
  ASSERT_TRUE(cs_->Call("DS60-1", "ClearCache", json::object(),
                        [&](CallOutcome outcome) { answered = outcome.result.has_value(); })
                  .ok());
  std::optional<SentCall> call = link->Take();
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(Ds60().pending_calls(), 1u);
  Answer(*call, {{"status", "Accepted"}});
  EXPECT_TRUE(answered);
  EXPECT_EQ(Ds60().pending_calls(), 0u);
}

TEST_F(CentralSystemTest, RefusedConnectionsAreVisible) {
  cs_->OnRefused("EVIL-1", "198.51.100.7:4000", 404, "unknown identity");
  cs_->OnRefused("EVIL-1", "198.51.100.7:4001", 404, "unknown identity");
  cs_->OnRefused("", "198.51.100.8:4000", 0, "TLS handshake failed");
  cs_->OnRefused("DS60-1", "198.51.100.9:4000", 401, "wrong password");
  std::vector<v1::ChargePoint> list = cs_->ListChargePoints();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].charge_point_id(), "DS60-1");
  EXPECT_EQ(list[0].connection_state(), v1::CHARGE_POINT_CONNECTION_STATE_REJECTED);
  EXPECT_EQ(list[1].charge_point_id(), "EVIL-1");
  EXPECT_EQ(list[1].connection_state(), v1::CHARGE_POINT_CONNECTION_STATE_REJECTED);
  EXPECT_EQ(list[1].remote_address(), "198.51.100.7:4001");
  // An impostor failing to log in as a connected charger does not mark it.
  auto link = Connect();
  cs_->OnRefused("DS60-1", "198.51.100.9:4001", 401, "wrong password");
  EXPECT_EQ(Ds60().connection_state(), v1::CHARGE_POINT_CONNECTION_STATE_CONNECTED);
  EXPECT_EQ(Ds60().remote_address(), "192.0.2.10:50412");
}

TEST_F(CentralSystemTest, UnknownIdentitiesAreBounded) {
  for (int i = 0; i < 200; ++i) cs_->OnRefused(absl::StrCat("X", 1000 + i), "a:1", 404, "unknown");
  std::vector<v1::ChargePoint> list = cs_->ListChargePoints();
  ASSERT_EQ(list.size(), 1u + 50u);
  EXPECT_EQ(list[1].charge_point_id(), "X1150");  // the 50 most recent
  EXPECT_EQ(list.back().charge_point_id(), "X1199");
}

}  // namespace
}  // namespace evgate::ocpp
