// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/redis_rate_limiter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fanout {
namespace {

// GCRA with the server's clock, in exact integer nanoseconds as RateLimiter
// does. A Lua number is a double, exact to 2^53: absolute times in ns would
// not fit, so a TAT is kept as "<us since the Unix epoch>:<ns remainder>" and
// the arithmetic is done on `ahead`, the TAT minus now in ns (at most a few
// tolerances, <= 2^52 ns: Create checks).
//   KEYS[1]  the limit's key: the TAT, absent when the bucket is full
//   KEYS[2..4] with a tenant: its own TAT, the zset of tenants refused
//            lately (score: when), and the hash of their weights
//   ARGV     interval_ns, burst, min_n, max_n, mode, and with a tenant: its
//            name, weight, and the window (us) a refusal counts for
//   mode     take:    the most conformant tokens up to max_n, if at least min_n
//            reserve: min_n tokens, conformant or not
//            peek:    nothing; the wait for min_n
//            refund:  moves the TATs back by min_n intervals
//            pause:   nothing conforms for min_n ns (ahead >= pause + tolerance
//                     - interval), then one token an interval
// A tenant's tokens must conform to a second bucket too, at its share of the
// rate: rate * weight / (its weight + the sum over the other tenants refused
// within the window of weight * min(1, 2 * use / fair share)), where use is
// the tenant's grants per second (decayed over window / 4) and its fair share
// rate * weight / (the weights of all those tenants). A tenant never refused
// takes what it asks for (within the shared limit); one refused but asking
// for less than its share holds back only what it uses; tenants that all want
// more than the limit converge to splitting it by weight.
// Returns {tokens taken, wait_ns, ahead_ns of KEYS[1] before taking, now_us}.
// Keys expire when their bucket is full again.
constexpr char kScript[] = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local min_n = tonumber(ARGV[3])
local max_n = tonumber(ARGV[4])
local mode = ARGV[5]
local tenant = ARGV[6]
local function load(key)
  local stored = redis.call('GET', key)
  if not stored then return 0, false end
  local sep = string.find(stored, ':', 1, true)
  return math.max(0, (tonumber(string.sub(stored, 1, sep - 1)) - now) * 1000 + tonumber(string.sub(stored, sep + 1))), true
end
local function store(key, new_ahead)
  if new_ahead > 0 then
    local us = math.floor(new_ahead / 1000)
    redis.call('SET', key, string.format('%.0f:%.0f', now + us, new_ahead - us * 1000),
               'PX', math.ceil(new_ahead / 1000000) + 1)
  else
    redis.call('DEL', key)
  end
end
local buckets = {{key = KEYS[1], interval = interval}}
local weight, window, tau = 0, 0, 0
-- A tenant's use: tokens per second, decayed with time constant tau.
local function usage(name)
  local v = redis.call('HMGET', KEYS[4], 'u:' .. name, 't:' .. name)
  if not v[1] then return 0 end
  return tonumber(v[1]) * math.exp(-(now - tonumber(v[2])) / tau)
end
if tenant then
  weight, window = tonumber(ARGV[7]), tonumber(ARGV[8])
  tau = window / 4
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
  local others = {}
  local naive = weight
  for _, other in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    if other ~= tenant then
      local w = tonumber(redis.call('HGET', KEYS[4], 'w:' .. other) or '1')
      others[#others + 1] = {other, w}
      naive = naive + w
    end
  end
  -- Each refused tenant counts with its weight times twice the part of its
  -- fair share it has been using (at most 1): one that asks little does not
  -- hold back a share it leaves unused, and the shares of tenants that all
  -- want more settle within a few tau.
  local total = weight
  local rate = 1e9 / interval
  for _, o in ipairs(others) do
    local fair = rate * o[2] / naive
    total = total + o[2] * math.min(1, 2 * usage(o[1]) / fair)
  end
  local share = math.min(math.ceil(interval * total / weight), math.floor(4503599627370496 / burst))
  buckets[2] = {key = KEYS[2], interval = share}
end
for _, b in ipairs(buckets) do
  b.tolerance = burst * b.interval
  b.ahead, b.stored = load(b.key)
end
local function wait_for(n)
  local wait = 0
  for _, b in ipairs(buckets) do wait = math.max(wait, b.ahead + n * b.interval - b.tolerance) end
  return wait
end
if mode == 'refund' then
  for _, b in ipairs(buckets) do
    if b.stored then store(b.key, b.ahead - min_n * b.interval) end
  end
  return {0, 0, buckets[1].ahead, now}
end
if mode == 'pause' then
  local b = buckets[1]
  local target = math.min(min_n + b.tolerance - b.interval, 4503599627370496)
  if target > b.ahead then store(b.key, target) end
  return {0, 0, b.ahead, now}
end
if mode == 'reserve' then
  local wait = wait_for(min_n)
  for _, b in ipairs(buckets) do store(b.key, b.ahead + min_n * b.interval) end
  return {min_n, wait, buckets[1].ahead, now}
end
local k = max_n
for _, b in ipairs(buckets) do
  local fit = math.max(0, math.min(max_n, math.floor((b.tolerance - b.ahead) / b.interval)))
  while fit > 0 and b.ahead + fit * b.interval > b.tolerance do fit = fit - 1 end
  while fit < max_n and b.ahead + (fit + 1) * b.interval <= b.tolerance do fit = fit + 1 end
  k = math.min(k, fit)
end
if mode == 'peek' or k < min_n then
  if tenant and mode == 'take' then
    redis.call('ZADD', KEYS[3], now, tenant)
    redis.call('HSET', KEYS[4], 'w:' .. tenant, weight)
    redis.call('PEXPIRE', KEYS[3], math.ceil(window / 1000) + 1)
    redis.call('PEXPIRE', KEYS[4], math.ceil(10 * tau / 1000) + 1)
  end
  return {0, wait_for(min_n), buckets[1].ahead, now}
end
for _, b in ipairs(buckets) do store(b.key, b.ahead + k * b.interval) end
if tenant then
  redis.call('HSET', KEYS[4], 'u:' .. tenant, usage(tenant) + k * 1000000 / tau, 't:' .. tenant, now)
  redis.call('PEXPIRE', KEYS[4], math.ceil(10 * tau / 1000) + 1)
end
return {k, 0, buckets[1].ahead, now}
)lua";

// Every ns quantity in the script stays below 2^53 if the tolerance does
// below 2^52 (ahead is at most a tolerance plus one reservation).
constexpr int64_t kMaxToleranceNs = int64_t{1} << 52;

constexpr absl::Duration kMinRetryWait = absl::Milliseconds(10);

}  // namespace

