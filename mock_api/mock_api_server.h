// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// MockApiServer: a stand-in for a hierarchical vendor API, used by tests,
// examples, the demo and the benchmarks. It serves, over HTTP/1.1 keep-alive
// on loopback (Boost.Beast), a tree synthesised from the URL:
//
//   GET /troops                                                  listing
//   GET /troops/{troop}/warriors                                 listing
//   GET /troops/{troop}/warriors/{warrior}/groups                listing
//   GET /troops/{troop}/warriors/{warrior}/groups/{group}/data   leaf document
//
// with ids "t1".."tN", "w1".."wN", "g1".."gN" (or, with hostile_ids, a few
// troops whose ids need percent-encoding). Listings page in one of five styles
// (Pagination). Leaf documents are deterministic JSON derived from a hash of
// their path, identical across runs and seeds.
//
// Like a real vendor it enforces its own rate limit (429 + Retry-After) and,
// deterministically by seed, misbehaves: 500/503s, connection resets, slow and
// truncated responses, and "poison" leaves and listings that always fail. The
// decision for a request is a function of (seed, path+query, n), where n counts
// earlier requests for the same path+query, so a retry gets a fresh decision
// but a rerun of the same request sequence sees the same statuses.
//
// Introspection endpoints (never rate limited, never faulty):
//   GET /_stats           MockApiStats as JSON
//   GET /_poison          {"leaves":[...],"listings":[...]} (see poison_leaves())
//   GET /_expected        tree totals (leaves, listing pages, reachable leaves...)
//   GET|POST /_reset_stats  zeroes the counters
//   GET|POST /_control?rate=R[&burst=B]  SetRate(R, B) (B defaults to the
//                         current burst); answers {"rate":R,"burst":B}
//
// Thread-safety: every public member function may be called from any thread
// except the server's own io threads, concurrently with requests.

#ifndef FANOUT_MOCK_API_MOCK_API_SERVER_H_
#define FANOUT_MOCK_API_MOCK_API_SERVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fanout/crawl_plan.h"

namespace fanout::mock {

// How listings are paged.
enum class Pagination {
  // ?cursor=X; the body has "next_cursor": "X", or null on the last page.
  kCursor,
  // The body has "next": "http://127.0.0.1:PORT/...?cursor=X" (absolute), or
  // null on the last page.
  kNextUrl,
  // RFC 8288 header `Link: <http://127.0.0.1:PORT/...?cursor=X>; rel="next"`
  // on every page but the last; the body has only "items".
  kLinkHeader,
  // ?page=N, 1-based; any page after the last answers {"items":[]}.
  kPage,
  // ?offset=O&limit=L (L defaults to page_size, at most 1000); an offset at
  // or past the end answers empty items.
  kOffset,
};

// "cursor", "next_url", "link", "page", "offset" → the enum; InvalidArgument
// naming the value otherwise.
absl::StatusOr<Pagination> ParsePagination(std::string_view name);
// The inverse of ParsePagination.
std::string PaginationName(Pagination pagination);

struct MockApiOptions {
  // Tree shape: troops x warriors (per troop) x groups (per warrior) leaves.
  // Each >= 1; the product is at most 50,000,000.
  int troops = 400;
  int warriors = 12;
  int groups = 5;
  int page_size = 100;  // items per listing page, 1..1000
  Pagination pagination = Pagination::kCursor;

  // The server's own limit over all API requests (not /_ paths): `rate`
  // requests per second with `burst` at once (GCRA). 0 = unlimited.
  double rate = 0;
  int burst = 1;  // >= 1; also the burst of the per-level limits
  // Describe the global limit (when there is one) on every API response, as
  // seen through a one-second window: at most L = floor(rate) + burst in any
  // second, and R = what could still be granted within the next second
  // (available tokens plus a second's refill, at most L):
  //   rate_limit_headers:   RateLimit-Limit: L, RateLimit-Remaining: R,
  //                         RateLimit-Reset: 1, RateLimit-Policy: L;w=1
  //   x_rate_limit_headers: X-RateLimit-Limit: L, X-RateLimit-Remaining: R,
  //                         X-RateLimit-Reset: 1
  bool rate_limit_headers = false;
  bool x_rate_limit_headers = false;
  // If > 0, additionally each level (troops, warriors, groups, data) is
  // limited to `level_rate` requests per second on its own.
  double level_rate = 0;

  // Fractions of requests (each in [0, 1], sum <= 1) that, instead of their
  // normal 200, get: a 500 or a 503 (50/50, no Retry-After); a connection
  // closed (with RST) without a response; the normal response delayed by
  // `slow_ms`; a 200 whose JSON body is cut in half. Faults apply only to
  // requests that would otherwise answer 200.
  double error_rate = 0;
  double reset_rate = 0;
  double slow_rate = 0;
  int slow_ms = 200;  // 0..600,000
  double truncate_rate = 0;

  // Per mille of leaves that always answer 500, and of warriors whose groups
  // listing always answers 200 with malformed JSON. Chosen by hash(seed, path).
  int poison_leaf_permille = 0;
  int poison_listing_permille = 0;

  // Troops t2..t7 (those that exist) get ids that must be percent-encoded in
  // a URL path: "../../etc", "..", a 300-character id, "δοκιμή-✓", "a/b",
  // "50% off".
  bool hostile_ids = false;

