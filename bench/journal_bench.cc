// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// The journal (SqliteFrontier) against the in-memory frontier in the same
// run: task state changes per second under group commit (target >= 100,000/s),
// and the time to resume a journal of 1,000,000 tasks (target <= 2 s).

#include <unistd.h>

#include <filesystem>
#include <string>

#include "benchmark/benchmark.h"
#include "fanout/sqlite_frontier.h"
#include "fanout/testing/fake_clock.h"

namespace fanout {
namespace {

namespace fs = std::filesystem;

std::string JournalPath(const std::string& name) {
  const std::string path = (fs::temp_directory_path() / ("fanout_bench_" + name + "_" + std::to_string(getpid()) + ".db")).string();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
  return path;
}

Task Child(uint32_t level, int i) {
  Task t;
  t.level = level;
  t.url = "https://api.example.com/troops/t" + std::to_string(i) + "/warriors";
  t.bindings = {{"troop", "t" + std::to_string(i)}};
  t.path = {{"troops", "t" + std::to_string(i)}};
  return t;
}

// One listing completed with 10 children, then the 10 children completed:
// 21 state changes (1 + 10 inserts + 10 completions) per iteration.
template <typename F>
void Cycle(F& frontier, testing::FakeClock& clock, int64_t* changes) {
  auto listing = frontier.Lease(clock.Now());
  std::vector<Task> children;
  for (int i = 0; i < 10; ++i) children.push_back(Child(1, i));
  (void)frontier.Complete(listing->id, std::move(children));
  for (int i = 0; i < 10; ++i) {
    auto child = frontier.Lease(clock.Now());
    (void)frontier.Complete(child->id, {});
  }
  (void)frontier.Add({Child(0, 0)});  // the next listing
  *changes += 22;
}

void BM_StateChanges_Memory(benchmark::State& state) {
  testing::FakeClock clock;
  MemoryFrontier frontier(2);
  (void)frontier.Add({Child(0, 0)});
  int64_t changes = 0;
  for (auto _ : state) Cycle(frontier, clock, &changes);
  state.counters["changes_per_s"] = benchmark::Counter(static_cast<double>(changes), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_StateChanges_Memory);

void BM_StateChanges_Journal(benchmark::State& state) {
  testing::FakeClock clock;
  const std::string path = JournalPath("changes");
  auto frontier = *SqliteFrontier::Open({.path = path, .plan_fingerprint = "bench", .levels = 2}, &clock);
  (void)frontier->Add({Child(0, 0)});
  int64_t changes = 0;
  for (auto _ : state) {
    Cycle(*frontier, clock, &changes);
    clock.Advance(absl::Microseconds(50));  // group commits every 5 ms of (fake) time
  }
  (void)frontier->Flush();
  state.counters["changes_per_s"] = benchmark::Counter(static_cast<double>(changes), benchmark::Counter::kIsRate);
  frontier.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
}
BENCHMARK(BM_StateChanges_Journal);

// Resume: open a journal holding 1,000,000 tasks (half done, half pending).
void BM_Resume1MTasks(benchmark::State& state) {
  testing::FakeClock clock;
  const std::string path = JournalPath("resume");
  {
    auto frontier = *SqliteFrontier::Open(
        {.path = path, .plan_fingerprint = "bench", .levels = 2, .commit_batch = 100000}, &clock);
    (void)frontier->Add({Child(0, 0)});
    auto root = frontier->Lease(clock.Now());
    std::vector<Task> children;
    for (int i = 0; i < 999999; ++i) children.push_back(Child(1, i));
    (void)frontier->Complete(root->id, std::move(children));
    for (int i = 0; i < 500000; ++i) (void)frontier->Complete(frontier->Lease(clock.Now())->id, {});
    (void)frontier->Flush();
  }
  for (auto _ : state) {
    auto frontier = SqliteFrontier::Open({.path = path, .plan_fingerprint = "bench", .levels = 2}, &clock);
    if (!frontier.ok() || (*frontier)->resumed() != 499999) state.SkipWithError("resume failed");
  }
  state.counters["journal_MiB"] = static_cast<double>(fs::file_size(path)) / (1 << 20);
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
}
BENCHMARK(BM_Resume1MTasks)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace fanout

BENCHMARK_MAIN();
