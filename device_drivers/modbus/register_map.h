// Device register maps as data, the decoder from raw registers to typed,
// range-checked values, and the encoder of values to write.
//
// A register map is a YAML file (profiles/*.yaml; format in
// profiles/README.md): which quantity lives at which address, in which table
// (input or holding), as which integer or float type, with which scale, how
// often it is polled and whether the driver may write it. The built-in
// profiles (eastron_sdm630, heidelberg_energy_control, v2x_offgrid_box) and
// the installer's generic_meter files use the same format and the same
// loader, so a new meter needs a file, not code; code exists only for a
// device's behaviour (what a wallbox driver writes when), never for where a
// value is.
//
// The loader also plans the reads: polled fields are grouped into blocks of
// at most 125 registers per table and poll class, merging neighbours across
// gaps of up to `max_gap_registers`, so one request fetches what one poll
// needs.
//
// Decoding never passes on a bad value: NaN, infinity and values outside the
// field's plausible range are rejected with device and register in the
// message. Encoding refuses values outside the field's range or its integer
// type. Thread-safety: RegisterMap is immutable after loading; the free
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

// What a field holds. Decoded values are in the quantity's canonical unit
// (V, A, W, Hz, Wh, °C, s) or are codes / flags (0 or 1) whose meaning the
// device's profile documents. profiles/README.md lists them all.
enum class Quantity {
  // Meters (also an off-grid box's grid side and its AC meter 1).
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
  // Wallboxes.
  kChargingState,    // code, device specific (Heidelberg: 2..11)
  kTemperature,      // °C
  kMaxCurrent,       // A, the current limit in force / to write
  kFailsafeCurrent,  // A, applied by the device's watchdog
  kWatchdogTimeout,  // s, no Modbus traffic for this long -> failsafe
  kStandbyMode,      // code (Heidelberg: 4 = standby disabled)
  kRemoteLock,       // code (Heidelberg: 1 = unlocked, 0 = locked)
  // Off-grid boxes (docs/protocols/offgrid-box.md).
  kGridPresent,           // flag
  kTransferSwitch,        // code: 1 on-grid, 2 off-grid, 3 open
  kQf1Closed,             // flag
  kQf2Closed,             // flag
  kBackupBatteryVoltage,  // V
  kBackupBatteryOutput,   // flag: the 24 V battery powers the system
  kPnPullInActive,        // flag: N-PE bond closed
  kPnPullInEnable,        // flag (setting): bond N-PE when off grid
  kStandbyCountdown,      // s (setting): off-grid standby countdown length
  kStandbyRemaining,      // s: countdown running, time left (0 = not running)
  kTransferCommand,       // code (command): 1 to off-grid, 2 to on-grid
  kQuantityCount,         // not a quantity: the number of them
};
inline constexpr int kQuantityCount = static_cast<int>(Quantity::kQuantityCount);

// "voltage_l1", as written in register map files.
absl::string_view QuantityName(Quantity quantity);

enum class ValueType { kFloat32, kInt16, kUint16, kInt32, kUint32 };
int RegisterCount(ValueType type);

// How often a field is read: `fast` at the device's poll period (the values
// the control loop needs), `slow` at its slow poll period (energy counters,
// settings checked for a device restart), `never` (written only, or read
// back after a write).
enum class PollClass { kFast, kSlow, kNever };

struct FieldSpec {
  Quantity quantity = Quantity::kVoltageL1;
  RegisterTable table = RegisterTable::kInput;
  uint16_t address = 0;
  ValueType type = ValueType::kFloat32;
  // decoded = raw * scale, in the quantity's unit (e.g. kWh -> Wh: 1000).
  double scale = 1;
  // Plausible range of the decoded value; outside it the value is rejected.
  // For a writable field, also the range the driver may write.
  double min = 0;
  double max = 0;
  PollClass poll = PollClass::kFast;
  bool writable = false;  // holding registers only
  int source_line = 0;    // line in the map file, for messages
};

// One read request of a poll: a register range and the fields it carries.
struct ReadBlock {
  PollClass poll = PollClass::kFast;
  RegisterTable table = RegisterTable::kInput;
  uint16_t address = 0;
  int count = 0;
  std::vector<int> fields;  // indices into RegisterMap::fields
};

struct RegisterMap {
  std::string name;
  std::string description;
  std::string source_path;                      // file it was loaded from
  RegisterTable table = RegisterTable::kInput;  // default table of fields
  bool high_word_first = true;                  // 32-bit values: which register holds bits 31..16
  std::vector<FieldSpec> fields;
  std::vector<ReadBlock> blocks;  // planned by the loader, fast blocks first

  bool HasPollClass(PollClass poll) const;
  // The field of `quantity`, or nullptr when the map has none.
  const FieldSpec* Find(Quantity quantity) const;
};

// Parses a register map. `source_name` is used in messages ("file.yaml:12:
// ..."). Every problem in the file is reported, one per line.
absl::StatusOr<RegisterMap> ParseRegisterMap(absl::string_view yaml_text,
                                             const std::string& source_name);
absl::StatusOr<RegisterMap> LoadRegisterMapFile(const std::string& path);

// Decoded values by quantity; a quantity is absent when the map has no
// register for it or it was not read yet. Value type, thread-compatible.
class RegisterValues {
 public:
  std::optional<double> Get(Quantity quantity) const { return values_[static_cast<int>(quantity)]; }
  bool Has(Quantity quantity) const { return values_[static_cast<int>(quantity)].has_value(); }
  void Set(Quantity quantity, double value) { values_[static_cast<int>(quantity)] = value; }
  // Copies the values set in `from`.
  void MergeFrom(const RegisterValues& from);
  bool empty() const;

 private:
  std::array<std::optional<double>, kQuantityCount> values_;
};

// The result of decoding one block.
struct DecodeResult {
  // Values decoded from the block; use them only when `rejected` is empty.
  RegisterValues values;
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

// Decodes one field from its RegisterCount(field.type) registers. Errors
// (kInvalidArgument for a wrong count, kOutOfRange for a rejected value) name
// the device and register.
absl::StatusOr<double> DecodeField(const RegisterMap& map, const FieldSpec& field,
                                   absl::Span<const uint16_t> registers,
                                   absl::string_view device_id);

// The registers that hold `value` in `field` (value / scale, rounded to the
// nearest integer for integer types). Fails (kOutOfRange) when the value is
// not finite, outside [field.min, field.max] or does not fit the type, and
// (kFailedPrecondition) when the field is not writable.
absl::StatusOr<std::vector<uint16_t>> EncodeField(const RegisterMap& map, const FieldSpec& field,
                                                  double value, absl::string_view device_id);

// Encodes a float32 as two registers in the map's word order (simulators,
// tests).
std::array<uint16_t, 2> EncodeFloat32(float value, bool high_word_first);

}  // namespace evgate::modbus

#endif  // EVGATE_DEVICE_DRIVERS_MODBUS_REGISTER_MAP_H_
