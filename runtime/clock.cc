#include "runtime/clock.h"

#include <time.h>

#include "absl/time/clock.h"

namespace evgate {

absl::Time SystemClock::Now() const { return absl::Now(); }

absl::Time SystemClock::MonotonicNow() const {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::UnixEpoch() + absl::DurationFromTimespec(ts);
}

Clock& SystemClock::Get() {
  static SystemClock* clock = new SystemClock;
  return *clock;
}

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

absl::Time FakeClock::MonotonicNow() const {
  absl::MutexLock lock(&mu_);
  return monotonic_;
}

void FakeClock::Advance(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  now_ += d;
  if (d > absl::ZeroDuration()) monotonic_ += d;
}

void FakeClock::StepWall(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  now_ += d;
}

void FakeClock::Set(absl::Time t) {
  absl::MutexLock lock(&mu_);
  if (t > now_) monotonic_ += t - now_;
  now_ = t;
}

}  // namespace evgate
