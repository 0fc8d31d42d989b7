// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/sqlite_frontier.h"

#include <sqlite3.h>

#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "task_codec.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fanout {
namespace {

// 1: first; 2: tasks.not_before_ms (a retry's wall-clock not-before time).
constexpr int64_t kSchemaVersion = 2;
enum State : int { kPending = 0, kDone = 1, kDead = 2 };

// A blob or text column's bytes (empty for NULL).
std::string_view ColumnBytes(sqlite3_stmt* stmt, int column) {
  const void* data = sqlite3_column_blob(stmt, column);
  if (data == nullptr) return std::string_view();
  return std::string_view(static_cast<const char*>(data), sqlite3_column_bytes(stmt, column));
}

}  // namespace

std::string PlanFingerprint(const CrawlPlan& plan) {
  std::string text = plan.base_url;
  for (const Level& l : plan.levels) {
    absl::StrAppend(&text, "|", l.name, "|", l.url, "|", l.items_pointer, "|", l.id_field, "|", l.bind, "|",
                    static_cast<int>(l.pagination.kind), "|", l.pagination.pointer, "|", l.pagination.param, "|",
                    l.pagination.start, "|", l.pagination.limit_param, "|", l.pagination.limit);
    for (const std::string& c : l.capture) absl::StrAppend(&text, "|c:", c);
  }
  // FNV-1a, 64-bit: stable across processes and builds (absl::Hash is
  // seeded per process, so it cannot name a plan on disk).
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return absl::StrFormat("%016x", hash);
}

class SqliteFrontier::Checkpointer {
 public:
  explicit Checkpointer(const std::string& path) : thread_([this, path] { Run(path); }) {}
  ~Checkpointer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void Run(const std::string& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
      sqlite3_busy_timeout(db, 100);
      std::unique_lock<std::mutex> lock(mu_);
      while (!stop_) {
        wake_.wait_for(lock, std::chrono::milliseconds(500));
        if (stop_) break;
        lock.unlock();
        // PASSIVE: copies what it can without blocking the writer.
        sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        lock.lock();
      }
    }
    sqlite3_close(db);
  }

  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

SqliteFrontier::SqliteFrontier(SqliteFrontierOptions options, const Clock* clock)
    : options_(std::move(options)), clock_(clock), memory_(options_.levels) {}

SqliteFrontier::~SqliteFrontier() {
  checkpointer_.reset();
  if (commit_hook_ && in_transaction_) {
    (void)Exec("ROLLBACK");
  } else {
    (void)Flush();
  }
  for (sqlite3_stmt* stmt : {insert_, set_state_, retry_, record_}) sqlite3_finalize(stmt);
  if (db_ != nullptr) sqlite3_close(db_);
}

absl::Status SqliteFrontier::Error(const std::string& what) const {
  const int code = db_ != nullptr ? sqlite3_errcode(db_) : SQLITE_CANTOPEN;
  const std::string message =
      absl::StrFormat("journal \"%s\": %s: %s", options_.path, what,
                      db_ != nullptr ? sqlite3_errmsg(db_) : "cannot open");
  // A write that failed for lack of room: SQLite says SQLITE_FULL, or a
  // generic I/O error whose system errno tells (ENOSPC, EFBIG, EDQUOT).
  const int system_errno = db_ != nullptr ? sqlite3_system_errno(db_) : 0;
  if ((code & 0xff) == SQLITE_IOERR && (system_errno == ENOSPC || system_errno == EFBIG || system_errno == EDQUOT)) {
    return absl::ResourceExhaustedError(absl::StrCat(message, " (", std::strerror(system_errno), ")"));
  }
  if ((code & 0xff) == SQLITE_IOERR) {
    // SQLite keeps no errno for many write failures (a WAL write past a file
    // size limit reports errno 0), so name the likely causes.
    return absl::UnavailableError(
        absl::StrCat(message, " (could not write: disk full, file size limit, or I/O error; the work committed "
                              "before this is intact)"));
  }
  // Permissions: the journal and its directory must both be writable, since
  // SQLite keeps its -wal and -shm files beside the journal.
  const bool denied = system_errno == EACCES || system_errno == EPERM || system_errno == EROFS;
  if ((code & 0xff) == SQLITE_READONLY || ((code & 0xff) == SQLITE_CANTOPEN && denied)) {
    return absl::PermissionDeniedError(absl::StrCat(
        message, system_errno != 0 ? absl::StrCat(" (", std::strerror(system_errno), ")") : "",
        "; the journal file and its directory must be writable (SQLite keeps -wal and -shm files beside it)"));
  }
  if ((code & 0xff) == SQLITE_CANTOPEN && system_errno != 0) {
    return absl::UnavailableError(absl::StrCat(message, " (", std::strerror(system_errno), ")"));
  }
  switch (code & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return absl::DataLossError(message + " (not a fanout journal, or corrupt)");
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::PermissionDeniedError(message);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::UnavailableError(message);
  }
}

