// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// RedisClient: one synchronous connection to a Redis server (hiredis), for the
// parts of fanout that many processes share through Redis. It parses and
// checks the server's URL, bounds every connect and every command by a
// timeout, runs Lua scripts by SHA (loading them again when the server has
// forgotten them: a restart, SCRIPT FLUSH), and reconnects after a connection
// is lost, with exponential backoff between attempts and never sleeping:
// while a backoff runs, commands fail at once with Unavailable and
// RetryDelay() tells when the next attempt is allowed.
//
// Every error is an absl::Status naming the server (its URL without any
// password) and the command: `redis redis://10.0.0.5:6379/0: EVALSHA: server
// closed the connection`.
//
// Thread-safety: all methods are safe to call from several threads; commands
// are serialized on the one connection (a command holds it for a round trip).

#ifndef FANOUT_REDIS_CLIENT_H_
#define FANOUT_REDIS_CLIENT_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fanout/clock.h"

struct redisContext;

namespace fanout {

// Where a Redis server is: `redis://[[user]:password@]host[:port][/db]`.
struct RedisAddress {
  std::string host;      // name, IPv4 address, or IPv6 address without brackets
  int port = 6379;       // 1..65535
  int db = 0;            // the database SELECTed after connecting, >= 0
  std::string user;      // empty: AUTH with the password alone (or no AUTH)
  std::string password;  // empty: no AUTH

  // The URL with the password replaced by "***": what errors and logs show.
  std::string ToString() const;
};

// Parses `url`. InvalidArgument naming the URL (its password masked) and the
// part at fault: another scheme (rediss:// and unix:// are not supported), an
// empty host, a port outside 1..65535, a database that is not a non-negative
// integer, a query or fragment.
absl::StatusOr<RedisAddress> ParseRedisUrl(std::string_view url);

// The same URL with any password replaced by "***" (for messages about URLs
// that may not even parse).
std::string RedactRedisUrl(std::string_view url);

struct RedisClientOptions {
  absl::Duration connect_timeout = absl::Seconds(2);  // TCP connect, AUTH and SELECT
  absl::Duration command_timeout = absl::Seconds(2);  // one command's round trip
  // Backoff between reconnection attempts: doubles from `initial` up to `max`
  // after each failed attempt, back to `initial` after a success.
  absl::Duration reconnect_initial = absl::Milliseconds(20);
  absl::Duration reconnect_max = absl::Seconds(2);
};

// A reply, converted from hiredis's. Error replies never appear here: they
// are returned as a Status.
struct RedisReply {
  enum class Type { kNil, kInteger, kString, kStatus, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;                  // kString and kStatus
  std::vector<RedisReply> elements; // kArray
};

// A Lua script run by EVALSHA; its SHA1 is learned from the server the first
// time it is loaded. Shareable between clients and threads.
class RedisScript {
 public:
  explicit RedisScript(std::string source) : source_(std::move(source)) {}
  const std::string& source() const { return source_; }

 private:
  friend class RedisClient;
  const std::string source_;
  mutable std::mutex mu_;
  mutable std::string sha_;  // empty until loaded once
};

class RedisClient {
 public:
  // Parses `url` and connects. The connection is made now so that a wrong URL
  // or an unreachable server is reported here: InvalidArgument for the URL,
  // Unavailable / DeadlineExceeded for the server, PermissionDenied if AUTH
  // fails. `clock` times the reconnection backoff and must outlive the client.
  static absl::StatusOr<std::unique_ptr<RedisClient>> Connect(std::string_view url, const Clock* clock,
                                                              RedisClientOptions options = {});
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends one command (`args[0]` is its name) and returns the reply. A server
  // error reply is returned as a Status (FailedPrecondition, or NotFound for
  // NOSCRIPT) naming the server and command. On a lost connection the client
  // reconnects (subject to the backoff) and resends once if the connection
  // was made before this call; so a command may reach the server twice when a reply is
  // lost: send only commands for which that is safe. Unavailable if the
  // server cannot be reached, DeadlineExceeded if it did not answer in time.
  absl::StatusOr<RedisReply> Command(const std::vector<std::string>& args);

  // Runs `script` with KEYS `keys` and ARGV `args` by EVALSHA, loading it
  // (SCRIPT LOAD) first if this client has not, and again if the server
  // answers NOSCRIPT. Errors as for Command; a script error names the script's
  // SHA and the server's message.
  absl::StatusOr<RedisReply> Eval(const RedisScript& script, const std::vector<std::string>& keys,
                                  const std::vector<std::string>& args);

  // How long until a reconnection may be attempted: zero while connected.
  absl::Duration RetryDelay() const;

  // The server, as errors name it (no password).
  const std::string& server() const { return server_; }
  const Clock* clock() const { return clock_; }
  // Round trips sent to the server so far (for benchmarks and tests).
  int64_t round_trips() const;

 private:
  RedisClient(RedisAddress address, const Clock* clock, RedisClientOptions options);
  // Connects if not connected and the backoff allows. Requires mu_.
  absl::Status EnsureConnected(std::string_view command);
  // One attempt on the current connection. Requires mu_.
  absl::StatusOr<RedisReply> SendLocked(const std::vector<std::string>& args, bool* connection_lost);
  absl::StatusOr<RedisReply> CommandLocked(const std::vector<std::string>& args);
  absl::Status Error(absl::StatusCode code, std::string_view command, std::string_view what) const;
  void Disconnect();  // Requires mu_.

  const RedisAddress address_;
  const std::string server_;
  const Clock* const clock_;
  const RedisClientOptions options_;

  mutable std::mutex mu_;
  redisContext* context_ = nullptr;  // null while disconnected
  absl::Time next_attempt_ = absl::InfinitePast();
  absl::Duration backoff_;
  std::string last_error_;  // why the last attempt failed, for Unavailable messages
  int64_t round_trips_ = 0;
};

}  // namespace fanout

#endif  // FANOUT_REDIS_CLIENT_H_
