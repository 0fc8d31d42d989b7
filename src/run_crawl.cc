// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// RunCrawl and BackgroundCrawl: the engine wired to the real parts
// (CurlTransport on a private io_context, SystemClock, an in-memory frontier),
// run on the calling thread or on a thread of its own.

#include <mutex>
#include <functional>
#include <future>
#include <optional>
#include <thread>
#include <utility>

#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "fanout/clock.h"
#include "fanout/curl_transport.h"
#include "fanout/engine.h"
#include "fanout/event_loop.h"
#include "fanout/frontier.h"
#include "fanout/redis_client.h"
#include "fanout/redis_frontier.h"
#include "fanout/redis_rate_limiter.h"
#include "fanout/sqlite_frontier.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace fanout {

// Everything one crawl needs, built (and validated) up front; Run() drives it
// on whichever thread calls it, and only that thread touches it afterwards.
class CrawlSession {
 public:
  static absl::StatusOr<std::unique_ptr<CrawlSession>> Create(CrawlPlan plan, std::vector<Sink*> sinks,
                                                              DeadLetterLog* dead_letters, RunOptions options) {
    auto session = std::unique_ptr<CrawlSession>(new CrawlSession(std::move(options)));
    if (absl::Status s = session->Init(std::move(plan), std::move(sinks), dead_letters); !s.ok()) return s;
    return session;
  }

  ~CrawlSession() {
    // The transport goes first: requests it still holds are cancelled into an
    // engine that is alive (and finished, so it only hands them back).
    transport_.reset();
  }

  absl::StatusOr<CrawlResult> Run() {
    engine_->Start([this](absl::StatusOr<CrawlResult> r) {
      result_ = std::move(r);
      io_.stop();
    });
    if (options_.progress) ScheduleProgress();
    if (!result_.has_value()) io_.run();
    transport_.reset();
    if (!result_.has_value()) return absl::InternalError("crawl: the event loop stopped before the crawl ended");
    return *std::move(result_);
  }

  boost::asio::io_context& io() { return io_; }
  Engine& engine() { return *engine_; }

 private:
  explicit CrawlSession(RunOptions options) : options_(std::move(options)), loop_(io_, &clock_) {}

  absl::Status Init(CrawlPlan plan, std::vector<Sink*> sinks, DeadLetterLog* dead_letters) {
    CurlTransportOptions transport_options;
    transport_options.connect_timeout = options_.connect_timeout;
    transport_options.total_timeout = options_.request_timeout;
    transport_options.verify_tls = options_.verify_tls;
    transport_options.max_connections_per_host = std::max(1, options_.engine.max_in_flight);
    // Headers for every request (Authorization) become the transport's
    // defaults: built once, not copied into each request.
    transport_options.default_headers = std::move(options_.engine.headers);
    options_.engine.headers.clear();
    auto transport = CurlTransport::Create(io_, transport_options);
    if (!transport.ok()) return transport.status();
    transport_ = *std::move(transport);
    if (options_.use_retry_budget) {
      auto budget = RetryBudget::Create(&clock_, options_.retry_budget);
      if (!budget.ok()) return budget.status();
      budget_ = *std::move(budget);
    }
    auto policy = RetryPolicy::Create(&clock_, options_.retry, budget_.get(), options_.seed);
    if (!policy.ok()) return policy.status();
    policy_ = *std::move(policy);
    if (!options_.shared.redis_url.empty()) {
      if (!options_.journal.empty() || options_.journal_records) {
        return absl::InvalidArgumentError("crawl: a journal and a shared (Redis) crawl exclude each other");
      }
      if (absl::Status s = JoinSharedCrawl(plan); !s.ok()) return s;
    } else if (options_.journal.empty()) {
      if (options_.journal_records) return absl::InvalidArgumentError("crawl: journal_records needs a journal");
      frontier_ = std::make_unique<MemoryFrontier>(plan.levels.size());
    } else if (absl::Status s = OpenJournal(plan, sinks); !s.ok()) {
      return s;
    }
    if (journal_records_ != nullptr) sinks.push_back(journal_records_.get());
    auto engine = Engine::Create(
        std::move(plan),
        EngineParts{&loop_, transport_.get(), frontier_.get(), policy_.get(), std::move(sinks), dead_letters},
        options_.engine);
    if (!engine.ok()) return engine.status();
    engine_ = *std::move(engine);
    return absl::OkStatus();
  }

