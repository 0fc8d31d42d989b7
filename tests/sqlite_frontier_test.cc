// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/sqlite_frontier.h"

#include <sqlite3.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "fanout/engine.h"
#include "fanout/testing/fake_event_loop.h"
#include "fanout/testing/fake_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fanout {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::FakeClock;

std::string Fresh(const std::string& name) {
  const fs::path path = fs::path(::testing::TempDir()) / ("fanout_journal_" + name + ".db");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
  return path.string();
}

SqliteFrontierOptions Options(const std::string& path, std::string fingerprint = "plan-a") {
  return {.path = path, .plan_fingerprint = std::move(fingerprint), .levels = 3};
}

Task MakeTask(uint32_t level, std::string url, Bindings bindings = {}) {
  Task t;
  t.level = level;
  t.url = std::move(url);
  t.bindings = std::move(bindings);
  for (const auto& [name, value] : t.bindings) t.path.emplace_back(name + "s", value);
  return t;
}

TEST(SqliteFrontier, JournalsAndResumesWhatWasCommitted) {
  FakeClock clock;
  const std::string path = Fresh("resume");
  {
    auto f = SqliteFrontier::Open(Options(path), &clock);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->resumed(), 0);
    ASSERT_TRUE((*f)->Add({MakeTask(0, "http://h/groups")}).ok());
    auto root = (*f)->Lease(clock.Now());
    ASSERT_TRUE(root.has_value());
    auto ids = (*f)->Complete(root->id, {MakeTask(1, "http://h/g/1", {{"group", "1"}}),
                                         MakeTask(1, "http://h/g/2", {{"group", "a/b\n"}})});
    ASSERT_TRUE(ids.ok()) << ids.status();
    auto child = (*f)->Lease(clock.Now());
    ASSERT_TRUE(child.has_value());
    child->attempts.attempts = 2;
    ASSERT_TRUE((*f)->Retry(*child).ok());
    auto again = (*f)->Lease(clock.Now());
    ASSERT_TRUE((*f)->Dead(again->id, "out of attempts").ok());
    ASSERT_TRUE((*f)->Flush().ok());
  }
  auto f = SqliteFrontier::Open(Options(path), &clock);
  ASSERT_TRUE(f.ok()) << f.status();
  const FrontierCounts counts = (*f)->counts();
  EXPECT_EQ(counts.discovered, 3);
  EXPECT_EQ(counts.done, 1);
  EXPECT_EQ(counts.dead, 1);
  EXPECT_EQ(counts.pending, 1);
  EXPECT_EQ((*f)->resumed(), 1);
  auto left = (*f)->Lease(clock.Now());
  ASSERT_TRUE(left.has_value());
  EXPECT_EQ(left->level, 1u);
  // Bindings and path survive byte for byte, whichever child is left.
  EXPECT_TRUE(left->bindings == Bindings({{"group", "1"}}) || left->bindings == Bindings({{"group", "a/b\n"}}));
  EXPECT_EQ(left->path.size(), 1u);
  // New ids continue after the journal's.
  ASSERT_TRUE((*f)->Complete(left->id, {MakeTask(2, "http://h/leaf")}).ok());
  EXPECT_EQ((*f)->Lease(clock.Now())->id, 4u);
}

// A process killed mid-crawl: what it committed is there, what it had only
// leased is pending again, what it had not committed is gone (and will be
// done again), never half of a listing's completion.
TEST(SqliteFrontier, SurvivesAKilledProcess) {
  FakeClock clock;
  const std::string path = Fresh("killed");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto f = SqliteFrontier::Open(Options(path), &clock);
    if (!f.ok()) _exit(2);
    (void)(*f)->Add({MakeTask(0, "http://h/groups")});
    auto root = (*f)->Lease(clock.Now());
    std::vector<Task> children;
    for (int i = 0; i < 10; ++i) children.push_back(MakeTask(1, "http://h/g/" + std::to_string(i)));
    (void)(*f)->Complete(root->id, std::move(children));
    (void)(*f)->Flush();
    auto leased = (*f)->Lease(clock.Now());  // leased, never finished
    auto done = (*f)->Lease(clock.Now());
    (void)(*f)->Complete(done->id, {MakeTask(2, "http://h/never-committed")});  // not flushed
    _exit(0);  // no destructor, no commit: as abruptly as kill -9
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto f = SqliteFrontier::Open(Options(path), &clock);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->counts().discovered, 11);
  EXPECT_EQ((*f)->counts().done, 1);
  EXPECT_EQ((*f)->counts().pending, 10) << "the leased and the uncommitted ones are pending again";
}

