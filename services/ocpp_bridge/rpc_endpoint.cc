#include "services/ocpp_bridge/rpc_endpoint.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/log.h"

namespace evgate::ocpp {
namespace {

constexpr log::Logger kLog("ocpp_bridge");

// Websocket close code 1002: protocol error (RFC 6455 section 7.4.1).
constexpr int kCloseProtocolError = 1002;

}  // namespace

RpcEndpoint::RpcEndpoint(const OcppSchemas& schemas, const Clock& clock, RpcEndpointOptions options,
                         SendFrame send, CloseConnection close, CallHandler handler)
    : schemas_(schemas),
      clock_(clock),
      options_(std::move(options)),
      send_(std::move(send)),
      close_(std::move(close)),
      handler_(std::move(handler)) {}

absl::Status RpcEndpoint::Call(std::string action, nlohmann::json payload, Done done) {
  if (shut_down_) {
    return absl::UnavailableError(absl::StrCat(action, ": the connection has ended"));
  }
  Outgoing call{absl::StrCat(options_.id_prefix, next_id_), std::move(action), std::move(payload),
                std::move(done)};
  if (std::optional<CallError> invalid =
          ValidateCall(schemas_, ocpp::Call{call.message_id, call.action, call.payload})) {
    return absl::InvalidArgumentError(absl::StrCat("not sent, invalid: ", invalid->description));
  }
  if (in_flight_ && queue_.size() >= options_.max_queued_calls) {
    return absl::ResourceExhaustedError(absl::StrCat(call.action, ": ", queue_.size(),
                                                     " CALLs already wait for the one in flight"));
  }
  ++next_id_;
  queue_.push_back(std::move(call));
  SendNext();
  return absl::OkStatus();
}

void RpcEndpoint::SendNext() {
  if (in_flight_ || queue_.empty() || shut_down_) return;
  in_flight_ = std::move(queue_.front());
  queue_.pop_front();
  in_flight_deadline_ = clock_.MonotonicNow() + options_.call_timeout;
  send_(
      SerializeFrame(ocpp::Call{in_flight_->message_id, in_flight_->action, in_flight_->payload}));
}

void RpcEndpoint::Finish(CallOutcome outcome) {
  finished_.emplace_back(std::move(in_flight_->done), std::move(outcome));
  in_flight_.reset();
  SendNext();
}

void RpcEndpoint::RunFinished() {
  if (running_callbacks_) return;  // the outer call runs them
  running_callbacks_ = true;
  while (!finished_.empty()) {
    auto [done, outcome] = std::move(finished_.front());
    finished_.pop_front();
    if (done) done(std::move(outcome));
  }
  running_callbacks_ = false;
}

void RpcEndpoint::Tick() {
  if (in_flight_ && clock_.MonotonicNow() >= in_flight_deadline_) {
    CallOutcome outcome;
    outcome.status = absl::DeadlineExceededError(
        absl::StrCat(in_flight_->action, " ", in_flight_->message_id, ": no answer within ",
                     absl::FormatDuration(options_.call_timeout)));
    kLog.Warning("%s", outcome.status.message());
    Finish(std::move(outcome));
  }
  RunFinished();
}

void RpcEndpoint::Shutdown() {
  if (!shut_down_) {
    shut_down_ = true;
    auto fail = [this](Outgoing& call) {
      CallOutcome outcome;
      outcome.status = absl::UnavailableError(
          absl::StrCat(call.action, " ", call.message_id, ": the connection ended"));
      finished_.emplace_back(std::move(call.done), std::move(outcome));
    };
    if (in_flight_) fail(*in_flight_);
    in_flight_.reset();
    for (Outgoing& call : queue_) fail(call);
    queue_.clear();
  }
  RunFinished();
}

void RpcEndpoint::OnFrame(absl::string_view text) {
  auto parsed = ParseFrame(text);
  if (auto* error = std::get_if<FrameError>(&parsed)) {
    if (error->reply) Reply(*error->reply, error->reply->message_id);
    BadFrame(error->description);
  } else {
    const RpcMessage& message = std::get<RpcMessage>(parsed);
    if (const auto* call = std::get_if<ocpp::Call>(&message)) {
      OnCall(*call);
    } else if (const auto* result = std::get_if<CallResult>(&message)) {
      OnResponse(result->message_id, result, nullptr);
    } else {
      const auto& error = std::get<CallError>(message);
      OnResponse(error.message_id, nullptr, &error);
    }
  }
  RunFinished();
}

void RpcEndpoint::OnCall(const ocpp::Call& call) {
  if (!last_call_id_.empty() && call.message_id == last_call_id_) {
    // A retransmission: the answer again, the handler not again.
    send_(last_answer_);
    return;
  }
  if (std::optional<CallError> invalid = ValidateCall(schemas_, call)) {
    Reply(*invalid, call.message_id);
    BadFrame(absl::StrCat("CALL ", call.message_id, " refused with ", invalid->code_name, ": ",
                          invalid->description));
    return;
  }
  consecutive_bad_frames_ = 0;
  std::variant<nlohmann::json, CallError> answer = handler_(call);
  if (auto* error = std::get_if<CallError>(&answer)) {
    error->message_id = call.message_id;
    if (error->code_name.empty()) error->code_name = RpcErrorCodeName(error->code);
    Reply(*error, call.message_id);
    return;
  }
  CallResult result{call.message_id, std::move(std::get<nlohmann::json>(answer))};
  if (std::optional<CallError> invalid = ValidateCallResult(schemas_, call.action, result)) {
    // Our bug, not the peer's: never send an invalid answer.
    kLog.Error("our answer to %s %s is invalid and was not sent: %s", call.action, call.message_id,
               invalid->description);
    Reply(MakeCallError(call.message_id, RpcErrorCode::kInternalError,
                        "the Central System could not answer this call"),
          call.message_id);
    return;
  }
  Reply(result, call.message_id);
}

void RpcEndpoint::Reply(const RpcMessage& answer, const std::string& call_id) {
  last_call_id_ = call_id;
  last_answer_ = SerializeFrame(answer);
  send_(last_answer_);
}

void RpcEndpoint::OnResponse(const std::string& message_id, const CallResult* result,
                             const CallError* error) {
  if (!in_flight_ || in_flight_->message_id != message_id) {
    BadFrame(absl::StrCat(result ? "CALLRESULT " : "CALLERROR ", message_id,
                          in_flight_
                              ? absl::StrCat(" while ", in_flight_->message_id, " is in flight")
                              : " with no CALL in flight"));
    return;
  }
  consecutive_bad_frames_ = 0;
  CallOutcome outcome;
  if (error != nullptr) {
    outcome.error = *error;
  } else if (std::optional<CallError> invalid =
                 ValidateCallResult(schemas_, in_flight_->action, *result)) {
    kLog.Warning("invalid answer to %s %s: %s", in_flight_->action, message_id,
                 invalid->description);
    outcome.error = *std::move(invalid);
  } else {
    outcome.result = result->payload;
  }
  Finish(std::move(outcome));
}

void RpcEndpoint::BadFrame(absl::string_view why) {
  ++bad_frames_total_;
  kLog.Warning("bad frame: %s", why);
  if (++consecutive_bad_frames_ > options_.max_consecutive_bad_frames) {
    close_(kCloseProtocolError, absl::StrCat(consecutive_bad_frames_, " bad frames in a row"));
    consecutive_bad_frames_ = 0;
  }
}

}  // namespace evgate::ocpp
