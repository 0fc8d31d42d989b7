// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/engine.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "fanout/rate_limiter.h"

namespace fanout {
namespace {

// Latency histogram: log-spaced buckets from 10 us to ~170 s (x1.25 each).
class LatencyHistogram {
 public:
  void Record(absl::Duration d) {
    const double us = std::max(1.0, absl::ToDoubleMicroseconds(d));
    size_t bucket = us <= kFirstUs ? 0 : static_cast<size_t>(std::log(us / kFirstUs) / std::log(kGrowth)) + 1;
    bucket = std::min(bucket, counts_.size() - 1);
    ++counts_[bucket];
    ++total_;
    sum_ += d;
    max_ = std::max(max_, d);
  }
  // Responses in buckets whose upper bound is at most `bound`.
  int64_t AtMost(absl::Duration bound) const {
    int64_t n = 0;
    for (size_t i = 0; i < counts_.size() && absl::Microseconds(kFirstUs * std::pow(kGrowth, i)) <= bound; ++i) {
      n += counts_[i];
    }
    return n;
  }
  int64_t total() const { return total_; }
  absl::Duration sum() const { return sum_; }
  // The upper bound of the bucket holding quantile q (0 < q <= 1).
  absl::Duration Quantile(double q) const {
    if (total_ == 0) return absl::ZeroDuration();
    const int64_t rank = static_cast<int64_t>(std::ceil(q * static_cast<double>(total_)));
    int64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(max_, absl::Microseconds(kFirstUs * std::pow(kGrowth, i)));
    }
    return max_;
  }
  absl::Duration max() const { return max_; }

 private:
  static constexpr double kFirstUs = 10;
  static constexpr double kGrowth = 1.25;
  std::array<int64_t, 80> counts_{};
  int64_t total_ = 0;
  absl::Duration sum_ = absl::ZeroDuration();
  absl::Duration max_ = absl::ZeroDuration();
};

Outcome OutcomeFromTransportError(const absl::Status& status) {
  std::string detail(status.message());
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      return Outcome::ConnectionError(std::move(detail));
    case absl::StatusCode::kDeadlineExceeded:
      return Outcome::Timeout(std::move(detail));
    default:
      return Outcome::Rejected(std::move(detail));
  }
}

}  // namespace

class Engine::Impl {
 public:
  Impl(CrawlPlan plan, EngineParts parts, EngineOptions options)
      : plan_(std::move(plan)), parts_(std::move(parts)), options_(std::move(options)), levels_(plan_.levels.size()) {}

  absl::Status Init();
  void Start(absl::AnyInvocable<void(absl::StatusOr<CrawlResult>) &&> done);
  void Stop();
  CrawlStats Stats() const;
  RateLimiter* upstream_limiter() const { return global_rate_.get(); }
  ~Impl() { *alive_ = false; }

 private:
  struct LevelState {
    Limits limits{nullptr};
    LevelStats stats;
    LatencyHistogram latency;
  };
  // Subtree bookkeeping: a task is outstanding until it and everything it
  // discovered (children, next pages) are finished.
  struct Node {
    uint64_t parent = 0;
    int64_t outstanding = 1;
    int64_t records = 0;
    int64_t dead = 0;
  };

  const Clock& clock() const { return parts_.loop->clock(); }
  void Pump();
  void ScheduleWake(absl::Time when);
  void Dispatch(Task task, Permit permit);
  void OnResponse(Task task, absl::StatusOr<Response> result, absl::Time sent);
  // Handles a success: returns an error outcome if the response is unusable.
  // Takes the body of a leaf's response (it moves into the record).
  std::optional<Outcome> Accept(Task& task, Response& response);
  void OnFailure(Task task, const Outcome& outcome, int last_status);
  void AddNodes(uint64_t parent, const std::vector<uint64_t>& ids);
  void FinishNode(uint64_t id, int64_t records, int64_t dead);
  void Fail(absl::Status status);
  void Finish(CrawlResult::State state);

