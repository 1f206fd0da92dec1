// evgatectl grid ...: the grid controller (V2X grid modes, docs/v2x.md).
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "evgate/v1/grid.grpc.pb.h"
#include "tools/evgatectl/internal/ctl.h"
#include "tools/evgatectl/table.h"

namespace evgate::ctl::internal {
namespace {

std::string Seconds(const google::protobuf::Duration& d) {
  return absl::StrFormat("%d s", d.seconds() + (d.nanos() >= 500000000 ? 1 : 0));
}

std::string BoxText(const v1::GridState& state) {
  if (state.off_grid_box_device_id().empty()) return "-";
  if (!state.has_off_grid_box()) return absl::StrCat(state.off_grid_box_device_id(), ": not seen");
  const v1::OffGridBoxState& b = state.off_grid_box();
  std::vector<std::string> parts = {
      b.grid_present() ? "grid present" : "no grid",
      absl::StrCat("switch ",
                   EnumLabel(v1::TransferSwitchPosition_descriptor(), b.transfer_switch()))};
  if (b.has_qf1_closed()) parts.push_back(b.qf1_closed() ? "QF1 closed" : "QF1 OPEN");
  if (b.has_qf2_closed()) parts.push_back(b.qf2_closed() ? "QF2 closed" : "QF2 OPEN");
  if (b.has_backup_battery_output_on() && b.backup_battery_output_on()) {
    parts.push_back("on backup battery");
  }
  if (b.has_pn_pull_in_active() && b.pn_pull_in_active()) parts.push_back("P-N pull-in");
  if (b.has_backup_load_power_w()) {
    parts.push_back(absl::StrFormat("loads %.1f kW", b.backup_load_power_w() / 1000));
  }
  return absl::StrCat(state.off_grid_box_device_id(), ": ", absl::StrJoin(parts, ", "));
}

// "KEY           value" lines.
class KeyValues {
 public:
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void PrintText(std::ostream& out) const {
    for (const auto& row : rows_) out << absl::StrFormat("%-14s %s\n", row[0], row[1]);
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

void PrintState(const v1::GridState& state, std::ostream& out) {
  KeyValues table;
  table.AddRow({"MODE", absl::StrCat(EnumLabel(v1::GridMode_descriptor(), state.mode()), " since ",
                                     FormatTime(state.since(), state.has_since()))});
  table.AddRow({"WHY", absl::StrCat(EnumLabel(v1::GridTransitionReason_descriptor(),
                                              state.last_transition_reason()),
                                    ": ", state.last_transition_detail())});
  if (state.has_standby_remaining()) {
    table.AddRow({"STANDBY LEFT", Seconds(state.standby_remaining())});
  }
  table.AddRow({"BOX", BoxText(state)});
  if (!state.forming_evse_id().empty()) {
    std::string forming = state.forming_evse_id();
    if (state.has_forming_soc_pct()) {
      absl::StrAppend(&forming, absl::StrFormat(", SOC %.0f %%", state.forming_soc_pct()));
    }
    if (state.has_forming_power_w()) {
      absl::StrAppend(&forming, absl::StrFormat(", %.1f kW", state.forming_power_w() / 1000));
    }
    table.AddRow({"FORMING", forming});
  }
  table.PrintText(out);
}

}  // namespace

int Ctl::Grid() {
  const std::string verb = args_.words.size() > 1 ? args_.words[1] : "";
  auto stub = v1::GridController::NewStub(channel_);
  const std::vector<std::string> connection = {"server", "output", "timeout", "tls-ca",
                                               "ca",     "cert",   "key",     "token"};
  auto check = [&](std::vector<std::string> extra, size_t words, const std::string& usage) {
    std::set<std::string> allowed(connection.begin(), connection.end());
    allowed.insert(extra.begin(), extra.end());
    if (auto s = CheckFlags(args_, allowed, absl::StrCat("grid ", verb)); !s.ok()) {
      return std::optional<int>(Usage(std::string(s.message())));
    }
    if (args_.words.size() != words) return std::optional<int>(Usage("usage: evgatectl " + usage));
    return std::optional<int>();
  };
  if (verb == "status") {
    if (auto bad = check({}, 2, "grid status")) return *bad;
    v1::GetGridStateResponse response;
    auto context = Context();
    grpc::Status status = stub->GetGridState(context.get(), v1::GetGridStateRequest(), &response);
    if (!status.ok()) return RpcFailure(status, "grid");
    if (Json()) {
      out_ << ToJson(response.state()) << "\n";
    } else {
      PrintState(response.state(), out_);
    }
    return kExitOk;
  }
  if (verb == "watch") {
    if (auto bad = check({"interval"}, 2, "grid watch [--interval SECONDS]")) return *bad;
    v1::WatchGridStateRequest request;
    if (args_.Has("interval")) {
      double seconds = -1;
      if (!absl::SimpleAtod(args_.Get("interval"), &seconds) || seconds < 0) {
        return Usage("--interval must be a number of seconds >= 0 (0: mode changes only)");
      }
      request.mutable_interval()->set_seconds(static_cast<int64_t>(seconds));
      request.mutable_interval()->set_nanos(
          static_cast<int32_t>((seconds - static_cast<int64_t>(seconds)) * 1e9));
    }
    grpc::ClientContext context;  // no deadline: until the user stops it
    if (!token_.empty()) context.AddMetadata("authorization", "Bearer " + token_);
    auto reader = stub->WatchGridState(&context, request);
    v1::WatchGridStateResponse message;
    while (reader->Read(&message)) {
      if (Json()) {
        out_ << ToJson(message) << "\n";
      } else {
        const v1::GridState& s = message.state();
        out_ << FormatTime(s.at(), s.has_at()) << (message.mode_changed() ? " * " : "   ")
             << EnumLabel(v1::GridMode_descriptor(), s.mode());
        if (message.mode_changed() || message.sequence() == 1) {
          out_ << " ("
               << EnumLabel(v1::GridTransitionReason_descriptor(), s.last_transition_reason())
               << ": " << s.last_transition_detail() << ")";
        }
        if (s.has_standby_remaining()) out_ << " standby left " << Seconds(s.standby_remaining());
        if (!s.forming_evse_id().empty()) {
          out_ << " forming " << s.forming_evse_id();
          if (s.has_forming_soc_pct()) out_ << absl::StrFormat(" SOC %.0f %%", s.forming_soc_pct());
        }
        out_ << "\n";
      }
      out_.flush();
    }
    grpc::Status status = reader->Finish();
    if (!status.ok()) return RpcFailure(status, "grid");
    return kExitOk;
  }
  if (verb == "off-grid" || verb == "on-grid") {
    const bool off = verb == "off-grid";
    if (auto bad = check(
            off ? std::vector<std::string>{"evse", "reason"} : std::vector<std::string>{"reason"},
            2,
            off ? "grid off-grid [--evse ID] [--reason TEXT]" : "grid on-grid [--reason TEXT]")) {
      return *bad;
    }
    v1::RequestGridModeRequest request;
    request.set_target(off ? v1::GRID_MODE_TARGET_OFF_GRID : v1::GRID_MODE_TARGET_ON_GRID);
    request.set_evse_id(args_.Get("evse", ""));
    request.set_reason(args_.Get("reason", "evgatectl"));
    v1::RequestGridModeResponse response;
    auto context = Context();
    grpc::Status status = stub->RequestGridMode(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "grid");
    if (Json()) {
      out_ << ToJson(response.state()) << "\n";
    } else {
      out_ << "accepted\n";
      PrintState(response.state(), out_);
    }
    return kExitOk;
  }
  if (verb == "params") {
    if (auto bad = check({}, 3, "grid params EVSE")) return *bad;
    v1::GetV2xParametersRequest request;
    request.set_evse_id(args_.words[2]);
    v1::GetV2xParametersResponse response;
    auto context = Context();
    grpc::Status status = stub->GetV2xParameters(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "grid");
    if (Json()) {
      out_ << ToJson(response.parameters()) << "\n";
      return kExitOk;
    }
    const v1::V2xParameters& p = response.parameters();
    Table table({"PARAMETER", "VALUE"});
    table.AddRow({"V2X SOC lower limit", absl::StrFormat("%.0f %%", p.soc_min_pct())});
    table.AddRow({"max SOC for charging", absl::StrFormat("%.0f %%", p.soc_max_pct())});
    table.AddRow({"max charging power", absl::StrFormat("%.1f kW", p.max_charge_power_w() / 1000)});
    table.AddRow({"max discharging power (grid)",
                  absl::StrFormat("%.1f kW", p.max_discharge_power_w() / 1000)});
    table.AddRow({"max discharging power (off grid)",
                  absl::StrFormat("%.1f kW", p.max_offgrid_discharge_power_w() / 1000)});
    table.AddRow({"P-N pull-in off grid", p.pn_pull_in_enabled() ? "yes" : "no"});
    table.AddRow({"standby countdown", Seconds(p.standby_countdown())});
    table.PrintText(out_);
    return kExitOk;
  }
  return Usage("usage: evgatectl grid status|watch|off-grid|on-grid|params");
}

}  // namespace evgate::ctl::internal
