// The metrics exporter as its own process (one container in a split
// deployment): `metrics_exporter --site FILE [--listen HOST:PORT]`, or
// `metrics_exporter --print-catalogue` to write docs/metrics.md.
#include <iostream>
#include <string>
#include <vector>

#include "runtime/launcher.h"
#include "services/metrics_exporter/metric_catalogue.h"
#include "services/metrics_exporter/metrics_exporter_entry.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--print-catalogue") {
    std::cout << evgate::metrics::CatalogueMarkdown();
    return 0;
  }
  return evgate::RunFromArgs(args, {evgate::metrics::MetricsExporterEntry()}, "metrics_exporter");
}
