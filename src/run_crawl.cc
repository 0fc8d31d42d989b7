// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// RunCrawl: the engine wired to the real parts (CurlTransport on a fresh
// io_context, SystemClock, an in-memory frontier), run on the calling thread.

#include <optional>
#include <utility>

#include "boost/asio/io_context.hpp"
#include "fanout/clock.h"
#include "fanout/curl_transport.h"
#include "fanout/engine.h"
#include "fanout/event_loop.h"
#include "fanout/frontier.h"

namespace fanout {

absl::StatusOr<CrawlResult> RunCrawl(CrawlPlan plan, std::vector<Sink*> sinks, DeadLetterLog* dead_letters,
                                     RunOptions options) {
  boost::asio::io_context io(1);  // one thread runs it: no locking in the scheduler
  SystemClock clock;
  AsioEventLoop loop(io, &clock);

  CurlTransportOptions transport_options;
  transport_options.connect_timeout = options.connect_timeout;
  transport_options.total_timeout = options.request_timeout;
  transport_options.verify_tls = options.verify_tls;
  transport_options.max_connections_per_host = options.engine.max_in_flight;
  auto transport = CurlTransport::Create(io, transport_options);
  if (!transport.ok()) return transport.status();

  std::unique_ptr<RetryBudget> budget;
  if (options.use_retry_budget) {
    auto created = RetryBudget::Create(&clock, options.retry_budget);
    if (!created.ok()) return created.status();
    budget = *std::move(created);
  }
  auto policy = RetryPolicy::Create(&clock, options.retry, budget.get(), options.seed);
  if (!policy.ok()) return policy.status();

  MemoryFrontier frontier(plan.levels.size());
  auto engine = Engine::Create(std::move(plan),
                               EngineParts{&loop, transport->get(), &frontier, policy->get(), std::move(sinks),
                                           dead_letters},
                               std::move(options.engine));
  if (!engine.ok()) return engine.status();

  std::optional<absl::StatusOr<CrawlResult>> result;
  (*engine)->Start([&](absl::StatusOr<CrawlResult> r) {
    result = std::move(r);
    io.stop();
  });
  std::function<void()> report;
  if (options.progress) {
    report = [&] {
      if (result.has_value()) return;
      options.progress((*engine)->Stats());
      loop.RunAt(clock.Now() + options.progress_interval, [&] { report(); });
    };
    loop.RunAt(clock.Now() + options.progress_interval, [&] { report(); });
  }
  if (!result.has_value()) io.run();
  // The transport goes first: requests it still holds are cancelled into an
  // engine that is alive (and finished, so it only hands them back).
  transport->reset();
  if (!result.has_value()) return absl::InternalError("crawl: the event loop stopped before the crawl ended");
  return *std::move(result);
}

}  // namespace fanout
