// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// The mock vendor API. One io_context run by options.threads threads; each
// connection is a Session on its own strand running a keep-alive loop of
// async_read → Handle → (delay) → async_write. Handle is the whole API: it
// is synchronous, touches only atomics on the hot path (plus a sharded mutex
// for per-path fault counts when faults are enabled, and the request log's
// mutex when logging), and returns a Reply that the session carries out.

#include "mock_api_server.h"

#include <mutex>
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <optional>
#include <thread>
#include <utility>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fanout/clock.h"
#include "fanout/rate_limiter.h"

namespace fanout::mock {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

namespace {

constexpr int64_t kMaxLeaves = 50'000'000;
constexpr int kMaxPageSize = 1000;
constexpr int kMaxClientLimit = 1000;

// ---------------------------------------------------------------------------
// Stable hashing (absl::Hash is salted per process; these must not be).

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t HashBytes(uint64_t h, absl::string_view s) {  // FNV-1a over a seed
  h ^= 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix(h);
}

// A uniform double in [0, 1) from a hash.
double ToUnit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// ---------------------------------------------------------------------------
// Text helpers.

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

std::string JsonString(absl::string_view s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `in` into `out`; false on a malformed escape. In a query
// ('plus_is_space') '+' means a space.
bool PercentDecode(absl::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

// Parses "<prefix><n>" with n in 1..count written without leading zeros;
// returns n - 1, or -1.
int ParseIndexedId(absl::string_view id, char prefix, int count) {
  if (id.size() < 2 || id.size() > 11 || id[0] != prefix || id[1] == '0') return -1;
  int64_t n = 0;
  for (char c : id.substr(1)) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  if (n < 1 || n > count) return -1;
  return static_cast<int>(n - 1);
}

// ---------------------------------------------------------------------------
// The sliding 1-second maximum: 1-ms buckets in a ring, each one atomic word
// holding (millisecond tag << 24 | count), so a stale bucket reads as empty
// without ever being cleared. Add is one CAS; Max sweeps the completed
// milliseconds since the last sweep with a running window sum (O(1) each).
// The ring holds 8.2 s, so a sweep at least every ~7 s loses nothing; the
// server sweeps every second.
class WindowMax {
 public:
  explicit WindowMax(int64_t now_ms) : swept_until_(now_ms) {
    for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
  }

  void Add(int64_t ms) {
    std::atomic<uint64_t>& b = buckets_[Slot(ms)];
    uint64_t old = b.load(std::memory_order_relaxed);
    const uint64_t tag = static_cast<uint64_t>(ms) << kCountBits;
    while (true) {
      const uint64_t next = (old & ~kCountMask) == tag ? std::min(old + 1, tag | kCountMask) : tag | 1;
      if (b.compare_exchange_weak(old, next, std::memory_order_relaxed)) return;
    }
  }

  // The most events in any 1000-ms window ending at or before `now_ms`.
  int64_t Max(int64_t now_ms) {
    std::lock_guard<std::mutex> lock(mu_);
    SweepLocked(now_ms);
    // The windows ending in the last few (still filling) milliseconds.
    int64_t best = max_;
    int64_t sum = window_sum_;
    for (int64_t e = swept_until_; e <= now_ms; ++e) {
      sum += Count(e) - Count(e - 1000);
      best = std::max(best, sum);
    }
    return best;
  }

  void Sweep(int64_t now_ms) {
    std::lock_guard<std::mutex> lock(mu_);
    SweepLocked(now_ms);
  }

  void Reset(int64_t now_ms) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
    swept_until_ = now_ms;
    window_sum_ = 0;
    max_ = 0;
  }

 private:
  static constexpr int kRing = 8192;
  static constexpr int kCountBits = 24;
  static constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;
  // Milliseconds left unswept, so that an Add that read the clock just
  // before a sweep still lands in an unswept bucket.
  static constexpr int64_t kGraceMs = 5;

  static size_t Slot(int64_t ms) { return static_cast<size_t>(ms) % kRing; }

  int64_t Count(int64_t ms) const {
    if (ms < 0) return 0;
    const uint64_t w = buckets_[Slot(ms)].load(std::memory_order_relaxed);
    return (w >> kCountBits) == static_cast<uint64_t>(ms) ? static_cast<int64_t>(w & kCountMask) : 0;
  }

  void SweepLocked(int64_t now_ms) /* requires mu_ */ {
    const int64_t until = now_ms - kGraceMs;
    if (until <= swept_until_) return;
    if (until - swept_until_ > kRing / 2) {
      // Fell behind (nobody asked for a long time): restart the running sum
      // from data still in the ring. Windows in the skipped stretch had no
      // sweep, but the ring's older half is still intact, so nothing that
      // happened in the last 4 s is missed.
      swept_until_ = until - kRing / 2;
      window_sum_ = 0;
      for (int64_t e = swept_until_ - 1000; e < swept_until_; ++e) window_sum_ += Count(e);
      max_ = std::max(max_, window_sum_);
    }
    for (int64_t e = swept_until_; e < until; ++e) {
      window_sum_ += Count(e) - Count(e - 1000);
      max_ = std::max(max_, window_sum_);
    }
    swept_until_ = until;
  }

  std::array<std::atomic<uint64_t>, kRing> buckets_;
  std::mutex mu_;
  int64_t swept_until_ /* guarded by mu_ */;   // first millisecond not yet swept
  int64_t window_sum_ /* guarded by mu_ */ = 0;  // events in [swept_until_-1000, swept_until_)
  int64_t max_ /* guarded by mu_ */ = 0;
};

enum Level { kNoLevel = -1, kTroops = 0, kWarriors = 1, kGroups = 2, kData = 3 };
constexpr const char* kLevelNames[] = {"troops", "warriors", "groups", "data"};

// What the session does with a request.
struct Reply {
  enum class Action { kSend, kReset, kSlow };
  Action action = Action::kSend;
  unsigned status = 200;
  std::string body;
  std::string link;      // Link header value, if any
  int retry_after = -1;  // seconds, if >= 0
  bool allow_get = false;
  std::vector<std::pair<std::string, std::string>> headers;  // more header fields (rate-limit headers)
};

// The ids of troops t2..t7 with hostile_ids: each needs percent-encoding in
// a URL path, or would be mangled by naive path handling.
std::vector<std::string> HostileIds() {
  std::string long_id = "long-";
  while (long_id.size() < 300) long_id += static_cast<char>('a' + long_id.size() % 26);
  return {"../../etc", "..", long_id, "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae-\xe2\x9c\x93", "a/b",
          "50% off"};
}

}  // namespace

// ---------------------------------------------------------------------------
// Options, names, stats.

absl::StatusOr<Pagination> ParsePagination(std::string_view name) {
  const absl::string_view n(name.data(), name.size());
  if (n == "cursor") return Pagination::kCursor;
  if (n == "next_url") return Pagination::kNextUrl;
  if (n == "link") return Pagination::kLinkHeader;
  if (n == "page") return Pagination::kPage;
  if (n == "offset") return Pagination::kOffset;
  return absl::InvalidArgumentError(absl::StrCat(
      "pagination ", JsonString(n), " is not one of cursor, next_url, link, page, offset"));
}

std::string PaginationName(Pagination pagination) {
  switch (pagination) {
    case Pagination::kCursor: return "cursor";
    case Pagination::kNextUrl: return "next_url";
    case Pagination::kLinkHeader: return "link";
    case Pagination::kPage: return "page";
    case Pagination::kOffset: return "offset";
  }
  return "unknown";
}

std::string MockApiStats::ToJson() const {
  std::string out = absl::StrCat(
      "{\"requests\":", requests, ",\"rejected\":", rejected,
      ",\"max_requests_in_any_1s\":", max_requests_in_any_1s,
      ",\"max_accepted_in_any_1s\":", max_accepted_in_any_1s, ",\"by_level\":{\"troops\":", by_level.troops,
      ",\"warriors\":", by_level.warriors, ",\"groups\":", by_level.groups, ",\"data\":", by_level.data,
      "},\"status\":{");
  bool first = true;
  for (const auto& [code, n] : status) {
    absl::StrAppend(&out, first ? "" : ",", "\"", code, "\":", n);
    first = false;
  }
  absl::StrAppend(&out, "},\"faults\":{\"error\":", faults.error, ",\"reset\":", faults.reset,
                  ",\"slow\":", faults.slow, ",\"truncate\":", faults.truncate, ",\"poison\":", faults.poison,
                  "},\"leaves_served\":", leaves_served, ",\"distinct_leaves_served\":", distinct_leaves_served,
                  "}");
  return out;
}

namespace {

absl::Status ValidateOptions(const MockApiOptions& o) {
  auto bad = [](absl::string_view field, auto value, absl::string_view want) {
    return absl::InvalidArgumentError(
        absl::StrCat("MockApiOptions.", field, " must be ", want, ", got ", value));
  };
  if (o.troops < 1) return bad("troops", o.troops, ">= 1");
  if (o.warriors < 1) return bad("warriors", o.warriors, ">= 1");
  if (o.groups < 1) return bad("groups", o.groups, ">= 1");
  const int64_t leaves = int64_t{o.troops} * o.warriors * o.groups;
  if (int64_t{o.troops} * o.warriors > kMaxLeaves || leaves > kMaxLeaves) {
    return absl::InvalidArgumentError(absl::StrCat("MockApiOptions troops x warriors x groups (", o.troops, " x ",
                                                   o.warriors, " x ", o.groups, ") must be at most ", kMaxLeaves));
  }
  if (o.page_size < 1 || o.page_size > kMaxPageSize) return bad("page_size", o.page_size, "in 1..1000");
  if (!std::isfinite(o.rate) || o.rate < 0) return bad("rate", o.rate, "finite and >= 0");
  if (o.burst < 1) return bad("burst", o.burst, ">= 1");
  if (!std::isfinite(o.level_rate) || o.level_rate < 0) return bad("level_rate", o.level_rate, "finite and >= 0");
  const std::pair<const char*, double> rates[] = {{"error_rate", o.error_rate},
                                                   {"reset_rate", o.reset_rate},
                                                   {"slow_rate", o.slow_rate},
                                                   {"truncate_rate", o.truncate_rate}};
  double sum = 0;
  for (const auto& [name, r] : rates) {
    if (!(r >= 0 && r <= 1)) return bad(name, r, "in [0, 1]");
    sum += r;
  }
  if (sum > 1 + 1e-9) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MockApiOptions error_rate + reset_rate + slow_rate + truncate_rate must be <= 1, got ", sum));
  }
  if (o.slow_ms < 0 || o.slow_ms > 600'000) return bad("slow_ms", o.slow_ms, "in 0..600000");
  if (o.poison_leaf_permille < 0 || o.poison_leaf_permille > 1000) {
    return bad("poison_leaf_permille", o.poison_leaf_permille, "in 0..1000");
  }
  if (o.poison_listing_permille < 0 || o.poison_listing_permille > 1000) {
    return bad("poison_listing_permille", o.poison_listing_permille, "in 0..1000");
  }
  if (o.threads < 1 || o.threads > 64) return bad("threads", o.threads, "in 1..64");
  if (o.idle_timeout_ms < 1) return bad("idle_timeout_ms", o.idle_timeout_ms, ">= 1");
  if (o.max_request_bytes < 1024) return bad("max_request_bytes", o.max_request_bytes, ">= 1024");
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------
// The server state and the API.

class MockApiServer::Impl {
 public:
  explicit Impl(MockApiOptions options)
      : options_(std::move(options)),
        arrivals_(NowMs()),
        accepted_(NowMs()) {}

  ~Impl() {
    Stop();
    if (log_ != nullptr) std::fclose(log_);
  }

  absl::Status Init();
  void Stop();

  // Carries out one request. `target` is raw (as on the request line).
  void Handle(http::verb method, absl::string_view method_name, absl::string_view target, Reply* reply);
  // Reply for a request the parser rejected (too large, malformed).
  static void ParseErrorReply(const beast::error_code& ec, Reply* reply);

  MockApiStats Stats();
  void ResetStats();
  std::vector<std::string> PoisonLeaves() const;
  std::vector<std::string> PoisonListings() const;
  int64_t DeliverableLeaves() const;
  std::string ExpectedJson() const;

  const MockApiOptions& options() const { return options_; }
  uint16_t port() const { return port_; }
  const std::string& base_url() const { return base_url_; }
  int64_t leaves() const { return leaves_; }
  absl::Duration idle_timeout() const { return absl::Milliseconds(options_.idle_timeout_ms); }

 private:
  friend class Session;

  int64_t NowMs() const { return absl::ToInt64Milliseconds(clock_.Now() - absl::UnixEpoch()); }
  int64_t LeafIndex(int troop, int warrior, int group) const {
    return (int64_t{troop} * options_.warriors + warrior) * options_.groups + group;
  }
  int64_t WarriorIndex(int troop, int warrior) const { return int64_t{troop} * options_.warriors + warrior; }
  std::string WarriorKey(int troop, int warrior) const {
    return absl::StrCat("troops/", troop_ids_[troop], "/warriors/w", warrior + 1);
  }
  std::string LeafKey(int troop, int warrior, int group) const {
    return absl::StrCat(WarriorKey(troop, warrior), "/groups/g", group + 1);
  }

  void DoAccept();
  void ScheduleSweep();
  void Finish(absl::string_view method_name, absl::string_view target, Reply* reply);
  void Error(Reply* reply, unsigned status, absl::string_view error, absl::string_view detail);
  void ApplyFaults(absl::string_view target, Reply* reply, bool* truncated);
  void Listing(Level level, int troop, int warrior, absl::string_view raw_path, absl::string_view query,
               Reply* reply);
  void LeafDocument(int troop, int warrior, int group, std::string* out) const;
  void Log(absl::string_view method_name, absl::string_view target, const Reply& reply);
  // Adds the rate-limit headers describing the global limiter after a
  // request was decided (when options ask for them).
  void RateLimitHeaders(Reply* reply) const;
  // GET|POST /_control?rate=R[&burst=B]: SetRate from the query.
  void Control(absl::string_view query, Reply* reply);

 public:
  absl::Status SetRate(double rate, int burst);
  double rate() const {
    return global_limited_.load(std::memory_order_acquire) ? global_limiter_->rate_per_second() : 0;
  }
  int burst() const { return static_cast<int>(global_limiter_->burst()); }

 private:

  const MockApiOptions options_;
  const SystemClock clock_;
  uint16_t port_ = 0;
  std::string base_url_;
  int64_t leaves_ = 0;
  bool faults_enabled_ = false;

  // The tree. Immutable after Init.
  std::vector<std::string> troop_ids_;
  absl::flat_hash_map<std::string, int> troop_index_;
  std::vector<bool> poison_leaf_;     // by leaf index
  std::vector<bool> poison_listing_;  // by warrior index

  // The global limit: the limiter always exists (so SetRate may start one
  // while requests are served); it applies only while global_limited_.
  std::unique_ptr<RateLimiter> global_limiter_;
  std::atomic<bool> global_limited_{false};
  std::mutex set_rate_mu_;  // serializes SetRate callers
  std::array<std::unique_ptr<RateLimiter>, 4> level_limiters_;

  // Counters (relaxed atomics; a snapshot need not be consistent).
  std::atomic<int64_t> requests_{0};
  std::atomic<int64_t> rejected_{0};
  std::array<std::atomic<int64_t>, 4> by_level_{};
  std::array<std::atomic<int64_t>, 600> status_{};
  std::atomic<int64_t> fault_error_{0}, fault_reset_{0}, fault_slow_{0}, fault_truncate_{0}, fault_poison_{0};
  std::atomic<int64_t> leaves_served_{0};
  std::atomic<int64_t> distinct_leaves_{0};
  std::unique_ptr<std::atomic<uint64_t>[]> served_bits_;  // by leaf index
  WindowMax arrivals_;
  WindowMax accepted_;

  // How many times each path+query has been decided on (fault decisions).
  struct Shard {
    std::mutex mu;
    absl::flat_hash_map<std::string, uint32_t> counts /* guarded by mu */;
  };
  static constexpr int kShards = 64;
  std::array<Shard, kShards> shards_;

  std::mutex log_mu_;
  std::FILE* log_ = nullptr;  // owned; writes guarded by log_mu_

  // Declared last: destroyed (with every pending handler and connection)
  // before the state above.
  std::unique_ptr<net::io_context> ioc_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<net::steady_timer> sweep_timer_;
  std::vector<std::thread> threads_;
  std::mutex stop_mu_;  // serializes Stop callers
  bool stopped_ = false;
};

namespace {

// One connection: a keep-alive loop on its own strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, MockApiServer::Impl* impl)
      : stream_(std::move(socket)), delay_(stream_.get_executor()), impl_(impl) {}

  void Run() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::Read, shared_from_this()));
  }

