#include "device_drivers/can/wallbox_protocol.h"

#include <cmath>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

namespace evgate::can::wallbox {
namespace {

constexpr int kSetpointDlc = 3;
constexpr int kWatchdogDlc = 4;
constexpr int kFullDlc = 8;

// Raw wire limits (see docs/protocols/can-wallbox.md).
constexpr int64_t kMaxAvailableRaw = 30000;  // 3000.0 A
constexpr int64_t kMinChargeRaw = 60;        // 6.0 A
constexpr int64_t kMaxChargeRaw = 320;       // 32.0 A
constexpr int64_t kMaxPhaseCurrentRaw = 1023;
constexpr int64_t kMaxVoltageRaw = 5000;  // 500.0 V
constexpr int64_t kMaxPowerW = 30000;
constexpr int64_t kMaxSessionWh = (int64_t{1} << 24) - 1;
constexpr int64_t kMaxLifetimeRaw = (int64_t{1} << 24) - 1;  // 0.1 kWh
constexpr int kMinTemperatureC = -40;
constexpr int kMaxTemperatureC = 125;
constexpr int kMinTimeoutMs = 100;
constexpr int kMaxTimeoutMs = 60000;
constexpr int kMaxUidLength = 10;
constexpr int kUidBytesInFragment0 = 7;

// ---- bit fields of the little-endian payload --------------------------------

uint64_t Payload(const CanFrame& frame) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{frame.data[i]} << (8 * i);
  return v;
}

uint64_t Field(uint64_t payload, int start, int length) {
  return (payload >> start) & ((uint64_t{1} << length) - 1);
}

uint64_t Mask(int start, int length) { return ((uint64_t{1} << length) - 1) << start; }

// Builds a frame's payload; fields are written in order and never overlap.
class PayloadWriter {
 public:
  void Put(int start, int length, uint64_t value) {
    payload_ |= (value & ((uint64_t{1} << length) - 1)) << start;
  }
  CanFrame Frame(MessageType type, int address, int dlc) const {
    CanFrame frame;
    frame.id = FrameId(type, address);
    frame.dlc = static_cast<uint8_t>(dlc);
    for (int i = 0; i < dlc; ++i) frame.data[i] = static_cast<uint8_t>(payload_ >> (8 * i));
    return frame;
  }

 private:
  uint64_t payload_ = 0;
};

// ---- checks shared by the encoders ------------------------------------------

absl::Status CheckAddress(absl::string_view what, int address) {
  if (address < kMinAddress || address > kMaxAddress) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: wallbox address %d is outside %d..%d",
                                                      what, address, kMinAddress, kMaxAddress));
  }
  return absl::OkStatus();
}

absl::Status CheckInt(absl::string_view what, absl::string_view field, int64_t value, int64_t min,
                      int64_t max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %s %d is outside %d..%d", what, field, value, min, max));
  }
  return absl::OkStatus();
}

// value / step as an integer, rounded to nearest; NaN and infinities fail.
absl::StatusOr<int64_t> ToRaw(absl::string_view what, absl::string_view field, double value,
                              double per_unit, int64_t max_raw) {
  if (!std::isfinite(value)) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s is not a number", what, field));
  }
  const double raw = std::round(value * per_unit);
  if (raw < 0 || raw > static_cast<double>(max_raw)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s %g is outside 0..%g", what, field, value, static_cast<double>(max_raw) / per_unit));
  }
  return static_cast<int64_t>(raw);
}

// A charging current limit (setpoint, failsafe): 0 or 6.0..32.0 A, rounded
// DOWN to 0.1 A so the wallbox is never allowed more than it was given.
absl::StatusOr<int64_t> ChargeLimitToRaw(absl::string_view what, absl::string_view field,
                                         double current_a) {
  if (!std::isfinite(current_a)) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s is not a number", what, field));
  }
  // The epsilon keeps 16.1 (= 160.99999... tenths) at 161.
  const double raw = std::floor(current_a * 10 + 1e-6);
  if (raw != 0 && (raw < kMinChargeRaw || raw > kMaxChargeRaw)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %s %g A is neither 0 nor within 6.0..32.0 A", what, field, current_a));
  }
  return static_cast<int64_t>(raw);
}

std::string Describe(MessageType type, int address) {
  if (type == MessageType::kAvailableCurrent) return std::string(MessageTypeName(type));
  return absl::StrFormat("%s of wallbox %d", MessageTypeName(type), address);
}

// ---- decoding helpers -------------------------------------------------------

// Context of one frame being decoded, for precise messages.
class FrameReader {
 public:
  FrameReader(const CanFrame& frame, MessageType type, int address)
      : frame_(frame),
        present_(frame.dlc >= 8 ? ~uint64_t{0} : Mask(0, 8 * frame.dlc)),
        payload_(Payload(frame) & present_),
        type_(type),
        address_(address) {}

