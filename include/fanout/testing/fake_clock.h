// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// FakeClock: a Clock that only moves when a test moves it. Both the monotonic
// and the wall clock advance together. Thread-safe: a test thread may advance
// it while other threads read it.

#ifndef FANOUT_TESTING_FAKE_CLOCK_H_
#define FANOUT_TESTING_FAKE_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"
#include "fanout/clock.h"

namespace fanout::testing {

class FakeClock final : public Clock {
 public:
  // Starts with Now() at an arbitrary fixed point and WallNow() at `wall_start`
  // (default 2026-01-01T00:00:00Z), so tests are reproducible.
  explicit FakeClock(absl::Time wall_start = absl::FromUnixSeconds(1767225600))
      : wall_offset_(wall_start - absl::UnixEpoch()) {}

  absl::Time Now() const override {
    return absl::UnixEpoch() + kMonotonicStart +
           absl::Nanoseconds(elapsed_ns_.load(std::memory_order_acquire));
  }
  absl::Time WallNow() const override {
    return absl::UnixEpoch() + wall_offset_ +
           absl::Nanoseconds(elapsed_ns_.load(std::memory_order_acquire));
  }

  // Moves both clocks forward by `d` (must not be negative; a negative `d` is
  // ignored, since a monotonic clock never goes back).
  void Advance(absl::Duration d) {
    if (d <= absl::ZeroDuration()) return;
    elapsed_ns_.fetch_add(absl::ToInt64Nanoseconds(d), std::memory_order_acq_rel);
  }

  // Moves both clocks forward so that Now() == `t`; no-op if `t` is not later.
  void AdvanceTo(absl::Time t) { Advance(t - Now()); }

 private:
  // A monotonic start well away from zero, like a real steady clock's.
  static constexpr absl::Duration kMonotonicStart = absl::Hours(1000);
  const absl::Duration wall_offset_;
  std::atomic<int64_t> elapsed_ns_{0};
};

}  // namespace fanout::testing

#endif  // FANOUT_TESTING_FAKE_CLOCK_H_
