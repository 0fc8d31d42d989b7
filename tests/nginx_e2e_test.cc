// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Against a real nginx `limit_req` on loopback: the upstream limiter most
// vendors' APIs sit behind, with its own arithmetic (a millisecond clock,
// rates in whole milli-requests per second). nginx serves a static tree
// (a listing and its documents) and answers 429 past its limit. Skipped when
// nginx is not installed (scripts/install-deps.sh installs nginx-light).
//
//   declared model (limits.upstream nginx): never refused
//   configured at 2x the real limit, adaptive: few refusals, near-ideal time
//
// Bounds are on counts and generous on time; the ratios are printed.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fanout/engine.h"
#include "fanout/upstream_model.h"
#include "gtest/gtest.h"
#include "support/files.h"
#include "support/process.h"

namespace fanout {
namespace {

namespace fs = std::filesystem;

constexpr char kNginx[] = "/usr/sbin/nginx";
constexpr int kDocuments = 250;
constexpr int kRate = 100;  // r/s
constexpr int kBurst = 5;

// A port free now (bound to port 0, then released for nginx to take).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return ntohs(address.sin_port);
}

bool Accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return ok;
}

// nginx in the foreground with a config of its own under `dir`, stopped
// (SIGQUIT, then SIGKILL) when this goes away.
class Nginx {
 public:
  explicit Nginx(std::string dir) : dir_(std::move(dir)) {}
  ~Nginx() {
    if (pid_ > 0) {
      kill(pid_, SIGQUIT);
      if (testing::WaitFor(pid_, std::chrono::seconds(5)) == -1) kill(pid_, SIGKILL);
    }
  }

  // Writes the static tree and the config, starts nginx, waits until it
  // accepts connections. Returns its base URL, or "" (with the reason in
  // `error`).
  std::string Start(std::string* error) {
    fs::create_directories(dir_ + "/www/groups");
    fs::create_directories(dir_ + "/logs");
    fs::create_directories(dir_ + "/temp");
    std::string items;
    for (int i = 1; i <= kDocuments; ++i) {
      absl::StrAppend(&items, i == 1 ? "" : ",", "{\"id\":\"g", i, "\"}");
      fs::create_directories(absl::StrCat(dir_, "/www/groups/g", i));
      std::ofstream(absl::StrCat(dir_, "/www/groups/g", i, "/data.json")) << "{\"group\":\"g" << i << "\",\"v\":" << i
                                                                          << "}";
    }
    std::ofstream(dir_ + "/www/groups.json") << "{\"items\":[" << items << "]}";
    fs::permissions(dir_, fs::perms::others_read | fs::perms::others_exec, fs::perm_options::add);
    port_ = FreePort();
    std::ofstream(dir_ + "/nginx.conf") << absl::StrFormat(R"(
worker_processes 1;
daemon off;
pid %1$s/nginx.pid;
error_log %1$s/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log %1$s/logs/access.log;
  client_body_temp_path %1$s/temp/body;
  proxy_temp_path %1$s/temp/proxy;
  fastcgi_temp_path %1$s/temp/fastcgi;
  uwsgi_temp_path %1$s/temp/uwsgi;
  scgi_temp_path %1$s/temp/scgi;
  default_type application/json;
  limit_req_zone $binary_remote_addr zone=api:1m rate=%2$dr/s;
  limit_req_status 429;
  server {
    listen 127.0.0.1:%3$d;
    root %1$s/www;
    location / { limit_req zone=api burst=%4$d nodelay; }
  }
}
)",
                                                           dir_, kRate, port_, kBurst);
    pid_ = testing::Spawn({kNginx, "-p", dir_, "-c", dir_ + "/nginx.conf"}, dir_ + "/logs/stdout",
                          dir_ + "/logs/stderr");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!Accepts(port_)) {
      if (std::chrono::steady_clock::now() > deadline) {
        *error = "nginx did not start: " + testing::ReadFile(dir_ + "/logs/stderr") +
                 testing::ReadFile(dir_ + "/logs/error.log");
        return "";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return absl::StrCat("http://127.0.0.1:", port_);
  }

 private:
  std::string dir_;
  int port_ = -1;
  pid_t pid_ = -1;
};

