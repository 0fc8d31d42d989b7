// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Engine: runs a CrawlPlan to completion. The only part that knows all the
// others, and only through their interfaces:
//
//   take the next task from the Frontier (deepest level first)
//   -> wait until Limits grant it (global + its level: rate and in-flight),
//      on event-loop timers, never spinning
//   -> send it through the Transport
//   -> listing: extract children and the next page, Complete() them into the
//      frontier; leaf: write the Record to every Sink, then Complete()
//   -> failure: the RetryPolicy decides: retry later (not_before), throttle
//      (pause the upstream's limiter), or dead-letter with the reason.
//
// Single-threaded on its EventLoop: every method must be called on the loop
// thread (Start may be posted there), and callbacks run there.

#ifndef FANOUT_ENGINE_H_
#define FANOUT_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fanout/adaptive_rate.h"
#include "fanout/crawl_plan.h"
#include "fanout/event_loop.h"
#include "fanout/frontier.h"
#include "fanout/limits.h"
#include "fanout/rate_limit.h"
#include "fanout/redis_frontier.h"
#include "fanout/retry.h"
#include "fanout/sink.h"
#include "fanout/transport.h"

namespace fanout {

// Per-level figures.
struct LevelStats {
  std::string name;
  int64_t requests = 0;
  // Requests that reached the upstream beyond those granted: redirects and
  // the HTTP library's resends on a dead reused connection. Charged to the
  // rate limits after the fact.
  int64_t extra_requests = 0;
  int64_t responses_2xx = 0, responses_3xx = 0, responses_4xx = 0, responses_5xx = 0;
  int64_t transport_errors = 0;  // no response: connection errors, timeouts, ...
  int64_t invalid = 0;           // a response that could not be used
  int64_t throttled = 0;         // 429s and 503s with Retry-After
  int64_t retries = 0;
  int64_t succeeded = 0;
  int64_t dead = 0;
  int64_t in_flight = 0;
  int64_t pending = 0;
  int64_t bytes = 0;             // response bodies
  absl::Duration latency_p50, latency_p90, latency_p99, latency_max;
  // The latency histogram, cumulative as Prometheus has it: for each bound of
  // kLatencyBounds, the responses that took at most that long (to the
  // precision of the engine's internal buckets, 25% wide); and in all.
  std::vector<int64_t> latency_at_most;
  int64_t latency_count = 0;
  absl::Duration latency_sum;
};

// The bounds of LevelStats::latency_at_most: 1 ms to 60 s.
inline constexpr absl::Duration kLatencyBounds[] = {
    absl::Milliseconds(1),   absl::Microseconds(2500), absl::Milliseconds(5),   absl::Milliseconds(10),
    absl::Milliseconds(25),  absl::Milliseconds(50),  absl::Milliseconds(100), absl::Milliseconds(250),
    absl::Milliseconds(500), absl::Seconds(1),        absl::Milliseconds(2500),     absl::Seconds(5),
    absl::Seconds(10),       absl::Seconds(30),       absl::Seconds(60)};

struct CrawlStats {
  std::vector<LevelStats> levels;
  int64_t discovered = 0;  // tasks: roots, children and next pages
  int64_t succeeded = 0;
  int64_t dead = 0;
  int64_t pending = 0;     // not finished (only after a stop)
  int64_t in_flight = 0;
  int64_t records = 0;     // leaf documents written to the sinks
  // Round trips to a shared frontier (RedisFrontier) so far; 0 otherwise.
  int64_t frontier_round_trips = 0;
  absl::Duration elapsed;
  // The upstream's limiter (the global rate): its rate now, in requests per
  // second (0 when there is no global rate), and the responses that said
  // "slow down" (429s, and 503s with Retry-After) over all levels.
  double upstream_rate = 0;
  int64_t throttled = 0;
  // The adaptive controller's view, when EngineOptions::adaptive is set.
  std::optional<AdaptiveRateState> adaptive;
  // discovered == succeeded + dead + pending + in_flight, always.
  bool balanced() const { return discovered == succeeded + dead + pending + in_flight; }
};

// How a run ended.
struct CrawlResult {
  enum class State {
    kDone,     // nothing left: every task succeeded or is dead
    kStopped,  // Stop() was called (or max_duration passed): work remains
  };
  State state = State::kDone;
  CrawlStats stats;
};

// A completed subtree: every descendant of one listing (all its pages and
// everything below) succeeded or is dead.
struct SubtreeDone {
  size_t level;  // the listing's level
  std::vector<std::pair<std::string, std::string>> path;  // its key (level name, id) ...
  int64_t records = 0;  // leaf documents written under it
  int64_t dead = 0;     // tasks dead-lettered under it
};

struct EngineOptions {
  // Global limits, shared by every level: requests per second (nullopt = no
  // rate limit) and requests in flight.
  std::optional<RateLimitSpec> rate;
  int max_in_flight = 64;
  // Rate limits this crawl shares with other processes (RedisRateLimiter:
  // many workers, one upstream budget). Every request of every level must
  // pass them too; they are asked after the in-process limits, so a local
  // refusal costs no round trip.
  std::vector<std::shared_ptr<RateLimit>> shared_limits;
  // Adaptive rate control of the global limiter (see adaptive_rate.h): honour
  // Retry-After for the whole upstream, pace from its rate-limit headers or
  // its declared model, back off and probe (AIMD) when refused. Off when
  // nullopt. Needs `rate` (the most to send), unless a model is given, in
  // which case `rate` defaults to the model's pace.
  std::optional<AdaptiveRateOptions> adaptive;
  // Headers sent with every request (e.g. Authorization). Never logged.
  Headers headers;
  // Stop leasing new tasks after this long (InfiniteDuration = no limit); the
  // run ends kStopped if work remains.
  absl::Duration max_duration = absl::InfiniteDuration();
  // After a stop, how long in-flight requests may take to finish before they
  // are abandoned (returned to pending).
  absl::Duration stop_grace = absl::Seconds(10);
  // Called on the loop when a listing's subtree completes. Only subtrees whose
  // listing was fetched in this run are reported: the bookkeeping is in
  // memory, so one begun before a crash is not reported after the resume.
  std::function<void(const SubtreeDone&)> on_subtree_done;
  // Writes "_SUCCESS" with the subtree's counts under its prefix in this sink
  // when a subtree completes (optional; must also be among the sinks).
  FileTreeSink* success_markers = nullptr;
};

// What the engine works with; all must outlive it, and the transport must be
// destroyed (or drained) before the engine, since its callbacks return
// concurrency slots the engine owns. `retry_policy` and
// `dead_letters` may be null (no retries: every failure is dead; dead letters
// only counted).
struct EngineParts {
  EventLoop* loop = nullptr;
  Transport* transport = nullptr;
  Frontier* frontier = nullptr;
  RetryPolicy* retry_policy = nullptr;
  std::vector<Sink*> sinks;
  DeadLetterLog* dead_letters = nullptr;
};

class Engine {
 public:
  // Validates the plan and options (InvalidArgument naming what is wrong).
  static absl::StatusOr<std::unique_ptr<Engine>> Create(CrawlPlan plan, EngineParts parts,
                                                        EngineOptions options = {});
  ~Engine();

