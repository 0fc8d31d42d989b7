// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// FairQueue: decides whose waiting work gets the next grant of a shared limit
// when several tenants (crawls, customers) compete for it. Weighted deficit
// round robin (Shreedhar & Varghese, 1995): each tenant with work waiting gets,
// per round, `quantum * weight` cost units; so while others have work waiting,
// a tenant flooding the queue gets its weighted share and no more, and a small
// tenant is never stuck behind a big one's backlog.
//
// Pop() is O(1) amortised; memory is O(items + tenants). Not thread-safe: it
// lives with the dispatcher that owns the grants (the engine's event loop).

#ifndef FANOUT_FAIR_QUEUE_H_
#define FANOUT_FAIR_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"

namespace fanout {

template <typename T>
class FairQueue {
 public:
  using TenantId = size_t;

  struct Entry {
    TenantId tenant;
    T item;
    int64_t cost;
  };

  // `quantum`: cost units a weight-1 tenant may take per round (>= 1; values
  // below 1 are raised to 1). With unit costs, 1 gives strict alternation.
  explicit FairQueue(int64_t quantum = 1) : quantum_(quantum < 1 ? 1 : quantum) {}

  // Registers a tenant; returns its id. InvalidArgument if weight < 1.
  absl::StatusOr<TenantId> AddTenant(std::string name, int64_t weight = 1) {
    if (weight < 1) {
      return absl::InvalidArgumentError(
          absl::StrFormat("tenant \"%s\": weight must be >= 1, got %d", name, weight));
    }
    Tenant tenant;
    tenant.name = std::move(name);
    tenant.weight = weight;
    tenants_.push_back(std::move(tenant));
    return tenants_.size() - 1;
  }

  // Changes a tenant's weight from its next turn on.
  absl::Status SetWeight(TenantId tenant, int64_t weight) {
    if (absl::Status s = CheckTenant(tenant); !s.ok()) return s;
    if (weight < 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tenant \"%s\": weight must be >= 1, got %d", tenants_[tenant].name, weight));
    }
    tenants_[tenant].weight = weight;
    return absl::OkStatus();
  }

  // Queues `item` for `tenant`, costing `cost` units (>= 1) of its share.
  // InvalidArgument for an unknown tenant or a cost < 1.
  absl::Status Push(TenantId tenant, T item, int64_t cost = 1) {
    if (absl::Status s = CheckTenant(tenant); !s.ok()) return s;
    if (cost < 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tenant \"%s\": item cost must be >= 1, got %d", tenants_[tenant].name, cost));
    }
    Tenant& t = tenants_[tenant];
    t.items.push_back({std::move(item), cost});
    if (!t.active) {
      t.active = true;
      active_.push_back(tenant);
    }
    ++size_;
    return absl::OkStatus();
  }

  // The next item by weighted deficit round robin, or nullopt when empty.
  std::optional<Entry> Pop() {
    while (!active_.empty()) {
      const TenantId id = active_.front();
      Tenant& t = tenants_[id];
      if (!t.in_turn) {
        t.deficit += quantum_ * t.weight;
        t.in_turn = true;
      }
      if (t.items.front().second <= t.deficit) {
        auto [item, cost] = std::move(t.items.front());
        t.items.pop_front();
        t.deficit -= cost;
        --size_;
        if (t.items.empty()) {  // an idle tenant keeps no credit
          t.deficit = 0;
          t.in_turn = false;
          t.active = false;
          active_.pop_front();
        }
        return Entry{id, std::move(item), cost};
      }
      t.in_turn = false;  // turn over: to the back of the round
      active_.splice(active_.end(), active_, active_.begin());
    }
    return std::nullopt;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Items waiting for one tenant (0 for an unknown id).
  size_t size(TenantId tenant) const { return tenant < tenants_.size() ? tenants_[tenant].items.size() : 0; }
  const std::string& tenant_name(TenantId tenant) const { return tenants_.at(tenant).name; }
  size_t tenant_count() const { return tenants_.size(); }

 private:
  struct Tenant {
    std::string name;
    int64_t weight = 1;
    std::deque<std::pair<T, int64_t>> items;  // item, cost
    int64_t deficit = 0;
    bool in_turn = false;  // has been credited for the current turn
    bool active = false;   // is in active_
  };

  absl::Status CheckTenant(TenantId tenant) const {
    if (tenant >= tenants_.size()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("unknown tenant id %d (%d registered)", tenant, tenants_.size()));
    }
    return absl::OkStatus();
  }

  const int64_t quantum_;
  std::vector<Tenant> tenants_;
  std::list<TenantId> active_;  // tenants with work, in round order
  size_t size_ = 0;
};

}  // namespace fanout

#endif  // FANOUT_FAIR_QUEUE_H_
