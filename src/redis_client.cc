// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fanout {
namespace {

constexpr std::string_view kScheme = "redis://";

timeval DurationToTimeval(absl::Duration d) {
  const int64_t us = std::max<int64_t>(1000, absl::ToInt64Microseconds(d));
  timeval tv;
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  return tv;
}

// Decodes %XX escapes (userinfo may hold any byte that way). False on a
// malformed escape.
bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !absl::ascii_isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !absl::ascii_isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      return false;
    }
    int value = 0;
    for (int k = 1; k <= 2; ++k) {
      const char c = absl::ascii_tolower(static_cast<unsigned char>(in[i + k]));
      value = value * 16 + (c <= '9' ? c - '0' : c - 'a' + 10);
    }
    out->push_back(static_cast<char>(value));
    i += 2;
  }
  return true;
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_NIL:
      out.type = RedisReply::Type::kNil;
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:  // strings (and anything newer, read as its text)
      out.type = RedisReply::Type::kString;
      if (r->str != nullptr) out.str.assign(r->str, r->len);
      break;
  }
  return out;
}

absl::StatusCode CodeOfErrorReply(std::string_view message) {
  if (StartsWith(message, "NOSCRIPT")) return absl::StatusCode::kNotFound;
  if (StartsWith(message, "WRONGPASS") || StartsWith(message, "NOAUTH") ||
      StartsWith(message, "NOPERM") || message.find("invalid password") != std::string_view::npos) {
    return absl::StatusCode::kPermissionDenied;
  }
  if (StartsWith(message, "LOADING") || StartsWith(message, "BUSY")) {
    return absl::StatusCode::kUnavailable;
  }
  return absl::StatusCode::kFailedPrecondition;
}

}  // namespace

std::string RedactRedisUrl(std::string_view url) {
  const size_t scheme_end = url.find("://");
  const size_t start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const size_t authority_end = std::min(url.find_first_of("/?#", start), url.size());
  const size_t at = url.substr(0, authority_end).rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  const std::string_view userinfo = url.substr(start, at - start);
  const size_t colon = userinfo.find(':');
  // Without a colon the userinfo may well be a password given alone: hide it.
  const std::string shown = colon == std::string_view::npos
                                ? "***"
                                : absl::StrCat(std::string(userinfo.substr(0, colon)), ":***");
  return absl::StrCat(std::string(url.substr(0, start)), shown, std::string(url.substr(at)));
}

std::string RedisAddress::ToString() const {
  const std::string host_part = host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
  const std::string auth = password.empty() && user.empty() ? "" : absl::StrCat(user, ":***@");
  return absl::StrCat(std::string(kScheme), auth, host_part, ":", port, "/", db);
}

absl::StatusOr<RedisAddress> ParseRedisUrl(std::string_view url) {
  auto bad = [&](std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("redis URL \"", RedactRedisUrl(url), "\": ", std::string(what)));
  };
  if (!StartsWith(absl::AsciiStrToLower(std::string(url.substr(0, kScheme.size()))), kScheme)) {
    const size_t scheme_end = url.find("://");
    if (scheme_end != std::string_view::npos) {
      return bad(absl::StrCat("scheme \"", std::string(url.substr(0, scheme_end)),
                              "\" is not supported; use redis://host:port/db"));
    }
    return bad("must look like redis://[[user]:password@]host[:port][/db]");
  }
  if (url.find_first_of("?#") != std::string_view::npos) {
    return bad("query strings and fragments are not supported");
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);

  RedisAddress address;
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      return bad("credentials must be user:password or :password");
    }
    if (!PercentDecode(userinfo.substr(0, colon), &address.user) ||
        !PercentDecode(userinfo.substr(colon + 1), &address.password)) {
      return bad("malformed %-escape in the credentials");
    }
    if (address.password.empty()) return bad("empty password after \":\"");
  }

  std::string_view port_text;
  if (StartsWith(authority, "[")) {  // [IPv6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated [ in the host");
    address.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("expected :port after ]");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port after \":\"");
    }
  } else {
    const size_t colon = authority.rfind(':');
    address.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("empty port after \":\"");
    }
  }
  if (address.host.empty()) return bad("no host");
  if (!port_text.empty()) {
    int port = 0;
    if (!AllDigits(port_text) || port_text.size() > 5 || !absl::SimpleAtoi(std::string(port_text), &port) || port < 1 ||
        port > 65535) {
      return bad(absl::StrCat("port must be a number in 1..65535, got \"", std::string(port_text), "\""));
    }
    address.port = port;
  }
  if (!path.empty()) {
    int db = 0;
    if (!AllDigits(path) || path.size() > 9 || !absl::SimpleAtoi(std::string(path), &db)) {
      return bad(absl::StrCat("database must be a non-negative integer, got \"", std::string(path), "\""));
    }
    address.db = db;
  }
  return address;
}

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::Connect(std::string_view url, const Clock* clock,
                                                                  RedisClientOptions options) {
  absl::StatusOr<RedisAddress> address = ParseRedisUrl(url);
  if (!address.ok()) return address.status();
  if (clock == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("redis ", address->ToString(), ": clock is null"));
  }
  std::unique_ptr<RedisClient> client(new RedisClient(*std::move(address), clock, options));
  std::lock_guard<std::mutex> lock(client->mu_);
  if (absl::Status s = client->EnsureConnected("connect"); !s.ok()) return s;
  return client;
}

