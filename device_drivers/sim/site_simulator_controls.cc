// SiteSimulator's controls, what an operator or a test does to the site:
// plug a vehicle in and out, tap a card, raise and clear device faults, stop
// a device answering, set the building load.
#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "device_drivers/can/wallbox_protocol.h"
#include "device_drivers/sim/site_simulator.h"
#include "runtime/log.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::sim {
namespace {

namespace wb = can::wallbox;

constexpr log::Logger kLog("simulator");

// The off-grid box's backup battery as a "low" fault shows it, V.
constexpr double kLowBackupBatteryV = 21.0;
// SDM630 current registers L1..L3 (float32, high word first).
constexpr uint16_t kSdmCurrentRegisters[3] = {0x0006, 0x0008, 0x000A};

// "04B2C3D4E5F607" (':' and '-' allowed between bytes) -> bytes.
absl::StatusOr<std::vector<uint8_t>> ParseUid(const std::string& text) {
  std::string hex;
  for (char c : text) {
    if (c == ':' || c == '-') continue;
    hex.push_back(c);
  }
  if (hex.size() < 2 || hex.size() > 20 || hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("card UID '", text, "' must be 2-20 hex digits, an even count (1-10 bytes)"));
  }
  if (!std::all_of(hex.begin(), hex.end(), [](char c) { return absl::ascii_isxdigit(c); })) {
    return absl::InvalidArgumentError(
        absl::StrCat("card UID '", text, "' has a character that is not a hex digit"));
  }
  const std::string bytes = absl::HexStringToBytes(hex);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::string CaburCodes() {
  std::vector<std::string> names;
  names.reserve(wb::kErrorCodeCount);
  for (int i = 0; i < wb::kErrorCodeCount; ++i) {
    names.emplace_back(wb::ErrorCodeName(static_cast<wb::ErrorCode>(i)));
  }
  return absl::StrJoin(names, " ");
}

}  // namespace

absl::StatusOr<v1::SimulatedEvse> SiteSimulator::PlugInLocked(Evse& evse, VehicleParams params) {
  if (evse.vehicle) {
    return absl::FailedPreconditionError(
        absl::StrCat("a vehicle is plugged into ", evse.config->id, " already; unplug it first"));
  }
  if (evse.device->kind == Kind::kOcpp) return PlugInOcppLocked(evse, std::move(params));
  if (params.max_current_a == 0 && evse.config->ac) {
    params.max_current_a = evse.config->ac->max_current_a;
  }
  if (params.phases == 0) params.phases = evse.config->phases.size() == 1 ? 1 : 3;
  if (params.energy_to_full_wh == 0) {
    params.energy_to_full_wh = site::defaults::kSimVehicleEnergyToFullWh;
  }
  if (!(params.max_current_a > 0 && params.max_current_a <= 80)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "vehicle maximum current %g A: must be above 0 and at most 80 A", params.max_current_a));
  }
  if (params.phases != 1 && params.phases != 3) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vehicle phases %d: must be 1 or 3", params.phases));
  }
  if (!(params.energy_to_full_wh > 0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vehicle energy to full %g Wh: must be above 0", params.energy_to_full_wh));
  }
  Device& device = *evse.device;
  Vehicle vehicle;
  if (!params.id_tag.empty()) {
    if (device.kind != Kind::kCabur) {
      return absl::FailedPreconditionError(absl::StrCat("device '", device.config->id, "' (",
                                                        device.config->profile->name,
                                                        ") has no RFID reader evgate can read"));
    }
    absl::StatusOr<std::vector<uint8_t>> uid = ParseUid(params.id_tag);
    if (!uid.ok()) return uid.status();
    vehicle.card = *std::move(uid);
    vehicle.card_text = params.id_tag;
  }
  vehicle.max_current_a = params.max_current_a;
  vehicle.phases = params.phases;
  vehicle.energy_to_full_wh = params.energy_to_full_wh;
  if (device.kind == Kind::kCabur) {
    EvParams ev;
    ev.max_current_a = params.max_current_a;
    ev.phases = params.phases;
    ev.energy_to_full_wh = params.energy_to_full_wh;
    if (absl::Status s = device.can->host->PlugIn(device.config->address.value_or(0), ev);
        !s.ok()) {
      return s;
    }
  } else {
    vehicle.energy_at_plug_in_wh = device.heidelberg->energy_wh();
    device.heidelberg->PlugIn(params.max_current_a, params.phases, /*charge=*/true);
  }
  evse.vehicle = vehicle;
  return DescribeEvseLocked(evse);
}

