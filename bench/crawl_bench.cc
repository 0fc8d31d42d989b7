// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// crawl_bench: end-to-end figures against the mock vendor API on loopback,
// each as a ratio to a baseline measured in the same run (machines are shared
// and noisy, so absolute numbers mean little):
//
//  1. Unlimited crawl of the tree (default 400 x 12 x 5 = 24,000 documents):
//     fanout's requests/s vs a minimal libcurl multi loop fetching the same
//     URLs (known in advance, no parsing, no limits): target >= 0.8. The two
//     run in turn for --rounds rounds and the figure is the median of the
//     rounds' ratios: a neighbour's burst on a shared machine then spoils one
//     round, not the figure. The CurlTransport alone over the same URLs
//     splits the gap between transport and engine; CPU microseconds per
//     request are shown for each, since client and mock share the cores.
//  2. Peak RSS of this process after the fanout crawl (the mock API runs in a
//     separate process): target <= 64 MiB.
//  3. Rate-limited crawl at --rate (default 500/s, a smaller tree): completion
//     time / (requests / rate), target <= 1.03, with zero 429s.
//
//   build-bench/bench/crawl_bench --mock=build-bench/mock_api/fanout-mock-api

#include <curl/curl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "boost/asio/io_context.hpp"
#include "fanout/curl_transport.h"
#include "fanout/engine.h"
#include "fanout/sink.h"
#include "mock_api_server.h"

ABSL_FLAG(std::string, mock, "", "path to fanout-mock-api");
ABSL_FLAG(int, troops, 400, "troops in the unlimited tree");
ABSL_FLAG(int, max_in_flight, 64, "requests in flight (both clients)");
ABSL_FLAG(int, rounds, 5, "rounds of the unlimited crawl (libcurl loop, fanout, fanout with the journal)");
ABSL_FLAG(int, mock_threads, 1, "io threads of the mock API in the unlimited run");
ABSL_FLAG(double, rate, 500, "limit for the rate-limited run (server and client)");
ABSL_FLAG(int, rate_troops, 40, "troops in the rate-limited tree");
ABSL_FLAG(std::string, profile, "", "run only one client of the unlimited crawl, \"fanout\" or \"baseline\" (for a profiler)");

namespace {

struct MockProcess {
  pid_t pid = -1;
  std::string url;
  ~MockProcess() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  }
};

// Starts fanout-mock-api on a free loopback port and reads its URL.
bool StartMock(MockProcess& mock, const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  mock.pid = fork();
  if (mock.pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    std::vector<char*> argv;
    std::string binary = absl::GetFlag(FLAGS_mock);
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  FILE* out = fdopen(fds[0], "r");
  char line[256];
  if (fgets(line, sizeof line, out) == nullptr) return false;
  std::string text(line);
  const size_t at = text.find("http://");
  if (at == std::string::npos) return false;
  mock.url = text.substr(at);
  while (!mock.url.empty() && (mock.url.back() == '\n' || mock.url.back() == '\r')) mock.url.pop_back();
  return true;
}

fanout::CrawlPlan Plan(const std::string& base) { return fanout::mock::CrawlPlanFor(base); }

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }
size_t Keep(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// The baseline: a minimal libcurl multi loop over a known URL list. With
// `same_work`, each transfer also does what CurlTransport asks of libcurl for
// every request (a User-Agent, Accept-Encoding, redirects limited to http(s),
// timeouts) and keeps its headers and body in memory, as a Response holds
// them: the gap to that loop is the transport's and the engine's own cost,
// the rest is libcurl's cost for those features.
double MinimalCurlLoop(const std::vector<std::string>& urls, int concurrency, bool same_work = false) {
  std::string headers, body;
  CURLM* multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(concurrency));
  size_t next = 0, done = 0;
  auto add = [&](CURL* easy) {
    curl_easy_setopt(easy, CURLOPT_URL, urls[next++].c_str());
    curl_multi_add_handle(multi, easy);
  };
  std::vector<CURL*> handles;
  for (int i = 0; i < concurrency && next < urls.size(); ++i) {
    CURL* easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, Discard);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    if (same_work) {
      curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, Keep);
      curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
      curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, Keep);
      curl_easy_setopt(easy, CURLOPT_HEADERDATA, &headers);
      curl_easy_setopt(easy, CURLOPT_USERAGENT, "fanout/bench");
      curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "gzip, br");
      curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
      curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 5L);
      curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
      curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
      curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 60000L);
    }
    handles.push_back(easy);
    add(easy);
  }
  const absl::Time start = absl::Now();
  int running = 0;
  while (done < urls.size()) {
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      curl_multi_remove_handle(multi, easy);
      headers.clear();
      body.clear();
      ++done;
      if (next < urls.size()) add(easy);
    }
    curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (CURL* easy : handles) curl_easy_cleanup(easy);
  curl_multi_cleanup(multi);
  return static_cast<double>(urls.size()) / seconds;
}