  uint64_t Get(int start, int length) const { return Field(payload_, start, length); }

  absl::Status CheckDlc(int expected) const {
    if (frame_.dlc != expected) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: bad DLC %d, expected %d", Where(), frame_.dlc, expected));
    }
    return absl::OkStatus();
  }
  // Every bit of the DLC's bytes outside `used` must be 0.
  absl::Status CheckReserved(uint64_t used) const {
    const uint64_t stray = payload_ & ~used;
    if (stray != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: reserved bits set (mask 0x%016x)", Where(), stray));
    }
    return absl::OkStatus();
  }
  absl::Status Range(absl::string_view field, int64_t value, int64_t min, int64_t max) const {
    if (value < min || value > max) {
      return absl::OutOfRangeError(
          absl::StrFormat("%s: %s raw %d is outside %d..%d", Where(), field, value, min, max));
    }
    return absl::OkStatus();
  }
  absl::Status ChargeLimit(absl::string_view field, int64_t raw) const {
    if (raw != 0 && (raw < kMinChargeRaw || raw > kMaxChargeRaw)) {
      return absl::OutOfRangeError(
          absl::StrFormat("%s: %s %.1f A is neither 0 nor within 6.0..32.0 A", Where(), field,
                          static_cast<double>(raw) / 10.0));
    }
    return absl::OkStatus();
  }
  std::string Where() const {
    return absl::StrFormat("%s (id 0x%03x)", Describe(type_, address_), frame_.id);
  }

 private:
  const CanFrame& frame_;
  const uint64_t present_;  // the bits of the DLC's bytes; bytes past it are ignored
  const uint64_t payload_;
  const MessageType type_;
  const int address_;
};

#define EVGATE_RETURN_IF_ERROR(expr)   \
  do {                                 \
    absl::Status status_ = (expr);     \
    if (!status_.ok()) return status_; \
  } while (false)

