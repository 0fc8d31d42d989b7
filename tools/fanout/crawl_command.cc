// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// `fanout crawl SPEC` and `fanout resume JOURNAL`: one crawl, watched.
//
// A crawl with a journal stores in it what `resume` needs: the spec's text
// (header values unexpanded: environment variables are read again on resume,
// so no secret from the environment is written to disk), the spec's path
// (relative output paths resolve against its directory) and the command
// line's overrides.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "args.h"
#include "commands.h"
#include "fanout/engine.h"
#include "fanout/metrics.h"
#include "fanout/clock.h"
#include "fanout/redis_client.h"
#include "fanout/redis_frontier.h"
#include "fanout/sink.h"
#include "fanout/spec.h"
#include "fanout/sqlite_frontier.h"
#include "progress.h"

namespace fanout::cli {
namespace {

constexpr char kMetaSpec[] = "cli.spec";
constexpr char kMetaSpecPath[] = "cli.spec_path";
constexpr char kMetaOverrides[] = "cli.overrides";
constexpr char kMetaWeight[] = "cli.weight";      // a shared crawl's weight
constexpr char kMetaUpstream[] = "cli.upstream";  // and the name of its shared limit

std::atomic<int> g_signals{0};

void OnStopSignal(int) { g_signals.fetch_add(1); }

// Counts SIGINT and SIGTERM in g_signals (from zero) instead of dying, until
// RestoreStopSignals.
void CatchStopSignals() {
  g_signals = 0;
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

void RestoreStopSignals() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

// What the command line changes in the spec. The persistent ones are stored
// in the journal so `resume` runs the same crawl.
struct Overrides {
  double rate = 0;      // > 0: the global rate, requests per second
  int concurrency = 0;  // > 0: the global cap on requests in flight
  std::string out;      // the file tree's root
  std::string jsonl;
  std::string dead_letters;

  // "key=value" lines; paths are made absolute first.
  std::string Serialize() const {
    std::string text;
    if (rate > 0) absl::StrAppend(&text, "rate=", rate, "\n");
    if (concurrency > 0) absl::StrAppend(&text, "concurrency=", concurrency, "\n");
    if (!out.empty()) absl::StrAppend(&text, "out=", out, "\n");
    if (!jsonl.empty()) absl::StrAppend(&text, "jsonl=", jsonl, "\n");
    if (!dead_letters.empty()) absl::StrAppend(&text, "dead_letters=", dead_letters, "\n");
    return text;
  }
  // Fills the fields `text` has; later command-line values win (Apply order).
  static absl::StatusOr<Overrides> Parse(const std::string& text) {
    Overrides o;
    for (const std::string& line : std::vector<std::string>(absl::StrSplit(text, '\n', absl::SkipEmpty()))) {
      const std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
      bool ok = true;
      if (kv.first == "rate") {
        ok = absl::SimpleAtod(kv.second, &o.rate);
      } else if (kv.first == "concurrency") {
        ok = absl::SimpleAtoi(kv.second, &o.concurrency);
      } else if (kv.first == "out") {
        o.out = kv.second;
      } else if (kv.first == "jsonl") {
        o.jsonl = kv.second;
      } else if (kv.first == "dead_letters") {
        o.dead_letters = kv.second;
      } else {
        ok = false;
      }
      if (!ok) return absl::DataLossError(absl::StrCat("stored command-line overrides: bad line \"", line, "\""));
    }
    return o;
  }
  void MergeFrom(const Overrides& later) {
    if (later.rate > 0) rate = later.rate;
    if (later.concurrency > 0) concurrency = later.concurrency;
    if (!later.out.empty()) out = later.out;
    if (!later.jsonl.empty()) jsonl = later.jsonl;
    if (!later.dead_letters.empty()) dead_letters = later.dead_letters;
  }
  void Absolutize() {
    for (std::string* path : {&out, &jsonl, &dead_letters}) {
      if (!path->empty()) *path = std::filesystem::absolute(*path).lexically_normal().string();
    }
  }
  void ApplyTo(CrawlSpec& spec) const {
    if (rate > 0) {
      const int64_t burst = spec.run.engine.rate.has_value() ? spec.run.engine.rate->burst : 1;
      spec.run.engine.rate = RateLimitSpec::PerSecond(rate, burst);
    }
    if (concurrency > 0) spec.run.engine.max_in_flight = concurrency;
    if (!out.empty()) spec.output.tree = out;
    if (!jsonl.empty()) spec.output.jsonl = jsonl;
    if (!dead_letters.empty()) spec.output.dead_letters = dead_letters;
  }
};

// Options that belong to one run, not to the crawl.
struct RunFlags {
  absl::Duration max_duration = absl::InfiniteDuration();
  absl::Duration stop_grace = absl::Seconds(10);
  bool quiet = false;
  bool force = false;
  std::string summary_json;
  int metrics_port = -1;
  std::string metrics_host = "127.0.0.1";
  absl::Duration progress_interval = absl::ZeroDuration();  // 0 = by output kind
};

void AddRunFlags(Options& options, RunFlags& run, Overrides& overrides) {
  options.Duration("max-duration", "stop taking new tasks after this long, then exit 3 if work remains",
                   &run.max_duration);
  options.Duration("stop-grace", "after a stop, how long requests in flight may take to finish", &run.stop_grace);
  options.Double("rate", "the global rate limit, requests per second (replaces the spec's)", &overrides.rate, 1e-6,
                 1e9);
  options.Int("concurrency", "the most requests in flight (replaces the spec's)", &overrides.concurrency, 1, 100000);
  options.String("out", "DIR", "write the file tree of documents under DIR (replaces sinks.tree)", &overrides.out);
  options.String("jsonl", "PATH", "write documents as JSON lines to PATH (replaces sinks.jsonl)", &overrides.jsonl);
  options.String("dead-letters", "PATH", "append dead letters to PATH (replaces dead_letters)",
                 &overrides.dead_letters);
  options.Bool("quiet", "no progress display and no summary; errors only", &run.quiet);
  options.String("summary-json", "PATH", "write the final figures as JSON to PATH", &run.summary_json);
  options.Int("metrics-port", "serve Prometheus metrics on this port (0 = any free one, printed)", &run.metrics_port,
              0, 65535);
  options.String("metrics-host", "ADDR", "the address the metrics server listens on", &run.metrics_host);
  options.Duration("progress-interval", "time between status lines (default: 0.25s on a terminal, 5s otherwise)",
                   &run.progress_interval);
}

void Complain(const std::string& message, const std::vector<std::string>& secrets) {
  std::fprintf(stderr, "fanout: %s\n", Redact(message, secrets).c_str());
}

absl::Status MakeParent(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return absl::UnavailableError(absl::StrFormat("cannot create directory \"%s\": %s", parent.string(), ec.message()));
  return absl::OkStatus();
}

absl::Status WriteFile(const std::string& path, const std::string& contents) {
  if (absl::Status s = MakeParent(path); !s.ok()) return s;
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << contents;
    if (!out.flush()) return absl::UnavailableError(absl::StrFormat("cannot write \"%s\"", temp));
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) return absl::UnavailableError(absl::StrFormat("cannot write \"%s\": %s", path, ec.message()));
  return absl::OkStatus();
}

// A crawl as `fanout crawl` stored it (in a journal, or in a shared crawl's
// meta in Redis): its spec, with the stored command-line overrides and then
// `later` ones applied. FailedPrecondition if `meta` holds no spec,
// InvalidArgument if the spec no longer parses, DataLoss for bad overrides.
struct Stored {
  CrawlSpec spec;
  Overrides overrides;  // stored, then `later`
};
absl::StatusOr<Stored> StoredCrawl(const std::vector<std::pair<std::string, std::string>>& meta,
                                   const std::string& where, const Overrides& later) {
  std::optional<std::string> text, path, overrides;
  for (const auto& [key, value] : meta) {
    if (key == kMetaSpec) text = value;
    if (key == kMetaSpecPath) path = value;
    if (key == kMetaOverrides) overrides = value;
  }
  if (!text.has_value() || !path.has_value()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s holds no spec (it was not written by `fanout crawl`); run the crawl that wrote it again", where));
  }
  SpecOptions spec_options;
  spec_options.name = absl::StrFormat("%s (as stored in %s)", *path, where);
  spec_options.base_dir = std::filesystem::path(*path).parent_path().string();
  auto spec = ParseCrawlSpec(*text, spec_options);
  if (!spec.ok()) return spec.status();
  auto recorded = Overrides::Parse(overrides.value_or(""));
  if (!recorded.ok()) return absl::DataLossError(absl::StrFormat("%s: %s", where, recorded.status().message()));
  Overrides merged = *recorded;
  Overrides absolute = later;
  absolute.Absolutize();
  merged.MergeFrom(absolute);
  merged.ApplyTo(*spec);
  return Stored{*std::move(spec), std::move(merged)};
}

// In a crawl shared by several workers, output files named by the spec get
// the worker's id before their extension, so that two workers on one machine
// never append to the same file ("out/data.jsonl" -> "out/data.w1.jsonl").
std::string PerWorkerPath(const std::string& path, const std::string& worker_id) {
  if (path.empty()) return path;
  std::filesystem::path p(path);
  std::string safe = worker_id;
  for (char& c : safe) {
    if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';
  }
  return (p.parent_path() / (p.stem().string() + "." + safe + p.extension().string())).string();
}

// The sinks and dead-letter log a spec names, opened.
struct Outputs {
  std::unique_ptr<JsonLinesSink> jsonl;
  std::unique_ptr<FileTreeSink> tree;
  std::unique_ptr<DeadLetterLog> dead_letters;
  std::vector<Sink*> sinks;

