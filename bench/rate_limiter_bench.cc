// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Micro-benchmarks of the rate-limit core. Absolute figures vary on shared
// machines; each family has a baseline measured in the same run (a bare clock
// read, a bare atomic CAS) so results can be read as ratios.
//
//   make bench            # or: build-bench/bench/rate_limiter_bench

#include <atomic>
#include <cstdint>
#include <memory>

#include "benchmark/benchmark.h"
#include "fanout/clock.h"
#include "fanout/fair_queue.h"
#include "fanout/limits.h"
#include "fanout/rate_limiter.h"
#include "fanout/retry.h"

namespace fanout {
namespace {

// A rate no benchmark can exhaust, so every call takes the grant path.
constexpr RateLimitSpec kUnexhaustible{1e9, int64_t{1} << 40};

std::shared_ptr<RateLimiter> MakeLimiter(const Clock* clock, RateLimitSpec spec) {
  return std::shared_ptr<RateLimiter>(*RateLimiter::Create(clock, spec, "bench"));
}

// Baseline: what one SystemClock read costs on this machine.
void BM_Baseline_ClockRead(benchmark::State& state) {
  SystemClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(clock.Now());
}
BENCHMARK(BM_Baseline_ClockRead);

// Baseline: one uncontended compare-and-swap on a 64-bit word.
void BM_Baseline_AtomicCas(benchmark::State& state) {
  std::atomic<int64_t> word{0};
  for (auto _ : state) {
    int64_t v = word.load(std::memory_order_relaxed);
    while (!word.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) {
    }
  }
  benchmark::DoNotOptimize(word.load());
}
BENCHMARK(BM_Baseline_AtomicCas);

// The full call a user makes: reads the clock, then one CAS.
void BM_TryAcquire_Uncontended(benchmark::State& state) {
  SystemClock clock;
  auto limiter = MakeLimiter(&clock, kUnexhaustible);
  int64_t granted = 0;
  for (auto _ : state) granted += limiter->TryAcquire();
  state.counters["granted"] = static_cast<double>(granted);
}
BENCHMARK(BM_TryAcquire_Uncontended);

// The limiter's own work, with the time already read by the caller (as Limits
// and the engine do: one clock read serves every limiter of a request).
void BM_TryAcquire_Uncontended_GivenTime(benchmark::State& state) {
  SystemClock clock;
  auto limiter = MakeLimiter(&clock, kUnexhaustible);
  absl::Time now = clock.Now();
  int64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter->TryAcquire(1, now));
    if ((++i & 1023) == 0) now = clock.Now();
  }
}
BENCHMARK(BM_TryAcquire_Uncontended_GivenTime);

// Two threads on one limiter with a binding rate: ns/op and grants/s.
std::shared_ptr<RateLimiter> g_shared;
void BM_TryAcquire_Contended(benchmark::State& state) {
  static SystemClock clock;
  if (state.thread_index() == 0) g_shared = MakeLimiter(&clock, {1e7, 1000});
  int64_t granted = 0;
  for (auto _ : state) granted += g_shared->TryAcquire();
  state.counters["grants_per_s"] = benchmark::Counter(static_cast<double>(granted), benchmark::Counter::kIsRate);
  state.counters["granted_fraction"] =
      benchmark::Counter(static_cast<double>(granted) / static_cast<double>(state.iterations()),
                         benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_TryAcquire_Contended)->Threads(1)->Threads(2)->UseRealTime();

// Two threads, unexhaustible rate: the cost of CAS contention alone.
void BM_TryAcquire_ContendedGrantPath(benchmark::State& state) {
  static SystemClock clock;
  if (state.thread_index() == 0) g_shared = MakeLimiter(&clock, kUnexhaustible);
  int64_t granted = 0;
  for (auto _ : state) granted += g_shared->TryAcquire();
  state.counters["grants_per_s"] = benchmark::Counter(static_cast<double>(granted), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TryAcquire_ContendedGrantPath)->Threads(2)->UseRealTime();

// All-or-nothing reservation over three limiters (global, level, per-hour
// window), including the one clock read.
void BM_Limits_ThreeLimiters(benchmark::State& state) {
  SystemClock clock;
  Limits limits(&clock);
  for (int i = 0; i < 3; ++i) limits.Add(MakeLimiter(&clock, kUnexhaustible));
  int64_t granted = 0;
  for (auto _ : state) granted += limits.TryAcquire().granted();
  state.counters["granted"] = static_cast<double>(granted);
}
BENCHMARK(BM_Limits_ThreeLimiters);

// Same, plus a concurrency cap whose slot is returned each time.
void BM_Limits_ThreeLimitersAndConcurrency(benchmark::State& state) {
  SystemClock clock;
  Limits limits(&clock);
  for (int i = 0; i < 3; ++i) limits.Add(MakeLimiter(&clock, kUnexhaustible));
  limits.Add(std::shared_ptr<ConcurrencyLimiter>(*ConcurrencyLimiter::Create(64)));
  for (auto _ : state) {
    Admission admission = limits.TryAcquire();
    benchmark::DoNotOptimize(admission.granted());
  }
}
BENCHMARK(BM_Limits_ThreeLimitersAndConcurrency);

// The tenant scheduler: one push and one pop, 8 tenants.
void BM_FairQueue_PushPop(benchmark::State& state) {
  FairQueue<int64_t> queue;
  for (int i = 0; i < 8; ++i) (void)queue.AddTenant("t" + std::to_string(i));
  for (int i = 0; i < 64; ++i) (void)queue.Push(i % 8, i);
  int64_t i = 0;
  for (auto _ : state) {
    (void)queue.Push(static_cast<size_t>(i % 8), i);
    benchmark::DoNotOptimize(queue.Pop());
    ++i;
  }
}
BENCHMARK(BM_FairQueue_PushPop);

// One retry decision for a 503 (backoff drawn from the RNG, budget consulted).
void BM_RetryPolicy_Decide(benchmark::State& state) {
  SystemClock clock;
  auto budget = *RetryBudget::Create(&clock, RetryBudgetOptions{1.0, 1e9, 1e9});
  RetryOptions options;
  options.max_attempts = 1 << 30;
  options.max_elapsed = absl::InfiniteDuration();
  auto policy = *RetryPolicy::Create(&clock, options, budget.get());
  AttemptState attempt;
  for (auto _ : state) {
    attempt.attempts = 1;
    benchmark::DoNotOptimize(policy->Decide(attempt, Outcome::Response(503)));
  }
}
BENCHMARK(BM_RetryPolicy_Decide);

}  // namespace
}  // namespace fanout

BENCHMARK_MAIN();