#define EVGATE_ASSIGN_OR_RETURN(lhs, expr)      \
  auto lhs##_or = (expr);                       \
  if (!lhs##_or.ok()) return lhs##_or.status(); \
  (lhs) = *lhs##_or

// Tenths (0.1 A, 0.1 V) as a double equal to the decimal literal.
double FromTenths(uint64_t raw) { return static_cast<double>(raw) / 10.0; }

int SignExtend8(uint64_t raw) {
  return raw >= 128 ? static_cast<int>(raw) - 256 : static_cast<int>(raw);
}

// ---- per-message decoders ---------------------------------------------------

absl::StatusOr<Message> DecodeAvailableCurrent(const FrameReader& r) {
  EVGATE_RETURN_IF_ERROR(r.CheckDlc(kFullDlc));
  EVGATE_RETURN_IF_ERROR(r.CheckReserved(Mask(0, 52) | Mask(56, 6)));
  AvailableCurrent m;
  static constexpr const char* kNames[3] = {"available current L1", "available current L2",
                                            "available current L3"};
  for (int p = 0; p < 3; ++p) {
    const uint64_t raw = r.Get(16 * p, 16);
    EVGATE_RETURN_IF_ERROR(r.Range(kNames[p], raw, 0, kMaxAvailableRaw));
    m.available_current_a[p] = FromTenths(raw);
  }
  m.counter = static_cast<int>(r.Get(48, 4));
  m.active_wallboxes = static_cast<int>(r.Get(56, 6));
  return m;
}

absl::StatusOr<Message> DecodeSetpoint(const FrameReader& r, int address) {
  EVGATE_RETURN_IF_ERROR(r.CheckDlc(kSetpointDlc));
  Setpoint m;
  m.address = address;
  const uint64_t current = r.Get(0, 16);
  EVGATE_RETURN_IF_ERROR(r.ChargeLimit("max current", current));
  m.max_current_a = FromTenths(current);
  for (int p = 0; p < 3; ++p) m.phase_enabled[p] = r.Get(16 + p, 1) != 0;
  if (r.Get(16, 3) == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: no phase enabled (use pause to stop charging)", r.Where()));
  }
  m.pause = r.Get(19, 1) != 0;
  m.sequence = static_cast<int>(r.Get(20, 4));
  return m;
}

absl::StatusOr<Message> DecodeWatchdogConfig(const FrameReader& r, int address) {
  EVGATE_RETURN_IF_ERROR(r.CheckDlc(kWatchdogDlc));
  WatchdogConfig m;
  m.address = address;
  const uint64_t timeout = r.Get(0, 16);
  EVGATE_RETURN_IF_ERROR(r.Range("watchdog timeout ms", timeout, kMinTimeoutMs, kMaxTimeoutMs));
  m.timeout_ms = static_cast<int>(timeout);
  const uint64_t failsafe = r.Get(16, 16);
  EVGATE_RETURN_IF_ERROR(r.ChargeLimit("failsafe current", failsafe));
  m.failsafe_current_a = FromTenths(failsafe);
  return m;
}

absl::StatusOr<Message> DecodeStatus(const FrameReader& r, int address) {
  EVGATE_RETURN_IF_ERROR(r.CheckDlc(kFullDlc));
  EVGATE_RETURN_IF_ERROR(r.CheckReserved(Mask(0, 7) | Mask(8, 54)));
  Status m;
  m.address = address;
  const uint64_t state = r.Get(0, 3);
  if (state > static_cast<uint64_t>(IecState::kF)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: undefined IEC 61851 state %d", r.Where(), state));
  }
  m.state = static_cast<IecState>(state);
  m.relay_closed = r.Get(3, 1) != 0;
  m.failsafe_active = r.Get(4, 1) != 0;
  m.paused = r.Get(5, 1) != 0;
  m.watchdog_configured = r.Get(6, 1) != 0;
  m.counter = static_cast<int>(r.Get(8, 4));
  m.applied_sequence = static_cast<int>(r.Get(12, 4));
  m.errors = static_cast<uint16_t>(r.Get(16, 16));
  for (int p = 0; p < 3; ++p) m.current_a[p] = FromTenths(r.Get(32 + 10 * p, 10));
  return m;
}

absl::StatusOr<Message> DecodeMeasurements(const FrameReader& r, int address) {
  EVGATE_RETURN_IF_ERROR(r.CheckDlc(kFullDlc));
  Measurements m;
  m.address = address;
  static constexpr const char* kNames[3] = {"voltage L1", "voltage L2", "voltage L3"};
  for (int p = 0; p < 3; ++p) {
    const uint64_t raw = r.Get(16 * p, 16);
    EVGATE_RETURN_IF_ERROR(r.Range(kNames[p], raw, 0, kMaxVoltageRaw));
    m.voltage_v[p] = FromTenths(raw);
  }
  const uint64_t power = r.Get(48, 16);
  EVGATE_RETURN_IF_ERROR(r.Range("active power W", power, 0, kMaxPowerW));
  m.active_power_w = static_cast<int>(power);
  return m;
}

absl::StatusOr<Message> DecodeEnergy(const FrameReader& r, int address) {
  EVGATE_RETURN_IF_ERROR(r.CheckDlc(kFullDlc));
  Energy m;
  m.address = address;
  m.session_energy_wh = static_cast<int64_t>(r.Get(0, 24));
  m.lifetime_energy_wh = static_cast<int64_t>(r.Get(24, 24)) * 100;
  m.relay_temperature_c = SignExtend8(r.Get(48, 8));
  m.ambient_temperature_c = SignExtend8(r.Get(56, 8));
  EVGATE_RETURN_IF_ERROR(
      r.Range("relay temperature C", m.relay_temperature_c, kMinTemperatureC, kMaxTemperatureC));
  EVGATE_RETURN_IF_ERROR(r.Range("ambient temperature C", m.ambient_temperature_c, kMinTemperatureC,
                                 kMaxTemperatureC));
  return m;
}

absl::StatusOr<Message> DecodeRfid(const FrameReader& r, int address) {
  EVGATE_RETURN_IF_ERROR(r.CheckDlc(kFullDlc));
  RfidFragment m;
  m.address = address;
  const uint64_t length = r.Get(0, 4);
  EVGATE_RETURN_IF_ERROR(r.Range("UID length", length, 1, kMaxUidLength));
  m.uid_length = static_cast<int>(length);
  m.fragment = static_cast<int>(r.Get(4, 1));
  m.tap_sequence = static_cast<int>(r.Get(5, 3));
  int carried;
  if (m.fragment == 0) {
    carried = std::min(m.uid_length, kUidBytesInFragment0);
  } else {
    carried = m.uid_length - kUidBytesInFragment0;
    if (carried <= 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: fragment 1 of a %d-byte UID (fits in fragment 0)", r.Where(), m.uid_length));
    }
  }
  EVGATE_RETURN_IF_ERROR(r.CheckReserved(Mask(0, 8) | Mask(8, 8 * carried)));
  for (int i = 0; i < carried; ++i) m.bytes.push_back(static_cast<uint8_t>(r.Get(8 + 8 * i, 8)));
  return m;
}

absl::StatusOr<Message> DecodeIdentity(const FrameReader& r, int address) {
  EVGATE_RETURN_IF_ERROR(r.CheckDlc(kFullDlc));
  const uint64_t page = r.Get(0, 8);
  if (page == 0) {
    EVGATE_RETURN_IF_ERROR(r.CheckReserved(Mask(0, 49) | Mask(56, 8)));
    IdentityInfo m;
    m.address = address;
    const uint64_t model = r.Get(8, 8);
    if (model != static_cast<uint64_t>(Model::kEvPlus7kW1Phase) &&
        model != static_cast<uint64_t>(Model::kEvPlus22kW3Phase)) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: unknown model %d", r.Where(), model));
    }
    m.model = static_cast<Model>(model);
    for (int i = 0; i < 3; ++i) m.firmware[i] = static_cast<int>(r.Get(16 + 8 * i, 8));
    const uint64_t max_current = r.Get(40, 8);
    EVGATE_RETURN_IF_ERROR(r.Range("max current A", max_current, 6, 32));
    m.max_current_a = static_cast<int>(max_current);
    m.tethered_cable = r.Get(48, 1) != 0;
    const uint64_t version = r.Get(56, 8);
    EVGATE_RETURN_IF_ERROR(r.Range("protocol version", version, 1, 255));
    m.protocol_version = static_cast<int>(version);
    return m;
  }
  if (page > kSerialPages) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: undefined identity page %d", r.Where(), page));
  }
  IdentitySerial m;
  m.address = address;
  m.page = static_cast<int>(page);
  bool padding = false;
  for (int i = 0; i < kSerialCharsPerPage; ++i) {
    const auto c = static_cast<unsigned char>(r.Get(8 + 8 * i, 8));
    if (c == 0) {
      padding = true;
      continue;
    }
    if (padding || c < 0x20 || c > 0x7E) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: serial character %d (0x%02x) is not printable ASCII before the NUL padding",
          r.Where(), i, c));
    }
    m.text.push_back(static_cast<char>(c));
  }
  return m;
}

