// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// fanout-mock-api: the mock vendor API as a process, for the demo, examples
// and benchmarks. Prints "listening on http://HOST:PORT" as its first stdout
// line (flushed), serves until SIGINT or SIGTERM, then prints the final
// /_stats JSON on stdout and exits 0. Exits 2 on bad flags or if it cannot
// listen.

#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "mock_api_server.h"

ABSL_FLAG(int, troops, 400, "troops in the tree");
ABSL_FLAG(int, warriors, 12, "warriors per troop");
ABSL_FLAG(int, groups, 5, "groups per warrior (leaves = troops x warriors x groups)");
ABSL_FLAG(int, page_size, 100, "items per listing page, 1..1000");
ABSL_FLAG(std::string, pagination, "cursor", "listing pagination: cursor, next_url, link, page or offset");
ABSL_FLAG(double, rate, 0, "server rate limit over all API requests, requests/s; 0 = unlimited");
ABSL_FLAG(int, burst, 1, "burst of the rate limits");
ABSL_FLAG(double, level_rate, 0, "additional per-level rate limit, requests/s; 0 = none");
ABSL_FLAG(double, error_rate, 0, "fraction of requests answered 500 or 503");
ABSL_FLAG(double, reset_rate, 0, "fraction of requests whose connection is reset without a response");
ABSL_FLAG(double, slow_rate, 0, "fraction of requests delayed by --slow_ms");
ABSL_FLAG(int, slow_ms, 200, "delay of slow responses, ms");
ABSL_FLAG(double, truncate_rate, 0, "fraction of requests answered with a truncated JSON body");
ABSL_FLAG(int, poison_leaf_permille, 0, "per mille of leaves that always answer 500");
ABSL_FLAG(int, poison_listing_permille, 0, "per mille of groups listings that always answer malformed JSON");
ABSL_FLAG(bool, hostile_ids, false, "give troops t2..t7 ids that need percent-encoding");
ABSL_FLAG(uint64_t, seed, 1, "seed of fault and poison decisions");
ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 0, "port to listen on; 0 = pick a free one");
ABSL_FLAG(int, threads, 1, "io threads");
ABSL_FLAG(int, idle_timeout_ms, 30000, "close connections idle for this long, ms");
ABSL_FLAG(std::string, request_log_path, "", "if set, append \"METHOD target status\" per API request to this file");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("fanout-mock-api: a mock hierarchical vendor API for fanout's tests and demos");
  absl::ParseCommandLine(argc, argv);

  auto pagination = fanout::mock::ParsePagination(absl::GetFlag(FLAGS_pagination));
  if (!pagination.ok()) {
    std::cerr << "fanout-mock-api: --" << pagination.status().message() << "\n";
    return 2;
  }
  const int port = absl::GetFlag(FLAGS_port);
  if (port < 0 || port > 65535) {
    std::cerr << "fanout-mock-api: --port must be in 0..65535, got " << port << "\n";
    return 2;
  }
  fanout::mock::MockApiOptions options;
  options.troops = absl::GetFlag(FLAGS_troops);
  options.warriors = absl::GetFlag(FLAGS_warriors);
  options.groups = absl::GetFlag(FLAGS_groups);
  options.page_size = absl::GetFlag(FLAGS_page_size);
  options.pagination = *pagination;
  options.rate = absl::GetFlag(FLAGS_rate);
  options.burst = absl::GetFlag(FLAGS_burst);
  options.level_rate = absl::GetFlag(FLAGS_level_rate);
  options.error_rate = absl::GetFlag(FLAGS_error_rate);
  options.reset_rate = absl::GetFlag(FLAGS_reset_rate);
  options.slow_rate = absl::GetFlag(FLAGS_slow_rate);
  options.slow_ms = absl::GetFlag(FLAGS_slow_ms);
  options.truncate_rate = absl::GetFlag(FLAGS_truncate_rate);
  options.poison_leaf_permille = absl::GetFlag(FLAGS_poison_leaf_permille);
  options.poison_listing_permille = absl::GetFlag(FLAGS_poison_listing_permille);
  options.hostile_ids = absl::GetFlag(FLAGS_hostile_ids);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.host = absl::GetFlag(FLAGS_host);
  options.port = static_cast<uint16_t>(port);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.idle_timeout_ms = absl::GetFlag(FLAGS_idle_timeout_ms);
  options.request_log_path = absl::GetFlag(FLAGS_request_log_path);

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

  auto server = fanout::mock::MockApiServer::Start(options);
  if (!server.ok()) {
    std::cerr << "fanout-mock-api: " << server.status().message() << "\n";
    return 2;
  }
  std::printf("listening on %s\n", (*server)->base_url().c_str());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  (*server)->Stop();
  std::printf("%s\n", (*server)->stats().ToJson().c_str());
  std::fflush(stdout);
  return 0;
}
