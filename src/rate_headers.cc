// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/rate_headers.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "fanout/retry.h"

namespace fanout {
namespace {

constexpr double kEpochSecondsFrom = 1e9;       // 2001-09-09 as epoch seconds; 31 years as a delta
constexpr double kEpochMillisecondsFrom = 1e12;  // 2001-09-09 as epoch milliseconds
constexpr double kResetValuesBelow = 1e15;       // beyond: no unit we know (microseconds?)

std::string_view Trim(std::string_view text) {
  while (!text.empty() && absl::ascii_isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && absl::ascii_isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// 1*DIGIT, at most 18 of them (so it fits in int64). No sign, no fraction.
std::optional<int64_t> ParseCount(std::string_view text) {
  text = Trim(text);
  if (text.empty() || text.size() > 18) return std::nullopt;
  int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// 1*DIGIT [ "." 1*DIGIT ]: no sign, no exponent, no hex, no inf/nan. At most
// 18 integer digits.
std::optional<double> ParseDecimal(std::string_view text) {
  text = Trim(text);
  const size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  std::optional<int64_t> integer = ParseCount(whole);
  if (!integer.has_value() || whole.size() != Trim(whole).size()) return std::nullopt;
  double value = static_cast<double>(*integer);
  if (dot != std::string_view::npos) {
    const std::string_view fraction = text.substr(dot + 1);
    if (fraction.empty() || fraction.size() > 9) return std::nullopt;
    double scale = 0.1;
    for (const char c : fraction) {
      if (c < '0' || c > '9') return std::nullopt;
      value += (c - '0') * scale;
      scale /= 10;
    }
  }
  return value;
}

// Splits at `separator` outside double-quoted strings (structured fields).
std::vector<std::string_view> SplitOutsideQuotes(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && quoted) {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == separator && !quoted) {
      parts.push_back(Trim(text.substr(start, i - start)));
      start = i + 1;
    }
  }
  parts.push_back(Trim(text.substr(start)));
  return parts;
}

// One list member of a structured field: its bare item and its parameters.
struct Member {
  std::string_view item;
  std::vector<std::pair<std::string_view, std::string_view>> params;  // key, raw value ("" if none)

  std::optional<std::string_view> Param(std::string_view key) const {
    for (const auto& [k, v] : params) {
      if (absl::EqualsIgnoreCase(absl::string_view(k.data(), k.size()), absl::string_view(key.data(), key.size()))) {
        return v;
      }
    }
    return std::nullopt;
  }
};

std::vector<Member> ParseList(std::string_view value) {
  std::vector<Member> members;
  for (std::string_view raw : SplitOutsideQuotes(value, ',')) {
    if (raw.empty()) continue;
    std::vector<std::string_view> pieces = SplitOutsideQuotes(raw, ';');
    Member member;
    member.item = pieces[0];
    for (size_t i = 1; i < pieces.size(); ++i) {
      const size_t eq = pieces[i].find('=');
      if (eq == std::string_view::npos) {
        member.params.emplace_back(Trim(pieces[i]), std::string_view());
      } else {
        member.params.emplace_back(Trim(pieces[i].substr(0, eq)), Trim(pieces[i].substr(eq + 1)));
      }
    }
    members.push_back(std::move(member));
  }
  return members;
}

// A policy's name: a quoted string or a token, unquoted; the quota itself for
// the older drafts' "100;w=60".
std::string_view Unquote(std::string_view item) {
  if (item.size() >= 2 && item.front() == '"' && item.back() == '"') return item.substr(1, item.size() - 2);
  return item;
}

struct Policy {
  std::string_view name;
  int64_t quota = 0;
  absl::Duration window;
};

// RateLimit-Policy in either draft's form: "100;w=60, 1000;w=3600" or
// "\"default\";q=100;w=60". Members without a valid quota and window are skipped.
std::vector<Policy> ParsePolicies(std::string_view value) {
  std::vector<Policy> policies;
  for (const Member& member : ParseList(value)) {
    Policy policy;
    std::optional<int64_t> quota = ParseCount(member.item);
    if (quota.has_value()) {
      policy.name = member.item;
    } else {
      policy.name = Unquote(member.item);
      if (auto q = member.Param("q")) quota = ParseCount(*q);
    }
    const std::optional<std::string_view> w = member.Param("w");
    const std::optional<int64_t> window = w ? ParseCount(*w) : std::nullopt;
    if (!quota.has_value() || !window.has_value() || *window <= 0) continue;
    policy.quota = *quota;
    policy.window = absl::Seconds(*window);
    policies.push_back(policy);
  }
  return policies;
}

// The first member's bare item of a list-valued field ("100, 100;w=60" -> "100").
std::string_view FirstItem(std::string_view value) {
  std::string_view first = SplitOutsideQuotes(value, ',')[0];
  return Trim(first.substr(0, first.find(';')));
}

// Context shared by the dialect readers.
struct Reader {
  const Headers& headers;
  absl::Time reference;  // "now" on the server's clock, for epoch resets
  absl::Duration max_wait;
  RateLimitHeaders& out;

  std::optional<std::string_view> Get(std::string_view name) const { return FindHeader(headers, name); }

  void Note(RateHeaderSource source) {
    if (out.source == RateHeaderSource::kNone) out.source = source;
  }
  bool SetLimit(std::optional<int64_t> value) {
    if (!value.has_value() || out.limit.has_value()) return false;
    out.limit = value;
    return true;
  }
  bool SetRemaining(std::optional<int64_t> value) {
    if (!value.has_value() || out.remaining.has_value()) return false;
    out.remaining = value;
    return true;
  }
  bool SetReset(std::optional<std::string_view> raw, bool delta_only) {
    if (!raw.has_value() || out.reset.has_value()) return false;
    std::optional<ResetValue> reset = InterpretReset(*raw, reference, max_wait);
    if (!reset.has_value() || (delta_only && reset->unit != ResetUnit::kDeltaSeconds)) return false;
    out.reset = reset->delay;
    out.reset_unit = reset->unit;
    out.reset_clamped = reset->clamped;
    return true;
  }
  void SetPolicy(const Policy& policy) {
    if (out.policy_quota.has_value()) return;
    out.policy_quota = policy.quota;
    out.policy_window = policy.window;
  }
};

// RateLimit: limit=100, remaining=50, reset=30   (draft -05/-06 dictionary), or
// RateLimit: "default";r=50;t=30                 (draft -07 on, named policies).
// Returns the name of the chosen item's policy (named form), if any.
std::optional<std::string_view> ReadIetfStructured(Reader& r) {
  const std::optional<std::string_view> field = r.Get("RateLimit");
  if (!field.has_value()) return std::nullopt;
  bool found = false;
  // The named form: choose the most constraining item (fewest remaining).
  const std::vector<Member> members = ParseList(*field);
  const Member* chosen = nullptr;
  std::optional<int64_t> chosen_remaining;
  for (const Member& m : members) {
    const size_t eq = m.item.find('=');
    if (eq != std::string_view::npos) {  // dictionary member: key=value
      const std::string_view key = Trim(m.item.substr(0, eq));
      const std::string_view value = Trim(m.item.substr(eq + 1));
      const absl::string_view k(key.data(), key.size());
      if (absl::EqualsIgnoreCase(k, "limit")) {
        found |= r.SetLimit(ParseCount(value));
      } else if (absl::EqualsIgnoreCase(k, "remaining")) {
        found |= r.SetRemaining(ParseCount(value));
      } else if (absl::EqualsIgnoreCase(k, "reset")) {
        found |= r.SetReset(value, /*delta_only=*/false);
      }
      continue;
    }
    const std::optional<std::string_view> rp = m.Param("r");
    const std::optional<int64_t> remaining = rp ? ParseCount(*rp) : std::nullopt;
    if (!remaining.has_value()) continue;
    if (chosen == nullptr || *remaining < *chosen_remaining) {
      chosen = &m;
      chosen_remaining = remaining;
    }
  }
  std::optional<std::string_view> policy_name;
  if (chosen != nullptr) {
    found |= r.SetRemaining(chosen_remaining);
    found |= r.SetReset(chosen->Param("t"), /*delta_only=*/false);
    policy_name = Unquote(chosen->item);
  }
  if (found) r.Note(RateHeaderSource::kIetfStructured);
  return policy_name;
}

// RateLimit-Policy, with either draft's syntax. The policy that goes with the
// figures: the one the chosen RateLimit item names, else the one whose quota
// is the stated limit, else the most constraining (lowest quota per second).
void ReadIetfPolicy(Reader& r, std::optional<std::string_view> policy_name) {
  const std::optional<std::string_view> field = r.Get("RateLimit-Policy");
  if (!field.has_value()) return;
  const std::vector<Policy> policies = ParsePolicies(*field);
  if (policies.empty()) return;
  const Policy* match = nullptr;
  for (const Policy& p : policies) {
    if (match == nullptr && policy_name.has_value() && p.name == *policy_name) match = &p;
  }
  for (const Policy& p : policies) {
    if (match == nullptr && r.out.limit.has_value() && p.quota == *r.out.limit) match = &p;
  }
  if (match == nullptr) {
    for (const Policy& p : policies) {
      if (match == nullptr || static_cast<double>(p.quota) / absl::ToDoubleSeconds(p.window) <
                                  static_cast<double>(match->quota) / absl::ToDoubleSeconds(match->window)) {
        match = &p;
      }
    }
  }
  r.SetPolicy(*match);
  // The named form states the quota only in the policy.
  if (policy_name.has_value()) r.SetLimit(match->quota);
  r.Note(RateHeaderSource::kIetf);
}

// RateLimit-Limit: 100 (older drafts: "100, 100;w=60"), RateLimit-Remaining,
// RateLimit-Reset.
void ReadIetfFields(Reader& r) {
  bool found = false;
  if (auto limit = r.Get("RateLimit-Limit")) {
    found |= r.SetLimit(ParseCount(FirstItem(*limit)));
    // Draft -01..-03 put the policy in the limit field: "100, 100;w=60".
    std::vector<Policy> policies = ParsePolicies(*limit);
    for (const Policy& p : policies) {
      if (!r.out.limit.has_value() || p.quota == *r.out.limit) {
        r.SetPolicy(p);
        break;
      }
    }
  }
  if (auto remaining = r.Get("RateLimit-Remaining")) found |= r.SetRemaining(ParseCount(FirstItem(*remaining)));
  if (auto reset = r.Get("RateLimit-Reset")) found |= r.SetReset(FirstItem(*reset), /*delta_only=*/false);
  if (found) r.Note(RateHeaderSource::kIetf);
}

// X-RateLimit-* and X-Rate-Limit-*; -Reset-After is always seconds from now
// (and more precise), so it wins over -Reset.
void ReadXRateLimit(Reader& r) {
  bool found = false;
  for (std::string_view prefix : {"X-RateLimit-", "X-Rate-Limit-"}) {
    const std::string p(prefix);
    if (auto limit = r.Get(p + "Limit")) found |= r.SetLimit(ParseCount(FirstItem(*limit)));
    if (auto remaining = r.Get(p + "Remaining")) found |= r.SetRemaining(ParseCount(FirstItem(*remaining)));
    if (auto after = r.Get(p + "Reset-After")) found |= r.SetReset(FirstItem(*after), /*delta_only=*/true);
    if (auto reset = r.Get(p + "Reset")) found |= r.SetReset(FirstItem(*reset), /*delta_only=*/false);
  }
  if (found) r.Note(RateHeaderSource::kXRateLimit);
}

// X-Shopify-Shop-Api-Call-Limit: used/capacity.
void ReadLeakyBucket(Reader& r) {
  const std::optional<std::string_view> value = r.Get("X-Shopify-Shop-Api-Call-Limit");
  if (!value.has_value()) return;
  const size_t slash = value->find('/');
  if (slash == std::string_view::npos) return;
  const std::optional<int64_t> used = ParseCount(value->substr(0, slash));
  const std::optional<int64_t> capacity = ParseCount(value->substr(slash + 1));
  if (!used || !capacity || *capacity <= 0) return;
  r.out.bucket_used = used;
  r.out.bucket_capacity = capacity;
  r.SetLimit(capacity);
  r.SetRemaining(*capacity > *used ? *capacity - *used : 0);
  r.Note(RateHeaderSource::kLeakyBucket);
}

}  // namespace

std::optional<ResetValue> InterpretReset(std::string_view value, absl::Time reference, absl::Duration max_wait) {
  const std::optional<double> number = ParseDecimal(value);
  if (!number.has_value() || *number >= kResetValuesBelow) return std::nullopt;
  ResetValue reset;
  absl::Duration delay;
  if (*number < kEpochSecondsFrom) {
    reset.unit = ResetUnit::kDeltaSeconds;
    delay = absl::Seconds(*number);
  } else if (*number < kEpochMillisecondsFrom) {
    reset.unit = ResetUnit::kEpochSeconds;
    delay = absl::FromUnixNanos(static_cast<int64_t>(std::llround(*number * 1e9))) - reference;
  } else {
    reset.unit = ResetUnit::kEpochMilliseconds;
    delay = absl::FromUnixMicros(static_cast<int64_t>(std::llround(*number * 1e3))) - reference;
  }
  if (delay < absl::ZeroDuration()) delay = absl::ZeroDuration();  // already past
  if (delay > max_wait) {
    delay = max_wait;
    reset.clamped = true;
  }
  reset.delay = delay;
  return reset;
}

RateLimitHeaders ParseRateLimitHeaders(const Headers& headers, absl::Time wall_now, absl::Duration max_wait) {
  RateLimitHeaders out;
  if (max_wait < absl::ZeroDuration()) max_wait = absl::ZeroDuration();
  // The server's clock: epoch values and HTTP-dates are in its frame. Within
  // the tolerance our own (finer) clock is used instead.
  absl::Time reference = wall_now;
  if (auto date = FindHeader(headers, "Date")) {
    if (std::optional<absl::Time> server_now = ParseHttpDate(*date, wall_now)) {
      out.clock_skew = *server_now - wall_now;
      if (absl::AbsDuration(*out.clock_skew) > kClockSkewTolerance) reference = *server_now;
    }
  }
  Reader reader{headers, reference, max_wait, out};
  const std::optional<std::string_view> policy_name = ReadIetfStructured(reader);
  ReadIetfFields(reader);
  ReadIetfPolicy(reader, policy_name);
  ReadXRateLimit(reader);
  ReadLeakyBucket(reader);
  if (auto retry_after = FindHeader(headers, "Retry-After")) {
    if (std::optional<absl::Duration> delay = ParseRetryAfter(*retry_after, reference)) {
      out.retry_after = std::min(*delay, max_wait);
    }
  }
  return out;
}

}  // namespace fanout