// ---- per-message encoders (checked) ------------------------------------------

absl::Status CheckCounter(absl::string_view what, absl::string_view field, int value, int max) {
  return CheckInt(what, field, value, 0, max);
}

}  // namespace

absl::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kAvailableCurrent:
      return "AvailableCurrent";
    case MessageType::kSetpoint:
      return "Setpoint";
    case MessageType::kWatchdogConfig:
      return "WatchdogConfig";
    case MessageType::kStatus:
      return "Status";
    case MessageType::kMeasurements:
      return "Measurements";
    case MessageType::kEnergy:
      return "Energy";
    case MessageType::kRfid:
      return "Rfid";
    case MessageType::kIdentity:
      return "Identity";
  }
  return "unknown";
}

char IecStateLetter(IecState state) {
  const auto i = static_cast<int>(state);
  return i >= 0 && i <= 5 ? static_cast<char>('A' + i) : '?';
}

namespace {
constexpr absl::string_view kErrorNames[kErrorCodeCount] = {
    "OCP", "OVP", "LVP", "MET", "CAN", "PE",  "CP", "R12",
    "R3N", "ROT", "ELK", "OCT", "IRD", "FAN", "PP", "MIS"};
}  // namespace

absl::string_view ErrorCodeName(ErrorCode code) {
  const auto i = static_cast<int>(code);
  return i >= 0 && i < kErrorCodeCount ? kErrorNames[i] : "unknown";
}

std::optional<ErrorCode> ErrorCodeFromName(absl::string_view name) {
  for (int i = 0; i < kErrorCodeCount; ++i) {
    if (absl::EqualsIgnoreCase(name, kErrorNames[i])) return static_cast<ErrorCode>(i);
  }
  return std::nullopt;
}

absl::string_view ModelName(Model model) {
  switch (model) {
    case Model::kEvPlus7kW1Phase:
      return "Cabur EV PLUS 7.4 kW single-phase";
    case Model::kEvPlus22kW3Phase:
      return "Cabur EV PLUS 22 kW three-phase";
  }
  return "unknown";
}

int ModelPhases(Model model) { return model == Model::kEvPlus22kW3Phase ? 3 : 1; }

