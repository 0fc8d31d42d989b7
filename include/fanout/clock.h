// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Clock: the one source of time in fanout. Every component that needs the time
// takes a `Clock*` in its constructor, so tests can drive it with a FakeClock
// (fanout/testing/fake_clock.h) and run in microseconds, deterministically.
//
// Nothing in fanout reads the system clock except SystemClock.

#ifndef FANOUT_CLOCK_H_
#define FANOUT_CLOCK_H_

#include "absl/time/time.h"

namespace fanout {

class Clock {
 public:
  virtual ~Clock() = default;

  // Monotonic time: never goes backwards, unaffected by changes to the wall
  // clock. Its epoch is arbitrary, so only differences between two values are
  // meaningful (use it for deadlines, rates and timeouts). Thread-safe. Cheap:
  // one clock read (about 20 ns for SystemClock), never sleeps.
  virtual absl::Time Now() const = 0;

  // Calendar (wall-clock) time, for what must be compared with the outside
  // world: HTTP dates such as `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`,
  // rate-limit reset epochs, record timestamps. Thread-safe.
  virtual absl::Time WallNow() const = 0;
};

// The real clock: Now() is std::chrono::steady_clock, WallNow() is the system
// calendar clock. Stateless and thread-safe; one instance can serve a process,
// but nothing stops a host from creating several.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override;
  absl::Time WallNow() const override;
};

}  // namespace fanout

#endif  // FANOUT_CLOCK_H_
