// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/spec.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <variant>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fanout {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// The mock API's four levels, each with another pagination style.
constexpr char kSpec[] = R"json({
  "base_url": "http://127.0.0.1:8080",
  "headers": {"Authorization": "Bearer ${VENDOR_TOKEN}", "Accept": "application/json"},
  "timeouts": {"connect": "5s", "request": 30},
  "limits": {"rate": 500, "burst": 10, "concurrency": 32, "adaptive": true},
  "retry": {"max_attempts": 6, "base_delay": "100ms", "max_delay": "10s", "jitter": "decorrelated", "budget": 0.2},
  "levels": [
    {"name": "troops", "url": "/troops", "items": "/items", "bind": "troop",
     "pagination": {"next_pointer": "/next_cursor", "cursor_param": "cursor"}},
    {"name": "warriors", "url": "/troops/{troop}/warriors", "items": "/items", "bind": "warrior",
     "pagination": {"link_header": true}, "limits": {"rate": "600/m", "burst": 5, "concurrency": 4}},
    {"name": "groups", "url": "/troops/{troop}/warriors/{warrior}/groups", "items": "/items", "id": "id",
     "bind": "group", "capture": ["region"], "pagination": {"offset_param": "offset", "limit_param": "limit", "limit": 50}},
    {"name": "data", "url": "/troops/{troop}/warriors/{warrior}/groups/{group}/data"}
  ],
  "sinks": {"jsonl": "out/data.jsonl", "tree": "/abs/tree", "success_markers": true, "sqlite": true},
  "journal": "crawl.journal",
  "dead_letters": "out/dead.jsonl"
})json";

SpecOptions Options() {
  SpecOptions options;
  options.name = "spec.json";
  options.base_dir = "/work/specs";
  options.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "VENDOR_TOKEN") return "s3cr3t-token";
    return std::nullopt;
  };
  return options;
}

TEST(CrawlSpec, ReadsEveryField) {
  auto spec = ParseCrawlSpec(kSpec, Options());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->plan.base_url, "http://127.0.0.1:8080");
  EXPECT_THAT(spec->run.engine.headers, ElementsAre(Pair("Authorization", "Bearer s3cr3t-token"),
                                                    Pair("Accept", "application/json")));
  EXPECT_THAT(spec->secrets, ElementsAre("Bearer s3cr3t-token", "s3cr3t-token"));
  EXPECT_EQ(spec->run.connect_timeout, absl::Seconds(5));
  EXPECT_EQ(spec->run.request_timeout, absl::Seconds(30));
  ASSERT_TRUE(spec->run.engine.rate.has_value());
  EXPECT_EQ(spec->run.engine.rate->rate_per_second, 500);
  EXPECT_EQ(spec->run.engine.rate->burst, 10);
  EXPECT_EQ(spec->run.engine.max_in_flight, 32);
  ASSERT_TRUE(spec->run.engine.adaptive.has_value());
  EXPECT_FALSE(spec->run.engine.adaptive->model.has_value());
  EXPECT_EQ(spec->run.retry.max_attempts, 6);
  EXPECT_EQ(spec->run.retry.base_delay, absl::Milliseconds(100));
  EXPECT_EQ(spec->run.retry.max_delay, absl::Seconds(10));
  EXPECT_EQ(spec->run.retry.jitter, Jitter::kDecorrelated);
  EXPECT_DOUBLE_EQ(spec->run.retry_budget.ratio, 0.2);

  ASSERT_EQ(spec->plan.levels.size(), 4u);
  const Level& troops = spec->plan.levels[0];
  EXPECT_EQ(troops.pagination.kind, Pagination::Kind::kNextCursor);
  EXPECT_EQ(troops.pagination.pointer, "/next_cursor");
  EXPECT_EQ(troops.pagination.param, "cursor");
  const Level& warriors = spec->plan.levels[1];
  EXPECT_EQ(warriors.pagination.kind, Pagination::Kind::kLinkHeader);
  ASSERT_TRUE(warriors.rate.has_value());
  // 600 a minute with a burst of 5: (600 - 5) / 60 s sustained, so no minute exceeds 600.
  EXPECT_NEAR(warriors.rate->rate_per_second, 595.0 / 60, 1e-9);
  EXPECT_EQ(warriors.rate->burst, 5);
  EXPECT_EQ(warriors.max_in_flight, 4);
  const Level& groups = spec->plan.levels[2];
  EXPECT_EQ(groups.pagination.kind, Pagination::Kind::kOffset);
  EXPECT_EQ(groups.pagination.limit, 50);
  EXPECT_THAT(groups.capture, ElementsAre("region"));
  EXPECT_EQ(spec->plan.levels[3].name, "data");
  EXPECT_TRUE(spec->plan.levels[3].expect_json);

  EXPECT_EQ(spec->output.jsonl, "/work/specs/out/data.jsonl");
  EXPECT_EQ(spec->output.tree, "/abs/tree");
  EXPECT_TRUE(spec->output.success_markers);
  EXPECT_TRUE(spec->output.sqlite);
  EXPECT_EQ(spec->run.journal, "/work/specs/crawl.journal");
  EXPECT_EQ(spec->output.dead_letters, "/work/specs/out/dead.jsonl");
}