TEST(SqliteFrontier, RedriveRevivesDeadTasksByLevelAndReason) {
  FakeClock clock;
  const std::string path = Fresh("redrive");
  {
    auto f = *SqliteFrontier::Open(Options(path), &clock);
    ASSERT_TRUE(f->Add({MakeTask(0, "http://h/groups")}).ok());
    auto root = f->Lease(clock.Now());
    ASSERT_TRUE(f->Complete(root->id, {MakeTask(1, "http://h/g/1"), MakeTask(1, "http://h/g/2"),
                                       MakeTask(2, "http://h/g/1/data")})
                    .ok());
    const char* reasons[] = {"out of attempts (5 of 5); last: HTTP 503", "not retryable: HTTP 404",
                             "out of attempts (5 of 5); last: timeout"};
    for (const char* reason : reasons) {
      auto task = f->Lease(clock.Now());
      ASSERT_TRUE(f->Dead(task->id, reason).ok());
    }
    ASSERT_TRUE(f->Flush().ok());
  }
  auto by_reason = RedriveJournal(path, std::nullopt, "HTTP 404");
  ASSERT_TRUE(by_reason.ok()) << by_reason.status();
  EXPECT_EQ(*by_reason, 1);
  auto by_level = RedriveJournal(path, 1u, "");
  ASSERT_TRUE(by_level.ok());
  EXPECT_EQ(*by_level, 1) << "one level-1 task is still dead";
  EXPECT_EQ(*RedriveJournal(path, std::nullopt, ""), 1) << "the rest";
  auto f = *SqliteFrontier::Open(Options(path), &clock);
  EXPECT_EQ(f->counts().dead, 0);
  EXPECT_EQ(f->counts().pending, 3);
  EXPECT_EQ(f->Lease(clock.Now())->attempts.attempts, 0) << "fresh attempts";
  EXPECT_FALSE(RedriveJournal(Fresh("missing"), std::nullopt, "").ok());
}

// Records stored in the journal commit with the completion of their task, or
// not at all.
TEST(SqliteFrontier, RecordSinkCommitsWithTheTask) {
  FakeClock clock;
  const std::string path = Fresh("records");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto f = *SqliteFrontier::Open(Options(path), &clock);
    auto sink = f->RecordSink();
    (void)f->Add({MakeTask(2, "http://h/a"), MakeTask(2, "http://h/b")});
    auto a = f->Lease(clock.Now());
    (void)sink->Write(Record{.path = {{"leaves", "a"}}, .url = a->url, .status = 200, .body = "{\"a\":1}"});
    (void)f->Complete(a->id, {});
    (void)f->Flush();
    auto b = f->Lease(clock.Now());
    (void)sink->Write(Record{.path = {{"leaves", "b"}}, .url = b->url, .status = 200, .body = "{\"b\":1}"});
    (void)f->Complete(b->id, {});
    _exit(0);  // killed before b's commit
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT key, body FROM records", -1, &stmt, nullptr), SQLITE_OK);
  std::vector<std::string> rows;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    rows.push_back(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))) + " " +
                   reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1)));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  EXPECT_THAT(rows, ::testing::ElementsAre("leaves/a {\"a\":1}"));
  auto f = *SqliteFrontier::Open(Options(path), &clock);
  EXPECT_EQ(f->counts().done, 1);
  EXPECT_EQ(f->counts().pending, 1) << "b is done again, and its record written again";
}

