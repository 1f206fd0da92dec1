#include "services/ocpp_bridge/ocpp16_enums.h"

#include <utility>

namespace evgate::ocpp {
namespace {

template <typename Enum, size_t N>
Enum Lookup(const std::pair<absl::string_view, Enum> (&table)[N], absl::string_view name,
            Enum unknown) {
  for (const auto& [text, value] : table) {
    if (text == name) return value;
  }
  return unknown;
}

}  // namespace

v1::ConnectorStatus ParseChargePointStatus(absl::string_view status) {
  static constexpr std::pair<absl::string_view, v1::ConnectorStatus> kTable[] = {
      {"Available", v1::CONNECTOR_STATUS_AVAILABLE},
      {"Preparing", v1::CONNECTOR_STATUS_PREPARING},
      {"Charging", v1::CONNECTOR_STATUS_CHARGING},
      {"SuspendedEV", v1::CONNECTOR_STATUS_SUSPENDED_EV},
      {"SuspendedEVSE", v1::CONNECTOR_STATUS_SUSPENDED_EVSE},
      {"Finishing", v1::CONNECTOR_STATUS_FINISHING},
      {"Reserved", v1::CONNECTOR_STATUS_RESERVED},
      {"Unavailable", v1::CONNECTOR_STATUS_UNAVAILABLE},
      {"Faulted", v1::CONNECTOR_STATUS_FAULTED},
  };
  return Lookup(kTable, status, v1::CONNECTOR_STATUS_UNSPECIFIED);
}

v1::OcppErrorCode ParseChargePointErrorCode(absl::string_view code) {
  static constexpr std::pair<absl::string_view, v1::OcppErrorCode> kTable[] = {
      {"ConnectorLockFailure", v1::OCPP_ERROR_CODE_CONNECTOR_LOCK_FAILURE},
      {"EVCommunicationError", v1::OCPP_ERROR_CODE_EV_COMMUNICATION_ERROR},
      {"GroundFailure", v1::OCPP_ERROR_CODE_GROUND_FAILURE},
      {"HighTemperature", v1::OCPP_ERROR_CODE_HIGH_TEMPERATURE},
      {"InternalError", v1::OCPP_ERROR_CODE_INTERNAL_ERROR},
      {"LocalListConflict", v1::OCPP_ERROR_CODE_LOCAL_LIST_CONFLICT},
      {"NoError", v1::OCPP_ERROR_CODE_NO_ERROR},
      {"OtherError", v1::OCPP_ERROR_CODE_OTHER_ERROR},
      {"OverCurrentFailure", v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE},
      {"OverVoltage", v1::OCPP_ERROR_CODE_OVER_VOLTAGE},
      {"PowerMeterFailure", v1::OCPP_ERROR_CODE_POWER_METER_FAILURE},
      {"PowerSwitchFailure", v1::OCPP_ERROR_CODE_POWER_SWITCH_FAILURE},
      {"ReaderFailure", v1::OCPP_ERROR_CODE_READER_FAILURE},
      {"ResetFailure", v1::OCPP_ERROR_CODE_RESET_FAILURE},
      {"UnderVoltage", v1::OCPP_ERROR_CODE_UNDER_VOLTAGE},
      {"WeakSignal", v1::OCPP_ERROR_CODE_WEAK_SIGNAL},
  };
  return Lookup(kTable, code, v1::OCPP_ERROR_CODE_UNSPECIFIED);
}

const char* RegistrationStatusName(v1::RegistrationStatus status) {
  switch (status) {
    case v1::REGISTRATION_STATUS_ACCEPTED:
      return "Accepted";
    case v1::REGISTRATION_STATUS_PENDING:
      return "Pending";
    default:
      return "Rejected";
  }
}

}  // namespace evgate::ocpp
