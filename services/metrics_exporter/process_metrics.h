// The standard process_* metrics of the exporter's own process, from
// /proc/self (prometheus-cpp has no process collector). Linux only.
#ifndef EVGATE_SERVICES_METRICS_EXPORTER_PROCESS_METRICS_H_
#define EVGATE_SERVICES_METRICS_EXPORTER_PROCESS_METRICS_H_

#include <optional>
#include <string>

#include "services/metrics_exporter/family_set.h"

namespace evgate::metrics {

struct ProcessFigures {
  double cpu_seconds = 0;
  double start_time_seconds = 0;  // since the Unix epoch
  double virtual_bytes = 0;
  double resident_bytes = 0;
  double open_fds = 0;
};

// Parses /proc/<pid>/stat (`stat`) with the clock tick, page size and the
// system boot time (btime of /proc/stat). nullopt when malformed.
std::optional<ProcessFigures> ParseProcStat(const std::string& stat, long ticks_per_second,
                                            long page_size, double boot_time_seconds);

// Reads this process's figures; adds nothing when /proc cannot be read.
void AddProcessMetrics(FamilySet& out);

}  // namespace evgate::metrics

#endif  // EVGATE_SERVICES_METRICS_EXPORTER_PROCESS_METRICS_H_
