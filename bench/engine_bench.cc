// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Engine overhead per task with the fake transport and loop: everything the
// engine does for a task (lease, limits, request, retry bookkeeping, listing
// extraction, sink write, subtree accounting) minus the network. Target <= 2 us.
// Baseline in the same run: the fake loop and transport alone.

#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "fanout/engine.h"
#include "fanout/testing/fake_event_loop.h"
#include "fanout/testing/fake_transport.h"

namespace fanout {
namespace {

constexpr int kItems = 2000;

std::string ListingBody() {
  std::string body = "{\"items\":[";
  for (int i = 0; i < kItems; ++i) absl::StrAppend(&body, i ? "," : "", "{\"id\":\"d", i, "\"}");
  return body + "],\"next_cursor\":null}";
}

// A listing of kItems devices, each with a small document: kItems + 1 tasks.
void BM_EngineOverheadPerTask(benchmark::State& state) {
  const std::string listing = ListingBody();
  const std::string leaf = R"({"device":"d1","readings":[1,2,3,4,5,6,7,8]})";
  CrawlPlan plan;
  plan.base_url = "http://api.test";
  plan.levels = {{.name = "devices", .url = "/devices", .items_pointer = "/items", .bind = "device"},
                 {.name = "data", .url = "/devices/{device}/data"}};
  int64_t tasks = 0;
  for (auto _ : state) {
    testing::FakeEventLoop loop;
    testing::FakeTransport transport(&loop, [&](const Request& r) {
      auto reply = testing::FakeTransport::Json(r.url.size() == 23 ? listing : leaf);
      reply.latency = absl::ZeroDuration();
      return reply;
    });
    MemoryFrontier frontier(2);
    auto policy = *RetryPolicy::Create(&loop.clock(), RetryOptions{});
    int64_t records = 0;
    CallbackSink sink([&](const Record&) {
      ++records;
      return absl::OkStatus();
    });
    EngineOptions options;
    options.max_in_flight = 64;
    options.rate = RateLimitSpec::PerSecond(1e8, 1000);
    auto engine = *Engine::Create(plan, EngineParts{&loop, &transport, &frontier, policy.get(), {&sink}}, options);
    engine->Start([](absl::StatusOr<CrawlResult>) {});
    loop.RunUntilIdle();
    if (records != kItems) state.SkipWithError("crawl incomplete");
    tasks += kItems + 1;
  }
  state.SetItemsProcessed(tasks);
  state.counters["ns_per_task"] =
      benchmark::Counter(static_cast<double>(tasks), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_EngineOverheadPerTask)->Unit(benchmark::kMillisecond);

// Baseline: the fake loop and transport alone, same number of requests.
void BM_Baseline_FakeLoopAndTransport(benchmark::State& state) {
  const std::string leaf = R"({"device":"d1","readings":[1,2,3,4,5,6,7,8]})";
  int64_t tasks = 0;
  for (auto _ : state) {
    testing::FakeEventLoop loop;
    testing::FakeTransport transport(&loop, [&](const Request&) {
      auto reply = testing::FakeTransport::Json(leaf);
      reply.latency = absl::ZeroDuration();
      return reply;
    });
    for (int i = 0; i <= kItems; ++i) {
      transport.Send(Request{.url = "http://api.test/devices/d1/data"}, [](absl::StatusOr<Response>) {});
    }
    loop.RunUntilIdle();
    tasks += kItems + 1;
  }
  state.counters["ns_per_task"] =
      benchmark::Counter(static_cast<double>(tasks), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Baseline_FakeLoopAndTransport)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fanout

BENCHMARK_MAIN();
