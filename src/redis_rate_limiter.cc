// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/redis_rate_limiter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fanout {
namespace {

// GCRA on one key, with the server's clock, in exact integer nanoseconds as
// RateLimiter does. A Lua number is a double, exact to 2^53: absolute times
// in ns would not fit, so the TAT is kept as "<us since the Unix epoch>:<ns
// remainder>" and the arithmetic is done on `ahead`, the TAT minus now in ns
// (at most a few tolerances, <= 2^52 ns: Create checks).
//   KEYS[1]  the limit's key: the TAT, absent when the bucket is full
//   ARGV     interval_ns, burst, min_n, max_n, mode
//   mode     take:    the most conformant tokens up to max_n, if at least min_n
//            reserve: min_n tokens, conformant or not
//            peek:    nothing; the wait for min_n
//            refund:  moves the TAT back by min_n intervals
// Returns {tokens taken, wait_ns, ahead_ns before taking, now_us}. The key
// expires when the bucket is full again.
constexpr char kScript[] = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local min_n = tonumber(ARGV[3])
local max_n = tonumber(ARGV[4])
local mode = ARGV[5]
local tolerance = burst * interval
local ahead = 0
local stored = redis.call('GET', KEYS[1])
if stored then
  local sep = string.find(stored, ':', 1, true)
  ahead = math.max(0, (tonumber(string.sub(stored, 1, sep - 1)) - now) * 1000 + tonumber(string.sub(stored, sep + 1)))
end
local function store(new_ahead)
  if new_ahead > 0 then
    local us = math.floor(new_ahead / 1000)
    redis.call('SET', KEYS[1], string.format('%.0f:%.0f', now + us, new_ahead - us * 1000),
               'PX', math.ceil(new_ahead / 1000000) + 1)
  else
    redis.call('DEL', KEYS[1])
  end
end
if mode == 'refund' then
  if stored then store(ahead - min_n * interval) end
  return {0, 0, ahead, now}
end
if mode == 'reserve' then
  store(ahead + min_n * interval)
  return {min_n, math.max(0, ahead + min_n * interval - tolerance), ahead, now}
end
local k = math.max(0, math.min(max_n, math.floor((tolerance - ahead) / interval)))
while k > 0 and ahead + k * interval > tolerance do k = k - 1 end
while k < max_n and ahead + (k + 1) * interval <= tolerance do k = k + 1 end
if mode == 'peek' or k < min_n then
  return {0, math.max(0, ahead + min_n * interval - tolerance), ahead, now}
end
store(ahead + k * interval)
return {k, 0, ahead, now}
)lua";

// Every ns quantity in the script stays below 2^53 if the tolerance does
// below 2^52 (ahead is at most a tolerance plus one reservation).
constexpr int64_t kMaxToleranceNs = int64_t{1} << 52;

constexpr absl::Duration kMinRetryWait = absl::Milliseconds(10);

}  // namespace

absl::StatusOr<std::unique_ptr<RedisRateLimiter>> RedisRateLimiter::Create(std::shared_ptr<RedisClient> client,
                                                                           RateLimitSpec spec, std::string upstream,
                                                                           int64_t lease) {
  const std::string name = absl::StrCat("redis ", upstream);
  if (client == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("rate limiter \"", name, "\": client is null"));
  }
  if (upstream.empty()) {
    return absl::InvalidArgumentError("redis rate limiter: the upstream name (the key's suffix) is empty");
  }
  absl::StatusOr<absl::Duration> interval = EmissionInterval(spec, name);
  if (!interval.ok()) return interval.status();
  if (absl::ToInt64Nanoseconds(*interval) > kMaxToleranceNs / spec.burst) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rate limiter \"%s\": burst %d at %g/s spans more than 2^52 ns (52 days); use a higher rate or a "
        "smaller burst",
        name, spec.burst, spec.rate_per_second));
  }
  if (lease < 1 || lease > spec.burst) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rate limiter \"%s\": lease must be in [1, burst %d], got %d", name, spec.burst, lease));
  }
  return std::unique_ptr<RedisRateLimiter>(
      new RedisRateLimiter(std::move(client), std::move(upstream), *interval, spec.burst, lease));
}

RedisRateLimiter::RedisRateLimiter(std::shared_ptr<RedisClient> client, std::string upstream,
                                   absl::Duration interval, int64_t burst, int64_t lease)
    : client_(std::move(client)),
      upstream_(std::move(upstream)),
      key_(absl::StrCat("fanout:limit:", upstream_)),
      interval_(interval),
      burst_(burst),
      lease_size_(lease),
      interval_ns_text_(absl::StrCat(absl::ToInt64Nanoseconds(interval))),
      burst_text_(absl::StrCat(burst)),
      script_(kScript) {}

