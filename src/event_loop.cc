// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/event_loop.h"

#include <chrono>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"

namespace fanout {

struct AsioEventLoop::Timers {
  TimerId next_id = 1;
  absl::flat_hash_map<TimerId, std::unique_ptr<boost::asio::steady_timer>> active;
};

AsioEventLoop::AsioEventLoop(boost::asio::io_context& io, const Clock* clock)
    : io_(io), clock_(clock), timers_(std::make_shared<Timers>()) {}

// Destroying the timers cancels their waits; handlers still queued see either
// operation_aborted or an expired weak pointer, and touch nothing.
AsioEventLoop::~AsioEventLoop() = default;

void AsioEventLoop::Post(Callback fn) {
  boost::asio::post(io_, [fn = std::move(fn)]() mutable { std::move(fn)(); });
}

EventLoop::TimerId AsioEventLoop::RunAt(absl::Time when, Callback fn) {
  const TimerId id = timers_->next_id++;
  auto timer = std::make_unique<boost::asio::steady_timer>(io_);
  // The loop's clock may be any monotonic clock: convert the deadline to a
  // delay on it, then to asio's steady clock.
  const absl::Duration delay = std::max(absl::ZeroDuration(), when - clock_->Now());
  timer->expires_after(absl::ToChronoNanoseconds(delay));
  std::weak_ptr<Timers> weak_timers = timers_;
  timer->async_wait([weak_timers, id, fn = std::move(fn)](const boost::system::error_code& ec) mutable {
    if (ec) return;  // cancelled: the timer is already gone from `active`
    std::shared_ptr<Timers> timers = weak_timers.lock();
    if (!timers) return;
    auto it = timers->active.find(id);
    if (it == timers->active.end()) return;
    std::unique_ptr<boost::asio::steady_timer> keep = std::move(it->second);
    timers->active.erase(it);
    std::move(fn)();
  });
  timers_->active.emplace(id, std::move(timer));
  return id;
}

void AsioEventLoop::Cancel(TimerId id) {
  auto it = timers_->active.find(id);
  if (it == timers_->active.end()) return;
  // Destroying the timer cancels its wait; the handler then runs with
  // operation_aborted and does nothing.
  timers_->active.erase(it);
}

}  // namespace fanout