 private:
  void Read() {
    parser_.emplace();
    const auto limit = static_cast<std::uint32_t>(impl_->options().max_request_bytes);
    parser_->header_limit(limit);
    parser_->body_limit(limit);
    stream_.expires_after(absl::ToChronoMilliseconds(impl_->idle_timeout()));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec == http::error::end_of_stream) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    if (ec == beast::error::timeout || ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset) {
      return;  // idle, stopping, or the peer went away: drop the connection
    }
    reply_ = Reply();
    bool close = false;
    if (ec) {
      MockApiServer::Impl::ParseErrorReply(ec, &reply_);
      close = true;
      drain_after_close_ = true;
    } else {
      const auto& req = parser_->get();
      const auto target = req.target();
      const auto method = req.method_string();
      impl_->Handle(req.method(), absl::string_view(method.data(), method.size()),
                    absl::string_view(target.data(), target.size()), &reply_);
      close = !req.keep_alive();
    }
    if (reply_.action == Reply::Action::kReset) {
      beast::error_code ignored;
      stream_.socket().set_option(net::socket_base::linger(true, 0), ignored);
      stream_.socket().close(ignored);
      return;
    }
    BuildResponse(close);
    if (reply_.action == Reply::Action::kSlow) {
      stream_.expires_never();
      delay_.expires_after(std::chrono::milliseconds(impl_->options().slow_ms));
      delay_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
        if (!wait_ec) self->Write();
      });
      return;
    }
    Write();
  }

  void BuildResponse(bool close) {
    response_ = {};
    response_.version(11);
    response_.result(reply_.status);
    response_.set(http::field::content_type, "application/json");
    if (!reply_.link.empty()) response_.set(http::field::link, reply_.link);
    if (reply_.retry_after >= 0) response_.set(http::field::retry_after, std::to_string(reply_.retry_after));
    if (reply_.allow_get) response_.set(http::field::allow, "GET");
    for (const auto& [name, value] : reply_.headers) response_.set(name, value);
    response_.keep_alive(!close);
    response_.body() = std::move(reply_.body);
    response_.prepare_payload();
  }

  void Write() {
    stream_.expires_after(absl::ToChronoMilliseconds(impl_->idle_timeout()));
    http::async_write(stream_, response_, beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec) return;
    if (response_.need_eof()) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      if (drain_after_close_) Drain();
      return;
    }
    Read();
  }

  // After answering a request the parser rejected, reads and discards what
  // the client still sends (for up to a second) instead of closing with
  // unread data, which would reset the connection and could destroy the
  // response before the client reads it.
  void Drain() {
    if (drain_buffer_ == nullptr) drain_buffer_ = std::make_unique<std::array<char, 4096>>();
    stream_.expires_after(std::chrono::seconds(1));
    stream_.async_read_some(net::buffer(*drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t /*bytes*/) {
                              if (!ec) self->Drain();
                            });
  }

  beast::tcp_stream stream_;
  net::steady_timer delay_;
  MockApiServer::Impl* const impl_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  Reply reply_;
  bool drain_after_close_ = false;
  std::unique_ptr<std::array<char, 4096>> drain_buffer_;
};

}  // namespace

