// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// `fanout status JOURNAL` and `fanout redrive JOURNAL` (or, with --redis, a
// shared crawl's id): look into a crawl's state, and give its dead letters
// another chance.

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "args.h"
#include "commands.h"
#include "fanout/clock.h"
#include "fanout/redis_client.h"
#include "fanout/redis_frontier.h"
#include "fanout/spec.h"
#include "fanout/sqlite_frontier.h"
#include "progress.h"

namespace fanout::cli {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "fanout: %s\n", std::string(status.message()).c_str());
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitError;
}

// The level names of the crawl a journal records (from its stored spec);
// empty if it has none.
std::vector<std::string> LevelNames(const JournalSummary& summary) {
  for (const auto& [key, value] : summary.meta) {
    if (key != "cli.spec") continue;
    // Only the names are needed: parse without the environment, so a spec
    // whose variables are unset here still names its levels.
    SpecOptions options;
    options.env = [](const std::string&) -> std::optional<std::string> { return std::string("-"); };
    auto spec = ParseCrawlSpec(value, options);
    if (!spec.ok()) return {};
    std::vector<std::string> names;
    for (const Level& level : spec->plan.levels) names.push_back(level.name);
    return names;
  }
  return {};
}

// A shared crawl's state, in the journal's terms, so one display serves both.
absl::StatusOr<JournalSummary> InspectShared(const std::string& url, const std::string& crawl_id, size_t reasons) {
  SystemClock clock;
  auto client = RedisClient::Connect(url, &clock);
  if (!client.ok()) return client.status();
  auto crawl = InspectRedisCrawl(**client, crawl_id, reasons);
  if (!crawl.ok()) return crawl.status();
  JournalSummary summary;
  for (size_t i = 0; i < crawl->pending_by_level.size(); ++i) {
    JournalSummary::LevelCounts level;
    level.level = static_cast<uint32_t>(i);
    // Leased tasks are being worked on: still pending, for this display.
    level.pending = crawl->pending_by_level[i] + crawl->leased_by_level[i];
    level.done = crawl->done_by_level[i];
    level.dead = crawl->dead_by_level[i];
    summary.levels.push_back(level);
  }
  summary.dead_by_reason = std::move(crawl->dead_by_reason);
  summary.meta = std::move(crawl->meta);
  return summary;
}

std::string LevelName(const std::vector<std::string>& names, uint32_t level) {
  return level < names.size() ? names[level] : absl::StrCat("level ", level);
}

}  // namespace

int StatusCommand(const std::vector<std::string>& args) {
  bool json = false;
  int reasons = 10;
  Options options("status", "status JOURNAL [options]",
                  "Shows what a crawl's journal holds: tasks by level and state (pending, done, dead), dead letters\n"
                  "by reason, and records stored. Safe while the crawl runs. Exit code 0, or 3 when work remains,\n"
                  "or 4 when only dead letters remain.");
  options.Bool("json", "print JSON instead of a table", &json);
  options.Int("reasons", "how many dead-letter reasons to show", &reasons, 1, 1000);
  std::string redis_url;
  options.String("redis", "URL", "the crawl is a shared one in this Redis: give its crawl id instead of a journal",
                 &redis_url);
  std::vector<std::string> positional;
  if (auto code = options.ParseOrExit(args, &positional, 1, 1, "fanout")) return *code;
  auto summary = redis_url.empty() ? InspectJournal(positional[0], static_cast<size_t>(reasons))
                                   : InspectShared(redis_url, positional[0], static_cast<size_t>(reasons));
  if (!summary.ok()) return Fail(summary.status());
  const std::vector<std::string> names = LevelNames(*summary);
  int64_t pending = 0, done = 0, dead = 0;
  for (const auto& level : summary->levels) {
    pending += level.pending;
    done += level.done;
    dead += level.dead;
  }
  const int code = pending > 0 ? kExitMoreWork : dead > 0 ? kExitDeadLetters : kExitDone;
  const char* state = pending > 0 ? "work remains" : dead > 0 ? "finished with dead letters" : "finished";
  if (json) {
    std::string out = absl::StrFormat("{\"journal\":%s,\"state\":%s,\"pending\":%d,\"done\":%d,\"dead\":%d,"
                                      "\"records\":%d,\"levels\":[",
                                      JsonString(positional[0]), JsonString(state), pending, done, dead,
                                      summary->records);
    for (size_t i = 0; i < summary->levels.size(); ++i) {
      const auto& level = summary->levels[i];
      absl::StrAppendFormat(&out, "%s{\"level\":%s,\"pending\":%d,\"done\":%d,\"dead\":%d}", i == 0 ? "" : ",",
                            JsonString(LevelName(names, level.level)), level.pending, level.done, level.dead);
    }
    out += "],\"dead_by_reason\":[";
    for (size_t i = 0; i < summary->dead_by_reason.size(); ++i) {
      const auto& [reason, count] = summary->dead_by_reason[i];
      absl::StrAppendFormat(&out, "%s{\"reason\":%s,\"count\":%d}", i == 0 ? "" : ",", JsonString(reason), count);
    }
    out += "]}\n";
    std::fputs(out.c_str(), stdout);
    return code;
  }
  if (redis_url.empty()) {
    std::printf("journal %s: %s\n", positional[0].c_str(), state);
  } else {
    std::printf("crawl %s in %s: %s\n", positional[0].c_str(), RedactRedisUrl(redis_url).c_str(), state);
  }
  std::printf("  %-16s %12s %12s %10s\n", "level", "pending", "done", "dead");
  for (const auto& level : summary->levels) {
    std::printf("  %-16s %12s %12s %10s\n", LevelName(names, level.level).c_str(), Thousands(level.pending).c_str(),
                Thousands(level.done).c_str(), Thousands(level.dead).c_str());
  }
  std::printf("  %-16s %12s %12s %10s\n", "all", Thousands(pending).c_str(), Thousands(done).c_str(),
              Thousands(dead).c_str());
  if (summary->records > 0) std::printf("records in the journal: %s\n", Thousands(summary->records).c_str());
  if (!summary->dead_by_reason.empty()) {
    std::printf("dead letters by reason:\n");
    for (const auto& [reason, count] : summary->dead_by_reason) {
      std::printf("  %10s  %s\n", Thousands(count).c_str(), reason.c_str());
    }
  }
  if (pending > 0 && redis_url.empty()) std::printf("go on with: fanout resume %s\n", positional[0].c_str());
  return code;
}

