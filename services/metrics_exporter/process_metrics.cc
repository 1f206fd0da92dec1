#include "services/metrics_exporter/process_metrics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace evgate::metrics {

namespace {

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<double> BootTime() {
  std::optional<std::string> stat = ReadFile("/proc/stat");
  if (!stat) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
    if (absl::ConsumePrefix(&line, "btime ")) {
      double value = 0;
      if (absl::SimpleAtod(line, &value)) return value;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<ProcessFigures> ParseProcStat(const std::string& stat, long ticks_per_second,
                                            long page_size, double boot_time_seconds) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so the
  // fields are counted from the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || ticks_per_second <= 0) return std::nullopt;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat).substr(close + 1), ' ', absl::SkipWhitespace());
  // After comm: field 3 (state) is fields[0]; utime 14, stime 15, starttime 22,
  // vsize 23, rss 24 (proc(5)).
  if (fields.size() < 22) return std::nullopt;
  double utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
  if (!absl::SimpleAtod(fields[11], &utime) || !absl::SimpleAtod(fields[12], &stime) ||
      !absl::SimpleAtod(fields[19], &start) || !absl::SimpleAtod(fields[20], &vsize) ||
      !absl::SimpleAtod(fields[21], &rss)) {
    return std::nullopt;
  }
  ProcessFigures f;
  f.cpu_seconds = (utime + stime) / static_cast<double>(ticks_per_second);
  f.start_time_seconds = boot_time_seconds + start / static_cast<double>(ticks_per_second);
  f.virtual_bytes = vsize;
  f.resident_bytes = rss * static_cast<double>(page_size);
  return f;
}

void AddProcessMetrics(FamilySet& out) {
  std::optional<std::string> stat = ReadFile("/proc/self/stat");
  std::optional<double> boot = BootTime();
  if (!stat || !boot) return;
  std::optional<ProcessFigures> f =
      ParseProcStat(*stat, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), *boot);
  if (!f) return;
  std::error_code error;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    ++fds;
  }
  out.Gauge("process_resident_memory_bytes", {}, f->resident_bytes);
  out.Gauge("process_virtual_memory_bytes", {}, f->virtual_bytes);
  out.Counter("process_cpu_seconds_total", {}, f->cpu_seconds);
  if (!error) out.Gauge("process_open_fds", {}, fds);
  out.Gauge("process_start_time_seconds", {}, f->start_time_seconds);
}

}  // namespace evgate::metrics
