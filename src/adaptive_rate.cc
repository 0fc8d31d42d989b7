// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/adaptive_rate.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace fanout {
namespace {

constexpr size_t kLatencySamples = 256;
constexpr int64_t kJitterEvery = 64;  // recompute the spread every this many responses
// Below this much sending time in the window the send rate cannot be told:
// a refusal then is taken to mean the limiter's rate was too high.
constexpr absl::Duration kMinSaturationSpan = absl::Milliseconds(250);
// A measured accepted rate is trusted only over this much time and samples.
constexpr absl::Duration kMinMeasureSpan = absl::Seconds(1);
constexpr int64_t kMinMeasureSamples = 20;
// The upstream refusing more than this share of the window's requests makes
// the accepted rate a measure of its limit.
constexpr double kInformativeRefusals = 0.15;
// Fewer refused than this share of a well-measured window: a stray refusal.
constexpr double kRareRefusals = 0.01;

absl::Status OptionError(absl::string_view field, absl::string_view must, absl::string_view got) {
  return absl::InvalidArgumentError(absl::StrCat("adaptive rate: ", field, " must be ", must, ", got ", got));
}

// 503s without Retry-After are taken for overload, and so for refusals, when
// they are at least this share of the window's responses (of enough of them).
constexpr double kOverloadShare = 0.1;

}  // namespace

