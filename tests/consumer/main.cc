// Uses the installed headers and library: paces 5 requests at 1000/s.
#include <cstdio>

#include "fanout/clock.h"
#include "fanout/limits.h"
#include "fanout/rate_limiter.h"
#include "fanout/retry.h"

int main() {
  fanout::SystemClock clock;
  auto limiter = fanout::RateLimiter::Create(&clock, fanout::RateLimitSpec::PerSecond(1000, 5), "consumer");
  if (!limiter.ok()) return 1;
  int granted = 0;
  for (int i = 0; i < 5; ++i) granted += (*limiter)->TryAcquire() ? 1 : 0;
  auto policy = fanout::RetryPolicy::Create(&clock, fanout::RetryOptions{});
  if (!policy.ok()) return 2;
  std::printf("consumer: %d of 5 granted\n", granted);
  return granted == 5 ? 0 : 3;
}
