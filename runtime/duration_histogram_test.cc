#include "runtime/duration_histogram.h"

#include "gtest/gtest.h"

namespace evgate {
namespace {

TEST(DurationHistogram, CumulativeCountsPerBoundAndTheRestOnlyInTheCount) {
  DurationHistogram h({absl::Milliseconds(1), absl::Milliseconds(10), absl::Milliseconds(100)});
  h.Observe(absl::Microseconds(500));
  h.Observe(absl::Milliseconds(1));  // at a bound: in that bucket (le)
  h.Observe(absl::Milliseconds(7));
  h.Observe(absl::Seconds(3));  // above every bound
  v1::DurationHistogram proto;
  h.ToProto(&proto);
  ASSERT_EQ(proto.upper_bounds_s_size(), 3);
  EXPECT_DOUBLE_EQ(proto.upper_bounds_s(0), 0.001);
  EXPECT_DOUBLE_EQ(proto.upper_bounds_s(2), 0.1);
  ASSERT_EQ(proto.cumulative_counts_size(), 3);
  EXPECT_EQ(proto.cumulative_counts(0), 2u);
  EXPECT_EQ(proto.cumulative_counts(1), 3u);
  EXPECT_EQ(proto.cumulative_counts(2), 3u);
  EXPECT_EQ(proto.count(), 4u);
  EXPECT_DOUBLE_EQ(proto.sum_s(), 0.0005 + 0.001 + 0.007 + 3);
}

// Bad input tried: a negative duration (a clock stepped back), bounds out of
// order, repeated and not positive.
TEST(DurationHistogram, NegativeDurationsCountAsZeroAndBadBoundsAreDropped) {
  DurationHistogram h({absl::ZeroDuration(), absl::Milliseconds(5), absl::Milliseconds(5),
                       absl::Milliseconds(2), absl::Milliseconds(-1), absl::Milliseconds(20)});
  h.Observe(absl::Milliseconds(-3));
  v1::DurationHistogram proto;
  h.ToProto(&proto);
  ASSERT_EQ(proto.upper_bounds_s_size(), 2);
  EXPECT_DOUBLE_EQ(proto.upper_bounds_s(0), 0.005);
  EXPECT_DOUBLE_EQ(proto.upper_bounds_s(1), 0.02);
  EXPECT_EQ(proto.cumulative_counts(0), 1u);
  EXPECT_EQ(proto.count(), 1u);
  EXPECT_DOUBLE_EQ(proto.sum_s(), 0);
}

TEST(DurationHistogram, BusRequestBoundsAreAscending) {
  const std::vector<absl::Duration> bounds = BusRequestBounds();
  ASSERT_FALSE(bounds.empty());
  for (size_t i = 1; i < bounds.size(); ++i) EXPECT_LT(bounds[i - 1], bounds[i]);
  DurationHistogram h(bounds);
  v1::DurationHistogram proto;
  h.ToProto(&proto);
  EXPECT_EQ(proto.upper_bounds_s_size(), static_cast<int>(bounds.size()));
}

}  // namespace
}  // namespace evgate
