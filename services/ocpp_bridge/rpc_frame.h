// OCPP-J RPC framing (OCPP 1.6J, "OCPP-J 1.6 Specification" section 4): the
// three message types carried in websocket text frames,
//
//   [2, "<id>", "<Action>", {payload}]                   CALL
//   [3, "<id>", {payload}]                               CALLRESULT
//   [4, "<id>", "<ErrorCode>", "<description>", {details}]  CALLERROR
//
// parsed from and written to JSON text (nlohmann-json), and the OCPP-J 1.6
// error codes. Payload validation against the action's schema is
// `ValidatePayload`; what to do with a message (matching a CALLRESULT to its
// CALL, one CALL in flight) is the connection's job, not this file's.
//
// Bad frames: `ParseFrame` never throws. A frame that cannot be read returns
// a FrameError saying whether it must be answered: a CALL whose message id
// could be read gets a CALLERROR with that id (FormationViolation for a
// malformed CALL, ProtocolError for an unknown message type); anything else
// (not JSON, not an array, no readable id, a malformed CALLRESULT or
// CALLERROR) cannot be answered (the spec never answers a response) and is
// only reported, for the connection to count and, past a limit, close with
// 1002.
//
// Thread-safety: pure functions.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_RPC_FRAME_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_RPC_FRAME_H_

#include <optional>
#include <string>
#include <variant>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "services/ocpp_bridge/ocpp_schemas.h"

namespace evgate::ocpp {

// OCPP-J 1.6 section 4.2.3 (spelled as the spec spells them).
enum class RpcErrorCode {
  kNotImplemented,                // the action is not known
  kNotSupported,                  // the action is known but not supported by the receiver
  kInternalError,                 // the receiver failed processing it
  kProtocolError,                 // the payload is incomplete
  kSecurityError,                 // a security issue prevented processing
  kFormationViolation,            // syntactically incorrect or not the action's PDU
  kPropertyConstraintViolation,   // a field has an invalid value
  kOccurenceConstraintViolation,  // a field occurs too often or too rarely
  kTypeConstraintViolation,       // a field has the wrong data type
  kGenericError,
};

const char* RpcErrorCodeName(RpcErrorCode code);
std::optional<RpcErrorCode> ParseRpcErrorCode(absl::string_view name);

// OCPP-J 1.6 section 4.1.3: a message id is a string of at most 36
// characters, unique per direction.
inline constexpr size_t kMaxMessageIdLength = 36;

struct Call {
  std::string message_id;
  std::string action;
  nlohmann::json payload;
};

struct CallResult {
  std::string message_id;
  nlohmann::json payload;
};

struct CallError {
  std::string message_id;
  RpcErrorCode code = RpcErrorCode::kGenericError;
  // The code as received: a peer may send one this version does not define
  // (then `code` is kGenericError).
  std::string code_name;
  std::string description;
  nlohmann::json details = nlohmann::json::object();
};

using RpcMessage = std::variant<Call, CallResult, CallError>;

struct FrameError {
  // Set when the frame is a CALL (or an unknown message type) whose id could
  // be read: the answer is this CALLERROR.
  std::optional<CallError> reply;
  // What is wrong, for the log: "message type 5 is not 2, 3 or 4".
  std::string description;
};

std::variant<RpcMessage, FrameError> ParseFrame(absl::string_view text);

// JSON text of a message, as sent in a websocket text frame.
std::string SerializeFrame(const RpcMessage& message);

// The CALLERROR answering `call_id` with `code` and `description`.
CallError MakeCallError(std::string call_id, RpcErrorCode code, std::string description);

// Checks a CALL's payload against its action's request schema, or a
// CALLRESULT's against the response schema of the action it answers.
// Returns the CALLERROR to answer with (for a CALL; for a CALLRESULT the
// caller reports the same error as the CALL's failure) or nullopt when valid.
// An action the schema set does not know is NotImplemented.
std::optional<CallError> ValidateCall(const OcppSchemas& schemas, const Call& call);
std::optional<CallError> ValidateCallResult(const OcppSchemas& schemas, absl::string_view action,
                                            const CallResult& result);

// The OCPP-J error code for a schema rule a payload broke.
RpcErrorCode ErrorCodeForViolation(const SchemaViolation& violation);

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_RPC_FRAME_H_
