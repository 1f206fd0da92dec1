// The DS Series DSWx601 (DS60) status codes (its manual,
// ../shared/seeds/001_*.txt sections 5.3 and 5.4) mapped into evgate's
// unified fault model (evgate.v1.Fault). Over OCPP the charger reports a code
// as a StatusNotification's vendorErrorCode, e.g. "012252".
//
// The manual sorts the codes into families, and says what each family does to
// charging; a code takes its family's rule unless the table below names it:
//   - 011xxx (041xxx on AC models): a part or connection fault, "must be
//     serviced by qualified technician" -> ERROR, blocks charging.
//   - 012xxx (042xxx): warnings. Those the manual says disable charging until
//     they clear (abnormal input voltage 012200..012214, temperature
//     012223..012232, emergency stop, door open, trips, the link to the power
//     cabinet) block; the rest are WARNING and do not.
//   - 013xxx (043xxx): "setup, maintenance, or reference hint messages,
//     generally there is no impact on charging" -> INFO, does not block.
//   - 023xxx: messages from the EV; the session on that connector cannot go on
//     -> ERROR on the EV component, blocks (until the next status clears it).
//   - 033xxx: the charger's network ("Back-End disconnected", remote start /
//     stop / reset) -> WARNING on communication, does not block.
// Codes are six digits; the manual also prints some 023xxx codes without the
// leading 0 ("23983"), which are taken as the same code.
//
// Thread-safety: thread-safe (immutable tables).
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_DS60_STATUS_CODES_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_DS60_STATUS_CODES_H_

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "evgate/v1/common.pb.h"

namespace evgate::ocpp {

inline constexpr char kDs60Vendor[] = "ds60";

// The unified fault for `vendor_code`, first seen at `since`. A code outside
// every family (or not a code at all) is UNKNOWN_VENDOR_CODE, ERROR, blocking
// charging (a fault nobody can read is treated as serious), kept as received.
v1::Fault Ds60StatusFault(absl::string_view vendor_code, absl::Time since);

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_DS60_STATUS_CODES_H_
