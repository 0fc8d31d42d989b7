// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// End to end: the real engine, transport and sinks crawl the mock vendor API
// on a loopback port (started here, on port 0, stopped at the end).

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fanout/engine.h"
#include "fanout/sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mock_api_server.h"
#include "support/files.h"

namespace fanout {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

CrawlPlan MockPlan(const std::string& base_url) { return mock::CrawlPlanFor(base_url); }

using testing::FreshDir;
using testing::Lines;

RunOptions FastRetries() {
  RunOptions options;
  options.retry.max_attempts = 8;
  options.retry.base_delay = absl::Milliseconds(5);
  options.retry.max_delay = absl::Milliseconds(100);
  options.retry.max_retry_after = absl::Seconds(2);
  options.request_timeout = absl::Seconds(10);
  options.engine.max_in_flight = 16;
  return options;
}

// Faults everywhere, poison leaves: every other leaf is written exactly once,
// the poison ones and only those are dead-lettered, and the books balance.
TEST(EndToEnd, FullCrawlWithFaults) {
  mock::MockApiOptions api;
  api.troops = 40;
  api.warriors = 4;
  api.groups = 5;  // 800 leaves
  api.page_size = 7;
  api.error_rate = 0.03;
  api.reset_rate = 0.01;
  api.truncate_rate = 0.01;
  api.poison_leaf_permille = 10;
  api.seed = 11;
  auto server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string dir = FreshDir("faults");
  auto tree = FileTreeSink::Open({.root = dir + "/tree", .fsync = false});
  auto lines = JsonLinesSink::Open(dir + "/records.jsonl");
  auto dead = DeadLetterLog::Open(dir + "/dead.jsonl");
  ASSERT_TRUE(tree.ok() && lines.ok() && dead.ok());

  auto result = RunCrawl(MockPlan((*server)->base_url()), {tree->get(), lines->get()}, dead->get(), FastRetries());
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE((*dead)->Close().ok());
  ASSERT_TRUE((*lines)->Close().ok());

  const std::vector<std::string> poison = (*server)->poison_leaves();
  ASSERT_FALSE(poison.empty()) << "the seed should poison some leaves";
  const int64_t expected = (*server)->expected_leaves() - static_cast<int64_t>(poison.size());
  EXPECT_EQ(result->state, CrawlResult::State::kDone);
  EXPECT_TRUE(result->stats.balanced());
  EXPECT_EQ(result->stats.records, expected);

  // Exactly once in the JSON lines file, and once each in the tree.
  std::set<std::string> keys;
  for (const std::string& line : Lines(dir + "/records.jsonl")) {
    const size_t start = line.find("\"key\":\"") + 7;
    ASSERT_TRUE(keys.insert(line.substr(start, line.find('"', start) - start)).second) << "duplicate: " << line;
    // No document cut short by the upstream is written (it would be embedded
    // as text): it is retried until whole.
    EXPECT_THAT(line, ::testing::Not(HasSubstr("\"body_encoding\":\"text\""))) << line;
  }
  EXPECT_EQ(static_cast<int64_t>(keys.size()), expected);
  EXPECT_GT((*server)->stats().faults.truncate, 0) << "the seed should cut some documents short";
  int64_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir + "/tree")) {
    if (entry.is_regular_file() && entry.path().filename() == "data.json") ++files;
  }
  EXPECT_EQ(files, expected);

  // The poison leaves, and nothing else, are dead letters.
  std::set<std::string> dead_keys;
  for (const std::string& line : Lines(dir + "/dead.jsonl")) {
    EXPECT_THAT(line, HasSubstr("HTTP 500"));
    const size_t start = line.find("/troops/");
    const size_t end = line.find("/data\"", start);
    dead_keys.insert(line.substr(start + 1, end - start - 1));
  }
  EXPECT_EQ(dead_keys, std::set<std::string>(poison.begin(), poison.end()));
  EXPECT_EQ(result->stats.dead, static_cast<int64_t>(poison.size()));
}