  // Connects to Redis, joins the crawl's shared frontier, and shares the
  // global rate with every crawl of the same upstream.
  absl::Status JoinSharedCrawl(const CrawlPlan& plan) {
    const Shared& shared = options_.shared;
    auto client = RedisClient::Connect(shared.redis_url, &clock_, shared.client);
    if (!client.ok()) return client.status();
    redis_ = *std::move(client);
    RedisFrontierOptions frontier_options = shared.frontier;
    frontier_options.crawl_id = shared.crawl_id;
    frontier_options.plan_fingerprint = PlanFingerprint(plan);
    frontier_options.force = shared.force;
    frontier_options.levels = plan.levels.size();
    auto frontier = RedisFrontier::Open(redis_, std::move(frontier_options), &loop_, &clock_);
    if (!frontier.ok()) return frontier.status();
    if (absl::Status s = SetRedisCrawlMeta(*redis_, shared.crawl_id, shared.meta); !s.ok()) return s;
    frontier_ = *std::move(frontier);
    if (options_.engine.rate.has_value()) {
      std::string upstream = shared.upstream;
      if (upstream.empty()) {  // the base URL's host[:port]
        const std::string origin = OriginOf(plan.base_url);
        upstream = origin.substr(origin.find("://") + 3);
      }
      auto limit = RedisRateLimiter::Create(redis_, *options_.engine.rate, std::move(upstream), shared.rate_lease,
                                            RedisTenant{.name = shared.crawl_id, .weight = shared.weight});
      if (!limit.ok()) return limit.status();
      options_.engine.shared_limits.push_back(std::shared_ptr<RateLimit>(*std::move(limit)));
    }
    return absl::OkStatus();
  }

  // Opens the journal and ties the JSON lines sinks to its commits.
  absl::Status OpenJournal(const CrawlPlan& plan, const std::vector<Sink*>& sinks) {
    auto journal = SqliteFrontier::Open({.path = options_.journal,
                                         .plan_fingerprint = PlanFingerprint(plan),
                                         .force = options_.force_journal,
                                         .levels = plan.levels.size(),
                                         .sync_full = options_.journal_sync_full},
                                        &clock_);
    if (!journal.ok()) return journal.status();
    for (const auto& [key, value] : options_.journal_meta) {
      if (absl::Status s = (*journal)->SetMeta(key, value); !s.ok()) return s;
    }
    if (!options_.journal_meta.empty()) {
      if (absl::Status s = (*journal)->Flush(); !s.ok()) return s;
    }
    if (options_.journal_records) journal_records_ = (*journal)->RecordSink();
    std::vector<JsonLinesSink*> lines;
    for (Sink* sink : sinks) {
      if (auto* jsonl = dynamic_cast<JsonLinesSink*>(sink)) lines.push_back(jsonl);
    }
    for (JsonLinesSink* jsonl : lines) {
      auto committed = (*journal)->Meta("jsonl_offset:" + jsonl->path());
      if (!committed.ok()) return committed.status();
      int64_t offset = 0;
      if (committed->has_value() && (!absl::SimpleAtoi(**committed, &offset) || offset > jsonl->offset())) {
        return absl::DataLossError(absl::StrFormat(
            "journal \"%s\" recorded %s bytes of \"%s\" as committed, but the file holds %d", options_.journal,
            **committed, jsonl->path(), jsonl->offset()));
      }
      if (committed->has_value()) {
        if (absl::Status s = jsonl->TruncateTo(offset); !s.ok()) return s;
      }
    }
    if (!lines.empty()) {
      (*journal)->SetCommitHook([lines]() -> absl::StatusOr<std::vector<std::pair<std::string, std::string>>> {
        std::vector<std::pair<std::string, std::string>> offsets;
        for (JsonLinesSink* jsonl : lines) {
          if (absl::Status s = jsonl->Flush(); !s.ok()) return s;
          offsets.emplace_back("jsonl_offset:" + jsonl->path(), std::to_string(jsonl->offset()));
        }
        return offsets;
      });
      // Record where the files stand before any task of this run commits.
      if (absl::Status s = (*journal)->Checkpoint(); !s.ok()) return s;
    }
    frontier_ = *std::move(journal);
    return absl::OkStatus();
  }

