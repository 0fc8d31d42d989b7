// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Retry: deciding, after each attempt at a task, whether to try again, when,
// and whether that attempt counts against the task.
//
// Three rules shape it, each learned from crawls that went wrong:
//  - Throttling is not failure. A 429 (or a 503 carrying Retry-After) means
//    "slow down", so the task is re-queued after a cooldown without spending
//    one of its attempts, and the caller should pause the whole upstream key,
//    not just this task. A separate, generous cap keeps a task from being
//    throttled forever.
//  - A server's Retry-After takes precedence over the computed backoff (capped
//    by a configurable maximum, so a hostile or buggy value cannot park a task
//    for a year). A malformed Retry-After is ignored and the computed backoff
//    is used instead.
//  - A failing upstream must not be hammered by a retry storm: a RetryBudget
//    lets retries be at most a fraction of requests (plus a small floor), and
//    when it is empty failures go to the dead-letter path instead of retrying.
//
// The policy knows status classes, never HTTP details beyond them: the caller
// describes an attempt as an Outcome.

#ifndef FANOUT_RETRY_H_
#define FANOUT_RETRY_H_

#include <mutex>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fanout/clock.h"

namespace fanout {

// What one attempt produced, as far as retrying is concerned.
struct Outcome {
  enum class Kind {
    kResponse,         // an HTTP response arrived; see http_status
    kConnectionError,  // DNS failure, refused, reset, TLS failure, closed early
    kTimeout,          // connect or total timeout
    kInvalidResponse,  // a response arrived but its body could not be used
                       // (truncated, malformed JSON, unexpected shape)
    kRejected,         // the request can never succeed as made: bad URL, scheme
                       // or redirect not allowed, response over the size cap
  };
  Kind kind = Kind::kResponse;
  int http_status = 0;  // meaningful when kind == kResponse
  // The server's Retry-After, already parsed (see ParseRetryAfter); nullopt
  // when absent or malformed.
  std::optional<absl::Duration> retry_after;
  // What went wrong, for messages (e.g. "connection refused", "items pointer
  // /data matched no array"); may be empty. Never holds secrets.
  std::string detail;

  static Outcome Response(int status, std::optional<absl::Duration> retry_after = std::nullopt) {
    return Outcome{Kind::kResponse, status, retry_after, {}};
  }
  static Outcome ConnectionError(std::string detail = {}) {
    return Outcome{Kind::kConnectionError, 0, std::nullopt, std::move(detail)};
  }
  static Outcome Timeout(std::string detail = {}) {
    return Outcome{Kind::kTimeout, 0, std::nullopt, std::move(detail)};
  }
  static Outcome InvalidResponse(int status, std::string detail = {}) {
    return Outcome{Kind::kInvalidResponse, status, std::nullopt, std::move(detail)};
  }
  static Outcome Rejected(std::string detail = {}) {
    return Outcome{Kind::kRejected, 0, std::nullopt, std::move(detail)};
  }
};

// How an outcome is treated.
enum class OutcomeClass {
  kSuccess,    // 2xx
  kRetryable,  // connection errors, timeouts, 408, 425, 500, 502, 503 (without
               // Retry-After), 504, and invalid responses when configured
  kThrottled,  // 429, and 503 with Retry-After: a cooldown, not a failure
  kPermanent,  // every other status (other 4xx, 501, 505, unresolved 3xx, ...)
               // and rejected requests
};

// Classifies an outcome. `retry_invalid_responses` decides whether
// kInvalidResponse is kRetryable (true) or kPermanent (false). Pure function.
OutcomeClass Classify(const Outcome& outcome, bool retry_invalid_responses = true);

// Human-readable description of an outcome for error messages and dead
// letters, e.g. "HTTP 503", "connection error", "timeout",
// "invalid response (HTTP 200)", followed by ": <detail>" when there is one.
std::string DescribeOutcome(const Outcome& outcome);

// Parses an HTTP Retry-After header value (RFC 9110 §10.2.3): either
// delta-seconds ("120") or an HTTP-date in any of the three formats a
// recipient must accept: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"),
// obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime
// ("Sun Nov  6 08:49:37 1994"). Surrounding whitespace is ignored.
// Returns the delay from `wall_now` (zero when the date is already past), or
// nullopt when the value is empty or malformed (negative, fractional, junk,
// out of range), in which case the caller should fall back to its own backoff.
std::optional<absl::Duration> ParseRetryAfter(std::string_view value, absl::Time wall_now);

// Parses an HTTP-date (RFC 9110 §5.6.7) in any of the three formats above, as
// found in Retry-After and Date headers. `wall_now` resolves the two-digit
// year of the RFC 850 form. Surrounding whitespace is ignored. nullopt when
// malformed or naming a day that does not exist. Pure function.
std::optional<absl::Time> ParseHttpDate(std::string_view value, absl::Time wall_now);

// The backoff shape between attempts (see "Exponential Backoff And Jitter").
enum class Jitter {
  kNone,          // delay = min(cap, base * 2^(n-1))
  kFull,          // delay = uniform[0, min(cap, base * 2^(n-1))]
  kDecorrelated,  // delay = min(cap, uniform[base, 3 * previous delay])
};

struct RetryOptions {
  // Attempts in all, the first included; a task whose attempts reach it goes
  // to the dead letters. Must be >= 1 (1 means never retry).
  int max_attempts = 5;
  // Give up rather than schedule an attempt later than this after the first
  // one. InfiniteDuration() for no limit. Must be > 0.
  absl::Duration max_elapsed = absl::Minutes(15);
  // Backoff: the first retry waits around `base_delay`, growing to at most
  // `max_delay`. Need 0 < base_delay <= max_delay.
  absl::Duration base_delay = absl::Milliseconds(250);
  absl::Duration max_delay = absl::Seconds(30);
  Jitter jitter = Jitter::kFull;
  // A server's Retry-After longer than this is cut to it. Must be > 0.
  absl::Duration max_retry_after = absl::Minutes(5);
  // Throttles (429s) a single task may take before it is dead-lettered with
  // reason "throttled N times". Generous by design. Must be >= 1.
  int max_throttles = 50;
  // Whether a response whose body could not be used is worth another try.
  bool retry_invalid_responses = true;
};

// Per-task retry bookkeeping. Small and copyable so a frontier can store it
// with the task. A new task starts with the default value.
struct AttemptState {
  int attempts = 0;   // attempts that ended in a counted failure
  int throttles = 0;  // attempts that ended throttled (not counted above)
  // When the first attempt finished (Clock::Now()); InfinitePast() = not yet.
  absl::Time first_attempt = absl::InfinitePast();
  // The previous computed backoff, for decorrelated jitter.
  absl::Duration previous_delay = absl::ZeroDuration();
};

// What to do after an attempt.
struct RetryDecision {
  enum class Action {
    kSucceeded,  // the attempt succeeded; nothing to retry
    kRetry,      // try again after `delay`; one attempt was spent
    kThrottle,   // try again after `delay` without spending an attempt, and
                 // pause the upstream key (its rate limiter) for `delay` too
    kGiveUp,     // dead-letter the task with `reason`
  };
  Action action = Action::kSucceeded;
  absl::Duration delay = absl::ZeroDuration();
  // For kGiveUp: why, naming the numbers, e.g.
  // "out of attempts (5 of 5); last: HTTP 503",
  // "not retryable: HTTP 404", "retry budget exhausted; last: timeout",
  // "throttled 50 times (max_throttles 50)",
  // "next attempt would exceed max_elapsed 15m; last: connection error".
  std::string reason;
};

// A token bucket over retries that keeps retries to at most `ratio` of
// requests plus a floor of `min_per_second`, so a failing upstream sees a
// bounded amount of extra load. Every request deposits `ratio` tokens (up to
// `max_balance`); every retry withdraws one; the floor refills on its own.
// Thread-safe.
struct RetryBudgetOptions {
  double ratio = 0.1;          // >= 0
  double min_per_second = 5;   // >= 0; retries always allowed at this rate
  double max_balance = 100;    // > 0; cap on saved-up retries
};

class RetryBudget {
 public:
  // Validates the options (InvalidArgument naming the bad field). `clock` must
  // outlive the budget.
  static absl::StatusOr<std::unique_ptr<RetryBudget>> Create(const Clock* clock,
                                                             RetryBudgetOptions options);

