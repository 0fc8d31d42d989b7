// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// RedisRateLimiter: RateLimiter's GCRA shared through Redis, so that every
// process on every machine that names the same upstream draws from one
// budget. The state is one Redis key, `fanout:limit:<upstream>`, holding the
// theoretical arrival time (TAT, microseconds on the server's clock); one Lua
// script reads and advances it atomically, so a reservation is one round trip.
// The key expires when the bucket is full again (it then carries no
// information), so idle limits leave nothing behind.
//
// Whose clock. The script reads the time with Redis's TIME, not a time passed
// in by the caller: workers on many machines must agree on one timeline, and
// their clocks do not (a worker 50 ms ahead would take tokens 50 ms early).
// The server's clock is the one clock every worker sees. Hence the guarantee,
// the same as RateLimiter's, is stated on the server's clock:
//     tokens granted in any window of length W <= rate * W + burst
// where a token is granted at the server time the script ran (or, for leased
// tokens, the server time that corresponds to their Take; see below). All
// users of one key must configure the same rate and burst.
//
// Leases: fewer round trips without breaking the bound. A process may fetch
// up to `lease` tokens in one round trip and hand them out locally. Spending
// such tokens later than they were granted is what breaks naive batching: the
// bucket refills meanwhile, and stored tokens add to a fresh burst (fetch a
// burst of 10 at t, another process takes a fresh 10 at t + 10 T, spend the
// stored 10 then: 20 in an instant). So every leased token carries a validity
// window. GCRA gives the k-th token of the key its own arrival time A_k (the
// TAT right after it); a single grant at server time s satisfies
//     A_k - burst * T <= s <= A_k - T        (T = 1 / rate)
// and any set of grant times that each lie in their token's window obeys the
// bound (the A_k are T apart, and those counted in a window of length W lie in
// an interval of length W + (burst - 1) T). A lease therefore holds only tokens
// conformant when fetched (the lower end holds from the start) and each expires
// at A_k - T (the upper end): the first token of a lease is the caller's at
// once, the next ones expire one interval after another — spend them at least
// as fast as the rate or lose them. Expired tokens are dropped, never
// returned, and counted in stats().expired. The server time of a local Take
// is taken as server time of the script + (local time of the Take - local
// time the reply arrived): the same convention as for a single grant, which
// also reaches its caller one network delay after the server granted it.
// Lease sizes well below the burst leave each token a usable window; a lease
// of 1 (the default) never holds tokens.
//
// Tenants: several crawls (customers, tenants) that share one upstream's
// limit can each name themselves, with a weight. A tenant's tokens must then
// also conform to a bucket of its own at its share of the rate,
//     rate * weight / (weight + the weights of the other tenants refused
//                      within the last `window`),
// kept under `fanout:limit:<upstream>:tenant:<name>` (refusals in
// `...:tenants`, weights in `...:weights`). A tenant that is never refused
// is not counted against the others, so the limit is shared by weight only
// among those that want more than it gives: a small crawl next to one with
// 100 times the work gets half the rate (equal weights), and all of it when
// alone. The shared bound on the upstream key holds regardless.
//
// Failure: when Redis cannot be reached, TryAcquire refuses (never grants
// blind) and TimeUntilAvailable says when the client may reconnect; the
// client reconnects by itself (RedisClient). A restarted Redis without
// persistence starts with a full bucket.
//
// Thread-safety: all methods are thread-safe; requests share the client's one
// connection (one round trip at a time), and the lease is guarded by a mutex.

#ifndef FANOUT_REDIS_RATE_LIMITER_H_
#define FANOUT_REDIS_RATE_LIMITER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fanout/rate_limit.h"
#include "fanout/rate_limiter.h"
#include "fanout/redis_client.h"

namespace fanout {

// The answer to RedisRateLimiter::Acquire.
struct RedisGrant {
  bool granted = false;
  // If refused: how long until the tokens could be granted if nobody else took
  // any. Zero if granted.
  absl::Duration wait = absl::ZeroDuration();
  // The server's clock (Unix time) at which the tokens count as granted.
  absl::Time server_time;
  bool from_lease = false;  // served locally from a lease, without a round trip
};

// Who draws from a shared limit, for weighted fairness between tenants (see
// above). An empty name: no tenant, the plain shared limit.
struct RedisTenant {
  std::string name;  // the tenant (a crawl id); no ':' (it is part of a key)
  int64_t weight = 1;  // >= 1
  absl::Duration window = absl::Seconds(1);  // how long a refusal counts, >= 10 ms
};

struct RedisRateLimiterStats {
  int64_t round_trips = 0;    // scripts run by this limiter
  int64_t granted = 0;        // tokens granted to callers
  int64_t leased = 0;         // of those, tokens served from a lease
  int64_t expired = 0;        // leased tokens dropped unused past their window
};

class RedisRateLimiter final : public RateLimit {
 public:
  // A limiter for `upstream` (non-empty; the key is "fanout:limit:" +
  // upstream) with `spec`'s rate and burst, through `client`, fetching up to
  // `lease` tokens per round trip (1 <= lease <= burst). InvalidArgument for a
  // bad spec (as RateLimiter::Create, and burst * interval must stay within
  // 2^52 ns, about 52 days), upstream, lease or tenant. Makes no round trip.
  static absl::StatusOr<std::unique_ptr<RedisRateLimiter>> Create(std::shared_ptr<RedisClient> client,
                                                                  RateLimitSpec spec, std::string upstream,
                                                                  int64_t lease = 1, RedisTenant tenant = {});