  CrawlPlan plan_;
  EngineParts parts_;
  EngineOptions options_;
  std::vector<LevelState> levels_;
  std::shared_ptr<RateLimiter> global_rate_;
  std::unique_ptr<AdaptiveRateController> adaptive_;  // owns global_rate_'s rate, if set
  std::shared_ptr<ConcurrencyLimiter> global_slots_;
  std::vector<std::shared_ptr<RateLimiter>> level_rates_;
  std::vector<std::shared_ptr<ConcurrencyLimiter>> level_slots_;
  ListingExtractor extractor_;
  absl::flat_hash_map<uint64_t, Node> nodes_;
  absl::flat_hash_map<uint64_t, std::pair<size_t, std::vector<std::pair<std::string, std::string>>>> listing_keys_;
  std::optional<Task> staged_;  // leased, waiting for its limits
  EventLoop::TimerId wake_timer_ = 0;
  absl::Time wake_at_ = absl::InfiniteFuture();
  EventLoop::TimerId deadline_timer_ = 0;
  absl::AnyInvocable<void(absl::StatusOr<CrawlResult>) &&> done_;
  bool started_ = false, stopping_ = false, finished_ = false;
  absl::Time start_time_;
  int64_t in_flight_ = 0;
  int64_t records_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

absl::Status Engine::Impl::Init() {
  if (parts_.loop == nullptr || parts_.transport == nullptr || parts_.frontier == nullptr) {
    return absl::InvalidArgumentError("engine: loop, transport and frontier are required");
  }
  for (Sink* sink : parts_.sinks) {
    if (sink == nullptr) return absl::InvalidArgumentError("engine: a sink is null");
  }
  if (absl::Status s = plan_.Validate(); !s.ok()) return s;
  if (options_.max_in_flight < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("engine: max_in_flight must be >= 1, got %d", options_.max_in_flight));
  }
  const Clock* clock = &parts_.loop->clock();
  if (options_.adaptive.has_value() && !options_.rate.has_value()) {
    if (!options_.adaptive->model.has_value()) {
      return absl::InvalidArgumentError(
          "engine: adaptive rate control needs a global rate (the most to send) or an upstream model");
    }
    auto spec = PacingFor(*options_.adaptive->model, options_.adaptive->model->jitter);
    if (!spec.ok()) return spec.status();
    options_.rate = *spec;
  }
  if (options_.rate.has_value()) {
    auto limiter = RateLimiter::Create(clock, *options_.rate, "global");
    if (!limiter.ok()) return limiter.status();
    global_rate_ = *std::move(limiter);
  }
  if (options_.adaptive.has_value()) {
    auto adaptive = AdaptiveRateController::Create(global_rate_.get(), *options_.adaptive);
    if (!adaptive.ok()) return adaptive.status();
    adaptive_ = *std::move(adaptive);
  }
  auto slots = ConcurrencyLimiter::Create(options_.max_in_flight, "global in flight");
  if (!slots.ok()) return slots.status();
  global_slots_ = *std::move(slots);
  for (size_t i = 0; i < plan_.levels.size(); ++i) {
    const Level& level = plan_.levels[i];
    LevelState& state = levels_[i];
    state.limits = Limits(clock);
    state.stats.name = level.name;
    state.limits.Add(global_slots_);
    if (level.max_in_flight > 0) {
      auto level_slots = ConcurrencyLimiter::Create(level.max_in_flight, "level " + level.name + " in flight");
      if (!level_slots.ok()) return level_slots.status();
      state.limits.Add(std::shared_ptr<ConcurrencyLimiter>(*std::move(level_slots)));
    }
    if (global_rate_) state.limits.Add(global_rate_);
    for (const std::shared_ptr<RateLimit>& shared : options_.shared_limits) {
      if (shared == nullptr) return absl::InvalidArgumentError("engine: a shared limit is null");
      state.limits.Add(shared);
    }
    if (level.rate.has_value()) {
      auto level_rate = RateLimiter::Create(clock, *level.rate, "level " + level.name);
      if (!level_rate.ok()) return level_rate.status();
      state.limits.Add(std::shared_ptr<RateLimiter>(*std::move(level_rate)));
    }
  }
  return absl::OkStatus();
}

