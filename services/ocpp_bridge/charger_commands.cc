#include "services/ocpp_bridge/charger_commands.h"

#include "absl/strings/str_cat.h"

namespace evgate::ocpp {
namespace {

using nlohmann::json;

absl::StatusOr<const char*> TriggerName(v1::OcppTriggerMessageType type) {
  switch (type) {
    case v1::OCPP_TRIGGER_MESSAGE_TYPE_BOOT_NOTIFICATION:
      return "BootNotification";
    case v1::OCPP_TRIGGER_MESSAGE_TYPE_DIAGNOSTICS_STATUS_NOTIFICATION:
      return "DiagnosticsStatusNotification";
    case v1::OCPP_TRIGGER_MESSAGE_TYPE_FIRMWARE_STATUS_NOTIFICATION:
      return "FirmwareStatusNotification";
    case v1::OCPP_TRIGGER_MESSAGE_TYPE_HEARTBEAT:
      return "Heartbeat";
    case v1::OCPP_TRIGGER_MESSAGE_TYPE_METER_VALUES:
      return "MeterValues";
    case v1::OCPP_TRIGGER_MESSAGE_TYPE_STATUS_NOTIFICATION:
      return "StatusNotification";
    default:
      return absl::InvalidArgumentError("trigger_message.requested_message must be set");
  }
}

}  // namespace

absl::StatusOr<ChargerCall> ToCharger(const v1::SendChargerCommandRequest& request) {
  switch (request.command_case()) {
    case v1::SendChargerCommandRequest::kRaw: {
      if (request.raw().action().empty()) {
        return absl::InvalidArgumentError("raw.action must be set, e.g. \"SetChargingProfile\"");
      }
      json payload = json::parse(request.raw().payload_json(), nullptr, /*allow_exceptions=*/false);
      if (payload.is_discarded() || !payload.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat("raw.payload_json is not a JSON object: ",
                                                       request.raw().payload_json().substr(0, 80)));
      }
      return ChargerCall{request.raw().action(), std::move(payload)};
    }
    case v1::SendChargerCommandRequest::kReset:
      switch (request.reset().type()) {
        case v1::RESET_TYPE_SOFT:
          return ChargerCall{"Reset", {{"type", "Soft"}}};
        case v1::RESET_TYPE_HARD:
          return ChargerCall{"Reset", {{"type", "Hard"}}};
        default:
          return absl::InvalidArgumentError("reset.type must be SOFT or HARD");
      }
    case v1::SendChargerCommandRequest::kUnlockConnector:
      if (request.unlock_connector().connector_id() == 0) {
        return absl::InvalidArgumentError("unlock_connector.connector_id must be 1 or more");
      }
      return ChargerCall{"UnlockConnector",
                         {{"connectorId", request.unlock_connector().connector_id()}}};
    case v1::SendChargerCommandRequest::kChangeAvailability: {
      const v1::OcppChangeAvailability& c = request.change_availability();
      if (c.availability() == v1::AVAILABILITY_UNSPECIFIED) {
        return absl::InvalidArgumentError(
            "change_availability.availability must be OPERATIVE or INOPERATIVE");
      }
      return ChargerCall{
          "ChangeAvailability",
          {{"connectorId", c.connector_id()},
           {"type", c.availability() == v1::AVAILABILITY_OPERATIVE ? "Operative" : "Inoperative"}}};
    }
    case v1::SendChargerCommandRequest::kTriggerMessage: {
      absl::StatusOr<const char*> name = TriggerName(request.trigger_message().requested_message());
      if (!name.ok()) return name.status();
      json payload = {{"requestedMessage", *name}};
      if (request.trigger_message().has_connector_id()) {
        payload["connectorId"] = request.trigger_message().connector_id();
      }
      return ChargerCall{"TriggerMessage", std::move(payload)};
    }
    case v1::SendChargerCommandRequest::kChangeConfiguration:
      if (request.change_configuration().key().empty()) {
        return absl::InvalidArgumentError("change_configuration.key must be set");
      }
      return ChargerCall{"ChangeConfiguration",
                         {{"key", request.change_configuration().key()},
                          {"value", request.change_configuration().value()}}};
    case v1::SendChargerCommandRequest::kGetConfiguration: {
      json payload = json::object();
      if (request.get_configuration().keys_size() > 0) {
        payload["key"] = json(std::vector<std::string>(request.get_configuration().keys().begin(),
                                                       request.get_configuration().keys().end()));
      }
      return ChargerCall{"GetConfiguration", std::move(payload)};
    }
    default:
      return absl::InvalidArgumentError("no command given (raw, reset, unlock_connector, ...)");
  }
}

v1::SendChargerCommandResponse FromCharger(const ChargerCall& call, const CallOutcome& outcome) {
  v1::SendChargerCommandResponse response;
  if (outcome.error) {
    v1::OcppCallError* error = response.mutable_call_error();
    error->set_error_code(outcome.error->code_name);
    error->set_error_description(outcome.error->description);
    error->set_error_details_json(outcome.error->details.dump());
    return response;
  }
  if (!outcome.result) return response;
  const json& result = *outcome.result;
  response.set_response_payload_json(result.dump());
  if (result.is_object() && result.contains("status") && result["status"].is_string()) {
    response.set_status(result["status"].get<std::string>());
  }
  if (call.action == "GetConfiguration" && result.is_object()) {
    for (const json& key : result.value("configurationKey", json::array())) {
      v1::OcppConfigurationKey* out = response.add_configuration_keys();
      out->set_key(key.value("key", ""));
      if (key.contains("value") && key["value"].is_string()) {
        out->set_value(key["value"].get<std::string>());
      }
      out->set_readonly(key.value("readonly", false));
    }
    for (const json& key : result.value("unknownKey", json::array())) {
      if (key.is_string()) response.add_unknown_keys(key.get<std::string>());
    }
  }
  return response;
}

}  // namespace evgate::ocpp
