// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// crawl_monitoring_api: the whole pipeline in one program, the one to copy to
// start. It crawls a monitoring vendor's API
//
//   /troops                                         (listing, cursor pages)
//   /troops/{troop}/warriors                        (listing)
//   /troops/{troop}/warriors/{warrior}/groups       (listing)
//   /troops/{troop}/warriors/{warrior}/groups/{group}/data   (the documents)
//
// at the vendor's published rate, retrying what fails, and writes every
// document to a file tree (out/troops/t1/warriors/w2/groups/g3/data.json) plus
// the failures to a dead-letter file.
//
//   crawl_monitoring_api --base_url=http://127.0.0.1:8080 --rate=500 --out=out

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "fanout/engine.h"
#include "fanout/sink.h"

ABSL_FLAG(std::string, base_url, "http://127.0.0.1:8080", "the API's base URL");
ABSL_FLAG(double, rate, 500, "the vendor's rate limit, requests per second (0 = none)");
ABSL_FLAG(int, burst, 5, "requests that may go at once within the rate");
ABSL_FLAG(int, max_in_flight, 64, "requests in flight at most");
ABSL_FLAG(std::string, out, "out", "directory for the documents");
ABSL_FLAG(std::string, dead_letters, "dead_letters.jsonl", "file for tasks that could not be done");
ABSL_FLAG(std::string, token, "", "bearer token for the API (or set VENDOR_TOKEN)");
ABSL_FLAG(std::string, journal, "", "journal file: makes the crawl resumable (run again to resume)");
ABSL_FLAG(std::string, jsonl, "", "also write every document as a line of this JSON lines file");
ABSL_FLAG(absl::Duration, max_duration, absl::InfiniteDuration(), "stop after this long; exit 3 if work remains");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);

  // 1. What to crawl: four levels, ids bound on the way down.
  fanout::CrawlPlan plan;
  plan.base_url = absl::GetFlag(FLAGS_base_url);
  const fanout::Pagination cursor = fanout::Pagination::NextCursor("/next_cursor", "cursor");
  plan.levels = {
      {.name = "troops", .url = "/troops", .items_pointer = "/items", .bind = "troop", .pagination = cursor},
      {.name = "warriors", .url = "/troops/{troop}/warriors", .items_pointer = "/items", .bind = "warrior",
       .pagination = cursor},
      {.name = "groups", .url = "/troops/{troop}/warriors/{warrior}/groups", .items_pointer = "/items",
       .bind = "group", .pagination = cursor},
      {.name = "data", .url = "/troops/{troop}/warriors/{warrior}/groups/{group}/data"},
  };

  // 2. Where documents and failures go.
  auto tree = fanout::FileTreeSink::Open({.root = absl::GetFlag(FLAGS_out), .fsync = false});
  auto dead = fanout::DeadLetterLog::Open(absl::GetFlag(FLAGS_dead_letters));
  if (!tree.ok() || !dead.ok()) {
    std::fprintf(stderr, "crawl_monitoring_api: %s\n",
                 std::string((tree.ok() ? dead.status() : tree.status()).message()).c_str());
    return 2;
  }
  std::vector<fanout::Sink*> sinks = {tree->get()};
  std::unique_ptr<fanout::JsonLinesSink> lines;
  if (!absl::GetFlag(FLAGS_jsonl).empty()) {
    auto opened = fanout::JsonLinesSink::Open(absl::GetFlag(FLAGS_jsonl));
    if (!opened.ok()) {
      std::fprintf(stderr, "crawl_monitoring_api: %s\n", std::string(opened.status().message()).c_str());
      return 2;
    }
    lines = *std::move(opened);
    sinks.push_back(lines.get());
  }

  // 3. How fast, and what to do when things fail.
  fanout::RunOptions options;
  if (absl::GetFlag(FLAGS_rate) > 0) {
    options.engine.rate = fanout::RateLimitSpec::PerSecond(absl::GetFlag(FLAGS_rate), absl::GetFlag(FLAGS_burst));
  }
  options.engine.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  options.engine.success_markers = tree->get();  // _SUCCESS under each finished prefix
  std::string token = absl::GetFlag(FLAGS_token);
  if (const char* env = std::getenv("VENDOR_TOKEN"); token.empty() && env != nullptr) token = env;
  if (!token.empty()) options.engine.headers.emplace_back("Authorization", "Bearer " + token);
  options.journal = absl::GetFlag(FLAGS_journal);
  options.engine.max_duration = absl::GetFlag(FLAGS_max_duration);
  options.retry.max_attempts = 6;
  options.retry.base_delay = absl::Milliseconds(200);

  // 4. Watch it work.
  const bool tty = isatty(fileno(stderr));
  options.progress_interval = absl::Milliseconds(tty ? 250 : 2000);
  options.progress = [tty](const fanout::CrawlStats& s) {
    int64_t requests = 0, retries = 0, throttled = 0;
    for (const auto& level : s.levels) {
      requests += level.requests;
      retries += level.retries;
      throttled += level.throttled;
    }
    const double seconds = std::max(1e-9, absl::ToDoubleSeconds(s.elapsed));
    std::fprintf(stderr, "%sdone %lld/%lld  documents %lld  %.0f req/s  retries %lld  429s %lld  dead %lld%s",
                 tty ? "\r" : "", static_cast<long long>(s.succeeded + s.dead),
                 static_cast<long long>(s.discovered), static_cast<long long>(s.records),
                 static_cast<double>(requests) / seconds, static_cast<long long>(retries),
                 static_cast<long long>(throttled), static_cast<long long>(s.dead), tty ? "   " : "\n");
  };

  // 5. Run it.
  auto result = fanout::RunCrawl(plan, sinks, dead->get(), options);
  if (tty) std::fprintf(stderr, "\n");
  if (!result.ok()) {
    std::fprintf(stderr, "crawl_monitoring_api: %s\n", std::string(result.status().message()).c_str());
    return 1;
  }
  const fanout::CrawlStats& s = result->stats;
  int64_t requests = 0, throttled = 0, retries = 0;
  for (const auto& level : s.levels) {
    requests += level.requests + level.extra_requests;  // everything the vendor saw
    throttled += level.throttled;
    retries += level.retries;
    std::printf("  %-9s requests %6lld  ok %6lld  dead %4lld  retries %4lld  p50 %s  p99 %s\n", level.name.c_str(),
                static_cast<long long>(level.requests), static_cast<long long>(level.succeeded),
                static_cast<long long>(level.dead), static_cast<long long>(level.retries),
                absl::FormatDuration(level.latency_p50).c_str(), absl::FormatDuration(level.latency_p99).c_str());
  }
  const double seconds = absl::ToDoubleSeconds(s.elapsed);
  const double achieved = static_cast<double>(requests) / seconds;
  std::printf("summary: %lld documents written to %s/, %lld dead-lettered (%s), %lld retries, %lld 429s\n",
              static_cast<long long>(s.records), absl::GetFlag(FLAGS_out).c_str(), static_cast<long long>(s.dead),
              absl::GetFlag(FLAGS_dead_letters).c_str(), static_cast<long long>(retries),
              static_cast<long long>(throttled));
  std::printf("         %lld requests in %.2f s = %.1f req/s", static_cast<long long>(requests), seconds, achieved);
  if (options.engine.rate) std::printf(" = %.1f%% of the %.0f/s limit", 100 * achieved / options.engine.rate->rate_per_second, options.engine.rate->rate_per_second);
  std::printf("\n         accounting: discovered %lld = succeeded %lld + dead %lld\n",
              static_cast<long long>(s.discovered), static_cast<long long>(s.succeeded),
              static_cast<long long>(s.dead));
  if (result->state == fanout::CrawlResult::State::kStopped) {
    std::printf("         stopped with %lld tasks left: run again with the same --journal to go on\n",
                static_cast<long long>(s.pending));
    return 3;
  }
  return 0;
}