  uint64_t seed = 1;  // for fault and poison decisions
  int threads = 1;    // io threads, 1..64
  std::string host = "127.0.0.1";  // address to bind (and to put in absolute URLs)
  uint16_t port = 0;               // 0 = let the kernel pick

  // A connection idle (or stalled mid-request) for this long is closed.
  int idle_timeout_ms = 30000;  // >= 1
  // Requests larger than this (headers + body) are answered 413 and closed.
  int max_request_bytes = 64 * 1024;  // >= 1024

  // If not empty, one line per API request is appended to this file:
  // "METHOD target status" (status "reset" for dropped connections), flushed
  // per line.
  std::string request_log_path;
};

// Counters since Start or the last ResetStats, as served by GET /_stats.
struct MockApiStats {
  int64_t requests = 0;  // API requests received (including rejected ones)
  int64_t rejected = 0;  // of those, answered 429 by the rate limit
  // Most API requests that arrived, and that were not rejected, within any
  // 1-second window (millisecond resolution: 1000 one-ms buckets).
  int64_t max_requests_in_any_1s = 0;
  int64_t max_accepted_in_any_1s = 0;
  struct ByLevel {
    int64_t troops = 0;
    int64_t warriors = 0;
    int64_t groups = 0;
    int64_t data = 0;
  } by_level;  // API requests whose path has the shape of that level
  std::map<int, int64_t> status;  // API responses by status code (non-zero only)
  struct Faults {
    int64_t error = 0;     // injected 500/503
    int64_t reset = 0;     // connections dropped
    int64_t slow = 0;      // delayed responses
    int64_t truncate = 0;  // truncated bodies
    int64_t poison = 0;    // poison leaf 500s and malformed poison listings
  } faults;
  int64_t leaves_served = 0;           // complete 200 leaf documents sent
  int64_t distinct_leaves_served = 0;  // distinct leaves among those

  // The /_stats JSON:
  // {"requests":N,"rejected":N,"max_requests_in_any_1s":N,
  //  "max_accepted_in_any_1s":N,"by_level":{...},"status":{"200":N,...},
  //  "faults":{...},"leaves_served":N,"distinct_leaves_served":N}
  std::string ToJson() const;
};

// The crawl plan for the mock's tree (troops -> warriors -> groups -> data)
// served at `base_url` with `pagination`: what tests and benchmarks crawl.
fanout::CrawlPlan CrawlPlanFor(const std::string& base_url, Pagination pagination = Pagination::kCursor);

class MockApiServer {
 public:
  // Validates `options`, binds and starts serving on options.threads io
  // threads. InvalidArgument naming the field and value for bad options;
  // Unavailable naming the address if it cannot be bound (port in use);
  // FailedPrecondition naming the file if request_log_path cannot be opened
  // for appending. Never throws.
  static absl::StatusOr<std::unique_ptr<MockApiServer>> Start(MockApiOptions options);

  // Stops (see Stop).
  ~MockApiServer();

  MockApiServer(const MockApiServer&) = delete;
  MockApiServer& operator=(const MockApiServer&) = delete;

  // The bound port (valid after Stop too).
  uint16_t port() const;
  // "http://127.0.0.1:PORT" (with options.host), no trailing slash.
  std::string base_url() const;
  // The options it started with (SetRate does not change them).
  const MockApiOptions& options() const;

  // Changes the global limit from now on: `rate` requests per second (0 = no
  // global limit) with `burst` at once; tokens owed are repriced at the new
  // rate. InvalidArgument for a rate not finite or < 0, or burst < 1.
  // Thread-safe; takes effect for requests decided after it returns.
  absl::Status SetRate(double rate, int burst);
  // The global limit's rate now (0 = none).
  double rate() const;

  // A snapshot of the counters. Cheap (a few hundred atomic loads).
  MockApiStats stats() const;
  // Zeroes the counters, the sliding-window maxima, the distinct-leaf set
  // and the per-path request counts that fault decisions use (so a rerun of a
  // request sequence after a reset sees the same faults). Rate limiter state
  // is kept.
  void ResetStats();

  // Keys ("troops/t7/warriors/w3/groups/g2", ids decoded) of the poisoned
  // leaves a complete crawl reaches, i.e. not under a poisoned listing: exactly
  // the leaves such a crawl must dead-letter. In tree order.
  std::vector<std::string> poison_leaves() const;
  // Keys ("troops/t9/warriors/w1") of the warriors whose groups listing is
  // poisoned. In tree order.
  std::vector<std::string> poison_listings() const;
  // troops * warriors * groups.
  int64_t expected_leaves() const;
  // Leaves a complete crawl can deliver: not poisoned, not under a poisoned
  // listing.
  int64_t deliverable_leaves() const;

  // Stops accepting, closes every connection (requests in flight, including
  // delayed ones, are dropped) and joins the io threads. Bounded: does not
  // wait for clients. Idempotent. Must not be called from a request handler.
  void Stop();

  class Impl;  // defined in mock_api_server.cc

 private:
  explicit MockApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fanout::mock

#endif  // FANOUT_MOCK_API_MOCK_API_SERVER_H_
