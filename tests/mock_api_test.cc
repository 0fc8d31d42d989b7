// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Tests of the mock vendor API over real loopback connections (port 0), with a
// small synchronous Beast client. Trees are small so every test runs in well
// under a second except those that measure delays.

#include "mock_api_server.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fanout::mock {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// A minimal keep-alive HTTP/1.1 client.

struct Response {
  bool dropped = false;  // the connection failed before a complete response
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class Client {
 public:
  explicit Client(uint16_t port) : port_(port) {}

  Response Get(const std::string& target) { return Send(http::verb::get, target); }

  Response Send(http::verb method, const std::string& target) {
    Response out;
    beast::error_code ec;
    if (!socket_.has_value()) {
      socket_.emplace(ioc_);
      socket_->connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ec);
      if (ec) {
        socket_.reset();
        out.dropped = true;
        return out;
      }
      buffer_.clear();
      ++connects_;
    }
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(true);
    http::write(*socket_, req, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    if (!ec) http::read(*socket_, buffer_, parser, ec);
    if (ec) {
      socket_.reset();
      out.dropped = true;
      return out;
    }
    const auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    out.body = res.body();
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(field.value());
    }
    if (!res.keep_alive()) socket_.reset();
    return out;
  }

  int connects() const { return connects_; }

 private:
  net::io_context ioc_;
  uint16_t port_;
  std::optional<tcp::socket> socket_;
  beast::flat_buffer buffer_;
  int connects_ = 0;
};

namespace pt = boost::property_tree;

std::optional<pt::ptree> ParseJson(const std::string& text) {
  std::istringstream in(text);
  pt::ptree tree;
  try {
    pt::read_json(in, tree);
  } catch (const pt::json_parser_error&) {
    return std::nullopt;
  }
  return tree;
}

