// Meter register maps as data, and the decoder from raw registers to a typed,
// range-checked meter reading.
//
// A register map is a YAML file (profiles/*.yaml; format in
// profiles/README.md). The built-in profiles (eastron_sdm630) and the
// installer's generic_meter files use the same format and the same loader, so
// a new meter needs a file, not code.
//
// The loader also plans the reads: fields are grouped into blocks of at most
// 125 registers per poll class, merging neighbours across gaps of up to
// `max_gap_registers`, so one request fetches what one poll needs.
//
// Decoding never passes on a bad value: NaN, infinity and values outside the
// quantity's plausible range are rejected with device and register in the
// message. Thread-safety: RegisterMap is immutable after loading; the free
// functions are thread-safe.
#ifndef EVGATE_DEVICE_DRIVERS_MODBUS_REGISTER_MAP_H_
#define EVGATE_DEVICE_DRIVERS_MODBUS_REGISTER_MAP_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "device_drivers/modbus/modbus_transport.h"

namespace evgate::modbus {

// What a meter field measures. Units of the decoded value are fixed per
// quantity: V, A, W, Hz, Wh.
enum class Quantity {
  kVoltageL1,
  kVoltageL2,
  kVoltageL3,
  kCurrentL1,
  kCurrentL2,
  kCurrentL3,
  kPowerL1,
  kPowerL2,
  kPowerL3,
  kTotalPower,
  kFrequency,
  kEnergyImport,
  kEnergyExport,
  kEnergyTotal,
};
// "voltage_l1", as written in register map files.
absl::string_view QuantityName(Quantity quantity);

enum class ValueType { kFloat32, kInt16, kUint16, kInt32, kUint32 };
int RegisterCount(ValueType type);

// How often a field is read: `fast` at the device's poll period (the values
// the control loop needs), `slow` at its energy poll period.
enum class PollClass { kFast, kSlow };

struct FieldSpec {
  Quantity quantity;
  uint16_t address = 0;
  ValueType type = ValueType::kFloat32;
  // decoded = raw * scale, in the quantity's unit (e.g. kWh -> Wh: 1000).
  double scale = 1;
  // Plausible range of the decoded value; outside it the value is rejected.
  double min = 0;
  double max = 0;
  PollClass poll = PollClass::kFast;
  int source_line = 0;  // line in the map file, for messages
};

// One read request of a poll: a register range and the fields it carries.
struct ReadBlock {
  PollClass poll = PollClass::kFast;
  uint16_t address = 0;
  int count = 0;
  std::vector<int> fields;  // indices into RegisterMap::fields
};

struct RegisterMap {
  std::string name;
  std::string description;
  std::string source_path;  // file it was loaded from
  RegisterTable table = RegisterTable::kInput;
  bool high_word_first = true;  // 32-bit values: which register holds bits 31..16
  std::vector<FieldSpec> fields;
  std::vector<ReadBlock> blocks;  // planned by the loader

  bool HasPollClass(PollClass poll) const;
};

// Parses a register map. `source_name` is used in messages ("file.yaml:12:
// ..."). Every problem in the file is reported, one per line.
absl::StatusOr<RegisterMap> ParseRegisterMap(absl::string_view yaml_text,
                                             const std::string& source_name);
absl::StatusOr<RegisterMap> LoadRegisterMapFile(const std::string& path);

// A typed meter reading; a field is empty when the map has no register for
// it. Units: V, A, W, Hz, Wh. Positive power = import.
struct MeterValues {
  std::array<std::optional<double>, 3> voltage_v;
  std::array<std::optional<double>, 3> current_a;
  std::array<std::optional<double>, 3> power_w;
  std::optional<double> total_power_w;
  std::optional<double> frequency_hz;
  std::optional<double> energy_import_wh;
  std::optional<double> energy_export_wh;
  std::optional<double> energy_total_wh;
};

// The result of decoding one block.
struct DecodeResult {
  // Values decoded from the block; applied only when `rejected` is empty.
  MeterValues values;
  // One message per rejected value, e.g. "device grid-meter input 0x0034
  // total_power: NaN rejected".
  std::vector<std::string> rejected;
};

// Decodes `registers` (read from `block.address`, `block.count` long) with
// `map`. Fails (kInvalidArgument) only when the register count does not match
// the block.
absl::StatusOr<DecodeResult> DecodeBlock(const RegisterMap& map, const ReadBlock& block,
                                         absl::Span<const uint16_t> registers,
                                         absl::string_view device_id);

// Copies the fields set in `from` into `into`.
void MergeMeterValues(const MeterValues& from, MeterValues* into);

// Encodes a float32 as two registers in the map's word order (simulators,
// tests).
std::array<uint16_t, 2> EncodeFloat32(float value, bool high_word_first);

}  // namespace evgate::modbus

#endif  // EVGATE_DEVICE_DRIVERS_MODBUS_REGISTER_MAP_H_