absl::Status MockApiServer::Impl::Init() {
  if (absl::Status s = ValidateOptions(options_); !s.ok()) return s;
  const MockApiOptions& o = options_;
  leaves_ = int64_t{o.troops} * o.warriors * o.groups;
  faults_enabled_ = o.error_rate > 0 || o.reset_rate > 0 || o.slow_rate > 0 || o.truncate_rate > 0;

  // The tree.
  troop_ids_.reserve(o.troops);
  const std::vector<std::string> hostile = HostileIds();
  for (int t = 0; t < o.troops; ++t) {
    if (o.hostile_ids && t >= 1 && t <= static_cast<int>(hostile.size())) {
      troop_ids_.push_back(hostile[t - 1]);
    } else {
      troop_ids_.push_back(absl::StrCat("t", t + 1));
    }
    troop_index_.emplace(troop_ids_.back(), t);
  }
  poison_leaf_.assign(leaves_, false);
  poison_listing_.assign(int64_t{o.troops} * o.warriors, false);
  if (o.poison_leaf_permille > 0 || o.poison_listing_permille > 0) {
    for (int t = 0; t < o.troops; ++t) {
      for (int w = 0; w < o.warriors; ++w) {
        const std::string wkey = WarriorKey(t, w);
        poison_listing_[WarriorIndex(t, w)] =
            HashBytes(o.seed ^ 0x6c697374ULL, wkey) % 1000 < static_cast<uint64_t>(o.poison_listing_permille);
        for (int g = 0; g < o.groups; ++g) {
          poison_leaf_[LeafIndex(t, w, g)] =
              HashBytes(o.seed ^ 0x6c656166ULL, LeafKey(t, w, g)) % 1000 <
              static_cast<uint64_t>(o.poison_leaf_permille);
        }
      }
    }
  }
  served_bits_ = std::make_unique<std::atomic<uint64_t>[]>((leaves_ + 63) / 64);
  for (int64_t i = 0; i < (leaves_ + 63) / 64; ++i) served_bits_[i].store(0, std::memory_order_relaxed);

  // Limits.
  {
    auto limiter = RateLimiter::Create(&clock_, RateLimitSpec::PerSecond(o.rate > 0 ? o.rate : 1, o.burst),
                                       "mock api global");
    if (!limiter.ok()) return limiter.status();
    global_limiter_ = *std::move(limiter);
    global_limited_.store(o.rate > 0, std::memory_order_release);
  }
  if (o.level_rate > 0) {
    for (int l = 0; l < 4; ++l) {
      auto limiter = RateLimiter::Create(&clock_, RateLimitSpec::PerSecond(o.level_rate, o.burst),
                                         absl::StrCat("mock api level ", kLevelNames[l]));
      if (!limiter.ok()) return limiter.status();
      level_limiters_[l] = *std::move(limiter);
    }
  }

  if (!o.request_log_path.empty()) {
    log_ = std::fopen(o.request_log_path.c_str(), "a");
    if (log_ == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot open request_log_path ", JsonString(o.request_log_path), " for appending"));
    }
  }

  // The socket.
  beast::error_code ec;
  const net::ip::address address = net::ip::make_address(o.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("MockApiOptions.host must be an IP address, got ", JsonString(o.host)));
  }
  ioc_ = std::make_unique<net::io_context>(o.threads);
  acceptor_.emplace(*ioc_);
  const tcp::endpoint endpoint(address, o.port);
  const std::string where = absl::StrCat(o.host, ":", o.port);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor_.reset();
    ioc_.reset();
    return absl::UnavailableError(absl::StrCat("mock api cannot listen on ", where, ": ", ec.message()));
  }
  port_ = acceptor_->local_endpoint(ec).port();
  base_url_ = absl::StrCat("http://", address.is_v6() ? absl::StrCat("[", o.host, "]") : o.host, ":", port_);

  DoAccept();
  sweep_timer_.emplace(*ioc_);
  ScheduleSweep();
  threads_.reserve(o.threads);
  for (int i = 0; i < o.threads; ++i) threads_.emplace_back([this] { ioc_->run(); });
  return absl::OkStatus();
}

