// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/limits.h"

#include <algorithm>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "fanout/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fanout {
namespace {

using Verdict = Admission::Verdict;
using testing::FakeClock;

std::shared_ptr<RateLimiter> Rate(const Clock* clock, RateLimitSpec spec, std::string name) {
  auto limiter = RateLimiter::Create(clock, spec, std::move(name));
  EXPECT_TRUE(limiter.ok()) << limiter.status();
  return std::shared_ptr<RateLimiter>(*std::move(limiter));
}

std::shared_ptr<ConcurrencyLimiter> Slots(int64_t max, std::string name) {
  auto limiter = ConcurrencyLimiter::Create(max, std::move(name));
  EXPECT_TRUE(limiter.ok()) << limiter.status();
  return std::shared_ptr<ConcurrencyLimiter>(*std::move(limiter));
}

// A RateLimit that is not a RateLimiter (as a RedisRateLimiter is not): it
// wraps one and counts what Limits asks of it.
class CountingLimit final : public RateLimit {
 public:
  explicit CountingLimit(std::shared_ptr<RateLimiter> inner) : inner_(std::move(inner)) {}
  const std::string& name() const override { return inner_->name(); }
  int64_t burst() const override { return inner_->burst(); }
  bool TryAcquire(int64_t n, absl::Time now) override {
    ++asked;
    return inner_->TryAcquire(n, now);
  }
  absl::StatusOr<absl::Duration> Reserve(int64_t n, absl::Time now) override {
    ++reserved;
    return inner_->Reserve(n, now);
  }
  absl::Duration TimeUntilAvailable(int64_t n, absl::Time now) const override {
    return inner_->TimeUntilAvailable(n, now);
  }
  void Refund(int64_t n) override {
    ++refunded;
    inner_->Refund(n);
  }
  void PauseFor(absl::Duration d, absl::Time now) override { inner_->PauseFor(d, now); }
  int asked = 0, reserved = 0, refunded = 0;

 private:
  std::shared_ptr<RateLimiter> inner_;
};

TEST(Limits, OtherRateLimitsAreAskedLastAndBackedOutLikeTheRest) {
  FakeClock clock;
  auto local = Rate(&clock, {1, 2}, "local");
  auto remote = std::make_shared<CountingLimit>(Rate(&clock, {1, 3}, "remote"));
  Limits limits(&clock);
  limits.Add(std::shared_ptr<RateLimit>(remote));
  limits.Add(local);
  ASSERT_EQ(limits.other_rate_limits().size(), 1u);
  EXPECT_TRUE(limits.TryAcquire().granted());
  EXPECT_TRUE(limits.TryAcquire().granted());
  Admission refused = limits.TryAcquire();
  EXPECT_EQ(refused.verdict, Verdict::kRateLimited);
  EXPECT_EQ(refused.blocked_by, "local");
  EXPECT_EQ(remote->asked, 2) << "not asked when an in-process member refuses";
  EXPECT_EQ(limits.TryAcquire(4).verdict, Verdict::kImpossible) << "cost above a burst";

  // The other member refuses: the in-process token is refunded, the wait is its.
  clock.Advance(absl::Seconds(2));  // local full again (2), remote has 1 + 2 = 3
  auto roomy = Rate(&clock, {1, 5}, "roomy");
  Limits second(&clock);
  second.Add(roomy);
  second.Add(std::shared_ptr<RateLimit>(remote));
  EXPECT_TRUE(second.TryAcquire(3).granted());
  Admission blocked = second.TryAcquire(1);
  EXPECT_EQ(blocked.blocked_by, "remote");
  EXPECT_EQ(blocked.wait, absl::Seconds(1));
  EXPECT_NEAR(roomy->State().available, 2, 1e-9) << "the refused request's token was given back";

  // Charge reaches every member, in-process or not.
  second.Charge(2, clock.Now());
  EXPECT_EQ(remote->reserved, 1);
  EXPECT_NEAR(roomy->State().available, 0, 1e-9);
}

TEST(ConcurrencyLimiter, CapsInFlight) {
  auto slots = Slots(2, "in flight");
  EXPECT_TRUE(slots->TryAcquire());
  EXPECT_TRUE(slots->TryAcquire());
  EXPECT_FALSE(slots->TryAcquire());
  slots->Release();
  EXPECT_EQ(slots->in_flight(), 1);
  EXPECT_TRUE(slots->TryAcquire());
  ASSERT_TRUE(slots->SetMax(1).ok());
  EXPECT_FALSE(slots->TryAcquire());
  slots->Release();
  EXPECT_FALSE(slots->TryAcquire()) << "still at the lowered cap";
  slots->Release();
  EXPECT_TRUE(slots->TryAcquire());
  EXPECT_THAT(ConcurrencyLimiter::Create(0, "level data").status().message(),
              ::testing::HasSubstr("\"level data\": max in flight must be >= 1, got 0"));
  EXPECT_FALSE(slots->SetMax(-2).ok());
}

TEST(Limits, AllMustGrant) {
  FakeClock clock;
  auto global = Rate(&clock, {100, 5}, "global");
  auto level = Rate(&clock, {1, 2}, "level devices");
  Limits limits(&clock);
  limits.Add(global);
  limits.Add(level);
  EXPECT_TRUE(limits.TryAcquire().granted());
  EXPECT_TRUE(limits.TryAcquire().granted());
  Admission denied = limits.TryAcquire();
  EXPECT_EQ(denied.verdict, Verdict::kRateLimited);
  EXPECT_EQ(denied.blocked_by, "level devices");
  EXPECT_EQ(denied.wait, absl::Seconds(1));
}

TEST(Limits, ARefusedRequestConsumesNoTokenAnywhere) {
  FakeClock clock;
  auto first = Rate(&clock, {10, 5}, "first");
  auto second = Rate(&clock, {10, 1}, "second");
  Limits limits(&clock);
  limits.Add(first);
  limits.Add(second);
  ASSERT_TRUE(limits.TryAcquire().granted());
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(limits.TryAcquire().granted());
  }
  // `first` granted each of those before `second` refused; all were returned.
  EXPECT_DOUBLE_EQ(first->State().available, 4);
}

