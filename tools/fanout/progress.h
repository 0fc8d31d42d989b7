// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// What the fanout command shows while a crawl runs and when it ends: a live
// progress display on a terminal (redrawn in place), a plain status line
// every few seconds otherwise, and the final summary (text and JSON).

#ifndef FANOUT_TOOLS_FANOUT_PROGRESS_H_
#define FANOUT_TOOLS_FANOUT_PROGRESS_H_

#include <cstdio>
#include <deque>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "fanout/engine.h"

namespace fanout::cli {

// The crawl's size, estimated while listings are still being read: each
// level's tasks extrapolated from the children its parents' finished tasks
// have had so far. Never below what is already discovered.
double EstimatedTotalTasks(const CrawlStats& stats);

// Remaining time from the recent completion rate; nullopt until there is one.
class EtaEstimator {
 public:
  void Add(absl::Time now, int64_t finished);
  std::optional<absl::Duration> Eta(absl::Time now, double remaining) const;

 private:
  std::deque<std::pair<absl::Time, int64_t>> samples_;  // the last ~15 s
};

class ProgressDisplay {
 public:
  // `terminal`: redraw a block of lines in place; otherwise one status line
  // per call. Writes to `out`.
  ProgressDisplay(std::FILE* out, bool terminal) : out_(out), terminal_(terminal) {}

  // Shows `stats` (taken at `now`).
  void Show(const CrawlStats& stats, absl::Time now);
  // Clears the live block so the summary starts on a clean line.
  void Clear();

 private:
  std::FILE* out_;
  bool terminal_;
  int lines_drawn_ = 0;
  EtaEstimator eta_;
};

// Totals over the levels.
struct Totals {
  int64_t requests = 0, throttled = 0, retries = 0, errors = 0, bytes = 0;
};
Totals Sum(const CrawlStats& stats);

// `text` as a JSON string literal (quotes, backslashes and control characters
// escaped).
std::string JsonString(std::string_view text);

// 1234567 -> "1,234,567".
std::string Thousands(int64_t n);

// The final summary as text (several lines, each ending in \n) and as JSON.
// `state` is "done", "stopped" or "failed"; `exit_code` the command's.
std::string SummaryText(const CrawlStats& stats, const std::string& state);
std::string SummaryJson(const CrawlStats& stats, const std::string& state, int exit_code);

}  // namespace fanout::cli

#endif  // FANOUT_TOOLS_FANOUT_PROGRESS_H_