absl::StatusOr<std::unique_ptr<RedisRateLimiter>> RedisRateLimiter::Create(std::shared_ptr<RedisClient> client,
                                                                           RateLimitSpec spec, std::string upstream,
                                                                           int64_t lease, RedisTenant tenant) {
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
  if (!tenant.name.empty() && (tenant.name.find(':') != std::string::npos || tenant.weight < 1 ||
                               tenant.window < absl::Milliseconds(10))) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rate limiter \"%s\": tenant \"%s\" needs a name without ':', a weight >= 1 (got %d) and a window >= "
        "10ms (got %s)",
        name, tenant.name, tenant.weight, absl::FormatDuration(tenant.window)));
  }
  return std::unique_ptr<RedisRateLimiter>(
      new RedisRateLimiter(std::move(client), std::move(upstream), *interval, spec.burst, lease, std::move(tenant)));
}

RedisRateLimiter::RedisRateLimiter(std::shared_ptr<RedisClient> client, std::string upstream,
                                   absl::Duration interval, int64_t burst, int64_t lease, RedisTenant tenant)
    : client_(std::move(client)),
      upstream_(std::move(upstream)),
      key_(absl::StrCat("fanout:limit:", upstream_)),
      interval_(interval),
      burst_(burst),
      lease_size_(lease),
      interval_ns_text_(absl::StrCat(absl::ToInt64Nanoseconds(interval))),
      burst_text_(absl::StrCat(burst)),
      tenant_(std::move(tenant)),
      keys_{key_},
      script_(kScript) {
  if (!tenant_.name.empty()) {
    keys_.insert(keys_.end(), {absl::StrCat(key_, ":tenant:", tenant_.name), absl::StrCat(key_, ":tenants"),
                               absl::StrCat(key_, ":weights")});
    tenant_args_ = {tenant_.name, absl::StrCat(tenant_.weight),
                    absl::StrCat(absl::ToInt64Microseconds(tenant_.window))};
  }
}

absl::StatusOr<RedisRateLimiter::Reply> RedisRateLimiter::Run(std::string_view mode, int64_t min_n,
                                                              int64_t max_n) const {
  std::vector<std::string> args = {interval_ns_text_, burst_text_, absl::StrCat(min_n), absl::StrCat(max_n),
                                   std::string(mode)};
  args.insert(args.end(), tenant_args_.begin(), tenant_args_.end());
  absl::StatusOr<RedisReply> reply = client_->Eval(script_, keys_, args);
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

void RedisRateLimiter::PauseFor(absl::Duration d, absl::Time /*now*/) {
  if (d <= absl::ZeroDuration()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::lock_guard<std::mutex> stats_lock(stats_mu_);
    stats_.expired += remaining_;  // leased tokens must not outlive the pause
    remaining_ = 0;
  }
  const int64_t ns = std::min<int64_t>(absl::ToInt64Nanoseconds(d), kMaxToleranceNs);
  (void)Run("pause", ns, 0);
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