bool operator==(const AvailableCurrent& a, const AvailableCurrent& b) {
  return std::tie(a.available_current_a, a.active_wallboxes, a.counter) ==
         std::tie(b.available_current_a, b.active_wallboxes, b.counter);
}
bool operator==(const Setpoint& a, const Setpoint& b) {
  return std::tie(a.address, a.max_current_a, a.phase_enabled, a.pause, a.sequence) ==
         std::tie(b.address, b.max_current_a, b.phase_enabled, b.pause, b.sequence);
}
bool operator==(const WatchdogConfig& a, const WatchdogConfig& b) {
  return std::tie(a.address, a.timeout_ms, a.failsafe_current_a) ==
         std::tie(b.address, b.timeout_ms, b.failsafe_current_a);
}
bool operator==(const Status& a, const Status& b) {
  return std::tie(a.address, a.state, a.relay_closed, a.failsafe_active, a.paused,
                  a.watchdog_configured, a.counter, a.applied_sequence, a.errors, a.current_a) ==
         std::tie(b.address, b.state, b.relay_closed, b.failsafe_active, b.paused,
                  b.watchdog_configured, b.counter, b.applied_sequence, b.errors, b.current_a);
}
bool operator==(const Measurements& a, const Measurements& b) {
  return std::tie(a.address, a.voltage_v, a.active_power_w) ==
         std::tie(b.address, b.voltage_v, b.active_power_w);
}
bool operator==(const Energy& a, const Energy& b) {
  return std::tie(a.address, a.session_energy_wh, a.lifetime_energy_wh, a.relay_temperature_c,
                  a.ambient_temperature_c) == std::tie(b.address, b.session_energy_wh,
                                                       b.lifetime_energy_wh, b.relay_temperature_c,
                                                       b.ambient_temperature_c);
}
bool operator==(const RfidFragment& a, const RfidFragment& b) {
  return std::tie(a.address, a.tap_sequence, a.uid_length, a.fragment, a.bytes) ==
         std::tie(b.address, b.tap_sequence, b.uid_length, b.fragment, b.bytes);
}
bool operator==(const IdentityInfo& a, const IdentityInfo& b) {
  return std::tie(a.address, a.model, a.firmware, a.max_current_a, a.tethered_cable,
                  a.protocol_version) == std::tie(b.address, b.model, b.firmware, b.max_current_a,
                                                  b.tethered_cable, b.protocol_version);
}
bool operator==(const IdentitySerial& a, const IdentitySerial& b) {
  return std::tie(a.address, a.page, a.text) == std::tie(b.address, b.page, b.text);
}
bool operator==(const RfidTap& a, const RfidTap& b) {
  return std::tie(a.address, a.tap_sequence, a.uid) == std::tie(b.address, b.tap_sequence, b.uid);
}
bool operator==(const Identity& a, const Identity& b) {
  return a.info == b.info && a.serial == b.serial;
}

int AddressOf(const Message& message) {
  return std::visit(
      [](const auto& m) -> int {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, AvailableCurrent>) {
          return 0;
        } else {
          return m.address;
        }
      },
      message);
}

absl::StatusOr<CanFrame> Encode(const AvailableCurrent& m) {
  constexpr absl::string_view kWhat = "AvailableCurrent";
  PayloadWriter w;
  static constexpr const char* kNames[3] = {"available current L1", "available current L2",
                                            "available current L3"};
  for (int p = 0; p < 3; ++p) {
    int64_t raw;
    EVGATE_ASSIGN_OR_RETURN(
        raw, ToRaw(kWhat, kNames[p], m.available_current_a[p], 10, kMaxAvailableRaw));
    w.Put(16 * p, 16, static_cast<uint64_t>(raw));
  }
  EVGATE_RETURN_IF_ERROR(CheckCounter(kWhat, "counter", m.counter, 15));
  EVGATE_RETURN_IF_ERROR(CheckInt(kWhat, "active wallboxes", m.active_wallboxes, 0, kMaxAddress));
  w.Put(48, 4, static_cast<uint64_t>(m.counter));
  w.Put(56, 6, static_cast<uint64_t>(m.active_wallboxes));
  return w.Frame(MessageType::kAvailableCurrent, 0, kFullDlc);
}

absl::StatusOr<CanFrame> Encode(const Setpoint& m) {
  constexpr absl::string_view kWhat = "Setpoint";
  EVGATE_RETURN_IF_ERROR(CheckAddress(kWhat, m.address));
  int64_t current;
  EVGATE_ASSIGN_OR_RETURN(current, ChargeLimitToRaw(kWhat, "max current", m.max_current_a));
  if (!m.phase_enabled[0] && !m.phase_enabled[1] && !m.phase_enabled[2]) {
    return absl::InvalidArgumentError("Setpoint: no phase enabled (use pause to stop charging)");
  }
  EVGATE_RETURN_IF_ERROR(CheckCounter(kWhat, "sequence", m.sequence, 15));
  PayloadWriter w;
  w.Put(0, 16, static_cast<uint64_t>(current));
  for (int p = 0; p < 3; ++p) w.Put(16 + p, 1, m.phase_enabled[p] ? 1 : 0);
  w.Put(19, 1, m.pause ? 1 : 0);
  w.Put(20, 4, static_cast<uint64_t>(m.sequence));
  return w.Frame(MessageType::kSetpoint, m.address, kSetpointDlc);
}

absl::StatusOr<CanFrame> Encode(const WatchdogConfig& m) {
  constexpr absl::string_view kWhat = "WatchdogConfig";
  EVGATE_RETURN_IF_ERROR(CheckAddress(kWhat, m.address));
  EVGATE_RETURN_IF_ERROR(CheckInt(kWhat, "timeout ms", m.timeout_ms, kMinTimeoutMs, kMaxTimeoutMs));
  int64_t failsafe;
  EVGATE_ASSIGN_OR_RETURN(failsafe,
                          ChargeLimitToRaw(kWhat, "failsafe current", m.failsafe_current_a));
  PayloadWriter w;
  w.Put(0, 16, static_cast<uint64_t>(m.timeout_ms));
  w.Put(16, 16, static_cast<uint64_t>(failsafe));
  return w.Frame(MessageType::kWatchdogConfig, m.address, kWatchdogDlc);
}

