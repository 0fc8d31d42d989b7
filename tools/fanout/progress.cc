// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "progress.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fanout::cli {
namespace {

int64_t Finished(const LevelStats& level) { return level.succeeded + level.dead; }
int64_t Discovered(const LevelStats& level) { return level.succeeded + level.dead + level.pending + level.in_flight; }

// A latency, short: "850us", "12.3ms", "1.25s".
std::string Latency(absl::Duration d) {
  const double us = absl::ToDoubleMicroseconds(d);
  if (us < 1000) return absl::StrFormat("%.0fus", us);
  if (us < 1e6) return absl::StrFormat("%.1fms", us / 1000);
  return absl::StrFormat("%.2fs", us / 1e6);
}

std::string ShortDuration(absl::Duration d) {
  const int64_t s = absl::ToInt64Seconds(d);
  if (s < 60) return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d));
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}


}  // namespace

double EstimatedTotalTasks(const CrawlStats& stats) {
  double total = 0, parents_estimate = 0;
  for (size_t i = 0; i < stats.levels.size(); ++i) {
    const LevelStats& level = stats.levels[i];
    double estimate = static_cast<double>(Discovered(level));
    if (i > 0) {
      const LevelStats& parent = stats.levels[i - 1];
      const int64_t parents_finished = Finished(parent);
      if (parents_finished > 0) {
        const double per_parent = static_cast<double>(Discovered(level)) / static_cast<double>(parents_finished);
        estimate = std::max(estimate, per_parent * parents_estimate);
      }
    }
    parents_estimate = estimate;
    total += estimate;
  }
  return total;
}

void EtaEstimator::Add(absl::Time now, int64_t finished) {
  samples_.emplace_back(now, finished);
  while (samples_.size() > 2 && now - samples_.front().first > absl::Seconds(15)) samples_.pop_front();
}

std::optional<absl::Duration> EtaEstimator::Eta(absl::Time now, double remaining) const {
  if (samples_.size() < 2) return std::nullopt;
  const double seconds = absl::ToDoubleSeconds(now - samples_.front().first);
  const double done = static_cast<double>(samples_.back().second - samples_.front().second);
  if (seconds < 1 || done <= 0) return std::nullopt;
  return absl::Seconds(std::max(0.0, remaining) / (done / seconds));
}

Totals Sum(const CrawlStats& stats) {
  Totals t;
  for (const LevelStats& level : stats.levels) {
    t.requests += level.requests + level.extra_requests;
    t.throttled += level.throttled;
    t.retries += level.retries;
    t.errors += level.transport_errors;
    t.bytes += level.bytes;
  }
  return t;
}

std::string Thousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

void ProgressDisplay::Show(const CrawlStats& stats, absl::Time now) {
  const Totals totals = Sum(stats);
  // `stats` counts tasks finished in earlier runs of a resumed crawl too; its
  // levels count this run's. The estimate of what remains comes from the
  // levels, and is added to all that is finished.
  const int64_t finished = stats.succeeded + stats.dead;
  int64_t finished_this_run = 0;
  for (const LevelStats& level : stats.levels) finished_this_run += level.succeeded + level.dead;
  const double remaining = std::max(0.0, EstimatedTotalTasks(stats) - static_cast<double>(finished_this_run));
  const double estimate = static_cast<double>(finished) + remaining;
  eta_.Add(now, finished);
  const std::optional<absl::Duration> eta = eta_.Eta(now, remaining);
  const double seconds = std::max(1e-3, absl::ToDoubleSeconds(stats.elapsed));
  const std::string head = absl::StrFormat(
      "%s  %s/~%s tasks  %s requests (%.0f/s)  throttled %s  retries %s  dead %s  eta %s",
      ShortDuration(stats.elapsed), Thousands(finished), Thousands(static_cast<int64_t>(std::llround(estimate))),
      Thousands(totals.requests), static_cast<double>(totals.requests) / seconds, Thousands(totals.throttled),
      Thousands(totals.retries), Thousands(stats.dead), eta.has_value() ? ShortDuration(*eta) : "?");
  if (!terminal_) {
    std::fprintf(out_, "fanout: %s\n", head.c_str());
    std::fflush(out_);
    return;
  }
  std::string block;
  if (lines_drawn_ > 0) absl::StrAppendFormat(&block, "\x1b[%dA", lines_drawn_);  // back to the block's top
  absl::StrAppend(&block, "\x1b[2K", head, "\n");
  int lines = 1;
  for (const LevelStats& level : stats.levels) {
    absl::StrAppendFormat(&block, "\x1b[2K  %-14s %12s done  %8s pending  %6s in flight  %s dead\n", level.name,
                          Thousands(level.succeeded), Thousands(level.pending), Thousands(level.in_flight),
                          Thousands(level.dead));
    ++lines;
  }
  if (stats.upstream_rate > 0) {
    absl::StrAppendFormat(&block, "\x1b[2K  upstream rate %.1f/s%s\n", stats.upstream_rate,
                          stats.adaptive.has_value()
                              ? absl::StrCat(" (adaptive: ", RateModeName(stats.adaptive->mode), ")")
                              : std::string());
    ++lines;
  }
  for (; lines < lines_drawn_; ++lines) block += "\x1b[2K\n";  // wipe what a longer block left
  std::fputs(block.c_str(), out_);
  std::fflush(out_);
  lines_drawn_ = lines;
}

