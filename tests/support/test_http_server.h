// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// TestHttpServer: a small HTTP/1.1 server on 127.0.0.1 for loopback tests
// (Boost.Beast). It listens on an ephemeral port, runs its own io_context on
// its own thread, keeps connections alive, and answers each request from a
// route (a function of the request) registered by exact path. It can delay a
// reply, reset or close the connection instead of replying, gzip the body or
// send it chunked, and it counts the connections it accepted so tests can
// assert connection reuse.

#ifndef FANOUT_TESTS_SUPPORT_TEST_HTTP_SERVER_H_
#define FANOUT_TESTS_SUPPORT_TEST_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "fanout/transport.h"

namespace fanout::testing {

// A request as the server received it.
struct ServerRequest {
  std::string method;
  std::string target;  // path and query, as sent
  Headers headers;
};

// What the server does for one request.
struct Reply {
  enum class Action {
    kRespond,               // send the response below
    kReset,                 // close with a TCP RST, no response
    kCloseWithoutResponse,  // close cleanly (FIN), no response
  };
  Action action = Action::kRespond;
  int status = 200;
  Headers headers;
  std::string body;
  absl::Duration delay = absl::ZeroDuration();  // before acting
  bool gzip = false;     // send body gzip-encoded, with Content-Encoding: gzip
  bool chunked = false;  // chunked transfer encoding instead of Content-Length
  bool close = false;    // respond with "Connection: close", then close
  // After responding (keep-alive), close the connection if no next request
  // arrives within this: a server dropping idle connections without notice.
  absl::Duration idle_close = absl::InfiniteDuration();
};

// Encodes `data` as a gzip member (RFC 1952) with fixed-Huffman deflate, using
// distance-1 matches for runs of a repeated byte and literals for the rest:
// enough for tests (text round-trips; a long run of one byte is a
// decompression bomb, ~1000:1), no zlib needed.
std::string GzipForTest(std::string_view data);

class TestHttpServer {
 public:
  using Handler = std::function<Reply(const ServerRequest&)>;

  // Starts listening on 127.0.0.1, port 0, and serving on a new thread.
  // Unrouted paths get 404.
  TestHttpServer();
  // Stops within a bounded time: in-flight replies (and delays) are abandoned
  // and every connection is closed.
  ~TestHttpServer();

  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  // Routes requests whose path (the target without its query) is `path`.
  // Thread-safe; replaces an earlier route for the same path. `handler` runs
  // on the server thread.
  void Route(std::string path, Handler handler);
  // A route that always gives `reply`.
  void Route(std::string path, Reply reply);

  uint16_t port() const;
  // "http://127.0.0.1:<port><path>".
  std::string Url(std::string_view path) const;

  // Thread-safe counters and a copy of every request received so far.
  int64_t connections_accepted() const;
  int64_t requests_received() const;
  std::vector<ServerRequest> requests() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace fanout::testing

#endif  // FANOUT_TESTS_SUPPORT_TEST_HTTP_SERVER_H_