RedisClient::RedisClient(RedisAddress address, const Clock* clock, RedisClientOptions options)
    : address_(std::move(address)),
      server_(address_.ToString()),
      clock_(clock),
      options_(options),
      backoff_(options.reconnect_initial) {}

RedisClient::~RedisClient() {
  std::lock_guard<std::mutex> lock(mu_);
  Disconnect();
}

absl::Status RedisClient::Error(absl::StatusCode code, std::string_view command, std::string_view what) const {
  return absl::Status(code, absl::StrCat("redis ", server_, ": ", std::string(command), ": ", std::string(what)));
}

void RedisClient::Disconnect() {
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
}

absl::Status RedisClient::EnsureConnected(std::string_view command) {
  if (context_ != nullptr) return absl::OkStatus();
  const absl::Time now = clock_->Now();
  if (now < next_attempt_) {
    return Error(absl::StatusCode::kUnavailable, command,
                 absl::StrCat("not connected; next reconnection attempt in ",
                              absl::FormatDuration(next_attempt_ - now), " (last error: ", last_error_, ")"));
  }
  // A failed attempt: drop the connection, back off before the next one.
  auto backoff = [&](std::string what) {
    Disconnect();
    last_error_ = std::move(what);
    next_attempt_ = clock_->Now() + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.reconnect_max);
  };
  context_ = redisConnectWithTimeout(address_.host.c_str(), address_.port, DurationToTimeval(options_.connect_timeout));
  if (context_ == nullptr || context_->err != 0) {
    const bool timed_out =
        context_ != nullptr && context_->err == REDIS_ERR_IO && (errno == ETIMEDOUT || errno == EINPROGRESS);
    std::string what = absl::StrCat("connect: ", context_ == nullptr ? "out of memory" : context_->errstr);
    backoff(what);
    return Error(timed_out ? absl::StatusCode::kDeadlineExceeded : absl::StatusCode::kUnavailable, command, what);
  }
  redisSetTimeout(context_, DurationToTimeval(options_.connect_timeout));
  // AUTH and SELECT name themselves in SendLocked's errors.
  std::vector<std::vector<std::string>> setup;
  if (!address_.password.empty()) {
    setup.push_back({"AUTH"});
    if (!address_.user.empty()) setup.back().push_back(address_.user);
    setup.back().push_back(address_.password);
  }
  if (address_.db != 0) setup.push_back({"SELECT", absl::StrCat(address_.db)});
  for (const std::vector<std::string>& step : setup) {
    bool lost = false;
    absl::StatusOr<RedisReply> reply = SendLocked(step, &lost);
    if (!reply.ok()) {
      backoff(std::string(reply.status().message()));
      return reply.status();
    }
  }
  redisSetTimeout(context_, DurationToTimeval(options_.command_timeout));
  backoff_ = options_.reconnect_initial;
  next_attempt_ = absl::InfinitePast();
  return absl::OkStatus();
}

