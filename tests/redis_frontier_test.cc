// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// RedisFrontier against a real redis-server on loopback: several frontiers
// (each with its own connection, as separate workers would have) share one
// crawl. Lease expiry is exercised with short lease timeouts and waits well
// past them, measured on the server's own clock, so no check depends on how
// fast the test happens to run.

#include "fanout/redis_frontier.h"

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/redis_test.h"

namespace fanout {
namespace {

using ::testing::HasSubstr;

class RedisFrontierTest : public testing::RedisTest {
 protected:
  RedisFrontierOptions Options(size_t levels = 3) {
    RedisFrontierOptions options;
    options.crawl_id = "crawl-1";
    options.plan_fingerprint = "plan-a";
    options.levels = levels;
    options.ack_interval = absl::ZeroDuration();  // send each outcome at once unless a test batches
    return options;
  }

  std::unique_ptr<RedisFrontier> Open(RedisFrontierOptions options) {
    std::shared_ptr<RedisClient> client = Connect(QuickReconnect());
    if (client == nullptr) return nullptr;
    auto frontier = RedisFrontier::Open(client, std::move(options), nullptr, &clock_);
    EXPECT_TRUE(frontier.ok()) << frontier.status();
    return frontier.ok() ? *std::move(frontier) : nullptr;
  }

  static Task Root(std::string url = "http://api/groups") {
    Task task;
    task.level = 0;
    task.url = std::move(url);
    return task;
  }
  static Task Child(uint32_t level, std::string url) {
    Task task;
    task.level = level;
    task.bindings = {{"group", url}};
    task.path = {{"groups", url}};
    task.url = std::move(url);
    return task;
  }
  static void ExpectBalanced(const FrontierCounts& c) {
    EXPECT_EQ(c.discovered, c.pending + c.leased + c.done + c.dead)
        << "discovered " << c.discovered << " pending " << c.pending << " leased " << c.leased << " done " << c.done
        << " dead " << c.dead;
  }
};

TEST_F(RedisFrontierTest, OpenRejectsBadOptions) {
  std::shared_ptr<RedisClient> client = Connect();
  ASSERT_NE(client, nullptr);
  auto with = [&](auto change) {
    RedisFrontierOptions options = Options();
    change(options);
    return RedisFrontier::Open(client, options, nullptr, &clock_).status();
  };
  EXPECT_THAT(std::string(with([](auto& o) { o.crawl_id = "../etc"; }).message()), HasSubstr("crawl id"));
  EXPECT_THAT(std::string(with([](auto& o) { o.crawl_id = ""; }).message()), HasSubstr("crawl id"));
  EXPECT_THAT(std::string(with([](auto& o) { o.levels = 0; }).message()), HasSubstr("levels must be in [1, 64]"));
  EXPECT_THAT(std::string(with([](auto& o) { o.lease_timeout = absl::Milliseconds(5); }).message()),
              HasSubstr("lease_timeout"));
  EXPECT_THAT(std::string(with([](auto& o) { o.max_deliveries = 0; }).message()), HasSubstr("max_deliveries"));
  EXPECT_THAT(std::string(with([](auto& o) { o.lease_batch = 0; }).message()), HasSubstr("lease_batch"));
  EXPECT_FALSE(RedisFrontier::Open(nullptr, Options(), nullptr, &clock_).ok());
}

TEST_F(RedisFrontierTest, AnotherPlanIsRefusedUnlessForced) {
  ASSERT_NE(Open(Options()), nullptr);
  std::shared_ptr<RedisClient> client = Connect();
  RedisFrontierOptions other = Options();
  other.plan_fingerprint = "plan-b";
  absl::Status refused = RedisFrontier::Open(client, other, nullptr, &clock_).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_THAT(std::string(refused.message()), HasSubstr("another plan"));
  other.force = true;
  EXPECT_TRUE(RedisFrontier::Open(client, other, nullptr, &clock_).ok());
  RedisFrontierOptions levels = Options(5);
  levels.force = true;
  EXPECT_THAT(std::string(RedisFrontier::Open(client, levels, nullptr, &clock_).status().message()),
              HasSubstr("has 3 levels, this plan has 5"));
}

TEST_F(RedisFrontierTest, LeasesDeepestLevelFirstAndKeepsTheTaskWhole) {
  auto f = Open(Options());
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->Add({Root()}).ok());
  std::optional<Task> root = f->Lease(clock_.Now());
  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(root->url, "http://api/groups");
  auto ids = f->Complete(root->id, {Child(1, "g1"), Child(2, "d1"), Child(1, "g2"), Child(0, "page2")});
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ids->size(), 4u);
  EXPECT_EQ(std::set<uint64_t>(ids->begin(), ids->end()).size(), 4u);
  std::vector<std::string> order;
  while (std::optional<Task> t = f->Lease(clock_.Now())) {
    order.push_back(t->url);
    if (t->url == "d1") {
      EXPECT_EQ(t->parent, root->id);
      EXPECT_EQ(t->bindings, (Bindings{{"group", "d1"}}));
      EXPECT_EQ(t->path.size(), 1u);
    }
    ASSERT_TRUE(f->Complete(t->id, {}).ok());
  }
  EXPECT_EQ(order, (std::vector<std::string>{"d1", "g1", "g2", "page2"}));
  ASSERT_TRUE(f->Flush().ok());
  const FrontierCounts c = f->counts();
  EXPECT_EQ(c.discovered, 5);
  EXPECT_EQ(c.done, 5);
  ExpectBalanced(c);
  EXPECT_FALSE(f->NextReadyTime().has_value());
}

