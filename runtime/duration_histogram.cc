#include "runtime/duration_histogram.h"

#include <algorithm>
#include <utility>

namespace evgate {

DurationHistogram::DurationHistogram(std::vector<absl::Duration> upper_bounds) {
  for (absl::Duration bound : upper_bounds) {
    if (bound > absl::ZeroDuration() && (bounds_.empty() || bound > bounds_.back())) {
      bounds_.push_back(bound);
    }
  }
  bucket_counts_.assign(bounds_.size(), 0);
}

void DurationHistogram::Observe(absl::Duration duration) {
  duration = std::max(duration, absl::ZeroDuration());
  ++count_;
  sum_ += duration;
  // The first bucket whose bound is at or above the duration; beyond the last
  // bound only the count (+Inf) has it.
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), duration);
  if (it != bounds_.end()) ++bucket_counts_[it - bounds_.begin()];
}

void DurationHistogram::ToProto(v1::DurationHistogram* out) const {
  out->Clear();
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += bucket_counts_[i];
    out->add_upper_bounds_s(absl::ToDoubleSeconds(bounds_[i]));
    out->add_cumulative_counts(cumulative);
  }
  out->set_count(count_);
  out->set_sum_s(absl::ToDoubleSeconds(sum_));
}

std::vector<absl::Duration> BusRequestBounds() {
  return {absl::Milliseconds(1),   absl::Microseconds(2500), absl::Milliseconds(5),
          absl::Milliseconds(10),  absl::Milliseconds(25),   absl::Milliseconds(50),
          absl::Milliseconds(100), absl::Milliseconds(250),  absl::Milliseconds(500),
          absl::Seconds(1),        absl::Milliseconds(2500)};
}

}  // namespace evgate
