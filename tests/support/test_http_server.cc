// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "test_http_server.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_format.h"

namespace fanout::testing {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

// ---------------------------------------------------------------------------
// Gzip (RFC 1951 fixed-Huffman block in an RFC 1952 member).

// Deflate writes values LSB-first, Huffman codes MSB-first.
class BitWriter {
 public:
  void Bits(uint32_t value, int count) {
    pending_ |= value << filled_;
    filled_ += count;
    while (filled_ >= 8) {
      out_.push_back(static_cast<char>(pending_ & 0xff));
      pending_ >>= 8;
      filled_ -= 8;
    }
  }
  void Code(uint32_t code, int length) {
    uint32_t reversed = 0;
    for (int i = 0; i < length; ++i) reversed = (reversed << 1) | ((code >> i) & 1);
    Bits(reversed, length);
  }
  void Literal(unsigned char byte) {
    if (byte < 144) {
      Code(0x30 + byte, 8);
    } else {
      Code(0x190 + (byte - 144), 9);
    }
  }
  // Length 258 (symbol 285, no extra bits), distance 1 (code 0).
  void RepeatPrevious258() {
    Code(0xC0 + (285 - 280), 8);
    Code(0, 5);
  }
  void EndOfBlock() { Code(0, 7); }
  std::string Finish() {
    if (filled_ > 0) out_.push_back(static_cast<char>(pending_ & 0xff));
    pending_ = 0;
    filled_ = 0;
    return std::move(out_);
  }

 private:
  std::string out_;
  uint32_t pending_ = 0;
  int filled_ = 0;
};

uint32_t Crc32(std::string_view data) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return table;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (const char ch : data) crc = kTable[(crc ^ static_cast<unsigned char>(ch)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

void AppendLittleEndian32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

std::string GzipForTest(std::string_view data) {
  BitWriter bits;
  bits.Bits(1, 1);  // BFINAL
  bits.Bits(1, 2);  // BTYPE 01: fixed Huffman
  size_t i = 0;
  while (i < data.size()) {
    const unsigned char byte = static_cast<unsigned char>(data[i]);
    size_t run = 1;
    while (i + run < data.size() && data[i + run] == data[i]) ++run;
    bits.Literal(byte);
    size_t rest = run - 1;
    for (; rest >= 258; rest -= 258) bits.RepeatPrevious258();
    for (; rest > 0; --rest) bits.Literal(byte);
    i += run;
  }
  bits.EndOfBlock();
  std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
  out += bits.Finish();
  AppendLittleEndian32(out, Crc32(data));
  AppendLittleEndian32(out, static_cast<uint32_t>(data.size()));
  return out;
}

// ---------------------------------------------------------------------------
// Server.

struct TestHttpServer::State {
  asio::io_context io;
  tcp::acceptor acceptor{io};  // after io: destroyed first
  std::thread thread;
  uint16_t port = 0;
  std::atomic<int64_t> connections{0};
  std::atomic<int64_t> received{0};
  mutable std::mutex mu;
  std::map<std::string, Handler, std::less<>> routes;  // guarded by mu
  std::vector<ServerRequest> requests;                 // guarded by mu

  void Accept();
  Reply Handle(const ServerRequest& request);
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, TestHttpServer::State* state)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), state_(state) {}

  void Read() {
    request_ = {};
    http::async_read(socket_, buffer_, request_,
                     [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                       self->OnRead(ec);
                     });
  }

 private:
  void OnRead(const boost::system::error_code& ec) {
    timer_.cancel();  // an idle close armed after the last response
    if (ec) {
      Close();
      return;
    }
    ServerRequest request;
    request.method = std::string(request_.method_string());
    request.target = std::string(request_.target());
    for (const auto& field : request_) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    Reply reply = state_->Handle(request);
    if (reply.delay > absl::ZeroDuration()) {
      timer_.expires_after(absl::ToChronoNanoseconds(reply.delay));
      timer_.async_wait([self = shared_from_this(), reply = std::move(reply)](
                            const boost::system::error_code& wait_ec) mutable {
        if (!wait_ec) self->Act(std::move(reply));
      });
      return;
    }
    Act(std::move(reply));
  }

  void Act(Reply reply) {
    boost::system::error_code ignored;
    switch (reply.action) {
      case Reply::Action::kReset:
        socket_.set_option(asio::socket_base::linger(true, 0), ignored);
        socket_.close(ignored);
        return;
      case Reply::Action::kCloseWithoutResponse:
        Close();
        return;
      case Reply::Action::kRespond:
        break;
    }
    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(reply.status));
    for (const auto& [name, value] : reply.headers) response_.insert(name, value);
    if (reply.gzip) {
      response_.set(http::field::content_encoding, "gzip");
      response_.body() = GzipForTest(reply.body);
    } else {
      response_.body() = std::move(reply.body);
    }
    response_.keep_alive(request_.keep_alive() && !reply.close);
    if (reply.chunked) {
      response_.chunked(true);
    } else {
      response_.prepare_payload();
    }
    http::async_write(socket_, response_,
                      [self = shared_from_this(), idle_close = reply.idle_close](
                          const boost::system::error_code& write_ec, size_t) {
                        if (write_ec || !self->response_.keep_alive()) {
                          self->Close();
                          return;
                        }
                        self->Read();
                        if (idle_close != absl::InfiniteDuration()) {
                          self->timer_.expires_after(absl::ToChronoNanoseconds(idle_close));
                          self->timer_.async_wait([self](const boost::system::error_code& wait_ec) {
                            if (!wait_ec) self->Close();
                          });
                        }
                      });
  }

