// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/metrics.h"

#include <curl/curl.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fanout {
namespace {

using ::testing::HasSubstr;

CrawlStats Sample() {
  CrawlStats stats;
  LevelStats groups;
  groups.name = "groups";
  groups.requests = 24000;
  groups.responses_2xx = 23990;
  groups.responses_5xx = 10;
  groups.latency_at_most.assign(std::size(kLatencyBounds), 0);
  groups.latency_at_most[1] = 7;  // <= 2.5 ms
  for (size_t i = 2; i < groups.latency_at_most.size(); ++i) groups.latency_at_most[i] = 9;
  groups.latency_count = 10;
  groups.latency_sum = absl::Milliseconds(30);
  LevelStats odd;
  odd.name = "we\"ird\\name";
  stats.levels = {groups, odd};
  stats.discovered = 123456789;
  stats.upstream_rate = 497.5;
  return stats;
}

TEST(PrometheusText, IsTheExpositionFormat) {
  const std::string text = PrometheusText(Sample());
  EXPECT_THAT(text, HasSubstr("# HELP fanout_requests_total "));
  EXPECT_THAT(text, HasSubstr("# TYPE fanout_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("fanout_requests_total{level=\"groups\"} 24000\n"));
  EXPECT_THAT(text, HasSubstr("fanout_responses_total{level=\"groups\",class=\"5xx\"} 10\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE fanout_request_duration_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("fanout_request_duration_seconds_bucket{level=\"groups\",le=\"0.001\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("fanout_request_duration_seconds_bucket{level=\"groups\",le=\"0.0025\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("fanout_request_duration_seconds_bucket{level=\"groups\",le=\"60\"} 9\n"));
  EXPECT_THAT(text, HasSubstr("fanout_request_duration_seconds_bucket{level=\"groups\",le=\"+Inf\"} 10\n"));
  EXPECT_THAT(text, HasSubstr("fanout_request_duration_seconds_sum{level=\"groups\"} 0.03\n"));
  EXPECT_THAT(text, HasSubstr("fanout_request_duration_seconds_count{level=\"groups\"} 10\n"));
  EXPECT_THAT(text, HasSubstr("fanout_tasks_discovered_total 123456789\n"));  // whole, never 1.23e+08
  EXPECT_THAT(text, HasSubstr("fanout_upstream_rate 497.5\n"));
  EXPECT_THAT(text, HasSubstr("fanout_requests_total{level=\"we\\\"ird\\\\name\"} 0\n"));  // label escaped
  // Every sample line belongs to a family declared before it.
  std::string family;
  for (size_t start = 0, end; start < text.size(); start = end + 1) {
    end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    if (line.rfind("# TYPE ", 0) == 0) family = line.substr(7, line.find(' ', 7) - 7);
    if (line[0] == '#') continue;
    EXPECT_EQ(line.rfind(family, 0), 0u) << line;
  }
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

long Get(const std::string& url, std::string* body, bool post = false) {
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  if (post) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "x");
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  return status;
}

TEST(MetricsServer, ServesMetricsOnLoopback) {
  int scrapes = 0;
  auto server = MetricsServer::Start("127.0.0.1", 0, [&scrapes] {
    ++scrapes;
    return PrometheusText(Sample());
  });
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string base = "http://127.0.0.1:" + std::to_string((*server)->port());
  std::string body;
  EXPECT_EQ(Get(base + "/metrics", &body), 200);
  EXPECT_THAT(body, HasSubstr("fanout_requests_total{level=\"groups\"} 24000\n"));
  body.clear();
  EXPECT_EQ(Get(base + "/nothing", &body), 404);
  EXPECT_EQ(Get(base + "/metrics", &body, /*post=*/true), 405);
  EXPECT_EQ(scrapes, 1);
}

TEST(MetricsServer, BadAddressesAreClearErrors) {
  auto bad = MetricsServer::Start("not-an-address", 0, [] { return std::string(); });
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("\"not-an-address\" is not an IP address"));
  auto first = MetricsServer::Start("127.0.0.1", 0, [] { return std::string(); });
  ASSERT_TRUE(first.ok());
  auto taken = MetricsServer::Start("127.0.0.1", (*first)->port(), [] { return std::string(); });
  ASSERT_FALSE(taken.ok());
  EXPECT_THAT(std::string(taken.status().message()), HasSubstr("cannot listen on 127.0.0.1:"));
}

}  // namespace
}  // namespace fanout