// A full disk (a file size limit here) is a clear error, and what was
// committed before it stays.
TEST(SqliteFrontier, FullDiskIsAClearErrorAndLosesNothingCommitted) {
  FakeClock clock;
  const std::string path = Fresh("full");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
    auto f = *SqliteFrontier::Open(Options(path), &clock);
    (void)f->Add({MakeTask(0, "http://h/root")});
    if (!f->Flush().ok()) _exit(3);
    rlimit limit{.rlim_cur = 256 * 1024, .rlim_max = 256 * 1024};
    setrlimit(RLIMIT_FSIZE, &limit);
    for (int i = 0; i < 100000; ++i) {
      absl::Status s = f->Add({MakeTask(1, std::string(1000, 'x') + std::to_string(i))});
      if (s.ok()) s = f->Flush();
      if (!s.ok()) {
        const std::string message(s.message());
        const bool clear = (s.code() == absl::StatusCode::kResourceExhausted ||
                            message.find("could not write: disk full") != std::string::npos) &&
                           message.find(path) != std::string::npos;
        if (!clear) std::fprintf(stderr, "full disk status: %s\n", s.ToString().c_str());
        _exit(clear ? 0 : 4);
      }
    }
    _exit(5);  // never filled up
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "3: setup failed, 4: unclear error, 5: the limit was never hit";
  auto f = SqliteFrontier::Open(Options(path), &clock);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_GE((*f)->counts().discovered, 1);
  EXPECT_TRUE((*f)->Lease(clock.Now()).has_value());
}

// A retry's not-before time (a backoff, an upstream's Retry-After) outlives
// the process: the journal keeps it on the wall clock, and a resume made 10 s
// later still waits the remaining 20 s.
TEST(SqliteFrontier, RetryTimesSurviveAResume) {
  const std::string path = Fresh("not_before");
  FakeClock first;
  {
    auto f = *SqliteFrontier::Open(Options(path), &first);
    ASSERT_TRUE(f->Add({MakeTask(0, "http://h/root")}).ok());
    std::optional<Task> task = f->Lease(first.Now());
    ASSERT_TRUE(task.has_value());
    task->not_before = first.Now() + absl::Seconds(30);
    ASSERT_TRUE(f->Retry(*std::move(task)).ok());
    ASSERT_TRUE(f->Flush().ok());
  }
  FakeClock second(first.WallNow() + absl::Seconds(10));  // a new process: its own monotonic clock
  auto f = *SqliteFrontier::Open(Options(path), &second);
  EXPECT_FALSE(f->Lease(second.Now()).has_value());
  ASSERT_TRUE(f->NextReadyTime().has_value());
  EXPECT_EQ(*f->NextReadyTime() - second.Now(), absl::Seconds(20));
  second.Advance(absl::Seconds(20));
  EXPECT_TRUE(f->Lease(second.Now()).has_value());
}

// A journal written by the first schema (no retry times) is upgraded in
// place and its pending work kept.
TEST(SqliteFrontier, UpgradesAVersion1Journal) {
  FakeClock clock;
  const std::string path = Fresh("v1");
  {
    auto f = *SqliteFrontier::Open(Options(path), &clock);
    ASSERT_TRUE(f->Add({MakeTask(0, "http://h/root")}).ok());
    ASSERT_TRUE(f->Flush().ok());
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "ALTER TABLE tasks DROP COLUMN not_before_ms;"
                           "UPDATE meta SET value='1' WHERE key='schema_version'",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto f = SqliteFrontier::Open(Options(path), &clock);
  ASSERT_TRUE(f.ok()) << f.status();
  std::optional<Task> task = (*f)->Lease(clock.Now());
  ASSERT_TRUE(task.has_value());
  task->not_before = clock.Now() + absl::Seconds(5);
  EXPECT_TRUE((*f)->Retry(*std::move(task)).ok());
  EXPECT_TRUE((*f)->Flush().ok());
}

TEST(SqliteFrontier, RefusesAJournalOfAnotherPlanUnlessForced) {
  FakeClock clock;
  const std::string path = Fresh("plan");
  { ASSERT_TRUE(SqliteFrontier::Open(Options(path, "plan-a"), &clock).ok()); }
  auto other = SqliteFrontier::Open(Options(path, "plan-b"), &clock);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.status().message(), HasSubstr("was written for another plan (fingerprint plan-a, this plan plan-b)"));
  SqliteFrontierOptions forced = Options(path, "plan-b");
  forced.force = true;
  EXPECT_TRUE(SqliteFrontier::Open(forced, &clock).ok());
}

