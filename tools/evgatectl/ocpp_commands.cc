// evgatectl ocpp ...: the charge points of the local OCPP Central System.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "evgate/v1/ocpp.grpc.pb.h"
#include "tools/evgatectl/internal/ctl.h"
#include "tools/evgatectl/table.h"

namespace evgate::ctl::internal {

int Ctl::Ocpp() {
  const std::string verb = args_.words.size() > 1 ? args_.words[1] : "";
  auto stub = v1::OcppBridge::NewStub(channel_);
  if (auto s =
          CheckFlags(args_, {"server", "output", "timeout", "tls-ca", "ca", "cert", "key", "token"},
                     absl::StrCat("ocpp ", verb));
      !s.ok()) {
    return Usage(std::string(s.message()));
  }
  if (verb == "list" || verb == "show") {
    if (verb == "list" && args_.words.size() != 2) return Usage("usage: evgatectl ocpp list");
    if (verb == "show" && args_.words.size() != 3) {
      return Usage("usage: evgatectl ocpp show CHARGE_POINT_ID");
    }
    std::vector<v1::ChargePoint> charge_points;
    v1::ListChargePointsRequest request;
    do {
      v1::ListChargePointsResponse response;
      auto context = Context();
      grpc::Status status = stub->ListChargePoints(context.get(), request, &response);
      if (!status.ok()) return RpcFailure(status, "ocpp");
      charge_points.insert(charge_points.end(), response.charge_points().begin(),
                           response.charge_points().end());
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty());
    if (verb == "show") {
      for (const v1::ChargePoint& cp : charge_points) {
        if (cp.charge_point_id() == args_.words[2]) {
          out_ << ToJson(cp) << "\n";
          return kExitOk;
        }
      }
      err_ << "evgatectl: no charge point '" << args_.words[2]
           << "' (not configured in site.yaml and never seen connecting)\n";
      return kExitFailure;
    }
    if (Json()) {
      v1::ListChargePointsResponse all;
      for (auto& cp : charge_points) *all.add_charge_points() = cp;
      out_ << ToJson(all) << "\n";
      return kExitOk;
    }
    Table table({"CHARGE POINT", "DEVICE", "STATE", "BOOT", "MODEL", "FIRMWARE", "REMOTE",
                 "LAST MESSAGE", "CONNECTORS"});
    for (const v1::ChargePoint& cp : charge_points) {
      std::vector<std::string> connectors;
      for (const v1::ChargePointConnector& c : cp.connectors()) {
        std::string text = absl::StrCat(c.connector_id(), ":",
                                        EnumLabel(v1::ConnectorStatus_descriptor(), c.status()));
        if (!c.vendor_error_code().empty()) absl::StrAppend(&text, "[", c.vendor_error_code(), "]");
        connectors.push_back(text);
      }
      const std::string model =
          absl::StrCat(cp.vendor(), cp.vendor().empty() ? "" : " ", cp.model());
      table.AddRow({cp.charge_point_id(), cp.device_id().empty() ? "-" : cp.device_id(),
                    EnumLabel(v1::ChargePointConnectionState_descriptor(), cp.connection_state()),
                    EnumLabel(v1::RegistrationStatus_descriptor(), cp.registration_status()),
                    model.empty() ? "-" : model,
                    cp.firmware_version().empty() ? "-" : cp.firmware_version(),
                    cp.remote_address().empty() ? "-" : cp.remote_address(),
                    FormatTime(cp.last_message_at(), cp.has_last_message_at()),
                    connectors.empty() ? "-" : absl::StrJoin(connectors, ", ")});
    }
    table.PrintText(out_);
    return kExitOk;
  }
  if (verb == "command") {
    if (args_.words.size() != 4 && args_.words.size() != 5) {
      return Usage("usage: evgatectl ocpp command CHARGE_POINT_ID ACTION [PAYLOAD_JSON]");
    }
    v1::SendChargerCommandRequest request;
    request.set_charge_point_id(args_.words[2]);
    request.mutable_raw()->set_action(args_.words[3]);
    request.mutable_raw()->set_payload_json(args_.words.size() == 5 ? args_.words[4] : "{}");
    // The charger gets all but two seconds of --timeout, so that its silence
    // comes back as the bridge's answer rather than as our own deadline.
    const absl::Duration charger_timeout = std::max(absl::Seconds(1), timeout_ - absl::Seconds(2));
    request.mutable_timeout()->set_seconds(absl::ToInt64Seconds(charger_timeout));
    v1::SendChargerCommandResponse response;
    auto context = Context();
    grpc::Status status = stub->SendChargerCommand(context.get(), request, &response);
    if (!status.ok()) {
      // "not connected", "did not answer": about the charger, not the server.
      if (absl::StrContains(status.error_message(), request.charge_point_id()) ||
          status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        err_ << "evgatectl: " << status.error_message() << "\n";
        return kExitFailure;
      }
      return RpcFailure(status, "ocpp");
    }
    if (Json()) {
      out_ << ToJson(response) << "\n";
    } else if (response.has_call_error()) {
      out_ << "CALLERROR " << response.call_error().error_code() << ": "
           << response.call_error().error_description() << "\n";
    } else {
      out_ << response.response_payload_json() << "\n";
    }
    return response.has_call_error() ? kExitFailure : kExitOk;
  }
  return Usage("usage: evgatectl ocpp list|show|command");
}

}  // namespace evgate::ctl::internal
