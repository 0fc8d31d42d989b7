// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/adaptive_rate.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "fanout/rate_limiter.h"
#include "fanout/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fanout {
namespace {

using ::testing::HasSubstr;
using testing::FakeClock;

std::unique_ptr<RateLimiter> Limiter(const Clock* clock, double rate, int64_t burst = 1) {
  auto limiter = RateLimiter::Create(clock, RateLimitSpec::PerSecond(rate, burst), "upstream");
  EXPECT_TRUE(limiter.ok()) << limiter.status();
  return *std::move(limiter);
}

std::unique_ptr<AdaptiveRateController> Controller(RateLimiter* limiter, AdaptiveRateOptions options = {}) {
  auto controller = AdaptiveRateController::Create(limiter, std::move(options));
  EXPECT_TRUE(controller.ok()) << controller.status();
  return *std::move(controller);
}

RateObservation Response(int status, const Headers* headers, absl::Time sent, absl::Time received,
                         int64_t in_flight = 0) {
  return RateObservation{status, headers, sent, received, in_flight};
}

TEST(AdaptiveRate, CreateValidates) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 10);
  EXPECT_FALSE(AdaptiveRateController::Create(nullptr, {}).ok());
  const std::pair<AdaptiveRateOptions, const char*> bad[] = {
      {AdaptiveRateOptions{.min_rate = 0}, "min_rate"},
      {AdaptiveRateOptions{.decrease_factor = 1}, "decrease_factor"},
      {AdaptiveRateOptions{.repeat_decrease_factor = 0}, "repeat_decrease_factor"},
      {AdaptiveRateOptions{.settle_margin = 0.5}, "settle_margin"},
      {AdaptiveRateOptions{.measure_window = absl::ZeroDuration()}, "measure_window"},
      {AdaptiveRateOptions{.probe_delay = absl::Seconds(10), .max_probe_delay = absl::Seconds(5)}, "max_probe_delay"},
      {AdaptiveRateOptions{.probe_per_second = -1}, "probe_per_second"},
      {AdaptiveRateOptions{.max_pause = absl::InfiniteDuration()}, "max_pause"},
  };
  for (const auto& [options, field] : bad) {
    auto controller = AdaptiveRateController::Create(limiter.get(), options);
    ASSERT_FALSE(controller.ok()) << field;
    EXPECT_THAT(std::string(controller.status().message()), HasSubstr(field));
  }
  AdaptiveRateOptions with_bad_model;
  with_bad_model.model = UpstreamModel{LeakyBucketLimit{0, 1}};
  EXPECT_FALSE(AdaptiveRateController::Create(limiter.get(), with_bad_model).ok());
}

TEST(AdaptiveRate, RetryAfterPausesTheWholeLimiter) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 100, 10);
  auto controller = Controller(limiter.get());
  const Headers headers = {{"Retry-After", "2"}};
  const absl::Time now = clock.Now();
  controller->Observe(Response(429, &headers, now - absl::Milliseconds(5), now));
  // Nothing for anyone until the pause ends, then one at a time (no burst).
  EXPECT_FALSE(limiter->TryAcquire(1, now + absl::Milliseconds(1999)));
  EXPECT_TRUE(limiter->TryAcquire(1, now + absl::Seconds(2)));
  EXPECT_FALSE(limiter->TryAcquire(1, now + absl::Seconds(2)));
  EXPECT_EQ(controller->State().paused_until, now + absl::Seconds(2));
  EXPECT_EQ(controller->State().throttled, 1);
}

TEST(AdaptiveRate, RetryAfterIsCappedByMaxPause) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 100);
  auto controller = Controller(limiter.get(), {.max_pause = absl::Seconds(30)});
  const Headers headers = {{"Retry-After", "86400"}};
  controller->Observe(Response(429, &headers, clock.Now(), clock.Now()));
  EXPECT_EQ(controller->State().paused_until, clock.Now() + absl::Seconds(30));
}

