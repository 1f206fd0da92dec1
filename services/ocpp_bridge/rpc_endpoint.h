// One side of one OCPP-J connection (OCPP-J 1.6 section 4), independent of
// the websocket under it: text frames in through OnFrame, out through the
// `send` callback.
//
// Rules it keeps (each a complaint users of other implementations filed):
//   - Our CALLs: one in flight at a time; the rest wait in order in a bounded
//     queue. Each has a timeout on the monotonic clock (Tick() fires it); its
//     callback runs exactly once: with the CALLRESULT's payload, the peer's
//     CALLERROR, a timeout, or the connection's end (Shutdown()).
//   - Every payload is validated against the OCPP 1.6 schemas, ours too: a
//     CALL we would send that is invalid is refused (Call returns
//     INVALID_ARGUMENT, nothing is sent); an answer of our handler that is
//     invalid goes out as an InternalError CALLERROR instead, and is logged.
//   - A CALL of the peer that is invalid is answered with the CALLERROR the
//     spec asks for (rpc_frame.h) and never reaches the handler.
//   - A CALL repeated with the id of the CALL answered last (a peer's
//     retransmission after a lost answer) gets the same answer again, without
//     running the handler twice (so a repeated StopTransaction is recorded
//     once).
//   - A CALLRESULT or CALLERROR with no CALL of ours in flight, or with
//     another id, is dropped and counted as a bad frame, never a crash.
//   - Bad frames (any FrameError, stray responses) are counted; more than
//     `max_consecutive_bad_frames` in a row asks the transport to close the
//     connection with 1002 (protocol error) through `close`.
//
// Thread-compatible: the connection calls it from one strand.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_RPC_ENDPOINT_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_RPC_ENDPOINT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "runtime/clock.h"
#include "services/ocpp_bridge/ocpp_schemas.h"
#include "services/ocpp_bridge/rpc_frame.h"

namespace evgate::ocpp {

struct RpcEndpointOptions {
  // How long the peer has to answer one of our CALLs.
  absl::Duration call_timeout = absl::Seconds(30);
  // Our CALLs waiting behind the one in flight; Call() beyond it is
  // RESOURCE_EXHAUSTED.
  size_t max_queued_calls = 64;
  int max_consecutive_bad_frames = 10;
  // Our message ids are "<id_prefix><n>", n counting from 1; the connection
  // gives each connection its own prefix so ids never repeat across
  // reconnects.
  std::string id_prefix;
};

// How one of our CALLs ended.
struct CallOutcome {
  // The CALLRESULT's payload (valid for the action) ...
  std::optional<nlohmann::json> result;
  // ... or the peer's CALLERROR, or the CALLERROR-shaped reason we give
  // ourselves for an invalid CALLRESULT.
  std::optional<CallError> error;
  // ... or neither: the peer did not answer (DEADLINE_EXCEEDED) or the
  // connection ended (UNAVAILABLE).
  absl::Status status;
};

class RpcEndpoint {
 public:
  using SendFrame = std::function<void(std::string frame)>;
  // Websocket close code and reason.
  using CloseConnection = std::function<void(int code, std::string reason)>;
  // Answers one valid CALL of the peer: its CALLRESULT payload or a
  // CALLERROR (e.g. NotSupported for an action this side does not take).
  using CallHandler =
      std::function<std::variant<nlohmann::json, CallError>(const ocpp::Call& call)>;
  using Done = std::function<void(CallOutcome outcome)>;

  RpcEndpoint(const OcppSchemas& schemas, const Clock& clock, RpcEndpointOptions options,
              SendFrame send, CloseConnection close, CallHandler handler);

  // Sends (or queues) a CALL. When it returns OK, `done` runs exactly once,
  // from a later OnFrame, Tick or Shutdown (never from inside Call()).
  absl::Status Call(std::string action, nlohmann::json payload, Done done);

  // One text frame from the peer.
  void OnFrame(absl::string_view text);

  // Fails the CALL in flight if its timeout has passed, then sends the next.
  void Tick();

  // The connection ended: the CALL in flight and the queued ones fail with
  // UNAVAILABLE; later Calls are refused. Idempotent.
  void Shutdown();

  // Frames counted as bad since the endpoint started.
  int64_t bad_frames() const { return bad_frames_total_; }
  // Our CALLs queued behind the one in flight.
  size_t queued_calls() const { return queue_.size(); }

 private:
  struct Outgoing {
    std::string message_id;
    std::string action;
    nlohmann::json payload;
    Done done;
  };

  void SendNext();
  // Ends the CALL in flight; its callback runs at RunFinished.
  void Finish(CallOutcome outcome);
  void RunFinished();
  void OnCall(const ocpp::Call& call);
  void OnResponse(const std::string& message_id, const CallResult* result, const CallError* error);
  void BadFrame(absl::string_view why);
  void Reply(const RpcMessage& answer, const std::string& call_id);

  const OcppSchemas& schemas_;
  const Clock& clock_;
  const RpcEndpointOptions options_;
  SendFrame send_;
  CloseConnection close_;
  CallHandler handler_;

  uint64_t next_id_ = 1;
  std::optional<Outgoing> in_flight_;
  absl::Time in_flight_deadline_;
  std::deque<Outgoing> queue_;
  // Outcomes whose callbacks have not run yet: they run at the end of the
  // public call that produced them, so a callback may call Call() again.
  std::deque<std::pair<Done, CallOutcome>> finished_;
  bool running_callbacks_ = false;
  bool shut_down_ = false;

  // The last CALL answered: its id and the frame sent.
  std::string last_call_id_;
  std::string last_answer_;

  int consecutive_bad_frames_ = 0;
  int64_t bad_frames_total_ = 0;
};

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_RPC_ENDPOINT_H_
