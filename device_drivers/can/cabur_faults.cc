#include "device_drivers/can/cabur_faults.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"

namespace evgate::can {
namespace {

using evgate::v1::FaultComponent;
using evgate::v1::OcppErrorCode;
using wallbox::ErrorCode;

struct Entry {
  const char* code;
  FaultComponent component;
  OcppErrorCode ocpp;
  const char* description;  // the Cabur manual's wording
};

Entry Lookup(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOcp:
      return {"OVER_CURRENT", v1::FAULT_COMPONENT_EV, v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE,
              "Over-current fault"};
    case ErrorCode::kOvp:
      return {"OVER_VOLTAGE", v1::FAULT_COMPONENT_GRID, v1::OCPP_ERROR_CODE_OVER_VOLTAGE,
              "Over-voltage fault"};
    case ErrorCode::kLvp:
      return {"UNDER_VOLTAGE", v1::FAULT_COMPONENT_GRID, v1::OCPP_ERROR_CODE_UNDER_VOLTAGE,
              "Under-voltage fault"};
    case ErrorCode::kMet:
      return {"METER_COMM_LOST", v1::FAULT_COMPONENT_METER, v1::OCPP_ERROR_CODE_POWER_METER_FAILURE,
              "Meter communication fault"};
    case ErrorCode::kCan:
      return {"CAN_BUS_FAULT", v1::FAULT_COMPONENT_COMMUNICATION, v1::OCPP_ERROR_CODE_OTHER_ERROR,
              "CAN bus fault (ERR CAN ADDR: CAN address conflict)"};
    case ErrorCode::kPe:
      return {"GROUND_FAULT", v1::FAULT_COMPONENT_GROUND, v1::OCPP_ERROR_CODE_GROUND_FAILURE,
              "Ground fault"};
    case ErrorCode::kCp:
      return {"CONTROL_PILOT_FAULT", v1::FAULT_COMPONENT_EV,
              v1::OCPP_ERROR_CODE_EV_COMMUNICATION_ERROR, "CP voltage fault"};
    case ErrorCode::kR12:
      return {"RELAY_1_STUCK", v1::FAULT_COMPONENT_RELAY, v1::OCPP_ERROR_CODE_POWER_SWITCH_FAILURE,
              "Relay 1 blocked fault"};
    case ErrorCode::kR3n:
      return {"RELAY_2_STUCK", v1::FAULT_COMPONENT_RELAY, v1::OCPP_ERROR_CODE_POWER_SWITCH_FAILURE,
              "Relay 2 blocked fault"};
    case ErrorCode::kRot:
      return {"RELAY_OVER_TEMPERATURE", v1::FAULT_COMPONENT_TEMPERATURE,
              v1::OCPP_ERROR_CODE_HIGH_TEMPERATURE, "Relay over-temperature fault"};
    case ErrorCode::kElk:
      return {"CONNECTOR_LOCK_FAILURE", v1::FAULT_COMPONENT_CONNECTOR,
              v1::OCPP_ERROR_CODE_CONNECTOR_LOCK_FAILURE, "Electronic lock abnormal fault"};
    case ErrorCode::kOct:
      return {"CONNECTOR_OVER_TEMPERATURE", v1::FAULT_COMPONENT_TEMPERATURE,
              v1::OCPP_ERROR_CODE_HIGH_TEMPERATURE, "Plug holder over-temperature fault"};
    case ErrorCode::kIrd:
      return {"RESIDUAL_CURRENT", v1::FAULT_COMPONENT_RCD, v1::OCPP_ERROR_CODE_GROUND_FAILURE,
              "Leakage fault"};
    case ErrorCode::kFan:
      return {"FAN_FAILURE", v1::FAULT_COMPONENT_FAN, v1::OCPP_ERROR_CODE_OTHER_ERROR,
              "Fan fault (the fan is blocked)"};
    case ErrorCode::kPp:
      return {"PROXIMITY_PILOT_FAULT", v1::FAULT_COMPONENT_CONNECTOR,
              v1::OCPP_ERROR_CODE_OTHER_ERROR, "Unreliable connection fault"};
    case ErrorCode::kMis:
      return {"MISSING_PHASE", v1::FAULT_COMPONENT_GRID, v1::OCPP_ERROR_CODE_OTHER_ERROR,
              "Missing power phase fault"};
  }
  return {"UNKNOWN_VENDOR_CODE", v1::FAULT_COMPONENT_OTHER, v1::OCPP_ERROR_CODE_OTHER_ERROR,
          "Unknown Cabur error code"};
}

}  // namespace

evgate::v1::Fault CaburFault(wallbox::ErrorCode code, absl::Time since) {
  const Entry entry = Lookup(code);
  evgate::v1::Fault fault;
  fault.set_code(entry.code);
  fault.set_severity(v1::FAULT_SEVERITY_ERROR);
  fault.set_component(entry.component);
  fault.set_blocks_charging(true);
  fault.set_vendor_code(absl::StrCat("ERR ", std::string(wallbox::ErrorCodeName(code))));
  fault.set_vendor(kCaburFaultVendor);
  fault.set_description(entry.description);
  fault.set_ocpp_error_code(entry.ocpp);
  *fault.mutable_since() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(since));
  return fault;
}

}  // namespace evgate::can
