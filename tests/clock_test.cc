// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/clock.h"

#include "fanout/testing/fake_clock.h"
#include "gtest/gtest.h"

namespace fanout {
namespace {

TEST(SystemClock, NowNeverGoesBackwards) {
  SystemClock clock;
  absl::Time previous = clock.Now();
  for (int i = 0; i < 100000; ++i) {
    const absl::Time now = clock.Now();
    ASSERT_GE(now, previous);
    previous = now;
  }
}

TEST(SystemClock, WallNowIsCalendarTime) {
  SystemClock clock;
  // Any machine running this is past 2020-01-01 and before 2100-01-01.
  EXPECT_GT(clock.WallNow(), absl::FromUnixSeconds(1577836800));
  EXPECT_LT(clock.WallNow(), absl::FromUnixSeconds(4102444800));
}

TEST(FakeClock, MovesOnlyWhenAdvanced) {
  testing::FakeClock clock;
  const absl::Time start = clock.Now();
  const absl::Time wall_start = clock.WallNow();
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(absl::Milliseconds(1500));
  EXPECT_EQ(clock.Now() - start, absl::Milliseconds(1500));
  EXPECT_EQ(clock.WallNow() - wall_start, absl::Milliseconds(1500));
}

TEST(FakeClock, NeverGoesBackwards) {
  testing::FakeClock clock;
  const absl::Time start = clock.Now();
  clock.Advance(-absl::Seconds(5));
  clock.AdvanceTo(start - absl::Seconds(1));
  EXPECT_EQ(clock.Now(), start);
  clock.AdvanceTo(start + absl::Seconds(3));
  EXPECT_EQ(clock.Now(), start + absl::Seconds(3));
}

TEST(FakeClock, WallStartIsConfigurable) {
  const absl::Time wall = absl::FromUnixSeconds(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  testing::FakeClock clock(wall);
  EXPECT_EQ(clock.WallNow(), wall);
}

}  // namespace
}  // namespace fanout
