// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// RedisFrontier: a Frontier that many worker processes, on many machines,
// share through one Redis server, so that they crawl one plan together and no
// task is lost or done twice when a worker dies.
//
// Every task lives in Redis (under keys "fanout:{<crawl id>}:...", one hash
// slot per crawl). Each state change is one Lua script, so it is atomic:
//   lease     pops ready tasks, deepest level first, and gives each a lease
//             that expires after `lease_timeout` unless renewed;
//   complete  marks a task done and adds its children and next page in the
//             same step; a second completion of the same task (its lease had
//             expired and another worker did it too) adds nothing;
//   retry / dead / release, for the task's current lease holder only.
// A lease that expires (its worker died, hung, or lost Redis for longer than
// the timeout) puts the task back at the front of its level's queue; a task
// delivered `max_deliveries` times without any outcome is dead ("lease
// expired N times"): it most likely kills its workers.
//
// Round trips are amortised: one lease call fetches up to `lease_batch`
// tasks, outcomes are sent in batches (up to `ack_batch` changes, or after
// `ack_interval`), and leases are renewed for all held tasks in one call
// every `lease_timeout / 3`. Task ids need no round trip: each worker gets a
// number when it joins (ids are number << 40 | its own counter). What a crash can
// lose is the unsent tail of outcomes: those tasks come back when their
// leases expire and are done again (at-least-once; sinks are idempotent).
//
// When Redis cannot be reached, outcomes wait in the worker (and are sent,
// in order, once it answers again: every batch is safe to send twice), Lease
// finds nothing and NextReadyTime says when to try again; only an outage
// longer than `max_outage` is an error.
//
// Ordering and completion: Lease is deepest level first over the crawl, FIFO
// within a level; NextReadyTime is the earliest retry time, or, while other
// workers hold leases (whose outcomes may bring new work), `poll_interval`
// from now; nullopt only when the whole crawl has nothing left but this
// worker's own leases. counts() are the whole crawl's (one round trip, or
// cached for `counts_cache`).
//
// Timers: with an EventLoop the frontier renews leases and sends outcomes on
// its own timers; without one (tests) it does so only within its calls.
// Single-threaded: every method on the loop's thread.

#ifndef FANOUT_REDIS_FRONTIER_H_
#define FANOUT_REDIS_FRONTIER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fanout/clock.h"
#include "fanout/event_loop.h"
#include "fanout/frontier.h"
#include "fanout/redis_client.h"

namespace fanout {

struct RedisFrontierOptions {
  // Names the crawl: 1 to 64 characters of [A-Za-z0-9._-]. Workers with the
  // same id share its tasks.
  std::string crawl_id;
  // The plan's fingerprint (PlanFingerprint): joining a crawl made for
  // another plan is refused, unless `force`.
  std::string plan_fingerprint;
  bool force = false;
  size_t levels = 0;  // the plan's level count, 1..64
  // Names this worker in leases (for status); default host:pid:random.
  std::string worker_id;
  absl::Duration lease_timeout = absl::Seconds(30);  // >= 100 ms
  int64_t max_deliveries = 5;                        // >= 1
  int64_t lease_batch = 32;                          // 1..1000
  int64_t ack_batch = 256;                           // >= 1
  absl::Duration ack_interval = absl::Milliseconds(5);
  absl::Duration poll_interval = absl::Milliseconds(20);
  absl::Duration counts_cache = absl::Milliseconds(100);
  absl::Duration max_outage = absl::Minutes(5);
};

class RedisFrontier final : public Frontier {
 public:
  // Joins (or creates) the crawl `options.crawl_id` in the Redis behind
  // `client`. InvalidArgument for bad options; FailedPrecondition if the
  // crawl was made for another plan (unless forced) or another level count;
  // Redis errors as RedisClient reports them. `loop` (may be null) and
  // `clock` must outlive the frontier.
  static absl::StatusOr<std::unique_ptr<RedisFrontier>> Open(std::shared_ptr<RedisClient> client,
                                                             RedisFrontierOptions options, EventLoop* loop,
                                                             const Clock* clock);
  // Sends what is buffered and gives back tasks fetched but not handed out
  // (best effort: what cannot be sent returns when its lease expires).
  ~RedisFrontier() override;

  // Root tasks (parent 0) are added once per crawl: when many workers start
  // the same crawl together, the first one's roots count and later Adds of
  // roots are no-ops. Tasks with a parent are always added.
  absl::Status Add(std::vector<Task> tasks) override;
  std::optional<Task> Lease(absl::Time now) override;
  std::optional<absl::Time> NextReadyTime() const override;
  absl::StatusOr<std::vector<uint64_t>> Complete(uint64_t task_id, std::vector<Task> discovered) override;
  absl::Status Retry(Task task) override;
  absl::Status Dead(uint64_t task_id, std::string reason) override;
  absl::Status Release(Task task) override;
  // Sends every buffered outcome and returns fetched tasks not yet handed
  // out; waits (up to max_outage) while Redis is unreachable.
  absl::Status Flush() override;
  FrontierCounts counts() const override;
  std::vector<int64_t> pending_by_level() const override;
  // Not OK once Redis has been out of reach for longer than max_outage, or
  // answered what the frontier cannot use (a script error).
  absl::Status health() const override { return error_; }