TEST(AdaptiveRate, HalvesWhenNothingBetterIsKnownAndCutsOncePerEpisode) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 100);
  auto controller = Controller(limiter.get());
  const absl::Time t0 = clock.Now();
  clock.Advance(absl::Milliseconds(10));
  controller->Observe(Response(429, nullptr, t0, clock.Now()));
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 50);
  // More refusals of requests sent before the cut: the same episode.
  for (int i = 0; i < 10; ++i) {
    clock.Advance(absl::Milliseconds(1));
    controller->Observe(Response(429, nullptr, t0 + absl::Milliseconds(i), clock.Now()));
  }
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 50);
  EXPECT_EQ(controller->State().decreases, 1);
  EXPECT_EQ(controller->State().throttled, 11);
  EXPECT_EQ(controller->State().mode, RateMode::kBackoff);
  // A refusal of a request sent after the cut is a new episode; soon after
  // the first, the cut is gentler.
  const absl::Time sent = clock.Now();
  clock.Advance(absl::Milliseconds(5));
  controller->Observe(Response(429, nullptr, sent, clock.Now()));
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 50 * 0.85);
  EXPECT_EQ(controller->State().decreases, 2);
}

TEST(AdaptiveRate, TransportErrorsAndOtherStatusesDoNotCut) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 100);
  auto controller = Controller(limiter.get());
  for (int status : {0, 200, 404, 500, 502}) {
    controller->Observe(Response(status, nullptr, clock.Now(), clock.Now()));
  }
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 100);
  EXPECT_EQ(controller->State().throttled, 0);
}

// A vendor's occasional 503 is an error, not a limit: it costs no pace. A
// 503 with Retry-After is a refusal; so are 503s that are a tenth or more of
// the recent responses (overload).
TEST(AdaptiveRate, OnlyRefusingOrOverloaded503sCut) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 100);
  auto controller = Controller(limiter.get());
  // 2% of 500 responses are 503s without Retry-After.
  for (int i = 0; i < 500; ++i) {
    const absl::Time sent = clock.Now();
    clock.Advance(absl::Milliseconds(10));
    controller->Observe(Response(i % 50 == 49 ? 503 : 200, nullptr, sent, clock.Now()));
  }
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 100);
  EXPECT_EQ(controller->State().throttled, 0);
  EXPECT_EQ(controller->State().decreases, 0);

  // With Retry-After it is a refusal.
  const Headers retry_after = {{"Retry-After", "1"}};
  absl::Time sent = clock.Now();
  clock.Advance(absl::Milliseconds(10));
  controller->Observe(Response(503, &retry_after, sent, clock.Now()));
  EXPECT_EQ(controller->State().throttled, 1);
  EXPECT_EQ(controller->State().decreases, 1);
  const double after_refusal = limiter->rate_per_second();
  EXPECT_LT(after_refusal, 100);

  // An overloaded upstream: a 503 in every three responses.
  auto overloaded_limiter = Limiter(&clock, 100);
  auto overloaded = Controller(overloaded_limiter.get());
  for (int i = 0; i < 60; ++i) {
    sent = clock.Now();
    clock.Advance(absl::Milliseconds(10));
    overloaded->Observe(Response(i % 3 == 2 ? 503 : 200, nullptr, sent, clock.Now()));
  }
  EXPECT_GT(overloaded->State().throttled, 0);
  EXPECT_GE(overloaded->State().decreases, 1);
  EXPECT_LT(overloaded_limiter->rate_per_second(), 100);
}

TEST(AdaptiveRate, NeverBelowTheFloor) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 1);
  auto controller = Controller(limiter.get(), {.min_rate = 0.4});
  for (int i = 0; i < 5; ++i) {
    clock.Advance(absl::Seconds(1));
    controller->Observe(Response(429, nullptr, clock.Now(), clock.Now()));
  }
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 0.4);
}

TEST(AdaptiveRate, ProbesUpwardSlowlyAfterAQuietSpellCappedAtTheConfiguredRate) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 100);
  auto controller = Controller(limiter.get(), {.probe_delay = absl::Seconds(10), .probe_per_second = 0.02});
  controller->Observe(Response(429, nullptr, clock.Now(), clock.Now()));
  ASSERT_DOUBLE_EQ(limiter->rate_per_second(), 50);
  const absl::Time cut = clock.Now();
  auto ok_at = [&](absl::Duration after) {
    clock.AdvanceTo(cut + after);
    controller->Observe(Response(200, nullptr, clock.Now() - absl::Milliseconds(1), clock.Now()));
    return limiter->rate_per_second();
  };
  EXPECT_DOUBLE_EQ(ok_at(absl::Seconds(9)), 50);  // quiet spell
  EXPECT_DOUBLE_EQ(ok_at(absl::Seconds(10)), 50);  // probing starts
  EXPECT_EQ(controller->State().mode, RateMode::kProbing);
  EXPECT_NEAR(ok_at(absl::Seconds(20)), 50 * 1.2, 1e-9);  // +2% of 50 per second
  EXPECT_NEAR(ok_at(absl::Seconds(40)), 50 * 1.6, 1e-9);
  EXPECT_DOUBLE_EQ(ok_at(absl::Seconds(70)), 100);  // capped
  EXPECT_EQ(controller->State().mode, RateMode::kConfigured);
}

