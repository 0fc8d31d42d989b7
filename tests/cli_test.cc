// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// End-to-end tests of the `fanout` command: it runs as a child process
// against the mock API served in this process on loopback, from specs written
// here: every pagination style, a kill -9 and resume, dead letters with status
// and redrive, a time-boxed run, metrics, exit codes, and secrets that never
// show.

#include <curl/curl.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mock_api_server.h"
#include "support/files.h"
#include "support/process.h"

namespace fanout {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::CountFiles;
using testing::FreshDir;
using testing::Lines;
using testing::RecordKeys;
using testing::ReadFile;
using testing::Spawn;
using testing::WaitFor;

constexpr char kFanout[] = FANOUT_CLI;

struct Outcome {
  int exit_code = -1;
  std::string out, err;
};

// Runs `fanout args...` in `dir` to completion.
Outcome Fanout(const std::string& dir, std::vector<std::string> args, const std::vector<std::string>& env = {}) {
  static int runs = 0;
  const std::string tag = std::to_string(++runs);
  const std::string out = dir + "/stdout." + tag, err = dir + "/stderr." + tag;
  args.insert(args.begin(), kFanout);
  const pid_t pid = Spawn(args, out, err, env);
  Outcome outcome;
  if (pid > 0) outcome.exit_code = WaitFor(pid);
  outcome.out = ReadFile(out);
  outcome.err = ReadFile(err);
  return outcome;
}

std::string PaginationJson(mock::Pagination style) {
  switch (style) {
    case mock::Pagination::kCursor:
      return R"({"next_pointer": "/next_cursor", "cursor_param": "cursor"})";
    case mock::Pagination::kNextUrl:
      return R"({"next_pointer": "/next"})";
    case mock::Pagination::kLinkHeader:
      return R"({"link_header": true})";
    case mock::Pagination::kPage:
      return R"({"page_param": "page", "start": 1})";
    case mock::Pagination::kOffset:
      return R"({"offset_param": "offset", "limit_param": "limit", "limit": 3})";
  }
  return "";
}

// A spec for the mock API at `base_url`; `extra` is spliced in as more
// top-level keys (e.g. R"("journal": "j.db",)").
std::string Spec(const std::string& base_url, mock::Pagination style, const std::string& extra = "") {
  const std::string p = PaginationJson(style);
  return absl::StrCat(R"({
  "base_url": ")", base_url, R"(",
  "limits": {"concurrency": 8},
  "retry": {"max_attempts": 3, "base_delay": "10ms", "max_delay": "50ms"},
  )", extra, R"(
  "levels": [
    {"name": "troops", "url": "/troops", "items": "/items", "bind": "troop", "pagination": )", p, R"(},
    {"name": "warriors", "url": "/troops/{troop}/warriors", "items": "/items", "bind": "warrior", "pagination": )", p, R"(},
    {"name": "groups", "url": "/troops/{troop}/warriors/{warrior}/groups", "items": "/items", "bind": "group", "pagination": )", p, R"(},
    {"name": "data", "url": "/troops/{troop}/warriors/{warrior}/groups/{group}/data"}
  ],
  "sinks": {"jsonl": "out/data.jsonl", "tree": "out/tree"}
})");
}

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }


mock::MockApiOptions SmallTree() {
  mock::MockApiOptions options;
  options.troops = 6;
  options.warriors = 4;
  options.groups = 5;  // 120 leaves
  options.page_size = 2;
  return options;
}

TEST(FanoutCommand, CrawlsEveryPaginationStyle) {
  for (mock::Pagination style : {mock::Pagination::kCursor, mock::Pagination::kNextUrl, mock::Pagination::kLinkHeader,
                                 mock::Pagination::kPage, mock::Pagination::kOffset}) {
    SCOPED_TRACE(PaginationJson(style));
    mock::MockApiOptions options = SmallTree();
    options.pagination = style;
    auto server = mock::MockApiServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    const std::string dir = FreshDir("cli_pagination");
    WriteText(dir + "/spec.json", Spec((*server)->base_url(), style));
    Outcome run = Fanout(dir, {"crawl", dir + "/spec.json", "--summary-json", dir + "/summary.json"});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    const std::multiset<std::string> keys = RecordKeys(dir + "/out/data.jsonl");
    EXPECT_EQ(keys.size(), 120u);
    EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 120u);
    EXPECT_EQ(CountFiles(dir + "/out/tree", "data.json"), 120u);
    const std::string summary = ReadFile(dir + "/summary.json");
    EXPECT_THAT(summary, HasSubstr("\"state\":\"done\""));
    EXPECT_THAT(summary, HasSubstr("\"records\":120,"));
    EXPECT_THAT(summary, HasSubstr("\"balanced\":true"));
    EXPECT_THAT(run.err, HasSubstr("fanout: done in"));
  }
}