absl::Status SqliteFrontier::Exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return Error(sql);
  return absl::OkStatus();
}

absl::Status SqliteFrontier::Prepare(sqlite3_stmt** stmt, const char* sql) {
  if (sqlite3_prepare_v2(db_, sql, -1, stmt, nullptr) != SQLITE_OK) return Error(sql);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SqliteFrontier>> SqliteFrontier::Open(SqliteFrontierOptions options,
                                                                     const Clock* clock) {
  if (options.levels == 0) return absl::InvalidArgumentError("journal: levels must be >= 1");
  if (options.path.empty()) return absl::InvalidArgumentError("journal: path is empty");
  if (options.commit_batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("journal: commit_batch must be >= 1, got %d", options.commit_batch));
  }
  auto frontier = std::unique_ptr<SqliteFrontier>(new SqliteFrontier(std::move(options), clock));
  if (absl::Status s = frontier->Init(); !s.ok()) return s;
  return frontier;
}

absl::Status SqliteFrontier::Init() {
  if (sqlite3_open_v2(options_.path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    // SQLite's own errno is of its last fallback attempt; ask the directory.
    const std::filesystem::path dir = std::filesystem::absolute(options_.path).parent_path();
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      return absl::NotFoundError(absl::StrFormat("journal \"%s\": cannot open: directory \"%s\" does not exist",
                                                 options_.path, dir.string()));
    }
    if (access(dir.c_str(), W_OK | X_OK) != 0) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "journal \"%s\": cannot create it: directory \"%s\" is not writable (%s); the journal file and its "
          "directory must be writable (SQLite keeps -wal and -shm files beside it)",
          options_.path, dir.string(), std::strerror(errno)));
    }
    return Error("cannot open");
  }
  sqlite3_extended_result_codes(db_, 0);
  sqlite3_busy_timeout(db_, 5000);
  // Reading the schema is the first thing that fails on a file that is not a
  // database, so do that before anything else.
  if (absl::Status s = Exec("SELECT count(*) FROM sqlite_schema"); !s.ok()) return s;
  if (absl::Status s = Exec("PRAGMA journal_mode=WAL"); !s.ok()) return s;
  if (absl::Status s = Exec(options_.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Exec(
          "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
          "CREATE TABLE IF NOT EXISTS tasks(id INTEGER PRIMARY KEY, parent INTEGER NOT NULL, "
          "level INTEGER NOT NULL, page INTEGER NOT NULL, url TEXT NOT NULL, bindings BLOB, path BLOB, "
          "attempts INTEGER NOT NULL DEFAULT 0, throttles INTEGER NOT NULL DEFAULT 0, "
          "state INTEGER NOT NULL, last_error TEXT, not_before_ms INTEGER NOT NULL DEFAULT 0);"
          "CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks(state);"
          "CREATE TABLE IF NOT EXISTS records(key TEXT PRIMARY KEY, url TEXT NOT NULL, status INTEGER NOT NULL, "
          "fetched_at_ms INTEGER NOT NULL, body BLOB NOT NULL);");
      !s.ok()) {
    return s;
  }

  // Version and plan.
  auto version = ReadMeta("schema_version");
  if (!version.ok()) return version.status();
  if (version->has_value()) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(**version, &v) || v > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "journal \"%s\": written by a newer fanout (schema version %s; this one reads up to %d)", options_.path,
          **version, kSchemaVersion));
    }
    if (v < 2) {  // upgrade in place: retries written by version 1 may go at once
      if (absl::Status s = Exec("ALTER TABLE tasks ADD COLUMN not_before_ms INTEGER NOT NULL DEFAULT 0"); !s.ok()) {
        return s;
      }
    }
    if (v < kSchemaVersion) {
      if (absl::Status s = WriteMeta("schema_version", std::to_string(kSchemaVersion)); !s.ok()) return s;
    }
  } else if (absl::Status s = WriteMeta("schema_version", std::to_string(kSchemaVersion)); !s.ok()) {
    return s;
  }
  auto fingerprint = ReadMeta("plan_fingerprint");
  if (!fingerprint.ok()) return fingerprint.status();
  if (fingerprint->has_value() && **fingerprint != options_.plan_fingerprint && !options_.force) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "journal \"%s\": was written for another plan (fingerprint %s, this plan %s); resume with the same plan, "
        "or force it",
        options_.path, **fingerprint, options_.plan_fingerprint));
  }
  if (absl::Status s = WriteMeta("plan_fingerprint", options_.plan_fingerprint); !s.ok()) return s;

  // Load: counts by state, then the pending tasks (leases died with their process).
  FrontierCounts counts;
  sqlite3_stmt* stmt = nullptr;
  if (absl::Status s = Prepare(&stmt, "SELECT state, count(*) FROM tasks GROUP BY state"); !s.ok()) return s;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const int64_t n = sqlite3_column_int64(stmt, 1);
    counts.discovered += n;
    if (sqlite3_column_int(stmt, 0) == kDone) counts.done = n;
    if (sqlite3_column_int(stmt, 0) == kDead) counts.dead = n;
  }
  sqlite3_finalize(stmt);
  uint64_t next_id = 1;
  std::vector<Task> pending;
  if (absl::Status s = Prepare(&stmt,
                               "SELECT id, parent, level, page, url, bindings, path, attempts, throttles, "
                               "not_before_ms FROM tasks WHERE state = 0 ORDER BY id");
      !s.ok()) {
    return s;
  }
  // A retry's not-before time is journaled on the wall clock (the monotonic
  // clock restarts with the process), so a resumed crawl still waits out a
  // backoff or an upstream's Retry-After instead of retrying at once.
  const absl::Time wall_now = clock_->WallNow(), now = clock_->Now();
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    Task task;
    task.id = static_cast<uint64_t>(sqlite3_column_int64(stmt, 0));
    task.parent = static_cast<uint64_t>(sqlite3_column_int64(stmt, 1));
    task.level = static_cast<uint32_t>(sqlite3_column_int64(stmt, 2));
    task.page = static_cast<uint32_t>(sqlite3_column_int64(stmt, 3));
    task.url = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 4));
    if (!internal::DecodePairs(ColumnBytes(stmt, 5), &task.bindings) ||
        !internal::DecodePairs(ColumnBytes(stmt, 6), &task.path)) {
      sqlite3_finalize(stmt);
      return absl::DataLossError(
          absl::StrFormat("journal \"%s\": task %d has a malformed bindings or path record", options_.path, task.id));
    }
    task.attempts.attempts = sqlite3_column_int(stmt, 7);
    task.attempts.throttles = sqlite3_column_int(stmt, 8);
    const absl::Time wall_not_before = absl::FromUnixMillis(sqlite3_column_int64(stmt, 9));
    // Bounded, so a wall clock set wrong never parks a task for years.
    if (wall_not_before > wall_now) task.not_before = now + std::min(wall_not_before - wall_now, absl::Hours(24));
    pending.push_back(std::move(task));
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return Error("loading pending tasks");
  if (absl::Status s = Prepare(&stmt, "SELECT coalesce(max(id), 0) FROM tasks"); !s.ok()) return s;
  if (sqlite3_step(stmt) == SQLITE_ROW) next_id = static_cast<uint64_t>(sqlite3_column_int64(stmt, 0)) + 1;
  sqlite3_finalize(stmt);
  resumed_ = static_cast<int64_t>(pending.size());
  if (absl::Status s = memory_.Restore(std::move(pending), counts, next_id); !s.ok()) {
    return absl::DataLossError(absl::StrFormat("journal \"%s\": %s", options_.path, s.message()));
  }

  if (absl::Status s = Prepare(&insert_,
                               "INSERT INTO tasks(id, parent, level, page, url, bindings, path, attempts, "
                               "throttles, state) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, 0)");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Prepare(&set_state_, "UPDATE tasks SET state = ?, last_error = ? WHERE id = ?"); !s.ok()) {
    return s;
  }
  if (absl::Status s = Prepare(&retry_, "UPDATE tasks SET attempts = ?, throttles = ?, not_before_ms = ? WHERE id = ?"); !s.ok()) {
    return s;
  }
  if (absl::Status s = Prepare(&record_, "INSERT OR REPLACE INTO records(key, url, status, fetched_at_ms, body) "
                                         "VALUES(?, ?, ?, ?, ?)");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Exec("PRAGMA wal_autocheckpoint=0"); !s.ok()) return s;
  checkpointer_ = std::make_unique<Checkpointer>(options_.path);
  return absl::OkStatus();
}

