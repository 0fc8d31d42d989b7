// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// CurlTransport against TestHttpServer on loopback. Every wait is bounded
// (RunUntil), so a hang fails the test instead of stalling the suite.

#include "fanout/curl_transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "fanout/transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/test_http_server.h"

namespace fanout {
namespace {

namespace asio = boost::asio;
using ::fanout::testing::GzipForTest;
using ::fanout::testing::Reply;
using ::fanout::testing::ServerRequest;
using ::fanout::testing::TestHttpServer;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr auto kCap = std::chrono::seconds(30);  // no test should get near this

// Runs `io` until `done()` or kCap; returns done(). Adds the number of
// handlers run to `*handlers` if given.
template <typename Pred>
bool RunUntil(asio::io_context& io, Pred done, size_t* handlers = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + kCap;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    const size_t ran = io.run_for(std::chrono::milliseconds(5));
    if (handlers != nullptr) *handlers += ran;
  }
  return done();
}

Request Get(std::string url) {
  Request request;
  request.url = std::move(url);
  return request;
}

int CountHeader(const Headers& headers, std::string_view name) {
  int n = 0;
  for (const auto& [key, value] : headers) {
    if (absl::AsciiStrToLower(key) == absl::AsciiStrToLower(std::string(name))) ++n;
  }
  return n;
}

// A port nothing listens on: bound, then closed.
uint16_t ClosedPort() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

class CurlTransportTest : public ::testing::Test {
 protected:
  std::unique_ptr<CurlTransport> Make(CurlTransportOptions options = {}) {
    auto transport = CurlTransport::Create(io_, std::move(options));
    EXPECT_TRUE(transport.ok()) << transport.status();
    return transport.ok() ? std::move(*transport) : nullptr;
  }

  // Sends one request and runs the loop until it is called back.
  absl::StatusOr<Response> Fetch(CurlTransport& transport, Request request) {
    std::optional<absl::StatusOr<Response>> result;
    transport.Send(std::move(request),
                   [&result](absl::StatusOr<Response> r) { result = std::move(r); });
    if (!RunUntil(io_, [&] { return result.has_value(); })) {
      return absl::UnknownError("TEST: no callback within the cap");
    }
    return *std::move(result);
  }

  asio::io_context io_;
  TestHttpServer server_;
};

TEST(FindHeaderTest, IsCaseInsensitiveAndReturnsTheFirstMatch) {
  const Headers headers = {{"Content-Type", "text/plain"}, {"X-A", "1"}, {"x-a", "2"}};
  EXPECT_EQ(FindHeader(headers, "content-type"), "text/plain");
  EXPECT_EQ(FindHeader(headers, "X-A"), "1");
  EXPECT_EQ(FindHeader(headers, "x-b"), std::nullopt);
  EXPECT_EQ(FindHeader({}, "x"), std::nullopt);
}

TEST(CurlTransportCreateTest, RejectsBadOptionsNamingFieldAndValue) {
  struct Case {
    void (*mutate)(CurlTransportOptions&);
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](CurlTransportOptions& o) { o.connect_timeout = absl::ZeroDuration(); },
       "connect_timeout must be positive and finite, got 0"},
      {[](CurlTransportOptions& o) { o.total_timeout = -absl::Seconds(1); },
       "total_timeout must be positive and finite, got -1s"},
      {[](CurlTransportOptions& o) { o.total_timeout = absl::InfiniteDuration(); },
       "total_timeout must be positive and finite, got inf"},
      {[](CurlTransportOptions& o) { o.max_response_bytes = 0; },
       "max_response_bytes must be >= 1, got 0"},
      {[](CurlTransportOptions& o) { o.max_redirects = -1; },
       "curl transport: max_redirects must be in [0, 50], got -1"},
      {[](CurlTransportOptions& o) { o.max_redirects = 51; }, "max_redirects must be in [0, 50], got 51"},
      {[](CurlTransportOptions& o) { o.max_connections_per_host = 0; },
       "max_connections_per_host must be >= 1, got 0"},
      {[](CurlTransportOptions& o) { o.max_total_connections = -2; },
       "max_total_connections must be >= 0 (0 = no cap), got -2"},
      {[](CurlTransportOptions& o) { o.user_agent = "a\r\nb"; }, "user_agent contains CR, LF or NUL"},
      {[](CurlTransportOptions& o) { o.default_headers = {{"Bad Name", "v"}}; },
       "header name \"Bad Name\" is not a valid HTTP token"},
      {[](CurlTransportOptions& o) { o.default_headers = {{"X-Key", "secret\r\nInjected: 1"}}; },
       "value of header \"X-Key\" contains CR, LF or NUL"},
  };
  asio::io_context io;
  for (const Case& c : cases) {
    CurlTransportOptions options;
    c.mutate(options);
    auto transport = CurlTransport::Create(io, options);
    ASSERT_FALSE(transport.ok()) << c.message;
    EXPECT_EQ(transport.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(transport.status().message()), HasSubstr(c.message));
    EXPECT_THAT(std::string(transport.status().message()), Not(HasSubstr("secret")));
  }
  EXPECT_TRUE(CurlTransport::Create(io, {}).ok());
}

