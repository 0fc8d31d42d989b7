// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// CurlTransport: libcurl's multi socket interface on a Boost.Asio io_context.
//
// How the pieces fit (compare curl's docs/examples/asiohiper.cpp):
//  - CURLMOPT_SOCKETFUNCTION tells us which socket curl wants watched and for
//    what (in, out, both, or removed). The sockets are watched by an epoll
//    instance of the transport's own, level-triggered, and that one
//    descriptor is what Asio watches: when it is readable, one epoll_wait
//    collects every ready socket and each gets curl_multi_socket_action.
//    Watching each socket through its own Asio descriptor cost four system
//    calls a request on a keep-alive connection (register, FIONBIO, modify on
//    every wait, deregister when curl parks the connection), more than
//    libcurl's own work; this way a reused connection costs none.
//  - A connection curl parks in its cache is reported as CURL_POLL_REMOVE but
//    stays open. Sockets the transport opened itself (CURLOPT_OPENSOCKETFUNCTION)
//    keep their registration across that: curl's next request on the same
//    connection wants it read again, which is then free. If the server
//    closes a parked connection, the one event it causes deregisters it.
//    Such sockets are closed through CURLOPT_CLOSESOCKETFUNCTION, which
//    deregisters first, so a closed descriptor is never left registered
//    (a forked child holding a copy would otherwise keep it in the set).
//    Sockets curl opened without us (the threaded resolver's socketpair)
//    are deregistered at CURL_POLL_REMOVE, since their closing is not told.
//  - Each registration carries a generation number in its epoll data, so an
//    event collected for a socket that was closed, and its number reused,
//    within the same batch is recognised and dropped.
//  - CURLMOPT_TIMERFUNCTION arms one steady_timer (-1 cancels it, 0 posts a
//    handler instead of calling curl from inside its own callback).
//  - After every batch of socket actions, finished transfers are collected
//    with curl_multi_info_read and their callbacks run, outside of any curl
//    call.
//
// Every handler that can outlive the transport (the wait, the timer, posts)
// holds a shared Liveness token; the destructor clears it, so a handler that
// runs after the transport is gone does nothing.
//
// Transfers ("calls") are pooled: a finished call keeps its easy handle,
// which is configured once and reused; per-request options are set on every
// Send. The multi handle owns the connection and DNS caches, so reuse
// survives the easy handles.

#include "fanout/curl_transport.h"

#include <curl/curl.h>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

#ifndef FANOUT_VERSION
#define FANOUT_VERSION "unknown"
#endif

namespace fanout {
namespace {

namespace asio = boost::asio;

// Timeouts are passed to curl in milliseconds as a long; anything longer than
// this is treated as this (a month: effectively "no timeout").
constexpr int64_t kMaxTimeoutMs = int64_t{30} * 24 * 60 * 60 * 1000;
constexpr int kMaxRedirectsLimit = 50;
// Idle pooled transfers (each with an easy handle) kept after a burst; more
// are freed when they finish.
constexpr size_t kMaxIdleCalls = 1024;
// Spare capacity reserved after a body of known length, so a JSON parser that
// reads a little past the end (simdjson's padding) can parse it in place.
constexpr size_t kBodySlack = 64;
// URLs longer than this are shortened in error messages.
constexpr size_t kMaxUrlInMessage = 2048;

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Milliseconds for curl, rounded up so that a positive duration never becomes
// 0 (which curl reads as "no timeout").
long CurlMilliseconds(absl::Duration d) {
  int64_t ms = absl::ToInt64Milliseconds(d);
  if (d > absl::Milliseconds(ms)) ++ms;
  return static_cast<long>(std::clamp<int64_t>(ms, 1, kMaxTimeoutMs));
}

// `url` for error messages: userinfo ("user:password@") removed, shortened if
// very long. Works on malformed URLs too (it only looks for "://" and '@').
std::string RedactUrl(std::string_view url) {
  std::string out;
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    out.assign(url);
  } else {
    const size_t authority = scheme_end + 3;
    size_t authority_end = url.find_first_of("/?#", authority);
    if (authority_end == std::string_view::npos) authority_end = url.size();
    const size_t at = url.substr(authority, authority_end - authority).rfind('@');
    if (at == std::string_view::npos) {
      out.assign(url);
    } else {
      out.assign(url.substr(0, authority));
      out.append(url.substr(authority + at + 1));
    }
  }
  if (out.size() > kMaxUrlInMessage) {
    out.resize(kMaxUrlInMessage);
    out.append("...");
  }
  return out;
}

bool HasHttpScheme(std::string_view url) {
  const absl::string_view u = AbslView(url);
  return absl::StartsWithIgnoreCase(u, "http://") || absl::StartsWithIgnoreCase(u, "https://");
}

// RFC 9110 token characters (method and header names).
bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u)) continue;
    if (std::strchr("!#$%&'*+-.^_`|~", c) == nullptr || c == '\0') return false;
  }
  return true;
}

bool HasLineBreakOrNul(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// What is wrong with header `h`, if anything. Never shows the value.
std::optional<std::string> HeaderProblem(const std::pair<std::string, std::string>& h) {
  if (!IsToken(h.first)) {
    return absl::StrFormat("header name \"%s\" is not a valid HTTP token",
                           absl::CHexEscape(h.first));
  }
  if (HasLineBreakOrNul(h.second)) {
    return absl::StrFormat("value of header \"%s\" contains CR, LF or NUL", h.first);
  }
  return std::nullopt;
}

// "Name: value", or "Name;" for an empty value (curl's way to send a header
// with no value; "Name:" would remove it).
std::string HeaderLine(const std::pair<std::string, std::string>& h) {
  std::string line;
  line.reserve(h.first.size() + h.second.size() + 2);
  line.append(h.first);
  if (h.second.empty()) {
    line.push_back(';');
  } else {
    line.append(": ");
    line.append(h.second);
  }
  return line;
}

// Whether libcurl would take a proxy from the environment (the variables it
// reads; HTTP_PROXY in capitals is not one of them, by design).
bool ProxyInEnvironment() {
  for (const char* name : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && value[0] != '\0') return true;
  }
  return false;
}

