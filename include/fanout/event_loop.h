// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// EventLoop: where the engine's work and timers run. The engine is
// single-threaded on its loop: every callback it gets (responses, timers) runs
// there, so it needs no locks. AsioEventLoop runs on a Boost.Asio io_context
// (the host's, or one the host runs on its own thread); FakeEventLoop
// (fanout/testing/fake_event_loop.h) runs timers on a FakeClock so engine tests
// take microseconds and are deterministic.

#ifndef FANOUT_EVENT_LOOP_H_
#define FANOUT_EVENT_LOOP_H_

#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "fanout/clock.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace fanout {

using Callback = absl::AnyInvocable<void() &&>;

class EventLoop {
 public:
  using TimerId = uint64_t;

  virtual ~EventLoop() = default;

  // The clock timers are measured on.
  virtual const Clock& clock() const = 0;

  // Runs `fn` on the loop soon, never inside this call. Thread-safe.
  virtual void Post(Callback fn) = 0;

  // Runs `fn` on the loop once clock().Now() >= `when`. Returns an id for
  // Cancel. Loop thread only.
  virtual TimerId RunAt(absl::Time when, Callback fn) = 0;

  // Cancels a timer that has not run yet (its callback is destroyed, not
  // called); unknown or already-run ids are ignored. Loop thread only.
  virtual void Cancel(TimerId id) = 0;
};

// An EventLoop on a Boost.Asio io_context, timed by `clock` (monotonic) with
// asio steady timers. `io` and `clock` must outlive it; destroy it on the loop
// thread or when the io_context is not running.
class AsioEventLoop final : public EventLoop {
 public:
  AsioEventLoop(boost::asio::io_context& io, const Clock* clock);
  ~AsioEventLoop() override;

  const Clock& clock() const override { return *clock_; }
  void Post(Callback fn) override;
  TimerId RunAt(absl::Time when, Callback fn) override;
  void Cancel(TimerId id) override;

  boost::asio::io_context& io_context() { return io_; }

 private:
  struct Timers;
  boost::asio::io_context& io_;
  const Clock* const clock_;
  std::shared_ptr<Timers> timers_;
};

}  // namespace fanout

#endif  // FANOUT_EVENT_LOOP_H_
