#include "services/ocpp_bridge/ds60_status_codes.h"

#include <google/protobuf/util/time_util.h>

#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace evgate::ocpp {
namespace {

using v1::FaultComponent;
using v1::FaultSeverity;
using v1::OcppErrorCode;

constexpr FaultSeverity kCritical = v1::FAULT_SEVERITY_CRITICAL;
constexpr FaultSeverity kError = v1::FAULT_SEVERITY_ERROR;
constexpr FaultSeverity kWarning = v1::FAULT_SEVERITY_WARNING;
constexpr FaultSeverity kInfo = v1::FAULT_SEVERITY_INFO;

// Codes first..last (six digits as a number; AC models' 04x codes are looked
// up as the 01x code with the same number).
struct Entry {
  int first;
  int last;
  const char* code;
  FaultSeverity severity;
  bool blocks_charging;
  FaultComponent component;
  OcppErrorCode ocpp;
  const char* description;  // the manual's wording
};

// Section 5.4, in the manual's order; where a range shares one meaning the
// description names the range.
constexpr Entry kCodes[] = {
    // 011: parts and connection faults.
    {11001, 11003, "OUTPUT_FUSE_BLOWN", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "Output fuse blew (CHAdeMO / CCS / GB)"},
    {11004, 11004, "RCD_FAILURE", kCritical, true, v1::FAULT_COMPONENT_RCD,
     v1::OCPP_ERROR_CODE_GROUND_FAILURE, "RCD/CCID self-test fail"},
    {11005, 11016, "RELAY_FAILURE", kCritical, true, v1::FAULT_COMPONENT_RELAY,
     v1::OCPP_ERROR_CODE_POWER_SWITCH_FAILURE,
     "AC input contactor or output relay welding / driving fault"},
    {11017, 11020, "TEMPERATURE_SENSOR_FAILURE", kError, true, v1::FAULT_COMPONENT_TEMPERATURE,
     v1::OCPP_ERROR_CODE_HIGH_TEMPERATURE, "Connector temperature sensor broken"},
    // A broken modem or Bluetooth module does not stop charging.
    {11021, 11022, "COMMUNICATION_MODULE_FAILURE", kWarning, false,
     v1::FAULT_COMPONENT_COMMUNICATION, v1::OCPP_ERROR_CODE_OTHER_ERROR,
     "WiFi or 3G/4G module broken"},
    {11023, 11023, "AUX_POWER_FAILURE", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "Aux. power module broken"},
    {11024, 11024, "RELAY_FAILURE", kError, true, v1::FAULT_COMPONENT_RELAY,
     v1::OCPP_ERROR_CODE_POWER_SWITCH_FAILURE, "Relay control module / smart box broken"},
    {11025, 11027, "CONNECTOR_LOCK_FAILURE", kError, true, v1::FAULT_COMPONENT_CONNECTOR,
     v1::OCPP_ERROR_CODE_CONNECTOR_LOCK_FAILURE, "Connector lock fail"},
    {11028, 11030, "CONNECTOR_MODULE_FAILURE", kError, true, v1::FAULT_COMPONENT_CONNECTOR,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "CHAdeMO / CCS / GBT module broken"},
    {11031, 11031, "POWER_MODULE_FAILURE", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "PSU module broken"},
    {11032, 11032, "RCD_FAILURE", kCritical, true, v1::FAULT_COMPONENT_RCD,
     v1::OCPP_ERROR_CODE_GROUND_FAILURE, "RCD/CCID module broken"},
    {11033, 11033, "CONFIGURATION_ERROR", kError, true, v1::FAULT_COMPONENT_FIRMWARE,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "Maximum Output Current setup error"},
    {11034, 11034, "CONNECTOR_SHUTTER_FAULT", kError, true, v1::FAULT_COMPONENT_CONNECTOR,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "Shutter fault"},
    {11035, 11035, "COMMUNICATION_MODULE_FAILURE", kWarning, false,
     v1::FAULT_COMPONENT_COMMUNICATION, v1::OCPP_ERROR_CODE_OTHER_ERROR, "Ble module broken"},
    {11036, 11036, "CONFIGURATION_ERROR", kError, true, v1::FAULT_COMPONENT_FIRMWARE,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "Rotary switch fault"},
    {11037, 11038, "COOLING_FAILURE", kError, true, v1::FAULT_COMPONENT_TEMPERATURE,
     v1::OCPP_ERROR_CODE_HIGH_TEMPERATURE,
     "CCS liquid chiller water level fault / chiller temperature sensor broken"},
    {11039, 11040, "RELAY_FAILURE", kCritical, true, v1::FAULT_COMPONENT_RELAY,
     v1::OCPP_ERROR_CODE_POWER_SWITCH_FAILURE, "Parallel relay welding / driving fault"},

    // 012: warnings. 012200..012214 "Abnormal input voltage": charging is
    // enabled again once the supply is regular.
    {12200, 12202, "OVER_VOLTAGE", kError, true, v1::FAULT_COMPONENT_GRID,
     v1::OCPP_ERROR_CODE_OVER_VOLTAGE, "System L1/L2/L3 input OVP"},
    {12203, 12205, "UNDER_VOLTAGE", kError, true, v1::FAULT_COMPONENT_GRID,
     v1::OCPP_ERROR_CODE_UNDER_VOLTAGE, "System L1/L2/L3 input UVP"},
    {12206, 12208, "OVER_VOLTAGE", kError, true, v1::FAULT_COMPONENT_GRID,
     v1::OCPP_ERROR_CODE_OVER_VOLTAGE, "PSU L1/L2/L3 input OVP"},
    {12209, 12211, "UNDER_VOLTAGE", kError, true, v1::FAULT_COMPONENT_GRID,
     v1::OCPP_ERROR_CODE_UNDER_VOLTAGE, "PSU L1/L2/L3 input UVP"},
    {12212, 12214, "MISSING_PHASE", kError, true, v1::FAULT_COMPONENT_GRID,
     v1::OCPP_ERROR_CODE_UNDER_VOLTAGE, "System L1/L2/L3 input drop"},
    {12215, 12215, "OUTPUT_OVER_VOLTAGE", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_VOLTAGE, "System AC output OVP"},
    {12216, 12216, "OVER_CURRENT", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE, "System AC L1 output OCP"},
    {12217, 12217, "OUTPUT_OVER_VOLTAGE", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_VOLTAGE, "System CHAdeMO output OVP"},
    {12218, 12218, "OVER_CURRENT", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE, "System CHAdeMO output OCP"},
    {12219, 12219, "OUTPUT_OVER_VOLTAGE", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_VOLTAGE, "System CCS output OVP"},
    {12220, 12220, "OVER_CURRENT", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE, "System CCS output OCP"},
    {12221, 12221, "OUTPUT_OVER_VOLTAGE", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_VOLTAGE, "System GB output OVP"},
    {12222, 12222, "OVER_CURRENT", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE, "System GB output OCP"},
    // 012223..012232 "Abnormal environment or devices temperature": charging
    // is enabled again after cooling down.
    {12223, 12228, "OVER_TEMPERATURE", kError, true, v1::FAULT_COMPONENT_TEMPERATURE,
     v1::OCPP_ERROR_CODE_HIGH_TEMPERATURE,
     "System / PSU / aux. power / relay board over-temperature protection"},
    {12229, 12232, "CONNECTOR_OVER_TEMPERATURE", kError, true, v1::FAULT_COMPONENT_TEMPERATURE,
     v1::OCPP_ERROR_CODE_HIGH_TEMPERATURE, "Connector over-temperature protection"},
    {12233, 12233, "RESIDUAL_CURRENT", kCritical, true, v1::FAULT_COMPONENT_RCD,
     v1::OCPP_ERROR_CODE_GROUND_FAILURE, "RCD/CCID trip"},
    {12234, 12236, "GROUND_FAULT", kCritical, true, v1::FAULT_COMPONENT_GROUND,
     v1::OCPP_ERROR_CODE_GROUND_FAILURE, "CHAdeMO / CCS / GB GFD trip"},
    {12237, 12237, "SURGE_PROTECTION", kCritical, true, v1::FAULT_COMPONENT_GRID,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "SPD trip"},
    {12238, 12238, "BREAKER_TRIP", kCritical, true, v1::FAULT_COMPONENT_GRID,
     v1::OCPP_ERROR_CODE_POWER_SWITCH_FAILURE, "Main power breaker trip"},
    {12239, 12239, "BREAKER_TRIP", kError, true, v1::FAULT_COMPONENT_GRID,
     v1::OCPP_ERROR_CODE_POWER_SWITCH_FAILURE, "Aux. power breaker trip"},
    {12240, 12240, "POWER_MODULE_COMM_LOST", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "PSU communication fail"},
    // 012241..012244 "External network disconnected": app and QR code
    // authorization are unavailable; RFID still works.
    {12241, 12242, "NETWORK_MODULE_COMM_LOST", kWarning, false, v1::FAULT_COMPONENT_COMMUNICATION,
     v1::OCPP_ERROR_CODE_WEAK_SIGNAL, "WiFi / 3G/4G module communication fail"},
    {12243, 12243, "READER_COMM_LOST", kWarning, false, v1::FAULT_COMPONENT_READER,
     v1::OCPP_ERROR_CODE_READER_FAILURE, "RFID module communication fail"},
    {12244, 12244, "NETWORK_MODULE_COMM_LOST", kWarning, false, v1::FAULT_COMPONENT_COMMUNICATION,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "Bluetooth module communication fail"},
    {12245, 12250, "INTERNAL_COMM_LOST", kError, true, v1::FAULT_COMPONENT_COMMUNICATION,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR,
     "LCM / aux. power / relay board / CCS / CHAdeMO / GBT module communication fail"},
    {12251, 12251, "EMERGENCY_STOP", kCritical, true, v1::FAULT_COMPONENT_ENCLOSURE,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "Emergency switch is pressed"},
    {12252, 12252, "DOOR_OPEN", kCritical, true, v1::FAULT_COMPONENT_ENCLOSURE,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "The cabinet door has been opened"},
    {12253, 12253, "FAN_DEGRADED", kWarning, false, v1::FAULT_COMPONENT_FAN,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "System fan decay"},
    {12256, 12256, "GROUND_FAULT", kCritical, true, v1::FAULT_COMPONENT_GROUND,
     v1::OCPP_ERROR_CODE_GROUND_FAILURE, "AC Ground Fault"},
    {12259, 12261, "GROUND_FAULT", kError, true, v1::FAULT_COMPONENT_GROUND,
     v1::OCPP_ERROR_CODE_GROUND_FAILURE, "Ground fault detection timeout (GFD)"},
    {12262, 12262, "OUTPUT_SHORT_CIRCUIT", kCritical, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE, "System AC L1 output Circuit Short"},
    {12264, 12264, "OUTPUT_SHORT_CIRCUIT", kCritical, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE, "PSU Output Short Circuit"},
    {12267, 12267, "POWER_MODULE_FAILURE", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "PSU Failure Alarm"},
    {12296, 12298, "GROUND_FAULT_WARNING", kWarning, false, v1::FAULT_COMPONENT_GROUND,
     v1::OCPP_ERROR_CODE_NO_ERROR, "Ground fault detection - warning"},
    {12299, 12300, "OVER_CURRENT", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE, "System AC L2/L3 output OCP"},
    {12301, 12302, "OUTPUT_SHORT_CIRCUIT", kCritical, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE, "System AC L2/L3 output Circuit Short"},
    // Troubleshooting table: "Communication error between power and charging
    // gun cabinet".
    {12304, 12304, "INTERNAL_COMM_LOST", kError, true, v1::FAULT_COMPONENT_COMMUNICATION,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "Disconnected from power cabinet"},
    {12305, 12305, "METER_COMM_LOST", kWarning, false, v1::FAULT_COMPONENT_METER,
     v1::OCPP_ERROR_CODE_POWER_METER_FAILURE, "Meter communication timeout"},
    // The door and tilt sensors trip the upstream breaker (shunt release); a
    // failed self-test means that protection may not be there.
    {12343, 12343, "TILT_SENSOR_FAILURE", kCritical, true, v1::FAULT_COMPONENT_ENCLOSURE,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "Tilt sensor self-test failed"},
    {12344, 12344, "METER_COMM_LOST", kWarning, false, v1::FAULT_COMPONENT_METER,
     v1::OCPP_ERROR_CODE_POWER_METER_FAILURE, "Meter IC communication timeout"},

    // 013: messages; no impact on charging.
    {13600, 13600, "NORMAL_STOP", kInfo, false, v1::FAULT_COMPONENT_OTHER,
     v1::OCPP_ERROR_CODE_NO_ERROR, "Normal stop charging by user"},
    {13601, 13601, "TIME_LIMIT_REACHED", kInfo, false, v1::FAULT_COMPONENT_OTHER,
     v1::OCPP_ERROR_CODE_NO_ERROR, "Charging Time's up"},
    {13607, 13618, "FIRMWARE_UPDATE_FAILED", kWarning, false, v1::FAULT_COMPONENT_FIRMWARE,
     v1::OCPP_ERROR_CODE_NO_ERROR, "Module firmware update fail"},

    // 023: messages from the EV.
    {23700, 23702, "EV_COMM_LOST", kError, true, v1::FAULT_COMPONENT_EV,
     v1::OCPP_ERROR_CODE_EV_COMMUNICATION_ERROR, "CHAdeMO / CCS / GB EV communication Fail"},
    {23703, 23703, "CONTROL_PILOT_FAULT", kError, true, v1::FAULT_COMPONENT_EV,
     v1::OCPP_ERROR_CODE_EV_COMMUNICATION_ERROR, "AC: pilot fault"},
    // The EV or the charger ended the session normally: not a fault.
    {23715, 23715, "EV_STOPPED", kInfo, false, v1::FAULT_COMPONENT_EV, v1::OCPP_ERROR_CODE_NO_ERROR,
     "CHAdeMO: ev normal stop"},
    {23729, 23729, "EV_STOPPED", kInfo, false, v1::FAULT_COMPONENT_EV, v1::OCPP_ERROR_CODE_NO_ERROR,
     "CHAdeMO: charger get normal stop cmd"},
    {23979, 23979, "EV_STOPPED", kInfo, false, v1::FAULT_COMPONENT_EV, v1::OCPP_ERROR_CODE_NO_ERROR,
     "CCS EV full charging"},
    {23983, 23984, "EV_STOPPED", kInfo, false, v1::FAULT_COMPONENT_EV, v1::OCPP_ERROR_CODE_NO_ERROR,
     "Charging terminated by the EV or by the EVSE condition"},

    // 033: the charger's network.
    {33900, 33902, "BACKEND_DISCONNECTED", kWarning, false, v1::FAULT_COMPONENT_COMMUNICATION,
     v1::OCPP_ERROR_CODE_NO_ERROR,
     "Back-End disconnected (Ethernet / WiFi / 3G/4G): QR and app authorization unavailable"},
    {33903, 33905, "REMOTE_CONTROL", kInfo, false, v1::FAULT_COMPONENT_COMMUNICATION,
     v1::OCPP_ERROR_CODE_NO_ERROR, "Charging started / stopped / restarted by remote control"},
};

// The family of codes no entry names.
struct Family {
  int prefix;  // the first three digits
  const char* code;
  FaultSeverity severity;
  bool blocks_charging;
  FaultComponent component;
  OcppErrorCode ocpp;
  const char* description;
};

constexpr Family kFamilies[] = {
    {11, "CHARGER_PART_FAULT", kError, true, v1::FAULT_COMPONENT_OTHER,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR,
     "Charger part or connection fault (011-XXX): to be serviced by a qualified technician"},
    {12, "CHARGER_WARNING", kWarning, false, v1::FAULT_COMPONENT_OTHER,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "Charger warning (012-XXX)"},
    {13, "CHARGER_MESSAGE", kInfo, false, v1::FAULT_COMPONENT_OTHER, v1::OCPP_ERROR_CODE_NO_ERROR,
     "Setup, maintenance or reference message (013-XXX); no impact on charging"},
    {23, "EV_ERROR", kError, true, v1::FAULT_COMPONENT_EV,
     v1::OCPP_ERROR_CODE_EV_COMMUNICATION_ERROR,
     "Message from the EV (023-XXX): communication or charging procedure error"},
    {33, "NETWORK_MESSAGE", kWarning, false, v1::FAULT_COMPONENT_COMMUNICATION,
     v1::OCPP_ERROR_CODE_NO_ERROR, "Message from the charger network (033-XXX)"},
};

// The code as a number with AC models' 041/042/043 folded onto 011/012/013;
// nullopt when it is not five or six digits.
std::optional<int> CodeNumber(absl::string_view code) {
  code = absl::StripAsciiWhitespace(code);
  if (code.size() < 5 || code.size() > 6) return std::nullopt;
  for (char c : code) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  int number;
  if (!absl::SimpleAtoi(code, &number)) return std::nullopt;
  const int prefix = number / 1000;
  if (prefix >= 41 && prefix <= 43) number -= 30000;
  return number;
}

template <typename T>
void Fill(const T& row, v1::Fault& fault) {
  fault.set_code(row.code);
  fault.set_severity(row.severity);
  fault.set_blocks_charging(row.blocks_charging);
  fault.set_component(row.component);
  fault.set_ocpp_error_code(row.ocpp);
  fault.set_description(row.description);
}

}  // namespace

v1::Fault Ds60StatusFault(absl::string_view vendor_code, absl::Time since) {
  v1::Fault fault;
  fault.set_vendor(kDs60Vendor);
  fault.set_vendor_code(std::string(vendor_code));
  *fault.mutable_since() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(since));
  const std::optional<int> number = CodeNumber(vendor_code);
  if (number) {
    for (const Entry& entry : kCodes) {
      if (*number < entry.first || *number > entry.last) continue;
      Fill(entry, fault);
      return fault;
    }
    for (const Family& family : kFamilies) {
      if (*number / 1000 != family.prefix) continue;
      Fill(family, fault);
      return fault;
    }
  }
  fault.set_code("UNKNOWN_VENDOR_CODE");
  fault.set_severity(kError);
  fault.set_blocks_charging(true);
  fault.set_component(v1::FAULT_COMPONENT_OTHER);
  fault.set_ocpp_error_code(v1::OCPP_ERROR_CODE_OTHER_ERROR);
  fault.set_description("DS60 status code outside the manual's code families");
  return fault;
}

}  // namespace evgate::ocpp