// Runs curl_global_init once per process (libcurl requires it before any other
// call; its lazy fallback in curl_easy_init is not thread-safe).
void InitCurlOnce() {
  static const CURLcode kInit = curl_global_init(CURL_GLOBAL_DEFAULT);
  (void)kInit;
}

}  // namespace

class CurlTransport::Impl {
 public:
  Impl(asio::io_context& io, CurlTransportOptions options)
      : io_(io),
        options_(std::move(options)),
        timer_(io),
        liveness_(std::make_shared<Liveness>()),
        epoll_descriptor_(io) {
    liveness_->impl = this;
  }
  ~Impl();

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  absl::Status Init();
  void Send(Request request, ResponseCallback done);
  int64_t in_flight() const { return in_flight_; }

 private:
  // Cleared by the destructor; handlers that may run later hold a copy.
  struct Liveness {
    Impl* impl = nullptr;
  };

  // Why a transfer was aborted from one of our own callbacks.
  enum class Abort { kNone, kRawTooLarge, kDecodedTooLarge, kHeadersTooLarge, kOutOfMemory };

  // One pooled transfer.
  struct Call {
    enum class State { kFree, kActive, kReady };

    Impl* impl = nullptr;
    CURL* easy = nullptr;
    size_t index = 0;  // in Impl::calls_
    State state = State::kFree;
    Request request;
    ResponseCallback done;
    Response response;
    absl::Status status;                   // the result when not OK
    curl_slist* request_headers = nullptr; // when the request has its own headers
    Abort abort = Abort::kNone;
    int64_t header_bytes = 0;
    int requests_sent = 0;  // counted by the pre-request callback
    bool body_started = false;
    Call* next_ready = nullptr;
    char error[CURL_ERROR_SIZE] = {};
  };

  // One socket descriptor as the transport sees it (indexed by descriptor).
  struct Watched {
    int want = 0;             // CURL_POLL_IN/OUT bits curl asked for; 0 = parked or unknown
    uint32_t registered = 0;  // EPOLLIN/EPOLLOUT bits in the epoll set; 0 = not in it
    uint32_t generation = 0;  // of the current registration (in its epoll data)
    bool ours = false;        // opened by OnOpenSocket: its closing is told to OnCloseSocket
  };

  // curl callbacks.
  static int OnSocket(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp);
  static int OnTimer(CURLM* multi, long timeout_ms, void* userp);
  static size_t OnBody(char* data, size_t size, size_t count, void* userp);
  static size_t OnHeader(char* data, size_t size, size_t count, void* userp);
  static int OnPrerequest(void* userp, char* /*conn_primary_ip*/, char* /*conn_local_ip*/,
                          int /*conn_primary_port*/, int /*conn_local_port*/) {
    ++static_cast<Call*>(userp)->requests_sent;
    return CURL_PREREQFUNC_OK;
  }
  static int OnProgress(void* userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow);

  // Runs `f`, which may allocate, inside a curl callback: an exception must
  // not unwind through libcurl's C frames. False (and the call marked
  // kOutOfMemory) if it threw.
  template <typename F>
  static bool Guard(Call& call, F&& f) noexcept {
    try {
      f();
      return true;
    } catch (...) {
      call.abort = Abort::kOutOfMemory;
      return false;
    }
  }

  static curl_socket_t OnOpenSocket(void* userp, curlsocktype purpose, curl_sockaddr* address);
  static int OnCloseSocket(void* userp, curl_socket_t s);

  static uint32_t EventsFor(int want);
  int HandleSocket(curl_socket_t s, int what);
  Watched& WatchedFor(curl_socket_t s);
  // Makes the epoll set watch `s` for `events` (0 = not at all). False, with
  // errno, if epoll_ctl failed.
  bool Register(curl_socket_t s, Watched& w, uint32_t events);
  // Keeps one wait on the epoll descriptor while curl wants any socket.
  void ArmWait();
  // Curl no longer wants `w` watched; the last such cancels the wait.
  void Unwant(Watched& w);
  void OnReady(const std::shared_ptr<Liveness>& live, const boost::system::error_code& ec);
  void HandleTimer(long timeout_ms);
  void OnTimeout(const std::shared_ptr<Liveness>& live);

  Call* AcquireCall();
  absl::Status ConfigureEasy(Call& call);
  absl::Status Prepare(Call& call);
  void CollectFinished();
  void Finish(Call& call, CURLcode code);
  absl::Status ErrorFor(const Call& call, CURLcode code) const;
  std::string Where(const Call& call) const;
  void PushReady(Call& call);
  void ScheduleDrain();
  void Drain(const std::shared_ptr<Liveness>& live);
  // Hands `call`'s result to its callback and returns the call to the pool.
  void Deliver(Call& call);

  asio::io_context& io_;
  const CurlTransportOptions options_;
  long connect_timeout_ms_ = 0;
  long total_timeout_ms_ = 0;
  bool http2_ = false;
  bool proxy_from_environment_ = false;
  CURLM* multi_ = nullptr;
  Headers defaults_;                      // the User-Agent and options_.default_headers
  curl_slist* default_headers_ = nullptr;  // defaults_ as curl takes them
  asio::steady_timer timer_;
  std::shared_ptr<Liveness> liveness_;
  asio::posix::stream_descriptor epoll_descriptor_;  // owns the epoll instance
  std::vector<Watched> watched_;           // by descriptor number
  int64_t wanted_sockets_ = 0;             // Watched entries with want != 0
  uint32_t next_generation_ = 0;
  bool wait_armed_ = false;
  std::vector<std::unique_ptr<Call>> calls_;  // every call, owning
  std::vector<Call*> free_calls_;
  Call* ready_head_ = nullptr;
  Call* ready_tail_ = nullptr;
  int64_t in_flight_ = 0;
  bool timeout_posted_ = false;
  // When the timer's wait is armed to fire (max() = not armed). curl moves its
  // next timeout with nearly every transfer; re-arming each time would cancel
  // and re-post a wait per call, so a later deadline keeps the earlier wait
  // (an early call is a harmless no-op for curl, which then asks again).
  asio::steady_timer::time_point timer_armed_for_ = asio::steady_timer::time_point::max();
  bool drain_posted_ = false;
  bool shutting_down_ = false;
};

