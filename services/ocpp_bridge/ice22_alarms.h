// The InCharge ICE-22 V2X charger's alarm table ("Table: Charger Alarms" of
// its manual, ../shared/seeds/000_*.txt section 2.7) mapped into evgate's
// unified fault model (evgate.v1.Fault). The charger reports an alarm as an
// alarm id with its level: CA critical, MA major, OA observative; over OCPP
// it arrives as a StatusNotification's vendorErrorCode, e.g. "CA 21".
//
// Severity and blocks_charging follow what the manual says each alarm does,
// not only its level: "system not available" alarms and safety alarms
// (EPO, door, SPD, insulation, ground fault, shorted output) are CRITICAL and
// block charging; an alarm that takes one gun out of service, and the
// charger or a gun set 'In-operative' by service or the backend (System
// Disabled, Gun is disabled), is ERROR and blocks; Server Comm Fail, System over temp ("does not
// stop/prohibit charge"), card reader and invalid current sample are WARNING and do not block. The
// alarm id decides the mapping; the level in the vendor code is kept in vendor_code as received.
//
// Thread-safety: thread-safe (immutable table).
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_ICE22_ALARMS_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_ICE22_ALARMS_H_

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "evgate/v1/common.pb.h"

namespace evgate::ocpp {

inline constexpr char kIce22AlarmVendor[] = "ice22_alarm";

// The unified fault for `vendor_code` ("CA 21", "CA21", "21"), first seen at
// `since`. A code that is not an alarm id of the table (or not a code at
// all) is UNKNOWN_VENDOR_CODE, ERROR, blocking charging (an alarm nobody can
// read is treated as serious), with the code kept as received.
v1::Fault Ice22AlarmFault(absl::string_view vendor_code, absl::Time since);

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_ICE22_ALARMS_H_