absl::StatusOr<RedisRateLimiter::Reply> RedisRateLimiter::Run(std::string_view mode, int64_t min_n,
                                                              int64_t max_n) const {
  absl::StatusOr<RedisReply> reply = client_->Eval(
      script_, {key_}, {interval_ns_text_, burst_text_, absl::StrCat(min_n), absl::StrCat(max_n), std::string(mode)});
  const absl::Time received = client_->clock()->Now();
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.round_trips;
  }
  if (!reply.ok()) {
    RecordError(reply.status());
    return reply.status();
  }
  if (reply->type != RedisReply::Type::kArray || reply->elements.size() != 4 ||
      std::any_of(reply->elements.begin(), reply->elements.end(),
                  [](const RedisReply& e) { return e.type != RedisReply::Type::kInteger; })) {
    absl::Status error = absl::InternalError(absl::StrCat("redis ", client_->server(), ": rate limit script on key ",
                                                          key_, ": unexpected reply shape"));
    RecordError(error);
    return error;
  }
  Reply out;
  out.granted = reply->elements[0].integer;
  out.wait = absl::Nanoseconds(reply->elements[1].integer);
  out.ahead = absl::Nanoseconds(reply->elements[2].integer);
  out.server_time = absl::FromUnixMicros(reply->elements[3].integer);
  out.received = received;
  return out;
}

void RedisRateLimiter::RecordError(const absl::Status& status) const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  last_error_ = status;
}

bool RedisRateLimiter::TakeFromLease(int64_t n, absl::Time now, absl::Time* server_time) {
  if (remaining_ == 0) return false;
  if (now > next_deadline_) {  // drop the tokens whose window has passed
    absl::Duration rest;
    int64_t late = absl::IDivDuration(now - next_deadline_, interval_, &rest) + (rest > absl::ZeroDuration() ? 1 : 0);
    late = std::min(late, remaining_);
    remaining_ -= late;
    next_deadline_ += late * interval_;
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.expired += late;
  }
  if (remaining_ < n) return false;
  *server_time = server_anchor_ + (now - local_anchor_);
  remaining_ -= n;
  next_deadline_ += n * interval_;
  return true;
}

absl::StatusOr<RedisGrant> RedisRateLimiter::Acquire(int64_t n) {
  if (n < 0 || n > burst_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rate limiter \"redis %s\": cannot acquire %d tokens with burst %d", upstream_, n, burst_));
  }
  RedisGrant grant;
  if (n == 0) {
    grant.granted = true;
    return grant;
  }
  // Held across the round trip when leasing, so that threads which queue here
  // find the tokens the first one fetched instead of fetching their own.
  std::unique_lock<std::mutex> lock(mu_);
  if (TakeFromLease(n, client_->clock()->Now(), &grant.server_time)) {
    lock.unlock();
    grant.granted = true;
    grant.from_lease = true;
    std::lock_guard<std::mutex> stats_lock(stats_mu_);
    stats_.granted += n;
    stats_.leased += n;
    return grant;
  }
  if (lease_size_ == 1) lock.unlock();
  absl::StatusOr<Reply> reply = Run("take", n, std::max(n, lease_size_));
  if (!reply.ok()) return reply.status();
  grant.server_time = reply->server_time;
  if (reply->granted < n) {
    grant.wait = reply->wait;
    return grant;
  }
  grant.granted = true;
  if (const int64_t leftover = reply->granted - n; leftover > 0) {
    // Token i (1-based) of this reply expires at A_i - T = ahead + (i - 1) T
    // after the grant; the lease starts at token n + 1. An older lease's
    // tokens are dropped (the lease holds one contiguous run).
    std::lock_guard<std::mutex> stats_lock(stats_mu_);
    stats_.expired += remaining_;
    remaining_ = leftover;
    next_deadline_ = reply->received + reply->ahead + n * interval_;
    local_anchor_ = reply->received;
    server_anchor_ = reply->server_time;
  }
  std::lock_guard<std::mutex> stats_lock(stats_mu_);
  stats_.granted += n;
  return grant;
}

bool RedisRateLimiter::TryAcquire(int64_t n, absl::Time /*now*/) {
  absl::StatusOr<RedisGrant> grant = Acquire(n);
  return grant.ok() && grant->granted;
}

absl::StatusOr<absl::Duration> RedisRateLimiter::Reserve(int64_t n, absl::Time /*now*/) {
  if (n < 0 || n > burst_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rate limiter \"redis %s\": cannot reserve %d tokens with burst %d", upstream_, n, burst_));
  }
  if (n == 0) return absl::ZeroDuration();
  absl::StatusOr<Reply> reply = Run("reserve", n, n);
  if (!reply.ok()) return reply.status();
  return reply->wait;
}

absl::Duration RedisRateLimiter::TimeUntilAvailable(int64_t n, absl::Time /*now*/) const {
  if (n < 0 || n > burst_) return absl::InfiniteDuration();
  if (n == 0) return absl::ZeroDuration();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (remaining_ >= n) {
      // Unexpired tokens left in the lease, counted without dropping any.
      const absl::Time now = client_->clock()->Now();
      int64_t late = 0;
      if (now > next_deadline_) {
        absl::Duration rest;
        late = absl::IDivDuration(now - next_deadline_, interval_, &rest) + (rest > absl::ZeroDuration() ? 1 : 0);
      }
      if (remaining_ - late >= n) return absl::ZeroDuration();
    }
  }
  absl::StatusOr<Reply> reply = Run("peek", n, n);
  if (!reply.ok()) return std::max(kMinRetryWait, client_->RetryDelay());
  return reply->wait;
}

void RedisRateLimiter::Refund(int64_t n) {
  if (n <= 0) return;
  (void)Run("refund", std::min(n, burst_), 0);
}

RedisRateLimiterStats RedisRateLimiter::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

absl::Status RedisRateLimiter::last_error() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return last_error_;
}

}  // namespace fanout
