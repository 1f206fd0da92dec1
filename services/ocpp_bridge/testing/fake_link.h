// A charge point connection for tests of what sits above the websocket
// server: it keeps the CALLs sent to it (each checked against the OCPP 1.6
// schemas) for the test to answer. Thread-safe.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_TESTING_FAKE_LINK_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_TESTING_FAKE_LINK_H_

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/ocpp_bridge/ocpp_schemas.h"
#include "services/ocpp_bridge/rpc_frame.h"
#include "services/ocpp_bridge/ws_server.h"

namespace evgate::ocpp::testing {

using nlohmann::json;

struct SentCall {
  std::string action;
  json payload;
  RpcEndpoint::Done done;
};

class FakeLink final : public ChargePointLink {
 public:
  explicit FakeLink(std::string identity) : identity_(std::move(identity)) {}
  const std::string& identity() const override { return identity_; }
  const std::string& remote() const override { return remote_; }
  void Call(std::string action, json payload, RpcEndpoint::Done done) override {
    ocpp::Call call{"1", action, payload};
    std::optional<CallError> invalid = ValidateCall(OcppSchemas::Ocpp16(), call);
    EXPECT_FALSE(invalid.has_value())
        << action << " " << payload.dump() << ": " << (invalid ? invalid->description : "");
    absl::MutexLock lock(&mu_);
    sent_.push_back({std::move(action), std::move(payload), std::move(done)});
  }
  void Close(int code, std::string reason) override {
    absl::MutexLock lock(&mu_);
    closed_ = absl::StrCat(code, " ", reason);
  }

  // Takes the oldest CALL not answered yet.
  std::optional<SentCall> Take() {
    absl::MutexLock lock(&mu_);
    if (sent_.empty()) return std::nullopt;
    SentCall call = std::move(sent_.front());
    sent_.pop_front();
    return call;
  }
  std::vector<std::string> TakeAllActions() {
    std::vector<std::string> actions;
    while (std::optional<SentCall> call = Take()) {
      actions.push_back(absl::StrCat(call->action, " ", call->payload.dump()));
      CallOutcome outcome;
      outcome.result = json{{"status", "Accepted"}};
      call->done(outcome);
    }
    return actions;
  }

 private:
  const std::string identity_;
  const std::string remote_ = "192.0.2.10:50412";
  absl::Mutex mu_;
  std::deque<SentCall> sent_ ABSL_GUARDED_BY(mu_);
  std::string closed_ ABSL_GUARDED_BY(mu_);
};

inline void Answer(SentCall& call, json result) {
  CallOutcome outcome;
  outcome.result = std::move(result);
  call.done(outcome);
}

}  // namespace evgate::ocpp::testing

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_TESTING_FAKE_LINK_H_
