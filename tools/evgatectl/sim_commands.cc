// evgatectl sim ...: the simulator service of a demo site.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "evgate/v1/simulator.grpc.pb.h"
#include "tools/evgatectl/internal/ctl.h"
#include "tools/evgatectl/table.h"

namespace evgate::ctl::internal {
namespace {

void PrintSimulation(const v1::ListSimulatedDevicesResponse& list, std::ostream& out) {
  Table devices({"DEVICE", "PROFILE", "SERVED ON", "STATE", "NOW"});
  Table evses({"EVSE", "VEHICLE", "IEC", "OFFERED A (L1/L2/L3)", "DRAWN A (L1/L2/L3)", "FAILSAFE",
               "SESSION kWh", "FAULTS"});
  for (const v1::SimulatedDevice& d : list.devices()) {
    if (!d.simulated()) {
      devices.AddRow({d.device_id(), d.profile(), "-", "not simulated", d.not_simulated_reason()});
      continue;
    }
    std::string now = "-";
    if (d.kind() == v1::DEVICE_KIND_METER) {
      now = absl::StrCat(d.measures_circuit_id().empty() ? "-" : d.measures_circuit_id(), " ",
                         PhaseText(d.meter().current_a(), 1), " A, ",
                         Fixed(d.meter().total_power_w() / 1000.0, 1), " kW");
    } else if (d.kind() == v1::DEVICE_KIND_OFFGRID_BOX) {
      now = absl::StrCat(
          d.off_grid_box().grid_present() ? "grid present" : "NO GRID", ", ",
          EnumLabel(v1::TransferSwitchPosition_descriptor(), d.off_grid_box().transfer_switch()),
          d.off_grid_box().shut_down() ? ", shut down" : "");
    } else {
      std::vector<std::string> ids;
      for (const v1::SimulatedEvse& e : d.evses()) ids.push_back(e.evse_id());
      now = absl::StrJoin(ids, ", ");
    }
    if (d.active_faults_size() > 0) {
      absl::StrAppend(&now, " (", absl::StrJoin(d.active_faults(), " "), ")");
    }
    devices.AddRow({d.device_id(), d.profile(), d.endpoint(),
                    d.responding() ? "answering" : "NOT ANSWERING", now});
    for (const v1::SimulatedEvse& e : d.evses()) {
      std::string vehicle = "-";
      if (e.has_vehicle() && e.vehicle().max_power_w() > 0) {
        // At a DC charger: its power and state of charge.
        vehicle =
            absl::StrCat(Fixed(e.vehicle().max_power_w() / 1000, 0), " kW ",
                         Fixed(e.vehicle().soc_pct(), 0), "%", e.vehicle().full() ? " full" : "");
      } else if (e.has_vehicle()) {
        vehicle = absl::StrCat(Fixed(e.vehicle().max_current_a(), 0), " A ", e.vehicle().phases(),
                               "ph", e.vehicle().full() ? " full" : "");
      }
      std::string failsafe = "no";
      if (e.failsafe_active()) {
        failsafe = absl::StrCat("YES ", Fixed(e.failsafe_current_a(), 1), " A");
      }
      evses.AddRow({e.evse_id(), vehicle,
                    EnumLabel(v1::Iec61851State_descriptor(), e.iec61851_state()),
                    PhaseText(e.offered_current_a(), 1), PhaseText(e.current_a(), 1), failsafe,
                    Fixed(e.session_energy_wh() / 1000.0, 3),
                    e.active_faults_size() > 0 ? absl::StrJoin(e.active_faults(), " ") : "-"});
    }
  }
  devices.PrintText(out);
  if (evses.size() > 0) {
    out << "\n";
    evses.PrintText(out);
  }
  out << "\nbuilding load " << PhaseText(list.building_load().current_a(), 1) << " A ("
      << (list.building_load().from_profile() ? "daily profile" : "fixed") << ")\n";
}

}  // namespace

int Ctl::Sim() {
  const std::string verb = args_.words.size() > 1 ? args_.words[1] : "";
  auto stub = v1::Simulator::NewStub(channel_);
  const std::set<std::string> common = {"server", "output", "timeout", "tls-ca",
                                        "ca",     "cert",   "key",     "token"};
  auto check = [&](std::set<std::string> allowed, size_t words, const std::string& usage) {
    allowed.insert(common.begin(), common.end());
    if (auto s = CheckFlags(args_, allowed, "sim " + verb); !s.ok()) {
      return absl::InvalidArgumentError(s.message());
    }
    if (args_.words.size() != words) {
      return absl::InvalidArgumentError(absl::StrCat("usage: evgatectl sim ", usage));
    }
    return absl::OkStatus();
  };
  // Prints a device or EVSE the server returned after a change.
  auto print_evse = [&](const v1::SimulatedEvse& e, const std::string& what) {
    if (Json()) {
      out_ << ToJson(e) << "\n";
    } else {
      out_ << e.evse_id() << ": " << what << "\n";
    }
  };
  auto print_device = [&](const v1::SimulatedDevice& d, const std::string& what) {
    if (Json()) {
      out_ << ToJson(d) << "\n";
    } else {
      out_ << d.device_id() << ": " << what << "\n";
    }
  };

  if (verb == "list") {
    if (auto s = check({}, 2, "list"); !s.ok()) return Usage(std::string(s.message()));
    v1::ListSimulatedDevicesResponse response;
    auto context = Context();
    grpc::Status status = stub->ListSimulatedDevices(context.get(), {}, &response);
    if (!status.ok()) return RpcFailure(status, "sim");
    if (Json()) {
      out_ << ToJson(response) << "\n";
    } else {
      PrintSimulation(response, out_);
    }
    return kExitOk;
  }
  if (verb == "plug") {
    if (auto s =
            check({"max-current-a", "phases", "energy-kwh", "id-tag", "max-power-kw", "soc"}, 3,
                  "plug EVSE [--max-current-a A] [--phases 1|3] [--energy-kwh KWH] "
                  "[--id-tag TAG] [--max-power-kw KW] [--soc PCT]");
        !s.ok()) {
      return Usage(std::string(s.message()));
    }
    v1::PlugInRequest request;
    request.set_evse_id(args_.words[2]);
    double amps = 0, kwh = 0, kw = 0;
    int phases = 0;
    if (args_.Has("max-current-a") &&
        (!absl::SimpleAtod(args_.Get("max-current-a"), &amps) || amps <= 0)) {
      return Usage("--max-current-a must be a positive number of amperes");
    }
    if (args_.Has("phases") &&
        (!absl::SimpleAtoi(args_.Get("phases"), &phases) || (phases != 1 && phases != 3))) {
      return Usage("--phases must be 1 or 3");
    }
    if (args_.Has("energy-kwh") && (!absl::SimpleAtod(args_.Get("energy-kwh"), &kwh) || kwh <= 0)) {
      return Usage("--energy-kwh must be a positive number of kWh");
    }
    if (args_.Has("max-power-kw") &&
        (!absl::SimpleAtod(args_.Get("max-power-kw"), &kw) || kw <= 0)) {
      return Usage("--max-power-kw must be a positive number of kW");
    }
    if (args_.Has("soc")) {
      double soc = -1;
      if (!absl::SimpleAtod(args_.Get("soc"), &soc) || soc < 0 || soc > 100) {
        return Usage("--soc must be a percentage 0-100");
      }
      request.set_soc_pct(soc);
    }
    request.set_max_power_w(kw * 1000);
    request.set_max_current_a(amps);
    request.set_phases(phases);
    request.set_energy_to_full_wh(kwh * 1000);
    request.set_id_tag(args_.Get("id-tag"));
    v1::PlugInResponse response;
    auto context = Context();
    grpc::Status status = stub->PlugIn(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "sim");
    const v1::SimulatedVehicle& plugged = response.evse().vehicle();
    print_evse(
        response.evse(),
        absl::StrCat("vehicle plugged in (",
                     plugged.max_power_w() > 0
                         ? absl::StrCat(Fixed(plugged.max_power_w() / 1000, 1), " kW")
                         : absl::StrCat(Fixed(plugged.max_current_a(), 1), " A, ", plugged.phases(),
                                        "-phase"),
                     ", full after ", Fixed(plugged.energy_to_full_wh() / 1000.0, 1), " kWh)"));
    return kExitOk;
  }
  if (verb == "unplug") {
    if (auto s = check({}, 3, "unplug EVSE"); !s.ok()) return Usage(std::string(s.message()));
    v1::UnplugRequest request;
    request.set_evse_id(args_.words[2]);
    v1::UnplugResponse response;
    auto context = Context();
    grpc::Status status = stub->Unplug(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "sim");
    print_evse(response.evse(), "vehicle unplugged");
    return kExitOk;
  }
  if (verb == "tap") {
    if (auto s = check({}, 4, "tap EVSE ID_TAG"); !s.ok()) return Usage(std::string(s.message()));
    v1::TapCardRequest request;
    request.set_evse_id(args_.words[2]);
    request.set_id_tag(args_.words[3]);
    v1::TapCardResponse response;
    auto context = Context();
    grpc::Status status = stub->TapCard(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "sim");
    if (Json()) {
      out_ << ToJson(response) << "\n";
    } else {
      out_ << "card " << args_.words[3] << " tapped at " << args_.words[2] << "\n";
    }
    return kExitOk;
  }
  if (verb == "fault" || verb == "clear") {
    if (auto s = check({}, 4, verb + " DEVICE|EVSE CODE"); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    grpc::Status status;
    v1::SimulatedDevice device;
    auto context = Context();
    if (verb == "fault") {
      v1::InjectFaultRequest request;
      request.set_target_id(args_.words[2]);
      request.set_vendor_code(args_.words[3]);
      v1::InjectFaultResponse response;
      status = stub->InjectFault(context.get(), request, &response);
      device = response.device();
    } else {
      v1::ClearFaultRequest request;
      request.set_target_id(args_.words[2]);
      request.set_vendor_code(args_.words[3]);
      v1::ClearFaultResponse response;
      status = stub->ClearFault(context.get(), request, &response);
      device = response.device();
    }
    if (!status.ok()) return RpcFailure(status, "sim");
    print_device(device, absl::StrCat("fault ", absl::AsciiStrToUpper(args_.words[3]),
                                      verb == "fault" ? " raised" : " cleared"));
    return kExitOk;
  }
  if (verb == "stop-device" || verb == "start-device") {
    if (auto s = check({}, 3, verb + " DEVICE|EVSE"); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    v1::SetDeviceRespondingRequest request;
    request.set_target_id(args_.words[2]);
    request.set_responding(verb == "start-device");
    v1::SetDeviceRespondingResponse response;
    auto context = Context();
    grpc::Status status = stub->SetDeviceResponding(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "sim");
    print_device(response.device(),
                 request.responding() ? "answers again" : "stopped answering on its bus");
    return kExitOk;
  }
  if (verb == "grid-outage" || verb == "grid-restore") {
    if (auto s = check({}, 2, verb); !s.ok()) return Usage(std::string(s.message()));
    v1::SetGridRequest request;
    request.set_present(verb == "grid-restore");
    v1::SetGridResponse response;
    auto context = Context();
    grpc::Status status = stub->SetGrid(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "sim");
    out_ << (request.present() ? "grid back at the site's connection\n"
                               : "grid outage at the site's connection\n");
    return kExitOk;
  }
  if (verb == "button") {
    if (args_.words.size() > 3) return Usage("usage: evgatectl sim button [BOX]");
    if (auto s = check({}, args_.words.size(), "button [BOX]"); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    v1::PressBackupBatteryButtonRequest request;
    if (args_.words.size() == 3) request.set_device_id(args_.words[2]);
    v1::PressBackupBatteryButtonResponse response;
    auto context = Context();
    grpc::Status status = stub->PressBackupBatteryButton(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "sim");
    out_ << "backup battery button pressed\n";
    return kExitOk;
  }
  if (verb == "building-load") {
    if (auto s = check({}, 3, "building-load A | A1,A2,A3 | profile"); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    v1::SetBuildingLoadRequest request;
    const std::string& value = args_.words[2];
    if (value == "profile") {
      request.set_follow_profile(true);
    } else {
      std::vector<std::string> parts = absl::StrSplit(value, ',');
      if (parts.size() == 1) parts = {parts[0], parts[0], parts[0]};
      double a[3] = {0, 0, 0};
      for (size_t i = 0; i < parts.size(); ++i) {
        if (parts.size() != 3 || !absl::SimpleAtod(parts[i], &a[i]) || a[i] < 0) {
          return Usage(
              absl::StrCat("building-load takes A, A1,A2,A3 (amperes >= 0) or profile, "
                           "not '",
                           value, "'"));
        }
      }
      request.mutable_current_a()->set_l1(a[0]);
      request.mutable_current_a()->set_l2(a[1]);
      request.mutable_current_a()->set_l3(a[2]);
    }
    v1::SetBuildingLoadResponse response;
    auto context = Context();
    grpc::Status status = stub->SetBuildingLoad(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "sim");
    if (Json()) {
      out_ << ToJson(response) << "\n";
    } else {
      out_ << "building load " << PhaseText(response.building_load().current_a(), 1) << " A ("
           << (response.building_load().from_profile() ? "daily profile" : "fixed") << ")\n";
    }
    return kExitOk;
  }
  return Usage(
      "usage: evgatectl sim list|plug|unplug|tap|fault|clear|stop-device|start-device|"
      "building-load|grid-outage|grid-restore|button");
}

}  // namespace evgate::ctl::internal
