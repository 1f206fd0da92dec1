// The unified faults (evgate.v1.Fault) that a charge point's last
// StatusNotification for one connector reports: its errorCode, its
// vendorErrorCode read in the profile's own code table, and its status.
//
//   - vendorErrorCode: the DS60's status codes (ds60_status_codes.h) for
//     profile "ds60", the ICE-22's alarms (ice22_alarms.h) for "ice22_v2x".
//     Another profile's vendor code is kept with the errorCode's fault.
//   - errorCode other than NoError, when no vendor table read the code: a
//     fault of catalog "ocpp" named after the errorCode.
//   - status Faulted: OCPP says the connector "is not available for energy
//     delivery", so when none of the faults above blocks charging a
//     CONNECTOR_FAULTED fault that does is added; the charger has the last
//     word on whether it can deliver energy.
// Connector 0 reports for the whole charge point (device-wide faults).
//
// Thread-safety: thread-safe (pure function).
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_CONNECTOR_FAULTS_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_CONNECTOR_FAULTS_H_

#include <vector>

#include "absl/strings/string_view.h"
#include "evgate/v1/common.pb.h"
#include "evgate/v1/ocpp.pb.h"

namespace evgate::ocpp {

inline constexpr char kOcppFaultVendor[] = "ocpp";

// The faults of `connector` as last reported by a charger of `profile`
// (site.yaml device profile name); empty when it reports none.
std::vector<v1::Fault> ConnectorFaults(absl::string_view profile,
                                       const v1::ChargePointConnector& connector);

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_CONNECTOR_FAULTS_H_
