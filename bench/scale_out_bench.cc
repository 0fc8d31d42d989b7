// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// scale_out_bench: `fanout crawl --redis` workers (separate processes)
// sharing one crawl through a redis-server this benchmark starts, against the
// mock API served in this process. Figures are ratios within the run:
//
//  1. Shared-limit accuracy: --workers workers (default 4) with a shared
//     limit equal to the mock's strict one; aggregate request rate / limit
//     (target in [0.97, 1.0]) and the mock's 429s (target 0).
//  2. Unlimited: the --troops tree (default 400 x 12 x 5 = 24,000 documents)
//     by 1 worker and by 2 workers: throughput ratio 2 / 1 (client, mock and
//     Redis share this machine's cores), and Redis round trips per task
//     (target <= 2, amortised by batched leases and outcomes).
//
//   build-bench/bench/scale_out_bench --fanout=build-bench/tools/fanout/fanout

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "mock_api_server.h"
#include "support/process.h"
#include "support/redis_server.h"

ABSL_FLAG(std::string, fanout, FANOUT_CLI, "path to the fanout command");
ABSL_FLAG(int, troops, 400, "troops in the unlimited tree (x 12 warriors x 5 groups)");
ABSL_FLAG(double, rate, 500, "the shared limit, and the mock's own, in the limited run");
ABSL_FLAG(int, rate_troops, 100, "troops in the limited tree");
ABSL_FLAG(int, workers, 4, "workers in the limited run");
ABSL_FLAG(int, concurrency, 64, "requests in flight per worker");

namespace {

using fanout::testing::ReadFile;
using fanout::testing::Spawn;
using fanout::testing::WaitFor;

std::string Spec(const std::string& base_url, double rate, int concurrency) {
  const std::string pagination = R"({"next_pointer": "/next_cursor", "cursor_param": "cursor"})";
  return absl::StrCat(R"({"base_url": ")", base_url, R"(",
  "limits": {)", rate > 0 ? absl::StrCat(R"("rate": )", rate, R"(, "burst": 2, )") : "",
                      R"("concurrency": )", concurrency, R"(},
  "levels": [
    {"name": "troops", "url": "/troops", "items": "/items", "bind": "troop", "pagination": )", pagination, R"(},
    {"name": "warriors", "url": "/troops/{troop}/warriors", "items": "/items", "bind": "warrior", "pagination": )",
                      pagination, R"(},
    {"name": "groups", "url": "/troops/{troop}/warriors/{warrior}/groups", "items": "/items", "bind": "group", "pagination": )",
                      pagination, R"(},
    {"name": "data", "url": "/troops/{troop}/warriors/{warrior}/groups/{group}/data"}
  ]})");
}

// A number field of a summary JSON ("" -> 0).
double Field(const std::string& json, const std::string& name) {
  std::smatch m;
  if (std::regex_search(json, m, std::regex("\"" + name + "\":([0-9.]+)"))) return std::stod(m[1]);
  return 0;
}

struct Run {
  double seconds = 0;
  int64_t requests = 0, rejected = 0, tasks = 0, round_trips = 0;
  bool ok = true;
};

// `workers` processes crawl the mock's tree as crawl `id`; timed from the
// first spawn to the last exit.
Run Crawl(const fanout::testing::RedisServer& redis, const fanout::mock::MockApiOptions& api, double client_rate,
          int workers, const std::string& id, const std::string& dir) {
  Run run;
  auto server = fanout::mock::MockApiServer::Start(api);
  if (!server.ok()) {
    std::fprintf(stderr, "mock API: %s\n", std::string(server.status().message()).c_str());
    run.ok = false;
    return run;
  }
  std::ofstream(dir + "/spec.json") << Spec((*server)->base_url(), client_rate, absl::GetFlag(FLAGS_concurrency));
  const absl::Time start = absl::Now();
  std::vector<pid_t> pids;
  for (int i = 0; i < workers; ++i) {
    pids.push_back(Spawn({absl::GetFlag(FLAGS_fanout), "crawl", dir + "/spec.json", "--redis", redis.url(),
                          "--crawl-id", id, "--quiet", "--summary-json", absl::StrCat(dir, "/", id, ".", i, ".json")},
                         dir + "/out", dir + "/err"));
  }
  for (pid_t pid : pids) run.ok &= WaitFor(pid, std::chrono::seconds(600)) == 0;
  run.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const fanout::mock::MockApiStats stats = (*server)->stats();
  run.requests = stats.requests;
  run.rejected = stats.rejected;
  for (int i = 0; i < workers; ++i) {
    const std::string summary = ReadFile(absl::StrCat(dir, "/", id, ".", i, ".json"));
    run.round_trips += static_cast<int64_t>(Field(summary, "frontier_round_trips"));
    run.tasks = std::max<int64_t>(run.tasks, static_cast<int64_t>(Field(summary, "discovered")));
  }
  if (!run.ok) std::fprintf(stderr, "a worker failed:\n%s\n", ReadFile(dir + "/err").c_str());
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto redis = fanout::testing::RedisServer::Start();
  if (!redis.ok()) {
    std::fprintf(stderr, "redis-server: %s\n", std::string(redis.status().message()).c_str());
    return 1;
  }
  char dir_template[] = "/tmp/fanout-scale-out-XXXXXX";
  const std::string dir = mkdtemp(dir_template);

  fanout::mock::MockApiOptions limited;
  limited.troops = absl::GetFlag(FLAGS_rate_troops);
  limited.rate = absl::GetFlag(FLAGS_rate);
  limited.burst = 10;
  const int workers = absl::GetFlag(FLAGS_workers);
  const Run shared = Crawl(**redis, limited, limited.rate, workers, "limited", dir);
  const double achieved = static_cast<double>(shared.requests) / shared.seconds;
  std::printf("shared limit: %d workers, %lld requests in %.2f s: %.1f/s of %.0f/s = %.3f of the limit "
              "(target [0.97, 1.0]); 429s: %lld (target 0)\n",
              workers, static_cast<long long>(shared.requests), shared.seconds, achieved, limited.rate,
              achieved / limited.rate, static_cast<long long>(shared.rejected));

  fanout::mock::MockApiOptions unlimited;
  unlimited.troops = absl::GetFlag(FLAGS_troops);
  const Run one = Crawl(**redis, unlimited, 0, 1, "unlimited-1", dir);
  const Run two = Crawl(**redis, unlimited, 0, 2, "unlimited-2", dir);
  const double rate1 = static_cast<double>(one.requests) / one.seconds;
  const double rate2 = static_cast<double>(two.requests) / two.seconds;
  std::printf("unlimited: 1 worker %.0f requests/s, 2 workers %.0f requests/s: ratio %.2f (2 cores shared with "
              "the mock and Redis)\n",
              rate1, rate2, rate2 / rate1);
  std::printf("redis round trips per task: 1 worker %.3f, 2 workers %.3f (target <= 2)\n",
              static_cast<double>(one.round_trips) / std::max<int64_t>(1, one.tasks),
              static_cast<double>(two.round_trips) / std::max<int64_t>(1, two.tasks));
  return shared.ok && one.ok && two.ok ? 0 : 1;
}
