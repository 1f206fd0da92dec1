#include "site_controller/config/site_config.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace evgate::site {

absl::string_view PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kL1:
      return "L1";
    case Phase::kL2:
      return "L2";
    case Phase::kL3:
      return "L3";
  }
  return "?";
}

std::string PhaseListName(const std::vector<Phase>& phases) {
  return absl::StrJoin(
      phases, ", ", [](std::string* out, Phase phase) { absl::StrAppend(out, PhaseName(phase)); });
}

bool SourceLines::Has(absl::string_view field) const {
  return field_lines_.find(field) != field_lines_.end();
}

int SourceLines::LineOf(absl::string_view field) const {
  auto it = field_lines_.find(field);
  return it == field_lines_.end() ? line_ : it->second;
}

std::string SourceLines::PathOf(absl::string_view field) const {
  if (path_.empty()) {
    return std::string(field);
  }
  if (field.empty()) {
    return path_;
  }
  if (field.front() == '[') {
    return absl::StrCat(path_, field);
  }
  return absl::StrCat(path_, ".", field);
}

void SourceLines::SetPath(std::string path, int line) {
  path_ = std::move(path);
  line_ = line;
}

void SourceLines::SetFieldLine(std::string field, int line) {
  field_lines_[std::move(field)] = line;
}

absl::string_view BusTypeName(BusType type) {
  switch (type) {
    case BusType::kModbusRtu:
      return "modbus_rtu";
    case BusType::kModbusTcp:
      return "modbus_tcp";
    case BusType::kCan:
      return "can";
  }
  return "?";
}

BusKind BusKindOf(BusType type) { return type == BusType::kCan ? BusKind::kCan : BusKind::kModbus; }

absl::string_view ConnectorTypeName(ConnectorType type) {
  switch (type) {
    case ConnectorType::kType2:
      return "type2";
    case ConnectorType::kCcs1:
      return "ccs1";
    case ConnectorType::kCcs2:
      return "ccs2";
    case ConnectorType::kChademo:
      return "chademo";
    case ConnectorType::kGbt:
      return "gbt";
  }
  return "?";
}

const std::vector<absl::string_view>& ServiceNames() {
  static const std::vector<absl::string_view>* const kNames = new std::vector<absl::string_view>{
      "device_drivers",  "load_balancer",    "session",  "ocpp_bridge",
      "grid_controller", "metrics_exporter", "simulator"};
  return *kNames;
}

const std::vector<absl::string_view>& PrincipalRoleNames() {
  static const std::vector<absl::string_view>* const kNames =
      new std::vector<absl::string_view>{"viewer", "integrator", "operator", "controller"};
  return *kNames;
}

namespace {
template <typename T>
const T* FindById(const std::vector<T>& items, absl::string_view id) {
  for (const T& item : items) {
    if (item.id == id) {
      return &item;
    }
  }
  return nullptr;
}
}  // namespace

const CircuitConfig* SiteConfig::FindCircuit(absl::string_view id) const {
  return FindById(circuits, id);
}
const BusConfig* SiteConfig::FindBus(absl::string_view id) const { return FindById(buses, id); }
const DeviceConfig* SiteConfig::FindDevice(absl::string_view id) const {
  return FindById(devices, id);
}
const StationConfig* SiteConfig::FindStation(absl::string_view id) const {
  return FindById(stations, id);
}
const EvseConfig* SiteConfig::FindEvse(absl::string_view id) const {
  for (const StationConfig& station : stations) {
    if (const EvseConfig* evse = FindById(station.evses, id)) {
      return evse;
    }
  }
  return nullptr;
}

}  // namespace evgate::site