// ---------------------------------------------------------------------------
// Setup and teardown.

absl::Status CurlTransport::Impl::Init() {
  InitCurlOnce();
  const std::string user_agent = options_.user_agent.empty() ? std::string("fanout/" FANOUT_VERSION)
                                                             : options_.user_agent;
  connect_timeout_ms_ = CurlMilliseconds(options_.connect_timeout);
  total_timeout_ms_ = CurlMilliseconds(options_.total_timeout);
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  http2_ = options_.http2 && info != nullptr && (info->features & CURL_VERSION_HTTP2) != 0;
  proxy_from_environment_ = ProxyInEnvironment();

  // The User-Agent goes with the default headers, unless they name their
  // own: a header line costs libcurl less than CURLOPT_USERAGENT, which it
  // formats anew for every request.
  if (!FindHeader(options_.default_headers, "User-Agent").has_value()) {
    defaults_.emplace_back("User-Agent", user_agent);
  }
  defaults_.insert(defaults_.end(), options_.default_headers.begin(), options_.default_headers.end());
  for (const auto& header : defaults_) {
    curl_slist* appended = curl_slist_append(default_headers_, HeaderLine(header).c_str());
    if (appended == nullptr) return absl::ResourceExhaustedError("curl transport: out of memory");
    default_headers_ = appended;
  }
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) {
    return absl::InternalError(
        absl::StrFormat("curl transport: epoll_create1 failed: %s", std::strerror(errno)));
  }
  boost::system::error_code ec;
  epoll_descriptor_.assign(epoll_fd, ec);
  if (ec) {
    close(epoll_fd);
    return absl::InternalError(absl::StrFormat(
        "curl transport: watching the epoll descriptor failed: %s", ec.message()));
  }
  multi_ = curl_multi_init();
  if (multi_ == nullptr) {
    return absl::InternalError("curl transport: curl_multi_init failed");
  }
  CURLMcode rc = CURLM_OK;
  const auto set = [&](CURLMcode code) {
    if (rc == CURLM_OK) rc = code;
  };
  set(curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Impl::OnSocket));
  set(curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this));
  set(curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Impl::OnTimer));
  set(curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this));
  set(curl_multi_setopt(multi_, CURLMOPT_PIPELINING,
                        http2_ ? long{CURLPIPE_MULTIPLEX} : long{CURLPIPE_NOTHING}));
  set(curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS,
                        static_cast<long>(options_.max_connections_per_host)));
  set(curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                        static_cast<long>(options_.max_total_connections)));
  if (rc != CURLM_OK) {
    return absl::InternalError(
        absl::StrFormat("curl transport: curl_multi_setopt failed: %s", curl_multi_strerror(rc)));
  }
  return absl::OkStatus();
}

CurlTransport::Impl::~Impl() {
  shutting_down_ = true;
  // Cancel what curl is working on; finished calls keep their results.
  for (const auto& call : calls_) {
    if (call->state != Call::State::kActive) continue;
    curl_multi_remove_handle(multi_, call->easy);
    curl_slist_free_all(call->request_headers);
    call->request_headers = nullptr;
    call->response = Response();
    call->status = absl::CancelledError(
        absl::StrFormat("%s: cancelled: the transport was destroyed", Where(*call)));
    PushReady(*call);
  }
  // Call back everything not yet called back, here: the io_context may never
  // run again. A callback that calls Send gets kCancelled through this loop.
  while (ready_head_ != nullptr) Deliver(*ready_head_);

  liveness_->impl = nullptr;
  if (multi_ != nullptr) curl_multi_cleanup(multi_);  // may report CURL_POLL_REMOVE
  multi_ = nullptr;
  // Sockets curl did not close (none are expected) are curl's; only the
  // epoll instance is ours to close.
  boost::system::error_code ignored_close;
  epoll_descriptor_.close(ignored_close);
  for (const auto& call : calls_) {
    if (call->easy != nullptr) curl_easy_cleanup(call->easy);
  }
  curl_slist_free_all(default_headers_);
  boost::system::error_code ignored;
  timer_.cancel(ignored);
}

// ---------------------------------------------------------------------------
// Sending.

void CurlTransport::Impl::Send(Request request, ResponseCallback done) {
  ++in_flight_;
  Call* call = AcquireCall();
  call->request = std::move(request);
  call->done = std::move(done);
  call->response = Response();
  call->status = absl::OkStatus();
  if (shutting_down_) {
    // Only reachable from a callback run by the destructor.
    call->status = absl::CancelledError(
        absl::StrFormat("%s: cancelled: the transport is being destroyed", Where(*call)));
    PushReady(*call);
    return;
  }
  absl::Status status = Prepare(*call);
  if (status.ok()) {
    const CURLMcode rc = curl_multi_add_handle(multi_, call->easy);
    if (rc == CURLM_OK) {
      call->state = Call::State::kActive;
      return;
    }
    status = absl::InternalError(absl::StrFormat("%s: curl_multi_add_handle failed: %s",
                                                 Where(*call), curl_multi_strerror(rc)));
  }
  curl_slist_free_all(call->request_headers);
  call->request_headers = nullptr;
  call->status = std::move(status);
  PushReady(*call);
  ScheduleDrain();
}