void MockApiServer::Impl::DoAccept() {
  acceptor_->async_accept(net::make_strand(*ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_->is_open()) return;
    if (!ec) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), this)->Run();
    }
    DoAccept();
  });
}

void MockApiServer::Impl::ScheduleSweep() {
  sweep_timer_->expires_after(std::chrono::seconds(1));
  sweep_timer_->async_wait([this](beast::error_code ec) {
    if (ec) return;
    const int64_t now = NowMs();
    arrivals_.Sweep(now);
    accepted_.Sweep(now);
    ScheduleSweep();
  });
}

void MockApiServer::Impl::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopped_ || ioc_ == nullptr) return;
  stopped_ = true;
  ioc_->stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  // No io thread runs now; destroying the io_context destroys every pending
  // handler and with them every Session, closing its socket.
  sweep_timer_.reset();
  acceptor_.reset();
  ioc_.reset();
}

void MockApiServer::Impl::ParseErrorReply(const beast::error_code& ec, Reply* reply) {
  const bool too_large = ec == http::error::body_limit || ec == http::error::header_limit ||
                         ec == http::error::buffer_overflow;
  reply->status = too_large ? 413 : 400;
  reply->body = absl::StrCat("{\"error\":", too_large ? "\"request too large\"" : "\"bad request\"",
                             ",\"detail\":", JsonString(ec.message()), ",\"status\":", reply->status, "}");
}

void MockApiServer::Impl::Error(Reply* reply, unsigned status, absl::string_view error,
                                absl::string_view detail) {
  reply->action = Reply::Action::kSend;
  reply->status = status;
  reply->body.clear();
  absl::StrAppend(&reply->body, "{\"error\":", JsonString(error), ",\"detail\":", JsonString(detail),
                  ",\"status\":", status, "}");
}