TEST(Limits, ConcurrencySlotsAreHeldByThePermit) {
  FakeClock clock;
  auto slots = Slots(1, "max in flight");
  auto rate = Rate(&clock, {1000, 1000}, "rate");
  Limits limits(&clock);
  limits.Add(slots);
  limits.Add(rate);
  Admission first = limits.TryAcquire();
  ASSERT_TRUE(first.granted());
  Admission second = limits.TryAcquire();
  EXPECT_EQ(second.verdict, Verdict::kConcurrencyLimited);
  EXPECT_EQ(second.blocked_by, "max in flight");
  EXPECT_EQ(second.wait, absl::InfiniteDuration());
  EXPECT_DOUBLE_EQ(rate->State().available, 999) << "no token taken for a request that cannot start";
  {
    Permit moved = std::move(first.permit);
    EXPECT_EQ(slots->in_flight(), 1);
  }
  EXPECT_EQ(slots->in_flight(), 0) << "destroying the permit returns the slot";
  Admission third = limits.TryAcquire();
  ASSERT_TRUE(third.granted());
  third.permit.Release();
  third.permit.Release();
  EXPECT_EQ(slots->in_flight(), 0) << "a second Release does nothing";
}

TEST(Limits, RateRefusalReturnsTheSlot) {
  FakeClock clock;
  auto slots = Slots(4, "slots");
  auto rate = Rate(&clock, {1, 1}, "rate");
  Limits limits(&clock);
  limits.Add(slots);
  limits.Add(rate);
  Admission granted = limits.TryAcquire();
  ASSERT_TRUE(granted.granted());
  EXPECT_EQ(limits.TryAcquire().verdict, Verdict::kRateLimited);
  EXPECT_EQ(slots->in_flight(), 1);
}

TEST(Limits, WeightedCostsAndImpossibleCosts) {
  FakeClock clock;
  auto rate = Rate(&clock, {10, 10}, "units");
  Limits limits(&clock);
  limits.Add(rate);
  EXPECT_TRUE(limits.TryAcquire(7).granted());
  Admission denied = limits.TryAcquire(7);
  EXPECT_EQ(denied.verdict, Verdict::kRateLimited);
  EXPECT_EQ(denied.wait, absl::Milliseconds(400));
  Admission impossible = limits.TryAcquire(11);
  EXPECT_EQ(impossible.verdict, Verdict::kImpossible);
  EXPECT_EQ(impossible.blocked_by, "units");
  EXPECT_EQ(limits.TryAcquire(-1).verdict, Verdict::kImpossible);
}