CurlTransport::Impl::Call* CurlTransport::Impl::AcquireCall() {
  if (!free_calls_.empty()) {
    Call* call = free_calls_.back();
    free_calls_.pop_back();
    return call;
  }
  calls_.push_back(std::make_unique<Call>());
  calls_.back()->impl = this;
  calls_.back()->index = calls_.size() - 1;
  return calls_.back().get();
}

// Options that are the same for every request, set once per easy handle.
absl::Status CurlTransport::Impl::ConfigureEasy(Call& call) {
  CURL* e = call.easy;
  CURLcode rc = CURLE_OK;
  const char* failed = nullptr;
  const auto set = [&](const char* name, CURLcode code) {
    if (rc == CURLE_OK && code != CURLE_OK) {
      rc = code;
      failed = name;
    }
  };
  set("PRIVATE", curl_easy_setopt(e, CURLOPT_PRIVATE, &call));
  set("ERRORBUFFER", curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call.error));
  set("NOSIGNAL", curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
  set("WRITEFUNCTION", curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::OnBody));
  set("WRITEDATA", curl_easy_setopt(e, CURLOPT_WRITEDATA, &call));
  set("HEADERFUNCTION", curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::OnHeader));
  set("HEADERDATA", curl_easy_setopt(e, CURLOPT_HEADERDATA, &call));
  set("XFERINFOFUNCTION", curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, &Impl::OnProgress));
  set("XFERINFODATA", curl_easy_setopt(e, CURLOPT_XFERINFODATA, &call));
  set("NOPROGRESS", curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L));
  // Called once per HTTP request put on the wire, redirects and libcurl's own
  // resends included, so the caller can charge each one to the rate limit.
  set("PREREQFUNCTION", curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &Impl::OnPrerequest));
  set("PREREQDATA", curl_easy_setopt(e, CURLOPT_PREREQDATA, &call));
  set("OPENSOCKETFUNCTION", curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &Impl::OnOpenSocket));
  set("OPENSOCKETDATA", curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, this));
  set("CLOSESOCKETFUNCTION",
      curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &Impl::OnCloseSocket));
  set("CLOSESOCKETDATA", curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, this));
  set("PROTOCOLS_STR", curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"));
  set("REDIR_PROTOCOLS_STR", curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
  set("FOLLOWLOCATION",
      curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, options_.max_redirects > 0 ? 1L : 0L));
  set("MAXREDIRS", curl_easy_setopt(e, CURLOPT_MAXREDIRS, static_cast<long>(options_.max_redirects)));
  set("CONNECTTIMEOUT_MS", curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms_));
  set("SSL_VERIFYPEER", curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L));
  set("SSL_VERIFYHOST", curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L));
  if (!options_.ca_file.empty()) {
    set("CAINFO", curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_file.c_str()));
  }
  if (!proxy_from_environment_) {
    // No proxy is configured: say so, or libcurl looks for one in the
    // environment again for every request.
    set("PROXY", curl_easy_setopt(e, CURLOPT_PROXY, ""));
    set("NOPROXY", curl_easy_setopt(e, CURLOPT_NOPROXY, ""));
  }
  set("HTTP_VERSION",
      curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                       http2_ ? long{CURL_HTTP_VERSION_2TLS} : long{CURL_HTTP_VERSION_1_1}));
  if (!options_.accept_encoding.empty()) {
    set("ACCEPT_ENCODING",
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, options_.accept_encoding.c_str()));
  }
  if (rc != CURLE_OK) {
    return absl::InternalError(absl::StrFormat("curl transport: setting CURLOPT_%s failed: %s",
                                               failed, curl_easy_strerror(rc)));
  }
  return absl::OkStatus();
}

