// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/upstream_model.h"

#include <cmath>
#include <cstdint>

#include "absl/time/time.h"
#include "fanout/rate_limiter.h"
#include "fanout/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fanout {
namespace {

using ::testing::HasSubstr;

UpstreamModel Nginx(const char* rate, int64_t burst = 0, bool nodelay = false) {
  auto millis = ParseNginxRate(rate);
  EXPECT_TRUE(millis.ok()) << millis.status();
  return UpstreamModel{NginxLimitReq{millis.value_or(1), burst, nodelay}};
}

// nginx's limit_req decision for one request (ngx_http_limit_req_lookup),
// integer for integer: excess in milli-requests, time in whole milliseconds.
class NginxZone {
 public:
  NginxZone(int64_t rate_millis, int64_t burst) : rate_(rate_millis), burst_(burst * 1000) {}
  bool Request(int64_t now_ms) {
    if (!seen_) {
      seen_ = true;
      last_ = now_ms;
      excess_ = 0;
      return true;
    }
    int64_t ms = now_ms - last_;
    if (ms < -60000) {
      ms = 1;
    } else if (ms < 0) {
      ms = 0;
    }
    int64_t excess = excess_ - rate_ * ms / 1000 + 1000;
    if (excess < 0) excess = 0;
    if (excess > burst_) return false;
    excess_ = excess;
    if (ms != 0) last_ = now_ms;
    return true;
  }

 private:
  const int64_t rate_, burst_;
  bool seen_ = false;
  int64_t last_ = 0, excess_ = 0;
};

TEST(ParseNginxRate, PerSecondAndPerMinuteTruncateLikeNginx) {
  EXPECT_EQ(ParseNginxRate("10r/s").value(), 10000);
  EXPECT_EQ(ParseNginxRate("1r/s").value(), 1000);
  EXPECT_EQ(ParseNginxRate("30r/m").value(), 500);
  EXPECT_EQ(ParseNginxRate("1r/m").value(), 16);  // 1000 / 60, truncated
  EXPECT_EQ(ParseNginxRate("7r/m").value(), 116);
}

TEST(ParseNginxRate, RejectsWhatNginxRejects) {
  for (const char* bad : {"", "r/s", "0r/s", "-1r/s", "10", "10r/h", "10 r/s", "1.5r/s", "10R/S", "x10r/s",
                          "9999999999999r/s"}) {
    auto rate = ParseNginxRate(bad);
    EXPECT_FALSE(rate.ok()) << bad;
    if (!rate.ok()) {
      EXPECT_THAT(std::string(rate.status().message()), HasSubstr("nginx rate"));
    }
  }
}

TEST(NginxInterval, WholeMillisecondsTheExcessNeedsToDrainOneRequest) {
  EXPECT_EQ(NginxInterval(16), absl::Milliseconds(62500));  // 1r/m: 62.5 s, not 60 s
  EXPECT_EQ(NginxInterval(10000), absl::Milliseconds(100));
  EXPECT_EQ(NginxInterval(500), absl::Seconds(2));
  EXPECT_EQ(NginxInterval(116), absl::Milliseconds(8621));  // 7r/m: ceil(8620.69)
  EXPECT_EQ(NginxInterval(3000), absl::Milliseconds(334));  // 3r/s
  EXPECT_EQ(NginxInterval(0), absl::InfiniteDuration());
}

TEST(PacingFor, NginxOnePerMinuteIsOnePer62AndAHalfSeconds) {
  auto spec = PacingFor(Nginx("1r/m"), absl::Milliseconds(1));
  ASSERT_TRUE(spec.ok()) << spec.status();
  const double interval_s = 1 / spec->rate_per_second;
  EXPECT_GE(interval_s, 62.5 + 0.002);  // the interval plus jitter and nginx's clock step
  EXPECT_LE(interval_s, 62.5 * 1.001 + 0.01);
  EXPECT_EQ(spec->burst, 1);
  EXPECT_NEAR(ModelRate(Nginx("1r/m")), 1 / 62.5, 1e-12);
}

TEST(PacingFor, NginxWithoutBurstRunsAtLeast97PercentWithSmallJitter) {
  auto spec = PacingFor(Nginx("10r/s"), absl::Milliseconds(1));
  ASSERT_TRUE(spec.ok());
  EXPECT_GE(spec->rate_per_second, 0.97 * 10);
  EXPECT_LT(spec->rate_per_second, 10);
  EXPECT_EQ(spec->burst, 1);
}

TEST(PacingFor, NginxBurstAbsorbsTheJitter) {
  // With burst 5 the spacing needs no margin beyond min_margin.
  UpstreamModel model = Nginx("10r/s", 5);
  auto spec = PacingFor(model, absl::Milliseconds(20));
  ASSERT_TRUE(spec.ok());
  EXPECT_NEAR(spec->rate_per_second, 10 * (1 - model.min_margin), 1e-9);
  EXPECT_EQ(spec->burst, 1);  // without nodelay nginx would delay a burst: send none
  // With nodelay, the burst is used, less the jitter's share (20 ms + 1 ms < one 100 ms interval).
  model = Nginx("10r/s", 5, /*nodelay=*/true);
  spec = PacingFor(model, absl::Milliseconds(20));
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->burst, 5);
  EXPECT_NEAR(spec->rate_per_second, 10 * (1 - model.min_margin), 1e-9);
}