TEST_F(CurlTransportTest, GetReturnsStatusHeadersBodyAndUrl) {
  Reply reply;
  reply.headers = {{"Content-Type", "text/plain"}, {"X-Test", "yes"}};
  reply.body = "hello world";
  server_.Route("/hello", reply);
  auto transport = Make();
  auto response = Fetch(*transport, Get(server_.Url("/hello?x=1")));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello world");
  EXPECT_EQ(FindHeader(response->headers, "x-test"), "yes");
  EXPECT_EQ(FindHeader(response->headers, "content-type"), "text/plain");
  EXPECT_EQ(FindHeader(response->headers, "content-length"), "11");
  EXPECT_EQ(response->url, server_.Url("/hello?x=1"));
  EXPECT_EQ(response->wire_bytes, 11);
  EXPECT_GT(response->elapsed, absl::ZeroDuration());
  EXPECT_EQ(transport->in_flight(), 0);
  ASSERT_EQ(server_.requests().size(), 1u);
  EXPECT_EQ(server_.requests()[0].method, "GET");
  EXPECT_EQ(server_.requests()[0].target, "/hello?x=1");
}

TEST_F(CurlTransportTest, ErrorStatusesAreResponsesNotErrors) {
  Reply unavailable;
  unavailable.status = 503;
  unavailable.headers = {{"Retry-After", "7"}};
  unavailable.body = "busy";
  server_.Route("/busy", unavailable);
  auto transport = Make();

  auto missing = Fetch(*transport, Get(server_.Url("/nothing-here")));
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, "no route");

  auto busy = Fetch(*transport, Get(server_.Url("/busy")));
  ASSERT_TRUE(busy.ok()) << busy.status();
  EXPECT_EQ(busy->status, 503);
  EXPECT_EQ(FindHeader(busy->headers, "retry-after"), "7");
  EXPECT_EQ(busy->body, "busy");
}