// Validates the request and sets the per-request options.
absl::Status CurlTransport::Impl::Prepare(Call& call) {
  const Request& r = call.request;
  if (!IsToken(r.method)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "curl transport: request method \"%s\" is not a valid HTTP token",
        absl::CHexEscape(AbslView(r.method))));
  }
  if (!HasHttpScheme(r.url)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: unsupported URL: only absolute http:// and https:// URLs are allowed", Where(call)));
  }
  if (r.url.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: malformed URL: contains NUL", Where(call)));
  }
  // The rest of the URL is parsed once, by curl when the transfer starts: a
  // malformed one fails there with CURLE_URL_MALFORMAT (InvalidArgument,
  // nothing sent). Parsing it here too cost a second parse per request.

  curl_slist* headers = default_headers_;
  if (!r.headers.empty()) {
    for (const auto& header : r.headers) {
      if (std::optional<std::string> problem = HeaderProblem(header)) {
        return absl::InvalidArgumentError(absl::StrFormat("%s: %s", Where(call), *problem));
      }
    }
    // Defaults first, minus those the request replaces, then the request's.
    curl_slist* list = nullptr;
    const auto append = [&list](const std::pair<std::string, std::string>& h) {
      curl_slist* appended = curl_slist_append(list, HeaderLine(h).c_str());
      if (appended == nullptr) return false;
      list = appended;
      return true;
    };
    bool ok = true;
    for (const auto& header : defaults_) {
      if (!FindHeader(r.headers, header.first).has_value()) ok = ok && append(header);
    }
    for (const auto& header : r.headers) ok = ok && append(header);
    call.request_headers = list;
    if (!ok) return absl::ResourceExhaustedError(absl::StrFormat("%s: out of memory", Where(call)));
    headers = list;
  }

  if (call.easy == nullptr) {
    call.easy = curl_easy_init();
    if (call.easy == nullptr) {
      return absl::InternalError(absl::StrFormat("%s: curl_easy_init failed", Where(call)));
    }
    if (absl::Status s = ConfigureEasy(call); !s.ok()) {
      curl_easy_cleanup(call.easy);
      call.easy = nullptr;
      return s;
    }
  }
  CURL* e = call.easy;
  call.error[0] = '\0';
  call.abort = Abort::kNone;
  call.header_bytes = 0;
  call.requests_sent = 0;
  call.body_started = false;

  CURLcode rc = curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
  const auto set = [&rc](CURLcode code) {
    if (rc == CURLE_OK) rc = code;
  };
  if (r.method == "GET") {
    set(curl_easy_setopt(e, CURLOPT_HTTPGET, 1L));  // also clears NOBODY
    set(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, static_cast<char*>(nullptr)));
  } else if (r.method == "HEAD") {
    set(curl_easy_setopt(e, CURLOPT_NOBODY, 1L));
    set(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, static_cast<char*>(nullptr)));
  } else {
    set(curl_easy_setopt(e, CURLOPT_HTTPGET, 1L));
    set(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str()));
  }
  set(curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers));
  // Over TLS with HTTP/2, wait for a connection being set up rather than open
  // another, in case it multiplexes. Never for http://: an HTTP/1.1 request
  // would wait for the previous response on that connection.
  const bool https = absl::StartsWithIgnoreCase(AbslView(r.url), "https://");
  set(curl_easy_setopt(e, CURLOPT_PIPEWAIT, http2_ && https ? 1L : 0L));
  set(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                       r.timeout > absl::ZeroDuration() ? CurlMilliseconds(r.timeout)
                                                        : total_timeout_ms_));
  if (rc != CURLE_OK) {
    return absl::InternalError(
        absl::StrFormat("%s: setting request options failed: %s", Where(call), curl_easy_strerror(rc)));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Completion.

void CurlTransport::Impl::CollectFinished() {
  int pending = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &pending)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Call* call = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &call);
    const CURLcode code = msg->data.result;  // read before remove_handle frees msg
    if (call != nullptr && call->state == Call::State::kActive) Finish(*call, code);
  }
}

void CurlTransport::Impl::Finish(Call& call, CURLcode code) {
  curl_multi_remove_handle(multi_, call.easy);
  curl_slist_free_all(call.request_headers);
  call.request_headers = nullptr;
  if (code == CURLE_OK && call.abort == Abort::kNone) {
    Response& response = call.response;
    long status = 0;
    curl_easy_getinfo(call.easy, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
    const char* url = nullptr;
    if (curl_easy_getinfo(call.easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url != nullptr) {
      response.url.assign(url);
    } else {
      response.url = call.request.url;
    }
    curl_off_t total_us = 0;
    curl_easy_getinfo(call.easy, CURLINFO_TOTAL_TIME_T, &total_us);
    response.elapsed = absl::Microseconds(total_us);
    curl_off_t downloaded = 0;
    curl_easy_getinfo(call.easy, CURLINFO_SIZE_DOWNLOAD_T, &downloaded);
    response.wire_bytes = downloaded;
    long version = 0;
    curl_easy_getinfo(call.easy, CURLINFO_HTTP_VERSION, &version);
    switch (version) {
      case CURL_HTTP_VERSION_1_0: response.http_version = 10; break;
      case CURL_HTTP_VERSION_1_1: response.http_version = 11; break;
      case CURL_HTTP_VERSION_2_0: response.http_version = 20; break;
      case CURL_HTTP_VERSION_3: response.http_version = 30; break;
      default: response.http_version = 0;
    }
    call.status = absl::OkStatus();
  } else {
    call.status = ErrorFor(call, code);
    call.response = Response();  // free a partial body now
  }
  PushReady(call);
}

std::string CurlTransport::Impl::Where(const Call& call) const {
  return absl::StrFormat("%s %s", call.request.method, RedactUrl(call.request.url));
}

absl::Status CurlTransport::Impl::ErrorFor(const Call& call, CURLcode code) const {
  const std::string where = Where(call);
  std::string detail = call.error[0] != '\0' ? std::string(call.error) : curl_easy_strerror(code);
  while (!detail.empty() && absl::ascii_isspace(static_cast<unsigned char>(detail.back()))) {
    detail.pop_back();
  }
  const int64_t cap = options_.max_response_bytes;
  switch (call.abort) {
    case Abort::kNone:
      break;
    case Abort::kRawTooLarge:
      return absl::ResourceExhaustedError(absl::StrFormat(
          "%s: response body larger than max_response_bytes (%d) as received", where, cap));
    case Abort::kDecodedTooLarge:
      return absl::ResourceExhaustedError(absl::StrFormat(
          "%s: response body larger than max_response_bytes (%d) after decoding", where, cap));
    case Abort::kHeadersTooLarge:
      return absl::ResourceExhaustedError(absl::StrFormat(
          "%s: response headers larger than max_response_bytes (%d)", where, cap));
    case Abort::kOutOfMemory:
      return absl::ResourceExhaustedError(
          absl::StrFormat("%s: out of memory while receiving the response", where));
  }
  long redirects = 0;
  curl_easy_getinfo(call.easy, CURLINFO_REDIRECT_COUNT, &redirects);
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return absl::UnavailableError(absl::StrFormat("%s: name resolution failed: %s", where, detail));
    case CURLE_COULDNT_CONNECT:
      return absl::UnavailableError(absl::StrFormat("%s: connection failed: %s", where, detail));
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
      return absl::UnavailableError(
          absl::StrFormat("%s: connection closed or failed: %s", where, detail));
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return absl::UnavailableError(absl::StrFormat("%s: TLS failed: %s", where, detail));
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(absl::StrFormat("%s: timed out: %s", where, detail));
    case CURLE_TOO_MANY_REDIRECTS:
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s: too many redirects (max_redirects %d): %s", where, options_.max_redirects, detail));
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      if (redirects > 0) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "%s: redirect to a disallowed or malformed URL (only http and https are followed): %s",
            where, detail));
      }
      return absl::InvalidArgumentError(absl::StrFormat("%s: invalid URL: %s", where, detail));
    case CURLE_FILESIZE_EXCEEDED:
      return absl::ResourceExhaustedError(absl::StrFormat(
          "%s: response body larger than max_response_bytes (%d): %s", where, cap, detail));
    default:
      return absl::InternalError(absl::StrFormat("%s: %s (curl error %d)", where, detail,
                                                 static_cast<int>(code)));
  }
}

