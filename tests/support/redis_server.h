// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// A real redis-server for tests and benchmarks: started on a free loopback
// port with a scratch directory and no persistence (or, when asked, an
// append-only file that survives Restart), ready (answering PING)
// before Start returns, stopped (SIGTERM, then SIGKILL if it lingers) by the
// destructor. Redis cannot listen on port 0, so a free port is found by
// binding port 0 and releasing it; a collision with another process shows up
// as the server exiting at once and is retried on another port.
//
// No GoogleTest here, so benchmarks can use it too: tests skip when Start
// returns NotFound (the binary is missing; scripts/install-deps.sh installs it).

#ifndef FANOUT_TESTS_SUPPORT_REDIS_SERVER_H_
#define FANOUT_TESTS_SUPPORT_REDIS_SERVER_H_

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "fanout/clock.h"
#include "fanout/redis_client.h"
#include "process.h"

namespace fanout::testing {

// The redis-server binary: $FANOUT_REDIS_SERVER, else the first on PATH; ""
// if there is none.
inline std::string FindRedisServer() {
  if (const char* env = getenv("FANOUT_REDIS_SERVER"); env != nullptr && *env != '\0') return env;
  const char* path = getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  dirs += ":/usr/sbin:/usr/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::filesystem::path candidate = std::filesystem::path(dirs.substr(start, end - start)) / "redis-server";
    if (end > start && access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  return "";
}

// A loopback TCP port nothing listened on a moment ago (0 on failure).
inline int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

class RedisServer {
 public:
  // NotFound if redis-server is missing; Unavailable (with the server's log)
  // if it would not start and answer within `ready_within`.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(absl::Duration ready_within = absl::Seconds(10),
                                                            bool appendonly = false) {
    const std::string binary = FindRedisServer();
    if (binary.empty()) {
      return absl::NotFoundError("redis-server is not installed (scripts/install-deps.sh installs it)");
    }
    char dir_template[] = "/tmp/fanout-redis-XXXXXX";
    if (mkdtemp(dir_template) == nullptr) return absl::InternalError("cannot create a scratch directory");
    std::unique_ptr<RedisServer> server(new RedisServer(binary, dir_template));
    server->appendonly_ = appendonly;
    absl::Status status;
    for (int attempt = 0; attempt < 5; ++attempt) {  // another process may take the port first
      server->port_ = FreeLoopbackPort();
      status = server->Launch(ready_within);
      if (status.ok()) return server;
    }
    return status;
  }

  ~RedisServer() {
    Stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Stops the server (SIGTERM; SIGKILL after 5 s). Idempotent.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    WaitFor(pid_, std::chrono::seconds(5));
    pid_ = -1;
  }

  // Stops and starts again on the same port: its data gone, unless started
  // with an append-only file (SIGTERM makes Redis write it out first).
  absl::Status Restart(absl::Duration ready_within = absl::Seconds(10)) {
    Stop();
    return Launch(ready_within);
  }

  int port() const { return port_; }
  std::string url() const { return absl::StrCat("redis://127.0.0.1:", port_); }
  std::string log() const { return ReadFile(dir_ + "/redis.log"); }

 private:
  RedisServer(std::string binary, std::string dir) : binary_(std::move(binary)), dir_(std::move(dir)) {}

  absl::Status Launch(absl::Duration ready_within) {
    if (port_ == 0) return absl::UnavailableError("no free loopback port");
    const std::string log_path = dir_ + "/redis.log";
    pid_ = Spawn({binary_, "--port", absl::StrCat(port_), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                  appendonly_ ? "yes" : "no", "--dir", dir_, "--daemonize", "no", "--logfile", ""},
                 log_path, log_path);
    if (pid_ <= 0) return absl::UnavailableError(absl::StrCat("cannot start ", binary_));
    SystemClock clock;
    const absl::Time deadline = clock.Now() + ready_within;
    while (clock.Now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: most likely the port was taken
        pid_ = -1;
        return absl::UnavailableError(absl::StrCat("redis-server exited on port ", port_, ":\n", log()));
      }
      RedisClientOptions options;
      options.connect_timeout = absl::Milliseconds(200);
      options.command_timeout = absl::Milliseconds(200);
      if (auto client = RedisClient::Connect(url(), &clock, options); client.ok()) {
        if (auto pong = (*client)->Command({"PING"}); pong.ok()) return absl::OkStatus();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    Stop();
    return absl::UnavailableError(absl::StrCat("redis-server on port ", port_, " not ready within ",
                                               absl::FormatDuration(ready_within), ":\n", log()));
  }

  const std::string binary_;
  const std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool appendonly_ = false;
};

}  // namespace fanout::testing

#endif  // FANOUT_TESTS_SUPPORT_REDIS_SERVER_H_