CrawlPlan Plan(const std::string& base) {
  CrawlPlan plan{.base_url = base};
  plan.levels = {{.name = "groups", .url = "/groups.json", .items_pointer = "/items", .bind = "group"},
                 {.name = "data", .url = "/groups/{group}/data.json"}};
  return plan;
}

struct CrawlFigures {
  int64_t records = 0, requests = 0, refused = 0;
  double seconds = 0;
};

CrawlFigures Crawl(const std::string& base, RunOptions options) {
  options.engine.max_in_flight = 16;
  options.retry.max_retry_after = absl::Seconds(2);
  int64_t records = 0;
  CallbackSink sink([&records](const Record&) {
    ++records;
    return absl::OkStatus();
  });
  auto result = RunCrawl(Plan(base), {&sink}, nullptr, options);
  EXPECT_TRUE(result.ok()) << result.status();
  CrawlFigures run;
  if (!result.ok()) return run;
  run.records = records;
  run.seconds = absl::ToDoubleSeconds(result->stats.elapsed);
  for (const LevelStats& level : result->stats.levels) {
    run.requests += level.requests + level.extra_requests;
    run.refused += level.responses_4xx;
  }
  return run;
}

class NginxUpstream : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kNginx)) GTEST_SKIP() << "nginx is not installed (scripts/install-deps.sh installs nginx-light)";
    nginx_ = std::make_unique<Nginx>(testing::FreshDir("nginx_" + std::string(
                                                         ::testing::UnitTest::GetInstance()->current_test_info()->name())));
    std::string error;
    base_ = nginx_->Start(&error);
    ASSERT_FALSE(base_.empty()) << error;
  }
  // The least time nginx's limit allows for `requests`: the burst at once,
  // then one per interval.
  static double IdealSeconds(int64_t requests) {
    return static_cast<double>(requests - 1 - kBurst) / kRate;
  }
  std::unique_ptr<Nginx> nginx_;
  std::string base_;
};

TEST_F(NginxUpstream, DeclaredModelIsNeverRefused) {
  RunOptions options;
  UpstreamModel model;
  model.limiter = NginxLimitReq{.rate_millis = *ParseNginxRate(absl::StrCat(kRate, "r/s")), .burst = kBurst,
                                .nodelay = true};
  options.engine.adaptive = AdaptiveRateOptions{.model = model};
  options.engine.rate = *PacingFor(model, model.jitter);
  const CrawlFigures run = Crawl(base_, options);
  EXPECT_EQ(run.records, kDocuments);
  EXPECT_EQ(run.refused, 0);
  const double ratio = run.seconds / IdealSeconds(run.requests);
  std::printf("nginx limit_req %dr/s burst=%d nodelay, declared model: %lld requests, %lld refused, time / ideal %.3f\n",
              kRate, kBurst, static_cast<long long>(run.requests), static_cast<long long>(run.refused), ratio);
  EXPECT_LT(ratio, 1.5);
  EXPECT_GT(ratio, 0.95) << "faster than nginx allows: is its limit in force?";
}

TEST_F(NginxUpstream, TwiceTheLimitConfiguredAdaptsWithFewRefusals) {
  RunOptions options;
  options.engine.rate = RateLimitSpec::PerSecond(2 * kRate, 1);
  options.engine.adaptive = AdaptiveRateOptions{};
  const CrawlFigures run = Crawl(base_, options);
  EXPECT_EQ(run.records, kDocuments);
  const double refused_share = static_cast<double>(run.refused) / static_cast<double>(run.requests);
  const double ratio = run.seconds / IdealSeconds(run.requests - run.refused);
  std::printf("nginx limit_req %dr/s burst=%d nodelay, configured %d/s adaptive: %lld requests, %lld refused (%.2f%%), "
              "time / ideal %.3f\n",
              kRate, kBurst, 2 * kRate, static_cast<long long>(run.requests), static_cast<long long>(run.refused),
              100 * refused_share, ratio);
  EXPECT_LE(refused_share, 0.05);
  EXPECT_LT(ratio, 2.0);
  EXPECT_GT(ratio, 0.95) << "faster than nginx allows: is its limit in force?";
}

}  // namespace
}  // namespace fanout