absl::StatusOr<CanFrame> Encode(const Status& m) {
  constexpr absl::string_view kWhat = "Status";
  EVGATE_RETURN_IF_ERROR(CheckAddress(kWhat, m.address));
  const auto state = static_cast<int>(m.state);
  EVGATE_RETURN_IF_ERROR(CheckInt(kWhat, "IEC state", state, 0, 5));
  EVGATE_RETURN_IF_ERROR(CheckCounter(kWhat, "counter", m.counter, 15));
  EVGATE_RETURN_IF_ERROR(CheckCounter(kWhat, "applied sequence", m.applied_sequence, 15));
  PayloadWriter w;
  w.Put(0, 3, static_cast<uint64_t>(state));
  w.Put(3, 1, m.relay_closed ? 1 : 0);
  w.Put(4, 1, m.failsafe_active ? 1 : 0);
  w.Put(5, 1, m.paused ? 1 : 0);
  w.Put(6, 1, m.watchdog_configured ? 1 : 0);
  w.Put(8, 4, static_cast<uint64_t>(m.counter));
  w.Put(12, 4, static_cast<uint64_t>(m.applied_sequence));
  w.Put(16, 16, m.errors);
  static constexpr const char* kNames[3] = {"current L1", "current L2", "current L3"};
  for (int p = 0; p < 3; ++p) {
    int64_t raw;
    EVGATE_ASSIGN_OR_RETURN(raw, ToRaw(kWhat, kNames[p], m.current_a[p], 10, kMaxPhaseCurrentRaw));
    w.Put(32 + 10 * p, 10, static_cast<uint64_t>(raw));
  }
  return w.Frame(MessageType::kStatus, m.address, kFullDlc);
}

absl::StatusOr<CanFrame> Encode(const Measurements& m) {
  constexpr absl::string_view kWhat = "Measurements";
  EVGATE_RETURN_IF_ERROR(CheckAddress(kWhat, m.address));
  PayloadWriter w;
  static constexpr const char* kNames[3] = {"voltage L1", "voltage L2", "voltage L3"};
  for (int p = 0; p < 3; ++p) {
    int64_t raw;
    EVGATE_ASSIGN_OR_RETURN(raw, ToRaw(kWhat, kNames[p], m.voltage_v[p], 10, kMaxVoltageRaw));
    w.Put(16 * p, 16, static_cast<uint64_t>(raw));
  }
  EVGATE_RETURN_IF_ERROR(CheckInt(kWhat, "active power W", m.active_power_w, 0, kMaxPowerW));
  w.Put(48, 16, static_cast<uint64_t>(m.active_power_w));
  return w.Frame(MessageType::kMeasurements, m.address, kFullDlc);
}

absl::StatusOr<CanFrame> Encode(const Energy& m) {
  constexpr absl::string_view kWhat = "Energy";
  EVGATE_RETURN_IF_ERROR(CheckAddress(kWhat, m.address));
  EVGATE_RETURN_IF_ERROR(
      CheckInt(kWhat, "session energy Wh", m.session_energy_wh, 0, kMaxSessionWh));
  EVGATE_RETURN_IF_ERROR(
      CheckInt(kWhat, "lifetime energy Wh", m.lifetime_energy_wh, 0, kMaxLifetimeRaw * 100));
  EVGATE_RETURN_IF_ERROR(CheckInt(kWhat, "relay temperature C", m.relay_temperature_c,
                                  kMinTemperatureC, kMaxTemperatureC));
  EVGATE_RETURN_IF_ERROR(CheckInt(kWhat, "ambient temperature C", m.ambient_temperature_c,
                                  kMinTemperatureC, kMaxTemperatureC));
  PayloadWriter w;
  w.Put(0, 24, static_cast<uint64_t>(m.session_energy_wh));
  // The lifetime counter is sent in 0.1 kWh: truncated, a meter never counts ahead.
  w.Put(24, 24, static_cast<uint64_t>(m.lifetime_energy_wh / 100));
  w.Put(48, 8, static_cast<uint64_t>(m.relay_temperature_c) & 0xFF);
  w.Put(56, 8, static_cast<uint64_t>(m.ambient_temperature_c) & 0xFF);
  return w.Frame(MessageType::kEnergy, m.address, kFullDlc);
}

