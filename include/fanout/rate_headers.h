// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Rate-limit headers: what an upstream says about its own limit, read from a
// response into one struct, whichever dialect the vendor speaks:
//
//   IETF draft, fields      RateLimit-Limit: 100          RateLimit-Remaining: 50
//                           RateLimit-Reset: 30           RateLimit-Policy: 100;w=60
//   IETF draft, one field   RateLimit: limit=100, remaining=50, reset=30
//   IETF draft, named       RateLimit: "default";r=50;t=30
//                           RateLimit-Policy: "default";q=100;w=60
//   common X- variants      X-RateLimit-Limit / -Remaining / -Reset / -Reset-After,
//                           X-Rate-Limit-Limit / -Remaining / -Reset
//   leaky-bucket counters   X-Shopify-Shop-Api-Call-Limit: 32/40  (used/capacity)
//   and                     Retry-After, Date (for the server's clock)
//
// Reset values come as seconds from now, as epoch seconds or as epoch
// milliseconds depending on the vendor; the magnitude tells which (see
// ResetUnit). Epoch values are taken relative to the server's own clock (its
// Date header) when that disagrees with ours by more than kClockSkewTolerance,
// so a skewed server clock does not make us wait too long or not at all. Every
// wait is clamped to `max_wait`: a buggy or hostile value never parks a crawl
// for 50 years. Malformed values (signs, junk, hex, NaN, overflow) are ignored
// field by field; parsing never fails and never throws.

#ifndef FANOUT_RATE_HEADERS_H_
#define FANOUT_RATE_HEADERS_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/time/time.h"
#include "fanout/transport.h"

namespace fanout {

// How a reset value was written.
enum class ResetUnit {
  kDeltaSeconds,       // seconds from now: values below 1e9 (1e9 s is 31 years)
  kEpochSeconds,       // Unix time in seconds: 1e9 <= value < 1e12
  kEpochMilliseconds,  // Unix time in milliseconds: 1e12 <= value < 1e15
};

// Which header family the figures came from (the first that had any).
enum class RateHeaderSource {
  kNone,
  kIetfStructured,  // RateLimit (one field) with RateLimit-Policy
  kIetf,            // RateLimit-Limit / -Remaining / -Reset
  kXRateLimit,      // X-RateLimit-* or X-Rate-Limit-*
  kLeakyBucket,     // X-Shopify-Shop-Api-Call-Limit
};

// Server clocks that disagree with ours by up to this much are taken to agree
// (a Date header has one-second resolution).
inline constexpr absl::Duration kClockSkewTolerance = absl::Seconds(2);
// The default cap on any wait read from a header: a day covers daily quotas.
inline constexpr absl::Duration kDefaultMaxRateLimitWait = absl::Hours(24);

// What one response said about the limit. Every field is optional: absent or
// malformed in the response means nullopt here.
struct RateLimitHeaders {
  // Requests the current window (or bucket) allows in all, >= 0.
  std::optional<int64_t> limit;
  // Requests left before the server refuses, >= 0.
  std::optional<int64_t> remaining;
  // Time from now until the quota is restored, in [0, max_wait].
  std::optional<absl::Duration> reset;
  ResetUnit reset_unit = ResetUnit::kDeltaSeconds;  // meaningful when reset is set
  bool reset_clamped = false;                       // reset was longer than max_wait
  // The policy's quota and window (RateLimit-Policy "q;w=60" or "100;w=60"):
  // at most `policy_quota` requests per `policy_window`.
  std::optional<int64_t> policy_quota;
  std::optional<absl::Duration> policy_window;
  // A leaky bucket's counters (X-Shopify-Shop-Api-Call-Limit: used/capacity).
  std::optional<int64_t> bucket_used;
  std::optional<int64_t> bucket_capacity;
  // Retry-After (delta seconds or HTTP-date), in [0, max_wait].
  std::optional<absl::Duration> retry_after;
  // The server's Date minus our wall clock, when the response had a valid Date.
  std::optional<absl::Duration> clock_skew;
  RateHeaderSource source = RateHeaderSource::kNone;

  // Whether remaining and reset are both known: a budget to pace against.
  bool has_budget() const { return remaining.has_value() && reset.has_value(); }
  // Whether any rate-limit figure (not counting Date) was found.
  bool empty() const {
    return !limit && !remaining && !reset && !policy_quota && !bucket_capacity && !retry_after;
  }
};

// Reads the rate-limit headers of one response. `wall_now` is our calendar
// clock (Clock::WallNow()) when the response arrived. Waits (reset,
// retry_after) longer than `max_wait` are cut to it. Pure function; never
// fails: what cannot be read is left unset.
RateLimitHeaders ParseRateLimitHeaders(const Headers& headers, absl::Time wall_now,
                                       absl::Duration max_wait = kDefaultMaxRateLimitWait);

// One reset value, interpreted.
struct ResetValue {
  absl::Duration delay;  // from `reference`, in [0, max_wait]
  ResetUnit unit = ResetUnit::kDeltaSeconds;
  bool clamped = false;  // the value named a time later than max_wait
};

// Interprets a reset header value: a non-negative decimal number (a fraction
// is allowed: "1.250"), its unit told by its magnitude (see ResetUnit).
// `reference` is "now" on the clock the server used for epoch values (its
// Date header, or our wall clock). An epoch in the past is a zero delay.
// nullopt when malformed or 1e15 or above. Pure function.
std::optional<ResetValue> InterpretReset(std::string_view value, absl::Time reference,
                                         absl::Duration max_wait = kDefaultMaxRateLimitWait);

}  // namespace fanout

#endif  // FANOUT_RATE_HEADERS_H_
