// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// UpstreamModel: the upstream's limiter as its vendor documents it, so fanout
// can pace to it exactly instead of discovering it by being refused:
//
//   nginx limit_req   rate "10r/s" or "30r/m", burst, nodelay
//   fixed window      at most N requests per window (per minute, per hour)
//   leaky bucket      capacity C, leaking L per second (Shopify: 40, 2/s)
//
// PacingFor turns a model into the RateLimitSpec of our own limiter, keeping a
// safety margin for the request-arrival jitter (how much earlier than its
// schedule a request may reach the upstream: network and timer variation), so
// that a client paced by it is never refused yet runs at 97% or more of the
// limit whenever the jitter is small next to the limit's spacing.
//
// nginx's arithmetic is modelled exactly (ngx_http_limit_req_module): the rate
// is an integer of milli-requests per second, so r/m rates truncate (1r/m is
// 16 mr/s: one request per 62.5 s, not per 60 s); time is whole milliseconds
// of its cached clock; a request is refused when the excess, in milli-
// requests, would pass burst * 1000.

#ifndef FANOUT_UPSTREAM_MODEL_H_
#define FANOUT_UPSTREAM_MODEL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fanout/rate_limiter.h"

namespace fanout {

// nginx `limit_req zone=... rate=R burst=B [nodelay]`.
struct NginxLimitReq {
  // The zone's rate as nginx holds it: milli-requests per second, an integer
  // (10r/s = 10000; 1r/m = 1000/60 = 16). See ParseNginxRate.
  int64_t rate_millis = 1000;
  int64_t burst = 0;     // requests beyond the rate nginx accepts (queues or, with nodelay, serves)
  bool nodelay = false;  // a burst is served at once rather than spaced out by nginx
};

// At most `max_requests` in each window of length `window` (windows aligned
// by the server, phase unknown to us).
struct FixedWindowLimit {
  int64_t max_requests = 1;
  absl::Duration window = absl::Minutes(1);
};

// A bucket of `capacity` requests that leaks `leak_per_second`; a request
// that would overflow it is refused (the same as a GCRA / token bucket).
struct LeakyBucketLimit {
  int64_t capacity = 1;
  double leak_per_second = 1;
};

struct UpstreamModel {
  std::variant<NginxLimitReq, FixedWindowLimit, LeakyBucketLimit> limiter;
  // The largest amount by which a request may reach the upstream earlier than
  // its place in our schedule, relative to the one before it. Replaced by the
  // measured value when the controller measures a larger one. >= 0.
  absl::Duration jitter = absl::Milliseconds(1);
  // The smallest safety margin kept whatever the jitter, as a fraction of the
  // rate: guards against clock-rate differences. In [0, 0.03).
  double min_margin = 0.001;
};

// Parses an nginx rate: "<N>r/s" or "<N>r/m" (N a positive integer), into
// milli-requests per second exactly as nginx does (N * 1000 / 60 truncated for
// r/m). InvalidArgument naming the value otherwise, or when the result is 0
// (nginx refuses such a rate too).
absl::StatusOr<int64_t> ParseNginxRate(std::string_view rate);

// The spacing nginx enforces between requests at `rate_millis`: the whole
// milliseconds needed for the excess to drain by one request,
// ceil(1e6 / rate_millis) ms (62,500 ms for 1r/m, 100 ms for 10r/s).
absl::Duration NginxInterval(int64_t rate_millis);

// Our limiter's parameters for `model` given the arrival jitter `jitter`
// (model.jitter is ignored; pass it, or a measured value). InvalidArgument
// naming the field when the model is invalid (rate, burst, capacity, window
// not positive; jitter negative; min_margin out of range).
//
//   nginx         interval = NginxInterval + max(0, jitter + 1 ms - tolerance),
//                 where the tolerance is what nginx's own burst leaves for
//                 jitter after ours; our burst is 1 without nodelay (nginx
//                 would delay a burst anyway) and, with nodelay, as much of
//                 nginx's burst + 1 as the jitter allows.
//   fixed window  rate = (N - 1) / (window + jitter), burst 1: no window of
//                 any phase sees more than N. Reaches 97% of N / window when
//                 N >= 34 and the jitter is small next to the window (without
//                 knowing the windows' phase, no pacing can do better).
//   leaky bucket  rate = leak rate, burst = capacity less the jitter's worth
//                 of leak (and one spare).
// The rate is then lowered by min_margin.
absl::StatusOr<RateLimitSpec> PacingFor(const UpstreamModel& model, absl::Duration jitter);

// The upstream's own long-run limit (requests per second) under `model`, for
// reporting and for the ratio PacingFor achieves. 0 for an invalid model.
double ModelRate(const UpstreamModel& model);

// "nginx limit_req 16 mr/s burst 0", "fixed window 100 per 1m",
// "leaky bucket 40 leaking 2/s": for logs and errors.
std::string DescribeModel(const UpstreamModel& model);

}  // namespace fanout

#endif  // FANOUT_UPSTREAM_MODEL_H_
