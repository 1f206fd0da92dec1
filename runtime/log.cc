#include "runtime/log.h"

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace evgate::log {
namespace {

std::atomic<int> min_level{static_cast<int>(Level::kInfo)};

absl::Mutex& StderrMutex() {
  static absl::Mutex* mutex = new absl::Mutex;
  return *mutex;
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "DEBUG";
    case Level::kInfo:
      return "INFO ";
    case Level::kWarning:
      return "WARN ";
    case Level::kError:
      return "ERROR";
  }
  return "?    ";
}

}  // namespace

void SetMinLevel(Level level) { min_level.store(static_cast<int>(level)); }

bool ParseLevel(std::string_view text, Level* level) {
  if (text == "debug") {
    *level = Level::kDebug;
  } else if (text == "info") {
    *level = Level::kInfo;
  } else if (text == "warning") {
    *level = Level::kWarning;
  } else if (text == "error") {
    *level = Level::kError;
  } else {
    return false;
  }
  return true;
}

void Write(Level level, std::string_view component, std::string_view message) {
  if (static_cast<int>(level) < min_level.load()) return;
  // Log timestamps are the one place evgate reads the wall clock directly:
  // they describe when a line was written, not domain time.
  std::string line = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  line.append(" ").append(LevelName(level)).append(" ").append(component);
  line.append(": ").append(message).append("\n");
  absl::MutexLock lock(&StderrMutex());
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace evgate::log
