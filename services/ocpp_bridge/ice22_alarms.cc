#include "services/ocpp_bridge/ice22_alarms.h"

#include <google/protobuf/util/time_util.h>

#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"

namespace evgate::ocpp {
namespace {

using v1::FaultComponent;
using v1::FaultSeverity;
using v1::OcppErrorCode;

struct Alarm {
  int id;
  const char* code;
  FaultSeverity severity;
  bool blocks_charging;
  FaultComponent component;
  OcppErrorCode ocpp;
  const char* description;  // the manual's alarm name and what it means
};

constexpr FaultSeverity kCritical = v1::FAULT_SEVERITY_CRITICAL;
constexpr FaultSeverity kError = v1::FAULT_SEVERITY_ERROR;
constexpr FaultSeverity kWarning = v1::FAULT_SEVERITY_WARNING;

// In the manual's order (NO. 1..25); ids 301, 401 and 402 follow 22.
constexpr Alarm kAlarms[] = {
    {1, "SYSTEM_NOT_AVAILABLE", kCritical, true, v1::FAULT_COMPONENT_OTHER,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR,
     "System Not Available: out of service, charging not allowed (usually after another critical "
     "alarm, e.g. EPO pressed)"},
    {2, "SYSTEM_DISABLED", kError, true, v1::FAULT_COMPONENT_OTHER, v1::OCPP_ERROR_CODE_OTHER_ERROR,
     "System Disabled: set to 'In-operative' by service or the backend; charging not allowed"},
    {3, "CCU_COMM_LOST", kCritical, true, v1::FAULT_COMPONENT_COMMUNICATION,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "All CCU Comm Fail (no longer used by the firmware)"},
    {4, "SERVER_COMM_LOST", kWarning, false, v1::FAULT_COMPONENT_COMMUNICATION,
     v1::OCPP_ERROR_CODE_NO_ERROR,
     "Server Comm Fail: the network is not reachable or the server connection is broken"},
    {5, "METER_NOT_INSTALLED", kCritical, true, v1::FAULT_COMPONENT_METER,
     v1::OCPP_ERROR_CODE_POWER_METER_FAILURE,
     "All kWhMeter Not Installed: every kWh meter set to 'Not installed'; system not available"},
    {6, "CCU_COMM_LOST", kCritical, true, v1::FAULT_COMPONENT_COMMUNICATION,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR,
     "CCU Comm Fail: IMMU2 to IMSU-D communication failed; system not available"},
    {7, "EMERGENCY_STOP", kCritical, true, v1::FAULT_COMPONENT_ENCLOSURE,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "EPO is pressed; system not available"},
    {8, "DOOR_OPEN", kCritical, true, v1::FAULT_COMPONENT_ENCLOSURE,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "Door is opened; system not available"},
    {9, "SURGE_PROTECTION", kCritical, true, v1::FAULT_COMPONENT_GRID,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "SPD alarm (surge protection device); system not available"},
    {10, "MAINS_FAILURE", kCritical, true, v1::FAULT_COMPONENT_GRID,
     v1::OCPP_ERROR_CODE_UNDER_VOLTAGE, "Mains Fail Alarm; system not available"},
    {11, "CONNECTOR_DISABLED", kError, true, v1::FAULT_COMPONENT_CONNECTOR,
     v1::OCPP_ERROR_CODE_OTHER_ERROR,
     "Gun is disabled: set to 'In-operative' by service or the backend"},
    {12, "OVER_TEMPERATURE", kWarning, false, v1::FAULT_COMPONENT_TEMPERATURE,
     v1::OCPP_ERROR_CODE_HIGH_TEMPERATURE,
     "System over temp: above the high limit (default 75 °C); does not stop charging"},
    {13, "POWER_MODULE_FAILURE", kCritical, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "All Rectifier Failure; system not available"},
    {14, "POWER_MODULE_COMM_LOST", kCritical, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "All Rectifier Comm Fail; system not available"},
    {15, "POWER_MODULE_FAILURE", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "Rectifiers Failure: the gun is not available"},
    {16, "POWER_MODULE_COMM_LOST", kError, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "Rectifiers Comm Fail: the gun is not available"},
    {17, "INSULATION_MONITOR_COMM_LOST", kError, true, v1::FAULT_COMPONENT_GROUND,
     v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "Insulation Comm Fail: the gun is not available"},
    {18, "OUTPUT_SHORT_CIRCUIT", kCritical, true, v1::FAULT_COMPONENT_POWER_MODULE,
     v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE,
     "Output Shorted: the rectifiers detected an internal short circuit"},
    {19, "INSULATION_FAULT", kCritical, true, v1::FAULT_COMPONENT_GROUND,
     v1::OCPP_ERROR_CODE_GROUND_FAILURE, "Insulation Alarm: IMSU-D detected abnormal insulation"},
    {20, "EV_COMM_LOST", kError, true, v1::FAULT_COMPONENT_EV,
     v1::OCPP_ERROR_CODE_EV_COMMUNICATION_ERROR,
     "PLC ComFail Alarm: IMSU-D lost the PLC communication with the vehicle"},
    {21, "GROUND_FAULT", kCritical, true, v1::FAULT_COMPONENT_GROUND,
     v1::OCPP_ERROR_CODE_GROUND_FAILURE, "Ground Fault detected by IMSU-D"},
    {22, "AC_INPUT_FAILURE", kError, true, v1::FAULT_COMPONENT_GRID,
     v1::OCPP_ERROR_CODE_OTHER_ERROR, "AC Fail Alarm (AC only): the AC gun input failed"},
    {301, "READER_COMM_LOST", kWarning, false, v1::FAULT_COMPONENT_READER,
     v1::OCPP_ERROR_CODE_READER_FAILURE,
     "CR CommFail: card reader link lost; RFID cards do not work, use another method (e.g. OTP)"},
    {401, "METER_COMM_LOST", kError, true, v1::FAULT_COMPONENT_METER,
     v1::OCPP_ERROR_CODE_POWER_METER_FAILURE,
     "kWhMeterCommFail: the gun's kWh meter does not answer; the gun is out of service"},
    {402, "METER_INVALID_CURRENT", kWarning, false, v1::FAULT_COMPONENT_METER,
     v1::OCPP_ERROR_CODE_POWER_METER_FAILURE,
     "Sampled Invalid Current: the kWh meter's current is invalid (usually a reversed shunt)"},
};

// The alarm id of "CA 21", "ca21", "MA 4", "21"; nullopt when there is none.
std::optional<int> AlarmId(absl::string_view code) {
  code = absl::StripAsciiWhitespace(code);
  for (absl::string_view level : {"CA", "MA", "OA"}) {
    if (code.size() >= 2 && absl::EqualsIgnoreCase(code.substr(0, 2), level)) {
      code = absl::StripLeadingAsciiWhitespace(code.substr(2));
      break;
    }
  }
  int id;
  if (code.empty() || !absl::ascii_isdigit(code[0]) || !absl::SimpleAtoi(code, &id)) {
    return std::nullopt;
  }
  return id;
}

}  // namespace

v1::Fault Ice22AlarmFault(absl::string_view vendor_code, absl::Time since) {
  v1::Fault fault;
  fault.set_vendor(kIce22AlarmVendor);
  fault.set_vendor_code(std::string(vendor_code));
  *fault.mutable_since() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(since));
  const std::optional<int> id = AlarmId(vendor_code);
  for (const Alarm& alarm : kAlarms) {
    if (!id || alarm.id != *id) continue;
    fault.set_code(alarm.code);
    fault.set_severity(alarm.severity);
    fault.set_blocks_charging(alarm.blocks_charging);
    fault.set_component(alarm.component);
    fault.set_ocpp_error_code(alarm.ocpp);
    fault.set_description(alarm.description);
    return fault;
  }
  fault.set_code("UNKNOWN_VENDOR_CODE");
  fault.set_severity(kError);
  fault.set_blocks_charging(true);
  fault.set_component(v1::FAULT_COMPONENT_OTHER);
  fault.set_ocpp_error_code(v1::OCPP_ERROR_CODE_OTHER_ERROR);
  fault.set_description("ICE-22 alarm not in the charger's alarm table");
  return fault;
}

}  // namespace evgate::ocpp