TEST_F(CurlTransportTest, SendsDefaultHeadersReplacedByPerRequestOnes) {
  server_.Route("/h", Reply{});
  CurlTransportOptions options;
  options.default_headers = {{"X-Default", "d"}, {"X-Replace", "from-default"}};
  auto transport = Make(options);
  Request request = Get(server_.Url("/h"));
  request.headers = {{"x-replace", "from-request"}, {"X-Empty", ""}};
  request.method = "DELETE";
  auto response = Fetch(*transport, request);
  ASSERT_TRUE(response.ok()) << response.status();

  ASSERT_EQ(server_.requests().size(), 1u);
  const ServerRequest seen = server_.requests()[0];
  EXPECT_EQ(seen.method, "DELETE");
  EXPECT_EQ(FindHeader(seen.headers, "X-Default"), "d");
  EXPECT_EQ(FindHeader(seen.headers, "X-Replace"), "from-request");
  EXPECT_EQ(CountHeader(seen.headers, "X-Replace"), 1);
  EXPECT_EQ(FindHeader(seen.headers, "X-Empty"), "");
  EXPECT_THAT(std::string(FindHeader(seen.headers, "User-Agent").value_or("")),
              StartsWith("fanout/"));
  EXPECT_THAT(std::string(FindHeader(seen.headers, "Accept-Encoding").value_or("")),
              AllOf(HasSubstr("gzip"), HasSubstr("br")));

  // Defaults alone, and a configured User-Agent.
  CurlTransportOptions custom;
  custom.user_agent = "crawler/2";
  custom.accept_encoding = "";
  custom.default_headers = {{"X-Default", "d"}};
  auto other = Make(custom);
  ASSERT_TRUE(Fetch(*other, Get(server_.Url("/h"))).ok());
  ASSERT_EQ(server_.requests().size(), 2u);
  const ServerRequest second = server_.requests()[1];
  EXPECT_EQ(second.method, "GET");
  EXPECT_EQ(FindHeader(second.headers, "User-Agent"), "crawler/2");
  EXPECT_EQ(FindHeader(second.headers, "X-Default"), "d");
  EXPECT_EQ(FindHeader(second.headers, "Accept-Encoding"), std::nullopt);

  // A User-Agent among the default headers, or a request's, replaces the
  // configured one: one User-Agent is sent, never two.
  CurlTransportOptions named;
  named.default_headers = {{"user-agent", "from-defaults/1"}};
  auto third = Make(named);
  ASSERT_TRUE(Fetch(*third, Get(server_.Url("/h"))).ok());
  Request own = Get(server_.Url("/h"));
  own.headers = {{"User-Agent", "from-request/1"}};
  ASSERT_TRUE(Fetch(*transport, own).ok());
  ASSERT_EQ(server_.requests().size(), 4u);
  EXPECT_EQ(FindHeader(server_.requests()[2].headers, "User-Agent"), "from-defaults/1");
  EXPECT_EQ(CountHeader(server_.requests()[2].headers, "User-Agent"), 1);
  EXPECT_EQ(FindHeader(server_.requests()[3].headers, "User-Agent"), "from-request/1");
  EXPECT_EQ(CountHeader(server_.requests()[3].headers, "User-Agent"), 1);
}

TEST_F(CurlTransportTest, ConnectionRefusedIsUnavailable) {
  const uint16_t port = ClosedPort();
  auto transport = Make();
  const std::string url = absl::StrFormat("http://127.0.0.1:%d/x", port);
  auto response = Fetch(*transport, Get(url));
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
  EXPECT_THAT(std::string(response.status().message()),
              StartsWith(absl::StrCat("GET ", url, ": connection failed: ")));
}

TEST_F(CurlTransportTest, SlowServerIsDeadlineExceeded) {
  Reply slow;
  slow.delay = absl::Seconds(20);
  server_.Route("/slow", slow);

  // Per-request timeout overrides the (long) transport one.
  auto transport = Make();
  Request request = Get(server_.Url("/slow"));
  request.timeout = absl::Milliseconds(200);
  const auto start = std::chrono::steady_clock::now();
  auto response = Fetch(*transport, request);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded) << response.status();
  EXPECT_THAT(std::string(response.status().message()),
              StartsWith(absl::StrCat("GET ", server_.Url("/slow"), ": timed out")));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));

  // The transport's total_timeout.
  CurlTransportOptions options;
  options.total_timeout = absl::Milliseconds(200);
  auto short_timeout = Make(options);
  auto second = Fetch(*short_timeout, Get(server_.Url("/slow")));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kDeadlineExceeded) << second.status();
}

TEST_F(CurlTransportTest, ResetOrCloseWithoutResponseIsUnavailable) {
  Reply reset;
  reset.action = Reply::Action::kReset;
  server_.Route("/reset", reset);
  Reply close;
  close.action = Reply::Action::kCloseWithoutResponse;
  server_.Route("/close", close);
  auto transport = Make();

  auto a = Fetch(*transport, Get(server_.Url("/reset")));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kUnavailable) << a.status();
  EXPECT_THAT(std::string(a.status().message()), StartsWith("GET " + server_.Url("/reset") + ": "));
  auto b = Fetch(*transport, Get(server_.Url("/close")));
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnavailable) << b.status();
}