  // Records that a request was sent (any attempt): deposits `ratio` tokens.
  void RecordRequest();
  // Takes one token for a retry; false when the budget is empty.
  bool TryWithdraw();
  // Tokens available now (deposits plus the floor's), for metrics.
  double Available() const;

 private:
  RetryBudget(const Clock* clock, RetryBudgetOptions options);
  const Clock* const clock_;
  const RetryBudgetOptions options_;
  mutable std::mutex mu_;
  double balance_ /* guarded by mu_ */ = 0;        // from deposits
  double floor_tokens_ /* guarded by mu_ */ = 0;   // from min_per_second
  absl::Time floor_updated_ /* guarded by mu_ */;
};

// Decides retries. Thread-safe (the RNG is behind a mutex); deterministic for
// a given seed and sequence of calls.
class RetryPolicy {
 public:
  // Validates `options` (InvalidArgument naming the field and value). `clock`
  // must outlive the policy; `budget` may be null (no budget) and, if not, must
  // outlive it. `seed` seeds the jitter.
  static absl::StatusOr<std::unique_ptr<RetryPolicy>> Create(const Clock* clock,
                                                             RetryOptions options,
                                                             RetryBudget* budget = nullptr,
                                                             uint64_t seed = 0x5eed);

  // Decides what follows `outcome` for a task whose bookkeeping is `state`,
  // and updates `state` (attempts, throttles, first_attempt, previous_delay).
  // Records the attempt in the budget, and withdraws from it for a retry.
  RetryDecision Decide(AttemptState& state, const Outcome& outcome);

  const RetryOptions& options() const { return options_; }

  // The computed backoff before retry number `retry` (1 for the first retry),
  // given the previous delay (for decorrelated jitter). Draws from the RNG.
  absl::Duration Backoff(int retry, absl::Duration previous_delay);

 private:
  RetryPolicy(const Clock* clock, RetryOptions options, RetryBudget* budget, uint64_t seed);
  const Clock* const clock_;
  const RetryOptions options_;
  RetryBudget* const budget_;
  std::mutex mu_;
  std::mt19937_64 rng_ /* guarded by mu_ */;
};

}  // namespace fanout

#endif  // FANOUT_RETRY_H_
