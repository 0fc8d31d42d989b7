// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Transport: sends one HTTP request asynchronously and calls back with the
// response or a classified error. The engine knows only this interface;
// CurlTransport (curl_transport.h) is the real one, and
// fanout/testing/fake_transport.h scripts responses for unit tests.

#ifndef FANOUT_TRANSPORT_H_
#define FANOUT_TRANSPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fanout {

// Header fields in order, names as given; lookups are case-insensitive.
using Headers = std::vector<std::pair<std::string, std::string>>;

// The value of the first header named `name` (case-insensitive), if any.
std::optional<std::string_view> FindHeader(const Headers& headers, std::string_view name);

struct Request {
  std::string method = "GET";
  std::string url;  // absolute http:// or https:// URL
  // Sent in addition to the transport's default headers (a same-named header
  // here replaces the default). Values may be secrets (Authorization): a
  // transport never logs them or puts them in an error.
  Headers headers;
  // Overrides the transport's total timeout when > 0.
  absl::Duration timeout = absl::ZeroDuration();
};

struct Response {
  int status = 0;
  Headers headers;          // of the final response (after redirects)
  std::string body;         // decoded (gzip/br removed)
  std::string url;          // the final URL, after redirects
  absl::Duration elapsed;   // from send to the last byte
  int64_t wire_bytes = 0;   // body bytes as received, before decoding
  int http_version = 0;     // of the final response: 10, 11, 20 (HTTP/2), 30
  // HTTP requests this call put on the wire: 1, plus one per redirect
  // followed, plus any the HTTP library re-sent on its own (libcurl silently
  // resends a request whose reused connection turned out dead). Every one of
  // them counts against the upstream's rate limit.
  int requests_sent = 1;
};

// Requests a call put on the wire, whatever its outcome: Response::requests_sent
// for a response, the status payload kRequestsSentPayload for a failure
// (default 1; 0 for a request refused before sending, e.g. a bad URL).
inline constexpr char kRequestsSentPayload[] = "type.fanout.dev/requests_sent";
int RequestsSent(const absl::StatusOr<Response>& result);
// Attaches the count to a failure status (for Transport implementations).
void SetRequestsSent(absl::Status& status, int requests_sent);

// How a request failed, as the absl::Status code of the callback's result:
//   kUnavailable        connection failed: DNS, refused, reset, TLS, closed early
//   kDeadlineExceeded   connect or total timeout
//   kResourceExhausted  response larger than the size cap (raw or decoded)
//   kInvalidArgument    bad URL, or a scheme other than http/https
//   kFailedPrecondition too many redirects, or a redirect to a disallowed scheme
//   kCancelled          the transport shut down before the request finished
//   kInternal           anything else the HTTP library reported
// Messages name the method and URL (never header values).
using ResponseCallback = absl::AnyInvocable<void(absl::StatusOr<Response>) &&>;

class Transport {
 public:
  virtual ~Transport() = default;

  // Starts `request`; `done` is called exactly once, later, on the transport's
  // event loop thread (never from inside Send). Thread-compatible: call from
  // the transport's event loop thread.
  virtual void Send(Request request, ResponseCallback done) = 0;

  // Requests started and not yet called back.
  virtual int64_t in_flight() const = 0;
};

}  // namespace fanout

#endif  // FANOUT_TRANSPORT_H_
