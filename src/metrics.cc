// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/metrics.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <cmath>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"

namespace fanout {
namespace {

// A label value, escaped as the exposition format wants (\\, \", \n).
std::string Label(std::string_view value) {
  return absl::StrReplaceAll(std::string(value), {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

class Exposition {
 public:
  // Starts a family: its # HELP and # TYPE lines.
  void Family(const char* name, const char* type, const char* help) {
    absl::StrAppend(&text_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  void Sample(const char* name, const std::string& labels, double value) {
    // Counts print whole ("24000", never "2.4e+04"); other values with 9
    // significant digits.
    const bool whole = value == std::floor(value) && std::fabs(value) < 9007199254740992.0;
    absl::StrAppend(&text_, name, labels.empty() ? "" : "{" + labels + "}", " ",
                    whole ? absl::StrFormat("%d", static_cast<int64_t>(value)) : absl::StrFormat("%.9g", value),
                    "\n");
  }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

}  // namespace

std::string PrometheusText(const CrawlStats& stats) {
  Exposition out;
  using Field = int64_t LevelStats::*;
  struct PerLevel {
    const char* name;
    const char* type;
    const char* help;
    Field field;
  };
  static constexpr PerLevel kPerLevel[] = {
      {"fanout_requests_total", "counter", "Requests sent, by level (granted by the limits).",
       &LevelStats::requests},
      {"fanout_extra_requests_total", "counter",
       "Requests that reached the upstream beyond those granted (redirects, resends on dead connections).",
       &LevelStats::extra_requests},
      {"fanout_transport_errors_total", "counter", "Requests that got no response (connection errors, timeouts).",
       &LevelStats::transport_errors},
      {"fanout_invalid_responses_total", "counter", "Responses that could not be used (malformed listings).",
       &LevelStats::invalid},
      {"fanout_throttled_total", "counter", "Responses that said slow down (429, 503 with Retry-After).",
       &LevelStats::throttled},
      {"fanout_retries_total", "counter", "Tasks scheduled for another attempt.", &LevelStats::retries},
      {"fanout_tasks_succeeded_total", "counter", "Tasks finished successfully.", &LevelStats::succeeded},
      {"fanout_dead_letters_total", "counter", "Tasks given up on (dead-lettered).", &LevelStats::dead},
      {"fanout_response_bytes_total", "counter", "Bytes of response bodies.", &LevelStats::bytes},
      {"fanout_in_flight", "gauge", "Requests in flight.", &LevelStats::in_flight},
      {"fanout_pending", "gauge", "Tasks waiting to be sent.", &LevelStats::pending},
  };
  for (const PerLevel& metric : kPerLevel) {
    out.Family(metric.name, metric.type, metric.help);
    for (const LevelStats& level : stats.levels) {
      out.Sample(metric.name, absl::StrCat("level=\"", Label(level.name), "\""),
                 static_cast<double>(level.*metric.field));
    }
  }
  out.Family("fanout_responses_total", "counter", "Responses by level and status class.");
  for (const LevelStats& level : stats.levels) {
    const std::pair<const char*, int64_t> classes[] = {{"2xx", level.responses_2xx},
                                                       {"3xx", level.responses_3xx},
                                                       {"4xx", level.responses_4xx},
                                                       {"5xx", level.responses_5xx}};
    for (const auto& [name, count] : classes) {
      out.Sample("fanout_responses_total", absl::StrCat("level=\"", Label(level.name), "\",class=\"", name, "\""),
                 static_cast<double>(count));
    }
  }
  out.Family("fanout_request_duration_seconds", "histogram",
             "Time from sending a request to its response, by level.");
  for (const LevelStats& level : stats.levels) {
    const std::string name = Label(level.name);
    for (size_t i = 0; i < std::size(kLatencyBounds) && i < level.latency_at_most.size(); ++i) {
      out.Sample("fanout_request_duration_seconds_bucket",
                 absl::StrCat("level=\"", name, "\",le=\"", absl::ToDoubleSeconds(kLatencyBounds[i]), "\""),
                 static_cast<double>(level.latency_at_most[i]));
    }
    out.Sample("fanout_request_duration_seconds_bucket", absl::StrCat("level=\"", name, "\",le=\"+Inf\""),
               static_cast<double>(level.latency_count));
    out.Sample("fanout_request_duration_seconds_sum", absl::StrCat("level=\"", name, "\""),
               absl::ToDoubleSeconds(level.latency_sum));
    out.Sample("fanout_request_duration_seconds_count", absl::StrCat("level=\"", name, "\""),
               static_cast<double>(level.latency_count));
  }
  out.Family("fanout_tasks_discovered_total", "counter", "Tasks discovered: roots, children and next pages.");
  out.Sample("fanout_tasks_discovered_total", "", static_cast<double>(stats.discovered));
  out.Family("fanout_records_total", "counter", "Leaf documents written to the sinks.");
  out.Sample("fanout_records_total", "", static_cast<double>(stats.records));
  out.Family("fanout_upstream_rate", "gauge",
             "The upstream limiter's rate now, requests per second (0 = no rate limit).");
  out.Sample("fanout_upstream_rate", "", stats.upstream_rate);
  out.Family("fanout_elapsed_seconds", "gauge", "Time since the crawl started.");
  out.Sample("fanout_elapsed_seconds", "", absl::ToDoubleSeconds(stats.elapsed));
  return out.Take();
}

namespace asio = boost::asio;
namespace http = boost::beast::http;

struct MetricsServer::Impl {
  asio::io_context io{1};
  asio::ip::tcp::acceptor acceptor{io};
  std::function<std::string()> collect;
  std::thread thread;
  uint16_t port = 0;

  void Accept() {
    acceptor.async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) {
        if (ec != asio::error::operation_aborted) Accept();
        return;
      }
      Serve(std::move(socket));
      Accept();
    });
  }

  // One request, answered synchronously: a scraper sends one small GET.
  void Serve(asio::ip::tcp::socket socket) {
    timeval timeout{.tv_sec = 2, .tv_usec = 0};
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    boost::system::error_code ec;
    http::read(socket, buffer, request, ec);
    if (ec) return;
    http::response<http::string_body> response;
    response.version(request.version());
    response.keep_alive(false);
    response.set(http::field::server, "fanout");
    const std::string_view target(request.target().data(), request.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response.result(http::status::method_not_allowed);
      response.set(http::field::allow, "GET, HEAD");
      response.body() = "only GET\n";
    } else if (path != "/metrics" && path != "/") {
      response.result(http::status::not_found);
      response.body() = "not found; metrics are at /metrics\n";
    } else {
      response.result(http::status::ok);
      response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response.body() = collect();
    }
    response.prepare_payload();
    http::write(socket, response, ec);
    socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  }
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& host, uint16_t port,
                                                                    std::function<std::string()> collect) {
  auto impl = std::make_unique<Impl>();
  impl->collect = std::move(collect);
  boost::system::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrFormat("metrics: \"%s\" is not an IP address", host));
  const asio::ip::tcp::endpoint endpoint(address, port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrFormat("metrics: cannot listen on %s:%d: %s", host, port, ec.message()));
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl] {
    boost::system::error_code ec;
    impl->acceptor.close(ec);
  });
  impl->thread.join();
}

uint16_t MetricsServer::port() const { return impl_->port; }

}  // namespace fanout