// Percent-encodes everything but ALPHA / DIGIT / "-" / "_" / "~" (even ".",
// so ".." cannot be taken for a dot segment).
std::string Encode(const std::string& segment) {
  std::string out;
  for (unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

MockApiOptions SmallTree(Pagination pagination = Pagination::kCursor) {
  MockApiOptions o;
  o.troops = 23;
  o.warriors = 4;
  o.groups = 3;
  o.page_size = 5;
  o.pagination = pagination;
  return o;
}

std::unique_ptr<MockApiServer> StartOrDie(const MockApiOptions& options) {
  auto server = MockApiServer::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// Follows a listing's pagination to its end.
struct Listing {
  bool ok = true;  // every page was a 200 with valid JSON
  std::string error;
  std::vector<std::string> ids;
  int pages = 0;
};

Listing ListAll(Client& client, const MockApiServer& server, const std::string& path, int client_limit = 7) {
  Listing out;
  const Pagination style = server.options().pagination;
  std::string target = path;
  if (style == Pagination::kPage) target = path + "?page=1";
  if (style == Pagination::kOffset) target = path + "?offset=0&limit=" + std::to_string(client_limit);
  for (int guard = 0; guard < 10000; ++guard) {
    const Response r = client.Get(target);
    ++out.pages;
    std::optional<pt::ptree> json;
    if (r.status != 200 || !(json = ParseJson(r.body)) || !json->get_child_optional("items")) {
      out.ok = false;
      out.error = "GET " + target + " -> " + std::to_string(r.status) + " " + r.body;
      return out;
    }
    EXPECT_EQ(r.Header("content-type"), "application/json");
    size_t n = 0;
    for (const auto& item : json->get_child("items")) {
      out.ids.push_back(item.second.get<std::string>("id"));
      ++n;
    }
    std::string next;
    switch (style) {
      case Pagination::kCursor: {
        const std::string cursor = json->get<std::string>("next_cursor");
        if (cursor != "null") next = path + "?cursor=" + cursor;
        break;
      }
      case Pagination::kNextUrl: {
        const std::string url = json->get<std::string>("next");
        if (url != "null") {
          EXPECT_EQ(url.rfind(server.base_url() + "/", 0), 0u) << url;
          next = url.substr(server.base_url().size());
        }
        break;
      }
      case Pagination::kLinkHeader: {
        const std::string link = r.Header("link");
        std::smatch m;
        if (std::regex_match(link, m, std::regex(R"(<([^>]*)>; rel="next")"))) {
          EXPECT_EQ(m[1].str().rfind(server.base_url() + "/", 0), 0u) << link;
          next = m[1].str().substr(server.base_url().size());
        } else {
          EXPECT_EQ(link, "");
        }
        break;
      }
      case Pagination::kPage:
        if (n > 0) next = path + "?page=" + std::to_string(out.pages + 1);
        break;
      case Pagination::kOffset:
        if (n > 0) {
          next = path + "?offset=" + std::to_string(out.ids.size()) + "&limit=" + std::to_string(client_limit);
        }
        break;
    }
    if (next.empty()) return out;
    target = next;
  }
  ADD_FAILURE() << "pagination of " << path << " never ended";
  return out;
}

// Crawls the whole tree; leaf keys are "troops/{t}/warriors/{w}/groups/{g}"
// with decoded ids.
struct Crawl {
  std::vector<std::string> leaves_ok;
  std::vector<std::string> leaves_failed;
  std::vector<std::string> listings_failed;  // "troops/{t}/warriors/{w}"
  std::map<std::string, std::string> documents;
};

Crawl CrawlAll(Client& client, const MockApiServer& server) {
  Crawl out;
  const Listing troops = ListAll(client, server, "/troops");
  EXPECT_TRUE(troops.ok) << troops.error;
  for (const std::string& t : troops.ids) {
    const std::string tpath = "/troops/" + Encode(t);
    const Listing warriors = ListAll(client, server, tpath + "/warriors");
    EXPECT_TRUE(warriors.ok) << warriors.error;
    for (const std::string& w : warriors.ids) {
      const std::string wpath = tpath + "/warriors/" + Encode(w);
      const Listing groups = ListAll(client, server, wpath + "/groups");
      if (!groups.ok) {
        out.listings_failed.push_back("troops/" + t + "/warriors/" + w);
        continue;
      }
      for (const std::string& g : groups.ids) {
        const std::string key = "troops/" + t + "/warriors/" + w + "/groups/" + g;
        const Response r = client.Get(wpath + "/groups/" + Encode(g) + "/data");
        if (r.status == 200) {
          out.leaves_ok.push_back(key);
          out.documents[key] = r.body;
        } else {
          out.leaves_failed.push_back(key);
        }
      }
    }
  }
  return out;
}

std::vector<std::string> Ids(char prefix, int n) {
  std::vector<std::string> out;
  for (int i = 1; i <= n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

// ---------------------------------------------------------------------------
// Options.

TEST(MockApiOptionsTest, ParsePaginationNamesEveryStyle) {
  EXPECT_EQ(*ParsePagination("cursor"), Pagination::kCursor);
  EXPECT_EQ(*ParsePagination("next_url"), Pagination::kNextUrl);
  EXPECT_EQ(*ParsePagination("link"), Pagination::kLinkHeader);
  EXPECT_EQ(*ParsePagination("page"), Pagination::kPage);
  EXPECT_EQ(*ParsePagination("offset"), Pagination::kOffset);
  for (Pagination p : {Pagination::kCursor, Pagination::kNextUrl, Pagination::kLinkHeader, Pagination::kPage,
                       Pagination::kOffset}) {
    EXPECT_EQ(*ParsePagination(PaginationName(p)), p);
  }
  const auto bad = ParsePagination("pages");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("\"pages\""));
}

TEST(MockApiOptionsTest, StartRejectsBadOptionsNamingFieldAndValue) {
  struct Case {
    std::function<void(MockApiOptions&)> set;
    std::string field, value;
  };
  const std::vector<Case> cases = {
      {[](MockApiOptions& o) { o.troops = 0; }, "troops", "0"},
      {[](MockApiOptions& o) { o.page_size = 1001; }, "page_size", "1001"},
      {[](MockApiOptions& o) { o.burst = 0; }, "burst", "0"},
      {[](MockApiOptions& o) { o.rate = -1; }, "rate", "-1"},
      {[](MockApiOptions& o) { o.error_rate = 1.5; }, "error_rate", "1.5"},
      {[](MockApiOptions& o) { o.error_rate = o.reset_rate = 0.6; }, "reset_rate", "1.2"},
      {[](MockApiOptions& o) { o.poison_leaf_permille = 1001; }, "poison_leaf_permille", "1001"},
      {[](MockApiOptions& o) { o.threads = 0; }, "threads", "0"},
      {[](MockApiOptions& o) { o.host = "localhost:80"; }, "host", "localhost:80"},
  };
  for (const Case& c : cases) {
    MockApiOptions o = SmallTree();
    c.set(o);
    const auto server = MockApiServer::Start(o);
    ASSERT_FALSE(server.ok()) << c.field;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(server.status().message(), HasSubstr(c.field));
    EXPECT_THAT(server.status().message(), HasSubstr(c.value));
  }
}

TEST(MockApiServerTest, StartOnABusyPortFails) {
  auto first = StartOrDie(SmallTree());
  ASSERT_NE(first, nullptr);
  MockApiOptions o = SmallTree();
  o.port = first->port();
  const auto second = MockApiServer::Start(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr("127.0.0.1:" + std::to_string(first->port())));
  // The first one still serves.
  Client client(first->port());
  EXPECT_EQ(client.Get("/troops").status, 200);
}

// ---------------------------------------------------------------------------
// Listings and pagination.

class PaginationTest : public ::testing::TestWithParam<Pagination> {};

TEST_P(PaginationTest, CrawlsTheWholeTreeInOrder) {
  auto server = StartOrDie(SmallTree(GetParam()));
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->base_url(), "http://127.0.0.1:" + std::to_string(server->port()));
  Client client(server->port());

  const Listing troops = ListAll(client, *server, "/troops");
  ASSERT_TRUE(troops.ok) << troops.error;
  EXPECT_EQ(troops.ids, Ids('t', 23));
  const int expected_pages = GetParam() == Pagination::kOffset ? 23 / 7 + 1 + 1   // limit 7, then empty
                             : GetParam() == Pagination::kPage ? 23 / 5 + 1 + 1  // then the empty page
                                                               : 23 / 5 + 1;
  EXPECT_EQ(troops.pages, expected_pages);

  const Crawl crawl = CrawlAll(client, *server);
  EXPECT_EQ(crawl.leaves_ok.size(), 23u * 4 * 3);
  EXPECT_TRUE(crawl.leaves_failed.empty());
  EXPECT_TRUE(crawl.listings_failed.empty());
  EXPECT_EQ(std::set<std::string>(crawl.leaves_ok.begin(), crawl.leaves_ok.end()).size(), 23u * 4 * 3);
  EXPECT_EQ(crawl.leaves_ok.front(), "troops/t1/warriors/w1/groups/g1");
  EXPECT_EQ(crawl.leaves_ok.back(), "troops/t23/warriors/w4/groups/g3");

  const MockApiStats stats = server->stats();
  EXPECT_EQ(stats.by_level.data, 23 * 4 * 3);
  EXPECT_EQ(stats.leaves_served, 23 * 4 * 3);
  EXPECT_EQ(stats.distinct_leaves_served, 23 * 4 * 3);
  EXPECT_EQ(stats.status.at(200), stats.requests);
  EXPECT_EQ(stats.rejected, 0);
  EXPECT_EQ(client.connects(), 1);  // keep-alive throughout
}

TEST_P(PaginationTest, LastPageEndsTheListing) {
  MockApiOptions o = SmallTree(GetParam());
  o.page_size = 100;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  const Response r = client.Get("/troops/t2/warriors");
  ASSERT_EQ(r.status, 200);
  const auto json = ParseJson(r.body);
  ASSERT_TRUE(json);
  EXPECT_EQ(json->get_child("items").size(), 4u);
  EXPECT_EQ(json->get_child("items").front().second.get<std::string>("name"), "warrior 1");
  switch (GetParam()) {
    case Pagination::kCursor: EXPECT_EQ(json->get<std::string>("next_cursor"), "null"); break;
    case Pagination::kNextUrl: EXPECT_EQ(json->get<std::string>("next"), "null"); break;
    case Pagination::kLinkHeader: EXPECT_EQ(r.Header("link"), ""); break;
    case Pagination::kPage: {
      const auto after = ParseJson(client.Get("/troops/t2/warriors?page=2").body);
      ASSERT_TRUE(after);
      EXPECT_TRUE(after->get_child("items").empty());
      break;
    }
    case Pagination::kOffset: {
      const auto after = ParseJson(client.Get("/troops/t2/warriors?offset=4").body);
      ASSERT_TRUE(after);
      EXPECT_TRUE(after->get_child("items").empty());
      break;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllStyles, PaginationTest,
                         ::testing::Values(Pagination::kCursor, Pagination::kNextUrl, Pagination::kLinkHeader,
                                           Pagination::kPage, Pagination::kOffset),
                         [](const auto& info) { return PaginationName(info.param); });

TEST(MockApiServerTest, BadPagingValuesAre400) {
  struct Case {
    Pagination style;
    std::string target;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {Pagination::kCursor, "/troops?cursor=garbage", "garbage"},
      {Pagination::kCursor, "/troops?cursor=o5.0000", "o5.0000"},  // wrong checksum
      {Pagination::kCursor, "/troops?cursor=o999.0000", "o999.0000"},
      {Pagination::kNextUrl, "/troops?cursor=o-5.1234", "o-5.1234"},
      {Pagination::kPage, "/troops?page=0", "\\\"0\\\""},
      {Pagination::kPage, "/troops?page=abc", "abc"},
      {Pagination::kOffset, "/troops?offset=-1", "-1"},
      {Pagination::kOffset, "/troops?offset=0&limit=0", "limit"},
      {Pagination::kOffset, "/troops?offset=0&limit=1001", "1001"},
      {Pagination::kOffset, "/troops?offset=%zz", "percent-encoding"},
  };
  for (const Case& c : cases) {
    auto server = StartOrDie(SmallTree(c.style));
    ASSERT_NE(server, nullptr);
    Client client(server->port());
    const Response r = client.Get(c.target);
    EXPECT_EQ(r.status, 400) << c.target;
    const auto json = ParseJson(r.body);
    ASSERT_TRUE(json) << r.body;
    EXPECT_EQ(json->get<int>("status"), 400);
    EXPECT_THAT(r.body, HasSubstr(c.mentions)) << c.target;
  }
}

TEST(MockApiServerTest, CursorsFromAnotherListingAreRejected) {
  auto server = StartOrDie(SmallTree(Pagination::kCursor));
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  const auto first = ParseJson(client.Get("/troops").body);
  ASSERT_TRUE(first);
  const std::string cursor = first->get<std::string>("next_cursor");
  EXPECT_EQ(client.Get("/troops?cursor=" + cursor).status, 200);
  EXPECT_EQ(client.Get("/troops/t1/warriors?cursor=" + cursor).status, 400);
}

TEST(MockApiServerTest, OffsetAcceptsClientLimitsUpTo1000) {
  MockApiOptions o = SmallTree(Pagination::kOffset);
  o.troops = 1200;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  auto json = ParseJson(client.Get("/troops?offset=100&limit=1000").body);
  ASSERT_TRUE(json);
  EXPECT_EQ(json->get_child("items").size(), 1000u);
  EXPECT_EQ(json->get_child("items").front().second.get<std::string>("id"), "t101");
  json = ParseJson(client.Get("/troops?offset=1190&limit=1000").body);
  ASSERT_TRUE(json);
  EXPECT_EQ(json->get_child("items").size(), 10u);
  EXPECT_EQ(json->get<int>("total"), 1200);
  json = ParseJson(client.Get("/troops").body);  // no parameters: offset 0, page_size items
  ASSERT_TRUE(json);
  EXPECT_EQ(json->get_child("items").size(), 5u);
}

// ---------------------------------------------------------------------------
// Leaves, errors.

TEST(MockApiServerTest, LeafDocumentsAreDeterministicAndIndependentOfSeed) {
  MockApiOptions a = SmallTree();
  MockApiOptions b = SmallTree();
  b.seed = 99;
  auto server_a = StartOrDie(a);
  auto server_b = StartOrDie(b);
  ASSERT_NE(server_a, nullptr);
  ASSERT_NE(server_b, nullptr);
  Client client_a(server_a->port()), client_b(server_b->port());
  std::set<std::string> bodies;
  for (const std::string leaf : {"/troops/t1/warriors/w1/groups/g1/data", "/troops/t1/warriors/w1/groups/g2/data",
                                 "/troops/t23/warriors/w4/groups/g3/data"}) {
    const Response r1 = client_a.Get(leaf);
    const Response r2 = client_a.Get(leaf);
    const Response r3 = client_b.Get(leaf);
    ASSERT_EQ(r1.status, 200);
    EXPECT_EQ(r1.body, r2.body);
    EXPECT_EQ(r1.body, r3.body);
    EXPECT_GE(r1.body.size(), 300u);
    EXPECT_LE(r1.body.size(), 600u);
    EXPECT_EQ(r1.Header("content-length"), std::to_string(r1.body.size()));
    const auto json = ParseJson(r1.body);
    ASSERT_TRUE(json) << r1.body;
    EXPECT_EQ("/troops/" + json->get<std::string>("troop") + "/warriors/" + json->get<std::string>("warrior") +
                  "/groups/" + json->get<std::string>("group") + "/data",
              leaf);
    EXPECT_GE(json->get_child("readings").size(), 4u);
    bodies.insert(r1.body);
  }
  EXPECT_EQ(bodies.size(), 3u);  // different leaves, different documents
  // Pinned, so content stays stable across versions (sinks compare runs).
  EXPECT_THAT(*bodies.begin(), HasSubstr("\"readings\":[{\"ts\":"));
}

TEST(MockApiServerTest, UnknownIdsAndPathsAre404) {
  auto server = StartOrDie(SmallTree());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/troops/t24/warriors", "t24"},
      {"/troops/t0/warriors", "t0"},
      {"/troops/t01/warriors", "t01"},
      {"/troops/t1/warriors/w5/groups", "w5"},
      {"/troops/t1/warriors/w1/groups/g4/data", "g4"},
      {"/troops/t1/warriors/w1/groups/g1", "no such path"},
      {"/troops/t1/warriors/w1/groups/g1/data/extra", "no such path"},
      {"/troops/", "no such path"},
      {"/nope", "no such path"},
      {"/", "no such path"},
      {"/_nope", "introspection"},
  };
  for (const auto& [target, mentions] : cases) {
    const Response r = client.Get(target);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(r.Header("content-type"), "application/json");
    const auto json = ParseJson(r.body);
    ASSERT_TRUE(json) << r.body;
    EXPECT_EQ(json->get<std::string>("error"), "not found");
    EXPECT_THAT(r.body, HasSubstr(mentions)) << target;
  }
  EXPECT_EQ(client.connects(), 1);  // errors keep the connection
  EXPECT_EQ(server->stats().status.at(404), 10);  // /_nope is not an API request
}

TEST(MockApiServerTest, NonGetIs405) {
  auto server = StartOrDie(SmallTree());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  for (http::verb method : {http::verb::post, http::verb::put, http::verb::delete_}) {
    const Response r = client.Send(method, "/troops/t1/warriors/w1/groups/g1/data");
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(r.Header("allow"), "GET");
    EXPECT_TRUE(ParseJson(r.body));
  }
  EXPECT_EQ(client.Send(http::verb::post, "/troops").status, 405);
  EXPECT_EQ(client.Send(http::verb::post, "/elsewhere").status, 404);
  EXPECT_EQ(server->stats().status.at(405), 4);
}

TEST(MockApiServerTest, OversizedRequestIs413AndCloses) {
  auto server = StartOrDie(SmallTree());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  const Response r = client.Get("/troops?pad=" + std::string(70 * 1024, 'x'));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(client.Get("/troops").status, 200);  // on a new connection
  EXPECT_EQ(client.connects(), 2);
}

// ---------------------------------------------------------------------------
// Hostile ids.

TEST(MockApiServerTest, HostileIdsRoundTripWhenPercentEncoded) {
  MockApiOptions o = SmallTree();
  o.troops = 9;
  o.hostile_ids = true;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  const Listing troops = ListAll(client, *server, "/troops");
  ASSERT_TRUE(troops.ok) << troops.error;
  ASSERT_EQ(troops.ids.size(), 9u);
  EXPECT_EQ(troops.ids[0], "t1");
  EXPECT_EQ(troops.ids[1], "../../etc");
  EXPECT_EQ(troops.ids[2], "..");
  EXPECT_EQ(troops.ids[3].size(), 300u);
  EXPECT_EQ(troops.ids[4], "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae-\xe2\x9c\x93");
  EXPECT_EQ(troops.ids[5], "a/b");
  EXPECT_EQ(troops.ids[6], "50% off");
  EXPECT_EQ(troops.ids[7], "t8");

  const Crawl crawl = CrawlAll(client, *server);
  EXPECT_EQ(crawl.leaves_ok.size(), 9u * 4 * 3);
  EXPECT_TRUE(crawl.leaves_failed.empty());
  const std::string key = "troops/a/b/warriors/w2/groups/g3";
  ASSERT_TRUE(crawl.documents.count(key));
  const auto doc = ParseJson(crawl.documents.at(key));
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->get<std::string>("troop"), "a/b");
  EXPECT_EQ(server->stats().distinct_leaves_served, 9 * 4 * 3);

  // Unencoded, "a/b" is two segments and no such path.
  EXPECT_EQ(client.Get("/troops/a/b/warriors").status, 404);
  EXPECT_EQ(client.Get("/troops/a%2Fb/warriors").status, 200);
  EXPECT_EQ(client.Get("/troops/50%25%20off/warriors").status, 200);
  EXPECT_EQ(client.Get("/troops/50%%20off/warriors").status, 400);  // malformed escape
}

// ---------------------------------------------------------------------------
// Rate limits.

TEST(MockApiServerTest, RateLimitAnswers429WithRetryAfterAndCountsRejections) {
  MockApiOptions o = SmallTree();
  o.rate = 5;
  o.burst = 3;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  const auto start = std::chrono::steady_clock::now();
  int ok = 0, rejected = 0;
  for (int i = 0; i < 20; ++i) {
    const Response r = client.Get("/troops/t1/warriors/w1/groups/g1/data");
    if (r.status == 200) {
      ++ok;
    } else {
      ASSERT_EQ(r.status, 429);
      ++rejected;
      int retry_after = 0;
      ASSERT_TRUE(absl::SimpleAtoi(r.Header("retry-after"), &retry_after)) << r.Header("retry-after");
      EXPECT_EQ(retry_after, 1);  // ceil(0.2 s), at least 1
      const auto json = ParseJson(r.body);
      ASSERT_TRUE(json);
      EXPECT_EQ(json->get<std::string>("error"), "rate limited");
    }
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // GCRA: at most rate * elapsed + burst granted.
  EXPECT_GE(ok, 3);
  EXPECT_LE(ok, 5 * elapsed + 3 + 1e-9);
  EXPECT_GE(rejected, 1);

  // Introspection is never limited.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(client.Get("/_stats").status, 200);

  const MockApiStats stats = server->stats();
  EXPECT_EQ(stats.requests, 20);
  EXPECT_EQ(stats.rejected, rejected);
  EXPECT_EQ(stats.status.at(429), rejected);
  EXPECT_EQ(stats.status.at(200), ok);
  EXPECT_LE(stats.max_accepted_in_any_1s, 5 + 3);
  EXPECT_LE(stats.max_accepted_in_any_1s, ok);
  if (elapsed < 0.9) {
    EXPECT_EQ(stats.max_requests_in_any_1s, 20);
  }
  EXPECT_GE(stats.max_requests_in_any_1s, stats.max_accepted_in_any_1s);
  // /_stats agrees with stats().
  const auto json = ParseJson(client.Get("/_stats").body);
  ASSERT_TRUE(json);
  EXPECT_EQ(json->get<int>("rejected"), rejected);
  EXPECT_EQ(json->get<int>("requests"), 20);
  EXPECT_EQ(json->get<int>("status.429"), rejected);
}

TEST(MockApiServerTest, RateLimitHeadersDescribeTheGlobalLimit) {
  MockApiOptions o = SmallTree();
  o.rate = 2;  // slow enough that a few requests drain the bucket
  o.burst = 3;
  o.rate_limit_headers = true;
  o.x_rate_limit_headers = true;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  int64_t previous = 1 << 30;
  for (int i = 0; i < 6; ++i) {
    const Response r = client.Get("/troops");
    EXPECT_EQ(r.Header("ratelimit-limit"), "5");  // floor(rate) + burst
    EXPECT_EQ(r.Header("ratelimit-policy"), "5;w=1");
    EXPECT_EQ(r.Header("ratelimit-reset"), "1");
    EXPECT_EQ(r.Header("x-ratelimit-limit"), "5");
    EXPECT_EQ(r.Header("x-ratelimit-reset"), "1");
    EXPECT_EQ(r.Header("x-ratelimit-remaining"), r.Header("ratelimit-remaining"));
    int64_t remaining = -1;
    ASSERT_TRUE(absl::SimpleAtoi(r.Header("ratelimit-remaining"), &remaining)) << r.Header("ratelimit-remaining");
    EXPECT_GE(remaining, 0);
    EXPECT_LE(remaining, 5);
    // Each request takes a token; refill (2/s) may give back at most one.
    EXPECT_LE(remaining, previous + 1);
    previous = remaining;
    if (r.status == 429) {
      EXPECT_LE(remaining, 2);  // nothing available: only the next second's refill
    }
  }
  // No global limit, no headers; introspection never has them.
  EXPECT_EQ(client.Get("/_stats").Header("ratelimit-limit"), "");
  MockApiOptions unlimited = SmallTree();
  unlimited.rate_limit_headers = true;
  auto plain = StartOrDie(unlimited);
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(Client(plain->port()).Get("/troops").Header("ratelimit-limit"), "");
}

TEST(MockApiServerTest, SetRateChangesTheLimitWhileServing) {
  MockApiOptions o = SmallTree();
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  for (int i = 0; i < 20; ++i) ASSERT_EQ(client.Get("/troops").status, 200) << "unlimited at first";
  EXPECT_EQ(server->rate(), 0);
  ASSERT_TRUE(server->SetRate(1, 2).ok());
  EXPECT_EQ(server->rate(), 1);
  int ok = 0, rejected = 0;
  for (int i = 0; i < 10; ++i) (client.Get("/troops").status == 200 ? ok : rejected)++;
  EXPECT_GE(ok, 2);
  EXPECT_LE(ok, 4);  // the burst, and at most a refill or two if this machine is slow
  EXPECT_EQ(rejected, 10 - ok);
  // Over HTTP too; rate 0 lifts the limit.
  Response r = client.Get("/_control?rate=0");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("\"rate\":0"));
  for (int i = 0; i < 20; ++i) ASSERT_EQ(client.Get("/troops").status, 200);
  r = client.Send(http::verb::post, "/_control?rate=2.5&burst=4");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("\"burst\":4"));
  EXPECT_EQ(server->rate(), 2.5);
  for (const char* bad : {"/_control", "/_control?rate=-1", "/_control?rate=x", "/_control?rate=5&burst=0"}) {
    EXPECT_EQ(client.Get(bad).status, 400) << bad;
  }
  EXPECT_FALSE(server->SetRate(std::nan(""), 1).ok());
  EXPECT_FALSE(server->SetRate(5, 0).ok());
  EXPECT_EQ(server->rate(), 2.5);
}

TEST(MockApiServerTest, LevelRateLimitsEachLevelOnItsOwn) {
  MockApiOptions o = SmallTree();
  o.level_rate = 0.5;  // one request per 2 s per level
  o.burst = 1;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  EXPECT_EQ(client.Get("/troops").status, 200);
  const Response second = client.Get("/troops");
  EXPECT_EQ(second.status, 429);
  int retry_after = 0;
  ASSERT_TRUE(absl::SimpleAtoi(second.Header("retry-after"), &retry_after));
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 2);
  EXPECT_THAT(second.body, HasSubstr("level troops"));
  // Other levels have their own budgets.
  EXPECT_EQ(client.Get("/troops/t1/warriors").status, 200);
  EXPECT_EQ(client.Get("/troops/t1/warriors/w1/groups/g1/data").status, 200);
  EXPECT_EQ(client.Get("/troops/t1/warriors/w1/groups/g2/data").status, 429);
  EXPECT_EQ(server->stats().rejected, 2);
}

// ---------------------------------------------------------------------------
// Faults.

// The outcome of each request of a fixed sequence: status, "reset", or
// "200-truncated".
std::vector<std::string> FaultSequence(const MockApiServer& server) {
  Client client(server.port());
  std::vector<std::string> out;
  auto record = [&](const Response& r) {
    if (r.dropped) {
      out.push_back("reset");
    } else if (r.status == 200 && !ParseJson(r.body)) {
      out.push_back("200-truncated");
      EXPECT_EQ(r.Header("content-length"), std::to_string(r.body.size()));
    } else {
      out.push_back(std::to_string(r.status));
    }
  };
  for (int round = 0; round < 4; ++round) {
    for (const std::string t : {"t1", "t2"}) {
      record(client.Get("/troops/" + t + "/warriors"));
      for (const std::string g : {"g1", "g2", "g3"}) {
        record(client.Get("/troops/" + t + "/warriors/w1/groups/" + g + "/data"));
      }
    }
  }
  return out;
}

MockApiOptions FaultyTree(uint64_t seed) {
  MockApiOptions o = SmallTree();
  o.seed = seed;
  o.error_rate = 0.2;
  o.reset_rate = 0.15;
  o.slow_rate = 0.15;
  o.slow_ms = 1;
  o.truncate_rate = 0.15;
  return o;
}

TEST(MockApiServerTest, FaultsAreReproducibleBySeed) {
  auto a = StartOrDie(FaultyTree(7));
  auto b = StartOrDie(FaultyTree(7));
  auto c = StartOrDie(FaultyTree(8));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  const std::vector<std::string> seq_a = FaultSequence(*a);
  const std::vector<std::string> seq_b = FaultSequence(*b);
  const std::vector<std::string> seq_c = FaultSequence(*c);
  EXPECT_EQ(seq_a, seq_b);
  EXPECT_NE(seq_a, seq_c);
  // Retries of the same path get fresh decisions: the sequence mixes outcomes.
  std::map<std::string, int> kinds;
  for (const std::string& s : seq_a) ++kinds[s];
  EXPECT_GT(kinds["200"], 0);
  EXPECT_GT(kinds["reset"], 0);
  EXPECT_GT(kinds["200-truncated"], 0);
  EXPECT_GT(kinds["500"] + kinds["503"], 0);

  const MockApiStats sa = a->stats();
  const MockApiStats sb = b->stats();
  EXPECT_EQ(sa.faults.reset, kinds["reset"]);
  EXPECT_EQ(sa.faults.truncate, kinds["200-truncated"]);
  EXPECT_EQ(sa.faults.error, kinds["500"] + kinds["503"]);
  EXPECT_GT(sa.faults.slow, 0);
  EXPECT_EQ(sa.faults.slow, sb.faults.slow);
  EXPECT_EQ(sa.status, sb.status);
  EXPECT_EQ(sa.requests, static_cast<int64_t>(seq_a.size()));

  // After a reset of the stats, the same sequence sees the same faults.
  a->ResetStats();
  EXPECT_EQ(a->stats().requests, 0);
  EXPECT_EQ(FaultSequence(*a), seq_a);
}

TEST(MockApiServerTest, SlowResponsesAreDelayedWithoutBlockingOthers) {
  MockApiOptions o = SmallTree();
  o.slow_rate = 1;
  o.slow_ms = 300;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  // A slow request in flight on one connection...
  std::thread slow([&] {
    Client client(server->port());
    const auto start = std::chrono::steady_clock::now();
    const Response r = client.Get("/troops");
    EXPECT_EQ(r.status, 200);
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  });
  // ...does not hold up introspection on another, on the single io thread.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Client other(server->port());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(other.Get("/_expected").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(250));
  slow.join();
  EXPECT_EQ(server->stats().faults.slow, 1);
}

TEST(MockApiServerTest, TruncatedBodiesAreHalfTheDocumentWithMatchingLength) {
  auto clean = StartOrDie(SmallTree());
  MockApiOptions o = SmallTree();
  o.truncate_rate = 1;
  auto server = StartOrDie(o);
  ASSERT_NE(clean, nullptr);
  ASSERT_NE(server, nullptr);
  Client c1(clean->port()), c2(server->port());
  const std::string leaf = "/troops/t3/warriors/w2/groups/g1/data";
  const Response full = c1.Get(leaf);
  const Response cut = c2.Get(leaf);
  ASSERT_EQ(cut.status, 200);
  EXPECT_EQ(cut.body, full.body.substr(0, full.body.size() / 2));
  EXPECT_EQ(cut.Header("content-length"), std::to_string(cut.body.size()));
  EXPECT_FALSE(ParseJson(cut.body));
  EXPECT_EQ(c2.Get("/troops").status, 200);  // the connection survives
  EXPECT_EQ(c2.connects(), 1);
  const MockApiStats stats = server->stats();
  EXPECT_EQ(stats.faults.truncate, 2);
  EXPECT_EQ(stats.leaves_served, 0);  // a truncated leaf is not served
}

TEST(MockApiServerTest, ResetDropsTheConnectionWithoutAResponse) {
  MockApiOptions o = SmallTree();
  o.reset_rate = 1;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  EXPECT_TRUE(client.Get("/troops").dropped);
  EXPECT_TRUE(client.Get("/troops/t1/warriors").dropped);
  EXPECT_EQ(client.Get("/troops/t99/warriors").status, 404);  // faults only replace 200s
  EXPECT_EQ(client.connects(), 3);
  const MockApiStats stats = server->stats();
  EXPECT_EQ(stats.faults.reset, 2);
  EXPECT_EQ(stats.requests, 3);
  EXPECT_EQ(stats.status.count(200), 0u);
}

TEST(MockApiServerTest, PoisonLeavesAndListingsAlwaysFailAndAreListed) {
  MockApiOptions o = SmallTree();
  o.troops = 20;
  o.poison_leaf_permille = 100;
  o.poison_listing_permille = 100;
  o.seed = 3;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  const std::vector<std::string> poison_leaves = server->poison_leaves();
  const std::vector<std::string> poison_listings = server->poison_listings();
  ASSERT_FALSE(poison_leaves.empty());
  ASSERT_FALSE(poison_listings.empty());
  EXPECT_EQ(server->expected_leaves(), 20 * 4 * 3);

  Client client(server->port());
  // /_poison lists the same keys.
  const auto json = ParseJson(client.Get("/_poison").body);
  ASSERT_TRUE(json);
  std::vector<std::string> leaves, listings;
  for (const auto& v : json->get_child("leaves")) leaves.push_back(v.second.data());
  for (const auto& v : json->get_child("listings")) listings.push_back(v.second.data());
  EXPECT_EQ(leaves, poison_leaves);
  EXPECT_EQ(listings, poison_listings);

  // A crawl fails exactly on those, every time.
  for (int run = 0; run < 2; ++run) {
    const Crawl crawl = CrawlAll(client, *server);
    EXPECT_EQ(crawl.leaves_failed, poison_leaves);
    EXPECT_EQ(crawl.listings_failed, poison_listings);
    EXPECT_EQ(static_cast<int64_t>(crawl.leaves_ok.size()), server->deliverable_leaves());
  }
  const Response dead_listing = client.Get("/troops/" + poison_listings[0].substr(7) + "/groups");
  EXPECT_EQ(dead_listing.status, 200);
  EXPECT_EQ(dead_listing.body, "{\"items\":[{\"id\":\"g1\"");
  const Response dead_leaf = client.Get("/" + poison_leaves[0] + "/data");
  EXPECT_EQ(dead_leaf.status, 500);

  const auto expected = ParseJson(client.Get("/_expected").body);
  ASSERT_TRUE(expected);
  EXPECT_EQ(expected->get<int>("leaves"), 240);
  EXPECT_EQ(expected->get<int>("deliverable_leaves"), server->deliverable_leaves());
  EXPECT_EQ(expected->get<int>("reachable_leaves"), (80 - static_cast<int>(poison_listings.size())) * 3);
  EXPECT_EQ(expected->get<int>("listings"), 4 + 20 * 1 + 80 * 1);  // 20 troops at 5 a page
  EXPECT_EQ(server->stats().faults.poison,
            2 * static_cast<int64_t>(poison_leaves.size() + poison_listings.size()) + 2);

  // Another seed poisons other leaves.
  o.seed = 4;
  auto other = StartOrDie(o);
  ASSERT_NE(other, nullptr);
  EXPECT_NE(other->poison_leaves(), poison_leaves);
}

// ---------------------------------------------------------------------------
// Stats, logging, lifecycle.

TEST(MockApiServerTest, StatsCountLevelsStatusesAndDistinctLeaves) {
  auto server = StartOrDie(SmallTree());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  client.Get("/troops");
  client.Get("/troops/t1/warriors");
  client.Get("/troops/t1/warriors/w1/groups");
  client.Get("/troops/t1/warriors/w1/groups/g1/data");
  client.Get("/troops/t1/warriors/w1/groups/g1/data");
  client.Get("/troops/t1/warriors/w1/groups/g2/data");
  client.Get("/troops/t1/warriors/w1/groups/g9/data");
  client.Get("/missing");
  MockApiStats s = server->stats();
  EXPECT_EQ(s.requests, 8);
  EXPECT_EQ(s.by_level.troops, 1);
  EXPECT_EQ(s.by_level.warriors, 1);
  EXPECT_EQ(s.by_level.groups, 1);
  EXPECT_EQ(s.by_level.data, 4);
  EXPECT_EQ(s.status, (std::map<int, int64_t>{{200, 6}, {404, 2}}));
  EXPECT_EQ(s.leaves_served, 3);
  EXPECT_EQ(s.distinct_leaves_served, 2);
  EXPECT_EQ(s.max_requests_in_any_1s, s.max_accepted_in_any_1s);
  EXPECT_GE(s.max_requests_in_any_1s, 1);
  EXPECT_LE(s.max_requests_in_any_1s, 8);

  const auto json = ParseJson(client.Get("/_stats").body);
  ASSERT_TRUE(json);
  EXPECT_EQ(json->get<int>("by_level.data"), 4);
  EXPECT_EQ(json->get<int>("status.404"), 2);
  EXPECT_EQ(json->get<int>("distinct_leaves_served"), 2);
  EXPECT_EQ(json->get<int>("faults.error"), 0);

  EXPECT_EQ(client.Send(http::verb::post, "/_reset_stats").status, 200);
  s = server->stats();
  EXPECT_EQ(s.requests, 0);
  EXPECT_TRUE(s.status.empty());
  EXPECT_EQ(s.distinct_leaves_served, 0);
  EXPECT_EQ(s.max_requests_in_any_1s, 0);
  EXPECT_EQ(s.ToJson(),
            "{\"requests\":0,\"rejected\":0,\"max_requests_in_any_1s\":0,\"max_accepted_in_any_1s\":0,"
            "\"by_level\":{\"troops\":0,\"warriors\":0,\"groups\":0,\"data\":0},\"status\":{},"
            "\"faults\":{\"error\":0,\"reset\":0,\"slow\":0,\"truncate\":0,\"poison\":0},"
            "\"leaves_served\":0,\"distinct_leaves_served\":0}");
}

TEST(MockApiServerTest, MaxRequestsInAnyOneSecondSlidesOverTime) {
  auto server = StartOrDie(SmallTree());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  auto burst = [&](int n) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) client.Get("/troops");
    return std::chrono::steady_clock::now() - start;
  };
  const auto first = burst(30);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const auto second = burst(20);
  const MockApiStats s = server->stats();
  EXPECT_EQ(s.requests, 50);
  // The two bursts are more than a second apart, so no window holds both.
  if (first < std::chrono::milliseconds(900)) {
    EXPECT_EQ(s.max_requests_in_any_1s, 30);
  }
  EXPECT_GE(s.max_requests_in_any_1s, 20);
  EXPECT_LT(s.max_requests_in_any_1s, 50);
  (void)second;
}

