// The one list of every metric the exporter serves: name, type, unit, labels,
// meaning and the service it comes from. The exporter builds its families
// from it (a family not listed here cannot be emitted), docs/metrics.md is
// generated from it (`metrics_exporter --print-catalogue`, checked by a test),
// and the dashboards' and alert rules' queries are checked against it.
//
// Naming follows Prometheus (and `promtool check metrics`): base units in
// the name (amperes, watts, joules, seconds, bytes, percent), `_total` for
// counters, labels from a bounded set (circuit, phase, evse, device, bus,
// kind, station, charge_point, state, reason, code, severity, source,
// service, trigger, version, revision, and the OCPP direction, action and
// result): never an id of something unbounded
// such as a session or a card.
#ifndef EVGATE_SERVICES_METRICS_EXPORTER_METRIC_CATALOGUE_H_
#define EVGATE_SERVICES_METRICS_EXPORTER_METRIC_CATALOGUE_H_

#include <string>
#include <string_view>
#include <vector>

#include "prometheus/metric_type.h"

namespace evgate::metrics {

struct MetricSpec {
  std::string_view name;
  prometheus::MetricType type;
  std::string_view unit;  // for the docs: "A", "W", "J", "s", "%", "1" (count or 0/1)
  std::vector<std::string_view> labels;
  // The service it is read from, "exporter" (its own) or "prometheus-cpp"
  // (the library's Exposer adds those).
  std::string_view source;
  std::string_view help;
};

// In documentation order.
const std::vector<MetricSpec>& MetricCatalogue();

// nullptr when `name` is not a catalogue metric.
const MetricSpec* FindMetric(std::string_view name);

// The series names Prometheus derives from a metric (a histogram `x` is
// scraped as x_bucket, x_sum and x_count).
std::vector<std::string> SeriesNames(const MetricSpec& spec);

// docs/metrics.md, generated.
std::string CatalogueMarkdown();

}  // namespace evgate::metrics

#endif  // EVGATE_SERVICES_METRICS_EXPORTER_METRIC_CATALOGUE_H_
