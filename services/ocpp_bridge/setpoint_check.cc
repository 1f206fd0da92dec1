#include "services/ocpp_bridge/setpoint_check.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace evgate::ocpp {

double SetpointCheck::Tolerance(double limit_w) const {
  return std::max(options_.tolerance_w, options_.tolerance_fraction * limit_w);
}

void SetpointCheck::LimitInForce(double limit_w, absl::Time at) {
  // Never back in time: a limit stamped before the last one starts with it.
  if (!limits_.empty() && at < limits_.back().first) at = limits_.back().first;
  limits_.emplace_back(at, limit_w);
  while (limits_.size() >= 2 && limits_[1].first <= at - 2 * options_.grace) limits_.pop_front();
}

std::optional<double> SetpointCheck::limit_w() const {
  if (limits_.empty()) return std::nullopt;
  return limits_.back().second;
}

std::optional<double> SetpointCheck::BindingLimit(absl::Time at) const {
  const absl::Time from = at - options_.grace;
  if (limits_.empty() || limits_.front().first > from) return std::nullopt;
  std::optional<double> highest;
  for (size_t i = 0; i < limits_.size(); ++i) {
    const absl::Time start = limits_[i].first;
    const absl::Time end = i + 1 < limits_.size() ? limits_[i + 1].first : absl::InfiniteFuture();
    if (end <= from) continue;  // ended before the window
    if (start > at) break;      // not yet in force at the sample
    highest = std::max(highest.value_or(limits_[i].second), limits_[i].second);
  }
  return highest;
}

bool SetpointCheck::Meter(double power_w, absl::Time at) {
  const std::optional<std::string> before = problem();
  std::optional<double> limit = BindingLimit(at);
  // A discharge limit (< 0) caps the discharge; less is no fault (off grid the island's loads set
  // it, and the vehicle may stop at its SOC limit). What it must not do is draw from the grid.
  if (limit) limit = std::max(*limit, 0.0);
  if (!limit || power_w <= *limit + Tolerance(*limit)) {
    over_since_.reset();
    if (limit) meter_problem_.reset();
    return problem() != before;
  }
  if (!over_since_) {
    over_since_ = at;  // one sample over: maybe a spike
  } else if (at > *over_since_) {
    meter_problem_ = absl::StrFormat(
        "draws %.0f W, above its %.0f W limit (the highest in the last %s) for %s", power_w, *limit,
        absl::FormatDuration(options_.grace), absl::FormatDuration(at - *over_since_));
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
