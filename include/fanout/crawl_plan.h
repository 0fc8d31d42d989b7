// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// CrawlPlan: what to crawl. A list of levels, any depth: each listing level
// names the URL template of its listing, where the children are in the
// response and how to page through it; the last level is the leaf, whose
// documents go to the sinks. The plan knows nothing of how requests are sent.
//
//   level 0 "troops":   /troops                              -> items /items, id "id", binds {troop}
//   level 1 "warriors": /troops/{troop}/warriors             -> binds {warrior}
//   level 2 "groups":   /troops/{troop}/warriors/{warrior}/groups -> binds {group}
//   level 3 "data":     /troops/{troop}/warriors/{warrior}/groups/{group}/data (leaf)

#ifndef FANOUT_CRAWL_PLAN_H_
#define FANOUT_CRAWL_PLAN_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fanout/rate_limiter.h"
#include "fanout/transport.h"

namespace fanout {

// How a listing continues past its first page.
struct Pagination {
  enum class Kind {
    kNone,        // one page
    kNextCursor,  // the body holds a cursor at `pointer`; the next page is the
                  // same URL with query parameter `param` set to it
    kNextUrl,     // the body holds the next page's URL at `pointer`
    kLinkHeader,  // RFC 8288: Link: <url>; rel="next"
    kPage,        // query `param` = start, start+1, ... until an empty page
    kOffset,      // query `param` = 0, n, 2n, ... with `limit_param` = `limit`,
                  // until an empty page
  };
  Kind kind = Kind::kNone;
  std::string pointer;      // kNextCursor, kNextUrl: JSON pointer, e.g. "/next"
  std::string param;        // kNextCursor, kPage, kOffset: query parameter name
  int64_t start = 1;        // kPage: first page number
  std::string limit_param;  // kOffset: page-size parameter name
  int64_t limit = 100;      // kOffset: page size asked for

  static Pagination None() { return {}; }
  static Pagination NextCursor(std::string pointer, std::string param) {
    Pagination p;
    p.kind = Kind::kNextCursor;
    p.pointer = std::move(pointer);
    p.param = std::move(param);
    return p;
  }
  static Pagination NextUrl(std::string pointer) {
    Pagination p;
    p.kind = Kind::kNextUrl;
    p.pointer = std::move(pointer);
    return p;
  }
  static Pagination LinkHeader() {
    Pagination p;
    p.kind = Kind::kLinkHeader;
    return p;
  }
  static Pagination Page(std::string param, int64_t start = 1) {
    Pagination p;
    p.kind = Kind::kPage;
    p.param = std::move(param);
    p.start = start;
    return p;
  }
  static Pagination Offset(std::string param, std::string limit_param, int64_t limit) {
    Pagination p;
    p.kind = Kind::kOffset;
    p.param = std::move(param);
    p.limit_param = std::move(limit_param);
    p.limit = limit;
    return p;
  }
};

struct Level {
  // The level's name: the collection it lists ("troops"). Used in record
  // paths (troops/t1/...), stats and errors. Unique in the plan.
  std::string name;
  // URL template: relative to the plan's base_url ("/troops/{troop}/warriors")
  // or absolute. Placeholders name ids bound by ancestor levels or fields they
  // captured; values are percent-encoded when substituted.
  std::string url;
  // Listing levels only: JSON pointer to the array of children ("/items"; ""
  // for a top-level array), the field holding each child's id (string or
  // integer), and the placeholder name that id binds for deeper levels.
  std::string items_pointer;
  std::string id_field = "id";
  std::string bind;
  // Other fields of each child to bind for deeper levels, as placeholders of
  // the same name (strings or numbers).
  std::vector<std::string> capture;
  Pagination pagination;
  // The leaf only: whether its documents must be one valid JSON document. One
  // that is not (cut short by a broken upstream, an HTML error page with a
  // 200) is then an invalid response, retried like a failed request, instead
  // of being written. Turn off for leaves that are not JSON (CSV, binary).
  bool expect_json = true;
  // This level's own limits, on top of the global ones.
  std::optional<RateLimitSpec> rate;
  int max_in_flight = 0;  // 0 = no level cap
};

struct CrawlPlan {
  std::string base_url;  // "https://api.example.com" (scheme, host, port)
  std::vector<Level> levels;  // at least one; the last is the leaf
  // Whether a next-page URL may point to another origin than base_url.
  bool allow_other_origins = false;

  // Checks the plan: base URL http(s), unique non-empty level names, every
  // placeholder bound by an ancestor, JSON pointers well formed, pagination
  // complete. Errors name the level and field: `levels[2] "groups": items
  // pointer must be a JSON pointer such as "/items", got "items"`.
  absl::Status Validate() const;

  bool is_leaf(size_t level) const { return level + 1 == levels.size(); }
};

// Values bound so far on the way down: placeholder name -> value.
using Bindings = std::vector<std::pair<std::string, std::string>>;

// Expands a level's URL template with `bindings` (percent-encoding values) and
// resolves it against the plan's base. Errors name the level and placeholder.
absl::StatusOr<std::string> ExpandUrl(const CrawlPlan& plan, size_t level, const Bindings& bindings);

// The first page's URL of a listing level (the expanded URL plus the first
// page's query parameters for kPage/kOffset).
absl::StatusOr<std::string> FirstPageUrl(const CrawlPlan& plan, size_t level, const Bindings& bindings);

// One child found in a listing.
struct Child {
  std::string id;
  Bindings captured;  // `capture` fields found in the item
};

// One listing page, extracted.
struct ListingPage {
  std::vector<Child> children;
  std::optional<std::string> next_url;  // absolute; nullopt on the last page
};

// Extracts children and the next page from a listing response. Reusable, not
// thread-safe: one per thread (it keeps simdjson's parser buffers).
class ListingExtractor {
 public:
  ListingExtractor();
  ~ListingExtractor();

  // Errors (InvalidArgument) name the level, URL, pointer and what was found:
  // `level "groups": items pointer "/items" matched no array in response of
  // GET http://host/x (200, 312 bytes): found object`. A next link to another
  // origin than the plan's base is refused unless the plan allows it.
  absl::StatusOr<ListingPage> Extract(const CrawlPlan& plan, size_t level, const std::string& url,
                                      const Response& response);

  // OK if the response body is one valid JSON document; else InvalidArgument
  // naming the level, URL and simdjson's complaint. Validates the whole
  // document (simdjson's DOM parser, at GB/s), allocating nothing once warm.
  absl::Status CheckJson(const CrawlPlan& plan, size_t level, const std::string& url, const Response& response);

 private:
  struct Parser;
  std::unique_ptr<Parser> parser_;
};

// Sets query parameter `name` to `value` in `url` (replacing it if present).
std::string WithQueryParam(std::string_view url, std::string_view name, std::string_view value);

// scheme://host[:port] of an absolute URL, lower-cased; empty if not absolute.
std::string OriginOf(std::string_view url);

}  // namespace fanout

#endif  // FANOUT_CRAWL_PLAN_H_
