// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/rate_limiter.h"

#include <mutex>
#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"

namespace fanout {
namespace {

constexpr int64_t kMaxTolerance = int64_t{1} << 62;  // ns; leaves headroom for additions
constexpr double kMaxRate = 1e9;                     // one event per nanosecond

// Validates a rate and burst; on success stores the emission interval.
absl::Status CheckSpec(std::string_view name, double rate, int64_t burst, int64_t* interval_ns) {
  if (!std::isfinite(rate) || rate <= 0 || rate > kMaxRate) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rate limiter \"%s\": rate must be a finite number of events per second in (0, 1e9], got %g",
        name, rate));
  }
  if (burst < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("rate limiter \"%s\": burst must be >= 1, got %d", name, burst));
  }
  const double interval = std::max(1.0, std::round(1e9 / rate));
  if (interval * static_cast<double>(burst) >= static_cast<double>(kMaxTolerance)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rate limiter \"%s\": rate %g/s with burst %d spans more than 2^62 ns; "
        "use a higher rate or a smaller burst",
        name, rate, burst));
  }
  *interval_ns = static_cast<int64_t>(interval);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<absl::Duration> EmissionInterval(RateLimitSpec spec, std::string_view name) {
  int64_t interval_ns = 0;
  if (absl::Status s = CheckSpec(name, spec.rate_per_second, spec.burst, &interval_ns); !s.ok()) return s;
  return absl::Nanoseconds(interval_ns);
}

RateLimitSpec RateLimitSpec::Window(int64_t max_events, absl::Duration window, int64_t burst) {
  const double seconds = absl::ToDoubleSeconds(window);
  // An invalid window yields a non-positive or non-finite rate, which Create
  // reports with the limiter's name.
  return {static_cast<double>(max_events - burst) / seconds, burst};
}

absl::StatusOr<std::unique_ptr<RateLimiter>> RateLimiter::Create(const Clock* clock, RateLimitSpec spec,
                                                                 std::string name) {
  if (clock == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat("rate limiter \"%s\": clock is null", name));
  }
  int64_t interval_ns = 0;
  if (absl::Status s = CheckSpec(name, spec.rate_per_second, spec.burst, &interval_ns); !s.ok()) {
    return s;
  }
  return std::unique_ptr<RateLimiter>(new RateLimiter(clock, spec.rate_per_second, interval_ns, spec.burst, std::move(name)));
}

RateLimiter::RateLimiter(const Clock* clock, double rate, int64_t interval_ns, int64_t burst,
                         std::string name)
    : clock_(clock),
      name_(std::move(name)),
      epoch_(clock->Now()),
      interval_ns_(interval_ns),
      burst_(burst),
      rate_(rate) {}

bool RateLimiter::TryAcquire(int64_t n, absl::Time now) {
  const int64_t interval = interval_ns_.load(std::memory_order_relaxed);
  const int64_t burst = burst_.load(std::memory_order_relaxed);
  if (n <= 0 || n > burst) return n == 0;
  const int64_t t = ToTicks(now);
  const int64_t tolerance = burst * interval;
  int64_t tat = tat_.load(std::memory_order_relaxed);
  int64_t new_tat;
  do {
    new_tat = std::max(tat, t) + n * interval;
    if (new_tat - t > tolerance) return false;
  } while (!tat_.compare_exchange_weak(tat, new_tat, std::memory_order_acq_rel,
                                       std::memory_order_relaxed));
  return true;
}

absl::StatusOr<absl::Duration> RateLimiter::Reserve(int64_t n, absl::Time now) {
  const int64_t interval = interval_ns_.load(std::memory_order_relaxed);
  const int64_t burst = burst_.load(std::memory_order_relaxed);
  if (n < 0 || n > burst) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rate limiter \"%s\": cannot reserve %d tokens with burst %d", name_, n, burst));
  }
  const int64_t t = ToTicks(now);
  int64_t tat = tat_.load(std::memory_order_relaxed);
  int64_t new_tat;
  do {
    new_tat = std::max(tat, t) + n * interval;
  } while (!tat_.compare_exchange_weak(tat, new_tat, std::memory_order_acq_rel,
                                       std::memory_order_relaxed));
  return absl::Nanoseconds(std::max<int64_t>(0, new_tat - t - burst * interval));
}

