#include "services/ocpp_bridge/rpc_frame.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace evgate::ocpp {
namespace {

using nlohmann::json;

constexpr int kCallType = 2;
constexpr int kCallResultType = 3;
constexpr int kCallErrorType = 4;

constexpr struct {
  RpcErrorCode code;
  const char* name;
} kErrorCodes[] = {
    {RpcErrorCode::kNotImplemented, "NotImplemented"},
    {RpcErrorCode::kNotSupported, "NotSupported"},
    {RpcErrorCode::kInternalError, "InternalError"},
    {RpcErrorCode::kProtocolError, "ProtocolError"},
    {RpcErrorCode::kSecurityError, "SecurityError"},
    {RpcErrorCode::kFormationViolation, "FormationViolation"},
    {RpcErrorCode::kPropertyConstraintViolation, "PropertyConstraintViolation"},
    {RpcErrorCode::kOccurenceConstraintViolation, "OccurenceConstraintViolation"},
    {RpcErrorCode::kTypeConstraintViolation, "TypeConstraintViolation"},
    {RpcErrorCode::kGenericError, "GenericError"},
};

FrameError Unanswerable(std::string description) {
  return FrameError{std::nullopt, std::move(description)};
}

FrameError Answer(std::string id, RpcErrorCode code, std::string description) {
  FrameError error{MakeCallError(std::move(id), code, description), description};
  return error;
}

std::optional<CallError> FromViolation(const std::optional<SchemaViolation>& violation,
                                       const std::string& message_id, absl::string_view what) {
  if (!violation) return std::nullopt;
  const std::string at = violation->pointer.empty() ? "payload" : violation->pointer;
  return MakeCallError(message_id, ErrorCodeForViolation(*violation),
                       absl::StrCat(what, ": ", at, " ", violation->message));
}

}  // namespace

const char* RpcErrorCodeName(RpcErrorCode code) {
  for (const auto& entry : kErrorCodes) {
    if (entry.code == code) return entry.name;
  }
  return "GenericError";
}

std::optional<RpcErrorCode> ParseRpcErrorCode(absl::string_view name) {
  for (const auto& entry : kErrorCodes) {
    if (name == entry.name) return entry.code;
  }
  return std::nullopt;
}

CallError MakeCallError(std::string call_id, RpcErrorCode code, std::string description) {
  CallError error;
  error.message_id = std::move(call_id);
  error.code = code;
  error.code_name = RpcErrorCodeName(code);
  error.description = std::move(description);
  return error;
}

std::variant<RpcMessage, FrameError> ParseFrame(absl::string_view text) {
  json frame = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (frame.is_discarded()) return Unanswerable("not JSON");
  if (!frame.is_array())
    return Unanswerable(absl::StrCat("a JSON ", frame.type_name(), ", not an array"));
  if (frame.size() < 2 || !frame[0].is_number_integer()) {
    return Unanswerable("does not start with a message type number and a message id");
  }
  const int64_t type = frame[0].get<int64_t>();
  if (!frame[1].is_string()) return Unanswerable("the message id is not a string");
  std::string id = frame[1].get<std::string>();
  const bool is_response = type == kCallResultType || type == kCallErrorType;
  if (id.empty() || id.size() > kMaxMessageIdLength) {
    const std::string why = absl::StrCat("the message id must be 1 to ", kMaxMessageIdLength,
                                         " characters, has ", id.size());
    if (is_response || id.empty()) return Unanswerable(why);
    return Answer(std::move(id), RpcErrorCode::kFormationViolation, why);
  }
  switch (type) {
    case kCallType: {
      if (frame.size() != 4) {
        return Answer(std::move(id), RpcErrorCode::kFormationViolation,
                      absl::StrCat("a CALL has 4 elements, this one ", frame.size()));
      }
      if (!frame[2].is_string() || frame[2].get_ref<const std::string&>().empty()) {
        return Answer(std::move(id), RpcErrorCode::kFormationViolation,
                      "the action of a CALL must be a non-empty string");
      }
      if (!frame[3].is_object()) {
        return Answer(
            std::move(id), RpcErrorCode::kFormationViolation,
            absl::StrCat("the payload of a CALL must be an object, is ", frame[3].type_name()));
      }
      return RpcMessage(Call{std::move(id), frame[2].get<std::string>(), std::move(frame[3])});
    }
    case kCallResultType:
      if (frame.size() != 3 || !frame[2].is_object()) {
        return Unanswerable(absl::StrCat("CALLRESULT ", id, ": must be [3, id, {payload}]"));
      }
      return RpcMessage(CallResult{std::move(id), std::move(frame[2])});
    case kCallErrorType: {
      if (frame.size() != 5 || !frame[2].is_string() || !frame[3].is_string() ||
          !frame[4].is_object()) {
        return Unanswerable(absl::StrCat(
            "CALLERROR ", id, ": must be [4, id, \"ErrorCode\", \"description\", {details}]"));
      }
      CallError error;
      error.message_id = std::move(id);
      error.code_name = frame[2].get<std::string>();
      error.code = ParseRpcErrorCode(error.code_name).value_or(RpcErrorCode::kGenericError);
      error.description = frame[3].get<std::string>();
      error.details = std::move(frame[4]);
      return RpcMessage(std::move(error));
    }
    default:
      return Answer(
          std::move(id), RpcErrorCode::kProtocolError,
          absl::StrCat("message type ", type, " is not 2 (CALL), 3 (CALLRESULT) or 4 (CALLERROR)"));
  }
}

