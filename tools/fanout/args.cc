// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "args.h"

#include <cmath>
#include <cstdio>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace fanout::cli {
namespace {

std::string Canonical(std::string_view name) { return absl::StrReplaceAll(std::string(name), {{"_", "-"}}); }

absl::Status BadValue(const std::string& name, const std::string& value, const std::string& expected) {
  return absl::InvalidArgumentError(absl::StrFormat("--%s: expected %s, got \"%s\"", name, expected, value));
}

}  // namespace

void Options::String(std::string name, std::string value_name, std::string help, std::string* target) {
  Option option{Canonical(name), std::move(value_name), std::move(help), *target, nullptr, nullptr};
  option.set = [target](const std::string& value) {
    *target = value;
    return absl::OkStatus();
  };
  options_.push_back(std::move(option));
}

template <typename T>
void Options::Int(std::string name, std::string help, T* target, int64_t min, int64_t max) {
  const std::string canonical = Canonical(name);
  Option option{canonical, "N", std::move(help), std::to_string(*target), nullptr, nullptr};
  option.set = [=](const std::string& value) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(value, &n) || n < min || n > max) {
      return BadValue(canonical, value, absl::StrFormat("an integer in %d..%d", min, max));
    }
    *target = static_cast<T>(n);
    return absl::OkStatus();
  };
  options_.push_back(std::move(option));
}
template void Options::Int<int>(std::string, std::string, int*, int64_t, int64_t);
template void Options::Int<int64_t>(std::string, std::string, int64_t*, int64_t, int64_t);

void Options::Double(std::string name, std::string help, double* target, double min, double max) {
  const std::string canonical = Canonical(name);
  Option option{canonical, "X", std::move(help), absl::StrCat(*target), nullptr, nullptr};
  option.set = [=](const std::string& value) {
    double d = 0;
    if (!absl::SimpleAtod(value, &d) || !std::isfinite(d) || d < min || d > max) {
      return BadValue(canonical, value, absl::StrCat("a number in ", min, "..", max));
    }
    *target = d;
    return absl::OkStatus();
  };
  options_.push_back(std::move(option));
}

void Options::Duration(std::string name, std::string help, absl::Duration* target) {
  const std::string canonical = Canonical(name);
  Option option{canonical, "D", std::move(help),
                *target == absl::InfiniteDuration() ? "none" : absl::FormatDuration(*target), nullptr, nullptr};
  option.set = [=](const std::string& value) {
    absl::Duration d;
    double seconds = 0;
    if (absl::SimpleAtod(value, &seconds) && std::isfinite(seconds)) {
      d = absl::Seconds(seconds);
    } else if (!absl::ParseDuration(value, &d)) {
      return BadValue(canonical, value, "a duration such as \"90s\", \"5m\" or \"1h30m\"");
    }
    if (d <= absl::ZeroDuration()) return BadValue(canonical, value, "a duration > 0");
    *target = d;
    return absl::OkStatus();
  };
  options_.push_back(std::move(option));
}

void Options::Bool(std::string name, std::string help, bool* target) {
  options_.push_back(Option{Canonical(name), "", std::move(help), *target ? "true" : "false", nullptr, target});
}

const Options::Option* Options::Find(std::string_view name) const {
  const std::string canonical = Canonical(name);
  for (const Option& option : options_) {
    if (option.name == canonical) return &option;
  }
  return nullptr;
}

absl::Status Options::Parse(const std::vector<std::string>& args, std::vector<std::string>* positional,
                            size_t min_positional, size_t max_positional) {
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-' || arg == "-") {
      positional->push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      help_ = true;
      return absl::OkStatus();
    }
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrFormat("unknown option \"%s\" (options start with --)", arg));
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Option* option = Find(name);
    bool negated = false;
    if (option == nullptr && name.rfind("no", 0) == 0) {
      const std::string rest = name.substr(name.size() > 2 && (name[2] == '-' || name[2] == '_') ? 3 : 2);
      option = Find(rest);
      negated = option != nullptr && option->flag != nullptr;
      if (!negated) option = nullptr;
    }
    if (option == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrFormat("unknown option --%s for \"%s\" (see --help)", Canonical(name), command_));
    }
    if (option->flag != nullptr) {
      if (!value.has_value()) {
        *option->flag = !negated;
      } else if (!negated && (*value == "true" || *value == "1")) {
        *option->flag = true;
      } else if (!negated && (*value == "false" || *value == "0")) {
        *option->flag = false;
      } else {
        return BadValue(option->name, *value, "true or false");
      }
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrFormat("--%s needs a value (%s)", option->name, option->value_name));
      }
      value = args[++i];
    }
    if (absl::Status s = option->set(*value); !s.ok()) return s;
  }
  if (positional->size() < min_positional || positional->size() > max_positional) {
    return absl::InvalidArgumentError(absl::StrFormat("usage: %s", usage_));
  }
  return absl::OkStatus();
}

std::optional<int> Options::ParseOrExit(const std::vector<std::string>& args, std::vector<std::string>* positional,
                                        size_t min_positional, size_t max_positional, std::string_view program) {
  const absl::Status status = Parse(args, positional, min_positional, max_positional);
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n%s", std::string(program).c_str(), std::string(status.message()).c_str(),
                 Help(program).c_str());
    return 2;
  }
  if (help_) {
    std::fputs(Help(program).c_str(), stdout);
    return 0;
  }
  return std::nullopt;
}

std::string Options::Help(std::string_view program) const {
  std::string text = absl::StrCat("usage: ", std::string(program), " ", usage_, "\n\n", about_, "\n");
  if (!options_.empty()) text += "\noptions:\n";
  for (const Option& option : options_) {
    std::string left = absl::StrCat("  --", option.name, option.value_name.empty() ? "" : "=" + option.value_name);
    if (left.size() < 26) left.resize(26, ' ');
    absl::StrAppend(&text, left, " ", option.help);
    if (!option.default_value.empty() && option.default_value != "0" && option.default_value != "false") {
      absl::StrAppend(&text, " (default ", option.default_value, ")");
    }
    text += "\n";
  }
  text += "  --help                   this text\n";
  return text;
}

}  // namespace fanout::cli
