// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// RedisClient: URL parsing (no server), then against a real redis-server on
// loopback (tests/support/redis_server.h; skipped if it is not installed).

#include "fanout/redis_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/redis_test.h"

namespace fanout {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ParseRedisUrl, DefaultsPortAndDatabase) {
  auto address = ParseRedisUrl("redis://cache.internal");
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(address->host, "cache.internal");
  EXPECT_EQ(address->port, 6379);
  EXPECT_EQ(address->db, 0);
  EXPECT_TRUE(address->password.empty());
  EXPECT_EQ(address->ToString(), "redis://cache.internal:6379/0");
}

TEST(ParseRedisUrl, CredentialsPortDatabaseAndIpv6) {
  auto address = ParseRedisUrl("REDIS://crawler:s3cr%40t@10.0.0.5:6380/3");
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(address->user, "crawler");
  EXPECT_EQ(address->password, "s3cr@t");
  EXPECT_EQ(address->host, "10.0.0.5");
  EXPECT_EQ(address->port, 6380);
  EXPECT_EQ(address->db, 3);
  EXPECT_EQ(address->ToString(), "redis://crawler:***@10.0.0.5:6380/3");

  auto v6 = ParseRedisUrl("redis://:pw@[::1]:7000/");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7000);
  EXPECT_EQ(v6->password, "pw");
  EXPECT_EQ(v6->ToString(), "redis://:***@[::1]:7000/0");
}

TEST(ParseRedisUrl, ErrorsNameTheUrlAndThePartButNeverThePassword) {
  struct Case {
    const char* url;
    const char* expect;
  };
  const Case cases[] = {
      {"http://h:1", "scheme \"http\" is not supported"},
      {"rediss://:hunter2@h", "scheme \"rediss\" is not supported"},
      {"localhost:6379", "must look like redis://"},
      {"redis://", "no host"},
      {"redis://:hunter2@:6379", "no host"},
      {"redis://h:0", "port must be a number in 1..65535, got \"0\""},
      {"redis://h:65536", "got \"65536\""},
      {"redis://h:63a", "got \"63a\""},
      {"redis://h:", "empty port"},
      {"redis://h/-1", "database must be a non-negative integer, got \"-1\""},
      {"redis://h/db0", "got \"db0\""},
      {"redis://h/0?timeout=1", "query strings"},
      {"redis://[::1:6379", "unterminated ["},
      {"redis://user:hunter2@h:99999", "port must be"},
      {"redis://hunter2@h", "credentials must be"},
      {"redis://u:%zz@h", "malformed %-escape"},
  };
  for (const Case& c : cases) {
    auto address = ParseRedisUrl(c.url);
    ASSERT_FALSE(address.ok()) << c.url;
    EXPECT_EQ(address.status().code(), absl::StatusCode::kInvalidArgument) << c.url;
    EXPECT_THAT(std::string(address.status().message()), HasSubstr(c.expect)) << c.url;
    EXPECT_THAT(std::string(address.status().message()), HasSubstr("redis URL \"")) << c.url;
    EXPECT_THAT(std::string(address.status().message()), Not(HasSubstr("hunter2"))) << c.url;
  }
}

TEST(RedactRedisUrl, MasksPasswordsOnly) {
  EXPECT_EQ(RedactRedisUrl("redis://u:pw@h:1/2"), "redis://u:***@h:1/2");
  EXPECT_EQ(RedactRedisUrl("redis://:pw@h"), "redis://:***@h");
  EXPECT_EQ(RedactRedisUrl("redis://pw@h"), "redis://***@h");
  EXPECT_EQ(RedactRedisUrl("redis://h:1/2"), "redis://h:1/2");
}

class RedisClientTest : public testing::RedisTest {
 protected:
  std::unique_ptr<RedisClient> Client(const std::string& url, RedisClientOptions options = {}) {
    return Connect(options, url);
  }
};

TEST_F(RedisClientTest, CommandsAndReplies) {
  auto client = Client(server_->url());
  ASSERT_NE(client, nullptr);
  auto set = client->Command({"SET", "k", std::string("a\0b", 3)});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->type, RedisReply::Type::kStatus);
  auto get = client->Command({"GET", "k"});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->str, std::string("a\0b", 3));
  EXPECT_EQ(client->Command({"GET", "missing"})->type, RedisReply::Type::kNil);
  EXPECT_EQ(client->Command({"INCRBY", "n", "41"})->integer, 41);
  auto list = client->Command({"MGET", "k", "missing"});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->elements.size(), 2u);
  EXPECT_EQ(list->elements[1].type, RedisReply::Type::kNil);
}

