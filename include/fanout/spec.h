// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// CrawlSpec: a crawl described in a JSON file (docs/spec.md) instead of code:
// the API's base URL and headers, its levels, the limits, the retry policy,
// the sinks, the journal. The `fanout` command reads one; a host program may
// too (LoadCrawlSpec, then RunCrawl with spec.plan and spec.run).
//
// Validation is strict: an unknown key is an error, not silently ignored, and
// every error names the exact key path and the problem:
//   spec.json: levels[2].items: expected a JSON pointer such as "/groups", got "groups"
//
// Secrets stay out of the file: header values may reference environment
// variables ("Bearer ${VENDOR_TOKEN}"). The values of such headers, and of
// headers whose names say they carry credentials (Authorization, Cookie,
// *token*, *key*, *secret*, ...), are listed in `secrets` so whatever the
// program shows can be passed through Redact first.

#ifndef FANOUT_SPEC_H_
#define FANOUT_SPEC_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "fanout/crawl_plan.h"
#include "fanout/engine.h"

namespace fanout {

// Where the leaf documents and dead letters go. Paths are resolved against
// the spec file's directory when relative.
struct OutputSpec {
  std::string jsonl;             // JsonLinesSink path; empty = none
  std::string tree;              // FileTreeSink root; empty = none
  bool success_markers = false;  // "_SUCCESS" under each completed subtree of the tree
  bool sqlite = false;           // records in the journal's own transaction (needs a journal)
  std::string dead_letters;      // DeadLetterLog path; empty = only counted (and kept in the journal)
};

struct CrawlSpec {
  CrawlPlan plan;
  // Limits (with run.engine.adaptive from "limits.adaptive" and
  // "limits.upstream"), headers (expanded), retry policy, timeouts and the
  // journal path.
  RunOptions run;
  OutputSpec output;
  // Expanded values of secret headers, for Redact.
  std::vector<std::string> secrets;
};

struct SpecOptions {
  // The name errors start with (the file's path); "spec" if empty.
  std::string name;
  // Relative output and journal paths are resolved against this directory;
  // empty = the current directory.
  std::string base_dir;
  // Looks up an environment variable; nullopt if unset. Defaults to getenv.
  std::function<std::optional<std::string>(const std::string&)> env;
};

// Parses and validates a spec. InvalidArgument naming the key path for every
// problem: malformed JSON, unknown keys, wrong types, bad values, an unset
// environment variable, a plan that does not validate.
absl::StatusOr<CrawlSpec> ParseCrawlSpec(std::string_view json, const SpecOptions& options = {});

// Reads and parses the spec file at `path` (relative paths in it resolve
// against its directory). NotFound / PermissionDenied naming the path if it
// cannot be read.
absl::StatusOr<CrawlSpec> LoadCrawlSpec(const std::string& path, SpecOptions options = {});

// `text` with every occurrence of each secret replaced by "[redacted]".
// Secrets shorter than 4 characters are not replaced (they would mangle
// ordinary text, and are no secret worth the name).
std::string Redact(std::string_view text, const std::vector<std::string>& secrets);

// Whether a header's name says it carries credentials (case-insensitive):
// Authorization, Proxy-Authorization, Cookie, or a name containing "token",
// "key", "secret", "auth", "session" or "password".
bool IsSecretHeaderName(std::string_view name);

}  // namespace fanout

#endif  // FANOUT_SPEC_H_
