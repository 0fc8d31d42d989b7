// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// pacing_demo: the rate-limit and retry core at work against a simulated
// upstream that enforces its own strict limit (over it: 429 + Retry-After) and
// fails a few percent of calls (503s and timeouts).
//
// The client paces its calls with Limits at the upstream's published rate,
// retries failures with RetryPolicy (full-jitter backoff, a retry budget), and
// treats any 429 as a cooldown of the whole upstream rather than a failure.
// Expected: every task done, zero 429s, the achieved rate close to the limit.
//
//   build/examples/pacing_demo [--tasks=600] [--rate=100] [--fault_rate=0.05]

#include <unistd.h>

#include <cstdio>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "fanout/clock.h"
#include "fanout/limits.h"
#include "fanout/rate_limiter.h"
#include "fanout/retry.h"

ABSL_FLAG(int, tasks, 600, "calls to make");
ABSL_FLAG(double, rate, 100, "the upstream's limit, in requests per second");
ABSL_FLAG(int, burst, 10, "the upstream's burst");
ABSL_FLAG(double, fault_rate, 0.05, "fraction of calls the upstream fails (503 or timeout)");
ABSL_FLAG(double, client_rate_factor, 1.0, "client's configured rate as a multiple of the upstream's");
ABSL_FLAG(uint64_t, seed, 42, "seed for the upstream's faults and the client's jitter");

namespace {

// A stand-in for a vendor API: its own GCRA limit, and seeded faults.
class SimulatedUpstream {
 public:
  SimulatedUpstream(const fanout::Clock* clock, double rate, int burst, double fault_rate, uint64_t seed)
      : limit_(*fanout::RateLimiter::Create(clock, fanout::RateLimitSpec::PerSecond(rate, burst), "upstream")),
        fault_rate_(fault_rate),
        rng_(std::seed_seq{seed}) {}

  fanout::Outcome Call() {
    ++requests_;
    if (!limit_->TryAcquire()) {
      ++rejected_;
      return fanout::Outcome::Response(429, absl::Seconds(1));
    }
    if (absl::Bernoulli(rng_, fault_rate_)) {
      return absl::Bernoulli(rng_, 0.8) ? fanout::Outcome::Response(503) : fanout::Outcome::Timeout();
    }
    return fanout::Outcome::Response(200);
  }

  int64_t requests() const { return requests_; }
  int64_t rejected() const { return rejected_; }

