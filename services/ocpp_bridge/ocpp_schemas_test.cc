#include "services/ocpp_bridge/ocpp_schemas.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace evgate::ocpp {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;

std::optional<SchemaViolation> CheckRequest(const char* action, const char* payload) {
  const JsonSchema* schema = OcppSchemas::Ocpp16().Request(action);
  EXPECT_NE(schema, nullptr) << action;
  if (schema == nullptr) return SchemaViolation{SchemaRule::kType, "", "no schema"};
  return schema->Validate(json::parse(payload));
}

TEST(OcppSchemasTest, TheCompiledIn16SetHasEveryCoreAction) {
  // OCPP 1.6J core, firmware, local list, reservation, smart charging and
  // remote trigger profiles.
  EXPECT_THAT(OcppSchemas::Ocpp16().Actions(), IsSupersetOf({"Authorize",
                                                             "BootNotification",
                                                             "CancelReservation",
                                                             "ChangeAvailability",
                                                             "ChangeConfiguration",
                                                             "ClearCache",
                                                             "ClearChargingProfile",
                                                             "DataTransfer",
                                                             "DiagnosticsStatusNotification",
                                                             "FirmwareStatusNotification",
                                                             "GetCompositeSchedule",
                                                             "GetConfiguration",
                                                             "GetDiagnostics",
                                                             "GetLocalListVersion",
                                                             "Heartbeat",
                                                             "MeterValues",
                                                             "RemoteStartTransaction",
                                                             "RemoteStopTransaction",
                                                             "ReserveNow",
                                                             "Reset",
                                                             "SendLocalList",
                                                             "SetChargingProfile",
                                                             "StartTransaction",
                                                             "StatusNotification",
                                                             "StopTransaction",
                                                             "TriggerMessage",
                                                             "UnlockConnector",
                                                             "UpdateFirmware"}));
  EXPECT_EQ(OcppSchemas::Ocpp16().Request("NoSuchAction"), nullptr);
  EXPECT_EQ(OcppSchemas::Ocpp16().Response("heartbeat"), nullptr);  // case matters
}

TEST(OcppSchemasTest, ValidMessagesOfTheDs60AndIce22Pass) {
  EXPECT_EQ(CheckRequest("BootNotification", R"({
      "chargePointVendor": "DS", "chargePointModel": "DS60",
      "chargePointSerialNumber": "DS60-2026-0042", "firmwareVersion": "1.4.2"})"),
            std::nullopt);
  EXPECT_EQ(CheckRequest("StartTransaction", R"({
      "connectorId": 1, "idTag": "04D4E5F6071829", "meterStart": 1200,
      "timestamp": "2026-12-05T19:30:00Z"})"),
            std::nullopt);
  EXPECT_EQ(CheckRequest("MeterValues", R"({
      "connectorId": 2, "transactionId": 17, "meterValue": [{
        "timestamp": "2026-12-05T19:31:00.250+01:00",
        "sampledValue": [
          {"value": "15000", "measurand": "Power.Active.Import", "unit": "W"},
          {"value": "63", "measurand": "SoC", "unit": "Percent", "context": "Sample.Periodic"},
          {"value": "31.5", "measurand": "Current.Import", "phase": "L1", "unit": "A"}]}]})"),
            std::nullopt);
  // The live setpoint as a TxProfile: multipleOf 0.1 must take 9.1 kW.
  EXPECT_EQ(CheckRequest("SetChargingProfile", R"({
      "connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 2, "transactionId": 17, "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Absolute",
        "validTo": "2026-12-05T19:31:03Z",
        "chargingSchedule": {"chargingRateUnit": "W",
          "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 9100.1}]}}})"),
            std::nullopt);
  const JsonSchema* conf = OcppSchemas::Ocpp16().Response("BootNotification");
  ASSERT_NE(conf, nullptr);
  EXPECT_EQ(conf->Validate(json::parse(R"({"status": "Accepted",
      "currentTime": "2026-12-05T19:30:00Z", "interval": 300})")),
            std::nullopt);
}