// kill -9 in the middle of a journaled crawl, then `fanout resume`: every
// leaf exactly once in the JSON lines and in the tree.
TEST(FanoutCommand, ResumesAfterKill) {
  mock::MockApiOptions options = SmallTree();
  options.troops = 20;  // 400 leaves at 300/s: over a second of crawling
  options.rate = 300;
  options.burst = 5;
  auto server = mock::MockApiServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string dir = FreshDir("cli_kill");
  WriteText(dir + "/spec.json", Spec((*server)->base_url(), mock::Pagination::kCursor,
                                     R"("journal": "out/crawl.journal",)"));
  WriteText(dir + "/spec.json", absl::StrReplaceAll(ReadFile(dir + "/spec.json"),
                                                    {{R"("concurrency": 8})", R"("rate": 290, "concurrency": 8})"}}));
  const pid_t pid = Spawn({kFanout, "crawl", dir + "/spec.json"}, dir + "/out.1", dir + "/err.1");
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (Lines(dir + "/out/data.jsonl").size() < 100 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  EXPECT_EQ(WaitFor(pid), 128 + SIGKILL);
  const size_t before = Lines(dir + "/out/data.jsonl").size();
  EXPECT_GE(before, 100u);
  EXPECT_LT(before, 400u) << "the crawl ended before it was killed";

  Outcome status = Fanout(dir, {"status", dir + "/out/crawl.journal"});
  EXPECT_EQ(status.exit_code, 3) << status.err;
  EXPECT_THAT(status.out, HasSubstr("work remains"));
  EXPECT_THAT(status.out, HasSubstr("fanout resume"));

  Outcome resume = Fanout(dir, {"resume", dir + "/out/crawl.journal"});
  EXPECT_EQ(resume.exit_code, 0) << resume.err;
  const std::multiset<std::string> keys = RecordKeys(dir + "/out/data.jsonl");
  EXPECT_EQ(keys.size(), 400u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 400u);
  EXPECT_EQ(CountFiles(dir + "/out/tree", "data.json"), 400u);
  // Crawling again with the same journal goes on from it: nothing to do.
  Outcome again = Fanout(dir, {"crawl", dir + "/spec.json"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.err, HasSubstr("nothing to do; remove the journal for a fresh crawl"));
  EXPECT_EQ(RecordKeys(dir + "/out/data.jsonl").size(), 400u);
  status = Fanout(dir, {"status", dir + "/out/crawl.journal", "--json"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("\"state\":\"finished\",\"pending\":0,"));
  EXPECT_THAT(status.out, HasSubstr("{\"level\":\"data\",\"pending\":0,\"done\":400,\"dead\":0}"));
}

// Poison leaves end as dead letters (exit 4); status names them by reason;
// once the upstream is mended, redrive and resume fetch them.
TEST(FanoutCommand, DeadLettersStatusAndRedrive) {
  mock::MockApiOptions options = SmallTree();
  options.poison_leaf_permille = 100;
  auto poisoned = mock::MockApiServer::Start(options);
  ASSERT_TRUE(poisoned.ok()) << poisoned.status();
  const uint16_t port = (*poisoned)->port();
  const int64_t poison = static_cast<int64_t>((*poisoned)->poison_leaves().size());
  ASSERT_GT(poison, 0);
  const std::string dir = FreshDir("cli_redrive");
  WriteText(dir + "/spec.json", Spec((*poisoned)->base_url(), mock::Pagination::kCursor,
                                     R"("journal": "out/crawl.journal", "dead_letters": "out/dead.jsonl",)"));
  Outcome crawl = Fanout(dir, {"crawl", dir + "/spec.json"});
  EXPECT_EQ(crawl.exit_code, 4) << crawl.err;
  EXPECT_THAT(crawl.err, HasSubstr("tasks dead-lettered, see " + dir + "/out/dead.jsonl"));
  EXPECT_EQ(static_cast<int64_t>(Lines(dir + "/out/dead.jsonl").size()), poison);
  EXPECT_EQ(static_cast<int64_t>(RecordKeys(dir + "/out/data.jsonl").size()), 120 - poison);

  Outcome status = Fanout(dir, {"status", dir + "/out/crawl.journal"});
  EXPECT_EQ(status.exit_code, 4) << status.err;
  EXPECT_THAT(status.out, HasSubstr("finished with dead letters"));
  EXPECT_THAT(status.out, HasSubstr("out of attempts (3 of 3); last: HTTP 500"));

  Outcome bad_level = Fanout(dir, {"redrive", dir + "/out/crawl.journal", "--level", "dat"});
  EXPECT_EQ(bad_level.exit_code, 2);
  EXPECT_THAT(bad_level.err, HasSubstr("no level \"dat\" in this crawl (levels: troops, warriors, groups, data)"));
  Outcome none = Fanout(dir, {"redrive", dir + "/out/crawl.journal", "--reason", "HTTP 404"});
  EXPECT_THAT(none.out, HasSubstr("redrove 0 dead tasks"));

  // The vendor fixes its bug: the same port, no poison.
  (*poisoned)->Stop();
  options.poison_leaf_permille = 0;
  options.port = port;
  auto mended = mock::MockApiServer::Start(options);
  ASSERT_TRUE(mended.ok()) << mended.status();
  Outcome redrive = Fanout(dir, {"redrive", dir + "/out/crawl.journal", "--level", "data", "--reason", "HTTP 500"});
  EXPECT_EQ(redrive.exit_code, 0) << redrive.err;
  EXPECT_THAT(redrive.out, HasSubstr(absl::StrCat("redrove ", poison, " dead tasks")));
  Outcome resume = Fanout(dir, {"resume", dir + "/out/crawl.journal"});
  EXPECT_EQ(resume.exit_code, 0) << resume.err;
  const std::multiset<std::string> keys = RecordKeys(dir + "/out/data.jsonl");
  EXPECT_EQ(keys.size(), 120u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 120u);
}

// --max-duration stops a crawl with work left (exit 3); resume finishes it
// with the same choices, which the journal kept.
TEST(FanoutCommand, TimeBoxedRunsAddUp) {
  mock::MockApiOptions options = SmallTree();
  options.troops = 20;
  auto server = mock::MockApiServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string dir = FreshDir("cli_timebox");
  WriteText(dir + "/spec.json", Spec((*server)->base_url(), mock::Pagination::kCursor,
                                     R"("journal": "out/crawl.journal",)"));
  // The rate comes from the command line, and must hold on resume too.
  Outcome first = Fanout(dir, {"crawl", dir + "/spec.json", "--rate", "200", "--max-duration", "1s", "--jsonl",
                               dir + "/elsewhere/data.jsonl", "--summary-json", dir + "/s1.json"});
  EXPECT_EQ(first.exit_code, 3) << first.err;
  EXPECT_THAT(first.err, HasSubstr("work remains; go on with: fanout resume " + dir + "/out/crawl.journal"));
  EXPECT_THAT(ReadFile(dir + "/s1.json"), HasSubstr("\"state\":\"stopped\",\"exit_code\":3,"));
  const size_t after_first = Lines(dir + "/elsewhere/data.jsonl").size();
  EXPECT_GT(after_first, 0u);
  EXPECT_LT(after_first, 400u);
  Outcome second = Fanout(dir, {"resume", dir + "/out/crawl.journal", "--summary-json", dir + "/s2.json"});
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(ReadFile(dir + "/s2.json"), HasSubstr("\"upstream_rate\":200.000,"));
  EXPECT_EQ(RecordKeys(dir + "/elsewhere/data.jsonl").size(), 400u);
  EXPECT_FALSE(fs::exists(dir + "/out/data.jsonl"));
}

size_t CollectBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// --metrics-port serves Prometheus text while the crawl runs.
TEST(FanoutCommand, ServesMetrics) {
  mock::MockApiOptions options = SmallTree();
  options.troops = 20;
  auto server = mock::MockApiServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string dir = FreshDir("cli_metrics");
  WriteText(dir + "/spec.json", Spec((*server)->base_url(), mock::Pagination::kCursor));
  const pid_t pid = Spawn({kFanout, "crawl", dir + "/spec.json", "--rate", "150", "--metrics-port", "0"},
                          dir + "/out.1", dir + "/err.1");
  ASSERT_GT(pid, 0);
  const std::regex address("metrics at (http://127\\.0\\.0\\.1:[0-9]+/metrics)");
  std::smatch match;
  std::string err;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!std::regex_search(err = ReadFile(dir + "/err.1"), match, address) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(std::regex_search(err, match, address)) << err;
  const std::string url = match[1];
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::string body;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  EXPECT_EQ(WaitFor(pid), 0) << ReadFile(dir + "/err.1");
  ASSERT_EQ(rc, CURLE_OK);
  EXPECT_EQ(status, 200);
  EXPECT_THAT(body, HasSubstr("# TYPE fanout_requests_total counter\n"));
  EXPECT_THAT(body, HasSubstr("fanout_requests_total{level=\"data\"} "));
  EXPECT_THAT(body, ::testing::ContainsRegex("fanout_responses_total\\{level=\"troops\",class=\"2xx\"\\} [1-9]"));
  EXPECT_THAT(body, HasSubstr("fanout_upstream_rate 150\n"));
  EXPECT_THAT(body, HasSubstr("fanout_request_duration_seconds_bucket{level=\"data\",le=\"+Inf\"} "));
}

// A token in the spec (literal, or from the environment) never shows: not in
// the output, the summary, the dead letters, the metrics; and one from the
// environment is not written into the journal either.
TEST(FanoutCommand, SecretsNeverShow) {
  mock::MockApiOptions options = SmallTree();
  options.error_rate = 0.2;
  options.poison_leaf_permille = 100;
  auto server = mock::MockApiServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string dir = FreshDir("cli_secrets");
  const std::string literal = "tok-LITERAL-9f8e7d6c", from_env = "envsecret-1a2b3c4d";
  std::string spec = Spec((*server)->base_url(), mock::Pagination::kCursor,
                          R"("journal": "out/crawl.journal", "dead_letters": "out/dead.jsonl",
  "headers": {"Authorization": "Bearer )" + literal + R"(", "X-Vendor-Key": "${FANOUT_TEST_KEY}"},)");
  WriteText(dir + "/spec.json", spec);
  Outcome crawl = Fanout(dir, {"crawl", dir + "/spec.json", "--summary-json", dir + "/summary.json",
                               "--progress-interval", "0.05s"},
                         {"FANOUT_TEST_KEY=" + from_env});
  EXPECT_EQ(crawl.exit_code, 4) << crawl.err;
  Outcome status = Fanout(dir, {"status", dir + "/out/crawl.journal"});
  const std::string everything = crawl.out + crawl.err + status.out + status.err + ReadFile(dir + "/summary.json") +
                                 ReadFile(dir + "/out/dead.jsonl") + ReadFile(dir + "/out/data.jsonl");
  EXPECT_THAT(everything, HasSubstr("fanout: done"));  // there was output to search
  for (const std::string& secret : {literal, from_env}) {
    EXPECT_THAT(everything, Not(HasSubstr(secret)));
  }
  EXPECT_THAT(ReadFile(dir + "/out/crawl.journal"), Not(HasSubstr(from_env)));
  // The unset variable is a clear error that names it, not the value.
  Outcome unset = Fanout(dir, {"crawl", dir + "/spec.json"});
  EXPECT_EQ(unset.exit_code, 2);
  EXPECT_THAT(unset.err, HasSubstr("headers.X-Vendor-Key: environment variable FANOUT_TEST_KEY is not set"));
}

TEST(FanoutCommand, BadInputGetsClearErrorsAndExitCodes) {
  const std::string dir = FreshDir("cli_errors");
  WriteText(dir + "/bad.json", R"({"base_url": "http://127.0.0.1:1", "levels": [{"name": "a", "url": "/a",
      "pagination": {"page_param": "p"}}, {"name": "b", "url": "/b/{x}"}]})");
  Outcome bad = Fanout(dir, {"crawl", dir + "/bad.json"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr(dir + "/bad.json: levels[0].bind: required for a listing level"));

  Outcome missing = Fanout(dir, {"crawl", dir + "/none.json"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("none.json\": cannot read: No such file or directory"));

  Outcome option = Fanout(dir, {"crawl", dir + "/bad.json", "--max-duraton", "5s"});
  EXPECT_EQ(option.exit_code, 2);
  EXPECT_THAT(option.err, HasSubstr("unknown option --max-duraton for \"crawl\""));

  Outcome value = Fanout(dir, {"crawl", dir + "/bad.json", "--max-duration", "soon"});
  EXPECT_EQ(value.exit_code, 2);
  EXPECT_THAT(value.err, HasSubstr("--max-duration: expected a duration such as \"90s\""));

  Outcome command = Fanout(dir, {"crawll"});
  EXPECT_EQ(command.exit_code, 2);
  EXPECT_THAT(command.err, HasSubstr("unknown command \"crawll\""));

  Outcome no_journal = Fanout(dir, {"resume", dir + "/none.journal"});
  EXPECT_EQ(no_journal.exit_code, 1);
  EXPECT_THAT(no_journal.err, HasSubstr("none.journal\": no such file"));

  WriteText(dir + "/not-a-journal", std::string(4096, 'x'));
  Outcome garbage = Fanout(dir, {"status", dir + "/not-a-journal"});
  EXPECT_EQ(garbage.exit_code, 1);
  EXPECT_THAT(garbage.err, HasSubstr("not a fanout journal, or corrupt"));

  Outcome help = Fanout(dir, {"crawl", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("usage: fanout crawl SPEC [options]"));
  EXPECT_THAT(help.out, HasSubstr("--max-duration=D"));
  Outcome top = Fanout(dir, {"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_THAT(top.out, HasSubstr("3 stopped with work left"));
}

}  // namespace
}  // namespace fanout