  absl::Status Close() {
    absl::Status closed = absl::OkStatus();
    for (Sink* sink : sinks) closed.Update(sink->Close());
    if (dead_letters != nullptr) closed.Update(dead_letters->Close());
    return closed;
  }
};

// Opens what `spec` writes to (and points its success markers at the tree).
absl::StatusOr<std::unique_ptr<Outputs>> OpenOutputs(CrawlSpec& spec) {
  auto outputs = std::make_unique<Outputs>();
  if (!spec.output.jsonl.empty()) {
    if (absl::Status s = MakeParent(spec.output.jsonl); !s.ok()) return s;
    auto sink = JsonLinesSink::Open(spec.output.jsonl);
    if (!sink.ok()) return sink.status();
    outputs->jsonl = *std::move(sink);
    outputs->sinks.push_back(outputs->jsonl.get());
  }
  if (!spec.output.tree.empty()) {
    // Each document's file is written whole and renamed into place, so a
    // crash of the process never leaves a partial one; fsyncing every file
    // and its directory too (two fsyncs a document, on the crawl's thread)
    // buys survival of a power loss, which is what journal_sync "full" asks.
    auto sink = FileTreeSink::Open({.root = spec.output.tree, .fsync = spec.run.journal_sync_full});
    if (!sink.ok()) return sink.status();
    outputs->tree = *std::move(sink);
    outputs->sinks.push_back(outputs->tree.get());
    if (spec.output.success_markers) spec.run.engine.success_markers = outputs->tree.get();
  }
  if (!spec.output.dead_letters.empty()) {
    if (absl::Status s = MakeParent(spec.output.dead_letters); !s.ok()) return s;
    auto log = DeadLetterLog::Open(spec.output.dead_letters);
    if (!log.ok()) return log.status();
    outputs->dead_letters = *std::move(log);
  }
  return outputs;
}

// Runs the crawl `spec` describes, watched, and returns the exit code.
int Run(CrawlSpec spec, const RunFlags& flags, std::vector<std::pair<std::string, std::string>> journal_meta) {
  const std::vector<std::string>& secrets = spec.secrets;
  auto fail = [&](const absl::Status& status, int code) {
    Complain(std::string(status.message()), secrets);
    return code;
  };
  auto outputs = OpenOutputs(spec);
  if (!outputs.ok()) return fail(outputs.status(), kExitError);
  const std::vector<Sink*>& sinks = (*outputs)->sinks;
  if (sinks.empty() && !spec.output.sqlite) {
    Complain("warning: the spec has no sinks (sinks.jsonl, sinks.tree or sinks.sqlite): documents are fetched and "
             "counted, not kept",
             secrets);
  }
  RunOptions& run = spec.run;
  run.engine.max_duration = flags.max_duration;
  run.engine.stop_grace = flags.stop_grace;
  run.force_journal = flags.force;
  run.journal_meta = std::move(journal_meta);
  run.journal_records = spec.output.sqlite;
  if (!run.journal.empty()) {
    if (absl::Status s = MakeParent(run.journal); !s.ok()) return fail(s, kExitError);
  }

  // SIGINT / SIGTERM: the first stops gracefully (the journal keeps the
  // rest), the second ends the process at once.
  CatchStopSignals();

  auto crawl = BackgroundCrawl::Start(spec.plan, sinks, (*outputs)->dead_letters.get(), run);
  if (!crawl.ok()) {
    const int code = crawl.status().code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitError;
    return fail(crawl.status(), code);
  }
  std::unique_ptr<MetricsServer> metrics;
  if (flags.metrics_port >= 0) {
    BackgroundCrawl* raw = crawl->get();
    auto server = MetricsServer::Start(flags.metrics_host, static_cast<uint16_t>(flags.metrics_port), [raw] {
      std::optional<CrawlStats> stats = raw->Stats();
      return stats.has_value() ? PrometheusText(*stats) : std::string();
    });
    if (!server.ok()) {
      (*crawl)->Stop();
      (void)(*crawl)->Wait();
      return fail(server.status(), kExitError);
    }
    metrics = *std::move(server);
    std::fprintf(stderr, "fanout: metrics at http://%s:%d/metrics\n", flags.metrics_host.c_str(), metrics->port());
  }

  const bool terminal = isatty(STDERR_FILENO) == 1;
  ProgressDisplay progress(stderr, terminal);
  const absl::Duration interval = flags.progress_interval > absl::ZeroDuration() ? flags.progress_interval
                                  : terminal                                   ? absl::Milliseconds(250)
                                                                               : absl::Seconds(5);
  absl::Time next_progress = absl::Now() + interval;
  int signals_seen = 0;
  while (!(*crawl)->done()) {
    absl::SleepFor(absl::Milliseconds(50));
    const int signals = g_signals.load();
    if (signals > signals_seen) {
      if (signals_seen == 0) {
        progress.Clear();
        std::fprintf(stderr, "fanout: stopping: finishing requests in flight (again to quit at once)\n");
        (*crawl)->Stop();
      } else {
        // The journal has everything committed; the rest is done again on resume.
        RestoreStopSignals();
        std::raise(SIGTERM);
      }
      signals_seen = signals;
    }
    if (!flags.quiet && absl::Now() >= next_progress) {
      if (std::optional<CrawlStats> stats = (*crawl)->Stats()) progress.Show(*stats, absl::Now());
      next_progress = absl::Now() + interval;
    }
  }
  absl::StatusOr<CrawlResult> result = (*crawl)->Wait();
  metrics.reset();
  progress.Clear();
  RestoreStopSignals();
  const absl::Status closed = (*outputs)->Close();
  if (!result.ok()) return fail(result.status(), kExitError);
  if (!closed.ok()) return fail(closed, kExitError);

  const CrawlStats& stats = result->stats;
  const bool stopped = result->state == CrawlResult::State::kStopped;
  const int code = stopped ? kExitMoreWork : stats.dead > 0 ? kExitDeadLetters : kExitDone;
  const std::string state = stopped ? "stopped" : "done";
  if (!flags.quiet) {
    std::fputs(Redact(SummaryText(stats, state), secrets).c_str(), stderr);
    if (stopped && !run.shared.redis_url.empty()) {
      std::fprintf(stderr, "fanout: work remains in crawl %s; go on with: fanout crawl SPEC --redis %s --crawl-id %s\n",
                   run.shared.crawl_id.c_str(), RedactRedisUrl(run.shared.redis_url).c_str(),
                   run.shared.crawl_id.c_str());
    } else if (stopped && !run.journal.empty()) {
      std::fprintf(stderr, "fanout: work remains; go on with: fanout resume %s\n", run.journal.c_str());
    } else if (stopped) {
      std::fprintf(stderr, "fanout: work remains, but without a journal it cannot be resumed\n");
    }
    if (stats.dead > 0) {
      std::fprintf(stderr, "fanout: %s tasks dead-lettered%s%s\n", Thousands(stats.dead).c_str(),
                   spec.output.dead_letters.empty() ? "" : ", see ", spec.output.dead_letters.c_str());
    }
  }
  if (!flags.summary_json.empty()) {
    if (absl::Status s = WriteFile(flags.summary_json, Redact(SummaryJson(stats, state, code), secrets) + "\n");
        !s.ok()) {
      return fail(s, kExitError);
    }
  }
  return code;
}

}  // namespace

int CrawlCommand(const std::vector<std::string>& args) {
  RunFlags flags;
  Overrides overrides;
  std::string journal;
  Options options("crawl", "crawl SPEC [options]",
                  "Crawls the API that SPEC (a JSON file, see docs/spec.md) describes, showing progress, and writes\n"
                  "the documents to the spec's sinks. With a journal (the spec's \"journal\" or --journal) the crawl\n"
                  "survives being stopped or killed: `fanout resume JOURNAL` goes on where it ended.\n"
                  "Exit codes: 0 done, 1 error, 2 bad command line or spec, 3 stopped with work left, 4 done with\n"
                  "dead letters.");
  options.String("journal", "PATH", "journal file that makes the crawl resumable (replaces the spec's)", &journal);
  options.Bool("force", "use a journal (or join a shared crawl) made for another spec's plan", &flags.force);
  std::string redis_url, crawl_id, worker_id;
  absl::Duration lease_timeout = absl::Seconds(30);
  int64_t weight = 1;
  std::string upstream;
  options.String("redis", "URL",
                 "share the crawl through this Redis (redis://[:password@]host[:port][/db]) with every worker\n"
                 "that runs it with the same --crawl-id; a global rate becomes one budget for them all",
                 &redis_url);
  options.String("crawl-id", "ID", "the shared crawl's name (with --redis): 1-64 of A-Z a-z 0-9 . _ -", &crawl_id);
  options.String("worker-id", "NAME",
                 "this worker's name in the shared crawl's leases (default host:pid:random); the spec's JSON\n"
                 "lines and dead-letter files get it before their extension, so workers never share a file",
                 &worker_id);
  options.Duration("lease-timeout", "with --redis: a task a dead worker held goes back to the others after this long",
                   &lease_timeout);
  options.Int("weight", "with --redis: this crawl's weight among crawls sharing the upstream's limit", &weight, 1,
              1000000);
  options.String("upstream", "NAME",
                 "with --redis: the name of the shared limit (default the base URL's host:port); crawls of one\n"
                 "vendor under different URLs share its budget by naming it alike",
                 &upstream);
  AddRunFlags(options, flags, overrides);
  std::vector<std::string> positional;
  if (auto code = options.ParseOrExit(args, &positional, 1, 1, "fanout")) return *code;
  const std::string& spec_path = positional[0];
  auto spec = LoadCrawlSpec(spec_path);
  if (!spec.ok()) {
    Complain(std::string(spec.status().message()), {});
    return spec.status().code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitError;
  }
  overrides.Absolutize();
  overrides.ApplyTo(*spec);
  if (!journal.empty()) spec->run.journal = std::filesystem::absolute(journal).lexically_normal().string();
  std::vector<std::pair<std::string, std::string>> meta;
  std::string spec_text;
  {
    std::ifstream in(spec_path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    spec_text = text.str();
  }
  if (redis_url.empty() != crawl_id.empty()) {
    Complain("--redis and --crawl-id go together: a shared crawl needs both", {});
    return kExitUsage;
  }
  if (!redis_url.empty()) {
    auto address = ParseRedisUrl(redis_url);
    if (!address.ok()) {
      Complain(absl::StrCat("--redis: ", address.status().message()), {});
      return kExitUsage;
    }
    if (!address->password.empty()) spec->secrets.push_back(address->password);
    if (absl::Status s = ValidateCrawlId(crawl_id); !s.ok()) {
      Complain(absl::StrCat("--crawl-id: ", s.message()), {});
      return kExitUsage;
    }
    if (!spec->run.journal.empty()) {
      Complain("a shared crawl (--redis) keeps its state in Redis: drop the journal (the spec's \"journal\" or "
               "--journal)",
               spec->secrets);
      return kExitUsage;
    }
    if (lease_timeout < absl::Milliseconds(100)) {
      Complain("--lease-timeout must be at least 100ms", {});
      return kExitUsage;
    }
    if (worker_id.empty()) worker_id = DefaultWorkerId();
    // Files the spec names are per worker; those given here are used as given.
    if (overrides.jsonl.empty()) spec->output.jsonl = PerWorkerPath(spec->output.jsonl, worker_id);
    if (overrides.dead_letters.empty()) {
      spec->output.dead_letters = PerWorkerPath(spec->output.dead_letters, worker_id);
    }
    RunOptions::Shared& shared = spec->run.shared;
    shared.redis_url = redis_url;
    shared.crawl_id = crawl_id;
    shared.force = flags.force;
    shared.frontier.worker_id = worker_id;
    shared.frontier.lease_timeout = lease_timeout;
    shared.weight = weight;
    shared.upstream = upstream;
    // What another worker needs to join (the spec's text, header values
    // unexpanded, so no secret from the environment goes to Redis).
    shared.meta = {{kMetaSpec, spec_text},
                   {kMetaSpecPath, std::filesystem::absolute(spec_path).lexically_normal().string()},
                   {kMetaOverrides, overrides.Serialize()},
                   {kMetaWeight, absl::StrCat(weight)},
                   {kMetaUpstream, upstream}};
  } else if (!spec->run.journal.empty()) {
    meta = {{kMetaSpec, spec_text},
            {kMetaSpecPath, std::filesystem::absolute(spec_path).lexically_normal().string()},
            {kMetaOverrides, overrides.Serialize()}};
  }
  // An existing journal goes on where it ended: say so, since a crawl that
  // had finished then has nothing left to do.
  if (!spec->run.journal.empty() && std::filesystem::exists(spec->run.journal) && !flags.quiet) {
    if (auto summary = InspectJournal(spec->run.journal); summary.ok()) {
      int64_t pending = 0, finished = 0;
      for (const auto& level : summary->levels) {
        pending += level.pending;
        finished += level.done + level.dead;
      }
      if (finished > 0) {
        std::fprintf(stderr, "fanout: journal %s exists: going on from %s finished tasks (%s%s)\n",
                     spec->run.journal.c_str(), Thousands(finished).c_str(),
                     pending > 0 ? Thousands(pending).c_str() : "none",
                     pending > 0 ? " pending" : " pending: nothing to do; remove the journal for a fresh crawl");
      }
    }
  }
  return Run(*std::move(spec), flags, std::move(meta));
}

int ResumeCommand(const std::vector<std::string>& args) {
  RunFlags flags;
  Overrides overrides;
  Options options("resume", "resume JOURNAL [options]",
                  "Goes on with the crawl a journal recorded (as `fanout crawl` started it, with the same spec\n"
                  "and command-line choices, which the journal keeps), until it is done or stopped again.\n"
                  "Environment variables the spec's headers use are read again now. Exit codes as for crawl.");
  AddRunFlags(options, flags, overrides);
  std::vector<std::string> positional;
  if (auto code = options.ParseOrExit(args, &positional, 1, 1, "fanout")) return *code;
  const std::string journal = std::filesystem::absolute(positional[0]).lexically_normal().string();
  auto summary = InspectJournal(journal);
  if (!summary.ok()) {
    Complain(std::string(summary.status().message()), {});
    return kExitError;
  }
  auto stored = StoredCrawl(summary->meta, absl::StrCat("journal ", journal), overrides);
  if (!stored.ok()) {
    Complain(std::string(stored.status().message()), {});
    return absl::IsDataLoss(stored.status()) ? kExitError : kExitUsage;
  }
  std::optional<CrawlSpec> spec = std::move(stored->spec);
  spec->run.journal = journal;
  // Changed choices are kept for the next resume too.
  return Run(*std::move(spec), flags, {{kMetaOverrides, stored->overrides.Serialize()}});
}

int WorkerCommand(const std::vector<std::string>& args) {
  std::string redis_url, only, worker_id;
  absl::Duration lease_timeout = absl::Seconds(30);
  absl::Duration scan_interval = absl::Seconds(2);
  bool exit_when_idle = false, quiet = false;
  Options options("worker", "worker --redis URL [options]",
                  "Serves every shared crawl in a Redis (those `fanout crawl SPEC --redis URL --crawl-id ID`\n"
                  "started): joins each crawl that has work, several at once, with the spec and choices stored\n"
                  "with it, and looks for new ones every --scan-interval. Runs until SIGINT/SIGTERM (which lets\n"
                  "requests in flight finish), or with --exit-when-idle until no crawl has work. The spec's JSON\n"
                  "lines and dead-letter files get this worker's id before their extension.\n"
                  "Exit codes: 0, or 1 if a crawl failed here (the others go on).");
  options.String("redis", "URL", "the Redis holding the crawls (redis://[:password@]host[:port][/db])", &redis_url);
  options.String("crawls", "IDS", "serve only these crawls (comma-separated ids)", &only);
  options.String("worker-id", "NAME", "this worker's name in leases (default host:pid:random)", &worker_id);
  options.Duration("lease-timeout", "a task a dead worker held goes back to the others after this long",
                   &lease_timeout);
  options.Duration("scan-interval", "how often to look for crawls with work", &scan_interval);
  options.Bool("exit-when-idle", "exit once no crawl has work left", &exit_when_idle);
  options.Bool("quiet", "errors only", &quiet);
  std::vector<std::string> positional;
  if (auto code = options.ParseOrExit(args, &positional, 0, 0, "fanout")) return *code;
  if (redis_url.empty()) {
    Complain("worker: --redis is required", {});
    return kExitUsage;
  }
  auto address = ParseRedisUrl(redis_url);
  if (!address.ok()) {
    Complain(absl::StrCat("--redis: ", address.status().message()), {});
    return kExitUsage;
  }
  std::vector<std::string> wanted;
  for (absl::string_view id : absl::StrSplit(only, ',', absl::SkipEmpty())) {
    if (absl::Status s = ValidateCrawlId(std::string(id)); !s.ok()) {
      Complain(absl::StrCat("--crawls: ", s.message()), {});
      return kExitUsage;
    }
    wanted.emplace_back(id);
  }
  if (worker_id.empty()) worker_id = DefaultWorkerId();
  std::vector<std::string> secrets;
  if (!address->password.empty()) secrets.push_back(address->password);
  SystemClock clock;
  auto client = RedisClient::Connect(redis_url, &clock);
  if (!client.ok()) {
    Complain(std::string(client.status().message()), secrets);
    return kExitError;
  }

  struct Serving {
    std::string id;
    std::vector<std::string> secrets;
    std::unique_ptr<Outputs> outputs;
    std::unique_ptr<BackgroundCrawl> crawl;
  };
  std::vector<Serving> serving;
  absl::flat_hash_set<std::string> failed;  // not joined again by this worker
  CatchStopSignals();
  int code = kExitDone;
  bool stopping = false;
  absl::Time next_scan = absl::InfinitePast();
  for (;;) {
    if (g_signals.load() > 0 && !stopping) {
      stopping = true;
      if (!quiet) std::fprintf(stderr, "fanout worker: stopping: finishing requests in flight\n");
      for (Serving& s : serving) s.crawl->Stop();
    }
    if (g_signals.load() > 1) {
      RestoreStopSignals();
      std::raise(SIGTERM);
    }
    // Crawls that ended here.
    for (auto it = serving.begin(); it != serving.end();) {
      if (!it->crawl->done()) {
        ++it;
        continue;
      }
      absl::StatusOr<CrawlResult> result = it->crawl->Wait();
      const absl::Status closed = it->outputs->Close();
      if (!result.ok() || !closed.ok()) {
        Complain(absl::StrCat("crawl ", it->id, ": ", (!result.ok() ? result.status() : closed).message()),
                 it->secrets);
        failed.insert(it->id);
        code = kExitError;
      } else if (!quiet) {
        std::fprintf(stderr, "fanout worker: crawl %s: %s here (%s records; the crawl: %s done, %s dead)\n",
                     it->id.c_str(), result->state == CrawlResult::State::kDone ? "finished" : "stopped",
                     Thousands(result->stats.records).c_str(), Thousands(result->stats.succeeded).c_str(),
                     Thousands(result->stats.dead).c_str());
      }
      it = serving.erase(it);
    }
    if (stopping) {
      if (serving.empty()) break;
      absl::SleepFor(absl::Milliseconds(50));
      continue;
    }
    // Crawls with work that this worker does not serve yet.
    if (absl::Now() >= next_scan) {
      next_scan = absl::Now() + scan_interval;
      std::vector<std::string> ids = wanted;
      if (ids.empty()) {
        auto listed = ListRedisCrawls(**client);
        if (!listed.ok()) {
          Complain(std::string(listed.status().message()), secrets);
          ids.clear();
        } else {
          ids = *std::move(listed);
        }
      }
      bool any_work = false;
      for (const std::string& id : ids) {
        const bool served = std::any_of(serving.begin(), serving.end(), [&](const Serving& s) { return s.id == id; });
        if (served || failed.contains(id)) {
          any_work |= served;
          continue;
        }
        auto summary = InspectRedisCrawl(**client, id, 1);
        if (!summary.ok() || summary->counts.pending + summary->counts.leased == 0) continue;
        any_work = true;
        auto stored = StoredCrawl(summary->meta, absl::StrCat("shared crawl ", id), Overrides{});
        if (!stored.ok()) {
          Complain(absl::StrCat("crawl ", id, ": ", stored.status().message()), secrets);
          failed.insert(id);
          continue;
        }
        CrawlSpec& spec = stored->spec;
        spec.secrets.insert(spec.secrets.end(), secrets.begin(), secrets.end());
        spec.output.jsonl = PerWorkerPath(spec.output.jsonl, worker_id);
        spec.output.dead_letters = PerWorkerPath(spec.output.dead_letters, worker_id);
        spec.run.journal.clear();
        RunOptions::Shared& shared = spec.run.shared;
        shared.redis_url = redis_url;
        shared.crawl_id = id;
        shared.frontier.worker_id = worker_id;
        shared.frontier.lease_timeout = lease_timeout;
        for (const auto& [key, value] : summary->meta) {
          if (key == kMetaWeight && !absl::SimpleAtoi(value, &shared.weight)) shared.weight = 1;
          if (key == kMetaUpstream) shared.upstream = value;
        }
        Serving entry;
        entry.id = id;
        entry.secrets = spec.secrets;
        auto outputs = OpenOutputs(spec);
        absl::StatusOr<std::unique_ptr<BackgroundCrawl>> crawl =
            outputs.ok() ? BackgroundCrawl::Start(spec.plan, (*outputs)->sinks, (*outputs)->dead_letters.get(),
                                                  spec.run)
                         : absl::StatusOr<std::unique_ptr<BackgroundCrawl>>(outputs.status());
        if (!crawl.ok()) {
          Complain(absl::StrCat("crawl ", id, ": ", crawl.status().message()), entry.secrets);
          failed.insert(id);
          code = kExitError;
          continue;
        }
        if (!quiet) std::fprintf(stderr, "fanout worker: joined crawl %s\n", id.c_str());
        entry.outputs = *std::move(outputs);
        entry.crawl = *std::move(crawl);
        serving.push_back(std::move(entry));
      }
      if (!any_work && serving.empty() && exit_when_idle) break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  RestoreStopSignals();
  return code;
}

}  // namespace fanout::cli
