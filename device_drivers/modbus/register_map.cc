#include "device_drivers/modbus/register_map.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace evgate::modbus {
namespace {

struct QuantityInfo {
  Quantity quantity;
  absl::string_view name;
  // Accepted `unit:` values and their factor to the canonical unit (first).
  // Empty for codes and flags, which have no unit.
  std::vector<std::pair<absl::string_view, double>> units;
  double min;
  double max;
  PollClass default_poll = PollClass::kFast;
};

// Plausible ranges: wide enough for any real installation, narrow enough to
// catch garbage (a float read with the wrong word order lands far outside).
// Indexed by Quantity: the order of the enum.
const std::vector<QuantityInfo>& Quantities() {
  static const auto* table = new std::vector<QuantityInfo>{
      {Quantity::kVoltageL1, "voltage_l1", {{"V", 1}}, 0, 1000},
      {Quantity::kVoltageL2, "voltage_l2", {{"V", 1}}, 0, 1000},
      {Quantity::kVoltageL3, "voltage_l3", {{"V", 1}}, 0, 1000},
      {Quantity::kCurrentL1, "current_l1", {{"A", 1}, {"mA", 0.001}}, -10000, 10000},
      {Quantity::kCurrentL2, "current_l2", {{"A", 1}, {"mA", 0.001}}, -10000, 10000},
      {Quantity::kCurrentL3, "current_l3", {{"A", 1}, {"mA", 0.001}}, -10000, 10000},
      {Quantity::kPowerL1, "power_l1", {{"W", 1}, {"kW", 1000}}, -1e7, 1e7},
      {Quantity::kPowerL2, "power_l2", {{"W", 1}, {"kW", 1000}}, -1e7, 1e7},
      {Quantity::kPowerL3, "power_l3", {{"W", 1}, {"kW", 1000}}, -1e7, 1e7},
      {Quantity::kTotalPower, "total_power", {{"W", 1}, {"kW", 1000}}, -3e7, 3e7},
      {Quantity::kFrequency, "frequency", {{"Hz", 1}}, 0, 100},
      {Quantity::kEnergyImport,
       "energy_import",
       {{"Wh", 1}, {"kWh", 1000}},
       0,
       1e13,
       PollClass::kSlow},
      {Quantity::kEnergyExport,
       "energy_export",
       {{"Wh", 1}, {"kWh", 1000}},
       0,
       1e13,
       PollClass::kSlow},
      {Quantity::kEnergyTotal,
       "energy_total",
       {{"Wh", 1}, {"kWh", 1000}},
       0,
       1e13,
       PollClass::kSlow},
      {Quantity::kChargingState, "charging_state", {}, 0, 65535},
      {Quantity::kTemperature, "temperature", {{"C", 1}}, -60, 200},
      {Quantity::kMaxCurrent, "max_current", {{"A", 1}, {"mA", 0.001}}, 0, 1000},
      {Quantity::kFailsafeCurrent, "failsafe_current", {{"A", 1}, {"mA", 0.001}}, 0, 1000},
      {Quantity::kWatchdogTimeout, "watchdog_timeout", {{"s", 1}, {"ms", 0.001}}, 0, 86400},
      {Quantity::kStandbyMode, "standby_mode", {}, 0, 65535},
      {Quantity::kRemoteLock, "remote_lock", {}, 0, 65535},
      {Quantity::kGridPresent, "grid_present", {}, 0, 1},
      {Quantity::kTransferSwitch, "transfer_switch", {}, 0, 65535},
      {Quantity::kQf1Closed, "qf1_closed", {}, 0, 1},
      {Quantity::kQf2Closed, "qf2_closed", {}, 0, 1},
      {Quantity::kBackupBatteryVoltage, "backup_battery_voltage", {{"V", 1}}, 0, 100},
      {Quantity::kBackupBatteryOutput, "backup_battery_output", {}, 0, 1},
      {Quantity::kPnPullInActive, "pn_pull_in_active", {}, 0, 1},
      {Quantity::kPnPullInEnable, "pn_pull_in_enable", {}, 0, 1},
      {Quantity::kStandbyCountdown, "standby_countdown", {{"s", 1}, {"ms", 0.001}}, 0, 86400},
      {Quantity::kStandbyRemaining, "standby_remaining", {{"s", 1}, {"ms", 0.001}}, 0, 86400},
      {Quantity::kTransferCommand, "transfer_command", {}, 0, 65535},
  };
  return *table;
}

const QuantityInfo* FindQuantity(absl::string_view name) {
  for (const QuantityInfo& info : Quantities()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

std::optional<ValueType> ParseValueType(absl::string_view name) {
  if (name == "float32") return ValueType::kFloat32;
  if (name == "int16") return ValueType::kInt16;
  if (name == "uint16") return ValueType::kUint16;
  if (name == "int32") return ValueType::kInt32;
  if (name == "uint32") return ValueType::kUint32;
  return std::nullopt;
}

// An integer scalar in decimal or 0x hex.
std::optional<int64_t> ParseInteger(const YAML::Node& node) {
  if (!node.IsScalar()) return std::nullopt;
  const std::string& text = node.Scalar();
  char* end = nullptr;
  errno = 0;
  const int64_t value = std::strtoll(text.c_str(), &end, 0);
  if (text.empty() || errno != 0 || *end != '\0') return std::nullopt;
  return value;
}

std::optional<double> ParseNumber(const YAML::Node& node) {
  if (!node.IsScalar()) return std::nullopt;
  const std::string& text = node.Scalar();
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || errno != 0 || *end != '\0' || !std::isfinite(value)) return std::nullopt;
  return value;
}

int LineOf(const YAML::Node& node) { return node.Mark().line + 1; }

void PlanBlocks(int max_gap, RegisterMap* map) {
  for (PollClass poll : {PollClass::kFast, PollClass::kSlow}) {
    for (RegisterTable table : {RegisterTable::kInput, RegisterTable::kHolding}) {
      std::vector<int> order;
      for (int i = 0; i < static_cast<int>(map->fields.size()); ++i) {
        if (map->fields[i].poll == poll && map->fields[i].table == table) order.push_back(i);
      }
      std::sort(order.begin(), order.end(),
                [&](int a, int b) { return map->fields[a].address < map->fields[b].address; });
      ReadBlock block;
      for (int index : order) {
        const FieldSpec& field = map->fields[index];
        const int end = field.address + RegisterCount(field.type);
        const int block_end = block.address + block.count;
        if (!block.fields.empty() && field.address - block_end <= max_gap &&
            std::max(end, block_end) - block.address <= kMaxReadRegisters) {
          block.count = std::max(end, block_end) - block.address;
          block.fields.push_back(index);
          continue;
        }
        if (!block.fields.empty()) map->blocks.push_back(block);
        block = ReadBlock{poll, table, field.address, RegisterCount(field.type), {index}};
      }
      if (!block.fields.empty()) map->blocks.push_back(block);
    }
  }
}

// "device grid-meter input 0x0034 total_power".
std::string Where(const FieldSpec& field, absl::string_view device_id) {
  return absl::StrFormat("device %s %s 0x%04X %s", device_id, RegisterTableName(field.table),
                         field.address, QuantityName(field.quantity));
}

// The raw register value(s) of `field` as a number, before scaling.
double RawValue(const RegisterMap& map, const FieldSpec& field, uint16_t first, uint16_t second) {
  const uint32_t word32 =
      map.high_word_first ? (uint32_t{first} << 16) | second : (uint32_t{second} << 16) | first;
  switch (field.type) {
    case ValueType::kFloat32: {
      float f;
      std::memcpy(&f, &word32, sizeof f);
      return f;
    }
    case ValueType::kInt16:
      return static_cast<int16_t>(first);
    case ValueType::kUint16:
      return first;
    case ValueType::kInt32:
      return static_cast<int32_t>(word32);
    case ValueType::kUint32:
      return word32;
  }
  return 0;
}

// Empty when `value` is acceptable for `field`, else why not.
std::string CheckValue(const FieldSpec& field, double value) {
  if (!std::isfinite(value)) return std::isnan(value) ? "NaN rejected" : "infinity rejected";
  if (value < field.min || value > field.max) {
    return absl::StrCat(value, " outside plausible range [", field.min, ", ", field.max,
                        "], rejected");
  }
  return "";
}

}  // namespace

absl::string_view QuantityName(Quantity quantity) {
  const int index = static_cast<int>(quantity);
  if (index < 0 || index >= kQuantityCount) return "invalid_quantity";
  return Quantities()[index].name;
}

int RegisterCount(ValueType type) {
  return type == ValueType::kInt16 || type == ValueType::kUint16 ? 1 : 2;
}

bool RegisterMap::HasPollClass(PollClass poll) const {
  for (const ReadBlock& block : blocks) {
    if (block.poll == poll) return true;
  }
  return false;
}

const FieldSpec* RegisterMap::Find(Quantity quantity) const {
  for (const FieldSpec& field : fields) {
    if (field.quantity == quantity) return &field;
  }
  return nullptr;
}

void RegisterValues::MergeFrom(const RegisterValues& from) {
  for (int i = 0; i < kQuantityCount; ++i) {
    if (from.values_[i]) values_[i] = from.values_[i];
  }
}

bool RegisterValues::empty() const {
  for (const auto& value : values_) {
    if (value) return false;
  }
  return true;
}

absl::StatusOr<RegisterMap> ParseRegisterMap(absl::string_view yaml_text,
                                             const std::string& source_name) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ":", e.mark.line + 1, ": not valid YAML: ", e.msg));
  }
  std::vector<std::string> errors;
  auto error = [&](const YAML::Node& node, const std::string& message) {
    errors.push_back(absl::StrCat(source_name, ":", LineOf(node), ": ", message));
  };
  RegisterMap map;
  map.source_path = source_name;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ":1: a register map is a YAML mapping with name and fields"));
  }
  static const std::vector<std::string> kTopKeys = {"name",       "description",       "function",
                                                    "word_order", "max_gap_registers", "fields"};
  for (const auto& entry : root) {
    const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
    if (std::find(kTopKeys.begin(), kTopKeys.end(), key) == kTopKeys.end()) {
      error(entry.first,
            absl::StrCat("unknown key '", key, "'; allowed: ", absl::StrJoin(kTopKeys, ", ")));
    }
  }
  if (!root["name"] || !root["name"].IsScalar() || root["name"].Scalar().empty()) {
    error(root, "name: required");
  } else {
    map.name = root["name"].Scalar();
  }
  if (root["description"] && root["description"].IsScalar()) {
    map.description = root["description"].Scalar();
  }
  if (const YAML::Node node = root["function"]) {
    const std::optional<int64_t> function = ParseInteger(node);
    if (function == 4) {
      map.table = RegisterTable::kInput;
    } else if (function == 3) {
      map.table = RegisterTable::kHolding;
    } else {
      error(node, "function: must be 3 (holding registers) or 4 (input registers)");
    }
  }
  if (const YAML::Node node = root["word_order"]) {
    const std::string order = node.IsScalar() ? node.Scalar() : "";
    if (order == "high_word_first") {
      map.high_word_first = true;
    } else if (order == "low_word_first") {
      map.high_word_first = false;
    } else {
      error(node, "word_order: must be high_word_first or low_word_first");
    }
  }
  int max_gap = 0;
  if (const YAML::Node node = root["max_gap_registers"]) {
    const std::optional<int64_t> gap = ParseInteger(node);
    if (!gap || *gap < 0 || *gap > kMaxReadRegisters) {
      error(node, "max_gap_registers: must be 0-125");
    } else {
      max_gap = static_cast<int>(*gap);
    }
  }
  const YAML::Node fields = root["fields"];
  if (!fields || !fields.IsSequence() || fields.size() == 0) {
    error(fields ? fields : root, "fields: required, a list of at least one field");
  } else {
    static const std::vector<std::string> kFieldKeys = {
        "quantity", "address", "table", "type", "unit", "scale", "min", "max", "poll", "writable"};
    for (size_t i = 0; i < fields.size(); ++i) {
      const YAML::Node node = fields[i];
      const std::string where = absl::StrCat("fields[", i, "]");
      if (!node.IsMap()) {
        error(node, absl::StrCat(where, ": must be a mapping"));
        continue;
      }
      for (const auto& entry : node) {
        const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
        if (std::find(kFieldKeys.begin(), kFieldKeys.end(), key) == kFieldKeys.end()) {
          error(entry.first, absl::StrCat(where, ": unknown key '", key,
                                          "'; allowed: ", absl::StrJoin(kFieldKeys, ", ")));
        }
      }
      FieldSpec field{};
      field.source_line = LineOf(node);
      const QuantityInfo* info = node["quantity"] && node["quantity"].IsScalar()
                                     ? FindQuantity(node["quantity"].Scalar())
                                     : nullptr;
      if (info == nullptr) {
        std::vector<std::string> names;
        for (const QuantityInfo& q : Quantities()) names.emplace_back(q.name);
        error(node["quantity"] ? node["quantity"] : node,
              absl::StrCat(where, ".quantity: required, one of ", absl::StrJoin(names, ", ")));
        continue;
      }
      field.quantity = info->quantity;
      for (const FieldSpec& other : map.fields) {
        if (other.quantity == field.quantity) {
          error(node, absl::StrCat(where, ".quantity: ", info->name, " already mapped at line ",
                                   other.source_line));
        }
      }
      field.table = map.table;
      if (const YAML::Node table = node["table"]) {
        const std::string text = table.IsScalar() ? table.Scalar() : "";
        if (text == "input") {
          field.table = RegisterTable::kInput;
        } else if (text == "holding") {
          field.table = RegisterTable::kHolding;
        } else {
          error(table, absl::StrCat(where, ".table: input or holding"));
        }
      }
      const std::optional<int64_t> address =
          node["address"] ? ParseInteger(node["address"]) : std::nullopt;
      if (!address || *address < 0 || *address > 0xFFFE) {
        error(node["address"] ? node["address"] : node,
              absl::StrCat(where, ".address: required, 0x0000-0xFFFE (0-based PDU address)"));
      } else {
        field.address = static_cast<uint16_t>(*address);
      }
      if (const YAML::Node type = node["type"]) {
        const std::optional<ValueType> parsed =
            type.IsScalar() ? ParseValueType(type.Scalar()) : std::nullopt;
        if (!parsed) {
          error(type, absl::StrCat(where, ".type: one of float32, int16, uint16, int32, uint32"));
        } else {
          field.type = *parsed;
        }
      }
      if (address && field.address + RegisterCount(field.type) > 0x10000) {
        error(node["address"], absl::StrCat(where, ".address: the value runs past 0xFFFF"));
      }
      double unit_factor = 1;
      if (const YAML::Node unit = node["unit"]) {
        bool found = false;
        std::vector<std::string> allowed;
        for (const auto& [name, factor] : info->units) {
          allowed.emplace_back(name);
          if (unit.IsScalar() && unit.Scalar() == name) {
            unit_factor = factor;
            found = true;
          }
        }
        if (allowed.empty()) {
          error(unit, absl::StrCat(where, ".unit: ", info->name, " is a code and has no unit"));
        } else if (!found) {
          error(unit, absl::StrCat(where, ".unit: for ", info->name, " one of ",
                                   absl::StrJoin(allowed, ", ")));
        }
      }
      double scale = 1;
      if (const YAML::Node node_scale = node["scale"]) {
        const std::optional<double> parsed = ParseNumber(node_scale);
        if (!parsed || *parsed == 0) {
          error(node_scale, absl::StrCat(where, ".scale: a non-zero number"));
        } else {
          scale = *parsed;
        }
      }
      field.scale = scale * unit_factor;
      field.min = info->min;
      field.max = info->max;
      for (const char* bound : {"min", "max"}) {
        if (const YAML::Node node_bound = node[bound]) {
          const std::optional<double> parsed = ParseNumber(node_bound);
          if (!parsed) {
            error(node_bound, absl::StrCat(where, ".", bound, ": a number"));
          } else {
            (std::strcmp(bound, "min") == 0 ? field.min : field.max) = *parsed;
          }
        }
      }
      if (field.min >= field.max) {
        error(node, absl::StrCat(where, ": min ", field.min, " must be below max ", field.max));
      }
      field.poll = info->default_poll;
      if (const YAML::Node poll = node["poll"]) {
        const std::string text = poll.IsScalar() ? poll.Scalar() : "";
        if (text == "fast") {
          field.poll = PollClass::kFast;
        } else if (text == "slow") {
          field.poll = PollClass::kSlow;
        } else if (text == "never") {
          field.poll = PollClass::kNever;
        } else {
          error(poll, absl::StrCat(where, ".poll: fast, slow or never"));
        }
      }
      if (const YAML::Node writable = node["writable"]) {
        const std::string text = writable.IsScalar() ? writable.Scalar() : "";
        if (text == "true") {
          field.writable = true;
        } else if (text != "false") {
          error(writable, absl::StrCat(where, ".writable: true or false"));
        }
      }
      if (field.writable && field.table != RegisterTable::kHolding) {
        error(node, absl::StrCat(where,
                                 ": writable needs table: holding (input registers are "
                                 "read-only)"));
      }
      for (const FieldSpec& other : map.fields) {
        if (other.table == field.table &&
            field.address < other.address + RegisterCount(other.type) &&
            other.address < field.address + RegisterCount(field.type)) {
          error(node, absl::StrCat(where, ": ", RegisterTableName(field.table), " registers ",
                                   field.address, "+", RegisterCount(field.type), " overlap ",
                                   QuantityName(other.quantity), " at line ", other.source_line));
        }
      }
      map.fields.push_back(field);
    }
  }
  if (!map.fields.empty()) {
    bool polled = false;
    for (const FieldSpec& field : map.fields) polled |= field.poll != PollClass::kNever;
    if (!polled) error(fields, "fields: at least one field must be polled (poll: fast or slow)");
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  PlanBlocks(max_gap, &map);
  return map;
}