  void ScheduleProgress() {
    loop_.RunAt(clock_.Now() + options_.progress_interval, [this] {
      if (result_.has_value()) return;
      options_.progress(engine_->Stats());
      ScheduleProgress();
    });
  }

  RunOptions options_;
  boost::asio::io_context io_{1};  // one thread runs it: no locking in the scheduler
  SystemClock clock_;
  AsioEventLoop loop_;
  using Shared = RunOptions::Shared;
  std::shared_ptr<RedisClient> redis_;  // shared crawls: the frontier's and the limit's connection
  std::unique_ptr<RetryBudget> budget_;
  std::unique_ptr<RetryPolicy> policy_;
  std::unique_ptr<Frontier> frontier_;
  std::unique_ptr<Sink> journal_records_;  // records stored in the journal, if asked
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<CurlTransport> transport_;  // destroyed first (see ~CrawlSession)
  std::optional<absl::StatusOr<CrawlResult>> result_;
};

absl::StatusOr<CrawlResult> RunCrawl(CrawlPlan plan, std::vector<Sink*> sinks, DeadLetterLog* dead_letters,
                                     RunOptions options) {
  auto session = CrawlSession::Create(std::move(plan), std::move(sinks), dead_letters, std::move(options));
  if (!session.ok()) return session.status();
  return (*session)->Run();
}

struct BackgroundCrawl::State {
  std::unique_ptr<CrawlSession> session;
  std::thread thread;
  std::mutex mu;
  bool finished /* guarded by mu */ = false;
  std::optional<absl::StatusOr<CrawlResult>> result /* guarded by mu */;
  bool waited = false;
};

absl::StatusOr<std::unique_ptr<BackgroundCrawl>> BackgroundCrawl::Start(CrawlPlan plan, std::vector<Sink*> sinks,
                                                                        DeadLetterLog* dead_letters,
                                                                        RunOptions options) {
  auto session = CrawlSession::Create(std::move(plan), std::move(sinks), dead_letters, std::move(options));
  if (!session.ok()) return session.status();
  auto state = std::make_unique<State>();
  state->session = *std::move(session);
  State* raw = state.get();
  state->thread = std::thread([raw] {
    absl::StatusOr<CrawlResult> result = raw->session->Run();
    std::lock_guard<std::mutex> lock(raw->mu);
    raw->result = std::move(result);
    raw->finished = true;
  });
  return std::unique_ptr<BackgroundCrawl>(new BackgroundCrawl(std::move(state)));
}

BackgroundCrawl::BackgroundCrawl(std::unique_ptr<State> state) : state_(std::move(state)) {}

BackgroundCrawl::~BackgroundCrawl() {
  if (state_->thread.joinable()) {
    Stop();
    state_->thread.join();
  }
}

void BackgroundCrawl::Stop() {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->finished) return;
  // io_context::post is thread-safe; the session lives until the thread ends.
  CrawlSession* session = state_->session.get();
  boost::asio::post(session->io(), [session] { session->engine().Stop(); });
}

std::optional<CrawlStats> BackgroundCrawl::Stats() {
  std::promise<CrawlStats> promise;
  std::future<CrawlStats> future = promise.get_future();
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->finished) {
      if (state_->result->ok()) return (*state_->result)->stats;
      return std::nullopt;
    }
    CrawlSession* session = state_->session.get();
    boost::asio::post(session->io(), [session, &promise] { promise.set_value(session->engine().Stats()); });
  }
  // The loop may end before it runs the snapshot; then the final figures answer.
  while (future.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->finished) {
      if (state_->result->ok()) return (*state_->result)->stats;
      return std::nullopt;
    }
  }
  return future.get();
}

bool BackgroundCrawl::done() {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->finished;
}

absl::StatusOr<CrawlResult> BackgroundCrawl::Wait() {
  if (state_->waited) return absl::FailedPreconditionError("crawl: Wait was already called");
  state_->waited = true;
  state_->thread.join();
  std::lock_guard<std::mutex> lock(state_->mu);
  return *std::move(state_->result);
}

}  // namespace fanout