TEST(MockApiServerTest, RequestLogHasOneLinePerApiRequest) {
  const std::string path = ::testing::TempDir() + "/mock_api_request_log.txt";
  std::remove(path.c_str());
  MockApiOptions o = SmallTree();
  o.request_log_path = path;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  client.Get("/troops");
  client.Send(http::verb::post, "/troops");
  client.Get("/_stats");  // not an API request
  client.Get("/troops/t99/warriors?cursor=x");
  server->Stop();
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  EXPECT_THAT(lines, ElementsAre("GET /troops 200", "POST /troops 405", "GET /troops/t99/warriors?cursor=x 404"));
  std::remove(path.c_str());

  o.request_log_path = "/nonexistent-dir/log.txt";
  const auto bad = MockApiServer::Start(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("/nonexistent-dir/log.txt"));
}

TEST(MockApiServerTest, ConcurrentClientsOnSeveralThreads) {
  MockApiOptions o = SmallTree();
  o.threads = 4;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      Client client(server->port());
      for (int i = 0; i < 60; ++i) {
        const std::string leaf = "/troops/t" + std::to_string(1 + (c * 60 + i) % 23) + "/warriors/w" +
                                 std::to_string(1 + i % 4) + "/groups/g" + std::to_string(1 + i % 3) + "/data";
        if (client.Get(leaf).status == 200) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 240);
  const MockApiStats s = server->stats();
  EXPECT_EQ(s.requests, 240);
  EXPECT_EQ(s.leaves_served, 240);
  EXPECT_LE(s.distinct_leaves_served, 240);
  EXPECT_GE(s.distinct_leaves_served, 23);
}

TEST(MockApiServerTest, StopIsBoundedAndClosesConnections) {
  MockApiOptions o = SmallTree();
  o.slow_rate = 1;
  o.slow_ms = 20000;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  Client idle(server->port());
  EXPECT_EQ(idle.Get("/_stats").status, 200);  // an open keep-alive connection
  std::atomic<bool> done{false};
  Response in_flight;
  std::thread waiter([&] {
    Client client(server->port());
    in_flight = client.Get("/troops");  // delayed 20 s
    done = true;
  });
  while (server->stats().faults.slow == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto start = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  waiter.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(in_flight.dropped);
  EXPECT_TRUE(idle.Get("/_stats").dropped);  // closed, and nobody listens any more
  server->Stop();                            // idempotent
  EXPECT_GT(server->port(), 0);
}

}  // namespace
}  // namespace fanout::mock