// Sends as fast as `limiter` allows until `until`, every request accepted.
void SucceedUntil(FakeClock& clock, RateLimiter& limiter, AdaptiveRateController& controller, absl::Time until) {
  while (true) {
    clock.Advance(limiter.TimeUntilAvailable(1, clock.Now()));
    if (clock.Now() >= until) break;
    ASSERT_TRUE(limiter.TryAcquire(1, clock.Now()));
    const absl::Time sent = clock.Now();
    clock.Advance(absl::Milliseconds(1));
    controller.Observe(Response(200, nullptr, sent, clock.Now()));
  }
  clock.AdvanceTo(until);
}

TEST(AdaptiveRate, AFailedProbeReturnsToTheRateThatHeldAndWaitsLonger) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 100);
  auto controller = Controller(limiter.get(), {.probe_delay = absl::Seconds(10), .probe_per_second = 0.01});
  controller->Observe(Response(429, nullptr, clock.Now(), clock.Now()));
  const absl::Time cut = clock.Now();
  SucceedUntil(clock, *limiter, *controller, cut + absl::Seconds(12));  // probing from 50 since 10 s
  EXPECT_NEAR(limiter->rate_per_second(), 51, 0.02);
  EXPECT_EQ(controller->State().mode, RateMode::kProbing);
  controller->Observe(Response(429, nullptr, clock.Now() - absl::Milliseconds(1), clock.Now()));
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 50);  // where the probe began
  EXPECT_EQ(controller->State().mode, RateMode::kBackoff);
  // The next probe waits twice as long.
  const absl::Time second = clock.Now();
  SucceedUntil(clock, *limiter, *controller, second + absl::Seconds(19));
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 50);
  SucceedUntil(clock, *limiter, *controller, second + absl::Seconds(22));
  EXPECT_NEAR(limiter->rate_per_second(), 51, 0.02);
}

// A stray refusal after a long spell of acceptances (requests that bunched on
// their way) costs a few percent, not half the rate; one soon after it is
// taken seriously.
TEST(AdaptiveRate, AStrayRefusalCutsGentlyAndASecondOneSoonAfterHalves) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 100);
  auto controller = Controller(limiter.get());
  for (int i = 0; i < 200; ++i) {  // 2 s at the limiter's 100/s, all accepted
    clock.Advance(absl::Milliseconds(10));
    controller->Observe(Response(200, nullptr, clock.Now() - absl::Milliseconds(1), clock.Now()));
  }
  controller->Observe(Response(429, nullptr, clock.Now() - absl::Milliseconds(1), clock.Now()));
  EXPECT_NEAR(limiter->rate_per_second(), 100 * 0.97, 0.5);
  EXPECT_EQ(controller->State().mode, RateMode::kBackoff);
  const absl::Time sent = clock.Now();
  clock.Advance(absl::Milliseconds(20));
  controller->Observe(Response(429, nullptr, sent, clock.Now()));
  EXPECT_NEAR(limiter->rate_per_second(), 100 * 0.97 / 2, 0.5);
  EXPECT_EQ(controller->State().decreases, 2);
}

TEST(AdaptiveRate, ARefusalWhileSendingBelowTheLimiterRateCutsFromWhatWasSent) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 100);
  auto controller = Controller(limiter.get());
  // Demand of 20 requests a second, far below the limiter's 100.
  for (int i = 0; i < 40; ++i) {
    clock.Advance(absl::Milliseconds(50));
    controller->Observe(Response(200, nullptr, clock.Now() - absl::Milliseconds(1), clock.Now()));
  }
  controller->Observe(Response(429, nullptr, clock.Now() - absl::Milliseconds(1), clock.Now()));
  EXPECT_NEAR(limiter->rate_per_second(), 20.0 * 41 / 40 / 2, 1);  // half of what was sent
}

