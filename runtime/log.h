// Readable process logging to stderr, shared by every evgate binary.
//
// One line per event:
//   2026-11-21T19:48:00.123Z INFO  load_balancer: allocation changed (3 EVSEs)
// Operators read these in `journalctl` or `kubectl logs`; the format is stable
// enough to grep. Thread-safe: lines from different threads never interleave.
#ifndef EVGATE_RUNTIME_LOG_H_
#define EVGATE_RUNTIME_LOG_H_

#include <string_view>

#include "absl/strings/str_format.h"

namespace evgate::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Lines below `level` are dropped. Default: kInfo.
void SetMinLevel(Level level);

// Parses "debug", "info", "warning" or "error"; false if unknown.
bool ParseLevel(std::string_view text, Level* level);

// Writes one line. `component` names the service or module.
void Write(Level level, std::string_view component, std::string_view message);

// A component's logger: `Logger log("session"); log.Info("started %d", n);`
// Cheap to copy; thread-safe.
class Logger {
 public:
  explicit constexpr Logger(std::string_view component) : component_(component) {}

  template <typename... Args>
  void Debug(const absl::FormatSpec<Args...>& format, const Args&... args) const {
    Write(Level::kDebug, component_, absl::StrFormat(format, args...));
  }
  template <typename... Args>
  void Info(const absl::FormatSpec<Args...>& format, const Args&... args) const {
    Write(Level::kInfo, component_, absl::StrFormat(format, args...));
  }
  template <typename... Args>
  void Warning(const absl::FormatSpec<Args...>& format, const Args&... args) const {
    Write(Level::kWarning, component_, absl::StrFormat(format, args...));
  }
  template <typename... Args>
  void Error(const absl::FormatSpec<Args...>& format, const Args&... args) const {
    Write(Level::kError, component_, absl::StrFormat(format, args...));
  }

 private:
  std::string_view component_;
};

}  // namespace evgate::log

#endif  // EVGATE_RUNTIME_LOG_H_
