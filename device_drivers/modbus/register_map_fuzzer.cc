// Fuzzes register maps: loading a map file (an installer's generic_meter map
// is outside input) and decoding register values with it and with every
// built-in profile. Input: YAML text, optionally followed by a NUL byte and
// register data (big-endian pairs) used for decoding.
//
// Checks: the loader never throws or crashes and either fails with messages
// or returns a map whose planned reads cover each polled field exactly once
// within 125 registers; decoding never passes on a value that is not finite
// or outside its field's range; a value the encoder writes decodes back to
// itself up to the register's resolution.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "device_drivers/modbus/builtin_profiles.h"
#include "device_drivers/modbus/register_map.h"

namespace {

using evgate::modbus::DecodeBlock;
using evgate::modbus::DecodeField;
using evgate::modbus::EncodeField;
using evgate::modbus::FieldSpec;
using evgate::modbus::PollClass;
using evgate::modbus::Quantity;
using evgate::modbus::ReadBlock;
using evgate::modbus::RegisterCount;
using evgate::modbus::RegisterMap;

void Check(bool ok) {
  if (!ok) std::abort();
}

// Register i of the test data (cycled; a fixed pattern when there is none).
uint16_t Reg(const std::vector<uint16_t>& regs, size_t i) {
  return regs.empty() ? static_cast<uint16_t>(0x4000 + 7 * i) : regs[i % regs.size()];
}

void DecodeAll(const RegisterMap& map, const std::vector<uint16_t>& regs) {
  size_t next = 0;
  for (const ReadBlock& block : map.blocks) {
    Check(block.count >= 1 && block.count <= 125);
    std::vector<uint16_t> data(block.count);
    for (uint16_t& r : data) r = Reg(regs, next++);
    auto result = DecodeBlock(map, block, data, "fuzz");
    Check(result.ok());
    for (const int index : block.fields) {
      const FieldSpec& field = map.fields[index];
      const std::optional<double> v = result->values.Get(field.quantity);
      if (!v) continue;  // rejected (and said why)
      Check(std::isfinite(*v) && *v >= field.min && *v <= field.max);
    }
    // A wrong register count is an error, not a read past the end.
    Check(
        !DecodeBlock(map, block, std::vector<uint16_t>(data.begin(), data.end() - 1), "fuzz").ok());
  }
}

void CheckPlan(const RegisterMap& map) {
  std::vector<int> seen(map.fields.size(), 0);
  for (const ReadBlock& block : map.blocks) {
    for (const int index : block.fields) {
      Check(index >= 0 && index < static_cast<int>(map.fields.size()));
      const FieldSpec& f = map.fields[index];
      ++seen[index];
      Check(f.table == block.table && f.poll == block.poll);
      Check(f.address >= block.address &&
            f.address + RegisterCount(f.type) <= block.address + block.count);
    }
  }
  for (size_t i = 0; i < map.fields.size(); ++i) {
    Check(seen[i] == (map.fields[i].poll == PollClass::kNever ? 0 : 1));
  }
}

void RoundTrip(const RegisterMap& map, const std::vector<uint16_t>& regs) {
  size_t next = 0;
  for (const FieldSpec& field : map.fields) {
    if (!field.writable) continue;
    // A value inside the writable range, chosen by the data.
    const double t = Reg(regs, next++) / 65535.0;
    const double value = field.min + t * (field.max - field.min);
    auto encoded = EncodeField(map, field, value, "fuzz");
    if (!encoded.ok()) continue;  // does not fit the register type: refused
    Check(static_cast<int>(encoded->size()) == RegisterCount(field.type));
    auto decoded = DecodeField(map, field, *encoded, "fuzz");
    if (!decoded.ok()) continue;  // rounding took it just outside the range: refused
    const double resolution = field.type == evgate::modbus::ValueType::kFloat32
                                  ? std::abs(value) * 1e-6 + 1e-30
                                  : std::abs(field.scale) / 2 * (1 + 1e-9);
    Check(std::abs(*decoded - value) <= resolution + 1e-9 * std::abs(value));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t text_size = nul ? static_cast<size_t>(nul - data) : size;
  const std::string text(reinterpret_cast<const char*>(data), text_size);
  std::vector<uint16_t> regs;
  for (size_t i = text_size + 1; i + 1 < size; i += 2) {
    regs.push_back(static_cast<uint16_t>((data[i] << 8) | data[i + 1]));
  }
  auto map = evgate::modbus::ParseRegisterMap(text, "fuzz.yaml");
  if (map.ok()) {
    Check(!map->fields.empty() && !map->blocks.empty());
    CheckPlan(*map);
    DecodeAll(*map, regs);
    RoundTrip(*map, regs);
  } else {
    Check(!map.status().message().empty());
  }
  for (const char* name : {"eastron_sdm630", "heidelberg_energy_control", "v2x_offgrid_box"}) {
    auto builtin = evgate::modbus::BuiltinRegisterMap(name);
    Check(builtin.ok());
    DecodeAll(**builtin, regs);
  }
  return 0;
}
