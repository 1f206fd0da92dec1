#include "services/metrics_exporter/stream_metrics.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace evgate::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Text(const StreamMetrics& metrics, bool lb_up = true, bool session_up = true) {
  FamilySet set;
  metrics.AddTo(set, lb_up, session_up);
  EXPECT_THAT(set.errors(), ::testing::IsEmpty());
  return prometheus::TextSerializer().Serialize(set.Take());
}

v1::Allocation Allocation(const std::string& text) {
  v1::Allocation a;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &a));
  return a;
}

TEST(BucketHistogramTest, CumulativeBucketsWithInf) {
  BucketHistogram h({0.01, 0.1});
  h.Observe(0.005);
  h.Observe(0.01);  // on a bound: in that bucket (le)
  h.Observe(0.05);
  h.Observe(7);
  const prometheus::ClientMetric::Histogram out = h.Get();
  EXPECT_EQ(out.sample_count, 4u);
  EXPECT_DOUBLE_EQ(out.sample_sum, 7.065);
  ASSERT_EQ(out.bucket.size(), 3u);
  EXPECT_EQ(out.bucket[0].cumulative_count, 2u);
  EXPECT_EQ(out.bucket[1].cumulative_count, 3u);
  EXPECT_EQ(out.bucket[2].cumulative_count, 4u);
  EXPECT_TRUE(std::isinf(out.bucket[2].upper_bound));
}

TEST(StreamMetricsTest, NothingBeforeTheStreamsDeliver) {
  StreamMetrics metrics;
  const std::string text = Text(metrics);
  EXPECT_THAT(text, Not(HasSubstr("evgate_allocations_total")));
  EXPECT_THAT(text, Not(HasSubstr("evgate_sessions_completed_total")));
}

TEST(StreamMetricsTest, AllocationsCountedByTriggerWithTimings) {
  StreamMetrics metrics;
  metrics.OnAllocation(Allocation(R"pb(trigger: ALLOCATION_TRIGGER_METER_SAMPLE
                                       reaction_time { nanos: 3000000 }
                                       compute_time { nanos: 40000 })pb"));
  metrics.OnAllocation(Allocation(R"pb(trigger: ALLOCATION_TRIGGER_TICK
                                       compute_time { nanos: 30000 })pb"));
  const std::string text = Text(metrics);
  EXPECT_THAT(text, HasSubstr("evgate_allocations_total{trigger=\"meter_sample\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_allocations_total{trigger=\"tick\"} 1"));
  // Every trigger starts at 0 so rate() has data; Simulate's are not counted.
  EXPECT_THAT(text, HasSubstr("evgate_allocations_total{trigger=\"dynamic_limit\"} 0"));
  EXPECT_THAT(text, Not(HasSubstr("trigger=\"simulation\"")));
  EXPECT_THAT(text, HasSubstr("evgate_control_reaction_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("evgate_control_reaction_seconds_bucket{le=\"0.005\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_control_reaction_seconds_bucket{le=\"0.0025\"} 0"));
  EXPECT_THAT(text, HasSubstr("evgate_allocation_compute_seconds_count 2"));
  EXPECT_THAT(text, HasSubstr("evgate_allocation_compute_seconds_bucket{le=\"5e-05\"} 2"));
}

TEST(StreamMetricsTest, EndedSessionsByReasonAndEnergy) {
  StreamMetrics metrics;
  v1::WatchSessionsResponse snapshot;
  snapshot.set_event(v1::SESSION_EVENT_TYPE_SNAPSHOT);
  snapshot.mutable_session()->set_energy_charged_wh(5000);
  metrics.OnSessionEvent(snapshot);  // open at connect: not an ended one
  v1::WatchSessionsResponse ended;
  ended.set_event(v1::SESSION_EVENT_TYPE_ENDED);
  ended.mutable_session()->set_stop_reason(v1::STOP_REASON_EV_DISCONNECTED);
  ended.mutable_session()->set_energy_charged_wh(1000);
  metrics.OnSessionEvent(ended);
  const std::string text = Text(metrics);
  EXPECT_THAT(text, HasSubstr("evgate_sessions_completed_total{reason=\"ev_disconnected\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_sessions_completed_total{reason=\"local\"} 0"));
  EXPECT_THAT(text, HasSubstr("evgate_energy_delivered_joules_total 3600000"));
}

// A stream that is lost, or a service that did not answer this scrape: its
// metrics are left out rather than served stale; they come back (counts
// kept) when it delivers again.
TEST(StreamMetricsTest, LostStreamOrDownServiceHidesItsMetrics) {
  StreamMetrics metrics;
  metrics.OnAllocation(Allocation("trigger: ALLOCATION_TRIGGER_TICK"));
  EXPECT_THAT(Text(metrics, /*lb_up=*/false), Not(HasSubstr("evgate_allocations_total")));
  metrics.SetAllocationsFollowed(false);
  EXPECT_THAT(Text(metrics), Not(HasSubstr("evgate_allocations_total")));
  metrics.OnAllocation(Allocation("trigger: ALLOCATION_TRIGGER_TICK"));
  EXPECT_THAT(Text(metrics), HasSubstr("evgate_allocations_total{trigger=\"tick\"} 2"));
}

}  // namespace
}  // namespace evgate::metrics
