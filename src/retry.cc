// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/retry.h"

#include <mutex>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"

namespace fanout {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// Retry-After values further away than this are treated as out of range
// (ParseRetryAfter returns nullopt, so the caller falls back to its own
// backoff). Nothing legitimate asks a client to come back in ten years; a value
// like that is a bug or hostile, and rejecting it, rather than clamping it,
// keeps it from pinning a task at the max_retry_after cap.
constexpr int64_t kMaxRetryAfterSeconds = int64_t{10} * 365 * 24 * 60 * 60;

// Floating-point slack for token comparisons, so that ten deposits of 0.1 make
// one whole token even though 0.1 has no exact binary representation.
constexpr double kTokenEpsilon = 1e-9;

// ---------------------------------------------------------------------------
// HTTP-date parsing (RFC 9110 §5.6.7).

constexpr std::array<std::string_view, 7> kShortDayNames = {"Mon", "Tue", "Wed", "Thu",
                                                            "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> kLongDayNames = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> kMonthNames = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// A strict left-to-right reader over the grammar of one date format. Every
// method consumes input only when it succeeds. Names are case-sensitive, as the
// RFC's grammar says.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool Literal(std::string_view literal) {
    if (text_.substr(pos_, literal.size()) != literal) return false;
    pos_ += literal.size();
    return true;
  }

  // Exactly `count` ASCII digits.
  bool Digits(int count, int* value) {
    if (text_.size() - pos_ < static_cast<size_t>(count)) return false;
    int result = 0;
    for (int i = 0; i < count; ++i) {
      const char c = text_[pos_ + i];
      if (c < '0' || c > '9') return false;
      result = result * 10 + (c - '0');
    }
    pos_ += count;
    *value = result;
    return true;
  }

  // One of `names`; `*index` is its position. No name is a prefix of another
  // in the same list, so the first match is the only one.
  template <size_t N>
  bool Name(const std::array<std::string_view, N>& names, int* index) {
    for (size_t i = 0; i < N; ++i) {
      if (Literal(names[i])) {
        *index = static_cast<int>(i);
        return true;
      }
    }
    return false;
  }