class JournalRecordSink final : public Sink {
 public:
  explicit JournalRecordSink(SqliteFrontier* journal) : journal_(journal) {}
  absl::Status Write(const Record& record) override {
    if (closed_) return absl::FailedPreconditionError("journal record sink: write after Close");
    // Joins the open group transaction, so the record commits with the
    // task's completion that follows it.
    if (absl::Status s = journal_->Begin(); !s.ok()) return s;
    const std::string key = record.Key();
    sqlite3_stmt* stmt = journal_->record_;
    sqlite3_reset(stmt);
    sqlite3_bind_text(stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, record.url.data(), static_cast<int>(record.url.size()), SQLITE_STATIC);
    sqlite3_bind_int(stmt, 3, record.status);
    sqlite3_bind_int64(stmt, 4, absl::ToUnixMillis(record.fetched_at));
    sqlite3_bind_blob(stmt, 5, record.body.data(), static_cast<int>(record.body.size()), SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE) return journal_->Error("storing record " + key);
    return absl::OkStatus();
  }
  absl::Status Flush() override { return absl::OkStatus(); }  // durable with the journal's commit
  absl::Status Close() override {
    closed_ = true;
    return absl::OkStatus();
  }

 private:
  SqliteFrontier* const journal_;
  bool closed_ = false;
};