absl::StatusOr<v1::SimulatedEvse> SiteSimulator::PlugInOcppLocked(Evse& evse,
                                                                  VehicleParams params) {
  const site::DcEvseLimits* dc = evse.config->dc ? &*evse.config->dc : nullptr;
  const double max_w = dc != nullptr ? dc->max_power_w : 0;
  if (params.max_power_w == 0) params.max_power_w = max_w;
  if (params.energy_to_full_wh == 0) {
    params.energy_to_full_wh = site::defaults::kSimVehicleEnergyToFullWh;
  }
  if (!(params.max_power_w > 0 && params.max_power_w <= 1e6)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "vehicle maximum power %g W: must be above 0 and at most 1 MW", params.max_power_w));
  }
  if (!(params.energy_to_full_wh > 0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vehicle energy to full %g Wh: must be above 0", params.energy_to_full_wh));
  }
  if (!params.id_tag.empty()) {
    // The charger sends it as an OCPP idTag: at most 20 characters.
    if (absl::StatusOr<std::vector<uint8_t>> uid = ParseUid(params.id_tag); !uid.ok()) {
      return uid.status();
    }
    if (params.id_tag.size() > 20) {
      return absl::InvalidArgumentError(
          absl::StrCat("card ", params.id_tag, ": an OCPP idTag has at most 20 characters"));
    }
  }
  if (params.soc_pct && !(*params.soc_pct >= 0 && *params.soc_pct <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vehicle SOC %g %%: must be 0-100", *params.soc_pct));
  }
  OcppSimVehicle vehicle;
  if (params.soc_pct) vehicle.soc_at_plug_in_pct = *params.soc_pct;
  vehicle.max_power_w = params.max_power_w;
  vehicle.energy_to_full_wh = params.energy_to_full_wh;
  vehicle.id_tag = params.id_tag;
  if (absl::Status s = evse.device->ocpp->PlugIn(evse.config->connector, vehicle, clock_.Now());
      !s.ok()) {
    return s;
  }
  Vehicle plugged;
  plugged.energy_to_full_wh = params.energy_to_full_wh;
  plugged.phases = static_cast<int>(evse.config->phases.size());
  plugged.card_text = params.id_tag;
  evse.vehicle = plugged;
  return DescribeEvseLocked(evse);
}

absl::StatusOr<v1::SimulatedEvse> SiteSimulator::PlugIn(const std::string& evse_id,
                                                        VehicleParams vehicle) {
  Evse* evse = FindEvse(evse_id);
  if (evse == nullptr) {
    return absl::NotFoundError(absl::StrCat("no simulated EVSE '", evse_id, "'"));
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<v1::SimulatedEvse> out = PlugInLocked(*evse, std::move(vehicle));
  if (out.ok()) kLog.Info("vehicle plugged into %s", evse_id);
  return out;
}

absl::StatusOr<v1::SimulatedEvse> SiteSimulator::Unplug(const std::string& evse_id) {
  Evse* evse = FindEvse(evse_id);
  if (evse == nullptr) {
    return absl::NotFoundError(absl::StrCat("no simulated EVSE '", evse_id, "'"));
  }
  absl::MutexLock lock(&mu_);
  if (!evse->vehicle) {
    return absl::FailedPreconditionError(absl::StrCat("no vehicle is plugged into ", evse_id));
  }
  Device& device = *evse->device;
  if (device.kind == Kind::kCabur) {
    if (absl::Status s = device.can->host->Unplug(device.config->address.value_or(0)); !s.ok()) {
      return s;
    }
  } else if (device.kind == Kind::kOcpp) {
    if (absl::Status s = device.ocpp->Unplug(evse->config->connector, clock_.Now()); !s.ok()) {
      return s;
    }
  } else {
    device.heidelberg->Unplug();
  }
  evse->vehicle.reset();
  kLog.Info("vehicle unplugged from %s", evse_id);
  return DescribeEvseLocked(*evse);
}

absl::Status SiteSimulator::TapCard(const std::string& evse_id, const std::string& id_tag) {
  Evse* evse = FindEvse(evse_id);
  if (evse == nullptr) {
    return absl::NotFoundError(absl::StrCat("no simulated EVSE '", evse_id, "'"));
  }
  absl::StatusOr<std::vector<uint8_t>> uid = ParseUid(id_tag);
  if (!uid.ok()) return uid.status();
  const Device& device = *evse->device;
  if (device.kind == Kind::kOcpp) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device '", device.config->id,
        "' is an OCPP charger: its reader is behind OCPP; present the card with PlugIn's id_tag"));
  }
  if (device.kind != Kind::kCabur) {
    return absl::FailedPreconditionError(absl::StrCat("device '", device.config->id, "' (",
                                                      device.config->profile->name,
                                                      ") has no RFID reader evgate can read"));
  }
  absl::MutexLock lock(&mu_);
  if (absl::Status s = device.can->host->TapCard(device.config->address.value_or(0), *uid);
      !s.ok()) {
    return s;
  }
  kLog.Info("card %s tapped at %s", id_tag, evse_id);
  return absl::OkStatus();
}