TEST_F(CurlTransportTest, FollowsRedirectsUpToTheLimit) {
  Reply end;
  end.body = "end";
  end.headers = {{"X-Hop", "0"}};
  server_.Route("/r0", end);
  for (int i = 1; i <= 5; ++i) {
    Reply hop;
    hop.status = 302;
    hop.headers = {{"Location", absl::StrCat("/r", i - 1)}, {"X-Hop", absl::StrCat(i)}};
    server_.Route(absl::StrCat("/r", i), hop);
  }
  CurlTransportOptions options;
  options.max_redirects = 3;
  auto transport = Make(options);

  auto followed = Fetch(*transport, Get(server_.Url("/r3")));
  ASSERT_TRUE(followed.ok()) << followed.status();
  EXPECT_EQ(followed->status, 200);
  EXPECT_EQ(followed->body, "end");
  EXPECT_EQ(followed->url, server_.Url("/r0"));
  // Headers of the final response only.
  EXPECT_EQ(CountHeader(followed->headers, "X-Hop"), 1);
  EXPECT_EQ(FindHeader(followed->headers, "X-Hop"), "0");
  EXPECT_EQ(FindHeader(followed->headers, "Location"), std::nullopt);
  // Each hop was a request the upstream saw.
  EXPECT_EQ(followed->requests_sent, 4);
  EXPECT_EQ(RequestsSent(followed), 4);

  auto too_many = Fetch(*transport, Get(server_.Url("/r4")));
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kFailedPrecondition) << too_many.status();
  EXPECT_EQ(RequestsSent(too_many), 4) << "the original and three redirects went out";
  EXPECT_THAT(std::string(too_many.status().message()),
              StartsWith(absl::StrCat("GET ", server_.Url("/r4"), ": too many redirects")));

  // 0 = do not follow: the redirect is the response.
  CurlTransportOptions no_follow;
  no_follow.max_redirects = 0;
  auto plain = Make(no_follow);
  auto redirect = Fetch(*plain, Get(server_.Url("/r1")));
  ASSERT_TRUE(redirect.ok()) << redirect.status();
  EXPECT_EQ(redirect->status, 302);
  EXPECT_EQ(redirect->requests_sent, 1);
  EXPECT_EQ(FindHeader(redirect->headers, "Location"), "/r0");
}

TEST_F(CurlTransportTest, RedirectToAnotherSchemeIsFailedPrecondition) {
  Reply to_ftp;
  to_ftp.status = 301;
  to_ftp.headers = {{"Location", "ftp://127.0.0.1/file"}};
  server_.Route("/ftp", to_ftp);
  auto transport = Make();
  auto response = Fetch(*transport, Get(server_.Url("/ftp")));
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kFailedPrecondition) << response.status();
}

TEST_F(CurlTransportTest, NonHttpOrMalformedUrlsAreInvalidArgumentWithoutSending) {
  auto transport = Make();
  for (const std::string url : {"ftp://127.0.0.1/x", "file:///etc/passwd", "not a url", "",
                                "http://", "http://exa mple.com/", "/relative/path"}) {
    bool in_send = true;
    std::optional<absl::StatusOr<Response>> result;
    transport->Send(Get(url), [&](absl::StatusOr<Response> r) {
      EXPECT_FALSE(in_send) << "called back from inside Send";
      result = std::move(r);
    });
    in_send = false;
    EXPECT_FALSE(result.has_value());
    EXPECT_EQ(transport->in_flight(), 1);
    ASSERT_TRUE(RunUntil(io_, [&] { return result.has_value(); })) << url;
    ASSERT_FALSE(result->ok()) << url;
    EXPECT_EQ(result->status().code(), absl::StatusCode::kInvalidArgument) << result->status();
    EXPECT_EQ(RequestsSent(*result), 0) << "refused before anything was sent";
    EXPECT_THAT(std::string(result->status().message()), StartsWith(absl::StrCat("GET ", url, ": ")));
    EXPECT_EQ(transport->in_flight(), 0);
  }
  EXPECT_EQ(server_.requests_received(), 0);
}

TEST_F(CurlTransportTest, InvalidMethodOrHeaderIsInvalidArgument) {
  auto transport = Make();
  Request bad_method = Get(server_.Url("/x"));
  bad_method.method = "GET /other";
  auto a = Fetch(*transport, bad_method);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << a.status();

  Request bad_header = Get(server_.Url("/x"));
  bad_header.headers = {{"Authorization", "Bearer abc\r\nX-Injected: 1"}};
  auto b = Fetch(*transport, bad_header);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << b.status();
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("\"Authorization\""));
  EXPECT_THAT(std::string(b.status().message()), Not(HasSubstr("Bearer")));
  EXPECT_EQ(server_.requests_received(), 0);
}