  bool AtEnd() const { return pos_ == text_.size(); }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

// The fields of an HTTP-date, before validation. `year` is four digits except
// for RFC 850 dates, whose two-digit year is resolved by ResolveTwoDigitYear.
struct DateFields {
  int64_t year = 0;
  int month = 0;  // 1-12
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
};

// time-of-day = hour ":" minute ":" second. Allows second 60 (a leap second,
// which the grammar permits); it normalizes to the next minute.
bool ParseTimeOfDay(Cursor& in, DateFields& f) {
  return in.Digits(2, &f.hour) && in.Literal(":") && in.Digits(2, &f.minute) &&
         in.Literal(":") && in.Digits(2, &f.second) && f.hour <= 23 && f.minute <= 59 &&
         f.second <= 60;
}

bool ParseMonth(Cursor& in, DateFields& f) {
  int index = 0;
  if (!in.Name(kMonthNames, &index)) return false;
  f.month = index + 1;
  return true;
}

// The day name must be one that the format allows, but it is not checked
// against the date: it carries no information the date does not, and a
// mismatch (a sender bug) leaves the date itself unambiguous. This applies
// the same way to all three formats.

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
bool ParseImfFixdate(std::string_view text, DateFields& f) {
  Cursor in(text);
  int day_name = 0;
  int year = 0;
  if (!(in.Name(kShortDayNames, &day_name) && in.Literal(", ") && in.Digits(2, &f.day) &&
        in.Literal(" ") && ParseMonth(in, f) && in.Literal(" ") && in.Digits(4, &year) &&
        in.Literal(" ") && ParseTimeOfDay(in, f) && in.Literal(" GMT") && in.AtEnd())) {
    return false;
  }
  f.year = year;
  return true;
}

// Obsolete RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT". `f.year` is left as
// the two-digit year.
bool ParseRfc850Date(std::string_view text, DateFields& f) {
  Cursor in(text);
  int day_name = 0;
  int year = 0;
  if (!(in.Name(kLongDayNames, &day_name) && in.Literal(", ") && in.Digits(2, &f.day) &&
        in.Literal("-") && ParseMonth(in, f) && in.Literal("-") && in.Digits(2, &year) &&
        in.Literal(" ") && ParseTimeOfDay(in, f) && in.Literal(" GMT") && in.AtEnd())) {
    return false;
  }
  f.year = year;
  return true;
}

// asctime: "Sun Nov  6 08:49:37 1994" (day space-padded) or "Sun Nov 16 ...";
// a zero-padded day ("06") also matches the grammar's 2DIGIT.
bool ParseAsctimeDate(std::string_view text, DateFields& f) {
  Cursor in(text);
  int day_name = 0;
  int year = 0;
  if (!(in.Name(kShortDayNames, &day_name) && in.Literal(" ") && ParseMonth(in, f) &&
        in.Literal(" "))) {
    return false;
  }
  if (!(in.Digits(2, &f.day) || (in.Literal(" ") && in.Digits(1, &f.day)))) return false;
  if (!(in.Literal(" ") && ParseTimeOfDay(in, f) && in.Literal(" ") && in.Digits(4, &year) &&
        in.AtEnd())) {
    return false;
  }
  f.year = year;
  return true;
}

// RFC 9110 §5.6.7: a two-digit year that would put the timestamp more than 50
// years in the future means the most recent past year with those two digits.
int64_t ResolveTwoDigitYear(const DateFields& f, absl::CivilSecond now) {
  const int64_t century = now.year() - ((now.year() % 100) + 100) % 100;
  const int64_t year = century + f.year;
  // Compared field by field, so a date exactly 50 years ahead is kept.
  const absl::CivilSecond candidate(year, f.month, f.day, f.hour, f.minute, f.second);
  const absl::CivilSecond limit(now.year() + 50, now.month(), now.day(), now.hour(),
                                now.minute(), now.second());
  return candidate > limit ? year - 100 : year;
}

// The instant an HTTP-date names, or nullopt if it is in none of the three
// formats or names a day that does not exist (Feb 30).
std::optional<absl::Time> HttpDateToTime(std::string_view text, absl::Time wall_now) {
  DateFields f;
  if (ParseImfFixdate(text, f) || ParseAsctimeDate(text, f)) {
    // Four-digit year already.
  } else if (ParseRfc850Date(text, f)) {
    f.year = ResolveTwoDigitYear(f, absl::ToCivilSecond(wall_now, absl::UTCTimeZone()));
  } else {
    return std::nullopt;
  }
  const absl::CivilDay day(f.year, f.month, f.day);
  if (day.year() != f.year || day.month() != f.month || day.day() != f.day) {
    return std::nullopt;  // the civil type normalized an impossible day
  }
  const absl::CivilSecond when(f.year, f.month, f.day, f.hour, f.minute, f.second);
  return absl::FromCivil(when, absl::UTCTimeZone());
}

// delta-seconds = 1*DIGIT, no sign, no fraction. nullopt when not all digits
// or above kMaxRetryAfterSeconds (which also rules out overflow).
std::optional<absl::Duration> ParseDeltaSeconds(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t seconds = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    seconds = seconds * 10 + (c - '0');
    if (seconds > kMaxRetryAfterSeconds) return std::nullopt;
  }
  return absl::Seconds(seconds);
}