TEST(CrawlSpec, PaginationStyles) {
  auto with = [](const std::string& pagination) {
    return absl::StrReplaceAll(kSpec, {{R"("pagination": {"link_header": true})", pagination}});
  };
  auto next_url = ParseCrawlSpec(with(R"("pagination": {"next_pointer": "/next"})"), Options());
  ASSERT_TRUE(next_url.ok()) << next_url.status();
  EXPECT_EQ(next_url->plan.levels[1].pagination.kind, Pagination::Kind::kNextUrl);
  EXPECT_EQ(next_url->plan.levels[1].pagination.pointer, "/next");
  auto page = ParseCrawlSpec(with(R"("pagination": {"page_param": "page", "start": 0})"), Options());
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->plan.levels[1].pagination.kind, Pagination::Kind::kPage);
  EXPECT_EQ(page->plan.levels[1].pagination.param, "page");
  EXPECT_EQ(page->plan.levels[1].pagination.start, 0);
}

TEST(CrawlSpec, AdaptiveControlAndUpstreamModels) {
  auto tuned = ParseCrawlSpec(R"({"base_url": "https://h", "levels": [{"name": "doc", "url": "/doc"}],
      "limits": {"rate": 100, "adaptive": {"rate_limit_headers": false, "min_rate": 0.5, "decrease_factor": 0.7,
                                           "probe_delay": "20s", "probe_per_second": 0.02, "max_pause": "1m"}}})");
  ASSERT_TRUE(tuned.ok()) << tuned.status();
  ASSERT_TRUE(tuned->run.engine.adaptive.has_value());
  const AdaptiveRateOptions& a = *tuned->run.engine.adaptive;
  EXPECT_FALSE(a.use_rate_limit_headers);
  EXPECT_EQ(a.min_rate, 0.5);
  EXPECT_EQ(a.decrease_factor, 0.7);
  EXPECT_EQ(a.probe_delay, absl::Seconds(20));
  EXPECT_EQ(a.probe_per_second, 0.02);
  EXPECT_EQ(a.max_pause, absl::Minutes(1));

  // A declared model turns adaptive control on, and paces the crawl when no
  // rate is given.
  auto nginx = ParseCrawlSpec(R"({"base_url": "https://h", "levels": [{"name": "doc", "url": "/doc"}],
      "limits": {"upstream": {"model": "nginx", "rate": "30r/m", "burst": 5, "nodelay": true, "jitter": "2ms"}}})");
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  ASSERT_TRUE(nginx->run.engine.adaptive.has_value());
  ASSERT_TRUE(nginx->run.engine.adaptive->model.has_value());
  const UpstreamModel& model = *nginx->run.engine.adaptive->model;
  const auto* limit = std::get_if<NginxLimitReq>(&model.limiter);
  ASSERT_NE(limit, nullptr);
  EXPECT_EQ(limit->rate_millis, 500);  // 30 * 1000 / 60
  EXPECT_EQ(limit->burst, 5);
  EXPECT_TRUE(limit->nodelay);
  EXPECT_EQ(model.jitter, absl::Milliseconds(2));
  ASSERT_TRUE(nginx->run.engine.rate.has_value());
  EXPECT_LE(nginx->run.engine.rate->rate_per_second, 0.5);
  EXPECT_GE(nginx->run.engine.rate->rate_per_second, 0.5 * 0.97);

  auto window = ParseCrawlSpec(R"({"base_url": "https://h", "levels": [{"name": "doc", "url": "/doc"}],
      "limits": {"rate": 10, "upstream": {"model": "fixed_window", "requests": 5000, "window": "1h"}}})");
  ASSERT_TRUE(window.ok()) << window.status();
  EXPECT_EQ(std::get<FixedWindowLimit>(window->run.engine.adaptive->model->limiter).max_requests, 5000);
  EXPECT_EQ(window->run.engine.rate->rate_per_second, 10);  // the configured ceiling stays

  auto bucket = ParseCrawlSpec(R"({"base_url": "https://h", "levels": [{"name": "doc", "url": "/doc"}],
      "limits": {"upstream": {"model": "leaky_bucket", "capacity": 40, "leak_per_second": 2}}})");
  ASSERT_TRUE(bucket.ok()) << bucket.status();
  EXPECT_EQ(std::get<LeakyBucketLimit>(bucket->run.engine.adaptive->model->limiter).capacity, 40);
}