TEST(PacingFor, LargeJitterWidensTheSpacing) {
  auto spec = PacingFor(Nginx("10r/s"), absl::Milliseconds(9));
  ASSERT_TRUE(spec.ok());
  EXPECT_NEAR(1 / spec->rate_per_second, 0.110 / (1 - 0.001), 1e-9);  // 100 + 9 + 1 ms
}

// Replays the pacing against nginx's own arithmetic: a client sending as fast
// as our limiter allows, with each request delayed by up to `jitter` on the
// way, is never refused, and runs at >= `fraction` of the limit.
void ReplayAgainstNginx(const char* rate, int64_t burst, bool nodelay, absl::Duration jitter, int requests,
                        double fraction = 0.97) {
  SCOPED_TRACE(::testing::Message() << rate << " burst " << burst << (nodelay ? " nodelay" : "") << " jitter "
                                  << absl::FormatDuration(jitter));
  const UpstreamModel model = Nginx(rate, burst, nodelay);
  auto spec = PacingFor(model, jitter);
  ASSERT_TRUE(spec.ok());
  testing::FakeClock clock;
  auto limiter = RateLimiter::Create(&clock, *spec);
  ASSERT_TRUE(limiter.ok());
  NginxZone zone(std::get<NginxLimitReq>(model.limiter).rate_millis, burst);
  const absl::Time start = clock.Now();
  // nginx's ms clock has an arbitrary phase against ours.
  const absl::Duration phase = absl::Microseconds(737);
  int refused = 0;
  for (int i = 0; i < requests; ++i) {
    clock.Advance((*limiter)->TimeUntilAvailable(1, clock.Now()));
    ASSERT_TRUE((*limiter)->TryAcquire(1, clock.Now()));
    // The worst case alternates: late, then on time (early relative to the one before).
    const absl::Duration delay = (i % 2 == 0) ? jitter : absl::ZeroDuration();
    const int64_t arrival_ms = absl::ToInt64Milliseconds(clock.Now() + delay - start + phase);  // floor
    if (!zone.Request(arrival_ms)) ++refused;
  }
  EXPECT_EQ(refused, 0);
  const double achieved = (requests - 1) / absl::ToDoubleSeconds(clock.Now() - start);
  const double limit = ModelRate(model);
  EXPECT_GE(achieved, fraction * limit) << "achieved " << achieved << "/s of " << limit << "/s";
  EXPECT_LE(achieved, limit * 1.0000001 + (burst + 1) / absl::ToDoubleSeconds(clock.Now() - start));
}

TEST(PacingFor, NeverRefusedByNginxAndAtLeast97Percent) {
  ReplayAgainstNginx("10r/s", 0, false, absl::Milliseconds(1), 2000);
  // Without a burst every millisecond of jitter costs 1% at 10r/s.
  ReplayAgainstNginx("10r/s", 0, false, absl::Milliseconds(2), 2000, 0.96);
  ReplayAgainstNginx("10r/s", 0, false, absl::Milliseconds(25), 2000, 0.78);
  ReplayAgainstNginx("10r/s", 3, false, absl::Milliseconds(30), 2000);
  ReplayAgainstNginx("10r/s", 10, true, absl::Milliseconds(30), 2000);
  ReplayAgainstNginx("3r/s", 0, false, absl::Milliseconds(1), 1000);
  ReplayAgainstNginx("100r/s", 20, true, absl::Milliseconds(5), 5000);
  ReplayAgainstNginx("30r/m", 0, false, absl::Milliseconds(1), 200);
  ReplayAgainstNginx("7r/m", 0, false, absl::Milliseconds(1), 100);
  ReplayAgainstNginx("1r/m", 0, false, absl::Milliseconds(1), 30);
}

