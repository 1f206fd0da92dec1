// A histogram of durations over fixed bucket bounds, for the counters a
// service reports in its API (evgate.v1.DurationHistogram) and the exporter
// turns into a Prometheus histogram. Not thread-safe: its owner guards it.
#ifndef EVGATE_RUNTIME_DURATION_HISTOGRAM_H_
#define EVGATE_RUNTIME_DURATION_HISTOGRAM_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "evgate/v1/common.pb.h"

namespace evgate {

class DurationHistogram {
 public:
  // `upper_bounds` ascending and positive (checked: others are dropped).
  explicit DurationHistogram(std::vector<absl::Duration> upper_bounds);

  // Counts one duration (a negative one as zero: a clock that stepped back).
  void Observe(absl::Duration duration);

  uint64_t count() const { return count_; }
  void ToProto(v1::DurationHistogram* out) const;

 private:
  std::vector<absl::Duration> bounds_;
  std::vector<uint64_t> bucket_counts_;  // per bucket, not cumulative
  uint64_t count_ = 0;
  absl::Duration sum_;
};

// 1 ms to 2.5 s: a Modbus request over TCP (about a millisecond) to a slow
// RTU answer at 9,600 baud, up to the longest timeout worth waiting for.
std::vector<absl::Duration> BusRequestBounds();

}  // namespace evgate

#endif  // EVGATE_RUNTIME_DURATION_HISTOGRAM_H_
