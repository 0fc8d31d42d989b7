// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Limits: the set of limits one request must pass before it is sent: rate
// limiters (global, per host, per level, per tenant, and stacked windows on one
// key such as 10/s + 5,000/h + 65,000/day) and concurrency caps (max in
// flight). Acquisition is all-or-nothing: a request that any member refuses
// takes no token and no slot anywhere.
//
// Members are shared: the same global RateLimiter sits in every level's Limits,
// so a limit binds across all of them. Rate members are in-process RateLimiters
// (asked first, with direct calls: the hot path) or any other RateLimit, such
// as a RedisRateLimiter shared across machines (asked last, so a request an
// in-process member refuses costs no round trip).

#ifndef FANOUT_LIMITS_H_
#define FANOUT_LIMITS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fanout/clock.h"
#include "fanout/rate_limit.h"
#include "fanout/rate_limiter.h"

namespace fanout {

// At most `max` requests in flight. Lock-free; shareable between threads and
// between several Limits.
class ConcurrencyLimiter {
 public:
  // InvalidArgument if max < 1.
  static absl::StatusOr<std::unique_ptr<ConcurrencyLimiter>> Create(int64_t max,
                                                                    std::string name = "concurrency");

  // Takes a slot if one is free.
  bool TryAcquire();
  // Returns a slot taken by TryAcquire.
  void Release();
  // Changes the cap; requests already in flight above a lowered cap finish
  // normally, and no new one starts until in_flight() drops below it.
  // InvalidArgument if max < 1.
  absl::Status SetMax(int64_t max);

  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  int64_t max() const { return max_.load(std::memory_order_relaxed); }
  const std::string& name() const { return name_; }

 private:
  ConcurrencyLimiter(int64_t max, std::string name) : name_(std::move(name)), max_(max) {}
  const std::string name_;
  std::atomic<int64_t> max_;
  std::atomic<int64_t> in_flight_{0};
};

// The concurrency slots held by one granted request; move-only. They are
// returned when the request ends: on Release() or on destruction. A Permit
// must not outlive the limiters it came from.
class Permit {
 public:
  Permit() = default;
  Permit(Permit&& other) noexcept : slots_(std::move(other.slots_)) { other.slots_.clear(); }
  Permit& operator=(Permit&& other) noexcept;
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;
  ~Permit() { Release(); }

  // Returns the slots now; later calls do nothing.
  void Release();

 private:
  friend class Limits;
  absl::InlinedVector<ConcurrencyLimiter*, 2> slots_;
};

// The answer to Limits::TryAcquire.
struct Admission {
  enum class Verdict {
    kGranted,             // go; hold `permit` until the request ends
    kRateLimited,         // retry after `wait`
    kConcurrencyLimited,  // retry when a request in flight ends
    kImpossible,          // the cost exceeds a limiter's burst: never grantable
  };
  Verdict verdict = Verdict::kGranted;
  Permit permit;
  // For kRateLimited: how long until every rate limiter could grant this cost,
  // if nobody else takes tokens meanwhile (of the members added as RateLimit,
  // only those asked before the refusal count). InfiniteDuration() otherwise.
  absl::Duration wait = absl::ZeroDuration();
  // The member that refused (its name), for logs and metrics; empty if granted.
  std::string_view blocked_by;

  bool granted() const { return verdict == Verdict::kGranted; }
};

class Limits {
 public:
  // `clock` must be the clock of every rate limiter added, and outlive this.
  explicit Limits(const Clock* clock) : clock_(clock) {}

  // Adds a member every acquisition must also pass. Not thread-safe against
  // concurrent TryAcquire: build the set first, then share it.
  void Add(std::shared_ptr<RateLimiter> limiter);
  void Add(std::shared_ptr<RateLimit> limit);  // any other implementation
  void Add(std::shared_ptr<ConcurrencyLimiter> limiter);

  // Acquires `cost` tokens from every rate limiter and one slot from every
  // concurrency limiter, all or nothing. `cost` weights a request (a call the
  // vendor bills as n units); must be >= 0. Lock-free and thread-safe: one CAS
  // per member when granted; when refused, whatever was taken is given back.
  Admission TryAcquire(int64_t cost = 1) { return TryAcquire(cost, clock_->Now()); }
  Admission TryAcquire(int64_t cost, absl::Time now);

  // Takes `n` tokens from every rate member unconditionally (each capped at
  // its burst), for requests that reached the upstream without asking:
  // redirects, the HTTP library's own resends. Thread-safe.
  void Charge(int64_t n, absl::Time now);

  // The in-process rate members, and the others (added as RateLimit).
  const std::vector<std::shared_ptr<RateLimiter>>& rate_limiters() const { return rate_limiters_; }
  const std::vector<std::shared_ptr<RateLimit>>& other_rate_limits() const { return other_rate_limits_; }
  const std::vector<std::shared_ptr<ConcurrencyLimiter>>& concurrency_limiters() const {
    return concurrency_limiters_;
  }

 private:
  static Admission Impossible(std::string_view member);
  // Fills in a refusal by `member`: slots returned, the longest wait of the
  // in-process members and of the first `others_asked` other members (those
  // not asked are not consulted either: each may cost a round trip).
  Admission RateLimited(Admission admission, std::string_view member, int64_t cost, absl::Time now,
                        size_t others_asked) const;

  const Clock* clock_;
  std::vector<std::shared_ptr<RateLimiter>> rate_limiters_;
  std::vector<std::shared_ptr<RateLimit>> other_rate_limits_;
  std::vector<std::shared_ptr<ConcurrencyLimiter>> concurrency_limiters_;
};

}  // namespace fanout

#endif  // FANOUT_LIMITS_H_
