// Time as a dependency: everything that needs "now" or needs to wait takes a
// Clock, so tests drive time with FakeClock instead of sleeping.
#ifndef EVGATE_RUNTIME_CLOCK_H_
#define EVGATE_RUNTIME_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace evgate {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The real wall clock. Thread-safe.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override;
  // A process-wide instance, for main() to inject.
  static Clock& Get();
};

// A clock that moves only when told. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}
  absl::Time Now() const override;
  void Advance(absl::Duration d);
  void Set(absl::Time t);

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace evgate

#endif  // EVGATE_RUNTIME_CLOCK_H_
