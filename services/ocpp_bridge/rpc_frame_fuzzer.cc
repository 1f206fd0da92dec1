// Fuzzes what a charge point sends the bridge: any bytes as one websocket
// text frame go through ParseFrame, schema validation of a CALL against its
// action, and of a CALLRESULT against a response schema picked by its id.
// Every frame must become a message or a FrameError, never a crash; a parsed
// message must survive SerializeFrame -> ParseFrame unchanged, and a CALLERROR
// we would send must itself parse (or, answering an over-long id, carry it).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>

#include "services/ocpp_bridge/ocpp_schemas.h"
#include "services/ocpp_bridge/rpc_frame.h"

namespace {

using evgate::ocpp::Call;
using evgate::ocpp::CallError;
using evgate::ocpp::CallResult;
using evgate::ocpp::FrameError;
using evgate::ocpp::OcppSchemas;
using evgate::ocpp::ParseFrame;
using evgate::ocpp::RpcMessage;
using evgate::ocpp::SerializeFrame;

void MustReparse(const RpcMessage& message) {
  const std::string text = SerializeFrame(message);
  // A CALL with an over-long id is answered with that id, so the sender can
  // match the CALLERROR; it is then not a frame we would accept ourselves,
  // but it must still carry the id.
  if (const auto* error = std::get_if<CallError>(&message);
      error != nullptr && error->message_id.size() > evgate::ocpp::kMaxMessageIdLength) {
    const nlohmann::json frame = nlohmann::json::parse(text);
    if (frame.at(1) != error->message_id) std::abort();
    return;
  }
  auto again = ParseFrame(text);
  if (!std::holds_alternative<RpcMessage>(again)) std::abort();
  // The dump of the reparsed message is the same text.
  if (SerializeFrame(std::get<RpcMessage>(again)) != text) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const OcppSchemas& schemas = OcppSchemas::Ocpp16();
  static const std::vector<std::string> actions = schemas.Actions();
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = ParseFrame(text);
  if (auto* error = std::get_if<FrameError>(&parsed)) {
    if (error->reply) MustReparse(*error->reply);
    return 0;
  }
  const RpcMessage& message = std::get<RpcMessage>(parsed);
  if (const auto* call = std::get_if<Call>(&message)) {
    if (auto reply = evgate::ocpp::ValidateCall(schemas, *call)) MustReparse(*reply);
  } else if (const auto* result = std::get_if<CallResult>(&message)) {
    const std::string& action =
        actions[std::hash<std::string>()(result->message_id) % actions.size()];
    if (auto reply = evgate::ocpp::ValidateCallResult(schemas, action, *result))
      MustReparse(*reply);
  }
  // Invalid UTF-8 cannot be in a parsed message (nlohmann rejects it), so
  // every message round-trips.
  MustReparse(message);
  return 0;
}