TEST_F(RedisClientTest, ErrorRepliesNameServerAndCommand) {
  auto client = Client(server_->url());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Command({"SET", "k", "text"}).ok());
  auto incr = client->Command({"incr", "k"});
  ASSERT_FALSE(incr.ok());
  EXPECT_EQ(incr.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(incr.status().message()),
              HasSubstr(absl::StrCat("redis redis://127.0.0.1:", server_->port(), "/0: INCR: ERR")));
}

TEST_F(RedisClientTest, DatabaseIsSelected) {
  auto db0 = Client(server_->url());
  auto db2 = Client(server_->url() + "/2");
  ASSERT_NE(db0, nullptr);
  ASSERT_NE(db2, nullptr);
  ASSERT_TRUE(db2->Command({"SET", "where", "two"}).ok());
  EXPECT_EQ(db0->Command({"GET", "where"})->type, RedisReply::Type::kNil);
  EXPECT_EQ(db2->Command({"GET", "where"})->str, "two");
}

TEST_F(RedisClientTest, WrongPasswordIsAnErrorWithoutThePassword) {
  auto client = RedisClient::Connect(server_->url().replace(0, 8, "redis://:hunter2@"), &clock_);
  ASSERT_FALSE(client.ok());
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("AUTH"));
  EXPECT_THAT(std::string(client.status().message()), HasSubstr(":***@127.0.0.1"));
  EXPECT_THAT(std::string(client.status().message()), Not(HasSubstr("hunter2")));
}

TEST_F(RedisClientTest, EvalLoadsScriptsAndReloadsAfterScriptFlush) {
  auto client = Client(server_->url());
  ASSERT_NE(client, nullptr);
  RedisScript script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  auto first = client->Eval(script, {"counter"}, {"2"});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->integer, 2);
  const int64_t before = client->round_trips();
  EXPECT_EQ(client->Eval(script, {"counter"}, {"3"})->integer, 5);
  EXPECT_EQ(client->round_trips() - before, 1) << "a loaded script costs one EVALSHA";
  ASSERT_TRUE(client->Command({"SCRIPT", "FLUSH"}).ok());
  auto after_flush = client->Eval(script, {"counter"}, {"1"});
  ASSERT_TRUE(after_flush.ok()) << after_flush.status();
  EXPECT_EQ(after_flush->integer, 6);

  RedisScript broken("return redis.call('NOSUCHCOMMAND')");
  auto error = client->Eval(broken, {}, {});
  ASSERT_FALSE(error.ok());
  EXPECT_THAT(std::string(error.status().message()), HasSubstr("EVALSHA"));
  EXPECT_THAT(std::string(error.status().message()), HasSubstr("(script "));
}

TEST_F(RedisClientTest, ReconnectsAfterTheServerRestarts) {
  auto client = Client(server_->url());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Command({"PING"}).ok());
  ASSERT_TRUE(server_->Restart().ok());
  // The old connection is dead; the client reconnects and resends once.
  auto pong = client->Command({"PING"});
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(pong->str, "PONG");
}

TEST_F(RedisClientTest, DeadServerFailsFastThenBacksOff) {
  const std::string url = server_->url();
  RedisClientOptions options;
  options.reconnect_initial = absl::Seconds(30);  // so the second call is inside the backoff
  auto client = Client(url, options);
  ASSERT_NE(client, nullptr);
  server_->Stop();
  const absl::Time start = clock_.Now();
  auto first = client->Command({"PING"});
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(first.status().message()), HasSubstr(absl::StrCat("redis ", client->server(), ": PING")));
  auto second = client->Command({"PING"});
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("next reconnection attempt in"));
  EXPECT_GT(client->RetryDelay(), absl::Seconds(20));
  EXPECT_LT(clock_.Now() - start, absl::Seconds(5)) << "refused connections must not wait for timeouts";

  auto never = RedisClient::Connect(url, &clock_);
  ASSERT_FALSE(never.ok());
  EXPECT_EQ(never.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(never.status().message()), HasSubstr(absl::StrCat("127.0.0.1:", server_->port())));
}

// A server that accepts connections and never answers: the command timeout
// bounds the wait.
TEST(RedisClientTimeout, SilentServerIsADeadlineNotAHang) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  SystemClock clock;
  RedisClientOptions options;
  options.command_timeout = absl::Milliseconds(200);
  auto client = RedisClient::Connect(absl::StrCat("redis://127.0.0.1:", ntohs(addr.sin_port)), &clock, options);
  ASSERT_TRUE(client.ok()) << client.status();  // TCP connects; nothing is sent yet
  const absl::Time start = clock.Now();
  auto reply = (*client)->Command({"PING"});
  const absl::Duration took = clock.Now() - start;
  close(fd);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded) << reply.status();
  EXPECT_THAT(std::string(reply.status().message()), HasSubstr("no reply within 200ms"));
  EXPECT_GE(took, absl::Milliseconds(150));
  EXPECT_LT(took, absl::Seconds(10));
}

}  // namespace
}  // namespace fanout
