// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/rate_limiter.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "fanout/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fanout {
namespace {

using ::testing::HasSubstr;
using testing::FakeClock;

std::unique_ptr<RateLimiter> MakeLimiter(const Clock* clock, double rate, int64_t burst) {
  auto limiter = RateLimiter::Create(clock, RateLimitSpec::PerSecond(rate, burst), "test");
  EXPECT_TRUE(limiter.ok()) << limiter.status();
  return *std::move(limiter);
}

TEST(RateLimiterCreate, RejectsBadSpecsNamingTheLimiter) {
  FakeClock clock;
  const std::pair<RateLimitSpec, const char*> bad[] = {
      {{0, 1}, "rate must be"},
      {{-3, 1}, "rate must be"},
      {{std::numeric_limits<double>::quiet_NaN(), 1}, "rate must be"},
      {{std::numeric_limits<double>::infinity(), 1}, "rate must be"},
      {{2e9, 1}, "rate must be"},
      {{10, 0}, "burst must be >= 1, got 0"},
      {{1e-9, 1'000'000'000}, "more than 2^62 ns"},
  };
  for (const auto& [spec, message] : bad) {
    auto limiter = RateLimiter::Create(&clock, spec, "vendor api");
    ASSERT_FALSE(limiter.ok()) << spec.rate_per_second << "/" << spec.burst;
    EXPECT_EQ(limiter.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(limiter.status().message(), HasSubstr("\"vendor api\""));
    EXPECT_THAT(limiter.status().message(), HasSubstr(message));
  }
  EXPECT_FALSE(RateLimiter::Create(nullptr, {1, 1}).ok());
}

TEST(RateLimiter, StartsFullThenPacesAtTheRate) {
  FakeClock clock;
  auto limiter = MakeLimiter(&clock, 10, 3);
  EXPECT_TRUE(limiter->TryAcquire());
  EXPECT_TRUE(limiter->TryAcquire());
  EXPECT_TRUE(limiter->TryAcquire());
  EXPECT_FALSE(limiter->TryAcquire());
  clock.Advance(absl::Milliseconds(99));
  EXPECT_FALSE(limiter->TryAcquire());
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(limiter->TryAcquire());
  EXPECT_FALSE(limiter->TryAcquire());
}

TEST(RateLimiter, FractionalRates) {
  FakeClock clock;
  auto limiter = MakeLimiter(&clock, 0.5, 1);  // one every two seconds
  EXPECT_TRUE(limiter->TryAcquire());
  clock.Advance(absl::Milliseconds(1999));
  EXPECT_FALSE(limiter->TryAcquire());
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(limiter->TryAcquire());
}

TEST(RateLimiter, WeightedAcquisition) {
  FakeClock clock;
  auto limiter = MakeLimiter(&clock, 10, 5);
  EXPECT_TRUE(limiter->TryAcquire(3));
  EXPECT_FALSE(limiter->TryAcquire(3));  // only 2 left; nothing taken
  EXPECT_TRUE(limiter->TryAcquire(2));
  EXPECT_TRUE(limiter->TryAcquire(0));
  EXPECT_FALSE(limiter->TryAcquire(-1));
  clock.Advance(absl::Seconds(10));
  EXPECT_FALSE(limiter->TryAcquire(6)) << "more than the burst is never granted";
  EXPECT_TRUE(limiter->TryAcquire(5));
}

TEST(RateLimiter, ReserveQueuesCallersAtTheRate) {
  FakeClock clock;
  auto limiter = MakeLimiter(&clock, 4, 2);
  EXPECT_EQ(*limiter->Reserve(), absl::ZeroDuration());
  EXPECT_EQ(*limiter->Reserve(), absl::ZeroDuration());
  EXPECT_EQ(*limiter->Reserve(), absl::Milliseconds(250));
  EXPECT_EQ(*limiter->Reserve(), absl::Milliseconds(500));
  EXPECT_EQ(*limiter->Reserve(2), absl::Seconds(1));
  // A reservation holds later TryAcquire callers back until its slot has passed.
  clock.Advance(absl::Milliseconds(999));
  EXPECT_FALSE(limiter->TryAcquire());
  auto too_many = limiter->Reserve(3);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_many.status().message(), HasSubstr("cannot reserve 3 tokens with burst 2"));
}

TEST(RateLimiter, TimeUntilAvailableReadsWithoutTaking) {
  FakeClock clock;
  auto limiter = MakeLimiter(&clock, 2, 2);
  EXPECT_EQ(limiter->TimeUntilAvailable(2, clock.Now()), absl::ZeroDuration());
  ASSERT_TRUE(limiter->TryAcquire(2));
  EXPECT_EQ(limiter->TimeUntilAvailable(1, clock.Now()), absl::Milliseconds(500));
  EXPECT_EQ(limiter->TimeUntilAvailable(2, clock.Now()), absl::Seconds(1));
  EXPECT_EQ(limiter->TimeUntilAvailable(3, clock.Now()), absl::InfiniteDuration());
  EXPECT_EQ(limiter->TimeUntilAvailable(1, clock.Now()), absl::Milliseconds(500));
}

TEST(RateLimiter, RefundGivesBackWhatWasTaken) {
  FakeClock clock;
  auto limiter = MakeLimiter(&clock, 1, 3);
  ASSERT_TRUE(limiter->TryAcquire(3));
  EXPECT_FALSE(limiter->TryAcquire(1));
  limiter->Refund(2);
  EXPECT_TRUE(limiter->TryAcquire(2));
  EXPECT_FALSE(limiter->TryAcquire(1));
}

TEST(RateLimiter, SetRateRepricesTokensAlreadyOwed) {
  FakeClock clock;
  auto limiter = MakeLimiter(&clock, 10, 1);
  ASSERT_TRUE(limiter->TryAcquire());
  // One token owed at 10/s is 100 ms; at 1/s it is a whole second.
  ASSERT_TRUE(limiter->SetRate(1).ok());
  EXPECT_EQ(limiter->TimeUntilAvailable(1, clock.Now()), absl::Seconds(1));
  ASSERT_TRUE(limiter->SetRate(100, 4).ok());
  EXPECT_EQ(limiter->TimeUntilAvailable(1, clock.Now()), absl::ZeroDuration());
  EXPECT_EQ(limiter->burst(), 4);
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 100);
  absl::Status bad = limiter->SetRate(-1);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 100) << "a refused change leaves the limiter as it was";
}

TEST(RateLimiter, PauseUntilGrantsNothingBeforeThenNoBurstAfter) {
  FakeClock clock;
  auto limiter = MakeLimiter(&clock, 10, 5);
  limiter->PauseUntil(clock.Now() + absl::Seconds(30));
  clock.Advance(absl::Seconds(29));
  EXPECT_FALSE(limiter->TryAcquire());
  EXPECT_EQ(limiter->State().available, 0);
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(limiter->TryAcquire());
  EXPECT_FALSE(limiter->TryAcquire()) << "resumes at the sustained rate, not with a burst";
  clock.Advance(absl::Milliseconds(100));
  EXPECT_TRUE(limiter->TryAcquire());
  // A pause that ends in the past changes nothing.
  clock.Advance(absl::Seconds(10));
  limiter->PauseUntil(clock.Now() - absl::Seconds(1));
  EXPECT_TRUE(limiter->TryAcquire(5));
}

TEST(RateLimiter, SetRateKeepsAPauseAsATime) {
  // A rate change during a pause neither stretches nor shortens it.
  FakeClock clock;
  auto limiter = MakeLimiter(&clock, 100, 5);
  const absl::Time until = clock.Now() + absl::Seconds(2);
  limiter->PauseUntil(until);
  ASSERT_TRUE(limiter->SetRate(50).ok());
  EXPECT_FALSE(limiter->TryAcquire(1, until - absl::Milliseconds(1)));
  EXPECT_TRUE(limiter->TryAcquire(1, until));
  limiter->PauseUntil(until + absl::Seconds(2));
  ASSERT_TRUE(limiter->SetRate(400).ok());
  EXPECT_FALSE(limiter->TryAcquire(1, until + absl::Milliseconds(1999)));
  EXPECT_TRUE(limiter->TryAcquire(1, until + absl::Seconds(2)));
  EXPECT_FALSE(limiter->TryAcquire(1, until + absl::Seconds(2))) << "no burst after the pause";
}

TEST(RateLimiter, StateReportsAvailableTokensAndNextToken) {
  FakeClock clock;
  auto limiter = MakeLimiter(&clock, 4, 4);
  RateLimiterState state = limiter->State();
  EXPECT_DOUBLE_EQ(state.rate_per_second, 4);
  EXPECT_EQ(state.burst, 4);
  EXPECT_DOUBLE_EQ(state.available, 4);
  EXPECT_EQ(state.next_token, absl::ZeroDuration());
  ASSERT_TRUE(limiter->TryAcquire(4));
  clock.Advance(absl::Milliseconds(125));
  state = limiter->State();
  EXPECT_DOUBLE_EQ(state.available, 0.5);
  EXPECT_EQ(state.next_token, absl::Milliseconds(125));
}

TEST(RateLimitSpec, WindowNeverExceedsItsMaximum) {
  const RateLimitSpec spec = RateLimitSpec::Window(5000, absl::Hours(1), 500);
  EXPECT_EQ(spec.burst, 500);
  EXPECT_DOUBLE_EQ(spec.rate_per_second * 3600 + spec.burst, 5000);
  FakeClock clock;
  EXPECT_FALSE(RateLimiter::Create(&clock, RateLimitSpec::Window(10, absl::Seconds(1), 10)).ok());
  EXPECT_FALSE(RateLimiter::Create(&clock, RateLimitSpec::Window(10, absl::ZeroDuration(), 1)).ok());
}

// Checks the GCRA guarantee over sorted (time, tokens) grants: in every closed
// window [t, t + W] starting at a grant, tokens <= rate * W + burst.
void ExpectWindowBound(const std::vector<std::pair<absl::Time, int64_t>>& grants, double rate,
                       int64_t burst, absl::Duration window, const std::string& context) {
  size_t end = 0;
  int64_t in_window = 0;
  const double bound = rate * absl::ToDoubleSeconds(window) + static_cast<double>(burst) + 1e-6;
  for (size_t start = 0; start < grants.size(); ++start) {
    while (end < grants.size() && grants[end].first <= grants[start].first + window) {
      in_window += grants[end++].second;
    }
    ASSERT_LE(static_cast<double>(in_window), bound)
        << context << " window " << window << " starting at grant " << start;
    in_window -= grants[start].second;
  }
}

// Thousands of random arrival sequences (seeded): random rates (fractional
// too), bursts, costs and gaps, mixing TryAcquire and Reserve; whatever the
// pattern, no window holds more than rate * W + burst.
TEST(RateLimiterProperty, NoWindowExceedsRateTimesWindowPlusBurst) {
  std::mt19937_64 rng(20261123);
  for (int sequence = 0; sequence < 2000; ++sequence) {
    FakeClock clock;
    const double rate = std::uniform_real_distribution<double>(0.2, 2000)(rng);
    const int64_t burst = std::uniform_int_distribution<int64_t>(1, 20)(rng);
    auto limiter = MakeLimiter(&clock, rate, burst);
    const double effective = limiter->effective_rate();
    const double mean_gap_ns = 1e9 / rate / std::uniform_real_distribution<double>(0.3, 4)(rng);
    std::exponential_distribution<double> gap(1.0 / mean_gap_ns);
    std::vector<std::pair<absl::Time, int64_t>> grants;
    for (int arrival = 0; arrival < 300; ++arrival) {
      clock.Advance(absl::Nanoseconds(static_cast<int64_t>(gap(rng))));
      const int64_t n = std::uniform_int_distribution<int64_t>(1, burst)(rng);
      if (rng() % 4 == 0) {
        auto wait = limiter->Reserve(n);
        ASSERT_TRUE(wait.ok());
        grants.emplace_back(clock.Now() + *wait, n);
      } else if (limiter->TryAcquire(n)) {
        grants.emplace_back(clock.Now(), n);
      }
    }
    std::sort(grants.begin(), grants.end());
    const std::string context = "sequence " + std::to_string(sequence) + " rate " +
                                std::to_string(rate) + " burst " + std::to_string(burst);
    for (const double periods : {0.5, 1.0, 3.7, 10.0, 50.0}) {
      ExpectWindowBound(grants, effective, burst, absl::Nanoseconds(periods * 1e9 / rate), context);
      if (HasFatalFailure()) return;
    }
  }
}

// Under steady demand above the rate, the long-run grant rate is within 0.1%
// of the configured rate, fractional rates included.
TEST(RateLimiterProperty, LongRunRateMatchesConfiguredRate) {
  for (const double rate : {0.5, 3.0, 7.3, 100.0, 333.0, 5000.0, 99999.0}) {
    FakeClock clock;
    auto limiter = MakeLimiter(&clock, rate, 10);
    const absl::Duration step = absl::Nanoseconds(1e9 / rate / 3);  // demand is 3x the rate
    const absl::Time start = clock.Now();
    int64_t granted = 0;
    const int64_t expected = 20000;
    while (granted < expected + 10) {
      if (limiter->TryAcquire()) ++granted;
      clock.Advance(step);
    }
    const double achieved = static_cast<double>(granted - 10) / absl::ToDoubleSeconds(clock.Now() - start);
    EXPECT_NEAR(achieved / rate, 1.0, 0.001) << "rate " << rate;
  }
}

// Many threads hammering one limiter at a frozen time get exactly the burst:
// the CAS loop never over-grants.
TEST(RateLimiterConcurrency, ThreadsNeverOverGrant) {
  FakeClock clock;
  auto limiter = MakeLimiter(&clock, 1, 1000);
  std::atomic<int64_t> granted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 5000; ++j) {
        if (limiter->TryAcquire()) granted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 1000);
}

}  // namespace
}  // namespace fanout
