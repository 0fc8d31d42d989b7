// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// AdaptiveRateController: being kind to the upstream. It owns the adjustments
// of one RateLimiter, the one that stands for the upstream (the engine's
// global limiter), and moves its rate from what every response says:
//
//  - Retry-After on a 429 or 503 pauses the whole limiter (every task sent to
//    that upstream), not just the task that was refused.
//  - Rate-limit headers (see rate_headers.h) pace the limiter so that the
//    remaining budget lasts until the reset; none left pauses until the reset.
//  - A declared UpstreamModel (see upstream_model.h) sets the pace exactly,
//    with a margin for the arrival jitter, which is measured from the spread
//    of response latencies and raises the margin when larger than declared.
//  - Otherwise AIMD, for when the true limit is unknown or lower than the
//    configured rate: on a refusal the rate is cut once per episode
//    (responses to requests sent before the last cut are the same episode);
//    the cut goes to the accepted-response rate measured over the recent
//    window when that shows the upstream refusing a share of our requests,
//    back to the last rate that held when an upward probe failed, and by
//    `decrease_factor` when nothing better is known. After `probe_delay`
//    without refusals the rate creeps up again by `probe_per_second` of
//    itself each second (a failed probe doubles the next delay), never above
//    the configured rate and never below `min_rate`.
//
// A refusal is a 429, or a 503 with Retry-After. A 503 without one is an
// error like a 500 (the retry policy's business) unless 503s make up a
// tenth or more of the recent window's responses: then the upstream is
// overloaded and it counts as a refusal too. So a vendor's occasional 503
// never costs the crawl its pace.
//
// The rate in force is the lowest of the configured rate (the limiter's rate
// when the controller was created, or the model's pace), the header pace, and
// the AIMD rate.
//
// Thread-compatible: the engine calls it from its loop thread only. Times are
// on the limiter's clock.

#ifndef FANOUT_ADAPTIVE_RATE_H_
#define FANOUT_ADAPTIVE_RATE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fanout/rate_headers.h"
#include "fanout/rate_limiter.h"
#include "fanout/transport.h"
#include "fanout/upstream_model.h"

namespace fanout {

struct AdaptiveRateOptions {
  // Whether to pace from RateLimit-* / X-RateLimit-* headers.
  bool use_rate_limit_headers = true;
  // The vendor's documented limiter, if known: paced to exactly.
  std::optional<UpstreamModel> model;
  // Whether to raise the model's jitter to the measured latency spread.
  bool measure_jitter = true;

  // AIMD. The floor, in requests per second (> 0).
  double min_rate = 0.05;
  // The cut when nothing better is known: rate *= decrease_factor, in (0, 1).
  double decrease_factor = 0.5;
  // The cut for an episode soon after a cut by a factor (within
  // measure_window of sending at the new rate): that cut was nearly enough.
  // In (0, 1).
  double repeat_decrease_factor = 0.85;
  // How far below the measured accepted rate to settle, in [0, 0.5).
  double settle_margin = 0.03;
  // The recent window over which accepted and sent rates are measured (> 0).
  absl::Duration measure_window = absl::Seconds(3);
  // Quiet time after a cut before probing upward again (> 0); doubles after
  // each failed probe, up to max_probe_delay, and returns to it after a
  // probe that holds that long.
  absl::Duration probe_delay = absl::Seconds(10);
  absl::Duration max_probe_delay = absl::Minutes(2);
  // Upward probe speed: fraction of the last good rate added per second
  // (additive increase), >= 0.
  double probe_per_second = 0.01;