// Every pagination style the plan supports, against the mock's real pages.
TEST(EndToEnd, EveryPaginationStyle) {
  for (const mock::Pagination style : {mock::Pagination::kCursor, mock::Pagination::kNextUrl,
                                       mock::Pagination::kLinkHeader, mock::Pagination::kPage,
                                       mock::Pagination::kOffset}) {
    mock::MockApiOptions api;
    api.troops = 23;
    api.warriors = 3;
    api.groups = 2;
    api.page_size = 5;  // several pages at every level
    api.pagination = style;
    auto server = mock::MockApiServer::Start(api);
    ASSERT_TRUE(server.ok()) << server.status();
    std::set<std::string> keys;
    CallbackSink sink([&](const Record& r) {
      keys.insert(r.Key());
      return absl::OkStatus();
    });
    auto result = RunCrawl(mock::CrawlPlanFor((*server)->base_url(), style), {&sink}, nullptr, FastRetries());
    ASSERT_TRUE(result.ok()) << mock::PaginationName(style) << ": " << result.status();
    EXPECT_EQ(keys.size(), 138u) << mock::PaginationName(style);
    EXPECT_EQ(result->stats.dead, 0) << mock::PaginationName(style);
    EXPECT_TRUE(result->stats.balanced());
    EXPECT_EQ((*server)->stats().status.count(400), 0u) << "no page was asked for wrongly";
  }
}

// A client configured at the server's strict limit is never refused.
TEST(EndToEnd, ClientAtTheServersLimitGetsNo429s) {
  mock::MockApiOptions api;
  api.troops = 10;
  api.warriors = 4;
  api.groups = 5;  // 200 leaves, 261 requests
  api.rate = 200;
  api.burst = 10;
  auto server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(server.ok()) << server.status();
  CallbackSink sink([](const Record&) { return absl::OkStatus(); });
  RunOptions options = FastRetries();
  options.engine.rate = RateLimitSpec::PerSecond(200, 2);
  auto result = RunCrawl(MockPlan((*server)->base_url()), {&sink}, nullptr, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stats.records, 200);
  EXPECT_EQ((*server)->stats().rejected, 0);
  EXPECT_LE((*server)->stats().max_accepted_in_any_1s, 200 + 10);
}

// Dropped connections make libcurl resend requests on its own; those reach
// the server too, and are charged to the limit, so there are still no 429s.
TEST(EndToEnd, ResendsAfterDroppedConnectionsStayWithinTheLimit) {
  mock::MockApiOptions api;
  api.troops = 10;
  api.warriors = 4;
  api.groups = 5;
  api.rate = 200;
  api.burst = 10;
  api.reset_rate = 0.05;
  api.seed = 3;
  auto server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(server.ok()) << server.status();
  CallbackSink sink([](const Record&) { return absl::OkStatus(); });
  RunOptions options = FastRetries();
  options.engine.rate = RateLimitSpec::PerSecond(200, 2);
  auto result = RunCrawl(MockPlan((*server)->base_url()), {&sink}, nullptr, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stats.records, 200);
  const mock::MockApiStats stats = (*server)->stats();
  EXPECT_GT(stats.faults.reset, 0);
  EXPECT_EQ(stats.rejected, 0);
  int64_t sent = 0;
  for (const LevelStats& level : result->stats.levels) sent += level.requests + level.extra_requests;
  EXPECT_EQ(sent, stats.requests) << "every request the server saw is accounted for";
}