TEST(CrawlSpec, DefaultsWhenLeftOut) {
  auto spec = ParseCrawlSpec(R"({"base_url": "https://api.example.com", "levels": [{"name": "doc", "url": "/doc"}]})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->run.engine.rate.has_value());
  EXPECT_EQ(spec->run.engine.max_in_flight, 64);
  EXPECT_TRUE(spec->run.journal.empty());
  EXPECT_TRUE(spec->output.jsonl.empty());
  EXPECT_TRUE(spec->secrets.empty());
  EXPECT_FALSE(spec->run.engine.adaptive.has_value());
  EXPECT_FALSE(spec->run.journal_sync_full);
}

TEST(CrawlSpec, JournalSyncFullNeedsAJournal) {
  auto full = ParseCrawlSpec(R"({"base_url": "https://h", "journal": "j.db", "journal_sync": "full",
                                 "levels": [{"name": "doc", "url": "/doc"}]})");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_TRUE(full->run.journal_sync_full);
  auto alone = ParseCrawlSpec(R"({"base_url": "https://h", "journal_sync": "full",
                                  "levels": [{"name": "doc", "url": "/doc"}]})");
  EXPECT_THAT(std::string(alone.status().message()), ::testing::HasSubstr("journal_sync: needs \"journal\""));
}

TEST(CrawlSpec, SecretHeadersAreKnownByNameToo) {
  auto spec = ParseCrawlSpec(R"({"base_url": "https://h", "headers": {"X-Api-Key": "k-123456", "Accept": "*/*",
      "Cookie": "sid=abcdef"}, "levels": [{"name": "doc", "url": "/doc"}]})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->secrets, ElementsAre("k-123456", "sid=abcdef"));
  EXPECT_EQ(Redact("GET failed with key k-123456 and sid=abcdef", spec->secrets),
            "GET failed with key [redacted] and [redacted]");
  EXPECT_TRUE(IsSecretHeaderName("authorization"));
  EXPECT_TRUE(IsSecretHeaderName("X-Auth-Token"));
  EXPECT_FALSE(IsSecretHeaderName("Accept"));
}