// `text` without leading and trailing ASCII whitespace (the header's OWS, plus
// CR and LF left by a careless header splitter).
std::string_view StripWhitespace(std::string_view text) {
  while (!text.empty() && absl::ascii_isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && absl::ascii_isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// ---------------------------------------------------------------------------
// Randomness.

// A uniform integer in [lo, hi] (lo <= hi) drawn from `rng` by rejection
// sampling. Written out rather than using std::uniform_int_distribution,
// whose algorithm is implementation-defined: this way the same seed gives the
// same delays with every standard library, not only with the one in use.
int64_t UniformInt(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  if (span == std::numeric_limits<uint64_t>::max()) {
    return static_cast<int64_t>(static_cast<uint64_t>(lo) + rng());
  }
  const uint64_t range = span + 1;
  // Reject the top partial block of 2^64 so every value is equally likely.
  const uint64_t limit = std::numeric_limits<uint64_t>::max() -
                         std::numeric_limits<uint64_t>::max() % range;
  uint64_t draw = rng();
  while (draw >= limit) draw = rng();
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + draw % range);
}

// ---------------------------------------------------------------------------
// Validation messages.

// absl::StrCat takes absl::string_view, which this Abseil build does not alias
// to std::string_view, hence absl::string_view in these helpers.
absl::Status BudgetError(absl::string_view field, absl::string_view rule, double value) {
  return absl::InvalidArgumentError(
      absl::StrCat("retry budget: ", field, " must be ", rule, ", got ", value));
}

absl::Status OptionsError(absl::string_view field, absl::string_view rule,
                          absl::string_view value) {
  return absl::InvalidArgumentError(
      absl::StrCat("retry options: ", field, " must be ", rule, ", got ", value));
}

std::string DurationText(absl::Duration d) { return absl::FormatDuration(d); }

absl::Status ValidateOptions(const RetryOptions& o) {
  if (o.max_attempts < 1) {
    return OptionsError("max_attempts", ">= 1", absl::StrCat(o.max_attempts));
  }
  if (o.max_elapsed <= absl::ZeroDuration()) {
    return OptionsError("max_elapsed", "> 0", DurationText(o.max_elapsed));
  }
  if (o.base_delay <= absl::ZeroDuration()) {
    return OptionsError("base_delay", "> 0", DurationText(o.base_delay));
  }
  if (o.base_delay == absl::InfiniteDuration()) {
    return OptionsError("base_delay", "finite", DurationText(o.base_delay));
  }
  if (o.max_delay == absl::InfiniteDuration()) {
    return OptionsError("max_delay", "finite", DurationText(o.max_delay));
  }
  if (o.max_delay < o.base_delay) {
    return OptionsError("max_delay", absl::StrCat(">= base_delay (", DurationText(o.base_delay), ")"),
                        DurationText(o.max_delay));
  }
  switch (o.jitter) {
    case Jitter::kNone:
    case Jitter::kFull:
    case Jitter::kDecorrelated:
      break;
    default:
      return OptionsError("jitter", "kNone, kFull or kDecorrelated",
                          absl::StrCat(static_cast<int>(o.jitter)));
  }
  if (o.max_retry_after <= absl::ZeroDuration()) {
    return OptionsError("max_retry_after", "> 0", DurationText(o.max_retry_after));
  }
  if (o.max_throttles < 1) {
    return OptionsError("max_throttles", ">= 1", absl::StrCat(o.max_throttles));
  }
  return absl::OkStatus();
}

RetryDecision GiveUp(std::string reason) {
  RetryDecision decision;
  decision.action = RetryDecision::Action::kGiveUp;
  decision.reason = std::move(reason);
  return decision;
}

}  // namespace

// ---------------------------------------------------------------------------
// Outcomes.

OutcomeClass Classify(const Outcome& outcome, bool retry_invalid_responses) {
  switch (outcome.kind) {
    case Outcome::Kind::kConnectionError:
    case Outcome::Kind::kTimeout:
      return OutcomeClass::kRetryable;
    case Outcome::Kind::kInvalidResponse:
      return retry_invalid_responses ? OutcomeClass::kRetryable : OutcomeClass::kPermanent;
    case Outcome::Kind::kRejected:
      return OutcomeClass::kPermanent;
    case Outcome::Kind::kResponse:
      break;
  }
  const int status = outcome.http_status;
  if (status >= 200 && status <= 299) return OutcomeClass::kSuccess;
  switch (status) {
    case 429:
      return OutcomeClass::kThrottled;
    case 503:
      return outcome.retry_after.has_value() ? OutcomeClass::kThrottled
                                             : OutcomeClass::kRetryable;
    case 408:  // Request Timeout
    case 425:  // Too Early
    case 500:  // Internal Server Error
    case 502:  // Bad Gateway
    case 504:  // Gateway Timeout
      return OutcomeClass::kRetryable;
    default:
      return OutcomeClass::kPermanent;
  }
}

namespace {
std::string DescribeKind(const Outcome& outcome) {
  switch (outcome.kind) {
    case Outcome::Kind::kResponse:
      return absl::StrCat("HTTP ", outcome.http_status);
    case Outcome::Kind::kConnectionError:
      return "connection error";
    case Outcome::Kind::kTimeout:
      return "timeout";
    case Outcome::Kind::kInvalidResponse:
      return absl::StrCat("invalid response (HTTP ", outcome.http_status, ")");
    case Outcome::Kind::kRejected:
      return "rejected";
  }
  return absl::StrCat("unknown outcome kind ", static_cast<int>(outcome.kind));
}
}  // namespace

std::string DescribeOutcome(const Outcome& outcome) {
  std::string description = DescribeKind(outcome);
  if (!outcome.detail.empty()) absl::StrAppend(&description, ": ", outcome.detail);
  return description;
}