  // The longest pause honoured (Retry-After, a reset with nothing left), > 0.
  absl::Duration max_pause = absl::Minutes(5);
};

// One response (or failure) from the upstream.
struct RateObservation {
  int status = 0;                    // HTTP status; 0 when no response came (transport error)
  const Headers* headers = nullptr;  // the response's headers; may be null
  absl::Time sent;                   // when the request was sent (limiter clock)
  absl::Time received;               // when the answer came (limiter clock)
  int64_t in_flight = 0;             // other requests to this upstream still unanswered
};

// What governs the rate now.
enum class RateMode {
  kConfigured,  // the configured rate (nothing has lowered it)
  kModel,       // the declared model's pace
  kHeaders,     // the upstream's rate-limit headers
  kBackoff,     // AIMD after refusals
  kProbing,     // AIMD, creeping back up
};
// "configured", "model", "headers", "backoff", "probing".
const char* RateModeName(RateMode mode);

// A snapshot for stats and displays.
struct AdaptiveRateState {
  double rate_per_second = 0;        // the limiter's rate now
  double configured_rate = 0;        // the ceiling
  RateMode mode = RateMode::kConfigured;
  int64_t throttled = 0;             // refusals seen (see above)
  int64_t decreases = 0;             // AIMD cuts (episodes)
  absl::Time paused_until = absl::InfinitePast();  // the latest pause's end
  absl::Duration jitter;             // measured latency spread (p99 - min)
  std::optional<RateLimitHeaders> last_headers;  // the latest non-empty ones
};

class AdaptiveRateController {
 public:
  // Takes over the rate of `limiter` (which must outlive the controller): its
  // rate now is the ceiling; with a model, the ceiling is the lower of that
  // and the model's pace, set at once. InvalidArgument naming the option when
  // one is out of range or the model is invalid.
  static absl::StatusOr<std::unique_ptr<AdaptiveRateController>> Create(RateLimiter* limiter,
                                                                        AdaptiveRateOptions options);

  // Learns from one response: pauses, paces or cuts the limiter's rate.
  // Observations should come in the order received. O(1) amortized.
  void Observe(const RateObservation& observation);

  // Replaces the model's arrival jitter and re-paces (no-op without a model,
  // or when the jitter is negative).
  void SetJitter(absl::Duration jitter);

  AdaptiveRateState State() const;
  const AdaptiveRateOptions& options() const { return options_; }

 private:
  AdaptiveRateController(RateLimiter* limiter, AdaptiveRateOptions options, double configured);
  void Pause(absl::Time until);
  void PaceFromHeaders(const RateLimitHeaders& headers, const RateObservation& o);
  void Decrease(const RateObservation& o);
  void MaybeIncrease(absl::Time now);
  void RecordLatency(absl::Duration latency);
  void Apply(absl::Time now);

  RateLimiter* const limiter_;
  const AdaptiveRateOptions options_;
  const double configured_;  // the limiter's rate at creation
  double ceiling_;           // configured_, or lower with a model
  int64_t burst_;            // the limiter's burst (the model's, with one)

  // Requests answered within measure_window, by send time: accepted or not.
  struct Sample {
    absl::Time sent;
    bool accepted;     // not a 429 or 503
    bool unavailable;  // a 503 without Retry-After
  };
  std::deque<Sample> samples_;
  int64_t unavailable_in_window_ = 0;  // samples_ that are 503s without Retry-After
  // Pauses within the window (start, end), for the time we could send.
  std::deque<std::pair<absl::Time, absl::Time>> pauses_;
  absl::Time first_sent_ = absl::InfiniteFuture();

  // AIMD.
  double aimd_rate_;
  bool probing_ = false;
  double probe_base_ = 0;  // the rate held when the current probe began
  absl::Time probe_from_ = absl::InfinitePast();  // no probing before this
  absl::Time probe_started_;
  absl::Duration probe_delay_;
  absl::Time last_decrease_ = absl::InfinitePast();
  absl::Time resumed_at_ = absl::InfinitePast();  // sending resumed after the last cut
  bool blind_cut_ = false;  // the last cut was by a factor, not to a known rate

  // Headers.
  std::optional<double> header_rate_;
  absl::Time header_until_ = absl::InfinitePast();
  std::optional<RateLimitHeaders> last_headers_;

  // Jitter: recent latencies, ring.
  std::vector<absl::Duration> latencies_;
  size_t latency_next_ = 0;
  int64_t latency_count_ = 0;
  absl::Duration jitter_ = absl::ZeroDuration();
  absl::Duration model_jitter_ = absl::ZeroDuration();

  int64_t throttled_ = 0;
  int64_t decreases_ = 0;
  absl::Time paused_until_ = absl::InfinitePast();
  RateMode mode_ = RateMode::kConfigured;
};

}  // namespace fanout

#endif  // FANOUT_ADAPTIVE_RATE_H_