absl::StatusOr<CanFrame> Encode(const RfidFragment& m) {
  constexpr absl::string_view kWhat = "Rfid";
  EVGATE_RETURN_IF_ERROR(CheckAddress(kWhat, m.address));
  EVGATE_RETURN_IF_ERROR(CheckInt(kWhat, "UID length", m.uid_length, 1, kMaxUidLength));
  EVGATE_RETURN_IF_ERROR(CheckInt(kWhat, "fragment", m.fragment, 0, 1));
  EVGATE_RETURN_IF_ERROR(CheckCounter(kWhat, "tap sequence", m.tap_sequence, 7));
  const int expected = m.fragment == 0 ? std::min(m.uid_length, kUidBytesInFragment0)
                                       : m.uid_length - kUidBytesInFragment0;
  if (expected <= 0 || static_cast<int>(m.bytes.size()) != expected) {
    return absl::InvalidArgumentError(
        absl::StrFormat("Rfid: fragment %d of a %d-byte UID carries %d bytes, not %zu", m.fragment,
                        m.uid_length, std::max(expected, 0), m.bytes.size()));
  }
  PayloadWriter w;
  w.Put(0, 4, static_cast<uint64_t>(m.uid_length));
  w.Put(4, 1, static_cast<uint64_t>(m.fragment));
  w.Put(5, 3, static_cast<uint64_t>(m.tap_sequence));
  for (int i = 0; i < expected; ++i) w.Put(8 + 8 * i, 8, m.bytes[i]);
  return w.Frame(MessageType::kRfid, m.address, kFullDlc);
}

absl::StatusOr<CanFrame> Encode(const IdentityInfo& m) {
  constexpr absl::string_view kWhat = "Identity";
  EVGATE_RETURN_IF_ERROR(CheckAddress(kWhat, m.address));
  if (m.model != Model::kEvPlus7kW1Phase && m.model != Model::kEvPlus22kW3Phase) {
    return absl::InvalidArgumentError("Identity: unknown model");
  }
  for (int v : m.firmware) EVGATE_RETURN_IF_ERROR(CheckInt(kWhat, "firmware part", v, 0, 255));
  EVGATE_RETURN_IF_ERROR(CheckInt(kWhat, "max current A", m.max_current_a, 6, 32));
  EVGATE_RETURN_IF_ERROR(CheckInt(kWhat, "protocol version", m.protocol_version, 1, 255));
  PayloadWriter w;
  w.Put(0, 8, 0);
  w.Put(8, 8, static_cast<uint64_t>(m.model));
  for (int i = 0; i < 3; ++i) w.Put(16 + 8 * i, 8, static_cast<uint64_t>(m.firmware[i]));
  w.Put(40, 8, static_cast<uint64_t>(m.max_current_a));
  w.Put(48, 1, m.tethered_cable ? 1 : 0);
  w.Put(56, 8, static_cast<uint64_t>(m.protocol_version));
  return w.Frame(MessageType::kIdentity, m.address, kFullDlc);
}

absl::StatusOr<CanFrame> Encode(const IdentitySerial& m) {
  constexpr absl::string_view kWhat = "Identity";
  EVGATE_RETURN_IF_ERROR(CheckAddress(kWhat, m.address));
  EVGATE_RETURN_IF_ERROR(CheckInt(kWhat, "serial page", m.page, 1, kSerialPages));
  if (m.text.size() > static_cast<size_t>(kSerialCharsPerPage)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Identity: serial page %d has %zu characters, at most 7", m.page, m.text.size()));
  }
  PayloadWriter w;
  w.Put(0, 8, static_cast<uint64_t>(m.page));
  for (size_t i = 0; i < m.text.size(); ++i) {
    const auto c = static_cast<unsigned char>(m.text[i]);
    if (c < 0x20 || c > 0x7E) {
      return absl::InvalidArgumentError(
          absl::StrFormat("Identity: serial character 0x%02x is not printable ASCII", c));
    }
    w.Put(8 + 8 * static_cast<int>(i), 8, c);
  }
  return w.Frame(MessageType::kIdentity, m.address, kFullDlc);
}

absl::StatusOr<CanFrame> Encode(const Message& message) {
  return std::visit([](const auto& m) { return Encode(m); }, message);
}

absl::StatusOr<Message> Decode(const CanFrame& frame) {
  if (frame.extended) {
    return absl::NotFoundError(
        absl::StrFormat("extended id 0x%08x is not an evgate wallbox frame", frame.id));
  }
  if (frame.id > 0x7FF) {
    return absl::NotFoundError(absl::StrFormat("id 0x%x is not an 11-bit identifier", frame.id));
  }
  const uint32_t type_bits = frame.id >> 6;
  const int address = static_cast<int>(frame.id & 0x3F);
  if (type_bits < static_cast<uint32_t>(MessageType::kAvailableCurrent) ||
      type_bits > static_cast<uint32_t>(MessageType::kIdentity)) {
    return absl::NotFoundError(
        absl::StrFormat("id 0x%03x is not an evgate wallbox frame (type %d)", frame.id, type_bits));
  }
  const auto type = static_cast<MessageType>(type_bits);
  if (type == MessageType::kAvailableCurrent ? address != 0 : address == 0) {
    return absl::NotFoundError(
        absl::StrFormat("id 0x%03x: %s with address %d is not an evgate wallbox frame", frame.id,
                        MessageTypeName(type), address));
  }
  if (frame.remote) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s (id 0x%03x): remote (RTR) frames are not used", Describe(type, address), frame.id));
  }
  if (frame.dlc > 8) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s (id 0x%03x): bad DLC %d", Describe(type, address), frame.id, frame.dlc));
  }
  const FrameReader r(frame, type, address);
  switch (type) {
    case MessageType::kAvailableCurrent:
      return DecodeAvailableCurrent(r);
    case MessageType::kSetpoint:
      return DecodeSetpoint(r, address);
    case MessageType::kWatchdogConfig:
      return DecodeWatchdogConfig(r, address);
    case MessageType::kStatus:
      return DecodeStatus(r, address);
    case MessageType::kMeasurements:
      return DecodeMeasurements(r, address);
    case MessageType::kEnergy:
      return DecodeEnergy(r, address);
    case MessageType::kRfid:
      return DecodeRfid(r, address);
    case MessageType::kIdentity:
      return DecodeIdentity(r, address);
  }
  return absl::NotFoundError("unreachable message type");
}