const char* RateModeName(RateMode mode) {
  switch (mode) {
    case RateMode::kConfigured:
      return "configured";
    case RateMode::kModel:
      return "model";
    case RateMode::kHeaders:
      return "headers";
    case RateMode::kBackoff:
      return "backoff";
    case RateMode::kProbing:
      return "probing";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<AdaptiveRateController>> AdaptiveRateController::Create(
    RateLimiter* limiter, AdaptiveRateOptions options) {
  if (limiter == nullptr) return absl::InvalidArgumentError("adaptive rate: limiter is null");
  const AdaptiveRateOptions& o = options;
  if (!(std::isfinite(o.min_rate) && o.min_rate > 0)) return OptionError("min_rate", "> 0", absl::StrCat(o.min_rate));
  if (!(o.decrease_factor > 0 && o.decrease_factor < 1)) {
    return OptionError("decrease_factor", "in (0, 1)", absl::StrCat(o.decrease_factor));
  }
  if (!(o.repeat_decrease_factor > 0 && o.repeat_decrease_factor < 1)) {
    return OptionError("repeat_decrease_factor", "in (0, 1)", absl::StrCat(o.repeat_decrease_factor));
  }
  if (!(o.settle_margin >= 0 && o.settle_margin < 0.5)) {
    return OptionError("settle_margin", "in [0, 0.5)", absl::StrCat(o.settle_margin));
  }
  if (!(std::isfinite(o.probe_per_second) && o.probe_per_second >= 0)) {
    return OptionError("probe_per_second", ">= 0", absl::StrCat(o.probe_per_second));
  }
  const std::pair<absl::string_view, absl::Duration> positive[] = {{"measure_window", o.measure_window},
                                                                   {"probe_delay", o.probe_delay},
                                                                   {"max_probe_delay", o.max_probe_delay},
                                                                   {"max_pause", o.max_pause}};
  for (const auto& [field, value] : positive) {
    if (value <= absl::ZeroDuration() || value == absl::InfiniteDuration()) {
      return OptionError(field, "finite and > 0", absl::FormatDuration(value));
    }
  }
  if (o.max_probe_delay < o.probe_delay) {
    return OptionError("max_probe_delay", ">= probe_delay", absl::FormatDuration(o.max_probe_delay));
  }
  const double configured = limiter->rate_per_second();
  auto controller = std::unique_ptr<AdaptiveRateController>(
      new AdaptiveRateController(limiter, std::move(options), configured));
  if (controller->options_.model.has_value()) {
    auto spec = PacingFor(*controller->options_.model, controller->options_.model->jitter);
    if (!spec.ok()) return spec.status();
    controller->model_jitter_ = controller->options_.model->jitter;
    controller->ceiling_ = std::min(configured, spec->rate_per_second);
    controller->burst_ = spec->burst;
    controller->aimd_rate_ = controller->ceiling_;
    if (absl::Status s = limiter->SetRate(controller->ceiling_, controller->burst_); !s.ok()) return s;
    controller->mode_ = RateMode::kModel;
  }
  return controller;
}

AdaptiveRateController::AdaptiveRateController(RateLimiter* limiter, AdaptiveRateOptions options,
                                               double configured)
    : limiter_(limiter),
      options_(std::move(options)),
      configured_(configured),
      ceiling_(configured),
      burst_(limiter->burst()),
      aimd_rate_(configured),
      probe_delay_(options_.probe_delay) {
  latencies_.reserve(kLatencySamples);
}

void AdaptiveRateController::Observe(const RateObservation& o) {
  const absl::Time now = o.received;
  const bool answered = o.status != 0;
  if (answered) RecordLatency(o.received - o.sent);

  RateLimitHeaders headers;
  if (options_.use_rate_limit_headers && o.headers != nullptr && !o.headers->empty()) {
    headers = ParseRateLimitHeaders(*o.headers, limiter_->clock()->WallNow(), options_.max_pause);
    if (!headers.empty()) last_headers_ = headers;
  }
  const bool retry_after = headers.retry_after.has_value() ||
                           (o.headers != nullptr && FindHeader(*o.headers, "retry-after").has_value());
  const bool unavailable = o.status == 503 && !retry_after;

  // The window: drop what fell out of it.
  const absl::Time window_start = now - options_.measure_window;
  while (!samples_.empty() && samples_.front().sent < window_start) {
    unavailable_in_window_ -= samples_.front().unavailable ? 1 : 0;
    samples_.pop_front();
  }
  while (!pauses_.empty() && pauses_.front().second < window_start) pauses_.pop_front();
  if (answered) {
    samples_.push_back({o.sent, o.status != 429 && o.status != 503, unavailable});
    unavailable_in_window_ += unavailable ? 1 : 0;
    first_sent_ = std::min(first_sent_, o.sent);
  }
  const bool overloaded = unavailable && static_cast<int64_t>(samples_.size()) >= kMinMeasureSamples &&
                          static_cast<double>(unavailable_in_window_) >=
                              kOverloadShare * static_cast<double>(samples_.size());
  const bool throttled = o.status == 429 || (o.status == 503 && (retry_after || overloaded));

  const int64_t decreases_before = decreases_;
  if (throttled) {
    ++throttled_;
    Decrease(o);
  }
  if (headers.has_budget()) {
    PaceFromHeaders(headers, o);
  } else if (now > header_until_) {
    header_rate_.reset();
  }
  if (answered && !throttled && o.status < 400) MaybeIncrease(now);
  Apply(now);
  if (throttled && headers.retry_after.has_value()) {
    const absl::Time until = now + std::min(*headers.retry_after, options_.max_pause);
    Pause(until);
    // The quiet time before probing starts when sending resumes.
    if (decreases_ != decreases_before) {
      probe_from_ = std::max(probe_from_, until + probe_delay_);
      resumed_at_ = std::max(resumed_at_, until);
    }
  }
}

void AdaptiveRateController::Pause(absl::Time until) {
  const absl::Time now = limiter_->clock()->Now();
  if (until <= now) return;
  limiter_->PauseUntil(until);
  pauses_.emplace_back(now, until);
  paused_until_ = std::max(paused_until_, until);
}

void AdaptiveRateController::PaceFromHeaders(const RateLimitHeaders& h, const RateObservation& o) {
  const absl::Time now = o.received;
  const int64_t budget = *h.remaining - std::max<int64_t>(0, o.in_flight);
  const absl::Duration reset = *h.reset;
  header_until_ = now + std::max(reset, absl::Seconds(1));
  std::optional<double> policy_rate;
  if (h.policy_quota.has_value() && h.policy_window.has_value()) {
    policy_rate = static_cast<double>(*h.policy_quota) / absl::ToDoubleSeconds(*h.policy_window);
  }
  if (budget <= 0) {
    // Nothing left: wait for the reset (its header has one-second resolution,
    // so "0" means "within the second"), then go on at the policy's pace if
    // stated, else at the pace that nearly worked.
    Pause(now + std::min(std::max(reset, absl::Seconds(1)), options_.max_pause));
    if (policy_rate.has_value() && *policy_rate > 0) header_rate_ = policy_rate;
    return;
  }
  if (reset > absl::ZeroDuration()) {
    header_rate_ = static_cast<double>(budget) / absl::ToDoubleSeconds(reset);
  } else if (policy_rate.has_value() && *policy_rate > 0) {
    header_rate_ = policy_rate;  // the window turns now
  } else {
    header_rate_.reset();
  }
}

void AdaptiveRateController::Decrease(const RateObservation& o) {
  // One cut per episode: a refusal of a request sent before the last cut
  // says nothing about the rate since.
  if (o.sent < last_decrease_) return;
  const absl::Time now = o.received;
  const double current = std::min(aimd_rate_, limiter_->rate_per_second());

  // What we sent and what was accepted in the window, over the time we could
  // send (pauses excluded).
  const absl::Time start = std::max(now - options_.measure_window, first_sent_);
  absl::Duration span = now - start;
  for (const auto& [from, until] : pauses_) {
    const absl::Time a = std::max(from, start), b = std::min(until, now);
    if (b > a) span -= b - a;
  }
  int64_t all = 0, accepted = 0;
  for (const Sample& sample : samples_) {
    if (sample.sent < start) continue;
    ++all;
    accepted += sample.accepted ? 1 : 0;
  }
  const double seconds = absl::ToDoubleSeconds(span);
  const double send_rate = seconds > 0 ? static_cast<double>(all) / seconds : 0;
  // Were we sending as fast as the limiter let us? If not, the refusal came
  // at the lower rate we actually sent at.
  const bool saturated = span < kMinSaturationSpan || send_rate >= 0.8 * current;
  const double sending = saturated ? current : std::max(send_rate, options_.min_rate);
  const bool informative = span >= kMinMeasureSpan && all >= kMinMeasureSamples &&
                           static_cast<double>(accepted) < (1 - kInformativeRefusals) * static_cast<double>(all);

  double target;
  // Refused again within a window of sending after the last cut?
  const bool recent = now - resumed_at_ < options_.measure_window;
  const bool was_blind = blind_cut_;
  blind_cut_ = false;
  if (informative) {
    target = static_cast<double>(accepted) / seconds * (1 - options_.settle_margin);
  } else if (probing_ && probe_base_ < sending) {
    // A probe went too far: back to the rate that held before it (or one
    // measure_window into it), and wait longer before the next.
    const double held = absl::ToDoubleSeconds(now - probe_started_ - options_.measure_window);
    target = probe_base_ * (1 + options_.probe_per_second * std::max(0.0, held));
    probe_delay_ = now - probe_started_ < options_.probe_delay ? std::min(probe_delay_ * 2, options_.max_probe_delay)
                                                               : options_.probe_delay;
  } else if (!probing_ && recent && was_blind) {
    // Refused again soon after a blind cut, before any probe: that cut was
    // nearly enough.
    target = sending * options_.repeat_decrease_factor;
    blind_cut_ = true;
  } else if (!recent && span >= kMinMeasureSpan && all >= kMinMeasureSamples &&
             static_cast<double>(accepted) >= (1 - kRareRefusals) * static_cast<double>(all)) {
    // A lone refusal after a well-measured spell of acceptances (a stray one:
    // requests bunched on their way): the limit is at most a little below
    // what was accepted, so settle just under that. If it was more than a
    // stray, the next refusal comes soon, and halves (the branch below).
    target = static_cast<double>(accepted) / seconds * (1 - options_.settle_margin);
  } else {
    target = sending * options_.decrease_factor;
    blind_cut_ = true;
  }
  aimd_rate_ = std::max(options_.min_rate, std::min(target, sending));
  probing_ = false;
  last_decrease_ = now;
  resumed_at_ = now;  // or when the pause that follows ends (see Observe)
  probe_from_ = std::max(probe_from_, now + probe_delay_);
  ++decreases_;
}

void AdaptiveRateController::MaybeIncrease(absl::Time now) {
  if (aimd_rate_ >= ceiling_) {
    probing_ = false;
    return;
  }
  if (now < probe_from_) return;
  if (!probing_) {
    probing_ = true;
    probe_base_ = aimd_rate_;
    probe_started_ = now;
  }
  const double elapsed = absl::ToDoubleSeconds(now - probe_started_);
  aimd_rate_ = std::min(ceiling_, probe_base_ * (1 + options_.probe_per_second * elapsed));
}

void AdaptiveRateController::RecordLatency(absl::Duration latency) {
  if (latencies_.size() < kLatencySamples) {
    latencies_.push_back(latency);
  } else {
    latencies_[latency_next_] = latency;
  }
  latency_next_ = (latency_next_ + 1) % kLatencySamples;
  if (++latency_count_ % kJitterEvery != 0) return;
  std::vector<absl::Duration> sorted = latencies_;
  std::sort(sorted.begin(), sorted.end());
  const size_t p99 = std::min(sorted.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(sorted.size())));
  jitter_ = sorted[p99] - sorted.front();
  // Re-pace to the model when the measured spread is well above the jitter
  // it was paced for (hysteresis keeps the rate from twitching).
  if (options_.model.has_value() && options_.measure_jitter &&
      jitter_ > model_jitter_ + std::max(absl::Microseconds(200), model_jitter_ / 4)) {
    SetJitter(jitter_);
  }
}

void AdaptiveRateController::SetJitter(absl::Duration jitter) {
  if (!options_.model.has_value() || jitter < absl::ZeroDuration()) return;
  auto spec = PacingFor(*options_.model, std::max(jitter, options_.model->jitter));
  if (!spec.ok()) return;
  model_jitter_ = std::max(jitter, options_.model->jitter);
  const bool at_ceiling = aimd_rate_ >= ceiling_;
  ceiling_ = std::min(configured_, spec->rate_per_second);
  burst_ = spec->burst;
  aimd_rate_ = at_ceiling ? ceiling_ : std::min(aimd_rate_, ceiling_);
  Apply(limiter_->clock()->Now());
}

void AdaptiveRateController::Apply(absl::Time now) {
  double rate = std::min(ceiling_, aimd_rate_);
  if (aimd_rate_ < ceiling_) {
    mode_ = probing_ ? RateMode::kProbing : RateMode::kBackoff;
  } else {
    mode_ = options_.model.has_value() ? RateMode::kModel : RateMode::kConfigured;
  }
  if (header_rate_.has_value() && now <= header_until_ && *header_rate_ < rate) {
    rate = *header_rate_;
    mode_ = RateMode::kHeaders;
  }
  const double old = limiter_->rate_per_second();
  if (std::abs(rate - old) > 1e-4 * old || burst_ != limiter_->burst()) {
    (void)limiter_->SetRate(rate, burst_);  // valid by construction; a refusal keeps the old rate
  }
}

AdaptiveRateState AdaptiveRateController::State() const {
  AdaptiveRateState state;
  state.rate_per_second = limiter_->rate_per_second();
  state.configured_rate = ceiling_;
  state.mode = mode_;
  state.throttled = throttled_;
  state.decreases = decreases_;
  state.paused_until = paused_until_;
  state.jitter = jitter_;
  state.last_headers = last_headers_;
  return state;
}

}  // namespace fanout
