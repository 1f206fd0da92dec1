// Why a session ended, from the device's own code: maps the vendor codes of
// the seed devices to the unified evgate.v1.StopReason and a description for
// the charge record.
//
// Catalogs (Fault.vendor as set by the drivers):
//   - "ice22_stop_reason": the ICE-22 V2X "reason for end of charging" codes
//     1..501 (Normal Stop, charger faults 2xx, EV errors 3xx, cancelled 4xx,
//     Other 501), shown on its summary screen. A driver reports one as a
//     Fault of this catalog when the charger ends a session; the session
//     service takes it as the stop reason of the EVSE's open session.
//   - "ds60": DS Series status codes (011xxx parts faults, 012xxx warnings,
//     013xxx messages, 023xxx messages from the EV, 033xxx network, 041xxx /
//     042xxx / 043xxx the same classes on AC models).
//   - "cabur_ev_plus": the Cabur EV PLUS display codes ("ERR OCP" ...).
//   - "ocpp_stop_reason": the OCPP 1.6 StopTransaction Reason of an OCPP
//     charger ("EVDisconnected", "Remote", ...; "" is Local by the spec),
//     reported by the OCPP bridge when the charger stops a transaction.
// Any other catalog (or an unknown code) maps to FAULT for a fault that
// blocks charging and OTHER otherwise, keeping the driver's description.
//
// Thread-safe (pure functions over constant tables).
#ifndef EVGATE_SERVICES_SESSION_STOP_REASONS_H_
#define EVGATE_SERVICES_SESSION_STOP_REASONS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "evgate/v1/session.pb.h"

namespace evgate::session {

inline constexpr char kIce22StopReasonCatalog[] = "ice22_stop_reason";
inline constexpr char kDs60Catalog[] = "ds60";
inline constexpr char kCaburCatalog[] = "cabur_ev_plus";
inline constexpr char kOcppStopReasonCatalog[] = "ocpp_stop_reason";

struct VendorStop {
  v1::StopReason reason = v1::STOP_REASON_OTHER;
  // From the catalog, e.g. "EV Relay Pull-In timeout"; empty when the code
  // is not in it.
  std::string description;
};

// The unified reason and description of `code` from `catalog`.
// `blocks_charging` decides the reason of codes the catalog does not know.
VendorStop MapVendorStopCode(absl::string_view catalog, absl::string_view code,
                             bool blocks_charging);

// True for catalogs whose codes are stop reasons (why a session ended)
// rather than conditions of the device.
bool IsStopReasonCatalog(absl::string_view catalog);

}  // namespace evgate::session

#endif  // EVGATE_SERVICES_SESSION_STOP_REASONS_H_
