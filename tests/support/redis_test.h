// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// A GoogleTest fixture with a fresh redis-server per test (redis_server.h),
// skipped with the reason when redis-server is not installed.

#ifndef FANOUT_TESTS_SUPPORT_REDIS_TEST_H_
#define FANOUT_TESTS_SUPPORT_REDIS_TEST_H_

#include <memory>
#include <string>

#include "fanout/clock.h"
#include "fanout/redis_client.h"
#include "gtest/gtest.h"
#include "redis_server.h"

namespace fanout::testing {

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    if (absl::IsNotFound(server.status())) GTEST_SKIP() << server.status().message();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  // A client of its own (as a separate process would have) of the test's
  // server, or of `url`; null (and the test failed) if it cannot connect.
  std::unique_ptr<RedisClient> Connect(RedisClientOptions options = {}, std::string url = "") {
    auto client = RedisClient::Connect(url.empty() ? server_->url() : url, &clock_, options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // Reconnection backoff short enough for tests that stop and restart Redis.
  static RedisClientOptions QuickReconnect() {
    RedisClientOptions options;
    options.reconnect_initial = absl::Milliseconds(10);
    options.reconnect_max = absl::Milliseconds(50);
    return options;
  }

  SystemClock clock_;
  std::unique_ptr<RedisServer> server_;
};

}  // namespace fanout::testing

#endif  // FANOUT_TESTS_SUPPORT_REDIS_TEST_H_