absl::Duration RateLimiter::TimeUntilAvailable(int64_t n, absl::Time now) const {
  const int64_t interval = interval_ns_.load(std::memory_order_relaxed);
  const int64_t burst = burst_.load(std::memory_order_relaxed);
  if (n < 0 || n > burst) return absl::InfiniteDuration();
  const int64_t t = ToTicks(now);
  const int64_t new_tat = std::max(tat_.load(std::memory_order_relaxed), t) + n * interval;
  return absl::Nanoseconds(std::max<int64_t>(0, new_tat - t - burst * interval));
}

void RateLimiter::Refund(int64_t n) {
  if (n <= 0) return;
  tat_.fetch_sub(n * interval_ns_.load(std::memory_order_relaxed), std::memory_order_acq_rel);
}

absl::Status RateLimiter::SetRate(double rate_per_second) {
  return SetRate(rate_per_second, burst_.load(std::memory_order_relaxed));
}

absl::Status RateLimiter::SetRate(double rate_per_second, int64_t burst) {
  int64_t new_interval = 0;
  if (absl::Status s = CheckSpec(name_, rate_per_second, burst, &new_interval); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(set_mu_);
  const int64_t old_interval = interval_ns_.load(std::memory_order_relaxed);
  // Tokens owed (TAT ahead of now) were priced at the old interval; reprice
  // them at the new one so a rate cut applies to work already granted. A
  // pause is a time, not tokens: only what is owed beyond it is repriced.
  const int64_t t = std::max(ToTicks(clock_->Now()), pause_end_.load(std::memory_order_relaxed));
  int64_t tat = tat_.load(std::memory_order_relaxed);
  int64_t new_tat;
  do {
    if (tat <= t) break;
    const double owed_tokens = static_cast<double>(tat - t) / static_cast<double>(old_interval);
    new_tat = t + static_cast<int64_t>(std::min(owed_tokens * static_cast<double>(new_interval),
                                                static_cast<double>(kMaxTolerance)));
  } while (!tat_.compare_exchange_weak(tat, new_tat, std::memory_order_acq_rel,
                                       std::memory_order_relaxed));
  interval_ns_.store(new_interval, std::memory_order_relaxed);
  burst_.store(burst, std::memory_order_relaxed);
  rate_.store(rate_per_second, std::memory_order_relaxed);
  return absl::OkStatus();
}

void RateLimiter::PauseUntil(absl::Time until) {
  const int64_t interval = interval_ns_.load(std::memory_order_relaxed);
  const int64_t burst = burst_.load(std::memory_order_relaxed);
  // With TAT = until + (burst - 1) * T, the first single token is conformant
  // exactly at `until` and the bucket is empty then: no burst after a pause.
  const int64_t end = ToTicks(until);
  int64_t pause_end = pause_end_.load(std::memory_order_relaxed);
  while (pause_end < end && !pause_end_.compare_exchange_weak(pause_end, end, std::memory_order_acq_rel,
                                                              std::memory_order_relaxed)) {
  }
  const int64_t target = end + (burst - 1) * interval;
  int64_t tat = tat_.load(std::memory_order_relaxed);
  while (tat < target && !tat_.compare_exchange_weak(tat, target, std::memory_order_acq_rel,
                                                     std::memory_order_relaxed)) {
  }
}

RateLimiterState RateLimiter::State() const {
  const int64_t interval = interval_ns_.load(std::memory_order_relaxed);
  const int64_t burst = burst_.load(std::memory_order_relaxed);
  const int64_t t = ToTicks(clock_->Now());
  const int64_t tat = tat_.load(std::memory_order_relaxed);
  const int64_t ahead = std::max<int64_t>(0, tat - t);  // time until the bucket is full
  const double available =
      std::clamp(static_cast<double>(burst * interval - ahead) / static_cast<double>(interval), 0.0,
                 static_cast<double>(burst));
  RateLimiterState state;
  state.rate_per_second = rate_per_second();
  state.burst = burst;
  state.available = available;
  state.next_token = absl::Nanoseconds(std::max<int64_t>(0, ahead + interval - burst * interval));
  return state;
}

double RateLimiter::effective_rate() const {
  return 1e9 / static_cast<double>(interval_ns_.load(std::memory_order_relaxed));
}

}  // namespace fanout
