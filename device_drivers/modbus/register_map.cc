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
  std::vector<std::pair<absl::string_view, double>> units;
  double min;
  double max;
};

// Plausible ranges: wide enough for any real installation, narrow enough to
// catch garbage (a float read with the wrong word order lands far outside).
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
      {Quantity::kEnergyImport, "energy_import", {{"Wh", 1}, {"kWh", 1000}}, 0, 1e13},
      {Quantity::kEnergyExport, "energy_export", {{"Wh", 1}, {"kWh", 1000}}, 0, 1e13},
      {Quantity::kEnergyTotal, "energy_total", {{"Wh", 1}, {"kWh", 1000}}, 0, 1e13},
  };
  return *table;
}

const QuantityInfo& InfoOf(Quantity quantity) { return Quantities()[static_cast<int>(quantity)]; }

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
    std::vector<int> order;
    for (int i = 0; i < static_cast<int>(map->fields.size()); ++i) {
      if (map->fields[i].poll == poll) order.push_back(i);
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
      block = ReadBlock{poll, field.address, RegisterCount(field.type), {index}};
    }
    if (!block.fields.empty()) map->blocks.push_back(block);
  }
}

}  // namespace

absl::string_view QuantityName(Quantity quantity) { return InfoOf(quantity).name; }

int RegisterCount(ValueType type) {
  return type == ValueType::kInt16 || type == ValueType::kUint16 ? 1 : 2;
}

bool RegisterMap::HasPollClass(PollClass poll) const {
  for (const ReadBlock& block : blocks) {
    if (block.poll == poll) return true;
  }
  return false;
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
    const std::string key = entry.first.Scalar();
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
    static const std::vector<std::string> kFieldKeys = {"quantity", "address", "type", "unit",
                                                        "scale",    "min",     "max",  "poll"};
    for (size_t i = 0; i < fields.size(); ++i) {
      const YAML::Node node = fields[i];
      const std::string where = absl::StrCat("fields[", i, "]");
      if (!node.IsMap()) {
        error(node, absl::StrCat(where, ": must be a mapping"));
        continue;
      }
      for (const auto& entry : node) {
        const std::string key = entry.first.Scalar();
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
        if (!found) {
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
      if (const YAML::Node poll = node["poll"]) {
        const std::string text = poll.IsScalar() ? poll.Scalar() : "";
        if (text == "fast") {
          field.poll = PollClass::kFast;
        } else if (text == "slow") {
          field.poll = PollClass::kSlow;
        } else {
          error(poll, absl::StrCat(where, ".poll: fast or slow"));
        }
      } else {
        const bool energy = info->quantity == Quantity::kEnergyImport ||
                            info->quantity == Quantity::kEnergyExport ||
                            info->quantity == Quantity::kEnergyTotal;
        field.poll = energy ? PollClass::kSlow : PollClass::kFast;
      }
      map.fields.push_back(field);
    }
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
        RegisterTableName(map.table), block.address, registers.size(), block.count));
  }
  DecodeResult result;
  for (int index : block.fields) {
    const FieldSpec& field = map.fields[index];
    const int offset = field.address - block.address;
    const uint16_t first = registers[offset];
    const uint16_t second = RegisterCount(field.type) == 2 ? registers[offset + 1] : 0;
    const uint32_t word32 =
        map.high_word_first ? (uint32_t{first} << 16) | second : (uint32_t{second} << 16) | first;
    double raw = 0;
    switch (field.type) {
      case ValueType::kFloat32: {
        float f;
        std::memcpy(&f, &word32, sizeof f);
        raw = f;
        break;
      }
      case ValueType::kInt16:
        raw = static_cast<int16_t>(first);
        break;
      case ValueType::kUint16:
        raw = first;
        break;
      case ValueType::kInt32:
        raw = static_cast<int32_t>(word32);
        break;
      case ValueType::kUint32:
        raw = word32;
        break;
    }
    const double value = raw * field.scale;
    const std::string where =
        absl::StrFormat("device %s %s 0x%04X %s", device_id, RegisterTableName(map.table),
                        field.address, QuantityName(field.quantity));
    if (!std::isfinite(value)) {
      result.rejected.push_back(
          absl::StrCat(where, ": ", std::isnan(value) ? "NaN" : "infinity", " rejected"));
      continue;
    }
    if (value < field.min || value > field.max) {
      result.rejected.push_back(absl::StrCat(where, ": ", value, " outside plausible range [",
                                             field.min, ", ", field.max, "], rejected"));
      continue;
    }
    MeterValues& v = result.values;
    switch (field.quantity) {
      case Quantity::kVoltageL1:
      case Quantity::kVoltageL2:
      case Quantity::kVoltageL3:
        v.voltage_v[static_cast<int>(field.quantity) - static_cast<int>(Quantity::kVoltageL1)] =
            value;
        break;
      case Quantity::kCurrentL1:
      case Quantity::kCurrentL2:
      case Quantity::kCurrentL3:
        v.current_a[static_cast<int>(field.quantity) - static_cast<int>(Quantity::kCurrentL1)] =
            value;
        break;
      case Quantity::kPowerL1:
      case Quantity::kPowerL2:
      case Quantity::kPowerL3:
        v.power_w[static_cast<int>(field.quantity) - static_cast<int>(Quantity::kPowerL1)] = value;
        break;
      case Quantity::kTotalPower:
        v.total_power_w = value;
        break;
      case Quantity::kFrequency:
        v.frequency_hz = value;
        break;
      case Quantity::kEnergyImport:
        v.energy_import_wh = value;
        break;
      case Quantity::kEnergyExport:
        v.energy_export_wh = value;
        break;
      case Quantity::kEnergyTotal:
        v.energy_total_wh = value;
        break;
    }
  }
  return result;
}

void MergeMeterValues(const MeterValues& from, MeterValues* into) {
  auto merge = [](const std::optional<double>& f, std::optional<double>* i) {
    if (f) *i = f;
  };
  for (int p = 0; p < 3; ++p) {
    merge(from.voltage_v[p], &into->voltage_v[p]);
    merge(from.current_a[p], &into->current_a[p]);
    merge(from.power_w[p], &into->power_w[p]);
  }
  merge(from.total_power_w, &into->total_power_w);
  merge(from.frequency_hz, &into->frequency_hz);
  merge(from.energy_import_wh, &into->energy_import_wh);
  merge(from.energy_export_wh, &into->energy_export_wh);
  merge(from.energy_total_wh, &into->energy_total_wh);
}

std::array<uint16_t, 2> EncodeFloat32(float value, bool high_word_first) {
  uint32_t word32;
  std::memcpy(&word32, &value, sizeof word32);
  const uint16_t high = static_cast<uint16_t>(word32 >> 16);
  const uint16_t low = static_cast<uint16_t>(word32 & 0xFFFF);
  return high_word_first ? std::array<uint16_t, 2>{high, low} : std::array<uint16_t, 2>{low, high};
}

}  // namespace evgate::modbus
