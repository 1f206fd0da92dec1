// The device profiles evgate knows: one table with what each supported meter,
// wallbox, charger and off-grid box can do, taken from the vendor manuals in
// shared/seeds/ (and the Heidelberg / Eastron data sheets).
//
// A `devices[].profile` in site.yaml names one of these. The config validator
// checks every device, station and EVSE against its profile (bus kind, address
// range, current and power limits, phases, connectors, bidirectional support),
// and drivers use the same table, so a limit is written down exactly once.
//
// Thread-safety: the table is immutable; every function here is thread-safe.

#ifndef EVGATE_SITE_CONTROLLER_CONFIG_DEVICE_PROFILES_H_
#define EVGATE_SITE_CONTROLLER_CONFIG_DEVICE_PROFILES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace evgate::site {

// What a device is, as far as the site model cares.
enum class DeviceKind {
  kMeter,       // measures a grid connection or circuit
  kAcWallbox,   // AC EVSE(s), controlled in amperes per phase
  kDcCharger,   // DC EVSE(s), controlled in watts
  kOffgridBox,  // V2X off-grid box: detects grid loss, switches the site
};

// How evgate talks to a device.
enum class BusKind {
  kModbus,  // a modbus_rtu or modbus_tcp bus
  kCan,     // a can bus (evgate wallbox CAN protocol)
  kOcpp,    // the charger connects to evgate's local OCPP Central System
};

enum class Parity { kNone, kEven, kOdd };

// A fixed serial frame format some devices insist on (e.g. 19200 8E1).
struct SerialFormat {
  int baud;
  Parity parity;
  int data_bits;
  int stop_bits;
};

struct DeviceProfile {
  absl::string_view name;  // the value of `profile:` in site.yaml
  absl::string_view description;
  DeviceKind kind;
  BusKind bus;
  // Valid device addresses on the bus (Modbus unit id, CAN address); 0/0 for
  // OCPP devices, which are identified by charge_point_id.
  int min_address = 0;
  int max_address = 0;
  // Set when the device only talks one serial format.
  std::optional<SerialFormat> serial_format;
  bool needs_register_map = false;

  // Chargers only (AC wallboxes and DC chargers).
  int min_connectors = 0;
  int max_connectors = 0;
  bool single_phase = false;  // may be wired to one phase
  bool three_phase = false;   // may be wired to three phases
  // AC: the current range per phase the device accepts as a setpoint.
  double min_current_a = 0;
  double max_current_a = 0;
  // Shared limit of the whole station (all connectors together), W.
  double station_max_power_w = 0;
  // DC: AC input current per phase at full power (informational), A.
  double max_input_current_a = 0;
  // DC bidirectional (V2X) chargers.
  bool bidirectional = false;
  double max_discharge_power_w = 0;          // on grid
  double max_discharge_power_offgrid_w = 0;  // grid forming, off grid
};

// All profiles, in a stable order (the order used in messages and docs).
const std::vector<DeviceProfile>& AllDeviceProfiles();

// The profile called `name`, or nullptr.
const DeviceProfile* FindDeviceProfile(absl::string_view name);

// "meter", "AC wallbox", "DC charger", "off-grid box".
absl::string_view DeviceKindName(DeviceKind kind);
// "Modbus", "CAN", "OCPP".
absl::string_view BusKindName(BusKind kind);
// "none", "even", "odd".
absl::string_view ParityName(Parity parity);
// "19200 8E1".
std::string SerialFormatName(const SerialFormat& format);

// True for the kinds a station may use (AC wallboxes and DC chargers).
inline bool IsCharger(DeviceKind kind) {
  return kind == DeviceKind::kAcWallbox || kind == DeviceKind::kDcCharger;
}

}  // namespace evgate::site

#endif  // EVGATE_SITE_CONTROLLER_CONFIG_DEVICE_PROFILES_H_