void Engine::Impl::Start(absl::AnyInvocable<void(absl::StatusOr<CrawlResult>) &&> done) {
  if (started_) {
    std::move(done)(absl::FailedPreconditionError("engine: Start called twice"));
    return;
  }
  started_ = true;
  done_ = std::move(done);
  start_time_ = clock().Now();
  // A frontier that already holds work (a resumed journal) goes on from
  // there; an empty one gets the root: the first level's first page.
  if (parts_.frontier->counts().discovered == 0) {
    Task root;
    root.level = 0;
    auto url = FirstPageUrl(plan_, 0, root.bindings);
    if (!url.ok()) return Fail(url.status());
    root.url = *std::move(url);
    if (absl::Status s = parts_.frontier->Add({std::move(root)}); !s.ok()) return Fail(s);
  }
  if (options_.max_duration != absl::InfiniteDuration()) {
    deadline_timer_ = parts_.loop->RunAt(start_time_ + options_.max_duration, [this] { Stop(); });
  }
  Pump();
}

void Engine::Impl::Stop() {
  if (stopping_ || finished_ || !started_) return;
  stopping_ = true;
  if (staged_) {
    (void)parts_.frontier->Release(*std::move(staged_));
    staged_.reset();
  }
  if (in_flight_ > 0) {
    parts_.loop->RunAt(clock().Now() + options_.stop_grace, [this, alive = alive_] {
      if (*alive && !finished_) Finish(CrawlResult::State::kStopped);
    });
  }
  Pump();
}

void Engine::Impl::ScheduleWake(absl::Time when) {
  if (wake_timer_ != 0 && wake_at_ <= when) return;
  if (wake_timer_ != 0) parts_.loop->Cancel(wake_timer_);
  wake_at_ = when;
  wake_timer_ = parts_.loop->RunAt(when, [this] {
    wake_timer_ = 0;
    wake_at_ = absl::InfiniteFuture();
    Pump();
  });
}

void Engine::Impl::Pump() {
  if (finished_) return;
  while (!stopping_) {
    const absl::Time now = clock().Now();
    if (!staged_) {
      staged_ = parts_.frontier->Lease(now);
      if (!staged_) {
        if (absl::Status s = parts_.frontier->health(); !s.ok()) return Fail(s);
        break;
      }
      if (!nodes_.contains(staged_->id) && staged_->parent == 0) nodes_.emplace(staged_->id, Node{});
    }
    Admission admission = levels_[staged_->level].limits.TryAcquire(1, now);
    if (admission.granted()) {
      Task task = *std::move(staged_);
      staged_.reset();
      Dispatch(std::move(task), std::move(admission.permit));
      continue;
    }
    if (admission.verdict == Admission::Verdict::kRateLimited) ScheduleWake(now + admission.wait);
    return;  // concurrency-limited: a completion pumps again
  }
  if (staged_) return;
  if (stopping_) {
    if (in_flight_ == 0) Finish(CrawlResult::State::kStopped);
    return;
  }
  const std::optional<absl::Time> next = parts_.frontier->NextReadyTime();
  if (next.has_value()) {
    ScheduleWake(*next);
  } else if (in_flight_ == 0) {
    Finish(CrawlResult::State::kDone);
  }
}

void Engine::Impl::Dispatch(Task task, Permit permit) {
  LevelState& level = levels_[task.level];
  ++level.stats.requests;
  ++level.stats.in_flight;
  ++in_flight_;
  Request request;
  request.url = task.url;
  request.headers = options_.headers;
  const absl::Time sent = clock().Now();
  parts_.transport->Send(std::move(request),
                         [this, alive = alive_, task = std::move(task), permit = std::move(permit),
                          sent](absl::StatusOr<Response> result) mutable {
                           permit.Release();
                           if (!*alive) return;
                           OnResponse(std::move(task), std::move(result), sent);
                         });
}

