#include "services/ocpp_bridge/setpoint_check.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace evgate::ocpp {

double SetpointCheck::Tolerance(double limit_w) const {
  return std::max(options_.tolerance_w, options_.tolerance_fraction * limit_w);
}

void SetpointCheck::LimitInForce(double limit_w, absl::Time at) {
  if (!limit_w_ || limit_w < *limit_w_) limit_binding_since_ = at;
  limit_w_ = limit_w;
}

bool SetpointCheck::Meter(double power_w, absl::Time at) {
  const std::optional<std::string> before = problem();
  if (!limit_w_) return false;
  if (power_w <= *limit_w_ + Tolerance(*limit_w_)) {
    over_since_.reset();
    meter_problem_.reset();
    return problem() != before;
  }
  if (!over_since_) over_since_ = at;
  // Past the time it had to get there, and not a single sample (a spike).
  if (at - limit_binding_since_ >= options_.grace && at > *over_since_) {
    meter_problem_ = absl::StrFormat(
        "draws %.0f W, above its %.0f W limit for %s (more than %s after the limit)", power_w,
        *limit_w_, absl::FormatDuration(at - *over_since_), absl::FormatDuration(options_.grace));
  }
  return problem() != before;
}

bool SetpointCheck::Readback(std::optional<double> schedule_limit_w, double expected_w) {
  const std::optional<std::string> before = problem();
  if (!schedule_limit_w) {
    readback_problem_ =
        "accepted the charging profile but reports no composite schedule in force "
        "(GetCompositeSchedule)";
  } else if (*schedule_limit_w > expected_w + Tolerance(expected_w)) {
    readback_problem_ =
        absl::StrFormat("its composite schedule allows %.0f W where evgate set %.0f W",
                        *schedule_limit_w, expected_w);
  } else {
    readback_problem_.reset();
  }
  return problem() != before;
}

std::optional<std::string> SetpointCheck::problem() const {
  if (meter_problem_ && readback_problem_) return *meter_problem_ + "; " + *readback_problem_;
  if (meter_problem_) return meter_problem_;
  return readback_problem_;
}

}  // namespace evgate::ocpp
