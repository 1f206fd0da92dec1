// SendChargerCommand's typed commands as OCPP 1.6 CALLs, and a CALL's outcome
// as its response (proto/evgate/v1/ocpp.proto). Pure; thread-safe.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_CHARGER_COMMANDS_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_CHARGER_COMMANDS_H_

#include <string>

#include "absl/status/statusor.h"
#include "evgate/v1/ocpp.pb.h"
#include "nlohmann/json.hpp"
#include "services/ocpp_bridge/rpc_endpoint.h"

namespace evgate::ocpp {

struct ChargerCall {
  std::string action;
  nlohmann::json payload;
};

// INVALID_ARGUMENT for no command, raw JSON that is not an object, or a
// typed command with a value OCPP cannot carry (e.g. Reset of type
// UNSPECIFIED). The schemas check the rest when the CALL is sent.
absl::StatusOr<ChargerCall> ToCharger(const v1::SendChargerCommandRequest& request);

// The response for a CALL that was answered (CALLRESULT or CALLERROR). A CALL
// that was not answered (outcome.status not OK) is the caller's gRPC error.
v1::SendChargerCommandResponse FromCharger(const ChargerCall& call, const CallOutcome& outcome);

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_CHARGER_COMMANDS_H_