  // Takes `n` tokens if they can be granted now: from the lease if it holds
  // `n` unexpired tokens, else with one round trip (which also refills the
  // lease). n == 0 is granted without a round trip; InvalidArgument if n < 0
  // or n > burst; Redis errors as RedisClient reports them.
  absl::StatusOr<RedisGrant> Acquire(int64_t n = 1);

  // RateLimit. `now` is not used: the server's clock decides. TryAcquire is
  // Acquire, refusing on errors (last_error() keeps the latest).
  bool TryAcquire(int64_t n, absl::Time now) override;
  bool TryAcquire(int64_t n = 1) { return TryAcquire(n, absl::InfinitePast()); }
  // One round trip; takes the tokens whether or not they are conformant.
  absl::StatusOr<absl::Duration> Reserve(int64_t n, absl::Time now) override;
  // Zero if the lease can serve `n`; else one round trip that takes nothing.
  // While Redis is out of reach: the time until the client may reconnect (at
  // least 10 ms), so callers wait rather than spin.
  absl::Duration TimeUntilAvailable(int64_t n, absl::Time now) const override;
  // One round trip that moves the TAT back by n intervals (as RateLimiter's
  // Refund does); errors are dropped (a lost refund only costs throughput).
  void Refund(int64_t n) override;
  // One round trip that sets the key so nothing conforms for `d` (then one
  // token an interval, no burst), for every process on it; drops the lease.
  // Errors are dropped (last_error() keeps them).
  void PauseFor(absl::Duration d, absl::Time now) override;
  const std::string& name() const override { return upstream_; }
  int64_t burst() const override { return burst_; }

  const std::string& key() const { return key_; }
  absl::Duration interval() const { return interval_; }
  int64_t lease() const { return lease_size_; }
  RedisRateLimiterStats stats() const;
  absl::Status last_error() const;

 private:
  struct Reply {
    int64_t granted;         // tokens taken (0 if refused)
    absl::Duration wait;     // if refused
    absl::Duration ahead;    // max(TAT, now) - now before taking: how far the key ran ahead
    absl::Time server_time;  // TIME when the script ran
    absl::Time received;     // local clock when the reply arrived
  };
  RedisRateLimiter(std::shared_ptr<RedisClient> client, std::string upstream, absl::Duration interval,
                   int64_t burst, int64_t lease, RedisTenant tenant);
  // Runs the script: mode "take" (at least min_n, at most max_n conformant
  // tokens, or none), "reserve", "peek" or "refund".
  absl::StatusOr<Reply> Run(std::string_view mode, int64_t min_n, int64_t max_n) const;
  // Serves `n` tokens from the lease if it can. Requires mu_.
  bool TakeFromLease(int64_t n, absl::Time now, absl::Time* server_time);
  void RecordError(const absl::Status& status) const;

  const std::shared_ptr<RedisClient> client_;
  const std::string upstream_;
  const std::string key_;
  const absl::Duration interval_;
  const int64_t burst_;
  const int64_t lease_size_;
  const std::string interval_ns_text_;  // the interval as the script reads it
  const std::string burst_text_;
  const RedisTenant tenant_;
  std::vector<std::string> keys_;         // the script's KEYS
  std::vector<std::string> tenant_args_;  // its ARGV after the mode (empty: no tenant)
  const RedisScript script_;  // GCRA on the key (src/redis_rate_limiter.cc)

  mutable std::mutex mu_;  // held across the round trip that refills the lease
  // The lease: `remaining` tokens; the next expires at `next_deadline` (local
  // clock), each later one `interval_` after the previous.
  int64_t remaining_ = 0;
  absl::Time next_deadline_;
  absl::Time local_anchor_;   // local time the lease's reply arrived...
  absl::Time server_anchor_;  // ...and the server's time when it was granted

  mutable std::mutex stats_mu_;
  mutable RedisRateLimiterStats stats_;
  mutable absl::Status last_error_;
};

}  // namespace fanout

#endif  // FANOUT_REDIS_RATE_LIMITER_H_