TEST(PlanFingerprint, IsStableAndTellsPlansApart) {
  CrawlPlan a{.base_url = "http://h"};
  a.levels = {{.name = "groups", .url = "/groups", .items_pointer = "/items", .bind = "group"},
              {.name = "data", .url = "/groups/{group}/data"}};
  CrawlPlan b = a;
  b.levels[1].url = "/groups/{group}/data2";
  EXPECT_EQ(PlanFingerprint(a), PlanFingerprint(a));
  EXPECT_NE(PlanFingerprint(a), PlanFingerprint(b));
  // The same in every process and build (journals outlive both): a pinned
  // value, so changing the fingerprint is a deliberate act.
  EXPECT_EQ(PlanFingerprint(a), "82db661306f8d180");
}

TEST(SqliteFrontier, BadFilesGiveClearErrors) {
  FakeClock clock;
  const std::string garbage = Fresh("garbage");
  std::ofstream(garbage) << std::string(8192, 'x');
  auto corrupt = SqliteFrontier::Open(Options(garbage), &clock);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(corrupt.status().message(), HasSubstr(garbage));
  EXPECT_THAT(corrupt.status().message(), HasSubstr("not a fanout journal, or corrupt"));

  // A journal written by a newer fanout.
  const std::string newer = Fresh("newer");
  { ASSERT_TRUE(SqliteFrontier::Open(Options(newer), &clock).ok()); }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(newer.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE meta SET value='99' WHERE key='schema_version'", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto too_new = SqliteFrontier::Open(Options(newer), &clock);
  ASSERT_FALSE(too_new.ok());
  EXPECT_EQ(too_new.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(too_new.status().message(), HasSubstr("written by a newer fanout (schema version 99"));

  // A directory that does not exist.
  auto missing = SqliteFrontier::Open(Options(::testing::TempDir() + "/no/such/dir/j.db"), &clock);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("/no/such/dir\" does not exist"));

  // A directory where the file should be.
  auto dir = SqliteFrontier::Open(Options(::testing::TempDir()), &clock);
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(dir.status().message(), HasSubstr("journal \"" + ::testing::TempDir()));
}

// A directory the crawl may not write to: opening a new journal there, or an
// existing one (SQLite needs its -wal and -shm files beside it), is a clear
// error naming the path, and the committed journal stays intact. Root may
// write anywhere, so as root the attempts run in a child that drops to the
// unprivileged "nobody" user.
TEST(SqliteFrontier, ReadOnlyDirectoryIsAClearErrorAndLosesNothing) {
  FakeClock clock;
  const fs::path dir = fs::path(::testing::TempDir()) / "fanout_readonly_dir";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string existing = (dir / "existing.db").string();
  {
    auto f = *SqliteFrontier::Open(Options(existing), &clock);
    ASSERT_TRUE(f->Add({MakeTask(0, "http://h/root")}).ok());
    ASSERT_TRUE(f->Flush().ok());
  }
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(existing + suffix);
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                           fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(existing, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipe_fds[0]);
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
    std::string report;
    for (const std::string& path : {(dir / "new.db").string(), existing}) {
      auto f = SqliteFrontier::Open(Options(path), &clock);
      report += path + "\t" + (f.ok() ? std::string("opened") : std::string(f.status().ToString())) + "\n";
    }
    if (write(pipe_fds[1], report.data(), report.size()) != static_cast<ssize_t>(report.size())) _exit(4);
    _exit(0);
  }
  close(pipe_fds[1]);
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = read(pipe_fds[0], buf, sizeof buf)) > 0;) report.append(buf, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "3: could not drop privileges, 4: could not report";
  std::vector<std::string> lines = absl::StrSplit(absl::StripSuffix(report, "\n"), '\n');
  ASSERT_EQ(lines.size(), 2u) << report;
  for (const std::string& line : lines) {
    SCOPED_TRACE(line);
    std::pair<std::string, std::string> fields = absl::StrSplit(line, absl::MaxSplits('\t', 1));
    EXPECT_NE(fields.second, "opened");
    EXPECT_THAT(fields.second, HasSubstr("journal \"" + fields.first + "\""));
    EXPECT_THAT(fields.second, HasSubstr("its directory must be writable"));
    EXPECT_TRUE(absl::StartsWith(fields.second, "PERMISSION_DENIED"))
        << fields.second;
  }
  EXPECT_FALSE(fs::exists(dir / "new.db"));
  // The committed journal is intact once the directory is writable again.
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add);
  fs::permissions(existing, fs::perms::owner_write, fs::perm_options::add);
  auto f = SqliteFrontier::Open(Options(existing), &clock);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->counts().discovered, 1);
  EXPECT_TRUE((*f)->Lease(clock.Now()).has_value());
}

