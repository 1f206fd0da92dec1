// The metrics exporter as its own process (one container in a split
// deployment): `metrics_exporter --site FILE [--listen HOST:PORT]`, or
// `metrics_exporter --print-catalogue` to write docs/metrics.md.
#include <iostream>
#include <string>
#include <vector>

#include "gateway/launcher.h"
#include "services/metrics_exporter/metric_catalogue.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--print-catalogue") {
    std::cout << evgate::metrics::CatalogueMarkdown();
    return 0;
  }
  return evgate::gateway::RunFromArgs(args, "metrics_exporter");
}
