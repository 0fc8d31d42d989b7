// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// `fanout mock-api` (also the fanout-mock-api program): the mock vendor API
// as a process, for the demo, examples and benchmarks. Prints
// "listening on http://HOST:PORT" as its first stdout line (flushed), serves
// until SIGINT or SIGTERM, then prints the final /_stats JSON on stdout and
// exits 0. Exits 2 on bad options or if it cannot listen.

#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "args.h"
#include "commands.h"
#include "mock_api_server.h"

namespace fanout::cli {

int MockApiCommand(const std::vector<std::string>& args, std::string_view program) {
  mock::MockApiOptions o;
  std::string pagination = "cursor";
  int port = 0;
  Options options("mock-api", "mock-api [options]",
                  "Serves a mock hierarchical vendor API (troops -> warriors -> groups -> data) on loopback, with\n"
                  "its own rate limit and injected faults, for fanout's demo, tests and benchmarks. Prints\n"
                  "\"listening on http://HOST:PORT\" first; on SIGINT or SIGTERM prints its /_stats JSON and exits.\n"
                  "GET /_stats shows what it saw; /_control?rate=R[&burst=B] changes its limit while it serves.");
  options.Int("troops", "troops in the tree", &o.troops, 1, 50'000'000);
  options.Int("warriors", "warriors per troop", &o.warriors, 1, 50'000'000);
  options.Int("groups", "groups per warrior (leaves = troops x warriors x groups)", &o.groups, 1, 50'000'000);
  options.Int("page-size", "items per listing page", &o.page_size, 1, 1000);
  options.String("pagination", "STYLE", "listing pagination: cursor, next_url, link, page or offset", &pagination);
  options.Double("rate", "the server's rate limit over all API requests, requests/s (0 = unlimited)", &o.rate, 0, 1e9);
  options.Int("burst", "burst of the rate limits", &o.burst, 1, 1'000'000);
  options.Bool("rate-limit-headers", "describe the global limit in RateLimit-Limit/Remaining/Reset and RateLimit-Policy",
               &o.rate_limit_headers);
  options.Bool("x-rate-limit-headers", "describe it in X-RateLimit-Limit/Remaining/Reset", &o.x_rate_limit_headers);
  options.Double("level-rate", "an additional rate limit per level, requests/s (0 = none)", &o.level_rate, 0, 1e9);
  options.Double("error-rate", "fraction of requests answered 500 or 503", &o.error_rate, 0, 1);
  options.Double("reset-rate", "fraction of requests whose connection is reset without a response", &o.reset_rate, 0,
                 1);
  options.Double("slow-rate", "fraction of requests delayed by --slow-ms", &o.slow_rate, 0, 1);
  options.Int("slow-ms", "delay of slow responses, ms", &o.slow_ms, 0, 600'000);
  options.Double("truncate-rate", "fraction of requests answered with a truncated JSON body", &o.truncate_rate, 0, 1);
  options.Int("poison-leaf-permille", "per mille of leaves that always answer 500", &o.poison_leaf_permille, 0, 1000);
  options.Int("poison-listing-permille", "per mille of groups listings that always answer malformed JSON",
              &o.poison_listing_permille, 0, 1000);
  options.Bool("hostile-ids", "give troops t2..t7 ids that need percent-encoding", &o.hostile_ids);
  int64_t seed = static_cast<int64_t>(o.seed);
  options.Int("seed", "seed of fault and poison decisions", &seed, 0, INT64_MAX);
  options.String("host", "ADDR", "address to listen on", &o.host);
  options.Int("port", "port to listen on (0 = a free one)", &port, 0, 65535);
  options.Int("threads", "io threads", &o.threads, 1, 64);
  options.Int("idle-timeout-ms", "close connections idle for this long, ms", &o.idle_timeout_ms, 1, 86'400'000);
  options.String("request-log-path", "PATH", "append \"METHOD target status\" per API request to PATH",
                 &o.request_log_path);
  std::vector<std::string> positional;
  const std::string name(program);
  if (auto code = options.ParseOrExit(args, &positional, 0, 0, name)) return *code;
  auto style = mock::ParsePagination(pagination);
  if (!style.ok()) {
    std::fprintf(stderr, "%s: --%s\n", name.c_str(), std::string(style.status().message()).c_str());
    return kExitUsage;
  }
  o.pagination = *style;
  o.seed = static_cast<uint64_t>(seed);
  o.port = static_cast<uint16_t>(port);

  // Block the stop signals before any thread starts, so that every io thread
  // inherits the mask and only sigwait below receives them. Restore their
  // default disposition first: a shell starts background jobs with SIGINT
  // ignored, and an ignored signal is discarded rather than left pending.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = mock::MockApiServer::Start(o);
  if (!server.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), std::string(server.status().message()).c_str());
    return kExitUsage;
  }
  std::printf("listening on %s\n", (*server)->base_url().c_str());
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  (*server)->Stop();
  std::printf("%s\n", (*server)->stats().ToJson().c_str());
  std::fflush(stdout);
  return kExitDone;
}

}  // namespace fanout::cli