absl::StatusOr<RegisterMap> LoadRegisterMapFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot read register map: ", std::generic_category().message(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseRegisterMap(text.str(), path);
}

absl::StatusOr<DecodeResult> DecodeBlock(const RegisterMap& map, const ReadBlock& block,
                                         absl::Span<const uint16_t> registers,
                                         absl::string_view device_id) {
  if (static_cast<int>(registers.size()) != block.count) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "device %s %s 0x%04X: %d registers, the block has %d", device_id,
        RegisterTableName(block.table), block.address, registers.size(), block.count));
  }
  DecodeResult result;
  for (int index : block.fields) {
    const FieldSpec& field = map.fields[index];
    const int offset = field.address - block.address;
    const uint16_t first = registers[offset];
    const uint16_t second = RegisterCount(field.type) == 2 ? registers[offset + 1] : 0;
    const double value = RawValue(map, field, first, second) * field.scale;
    if (std::string problem = CheckValue(field, value); !problem.empty()) {
      result.rejected.push_back(absl::StrCat(Where(field, device_id), ": ", problem));
      continue;
    }
    result.values.Set(field.quantity, value);
  }
  return result;
}

absl::StatusOr<double> DecodeField(const RegisterMap& map, const FieldSpec& field,
                                   absl::Span<const uint16_t> registers,
                                   absl::string_view device_id) {
  if (static_cast<int>(registers.size()) != RegisterCount(field.type)) {
    return absl::InvalidArgumentError(absl::StrCat(Where(field, device_id), ": ", registers.size(),
                                                   " registers, the field has ",
                                                   RegisterCount(field.type)));
  }
  const double value =
      RawValue(map, field, registers[0], registers.size() > 1 ? registers[1] : 0) * field.scale;
  if (std::string problem = CheckValue(field, value); !problem.empty()) {
    return absl::OutOfRangeError(absl::StrCat(Where(field, device_id), ": ", problem));
  }
  return value;
}

