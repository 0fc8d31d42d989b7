// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// CurlTransport over TLS against a real HTTP/2 server on loopback: nghttpd
// (Debian's nghttp2-server) with a certificate made here by openssl, started
// on a free 127.0.0.1 port and stopped at the end.

#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/io_context.hpp"
#include "fanout/curl_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace fanout {
namespace {

namespace fs = std::filesystem;

// A free loopback port (bound, read, released: the server binds it next).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool Accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

class Http2Server {
 public:
  // Empty if nghttpd or openssl is missing (then the tests are skipped).
  static std::unique_ptr<Http2Server> Start() {
    if (std::system("command -v nghttpd >/dev/null && command -v openssl >/dev/null") != 0) return nullptr;
    auto server = std::unique_ptr<Http2Server>(new Http2Server);
    server->dir_ = fs::path(::testing::TempDir()) / ("fanout_h2_" + std::to_string(getpid()));
    fs::remove_all(server->dir_);
    fs::create_directories(server->dir_ / "htdocs");
    std::ofstream(server->dir_ / "htdocs" / "doc.json") << R"({"hello":"h2"})";
    const std::string make_cert =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
        "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
        (server->dir_ / "key.pem").string() + " -out " + server->cert() + " >/dev/null 2>&1";
    if (std::system(make_cert.c_str()) != 0) return nullptr;
    server->port_ = FreePort();
    const std::string port = std::to_string(server->port_);
    const std::string htdocs = (server->dir_ / "htdocs").string();
    const std::string key = (server->dir_ / "key.pem").string();
    const std::string cert = server->cert();
    std::vector<const char*> argv = {"nghttpd", "-a", "127.0.0.1", "-d", htdocs.c_str(),
                                     port.c_str(), key.c_str(), cert.c_str(), nullptr};
    if (posix_spawnp(&server->pid_, "nghttpd", nullptr, nullptr, const_cast<char**>(argv.data()), environ) != 0) {
      return nullptr;
    }
    for (int i = 0; i < 250 && !Accepts(server->port_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return server;
  }

  ~Http2Server() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string Url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string cert() const { return (dir_ / "cert.pem").string(); }

 private:
  Http2Server() = default;
  fs::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// Sends every URL at once and runs the loop (bounded) until all answered.
std::vector<absl::StatusOr<Response>> FetchAll(CurlTransportOptions options, const std::vector<std::string>& urls) {
  boost::asio::io_context io;
  auto transport = CurlTransport::Create(io, options);
  EXPECT_TRUE(transport.ok()) << transport.status();
  std::vector<absl::StatusOr<Response>> results(urls.size(), absl::UnknownError("no answer"));
  size_t answered = 0;
  for (size_t i = 0; i < urls.size(); ++i) {
    (*transport)->Send(Request{.url = urls[i]}, [&, i](absl::StatusOr<Response> r) {
      results[i] = std::move(r);
      ++answered;
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (answered < urls.size() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(answered, urls.size()) << "timed out";
  return results;
}

class CurlTransportTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = Http2Server::Start();
    if (server_ == nullptr) GTEST_SKIP() << "nghttpd or openssl not installed (scripts/install-deps.sh installs them)";
  }
  std::unique_ptr<Http2Server> server_;
};

TEST_F(CurlTransportTlsTest, SpeaksHttp2OverTlsOnOneConnection) {
  CurlTransportOptions options;
  options.ca_file = server_->cert();
  options.max_connections_per_host = 1;  // all 40 must share one connection
  std::vector<std::string> urls(40, server_->Url("/doc.json"));
  for (const auto& result : FetchAll(options, urls)) {
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->status, 200);
    EXPECT_EQ(result->body, R"({"hello":"h2"})");
    EXPECT_EQ(result->http_version, 20);
  }
}

TEST_F(CurlTransportTlsTest, VerifiesThePeerByDefault) {
  // The certificate is self-signed: without it as the CA, the handshake fails.
  auto results = FetchAll(CurlTransportOptions{}, {server_->Url("/doc.json")});
  ASSERT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].status().code(), absl::StatusCode::kUnavailable) << results[0].status();
  // Turning verification off is possible, and explicit.
  CurlTransportOptions insecure;
  insecure.verify_tls = false;
  auto unverified = FetchAll(insecure, {server_->Url("/doc.json")});
  ASSERT_TRUE(unverified[0].ok()) << unverified[0].status();
  EXPECT_EQ(unverified[0]->status, 200);
}

TEST_F(CurlTransportTlsTest, Http2CanBeTurnedOff) {
  // nghttpd speaks only HTTP/2: a transport told not to use it must not end
  // up on HTTP/2 anyway, so the exchange fails rather than succeeding as h2.
  CurlTransportOptions options;
  options.ca_file = server_->cert();
  options.http2 = false;
  auto results = FetchAll(options, {server_->Url("/doc.json")});
  EXPECT_TRUE(!results[0].ok() || results[0]->http_version != 20) << "answered over HTTP/2";
}

}  // namespace
}  // namespace fanout