void Engine::Impl::OnResponse(Task task, absl::StatusOr<Response> result, absl::Time sent) {
  LevelState& level = levels_[task.level];
  --level.stats.in_flight;
  --in_flight_;
  if (finished_) {  // abandoned after a stop: leave it for the next run
    (void)parts_.frontier->Release(std::move(task));
    return;
  }
  const absl::Time now = clock().Now();
  level.latency.Record(now - sent);
  // Requests beyond the one the limits granted (redirects, the HTTP library's
  // own resends) reached the upstream too: charge them, so the limit holds at
  // the upstream and not just at our door.
  if (const int extra = RequestsSent(result) - 1; extra > 0) {
    level.stats.extra_requests += extra;
    level.limits.Charge(extra, now);
  }
  if (adaptive_ != nullptr) {
    adaptive_->Observe({.status = result.ok() ? result->status : 0,
                        .headers = result.ok() ? &result->headers : nullptr,
                        .sent = sent,
                        .received = now,
                        .in_flight = in_flight_});
  }
  if (!result.ok()) {
    ++level.stats.transport_errors;
    if (result.status().code() == absl::StatusCode::kCancelled) {
      // The transport is shutting down: hand the task back, send nothing more.
      (void)parts_.frontier->Release(std::move(task));
      return;
    }
    OnFailure(std::move(task), OutcomeFromTransportError(result.status()), 0);
    return Pump();
  }
  Response& response = *result;
  level.stats.bytes += static_cast<int64_t>(response.body.size());
  const int status = response.status;
  if (status >= 200 && status < 300) {
    ++level.stats.responses_2xx;
    // Every attempt counts toward the retry budget, successes included.
    if (parts_.retry_policy != nullptr) (void)parts_.retry_policy->Decide(task.attempts, Outcome::Response(status));
    std::optional<Outcome> problem = Accept(task, response);
    if (finished_) return;
    if (problem.has_value()) {
      ++level.stats.invalid;
      OnFailure(std::move(task), *problem, status);
    }
    return Pump();
  }
  if (status < 400) {
    ++level.stats.responses_3xx;
  } else if (status < 500) {
    ++level.stats.responses_4xx;
  } else {
    ++level.stats.responses_5xx;
  }
  std::optional<absl::Duration> retry_after;
  if (auto header = FindHeader(response.headers, "retry-after")) {
    retry_after = ParseRetryAfter(*header, clock().WallNow());
  }
  OnFailure(std::move(task), Outcome::Response(status, retry_after), status);
  Pump();
}

std::optional<Outcome> Engine::Impl::Accept(Task& task, Response& response) {
  LevelState& level = levels_[task.level];
  if (plan_.is_leaf(task.level)) {
    if (plan_.levels[task.level].expect_json) {
      if (absl::Status s = extractor_.CheckJson(plan_, task.level, task.url, response); !s.ok()) {
        return Outcome::InvalidResponse(response.status, std::string(s.message()));
      }
    }
    Record record;
    record.path = std::move(task.path);  // the task is finished with either way
    record.url = std::move(task.url);
    record.status = response.status;
    record.fetched_at = clock().WallNow();
    record.body = std::move(response.body);
    for (Sink* sink : parts_.sinks) {
      if (absl::Status s = sink->Write(record); !s.ok()) {
        Fail(absl::Status(s.code(), absl::StrFormat("sink write for %s: %s", record.Key(), s.message())));
        return std::nullopt;
      }
    }
    auto ids = parts_.frontier->Complete(task.id, {});
    if (!ids.ok()) {
      Fail(ids.status());
      return std::nullopt;
    }
    ++records_;
    ++level.stats.succeeded;
    FinishNode(task.id, 1, 0);
    return std::nullopt;
  }
  auto page = extractor_.Extract(plan_, task.level, task.url, response);
  if (!page.ok()) return Outcome::InvalidResponse(response.status, std::string(page.status().message()));
  const Level& spec = plan_.levels[task.level];
  std::vector<Task> discovered;
  discovered.reserve(page->children.size() + 1);
  for (Child& child : page->children) {
    Task next;
    next.parent = task.id;
    next.level = task.level + 1;
    next.bindings = task.bindings;
    next.bindings.emplace_back(spec.bind, child.id);
    for (auto& field : child.captured) next.bindings.push_back(std::move(field));
    next.path = task.path;
    next.path.emplace_back(spec.name, std::move(child.id));
    auto url = FirstPageUrl(plan_, next.level, next.bindings);
    if (!url.ok()) return Outcome::InvalidResponse(response.status, std::string(url.status().message()));
    next.url = *std::move(url);
    discovered.push_back(std::move(next));
  }
  if (page->next_url.has_value()) {
    Task next_page;
    next_page.parent = task.id;
    next_page.level = task.level;
    next_page.page = task.page + 1;
    next_page.url = *std::move(page->next_url);
    next_page.bindings = task.bindings;
    next_page.path = task.path;
    discovered.push_back(std::move(next_page));
  }
  auto ids = parts_.frontier->Complete(task.id, std::move(discovered));
  if (!ids.ok()) {
    Fail(ids.status());
    return std::nullopt;
  }
  ++level.stats.succeeded;
  if (task.page == 0) listing_keys_[task.id] = {task.level, task.path};
  AddNodes(task.id, *ids);
  FinishNode(task.id, 0, 0);
  return std::nullopt;
}

