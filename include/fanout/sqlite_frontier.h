// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// SqliteFrontier: a Frontier that journals every task to a SQLite database
// (WAL mode, through SQLite's C API), so a crawl killed at any instant resumes
// where it stopped. Scheduling runs in memory (the pending set, kept small by
// deepest-first order, is loaded at open); every state change is written
// through to the journal in group-committed transactions: at most
// `commit_batch` changes or `commit_interval` between commits, and always on
// Flush(). A listing's completion and the children it discovered are in the
// same transaction, so the journal never holds one without the other.
//
// What a crash can lose is the uncommitted tail: those tasks are done again on
// resume (at-least-once), never skipped. Leases are not journaled: a task
// leased by a dead process is simply pending when the journal is reopened.
//
// Single-threaded (the engine's loop).

#ifndef FANOUT_SQLITE_FRONTIER_H_
#define FANOUT_SQLITE_FRONTIER_H_

#include <cstdint>
#include <functional>
#include <thread>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fanout/frontier.h"
#include "fanout/sink.h"

struct sqlite3;
struct sqlite3_stmt;

namespace fanout {

struct SqliteFrontierOptions {
  std::string path;  // the journal file; created if missing
  // The plan's fingerprint (PlanFingerprint): a journal written for another
  // plan is refused, unless `force`.
  std::string plan_fingerprint;
  bool force = false;
  size_t levels = 0;  // the plan's level count
  // synchronous=NORMAL survives a process crash (kill -9); FULL also survives
  // power loss, at the cost of an fsync per commit.
  bool sync_full = false;
  int64_t commit_batch = 4096;
  absl::Duration commit_interval = absl::Milliseconds(5);
};

class SqliteFrontier final : public Frontier {
 public:
  // Opens or creates the journal. Errors name the path: not a database or
  // corrupt (DataLoss), written by a newer fanout (FailedPrecondition), a
  // different plan (FailedPrecondition, unless forced), unwritable
  // (PermissionDenied / Unavailable).
  static absl::StatusOr<std::unique_ptr<SqliteFrontier>> Open(SqliteFrontierOptions options,
                                                              const Clock* clock);
  // Commits what is pending when no commit hook is set; with a hook (whose
  // sinks may already be gone) it rolls back instead, so the tail is done
  // again on resume. Call Flush() first for a clean close.
  ~SqliteFrontier() override;

  absl::Status Add(std::vector<Task> tasks) override;
  std::optional<Task> Lease(absl::Time now) override { return memory_.Lease(now); }
  std::optional<absl::Time> NextReadyTime() const override { return memory_.NextReadyTime(); }
  absl::StatusOr<std::vector<uint64_t>> Complete(uint64_t task_id, std::vector<Task> discovered) override;
  absl::Status Retry(Task task) override;
  absl::Status Dead(uint64_t task_id, std::string reason) override;
  absl::Status Release(Task task) override { return memory_.Release(std::move(task)); }
  absl::Status Flush() override;
  FrontierCounts counts() const override { return memory_.counts(); }
  std::vector<int64_t> pending_by_level() const override { return memory_.pending_by_level(); }

  // Pending tasks found in the journal at open (0 for a new journal).
  int64_t resumed() const { return resumed_; }

  // Called just before each commit; the (key, value) pairs it returns are
  // stored in the same transaction. A sink's commit point goes here: the hook
  // makes the sink durable and returns its position (a JSON lines file's
  // offset), so the journal never claims a task done whose output could be
  // lost, and a resume can cut the output back to what the journal knows.
  using CommitHook = std::function<absl::StatusOr<std::vector<std::pair<std::string, std::string>>>()>;
  void SetCommitHook(CommitHook hook) { commit_hook_ = std::move(hook); }
  // A value a commit hook stored (as of the last commit), if any.
  absl::StatusOr<std::optional<std::string>> Meta(const std::string& key);
  // Stores a (key, value) in the journal's meta table with the next commit
  // (Flush to commit now). Keys starting with "jsonl_offset:",
  // "schema_version" and "plan_fingerprint" are the journal's own.
  absl::Status SetMeta(const std::string& key, const std::string& value);
  // Commits now, running the commit hook even if no task changed.
  absl::Status Checkpoint();

  // A sink that stores records in the journal itself (table `records`, one
  // row per key, replaced on rewrite), inside the same transaction as the
  // task's completion: output and progress can never disagree. Valid while
  // this frontier lives.
  std::unique_ptr<Sink> RecordSink();

 private:
  SqliteFrontier(SqliteFrontierOptions options, const Clock* clock);
  absl::Status Init();
  absl::Status Exec(const char* sql);
  absl::Status Error(const std::string& what) const;
  absl::Status Prepare(sqlite3_stmt** stmt, const char* sql);
  absl::Status Begin();  // opens the group transaction if none is open
  absl::Status Changed(int64_t changes);  // commits when the group is full or old
  absl::Status Insert(const Task& task);
  absl::Status SetState(uint64_t id, int state, const std::string& error);
  absl::StatusOr<std::optional<std::string>> ReadMeta(const std::string& key);
  absl::Status WriteMeta(const std::string& key, const std::string& value);

  const SqliteFrontierOptions options_;
  const Clock* const clock_;
  MemoryFrontier memory_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* set_state_ = nullptr;
  sqlite3_stmt* retry_ = nullptr;
  sqlite3_stmt* record_ = nullptr;
  friend class JournalRecordSink;
  bool in_transaction_ = false;
  int64_t group_changes_ = 0;
  absl::Time group_started_;
  int64_t resumed_ = 0;
  CommitHook commit_hook_;
  // Checkpoints (copying the WAL into the database, with an fsync) run on a
  // thread of their own with its own connection, so they never stall the
  // crawl's loop; the loop's connection has automatic checkpoints off.
  class Checkpointer;
  std::unique_ptr<Checkpointer> checkpointer_;
};

// Puts dead tasks of a journal back to pending with fresh attempts, so the
// next run on it tries them again: all of them, or those of one level, and/or
// those whose last error contains `reason_contains`. The journal must not be
// in use by a running crawl. Returns how many tasks were revived.
absl::StatusOr<int64_t> RedriveJournal(const std::string& path, std::optional<uint32_t> level,
                                       const std::string& reason_contains);

// What a journal holds, read without changing it (for `fanout status`).
struct JournalSummary {
  struct LevelCounts {
    uint32_t level = 0;
    int64_t pending = 0, done = 0, dead = 0;
  };
  std::vector<LevelCounts> levels;  // by level index, every level that has tasks
  // Dead tasks by their last error, most frequent first (at most `max_reasons`).
  std::vector<std::pair<std::string, int64_t>> dead_by_reason;
  int64_t records = 0;  // records stored in the journal (SqliteFrontier::RecordSink)
  std::vector<std::pair<std::string, std::string>> meta;  // every meta entry, by key
};

// Reads a journal's summary; the journal may be in use by a running crawl.
// NotFound if there is no file, DataLoss if it is not a fanout journal.
absl::StatusOr<JournalSummary> InspectJournal(const std::string& path, size_t max_reasons = 20);

// A fingerprint of what the plan crawls (base URL, levels, templates,
// extraction and pagination; not limits), to tell journals apart.
std::string PlanFingerprint(const CrawlPlan& plan);

}  // namespace fanout

#endif  // FANOUT_SQLITE_FRONTIER_H_