TEST(AdaptiveRate, PacesSoTheRemainingBudgetLastsUntilTheReset) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 100);
  auto controller = Controller(limiter.get());
  const Headers headers = {{"RateLimit-Limit", "100"}, {"RateLimit-Remaining", "12"}, {"RateLimit-Reset", "5"}};
  controller->Observe(Response(200, &headers, clock.Now(), clock.Now(), /*in_flight=*/2));
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 2);  // (12 - 2 in flight) over 5 s
  EXPECT_EQ(controller->State().mode, RateMode::kHeaders);
  ASSERT_TRUE(controller->State().last_headers.has_value());
  EXPECT_EQ(controller->State().last_headers->remaining, 12);
  // A generous budget cannot lift the rate above the configured one.
  const Headers plenty = {{"RateLimit-Remaining", "5000"}, {"RateLimit-Reset", "1"}};
  controller->Observe(Response(200, &plenty, clock.Now(), clock.Now()));
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 100);
}

TEST(AdaptiveRate, NothingRemainingPausesUntilTheResetThenThePolicysPace) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 100);
  auto controller = Controller(limiter.get());
  const Headers headers = {{"X-RateLimit-Limit", "60"},
                           {"X-RateLimit-Remaining", "0"},
                           {"X-RateLimit-Reset", std::to_string(absl::ToUnixSeconds(clock.WallNow()) + 7)},
                           {"RateLimit-Policy", "60;w=60"}};
  const absl::Time now = clock.Now();
  controller->Observe(Response(200, &headers, now, now));
  EXPECT_EQ(controller->State().paused_until, now + absl::Seconds(7));
  EXPECT_FALSE(limiter->TryAcquire(1, now + absl::Milliseconds(6999)));
  EXPECT_TRUE(limiter->TryAcquire(1, now + absl::Seconds(7)));
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 1);  // 60 per minute
}

TEST(AdaptiveRate, HeadersCanBeIgnored) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 100);
  auto controller = Controller(limiter.get(), {.use_rate_limit_headers = false});
  const Headers headers = {{"RateLimit-Remaining", "0"}, {"RateLimit-Reset", "30"}, {"Retry-After", "9"}};
  controller->Observe(Response(200, &headers, clock.Now(), clock.Now()));
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 100);
  EXPECT_TRUE(limiter->TryAcquire(1, clock.Now()));
}

TEST(AdaptiveRate, ADeclaredModelSetsThePaceAndMeasuredJitterWidensIt) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 1000);
  AdaptiveRateOptions options;
  options.model = UpstreamModel{NginxLimitReq{10000, 0, false}, absl::Milliseconds(1)};  // 10r/s
  auto controller = Controller(limiter.get(), options);
  EXPECT_NEAR(limiter->rate_per_second(), 0.999 / 0.102, 1e-9);  // 100 ms + 1 ms jitter + 1 ms clock step
  EXPECT_EQ(controller->State().mode, RateMode::kModel);
  // Latencies spread over 0..10 ms: the measured jitter (p99 - min) re-paces.
  for (int i = 0; i < 256; ++i) {
    const absl::Time sent = clock.Now();
    clock.Advance(absl::Milliseconds(1) + absl::Microseconds((i * 37 % 101) * 100));
    controller->Observe(Response(200, nullptr, sent, clock.Now()));
  }
  const absl::Duration jitter = controller->State().jitter;
  EXPECT_GE(jitter, absl::Milliseconds(9));
  EXPECT_LE(jitter, absl::Milliseconds(10));
  EXPECT_NEAR(limiter->rate_per_second(), 0.999 / absl::ToDoubleSeconds(absl::Milliseconds(101) + jitter), 1e-9);
  // An explicit jitter below the declared one does not lower the margin below it.
  controller->SetJitter(absl::ZeroDuration());
  EXPECT_NEAR(limiter->rate_per_second(), 0.999 / 0.102, 1e-9);
}

TEST(AdaptiveRate, AModelSlowerThanTheConfiguredRateIsTheCeiling) {
  FakeClock clock;
  auto limiter = Limiter(&clock, 1);
  AdaptiveRateOptions options;
  options.model = UpstreamModel{LeakyBucketLimit{40, 2}};
  auto controller = Controller(limiter.get(), options);
  EXPECT_DOUBLE_EQ(limiter->rate_per_second(), 1);  // the configured rate is lower
  EXPECT_EQ(limiter->burst(), 38);
  EXPECT_DOUBLE_EQ(controller->State().configured_rate, 1);
}

