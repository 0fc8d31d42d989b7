// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// CurlTransport: Transport on libcurl's multi socket interface, driven by a
// Boost.Asio io_context (curl_multi_socket_action with CURLMOPT_SOCKETFUNCTION
// and CURLMOPT_TIMERFUNCTION): no polling loop, no thread per request, no
// curl_multi_perform busy wait. Connections are reused (keep-alive) and, over
// TLS, HTTP/2 is multiplexed when the server offers it. curl's sockets are
// watched by an epoll instance of the transport's own, which Asio sees as one
// descriptor, so a request on a kept-alive connection costs no system call
// beyond its own send and receive (Linux). The transport opens its sockets
// itself, close-on-exec, so a host's child processes never inherit them.
// Proxies come from the environment as libcurl reads it (http_proxy,
// https_proxy, all_proxy, no_proxy); if none is set when the transport is
// created, none is looked for afterwards (libcurl would look per request).
//
// Notes on Debian 12's libcurl 7.88.1, which this is written for:
//  - HTTP/2 without TLS (h2c) breaks connection reuse there, so plain http://
//    uses HTTP/1.1; HTTP/2 is used over TLS only.
//  - The redirect limit defaults to unlimited; it is set (max_redirects).
//  - CURLOPT_MAXFILESIZE does not stop a transfer mid-way before 8.4, so the
//    size caps (raw and decoded) are enforced in the write callback.
//
// Thread-safety: thread-compatible, bound to `io`. Send, in_flight and the
// destructor must be called on the thread running `io` (or while nothing runs
// it). Create calls curl_global_init once per process.

#ifndef FANOUT_CURL_TRANSPORT_H_
#define FANOUT_CURL_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fanout/transport.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace fanout {

struct CurlTransportOptions {
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration total_timeout = absl::Seconds(60);    // per request
  // Caps the body as received and after decoding (a decompression bomb is
  // stopped at the first chunk past the cap), and separately the response
  // headers, summed over redirects. Over the cap: kResourceExhausted.
  int64_t max_response_bytes = int64_t{64} << 20;       // raw and decoded
  int max_redirects = 5;                                // 0 = do not follow
  int max_connections_per_host = 16;
  int max_total_connections = 0;                        // 0 = no cap
  bool verify_tls = true;                               // peer and host name
  std::string ca_file;                                  // empty = system store
  bool http2 = true;                                    // over TLS only
  std::string accept_encoding = "gzip, br";             // empty = no compression
  Headers default_headers;                              // sent with every request
  std::string user_agent;                               // empty = "fanout/<version>"
};

class CurlTransport final : public Transport {
 public:
  // Creates a transport whose sockets and timers run on `io`; callbacks run on
  // the thread(s) running `io` (run it on one thread). `io` must outlive the
  // transport. InvalidArgument for bad options (naming the field).
  static absl::StatusOr<std::unique_ptr<CurlTransport>> Create(boost::asio::io_context& io,
                                                               CurlTransportOptions options);
  // Cancels what is in flight and frees everything. Every callback not yet
  // run is run here, synchronously, before this returns (so it works while
  // `io` is not running): kCancelled for requests still on the wire, the
  // actual result for requests already finished. A callback run here that
  // calls Send gets kCancelled too, from this same loop (so do not retry
  // kCancelled blindly). Handlers this leaves in `io` are no-ops.
  ~CurlTransport() override;

  // See Transport::Send. Response::wire_bytes is the body as received, after
  // removing chunked framing and before content decoding. Never calls `done`
  // from inside Send: errors found here (bad URL, method or header) are
  // posted to `io`. A callback may call Send or destroy the transport.
  void Send(Request request, ResponseCallback done) override;
  int64_t in_flight() const override;

  class Impl;

 private:
  explicit CurlTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fanout

#endif  // FANOUT_CURL_TRANSPORT_H_