std::unique_ptr<Sink> SqliteFrontier::RecordSink() { return std::make_unique<JournalRecordSink>(this); }

absl::StatusOr<int64_t> RedriveJournal(const std::string& path, std::optional<uint32_t> level,
                                       const std::string& reason_contains) {
  sqlite3* db = nullptr;
  auto fail = [&](const std::string& what) {
    std::string message = absl::StrFormat("journal \"%s\": %s: %s", path, what,
                                          db != nullptr ? sqlite3_errmsg(db) : "cannot open");
    if (db != nullptr) sqlite3_close(db);
    return absl::UnavailableError(message);
  };
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) return fail("cannot open");
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db,
                         "UPDATE tasks SET state = 0, attempts = 0, throttles = 0, last_error = NULL, not_before_ms = 0 "
                         "WHERE state = 2 AND (?1 IS NULL OR level = ?1) AND instr(coalesce(last_error, ''), ?2) > 0",
                         -1, &stmt, nullptr) != SQLITE_OK) {
    return fail("redrive");
  }
  if (level.has_value()) {
    sqlite3_bind_int64(stmt, 1, *level);
  } else {
    sqlite3_bind_null(stmt, 1);
  }
  sqlite3_bind_text(stmt, 2, reason_contains.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return fail("redrive");
  const int64_t revived = sqlite3_changes64(db);
  sqlite3_close(db);
  return revived;
}

