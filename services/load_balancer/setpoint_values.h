// DeviceDriver setpoint values as the control loop reasons about them: the
// policy's setpoint as an API value, what a value lets an EVSE draw (to tell
// decreases from increases), whether two values are the same, and whether a
// failed ApplySetpoints call may still have been applied.
//
// Thread-safety: free functions without state.
#ifndef EVGATE_SERVICES_LOAD_BALANCER_SETPOINT_VALUES_H_
#define EVGATE_SERVICES_LOAD_BALANCER_SETPOINT_VALUES_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "evgate/v1/device.pb.h"
#include "site_controller/config/site_config.h"
#include "site_controller/control/control_policy.h"

namespace evgate::load_balancer {

// The policy's setpoint as the DeviceDriver API's value: a pause, a current
// on each of the EVSE's wired site phases (AC), or a power (DC).
v1::SetpointValue ToValue(const control::Setpoint& setpoint, const site::EvseConfig& evse);

// What a value lets an EVSE draw, for ordering: per-phase A (AC, the highest
// phase) or W (DC); a pause is 0 (a DC discharge below it).
double Draw(const v1::SetpointValue& value);

// The policy's AcceptedSetpoint of a value in force since `at`.
control::AcceptedSetpoint Accepted(const v1::SetpointValue& value, absl::Time at);

// Two values are the same setpoint (field by field: MessageDifferencer costs
// microseconds, and this runs for every EVSE of every batch).
bool SameValue(const v1::SetpointValue& a, const v1::SetpointValue& b);

// A batch whose call failed with `code` may have been applied on the device
// (deadline, unavailable, unknown); false for refusals before anything ran.
bool MayHaveBeenApplied(absl::StatusCode code);

}  // namespace evgate::load_balancer

#endif  // EVGATE_SERVICES_LOAD_BALANCER_SETPOINT_VALUES_H_
