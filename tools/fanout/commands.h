// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// The fanout command's subcommands. Each takes its arguments (after the
// subcommand's name) and returns the process exit code.

#ifndef FANOUT_TOOLS_FANOUT_COMMANDS_H_
#define FANOUT_TOOLS_FANOUT_COMMANDS_H_

#include <string>
#include <string_view>
#include <vector>

namespace fanout::cli {

// Exit codes, documented in `fanout --help` and the README.
inline constexpr int kExitDone = 0;         // finished: every task succeeded
inline constexpr int kExitError = 1;        // failed: I/O, journal, network setup...
inline constexpr int kExitUsage = 2;        // bad command line or bad spec
inline constexpr int kExitMoreWork = 3;     // stopped (--max-duration, a signal) with work left: run `resume`
inline constexpr int kExitDeadLetters = 4;  // finished, but some tasks are dead-lettered: see `status`, `redrive`

int CrawlCommand(const std::vector<std::string>& args);
int ResumeCommand(const std::vector<std::string>& args);
int StatusCommand(const std::vector<std::string>& args);
int RedriveCommand(const std::vector<std::string>& args);
int WorkerCommand(const std::vector<std::string>& args);
// `program` names the command in messages ("fanout mock-api", "fanout-mock-api").
int MockApiCommand(const std::vector<std::string>& args, std::string_view program);

}  // namespace fanout::cli

#endif  // FANOUT_TOOLS_FANOUT_COMMANDS_H_
