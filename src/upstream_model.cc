// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/upstream_model.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace fanout {
namespace {

// nginx reads time in whole milliseconds: two arrival stamps can each be cut
// by up to a millisecond.
constexpr absl::Duration kNginxClockStep = absl::Milliseconds(1);

absl::Status ModelError(absl::string_view field, absl::string_view must, absl::string_view got) {
  return absl::InvalidArgumentError(absl::StrCat("upstream model: ", field, " must be ", must, ", got ", got));
}

// The pacing for a limiter of spacing `interval` that tolerates `tolerance`
// of early arrival: the spacing grows by whatever of jitter the tolerance
// does not cover.
RateLimitSpec Spaced(absl::Duration interval, absl::Duration tolerance, absl::Duration early, int64_t burst,
                     double min_margin) {
  const absl::Duration spacing = interval + std::max(absl::ZeroDuration(), early - tolerance);
  return RateLimitSpec::PerSecond((1 - min_margin) / absl::ToDoubleSeconds(spacing), std::max<int64_t>(1, burst));
}

// Ceiling of a / b for positive durations.
int64_t CeilDiv(absl::Duration a, absl::Duration b) {
  if (a <= absl::ZeroDuration()) return 0;
  return static_cast<int64_t>(std::ceil(absl::FDivDuration(a, b)));
}

}  // namespace

absl::StatusOr<int64_t> ParseNginxRate(std::string_view rate) {
  const absl::string_view text(rate.data(), rate.size());
  const auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "nginx rate \"", text, "\": expected <N>r/s or <N>r/m with N a positive integer, such as 10r/s or 30r/m"));
  };
  int64_t scale = 0;
  if (absl::EndsWith(text, "r/s")) {
    scale = 1;
  } else if (absl::EndsWith(text, "r/m")) {
    scale = 60;
  } else {
    return bad();
  }
  const absl::string_view digits = text.substr(0, text.size() - 3);
  int64_t n = 0;
  if (digits.empty() || digits.size() > 12 || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(digits, &n) || n <= 0) {
    return bad();
  }
  const int64_t millis = n * 1000 / scale;  // nginx: rate * 1000 / scale, integer
  if (millis <= 0) return bad();
  return millis;
}

absl::Duration NginxInterval(int64_t rate_millis) {
  if (rate_millis <= 0) return absl::InfiniteDuration();
  // The excess drains by rate * ms / 1000 (integer) milli-requests after ms
  // milliseconds; one request is 1000 of them.
  return absl::Milliseconds((int64_t{1000000} + rate_millis - 1) / rate_millis);
}

absl::StatusOr<RateLimitSpec> PacingFor(const UpstreamModel& model, absl::Duration jitter) {
  if (jitter < absl::ZeroDuration() || jitter == absl::InfiniteDuration()) {
    return ModelError("jitter", "finite and >= 0", absl::FormatDuration(jitter));
  }
  if (!(model.min_margin >= 0 && model.min_margin < 0.03)) {
    return ModelError("min_margin", "in [0, 0.03)", absl::StrCat(model.min_margin));
  }
  if (const auto* nginx = std::get_if<NginxLimitReq>(&model.limiter)) {
    if (nginx->rate_millis <= 0) return ModelError("nginx rate", "> 0 mr/s", absl::StrCat(nginx->rate_millis));
    if (nginx->burst < 0) return ModelError("nginx burst", ">= 0", absl::StrCat(nginx->burst));
    const absl::Duration interval = NginxInterval(nginx->rate_millis);
    const absl::Duration early = jitter + kNginxClockStep;
    // nginx accepts burst + 1 at once from idle. With nodelay we may use that
    // start-up burst, keeping back enough of it to absorb the jitter; without,
    // nginx would only delay a burst, so we send none.
    int64_t ours = 1;
    if (nginx->nodelay) ours = std::max<int64_t>(1, nginx->burst + 1 - CeilDiv(early, interval));
    const absl::Duration tolerance = (nginx->burst + 1 - ours) * interval;
    return Spaced(interval, tolerance, early, ours, model.min_margin);
  }
  if (const auto* window = std::get_if<FixedWindowLimit>(&model.limiter)) {
    if (window->max_requests < 2) return ModelError("fixed window max_requests", ">= 2", absl::StrCat(window->max_requests));
    if (window->window <= absl::ZeroDuration() || window->window == absl::InfiniteDuration()) {
      return ModelError("fixed window window", "finite and > 0", absl::FormatDuration(window->window));
    }
    // Requests that reach one server window of length W were sent within
    // W + jitter; we grant at most rate * (W + jitter) + 1 in that span.
    const double rate = static_cast<double>(window->max_requests - 1) / absl::ToDoubleSeconds(window->window + jitter);
    return RateLimitSpec::PerSecond(rate * (1 - model.min_margin), 1);
  }
  const auto& bucket = std::get<LeakyBucketLimit>(model.limiter);
  if (bucket.capacity < 1) return ModelError("leaky bucket capacity", ">= 1", absl::StrCat(bucket.capacity));
  if (!std::isfinite(bucket.leak_per_second) || bucket.leak_per_second <= 0) {
    return ModelError("leaky bucket leak_per_second", "finite and > 0", absl::StrCat(bucket.leak_per_second));
  }
  const absl::Duration interval = absl::Seconds(1 / bucket.leak_per_second);
  // Our burst fills the bucket to `ours`; the jitter's worth of leak, and one
  // request spare, must still fit.
  const int64_t ours = std::max<int64_t>(1, bucket.capacity - 1 - CeilDiv(jitter, interval));
  const absl::Duration tolerance = (bucket.capacity - ours) * interval;
  return Spaced(interval, tolerance, jitter, ours, model.min_margin);
}

double ModelRate(const UpstreamModel& model) {
  if (const auto* nginx = std::get_if<NginxLimitReq>(&model.limiter)) {
    return nginx->rate_millis > 0 ? 1 / absl::ToDoubleSeconds(NginxInterval(nginx->rate_millis)) : 0;
  }
  if (const auto* window = std::get_if<FixedWindowLimit>(&model.limiter)) {
    return window->window > absl::ZeroDuration()
               ? static_cast<double>(window->max_requests) / absl::ToDoubleSeconds(window->window)
               : 0;
  }
  const auto& bucket = std::get<LeakyBucketLimit>(model.limiter);
  return bucket.leak_per_second > 0 ? bucket.leak_per_second : 0;
}

std::string DescribeModel(const UpstreamModel& model) {
  if (const auto* nginx = std::get_if<NginxLimitReq>(&model.limiter)) {
    return absl::StrFormat("nginx limit_req %d mr/s burst %d%s", nginx->rate_millis, nginx->burst,
                           nginx->nodelay ? " nodelay" : "");
  }
  if (const auto* window = std::get_if<FixedWindowLimit>(&model.limiter)) {
    return absl::StrFormat("fixed window %d per %s", window->max_requests, absl::FormatDuration(window->window));
  }
  const auto& bucket = std::get<LeakyBucketLimit>(model.limiter);
  return absl::StrFormat("leaky bucket %d leaking %g/s", bucket.capacity, bucket.leak_per_second);
}

}  // namespace fanout