TEST_F(CurlTransportTest, BodyOverTheCapIsResourceExhausted) {
  Reply big;
  big.body = std::string(5000, 'x');
  server_.Route("/big", big);
  Reply big_chunked = big;
  big_chunked.chunked = true;
  server_.Route("/big-chunked", big_chunked);
  Reply fits;
  fits.body = std::string(1000, 'y');
  server_.Route("/fits", fits);

  CurlTransportOptions options;
  options.max_response_bytes = 1000;
  auto transport = Make(options);
  for (const char* path : {"/big", "/big-chunked"}) {
    auto response = Fetch(*transport, Get(server_.Url(path)));
    ASSERT_FALSE(response.ok()) << path;
    EXPECT_EQ(response.status().code(), absl::StatusCode::kResourceExhausted) << response.status();
    EXPECT_THAT(std::string(response.status().message()),
                AllOf(StartsWith(absl::StrCat("GET ", server_.Url(path), ": ")),
                      HasSubstr("max_response_bytes (1000)")));
  }
  auto exactly = Fetch(*transport, Get(server_.Url("/fits")));
  ASSERT_TRUE(exactly.ok()) << exactly.status();
  EXPECT_EQ(exactly->body.size(), 1000u);
}

TEST_F(CurlTransportTest, GzipBodyIsDecodedAndWireBytesAreCompressed) {
  std::string text;
  for (int i = 0; i < 500; ++i) absl::StrAppend(&text, "line ", i, ": ", std::string(300, 'a'), "\n");
  Reply reply;
  reply.body = text;
  reply.gzip = true;
  server_.Route("/gz", reply);
  auto transport = Make();
  auto response = Fetch(*transport, Get(server_.Url("/gz")));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(FindHeader(response->headers, "Content-Encoding"), "gzip");
  EXPECT_EQ(response->body, text);
  const int64_t compressed = static_cast<int64_t>(GzipForTest(text).size());
  EXPECT_LT(compressed, static_cast<int64_t>(text.size()));
  EXPECT_EQ(response->wire_bytes, compressed);

  // Chunked: wire_bytes counts the body without the chunk framing.
  reply.chunked = true;
  server_.Route("/gz-chunked", reply);
  auto chunked = Fetch(*transport, Get(server_.Url("/gz-chunked")));
  ASSERT_TRUE(chunked.ok()) << chunked.status();
  EXPECT_EQ(chunked->body, text);
  EXPECT_EQ(chunked->wire_bytes, compressed);
}

TEST_F(CurlTransportTest, GzipBombIsStoppedByTheDecodedCap) {
  const std::string bomb = GzipForTest(std::string(size_t{16} << 20, 'a'));  // ~100 KB -> 16 MiB
  Reply reply;
  reply.headers = {{"Content-Encoding", "gzip"}};
  reply.body = bomb;
  server_.Route("/bomb", reply);
  CurlTransportOptions options;
  options.max_response_bytes = 256 << 10;
  ASSERT_LT(static_cast<int64_t>(bomb.size()), options.max_response_bytes);
  auto transport = Make(options);
  auto response = Fetch(*transport, Get(server_.Url("/bomb")));
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kResourceExhausted) << response.status();
  EXPECT_THAT(std::string(response.status().message()), HasSubstr("after decoding"));
}

TEST_F(CurlTransportTest, RawCapHoldsWhenTheDecodedBodyFits) {
  // Bytes >= 144 with no runs: each is a 9-bit literal, so the gzip encoding
  // is ~12% larger than the data.
  std::string data;
  for (int i = 0; i < 95000; ++i) data.push_back(static_cast<char>(144 + i % 100));
  Reply reply;
  reply.headers = {{"Content-Encoding", "gzip"}};
  reply.body = GzipForTest(data);
  server_.Route("/expanding", reply);
  reply.chunked = true;  // no Content-Length: caught while streaming
  server_.Route("/expanding-chunked", reply);
  CurlTransportOptions options;
  options.max_response_bytes = 100000;
  ASSERT_GT(static_cast<int64_t>(reply.body.size()), options.max_response_bytes);
  auto transport = Make(options);
  for (const char* path : {"/expanding", "/expanding-chunked"}) {
    auto response = Fetch(*transport, Get(server_.Url(path)));
    ASSERT_FALSE(response.ok()) << path;
    EXPECT_EQ(response.status().code(), absl::StatusCode::kResourceExhausted) << response.status();
    EXPECT_THAT(std::string(response.status().message()), HasSubstr("as received")) << path;
  }
}