absl::StatusOr<v1::SimulatedDevice> SiteSimulator::SetFault(const std::string& target_id,
                                                            const std::string& vendor_code,
                                                            bool active) {
  Device* device = FindTarget(target_id);
  if (device == nullptr) {
    return absl::NotFoundError(absl::StrCat("no simulated device or EVSE '", target_id, "'"));
  }
  if (device->kind == Kind::kNone) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device '", device->config->id, "' is not simulated: ", device->not_simulated_reason));
  }
  const std::string code = absl::AsciiStrToUpper(vendor_code);
  absl::MutexLock lock(&mu_);
  std::set<std::string>& faults = faults_[device];
  auto unknown = [&](const std::string& codes) {
    return absl::InvalidArgumentError(
        absl::StrCat("device '", device->config->id, "' (", device->config->profile->name,
                     ") has no fault '", vendor_code, "'; its codes: ", codes));
  };
  auto not_active = [&]() {
    return absl::FailedPreconditionError(
        absl::StrCat("fault ", code, " is not active on device '", device->config->id, "'"));
  };
  switch (device->kind) {
    case Kind::kCabur: {
      std::optional<wb::ErrorCode> error = wb::ErrorCodeFromName(code);
      if (!error) return unknown(CaburCodes());
      const int address = device->config->address.value_or(0);
      if (active) {
        if (absl::Status s = device->can->host->InjectFault(address, *error); !s.ok()) return s;
      } else {
        std::optional<CaburWallboxSnapshot> snap = device->can->host->Snapshot(address);
        if (!snap || (snap->errors & wb::ErrorBit(*error)) == 0) return not_active();
        if (absl::Status s = device->can->host->ClearFault(address, *error); !s.ok()) return s;
      }
      break;
    }
    case Kind::kHeidelberg: {
      if (code != "STATE_E" && code != "STATE_F") return unknown("STATE_E STATE_F");
      if (active) {
        faults.clear();  // the box shows one error state at a time
        faults.insert(code);
        device->heidelberg->InjectFault(code == "STATE_E" ? HeidelbergSimulator::Fault::kStateE
                                                          : HeidelbergSimulator::Fault::kStateF);
      } else {
        if (faults.erase(code) == 0) return not_active();
        device->heidelberg->InjectFault(HeidelbergSimulator::Fault::kNone);
      }
      break;
    }
    case Kind::kOffGridBox: {
      OffGridBoxSimulator& box = *device->box;
      if (code == "GRID_LOSS") {
        box.SetGridPresent(!active && grid_present_);
      } else if (code == "QF1_OPEN") {
        box.SetQf1Closed(!active);
      } else if (code == "QF2_OPEN") {
        box.SetQf2Closed(!active);
      } else if (code == "BACKUP_BATTERY_LOW") {
        box.SetBackupBatteryVoltage(active ? std::optional<double>(kLowBackupBatteryV)
                                           : std::nullopt);
      } else {
        return unknown("GRID_LOSS QF1_OPEN QF2_OPEN BACKUP_BATTERY_LOW");
      }
      if (active) {
        faults.insert(code);
      } else if (faults.erase(code) == 0) {
        return not_active();
      }
      break;
    }
    case Kind::kSdm630: {
      if (code != "NAN_CURRENT") return unknown("NAN_CURRENT");
      if (active) {
        for (uint16_t address : kSdmCurrentRegisters) {
          device->meter->ForceFloat(address, std::numeric_limits<float>::quiet_NaN());
        }
        faults.insert(code);
      } else {
        if (faults.erase(code) == 0) return not_active();
        device->meter->ClearForced();
      }
      break;
    }
    case Kind::kOcpp: {
      // Any vendor code, as the charger's StatusNotification carries it
      // (e.g. a DS60 status code "012252"); on an EVSE: its connector.
      if (code.empty() || code.size() > 50) {
        return absl::InvalidArgumentError("an OCPP vendorErrorCode has 1 to 50 characters");
      }
      const Evse* evse = FindEvse(target_id);
      const int connector = evse != nullptr ? evse->config->connector : 0;
      if (active) {
        faults.insert(code);
      } else if (faults.erase(code) == 0) {
        return not_active();
      }
      if (absl::Status s = device->ocpp->SetFault(connector, code, active, clock_.Now()); !s.ok()) {
        return s;
      }
      break;
    }
    case Kind::kNone:
      break;
  }
  kLog.Info("fault %s %s on %s", code, active ? "raised" : "cleared", device->config->id);
  return DescribeLocked(*device);
}