absl::StatusOr<JournalSummary> InspectJournal(const std::string& path, size_t max_reasons) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrFormat("journal \"%s\": no such file", path));
  }
  sqlite3* db = nullptr;
  auto fail = [&](const std::string& what) -> absl::Status {
    const int code = db != nullptr ? sqlite3_errcode(db) & 0xff : SQLITE_CANTOPEN;
    std::string message = absl::StrFormat("journal \"%s\": %s: %s", path, what,
                                          db != nullptr ? sqlite3_errmsg(db) : "cannot open");
    if (db != nullptr) sqlite3_close(db);
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT || code == SQLITE_ERROR) {
      return absl::DataLossError(message + " (not a fanout journal, or corrupt)");
    }
    return absl::UnavailableError(message);
  };
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) return fail("cannot open");
  sqlite3_busy_timeout(db, 5000);
  JournalSummary summary;
  sqlite3_stmt* stmt = nullptr;
  auto query = [&](const char* sql, const std::function<void(sqlite3_stmt*)>& row) -> absl::Status {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) return fail("reading");
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) row(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return fail("reading");
    return absl::OkStatus();
  };
  auto text = [](sqlite3_stmt* s, int column) {
    const unsigned char* value = sqlite3_column_text(s, column);
    return value == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(value));
  };
  if (absl::Status s = query("SELECT key, value FROM meta ORDER BY key",
                             [&](sqlite3_stmt* s) { summary.meta.emplace_back(text(s, 0), text(s, 1)); });
      !s.ok()) {
    return s;
  }
  if (absl::Status s = query("SELECT level, state, count(*) FROM tasks GROUP BY level, state ORDER BY level",
                             [&](sqlite3_stmt* s) {
                               const auto level = static_cast<uint32_t>(sqlite3_column_int64(s, 0));
                               if (summary.levels.empty() || summary.levels.back().level != level) {
                                 summary.levels.push_back({.level = level});
                               }
                               JournalSummary::LevelCounts& counts = summary.levels.back();
                               const int64_t n = sqlite3_column_int64(s, 2);
                               switch (sqlite3_column_int(s, 1)) {
                                 case kDone:
                                   counts.done += n;
                                   break;
                                 case kDead:
                                   counts.dead += n;
                                   break;
                                 default:
                                   counts.pending += n;
                               }
                             });
      !s.ok()) {
    return s;
  }
  if (absl::Status s = query("SELECT coalesce(last_error, ''), count(*) AS n FROM tasks WHERE state = 2 "
                             "GROUP BY 1 ORDER BY n DESC, 1",
                             [&](sqlite3_stmt* s) {
                               if (summary.dead_by_reason.size() < max_reasons) {
                                 summary.dead_by_reason.emplace_back(text(s, 0), sqlite3_column_int64(s, 1));
                               }
                             });
      !s.ok()) {
    return s;
  }
  if (absl::Status s = query("SELECT count(*) FROM records",
                             [&](sqlite3_stmt* s) { summary.records = sqlite3_column_int64(s, 0); });
      !s.ok()) {
    return s;
  }
  sqlite3_close(db);
  return summary;
}

absl::Status SqliteFrontier::Begin() {
  if (in_transaction_) return absl::OkStatus();
  if (absl::Status s = Exec("BEGIN"); !s.ok()) return s;
  in_transaction_ = true;
  group_changes_ = 0;
  group_started_ = clock_->Now();
  return absl::OkStatus();
}

absl::Status SqliteFrontier::Changed(int64_t changes) {
  group_changes_ += changes;
  if (group_changes_ >= options_.commit_batch || clock_->Now() - group_started_ >= options_.commit_interval) {
    return Flush();
  }
  return absl::OkStatus();
}

absl::Status SqliteFrontier::Flush() {
  if (!in_transaction_) return absl::OkStatus();
  if (commit_hook_) {
    auto values = commit_hook_();
    if (!values.ok()) return values.status();  // the transaction stays open; nothing is claimed
    for (const auto& [key, value] : *values) {
      if (absl::Status s = WriteMeta(key, value); !s.ok()) return s;
    }
  }
  in_transaction_ = false;
  return Exec("COMMIT");
}

absl::StatusOr<std::optional<std::string>> SqliteFrontier::Meta(const std::string& key) { return ReadMeta(key); }

absl::Status SqliteFrontier::Checkpoint() {
  if (absl::Status s = Begin(); !s.ok()) return s;
  return Flush();
}