void Engine::Impl::OnFailure(Task task, const Outcome& outcome, int last_status) {
  LevelState& level = levels_[task.level];
  RetryDecision decision;
  if (parts_.retry_policy != nullptr) {
    decision = parts_.retry_policy->Decide(task.attempts, outcome);
  } else {
    decision.action = RetryDecision::Action::kGiveUp;
    decision.reason = "no retry policy; last: " + DescribeOutcome(outcome);
  }
  const absl::Time now = clock().Now();
  switch (decision.action) {
    case RetryDecision::Action::kSucceeded:  // not for a failure; treat as retry now
    case RetryDecision::Action::kRetry:
      ++level.stats.retries;
      task.not_before = now + decision.delay;
      if (absl::Status s = parts_.frontier->Retry(std::move(task)); !s.ok()) Fail(s);
      return;
    case RetryDecision::Action::kThrottle:
      ++level.stats.throttled;
      // The upstream said slow down: pause everything sent to it.
      if (global_rate_) global_rate_->PauseUntil(now + decision.delay);
      for (const std::shared_ptr<RateLimit>& shared : options_.shared_limits) shared->PauseFor(decision.delay, now);
      task.not_before = now + decision.delay;
      if (absl::Status s = parts_.frontier->Retry(std::move(task)); !s.ok()) Fail(s);
      return;
    case RetryDecision::Action::kGiveUp:
      break;
  }
  ++level.stats.dead;
  if (parts_.dead_letters != nullptr) {
    DeadLetter letter;
    letter.level = plan_.levels[task.level].name;
    letter.path = task.path;
    letter.url = task.url;
    letter.attempts = task.attempts.attempts + task.attempts.throttles;
    letter.last_status = last_status;
    letter.reason = decision.reason;
    letter.at = clock().WallNow();
    if (absl::Status s = parts_.dead_letters->Append(letter); !s.ok()) return Fail(s);
  }
  if (absl::Status s = parts_.frontier->Dead(task.id, decision.reason); !s.ok()) return Fail(s);
  FinishNode(task.id, 0, 1);
}

void Engine::Impl::AddNodes(uint64_t parent, const std::vector<uint64_t>& ids) {
  auto it = nodes_.find(parent);
  if (it != nodes_.end()) it->second.outstanding += static_cast<int64_t>(ids.size());
  for (uint64_t id : ids) nodes_.emplace(id, Node{parent, 1, 0, 0});
}

void Engine::Impl::FinishNode(uint64_t id, int64_t records, int64_t dead) {
  // Walk up while subtrees complete (iteratively: a listing with thousands of
  // pages is a chain of that length).
  while (id != 0) {
    auto it = nodes_.find(id);
    if (it == nodes_.end()) return;
    Node& node = it->second;
    node.records += records;
    node.dead += dead;
    if (--node.outstanding > 0) return;
    const Node finished = node;
    nodes_.erase(it);
    if (auto key = listing_keys_.find(id); key != listing_keys_.end()) {
      SubtreeDone subtree{key->second.first, std::move(key->second.second), finished.records, finished.dead};
      listing_keys_.erase(key);
      if (options_.on_subtree_done) options_.on_subtree_done(subtree);
      if (options_.success_markers != nullptr) {
        const std::string contents = absl::StrFormat("{\"records\":%d,\"dead\":%d}\n", subtree.records, subtree.dead);
        if (absl::Status s = options_.success_markers->WriteMarker(subtree.path, "_SUCCESS", contents); !s.ok()) {
          return Fail(s);
        }
      }
    }
    records = finished.records;
    dead = finished.dead;
    id = finished.parent;
  }
}

