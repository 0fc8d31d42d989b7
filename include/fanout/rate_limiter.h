// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// RateLimiter: a token bucket of `rate` events per second and `burst` events,
// implemented as GCRA (the generic cell rate algorithm, "virtual scheduling"):
// its whole state is one 64-bit theoretical arrival time (TAT) held in an
// atomic word and updated with compare-and-swap. No mutex, no allocation, no
// timer thread on the hot path; safe to share between threads.
//
// The guarantee, for any window of length W and any arrival pattern:
//     granted events in the window <= rate * W + burst
// and under demand above the rate the long-run grant rate equals `rate`.
//
// Times are nanoseconds on the limiter's Clock; the rate's resolution is the
// emission interval rounded to a nanosecond, so the effective rate is within
// 0.05% of the configured one up to 1,000,000 events per second
// (effective_rate() tells the exact value).

#ifndef FANOUT_RATE_LIMITER_H_
#define FANOUT_RATE_LIMITER_H_

#include <mutex>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fanout/clock.h"
#include "fanout/rate_limit.h"

namespace fanout {

// A limit as vendors publish it, turned into GCRA parameters.
struct RateLimitSpec {
  double rate_per_second = 1;  // sustained events per second; > 0, may be fractional (0.5)
  int64_t burst = 1;           // events that may be granted at once from idle; >= 1

  // `rate` events per second, up to `burst` at once.
  static RateLimitSpec PerSecond(double rate, int64_t burst = 1) { return {rate, burst}; }

  // At most `max_events` in any window of length `window` (vendors' "5,000 per
  // hour", "65,000 per day"), of which up to `burst` may go at once. Because
  // granted <= rate * W + burst, the sustained rate is (max_events - burst) / W,
  // so that no window can ever exceed `max_events`: a larger burst buys
  // quicker starts with a lower sustained rate. Needs 1 <= burst < max_events
  // (Create reports otherwise).
  static RateLimitSpec Window(int64_t max_events, absl::Duration window, int64_t burst = 1);
};

// The emission interval of `spec` (1 / rate) rounded to whole nanoseconds, the
// resolution every fanout limiter enforces. InvalidArgument, naming `name`, for
// a spec RateLimiter::Create would refuse.
absl::StatusOr<absl::Duration> EmissionInterval(RateLimitSpec spec, std::string_view name);

// A snapshot of a limiter, for metrics and progress displays.
struct RateLimiterState {
  double rate_per_second;     // configured sustained rate
  int64_t burst;              // configured burst
  double available;           // tokens that could be granted now, in [0, burst]
  absl::Duration next_token;  // time until the next token (0 if one is available)
};

// Final, so calls through a RateLimiter pointer are direct; the RateLimit
// interface is for sets that also hold other implementations.
class RateLimiter final : public RateLimit {
 public:
  // Creates a limiter that grants according to `spec`, full (a burst is
  // available at once). `name` appears in errors and metrics ("global",
  // "level groups", "host api.example.com"). `clock` must outlive the limiter.
  // InvalidArgument if the rate is not finite and > 0, burst < 1, the rate is
  // above 1e9/s, or burst * interval would not fit in 2^62 ns (about 146 years).
  static absl::StatusOr<std::unique_ptr<RateLimiter>> Create(const Clock* clock, RateLimitSpec spec,
                                                             std::string name = "limiter");

  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Grants `n` tokens now, or none. True if granted. n == 0 is always granted;
  // n < 0 or n > burst is never granted (no wait would make it conformant).
  // Lock-free; one clock read and one CAS in the common case.
  bool TryAcquire(int64_t n = 1) { return TryAcquire(n, clock_->Now()); }
  // Same, at a time the caller already read from this limiter's clock (saves
  // the clock read when several limiters are asked at once).
  bool TryAcquire(int64_t n, absl::Time now) override;

  // Grants `n` tokens unconditionally and returns how long the caller must wait
  // before using them (zero if it may go now). Later callers queue behind this
  // reservation, so the guarantee holds at the times of use. InvalidArgument if
  // n < 0 or n > burst. Lock-free.
  absl::StatusOr<absl::Duration> Reserve(int64_t n = 1) { return Reserve(n, clock_->Now()); }
  absl::StatusOr<absl::Duration> Reserve(int64_t n, absl::Time now) override;

  // How long until `n` tokens could be granted, if nobody else takes any;
  // zero if now. InfiniteDuration() if n < 0 or n > burst. Reads only.
  absl::Duration TimeUntilAvailable(int64_t n, absl::Time now) const override;

  // Returns `n` tokens granted earlier but not used (a set of limiters that
  // must all grant backs out when one of them refuses). Never credits more
  // than was taken, so the guarantee holds. Lock-free.
  void Refund(int64_t n) override;

  // Changes the rate (and, in the two-argument form, the burst) from now on.
  // Tokens already owed are rescaled to the new rate, so a decrease takes
  // effect at once; a pause (PauseUntil) still ends when it was set to, and
  // only tokens owed beyond it are rescaled. InvalidArgument as in Create
  // (state unchanged).
  // Thread-safe; setters serialize among themselves, acquirers are not blocked.
  absl::Status SetRate(double rate_per_second);
  absl::Status SetRate(double rate_per_second, int64_t burst);

  // Grants nothing before `until` (an upstream said "slow down": 429 or
  // Retry-After); from then on, grants resume at the sustained rate without an
  // initial burst. A `until` in the past does nothing. Lock-free.
  void PauseUntil(absl::Time until);
  void PauseFor(absl::Duration d, absl::Time now) override { PauseUntil(now + d); }

  // A consistent-enough snapshot for metrics (fields are read separately).
  RateLimiterState State() const;

  const std::string& name() const override { return name_; }
  double rate_per_second() const { return rate_.load(std::memory_order_relaxed); }
  int64_t burst() const override { return burst_.load(std::memory_order_relaxed); }
  // The rate actually enforced: 1e9 / (interval rounded to whole nanoseconds).
  double effective_rate() const;
  const Clock* clock() const { return clock_; }

 private:
  RateLimiter(const Clock* clock, double rate, int64_t interval_ns, int64_t burst, std::string name);
  int64_t ToTicks(absl::Time t) const { return absl::ToInt64Nanoseconds(t - epoch_); }

  const Clock* const clock_;
  const std::string name_;
  const absl::Time epoch_;  // tick 0; the bucket starts full at creation
  // The theoretical arrival time, in ns since epoch_: the time at which the
  // bucket would be full again. The only state the hot path writes.
  alignas(64) std::atomic<int64_t> tat_{0};
  std::atomic<int64_t> interval_ns_;  // emission interval T = 1e9 / rate
  std::atomic<int64_t> burst_;        // bucket depth b; tolerance = b * T
  std::atomic<double> rate_;          // as configured, for State() and metrics
  // The end of the latest pause, in ticks (PauseUntil); SetRate keeps it.
  std::atomic<int64_t> pause_end_{INT64_MIN};
  std::mutex set_mu_;                // serializes SetRate callers only
};

}  // namespace fanout

#endif  // FANOUT_RATE_LIMITER_H_