 private:
  std::unique_ptr<fanout::RateLimiter> limit_;
  const double fault_rate_;
  absl::BitGen rng_;
  int64_t requests_ = 0;
  int64_t rejected_ = 0;
};

struct Task {
  int id;
  fanout::AttemptState attempts;
  absl::Time not_before;
  bool operator>(const Task& other) const { return not_before > other.not_before; }
};

void Pause(absl::Duration d) {
  if (d > absl::ZeroDuration()) std::this_thread::sleep_for(absl::ToChronoNanoseconds(d));
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int tasks = absl::GetFlag(FLAGS_tasks);
  const double rate = absl::GetFlag(FLAGS_rate);
  const int burst = absl::GetFlag(FLAGS_burst);
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (tasks < 1 || rate <= 0 || burst < 1) {
    std::fprintf(stderr, "pacing_demo: --tasks, --rate and --burst must be positive\n");
    return 2;
  }

  fanout::SystemClock clock;
  SimulatedUpstream upstream(&clock, rate, burst, absl::GetFlag(FLAGS_fault_rate), seed);

  // The client: a global limit at the upstream's published rate.
  const double client_rate = rate * absl::GetFlag(FLAGS_client_rate_factor);
  auto global = fanout::RateLimiter::Create(&clock, fanout::RateLimitSpec::PerSecond(client_rate, burst), "global");
  if (!global.ok()) {
    std::fprintf(stderr, "pacing_demo: %s\n", std::string(global.status().message()).c_str());
    return 2;
  }
  std::shared_ptr<fanout::RateLimiter> limiter = *std::move(global);
  fanout::Limits limits(&clock);
  limits.Add(limiter);

  auto budget = *fanout::RetryBudget::Create(&clock, fanout::RetryBudgetOptions{});
  fanout::RetryOptions retry_options;
  retry_options.base_delay = absl::Milliseconds(100);
  retry_options.max_delay = absl::Seconds(2);
  auto policy = *fanout::RetryPolicy::Create(&clock, retry_options, budget.get(), seed);

  std::priority_queue<Task, std::vector<Task>, std::greater<>> pending;
  const absl::Time start = clock.Now();
  for (int i = 0; i < tasks; ++i) pending.push(Task{i, {}, start});

  int done = 0, dead = 0, retries = 0, throttles = 0;
  const bool tty = isatty(fileno(stdout));
  absl::Time next_report = start;
  auto report = [&](bool final_line) {
    const double elapsed = absl::ToDoubleSeconds(clock.Now() - start);
    const std::string line = absl::StrFormat(
        "done %d/%d  dead %d  requests %d  %.0f req/s  retries %d  429s %d", done, tasks, dead,
        upstream.requests(), elapsed > 0 ? static_cast<double>(upstream.requests()) / elapsed : 0.0,
        retries, upstream.rejected());
    std::printf(tty && !final_line ? "\r%s   " : "%s\n", line.c_str());
    std::fflush(stdout);
  };

  std::printf("pacing_demo: %d calls to an upstream limited to %.0f/s (burst %d), %.0f%% faults\n", tasks,
              rate, burst, 100 * absl::GetFlag(FLAGS_fault_rate));
  while (!pending.empty()) {
    const absl::Time now = clock.Now();
    if (now >= next_report) {
      report(false);
      next_report = now + absl::Milliseconds(tty ? 200 : 1000);
    }
    if (pending.top().not_before > now) {
      Pause(std::min(pending.top().not_before, next_report) - now);
      continue;
    }
    fanout::Admission admission = limits.TryAcquire(1, now);
    if (!admission.granted()) {
      Pause(std::min(admission.wait, next_report - now));
      continue;
    }
    Task task = pending.top();
    pending.pop();
    const fanout::Outcome outcome = upstream.Call();
    const fanout::RetryDecision decision = policy->Decide(task.attempts, outcome);
    switch (decision.action) {
      case fanout::RetryDecision::Action::kSucceeded:
        ++done;
        break;
      case fanout::RetryDecision::Action::kThrottle:
        ++throttles;
        limiter->PauseUntil(clock.Now() + decision.delay);  // cool down the whole upstream
        task.not_before = clock.Now() + decision.delay;
        pending.push(task);
        break;
      case fanout::RetryDecision::Action::kRetry:
        ++retries;
        task.not_before = clock.Now() + decision.delay;
        pending.push(task);
        break;
      case fanout::RetryDecision::Action::kGiveUp:
        ++dead;
        std::printf("\ntask %d dead-lettered: %s\n", task.id, decision.reason.c_str());
        break;
    }
  }
  report(true);

  const double elapsed = absl::ToDoubleSeconds(clock.Now() - start);
  const double achieved = static_cast<double>(upstream.requests()) / elapsed;
  std::printf("\nsummary: %d of %d done, %d dead-lettered, %d retries, %d throttled, %lld rejected by the "
              "upstream (429)\n",
              done, tasks, dead, retries, throttles, static_cast<long long>(upstream.rejected()));
  // The limit lets `burst` calls go at once from idle; the rest are paced.
  const double paced = static_cast<double>(upstream.requests() - burst) / elapsed;
  std::printf("         %lld requests in %.2f s: %.1f req/s; after the initial burst of %d, %.1f req/s = "
              "%.1f%% of the upstream's limit\n",
              static_cast<long long>(upstream.requests()), elapsed, achieved, burst, paced,
              100 * paced / rate);
  return done + dead == tasks ? 0 : 1;
}
