// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// RateLimit: what a rate limit must answer to sit in a Limits set. Two
// implementations: RateLimiter (in process, a lock-free atomic word) and
// RedisRateLimiter (shared by every process that names the same upstream, one
// Redis round trip per reservation). Code that owns a concrete RateLimiter
// calls it directly (the class is final, so there is no virtual call); Limits
// keeps in-process limiters apart from other implementations so its hot path
// stays free of virtual calls and network round trips (see limits.h).
//
// The guarantee every implementation gives, for any window of length W:
//     tokens granted in the window <= rate * W + burst
// measured on the implementation's own clock (the Redis server's for
// RedisRateLimiter).

#ifndef FANOUT_RATE_LIMIT_H_
#define FANOUT_RATE_LIMIT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fanout {

class RateLimit {
 public:
  virtual ~RateLimit() = default;

  // Names the limit in errors and metrics ("global", "upstream api.example.com").
  virtual const std::string& name() const = 0;
  // The most tokens one call can ever be granted; a cost above it never is.
  virtual int64_t burst() const = 0;

  // Grants `n` tokens now, or none; true if granted. n == 0 is always granted,
  // n < 0 or n > burst never. `now` is a reading of the caller's Clock; an
  // implementation on another clock (a Redis server's) may ignore it. An
  // implementation that cannot reach its state refuses (it never grants
  // blind); TimeUntilAvailable then says when to ask again. Thread-safe.
  virtual bool TryAcquire(int64_t n, absl::Time now) = 0;

  // Grants `n` tokens unconditionally (requests that already went out, such as
  // redirects) and returns how long the caller would have had to wait.
  // InvalidArgument if n < 0 or n > burst; other errors if the state is out of
  // reach. Thread-safe.
  virtual absl::StatusOr<absl::Duration> Reserve(int64_t n, absl::Time now) = 0;

  // How long until `n` tokens could be granted if nobody else takes any: zero
  // if now, InfiniteDuration() if n < 0 or n > burst. Thread-safe.
  virtual absl::Duration TimeUntilAvailable(int64_t n, absl::Time now) const = 0;

  // Gives back `n` tokens this limit granted moments ago that will not be
  // used (all-or-nothing sets back out this way). Thread-safe; best effort for
  // remote implementations (a lost refund only costs throughput).
  virtual void Refund(int64_t n) = 0;

  // Grants nothing for `d` from `now` (the upstream said to wait: a 429 with
  // Retry-After), then resumes at the sustained rate without a burst. A
  // shared implementation pauses every process that uses it. Thread-safe;
  // best effort for remote implementations.
  virtual void PauseFor(absl::Duration d, absl::Time now) = 0;
};

}  // namespace fanout

#endif  // FANOUT_RATE_LIMIT_H_