// CPU time (user + system) this process has used so far, in seconds.
double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// The transport alone (no engine): the same URL list through CurlTransport.
double TransportLoop(const std::vector<std::string>& urls, int concurrency) {
  boost::asio::io_context io(1);
  fanout::CurlTransportOptions options;
  options.max_connections_per_host = concurrency;
  auto transport = *fanout::CurlTransport::Create(io, options);
  size_t next = 0, done = 0;
  std::function<void()> send_next = [&] {
    if (next >= urls.size()) return;
    transport->Send(fanout::Request{.url = urls[next++]}, [&](absl::StatusOr<fanout::Response>) {
      ++done;
      send_next();
    });
  };
  const absl::Time start = absl::Now();
  for (int i = 0; i < concurrency; ++i) send_next();
  while (done < urls.size()) io.run_one();
  return static_cast<double>(urls.size()) / absl::ToDoubleSeconds(absl::Now() - start);
}

int64_t Requests(const fanout::CrawlStats& stats) {
  int64_t n = 0;
  for (const auto& level : stats.levels) n += level.requests;
  return n;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// One run's speed: requests/s and CPU microseconds a request.
struct Speed {
  double rate = 0;
  double cpu_us = 0;
};

// Runs `crawl` (which returns requests/s, or < 0 on failure) and measures
// the CPU it takes for `requests` requests.
template <typename F>
Speed Measure(int64_t requests, F&& crawl) {
  const double cpu = CpuSeconds();
  Speed speed;
  speed.rate = crawl();
  speed.cpu_us = (CpuSeconds() - cpu) * 1e6 / static_cast<double>(requests);
  return speed;
}

// "min-max" of a list.
std::string Spread(const std::vector<double>& values, const char* format) {
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  return absl::StrCat(absl::StrFormat(format, *lo), "-", absl::StrFormat(format, *hi));
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_mock).empty()) {
    std::fprintf(stderr, "crawl_bench: --mock=PATH/fanout-mock-api is required\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const int troops = absl::GetFlag(FLAGS_troops);
  const int concurrency = absl::GetFlag(FLAGS_max_in_flight);

  {  // 1 + 2: unlimited.
    MockProcess mock;
    if (!StartMock(mock, {"--port=0", absl::StrCat("--troops=", troops), 
                          absl::StrCat("--threads=", absl::GetFlag(FLAGS_mock_threads))})) {
      std::fprintf(stderr, "crawl_bench: could not start the mock API\n");
      return 1;
    }
    std::vector<std::string> urls = {mock.url + "/troops"};
    for (int t = 1; t <= troops; ++t) {
      urls.push_back(absl::StrCat(mock.url, "/troops/t", t, "/warriors"));
      for (int w = 1; w <= 12; ++w) {
        urls.push_back(absl::StrCat(mock.url, "/troops/t", t, "/warriors/w", w, "/groups"));
        for (int g = 1; g <= 5; ++g) {
          urls.push_back(absl::StrCat(mock.url, "/troops/t", t, "/warriors/w", w, "/groups/g", g, "/data"));
        }
      }
    }
    const std::string profile = absl::GetFlag(FLAGS_profile);
    const auto urls_count = static_cast<int64_t>(urls.size());
    if (profile == "baseline") {
      MinimalCurlLoop(urls, concurrency);
      return 0;
    }
    if (profile == "transport" || profile.empty()) {
      const Speed transport = Measure(urls_count, [&] { return TransportLoop(urls, concurrency); });
      std::printf("  CurlTransport alone (no engine): %.0f req/s, %.1f us CPU/request\n", transport.rate,
                  transport.cpu_us);
      if (profile == "transport") return 0;
    }

    int64_t records = 0;
    fanout::CallbackSink sink([&](const fanout::Record&) {
      ++records;
      return absl::OkStatus();
    });
    int64_t requests = 0;
    // One fanout crawl of the tree, with the journal at `journal` if set.
    const auto crawl = [&](const std::string& journal) -> double {
      fanout::RunOptions options;
      options.engine.max_in_flight = concurrency;
      options.journal = journal;
      records = 0;
      auto result = fanout::RunCrawl(Plan(mock.url), {&sink}, nullptr, options);
      if (!journal.empty()) {
        for (const char* suffix : {"", "-wal", "-shm"}) std::remove((journal + suffix).c_str());
      }
      if (!result.ok()) {
        std::fprintf(stderr, "crawl_bench: %s\n", std::string(result.status().message()).c_str());
        return -1;
      }
      requests = Requests(result->stats);
      return static_cast<double>(requests) / absl::ToDoubleSeconds(result->stats.elapsed);
    };
    if (profile == "fanout") return crawl("") > 0 ? 0 : 1;

    // Rounds of: the loop, fanout, fanout with the journal, in turn.
    const std::string journal = "/tmp/fanout_crawl_bench_" + std::to_string(getpid()) + ".db";
    const int rounds = std::max(1, absl::GetFlag(FLAGS_rounds));
    std::vector<double> loop_rates, fanout_rates, ratios, loop_cpu, fanout_cpu, journal_ratios;
    for (int round = 0; round < rounds; ++round) {
      const Speed loop = Measure(urls_count, [&] { return MinimalCurlLoop(urls, concurrency); });
      const Speed in_memory = Measure(urls_count, [&] { return crawl(""); });
      const double journaled = crawl(journal);
      if (in_memory.rate < 0 || journaled < 0) return 1;
      loop_rates.push_back(loop.rate);
      fanout_rates.push_back(in_memory.rate);
      loop_cpu.push_back(loop.cpu_us);
      fanout_cpu.push_back(in_memory.cpu_us);
      ratios.push_back(in_memory.rate / loop.rate);
      journal_ratios.push_back(journaled / in_memory.rate);
      std::printf("  round %d: libcurl loop %.0f req/s, fanout %.0f req/s (ratio %.2f), with the journal %.0f req/s\n",
                  round + 1, loop.rate, in_memory.rate, in_memory.rate / loop.rate, journaled);
    }
    const Speed same_work = Measure(urls_count, [&] { return MinimalCurlLoop(urls, concurrency, true); });
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("unlimited crawl: %lld documents, %lld requests, %d rounds\n", static_cast<long long>(records),
                static_cast<long long>(requests), rounds);
    std::printf("  minimal libcurl loop: median %.0f req/s (%s), %.1f us CPU/request (%zu URLs known in advance)\n",
                Median(loop_rates), Spread(loop_rates, "%.0f").c_str(), Median(loop_cpu), urls.size());
    std::printf("  fanout:               median %.0f req/s (%s), %.1f us CPU/request\n", Median(fanout_rates),
                Spread(fanout_rates, "%.0f").c_str(), Median(fanout_cpu));
    std::printf("  libcurl loop doing the same work per request: %.0f req/s, %.1f us CPU/request\n", same_work.rate,
                same_work.cpu_us);
    std::printf("  ratio fanout / libcurl loop: median %.2f (rounds %s) (target >= 0.8)\n", Median(ratios),
                Spread(ratios, "%.2f").c_str());
    std::printf("  peak RSS of the crawling process: %.1f MiB (target <= 64)\n",
                static_cast<double>(usage.ru_maxrss) / 1024.0);
    std::printf("  fanout with the journal / in-memory: median %.2f (rounds %s) (target >= 0.7)\n",
                Median(journal_ratios), Spread(journal_ratios, "%.2f").c_str());
  }

  if (!absl::GetFlag(FLAGS_profile).empty()) return 0;
  {  // 3: rate-limited at the server's limit.
    const double rate = absl::GetFlag(FLAGS_rate);
    MockProcess mock;
    if (!StartMock(mock, {"--port=0", absl::StrCat("--troops=", absl::GetFlag(FLAGS_rate_troops)),
                          absl::StrCat("--rate=", rate), "--burst=20", "--threads=1"})) {
      std::fprintf(stderr, "crawl_bench: could not start the mock API\n");
      return 1;
    }
    fanout::CallbackSink sink([](const fanout::Record&) { return absl::OkStatus(); });
    fanout::RunOptions options;
    options.engine.max_in_flight = concurrency;
    options.engine.rate = fanout::RateLimitSpec::PerSecond(rate, 5);
    auto result = fanout::RunCrawl(Plan(mock.url), {&sink}, nullptr, options);
    if (!result.ok()) {
      std::fprintf(stderr, "crawl_bench: %s\n", std::string(result.status().message()).c_str());
      return 1;
    }
    int64_t throttled = 0;
    for (const auto& level : result->stats.levels) throttled += level.throttled;
    const double requests = static_cast<double>(Requests(result->stats));
    const double ideal = requests / rate;
    std::printf("rate-limited crawl at %.0f/s: %.0f requests in %.2f s (ideal %.2f s)\n", rate, requests,
                absl::ToDoubleSeconds(result->stats.elapsed), ideal);
    std::printf("  completion time / ideal: %.3f (target <= 1.03); 429s: %lld (target 0)\n",
                absl::ToDoubleSeconds(result->stats.elapsed) / ideal, static_cast<long long>(throttled));
  }
  curl_global_cleanup();
  return 0;
}
