// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// FakeTransport: a Transport whose responses a test scripts with a handler;
// each response arrives after the handler's latency on a FakeEventLoop.
// Records every request sent. Single-threaded, like the loop.

#ifndef FANOUT_TESTING_FAKE_TRANSPORT_H_
#define FANOUT_TESTING_FAKE_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "fanout/testing/fake_event_loop.h"
#include "fanout/transport.h"

namespace fanout::testing {

class FakeTransport final : public Transport {
 public:
  struct Reply {
    absl::StatusOr<Response> result;
    absl::Duration latency = absl::Milliseconds(10);
  };
  using Handler = std::function<Reply(const Request&)>;

  FakeTransport(FakeEventLoop* loop, Handler handler) : loop_(loop), handler_(std::move(handler)) {}

  void Send(Request request, ResponseCallback done) override {
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    Reply reply = handler_(request);
    if (reply.result.ok()) {
      reply.result->url = request.url;
      reply.result->elapsed = reply.latency;
    }
    sent_.push_back({loop_->clock().Now(), std::move(request)});
    loop_->RunAt(loop_->clock().Now() + reply.latency,
                 [this, result = std::move(reply.result), done = std::move(done)]() mutable {
                   --in_flight_;
                   std::move(done)(std::move(result));
                 });
  }

  int64_t in_flight() const override { return in_flight_; }
  int64_t max_in_flight() const { return max_in_flight_; }

  struct Sent {
    absl::Time at;
    Request request;
  };
  const std::vector<Sent>& sent() const { return sent_; }

  // A 200 response with a JSON body, for handlers.
  static Reply Json(std::string body, int status = 200, Headers headers = {}) {
    Response response;
    response.status = status;
    response.headers = std::move(headers);
    response.body = std::move(body);
    return Reply{std::move(response)};
  }

 private:
  FakeEventLoop* const loop_;
  Handler handler_;
  int64_t in_flight_ = 0;
  int64_t max_in_flight_ = 0;
  std::vector<Sent> sent_;
};

}  // namespace fanout::testing

#endif  // FANOUT_TESTING_FAKE_TRANSPORT_H_
