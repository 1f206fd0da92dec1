#include "services/metrics_exporter/metric_catalogue.h"

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace evgate::metrics {
namespace {

TEST(MetricCatalogueTest, NamesFollowPrometheusConventions) {
  const std::regex name_re("[a-z_][a-z0-9_]*");
  std::set<std::string_view> names;
  for (const MetricSpec& spec : MetricCatalogue()) {
    SCOPED_TRACE(std::string(spec.name));
    EXPECT_TRUE(std::regex_match(std::string(spec.name), name_re));
    EXPECT_TRUE(names.insert(spec.name).second) << "listed twice";
    const bool total = spec.name.size() > 6 && spec.name.substr(spec.name.size() - 6) == "_total";
    EXPECT_EQ(total, spec.type == prometheus::MetricType::Counter)
        << "counters, and only counters, end in _total";
    EXPECT_FALSE(spec.help.empty());
    EXPECT_FALSE(spec.unit.empty());
    EXPECT_FALSE(spec.source.empty());
  }
}

TEST(MetricCatalogueTest, LabelsComeFromTheBoundedSet) {
  // Never an id of something unbounded (session id, id tag, message id).
  const std::set<std::string_view> allowed = {
      "circuit",      "phase",    "evse",   "device",    "bus",      "kind",    "station",
      "charge_point", "state",    "reason", "code",      "severity", "service", "trigger",
      "version",      "revision", "source", "direction", "action",   "result"};
  for (const MetricSpec& spec : MetricCatalogue()) {
    for (std::string_view label : spec.labels) {
      EXPECT_EQ(allowed.count(label), 1u) << spec.name << " label " << label;
    }
  }
}

TEST(MetricCatalogueTest, FindsOnlyCatalogueNames) {
  ASSERT_NE(FindMetric("evgate_up"), nullptr);
  EXPECT_EQ(FindMetric("evgate_up")->labels.size(), 1u);
  EXPECT_EQ(FindMetric("evgate_nonexistent"), nullptr);
  EXPECT_EQ(FindMetric(""), nullptr);
}

TEST(MetricCatalogueTest, HistogramSeriesNames) {
  const MetricSpec* reaction = FindMetric("evgate_control_reaction_seconds");
  ASSERT_NE(reaction, nullptr);
  EXPECT_EQ(SeriesNames(*reaction),
            (std::vector<std::string>{"evgate_control_reaction_seconds_bucket",
                                      "evgate_control_reaction_seconds_sum",
                                      "evgate_control_reaction_seconds_count"}));
  EXPECT_EQ(SeriesNames(*FindMetric("evgate_up")), std::vector<std::string>{"evgate_up"});
}

// docs/metrics.md is generated; a catalogue change without regenerating it
// fails here with the command that does.
TEST(MetricCatalogueTest, DocsAreTheGeneratedCatalogue) {
  std::ifstream in("docs/metrics.md");
  ASSERT_TRUE(in) << "docs/metrics.md not in the test's runfiles";
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), CatalogueMarkdown())
      << "regenerate: bazel run //services/metrics_exporter -- --print-catalogue > "
         "docs/metrics.md";
}

}  // namespace
}  // namespace evgate::metrics