absl::StatusOr<std::vector<CanFrame>> EncodeRfidTap(const RfidTap& tap) {
  if (tap.uid.empty() || tap.uid.size() > static_cast<size_t>(kMaxUidLength)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("Rfid: UID of %zu bytes, expected 1..10", tap.uid.size()));
  }
  const int length = static_cast<int>(tap.uid.size());
  std::vector<CanFrame> frames;
  for (int fragment = 0; fragment < 2; ++fragment) {
    const int begin = fragment * kUidBytesInFragment0;
    if (begin >= length) break;
    RfidFragment f;
    f.address = tap.address;
    f.tap_sequence = tap.tap_sequence;
    f.uid_length = length;
    f.fragment = fragment;
    f.bytes.assign(tap.uid.begin() + begin,
                   tap.uid.begin() + std::min(length, begin + kUidBytesInFragment0));
    absl::StatusOr<CanFrame> frame = Encode(f);
    if (!frame.ok()) return frame.status();
    frames.push_back(*frame);
  }
  return frames;
}

std::optional<RfidTap> RfidAssembler::Add(const RfidFragment& fragment) {
  if (fragment.fragment == 0) {
    pending_.erase(fragment.address);
    if (fragment.uid_length <= kUidBytesInFragment0) {
      return RfidTap{fragment.address, fragment.tap_sequence, fragment.bytes};
    }
    pending_[fragment.address] = fragment;
    return std::nullopt;
  }
  auto it = pending_.find(fragment.address);
  if (it == pending_.end()) return std::nullopt;
  RfidFragment first = std::move(it->second);
  pending_.erase(it);
  if (first.tap_sequence != fragment.tap_sequence || first.uid_length != fragment.uid_length) {
    return std::nullopt;
  }
  RfidTap tap{fragment.address, fragment.tap_sequence, std::move(first.bytes)};
  tap.uid.insert(tap.uid.end(), fragment.bytes.begin(), fragment.bytes.end());
  return tap;
}

absl::StatusOr<std::vector<CanFrame>> EncodeIdentity(const Identity& identity) {
  if (identity.serial.size() > static_cast<size_t>(kMaxSerialLength)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Identity: serial number of %zu characters, at most 28", identity.serial.size()));
  }
  std::vector<CanFrame> frames;
  absl::StatusOr<CanFrame> info = Encode(identity.info);
  if (!info.ok()) return info.status();
  frames.push_back(*info);
  for (int page = 1; page <= kSerialPages; ++page) {
    IdentitySerial s;
    s.address = identity.info.address;
    s.page = page;
    const size_t begin = static_cast<size_t>(page - 1) * kSerialCharsPerPage;
    if (begin < identity.serial.size()) s.text = identity.serial.substr(begin, kSerialCharsPerPage);
    absl::StatusOr<CanFrame> frame = Encode(s);
    if (!frame.ok()) return frame.status();
    frames.push_back(*frame);
  }
  return frames;
}

std::optional<Identity> IdentityAssembler::Add(const IdentityInfo& info) {
  Partial& p = pending_[info.address];
  p = Partial{};
  p.identity.info = info;
  return std::nullopt;
}

std::optional<Identity> IdentityAssembler::Add(const IdentitySerial& serial) {
  auto it = pending_.find(serial.address);
  if (it == pending_.end()) return std::nullopt;
  Partial& p = it->second;
  // Pages come in order; a short page ends the serial, so later pages must be
  // empty.
  const bool ended =
      p.identity.serial.size() < static_cast<size_t>(p.next_page - 1) * kSerialCharsPerPage;
  if (serial.page != p.next_page || (ended && !serial.text.empty())) {
    pending_.erase(it);
    return std::nullopt;
  }
  p.identity.serial += serial.text;
  if (++p.next_page <= kSerialPages) return std::nullopt;
  Identity done = std::move(p.identity);
  pending_.erase(it);
  return done;
}

}  // namespace evgate::can::wallbox
