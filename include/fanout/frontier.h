// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Frontier: the crawl's pending work. A task moves
//     pending -> leased -> done | pending again (retry, not before t) | dead
// and a listing's children (and its next page) enter the frontier in the same
// step that completes the listing, so an implementation that journals the
// step (SqliteFrontier, RedisFrontier) never loses or duplicates work.
//
// Lease order is deepest level first: finishing what was started keeps the
// pending set at O(depth x fan-out) instead of O(everything discovered).
// The frontier knows nothing of HTTP.

#ifndef FANOUT_FRONTIER_H_
#define FANOUT_FRONTIER_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "fanout/crawl_plan.h"
#include "fanout/retry.h"

namespace fanout {

// One request to make: a page of a listing, or a leaf document.
struct Task {
  uint64_t id = 0;      // unique in the crawl; assigned by the frontier
  uint64_t parent = 0;  // the task that discovered it (0 for a root)
  uint32_t level = 0;   // index into the plan's levels
  uint32_t page = 0;    // 0 for a listing's first page, then 1, 2, ...
  std::string url;      // the exact URL to fetch
  Bindings bindings;    // placeholder values bound on the way down
  // (level name, id) for each listing level above: the record key.
  std::vector<std::pair<std::string, std::string>> path;
  AttemptState attempts;
  absl::Time not_before = absl::InfinitePast();  // Clock::Now() time
};

// Counts by state, for stats and accounting.
struct FrontierCounts {
  int64_t discovered = 0;  // every task ever added
  int64_t pending = 0;     // waiting (ready or not before some time)
  int64_t leased = 0;
  int64_t done = 0;
  int64_t dead = 0;
};

class Frontier {
 public:
  virtual ~Frontier() = default;

  // Adds root tasks (ids are assigned; `parent` is kept as given).
  virtual absl::Status Add(std::vector<Task> tasks) = 0;

  // Leases the next task whose not_before has passed: deepest level first,
  // then oldest first. nullopt if none is ready.
  virtual std::optional<Task> Lease(absl::Time now) = 0;

  // When the earliest waiting task becomes ready; nullopt if nothing waits.
  virtual std::optional<absl::Time> NextReadyTime() const = 0;

  // Marks a leased task done and adds the tasks it discovered (children and
  // next page), atomically. Returns the children with their ids assigned.
  virtual absl::StatusOr<std::vector<uint64_t>> Complete(uint64_t task_id, std::vector<Task> discovered) = 0;

  // Returns a leased task to pending with its updated `attempts` and
  // `not_before`.
  virtual absl::Status Retry(Task task) = 0;

  // Marks a leased task dead (the caller has recorded the dead letter).
  virtual absl::Status Dead(uint64_t task_id, std::string reason) = 0;

  // Returns a leased task to pending as it was (a stop abandoned it).
  virtual absl::Status Release(Task task) = 0;

  // Makes every change so far durable (a no-op for a frontier that keeps
  // nothing). The engine calls it when a run ends.
  virtual absl::Status Flush() { return absl::OkStatus(); }

  // Why the frontier cannot go on, if it cannot (a shared store out of reach
  // for longer than its patience); OK otherwise. Lease finds nothing while it
  // is not OK, and the engine ends the run with it.
  virtual absl::Status health() const { return absl::OkStatus(); }

  // Round trips to a remote store so far (0 for a local frontier): what
  // sharing the crawl costs, for stats and benchmarks.
  virtual int64_t round_trips() const { return 0; }

  virtual FrontierCounts counts() const = 0;
  // Pending tasks per level (index = level), for stats.
  virtual std::vector<int64_t> pending_by_level() const = 0;
};

// The in-memory frontier: nothing survives the process. Single-threaded (the
// engine's loop).
class MemoryFrontier final : public Frontier {
 public:
  explicit MemoryFrontier(size_t levels) : ready_(levels), pending_by_level_(levels, 0) {}

  absl::Status Add(std::vector<Task> tasks) override;
  std::optional<Task> Lease(absl::Time now) override;
  std::optional<absl::Time> NextReadyTime() const override;
  absl::StatusOr<std::vector<uint64_t>> Complete(uint64_t task_id, std::vector<Task> discovered) override;
  absl::Status Retry(Task task) override;
  absl::Status Dead(uint64_t task_id, std::string reason) override;
  absl::Status Release(Task task) override;
  FrontierCounts counts() const override { return counts_; }
  std::vector<int64_t> pending_by_level() const override { return pending_by_level_; }

  // Puts back tasks a durable frontier loaded, keeping their ids, with the
  // counts it recorded; new ids continue after `next_id`. Call before use.
  absl::Status Restore(std::vector<Task> pending, FrontierCounts counts, uint64_t next_id);
  // The id the next added task will get (ids are assigned in order).
  uint64_t next_id() const { return next_id_; }

 private:
  void Enqueue(Task task);
  absl::Status CheckLevel(const Task& task) const;

  struct Later {
    bool operator()(const Task& a, const Task& b) const { return a.not_before > b.not_before; }
  };
  std::vector<std::deque<Task>> ready_;                           // per level, FIFO
  std::priority_queue<Task, std::vector<Task>, Later> waiting_;   // not_before in the future
  std::vector<int64_t> pending_by_level_;
  FrontierCounts counts_;
  uint64_t next_id_ = 1;
};

}  // namespace fanout

#endif  // FANOUT_FRONTIER_H_