TEST_F(RedisFrontierTest, RootsAreAddedOncePerCrawl) {
  auto a = Open(Options());
  auto b = Open(Options());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Add({Root()}).ok());
  ASSERT_TRUE(b->Add({Root()}).ok());
  EXPECT_EQ(b->counts().discovered, 1);
}

// Two workers take turns: every task is handed out exactly once, and the
// children one worker finds are leased by the other.
TEST_F(RedisFrontierTest, WorkersShareTheTasksWithoutDuplicates) {
  RedisFrontierOptions options = Options();
  options.lease_batch = 3;
  auto a = Open(options);
  auto b = Open(options);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Add({Root()}).ok());
  std::multiset<std::string> seen;
  int turn = 0, idle = 0;
  while (idle < 2) {
    RedisFrontier& f = (turn++ % 2 == 0) ? *a : *b;
    std::optional<Task> t = f.Lease(clock_.Now());
    if (!t) {
      ++idle;
      ASSERT_TRUE(f.Flush().ok());
      continue;
    }
    idle = 0;
    seen.insert(t->url);
    std::vector<Task> children;
    if (t->level < 2) {
      for (int i = 0; i < 4; ++i) children.push_back(Child(t->level + 1, t->url + "/" + std::to_string(i)));
    }
    ASSERT_TRUE(f.Complete(t->id, std::move(children)).ok());
  }
  ASSERT_TRUE(a->Flush().ok() && b->Flush().ok());
  EXPECT_EQ(seen.size(), 1u + 4 + 16);
  for (const std::string& url : seen) EXPECT_EQ(seen.count(url), 1u) << url;
  const FrontierCounts c = a->counts();
  EXPECT_EQ(c.done, 21);
  ExpectBalanced(c);
}

// A worker that dies holding leases: they expire and another worker takes
// the tasks; a late completion by the dead worker's replacement-in-spirit
// (its lease gone) adds nothing a second time.
TEST_F(RedisFrontierTest, ExpiredLeasesGoToOtherWorkersAndLateCompletionsAddNothingTwice) {
  RedisFrontierOptions options = Options();
  options.lease_timeout = absl::Milliseconds(200);
  auto a = Open(options);
  auto b = Open(options);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Add({Root()}).ok());
  std::optional<Task> first = a->Lease(clock_.Now());
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(b->Lease(clock_.Now()).has_value());
  // b sees that someone else holds work: it should poll, not finish.
  EXPECT_TRUE(b->NextReadyTime().has_value());
  absl::SleepFor(absl::Milliseconds(500));
  std::optional<Task> again = b->Lease(clock_.Now());
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->id, first->id);
  ASSERT_TRUE(b->Complete(again->id, {Child(1, "g1"), Child(1, "g2")}).ok());
  ASSERT_TRUE(a->Complete(first->id, {Child(1, "g1"), Child(1, "g2")}).ok());  // late: ignored
  ASSERT_TRUE(a->Flush().ok() && b->Flush().ok());
  const FrontierCounts c = a->counts();
  EXPECT_EQ(c.discovered, 3);
  EXPECT_EQ(c.done, 1);
  EXPECT_EQ(c.pending, 2);
  ExpectBalanced(c);
}