void CurlTransport::Impl::PushReady(Call& call) {
  call.state = Call::State::kReady;
  call.next_ready = nullptr;
  if (ready_tail_ == nullptr) {
    ready_head_ = &call;
  } else {
    ready_tail_->next_ready = &call;
  }
  ready_tail_ = &call;
}

void CurlTransport::Impl::ScheduleDrain() {
  if (drain_posted_) return;
  drain_posted_ = true;
  asio::post(io_, [live = liveness_] {
    if (Impl* impl = live->impl) {
      impl->drain_posted_ = false;
      impl->Drain(live);
    }
  });
}

// Runs ready callbacks. A callback may destroy the transport: `live` (owned by
// the caller's handler) says whether `this` still exists.
void CurlTransport::Impl::Drain(const std::shared_ptr<Liveness>& live) {
  while (live->impl != nullptr && ready_head_ != nullptr) Deliver(*ready_head_);
}

void CurlTransport::Impl::Deliver(Call& call) {
  ready_head_ = call.next_ready;
  if (ready_head_ == nullptr) ready_tail_ = nullptr;
  call.next_ready = nullptr;
  ResponseCallback done = std::move(call.done);
  if (call.status.ok()) {
    call.response.requests_sent = std::max(1, call.requests_sent);
  } else {
    SetRequestsSent(call.status, call.requests_sent);
  }
  absl::StatusOr<Response> result =
      call.status.ok() ? absl::StatusOr<Response>(std::move(call.response))
                       : absl::StatusOr<Response>(std::move(call.status));
  call.done = nullptr;
  call.request.headers.clear();
  call.state = Call::State::kFree;
  if (free_calls_.size() < kMaxIdleCalls || shutting_down_) {
    free_calls_.push_back(&call);
  } else {
    if (call.easy != nullptr) curl_easy_cleanup(call.easy);
    const size_t index = call.index;
    std::swap(calls_[index], calls_.back());
    calls_[index]->index = index;
    calls_.pop_back();  // destroys `call`
  }
  --in_flight_;
  // Last: `this` may be destroyed by the callback.
  if (done) std::move(done)(std::move(result));
}

// ---------------------------------------------------------------------------
// curl callbacks.

int CurlTransport::Impl::OnSocket(CURL* /*easy*/, curl_socket_t s, int what, void* userp,
                                  void* /*socketp*/) {
  try {
    return static_cast<Impl*>(userp)->HandleSocket(s, what);
  } catch (...) {  // allocation failure; curl fails the transfers on this socket
    return -1;
  }
}

curl_socket_t CurlTransport::Impl::OnOpenSocket(void* userp, curlsocktype /*purpose*/,
                                                curl_sockaddr* address) {
  // Close-on-exec, so a host's child processes never hold a connection open.
  const curl_socket_t s =
      socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (s == CURL_SOCKET_BAD) return s;
  try {
    Impl& impl = *static_cast<Impl*>(userp);
    Watched& w = impl.WatchedFor(s);
    if (w.registered != 0) impl.Register(s, w, 0);  // a number reused behind our back
    w = Watched{.ours = true};
  } catch (...) {  // allocation failure
    close(s);
    return CURL_SOCKET_BAD;
  }
  return s;
}

int CurlTransport::Impl::OnCloseSocket(void* userp, curl_socket_t s) {
  Impl& impl = *static_cast<Impl*>(userp);
  if (s >= 0 && static_cast<size_t>(s) < impl.watched_.size()) {
    Watched& w = impl.watched_[s];
    if (w.registered != 0) impl.Register(s, w, 0);
    impl.Unwant(w);
    w = Watched{};
  }
  return close(s);
}

CurlTransport::Impl::Watched& CurlTransport::Impl::WatchedFor(curl_socket_t s) {
  if (static_cast<size_t>(s) >= watched_.size()) {
    watched_.resize(std::max(static_cast<size_t>(s) + 1, watched_.size() * 2));
  }
  return watched_[s];
}

bool CurlTransport::Impl::Register(curl_socket_t s, Watched& w, uint32_t events) {
  if (events == w.registered) return true;
  const int epoll = epoll_descriptor_.native_handle();
  int rc = 0;
  if (events == 0) {
    rc = epoll_ctl(epoll, EPOLL_CTL_DEL, s, nullptr);
    // Gone already (closed, or never added): nothing is watched either way.
    if (rc != 0 && (errno == ENOENT || errno == EBADF)) rc = 0;
  } else {
    epoll_event event{};
    event.events = events;
    if (w.registered == 0) w.generation = ++next_generation_;
    event.data.u64 = (uint64_t{w.generation} << 32) | static_cast<uint32_t>(s);
    rc = epoll_ctl(epoll, w.registered == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, s, &event);
    if (rc != 0 && w.registered == 0 && errno == EEXIST) {
      // Registered by an earlier life of this descriptor number.
      rc = epoll_ctl(epoll, EPOLL_CTL_MOD, s, &event);
    } else if (rc != 0 && w.registered != 0 && errno == ENOENT) {
      // The descriptor we registered was closed without a word (the kernel
      // dropped it from the set) and its number is in use again.
      rc = epoll_ctl(epoll, EPOLL_CTL_ADD, s, &event);
    }
  }
  if (rc != 0) return false;
  w.registered = events;
  return true;
}

