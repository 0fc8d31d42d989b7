// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Command-line options for the fanout commands: each command declares its
// options (with their targets, ranges and help) and Parse fills them. A small
// parser of our own rather than Abseil flags, whose registry is global: every
// subcommand would share one namespace, so `crawl --rate` (the client's
// limit) and `mock-api --rate` (the server's) could not both exist.
//
// Accepted forms: --name=value, --name value, --flag (booleans), --no-flag;
// "_" and "-" are the same in names (--max_duration = --max-duration); "--"
// ends the options. Unknown options, missing or malformed values and values
// out of range are errors naming the option.

#ifndef FANOUT_TOOLS_FANOUT_ARGS_H_
#define FANOUT_TOOLS_FANOUT_ARGS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace fanout::cli {

class Options {
 public:
  // `usage` is the synopsis after the program name ("crawl SPEC [options]");
  // `about` a paragraph shown under it by --help.
  Options(std::string command, std::string usage, std::string about)
      : command_(std::move(command)), usage_(std::move(usage)), about_(std::move(about)) {}

  void String(std::string name, std::string value_name, std::string help, std::string* target);
  template <typename T>  // int or int64_t
  void Int(std::string name, std::string help, T* target, int64_t min, int64_t max);
  void Double(std::string name, std::string help, double* target, double min, double max);
  void Duration(std::string name, std::string help, absl::Duration* target);
  void Bool(std::string name, std::string help, bool* target);

  // Parses `args` (the command's arguments, without the program and command
  // names): options into their targets, the rest into `positional`, which
  // must number between min_positional and max_positional.
  // InvalidArgument naming the option; help_requested() after --help / -h.
  absl::Status Parse(const std::vector<std::string>& args, std::vector<std::string>* positional,
                     size_t min_positional, size_t max_positional);
  bool help_requested() const { return help_; }

  // Parse for a command's entry point: on --help prints Help to stdout and
  // returns 0; on an error prints it and Help to stderr and returns 2 (the
  // usage exit code); nullopt when the command should go on.
  std::optional<int> ParseOrExit(const std::vector<std::string>& args, std::vector<std::string>* positional,
                                 size_t min_positional, size_t max_positional, std::string_view program);

  // The --help text: usage, about, and every option with its help and default.
  std::string Help(std::string_view program) const;

 private:
  struct Option {
    std::string name;
    std::string value_name;  // empty for booleans
    std::string help;
    std::string default_value;
    std::function<absl::Status(const std::string&)> set;
    bool* flag = nullptr;
  };
  const Option* Find(std::string_view name) const;

  std::string command_, usage_, about_;
  std::vector<Option> options_;
  bool help_ = false;
};

}  // namespace fanout::cli

#endif  // FANOUT_TOOLS_FANOUT_ARGS_H_
