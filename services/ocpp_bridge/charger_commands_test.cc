// SendChargerCommand <-> OCPP CALLs. Every typed command's CALL is valid
// against the 1.6 schemas. Bad inputs tried: no command, raw without an
// action, raw payloads that are not JSON or not an object, Reset / trigger /
// availability left UNSPECIFIED, connector 0 to unlock, an empty
// configuration key.
#include "services/ocpp_bridge/charger_commands.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/ocpp_bridge/ocpp_schemas.h"
#include "services/ocpp_bridge/rpc_frame.h"

namespace evgate::ocpp {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

ChargerCall Convert(const v1::SendChargerCommandRequest& request) {
  absl::StatusOr<ChargerCall> call = ToCharger(request);
  EXPECT_TRUE(call.ok()) << call.status();
  if (!call.ok()) return {};
  std::optional<CallError> invalid =
      ValidateCall(OcppSchemas::Ocpp16(), ocpp::Call{"1", call->action, call->payload});
  EXPECT_FALSE(invalid.has_value()) << call->action << ": " << invalid->description;
  return *call;
}

TEST(ChargerCommandsTest, TypedCommands) {
  v1::SendChargerCommandRequest r;
  r.mutable_reset()->set_type(v1::RESET_TYPE_HARD);
  EXPECT_EQ(Convert(r).payload, json({{"type", "Hard"}}));
  r.mutable_unlock_connector()->set_connector_id(2);
  EXPECT_EQ(Convert(r).action, "UnlockConnector");
  r.mutable_change_availability()->set_connector_id(0);
  r.mutable_change_availability()->set_availability(v1::AVAILABILITY_INOPERATIVE);
  EXPECT_EQ(Convert(r).payload, json({{"connectorId", 0}, {"type", "Inoperative"}}));
  r.mutable_trigger_message()->set_requested_message(v1::OCPP_TRIGGER_MESSAGE_TYPE_METER_VALUES);
  r.mutable_trigger_message()->set_connector_id(1);
  EXPECT_EQ(Convert(r).payload, json({{"requestedMessage", "MeterValues"}, {"connectorId", 1}}));
  r.mutable_change_configuration()->set_key("HeartbeatInterval");
  r.mutable_change_configuration()->set_value("60");
  EXPECT_EQ(Convert(r).payload, json({{"key", "HeartbeatInterval"}, {"value", "60"}}));
  r.mutable_get_configuration();
  EXPECT_EQ(Convert(r).payload, json::object());
  r.mutable_get_configuration()->add_keys("HeartbeatInterval");
  EXPECT_EQ(Convert(r).payload, json({{"key", {"HeartbeatInterval"}}}));
  r.mutable_raw()->set_action("ClearCache");
  r.mutable_raw()->set_payload_json("{}");
  EXPECT_EQ(Convert(r).action, "ClearCache");
}

TEST(ChargerCommandsTest, BadRequestsAreInvalidArguments) {
  auto error = [](const v1::SendChargerCommandRequest& r) {
    absl::StatusOr<ChargerCall> call = ToCharger(r);
    EXPECT_TRUE(absl::IsInvalidArgument(call.status())) << call.status();
    return std::string(call.status().message());
  };
  v1::SendChargerCommandRequest r;
  EXPECT_THAT(error(r), HasSubstr("no command"));
  r.mutable_raw()->set_payload_json("{}");
  EXPECT_THAT(error(r), HasSubstr("raw.action"));
  r.mutable_raw()->set_action("DataTransfer");
  r.mutable_raw()->set_payload_json("{\"vendorId\":");
  EXPECT_THAT(error(r), HasSubstr("not a JSON object"));
  r.mutable_raw()->set_payload_json("[1]");
  EXPECT_THAT(error(r), HasSubstr("not a JSON object"));
  r.mutable_reset();
  EXPECT_THAT(error(r), HasSubstr("SOFT or HARD"));
  r.mutable_unlock_connector();
  EXPECT_THAT(error(r), HasSubstr("1 or more"));
  r.mutable_change_availability();
  EXPECT_THAT(error(r), HasSubstr("OPERATIVE"));
  r.mutable_trigger_message();
  EXPECT_THAT(error(r), HasSubstr("requested_message"));
  r.mutable_change_configuration();
  EXPECT_THAT(error(r), HasSubstr("key must be set"));
}

TEST(ChargerCommandsTest, Responses) {
  ChargerCall get{"GetConfiguration", json::object()};
  CallOutcome outcome;
  outcome.result =
      json{{"configurationKey",
            json::array({{{"key", "HeartbeatInterval"}, {"readonly", false}, {"value", "300"}},
                         {{"key", "SupportedFeatureProfiles"}, {"readonly", true}}})},
           {"unknownKey", {"Nope"}}};
  v1::SendChargerCommandResponse response = FromCharger(get, outcome);
  ASSERT_EQ(response.configuration_keys_size(), 2);
  EXPECT_EQ(response.configuration_keys(0).value(), "300");
  EXPECT_FALSE(response.configuration_keys(1).has_value());
  EXPECT_TRUE(response.configuration_keys(1).readonly());
  EXPECT_THAT(response.unknown_keys(), ElementsAre("Nope"));
  EXPECT_EQ(response.status(), "");

  CallOutcome accepted;
  accepted.result = json{{"status", "Scheduled"}};
  response = FromCharger({"Reset", json::object()}, accepted);
  EXPECT_EQ(response.status(), "Scheduled");
  EXPECT_EQ(response.response_payload_json(), R"({"status":"Scheduled"})");

  CallOutcome refused;
  refused.error = MakeCallError("1", RpcErrorCode::kNotSupported, "no reset here");
  refused.error->code_name = "NotSupported";
  response = FromCharger({"Reset", json::object()}, refused);
  EXPECT_EQ(response.call_error().error_code(), "NotSupported");
  EXPECT_EQ(response.call_error().error_description(), "no reset here");
  EXPECT_EQ(response.status(), "");
}

}  // namespace
}  // namespace evgate::ocpp