TEST_F(CurlTransportTest, ConcurrentRequestsCompleteOverBoundedConnections) {
  server_.Route("/item", [](const ServerRequest& request) {
    Reply reply;
    reply.body = request.target;
    return reply;
  });
  CurlTransportOptions options;
  options.max_connections_per_host = 4;
  auto transport = Make(options);
  constexpr int kRequests = 200;
  int done = 0;
  int ok = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRequests; ++i) {
    const std::string target = absl::StrCat("/item?i=", i);
    transport->Send(Get(server_.Url(target)), [&, target](absl::StatusOr<Response> r) {
      ++done;
      if (r.ok() && r->status == 200 && r->body == target) ++ok;
    });
  }
  EXPECT_EQ(transport->in_flight(), kRequests);
  ASSERT_TRUE(RunUntil(io_, [&] { return done == kRequests; }));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(ok, kRequests);
  EXPECT_EQ(transport->in_flight(), 0);
  EXPECT_GE(server_.connections_accepted(), 1);
  EXPECT_LE(server_.connections_accepted(), options.max_connections_per_host);
  std::printf("[ info ] %d requests over %lld connections in %.3f s (%.0f requests/s)\n",
              kRequests, static_cast<long long>(server_.connections_accepted()), seconds,
              kRequests / seconds);
}

TEST_F(CurlTransportTest, ResolvesHostNames) {
  server_.Route("/a", Reply{});
  auto transport = Make();
  auto response = Fetch(*transport, Get(absl::StrFormat("http://localhost:%d/a", server_.port())));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
}

TEST_F(CurlTransportTest, SequentialRequestsReuseOneConnection) {
  server_.Route("/a", Reply{});
  auto transport = Make();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Fetch(*transport, Get(server_.Url("/a"))).ok());
  EXPECT_EQ(server_.connections_accepted(), 1);
  EXPECT_EQ(server_.requests_received(), 5);
}

// A server that drops an idle keep-alive connection: while the connection is
// parked in curl's cache its descriptor stays watched, so the server's FIN
// is an event; it must cost one event (the descriptor is then unwatched), not
// a loop that wakes for it again and again while another request waits.
TEST_F(CurlTransportTest, AServerClosingAParkedConnectionCostsOneEventNotABusyLoop) {
  Reply dropped;
  dropped.idle_close = absl::Milliseconds(20);
  server_.Route("/dropped", dropped);
  Reply slow;
  slow.delay = absl::Milliseconds(400);
  server_.Route("/slow", slow);
  auto transport = Make();

  std::optional<absl::StatusOr<Response>> slow_result;
  transport->Send(Get(server_.Url("/slow")),
                  [&](absl::StatusOr<Response> r) { slow_result = std::move(r); });
  auto first = Fetch(*transport, Get(server_.Url("/dropped")));  // a second connection
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_FALSE(slow_result.has_value());
  // The server closes the parked connection 20 ms later, while /slow waits.
  size_t handlers = 0;
  ASSERT_TRUE(RunUntil(io_, [&] { return slow_result.has_value(); }, &handlers));
  ASSERT_TRUE(slow_result->ok()) << slow_result->status();
  // A few dozen at most (the 5 ms slices, curl's timers); a busy loop on the
  // closed connection would run tens of thousands in 400 ms.
  EXPECT_LT(handlers, 500u);
  // The dead connection is never used again: the next request goes out on
  // the one /slow used.
  auto second = Fetch(*transport, Get(server_.Url("/dropped")));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(server_.connections_accepted(), 2);
}

// Every connection is closed after its response ("Connection: close"), so
// descriptors are closed and their numbers reused all the time, some while
// others are watched.
TEST_F(CurlTransportTest, ConnectionsClosedAfterEveryResponseLoseNothing) {
  server_.Route("/item", [](const ServerRequest& request) {
    Reply reply;
    reply.body = request.target;
    reply.close = true;
    return reply;
  });
  CurlTransportOptions options;
  options.max_connections_per_host = 4;
  auto transport = Make(options);
  constexpr int kRequests = 300;
  int done = 0, ok = 0, sent = 0;
  std::function<void()> send_one = [&] {
    const std::string target = absl::StrCat("/item?i=", sent++);
    transport->Send(Get(server_.Url(target)), [&, target](absl::StatusOr<Response> r) {
      ++done;
      if (r.ok() && r->status == 200 && r->body == target) {
        ++ok;
      } else {
        ADD_FAILURE() << target << ": "
                      << (r.ok() ? absl::StrCat(r->status, " ", r->body) : r.status().ToString());
      }
      if (sent < kRequests) send_one();
    });
  };
  for (int i = 0; i < 8; ++i) send_one();
  ASSERT_TRUE(RunUntil(io_, [&] { return done == kRequests; }));
  EXPECT_EQ(ok, kRequests);
  EXPECT_EQ(server_.connections_accepted(), kRequests);
}

