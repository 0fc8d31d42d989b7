// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Scale-out end to end: several `fanout crawl --redis` processes share one
// crawl and one rate limit through a redis-server this test starts, against
// the mock API served in this process. The checks are on what the mock saw
// (429s, leaves served) and what the workers wrote, not on timing.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mock_api_server.h"
#include "support/files.h"
#include "support/process.h"
#include "support/redis_server.h"

namespace fanout {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::CountFiles;
using testing::FreshDir;
using testing::Lines;
using testing::RecordKeys;
using testing::ReadFile;
using testing::Spawn;
using testing::WaitFor;

constexpr char kFanout[] = FANOUT_CLI;

// The mock's tree, with cursor pagination; the documents go to one shared
// file tree (atomic renames: idempotent) and to a JSON lines file per worker.
std::string Spec(const std::string& base_url, double rate) {
  return absl::StrCat(R"({
  "base_url": ")", base_url, R"(",
  "limits": {)", rate > 0 ? absl::StrCat(R"("rate": )", rate, R"(, "burst": 2, )") : "", R"("concurrency": 8},
  "retry": {"max_attempts": 4, "base_delay": "10ms", "max_delay": "100ms"},
  "levels": [
    {"name": "troops", "url": "/troops", "items": "/items", "bind": "troop", "pagination": {"next_pointer": "/next_cursor", "cursor_param": "cursor"}},
    {"name": "warriors", "url": "/troops/{troop}/warriors", "items": "/items", "bind": "warrior", "pagination": {"next_pointer": "/next_cursor", "cursor_param": "cursor"}},
    {"name": "groups", "url": "/troops/{troop}/warriors/{warrior}/groups", "items": "/items", "bind": "group", "pagination": {"next_pointer": "/next_cursor", "cursor_param": "cursor"}},
    {"name": "data", "url": "/troops/{troop}/warriors/{warrior}/groups/{group}/data"}
  ],
  "sinks": {"tree": "out/tree"}
})");
}


class ScaleOutTest : public ::testing::Test {
 protected:
  void StartRedis(bool appendonly = false) {
    auto server = testing::RedisServer::Start(absl::Seconds(10), appendonly);
    if (absl::IsNotFound(server.status())) GTEST_SKIP() << server.status().message();
    ASSERT_TRUE(server.ok()) << server.status();
    redis_ = *std::move(server);
  }

  // Starts worker `i`: `fanout crawl` of the shared crawl, writing its own
  // JSON lines file.
  pid_t StartWorker(int i, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {kFanout,   "crawl",      dir_ + "/spec.json", "--redis",
                                     redis_->url(), "--crawl-id", "c1",              "--jsonl",
                                     absl::StrCat(dir_, "/out/worker", i, ".jsonl"), "--quiet",
                                     "--worker-id", absl::StrCat("w", i)};
    args.insert(args.end(), extra.begin(), extra.end());
    return Spawn(args, absl::StrCat(dir_, "/out.", i), absl::StrCat(dir_, "/err.", i));
  }

  std::multiset<std::string> AllKeys(int workers) {
    std::multiset<std::string> keys;
    for (int i = 0; i < workers; ++i) keys.merge(RecordKeys(absl::StrCat(dir_, "/out/worker", i, ".jsonl")));
    return keys;
  }

  std::string Status() {
    const std::string out = dir_ + "/status.out";
    std::error_code ignored;
    fs::remove(out, ignored);
    const pid_t pid = Spawn({kFanout, "status", "--redis", redis_->url(), "c1", "--json"}, out, dir_ + "/status.err");
    EXPECT_GE(WaitFor(pid), 0);
    return ReadFile(out);
  }

  std::unique_ptr<testing::RedisServer> redis_;
  std::string dir_;
};

// Four workers and a shared limit equal to the server's strict one: no 429s,
// every leaf exactly once over all the workers, the crawl's counts balance.
TEST_F(ScaleOutTest, FourWorkersShareOneCrawlAndOneLimit) {
  StartRedis();
  if (redis_ == nullptr) return;
  mock::MockApiOptions api;
  api.troops = 30;
  api.warriors = 4;
  api.groups = 5;  // 600 leaves, about 750 requests: 3.8 s at 200/s
  api.page_size = 3;
  api.rate = 200;
  api.burst = 10;
  auto server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(server.ok()) << server.status();
  dir_ = FreshDir("scale_out_four");
  std::ofstream(dir_ + "/spec.json") << Spec((*server)->base_url(), 200);
  std::vector<pid_t> workers;
  for (int i = 0; i < 4; ++i) workers.push_back(StartWorker(i));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(WaitFor(workers[i]), 0) << ReadFile(absl::StrCat(dir_, "/err.", i));
  }
  const mock::MockApiStats stats = (*server)->stats();
  EXPECT_EQ(stats.rejected, 0) << "429s: the four workers went over the shared limit";
  const std::multiset<std::string> keys = AllKeys(4);
  EXPECT_EQ(keys.size(), 600u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 600u);
  EXPECT_EQ(CountFiles(dir_ + "/out/tree", "data.json"), 600u);
  EXPECT_EQ(stats.distinct_leaves_served, 600);
  EXPECT_EQ(stats.leaves_served, 600) << "a leaf was fetched twice";
  int working = 0;
  for (int i = 0; i < 4; ++i) working += !Lines(absl::StrCat(dir_, "/out/worker", i, ".jsonl")).empty();
  EXPECT_GE(working, 2) << "the work was not shared";
  const std::string status = Status();
  EXPECT_THAT(status, HasSubstr("\"state\":\"finished\",\"pending\":0,"));
  EXPECT_THAT(status, HasSubstr("{\"level\":\"data\",\"pending\":0,\"done\":600,\"dead\":0}"));
}

