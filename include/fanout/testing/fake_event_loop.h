// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// FakeEventLoop: an EventLoop whose timers run on a FakeClock. A test runs it
// with RunUntilIdle(), which runs everything posted, then jumps the clock to
// the next timer and runs it, until nothing is left: an hour of crawling at a
// strict rate limit runs in milliseconds, the same way every time.
// Single-threaded: use from the test thread only.

#ifndef FANOUT_TESTING_FAKE_EVENT_LOOP_H_
#define FANOUT_TESTING_FAKE_EVENT_LOOP_H_

#include <cstdint>
#include <deque>
#include <map>
#include <utility>

#include "fanout/event_loop.h"
#include "fanout/testing/fake_clock.h"

namespace fanout::testing {

class FakeEventLoop final : public EventLoop {
 public:
  FakeEventLoop() = default;

  const Clock& clock() const override { return clock_; }
  FakeClock& fake_clock() { return clock_; }

  void Post(Callback fn) override { posted_.push_back(std::move(fn)); }

  TimerId RunAt(absl::Time when, Callback fn) override {
    const TimerId id = next_id_++;
    timers_.emplace(std::make_pair(when, id), std::move(fn));
    return id;
  }

  void Cancel(TimerId id) override {
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
      if (it->first.second == id) {
        timers_.erase(it);
        return;
      }
    }
  }

  // Runs posted work and due timers, advancing the clock to each next timer,
  // until nothing is left or `max_steps` callbacks ran (a guard against a
  // test that never settles). Returns the number of callbacks run.
  int64_t RunUntilIdle(int64_t max_steps = 100'000'000) { return RunUntil(absl::InfiniteFuture(), max_steps); }

  // Same, but stops before running any timer later than `deadline`, leaving
  // the clock at the later of its current value and `deadline`.
  int64_t RunUntil(absl::Time deadline, int64_t max_steps = 100'000'000) {
    int64_t steps = 0;
    while (steps < max_steps) {
      if (!posted_.empty()) {
        Callback fn = std::move(posted_.front());
        posted_.pop_front();
        std::move(fn)();
        ++steps;
        continue;
      }
      if (timers_.empty() || timers_.begin()->first.first > deadline) break;
      auto it = timers_.begin();
      clock_.AdvanceTo(it->first.first);
      Callback fn = std::move(it->second);
      timers_.erase(it);
      std::move(fn)();
      ++steps;
    }
    if (deadline != absl::InfiniteFuture()) clock_.AdvanceTo(deadline);
    return steps;
  }

  bool idle() const { return posted_.empty() && timers_.empty(); }
  size_t pending_timers() const { return timers_.size(); }

 private:
  FakeClock clock_;
  std::deque<Callback> posted_;
  std::map<std::pair<absl::Time, TimerId>, Callback> timers_;  // by time, then creation order
  TimerId next_id_ = 1;
};

}  // namespace fanout::testing

#endif  // FANOUT_TESTING_FAKE_EVENT_LOOP_H_
