// The evgate wallbox CAN protocol: typed messages and their codec.
//
// The protocol is specified in docs/protocols/can-wallbox.md and described
// for CAN tools in evgate_wallbox.dbc; this file is its one implementation.
// It is modelled on the Cabur EV PLUS master/slave load balancing: wallboxes
// have a CAN address 1-63 (the Cabur "CANAddr"), the controller (the Cabur
// master's role) broadcasts the available current and sends each wallbox its
// own setpoint, and the wallboxes report status, measurements, RFID taps and
// their identity.
//
// Identifiers are 11-bit: `id = type << 6 | address`, so one message type
// occupies 64 consecutive ids and a lower type wins arbitration. Payloads are
// little-endian (DBC "Intel", @1+); every message has a fixed DLC.
//
// Encode() checks every field against its documented range and returns an
// error instead of a frame that would say something else: the controller
// must never put a wrong setpoint on the bus. Values are rounded to the
// field's step (to nearest; current limits down). Decode() never trusts a frame: it
// returns either a fully checked message or an error that says what was
// wrong, with one status code per kind of fault so a bus owner can count
// them separately:
//   NotFound         the id is not part of this protocol (another device's
//                    frame, an extended or RTR frame): usually not an error;
//   InvalidArgument  an id of this protocol with a bad DLC, reserved bits
//                    set or an undefined enumeration value;
//   OutOfRange       a field outside its documented range.
//
// Multi-frame messages (an RFID UID longer than 7 bytes, the identity with
// its serial number) are decoded frame by frame; RfidAssembler and
// IdentityAssembler put the frames of one wallbox back together.
//
// Thread-safety: the free functions are thread-safe; the assemblers are
// thread-compatible.
#ifndef EVGATE_DEVICE_DRIVERS_CAN_WALLBOX_PROTOCOL_H_
#define EVGATE_DEVICE_DRIVERS_CAN_WALLBOX_PROTOCOL_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "device_drivers/can/can_bus.h"