// A worker killed mid-crawl and a Redis restart (append-only file on): the
// others finish the crawl, with every leaf in the tree and nothing pending.
TEST_F(ScaleOutTest, AKilledWorkerAndARedisRestartLoseNothing) {
  StartRedis(/*appendonly=*/true);
  if (redis_ == nullptr) return;
  mock::MockApiOptions api;
  api.troops = 40;
  api.warriors = 4;
  api.groups = 5;  // 800 leaves at 250/s: about 4 s
  api.page_size = 3;
  api.rate = 250;
  api.burst = 10;
  auto server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(server.ok()) << server.status();
  dir_ = FreshDir("scale_out_kill");
  std::ofstream(dir_ + "/spec.json") << Spec((*server)->base_url(), 250);
  std::vector<pid_t> workers;
  for (int i = 0; i < 3; ++i) workers.push_back(StartWorker(i, {"--lease-timeout", "1s"}));
  auto wait_for_leaves = [&](size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (AllKeys(3).size() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  wait_for_leaves(150);
  kill(workers[0], SIGKILL);
  EXPECT_EQ(WaitFor(workers[0]), 128 + SIGKILL);
  wait_for_leaves(350);
  ASSERT_TRUE(redis_->Restart().ok());
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(WaitFor(workers[i]), 0) << ReadFile(absl::StrCat(dir_, "/err.", i));
  }
  EXPECT_LT(RecordKeys(dir_ + "/out/worker0.jsonl").size(), 800u) << "the killed worker had finished already";
  const std::multiset<std::string> keys = AllKeys(3);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 800u);
  EXPECT_EQ(CountFiles(dir_ + "/out/tree", "data.json"), 800u);
  const std::string status = Status();
  EXPECT_THAT(status, HasSubstr("\"state\":\"finished\",\"pending\":0,"));
  EXPECT_THAT(status, HasSubstr("{\"level\":\"data\",\"pending\":0,\"done\":800,\"dead\":0}"));
}

// Crawls started elsewhere and stopped with work left (--max-duration) are
// finished by `fanout worker`, which serves every crawl in the Redis at once.
TEST_F(ScaleOutTest, AWorkerServesEveryCrawlWithWorkLeft) {
  StartRedis();
  if (redis_ == nullptr) return;
  mock::MockApiOptions api;
  api.troops = 10;
  api.warriors = 4;
  api.groups = 5;  // 200 leaves a crawl
  api.page_size = 3;
  auto server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(server.ok()) << server.status();
  dir_ = FreshDir("scale_out_worker");
  for (const std::string id : {"alpha", "beta"}) {
    const std::string spec_dir = dir_ + "/" + id;
    fs::create_directories(spec_dir);
    // Slow enough (100/s) that a 0.3 s run leaves most of the work.
    std::ofstream(spec_dir + "/spec.json") << Spec((*server)->base_url(), 100);
    const pid_t pid = Spawn({kFanout, "crawl", spec_dir + "/spec.json", "--redis", redis_->url(), "--crawl-id", id,
                             "--max-duration", "300ms", "--quiet"},
                            spec_dir + "/out.0", spec_dir + "/err.0");
    EXPECT_EQ(WaitFor(pid), 3) << ReadFile(spec_dir + "/err.0");
  }
  const pid_t worker = Spawn({kFanout, "worker", "--redis", redis_->url(), "--exit-when-idle", "--scan-interval",
                              "100ms", "--worker-id", "w9"},
                             dir_ + "/worker.out", dir_ + "/worker.err");
  EXPECT_EQ(WaitFor(worker), 0) << ReadFile(dir_ + "/worker.err");
  const std::string log = ReadFile(dir_ + "/worker.err");
  EXPECT_THAT(log, HasSubstr("joined crawl alpha"));
  EXPECT_THAT(log, HasSubstr("joined crawl beta"));
  for (const std::string id : {"alpha", "beta"}) {
    EXPECT_EQ(CountFiles(dir_ + "/" + id + "/out/tree", "data.json"), 200u) << id;
    const std::string out = dir_ + "/status." + id;
    EXPECT_EQ(WaitFor(Spawn({kFanout, "status", "--redis", redis_->url(), id, "--json"}, out, out + ".err")), 0);
    EXPECT_THAT(ReadFile(out), HasSubstr("{\"level\":\"data\",\"pending\":0,\"done\":200,\"dead\":0}")) << id;
  }
}