// The engine on a journal: a time-boxed run stops with work left; a second
// run on the reopened journal finishes it, and no listing is fetched twice.
TEST(SqliteFrontier, AStoppedCrawlResumesWithoutRefetching) {
  const std::string path = Fresh("engine");
  CrawlPlan plan;
  plan.base_url = "http://api.test";
  plan.levels = {{.name = "groups", .url = "/groups", .items_pointer = "/items", .bind = "group"},
                 {.name = "devices", .url = "/groups/{group}/devices", .items_pointer = "/items", .bind = "device"},
                 {.name = "data", .url = "/groups/{group}/devices/{device}/data"}};
  auto handler = [](const Request& r) {
    const std::string& url = r.url;
    if (url.ends_with("/groups")) return testing::FakeTransport::Json(R"({"items":[{"id":"g1"},{"id":"g2"},{"id":"g3"}]})");
    if (url.ends_with("/devices")) return testing::FakeTransport::Json(R"({"items":[{"id":"d1"},{"id":"d2"}]})");
    return testing::FakeTransport::Json(R"({"v":1})");
  };
  std::multiset<std::string> fetched;
  std::set<std::string> records;
  auto run = [&](absl::Duration max_duration) -> CrawlResult {
    testing::FakeEventLoop loop;
    testing::FakeTransport transport(&loop, handler);
    auto frontier = SqliteFrontier::Open(
        {.path = path, .plan_fingerprint = PlanFingerprint(plan), .levels = plan.levels.size()}, &loop.clock());
    EXPECT_TRUE(frontier.ok()) << frontier.status();
    CallbackSink sink([&](const Record& r) {
      records.insert(r.Key());
      return absl::OkStatus();
    });
    EngineOptions options;
    options.rate = RateLimitSpec::PerSecond(2, 1);
    options.max_duration = max_duration;
    auto engine = *Engine::Create(plan, EngineParts{&loop, &transport, frontier->get(), nullptr, {&sink}}, options);
    std::optional<absl::StatusOr<CrawlResult>> result;
    engine->Start([&](absl::StatusOr<CrawlResult> r) { result = std::move(r); });
    loop.RunUntilIdle();
    for (const auto& sent : transport.sent()) fetched.insert(sent.request.url);
    EXPECT_TRUE(result.has_value() && result->ok());
    return **result;
  };
  const CrawlResult first = run(absl::Seconds(3));
  EXPECT_EQ(first.state, CrawlResult::State::kStopped);
  EXPECT_GT(first.stats.pending, 0);
  const CrawlResult second = run(absl::InfiniteDuration());
  EXPECT_EQ(second.state, CrawlResult::State::kDone);
  EXPECT_TRUE(second.stats.balanced());
  EXPECT_EQ(second.stats.discovered, 1 + 3 + 6);
  EXPECT_EQ(records.size(), 6u);
  for (const std::string& url : fetched) {
    if (!url.ends_with("/data")) {
      EXPECT_EQ(fetched.count(url), 1u) << url << " fetched again after it was committed";
    }
  }
}

}  // namespace
}  // namespace fanout
