// Builds the metric families of one scrape from the catalogue: every sample
// is checked against its MetricSpec (known name, same type, one value per
// label), so the exporter cannot serve a metric the catalogue and the docs do
// not have. A sample that fails the check is not served and is recorded in
// errors() (a programming error; the tests require none).
#ifndef EVGATE_SERVICES_METRICS_EXPORTER_FAMILY_SET_H_
#define EVGATE_SERVICES_METRICS_EXPORTER_FAMILY_SET_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "prometheus/metric_family.h"
#include "services/metrics_exporter/metric_catalogue.h"

namespace evgate::metrics {

class FamilySet {
 public:
  // `label_values` in the order of the spec's labels.
  void Gauge(std::string_view name, std::vector<std::string> label_values, double value);
  void Counter(std::string_view name, std::vector<std::string> label_values, double value);
  // A histogram sample already aggregated (cumulative bucket counts, the
  // last bound +Inf).
  void Histogram(std::string_view name, std::vector<std::string> label_values,
                 prometheus::ClientMetric::Histogram histogram);

  // Appends every sample (and error) of `other`.
  void Merge(FamilySet&& other);

  // The families with at least one sample, in catalogue order.
  std::vector<prometheus::MetricFamily> Take();
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  prometheus::ClientMetric* Add(std::string_view name, prometheus::MetricType type,
                                std::vector<std::string> label_values);

  std::map<std::string_view, prometheus::MetricFamily> families_;
  std::vector<std::string> errors_;
};

}  // namespace evgate::metrics

#endif  // EVGATE_SERVICES_METRICS_EXPORTER_FAMILY_SET_H_