void MockApiServer::Impl::Handle(http::verb method, absl::string_view method_name, absl::string_view target,
                                 Reply* reply) {
  const size_t qpos = target.find('?');
  const absl::string_view path = target.substr(0, qpos);
  const absl::string_view query = qpos == absl::string_view::npos ? absl::string_view() : target.substr(qpos + 1);

  // Introspection: no limits, no faults, not counted.
  if (absl::StartsWith(path, "/_")) {
    if (path == "/_reset_stats" && (method == http::verb::get || method == http::verb::post)) {
      ResetStats();
      reply->body = "{\"ok\":true}";
    } else if (path == "/_control" && method == http::verb::post) {
      Control(query, reply);
    } else if (method != http::verb::get) {
      Error(reply, 405, "method not allowed", absl::StrCat(method_name, " ", path));
      reply->allow_get = true;
    } else if (path == "/_stats") {
      reply->body = Stats().ToJson();
    } else if (path == "/_poison") {
      std::string body = "{\"leaves\":[";
      bool first = true;
      for (const std::string& k : PoisonLeaves()) {
        absl::StrAppend(&body, first ? "" : ",", JsonString(k));
        first = false;
      }
      body += "],\"listings\":[";
      first = true;
      for (const std::string& k : PoisonListings()) {
        absl::StrAppend(&body, first ? "" : ",", JsonString(k));
        first = false;
      }
      body += "]}";
      reply->body = std::move(body);
    } else if (path == "/_expected") {
      reply->body = ExpectedJson();
    } else if (path == "/_control") {
      Control(query, reply);
    } else {
      Error(reply, 404, "not found", absl::StrCat("no introspection endpoint ", JsonString(path)));
    }
    return;
  }

  const absl::Time now = clock_.Now();
  const int64_t now_ms = absl::ToInt64Milliseconds(now - absl::UnixEpoch());
  requests_.fetch_add(1, std::memory_order_relaxed);
  arrivals_.Add(now_ms);

  // The level, from the shape of the raw path (split on raw '/', so an
  // encoded "%2F" stays inside its segment).
  absl::InlinedVector<absl::string_view, 8> segs;
  if (!path.empty() && path[0] == '/') {
    for (absl::string_view s : absl::StrSplit(path.substr(1), '/')) {
      if (segs.size() == 8) break;
      segs.push_back(s);
    }
  }
  Level level = kNoLevel;
  if (!segs.empty() && segs[0] == "troops") {
    if (segs.size() == 1) {
      level = kTroops;
    } else if (segs.size() == 3 && segs[2] == "warriors") {
      level = kWarriors;
    } else if (segs.size() == 5 && segs[2] == "warriors" && segs[4] == "groups") {
      level = kGroups;
    } else if (segs.size() == 7 && segs[2] == "warriors" && segs[4] == "groups" && segs[6] == "data") {
      level = kData;
    }
  }
  if (level != kNoLevel) by_level_[level].fetch_add(1, std::memory_order_relaxed);

  // The server's rate limit: global, then the level's own.
  RateLimiter* refused = nullptr;
  const bool global_limited = global_limited_.load(std::memory_order_acquire);
  if (global_limited && !global_limiter_->TryAcquire(1, now)) {
    refused = global_limiter_.get();
  } else if (level != kNoLevel && level_limiters_[level] != nullptr &&
             !level_limiters_[level]->TryAcquire(1, now)) {
    refused = level_limiters_[level].get();
    if (global_limited) global_limiter_->Refund(1);
  }
  if (global_limited) RateLimitHeaders(reply);
  if (refused != nullptr) {
    const double wait_s = absl::ToDoubleSeconds(refused->TimeUntilAvailable(1, now));
    const int retry_after = std::max(1, static_cast<int>(std::ceil(wait_s)));
    rejected_.fetch_add(1, std::memory_order_relaxed);
    Error(reply, 429, "rate limited",
          absl::StrCat("limit ", JsonString(refused->name()), " (", refused->rate_per_second(),
                       "/s, burst ", refused->burst(), ") exceeded; retry after ", retry_after, " s"));
    reply->retry_after = retry_after;
    Finish(method_name, target, reply);
    return;
  }
  accepted_.Add(now_ms);

  if (level == kNoLevel) {
    Error(reply, 404, "not found", absl::StrCat("no such path ", JsonString(path)));
    Finish(method_name, target, reply);
    return;
  }
  if (method != http::verb::get) {
    Error(reply, 405, "method not allowed", absl::StrCat(method_name, " ", path, ": only GET is allowed"));
    reply->allow_get = true;
    Finish(method_name, target, reply);
    return;
  }

  // Ids, percent-decoded.
  int troop = -1, warrior = -1, group = -1;
  std::string decoded;
  if (level >= kWarriors) {
    if (!PercentDecode(segs[1], false, &decoded)) {
      Error(reply, 400, "bad request", absl::StrCat("malformed percent-encoding in troop id ", JsonString(segs[1])));
      Finish(method_name, target, reply);
      return;
    }
    auto it = troop_index_.find(decoded);
    if (it == troop_index_.end()) {
      Error(reply, 404, "not found", absl::StrCat("unknown troop ", JsonString(decoded)));
      Finish(method_name, target, reply);
      return;
    }
    troop = it->second;
  }
  if (level >= kGroups) {
    if (!PercentDecode(segs[3], false, &decoded) ||
        (warrior = ParseIndexedId(decoded, 'w', options_.warriors)) < 0) {
      Error(reply, 404, "not found",
            absl::StrCat("unknown warrior ", JsonString(decoded), " of troop ", JsonString(troop_ids_[troop])));
      Finish(method_name, target, reply);
      return;
    }
  }
  if (level == kData) {
    if (!PercentDecode(segs[5], false, &decoded) || (group = ParseIndexedId(decoded, 'g', options_.groups)) < 0) {
      Error(reply, 404, "not found",
            absl::StrCat("unknown group ", JsonString(decoded), " of ", JsonString(WarriorKey(troop, warrior))));
      Finish(method_name, target, reply);
      return;
    }
    const int64_t leaf = LeafIndex(troop, warrior, group);
    if (poison_leaf_[leaf]) {
      fault_poison_.fetch_add(1, std::memory_order_relaxed);
      Error(reply, 500, "internal error", absl::StrCat("poisoned leaf ", JsonString(LeafKey(troop, warrior, group))));
      Finish(method_name, target, reply);
      return;
    }
    reply->status = 200;
    LeafDocument(troop, warrior, group, &reply->body);
    bool truncated = false;
    ApplyFaults(target, reply, &truncated);
    if (reply->status == 200 && reply->action != Reply::Action::kReset && !truncated) {
      leaves_served_.fetch_add(1, std::memory_order_relaxed);
      const uint64_t bit = uint64_t{1} << (leaf % 64);
      if ((served_bits_[leaf / 64].fetch_or(bit, std::memory_order_relaxed) & bit) == 0) {
        distinct_leaves_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    Finish(method_name, target, reply);
    return;
  }

  Listing(level, troop, warrior, path, query, reply);
  if (reply->status == 200) {
    bool truncated = false;
    ApplyFaults(target, reply, &truncated);
  }
  Finish(method_name, target, reply);
}

void MockApiServer::Impl::Listing(Level level, int troop, int warrior, absl::string_view raw_path,
                                  absl::string_view query, Reply* reply) {
  const MockApiOptions& o = options_;
  const int64_t total = level == kTroops ? o.troops : level == kWarriors ? o.warriors : o.groups;
  // Query parameters (unknown ones are ignored).
  std::optional<std::string> cursor, page, offset, limit;
  std::string value;
  for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = kv.find('=');
    const absl::string_view key = kv.substr(0, eq);
    const absl::string_view raw = eq == absl::string_view::npos ? absl::string_view() : kv.substr(eq + 1);
    std::optional<std::string>* slot = key == "cursor" ? &cursor
                                       : key == "page" ? &page
                                       : key == "offset" ? &offset
                                       : key == "limit" ? &limit
                                                        : nullptr;
    if (slot == nullptr) continue;
    if (!PercentDecode(raw, true, &value)) {
      Error(reply, 400, "bad request", absl::StrCat("malformed percent-encoding in query ", JsonString(kv)));
      return;
    }
    *slot = value;
  }

  // The listing's identity, for cursor checksums: the decoded key.
  std::string listing_key = level == kTroops     ? std::string("troops")
                            : level == kWarriors ? absl::StrCat("troops/", troop_ids_[troop], "/warriors")
                                                 : absl::StrCat(WarriorKey(troop, warrior), "/groups");
  auto cursor_for = [&](int64_t off) {
    return absl::StrFormat("o%d.%04x", off, HashBytes(o.seed, absl::StrCat(listing_key, "#", off)) & 0xffff);
  };

  int64_t start = 0;
  int64_t count = o.page_size;
  const bool cursor_style = o.pagination == Pagination::kCursor || o.pagination == Pagination::kNextUrl ||
                            o.pagination == Pagination::kLinkHeader;
  int64_t page_number = 1;
  if (cursor_style) {
    if (cursor.has_value() && !cursor->empty()) {
      int64_t off = -1;
      const size_t dot = cursor->find('.');
      if ((*cursor)[0] != 'o' || dot == std::string::npos ||
          !absl::SimpleAtoi(absl::string_view(*cursor).substr(1, dot - 1), &off) || off <= 0 || off >= total ||
          cursor_for(off) != *cursor) {
        Error(reply, 400, "bad request",
              absl::StrCat("invalid cursor ", JsonString(*cursor), " for listing ", JsonString(listing_key)));
        return;
      }
      start = off;
    }
  } else if (o.pagination == Pagination::kPage) {
    if (page.has_value() && (!absl::SimpleAtoi(*page, &page_number) || page_number < 1)) {
      Error(reply, 400, "bad request",
            absl::StrCat("page must be an integer >= 1, got ", JsonString(*page), " for listing ",
                         JsonString(listing_key)));
      return;
    }
    start = page_number > total ? total : (page_number - 1) * o.page_size;
  } else {  // kOffset
    if (offset.has_value() && (!absl::SimpleAtoi(*offset, &start) || start < 0)) {
      Error(reply, 400, "bad request",
            absl::StrCat("offset must be an integer >= 0, got ", JsonString(*offset), " for listing ",
                         JsonString(listing_key)));
      return;
    }
    if (limit.has_value() && (!absl::SimpleAtoi(*limit, &count) || count < 1 || count > kMaxClientLimit)) {
      Error(reply, 400, "bad request",
            absl::StrCat("limit must be an integer in 1..1000, got ", JsonString(*limit), " for listing ",
                         JsonString(listing_key)));
      return;
    }
  }
  start = std::min(start, total);
  const int64_t end = std::min(total, start + count);

  reply->status = 200;
  if (level == kGroups && poison_listing_[WarriorIndex(troop, warrior)]) {
    fault_poison_.fetch_add(1, std::memory_order_relaxed);
    reply->body = "{\"items\":[{\"id\":\"g1\"";
    return;
  }

  std::string& body = reply->body;
  body.clear();
  body.reserve(64 + (end - start) * 40);
  body += "{\"items\":[";
  const char* singular = level == kTroops ? "troop" : level == kWarriors ? "warrior" : "group";
  for (int64_t i = start; i < end; ++i) {
    if (i > start) body.push_back(',');
    body += "{\"id\":";
    if (level == kTroops) {
      AppendJsonString(&body, troop_ids_[i]);
    } else {
      absl::StrAppend(&body, "\"", level == kWarriors ? "w" : "g", i + 1, "\"");
    }
    absl::StrAppend(&body, ",\"name\":\"", singular, " ", i + 1, "\"}");
  }
  body += "]";
  const bool more = end < total;
  switch (o.pagination) {
    case Pagination::kCursor:
      body += ",\"next_cursor\":";
      body += more ? absl::StrCat("\"", cursor_for(end), "\"") : "null";
      break;
    case Pagination::kNextUrl:
      body += ",\"next\":";
      if (more) {
        AppendJsonString(&body, absl::StrCat(base_url_, raw_path, "?cursor=", cursor_for(end)));
      } else {
        body += "null";
      }
      break;
    case Pagination::kLinkHeader:
      if (more) reply->link = absl::StrCat("<", base_url_, raw_path, "?cursor=", cursor_for(end), ">; rel=\"next\"");
      break;
    case Pagination::kPage:
      absl::StrAppend(&body, ",\"page\":", page_number, ",\"page_size\":", o.page_size);
      break;
    case Pagination::kOffset:
      absl::StrAppend(&body, ",\"offset\":", start, ",\"limit\":", count, ",\"total\":", total);
      break;
  }
  body += "}";
}

void MockApiServer::Impl::LeafDocument(int troop, int warrior, int group, std::string* out) const {
  const std::string key = LeafKey(troop, warrior, group);
  uint64_t h = HashBytes(0x6d6f636b, key);  // independent of the seed: stable content
  out->clear();
  out->reserve(512);
  *out += "{\"troop\":";
  AppendJsonString(out, troop_ids_[troop]);
  absl::StrAppend(out, ",\"warrior\":\"w", warrior + 1, "\",\"group\":\"g", group + 1, "\",\"key\":");
  AppendJsonString(out, key);
  static constexpr const char* kUnits[] = {"celsius", "kilopascal", "percent", "lux"};
  absl::StrAppendFormat(out, ",\"version\":%d,\"unit\":\"%s\",\"checksum\":\"%016x\",\"readings\":[",
                        1 + h % 9, kUnits[(h >> 8) % 4], h);
  const int n = 5 + static_cast<int>((h >> 16) % 6);
  int64_t ts = 1'700'000'000 + static_cast<int64_t>((h >> 20) % 1'000'000);
  for (int i = 0; i < n; ++i) {
    h = Mix(h);
    ts += 60;
    const int64_t centi = static_cast<int64_t>(h % 200'000) - 100'000;
    absl::StrAppendFormat(out, "%s{\"ts\":%d,\"value\":%s%d.%02d}", i == 0 ? "" : ",", ts, centi < 0 ? "-" : "",
                          std::abs(centi) / 100, std::abs(centi) % 100);
  }
  *out += "]}";
}

void MockApiServer::Impl::ApplyFaults(absl::string_view target, Reply* reply, bool* truncated) {
  if (!faults_enabled_) return;
  const MockApiOptions& o = options_;
  const uint64_t target_hash = HashBytes(o.seed, target);
  uint32_t n = 0;
  {
    Shard& shard = shards_[target_hash % kShards];
    std::lock_guard<std::mutex> lock(shard.mu);
    n = shard.counts[target]++;
  }
  const uint64_t h = Mix(target_hash ^ Mix(n + 1));
  double u = ToUnit(h);
  if ((u -= o.error_rate) < 0) {
    fault_error_.fetch_add(1, std::memory_order_relaxed);
    const unsigned status = (Mix(h) & 1) ? 503 : 500;
    Error(reply, status, status == 503 ? "service unavailable" : "internal error",
          absl::StrCat("injected fault for ", JsonString(target), " (request #", n + 1, ")"));
  } else if ((u -= o.reset_rate) < 0) {
    fault_reset_.fetch_add(1, std::memory_order_relaxed);
    reply->action = Reply::Action::kReset;
  } else if ((u -= o.slow_rate) < 0) {
    fault_slow_.fetch_add(1, std::memory_order_relaxed);
    reply->action = Reply::Action::kSlow;
  } else if ((u -= o.truncate_rate) < 0) {
    fault_truncate_.fetch_add(1, std::memory_order_relaxed);
    reply->body.resize(reply->body.size() / 2);
    *truncated = true;
  }
}

void MockApiServer::Impl::Finish(absl::string_view method_name, absl::string_view target, Reply* reply) {
  if (reply->action != Reply::Action::kReset && reply->status < status_.size()) {
    status_[reply->status].fetch_add(1, std::memory_order_relaxed);
  }
  if (log_ != nullptr) Log(method_name, target, *reply);
}

void MockApiServer::Impl::Log(absl::string_view method_name, absl::string_view target, const Reply& reply) {
  const std::string line =
      absl::StrCat(method_name, " ", target, " ",
                   reply.action == Reply::Action::kReset ? std::string("reset") : absl::StrCat(reply.status), "\n");
  std::lock_guard<std::mutex> lock(log_mu_);
  std::fwrite(line.data(), 1, line.size(), log_);
  std::fflush(log_);
}

void MockApiServer::Impl::RateLimitHeaders(Reply* reply) const {
  if (!options_.rate_limit_headers && !options_.x_rate_limit_headers) return;
  // The GCRA limiter seen through a one-second window: at most rate + burst
  // in any second (the limit and policy), and what could still be granted
  // within the next second (available tokens plus a second's refill).
  const RateLimiterState state = global_limiter_->State();
  const double rate = state.rate_per_second;
  const int64_t limit = static_cast<int64_t>(std::floor(rate)) + state.burst;
  const int64_t remaining =
      std::clamp<int64_t>(static_cast<int64_t>(std::floor(state.available + rate)), 0, limit);
  if (options_.rate_limit_headers) {
    reply->headers.emplace_back("RateLimit-Limit", absl::StrCat(limit));
    reply->headers.emplace_back("RateLimit-Remaining", absl::StrCat(remaining));
    reply->headers.emplace_back("RateLimit-Reset", "1");
    reply->headers.emplace_back("RateLimit-Policy", absl::StrCat(limit, ";w=1"));
  }
  if (options_.x_rate_limit_headers) {
    reply->headers.emplace_back("X-RateLimit-Limit", absl::StrCat(limit));
    reply->headers.emplace_back("X-RateLimit-Remaining", absl::StrCat(remaining));
    reply->headers.emplace_back("X-RateLimit-Reset", "1");
  }
}

absl::Status MockApiServer::Impl::SetRate(double rate, int burst) {
  if (!std::isfinite(rate) || rate < 0) {
    return absl::InvalidArgumentError(absl::StrCat("mock api SetRate: rate must be finite and >= 0, got ", rate));
  }
  if (burst < 1) return absl::InvalidArgumentError(absl::StrCat("mock api SetRate: burst must be >= 1, got ", burst));
  std::lock_guard<std::mutex> lock(set_rate_mu_);
  if (rate == 0) {
    global_limited_.store(false, std::memory_order_release);
    return absl::OkStatus();
  }
  if (absl::Status s = global_limiter_->SetRate(rate, burst); !s.ok()) return s;
  global_limited_.store(true, std::memory_order_release);
  return absl::OkStatus();
}

void MockApiServer::Impl::Control(absl::string_view query, Reply* reply) {
  double rate = -1;
  int burst = this->burst();
  for (absl::string_view param : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(param, absl::MaxSplits('=', 1));
    if (kv.first == "rate" && !absl::SimpleAtod(kv.second, &rate)) rate = -1;
    if (kv.first == "burst" && !absl::SimpleAtoi(kv.second, &burst)) burst = 0;
  }
  if (rate < 0) {
    Error(reply, 400, "bad request", "expected /_control?rate=R[&burst=B] with R >= 0 requests per second");
    return;
  }
  if (absl::Status s = SetRate(rate, burst); !s.ok()) {
    Error(reply, 400, "bad request", s.message());
    return;
  }
  reply->body = absl::StrCat("{\"rate\":", this->rate(), ",\"burst\":", this->burst(), "}");
}

MockApiStats MockApiServer::Impl::Stats() {
  MockApiStats s;
  auto get = [](const std::atomic<int64_t>& a) { return a.load(std::memory_order_relaxed); };
  s.requests = get(requests_);
  s.rejected = get(rejected_);
  const int64_t now = NowMs();
  s.max_requests_in_any_1s = arrivals_.Max(now);
  s.max_accepted_in_any_1s = accepted_.Max(now);
  s.by_level.troops = get(by_level_[kTroops]);
  s.by_level.warriors = get(by_level_[kWarriors]);
  s.by_level.groups = get(by_level_[kGroups]);
  s.by_level.data = get(by_level_[kData]);
  for (size_t code = 0; code < status_.size(); ++code) {
    if (const int64_t n = get(status_[code]); n != 0) s.status[static_cast<int>(code)] = n;
  }
  s.faults.error = get(fault_error_);
  s.faults.reset = get(fault_reset_);
  s.faults.slow = get(fault_slow_);
  s.faults.truncate = get(fault_truncate_);
  s.faults.poison = get(fault_poison_);
  s.leaves_served = get(leaves_served_);
  s.distinct_leaves_served = get(distinct_leaves_);
  return s;
}

void MockApiServer::Impl::ResetStats() {
  auto zero = [](std::atomic<int64_t>& a) { a.store(0, std::memory_order_relaxed); };
  zero(requests_);
  zero(rejected_);
  for (auto& a : by_level_) zero(a);
  for (auto& a : status_) zero(a);
  zero(fault_error_);
  zero(fault_reset_);
  zero(fault_slow_);
  zero(fault_truncate_);
  zero(fault_poison_);
  zero(leaves_served_);
  zero(distinct_leaves_);
  for (int64_t i = 0; i < (leaves_ + 63) / 64; ++i) served_bits_[i].store(0, std::memory_order_relaxed);
  const int64_t now = NowMs();
  arrivals_.Reset(now);
  accepted_.Reset(now);
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.counts.clear();
  }
}

std::vector<std::string> MockApiServer::Impl::PoisonLeaves() const {
  std::vector<std::string> out;
  for (int t = 0; t < options_.troops; ++t) {
    for (int w = 0; w < options_.warriors; ++w) {
      if (poison_listing_[WarriorIndex(t, w)]) continue;  // unreachable
      for (int g = 0; g < options_.groups; ++g) {
        if (poison_leaf_[LeafIndex(t, w, g)]) out.push_back(LeafKey(t, w, g));
      }
    }
  }
  return out;
}

std::vector<std::string> MockApiServer::Impl::PoisonListings() const {
  std::vector<std::string> out;
  for (int t = 0; t < options_.troops; ++t) {
    for (int w = 0; w < options_.warriors; ++w) {
      if (poison_listing_[WarriorIndex(t, w)]) out.push_back(WarriorKey(t, w));
    }
  }
  return out;
}

int64_t MockApiServer::Impl::DeliverableLeaves() const {
  int64_t n = 0;
  for (int t = 0; t < options_.troops; ++t) {
    for (int w = 0; w < options_.warriors; ++w) {
      if (poison_listing_[WarriorIndex(t, w)]) continue;
      for (int g = 0; g < options_.groups; ++g) n += poison_leaf_[LeafIndex(t, w, g)] ? 0 : 1;
    }
  }
  return n;
}

std::string MockApiServer::Impl::ExpectedJson() const {
  const MockApiOptions& o = options_;
  auto pages = [&](int64_t items) { return (items + o.page_size - 1) / o.page_size; };
  const int64_t warriors_total = int64_t{o.troops} * o.warriors;
  const int64_t listing_pages = pages(o.troops) + o.troops * pages(o.warriors) + warriors_total * pages(o.groups);
  const int64_t poison_listings = static_cast<int64_t>(PoisonListings().size());
  const int64_t reachable = (warriors_total - poison_listings) * o.groups;
  return absl::StrCat("{\"leaves\":", leaves_, ",\"listings\":", listing_pages,
                      ",\"listing_resources\":", 1 + o.troops + warriors_total, ",\"reachable_leaves\":", reachable,
                      ",\"deliverable_leaves\":", DeliverableLeaves(),
                      ",\"poison_leaves\":", PoisonLeaves().size(), ",\"poison_listings\":", poison_listings,
                      ",\"troops\":", o.troops, ",\"warriors\":", o.warriors, ",\"groups\":", o.groups,
                      ",\"page_size\":", o.page_size, ",\"pagination\":\"", PaginationName(o.pagination), "\"}");
}

// ---------------------------------------------------------------------------
// The public class.

absl::StatusOr<std::unique_ptr<MockApiServer>> MockApiServer::Start(MockApiOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  try {
    if (absl::Status s = impl->Init(); !s.ok()) return s;
  } catch (const std::exception& e) {  // Asio/Beast failures we did not foresee
    return absl::InternalError(absl::StrCat("mock api failed to start: ", e.what()));
  }
  return std::unique_ptr<MockApiServer>(new MockApiServer(std::move(impl)));
}

MockApiServer::MockApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MockApiServer::~MockApiServer() = default;

uint16_t MockApiServer::port() const { return impl_->port(); }
std::string MockApiServer::base_url() const { return impl_->base_url(); }
const MockApiOptions& MockApiServer::options() const { return impl_->options(); }
MockApiStats MockApiServer::stats() const { return impl_->Stats(); }
void MockApiServer::ResetStats() { impl_->ResetStats(); }
std::vector<std::string> MockApiServer::poison_leaves() const { return impl_->PoisonLeaves(); }
std::vector<std::string> MockApiServer::poison_listings() const { return impl_->PoisonListings(); }
int64_t MockApiServer::expected_leaves() const { return impl_->leaves(); }
int64_t MockApiServer::deliverable_leaves() const { return impl_->DeliverableLeaves(); }
void MockApiServer::Stop() { impl_->Stop(); }
absl::Status MockApiServer::SetRate(double rate, int burst) { return impl_->SetRate(rate, burst); }
double MockApiServer::rate() const { return impl_->rate(); }

fanout::CrawlPlan CrawlPlanFor(const std::string& base_url, Pagination pagination) {
  fanout::Pagination paging;
  switch (pagination) {
    case Pagination::kCursor:
      paging = fanout::Pagination::NextCursor("/next_cursor", "cursor");
      break;
    case Pagination::kNextUrl:
      paging = fanout::Pagination::NextUrl("/next");
      break;
    case Pagination::kLinkHeader:
      paging = fanout::Pagination::LinkHeader();
      break;
    case Pagination::kPage:
      paging = fanout::Pagination::Page("page", 1);
      break;
    case Pagination::kOffset:
      paging = fanout::Pagination::Offset("offset", "limit", 100);
      break;
  }
  fanout::CrawlPlan plan;
  plan.base_url = base_url;
  plan.levels = {
      {.name = "troops", .url = "/troops", .items_pointer = "/items", .bind = "troop", .pagination = paging},
      {.name = "warriors", .url = "/troops/{troop}/warriors", .items_pointer = "/items", .bind = "warrior",
       .pagination = paging},
      {.name = "groups", .url = "/troops/{troop}/warriors/{warrior}/groups", .items_pointer = "/items",
       .bind = "group", .pagination = paging},
      {.name = "data", .url = "/troops/{troop}/warriors/{warrior}/groups/{group}/data"},
  };
  return plan;
}

}  // namespace fanout::mock
