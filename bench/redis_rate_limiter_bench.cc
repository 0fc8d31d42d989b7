// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// RedisRateLimiter against a redis-server this benchmark starts on loopback
// (skipped, with a message, if redis-server is not installed), with the
// in-process RateLimiter measured in the same run as the baseline.
//
// Counters: reservations_per_s (all threads together) and round_trips_per_
// reservation (Redis scripts run per granted reservation; below 1 with
// leases). The limits are set far above what the machine can reach, so every
// call is granted and the figures are the cost of the mechanism itself.
//
//   build/bench/redis_rate_limiter_bench

#include <cstdio>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "fanout/clock.h"
#include "fanout/rate_limiter.h"
#include "fanout/redis_rate_limiter.h"
#include "support/redis_server.h"

namespace fanout {
namespace {

constexpr RateLimitSpec kUnexhaustible{1e6, 1000000};

testing::RedisServer* g_server = nullptr;
SystemClock g_clock;

// Baseline: the in-process limiter, same call, same thread counts.
std::shared_ptr<RateLimiter> g_local;
void BM_InProcess_TryAcquire(benchmark::State& state) {
  if (state.thread_index() == 0) g_local = std::shared_ptr<RateLimiter>(*RateLimiter::Create(&g_clock, kUnexhaustible));
  int64_t granted = 0;
  for (auto _ : state) granted += g_local->TryAcquire();
  state.counters["reservations_per_s"] = benchmark::Counter(static_cast<double>(granted), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_InProcess_TryAcquire)->Threads(1)->Threads(4)->UseRealTime();

// One RedisRateLimiter (one connection) per thread, as separate workers
// would have; all on one key. Argument: the lease size.
void BM_Redis_TryAcquire(benchmark::State& state) {
  auto client = RedisClient::Connect(g_server->url(), &g_clock);
  if (!client.ok()) {
    state.SkipWithError(std::string(client.status().message()).c_str());
    return;
  }
  auto limiter = RedisRateLimiter::Create(std::shared_ptr<RedisClient>(*std::move(client)), kUnexhaustible,
                                          "bench", state.range(0));
  if (!limiter.ok()) {
    state.SkipWithError(std::string(limiter.status().message()).c_str());
    return;
  }
  int64_t granted = 0;
  for (auto _ : state) granted += (*limiter)->TryAcquire();
  const RedisRateLimiterStats stats = (*limiter)->stats();
  state.counters["reservations_per_s"] = benchmark::Counter(static_cast<double>(granted), benchmark::Counter::kIsRate);
  state.counters["round_trips_per_reservation"] = benchmark::Counter(
      static_cast<double>(stats.round_trips) / static_cast<double>(std::max<int64_t>(1, granted)),
      benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_Redis_TryAcquire)->Arg(1)->Arg(16)->Threads(1)->Threads(4)->UseRealTime();

}  // namespace
}  // namespace fanout

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  auto server = fanout::testing::RedisServer::Start();
  if (!server.ok()) {
    std::fprintf(stderr, "redis_rate_limiter_bench: skipped: %s\n", std::string(server.status().message()).c_str());
    return absl::IsNotFound(server.status()) ? 0 : 1;
  }
  fanout::g_server = server->get();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