absl::StatusOr<RedisReply> RedisClient::SendLocked(const std::vector<std::string>& args, bool* connection_lost) {
  *connection_lost = false;
  std::vector<const char*> argv;
  std::vector<size_t> argvlen;
  argv.reserve(args.size());
  argvlen.reserve(args.size());
  for (const std::string& a : args) {
    argv.push_back(a.data());
    argvlen.push_back(a.size());
  }
  ++round_trips_;
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(context_, static_cast<int>(args.size()), argv.data(), argvlen.data()));
  const std::string command = args.empty() ? "" : absl::AsciiStrToUpper(args[0]);
  if (reply == nullptr) {
    const bool timed_out = context_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    std::string what = context_->err == REDIS_ERR_EOF ? "server closed the connection"
                       : timed_out ? absl::StrCat("no reply within ", absl::FormatDuration(options_.command_timeout))
                                   : std::string(context_->errstr);
    *connection_lost = !timed_out;
    last_error_ = what;
    Disconnect();  // hiredis contexts are unusable after an I/O error
    return Error(timed_out ? absl::StatusCode::kDeadlineExceeded : absl::StatusCode::kUnavailable, command, what);
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    const std::string message(reply->str, reply->len);
    freeReplyObject(reply);
    return Error(CodeOfErrorReply(message), command, message);
  }
  RedisReply out = Convert(reply);
  freeReplyObject(reply);
  return out;
}

absl::StatusOr<RedisReply> RedisClient::CommandLocked(const std::vector<std::string>& args) {
  const std::string command = args.empty() ? "" : absl::AsciiStrToUpper(args[0]);
  if (args.empty()) return Error(absl::StatusCode::kInvalidArgument, "(none)", "empty command");
  const bool reused = context_ != nullptr;
  if (absl::Status s = EnsureConnected(command); !s.ok()) return s;
  bool lost = false;
  absl::StatusOr<RedisReply> reply = SendLocked(args, &lost);
  // A connection made earlier and gone since (a server restart, an idle
  // connection cut): reconnect at once and resend, once.
  if (!reply.ok() && lost && reused) {
    if (absl::Status s = EnsureConnected(command); !s.ok()) return s;
    reply = SendLocked(args, &lost);
  }
  return reply;
}

absl::StatusOr<RedisReply> RedisClient::Command(const std::vector<std::string>& args) {
  std::lock_guard<std::mutex> lock(mu_);
  return CommandLocked(args);
}

absl::StatusOr<RedisReply> RedisClient::Eval(const RedisScript& script, const std::vector<std::string>& keys,
                                             const std::vector<std::string>& args) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string sha;
  {
    std::lock_guard<std::mutex> script_lock(script.mu_);
    sha = script.sha_;
  }
  auto load = [&]() -> absl::Status {
    absl::StatusOr<RedisReply> loaded = CommandLocked({"SCRIPT", "LOAD", script.source_});
    if (!loaded.ok()) return loaded.status();
    if (loaded->type != RedisReply::Type::kString) {
      return Error(absl::StatusCode::kInternal, "SCRIPT LOAD", "reply is not a SHA1");
    }
    sha = loaded->str;
    std::lock_guard<std::mutex> script_lock(script.mu_);
    script.sha_ = sha;
    return absl::OkStatus();
  };
  if (sha.empty()) {
    if (absl::Status s = load(); !s.ok()) return s;
  }
  std::vector<std::string> command = {"EVALSHA", sha, absl::StrCat(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  absl::StatusOr<RedisReply> reply = CommandLocked(command);
  if (!reply.ok() && reply.status().code() == absl::StatusCode::kNotFound) {
    // The server forgot the script (restarted, or SCRIPT FLUSH): load it again.
    if (absl::Status s = load(); !s.ok()) return s;
    command[1] = sha;
    reply = CommandLocked(command);
  }
  if (!reply.ok() && reply.status().code() == absl::StatusCode::kFailedPrecondition) {
    return absl::Status(reply.status().code(),
                        absl::StrCat(reply.status().message(), " (script ", sha.substr(0, 12), ")"));
  }
  return reply;
}

absl::Duration RedisClient::RetryDelay() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (context_ != nullptr) return absl::ZeroDuration();
  return std::max(absl::ZeroDuration(), next_attempt_ - clock_->Now());
}

int64_t RedisClient::round_trips() const {
  std::lock_guard<std::mutex> lock(mu_);
  return round_trips_;
}

}  // namespace fanout