std::optional<absl::Duration> ParseRetryAfter(std::string_view value, absl::Time wall_now) {
  const std::string_view text = StripWhitespace(value);
  if (text.empty()) return std::nullopt;
  if (text.front() >= '0' && text.front() <= '9') return ParseDeltaSeconds(text);
  const std::optional<absl::Time> when = HttpDateToTime(text, wall_now);
  if (!when.has_value()) return std::nullopt;
  const absl::Duration delay = *when - wall_now;
  if (delay <= absl::ZeroDuration()) return absl::ZeroDuration();
  if (delay > absl::Seconds(kMaxRetryAfterSeconds)) return std::nullopt;
  return delay;
}

std::optional<absl::Time> ParseHttpDate(std::string_view value, absl::Time wall_now) {
  return HttpDateToTime(StripWhitespace(value), wall_now);
}

// ---------------------------------------------------------------------------
// RetryBudget.

absl::StatusOr<std::unique_ptr<RetryBudget>> RetryBudget::Create(const Clock* clock,
                                                                 RetryBudgetOptions options) {
  if (clock == nullptr) return absl::InvalidArgumentError("retry budget: clock must not be null");
  const std::pair<absl::string_view, double> non_negative[] = {
      {"ratio", options.ratio}, {"min_per_second", options.min_per_second}};
  for (const auto& [field, value] : non_negative) {
    if (!std::isfinite(value)) return BudgetError(field, "finite", value);
    if (value < 0) return BudgetError(field, ">= 0", value);
  }
  if (!std::isfinite(options.max_balance)) {
    return BudgetError("max_balance", "finite", options.max_balance);
  }
  if (options.max_balance <= 0) return BudgetError("max_balance", "> 0", options.max_balance);
  return std::unique_ptr<RetryBudget>(new RetryBudget(clock, options));
}

namespace {
// The floor may save up at most one second's worth of retries (and at least
// one retry, so a floor below 1/s still ever allows one), so that a quiet
// spell cannot bank a burst of retries to fire at a failing upstream.
double FloorCap(const RetryBudgetOptions& options) {
  return std::max(1.0, options.min_per_second);
}

// The floor's tokens after refilling from `last` to `now`.
double RefilledFloor(const RetryBudgetOptions& options, double tokens, absl::Time last,
                     absl::Time now) {
  if (options.min_per_second <= 0 || now <= last) return tokens;
  const double refill = absl::ToDoubleSeconds(now - last) * options.min_per_second;
  return std::min(FloorCap(options), tokens + refill);
}
}  // namespace

// The floor starts full: a fresh budget allows its floor's worth of retries at
// once, rather than refusing the first retries of a process until time passes.
RetryBudget::RetryBudget(const Clock* clock, RetryBudgetOptions options)
    : clock_(clock),
      options_(options),
      floor_tokens_(options.min_per_second > 0 ? FloorCap(options) : 0),
      floor_updated_(clock->Now()) {}

void RetryBudget::RecordRequest() {
  std::lock_guard<std::mutex> lock(mu_);
  balance_ = std::min(options_.max_balance, balance_ + options_.ratio);
}

bool RetryBudget::TryWithdraw() {
  const absl::Time now = clock_->Now();
  std::lock_guard<std::mutex> lock(mu_);
  floor_tokens_ = RefilledFloor(options_, floor_tokens_, floor_updated_, now);
  if (now > floor_updated_) floor_updated_ = now;
  if (balance_ + kTokenEpsilon >= 1) {
    balance_ = std::max(0.0, balance_ - 1);
    return true;
  }
  if (floor_tokens_ + kTokenEpsilon >= 1) {
    floor_tokens_ = std::max(0.0, floor_tokens_ - 1);
    return true;
  }
  return false;
}

double RetryBudget::Available() const {
  const absl::Time now = clock_->Now();
  std::lock_guard<std::mutex> lock(mu_);
  return balance_ + RefilledFloor(options_, floor_tokens_, floor_updated_, now);
}

// ---------------------------------------------------------------------------
// RetryPolicy.

absl::StatusOr<std::unique_ptr<RetryPolicy>> RetryPolicy::Create(const Clock* clock,
                                                                 RetryOptions options,
                                                                 RetryBudget* budget,
                                                                 uint64_t seed) {
  if (clock == nullptr) return absl::InvalidArgumentError("retry options: clock must not be null");
  if (absl::Status status = ValidateOptions(options); !status.ok()) return status;
  return std::unique_ptr<RetryPolicy>(new RetryPolicy(clock, std::move(options), budget, seed));
}

