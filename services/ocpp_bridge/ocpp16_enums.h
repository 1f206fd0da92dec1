// The OCPP 1.6 enumeration strings that the Central System turns into the
// evgate.v1 enums (and back): ChargePointStatus, ChargePointErrorCode,
// RegistrationStatus. The schemas have already checked that a received string
// is one of the spec's values; an unexpected one still maps to UNSPECIFIED
// rather than failing.
//
// Thread-safety: thread-safe (pure functions).
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_OCPP16_ENUMS_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_OCPP16_ENUMS_H_

#include "absl/strings/string_view.h"
#include "evgate/v1/common.pb.h"
#include "evgate/v1/ocpp.pb.h"

namespace evgate::ocpp {

// "Available", "Preparing", ..., "Faulted" -> CONNECTOR_STATUS_*.
v1::ConnectorStatus ParseChargePointStatus(absl::string_view status);

// "ConnectorLockFailure", ..., "NoError", ..., "WeakSignal" -> OCPP_ERROR_CODE_*.
v1::OcppErrorCode ParseChargePointErrorCode(absl::string_view code);

// REGISTRATION_STATUS_ACCEPTED -> "Accepted", PENDING -> "Pending", REJECTED
// -> "Rejected". UNSPECIFIED has no OCPP name: "Rejected" (never sent).
const char* RegistrationStatusName(v1::RegistrationStatus status);

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_OCPP16_ENUMS_H_