absl::StatusOr<std::optional<std::string>> SqliteFrontier::ReadMeta(const std::string& key) {
  sqlite3_stmt* stmt = nullptr;
  if (absl::Status s = Prepare(&stmt, "SELECT value FROM meta WHERE key = ?"); !s.ok()) return s;
  sqlite3_bind_text(stmt, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  std::optional<std::string> value;
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error("reading meta");
  return value;
}

absl::Status SqliteFrontier::SetMeta(const std::string& key, const std::string& value) {
  if (key.rfind("jsonl_offset:", 0) == 0 || key == "schema_version" || key == "plan_fingerprint") {
    return absl::InvalidArgumentError(absl::StrFormat("journal \"%s\": meta key \"%s\" is reserved", options_.path, key));
  }
  if (absl::Status s = Begin(); !s.ok()) return s;
  if (absl::Status s = WriteMeta(key, value); !s.ok()) return s;
  return Changed(1);
}

absl::Status SqliteFrontier::WriteMeta(const std::string& key, const std::string& value) {
  sqlite3_stmt* stmt = nullptr;
  if (absl::Status s = Prepare(&stmt, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)"); !s.ok()) return s;
  sqlite3_bind_text(stmt, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 2, value.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  return rc == SQLITE_DONE ? absl::OkStatus() : Error("writing meta");
}

absl::Status SqliteFrontier::Insert(const Task& task) {
  const std::string bindings = internal::EncodePairs(task.bindings);
  const std::string path = internal::EncodePairs(task.path);
  sqlite3_reset(insert_);
  sqlite3_bind_int64(insert_, 1, static_cast<int64_t>(task.id));
  sqlite3_bind_int64(insert_, 2, static_cast<int64_t>(task.parent));
  sqlite3_bind_int64(insert_, 3, task.level);
  sqlite3_bind_int64(insert_, 4, task.page);
  sqlite3_bind_text(insert_, 5, task.url.data(), static_cast<int>(task.url.size()), SQLITE_STATIC);
  sqlite3_bind_blob(insert_, 6, bindings.data(), static_cast<int>(bindings.size()), SQLITE_STATIC);
  sqlite3_bind_blob(insert_, 7, path.data(), static_cast<int>(path.size()), SQLITE_STATIC);
  sqlite3_bind_int(insert_, 8, task.attempts.attempts);
  sqlite3_bind_int(insert_, 9, task.attempts.throttles);
  if (sqlite3_step(insert_) != SQLITE_DONE) return Error(absl::StrFormat("adding task %d", task.id));
  return absl::OkStatus();
}

absl::Status SqliteFrontier::SetState(uint64_t id, int state, const std::string& error) {
  sqlite3_reset(set_state_);
  sqlite3_bind_int(set_state_, 1, state);
  if (error.empty()) {
    sqlite3_bind_null(set_state_, 2);
  } else {
    sqlite3_bind_text(set_state_, 2, error.data(), static_cast<int>(error.size()), SQLITE_STATIC);
  }
  sqlite3_bind_int64(set_state_, 3, static_cast<int64_t>(id));
  if (sqlite3_step(set_state_) != SQLITE_DONE) return Error(absl::StrFormat("updating task %d", id));
  return absl::OkStatus();
}

absl::Status SqliteFrontier::Add(std::vector<Task> tasks) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  uint64_t id = memory_.next_id();
  for (Task& task : tasks) {
    task.id = id++;
    if (absl::Status s = Insert(task); !s.ok()) return s;
  }
  const int64_t n = static_cast<int64_t>(tasks.size());
  if (absl::Status s = memory_.Add(std::move(tasks)); !s.ok()) return s;
  return Changed(n);
}

absl::StatusOr<std::vector<uint64_t>> SqliteFrontier::Complete(uint64_t task_id, std::vector<Task> discovered) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  // The listing's completion and its children go in the same transaction.
  uint64_t id = memory_.next_id();
  for (Task& task : discovered) {
    task.id = id++;
    if (absl::Status s = Insert(task); !s.ok()) return s;
  }
  if (absl::Status s = SetState(task_id, kDone, ""); !s.ok()) return s;
  const int64_t n = static_cast<int64_t>(discovered.size()) + 1;
  auto ids = memory_.Complete(task_id, std::move(discovered));
  if (!ids.ok()) return ids.status();
  if (absl::Status s = Changed(n); !s.ok()) return s;
  return ids;
}

absl::Status SqliteFrontier::Retry(Task task) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  sqlite3_reset(retry_);
  sqlite3_bind_int(retry_, 1, task.attempts.attempts);
  sqlite3_bind_int(retry_, 2, task.attempts.throttles);
  const absl::Time now = clock_->Now();
  const int64_t not_before_ms =
      task.not_before > now ? absl::ToUnixMillis(clock_->WallNow() + (task.not_before - now)) : 0;
  sqlite3_bind_int64(retry_, 3, not_before_ms);
  sqlite3_bind_int64(retry_, 4, static_cast<int64_t>(task.id));
  if (sqlite3_step(retry_) != SQLITE_DONE) return Error(absl::StrFormat("updating task %d", task.id));
  if (absl::Status s = memory_.Retry(std::move(task)); !s.ok()) return s;
  return Changed(1);
}

absl::Status SqliteFrontier::Dead(uint64_t task_id, std::string reason) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  if (absl::Status s = SetState(task_id, kDead, reason); !s.ok()) return s;
  if (absl::Status s = memory_.Dead(task_id, std::move(reason)); !s.ok()) return s;
  return Changed(1);
}

}  // namespace fanout
