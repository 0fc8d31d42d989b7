// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// End to end, adaptive rate control: the real engine and transport crawl the
// mock vendor API on loopback while the mock enforces a limit lower than the
// one configured, or changes it midway. Bounds are on counts, with generous
// time bounds (bench/adaptive_bench.cc measures the figures).

#include <chrono>
#include <string>
#include <thread>

#include "fanout/adaptive_rate.h"
#include "fanout/engine.h"
#include "fanout/sink.h"
#include "gtest/gtest.h"
#include "mock_api_server.h"

namespace fanout {
namespace {

mock::MockApiOptions Tree(int troops, int warriors, int groups, double rate, int burst) {
  mock::MockApiOptions api;
  api.troops = troops;
  api.warriors = warriors;
  api.groups = groups;
  api.rate = rate;
  api.burst = burst;
  return api;
}

RunOptions Adaptive(double configured_rate) {
  RunOptions options;
  options.engine.rate = RateLimitSpec::PerSecond(configured_rate, 1);
  options.engine.max_in_flight = 16;
  options.engine.adaptive = AdaptiveRateOptions{};
  options.retry.max_retry_after = absl::Seconds(5);
  options.request_timeout = absl::Seconds(10);
  return options;
}

struct Figures {
  int64_t records = 0;
  int64_t requests = 0;  // as the server counted them
  int64_t rejected = 0;
  double seconds = 0;
  double ideal = 0;  // the accepted requests at the real limit, less its start-up burst
};

Figures Crawl(const mock::MockApiOptions& api, const RunOptions& options) {
  Figures f;
  auto server = mock::MockApiServer::Start(api);
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return f;
  CallbackSink sink([](const Record&) { return absl::OkStatus(); });
  const auto start = std::chrono::steady_clock::now();
  auto result = RunCrawl(mock::CrawlPlanFor((*server)->base_url()), {&sink}, nullptr, options);
  f.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return f;
  EXPECT_EQ(result->state, CrawlResult::State::kDone);
  f.records = result->stats.records;
  const mock::MockApiStats stats = (*server)->stats();
  f.requests = stats.requests;
  f.rejected = stats.rejected;
  f.ideal = static_cast<double>(stats.requests - stats.rejected - api.burst) / api.rate;
  EXPECT_EQ(result->stats.throttled, stats.rejected) << "every 429 the server sent was seen";
  std::printf("%lld requests, %lld rejected (%.2f%%), %.2f s, ideal %.2f s (x%.3f)\n",
              static_cast<long long>(f.requests), static_cast<long long>(f.rejected),
              100.0 * static_cast<double>(f.rejected) / static_cast<double>(f.requests), f.seconds, f.ideal,
              f.seconds / f.ideal);
  return f;
}

// The configured rate is twice what the server allows and nothing tells the
// client so but its 429s (with a whole-second Retry-After): after the first
// refusal it settles at the server's rate.
TEST(AdaptiveEndToEnd, TwiceTheRealLimitWithoutHeaders) {
  const mock::MockApiOptions api = Tree(30, 4, 5, /*rate=*/100, /*burst=*/5);  // 600 leaves, 751 requests
  const Figures f = Crawl(api, Adaptive(200));
  EXPECT_EQ(f.records, 600);
  EXPECT_LE(f.rejected * 50, f.requests) << "at most 2% rejected";
  EXPECT_LE(f.seconds, 1.5 * f.ideal + 1);
}

// The same, with the server's RateLimit headers: paced from the first response.
TEST(AdaptiveEndToEnd, TwiceTheRealLimitWithRateLimitHeaders) {
  mock::MockApiOptions api = Tree(30, 4, 5, 100, 5);
  api.rate_limit_headers = true;
  const Figures f = Crawl(api, Adaptive(200));
  EXPECT_EQ(f.records, 600);
  EXPECT_LE(f.rejected * 50, f.requests);
  EXPECT_LE(f.seconds, 1.3 * f.ideal + 1);
}

TEST(AdaptiveEndToEnd, TwiceTheRealLimitWithXRateLimitHeaders) {
  mock::MockApiOptions api = Tree(20, 4, 5, 100, 5);
  api.x_rate_limit_headers = true;
  const Figures f = Crawl(api, Adaptive(200));
  EXPECT_EQ(f.records, 400);
  EXPECT_LE(f.rejected * 50, f.requests);
}

// A declared model of the server's limiter (a leaky bucket of 5 leaking
// 40/s is exactly the mock's GCRA at 40/s, burst 5): never refused.
TEST(AdaptiveEndToEnd, DeclaredModelIsNeverRefused) {
  const mock::MockApiOptions api = Tree(10, 4, 5, 40, 5);  // 200 leaves, 251 requests
  RunOptions options = Adaptive(1000);
  options.engine.rate.reset();  // the model sets the pace
  options.engine.adaptive->model = UpstreamModel{LeakyBucketLimit{5, 40}};
  const Figures f = Crawl(api, options);
  EXPECT_EQ(f.records, 200);
  EXPECT_EQ(f.rejected, 0);
  EXPECT_LE(f.seconds, f.ideal / 0.9 + 0.5);
}

// The server halves its limit midway: the client follows within seconds,
// from its 429s alone.
void HalvedMidway(bool headers) {
  mock::MockApiOptions api = Tree(30, 4, 5, 100, 5);  // 600 leaves, 751 requests
  api.rate_limit_headers = headers;
  auto server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(server.ok()) << server.status();
  CallbackSink sink([](const Record&) { return absl::OkStatus(); });
  auto crawl = BackgroundCrawl::Start(mock::CrawlPlanFor((*server)->base_url()), {&sink}, nullptr, Adaptive(200));
  ASSERT_TRUE(crawl.ok()) << crawl.status();
  const auto start = std::chrono::steady_clock::now();
  const auto since = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  while (since() < 4 && !(*crawl)->done()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_FALSE((*crawl)->done()) << "the crawl should outlast the change";
  const mock::MockApiStats before = (*server)->stats();
  ASSERT_TRUE((*server)->SetRate(50, 5).ok());
  const double changed = since();
  double followed = -1;
  while (!(*crawl)->done()) {
    const std::optional<CrawlStats> stats = (*crawl)->Stats();
    if (followed < 0 && stats.has_value() && stats->upstream_rate <= 50 * 1.02) followed = since() - changed;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto result = (*crawl)->Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stats.records, 600);
  std::printf("followed the halved limit after %.2f s; final rate %.1f/s\n", followed, result->stats.upstream_rate);
  EXPECT_GE(followed, 0) << "the client never went down to the new limit";
  EXPECT_LE(followed, 5);
  EXPECT_LE(result->stats.upstream_rate, 50 * 1.05);
  const mock::MockApiStats after = (*server)->stats();
  const int64_t rejected = after.rejected - before.rejected, requests = after.requests - before.requests;
  EXPECT_LE(rejected * 50, requests) << rejected << " of " << requests << " rejected after the change";
}

TEST(AdaptiveEndToEnd, LimitHalvedMidwayIsFollowedWithoutHeaders) { HalvedMidway(false); }
TEST(AdaptiveEndToEnd, LimitHalvedMidwayIsFollowedWithHeaders) { HalvedMidway(true); }

}  // namespace
}  // namespace fanout