// Two tenants on one upstream's shared limit, one with 100 times the work
// (it is stopped once the small one is done) and four times the workers: the small one still gets half the limit (equal
// weights), so it finishes in about twice the time it would take alone at the
// whole limit, not five times (its share of the requests in flight).
TEST_F(ScaleOutTest, ASmallTenantGetsItsFairShareNextToABigOne) {
  StartRedis();
  if (redis_ == nullptr) return;
  mock::MockApiOptions api;
  api.troops = 600;  // 12,000 leaves
  api.warriors = 4;
  api.groups = 5;
  api.page_size = 3;
  api.rate = 200;
  api.burst = 10;
  auto server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(server.ok()) << server.status();
  // The small tenant's part of the vendor: a hundredth of the tree, behind
  // another address, sharing the limit by its name (--upstream).
  api.troops = 6;
  auto small_server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(small_server.ok()) << small_server.status();
  dir_ = FreshDir("scale_out_tenants");
  std::ofstream(dir_ + "/spec.json") << Spec((*server)->base_url(), 200);
  std::ofstream(dir_ + "/small.json") << Spec((*small_server)->base_url(), 200);
  std::vector<pid_t> big;
  for (int i = 0; i < 4; ++i) {
    big.push_back(Spawn({kFanout, "crawl", dir_ + "/spec.json", "--redis", redis_->url(), "--crawl-id", "big",
                         "--upstream", "vendor", "--quiet", "--jsonl", absl::StrCat(dir_, "/big", i, ".jsonl")},
                        absl::StrCat(dir_, "/big.out.", i), absl::StrCat(dir_, "/big.err.", i)));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (RecordKeys(dir_ + "/big0.jsonl").size() < 20 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const pid_t small = Spawn({kFanout, "crawl", dir_ + "/small.json", "--redis", redis_->url(), "--crawl-id", "small",
                             "--upstream", "vendor", "--quiet", "--summary-json", dir_ + "/small.summary.json"},
                            dir_ + "/small.out", dir_ + "/small.err");
  EXPECT_EQ(WaitFor(small), 0) << ReadFile(dir_ + "/small.err");
  for (pid_t pid : big) kill(pid, SIGTERM);
  for (pid_t pid : big) EXPECT_EQ(WaitFor(pid), 3) << "the big tenant should still have had work";
  EXPECT_EQ((*server)->stats().rejected + (*small_server)->stats().rejected, 0);
  const std::string summary = ReadFile(dir_ + "/small.summary.json");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(summary, m, std::regex(R"re("elapsed_seconds":([0-9.]+))re"))) << summary;
  const double elapsed = std::stod(m[1]);
  ASSERT_TRUE(std::regex_search(summary, m, std::regex(R"re("requests":([0-9]+))re"))) << summary;
  const double alone = std::stod(m[1]) / 200;  // at the whole limit
  EXPECT_LT(elapsed, 3 * alone) << "the small tenant took " << elapsed << " s; alone at the whole limit: " << alone;
  EXPECT_GT(elapsed, 1.3 * alone) << "the big tenant did not get its share";
}

TEST_F(ScaleOutTest, BadSharedCrawlArgumentsAreClearErrors) {
  StartRedis();
  if (redis_ == nullptr) return;
  dir_ = FreshDir("scale_out_args");
  std::ofstream(dir_ + "/spec.json") << Spec("http://127.0.0.1:9", 0);
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), kFanout);
    const std::string err = dir_ + "/err.args";
    std::error_code ignored;
    fs::remove(err, ignored);
    const int code = WaitFor(Spawn(args, dir_ + "/out.args", err));
    return std::make_pair(code, ReadFile(err));
  };
  auto [code, err] = run({"crawl", dir_ + "/spec.json", "--redis", redis_->url()});
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("--redis and --crawl-id go together"));
  std::tie(code, err) = run({"crawl", dir_ + "/spec.json", "--redis", redis_->url(), "--crawl-id", "a/b"});
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("--crawl-id: crawl id"));
  std::tie(code, err) = run({"crawl", dir_ + "/spec.json", "--redis", "redis://:hunter2@127.0.0.1:1", "--crawl-id", "c"});
  EXPECT_EQ(code, 1);
  EXPECT_THAT(err, HasSubstr("redis://:***@127.0.0.1:1"));
  EXPECT_THAT(err, ::testing::Not(HasSubstr("hunter2")));
  std::tie(code, err) = run({"crawl", dir_ + "/spec.json", "--redis", "http://x", "--crawl-id", "c"});
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("--redis:"));
  std::tie(code, err) = run({"worker"});
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("--redis is required"));
  std::tie(code, err) = run({"worker", "--redis", redis_->url(), "--crawls", "ok,no/pe"});
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("--crawls: crawl id"));
  std::tie(code, err) = run({"status", "--redis", redis_->url(), "nothing-here"});
  EXPECT_EQ(code, 1);
  EXPECT_THAT(err, HasSubstr("no crawl \"nothing-here\""));
}

}  // namespace
}  // namespace fanout