  void Close() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  TestHttpServer::State* state_;
  boost::beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

void TestHttpServer::State::Accept() {
  acceptor.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      connections.fetch_add(1, std::memory_order_relaxed);
      std::make_shared<Session>(std::move(socket), this)->Read();
    }
    Accept();
  });
}

Reply TestHttpServer::State::Handle(const ServerRequest& request) {
  received.fetch_add(1, std::memory_order_relaxed);
  const std::string_view target = request.target;
  const std::string_view path = target.substr(0, target.find('?'));
  Handler handler;
  {
    std::lock_guard<std::mutex> lock(mu);
    requests.push_back(request);
    if (auto it = routes.find(path); it != routes.end()) handler = it->second;
  }
  if (!handler) {
    Reply reply;
    reply.status = 404;
    reply.body = "no route";
    return reply;
  }
  return handler(request);
}

TestHttpServer::TestHttpServer() : state_(std::make_unique<State>()) {
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  state_->acceptor.open(endpoint.protocol());
  state_->acceptor.set_option(asio::socket_base::reuse_address(true));
  state_->acceptor.bind(endpoint);
  state_->acceptor.listen(asio::socket_base::max_listen_connections);
  state_->port = state_->acceptor.local_endpoint().port();
  state_->Accept();
  state_->thread = std::thread([state = state_.get()] { state->io.run(); });
}

TestHttpServer::~TestHttpServer() {
  state_->io.stop();
  state_->thread.join();
  // ~State closes the acceptor, then ~io_context destroys pending handlers and
  // with them every session and its socket.
}

void TestHttpServer::Route(std::string path, Handler handler) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->routes[std::move(path)] = std::move(handler);
}

void TestHttpServer::Route(std::string path, Reply reply) {
  Route(std::move(path), [reply = std::move(reply)](const ServerRequest&) { return reply; });
}

uint16_t TestHttpServer::port() const { return state_->port; }

std::string TestHttpServer::Url(std::string_view path) const {
  return absl::StrFormat("http://127.0.0.1:%d%s", state_->port, path);
}

int64_t TestHttpServer::connections_accepted() const {
  return state_->connections.load(std::memory_order_relaxed);
}

int64_t TestHttpServer::requests_received() const {
  return state_->received.load(std::memory_order_relaxed);
}

std::vector<ServerRequest> TestHttpServer::requests() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->requests;
}

}  // namespace fanout::testing
