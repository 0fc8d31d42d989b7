// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/rate_headers.h"

#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace fanout {
namespace {

// 2026-01-01T00:00:00Z, as the fake clock's wall time starts.
const absl::Time kNow = absl::FromUnixSeconds(1767225600);

std::string HttpDate(absl::Time t) { return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", t, absl::UTCTimeZone()); }

TEST(RateHeaders, IetfFieldsWithPolicy) {
  const Headers headers = {{"RateLimit-Limit", "100"},
                           {"RateLimit-Remaining", "50"},
                           {"RateLimit-Reset", "30"},
                           {"RateLimit-Policy", "100;w=60"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.source, RateHeaderSource::kIetf);
  EXPECT_EQ(h.limit, 100);
  EXPECT_EQ(h.remaining, 50);
  EXPECT_EQ(h.reset, absl::Seconds(30));
  EXPECT_EQ(h.reset_unit, ResetUnit::kDeltaSeconds);
  EXPECT_EQ(h.policy_quota, 100);
  EXPECT_EQ(h.policy_window, absl::Seconds(60));
  EXPECT_TRUE(h.has_budget());
  EXPECT_FALSE(h.empty());
}

TEST(RateHeaders, NamesAreCaseInsensitive) {
  const Headers headers = {{"ratelimit-remaining", "7"}, {"RATELIMIT-RESET", "2"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.remaining, 7);
  EXPECT_EQ(h.reset, absl::Seconds(2));
}

TEST(RateHeaders, OlderDraftPutsThePolicyInTheLimitField) {
  const Headers headers = {{"RateLimit-Limit", "10, 10;w=1, 50;w=60"}, {"RateLimit-Remaining", "9"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.limit, 10);
  EXPECT_EQ(h.policy_quota, 10);
  EXPECT_EQ(h.policy_window, absl::Seconds(1));
  EXPECT_FALSE(h.has_budget());  // no reset
}

TEST(RateHeaders, StructuredDictionaryForm) {
  const Headers headers = {{"RateLimit", "limit=100, remaining=50, reset=30"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.source, RateHeaderSource::kIetfStructured);
  EXPECT_EQ(h.limit, 100);
  EXPECT_EQ(h.remaining, 50);
  EXPECT_EQ(h.reset, absl::Seconds(30));
}

TEST(RateHeaders, StructuredNamedPolicy) {
  const Headers headers = {{"RateLimit", "\"default\";r=50;t=30"},
                           {"RateLimit-Policy", "\"default\";q=100;w=60"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.source, RateHeaderSource::kIetfStructured);
  EXPECT_EQ(h.remaining, 50);
  EXPECT_EQ(h.reset, absl::Seconds(30));
  EXPECT_EQ(h.limit, 100);  // the named policy's quota
  EXPECT_EQ(h.policy_quota, 100);
  EXPECT_EQ(h.policy_window, absl::Seconds(60));
}

TEST(RateHeaders, StructuredNamedPoliciesPickTheMostConstrainingItem) {
  const Headers headers = {{"RateLimit", "\"daily\";r=4000;t=3600, \"burst\";r=3;t=1"},
                           {"RateLimit-Policy", "\"daily\";q=5000;w=86400, \"burst\";q=10;w=1"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.remaining, 3);
  EXPECT_EQ(h.reset, absl::Seconds(1));
  EXPECT_EQ(h.policy_quota, 10);
  EXPECT_EQ(h.policy_window, absl::Seconds(1));
}

TEST(RateHeaders, SeveralPoliciesWithoutAFigurePickTheLowestRate) {
  const Headers headers = {{"RateLimit-Policy", "1000;w=3600, 10;w=1"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.policy_quota, 1000);
  EXPECT_EQ(h.policy_window, absl::Seconds(3600));
}

TEST(RateHeaders, XRateLimitWithEpochSecondsReset) {
  const Headers headers = {{"X-RateLimit-Limit", "5000"},
                           {"X-RateLimit-Remaining", "4999"},
                           {"X-RateLimit-Reset", "1767229200"}};  // kNow + 1 h
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.source, RateHeaderSource::kXRateLimit);
  EXPECT_EQ(h.limit, 5000);
  EXPECT_EQ(h.remaining, 4999);
  EXPECT_EQ(h.reset, absl::Hours(1));
  EXPECT_EQ(h.reset_unit, ResetUnit::kEpochSeconds);
}

TEST(RateHeaders, XRateLimitWithEpochMillisecondsReset) {
  const Headers headers = {{"X-RateLimit-Remaining", "3"}, {"X-RateLimit-Reset", "1767225601250"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.reset, absl::Milliseconds(1250));
  EXPECT_EQ(h.reset_unit, ResetUnit::kEpochMilliseconds);
}

TEST(RateHeaders, XRateDashLimitVariant) {
  const Headers headers = {{"X-Rate-Limit-Limit", "900"},
                           {"X-Rate-Limit-Remaining", "899"},
                           {"X-Rate-Limit-Reset", "900"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.limit, 900);
  EXPECT_EQ(h.remaining, 899);
  EXPECT_EQ(h.reset, absl::Seconds(900));
}

TEST(RateHeaders, ResetAfterWinsOverResetAndKeepsItsFraction) {
  const Headers headers = {{"X-RateLimit-Remaining", "0"},
                           {"X-RateLimit-Reset", "1767225700.000"},
                           {"X-RateLimit-Reset-After", "1.250"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.reset, absl::Milliseconds(1250));
  EXPECT_EQ(h.remaining, 0);
}

TEST(RateHeaders, ResetAfterMustBeADelta) {
  // An epoch in Reset-After is a vendor bug: ignored, Reset is used.
  const Headers headers = {{"X-RateLimit-Reset-After", "1767225700"}, {"X-RateLimit-Reset", "5"}};
  EXPECT_EQ(ParseRateLimitHeaders(headers, kNow).reset, absl::Seconds(5));
}

TEST(RateHeaders, IetfWinsOverXVariants) {
  const Headers headers = {{"X-RateLimit-Remaining", "1"}, {"RateLimit-Remaining", "40"}, {"RateLimit-Reset", "10"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.remaining, 40);
  EXPECT_EQ(h.source, RateHeaderSource::kIetf);
}

TEST(RateHeaders, ShopifyLeakyBucketCounter) {
  const Headers headers = {{"X-Shopify-Shop-Api-Call-Limit", "32/40"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.source, RateHeaderSource::kLeakyBucket);
  EXPECT_EQ(h.bucket_used, 32);
  EXPECT_EQ(h.bucket_capacity, 40);
  EXPECT_EQ(h.limit, 40);
  EXPECT_EQ(h.remaining, 8);
  EXPECT_FALSE(h.has_budget());
}

TEST(RateHeaders, ShopifyOverfullBucketHasNoneRemaining) {
  const RateLimitHeaders h = ParseRateLimitHeaders({{"X-Shopify-Shop-Api-Call-Limit", "41/40"}}, kNow);
  EXPECT_EQ(h.remaining, 0);
}

TEST(RateHeaders, MalformedShopifyCountersAreIgnored) {
  for (const char* value : {"32", "32/0", "a/40", "32/", "/40", "-1/40", "32/40/50"}) {
    EXPECT_TRUE(ParseRateLimitHeaders({{"X-Shopify-Shop-Api-Call-Limit", value}}, kNow).empty()) << value;
  }
}

TEST(RateHeaders, EpochResetIsReadOnTheServersClockWhenSkewed) {
  // The server's clock is an hour ahead of ours; its reset epoch is one
  // minute ahead of its own clock: wait a minute, not an hour and a minute.
  const absl::Time server_now = kNow + absl::Hours(1);
  const Headers headers = {{"Date", HttpDate(server_now)},
                           {"X-RateLimit-Remaining", "0"},
                           {"X-RateLimit-Reset", std::to_string(absl::ToUnixSeconds(server_now) + 60)}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.clock_skew, absl::Hours(1));
  EXPECT_EQ(h.reset, absl::Seconds(60));
}

TEST(RateHeaders, ServerClockBehindDoesNotMakeUsSkipTheWait) {
  // A server 10 minutes behind: its reset epoch is in our past, yet 30 s away for it.
  const absl::Time server_now = kNow - absl::Minutes(10);
  const Headers headers = {{"Date", HttpDate(server_now)},
                           {"RateLimit-Reset", std::to_string(absl::ToUnixSeconds(server_now) + 30)}};
  EXPECT_EQ(ParseRateLimitHeaders(headers, kNow).reset, absl::Seconds(30));
}

TEST(RateHeaders, SmallSkewKeepsOurFinerClock) {
  // Date has whole seconds: within the tolerance our clock (ms) is used.
  const Headers headers = {{"Date", HttpDate(kNow - absl::Seconds(1))},
                           {"X-RateLimit-Reset", "1767225601500"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_EQ(h.clock_skew, -absl::Seconds(1));
  EXPECT_EQ(h.reset, absl::Milliseconds(1500));
}

TEST(RateHeaders, MalformedDateIsIgnored) {
  const Headers headers = {{"Date", "yesterday"}, {"X-RateLimit-Reset", "1767225630"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
  EXPECT_FALSE(h.clock_skew.has_value());
  EXPECT_EQ(h.reset, absl::Seconds(30));
}

TEST(RateHeaders, NeverWaitFiftyYears) {
  // An epoch fifty years ahead, and a delta of 31 years: both cut to max_wait.
  const std::string fifty_years = std::to_string(absl::ToUnixSeconds(kNow + absl::Hours(24 * 365 * 50)));
  RateLimitHeaders h = ParseRateLimitHeaders({{"X-RateLimit-Reset", fifty_years}}, kNow);
  EXPECT_EQ(h.reset, kDefaultMaxRateLimitWait);
  EXPECT_TRUE(h.reset_clamped);
  h = ParseRateLimitHeaders({{"RateLimit-Reset", "999999999"}}, kNow, absl::Minutes(5));
  EXPECT_EQ(h.reset, absl::Minutes(5));
  EXPECT_EQ(h.reset_unit, ResetUnit::kDeltaSeconds);
  EXPECT_TRUE(h.reset_clamped);
  // Retry-After too.
  h = ParseRateLimitHeaders({{"Retry-After", "86400000"}}, kNow, absl::Minutes(5));
  EXPECT_EQ(h.retry_after, absl::Minutes(5));
}

TEST(RateHeaders, EpochInThePastIsNoWait) {
  const RateLimitHeaders h = ParseRateLimitHeaders({{"X-RateLimit-Reset", "1767225000"}}, kNow);
  EXPECT_EQ(h.reset, absl::ZeroDuration());
  EXPECT_EQ(h.reset_unit, ResetUnit::kEpochSeconds);
}

TEST(RateHeaders, RetryAfterSecondsAndDateOnTheServersClock) {
  EXPECT_EQ(ParseRateLimitHeaders({{"Retry-After", "120"}}, kNow).retry_after, absl::Seconds(120));
  const absl::Time server_now = kNow + absl::Hours(3);
  const Headers headers = {{"Date", HttpDate(server_now)}, {"Retry-After", HttpDate(server_now + absl::Seconds(90))}};
  EXPECT_EQ(ParseRateLimitHeaders(headers, kNow).retry_after, absl::Seconds(90));
}

TEST(RateHeaders, MalformedValuesAreIgnoredFieldByField) {
  for (const char* bad : {"", " ", "-5", "+5", "abc", "1e3", "0x10", "NaN", "nan", "inf", "12 34", "1.", ".5",
                          "1.2.3", "5s", "99999999999999999999", "\"30\""}) {
    const Headers headers = {{"RateLimit-Limit", bad},
                             {"RateLimit-Remaining", bad},
                             {"RateLimit-Reset", bad},
                             {"RateLimit-Policy", bad},
                             {"RateLimit", bad},
                             {"X-RateLimit-Reset", bad},
                             {"X-RateLimit-Reset-After", bad},
                             {"Retry-After", bad},
                             {"Date", bad}};
    const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
    EXPECT_TRUE(h.empty()) << "value \"" << bad << "\"";
    EXPECT_EQ(h.source, RateHeaderSource::kNone) << bad;
  }
  // One bad field does not spoil the others.
  const Headers mixed = {{"RateLimit-Limit", "lots"}, {"RateLimit-Remaining", "5"}, {"RateLimit-Reset", "-1"}};
  const RateLimitHeaders h = ParseRateLimitHeaders(mixed, kNow);
  EXPECT_FALSE(h.limit.has_value());
  EXPECT_EQ(h.remaining, 5);
  EXPECT_FALSE(h.reset.has_value());
}

TEST(RateHeaders, MalformedStructuredFieldsDoNotCrash) {
  for (const char* bad : {"\"", "\"unterminated;r=5", ";;;", ",,,", "=", "limit=", "\"a\";r=;t=", "\"a\";r=5;t=x",
                          "limit=1=2", "\\", "\"x\\\""}) {
    const Headers headers = {{"RateLimit", bad}, {"RateLimit-Policy", bad}};
    const RateLimitHeaders h = ParseRateLimitHeaders(headers, kNow);
    EXPECT_FALSE(h.reset.has_value()) << bad;
    EXPECT_FALSE(h.policy_quota.has_value()) << bad;
  }
  // A policy without a window, or with a zero window, is no policy.
  EXPECT_FALSE(ParseRateLimitHeaders({{"RateLimit-Policy", "100"}}, kNow).policy_quota.has_value());
  EXPECT_FALSE(ParseRateLimitHeaders({{"RateLimit-Policy", "100;w=0"}}, kNow).policy_quota.has_value());
}

TEST(RateHeaders, NoHeadersIsEmpty) {
  const RateLimitHeaders h = ParseRateLimitHeaders({{"Content-Type", "application/json"}}, kNow);
  EXPECT_TRUE(h.empty());
  EXPECT_FALSE(h.has_budget());
}

TEST(InterpretReset, UnitsByMagnitude) {
  auto delta = InterpretReset("999999999", kNow, absl::InfiniteDuration());
  ASSERT_TRUE(delta.has_value());
  EXPECT_EQ(delta->unit, ResetUnit::kDeltaSeconds);
  auto seconds = InterpretReset("1000000000", kNow);
  ASSERT_TRUE(seconds.has_value());
  EXPECT_EQ(seconds->unit, ResetUnit::kEpochSeconds);
  EXPECT_EQ(seconds->delay, absl::ZeroDuration());  // 2001: past
  auto millis = InterpretReset("1767225602000", kNow);
  ASSERT_TRUE(millis.has_value());
  EXPECT_EQ(millis->unit, ResetUnit::kEpochMilliseconds);
  EXPECT_EQ(millis->delay, absl::Seconds(2));
  EXPECT_FALSE(InterpretReset("1767225602000000", kNow).has_value());  // microseconds: unknown
  EXPECT_EQ(InterpretReset(" 0 ", kNow)->delay, absl::ZeroDuration());
  EXPECT_EQ(InterpretReset("0.5", kNow)->delay, absl::Milliseconds(500));
}

}  // namespace
}  // namespace fanout