TEST(PacingFor, FixedWindowNeverExceedsAnyWindow) {
  const UpstreamModel model{FixedWindowLimit{100, absl::Minutes(1)}};
  auto spec = PacingFor(model, absl::Milliseconds(50));
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->burst, 1);
  EXPECT_NEAR(spec->rate_per_second, 99.0 / 60.05 * (1 - model.min_margin), 1e-9);
  EXPECT_GE(spec->rate_per_second, 0.97 * ModelRate(model));
  // Any window of 60 s plus the jitter holds at most 100 grants.
  testing::FakeClock clock;
  auto limiter = RateLimiter::Create(&clock, *spec);
  ASSERT_TRUE(limiter.ok());
  std::vector<absl::Time> grants;
  for (int i = 0; i < 500; ++i) {
    clock.Advance((*limiter)->TimeUntilAvailable(1, clock.Now()));
    ASSERT_TRUE((*limiter)->TryAcquire(1, clock.Now()));
    grants.push_back(clock.Now());
  }
  for (size_t i = 0; i + 100 < grants.size(); ++i) {
    EXPECT_GE(grants[i + 100] - grants[i], absl::Minutes(1) + absl::Milliseconds(50)) << i;
  }
}

TEST(PacingFor, FixedWindowPerHour) {
  const UpstreamModel model{FixedWindowLimit{5000, absl::Hours(1)}};
  auto spec = PacingFor(model, absl::Milliseconds(5));
  ASSERT_TRUE(spec.ok());
  EXPECT_GE(spec->rate_per_second, 0.998 * 5000 / 3600.0);
  EXPECT_LT(spec->rate_per_second, 5000 / 3600.0);
}

TEST(PacingFor, ShopifyLeakyBucket) {
  const UpstreamModel model{LeakyBucketLimit{40, 2}};
  auto spec = PacingFor(model, absl::Milliseconds(10));
  ASSERT_TRUE(spec.ok());
  EXPECT_NEAR(spec->rate_per_second, 2 * (1 - model.min_margin), 1e-9);
  EXPECT_EQ(spec->burst, 38);  // one spare, and one for the jitter's leak
  // Against the bucket itself: never overflows.
  testing::FakeClock clock;
  auto limiter = RateLimiter::Create(&clock, *spec);
  ASSERT_TRUE(limiter.ok());
  double level = 0;
  absl::Time last = clock.Now();
  for (int i = 0; i < 400; ++i) {
    clock.Advance((*limiter)->TimeUntilAvailable(1, clock.Now()));
    ASSERT_TRUE((*limiter)->TryAcquire(1, clock.Now()));
    const absl::Time arrival = clock.Now() + ((i % 2 == 0) ? absl::Milliseconds(10) : absl::ZeroDuration());
    level = std::max(0.0, level - 2 * absl::ToDoubleSeconds(arrival - last)) + 1;
    last = arrival;
    EXPECT_LE(level, 40) << i;
  }
}

TEST(PacingFor, LeakyBucketTooSmallForTheJitterSlowsDown) {
  const UpstreamModel model{LeakyBucketLimit{1, 10}};  // one at a time, every 100 ms
  auto spec = PacingFor(model, absl::Milliseconds(20));
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->burst, 1);
  EXPECT_NEAR(1 / spec->rate_per_second, 0.120 / (1 - model.min_margin), 1e-9);
}

TEST(PacingFor, InvalidModelsNameTheField) {
  const std::pair<UpstreamModel, const char*> bad[] = {
      {UpstreamModel{NginxLimitReq{0, 0, false}}, "nginx rate"},
      {UpstreamModel{NginxLimitReq{1000, -1, false}}, "nginx burst"},
      {UpstreamModel{FixedWindowLimit{1, absl::Minutes(1)}}, "max_requests"},
      {UpstreamModel{FixedWindowLimit{10, absl::ZeroDuration()}}, "window"},
      {UpstreamModel{LeakyBucketLimit{0, 2}}, "capacity"},
      {UpstreamModel{LeakyBucketLimit{40, 0}}, "leak_per_second"},
      {UpstreamModel{LeakyBucketLimit{40, NAN}}, "leak_per_second"},
  };
  for (const auto& [model, field] : bad) {
    auto spec = PacingFor(model, absl::Milliseconds(1));
    ASSERT_FALSE(spec.ok()) << field;
    EXPECT_THAT(std::string(spec.status().message()), HasSubstr(field));
  }
  EXPECT_FALSE(PacingFor(Nginx("1r/s"), -absl::Milliseconds(1)).ok());
  UpstreamModel margin = Nginx("1r/s");
  margin.min_margin = 0.5;
  EXPECT_THAT(std::string(PacingFor(margin, absl::ZeroDuration()).status().message()), HasSubstr("min_margin"));
}

TEST(DescribeModel, NamesTheFigures) {
  EXPECT_EQ(DescribeModel(Nginx("1r/m", 2, true)), "nginx limit_req 16 mr/s burst 2 nodelay");
  EXPECT_EQ(DescribeModel(UpstreamModel{FixedWindowLimit{100, absl::Minutes(1)}}), "fixed window 100 per 1m");
  EXPECT_EQ(DescribeModel(UpstreamModel{LeakyBucketLimit{40, 2}}), "leaky bucket 40 leaking 2/s");
}

}  // namespace
}  // namespace fanout
