// The metrics that need every event rather than a snapshot: counters and
// histograms fed from the load balancer's WatchAllocations and the session
// service's WatchSessions. They count from when the exporter started
// following (Prometheus's rate() and increase() handle the reset of a
// restarted exporter); every known label value starts at 0, so a rate is
// defined before the first event. Thread-safe.
#ifndef EVGATE_SERVICES_METRICS_EXPORTER_STREAM_METRICS_H_
#define EVGATE_SERVICES_METRICS_EXPORTER_STREAM_METRICS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "evgate/v1/load_balancer.pb.h"
#include "evgate/v1/session.pb.h"
#include "prometheus/client_metric.h"
#include "services/metrics_exporter/family_set.h"

namespace evgate::metrics {

// Fixed buckets (upper bounds in seconds, +Inf implied), cumulative on output.
class BucketHistogram {
 public:
  explicit BucketHistogram(std::vector<double> bounds);
  void Observe(double value);
  prometheus::ClientMetric::Histogram Get() const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, the last one +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class StreamMetrics {
 public:
  StreamMetrics();

  void OnAllocation(const v1::Allocation& allocation);
  void OnSessionEvent(const v1::WatchSessionsResponse& event);

  // Whether each stream has delivered since it was last lost: the
  // families of a stream that is down are left out (not served stale).
  void SetAllocationsFollowed(bool followed);
  void SetSessionsFollowed(bool followed);

  // `load_balancer_up`, `session_up`: whether that service answered this
  // scrape; its stream-fed metrics are served only then.
  void AddTo(FamilySet& out, bool load_balancer_up, bool session_up) const;

 private:
  mutable absl::Mutex mu_;
  bool allocations_followed_ ABSL_GUARDED_BY(mu_) = false;
  bool sessions_followed_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, double> allocations_ ABSL_GUARDED_BY(mu_);  // by trigger
  BucketHistogram reaction_ ABSL_GUARDED_BY(mu_);
  BucketHistogram compute_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, double> completed_ ABSL_GUARDED_BY(mu_);  // by stop reason
  double delivered_j_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace evgate::metrics

#endif  // EVGATE_SERVICES_METRICS_EXPORTER_STREAM_METRICS_H_