namespace evgate::can::wallbox {

inline constexpr int kProtocolVersion = 1;
inline constexpr int kMinAddress = 1;
inline constexpr int kMaxAddress = 63;
inline constexpr int kDefaultBitrate = 250'000;

// The message type: bits 10..6 of the identifier.
enum class MessageType : uint8_t {
  kAvailableCurrent = 1,  // controller -> all, address field 0
  kSetpoint = 2,          // controller -> wallbox
  kWatchdogConfig = 3,    // controller -> wallbox
  kStatus = 4,            // wallbox -> controller, 5 Hz
  kMeasurements = 5,      // wallbox -> controller, 1 Hz
  kEnergy = 6,            // wallbox -> controller, 1 Hz
  kRfid = 7,              // wallbox -> controller, on a card tap
  kIdentity = 8,          // wallbox -> controller, at power-up and every 10 s
};
absl::string_view MessageTypeName(MessageType type);

// The 11-bit identifier of `type` for `address` (0 for kAvailableCurrent).
// The caller passes a valid address; Encode() checks it.
constexpr uint32_t FrameId(MessageType type, int address) {
  return (static_cast<uint32_t>(type) << 6) | static_cast<uint32_t>(address & 0x3F);
}

// IEC 61851-1 control pilot state.
enum class IecState : uint8_t {
  kA = 0,  // no vehicle
  kB = 1,  // vehicle connected, not asking for energy
  kC = 2,  // vehicle asks for energy (charging when the relay is closed)
  kD = 3,  // as C, ventilation required
  kE = 4,  // no pilot (short circuit / no supply)
  kF = 5,  // EVSE not available (fault)
};
char IecStateLetter(IecState state);

// The Cabur EV PLUS display error codes ("ERR OCP" ...), one status bit each;
// the enumerator value is the bit number in Status::errors.
enum class ErrorCode : uint8_t {
  kOcp = 0,   // over-current
  kOvp = 1,   // over-voltage
  kLvp = 2,   // under-voltage
  kMet = 3,   // meter communication
  kCan = 4,   // CAN bus (ERR CAN ADDR: e.g. address conflict)
  kPe = 5,    // ground fault
  kCp = 6,    // CP voltage
  kR12 = 7,   // relay 1 blocked
  kR3n = 8,   // relay 2 blocked
  kRot = 9,   // relay over-temperature
  kElk = 10,  // electronic lock
  kOct = 11,  // plug holder over-temperature
  kIrd = 12,  // leakage
  kFan = 13,  // fan blocked
  kPp = 14,   // unreliable connection (proximity pilot)
  kMis = 15,  // missing power phase
};
inline constexpr int kErrorCodeCount = 16;
// "OCP" ... "MIS", as on the wallbox display after "ERR ".
absl::string_view ErrorCodeName(ErrorCode code);
// The code whose name is `name` (case-insensitive), if any.
std::optional<ErrorCode> ErrorCodeFromName(absl::string_view name);
constexpr uint16_t ErrorBit(ErrorCode code) {
  return static_cast<uint16_t>(1u << static_cast<unsigned>(code));
}

// Wallbox models (Cabur EVPLUS7x / EVPLUS22x).
enum class Model : uint8_t {
  kEvPlus7kW1Phase = 1,   // 7.4 kW, single-phase
  kEvPlus22kW3Phase = 2,  // 22 kW, three-phase
};
absl::string_view ModelName(Model model);
int ModelPhases(Model model);

// Controller -> all wallboxes, every 1 s: the current the site has left for
// the wallboxes on this bus, per grid phase (the Cabur master's "overall
// amount of available power"). Also the controller's heartbeat.
struct AvailableCurrent {
  std::array<double, 3> available_current_a{};  // 0..3000.0 A, 0.1 A steps
  int active_wallboxes = 0;                     // 0..63 wallboxes sharing it
  int counter = 0;                              // 0..15, +1 per frame
};

// Controller -> one wallbox: what it may offer the vehicle.
struct Setpoint {
  int address = 0;
  // 0 (no current) or 6.0..32.0 A per phase, 0.1 A steps. Encode rounds
  // DOWN to the step, so the wallbox never gets more than it was given.
  double max_current_a = 0;
  // The wallbox's own L1..L3 terminals; at least one enabled. A single-phase
  // wallbox uses L1 only.
  std::array<bool, 3> phase_enabled{true, true, true};
  // Stop charging (relay open) while keeping the session.
  bool pause = false;
  // 0..15, +1 per new setpoint; echoed in Status::applied_sequence.
  int sequence = 0;
};

// Controller -> one wallbox: its watchdog. When no valid Setpoint for it
// arrives within `timeout_ms`, the wallbox offers `failsafe_current_a`
// until the next Setpoint.
struct WatchdogConfig {
  int address = 0;
  int timeout_ms = 0;             // 100..60000
  double failsafe_current_a = 0;  // 0 or 6.0..32.0 A, 0.1 A steps, rounded down
};

// Wallbox -> controller, every 200 ms and on every change.
struct Status {
  int address = 0;
  IecState state = IecState::kA;
  bool relay_closed = false;
  // The watchdog expired: the wallbox offers its failsafe current.
  bool failsafe_active = false;
  bool paused = false;
  // A WatchdogConfig was received since power-up (else: defaults in force,
  // the controller must send it).
  bool watchdog_configured = false;
  int counter = 0;           // 0..15, +1 per status frame
  int applied_sequence = 0;  // 0..15, Setpoint::sequence last applied
  uint16_t errors = 0;       // ErrorBit(code) set per active fault
  // Measured per-phase current on the wallbox's L1..L3, 0..102.3 A, 0.1 A.
  std::array<double, 3> current_a{};
  bool HasError(ErrorCode code) const { return (errors & ErrorBit(code)) != 0; }
};

// Wallbox -> controller, every 1 s.
struct Measurements {
  int address = 0;
  std::array<double, 3> voltage_v{};  // 0..500.0 V, 0.1 V steps
  int active_power_w = 0;             // 0..30000 W
};

// Wallbox -> controller, every 1 s.
struct Energy {
  int address = 0;
  int64_t session_energy_wh = 0;  // since plug-in, 0..16777215 Wh
  // MID meter total, 0..1677721.5 kWh in 0.1 kWh steps, given in Wh
  // (a multiple of 100).
  int64_t lifetime_energy_wh = 0;
  int relay_temperature_c = 0;    // -40..125
  int ambient_temperature_c = 0;  // -40..125
};

// Wallbox -> controller: one frame of a card tap. A UID of up to 7 bytes
// fits in fragment 0; 8..10 bytes continue in fragment 1.
struct RfidFragment {
  int address = 0;
  int tap_sequence = 0;  // 0..7, +1 per tap, the same in both fragments
  int uid_length = 0;    // 1..10 bytes, the whole UID
  int fragment = 0;      // 0 or 1
  // The UID bytes this fragment carries (fragment 0: bytes 0..6, fragment 1:
  // bytes 7..9), only as many as uid_length asks for.
  std::vector<uint8_t> bytes;
};

// Wallbox -> controller: page 0 of the identity.
struct IdentityInfo {
  int address = 0;
  Model model = Model::kEvPlus7kW1Phase;
  std::array<int, 3> firmware{};            // major, minor, patch, 0..255 each
  int max_current_a = 0;                    // the configured Max Current, 6..32 A
  bool tethered_cable = false;              // Cabur case C (cable) vs case B (socket)
  int protocol_version = kProtocolVersion;  // 1..255
};

// Wallbox -> controller: pages 1..4 of the identity, 7 characters of the
// serial number each (printable ASCII, NUL-padded at the end).
inline constexpr int kSerialPages = 4;
inline constexpr int kSerialCharsPerPage = 7;
inline constexpr int kMaxSerialLength = kSerialPages * kSerialCharsPerPage;  // 28
struct IdentitySerial {
  int address = 0;
  int page = 1;      // 1..4
  std::string text;  // 0..7 characters (the NUL padding removed)
};

// Field-by-field equality (tests, change detection).
bool operator==(const AvailableCurrent& a, const AvailableCurrent& b);
bool operator==(const Setpoint& a, const Setpoint& b);
bool operator==(const WatchdogConfig& a, const WatchdogConfig& b);
bool operator==(const Status& a, const Status& b);
bool operator==(const Measurements& a, const Measurements& b);
bool operator==(const Energy& a, const Energy& b);
bool operator==(const RfidFragment& a, const RfidFragment& b);
bool operator==(const IdentityInfo& a, const IdentityInfo& b);
bool operator==(const IdentitySerial& a, const IdentitySerial& b);

using Message = std::variant<AvailableCurrent, Setpoint, WatchdogConfig, Status, Measurements,
                             Energy, RfidFragment, IdentityInfo, IdentitySerial>;

// The wallbox address a message concerns (0 for AvailableCurrent).
int AddressOf(const Message& message);

absl::StatusOr<CanFrame> Encode(const AvailableCurrent& message);
absl::StatusOr<CanFrame> Encode(const Setpoint& message);
absl::StatusOr<CanFrame> Encode(const WatchdogConfig& message);
absl::StatusOr<CanFrame> Encode(const Status& message);
absl::StatusOr<CanFrame> Encode(const Measurements& message);
absl::StatusOr<CanFrame> Encode(const Energy& message);
absl::StatusOr<CanFrame> Encode(const RfidFragment& message);
absl::StatusOr<CanFrame> Encode(const IdentityInfo& message);
absl::StatusOr<CanFrame> Encode(const IdentitySerial& message);
absl::StatusOr<CanFrame> Encode(const Message& message);

// Decodes one frame (error codes in the file comment).
absl::StatusOr<Message> Decode(const CanFrame& frame);

// A whole card tap: the frames it takes (1 or 2) and its reassembly.
struct RfidTap {
  int address = 0;
  int tap_sequence = 0;
  std::vector<uint8_t> uid;  // 1..10 bytes
};
bool operator==(const RfidTap& a, const RfidTap& b);
absl::StatusOr<std::vector<CanFrame>> EncodeRfidTap(const RfidTap& tap);

// Puts RFID fragments back together, per wallbox. A fragment 0 starts a tap
// (dropping an unfinished one of the same wallbox); fragment 1 completes it
// only if tap sequence and length match. Returns the tap once complete.
class RfidAssembler {
 public:
  std::optional<RfidTap> Add(const RfidFragment& fragment);

 private:
  std::map<int, RfidFragment> pending_;  // by address
};

// A whole identity: page 0 and the serial number pages.
struct Identity {
  IdentityInfo info;
  std::string serial;  // 0..28 printable ASCII characters
};
bool operator==(const Identity& a, const Identity& b);
// Five frames: page 0, then serial pages 1..4.
absl::StatusOr<std::vector<CanFrame>> EncodeIdentity(const Identity& identity);

// Puts identity pages back together, per wallbox: page 0 then pages 1..4 in
// order (as EncodeIdentity sends them); a page out of order restarts the
// collection. Returns the identity when page 4 completes it.
class IdentityAssembler {
 public:
  std::optional<Identity> Add(const IdentityInfo& info);
  std::optional<Identity> Add(const IdentitySerial& serial);

 private:
  struct Partial {
    Identity identity;
    int next_page = 1;
  };
  std::map<int, Partial> pending_;  // by address
};

}  // namespace evgate::can::wallbox

#endif  // EVGATE_DEVICE_DRIVERS_CAN_WALLBOX_PROTOCOL_H_