// The epoll events that watch for what curl wants (CURL_POLL_* bits).
uint32_t CurlTransport::Impl::EventsFor(int want) {
  uint32_t events = 0;
  if ((want & CURL_POLL_IN) != 0) events |= EPOLLIN;
  if ((want & CURL_POLL_OUT) != 0) events |= EPOLLOUT;
  return events;
}

int CurlTransport::Impl::HandleSocket(curl_socket_t s, int what) {
  if (s < 0) return -1;
  Watched& w = WatchedFor(s);
  const int want = what == CURL_POLL_REMOVE ? 0 : what & CURL_POLL_INOUT;
  if (want == 0) {
    Unwant(w);
    // A parked connection of ours stays registered for reading: curl's next
    // request on it wants just that. One registered for writing (always
    // ready), or one whose closing would not be told to us, leaves the set.
    if (!w.ours || (w.registered & EPOLLOUT) != 0) Register(s, w, 0);
    if (!w.ours) w = Watched{};
    return 0;
  }
  if (!Register(s, w, EventsFor(want))) return -1;  // curl fails the transfers on this socket
  if (w.want == 0) ++wanted_sockets_;
  w.want = want;
  if (!shutting_down_) ArmWait();
  return 0;
}

void CurlTransport::Impl::Unwant(Watched& w) {
  if (w.want == 0) return;
  w.want = 0;
  if (--wanted_sockets_ == 0 && wait_armed_) {
    // Nothing left to wait for: let the io_context run out of work.
    boost::system::error_code ignored;
    epoll_descriptor_.cancel(ignored);
  }
}

void CurlTransport::Impl::ArmWait() {
  if (wait_armed_ || wanted_sockets_ == 0) return;
  wait_armed_ = true;
  epoll_descriptor_.async_wait(asio::posix::stream_descriptor::wait_read,
                               [live = liveness_](const boost::system::error_code& ec) {
                                 if (Impl* impl = live->impl) impl->OnReady(live, ec);
                               });
}

void CurlTransport::Impl::OnReady(const std::shared_ptr<Liveness>& live,
                                  const boost::system::error_code& ec) {
  wait_armed_ = false;
  if (ec == asio::error::operation_aborted) {
    ArmWait();  // cancelled when curl wanted nothing; it may want something again since
    return;
  }
  constexpr int kMaxEvents = 128;
  epoll_event events[kMaxEvents];
  const int n = epoll_wait(epoll_descriptor_.native_handle(), events, kMaxEvents, 0);
  for (int i = 0; i < n; ++i) {
    const auto s = static_cast<curl_socket_t>(events[i].data.u64 & 0xffffffffu);
    const auto generation = static_cast<uint32_t>(events[i].data.u64 >> 32);
    if (static_cast<size_t>(s) >= watched_.size()) continue;
    Watched& w = watched_[s];
    // Closed (and perhaps reopened) by an earlier action of this batch.
    if (w.registered == 0 || w.generation != generation) continue;
    if (w.want == 0) {
      // A parked connection became readable: the server closed it, or sent
      // something unasked. curl finds out when it next checks the
      // connection; until then, stop hearing about it.
      Register(s, w, 0);
      continue;
    }
    // A hang-up or an error makes both directions "ready": curl's read or
    // write then meets the end or the error itself and says which.
    const uint32_t e = events[i].events;
    const bool broken = (e & (EPOLLHUP | EPOLLERR)) != 0;
    int mask = 0;
    if ((broken || (e & EPOLLIN) != 0) && (w.want & CURL_POLL_IN) != 0) mask |= CURL_CSELECT_IN;
    if ((broken || (e & EPOLLOUT) != 0) && (w.want & CURL_POLL_OUT) != 0) mask |= CURL_CSELECT_OUT;
    if (mask == 0) continue;
    int running = 0;
    curl_multi_socket_action(multi_, s, mask, &running);
  }
  CollectFinished();
  Drain(live);
  if (live->impl == nullptr) return;
  ArmWait();
}

int CurlTransport::Impl::OnTimer(CURLM* /*multi*/, long timeout_ms, void* userp) {
  try {
    static_cast<Impl*>(userp)->HandleTimer(timeout_ms);
    return 0;
  } catch (...) {  // allocation failure
    return -1;
  }
}

void CurlTransport::Impl::HandleTimer(long timeout_ms) {
  if (shutting_down_) return;
  if (timeout_ms < 0) {
    boost::system::error_code ignored;
    timer_.cancel(ignored);
    timer_armed_for_ = asio::steady_timer::time_point::max();
  } else if (timeout_ms == 0) {
    // "Now": run it from the event loop, not from inside curl. The timer is
    // left as it is; if it fires later, curl treats that as a no-op.
    if (!timeout_posted_) {
      timeout_posted_ = true;
      asio::post(io_, [live = liveness_] {
        if (Impl* self = live->impl) {
          self->timeout_posted_ = false;
          self->OnTimeout(live);
        }
      });
    }
  } else {
    const auto deadline = asio::steady_timer::clock_type::now() + std::chrono::milliseconds(timeout_ms);
    if (timer_armed_for_ <= deadline) return;  // the armed wait fires first; curl re-asks then
    timer_armed_for_ = deadline;
    timer_.expires_at(deadline);  // cancels the previous wait
    timer_.async_wait([live = liveness_](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled or re-armed
      if (Impl* self = live->impl) {
        self->timer_armed_for_ = asio::steady_timer::time_point::max();
        self->OnTimeout(live);
      }
    });
  }
}

void CurlTransport::Impl::OnTimeout(const std::shared_ptr<Liveness>& live) {
  int running = 0;
  curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
  CollectFinished();
  Drain(live);
}

