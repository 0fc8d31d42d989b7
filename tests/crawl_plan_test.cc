// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/crawl_plan.h"

#include <functional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fanout {
namespace {

using ::testing::HasSubstr;

CrawlPlan TwoLevels(Pagination pagination = Pagination::None()) {
  CrawlPlan plan;
  plan.base_url = "http://api.test:8080";
  Level devices{.name = "devices", .url = "/groups/{group}/devices", .items_pointer = "/data/items",
                .bind = "device"};
  Level groups{.name = "groups", .url = "/groups", .items_pointer = "/items", .bind = "group"};
  groups.pagination = pagination;
  devices.pagination = pagination;
  Level data{.name = "data", .url = "/groups/{group}/devices/{device}/data"};
  plan.levels = {groups, devices, data};
  return plan;
}

Response Json(std::string body, Headers headers = {}) {
  Response r;
  r.status = 200;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

TEST(CrawlPlanValidate, AcceptsAGoodPlan) {
  const absl::Status status = TwoLevels().Validate();
  EXPECT_TRUE(status.ok()) << status;
}

TEST(CrawlPlanValidate, NamesTheLevelAndFieldOfEachProblem) {
  struct Case {
    std::function<void(CrawlPlan&)> mutate;
    std::string message;
  };
  const Case cases[] = {
      {[](CrawlPlan& p) { p.base_url = "ftp://x"; }, "base_url: expected an http:// or https:// URL, got \"ftp://x\""},
      {[](CrawlPlan& p) { p.levels.clear(); }, "at least one level"},
      {[](CrawlPlan& p) { p.levels[1].name = "groups"; }, "levels[1] \"groups\": name is used by an earlier level"},
      {[](CrawlPlan& p) { p.levels[0].items_pointer = "items"; },
       "levels[0] \"groups\": items pointer must be a JSON pointer such as \"/items\", got \"items\""},
      {[](CrawlPlan& p) { p.levels[2].url = "/x/{nope}"; },
       "levels[2] \"data\": url placeholder {nope} is not bound by an earlier level"},
      {[](CrawlPlan& p) { p.levels[1].url = "/x/{group"; }, "unclosed"},
      {[](CrawlPlan& p) { p.levels[0].bind = ""; }, "bind (the placeholder this level's ids fill) is empty"},
      {[](CrawlPlan& p) { p.levels[1].bind = "group"; }, "bind {group} is already bound"},
      {[](CrawlPlan& p) { p.levels[0].pagination = Pagination::NextCursor("next", "c"); },
       "pagination pointer must be a JSON pointer"},
      {[](CrawlPlan& p) { p.levels[0].pagination = Pagination::Offset("offset", "", 10); },
       "offset pagination needs"},
      {[](CrawlPlan& p) { p.levels[0].max_in_flight = -1; }, "max_in_flight must be >= 0, got -1"},
  };
  for (const Case& c : cases) {
    CrawlPlan plan = TwoLevels();
    c.mutate(plan);
    absl::Status status = plan.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(status.message(), HasSubstr(c.message));
  }
}

TEST(ExpandUrl, PercentEncodesIdsSoTheyStayOneSegment) {
  const CrawlPlan plan = TwoLevels();
  auto url = ExpandUrl(plan, 2, {{"group", "../../etc"}, {"device", "a/b c%"}});
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(*url, "http://api.test:8080/groups/..%2F..%2Fetc/devices/a%2Fb%20c%25/data");
  EXPECT_EQ(*ExpandUrl(plan, 1, {{"group", ".."}}), "http://api.test:8080/groups/%2E%2E/devices");
  EXPECT_THAT(ExpandUrl(plan, 1, {}).status().message(), HasSubstr("placeholder {group} has no value"));
}

TEST(FirstPageUrl, AddsThePageOrOffsetParameters) {
  EXPECT_EQ(*FirstPageUrl(TwoLevels(Pagination::Page("page", 1)), 0, {}), "http://api.test:8080/groups?page=1");
  EXPECT_EQ(*FirstPageUrl(TwoLevels(Pagination::Offset("offset", "limit", 50)), 0, {}),
            "http://api.test:8080/groups?offset=0&limit=50");
  EXPECT_EQ(*FirstPageUrl(TwoLevels(), 0, {}), "http://api.test:8080/groups");
}

TEST(WithQueryParam, ReplacesOrAppends) {
  EXPECT_EQ(WithQueryParam("http://h/x", "c", "1"), "http://h/x?c=1");
  EXPECT_EQ(WithQueryParam("http://h/x?a=1&c=2", "c", "3"), "http://h/x?a=1&c=3");
  EXPECT_EQ(WithQueryParam("http://h/x?a=1", "c", "a b"), "http://h/x?a=1&c=a%20b");
  EXPECT_EQ(OriginOf("HTTP://User:pw@Host:80/p?q"), "http://host:80");
}

TEST(ListingExtractor, FindsChildrenAndCapturedFields) {
  CrawlPlan plan = TwoLevels();
  plan.levels[0].capture = {"region"};
  ListingExtractor extractor;
  auto page = extractor.Extract(
      plan, 0, "http://api.test:8080/groups",
      Json(R"({"items":[{"id":"g1","region":"eu"},{"region":"us","id":42}],"total":2})"));
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->children.size(), 2u);
  EXPECT_EQ(page->children[0].id, "g1");
  EXPECT_EQ(page->children[1].id, "42");
  EXPECT_EQ(page->children[1].captured[0], (std::pair<std::string, std::string>("region", "us")));
  EXPECT_FALSE(page->next_url.has_value());
}

TEST(ListingExtractor, MalformedOrUnexpectedDocumentsAreClearErrors) {
  const CrawlPlan plan = TwoLevels();
  ListingExtractor extractor;
  const std::string url = "http://api.test:8080/groups";
  struct Case {
    std::string body;
    std::string message;
  };
  const Case cases[] = {
      {"not json", "body is not JSON"},
      {R"({"items":{"id":"g1"}})", "items pointer \"/items\" matched no array: found object"},
      {R"({"data":[]})", "items pointer \"/items\" matched nothing"},
      {R"({"items":[{"name":"x"}]})", "items[0] has no id field \"id\""},
      {R"({"items":[{"id":[1]}]})", "items[0].id is not a string or number: found an array"},
      {R"({"items":[1]})", "items[0] is not an object"},
      {R"({"items":[{"id":"g1"},{"id")", "not JSON"},
  };
  for (const Case& c : cases) {
    auto page = extractor.Extract(plan, 0, url, Json(c.body));
    ASSERT_FALSE(page.ok()) << c.body;
    EXPECT_THAT(page.status().message(), HasSubstr(c.message)) << c.body;
    EXPECT_THAT(page.status().message(), HasSubstr("level \"groups\""));
    EXPECT_THAT(page.status().message(), HasSubstr("in response of GET " + url + " (200, "));
  }
}

TEST(ListingExtractor, EveryPaginationStyle) {
  ListingExtractor extractor;
  const std::string url = "http://api.test:8080/groups";
  {
    auto page = extractor.Extract(TwoLevels(Pagination::NextCursor("/meta/next", "cursor")), 0, url,
                                  Json(R"({"items":[{"id":"a"}],"meta":{"next":"xyz="}})"));
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->next_url, "http://api.test:8080/groups?cursor=xyz%3D");
    auto last = extractor.Extract(TwoLevels(Pagination::NextCursor("/meta/next", "cursor")), 0, url,
                                  Json(R"({"items":[{"id":"a"}],"meta":{"next":null}})"));
    EXPECT_FALSE(last->next_url.has_value());
  }
  {
    auto page = extractor.Extract(TwoLevels(Pagination::NextUrl("/next")), 0, url,
                                  Json(R"({"items":[],"next":"/groups?after=9"})"));
    EXPECT_EQ(page->next_url, "http://api.test:8080/groups?after=9");
  }
  {
    Headers link = {{"Link", R"(<http://api.test:8080/groups?p=2>; rel="next", <http://api.test:8080/groups?p=9>; rel="last")"}};
    auto page = extractor.Extract(TwoLevels(Pagination::LinkHeader()), 0, url, Json(R"({"items":[]})", link));
    EXPECT_EQ(page->next_url, "http://api.test:8080/groups?p=2");
  }
  {
    auto page = extractor.Extract(TwoLevels(Pagination::Page("page", 1)), 0, url + "?page=3",
                                  Json(R"({"items":[{"id":"a"}]})"));
    EXPECT_EQ(page->next_url, "http://api.test:8080/groups?page=4");
    auto empty = extractor.Extract(TwoLevels(Pagination::Page("page", 1)), 0, url + "?page=4",
                                   Json(R"({"items":[]})"));
    EXPECT_FALSE(empty->next_url.has_value()) << "an empty page ends the listing";
  }
  {
    auto page = extractor.Extract(TwoLevels(Pagination::Offset("offset", "limit", 2)), 0,
                                  url + "?offset=4&limit=2", Json(R"({"items":[{"id":"a"},{"id":"b"}]})"));
    EXPECT_EQ(page->next_url, "http://api.test:8080/groups?offset=6&limit=2");
  }
}

TEST(ListingExtractor, RefusesNextLinksToAnotherOrigin) {
  ListingExtractor extractor;
  CrawlPlan plan = TwoLevels(Pagination::NextUrl("/next"));
  auto page = extractor.Extract(plan, 0, "http://api.test:8080/groups",
                                Json(R"({"items":[],"next":"http://evil.test/groups?p=2"})"));
  ASSERT_FALSE(page.ok());
  EXPECT_THAT(page.status().message(), HasSubstr("is on another origin than http://api.test:8080"));
  plan.allow_other_origins = true;
  EXPECT_TRUE(extractor.Extract(plan, 0, "http://api.test:8080/groups",
                                Json(R"({"items":[],"next":"http://evil.test/groups?p=2"})"))
                  .ok());
}

}  // namespace
}  // namespace fanout
