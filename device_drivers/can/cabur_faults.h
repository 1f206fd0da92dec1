// The Cabur EV PLUS display error codes ("ERR OCP" ... "ERR MIS", carried as
// the error bits of the wallbox CAN protocol's Status frame) mapped into
// evgate's unified fault model (evgate.v1.Fault): code, severity, component,
// OCPP 1.6 errorCode, description.
//
// Every Cabur ERR code blocks charging (the wallbox opens its relay and shows
// state F) and is severity ERROR, as common.proto's FaultSeverity prescribes
// for Cabur codes. The vendor catalog name is "cabur_ev_plus".
//
// Thread-safety: thread-safe (immutable table).
#ifndef EVGATE_DEVICE_DRIVERS_CAN_CABUR_FAULTS_H_
#define EVGATE_DEVICE_DRIVERS_CAN_CABUR_FAULTS_H_

#include "absl/time/time.h"
#include "device_drivers/can/wallbox_protocol.h"
#include "evgate/v1/common.pb.h"

namespace evgate::can {

inline constexpr char kCaburFaultVendor[] = "cabur_ev_plus";

// The unified fault for `code`, first seen at `since`.
evgate::v1::Fault CaburFault(wallbox::ErrorCode code, absl::Time since);

}  // namespace evgate::can

#endif  // EVGATE_DEVICE_DRIVERS_CAN_CABUR_FAULTS_H_
