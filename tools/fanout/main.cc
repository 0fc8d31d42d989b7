// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// fanout: crawl hierarchical HTTP APIs as fast as the upstream allows and never
// faster, from a JSON spec. `fanout --help` lists the commands.

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"

namespace {

constexpr char kHelp[] =
    "usage: fanout COMMAND [options]\n"
    "\n"
    "Crawls a hierarchical HTTP API (groups -> devices -> data, any depth) described in a JSON spec,\n"
    "at the upstream's rate limit and never above it, resumable after a stop or a crash.\n"
    "\n"
    "commands:\n"
    "  crawl SPEC       crawl what SPEC describes (docs/spec.md)\n"
    "  resume JOURNAL   go on with a stopped or killed crawl\n"
    "  status JOURNAL   tasks by level and state, dead letters by reason (--redis URL CRAWL_ID: a shared crawl)\n"
    "  redrive JOURNAL  give dead-lettered tasks another chance (then resume)\n"
    "  worker --redis URL  serve every shared crawl in a Redis (crawl --redis starts one)\n"
    "  mock-api         serve the bundled mock vendor API\n"
    "  version          print the version\n"
    "\n"
    "`fanout COMMAND --help` tells more. Exit codes: 0 done; 1 error; 2 bad command line or spec;\n"
    "3 stopped with work left (resume it); 4 done, but some tasks are dead-lettered.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    std::fputs(kHelp, argc < 2 ? stderr : stdout);
    return argc < 2 ? fanout::cli::kExitUsage : fanout::cli::kExitDone;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "crawl") return fanout::cli::CrawlCommand(args);
  if (command == "resume") return fanout::cli::ResumeCommand(args);
  if (command == "status") return fanout::cli::StatusCommand(args);
  if (command == "redrive") return fanout::cli::RedriveCommand(args);
  if (command == "worker") return fanout::cli::WorkerCommand(args);
  if (command == "mock-api") return fanout::cli::MockApiCommand(args, "fanout mock-api");
  if (command == "version" || command == "--version") {
    std::printf("fanout %s\n", FANOUT_VERSION);
    return fanout::cli::kExitDone;
  }
  std::fprintf(stderr, "fanout: unknown command \"%s\"\n\n%s", command.c_str(), kHelp);
  return fanout::cli::kExitUsage;
}
