// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Metrics: a crawl's figures in the Prometheus text exposition format
// (version 0.0.4), and a small HTTP server that answers GET /metrics with
// them, for `fanout crawl --metrics-port` or a host program's own scraping.
// The figures come from a CrawlStats snapshot taken at scrape time: nothing
// here is incremented on the crawl's hot path.

#ifndef FANOUT_METRICS_H_
#define FANOUT_METRICS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "fanout/engine.h"

namespace fanout {

// The exposition of `stats`: per level (label level="name") the requests,
// responses by status class, transport errors, invalid responses, throttled
// responses, retries, successes, dead letters, in flight, pending, bytes and
// the latency histogram (1 ms to 60 s); overall the discovered tasks, records,
// the upstream's rate and elapsed time.
// Every family has its # HELP and # TYPE lines; names start with "fanout_".
std::string PrometheusText(const CrawlStats& stats);

// Serves GET /metrics (and GET /, the same) on its own thread. Other paths
// answer 404, other methods 405. One connection at a time, each bounded by a
// 2 s read timeout, which is plenty for a scraper.
class MetricsServer {
 public:
  // Listens on `host`:`port` (port 0 = a free one; see port()). `collect` is
  // called on the server's thread for each scrape and returns the body.
  // Unavailable naming the address if it cannot listen.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& host, uint16_t port,
                                                              std::function<std::string()> collect);
  // Stops serving and joins the thread.
  ~MetricsServer();

  uint16_t port() const;

  struct Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fanout

#endif  // FANOUT_METRICS_H_
