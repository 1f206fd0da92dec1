#include "runtime/clock.h"

#include "gtest/gtest.h"

namespace evgate {
namespace {

TEST(FakeClockTest, AdvanceMovesBothTimelines) {
  FakeClock clock;
  const absl::Time wall = clock.Now();
  const absl::Time mono = clock.MonotonicNow();
  clock.Advance(absl::Seconds(3));
  EXPECT_EQ(clock.Now() - wall, absl::Seconds(3));
  EXPECT_EQ(clock.MonotonicNow() - mono, absl::Seconds(3));
}

TEST(FakeClockTest, WallStepsLeaveTheMonotonicClockAlone) {
  FakeClock clock;
  const absl::Time wall = clock.Now();
  const absl::Time mono = clock.MonotonicNow();
  clock.StepWall(-absl::Hours(2));
  EXPECT_EQ(clock.Now(), wall - absl::Hours(2));
  EXPECT_EQ(clock.MonotonicNow(), mono);
  clock.StepWall(absl::Hours(5));
  EXPECT_EQ(clock.MonotonicNow(), mono);
}

TEST(FakeClockTest, SetNeverMovesTheMonotonicClockBack) {
  FakeClock clock;
  const absl::Time wall = clock.Now();
  const absl::Time mono = clock.MonotonicNow();
  clock.Set(wall + absl::Seconds(10));
  EXPECT_EQ(clock.MonotonicNow(), mono + absl::Seconds(10));
  clock.Set(wall - absl::Seconds(10));
  EXPECT_EQ(clock.Now(), wall - absl::Seconds(10));
  EXPECT_EQ(clock.MonotonicNow(), mono + absl::Seconds(10));
}

TEST(SystemClockTest, MonotonicNeverGoesBack) {
  Clock& clock = SystemClock::Get();
  absl::Time last = clock.MonotonicNow();
  for (int i = 0; i < 1000; ++i) {
    const absl::Time now = clock.MonotonicNow();
    ASSERT_GE(now, last);
    last = now;
  }
}

}  // namespace
}  // namespace evgate