// A crawl on its own thread: the host watches it, stops it, and gets a
// stopped result with balanced books; a second one runs to the end.
TEST(EndToEnd, BackgroundCrawlCanBeWatchedAndStopped) {
  mock::MockApiOptions api;
  api.troops = 20;
  api.warriors = 4;
  api.groups = 5;  // 400 leaves
  auto server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(server.ok()) << server.status();
  CallbackSink sink([](const Record&) { return absl::OkStatus(); });
  RunOptions options = FastRetries();
  options.engine.rate = RateLimitSpec::PerSecond(100, 1);  // about 5 s for the whole tree
  auto crawl = BackgroundCrawl::Start(MockPlan((*server)->base_url()), {&sink}, nullptr, options);
  ASSERT_TRUE(crawl.ok()) << crawl.status();
  // Wait (bounded) until some documents are in, then stop.
  std::optional<CrawlStats> stats;
  for (int i = 0; i < 500; ++i) {
    stats = (*crawl)->Stats();
    ASSERT_TRUE(stats.has_value());
    if (stats->records >= 20) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(stats->records, 20);
  (*crawl)->Stop();
  auto stopped = (*crawl)->Wait();
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->state, CrawlResult::State::kStopped);
  EXPECT_GT(stopped->stats.pending, 0);
  EXPECT_TRUE(stopped->stats.balanced());
  EXPECT_TRUE((*crawl)->done());
  EXPECT_FALSE((*crawl)->Wait().ok()) << "Wait is called once";

  options.engine.rate.reset();
  auto full = BackgroundCrawl::Start(MockPlan((*server)->base_url()), {&sink}, nullptr, options);
  ASSERT_TRUE(full.ok());
  auto done = (*full)->Wait();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, CrawlResult::State::kDone);
  EXPECT_EQ(done->stats.records, 400);
  ASSERT_TRUE((*full)->Stats().has_value());
  EXPECT_EQ((*full)->Stats()->records, 400) << "the final figures, after the end";

  // Bad input is reported by Start, on the caller's thread.
  CrawlPlan bad = MockPlan((*server)->base_url());
  bad.levels[0].items_pointer = "items";
  EXPECT_EQ(BackgroundCrawl::Start(bad, {&sink}, nullptr, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Ids such as "../../etc" and "a/b" are crawled and written inside the output
// directory, never outside it.
TEST(EndToEnd, HostileIdsStayInsideTheOutputDirectory) {
  mock::MockApiOptions api;
  api.troops = 12;
  api.warriors = 1;
  api.groups = 1;
  api.hostile_ids = true;
  auto server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string dir = FreshDir("hostile");
  const std::string root = dir + "/tree";
  auto tree = FileTreeSink::Open({.root = root, .fsync = false});
  ASSERT_TRUE(tree.ok());
  auto result = RunCrawl(MockPlan((*server)->base_url()), {tree->get()}, nullptr, FastRetries());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stats.records, (*server)->expected_leaves());
  EXPECT_EQ(result->stats.dead, 0);
  const std::string canonical_root = fs::canonical(root).string() + "/";
  int64_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    EXPECT_EQ(fs::canonical(entry.path()).string().rfind(canonical_root, 0), 0u) << entry.path();
    if (entry.is_regular_file() && entry.path().filename() == "data.json") ++files;
  }
  EXPECT_EQ(files, (*server)->expected_leaves());
  // Nothing appeared beside the output directory.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

// A listing that is never valid JSON is dead-lettered with a reason naming the
// level and URL; the rest of the crawl completes.
TEST(EndToEnd, MalformedListingIsDeadLetteredAndTheRestCompletes) {
  mock::MockApiOptions api;
  api.troops = 20;
  api.warriors = 3;
  api.groups = 2;
  api.poison_listing_permille = 100;
  api.seed = 5;
  auto server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::vector<std::string> poisoned = (*server)->poison_listings();
  ASSERT_FALSE(poisoned.empty());
  const std::string dir = FreshDir("malformed");
  auto dead = DeadLetterLog::Open(dir + "/dead.jsonl");
  ASSERT_TRUE(dead.ok());
  CallbackSink sink([](const Record&) { return absl::OkStatus(); });
  RunOptions options = FastRetries();
  options.retry.max_attempts = 2;
  auto result = RunCrawl(MockPlan((*server)->base_url()), {&sink}, dead->get(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE((*dead)->Close().ok());
  EXPECT_EQ(result->stats.dead, static_cast<int64_t>(poisoned.size()));
  EXPECT_EQ(result->stats.records, (*server)->expected_leaves() - 2 * static_cast<int64_t>(poisoned.size()));
  for (const std::string& line : Lines(dir + "/dead.jsonl")) {
    EXPECT_THAT(line, HasSubstr("\"level\":\"groups\""));
    EXPECT_THAT(line, HasSubstr("level \\\"groups\\\""));
    EXPECT_THAT(line, HasSubstr("in response of GET http://127.0.0.1:"));
  }
}

}  // namespace
}  // namespace fanout