// A client that sends as fast as its limiter allows, one request at a time,
// to a GCRA server that answers 429 with a whole-second Retry-After (as the
// mock API does), on a fake clock.
class Simulation {
 public:
  Simulation(double configured, double server_rate, int64_t server_burst, AdaptiveRateOptions options = {})
      : client_(Limiter(&clock_, configured, 1)),
        server_(Limiter(&clock_, server_rate, server_burst)),
        controller_(Controller(client_.get(), std::move(options))) {}

  void RunFor(absl::Duration duration) {
    const absl::Time end = clock_.Now() + duration;
    while (clock_.Now() < end) {
      clock_.Advance(client_->TimeUntilAvailable(1, clock_.Now()));
      if (!client_->TryAcquire(1, clock_.Now())) continue;
      const absl::Time sent = clock_.Now();
      clock_.Advance(kLatency / 2);
      Headers headers;
      int status = 200;
      if (server_->TryAcquire(1, clock_.Now())) {
        ++accepted_;
      } else {
        ++refused_;
        status = 429;
        const double wait = absl::ToDoubleSeconds(server_->TimeUntilAvailable(1, clock_.Now()));
        headers.emplace_back("Retry-After", std::to_string(std::max(1, static_cast<int>(std::ceil(wait)))));
      }
      clock_.Advance(kLatency / 2);
      controller_->Observe(Response(status, &headers, sent, clock_.Now()));
    }
  }
  void Reset() { accepted_ = refused_ = 0; }

  static constexpr absl::Duration kLatency = absl::Milliseconds(2);
  FakeClock clock_;
  std::unique_ptr<RateLimiter> client_, server_;
  std::unique_ptr<AdaptiveRateController> controller_;
  int64_t accepted_ = 0, refused_ = 0;
};

TEST(AdaptiveRate, ConfiguredAtTwiceTheRealLimitFewRefusalsNearTheIdealTime) {
  Simulation sim(/*configured=*/200, /*server_rate=*/100, /*server_burst=*/5);
  sim.RunFor(absl::Seconds(30));
  const int64_t all = sim.accepted_ + sim.refused_;
  EXPECT_LE(sim.refused_, all * 2 / 100) << sim.refused_ << " of " << all;
  // The work done in 30 s takes at least accepted/100 s at the real limit.
  EXPECT_GE(static_cast<double>(sim.accepted_), 30 * 100 / 1.15) << sim.accepted_;
  EXPECT_LE(sim.client_->rate_per_second(), 101);
}

TEST(AdaptiveRate, LimitHalvedMidwayIsFollowedWithinSeconds) {
  Simulation sim(200, 100, 5);
  sim.RunFor(absl::Seconds(15));
  ASSERT_TRUE(sim.server_->SetRate(50).ok());
  sim.RunFor(absl::Seconds(3));
  sim.RunFor(absl::Seconds(3));
  EXPECT_LE(sim.client_->rate_per_second(), 50.5);
  sim.Reset();
  sim.RunFor(absl::Seconds(15));
  const int64_t all = sim.accepted_ + sim.refused_;
  EXPECT_LE(sim.refused_, all * 2 / 100) << sim.refused_ << " of " << all;
  EXPECT_GE(static_cast<double>(sim.accepted_), 15 * 50 / 1.15);
}

TEST(AdaptiveRate, RefusalsWithoutRetryAfterSettleNearTheMeasuredLimit) {
  // A server that refuses without saying when: the accepted rate measured
  // while it refuses a share of our requests tells its limit.
  FakeClock clock;
  auto client = Limiter(&clock, 100);
  auto server = Limiter(&clock, 30, 2);
  auto controller = Controller(client.get());
  int64_t accepted = 0, refused = 0;
  const absl::Time start = clock.Now();
  while (clock.Now() < start + absl::Seconds(20)) {
    clock.Advance(client->TimeUntilAvailable(1, clock.Now()));
    ASSERT_TRUE(client->TryAcquire(1, clock.Now()));
    const absl::Time sent = clock.Now();
    clock.Advance(absl::Milliseconds(1));
    const bool ok = server->TryAcquire(1, clock.Now());
    if (clock.Now() > start + absl::Seconds(10)) (ok ? accepted : refused)++;
    controller->Observe(Response(ok ? 200 : 429, nullptr, sent, clock.Now()));
  }
  EXPECT_GE(client->rate_per_second(), 30 * 0.85);
  EXPECT_LE(client->rate_per_second(), 30.5);
  EXPECT_LE(refused, (accepted + refused) * 2 / 100) << refused << " of " << accepted + refused;
}

}  // namespace
}  // namespace fanout
