// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// adaptive_bench: adaptive rate control against the mock vendor API (in this
// process, on loopback), figures as ratios to a baseline measured in the same
// run (a client configured at exactly the server's limit, not adaptive):
//
//  1. Client configured at 2x the server's real limit (--rate, burst 5):
//     rejected / all requests (target <= 2%) and completion time / baseline
//     time (target <= 1.15), once learning from 429s alone, once from the
//     server's RateLimit headers.
//  2. The server halves its limit midway through the crawl: seconds until the
//     client's rate is at or below the new limit, and rejected / all
//     requests after the change; without and with headers.
//
//   build-bench/bench/adaptive_bench [--rate=100] [--troops=80]

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "fanout/adaptive_rate.h"
#include "fanout/engine.h"
#include "fanout/sink.h"
#include "mock_api_server.h"

ABSL_FLAG(double, rate, 100, "the server's real limit, requests per second");
ABSL_FLAG(int, burst, 5, "the server's burst");
ABSL_FLAG(int, troops, 80, "troops in the tree (x 4 warriors x 5 groups; 80 makes 2,001 requests)");
ABSL_FLAG(int, max_in_flight, 16, "client requests in flight");

namespace {

using fanout::mock::MockApiOptions;
using fanout::mock::MockApiServer;

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

MockApiOptions Server(bool headers) {
  MockApiOptions api;
  api.troops = absl::GetFlag(FLAGS_troops);
  api.warriors = 4;
  api.groups = 5;
  api.rate = absl::GetFlag(FLAGS_rate);
  api.burst = absl::GetFlag(FLAGS_burst);
  api.rate_limit_headers = headers;
  return api;
}

fanout::RunOptions Client(double rate, bool adaptive) {
  fanout::RunOptions options;
  options.engine.rate = fanout::RateLimitSpec::PerSecond(rate, 1);
  options.engine.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  if (adaptive) options.engine.adaptive = fanout::AdaptiveRateOptions{};
  options.retry.max_retry_after = absl::Seconds(5);
  return options;
}

struct Run {
  double seconds = 0;
  int64_t requests = 0, rejected = 0;
  // For the midway change:
  double follow_seconds = -1;
  int64_t requests_after = 0, rejected_after = 0;
};

// Crawls the tree; with `halve_after` > 0, halves the server's limit that
// many seconds in and watches the client follow.
std::optional<Run> Crawl(const MockApiOptions& api, const fanout::RunOptions& options, double halve_after = 0) {
  auto server = MockApiServer::Start(api);
  if (!server.ok()) {
    std::fprintf(stderr, "mock api: %s\n", std::string(server.status().message()).c_str());
    return std::nullopt;
  }
  fanout::CallbackSink sink([](const fanout::Record&) { return absl::OkStatus(); });
  const auto start = std::chrono::steady_clock::now();
  auto crawl = fanout::BackgroundCrawl::Start(fanout::mock::CrawlPlanFor((*server)->base_url()), {&sink}, nullptr,
                                              options);
  if (!crawl.ok()) {
    std::fprintf(stderr, "crawl: %s\n", std::string(crawl.status().message()).c_str());
    return std::nullopt;
  }
  Run run;
  fanout::mock::MockApiStats before;
  double changed = -1;
  const double new_rate = api.rate / 2;
  while (!(*crawl)->done()) {
    if (halve_after > 0 && changed < 0 && Since(start) >= halve_after) {
      before = (*server)->stats();
      (void)(*server)->SetRate(new_rate, api.burst);
      changed = Since(start);
    }
    if (changed >= 0 && run.follow_seconds < 0) {
      const std::optional<fanout::CrawlStats> stats = (*crawl)->Stats();
      if (stats.has_value() && stats->upstream_rate <= new_rate * 1.02) run.follow_seconds = Since(start) - changed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto result = (*crawl)->Wait();
  run.seconds = Since(start);
  if (!result.ok()) {
    std::fprintf(stderr, "crawl: %s\n", std::string(result.status().message()).c_str());
    return std::nullopt;
  }
  const fanout::mock::MockApiStats stats = (*server)->stats();
  run.requests = stats.requests;
  run.rejected = stats.rejected;
  run.requests_after = stats.requests - before.requests;
  run.rejected_after = stats.rejected - before.rejected;
  return run;
}

double Percent(int64_t part, int64_t all) { return all > 0 ? 100.0 * static_cast<double>(part) / all : 0; }

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const double rate = absl::GetFlag(FLAGS_rate);
  std::printf("server limit %.0f/s (burst %d), tree of %d troops\n", rate, absl::GetFlag(FLAGS_burst),
              absl::GetFlag(FLAGS_troops));

  const std::optional<Run> baseline = Crawl(Server(false), Client(rate, /*adaptive=*/false));
  if (!baseline) return 1;
  std::printf("baseline: client at the limit, not adaptive: %.2f s, %lld requests, %lld rejected\n",
              baseline->seconds, static_cast<long long>(baseline->requests),
              static_cast<long long>(baseline->rejected));

  bool pass = true;
  for (const bool headers : {false, true}) {
    const std::optional<Run> run = Crawl(Server(headers), Client(2 * rate, /*adaptive=*/true));
    if (!run) return 1;
    const double rejected = Percent(run->rejected, run->requests);
    const double ratio = run->seconds / baseline->seconds;
    std::printf("configured 2x the limit, %s: rejected %lld of %lld (%.2f%%, target <= 2%%), "
                "time %.2f s = %.3f x baseline (target <= 1.15)\n",
                headers ? "RateLimit headers" : "429s only", static_cast<long long>(run->rejected),
                static_cast<long long>(run->requests), rejected, run->seconds, ratio);
    pass = pass && rejected <= 2 && ratio <= 1.15;
  }
  for (const bool headers : {false, true}) {
    const double halve_after = baseline->seconds / 3;
    const std::optional<Run> run = Crawl(Server(headers), Client(2 * rate, /*adaptive=*/true), halve_after);
    if (!run) return 1;
    std::printf("limit halved after %.1f s, %s: client at or below the new limit %.2f s later; "
                "rejected after the change %lld of %lld (%.2f%%)\n",
                halve_after, headers ? "RateLimit headers" : "429s only", run->follow_seconds,
                static_cast<long long>(run->rejected_after), static_cast<long long>(run->requests_after),
                Percent(run->rejected_after, run->requests_after));
    pass = pass && run->follow_seconds >= 0 && run->follow_seconds <= 5;
  }
  std::printf("%s\n", pass ? "all targets met" : "TARGET MISSED");
  return 0;
}