  // Starts the crawl: adds the root task (the first level's first page) and
  // runs until done, stopped or failed; `done` is called once on the loop.
  // An error (a sink or frontier failure) ends the run early with that status.
  void Start(absl::AnyInvocable<void(absl::StatusOr<CrawlResult>) &&> done);

  // Stops leasing new tasks; in-flight requests get `stop_grace` to finish.
  void Stop();

  // A snapshot of the figures so far.
  CrawlStats Stats() const;

  // The limiter that stands for the upstream (paused on throttling); null when
  // no global rate is set.
  RateLimiter* upstream_limiter() const;

  class Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs a crawl to completion on the calling thread with the real transport
// (CurlTransport) on a fresh io_context and an in-memory frontier (or a
// journal, or a crawl shared through Redis): the simplest way to embed fanout. `progress`, if set, is called about every
// `progress_interval` with a stats snapshot.
struct RunOptions {
  EngineOptions engine;
  // A journal file (SqliteFrontier) to make the crawl resumable after a
  // crash or a stop: a later run with the same plan and journal goes on where
  // this one ended. Empty = in memory. JSON lines sinks are tied to it: each
  // journal commit first makes their lines durable and records their offset,
  // and a resume cuts them back to it, so no line is lost or written twice.
  std::string journal;
  bool force_journal = false;  // resume a journal written for another plan
  // Journal commits (and the JSON lines files' fsync with each) survive a
  // crash of the process in any case; `true` also survives a power loss, at
  // the cost of an fsync of the journal per commit (SQLite synchronous=FULL).
  bool journal_sync_full = false;
  // Scale-out: when `redis_url` is set, the crawl's tasks live in that Redis
  // under `crawl_id` (RedisFrontier), shared with every worker that runs the
  // same crawl id, and a global `engine.rate` becomes a budget shared by
  // every process that crawls the same `upstream` (RedisRateLimiter), on top
  // of this process's own limiter. Not with `journal`. Leaf output should be
  // idempotent by key (FileTreeSink): a task whose worker died is done again.
  struct Shared {
    std::string redis_url;  // redis://[[user]:password@]host[:port][/db]
    std::string crawl_id;
    // The shared limit's key: the upstream's name; default the plan's base
    // URL's host[:port].
    std::string upstream;
    int64_t rate_lease = 1;  // tokens fetched per round trip (1..burst)
    // This crawl's weight among the crawls that share the upstream's limit
    // (RedisTenant, named by crawl_id): crawls that all want more than the
    // limit split it by weight.
    int64_t weight = 1;
    bool force = false;      // join a crawl started with another plan
    // Entries written into the crawl's meta once joined (what `fanout
    // worker` needs to join it: the spec).
    std::vector<std::pair<std::string, std::string>> meta;
    RedisFrontierOptions frontier;  // crawl_id, levels, fingerprint, force are filled in
    RedisClientOptions client;
  } shared;
  // Entries written into the journal's meta table once it is open (and its
  // plan checked): what a later `resume` needs to rebuild the crawl.
  std::vector<std::pair<std::string, std::string>> journal_meta;
  // Also store each leaf record in the journal itself, in the same
  // transaction that marks its task done (SqliteFrontier::RecordSink).
  bool journal_records = false;
  RetryOptions retry;
  RetryBudgetOptions retry_budget;
  bool use_retry_budget = true;
  uint64_t seed = 1;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration request_timeout = absl::Seconds(60);
  bool verify_tls = true;
  std::function<void(const CrawlStats&)> progress;
  absl::Duration progress_interval = absl::Seconds(1);
};
absl::StatusOr<CrawlResult> RunCrawl(CrawlPlan plan, std::vector<Sink*> sinks, DeadLetterLog* dead_letters,
                                     RunOptions options);

// The same crawl on a thread of its own, so the host keeps its thread: watch
// it with Stats(), stop it with Stop(), collect the result with Wait().
// Sinks are written from the crawl's thread. Every method is thread-safe
// except Wait, which one thread calls once.
class BackgroundCrawl {
 public:
  // Validates and builds everything on the calling thread (errors are
  // returned here), then starts the crawl's thread.
  static absl::StatusOr<std::unique_ptr<BackgroundCrawl>> Start(CrawlPlan plan, std::vector<Sink*> sinks,
                                                                DeadLetterLog* dead_letters, RunOptions options);
  // Stops the crawl (as Engine::Stop) and waits for its thread.
  ~BackgroundCrawl();

  // A snapshot of the figures, taken on the crawl's thread (blocks until it
  // answers, which it does between two events); the final figures once the
  // crawl has ended; nullopt if it failed.
  std::optional<CrawlStats> Stats();
  // Asks the crawl to stop gracefully; returns at once.
  void Stop();
  // Whether the crawl has ended.
  bool done();
  // Blocks until the crawl ends and returns how it ended.
  absl::StatusOr<CrawlResult> Wait();

 private:
  struct State;
  explicit BackgroundCrawl(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace fanout

#endif  // FANOUT_ENGINE_H_