// Nothing is left waiting in the io_context once no request is in flight, so
// a host's io_context::run() returns when its work is done.
TEST_F(CurlTransportTest, TheLoopRunsOutOfWorkWhenNothingIsInFlight) {
  server_.Route("/a", Reply{});
  auto transport = Make();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Fetch(*transport, Get(server_.Url("/a"))).ok());
  io_.restart();
  io_.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(io_.stopped());  // ran out of work, well before the 10 s
  EXPECT_EQ(server_.connections_accepted(), 1);  // and the connection is still reused
  ASSERT_TRUE(Fetch(*transport, Get(server_.Url("/a"))).ok());
  EXPECT_EQ(server_.connections_accepted(), 1);
}

// A host's child processes never inherit the transport's connections.
TEST_F(CurlTransportTest, ConnectionsAreCloseOnExec) {
  server_.Route("/a", Reply{});
  auto transport = Make();
  ASSERT_TRUE(Fetch(*transport, Get(server_.Url("/a"))).ok());  // parked, still open
  int connections = 0;
  for (int fd = 0; fd < 4096; ++fd) {
    sockaddr_in peer{};
    socklen_t length = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0) continue;
    if (peer.sin_family != AF_INET || ntohs(peer.sin_port) != server_.port()) continue;
    sockaddr_in local{};
    length = sizeof local;
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length), 0);
    if (ntohs(local.sin_port) == server_.port()) continue;  // the server's own side
    ++connections;
    EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0) << "descriptor " << fd;
  }
  EXPECT_EQ(connections, 1);
}

// A proxy in the environment is used, as libcurl reads it; a transport
// created while none was set goes straight to the host.
TEST_F(CurlTransportTest, UsesAProxyFromTheEnvironment) {
  server_.Route("/direct", Reply{});
  Reply proxied;
  proxied.body = "via proxy";
  server_.Route("http://upstream.invalid/x", proxied);  // an absolute-form target
  auto direct = Make();
  ASSERT_EQ(setenv("http_proxy", server_.Url("").c_str(), 1), 0);
  auto via_proxy = Make();
  auto response = Fetch(*via_proxy, Get("http://upstream.invalid/x"));
  auto straight = Fetch(*direct, Get(server_.Url("/direct")));
  ASSERT_EQ(unsetenv("http_proxy"), 0);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "via proxy");
  ASSERT_TRUE(straight.ok()) << straight.status();
  ASSERT_EQ(server_.requests().size(), 2u);
  EXPECT_EQ(server_.requests()[0].target, "http://upstream.invalid/x");
  EXPECT_EQ(server_.requests()[1].target, "/direct");
}

TEST_F(CurlTransportTest, CallbacksMaySendMore) {
  server_.Route("/a", Reply{});
  auto transport = Make();
  int remaining = 20;
  int errors = 0;
  std::function<void(absl::StatusOr<Response>)> next = [&](absl::StatusOr<Response> r) {
    if (!r.ok()) ++errors;
    if (--remaining > 0) transport->Send(Get(server_.Url("/a")), next);
  };
  transport->Send(Get(server_.Url("/a")), next);
  ASSERT_TRUE(RunUntil(io_, [&] { return remaining == 0; }));
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(server_.requests_received(), 20);
}