// Decoded body bytes. Both caps are checked here, so a decompression bomb is
// stopped at the first chunk past the cap; returning less than `count` makes
// curl abort the transfer with CURLE_WRITE_ERROR.
size_t CurlTransport::Impl::OnBody(char* data, size_t /*size is always 1*/, size_t count,
                                   void* userp) {
  Call& call = *static_cast<Call*>(userp);
  const int64_t cap = call.impl->options_.max_response_bytes;
  std::string& body = call.response.body;
  if (!call.body_started) {
    call.body_started = true;
    curl_off_t length = -1;
    curl_easy_getinfo(call.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    if (length > cap) {
      call.abort = Abort::kRawTooLarge;
      return 0;
    }
    if (length > 0 && !Guard(call, [&] { body.reserve(static_cast<size_t>(length) + kBodySlack); })) {
      return 0;
    }
  }
  if (static_cast<int64_t>(body.size() + count) > cap) {
    call.abort = Abort::kDecodedTooLarge;
    return 0;
  }
  curl_off_t raw = 0;  // body bytes received so far, before decoding
  curl_easy_getinfo(call.easy, CURLINFO_SIZE_DOWNLOAD_T, &raw);
  if (raw > cap) {
    call.abort = Abort::kRawTooLarge;
    return 0;
  }
  return Guard(call, [&] { body.append(data, count); }) ? count : 0;
}

// Raw body bytes, for input that decodes to little or nothing (and so never
// reaches OnBody). curl calls this after each read.
int CurlTransport::Impl::OnProgress(void* userp, curl_off_t /*dltotal*/, curl_off_t dlnow,
                                    curl_off_t /*ultotal*/, curl_off_t /*ulnow*/) {
  Call& call = *static_cast<Call*>(userp);
  if (dlnow > call.impl->options_.max_response_bytes) {
    call.abort = Abort::kRawTooLarge;
    return 1;
  }
  return 0;
}

// One header line (status lines included) of every response, redirects too.
size_t CurlTransport::Impl::OnHeader(char* data, size_t /*size is always 1*/, size_t count,
                                     void* userp) {
  Call& call = *static_cast<Call*>(userp);
  call.header_bytes += static_cast<int64_t>(count);
  if (call.header_bytes > call.impl->options_.max_response_bytes) {
    call.abort = Abort::kHeadersTooLarge;
    return 0;
  }
  std::string_view line(data, count);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  Headers& headers = call.response.headers;
  if (line.empty()) return count;
  if (line.substr(0, 5) == "HTTP/") {
    headers.clear();  // a new response (a redirect, or after a 1xx): keep the last only
    return count;
  }
  const absl::string_view view = AbslView(line);
  if (line.front() == ' ' || line.front() == '\t') {  // obsolete line folding
    if (headers.empty()) return count;
    const absl::string_view more = absl::StripAsciiWhitespace(view);
    const bool stored = Guard(call, [&] {
      headers.back().second.push_back(' ');
      headers.back().second.append(more.data(), more.size());
    });
    return stored ? count : 0;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return count;
  const absl::string_view value = absl::StripAsciiWhitespace(view.substr(colon + 1));
  const bool stored = Guard(call, [&] {
    headers.emplace_back(std::string(line.substr(0, colon)), std::string(value.data(), value.size()));
  });
  return stored ? count : 0;
}

// ---------------------------------------------------------------------------
// CurlTransport.

absl::StatusOr<std::unique_ptr<CurlTransport>> CurlTransport::Create(
    boost::asio::io_context& io, CurlTransportOptions options) {
  const auto invalid = [](const auto&... args) {
    return absl::InvalidArgumentError(absl::StrFormat(args...));
  };
  const auto bad_duration = [](absl::Duration d) {
    return d <= absl::ZeroDuration() || d == absl::InfiniteDuration();
  };
  if (bad_duration(options.connect_timeout)) {
    return invalid("curl transport: connect_timeout must be positive and finite, got %s",
                   absl::FormatDuration(options.connect_timeout));
  }
  if (bad_duration(options.total_timeout)) {
    return invalid("curl transport: total_timeout must be positive and finite, got %s",
                   absl::FormatDuration(options.total_timeout));
  }
  if (options.max_response_bytes < 1) {
    return invalid("curl transport: max_response_bytes must be >= 1, got %d",
                   options.max_response_bytes);
  }
  if (options.max_redirects < 0 || options.max_redirects > kMaxRedirectsLimit) {
    return invalid("curl transport: max_redirects must be in [0, %d], got %d", kMaxRedirectsLimit,
                   options.max_redirects);
  }
  if (options.max_connections_per_host < 1) {
    return invalid("curl transport: max_connections_per_host must be >= 1, got %d",
                   options.max_connections_per_host);
  }
  if (options.max_total_connections < 0) {
    return invalid("curl transport: max_total_connections must be >= 0 (0 = no cap), got %d",
                   options.max_total_connections);
  }
  if (HasLineBreakOrNul(options.user_agent)) {
    return invalid("curl transport: user_agent contains CR, LF or NUL");
  }
  if (HasLineBreakOrNul(options.accept_encoding)) {
    return invalid("curl transport: accept_encoding contains CR, LF or NUL");
  }
  if (options.ca_file.find('\0') != std::string::npos) {
    return invalid("curl transport: ca_file contains NUL");
  }
  for (const auto& header : options.default_headers) {
    if (std::optional<std::string> problem = HeaderProblem(header)) {
      return invalid("curl transport: default_headers: %s", *problem);
    }
  }
  auto impl = std::make_unique<Impl>(io, std::move(options));
  if (absl::Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<CurlTransport>(new CurlTransport(std::move(impl)));
}

CurlTransport::CurlTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CurlTransport::~CurlTransport() = default;

void CurlTransport::Send(Request request, ResponseCallback done) {
  impl_->Send(std::move(request), std::move(done));
}

int64_t CurlTransport::in_flight() const { return impl_->in_flight(); }

}  // namespace fanout
