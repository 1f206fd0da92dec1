#include "services/metrics_exporter/family_set.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace evgate::metrics {

prometheus::ClientMetric* FamilySet::Add(std::string_view name, prometheus::MetricType type,
                                         std::vector<std::string> label_values) {
  const MetricSpec* spec = FindMetric(name);
  if (spec == nullptr) {
    errors_.push_back(absl::StrCat(std::string(name), ": not in the metric catalogue"));
    return nullptr;
  }
  if (spec->type != type) {
    errors_.push_back(
        absl::StrCat(std::string(name), ": emitted with another type than the catalogue's"));
    return nullptr;
  }
  if (spec->labels.size() != label_values.size()) {
    errors_.push_back(absl::StrCat(std::string(name), ": ", label_values.size(),
                                   " label values for ", spec->labels.size(), " labels"));
    return nullptr;
  }
  prometheus::MetricFamily& family = families_[spec->name];
  if (family.name.empty()) {
    family.name = std::string(spec->name);
    family.help = std::string(spec->help);
    family.type = type;
  }
  prometheus::ClientMetric& metric = family.metric.emplace_back();
  metric.label.reserve(label_values.size());
  for (size_t i = 0; i < label_values.size(); ++i) {
    // An empty value is the same as no label in Prometheus; leave it out.
    if (label_values[i].empty()) continue;
    metric.label.push_back({std::string(spec->labels[i]), std::move(label_values[i])});
  }
  return &metric;
}

void FamilySet::Gauge(std::string_view name, std::vector<std::string> label_values, double value) {
  if (auto* m = Add(name, prometheus::MetricType::Gauge, std::move(label_values))) {
    m->gauge.value = value;
  }
}

void FamilySet::Counter(std::string_view name, std::vector<std::string> label_values,
                        double value) {
  if (auto* m = Add(name, prometheus::MetricType::Counter, std::move(label_values))) {
    m->counter.value = value;
  }
}

void FamilySet::Histogram(std::string_view name, std::vector<std::string> label_values,
                          prometheus::ClientMetric::Histogram histogram) {
  if (auto* m = Add(name, prometheus::MetricType::Histogram, std::move(label_values))) {
    m->histogram = std::move(histogram);
  }
}

void FamilySet::Merge(FamilySet&& other) {
  for (auto& [name, family] : other.families_) {
    prometheus::MetricFamily& mine = families_[name];
    if (mine.name.empty()) {
      mine = std::move(family);
      continue;
    }
    for (prometheus::ClientMetric& m : family.metric) mine.metric.push_back(std::move(m));
  }
  for (std::string& e : other.errors_) errors_.push_back(std::move(e));
  other.families_.clear();
  other.errors_.clear();
}

std::vector<prometheus::MetricFamily> FamilySet::Take() {
  std::vector<prometheus::MetricFamily> out;
  for (const MetricSpec& spec : MetricCatalogue()) {
    auto it = families_.find(spec.name);
    if (it != families_.end()) out.push_back(std::move(it->second));
  }
  families_.clear();
  return out;
}

}  // namespace evgate::metrics