TEST_F(RedisFrontierTest, ATaskWhoseWorkersKeepDyingIsDeadAfterMaxDeliveries) {
  RedisFrontierOptions options = Options();
  options.lease_timeout = absl::Milliseconds(150);
  options.max_deliveries = 2;
  auto a = Open(options);
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(a->Add({Root()}).ok());
  for (int delivery = 0; delivery < 2; ++delivery) {
    auto worker = Open(options);
    ASSERT_NE(worker, nullptr);
    absl::SleepFor(absl::Milliseconds(delivery == 0 ? 0 : 400));
    ASSERT_TRUE(worker->Lease(clock_.Now()).has_value()) << "delivery " << delivery;
    worker->AbandonForTesting();  // killed
  }
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_FALSE(a->Lease(clock_.Now()).has_value());
  const FrontierCounts c = a->counts();
  EXPECT_EQ(c.dead, 1);
  ExpectBalanced(c);
  std::shared_ptr<RedisClient> client = Connect();
  auto summary = InspectRedisCrawl(*client, "crawl-1");
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->dead_by_reason.size(), 1u);
  EXPECT_THAT(summary->dead_by_reason[0].first, HasSubstr("lease expired 2 times"));
}

TEST_F(RedisFrontierTest, RetriesWaitOutTheirDelayAndKeepTheirAttempts) {
  auto f = Open(Options());
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->Add({Root()}).ok());
  std::optional<Task> t = f->Lease(clock_.Now());
  ASSERT_TRUE(t.has_value());
  t->attempts.attempts = 2;
  t->not_before = clock_.Now() + absl::Milliseconds(300);
  ASSERT_TRUE(f->Retry(*t).ok());
  EXPECT_FALSE(f->Lease(clock_.Now()).has_value());
  std::optional<absl::Time> ready = f->NextReadyTime();
  ASSERT_TRUE(ready.has_value());
  EXPECT_GT(*ready, clock_.Now() + absl::Milliseconds(100));
  absl::SleepFor(*ready + absl::Milliseconds(50) - clock_.Now());
  std::optional<Task> again = f->Lease(clock_.Now());
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->id, t->id);
  EXPECT_EQ(again->attempts.attempts, 2);
}

TEST_F(RedisFrontierTest, DeadTasksAreCountedAndRedriven) {
  auto f = Open(Options());
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->Add({Root()}).ok());
  std::optional<Task> root = f->Lease(clock_.Now());
  ASSERT_TRUE(f->Complete(root->id, {Child(1, "g1"), Child(1, "g2"), Child(2, "d1")}).ok());
  for (int i = 0; i < 3; ++i) {
    std::optional<Task> t = f->Lease(clock_.Now());
    ASSERT_TRUE(t.has_value());
    t->attempts.attempts = 4;
    if (t->level == 1) {
      ASSERT_TRUE(f->Retry(*t).ok());  // keeps its attempts in Redis
      t = f->Lease(clock_.Now());
      ASSERT_TRUE(t.has_value());
    }
    ASSERT_TRUE(f->Dead(t->id, t->level == 2 ? "HTTP 404" : "HTTP 500 after 4 attempts").ok());
  }
  ASSERT_TRUE(f->Flush().ok());
  std::shared_ptr<RedisClient> client = Connect();
  auto summary = InspectRedisCrawl(*client, "crawl-1");
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->counts.dead, 3);
  EXPECT_EQ(summary->dead_by_level, (std::vector<int64_t>{0, 2, 1}));
  ASSERT_EQ(summary->dead_by_reason.size(), 2u);
  EXPECT_EQ(summary->dead_by_reason[0], (std::pair<std::string, int64_t>{"HTTP 500 after 4 attempts", 2}));
  auto revived = RedriveRedisCrawl(*client, "crawl-1", 1, "500");
  ASSERT_TRUE(revived.ok()) << revived.status();
  EXPECT_EQ(*revived, 2);
  std::optional<Task> back = f->Lease(clock_.Now());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->level, 1u);
  EXPECT_EQ(back->attempts.attempts, 0);  // fresh attempts
  ExpectBalanced(f->counts());
  EXPECT_TRUE(absl::IsNotFound(InspectRedisCrawl(*client, "no-such-crawl").status()));
  auto crawls = ListRedisCrawls(*client);
  ASSERT_TRUE(crawls.ok());
  EXPECT_EQ(*crawls, std::vector<std::string>{"crawl-1"});
}

