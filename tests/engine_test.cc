// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Engine unit tests: a fake API behind FakeTransport on a FakeEventLoop, so a
// crawl at a strict rate runs in milliseconds and the same way every time.

#include "fanout/engine.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fanout/testing/fake_event_loop.h"
#include "fanout/testing/fake_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fanout {
namespace {

using testing::FakeEventLoop;
using testing::FakeTransport;
using ::testing::HasSubstr;

constexpr char kBase[] = "http://api.test";

// troops -> warriors -> groups -> data, `page_size` items a page, cursor
// pagination ("/next_cursor", ?cursor=N).
struct FakeApi {
  int troops = 3, warriors = 2, groups = 2, page_size = 100;
  std::set<std::string> poison_leaves;     // "t1/w1/g1": always 500
  std::set<std::string> malformed_lists;   // "t1/w1": groups listing is not JSON
  std::map<std::string, int> fail_first;   // url path -> failures (503) before success
  std::map<std::string, int> cut_first;    // "t1/w1/g1" -> leaf bodies cut short (200) before a whole one
  std::map<std::string, int> seen;         // url (without query) -> requests

  std::string Listing(const std::string& prefix, int count, int cursor) const {
    std::string items;
    const int end = std::min(count, cursor + page_size);
    for (int i = cursor; i < end; ++i) {
      absl::StrAppend(&items, i == cursor ? "" : ",", "{\"id\":\"", prefix, i + 1, "\"}");
    }
    const std::string next = end < count ? absl::StrCat("\"", end, "\"") : "null";
    return absl::StrCat("{\"items\":[", items, "],\"next_cursor\":", next, "}");
  }

  FakeTransport::Reply Handle(const Request& request) {
    std::string_view url = request.url;
    url.remove_prefix(std::string_view(kBase).size());
    const size_t q = url.find('?');
    const std::string path(url.substr(0, q));
    int cursor = 0;
    if (q != std::string_view::npos) (void)absl::SimpleAtoi(std::string(url.substr(q + 8)), &cursor);  // "?cursor="
    const int count = ++seen[std::string(request.url)];
    if (auto it = fail_first.find(path); it != fail_first.end() && count <= it->second) {
      return FakeTransport::Json("{}", 503);
    }
    std::vector<std::string> parts = absl::StrSplit(path.substr(1), '/');
    if (parts.size() == 1) return FakeTransport::Json(Listing("t", troops, cursor));
    if (parts.size() == 3) return FakeTransport::Json(Listing("w", warriors, cursor));
    if (parts.size() == 5) {
      if (malformed_lists.contains(parts[1] + "/" + parts[3])) return FakeTransport::Json("{\"items\":[{\"id\"");
      return FakeTransport::Json(Listing("g", groups, cursor));
    }
    const std::string key = parts[1] + "/" + parts[3] + "/" + parts[5];
    if (poison_leaves.contains(key)) return FakeTransport::Json("{}", 500);
    if (auto it = cut_first.find(key); it != cut_first.end() && count <= it->second) {
      return FakeTransport::Json(absl::StrCat("{\"leaf\":\"", key.substr(0, 3)));
    }
    return FakeTransport::Json(absl::StrCat("{\"leaf\":\"", key, "\"}"));
  }
};

CrawlPlan Plan() {
  CrawlPlan plan;
  plan.base_url = kBase;
  Level troops{.name = "troops", .url = "/troops", .items_pointer = "/items", .bind = "troop"};
  troops.pagination = Pagination::NextCursor("/next_cursor", "cursor");
  Level warriors{.name = "warriors", .url = "/troops/{troop}/warriors", .items_pointer = "/items", .bind = "warrior"};
  warriors.pagination = troops.pagination;
  Level groups{.name = "groups", .url = "/troops/{troop}/warriors/{warrior}/groups", .items_pointer = "/items",
               .bind = "group"};
  groups.pagination = troops.pagination;
  Level data{.name = "data", .url = "/troops/{troop}/warriors/{warrior}/groups/{group}/data"};
  plan.levels = {troops, warriors, groups, data};
  return plan;
}

struct Harness {
  FakeEventLoop loop;
  FakeApi api;
  FakeTransport transport{&loop, [this](const Request& r) { return api.Handle(r); }};
  MemoryFrontier frontier{4};
  std::vector<Record> records;
  CallbackSink sink{[this](const Record& r) {
    records.push_back(r);
    return absl::OkStatus();
  }};
  std::unique_ptr<RetryPolicy> policy;
  std::unique_ptr<Engine> engine;
  std::optional<absl::StatusOr<CrawlResult>> result;