int RedriveCommand(const std::vector<std::string>& args) {
  std::string level_name, reason;
  Options options("redrive", "redrive JOURNAL [--level L] [--reason R]",
                  "Puts a journal's dead-lettered tasks back to pending with fresh attempts, so the next\n"
                  "`fanout resume JOURNAL` tries them again: all of them, or those of one level, and/or those whose\n"
                  "last error contains R. The crawl must not be running.");
  options.String("level", "L", "only tasks of this level (its name in the spec, or its index from 0)", &level_name);
  options.String("reason", "R", "only tasks whose last error contains R", &reason);
  std::string redis_url;
  options.String("redis", "URL",
                 "the crawl is a shared one in this Redis: give its crawl id; its running workers take the\n"
                 "revived tasks at once",
                 &redis_url);
  std::vector<std::string> positional;
  if (auto code = options.ParseOrExit(args, &positional, 1, 1, "fanout")) return *code;
  auto summary = redis_url.empty() ? InspectJournal(positional[0]) : InspectShared(redis_url, positional[0], 1);
  if (!summary.ok()) return Fail(summary.status());
  std::optional<uint32_t> level;
  if (!level_name.empty()) {
    const std::vector<std::string> names = LevelNames(*summary);
    for (uint32_t i = 0; i < names.size(); ++i) {
      if (names[i] == level_name) level = i;
    }
    uint32_t index = 0;
    if (!level.has_value() && absl::SimpleAtoi(level_name, &index)) level = index;
    if (!level.has_value()) {
      std::string known;
      for (const std::string& name : names) absl::StrAppend(&known, known.empty() ? "" : ", ", name);
      std::fprintf(stderr, "fanout: --level: no level \"%s\" in this crawl (levels: %s)\n", level_name.c_str(),
                   known.empty() ? "unknown; give an index" : known.c_str());
      return kExitUsage;
    }
  }
  if (!redis_url.empty()) {
    SystemClock clock;
    auto client = RedisClient::Connect(redis_url, &clock);
    if (!client.ok()) return Fail(client.status());
    auto revived = RedriveRedisCrawl(**client, positional[0], level, reason);
    if (!revived.ok()) return Fail(revived.status());
    std::printf("redrove %s dead tasks of crawl %s; its workers take them (or start one with fanout crawl SPEC "
                "--redis URL --crawl-id %s)\n",
                Thousands(*revived).c_str(), positional[0].c_str(), positional[0].c_str());
    return kExitDone;
  }
  auto revived = RedriveJournal(positional[0], level, reason);
  if (!revived.ok()) return Fail(revived.status());
  std::printf("redrove %s dead tasks; run: fanout resume %s\n", Thousands(*revived).c_str(), positional[0].c_str());
  return kExitDone;
}

}  // namespace fanout::cli
