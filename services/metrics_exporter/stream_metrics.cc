#include "services/metrics_exporter/stream_metrics.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "google/protobuf/util/time_util.h"
#include "services/metrics_exporter/site_metrics.h"

namespace evgate::metrics {

namespace {

using google::protobuf::util::TimeUtil;

double Seconds(const google::protobuf::Duration& d) {
  return static_cast<double>(TimeUtil::DurationToNanoseconds(d)) / 1e9;
}

std::string TriggerLabel(int trigger) {
  return EnumLabel(v1::AllocationTrigger_Name(static_cast<v1::AllocationTrigger>(trigger)),
                   "ALLOCATION_TRIGGER_");
}

std::string StopLabel(int reason) {
  return EnumLabel(v1::StopReason_Name(static_cast<v1::StopReason>(reason)), "STOP_REASON_");
}

}  // namespace

BucketHistogram::BucketHistogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void BucketHistogram::Observe(double value) {
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

prometheus::ClientMetric::Histogram BucketHistogram::Get() const {
  prometheus::ClientMetric::Histogram h;
  h.sample_count = count_;
  h.sample_sum = sum_;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    cumulative += counts_[i];
    h.bucket.push_back(
        {cumulative, i < bounds_.size() ? bounds_[i] : std::numeric_limits<double>::infinity()});
  }
  return h;
}

StreamMetrics::StreamMetrics()
    // Reaction: the goal is 50 ms (issue #3), typical a few ms.
    : reaction_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}),
      // Compute: tens of µs on a small site, below 1 ms at 1,000 EVSEs.
      compute_({0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                0.025}) {
  for (int t = v1::AllocationTrigger_MIN + 1; t <= v1::AllocationTrigger_MAX; ++t) {
    // Simulate's results are not the site's allocations.
    if (v1::AllocationTrigger_IsValid(t) && t != v1::ALLOCATION_TRIGGER_SIMULATION) {
      allocations_[TriggerLabel(t)] = 0;
    }
  }
  for (int r = v1::StopReason_MIN + 1; r <= v1::StopReason_MAX; ++r) {
    if (v1::StopReason_IsValid(r)) completed_[StopLabel(r)] = 0;
  }
}

void StreamMetrics::OnAllocation(const v1::Allocation& allocation) {
  absl::MutexLock lock(&mu_);
  allocations_followed_ = true;
  allocations_[TriggerLabel(allocation.trigger())] += 1;
  if (allocation.has_reaction_time()) reaction_.Observe(Seconds(allocation.reaction_time()));
  if (allocation.has_compute_time()) compute_.Observe(Seconds(allocation.compute_time()));
}

void StreamMetrics::OnSessionEvent(const v1::WatchSessionsResponse& event) {
  absl::MutexLock lock(&mu_);
  sessions_followed_ = true;
  if (event.event() != v1::SESSION_EVENT_TYPE_ENDED) return;
  completed_[StopLabel(event.session().stop_reason())] += 1;
  delivered_j_ += event.session().energy_charged_wh() * 3600;
}

void StreamMetrics::SetAllocationsFollowed(bool followed) {
  absl::MutexLock lock(&mu_);
  allocations_followed_ = followed;
}

void StreamMetrics::SetSessionsFollowed(bool followed) {
  absl::MutexLock lock(&mu_);
  sessions_followed_ = followed;
}

void StreamMetrics::AddTo(FamilySet& out, bool load_balancer_up, bool session_up) const {
  absl::MutexLock lock(&mu_);
  if (allocations_followed_ && load_balancer_up) {
    for (const auto& [trigger, count] : allocations_) {
      out.Counter("evgate_allocations_total", {trigger}, count);
    }
    out.Histogram("evgate_control_reaction_seconds", {}, reaction_.Get());
    out.Histogram("evgate_allocation_compute_seconds", {}, compute_.Get());
  }
  if (sessions_followed_ && session_up) {
    for (const auto& [reason, count] : completed_) {
      out.Counter("evgate_sessions_completed_total", {reason}, count);
    }
    out.Counter("evgate_energy_delivered_joules_total", {}, delivered_j_);
  }
}

}  // namespace evgate::metrics