  void Build(EngineOptions options = {}, RetryOptions retry = {}) {
    retry.base_delay = absl::Milliseconds(100);
    policy = *RetryPolicy::Create(&loop.clock(), retry, nullptr, 7);
    auto created = Engine::Create(Plan(), EngineParts{&loop, &transport, &frontier, policy.get(), {&sink}, nullptr},
                                  std::move(options));
    ASSERT_TRUE(created.ok()) << created.status();
    engine = *std::move(created);
  }
  void Run() {
    engine->Start([this](absl::StatusOr<CrawlResult> r) { result = std::move(r); });
    loop.RunUntilIdle();
    ASSERT_TRUE(result.has_value()) << "the crawl never finished";
  }
  // Crawls through `other` (a transport scripted by the test, on this loop)
  // with default retries; nullopt if the crawl never finished.
  std::optional<absl::StatusOr<CrawlResult>> RunThrough(FakeTransport& other, EngineOptions options) {
    policy = *RetryPolicy::Create(&loop.clock(), RetryOptions{});
    engine = *Engine::Create(Plan(), EngineParts{&loop, &other, &frontier, policy.get(), {&sink}}, std::move(options));
    engine->Start([this](absl::StatusOr<CrawlResult> r) { result = std::move(r); });
    loop.RunUntilIdle();
    return result;
  }
};

TEST(Engine, CrawlsEveryLeafOnce) {
  Harness h;
  h.Build();
  h.Run();
  ASSERT_TRUE(h.result->ok()) << h.result->status();
  const CrawlResult& result = **h.result;
  EXPECT_EQ(result.state, CrawlResult::State::kDone);
  EXPECT_EQ(h.records.size(), 12u);
  std::set<std::string> keys;
  for (const Record& r : h.records) keys.insert(r.Key());
  EXPECT_EQ(keys.size(), 12u);
  EXPECT_TRUE(keys.contains("troops/t2/warriors/w1/groups/g2"));
  EXPECT_EQ(result.stats.records, 12);
  // Every response took the fake transport's 10 ms: the histogram has the 12
  // leaves between its 5 ms and 25 ms bounds (bounds 2 and 4).
  const LevelStats& leaves = result.stats.levels[3];
  EXPECT_EQ(leaves.latency_count, 12);
  EXPECT_EQ(leaves.latency_sum, absl::Milliseconds(120));
  ASSERT_EQ(leaves.latency_at_most.size(), std::size(kLatencyBounds));
  EXPECT_EQ(leaves.latency_at_most[2], 0);
  EXPECT_EQ(leaves.latency_at_most[4], 12);
  EXPECT_EQ(leaves.latency_at_most.back(), 12);
  // 1 troops page + 3 warriors pages + 6 groups pages + 12 leaves.
  EXPECT_EQ(result.stats.discovered, 22);
  EXPECT_EQ(result.stats.succeeded, 22);
  EXPECT_TRUE(result.stats.balanced());
  EXPECT_EQ(h.transport.sent().size(), 22u);
}

TEST(Engine, FollowsCursorPagination) {
  Harness h;
  h.api.troops = 250;
  h.api.warriors = 1;
  h.api.groups = 1;
  h.api.page_size = 100;
  h.Build();
  h.Run();
  ASSERT_TRUE(h.result->ok()) << h.result->status();
  EXPECT_EQ(h.records.size(), 250u);
  EXPECT_EQ((*h.result)->stats.levels[0].requests, 3) << "pages 0, 100, 200";
}

TEST(Engine, NeverExceedsTheRateOrTheConcurrencyCap) {
  Harness h;
  h.api.troops = 10;
  EngineOptions options;
  options.rate = RateLimitSpec::PerSecond(20, 5);
  options.max_in_flight = 3;
  h.Build(options);
  h.Run();
  ASSERT_TRUE(h.result->ok()) << h.result->status();
  const auto& sent = h.transport.sent();
  ASSERT_EQ(sent.size(), 1u + 10 + 20 + 40);
  EXPECT_LE(h.transport.max_in_flight(), 3);
  // Every 1 s window holds at most rate + burst requests.
  for (size_t i = 0, j = 0; i < sent.size(); ++i) {
    while (j < sent.size() && sent[j].at <= sent[i].at + absl::Seconds(1)) ++j;
    ASSERT_LE(j - i, 25u) << "window starting at request " << i;
  }
  // And the crawl ran at the rate: (71 - 5 burst) / 20 per second.
  EXPECT_NEAR(absl::ToDoubleSeconds((*h.result)->stats.elapsed), 66.0 / 20, 0.2);
}

// Requests the transport sent on its own (redirects, resends) are charged to
// the rate limit: with every call costing two requests upstream, a 10/s limit
// lets through 5 calls a second.
TEST(Engine, ExtraRequestsOnTheWireAreChargedToTheLimit) {
  Harness h;
  h.api.troops = 4;
  h.api.warriors = 1;
  h.api.groups = 5;  // 1 + 4 + 4 + 20 = 29 calls
  FakeTransport transport(&h.loop, [&](const Request& r) {
    FakeTransport::Reply reply = h.api.Handle(r);
    reply.result->requests_sent = 2;
    return reply;
  });
  auto policy = *RetryPolicy::Create(&h.loop.clock(), RetryOptions{});
  EngineOptions options;
  options.rate = RateLimitSpec::PerSecond(10, 1);
  auto engine = *Engine::Create(Plan(), EngineParts{&h.loop, &transport, &h.frontier, policy.get(), {&h.sink}},
                                options);
  std::optional<absl::StatusOr<CrawlResult>> result;
  engine->Start([&](absl::StatusOr<CrawlResult> r) { result = std::move(r); });
  h.loop.RunUntilIdle();
  ASSERT_TRUE(result.has_value() && result->ok());
  EXPECT_EQ(h.records.size(), 20u);
  int64_t extra = 0;
  for (const LevelStats& level : (*result)->stats.levels) extra += level.extra_requests;
  EXPECT_EQ(extra, 29);
  // 58 upstream requests at 10/s: about 5.7 s, not the 2.8 s of 29 at 10/s.
  EXPECT_GE((*result)->stats.elapsed, absl::Seconds(5.5));
}

TEST(Engine, RetriesTransientFailures) {
  Harness h;
  h.api.fail_first["/troops/t1/warriors/w1/groups/g1/data"] = 2;
  h.Build();
  h.Run();
  ASSERT_TRUE(h.result->ok()) << h.result->status();
  EXPECT_EQ(h.records.size(), 12u);
  EXPECT_EQ((*h.result)->stats.levels[3].retries, 2);
  EXPECT_EQ((*h.result)->stats.levels[3].responses_5xx, 2);
  EXPECT_EQ((*h.result)->stats.dead, 0);
}

TEST(Engine, SuccessesFundTheRetryBudget) {
  Harness h;
  h.api.troops = 10;  // 71 requests, 40 of them leaves
  h.api.fail_first["/troops/t9/warriors/w2/groups/g2/data"] = 2;
  auto budget = *RetryBudget::Create(&h.loop.clock(), RetryBudgetOptions{.ratio = 0.1, .min_per_second = 0});
  auto policy = *RetryPolicy::Create(&h.loop.clock(), RetryOptions{}, budget.get());
  auto engine = *Engine::Create(Plan(), EngineParts{&h.loop, &h.transport, &h.frontier, policy.get(), {&h.sink}});
  std::optional<absl::StatusOr<CrawlResult>> result;
  engine->Start([&](absl::StatusOr<CrawlResult> r) { result = std::move(r); });
  h.loop.RunUntilIdle();
  ASSERT_TRUE(result.has_value() && result->ok());
  EXPECT_EQ((*result)->stats.dead, 0) << "the earlier successes paid for both retries";
  EXPECT_EQ(h.records.size(), 40u);
}

TEST(Engine, PoisonLeavesAreDeadLetteredAndTheRestCompletes) {
  Harness h;
  h.api.poison_leaves = {"t1/w2/g1", "t3/w1/g2"};
  RetryOptions retry;
  retry.max_attempts = 3;
  h.Build({}, retry);
  h.Run();
  ASSERT_TRUE(h.result->ok()) << h.result->status();
  const CrawlStats& stats = (*h.result)->stats;
  EXPECT_EQ(h.records.size(), 10u);
  EXPECT_EQ(stats.dead, 2);
  EXPECT_EQ(stats.levels[3].dead, 2);
  EXPECT_EQ(stats.levels[3].retries, 4);
  EXPECT_TRUE(stats.balanced());
}

TEST(Engine, MalformedListingIsDeadLetteredWithAClearReason) {
  Harness h;
  h.api.malformed_lists = {"t2/w1"};
  RetryOptions retry;
  retry.max_attempts = 2;
  h.Build({}, retry);
  std::string temp = ::testing::TempDir() + "/engine_dead_letters.jsonl";
  std::remove(temp.c_str());
  auto dead = DeadLetterLog::Open(temp);
  ASSERT_TRUE(dead.ok()) << dead.status();
  h.engine = *Engine::Create(Plan(), EngineParts{&h.loop, &h.transport, &h.frontier, h.policy.get(), {&h.sink},
                                                 dead->get()});
  h.Run();
  ASSERT_TRUE(h.result->ok()) << h.result->status();
  EXPECT_EQ(h.records.size(), 10u);
  EXPECT_EQ((*h.result)->stats.levels[2].dead, 1);
  ASSERT_TRUE((*dead)->Close().ok());
  std::ifstream in(temp);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_THAT(line, HasSubstr("level \\\"groups\\\""));
  EXPECT_THAT(line, HasSubstr("/troops/t2/warriors/w1/groups"));
  EXPECT_THAT(line, HasSubstr("out of attempts (2 of 2)"));
}

// A leaf document cut short (a 200 whose body is not whole JSON) is never
// written: it is an invalid response, retried; unless the leaf is declared
// not to be JSON.
TEST(Engine, LeafDocumentsMustBeWholeJson) {
  Harness h;
  h.api.cut_first = {{"t1/w1/g1", 1}, {"t3/w2/g2", 2}};
  h.Build();
  h.Run();
  ASSERT_TRUE(h.result->ok()) << h.result->status();
  ASSERT_EQ(h.records.size(), 12u);
  for (const Record& record : h.records) EXPECT_THAT(record.body, ::testing::EndsWith("\"}")) << record.Key();
  EXPECT_EQ((*h.result)->stats.levels[3].invalid, 3);
  EXPECT_EQ((*h.result)->stats.levels[3].retries, 3);

  Harness raw;
  raw.api.cut_first = {{"t1/w1/g1", 1}};
  CrawlPlan plan = Plan();
  plan.levels[3].expect_json = false;
  raw.policy = *RetryPolicy::Create(&raw.loop.clock(), RetryOptions{});
  raw.engine = *Engine::Create(plan, EngineParts{&raw.loop, &raw.transport, &raw.frontier, raw.policy.get(), {&raw.sink}});
  raw.Run();
  ASSERT_TRUE(raw.result->ok()) << raw.result->status();
  EXPECT_EQ((*raw.result)->stats.levels[3].invalid, 0);
  int cut = 0;
  for (const Record& record : raw.records) cut += record.body == "{\"leaf\":\"t1/";
  EXPECT_EQ(cut, 1);
}

TEST(Engine, ThrottlingPausesTheUpstream) {
  Harness h;
  h.api.troops = 1;
  h.api.warriors = 1;
  h.api.groups = 4;
  int throttled = 0;
  absl::Time throttled_at;
  FakeTransport transport(&h.loop, [&](const Request& r) {
    if (r.url.find("/g2/data") != std::string::npos && throttled++ == 0) {
      throttled_at = h.loop.clock().Now();
      return FakeTransport::Json("{}", 429, {{"Retry-After", "30"}});
    }
    return h.api.Handle(r);
  });
  EngineOptions options;
  options.rate = RateLimitSpec::PerSecond(100, 1);
  options.max_in_flight = 1;
  const std::optional<absl::StatusOr<CrawlResult>> result = h.RunThrough(transport, options);
  ASSERT_TRUE(result.has_value() && result->ok());
  EXPECT_EQ(h.records.size(), 4u);
  EXPECT_EQ((*result)->stats.levels[3].throttled, 1);
  EXPECT_EQ((*result)->stats.levels[3].retries, 0) << "a throttle is not a failed attempt";
  // Nothing at all was sent to the upstream during its cooldown.
  for (const auto& sent : transport.sent()) {
    if (sent.at > throttled_at) {
      EXPECT_GE(sent.at - throttled_at, absl::Seconds(30)) << sent.request.url;
    }
  }
}

TEST(Engine, AdaptiveRateFollowsTheUpstreamsHeadersAndRefusals) {
  Harness h;
  h.api.troops = 2;
  h.api.warriors = 2;
  h.api.groups = 5;
  int requests = 0;
  FakeTransport transport(&h.loop, [&](const Request& r) {
    FakeTransport::Reply reply = h.api.Handle(r);
    ++requests;
    if (requests == 10) return FakeTransport::Json("{}", 429, {{"Retry-After", "2"}});
    // From the 20th on, the upstream says 4 remain for the next 2 seconds.
    if (requests >= 20 && reply.result.ok()) reply.result->headers = {{"RateLimit-Remaining", "4"}, {"RateLimit-Reset", "2"}};
    return reply;
  });
  EngineOptions options;
  options.rate = RateLimitSpec::PerSecond(50, 1);
  options.max_in_flight = 1;
  options.adaptive = AdaptiveRateOptions{};
  const std::optional<absl::StatusOr<CrawlResult>> result = h.RunThrough(transport, options);
  ASSERT_TRUE(result.has_value() && result->ok());
  const CrawlStats& stats = (*result)->stats;
  EXPECT_EQ(h.records.size(), 20u);
  EXPECT_EQ(stats.throttled, 1);
  ASSERT_TRUE(stats.adaptive.has_value());
  EXPECT_EQ(stats.adaptive->throttled, 1);
  EXPECT_EQ(stats.adaptive->decreases, 1);
  EXPECT_EQ(stats.adaptive->mode, RateMode::kHeaders);
  EXPECT_DOUBLE_EQ(stats.upstream_rate, 2);  // 4 remaining (none in flight) over 2 s
  EXPECT_DOUBLE_EQ(h.engine->upstream_limiter()->rate_per_second(), 2);
  // After the refusal nothing went out for 2 s; after the headers, no faster than 2/s.
  const auto& sent = transport.sent();
  ASSERT_GE(sent.size(), 25u);
  EXPECT_GE(sent[10].at - sent[9].at, absl::Seconds(2));
  for (size_t i = 21; i < sent.size(); ++i) {
    EXPECT_GE(sent[i].at - sent[i - 1].at, absl::Milliseconds(499)) << i;
  }
}

TEST(Engine, AdaptiveRateNeedsARateOrAModel) {
  Harness h;
  EngineOptions options;
  options.adaptive = AdaptiveRateOptions{};
  auto engine = Engine::Create(Plan(), EngineParts{&h.loop, &h.transport, &h.frontier}, options);
  ASSERT_FALSE(engine.ok());
  EXPECT_THAT(std::string(engine.status().message()), HasSubstr("adaptive"));
  // A model alone sets the pace.
  options.adaptive->model = UpstreamModel{FixedWindowLimit{61, absl::Minutes(1)}, absl::ZeroDuration(), 0};
  engine = Engine::Create(Plan(), EngineParts{&h.loop, &h.transport, &h.frontier}, options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_DOUBLE_EQ((*engine)->upstream_limiter()->rate_per_second(), 1);
  EXPECT_EQ((*engine)->Stats().adaptive->mode, RateMode::kModel);
}

TEST(Engine, SubtreeHookFiresOncePerListingWithCounts) {
  Harness h;
  h.api.poison_leaves = {"t1/w1/g1"};
  RetryOptions retry;
  retry.max_attempts = 1;
  std::vector<SubtreeDone> done;
  EngineOptions options;
  options.on_subtree_done = [&](const SubtreeDone& s) { done.push_back(s); };
  h.Build(options, retry);
  h.Run();
  ASSERT_TRUE(h.result->ok());
  // 1 root + 3 troops + 6 warriors listings.
  ASSERT_EQ(done.size(), 10u);
  EXPECT_TRUE(done.back().path.empty()) << "the whole crawl completes last";
  EXPECT_EQ(done.back().records, 11);
  EXPECT_EQ(done.back().dead, 1);
  for (const SubtreeDone& s : done) {
    if (s.path.size() == 2 && s.path[0].second == "t1" && s.path[1].second == "w1") {
      EXPECT_EQ(s.records, 1);
      EXPECT_EQ(s.dead, 1);
    }
  }
}

TEST(Engine, DeepestFirstKeepsThePendingSetSmall) {
  Harness h;
  h.api.troops = 200;
  h.api.warriors = 5;
  h.api.groups = 5;
  h.api.page_size = 1000;
  EngineOptions options;
  options.max_in_flight = 4;
  h.Build(options);
  int64_t max_pending = 0;
  h.engine->Start([&](absl::StatusOr<CrawlResult> r) { h.result = std::move(r); });
  while (!h.loop.idle()) {
    h.loop.RunUntil(h.loop.clock().Now() + absl::Milliseconds(10));
    max_pending = std::max(max_pending, h.frontier.counts().pending);
  }
  ASSERT_TRUE(h.result.has_value() && h.result->ok());
  EXPECT_EQ(h.records.size(), 5000u);
  // O(depth x fan-out): the troops page's 200 children plus a few dozen more,
  // never the thousands discovered in all.
  EXPECT_LE(max_pending, 260);
}

TEST(Engine, MaxDurationStopsWithWorkRemainingAndBalancedBooks) {
  Harness h;
  h.api.troops = 20;
  EngineOptions options;
  options.rate = RateLimitSpec::PerSecond(10, 1);
  options.max_duration = absl::Seconds(3);
  h.Build(options);
  h.Run();
  ASSERT_TRUE(h.result->ok()) << h.result->status();
  const CrawlResult& result = **h.result;
  EXPECT_EQ(result.state, CrawlResult::State::kStopped);
  EXPECT_GT(result.stats.pending, 0);
  EXPECT_TRUE(result.stats.balanced());
  EXPECT_LE(h.transport.sent().size(), 32u);
}

TEST(Engine, BadPlansAreRefused) {
  FakeEventLoop loop;
  FakeApi api;
  FakeTransport transport(&loop, [&](const Request& r) { return api.Handle(r); });
  MemoryFrontier frontier(4);
  CrawlPlan plan = Plan();
  plan.levels[1].items_pointer = "items";
  auto engine = Engine::Create(plan, EngineParts{&loop, &transport, &frontier});
  ASSERT_FALSE(engine.ok());
  EXPECT_THAT(engine.status().message(),
              HasSubstr("levels[1] \"warriors\": items pointer must be a JSON pointer such as \"/items\", got \"items\""));
  EXPECT_FALSE(Engine::Create(Plan(), EngineParts{&loop, nullptr, &frontier}).ok());
}

}  // namespace
}  // namespace fanout