std::string SerializeFrame(const RpcMessage& message) {
  json frame;
  if (const auto* call = std::get_if<Call>(&message)) {
    frame = json::array({kCallType, call->message_id, call->action, call->payload});
  } else if (const auto* result = std::get_if<CallResult>(&message)) {
    frame = json::array({kCallResultType, result->message_id, result->payload});
  } else {
    const auto& error = std::get<CallError>(message);
    frame = json::array({kCallErrorType, error.message_id,
                         error.code_name.empty() ? RpcErrorCodeName(error.code) : error.code_name,
                         error.description,
                         error.details.is_object() ? error.details : json::object()});
  }
  // Invalid UTF-8 (from a peer's text echoed in a description) is replaced,
  // never thrown.
  return frame.dump(-1, ' ', false, json::error_handler_t::replace);
}

RpcErrorCode ErrorCodeForViolation(const SchemaViolation& violation) {
  switch (violation.rule) {
    case SchemaRule::kType:
      // The payload itself of the wrong type does not have the action's
      // structure at all.
      return violation.pointer.empty() ? RpcErrorCode::kFormationViolation
                                       : RpcErrorCode::kTypeConstraintViolation;
    case SchemaRule::kRequired:
    case SchemaRule::kMinItems:
    case SchemaRule::kMaxItems:
      return RpcErrorCode::kOccurenceConstraintViolation;
    case SchemaRule::kAdditionalProperty:
      return RpcErrorCode::kFormationViolation;
    case SchemaRule::kEnum:
    case SchemaRule::kConst:
    case SchemaRule::kMinLength:
    case SchemaRule::kMaxLength:
    case SchemaRule::kMinimum:
    case SchemaRule::kMaximum:
    case SchemaRule::kExclusiveMinimum:
    case SchemaRule::kExclusiveMaximum:
    case SchemaRule::kMultipleOf:
    case SchemaRule::kFormat:
      return RpcErrorCode::kPropertyConstraintViolation;
  }
  return RpcErrorCode::kGenericError;
}

std::optional<CallError> ValidateCall(const OcppSchemas& schemas, const Call& call) {
  const JsonSchema* schema = schemas.Request(call.action);
  if (schema == nullptr) {
    return MakeCallError(call.message_id, RpcErrorCode::kNotImplemented,
                         absl::StrCat("'", call.action, "' is not an OCPP 1.6 action"));
  }
  return FromViolation(schema->Validate(call.payload), call.message_id, call.action);
}

std::optional<CallError> ValidateCallResult(const OcppSchemas& schemas, absl::string_view action,
                                            const CallResult& result) {
  const JsonSchema* schema = schemas.Response(action);
  if (schema == nullptr) {
    return MakeCallError(result.message_id, RpcErrorCode::kNotImplemented,
                         absl::StrCat("'", action, "' has no OCPP 1.6 response schema"));
  }
  return FromViolation(schema->Validate(result.payload), result.message_id,
                       absl::StrCat(action, " response"));
}

}  // namespace evgate::ocpp