// Outcomes made while Redis is down wait in the worker and reach Redis once
// it is back (with its append-only file, nothing is lost across the restart).
TEST_F(RedisFrontierTest, OutcomesSurviveARedisRestart) {
  auto server = testing::RedisServer::Start(absl::Seconds(10), /*appendonly=*/true);
  ASSERT_TRUE(server.ok()) << server.status();
  std::shared_ptr<RedisClient> client = Connect(QuickReconnect(), (*server)->url());
  ASSERT_NE(client, nullptr);
  auto f = RedisFrontier::Open(client, Options(), nullptr, &clock_);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE((*f)->Add({Root()}).ok());
  std::optional<Task> root = (*f)->Lease(clock_.Now());
  ASSERT_TRUE(root.has_value());
  (*server)->Stop();
  ASSERT_TRUE((*f)->Complete(root->id, {Child(1, "g1"), Child(1, "g2")}).ok());  // buffered
  EXPECT_FALSE((*f)->Lease(clock_.Now()).has_value());
  EXPECT_TRUE((*f)->NextReadyTime().has_value());  // try again later, not "done"
  ASSERT_TRUE((*server)->Restart().ok());
  ASSERT_TRUE((*f)->Flush().ok());
  const FrontierCounts c = (*f)->counts();
  EXPECT_EQ(c.discovered, 3);
  EXPECT_EQ(c.done, 1);
  EXPECT_EQ(c.pending, 2);
  ExpectBalanced(c);
}

// Redis gone for longer than max_outage: the frontier says so (the engine
// then ends the run with that error) instead of waiting forever.
TEST_F(RedisFrontierTest, AnOutageLongerThanItsPatienceIsAnError) {
  RedisFrontierOptions options = Options();
  options.max_outage = absl::Milliseconds(200);
  auto f = Open(options);
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->Add({Root()}).ok());
  server_->Stop();
  EXPECT_FALSE(f->Lease(clock_.Now()).has_value());
  EXPECT_TRUE(f->health().ok()) << "an outage just begun is waited out";
  const absl::Time deadline = clock_.Now() + absl::Seconds(5);
  while (f->health().ok() && clock_.Now() < deadline) {
    (void)f->Lease(clock_.Now());
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(absl::IsUnavailable(f->health())) << f->health();
  EXPECT_THAT(std::string(f->health().message()), HasSubstr("unreachable for more than 200ms"));
}

// Batching: leases come 32 to a round trip and outcomes 256 to one.
TEST_F(RedisFrontierTest, RoundTripsPerTaskAreFewWhenBatched) {
  RedisFrontierOptions options = Options(2);
  options.ack_interval = absl::Seconds(10);  // batches are sent when full, or by Lease
  auto f = Open(options);
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->Add({Root()}).ok());
  std::optional<Task> root = f->Lease(clock_.Now());
  std::vector<Task> leaves;
  for (int i = 0; i < 2000; ++i) leaves.push_back(Child(1, "d" + std::to_string(i)));
  ASSERT_TRUE(f->Complete(root->id, std::move(leaves)).ok());
  const int64_t before = f->round_trips();
  int tasks = 0;
  while (std::optional<Task> t = f->Lease(clock_.Now())) {
    ASSERT_TRUE(f->Complete(t->id, {}).ok());
    ++tasks;
  }
  ASSERT_TRUE(f->Flush().ok());
  EXPECT_EQ(tasks, 2000);
  const double per_task = static_cast<double>(f->round_trips() - before) / tasks;
  EXPECT_LT(per_task, 0.1) << f->round_trips() - before << " round trips";
  EXPECT_EQ(f->counts().done, 2001);
}

TEST_F(RedisFrontierTest, CrawlMetaIsKeptAndReservedKeysAreRefused) {
  std::shared_ptr<RedisClient> client = Connect();
  ASSERT_TRUE(SetRedisCrawlMeta(*client, "crawl-1", {{"spec", "{}"}, {"weight", "3"}}).ok());
  auto spec = GetRedisCrawlMeta(*client, "crawl-1", "spec");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->value_or(""), "{}");
  EXPECT_FALSE(GetRedisCrawlMeta(*client, "crawl-1", "nothing")->has_value());
  EXPECT_THAT(std::string(SetRedisCrawlMeta(*client, "crawl-1", {{"_levels", "9"}}).message()),
              HasSubstr("reserved"));
  EXPECT_FALSE(SetRedisCrawlMeta(*client, "bad id", {{"a", "b"}}).ok());
}

}  // namespace
}  // namespace fanout