void ProgressDisplay::Clear() {
  if (!terminal_ || lines_drawn_ == 0) return;
  std::string block = absl::StrFormat("\x1b[%dA", lines_drawn_);
  for (int i = 0; i < lines_drawn_; ++i) block += "\x1b[2K\n";
  absl::StrAppendFormat(&block, "\x1b[%dA", lines_drawn_);
  std::fputs(block.c_str(), out_);
  std::fflush(out_);
  lines_drawn_ = 0;
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string SummaryText(const CrawlStats& stats, const std::string& state) {
  const Totals totals = Sum(stats);
  const double seconds = std::max(1e-3, absl::ToDoubleSeconds(stats.elapsed));
  std::string text = absl::StrFormat(
      "fanout: %s in %s: %s records written; tasks (all runs) %s done, %s dead, %s pending; %s requests (%.1f/s), "
      "%s throttled, %s retries, %s transport errors, %.1f MiB\n",
      state, ShortDuration(stats.elapsed), Thousands(stats.records), Thousands(stats.succeeded), Thousands(stats.dead),
      Thousands(stats.pending + stats.in_flight), Thousands(totals.requests),
      static_cast<double>(totals.requests) / seconds, Thousands(totals.throttled), Thousands(totals.retries),
      Thousands(totals.errors), static_cast<double>(totals.bytes) / (1 << 20));
  absl::StrAppendFormat(&text, "  %-14s %10s %10s %8s %8s %8s %8s %6s %9s %9s\n", "level", "requests", "2xx", "4xx",
                        "5xx", "errors", "retries", "dead", "p50", "p99");
  for (const LevelStats& level : stats.levels) {
    absl::StrAppendFormat(&text, "  %-14s %10s %10s %8s %8s %8s %8s %6s %9s %9s\n", level.name,
                          Thousands(level.requests), Thousands(level.responses_2xx), Thousands(level.responses_4xx),
                          Thousands(level.responses_5xx), Thousands(level.transport_errors),
                          Thousands(level.retries), Thousands(level.dead), Latency(level.latency_p50),
                          Latency(level.latency_p99));
  }
  return text;
}

std::string SummaryJson(const CrawlStats& stats, const std::string& state, int exit_code) {
  const Totals totals = Sum(stats);
  std::string json = absl::StrFormat(
      "{\"state\":%s,\"exit_code\":%d,\"elapsed_seconds\":%.3f,\"discovered\":%d,\"succeeded\":%d,\"dead\":%d,"
      "\"pending\":%d,\"records\":%d,\"requests\":%d,\"throttled\":%d,\"retries\":%d,\"transport_errors\":%d,"
      "\"bytes\":%d,\"upstream_rate\":%.3f,\"frontier_round_trips\":%d,\"balanced\":%s,\"levels\":[",
      JsonString(state), exit_code, absl::ToDoubleSeconds(stats.elapsed), stats.discovered, stats.succeeded,
      stats.dead, stats.pending + stats.in_flight, stats.records, totals.requests, totals.throttled, totals.retries,
      totals.errors, totals.bytes, stats.upstream_rate, stats.frontier_round_trips,
      stats.balanced() ? "true" : "false");
  for (size_t i = 0; i < stats.levels.size(); ++i) {
    const LevelStats& l = stats.levels[i];
    absl::StrAppendFormat(
        &json,
        "%s{\"name\":%s,\"requests\":%d,\"extra_requests\":%d,\"responses\":{\"2xx\":%d,\"3xx\":%d,\"4xx\":%d,"
        "\"5xx\":%d},\"transport_errors\":%d,\"invalid\":%d,\"throttled\":%d,\"retries\":%d,\"succeeded\":%d,"
        "\"dead\":%d,\"pending\":%d,\"bytes\":%d,\"latency_seconds\":{\"p50\":%.6f,\"p90\":%.6f,\"p99\":%.6f,"
        "\"max\":%.6f}}",
        i == 0 ? "" : ",", JsonString(l.name), l.requests, l.extra_requests, l.responses_2xx, l.responses_3xx,
        l.responses_4xx, l.responses_5xx, l.transport_errors, l.invalid, l.throttled, l.retries, l.succeeded, l.dead,
        l.pending + l.in_flight, l.bytes, absl::ToDoubleSeconds(l.latency_p50), absl::ToDoubleSeconds(l.latency_p90),
        absl::ToDoubleSeconds(l.latency_p99), absl::ToDoubleSeconds(l.latency_max));
  }
  return json + "]}";
}

}  // namespace fanout::cli