TEST(Limits, WaitIsTheLongestOfTheMembers) {
  FakeClock clock;
  auto fast = Rate(&clock, {10, 1}, "fast");
  auto slow = Rate(&clock, {0.5, 1}, "slow");
  Limits limits(&clock);
  limits.Add(fast);
  limits.Add(slow);
  ASSERT_TRUE(limits.TryAcquire().granted());
  EXPECT_EQ(limits.TryAcquire().wait, absl::Seconds(2));
}

// A vendor publishing 10/s, 5,000/h and 65,000/day: a greedy client driven by
// the limits' wait hints never exceeds any of the three windows, and keeps
// going at the tightest sustainable pace.
TEST(Limits, StackedWindowsAsVendorsPublishThem) {
  FakeClock clock;
  auto per_second = Rate(&clock, RateLimitSpec::PerSecond(10, 10), "10/s");
  auto per_hour = Rate(&clock, RateLimitSpec::Window(5000, absl::Hours(1), 500), "5000/h");
  auto per_day = Rate(&clock, RateLimitSpec::Window(65000, absl::Hours(24), 6500), "65000/day");
  Limits limits(&clock);
  limits.Add(per_second);
  limits.Add(per_hour);
  limits.Add(per_day);
  std::vector<absl::Time> grants;
  const absl::Time start = clock.Now();
  while (clock.Now() - start < absl::Hours(48)) {
    Admission admission = limits.TryAcquire();
    if (admission.granted()) {
      grants.push_back(clock.Now());
    } else {
      ASSERT_EQ(admission.verdict, Verdict::kRateLimited);
      ASSERT_GT(admission.wait, absl::ZeroDuration());
      clock.Advance(admission.wait);
    }
  }
  auto max_in_window = [&](absl::Duration window) {
    size_t best = 0, end = 0;
    for (size_t begin = 0; begin < grants.size(); ++begin) {
      while (end < grants.size() && grants[end] < grants[begin] + window) ++end;
      best = std::max(best, end - begin);
    }
    return best;
  };
  EXPECT_LE(max_in_window(absl::Seconds(1)), 20u);  // rate * 1 s + burst
  EXPECT_LE(max_in_window(absl::Hours(1)), 5000u);
  EXPECT_LE(max_in_window(absl::Hours(24)), 65000u);
  // The first hour starts with the bursts, then the daily limit's sustained
  // rate governs: two days yield close to two days' worth.
  EXPECT_GE(grants.size(), 2 * 58500u);
}

// Random sets of limiters and costs: each member's guarantee holds for the
// requests the set granted, and a refused request leaves no trace.
TEST(LimitsProperty, EveryMembersBoundHolds) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 300; ++round) {
    FakeClock clock;
    Limits limits(&clock);
    std::vector<std::shared_ptr<RateLimiter>> members;
    const int count = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < count; ++i) {
      const double rate = std::uniform_real_distribution<double>(1, 200)(rng);
      const int64_t burst = std::uniform_int_distribution<int64_t>(3, 12)(rng);
      members.push_back(Rate(&clock, {rate, burst}, "m" + std::to_string(i)));
      limits.Add(members.back());
    }
    std::vector<std::pair<absl::Time, int64_t>> grants;
    for (int arrival = 0; arrival < 400; ++arrival) {
      clock.Advance(absl::Microseconds(rng() % 20000));
      const int64_t cost = 1 + static_cast<int64_t>(rng() % 3);
      if (limits.TryAcquire(cost).granted()) grants.emplace_back(clock.Now(), cost);
    }
    for (const auto& member : members) {
      const absl::Duration window = absl::Seconds(1);
      const double bound = member->effective_rate() * 1.0 + static_cast<double>(member->burst()) + 1e-6;
      size_t end = 0;
      int64_t sum = 0;
      for (size_t begin = 0; begin < grants.size(); ++begin) {
        while (end < grants.size() && grants[end].first <= grants[begin].first + window) {
          sum += grants[end++].second;
        }
        ASSERT_LE(static_cast<double>(sum), bound) << member->name() << " round " << round;
        sum -= grants[begin].second;
      }
    }
  }
}

}  // namespace
}  // namespace fanout
