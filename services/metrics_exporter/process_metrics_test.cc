#include "services/metrics_exporter/process_metrics.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace evgate::metrics {
namespace {

// A /proc/<pid>/stat line whose comm holds a space and a ')'.
constexpr char kStat[] =
    "4242 (evgate run) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 12000 "
    "104857600 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

TEST(ProcessMetricsTest, ParsesStatFromTheLastParenthesis) {
  std::optional<ProcessFigures> f = ParseProcStat(kStat, 100, 4096, 1700000000);
  ASSERT_TRUE(f.has_value());
  EXPECT_DOUBLE_EQ(f->cpu_seconds, 3.0);                // (250 + 50) / 100
  EXPECT_DOUBLE_EQ(f->start_time_seconds, 1700000120);  // boot + 12000 / 100
  EXPECT_DOUBLE_EQ(f->virtual_bytes, 104857600);
  EXPECT_DOUBLE_EQ(f->resident_bytes, 2048.0 * 4096);
}

TEST(ProcessMetricsTest, RejectsMalformedStat) {
  EXPECT_FALSE(ParseProcStat("", 100, 4096, 0).has_value());
  EXPECT_FALSE(ParseProcStat("4242 (no closing S 1 2 3", 100, 4096, 0).has_value());
  EXPECT_FALSE(ParseProcStat("4242 (short) S 1 2 3", 100, 4096, 0).has_value());
  std::string bad = kStat;
  bad.replace(bad.find(" 250 "), 5, " x50 ");
  EXPECT_FALSE(ParseProcStat(bad, 100, 4096, 0).has_value());
  EXPECT_FALSE(ParseProcStat(kStat, 0, 4096, 0).has_value());
}

TEST(ProcessMetricsTest, ReadsThisProcess) {
  FamilySet set;
  AddProcessMetrics(set);
  EXPECT_THAT(set.errors(), ::testing::IsEmpty());
  const std::string text = prometheus::TextSerializer().Serialize(set.Take());
  EXPECT_THAT(text, ::testing::HasSubstr("process_resident_memory_bytes "));
  EXPECT_THAT(text, ::testing::HasSubstr("process_open_fds "));
  EXPECT_THAT(text, ::testing::HasSubstr("process_cpu_seconds_total "));
}

}  // namespace
}  // namespace evgate::metrics
