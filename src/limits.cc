// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/limits.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"

namespace fanout {

absl::StatusOr<std::unique_ptr<ConcurrencyLimiter>> ConcurrencyLimiter::Create(int64_t max,
                                                                               std::string name) {
  if (max < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("concurrency limiter \"%s\": max in flight must be >= 1, got %d", name, max));
  }
  return std::unique_ptr<ConcurrencyLimiter>(new ConcurrencyLimiter(max, std::move(name)));
}

bool ConcurrencyLimiter::TryAcquire() {
  int64_t current = in_flight_.load(std::memory_order_relaxed);
  do {
    if (current >= max_.load(std::memory_order_relaxed)) return false;
  } while (!in_flight_.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel,
                                             std::memory_order_relaxed));
  return true;
}

void ConcurrencyLimiter::Release() { in_flight_.fetch_sub(1, std::memory_order_acq_rel); }

absl::Status ConcurrencyLimiter::SetMax(int64_t max) {
  if (max < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("concurrency limiter \"%s\": max in flight must be >= 1, got %d", name_, max));
  }
  max_.store(max, std::memory_order_relaxed);
  return absl::OkStatus();
}

Permit& Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    Release();
    slots_ = std::move(other.slots_);
    other.slots_.clear();
  }
  return *this;
}

void Permit::Release() {
  for (ConcurrencyLimiter* slot : slots_) slot->Release();
  slots_.clear();
}

void Limits::Add(std::shared_ptr<RateLimiter> limiter) { rate_limiters_.push_back(std::move(limiter)); }

void Limits::Add(std::shared_ptr<RateLimit> limit) { other_rate_limits_.push_back(std::move(limit)); }

void Limits::Add(std::shared_ptr<ConcurrencyLimiter> limiter) {
  concurrency_limiters_.push_back(std::move(limiter));
}

Admission Limits::TryAcquire(int64_t cost, absl::Time now) {
  Admission admission;
  // A cost no member could ever grant is reported as such, not as a wait.
  for (const auto& limiter : rate_limiters_) {
    if (cost < 0 || cost > limiter->burst()) return Impossible(limiter->name());
  }
  for (const auto& limit : other_rate_limits_) {
    if (cost < 0 || cost > limit->burst()) return Impossible(limit->name());
  }
  // Concurrency first: a slot is cheaper to give back than a token.
  for (const auto& slot : concurrency_limiters_) {
    if (!slot->TryAcquire()) {
      admission.permit.Release();
      admission.verdict = Admission::Verdict::kConcurrencyLimited;
      admission.wait = absl::InfiniteDuration();
      admission.blocked_by = slot->name();
      return admission;
    }
    admission.permit.slots_.push_back(slot.get());
  }
  // In-process members before the others: a refusal here costs no round trip.
  for (size_t i = 0; i < rate_limiters_.size(); ++i) {
    if (rate_limiters_[i]->TryAcquire(cost, now)) continue;
    for (size_t j = 0; j < i; ++j) rate_limiters_[j]->Refund(cost);
    return RateLimited(std::move(admission), rate_limiters_[i]->name(), cost, now, 0);
  }
  for (size_t i = 0; i < other_rate_limits_.size(); ++i) {
    if (other_rate_limits_[i]->TryAcquire(cost, now)) continue;
    for (const auto& limiter : rate_limiters_) limiter->Refund(cost);
    for (size_t j = 0; j < i; ++j) other_rate_limits_[j]->Refund(cost);
    return RateLimited(std::move(admission), other_rate_limits_[i]->name(), cost, now, i + 1);
  }
  return admission;
}

Admission Limits::Impossible(std::string_view member) {
  Admission admission;
  admission.verdict = Admission::Verdict::kImpossible;
  admission.wait = absl::InfiniteDuration();
  admission.blocked_by = member;
  return admission;
}

Admission Limits::RateLimited(Admission admission, std::string_view member, int64_t cost, absl::Time now,
                              size_t others_asked) const {
  admission.permit.Release();
  admission.verdict = Admission::Verdict::kRateLimited;
  admission.blocked_by = member;
  admission.wait = absl::ZeroDuration();
  for (const auto& limiter : rate_limiters_) {
    admission.wait = std::max(admission.wait, limiter->TimeUntilAvailable(cost, now));
  }
  for (size_t i = 0; i < others_asked; ++i) {
    admission.wait = std::max(admission.wait, other_rate_limits_[i]->TimeUntilAvailable(cost, now));
  }
  return admission;
}

void Limits::Charge(int64_t n, absl::Time now) {
  if (n <= 0) return;
  for (const auto& limiter : rate_limiters_) (void)limiter->Reserve(std::min(n, limiter->burst()), now);
  for (const auto& limit : other_rate_limits_) (void)limit->Reserve(std::min(n, limit->burst()), now);
}

}  // namespace fanout
