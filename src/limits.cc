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

void Limits::Add(std::shared_ptr<ConcurrencyLimiter> limiter) {
  concurrency_limiters_.push_back(std::move(limiter));
}

Admission Limits::TryAcquire(int64_t cost, absl::Time now) {
  Admission admission;
  // A cost no member could ever grant is reported as such, not as a wait.
  for (const auto& limiter : rate_limiters_) {
    if (cost < 0 || cost > limiter->burst()) {
      admission.verdict = Admission::Verdict::kImpossible;
      admission.wait = absl::InfiniteDuration();
      admission.blocked_by = limiter->name();
      return admission;
    }
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
  for (size_t i = 0; i < rate_limiters_.size(); ++i) {
    if (rate_limiters_[i]->TryAcquire(cost, now)) continue;
    for (size_t j = 0; j < i; ++j) rate_limiters_[j]->Refund(cost);
    admission.permit.Release();
    admission.verdict = Admission::Verdict::kRateLimited;
    admission.blocked_by = rate_limiters_[i]->name();
    admission.wait = absl::ZeroDuration();
    for (const auto& limiter : rate_limiters_) {
      admission.wait = std::max(admission.wait, limiter->TimeUntilAvailable(cost, now));
    }
    return admission;
  }
  return admission;
}

}  // namespace fanout