void Engine::Impl::Fail(absl::Status status) {
  if (finished_) return;
  finished_ = true;
  if (wake_timer_ != 0) parts_.loop->Cancel(wake_timer_);
  if (deadline_timer_ != 0) parts_.loop->Cancel(deadline_timer_);
  if (done_) std::move(done_)(std::move(status));
}

void Engine::Impl::Finish(CrawlResult::State state) {
  if (finished_) return;
  for (Sink* sink : parts_.sinks) {
    if (absl::Status s = sink->Flush(); !s.ok()) return Fail(s);
  }
  if (absl::Status s = parts_.frontier->Flush(); !s.ok()) return Fail(s);
  finished_ = true;
  if (wake_timer_ != 0) parts_.loop->Cancel(wake_timer_);
  if (deadline_timer_ != 0) parts_.loop->Cancel(deadline_timer_);
  CrawlResult result;
  result.state = state;
  result.stats = Stats();
  if (!result.stats.balanced()) {
    std::move(done_)(absl::InternalError(absl::StrFormat(
        "engine: accounting does not balance: discovered %d != succeeded %d + dead %d + pending %d + in flight %d",
        result.stats.discovered, result.stats.succeeded, result.stats.dead, result.stats.pending,
        result.stats.in_flight)));
    return;
  }
  if (state == CrawlResult::State::kDone && result.stats.pending != 0) {
    std::move(done_)(absl::InternalError(
        absl::StrFormat("engine: finished with %d tasks still pending", result.stats.pending)));
    return;
  }
  std::move(done_)(std::move(result));
}

CrawlStats Engine::Impl::Stats() const {
  CrawlStats stats;
  const FrontierCounts counts = parts_.frontier->counts();
  const std::vector<int64_t> pending = parts_.frontier->pending_by_level();
  for (size_t i = 0; i < levels_.size(); ++i) {
    LevelStats level = levels_[i].stats;
    level.pending = i < pending.size() ? pending[i] : 0;
    level.latency_p50 = levels_[i].latency.Quantile(0.5);
    level.latency_p90 = levels_[i].latency.Quantile(0.9);
    level.latency_p99 = levels_[i].latency.Quantile(0.99);
    level.latency_max = levels_[i].latency.max();
    for (absl::Duration bound : kLatencyBounds) level.latency_at_most.push_back(levels_[i].latency.AtMost(bound));
    level.latency_count = levels_[i].latency.total();
    level.latency_sum = levels_[i].latency.sum();
    stats.levels.push_back(std::move(level));
  }
  stats.discovered = counts.discovered;
  stats.succeeded = counts.done;
  stats.dead = counts.dead;
  stats.in_flight = in_flight_;
  // Leased but not in flight: the task staged for its limits counts as pending.
  stats.pending = counts.pending + (counts.leased - in_flight_);
  stats.records = records_;
  stats.frontier_round_trips = parts_.frontier->round_trips();
  for (const LevelStats& level : stats.levels) stats.throttled += level.throttled;
  if (global_rate_) stats.upstream_rate = global_rate_->rate_per_second();
  if (adaptive_ != nullptr) stats.adaptive = adaptive_->State();
  stats.elapsed = started_ ? clock().Now() - start_time_ : absl::ZeroDuration();
  return stats;
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(CrawlPlan plan, EngineParts parts, EngineOptions options) {
  auto impl = std::make_unique<Impl>(std::move(plan), std::move(parts), std::move(options));
  if (absl::Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

void Engine::Start(absl::AnyInvocable<void(absl::StatusOr<CrawlResult>) &&> done) { impl_->Start(std::move(done)); }
void Engine::Stop() { impl_->Stop(); }
CrawlStats Engine::Stats() const { return impl_->Stats(); }
RateLimiter* Engine::upstream_limiter() const { return impl_->upstream_limiter(); }

}  // namespace fanout