TEST(CrawlSpec, EnvironmentReferences) {
  SpecOptions options = Options();
  options.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "A") return "alpha";
    return std::nullopt;
  };
  auto spec = ParseCrawlSpec(R"({"base_url": "https://h", "headers": {"X-Tag": "${A}-$$5-$x"},
      "levels": [{"name": "doc", "url": "/doc"}]})",
                             options);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->run.engine.headers, ElementsAre(Pair("X-Tag", "alpha-$5-$x")));
  // A header filled from the environment is a secret, whatever its name.
  EXPECT_THAT(spec->secrets, ElementsAre("alpha-$5-$x"));
}

TEST(CrawlSpec, LoadsAFileAndResolvesPathsAgainstIt) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "fanout_spec_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "crawl.json").string();
  std::ofstream(path) << R"({"base_url": "https://h", "levels": [{"name": "doc", "url": "/doc"}],
      "sinks": {"jsonl": "data.jsonl"}})";
  auto spec = LoadCrawlSpec(path);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->output.jsonl, (dir / "data.jsonl").string());
  auto missing = LoadCrawlSpec((dir / "missing.json").string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("missing.json\": cannot read: No such file or directory"));
}

// Every validation error: a change to the valid spec, and the message it must
// give (which names the key path and the problem).
TEST(CrawlSpec, EveryValidationErrorNamesTheKeyPath) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> cases = {
      {{{R"("base_url": "http://127.0.0.1:8080",)", ""}}, "spec.json: base_url: required"},
      {{{R"("http://127.0.0.1:8080")", R"("ftp://h")"}}, R"(base_url: expected an http:// or https:// URL, got "ftp://h")"},
      {{{R"("http://127.0.0.1:8080")", "8080"}}, "base_url: expected a string, got a number 8080"},
      {{{R"("journal")", R"("jorunal")"}}, "jorunal: unknown key (expected one of: base_url,"},
      {{{R"("dead_letters")", R"("journal_sync": "often", "dead_letters")"}},
       R"(journal_sync: expected "normal" (survives a crash of the process) or "full")"},
      {{{R"("Accept": "application/json")", R"("Accept": 3)"}}, "headers.Accept: expected a string, got a number 3"},
      {{{R"("Accept": "application/json")", R"("Bad Name": "x")"}}, "headers.Bad Name: not a valid header name"},
      {{{"${VENDOR_TOKEN}", "${NOT_SET}"}}, "headers.Authorization: environment variable NOT_SET is not set"},
      {{{"${VENDOR_TOKEN}", "${VENDOR_TOKEN"}}, R"(headers.Authorization: unterminated "${")"},
      {{{"${VENDOR_TOKEN}", "${1X}"}}, R"(headers.Authorization: "${1X}" is not an environment variable name)"},
      {{{R"("connect": "5s")", R"("connect": "soon")"}},
       R"(timeouts.connect: expected a duration such as "250ms", "30s" or "5m", got "soon")"},
      {{{R"("connect": "5s")", R"("connect": "-5s")"}}, R"(timeouts.connect: must be > 0, got "-5s")"},
      {{{R"("connect": "5s")", R"("connnect": "5s")"}}, "timeouts.connnect: unknown key (expected one of: connect, request)"},
      {{{R"("rate": 500,)", R"("rate": 0,)"}}, "limits.rate: requests per second must be > 0 and <= 1e9, got 0"},
      {{{R"("rate": 500,)", R"("rate": "lots",)"}}, R"(limits.rate: expected a number of requests per second, or "N/s")"},
      {{{R"("rate": 500,)", R"("rate": "5/w",)"}}, R"(got "5/w")"},
      {{{R"("rate": 500, "burst": 10,)", R"("burst": 10,)"}}, "limits.burst: a burst needs a rate"},
      {{{R"("burst": 10,)", R"("burst": 0,)"}}, "limits.burst: must be in 1..1000000000, got 0"},
      {{{R"("concurrency": 32)", R"("concurrency": 2.5)"}}, "limits.concurrency: expected an integer in 1..100000, got a number 2.5"},
      {{{R"("adaptive": true)", R"("adaptive": "yes")"}}, R"(limits.adaptive: expected true, false or an object, got a string "yes")"},
      {{{R"("rate": "600/m", "burst": 5,)", R"("rate": "600/m", "burst": 600,)"}},
       "levels[1].limits.burst: must be below the window's 600 requests, got 600"},
      {{{R"("concurrency": 4})", R"("concurrency": 4, "adaptive": true})"}},
       "levels[1].limits.adaptive: unknown key (expected one of: rate, burst, concurrency)"},
      {{{R"("adaptive": true)", R"("adaptive": {"min_rate": 0})"}}, "limits.adaptive.min_rate: must be > 0, got 0"},
      {{{R"("adaptive": true)", R"("adaptive": {"decrease_factor": 1})"}},
       "limits.adaptive.decrease_factor: must be in (0, 1), got 1"},
      {{{R"("adaptive": true)", R"("adaptive": {"probe": 1})"}}, "limits.adaptive.probe: unknown key"},
      {{{R"("rate": 500, "burst": 10, )", ""}}, "limits.adaptive: needs limits.rate (the most to send) or limits.upstream"},
      {{{R"("adaptive": true)", R"("upstream": {"rate": "10r/s"})"}},
       R"(limits.upstream.model: required: "nginx", "fixed_window" or "leaky_bucket")"},
      {{{R"("adaptive": true)", R"("upstream": {"model": "haproxy"})"}},
       R"(limits.upstream.model: expected "nginx", "fixed_window" or "leaky_bucket", got "haproxy")"},
      {{{R"("adaptive": true)", R"("upstream": {"model": "nginx", "rate": "10/s"})"}}, "limits.upstream.rate: "},
      {{{R"("adaptive": true)", R"("upstream": {"model": "nginx"})"}}, "limits.upstream.rate: required"},
      {{{R"("adaptive": true)", R"("upstream": {"model": "nginx", "rate": "1r/s", "window": "1m"})"}},
       "limits.upstream.window: unknown key (expected one of: model, rate, burst, nodelay, jitter)"},
      {{{R"("adaptive": true)", R"("upstream": {"model": "fixed_window", "requests": 100})"}},
       "limits.upstream.window: required"},
      {{{R"("adaptive": true)", R"("upstream": {"model": "leaky_bucket", "capacity": 40, "leak_per_second": 0})"}},
       "limits.upstream.leak_per_second: must be > 0, got 0"},
      {{{R"("max_attempts": 6)", R"("max_attempts": 0)"}}, "retry.max_attempts: must be in 1..1000, got 0"},
      {{{R"("jitter": "decorrelated")", R"("jitter": "some")"}},
       R"(retry.jitter: expected "none", "full" or "decorrelated", got "some")"},
      {{{R"("base_delay": "100ms")", R"("base_delay": "1m")"}}, "retry: base_delay (1m) must not exceed max_delay (10s)"},
      {{{R"("budget": 0.2)", R"("budget": true)"}}, "retry.budget: expected false or a ratio such as 0.1"},
      {{{R"("budget": 0.2)", R"("budgett": 0.2)"}}, "retry.budgett: unknown key"},
      {{{R"("levels": [)", R"("levels": {"x": [)"}, {R"(}
  ],)", R"(}
  ]},)"}},
       "levels: expected an array of levels, got an object"},
      {{{R"("name": "troops", )", ""}}, "levels[0].name: required"},
      {{{R"("name": "troops")", R"("name": "")"}}, "levels[0].name: must not be empty"},
      {{{R"("url": "/troops", "items": "/items", "bind": "troop")", R"("url": "/troops", "items": "items", "bind": "troop")"}},
       R"(levels[0].items: expected a JSON pointer such as "/groups", got "items")"},
      {{{R"("bind": "troop",)", ""}}, "levels[0].bind: required for a listing level"},
      {{{R"("capture": ["region"])", R"("capture": "region")"}},
       R"(levels[2].capture: expected an array of field names, got a string "region")"},
      {{{R"("capture": ["region"])", R"("capture": [7])"}}, "levels[2].capture[0]: expected a string, got a number 7"},
      {{{R"("pagination": {"link_header": true})", R"("pagination": {})"}},
       "levels[1].pagination: expected exactly one of next_pointer, link_header, page_param or offset_param"},
      {{{R"("pagination": {"link_header": true})", R"("pagination": {"link_header": true, "page_param": "p"})"}},
       "levels[1].pagination: expected exactly one of next_pointer, link_header, page_param or offset_param, got "
       "link_header and page_param"},
      {{{R"("pagination": {"link_header": true})", R"("pagination": {"link_header": false})"}},
       "levels[1].pagination.link_header: must be true"},
      {{{R"("pagination": {"link_header": true})", R"("pagination": {"next_pointer": "next"})"}},
       R"(levels[1].pagination.next_pointer: expected a JSON pointer such as "/next", got "next")"},
      {{{R"("pagination": {"link_header": true})", R"("pagination": {"next_pointer": "/next", "start": 1})"}},
       "levels[1].pagination.start: unknown key (expected one of: next_pointer, cursor_param)"},
      {{{R"("pagination": {"link_header": true})", R"("pagination": {"page_param": "page", "start": -1})"}},
       "levels[1].pagination.start: must be in 0..1000000, got -1"},
      {{{R"("pagination": {"link_header": true})", R"("pagination": {"offset_param": "offset"})"}},
       "levels[1].pagination.limit_param: required with offset_param"},
      {{{R"("pagination": {"link_header": true})", R"("pagination": {"lnik_header": true})"}},
       "levels[1].pagination.lnik_header: unknown key"},
      {{{R"(/data"})", R"(/data", "items": "/items"})"}},
       "levels[3].items: the last level is the leaf (its documents are the output): it has no items"},
      {{{"{group}/data", "{grop}/data"}}, R"(placeholder {grop})"},
      {{{R"("tree": "/abs/tree", )", ""}}, "sinks.success_markers: needs sinks.tree"},
      {{{R"(/data"})", R"(/data", "format": "csv"})"}}, R"(levels[3].format: expected "json" or "raw", got "csv")"},
      {{{R"("name": "troops", )", R"("name": "troops", "format": "raw", )"}},
       "levels[0].format: only the last level (the leaf) has a format"},
      {{{R"("jsonl": "out/data.jsonl")", R"("jsonl": "")"}}, "sinks.jsonl: must not be empty"},
      {{{R"("sqlite": true)", R"("sqlite": true, "s3": "bucket")"}}, "sinks.s3: unknown key"},
      {{{R"("journal": "crawl.journal",)", ""}}, "sinks.sqlite: records go into the journal's own transaction"},
      {{{R"("dead_letters": "out/dead.jsonl")", R"("dead_letters": false)"}},
       "dead_letters: expected a string, got a boolean false"},
  };
  for (const auto& [changes, expected] : cases) {
    std::string json = kSpec;
    for (const auto& [from, to] : changes) {
      ASSERT_NE(json.find(from), std::string::npos) << "test case does not apply: " << from;
      json = absl::StrReplaceAll(json, {{from, to}});
    }
    auto spec = ParseCrawlSpec(json, Options());
    ASSERT_FALSE(spec.ok()) << "accepted a spec that should fail with: " << expected;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(spec.status().message()), HasSubstr(expected));
    EXPECT_THAT(std::string(spec.status().message()), ::testing::StartsWith("spec.json: "));
    // Errors never echo a secret.
    EXPECT_THAT(std::string(spec.status().message()), ::testing::Not(HasSubstr("s3cr3t")));
  }
}

TEST(CrawlSpec, MalformedDocuments) {
  for (const char* json : {"", "{", "[1,2]", R"({"base_url": "http://h",})", "nul"}) {
    auto spec = ParseCrawlSpec(json, Options());
    ASSERT_FALSE(spec.ok()) << json;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(spec.status().message()), ::testing::StartsWith("spec.json: "));
  }
  EXPECT_THAT(std::string(ParseCrawlSpec("[1]", Options()).status().message()), HasSubstr("expected a JSON object, got an array"));
}

}  // namespace
}  // namespace fanout
