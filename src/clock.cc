// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/clock.h"

#include <chrono>

#include "absl/time/clock.h"

namespace fanout {

absl::Time SystemClock::Now() const {
  const auto since_epoch = std::chrono::steady_clock::now().time_since_epoch();
  return absl::UnixEpoch() + absl::FromChrono(since_epoch);
}

absl::Time SystemClock::WallNow() const { return absl::Now(); }

}  // namespace fanout
