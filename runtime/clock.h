// Time as a dependency: everything that needs "now" or needs to wait takes a
// Clock, so tests drive time with FakeClock instead of sleeping.
//
// Two timelines:
//  - Now(): wall-clock time, for timestamps people and other hosts read
//    (measured_at, computed_at, session start). It can step either way (NTP on
//    a gateway box that booted without RTC).
//  - MonotonicNow(): a steady timeline with an arbitrary origin that never
//    goes back and never jumps. Every age, timeout, deadline and rate is
//    computed on it, so that a wall-clock step neither freezes a meter's age
//    nor fires a timeout early. Its values mean nothing across processes.
#ifndef EVGATE_RUNTIME_CLOCK_H_
#define EVGATE_RUNTIME_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace evgate {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time.
  virtual absl::Time Now() const = 0;
  // Steady time: never decreases, unaffected by wall-clock steps.
  virtual absl::Time MonotonicNow() const = 0;
};

// The real clocks (CLOCK_REALTIME, CLOCK_MONOTONIC). Thread-safe.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override;
  absl::Time MonotonicNow() const override;
  // A process-wide instance, for main() to inject.
  static Clock& Get();
};

// A clock that moves only when told. Thread-safe.
// Advance() moves both timelines; StepWall() moves only the wall clock, as
// NTP does; Set() sets the wall clock and moves the monotonic one forward by
// as much (never back).
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000))
      : now_(start), monotonic_(absl::UnixEpoch() + absl::Hours(1)) {}
  absl::Time Now() const override;
  absl::Time MonotonicNow() const override;
  void Advance(absl::Duration d);
  void StepWall(absl::Duration d);
  void Set(absl::Time t);

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  absl::Time monotonic_ ABSL_GUARDED_BY(mu_);
};

}  // namespace evgate

#endif  // EVGATE_RUNTIME_CLOCK_H_