TEST_F(CurlTransportTest, DestructorCancelsInFlightRequests) {
  Reply slow;
  slow.delay = absl::Seconds(20);
  server_.Route("/slow", slow);
  auto transport = Make();
  std::vector<absl::Status> results;
  for (int i = 0; i < 3; ++i) {
    transport->Send(Get(server_.Url("/slow")),
                    [&](absl::StatusOr<Response> r) { results.push_back(r.status()); });
  }
  ASSERT_TRUE(RunUntil(io_, [&] { return server_.requests_received() == 3; }));
  EXPECT_EQ(transport->in_flight(), 3);
  EXPECT_TRUE(results.empty());
  transport.reset();
  ASSERT_EQ(results.size(), 3u);
  for (const absl::Status& s : results) {
    EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
    EXPECT_THAT(std::string(s.message()), StartsWith(absl::StrCat("GET ", server_.Url("/slow"))));
  }
  // Handlers left behind in the loop must be harmless.
  io_.restart();
  io_.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(results.size(), 3u);
}

TEST_F(CurlTransportTest, DestructorWorksWithoutTheLoopRunning) {
  server_.Route("/a", Reply{});
  auto transport = Make();
  std::vector<absl::Status> results;
  transport->Send(Get(server_.Url("/a")),
                  [&](absl::StatusOr<Response> r) { results.push_back(r.status()); });
  transport->Send(Get("ftp://x/"), [&](absl::StatusOr<Response> r) { results.push_back(r.status()); });
  transport.reset();
  ASSERT_EQ(results.size(), 2u);
  // The rejected request was already finished (its callback posted), so it
  // gets its own result; the one on the wire is cancelled.
  EXPECT_EQ(results[0].code(), absl::StatusCode::kInvalidArgument) << results[0];
  EXPECT_EQ(results[1].code(), absl::StatusCode::kCancelled) << results[1];
  io_.restart();
  io_.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(results.size(), 2u);
}

TEST_F(CurlTransportTest, CallbackMayDestroyTheTransport) {
  server_.Route("/fast", Reply{});
  Reply slow;
  slow.delay = absl::Seconds(20);
  server_.Route("/slow", slow);
  auto transport = Make();
  std::vector<absl::Status> results;
  transport->Send(Get(server_.Url("/slow")),
                  [&](absl::StatusOr<Response> r) { results.push_back(r.status()); });
  transport->Send(Get(server_.Url("/fast")), [&](absl::StatusOr<Response> r) {
    results.push_back(r.status());
    transport.reset();
  });
  ASSERT_TRUE(RunUntil(io_, [&] { return results.size() == 2; }));
  EXPECT_EQ(transport, nullptr);
  EXPECT_TRUE(results[0].ok()) << results[0];
  EXPECT_EQ(results[1].code(), absl::StatusCode::kCancelled) << results[1];
}

TEST_F(CurlTransportTest, SecretsNeverAppearInErrorMessages) {
  const std::string token = "Bearer s3cr3t-T0KEN";
  const std::string password = "hunter2pw";
  Reply slow;
  slow.delay = absl::Seconds(20);
  server_.Route("/slow", slow);
  Reply big;
  big.body = std::string(5000, 'x');
  server_.Route("/big", big);
  Reply loop;
  loop.status = 302;
  loop.headers = {{"Location", "/loop"}};
  server_.Route("/loop", loop);
  Reply reset;
  reset.action = Reply::Action::kReset;
  server_.Route("/reset", reset);

  CurlTransportOptions options;
  options.max_response_bytes = 1000;
  options.default_headers = {{"X-Api-Key", "default-s3cr3t"}};
  auto transport = Make(options);
  const std::string with_userinfo = absl::StrFormat("http://alice:%s@127.0.0.1:%d", password,
                                                    server_.port());
  std::vector<std::string> urls = {
      absl::StrFormat("http://alice:%s@127.0.0.1:%d/x", password, ClosedPort()),
      with_userinfo + "/slow", with_userinfo + "/big", with_userinfo + "/loop",
      with_userinfo + "/reset", absl::StrFormat("ftp://alice:%s@127.0.0.1/x", password)};
  int checked = 0;
  for (const std::string& url : urls) {
    Request request = Get(url);
    request.headers = {{"Authorization", token}};
    request.timeout = absl::Milliseconds(300);
    auto response = Fetch(*transport, request);
    ASSERT_FALSE(response.ok()) << url;
    const std::string message(response.status().message());
    EXPECT_THAT(message, Not(HasSubstr("s3cr3t"))) << message;
    EXPECT_THAT(message, Not(HasSubstr(password))) << message;
    EXPECT_THAT(message, Not(HasSubstr("alice:"))) << "userinfo is removed whole: " << message;
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

}  // namespace
}  // namespace fanout
