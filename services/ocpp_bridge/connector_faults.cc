#include "services/ocpp_bridge/connector_faults.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "services/ocpp_bridge/ds60_status_codes.h"
#include "services/ocpp_bridge/ice22_alarms.h"

namespace evgate::ocpp {
namespace {

struct ErrorCodeFault {
  v1::OcppErrorCode ocpp;
  const char* code;
  v1::FaultComponent component;
  const char* name;  // the OCPP 1.6 ChargePointErrorCode
  const char* description;
};

constexpr ErrorCodeFault kErrorCodes[] = {
    {v1::OCPP_ERROR_CODE_CONNECTOR_LOCK_FAILURE, "CONNECTOR_LOCK_FAILURE",
     v1::FAULT_COMPONENT_CONNECTOR, "ConnectorLockFailure", "Failure to lock or unlock connector"},
    {v1::OCPP_ERROR_CODE_EV_COMMUNICATION_ERROR, "EV_COMM_LOST", v1::FAULT_COMPONENT_EV,
     "EVCommunicationError", "Communication failure with the vehicle"},
    {v1::OCPP_ERROR_CODE_GROUND_FAILURE, "GROUND_FAULT", v1::FAULT_COMPONENT_GROUND,
     "GroundFailure", "Ground fault circuit interrupter has been activated"},
    {v1::OCPP_ERROR_CODE_HIGH_TEMPERATURE, "OVER_TEMPERATURE", v1::FAULT_COMPONENT_TEMPERATURE,
     "HighTemperature", "Temperature inside the charge point is too high"},
    {v1::OCPP_ERROR_CODE_INTERNAL_ERROR, "INTERNAL_ERROR", v1::FAULT_COMPONENT_OTHER,
     "InternalError", "Error in internal hard- or software component"},
    {v1::OCPP_ERROR_CODE_LOCAL_LIST_CONFLICT, "LOCAL_LIST_CONFLICT",
     v1::FAULT_COMPONENT_COMMUNICATION, "LocalListConflict",
     "The authorization information received from the Central System is in conflict with the "
     "LocalAuthorizationList"},
    {v1::OCPP_ERROR_CODE_OTHER_ERROR, "OTHER_ERROR", v1::FAULT_COMPONENT_OTHER, "OtherError",
     "Other type of error; see vendorErrorCode"},
    {v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE, "OVER_CURRENT", v1::FAULT_COMPONENT_EV,
     "OverCurrentFailure", "Over current protection device has tripped"},
    {v1::OCPP_ERROR_CODE_OVER_VOLTAGE, "OVER_VOLTAGE", v1::FAULT_COMPONENT_GRID, "OverVoltage",
     "Voltage has risen above an acceptable level"},
    {v1::OCPP_ERROR_CODE_POWER_METER_FAILURE, "METER_FAILURE", v1::FAULT_COMPONENT_METER,
     "PowerMeterFailure", "Failure to read electrical/energy/power meter"},
    {v1::OCPP_ERROR_CODE_POWER_SWITCH_FAILURE, "RELAY_FAILURE", v1::FAULT_COMPONENT_RELAY,
     "PowerSwitchFailure", "Failure to control power switch"},
    {v1::OCPP_ERROR_CODE_READER_FAILURE, "READER_FAILURE", v1::FAULT_COMPONENT_READER,
     "ReaderFailure", "Failure with idTag reader"},
    {v1::OCPP_ERROR_CODE_RESET_FAILURE, "RESET_FAILURE", v1::FAULT_COMPONENT_FIRMWARE,
     "ResetFailure", "Unable to perform a reset"},
    {v1::OCPP_ERROR_CODE_UNDER_VOLTAGE, "UNDER_VOLTAGE", v1::FAULT_COMPONENT_GRID, "UnderVoltage",
     "Voltage has dropped below an acceptable level"},
    {v1::OCPP_ERROR_CODE_WEAK_SIGNAL, "WEAK_SIGNAL", v1::FAULT_COMPONENT_COMMUNICATION,
     "WeakSignal", "Wireless communication device reports a weak signal"},
};

const ErrorCodeFault* FindErrorCode(v1::OcppErrorCode code) {
  for (const ErrorCodeFault& e : kErrorCodes) {
    if (e.ocpp == code) return &e;
  }
  return nullptr;
}

absl::Time SinceOf(const v1::ChargePointConnector& connector) {
  return absl::FromUnixNanos(
      google::protobuf::util::TimeUtil::TimestampToNanoseconds(connector.updated_at()));
}

}  // namespace

std::vector<v1::Fault> ConnectorFaults(absl::string_view profile,
                                       const v1::ChargePointConnector& connector) {
  std::vector<v1::Fault> faults;
  const absl::Time since = SinceOf(connector);
  const bool faulted = connector.status() == v1::CONNECTOR_STATUS_FAULTED;
  const std::string vendor_code(absl::StripAsciiWhitespace(connector.vendor_error_code()));
  if (!vendor_code.empty() && profile == "ds60") {
    faults.push_back(Ds60StatusFault(vendor_code, since));
  } else if (!vendor_code.empty() && profile == "ice22_v2x") {
    faults.push_back(Ice22AlarmFault(vendor_code, since));
  } else if (const ErrorCodeFault* e = FindErrorCode(connector.error_code())) {
    v1::Fault& fault = faults.emplace_back();
    fault.set_code(e->code);
    // By the spec an error with a status other than Faulted still lets
    // the connector deliver energy.
    fault.set_severity(faulted ? v1::FAULT_SEVERITY_ERROR : v1::FAULT_SEVERITY_WARNING);
    fault.set_blocks_charging(faulted);
    fault.set_component(e->component);
    fault.set_vendor(kOcppFaultVendor);
    fault.set_vendor_code(vendor_code.empty() ? e->name : vendor_code);
    fault.set_description(connector.info().empty()
                              ? e->description
                              : std::string(e->description) + " (" + connector.info() + ")");
    fault.set_ocpp_error_code(e->ocpp);
    *fault.mutable_since() = connector.updated_at();
  }
  const bool blocks = std::any_of(faults.begin(), faults.end(),
                                  [](const v1::Fault& f) { return f.blocks_charging(); });
  if (faulted && !blocks) {
    v1::Fault& fault = faults.emplace_back();
    fault.set_code("CONNECTOR_FAULTED");
    fault.set_severity(v1::FAULT_SEVERITY_ERROR);
    fault.set_blocks_charging(true);
    fault.set_component(v1::FAULT_COMPONENT_OTHER);
    fault.set_vendor(kOcppFaultVendor);
    fault.set_vendor_code("Faulted");
    fault.set_description("The charger reports the connector Faulted: not available for energy");
    fault.set_ocpp_error_code(connector.error_code() == v1::OCPP_ERROR_CODE_UNSPECIFIED ||
                                      connector.error_code() == v1::OCPP_ERROR_CODE_NO_ERROR
                                  ? v1::OCPP_ERROR_CODE_OTHER_ERROR
                                  : connector.error_code());
    *fault.mutable_since() = connector.updated_at();
  }
  return faults;
}

}  // namespace evgate::ocpp
