// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// RedisRateLimiter against a real redis-server on loopback. The window bound
// is checked on the server's clock (the time each grant reports), which is
// what the limiter guarantees; so the checks do not depend on how the test's
// threads happen to be scheduled.

#include "fanout/redis_rate_limiter.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fanout/limits.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/redis_test.h"

namespace fanout {
namespace {

using ::testing::HasSubstr;

class RedisRateLimiterTest : public testing::RedisTest {
 protected:
  std::shared_ptr<RedisClient> Client() {
    RedisClientOptions options;
    options.reconnect_initial = absl::Milliseconds(10);
    options.reconnect_max = absl::Milliseconds(100);
    return Connect(options);
  }

  std::shared_ptr<RedisRateLimiter> Limiter(RateLimitSpec spec, const std::string& upstream, int64_t lease = 1,
                                            std::shared_ptr<RedisClient> client = nullptr, RedisTenant tenant = {}) {
    auto limiter = RedisRateLimiter::Create(client ? client : Client(), spec, upstream, lease, std::move(tenant));
    EXPECT_TRUE(limiter.ok()) << limiter.status();
    return limiter.ok() ? std::shared_ptr<RedisRateLimiter>(*std::move(limiter)) : nullptr;
  }
};

// The largest number of grants in any window [t, t + window] of sorted times.
int64_t MostInWindow(const std::vector<absl::Time>& times, absl::Duration window) {
  int64_t most = 0;
  size_t end = 0;
  for (size_t begin = 0; begin < times.size(); ++begin) {
    while (end < times.size() && times[end] <= times[begin] + window) ++end;
    most = std::max<int64_t>(most, static_cast<int64_t>(end - begin));
  }
  return most;
}

// Threads hammer Acquire for `run`, each through its own limiter object;
// returns every grant's server time, sorted.
std::vector<absl::Time> Hammer(const std::vector<std::shared_ptr<RedisRateLimiter>>& limiters, int threads_each,
                               absl::Duration run, const Clock& clock) {
  std::vector<std::vector<absl::Time>> per_thread(limiters.size() * threads_each);
  std::vector<std::thread> threads;
  const absl::Time end = clock.Now() + run;
  for (size_t i = 0; i < per_thread.size(); ++i) {
    threads.emplace_back([&, i] {
      RedisRateLimiter& limiter = *limiters[i % limiters.size()];
      while (clock.Now() < end) {
        absl::StatusOr<RedisGrant> grant = limiter.Acquire(1);
        ASSERT_TRUE(grant.ok()) << grant.status();
        if (grant->granted) per_thread[i].push_back(grant->server_time);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<absl::Time> all;
  for (const auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  return all;
}

void ExpectWindowBound(const std::vector<absl::Time>& grants, double rate, int64_t burst) {
  for (absl::Duration window : {absl::ZeroDuration(), absl::Milliseconds(5), absl::Milliseconds(50),
                                absl::Milliseconds(100), absl::Milliseconds(500), absl::Seconds(1)}) {
    const double bound = rate * absl::ToDoubleSeconds(window) + static_cast<double>(burst);
    EXPECT_LE(static_cast<double>(MostInWindow(grants, window)), bound + 1e-9)
        << "window " << window << " holds more than rate * W + burst";
  }
}

TEST_F(RedisRateLimiterTest, CreateRejectsBadArguments) {
  auto client = Client();
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(std::string(RedisRateLimiter::Create(client, {0, 1}, "v").status().message()),
              HasSubstr("rate must be"));
  EXPECT_THAT(std::string(RedisRateLimiter::Create(client, {10, 5}, "").status().message()),
              HasSubstr("upstream name"));
  EXPECT_THAT(std::string(RedisRateLimiter::Create(client, {10, 5}, "v", 6).status().message()),
              HasSubstr("lease must be in [1, burst 5], got 6"));
  EXPECT_FALSE(RedisRateLimiter::Create(nullptr, {10, 5}, "v").ok());
  EXPECT_THAT(std::string(RedisRateLimiter::Create(client, {1e-3, 5000}, "v").status().message()),
              HasSubstr("spans more than 2^52 ns"));
  EXPECT_THAT(std::string(RedisRateLimiter::Create(client, {10, 5}, "v", 1, {"a:b"}).status().message()),
              HasSubstr("tenant \"a:b\""));
  EXPECT_FALSE(RedisRateLimiter::Create(client, {10, 5}, "v", 1, {"a", 0}).ok());
}

// Two tenants that both want more than the shared limit split it by weight,
// the one with three times the callers no more than its share: after the
// first second (each tenant's use is measured over a quarter second), and the
// shared bound holds throughout.
TEST_F(RedisRateLimiterTest, TenantsWantingMoreThanTheLimitSplitItByWeight) {
  const RateLimitSpec spec = RateLimitSpec::PerSecond(200, 4);
  for (const int64_t small_weight : {1, 3}) {
    SCOPED_TRACE(small_weight);
    const std::string upstream = absl::StrCat("shared", small_weight);
    std::vector<std::shared_ptr<RedisRateLimiter>> big, small;
    for (int i = 0; i < 3; ++i) big.push_back(Limiter(spec, upstream, 1, nullptr, {"big", 1}));
    small.push_back(Limiter(spec, upstream, 1, nullptr, {"small", small_weight}));
    std::vector<absl::Time> big_grants, small_grants;
    std::thread big_thread([&] { big_grants = Hammer(big, 1, absl::Seconds(3), clock_); });
    std::thread small_thread([&] { small_grants = Hammer(small, 1, absl::Seconds(3), clock_); });
    big_thread.join();
    small_thread.join();
    std::vector<absl::Time> all = big_grants;
    all.insert(all.end(), small_grants.begin(), small_grants.end());
    std::sort(all.begin(), all.end());
    ASSERT_GT(all.size(), 300u);
    ExpectWindowBound(all, 200, 4);
    const absl::Time settled = all.front() + absl::Seconds(1);
    const auto after = [&](const std::vector<absl::Time>& v) {
      return static_cast<double>(std::count_if(v.begin(), v.end(), [&](absl::Time t) { return t >= settled; }));
    };
    const double share = static_cast<double>(small_weight) / static_cast<double>(small_weight + 1);
    const double got = after(small_grants) / (after(small_grants) + after(big_grants));
    EXPECT_GT(got, share * 0.85) << after(small_grants) << " of " << after(small_grants) + after(big_grants);
    EXPECT_LT(got, share * 1.15 + 0.02);
  }
}

// An upstream's "wait" seen by one process holds back every process on the
// key (those with tokens leased before keep only those: they were
// conformant when granted), then grants resume one an interval (no burst).
TEST_F(RedisRateLimiterTest, APauseHoldsBackEveryProcess) {
  const RateLimitSpec spec = RateLimitSpec::PerSecond(100, 5);
  std::shared_ptr<RedisRateLimiter> a = Limiter(spec, "paused", 3);
  std::shared_ptr<RedisRateLimiter> b = Limiter(spec, "paused");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->TryAcquire(1));  // a now holds a lease of 2 more
  a->PauseFor(absl::Milliseconds(400), clock_.Now());
  EXPECT_FALSE(a->TryAcquire(1)) << "a leased token outlived the pause";
  EXPECT_FALSE(b->TryAcquire(1));
  const absl::Duration wait = b->TimeUntilAvailable(1, clock_.Now());
  EXPECT_GT(wait, absl::Milliseconds(300));
  EXPECT_LE(wait, absl::Milliseconds(400));
  absl::SleepFor(wait + absl::Milliseconds(20));
  int grabbed = 0;
  while (b->TryAcquire(1)) ++grabbed;
  EXPECT_GE(grabbed, 1);
  EXPECT_LE(grabbed, 3) << "a burst (5) came back right after the pause; 20 ms at 100/s is 2 tokens";
}

// A tenant alone, or next to one that never wants more than it gets, may use
// the whole limit: shares apply only among tenants that are refused.
TEST_F(RedisRateLimiterTest, ATenantAloneHasTheWholeLimit) {
  const RateLimitSpec spec = RateLimitSpec::PerSecond(200, 4);
  std::vector<std::shared_ptr<RedisRateLimiter>> alone = {Limiter(spec, "solo", 1, nullptr, {"a", 1}),
                                                          Limiter(spec, "solo", 1, nullptr, {"a", 1})};
  // Another tenant asks now and then (one token a 100 ms, far below its share).
  std::shared_ptr<RedisRateLimiter> light = Limiter(spec, "solo", 1, nullptr, {"light", 1});
  std::atomic<bool> stop{false};
  std::thread asker([&] {
    while (!stop) {
      (void)light->Acquire(1);
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
  const std::vector<absl::Time> grants = Hammer(alone, 2, absl::Seconds(2), clock_);
  stop = true;
  asker.join();
  ASSERT_GT(grants.size(), 100u);
  const double rate = static_cast<double>(grants.size() - 4) / absl::ToDoubleSeconds(grants.back() - grants.front());
  // Far more than the half it would get if the light tenant held back a
  // whole share (it holds back about twice what it uses).
  EXPECT_GT(rate, 200 * 0.7) << "a tenant next to a light one was held to its share";
}

TEST_F(RedisRateLimiterTest, BurstThenPacedWithTheWaitReported) {
  auto limiter = Limiter(RateLimitSpec::PerSecond(10, 3), "vendor.example");  // T = 100 ms
  ASSERT_NE(limiter, nullptr);
  EXPECT_EQ(limiter->key(), "fanout:limit:vendor.example");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter->TryAcquire()) << i;
  auto refused = limiter->Acquire(1);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->granted);
  EXPECT_GT(refused->wait, absl::ZeroDuration());
  EXPECT_LE(refused->wait, absl::Milliseconds(100));
  EXPECT_GT(limiter->TimeUntilAvailable(1, clock_.Now()), absl::ZeroDuration());
  EXPECT_EQ(limiter->TimeUntilAvailable(4, clock_.Now()), absl::InfiniteDuration());
  EXPECT_FALSE(limiter->Acquire(4).ok()) << "more than the burst is never grantable";
  EXPECT_TRUE(limiter->TryAcquire(0));
  EXPECT_EQ(limiter->stats().granted, 3);
}

TEST_F(RedisRateLimiterTest, SameUpstreamSharesTheBudgetOthersDoNot) {
  const RateLimitSpec spec = RateLimitSpec::PerSecond(1, 5);  // nothing refills during the test
  auto first = Limiter(spec, "shared-vendor");
  auto second = Limiter(spec, "shared-vendor");
  auto other = Limiter(spec, "other-vendor");
  ASSERT_TRUE(first && second && other);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(first->TryAcquire());
  EXPECT_TRUE(second->TryAcquire(2));
  EXPECT_FALSE(second->TryAcquire());
  EXPECT_FALSE(first->TryAcquire());
  EXPECT_TRUE(other->TryAcquire(5)) << "another upstream has its own budget";
  first->Refund(1);
  EXPECT_TRUE(second->TryAcquire()) << "a refund returns the token to everyone";
}

TEST_F(RedisRateLimiterTest, KeyExpiresOnceTheBucketIsFullAgain) {
  auto limiter = Limiter(RateLimitSpec::PerSecond(100, 2), "idle-vendor");  // full again 20 ms after
  ASSERT_NE(limiter, nullptr);
  ASSERT_TRUE(limiter->TryAcquire(2));
  auto admin = Client();
  auto ttl = admin->Command({"PTTL", limiter->key()});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 0);
  EXPECT_LE(ttl->integer, 21);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(admin->Command({"EXISTS", limiter->key()})->integer, 0);
}

// The acceptance test: 4 clients (as 4 worker processes would be) on one key
// at 200/s with burst 10 for 2 s; every window holds <= rate * W + burst and
// the long-run rate is the configured one.
TEST_F(RedisRateLimiterTest, WindowBoundHoldsForFourClientsOnOneKey) {
  const RateLimitSpec spec = RateLimitSpec::PerSecond(200, 10);
  std::vector<std::shared_ptr<RedisRateLimiter>> limiters;
  for (int i = 0; i < 4; ++i) limiters.push_back(Limiter(spec, "hammered"));
  ASSERT_EQ(std::count(limiters.begin(), limiters.end(), nullptr), 0);
  const std::vector<absl::Time> grants = Hammer(limiters, 1, absl::Seconds(2), clock_);
  ASSERT_GT(grants.size(), 100u);
  ExpectWindowBound(grants, 200, 10);
  const double span = absl::ToDoubleSeconds(grants.back() - grants.front());
  const double sustained = static_cast<double>(grants.size() - 10) / span;  // the burst came first
  EXPECT_GT(sustained, 200 * 0.95);
  EXPECT_LT(sustained, 200 * 1.02);
}

// Leases (batches of tokens spent locally) mixed with plain clients keep the
// same bound, and save round trips. (300/s: an interval of 3,333,333 ns, not a
// whole number of the server clock's microseconds.)
TEST_F(RedisRateLimiterTest, LeasesKeepTheWindowBound) {
  const RateLimitSpec spec = RateLimitSpec::PerSecond(300, 10);
  std::vector<std::shared_ptr<RedisRateLimiter>> limiters = {
      Limiter(spec, "leased", 4), Limiter(spec, "leased", 4), Limiter(spec, "leased", 1)};
  ASSERT_EQ(std::count(limiters.begin(), limiters.end(), nullptr), 0);
  const std::vector<absl::Time> grants = Hammer(limiters, 2, absl::Seconds(2), clock_);
  ASSERT_GT(grants.size(), 100u);
  ExpectWindowBound(grants, 300, 10);
  const double span = absl::ToDoubleSeconds(grants.back() - grants.front());
  EXPECT_LT(static_cast<double>(grants.size() - 10) / span, 300 * 1.02);
  EXPECT_GT(limiters[0]->stats().leased + limiters[1]->stats().leased, 0);
}

TEST_F(RedisRateLimiterTest, LeaseServesWithoutRoundTripsAndDropsExpiredTokens) {
  auto limiter = Limiter(RateLimitSpec::PerSecond(10, 10), "lease-vendor", 5);  // T = 100 ms
  ASSERT_NE(limiter, nullptr);
  auto first = limiter->Acquire(1);
  ASSERT_TRUE(first.ok() && first->granted);
  EXPECT_FALSE(first->from_lease);
  auto second = limiter->Acquire(1);  // token 2 is valid for 100 ms after the grant
  ASSERT_TRUE(second.ok());
  if (second->from_lease) {  // (unless this thread was descheduled that long)
    EXPECT_EQ(limiter->stats().round_trips, 1);
    EXPECT_GE(second->server_time, first->server_time);
  }
  // Tokens 3..5 expire 200, 300 and 400 ms after the grant: all gone by 450.
  std::this_thread::sleep_for(std::chrono::milliseconds(450));
  const int64_t trips = limiter->stats().round_trips;
  auto later = limiter->Acquire(1);
  ASSERT_TRUE(later.ok() && later->granted);
  EXPECT_FALSE(later->from_lease);
  EXPECT_EQ(limiter->stats().round_trips, trips + 1);
  EXPECT_EQ(limiter->stats().expired + limiter->stats().leased, 4);
}

TEST_F(RedisRateLimiterTest, JoinsLimitsAfterTheInProcessMembers) {
  auto redis = Limiter(RateLimitSpec::PerSecond(1, 3), "limits-vendor");
  ASSERT_NE(redis, nullptr);
  auto local = std::shared_ptr<RateLimiter>(*RateLimiter::Create(&clock_, RateLimitSpec::PerSecond(1, 2), "local"));
  Limits limits(&clock_);
  limits.Add(std::shared_ptr<RateLimit>(redis));
  limits.Add(local);
  EXPECT_TRUE(limits.TryAcquire().granted());
  EXPECT_TRUE(limits.TryAcquire().granted());
  const int64_t trips = redis->stats().round_trips;
  Admission refused = limits.TryAcquire();
  EXPECT_EQ(refused.verdict, Admission::Verdict::kRateLimited);
  EXPECT_EQ(refused.blocked_by, "local");
  EXPECT_EQ(redis->stats().round_trips, trips) << "a local refusal costs no round trip";
  EXPECT_EQ(limits.TryAcquire(4).verdict, Admission::Verdict::kImpossible);

  // The shared budget refuses: the local token is given back.
  auto other = Limiter(RateLimitSpec::PerSecond(1, 3), "limits-vendor");
  ASSERT_TRUE(other->TryAcquire());  // the third and last shared token
  auto roomy = std::shared_ptr<RateLimiter>(*RateLimiter::Create(&clock_, RateLimitSpec::PerSecond(1, 5), "roomy"));
  Limits second(&clock_);
  second.Add(roomy);
  second.Add(std::shared_ptr<RateLimit>(redis));
  Admission blocked = second.TryAcquire();
  EXPECT_EQ(blocked.verdict, Admission::Verdict::kRateLimited);
  EXPECT_EQ(blocked.blocked_by, "limits-vendor");
  EXPECT_GT(blocked.wait, absl::ZeroDuration());
  EXPECT_NEAR(roomy->State().available, 5, 0.01) << "the in-process token was refunded";
}

TEST_F(RedisRateLimiterTest, DeadServerRefusesWithAClearErrorWithinTheTimeout) {
  auto limiter = Limiter(RateLimitSpec::PerSecond(100, 5), "dead-vendor");
  ASSERT_NE(limiter, nullptr);
  ASSERT_TRUE(limiter->TryAcquire());
  server_->Stop();
  const absl::Time start = clock_.Now();
  EXPECT_FALSE(limiter->TryAcquire());
  EXPECT_FALSE(limiter->TryAcquire());
  auto grant = limiter->Acquire(1);
  ASSERT_FALSE(grant.ok());
  EXPECT_EQ(grant.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(grant.status().message()), HasSubstr(absl::StrCat("127.0.0.1:", server_->port())));
  EXPECT_THAT(std::string(limiter->last_error().message()), HasSubstr("redis redis://127.0.0.1:"));
  EXPECT_GE(limiter->TimeUntilAvailable(1, clock_.Now()), absl::Milliseconds(10));
  EXPECT_LT(clock_.Now() - start, absl::Seconds(5));
}

TEST_F(RedisRateLimiterTest, SurvivesARedisRestartMidRun) {
  auto limiter = Limiter(RateLimitSpec::PerSecond(500, 5), "restarted-vendor");
  ASSERT_NE(limiter, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> granted{0}, failed{0};
  std::atomic<int64_t> granted_at_restart{-1};
  std::thread worker([&] {
    while (!stop.load()) {
      absl::StatusOr<RedisGrant> grant = limiter->Acquire(1);
      if (!grant.ok()) {
        ++failed;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      } else if (grant->granted) {
        ++granted;
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(server_->Restart().ok());
  granted_at_restart = granted.load();
  // Grants resume once the client has reconnected (bounded wait, not a sleep
  // the test relies on).
  const absl::Time deadline = clock_.Now() + absl::Seconds(10);
  while (granted.load() < granted_at_restart.load() + 50 && clock_.Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop = true;
  worker.join();
  EXPECT_GE(granted.load(), granted_at_restart.load() + 50) << "no grants after the restart";
}

}  // namespace
}  // namespace fanout
