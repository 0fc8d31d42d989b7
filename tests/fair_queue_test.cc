// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/fair_queue.h"

#include <map>
#include <memory>
#include <string>

#include "fanout/rate_limiter.h"
#include "fanout/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fanout {
namespace {

using testing::FakeClock;

TEST(FairQueue, EqualWeightsAlternate) {
  FairQueue<int> queue;
  auto a = *queue.AddTenant("a");
  auto b = *queue.AddTenant("b");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue.Push(a, i).ok());
  for (int i = 10; i < 13; ++i) ASSERT_TRUE(queue.Push(b, i).ok());
  std::vector<int> order;
  while (auto entry = queue.Pop()) order.push_back(entry->item);
  EXPECT_THAT(order, ::testing::ElementsAre(0, 10, 1, 11, 2, 12));
  EXPECT_TRUE(queue.empty());
}

TEST(FairQueue, WeightsSetTheShares) {
  FairQueue<int> queue;
  auto heavy = *queue.AddTenant("heavy", 3);
  auto light = *queue.AddTenant("light", 1);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(queue.Push(heavy, i).ok());
    ASSERT_TRUE(queue.Push(light, i).ok());
  }
  std::map<size_t, int> served;
  for (int i = 0; i < 400; ++i) served[queue.Pop()->tenant]++;
  EXPECT_EQ(served[heavy], 300);
  EXPECT_EQ(served[light], 100);
}

TEST(FairQueue, CostsCountAgainstTheShare) {
  FairQueue<std::string> queue(/*quantum=*/4);
  auto big = *queue.AddTenant("big calls");
  auto small = *queue.AddTenant("small calls");
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(queue.Push(big, "big", 4).ok());
    for (int j = 0; j < 4; ++j) ASSERT_TRUE(queue.Push(small, "small", 1).ok());
  }
  int64_t big_units = 0, small_units = 0;
  for (int i = 0; i < 25; ++i) {
    auto entry = queue.Pop();
    (entry->tenant == big ? big_units : small_units) += entry->cost;
  }
  EXPECT_NEAR(static_cast<double>(big_units) / static_cast<double>(small_units), 1.0, 0.25);
}

TEST(FairQueue, AnIdleTenantSavesNoCredit) {
  FairQueue<int> queue(/*quantum=*/1);
  auto a = *queue.AddTenant("a");
  auto b = *queue.AddTenant("b");
  ASSERT_TRUE(queue.Push(a, 1).ok());
  EXPECT_EQ(queue.Pop()->tenant, a);
  // `a` was alone for a while; when `b` arrives they still alternate.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(queue.Push(a, i).ok());
    ASSERT_TRUE(queue.Push(b, i).ok());
  }
  std::vector<size_t> tenants;
  while (auto entry = queue.Pop()) tenants.push_back(entry->tenant);
  EXPECT_THAT(tenants, ::testing::ElementsAre(a, b, a, b, a, b, a, b));
}

TEST(FairQueue, BadInputIsRefusedWithItsName) {
  FairQueue<int> queue;
  EXPECT_THAT(queue.AddTenant("acme", 0).status().message(),
              ::testing::HasSubstr("tenant \"acme\": weight must be >= 1, got 0"));
  auto t = *queue.AddTenant("acme");
  EXPECT_THAT(queue.Push(t, 1, 0).message(), ::testing::HasSubstr("cost must be >= 1, got 0"));
  EXPECT_THAT(queue.Push(7, 1).message(), ::testing::HasSubstr("unknown tenant id 7"));
  EXPECT_FALSE(queue.SetWeight(t, -1).ok());
  EXPECT_FALSE(queue.SetWeight(9, 1).ok());
  EXPECT_EQ(queue.size(), 0u);
}

// The case the scheduler exists for: two tenants share one limit of 10/s with
// 100:1 demand and equal weights. While both have work each gets half of the
// grants, so the small one finishes in about twice its solo time (not 100x, as
// it would behind the big one's backlog in a single FIFO).
TEST(FairQueue, SharesOneLimitFairlyBetweenTenants) {
  auto run = [](int big_demand, int small_demand, int64_t* small_grants_while_both,
                int64_t* big_grants_while_both) {
    FakeClock clock;
    auto limiter = *RateLimiter::Create(&clock, RateLimitSpec::PerSecond(10, 1), "shared");
    FairQueue<int> queue;
    auto big = *queue.AddTenant("big");
    auto small = *queue.AddTenant("small");
    for (int i = 0; i < big_demand; ++i) EXPECT_TRUE(queue.Push(big, i).ok());
    for (int i = 0; i < small_demand; ++i) EXPECT_TRUE(queue.Push(small, i).ok());
    const absl::Time start = clock.Now();
    absl::Duration small_done = absl::ZeroDuration();
    while (!queue.empty()) {
      if (!limiter->TryAcquire()) {
        clock.Advance(limiter->TimeUntilAvailable(1, clock.Now()));
        continue;
      }
      const bool both = queue.size(big) > 0 && queue.size(small) > 0;
      auto entry = queue.Pop();
      if (both) ++*(entry->tenant == small ? small_grants_while_both : big_grants_while_both);
      if (entry->tenant == small && queue.size(small) == 0) small_done = clock.Now() - start;
    }
    return small_done;
  };
  int64_t small_both = 0, big_both = 0, ignored = 0;
  const absl::Duration shared = run(1000, 10, &small_both, &big_both);
  const absl::Duration solo = run(0, 10, &ignored, &ignored);
  EXPECT_EQ(small_both, big_both) << "equal weights: half the grants each while both wait";
  EXPECT_GE(small_both, 9);
  const double ratio = absl::FDivDuration(shared, solo);
  EXPECT_GE(ratio, 1.8);
  EXPECT_LE(ratio, 2.3) << "shared " << shared << " solo " << solo;
}

}  // namespace
}  // namespace fanout