RetryPolicy::RetryPolicy(const Clock* clock, RetryOptions options, RetryBudget* budget,
                         uint64_t seed)
    : clock_(clock), options_(std::move(options)), budget_(budget), rng_(seed) {}

absl::Duration RetryPolicy::Backoff(int retry, absl::Duration previous_delay) {
  // Options are validated: 0 < base <= cap, both finite, so both fit in int64
  // nanoseconds (ToInt64Nanoseconds saturates beyond ~292 years).
  const int64_t base = absl::ToInt64Nanoseconds(options_.base_delay);
  const int64_t cap = absl::ToInt64Nanoseconds(options_.max_delay);

  if (options_.jitter == Jitter::kDecorrelated) {
    const int64_t previous =
        std::max(base, std::min(cap, absl::ToInt64Nanoseconds(previous_delay)));
    // 3 * previous, saturating; previous <= cap <= INT64_MAX.
    const int64_t high = previous > kInt64Max / 3 ? kInt64Max : previous * 3;
    int64_t draw;
    {
      std::lock_guard<std::mutex> lock(mu_);
      draw = UniformInt(rng_, base, high);
    }
    return absl::Nanoseconds(std::min(cap, draw));
  }

  // base * 2^(retry-1), capped, without overflowing: the shift is taken only
  // when its result stays at or below the cap.
  const int shift = std::max(retry, 1) - 1;
  const int64_t exponential = (shift >= 63 || base > (cap >> shift)) ? cap : (base << shift);
  if (options_.jitter == Jitter::kNone) return absl::Nanoseconds(exponential);

  std::lock_guard<std::mutex> lock(mu_);
  return absl::Nanoseconds(UniformInt(rng_, 0, exponential));
}

RetryDecision RetryPolicy::Decide(AttemptState& state, const Outcome& outcome) {
  const absl::Time now = clock_->Now();
  if (budget_ != nullptr) budget_->RecordRequest();
  if (state.first_attempt == absl::InfinitePast()) state.first_attempt = now;

  // The server's Retry-After, never negative, never above the configured cap.
  std::optional<absl::Duration> retry_after;
  if (outcome.retry_after.has_value()) {
    retry_after = std::clamp(*outcome.retry_after, absl::ZeroDuration(), options_.max_retry_after);
  }

  RetryDecision decision;
  switch (Classify(outcome, options_.retry_invalid_responses)) {
    case OutcomeClass::kSuccess:
      decision.action = RetryDecision::Action::kSucceeded;
      return decision;

    case OutcomeClass::kPermanent:
      return GiveUp(absl::StrCat("not retryable: ", DescribeOutcome(outcome)));

    case OutcomeClass::kThrottled:
      // A cooldown, not a failure: no attempt is spent and the retry budget is
      // left alone (throttled requests are the upstream's rate limit working,
      // not a failing upstream); only max_throttles bounds them.
      ++state.throttles;
      if (state.throttles >= options_.max_throttles) {
        return GiveUp(absl::StrCat("throttled ", state.throttles, " times (max_throttles ",
                                   options_.max_throttles, ")"));
      }
      decision.action = RetryDecision::Action::kThrottle;
      if (retry_after.has_value()) {
        decision.delay = *retry_after;
      } else {
        decision.delay = Backoff(state.throttles, state.previous_delay);
        state.previous_delay = decision.delay;
      }
      return decision;

    case OutcomeClass::kRetryable:
      break;
  }

  const std::string last = DescribeOutcome(outcome);
  ++state.attempts;
  if (state.attempts >= options_.max_attempts) {
    return GiveUp(absl::StrCat("out of attempts (", state.attempts, " of ",
                               options_.max_attempts, "); last: ", last));
  }
  absl::Duration delay;
  if (retry_after.has_value()) {
    delay = *retry_after;
  } else {
    delay = Backoff(state.attempts, state.previous_delay);
    state.previous_delay = delay;
  }
  if ((now + delay) - state.first_attempt > options_.max_elapsed) {
    return GiveUp(absl::StrCat("next attempt would exceed max_elapsed ",
                               DurationText(options_.max_elapsed), "; last: ", last));
  }
  // Withdrawn last, so that a retry that is not going to happen anyway does
  // not take a token another task could use.
  if (budget_ != nullptr && !budget_->TryWithdraw()) {
    return GiveUp(absl::StrCat("retry budget exhausted; last: ", last));
  }
  decision.action = RetryDecision::Action::kRetry;
  decision.delay = delay;
  return decision;
}

}  // namespace fanout