absl::StatusOr<v1::SimulatedDevice> SiteSimulator::SetResponding(const std::string& target_id,
                                                                 bool responding) {
  Device* device = FindTarget(target_id);
  if (device == nullptr) {
    return absl::NotFoundError(absl::StrCat("no simulated device or EVSE '", target_id, "'"));
  }
  absl::MutexLock lock(&mu_);
  switch (device->kind) {
    case Kind::kSdm630:
      device->meter->SetResponding(responding);
      break;
    case Kind::kHeidelberg:
      device->heidelberg->SetResponding(responding);
      break;
    case Kind::kOffGridBox:
      device->box->SetResponding(responding);
      break;
    case Kind::kCabur:
      if (absl::Status s =
              device->can->host->SetResponding(device->config->address.value_or(0), responding);
          !s.ok()) {
        return s;
      }
      break;
    case Kind::kOcpp:
      // Not answering = offline: its connection drops and stays down.
      device->ocpp->SetOnline(responding);
      break;
    case Kind::kNone:
      return absl::FailedPreconditionError(absl::StrCat(
          "device '", device->config->id, "' is not simulated: ", device->not_simulated_reason));
  }
  responding_[device] = responding;
  kLog.Info("device %s %s", device->config->id, responding ? "answers again" : "stopped answering");
  return DescribeLocked(*device);
}

absl::StatusOr<v1::BuildingLoad> SiteSimulator::SetBuildingLoad(
    std::optional<std::array<double, 3>> current_a) {
  if (current_a) {
    for (double a : *current_a) {
      if (!(a >= 0 && a <= 10000)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("building load %g A: must be between 0 and 10000 A", a));
      }
    }
  }
  absl::MutexLock lock(&mu_);
  if (current_a) {
    PhaseArray load{};
    for (site::Phase phase : config_.grid.phases)
      load[site::PhaseIndex(phase)] = (*current_a)[site::PhaseIndex(phase)];
    building_override_ = load;
    kLog.Info("building load set to %.1f/%.1f/%.1f A", load[0], load[1], load[2]);
  } else {
    building_override_.reset();
    kLog.Info("building load follows the daily profile again");
  }
  StepLocked(clock_.Now());
  v1::BuildingLoad out;
  for (site::Phase phase : config_.grid.phases) {
    api::SetPhase(out.mutable_current_a(), phase, building_a_[site::PhaseIndex(phase)]);
  }
  out.set_from_profile(!building_override_.has_value());
  return out;
}

}  // namespace evgate::sim

namespace evgate::sim {

void SiteSimulator::SetGridPresent(bool present) {
  absl::MutexLock lock(&mu_);
  if (grid_present_ == present) return;
  grid_present_ = present;
  for (auto& device : devices_) {
    // A box with an injected GRID_LOSS keeps seeing none.
    if (device->kind == Kind::kOffGridBox) {
      device->box->SetGridPresent(present && faults_[device.get()].count("GRID_LOSS") == 0);
    }
  }
  if (present) {
    kLog.Info("grid back at the site's connection");
  } else {
    kLog.Info("grid outage at the site's connection");
  }
}

bool SiteSimulator::grid_present() {
  absl::MutexLock lock(&mu_);
  return grid_present_;
}

absl::Status SiteSimulator::PressBackupBatteryButton(const std::string& device_id) {
  absl::MutexLock lock(&mu_);
  std::vector<Device*> boxes;
  for (auto& device : devices_) {
    if (device->kind == Kind::kOffGridBox &&
        (device_id.empty() || device->config->id == device_id)) {
      boxes.push_back(device.get());
    }
  }
  if (boxes.empty()) {
    return absl::NotFoundError(device_id.empty()
                                   ? "no simulated off-grid box on this site"
                                   : absl::StrCat("no simulated off-grid box '", device_id, "'"));
  }
  if (boxes.size() > 1) {
    return absl::InvalidArgumentError("several off-grid boxes: name one");
  }
  boxes[0]->box->PressBackupBatteryButton();
  kLog.Info("backup battery button pressed at %s", boxes[0]->config->id);
  return absl::OkStatus();
}

}  // namespace evgate::sim