absl::StatusOr<std::vector<uint16_t>> EncodeField(const RegisterMap& map, const FieldSpec& field,
                                                  double value, absl::string_view device_id) {
  if (!field.writable) {
    return absl::FailedPreconditionError(
        absl::StrCat(Where(field, device_id), ": not writable in register map ", map.name));
  }
  if (!std::isfinite(value) || value < field.min || value > field.max) {
    return absl::OutOfRangeError(absl::StrCat(Where(field, device_id), ": ", value,
                                              " outside the writable range [", field.min, ", ",
                                              field.max, "]"));
  }
  const double raw = value / field.scale;
  if (field.type == ValueType::kFloat32) {
    const auto words = EncodeFloat32(static_cast<float>(raw), map.high_word_first);
    return std::vector<uint16_t>{words[0], words[1]};
  }
  const double rounded = std::round(raw);
  double low = 0, high = 0;
  switch (field.type) {
    case ValueType::kInt16:
      low = -32768, high = 32767;
      break;
    case ValueType::kUint16:
      low = 0, high = 65535;
      break;
    case ValueType::kInt32:
      low = -2147483648.0, high = 2147483647.0;
      break;
    default:
      low = 0, high = 4294967295.0;
      break;
  }
  if (rounded < low || rounded > high) {
    return absl::OutOfRangeError(absl::StrCat(Where(field, device_id), ": raw value ", rounded,
                                              " does not fit the register type"));
  }
  if (RegisterCount(field.type) == 1) {
    return std::vector<uint16_t>{static_cast<uint16_t>(static_cast<int32_t>(rounded) & 0xFFFF)};
  }
  const uint32_t word32 = static_cast<uint32_t>(static_cast<int64_t>(rounded));
  const uint16_t hi = static_cast<uint16_t>(word32 >> 16);
  const uint16_t lo = static_cast<uint16_t>(word32 & 0xFFFF);
  return map.high_word_first ? std::vector<uint16_t>{hi, lo} : std::vector<uint16_t>{lo, hi};
}

std::array<uint16_t, 2> EncodeFloat32(float value, bool high_word_first) {
  uint32_t word32;
  std::memcpy(&word32, &value, sizeof word32);
  const uint16_t high = static_cast<uint16_t>(word32 >> 16);
  const uint16_t low = static_cast<uint16_t>(word32 & 0xFFFF);
  return high_word_first ? std::array<uint16_t, 2>{high, low} : std::array<uint16_t, 2>{low, high};
}

}  // namespace evgate::modbus
