// A host program built against the installed fanout, as the README shows:
// paces with a limiter, then runs a crawl (to a closed loopback port, so the
// one root request is dead-lettered and nothing leaves the machine).
#include <cstdio>

#include "fanout/engine.h"
#include "fanout/limits.h"
#include "fanout/rate_limiter.h"

int main() {
  fanout::SystemClock clock;
  auto limiter = fanout::RateLimiter::Create(&clock, fanout::RateLimitSpec::PerSecond(1000, 5), "consumer");
  if (!limiter.ok()) return 1;
  int granted = 0;
  for (int i = 0; i < 5; ++i) granted += (*limiter)->TryAcquire() ? 1 : 0;
  if (granted != 5) return 2;

  fanout::CrawlPlan plan{.base_url = "http://127.0.0.1:1"};
  plan.levels = {
      {.name = "groups", .url = "/groups", .items_pointer = "/items", .bind = "group"},
      {.name = "data", .url = "/groups/{group}/data"},
  };
  fanout::CallbackSink sink([](const fanout::Record&) { return absl::OkStatus(); });
  fanout::RunOptions options;
  options.retry.max_attempts = 1;
  auto result = fanout::RunCrawl(plan, {&sink}, nullptr, options);
  if (!result.ok()) {
    std::fprintf(stderr, "consumer: %s\n", std::string(result.status().message()).c_str());
    return 3;
  }
  std::printf("consumer: %d of 5 granted; crawl: %lld dead, balanced %d\n", granted,
              static_cast<long long>(result->stats.dead), result->stats.balanced());
  return result->stats.dead == 1 && result->stats.balanced() ? 0 : 4;
}