  // Tasks fetched from Redis and not yet handed out, and handed out (leased
  // by the engine) but without an outcome yet.
  size_t prefetched() const { return prefetched_.size(); }
  size_t held() const { return held_.size(); }
  const std::string& worker_id() const { return options_.worker_id; }
  // Redis round trips this frontier made.
  int64_t round_trips() const override { return round_trips_; }

  // Forgets every lease and buffered outcome without telling Redis, as a
  // worker killed at this instant would (for tests of recovery).
  void AbandonForTesting();

 private:
  struct Op;  // one buffered outcome
  RedisFrontier(std::shared_ptr<RedisClient> client, RedisFrontierOptions options, EventLoop* loop,
                const Clock* clock);
  absl::Status Init();
  absl::StatusOr<RedisReply> Run(const RedisScript& script, std::vector<std::string> args) const;
  absl::StatusOr<uint64_t> NextId();
  // Checks a new task's level, gives it an id, and appends (id, level,
  // encoded task) to a script's arguments.
  absl::Status Stamp(Task& task, std::vector<std::string>* args);
  void GiveBackPrefetched();  // as "L" (release) outcomes
  absl::Status NotHeld(uint64_t task_id) const;
  absl::Status Buffer(Op op);
  // Sends buffered outcomes (and renews leases when due). `wait` retries an
  // unreachable Redis up to max_outage; otherwise it leaves the batch for
  // later and returns OK unless the outage has lasted longer than that.
  absl::Status SendOps(bool wait);
  absl::Status RenewIfDue(absl::Time now);
  absl::Status Fetch();
  void Tick();          // timer: send outcomes, renew leases
  void ArmTimer(absl::Duration after);
  absl::Status Outage(const absl::Status& error);

  std::shared_ptr<RedisClient> client_;
  RedisFrontierOptions options_;
  EventLoop* const loop_;
  const Clock* const clock_;
  const std::string prefix_;  // "fanout:{<crawl id>}:"

  std::deque<Task> prefetched_;                    // leased from Redis, not handed out
  absl::flat_hash_set<uint64_t> held_;             // handed out, no outcome yet
  std::vector<Op> ops_;                            // outcomes not yet sent
  absl::Time ops_since_ = absl::InfiniteFuture();  // when the oldest buffered op was made
  absl::Time last_renew_;
  uint64_t worker_number_ = 0;  // from Redis at Open: this worker's id space
  uint64_t next_seq_ = 1;
  // From the last lease call: the earliest retry time (local clock), whether
  // anyone else holds leases, and when the call came back empty.
  std::optional<absl::Time> next_wait_;
  bool others_leased_ = false;
  absl::Time empty_at_ = absl::InfinitePast();
  bool new_work_ = false;  // this worker sent new tasks since the empty fetch
  absl::Time outage_since_ = absl::InfiniteFuture();
  absl::Status error_;  // sticky: health()
  absl::Time retry_at_ = absl::InfinitePast();  // no Redis call before this (outage backoff)
  EventLoop::TimerId timer_ = 0;
  absl::Time timer_at_ = absl::InfiniteFuture();
  mutable int64_t round_trips_ = 0;
  mutable absl::Time counts_at_ = absl::InfinitePast();
  mutable FrontierCounts counts_;
  mutable std::vector<int64_t> pending_by_level_;
};

// What a crawl in Redis holds, read without changing it (`fanout status`).
struct RedisCrawlSummary {
  std::string crawl_id;
  FrontierCounts counts;
  std::vector<int64_t> pending_by_level;  // index = level
  std::vector<int64_t> leased_by_level;   // being worked on
  std::vector<int64_t> done_by_level;
  std::vector<int64_t> dead_by_level;
  std::vector<std::pair<std::string, int64_t>> dead_by_reason;  // most frequent first
  std::vector<std::pair<std::string, std::string>> meta;  // the crawl's meta entries
};
absl::StatusOr<RedisCrawlSummary> InspectRedisCrawl(RedisClient& client, const std::string& crawl_id,
                                                    size_t max_reasons = 20);

// Puts a crawl's dead tasks back to pending with fresh attempts: all, those
// of one level, and/or those whose reason contains `reason_contains`. Safe
// while workers run (they take the revived tasks). Returns how many.
absl::StatusOr<int64_t> RedriveRedisCrawl(RedisClient& client, const std::string& crawl_id,
                                          std::optional<uint32_t> level, const std::string& reason_contains);

// The crawls a Redis holds (every crawl a RedisFrontier ever opened), by id.
absl::StatusOr<std::vector<std::string>> ListRedisCrawls(RedisClient& client);

// Sets and reads a crawl's meta entries (what a worker needs to join it: its
// spec, its weight). Keys starting with "_" are the frontier's own.
absl::Status SetRedisCrawlMeta(RedisClient& client, const std::string& crawl_id,
                               const std::vector<std::pair<std::string, std::string>>& entries);
absl::StatusOr<std::optional<std::string>> GetRedisCrawlMeta(RedisClient& client, const std::string& crawl_id,
                                                             const std::string& key);

// A name for this process among a crawl's workers: "host:pid:random".
std::string DefaultWorkerId();

// Checks a crawl id (1 to 64 of [A-Za-z0-9._-]); InvalidArgument naming it.
absl::Status ValidateCrawlId(std::string_view crawl_id);

}  // namespace fanout

#endif  // FANOUT_REDIS_FRONTIER_H_