TEST(OcppSchemasTest, InvalidMessagesNameTheRuleAndTheField) {
  std::optional<SchemaViolation> v =
      CheckRequest("Authorize", R"({"idTag": "012345678901234567890"})");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->rule, SchemaRule::kMaxLength);
  EXPECT_EQ(v->pointer, "/idTag");

  v = CheckRequest("StatusNotification",
                   R"({"connectorId": 1, "errorCode": "NoError", "status": "Plugged"})");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->rule, SchemaRule::kEnum);
  EXPECT_EQ(v->pointer, "/status");

  v = CheckRequest("StartTransaction", R"({"connectorId": "1", "idTag": "A",
      "meterStart": 0, "timestamp": "2026-12-05T19:30:00Z"})");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->rule, SchemaRule::kType);

  v = CheckRequest("StartTransaction", R"({"connectorId": 1, "idTag": "A", "meterStart": 0})");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->rule, SchemaRule::kRequired);
  EXPECT_THAT(v->message, HasSubstr("timestamp"));

  v = CheckRequest("Heartbeat", R"({"now": 1})");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->rule, SchemaRule::kAdditionalProperty);

  v = CheckRequest("StopTransaction", R"({"transactionId": 3, "meterStop": 10,
      "timestamp": "2026-12-05 19:30"})");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->rule, SchemaRule::kFormat);

  v = CheckRequest("SetChargingProfile", R"({"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 2, "stackLevel": 1, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {"chargingRateUnit": "A",
          "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.05}]}}})");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->rule, SchemaRule::kMultipleOf);
  EXPECT_EQ(v->pointer, "/csChargingProfiles/chargingSchedule/chargingSchedulePeriod/0/limit");
}

std::string ReadRunfile(const std::string& path) {
  const char* dir = std::getenv("TEST_SRCDIR");
  for (const std::string& candidate :
       {std::string(dir ? dir : ".") + "/npm/" + path, "external/npm/" + path}) {
    std::ifstream in(candidate);
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      return text.str();
    }
  }
  ADD_FAILURE() << "runfile npm/" << path << " not found";
  return "";
}

// The validator covers what the newer OCPP versions' schemas use too (the
// upstream CSMS may speak 2.0.1 one day).
TEST(OcppSchemasTest, The201And21SchemaFilesCompile) {
  for (const char* file : {"ocpp2_0_1.json", "ocpp2_1.json"}) {
    absl::StatusOr<OcppSchemas> schemas =
        OcppSchemas::Parse(ReadRunfile(std::string("ocpp-rpc/lib/schemas/") + file));
    ASSERT_TRUE(schemas.ok()) << file << ": " << schemas.status();
    EXPECT_THAT(schemas->Actions(), Contains("BootNotification")) << file;
    EXPECT_GT(schemas->Actions().size(), 60u) << file;
  }
  absl::StatusOr<OcppSchemas> v21 =
      OcppSchemas::Parse(ReadRunfile("ocpp-rpc/lib/schemas/ocpp2_1.json"));
  ASSERT_TRUE(v21.ok());
  EXPECT_NE(v21->Request("NotifyPeriodicEventStream"), nullptr);  // a SEND
  EXPECT_EQ(v21->Response("NotifyPeriodicEventStream"), nullptr);
}

TEST(OcppSchemasTest, BadSchemaFilesAreRefusedWithTheReason) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"{}", "not a JSON array"},
           {"[1", "not a JSON array"},
           {R"([{"type": "object"}])", "without a string \"$id\""},
           {R"([{"$id": "Authorize.req"}])", "is not urn:"},
           {R"([{"$id": "urn:Authorize.request"}])", "names neither a request"},
           {R"([{"$id": "urn:Authorize.conf"}])", "action Authorize has no request schema"},
           {R"([{"$id": "urn:Authorize.req"}])", "action Authorize has no response schema"},
           {R"([{"$id": "urn:A.req"}, {"$id": "urn:A.req"}])", "appears twice"},
           {R"([{"$id": "urn:A.req", "pattern": "x"}])", "urn:A.req: schema #: pattern"},
       }) {
    absl::StatusOr<OcppSchemas> schemas = OcppSchemas::Parse(c.text);
    ASSERT_FALSE(schemas.ok()) << c.text;
    EXPECT_THAT(schemas.status().message(), HasSubstr(c.message)) << c.text;
  }
}

}  // namespace
}  // namespace evgate::ocpp
