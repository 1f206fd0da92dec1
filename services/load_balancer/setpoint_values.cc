#include "services/load_balancer/setpoint_values.h"

#include <algorithm>

#include "services/load_balancer/proto_conversions.h"

namespace evgate::load_balancer {

v1::SetpointValue ToValue(const control::Setpoint& setpoint, const site::EvseConfig& evse) {
  v1::SetpointValue value;
  if (setpoint.paused) {
    value.mutable_pause();
  } else if (setpoint.type == allocation::EvseType::kAc) {
    for (site::Phase phase : evse.phases) {
      SetPhase(value.mutable_current_limit_a(), static_cast<int>(phase), setpoint.current_a);
    }
  } else {
    value.set_power_limit_w(setpoint.power_w);
  }
  return value;
}

double Draw(const v1::SetpointValue& value) {
  if (value.has_pause()) return 0;
  if (value.has_power_limit_w()) return value.power_limit_w();
  double a = 0;
  for (int p = 0; p < allocation::kPhaseCount; ++p) {
    a = std::max(a, GetPhase(value.current_limit_a(), p).value_or(0));
  }
  return a;
}

control::AcceptedSetpoint Accepted(const v1::SetpointValue& value, absl::Time at) {
  control::AcceptedSetpoint accepted;
  accepted.at = at;
  accepted.paused = value.has_pause();
  if (value.has_power_limit_w()) {
    accepted.power_w = value.power_limit_w();
  } else {
    accepted.current_a = Draw(value);
  }
  return accepted;
}

bool SameValue(const v1::SetpointValue& a, const v1::SetpointValue& b) {
  if (a.kind_case() != b.kind_case()) return false;
  switch (a.kind_case()) {
    case v1::SetpointValue::kPowerLimitW:
      return a.power_limit_w() == b.power_limit_w();
    case v1::SetpointValue::kCurrentLimitA:
      for (int p = 0; p < allocation::kPhaseCount; ++p) {
        if (GetPhase(a.current_limit_a(), p) != GetPhase(b.current_limit_a(), p)) return false;
      }
      return true;
    default:
      return true;  // pause, or nothing
  }
}

bool MayHaveBeenApplied(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kFailedPrecondition:
      return false;  // refused before anything was applied
    default:
      return true;  // deadline, unavailable, unknown: no way to tell
  }
}

}  // namespace evgate::load_balancer
