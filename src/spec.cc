// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/spec.h"

#include <simdjson.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "fanout/upstream_model.h"

namespace fanout {
namespace {

namespace dom = simdjson::dom;

const char* TypeName(dom::element_type type) {
  switch (type) {
    case dom::element_type::ARRAY:
      return "an array";
    case dom::element_type::OBJECT:
      return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
      return "a number";
    case dom::element_type::STRING:
      return "a string";
    case dom::element_type::BOOL:
      return "a boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

// A short rendering of a value for error messages.
std::string Show(dom::element value) {
  std::string text = simdjson::minify(value);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

// Reads one spec, collecting nothing: the first problem ends it, as a status
// naming the key path.
class SpecReader {
 public:
  explicit SpecReader(const SpecOptions& options) : options_(options) {}

  absl::StatusOr<CrawlSpec> Read(std::string_view json);

 private:
  absl::Status Error(const std::string& path, const std::string& problem) const {
    return absl::InvalidArgumentError(
        absl::StrCat(options_.name.empty() ? "spec" : options_.name, ": ", path.empty() ? "" : path + ": ", problem));
  }
  absl::Status TypeError(const std::string& path, const char* expected, dom::element value) const {
    return Error(path, absl::StrCat("expected ", expected, ", got ", TypeName(value.type()), " ", Show(value)));
  }

  // Every key of `object` must be among `allowed`.
  absl::Status CheckKeys(dom::object object, const std::string& path,
                         std::initializer_list<std::string_view> allowed) const {
    for (auto field : object) {
      bool known = false;
      for (std::string_view name : allowed) known = known || field.key == name;
      if (!known) {
        return Error(Join(path, field.key),
                     absl::StrCat("unknown key (expected one of: ",
                                  absl::StrJoin(std::vector<std::string>(allowed.begin(), allowed.end()), ", "), ")"));
      }
    }
    return absl::OkStatus();
  }
  static std::string Join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : absl::StrCat(path, ".", std::string(key));
  }

  absl::StatusOr<dom::object> Object(dom::element value, const std::string& path) const {
    dom::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) return TypeError(path, "an object", value);
    return object;
  }
  absl::StatusOr<std::string> String(dom::element value, const std::string& path) const {
    std::string_view text;
    if (value.get_string().get(text) != simdjson::SUCCESS) return TypeError(path, "a string", value);
    return std::string(text);
  }
  absl::StatusOr<bool> Bool(dom::element value, const std::string& path) const {
    bool b = false;
    if (value.get_bool().get(b) != simdjson::SUCCESS) return TypeError(path, "true or false", value);
    return b;
  }
  absl::StatusOr<double> Number(dom::element value, const std::string& path) const {
    double d = 0;
    if (value.get_double().get(d) != simdjson::SUCCESS) return TypeError(path, "a number", value);
    return d;
  }
  absl::StatusOr<int64_t> Integer(dom::element value, const std::string& path, int64_t min, int64_t max) const {
    int64_t n = 0;
    if (value.get_int64().get(n) != simdjson::SUCCESS) {
      return TypeError(path, absl::StrFormat("an integer in %d..%d", min, max).c_str(), value);
    }
    if (n < min || n > max) return Error(path, absl::StrFormat("must be in %d..%d, got %d", min, max, n));
    return n;
  }
  // A duration: a string such as "250ms", "30s", "5m", "1h", or a number of
  // seconds. Must be > 0.
  absl::StatusOr<absl::Duration> Duration(dom::element value, const std::string& path) const {
    absl::Duration d;
    if (value.is_string()) {
      std::string_view text = value.get_string().value_unsafe();
      if (!absl::ParseDuration(std::string(text), &d) || d == absl::InfiniteDuration()) {
        return Error(path, absl::StrCat("expected a duration such as \"250ms\", \"30s\" or \"5m\", got \"", std::string(text), "\""));
      }
    } else if (value.is_number()) {
      const double seconds = value.get_double().value_unsafe();
      if (!std::isfinite(seconds) || seconds > 1e9) return Error(path, absl::StrCat("out of range: ", Show(value)));
      d = absl::Seconds(seconds);
    } else {
      return TypeError(path, "a duration such as \"30s\" (or a number of seconds)", value);
    }
    if (d <= absl::ZeroDuration()) return Error(path, absl::StrCat("must be > 0, got ", Show(value)));
    return d;
  }
  // A JSON pointer: "" or starting with "/".
  absl::StatusOr<std::string> Pointer(dom::element value, const std::string& path, const char* example) const {
    auto text = String(value, path);
    if (!text.ok()) return text.status();
    if (!text->empty() && (*text)[0] != '/') {
      return Error(path, absl::StrFormat("expected a JSON pointer such as \"%s\", got \"%s\"", example, *text));
    }
    return text;
  }
  std::string Resolve(const std::string& file) const {
    if (file.empty() || options_.base_dir.empty() || std::filesystem::path(file).is_absolute()) return file;
    return (std::filesystem::path(options_.base_dir) / file).lexically_normal().string();
  }

  absl::StatusOr<std::string> ExpandEnv(const std::string& value, const std::string& path, bool* used) const;
  absl::Status ReadHeaders(dom::element value, CrawlSpec& spec);
  absl::StatusOr<RateLimitSpec> ReadRate(dom::element rate, std::optional<dom::element> burst,
                                         const std::string& path) const;
  absl::Status ReadLimits(dom::element value, const std::string& path, std::optional<RateLimitSpec>* rate,
                          int* concurrency, std::optional<AdaptiveRateOptions>* adaptive);
  absl::Status ReadAdaptive(dom::element value, const std::string& path, AdaptiveRateOptions& adaptive);
  absl::Status ReadUpstream(dom::element value, const std::string& path, UpstreamModel& model);
  absl::Status ReadRetry(dom::element value, RunOptions& run);
  absl::Status ReadPagination(dom::element value, const std::string& path, Pagination& pagination);
  absl::Status ReadLevel(dom::element value, const std::string& path, Level& level);
  absl::Status ReadOutput(dom::element value, OutputSpec& output);

  const SpecOptions& options_;
};

absl::StatusOr<std::string> SpecReader::ExpandEnv(const std::string& value, const std::string& path,
                                                  bool* used) const {
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '$') {
      out += value[i];
      continue;
    }
    if (i + 1 < value.size() && value[i + 1] == '$') {  // "$$" is a literal "$"
      out += '$';
      ++i;
      continue;
    }
    if (i + 1 >= value.size() || value[i + 1] != '{') {
      out += '$';
      continue;
    }
    const size_t end = value.find('}', i + 2);
    if (end == std::string::npos) return Error(path, "unterminated \"${\" (write \"$$\" for a literal \"$\")");
    const std::string name = value.substr(i + 2, end - i - 2);
    bool valid = !name.empty() && !absl::ascii_isdigit(static_cast<unsigned char>(name[0]));
    for (char c : name) valid = valid && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!valid) return Error(path, absl::StrCat("\"${", name, "}\" is not an environment variable name"));
    std::optional<std::string> found;
    if (options_.env) {
      found = options_.env(name);
    } else if (const char* env = std::getenv(name.c_str())) {
      found = std::string(env);
    }
    if (!found.has_value()) return Error(path, absl::StrCat("environment variable ", name, " is not set"));
    out += *found;
    *used = true;
    i = end;
  }
  return out;
}

absl::Status SpecReader::ReadHeaders(dom::element value, CrawlSpec& spec) {
  auto object = Object(value, "headers");
  if (!object.ok()) return object.status();
  for (auto field : *object) {
    const std::string path = absl::StrCat("headers.", std::string(field.key));
    const std::string name(field.key);
    bool valid = !name.empty();
    for (char c : name) valid = valid && absl::ascii_isgraph(static_cast<unsigned char>(c)) && c != ':';
    if (!valid) return Error(path, "not a valid header name");
    auto text = String(field.value, path);
    if (!text.ok()) return text.status();
    bool used_env = false;
    auto expanded = ExpandEnv(*text, path, &used_env);
    if (!expanded.ok()) return expanded.status();
    // Never echo the value: it may be a secret.
    if (expanded->find_first_of("\r\n") != std::string::npos || expanded->find('\0') != std::string::npos) {
      return Error(path, "the value contains a line break or NUL");
    }
    if (used_env || IsSecretHeaderName(name)) {
      if (!expanded->empty()) spec.secrets.push_back(*expanded);
      // "Bearer xyz": the token alone is the secret too.
      if (const size_t space = expanded->rfind(' '); space != std::string::npos && space + 1 < expanded->size()) {
        spec.secrets.push_back(expanded->substr(space + 1));
      }
    }
    spec.run.engine.headers.emplace_back(name, *std::move(expanded));
  }
  return absl::OkStatus();
}

// A rate: a number of requests per second (> 0, may be fractional), or a
// string "N/s", "N/m", "N/h", "N/d" (N per second, minute, hour, day).
absl::StatusOr<RateLimitSpec> SpecReader::ReadRate(dom::element rate, std::optional<dom::element> burst_value,
                                                   const std::string& path) const {
  int64_t burst = 1;
  if (burst_value.has_value()) {
    auto b = Integer(*burst_value, Join(path, "burst"), 1, 1'000'000'000);
    if (!b.ok()) return b.status();
    burst = *b;
  }
  const std::string rate_path = Join(path, "rate");
  if (rate.is_number()) {
    const double r = rate.get_double().value_unsafe();
    if (!(r > 0) || !std::isfinite(r) || r > 1e9) {
      return Error(rate_path, absl::StrCat("requests per second must be > 0 and <= 1e9, got ", Show(rate)));
    }
    return RateLimitSpec::PerSecond(r, burst);
  }
  if (!rate.is_string()) return TypeError(rate_path, "requests per second, or a string such as \"5000/h\"", rate);
  std::string_view text = rate.get_string().value_unsafe();
  const size_t slash = text.find('/');
  int64_t count = 0;
  absl::Duration window;
  const std::string_view unit = slash == std::string_view::npos ? "" : text.substr(slash + 1);
  if (unit == "s") window = absl::Seconds(1);
  if (unit == "m" || unit == "min") window = absl::Minutes(1);
  if (unit == "h") window = absl::Hours(1);
  if (unit == "d") window = absl::Hours(24);
  if (slash == std::string_view::npos || !absl::SimpleAtoi(std::string(text.substr(0, slash)), &count) || count < 1 ||
      window == absl::ZeroDuration()) {
    return Error(rate_path, absl::StrCat("expected a number of requests per second, or \"N/s\", \"N/m\", \"N/h\" "
                                         "or \"N/d\" such as \"5000/h\", got \"",
                                         std::string(text), "\""));
  }
  if (window == absl::Seconds(1)) return RateLimitSpec::PerSecond(static_cast<double>(count), burst);
  if (burst >= count) {
    return Error(Join(path, "burst"), absl::StrFormat("must be below the window's %d requests, got %d", count, burst));
  }
  return RateLimitSpec::Window(count, window, burst);
}

absl::Status SpecReader::ReadLimits(dom::element value, const std::string& path, std::optional<RateLimitSpec>* rate,
                                    int* concurrency, std::optional<AdaptiveRateOptions>* adaptive) {
  auto object = Object(value, path);
  if (!object.ok()) return object.status();
  if (adaptive != nullptr) {
    if (absl::Status s = CheckKeys(*object, path, {"rate", "burst", "concurrency", "adaptive", "upstream"}); !s.ok()) {
      return s;
    }
  } else if (absl::Status s = CheckKeys(*object, path, {"rate", "burst", "concurrency"}); !s.ok()) {
    return s;
  }
  dom::element field;
  std::optional<dom::element> burst;
  if (object->at_key("burst").get(field) == simdjson::SUCCESS) burst = field;
  if (object->at_key("rate").get(field) == simdjson::SUCCESS) {
    auto spec = ReadRate(field, burst, path);
    if (!spec.ok()) return spec.status();
    *rate = *spec;
  } else if (burst.has_value()) {
    return Error(Join(path, "burst"), "a burst needs a rate");
  }
  if (object->at_key("concurrency").get(field) == simdjson::SUCCESS) {
    auto n = Integer(field, Join(path, "concurrency"), 1, 100000);
    if (!n.ok()) return n.status();
    *concurrency = static_cast<int>(*n);
  }
  if (adaptive != nullptr && object->at_key("adaptive").get(field) == simdjson::SUCCESS) {
    if (field.is_bool()) {
      if (field.get_bool().value_unsafe()) *adaptive = AdaptiveRateOptions{};
    } else {
      AdaptiveRateOptions options;
      if (absl::Status s = ReadAdaptive(field, Join(path, "adaptive"), options); !s.ok()) return s;
      *adaptive = options;
    }
  }
  if (adaptive != nullptr && object->at_key("upstream").get(field) == simdjson::SUCCESS) {
    UpstreamModel model;
    if (absl::Status s = ReadUpstream(field, Join(path, "upstream"), model); !s.ok()) return s;
    if (!adaptive->has_value()) *adaptive = AdaptiveRateOptions{};  // a model is paced by the controller
    (*adaptive)->model = model;
    if (!rate->has_value()) {
      // The most to send defaults to the model's own pace.
      auto pace = PacingFor(model, model.jitter);
      if (!pace.ok()) return Error(Join(path, "upstream"), std::string(pace.status().message()));
      *rate = *pace;
    }
  }
  if (adaptive != nullptr && adaptive->has_value() && !rate->has_value()) {
    return Error(Join(path, "adaptive"), "needs limits.rate (the most to send) or limits.upstream");
  }
  return absl::OkStatus();
}

// "adaptive": true, or an object tuning the controller.
absl::Status SpecReader::ReadAdaptive(dom::element value, const std::string& path, AdaptiveRateOptions& adaptive) {
  auto object = Object(value, path);
  if (!object.ok()) return TypeError(path, "true, false or an object", value);
  if (absl::Status s = CheckKeys(*object, path,
                                 {"rate_limit_headers", "min_rate", "decrease_factor", "probe_delay",
                                  "probe_per_second", "max_pause"});
      !s.ok()) {
    return s;
  }
  for (auto field : *object) {
    const std::string key(field.key);
    const std::string field_path = Join(path, key);
    if (key == "rate_limit_headers") {
      auto b = Bool(field.value, field_path);
      if (!b.ok()) return b.status();
      adaptive.use_rate_limit_headers = *b;
    } else if (key == "probe_delay" || key == "max_pause") {
      auto d = Duration(field.value, field_path);
      if (!d.ok()) return d.status();
      (key == "probe_delay" ? adaptive.probe_delay : adaptive.max_pause) = *d;
      if (key == "probe_delay" && adaptive.max_probe_delay < *d) adaptive.max_probe_delay = *d;
    } else {
      auto n = Number(field.value, field_path);
      if (!n.ok()) return n.status();
      if (key == "min_rate") {
        if (!(*n > 0)) return Error(field_path, absl::StrCat("must be > 0, got ", *n));
        adaptive.min_rate = *n;
      } else if (key == "decrease_factor") {
        if (!(*n > 0 && *n < 1)) return Error(field_path, absl::StrCat("must be in (0, 1), got ", *n));
        adaptive.decrease_factor = *n;
      } else {
        if (!(*n >= 0 && *n <= 1)) return Error(field_path, absl::StrCat("must be in 0..1, got ", *n));
        adaptive.probe_per_second = *n;
      }
    }
  }
  return absl::OkStatus();
}

// The upstream's documented limiter:
//   {"model": "nginx", "rate": "10r/s", "burst": 5, "nodelay": true}
//   {"model": "fixed_window", "requests": 5000, "window": "1h"}
//   {"model": "leaky_bucket", "capacity": 40, "leak_per_second": 2}
// each with an optional "jitter" (the arrival-time margin, default 1ms).
absl::Status SpecReader::ReadUpstream(dom::element value, const std::string& path, UpstreamModel& model) {
  auto object = Object(value, path);
  if (!object.ok()) return object.status();
  dom::element field;
  if (object->at_key("model").get(field) != simdjson::SUCCESS) {
    return Error(Join(path, "model"), "required: \"nginx\", \"fixed_window\" or \"leaky_bucket\"");
  }
  auto kind = String(field, Join(path, "model"));
  if (!kind.ok()) return kind.status();
  auto has = [&](const char* key) { return object->at_key(key).get(field) == simdjson::SUCCESS; };
  if (*kind == "nginx") {
    if (absl::Status s = CheckKeys(*object, path, {"model", "rate", "burst", "nodelay", "jitter"}); !s.ok()) return s;
    NginxLimitReq nginx;
    if (!has("rate")) return Error(Join(path, "rate"), "required, as nginx writes it: \"10r/s\" or \"30r/m\"");
    auto rate = String(field, Join(path, "rate"));
    if (!rate.ok()) return rate.status();
    auto millis = ParseNginxRate(*rate);
    if (!millis.ok()) return Error(Join(path, "rate"), std::string(millis.status().message()));
    nginx.rate_millis = *millis;
    if (has("burst")) {
      auto burst = Integer(field, Join(path, "burst"), 0, 1'000'000);
      if (!burst.ok()) return burst.status();
      nginx.burst = *burst;
    }
    if (has("nodelay")) {
      auto nodelay = Bool(field, Join(path, "nodelay"));
      if (!nodelay.ok()) return nodelay.status();
      nginx.nodelay = *nodelay;
    }
    model.limiter = nginx;
  } else if (*kind == "fixed_window") {
    if (absl::Status s = CheckKeys(*object, path, {"model", "requests", "window", "jitter"}); !s.ok()) return s;
    FixedWindowLimit window;
    if (!has("requests")) return Error(Join(path, "requests"), "required");
    auto requests = Integer(field, Join(path, "requests"), 1, 1'000'000'000);
    if (!requests.ok()) return requests.status();
    window.max_requests = *requests;
    if (!has("window")) return Error(Join(path, "window"), "required, such as \"1m\" or \"1h\"");
    auto length = Duration(field, Join(path, "window"));
    if (!length.ok()) return length.status();
    window.window = *length;
    model.limiter = window;
  } else if (*kind == "leaky_bucket") {
    if (absl::Status s = CheckKeys(*object, path, {"model", "capacity", "leak_per_second", "jitter"}); !s.ok()) {
      return s;
    }
    LeakyBucketLimit bucket;
    if (!has("capacity")) return Error(Join(path, "capacity"), "required");
    auto capacity = Integer(field, Join(path, "capacity"), 1, 1'000'000'000);
    if (!capacity.ok()) return capacity.status();
    bucket.capacity = *capacity;
    if (!has("leak_per_second")) return Error(Join(path, "leak_per_second"), "required");
    auto leak = Number(field, Join(path, "leak_per_second"));
    if (!leak.ok()) return leak.status();
    if (!(*leak > 0) || *leak > 1e9) return Error(Join(path, "leak_per_second"), absl::StrCat("must be > 0, got ", *leak));
    bucket.leak_per_second = *leak;
    model.limiter = bucket;
  } else {
    return Error(Join(path, "model"),
                 absl::StrCat("expected \"nginx\", \"fixed_window\" or \"leaky_bucket\", got \"", *kind, "\""));
  }
  if (object->at_key("jitter").get(field) == simdjson::SUCCESS) {
    if (field.is_string() && field.get_string().value_unsafe() == "0") {
      model.jitter = absl::ZeroDuration();
    } else {
      auto jitter = Duration(field, Join(path, "jitter"));
      if (!jitter.ok()) return jitter.status();
      model.jitter = *jitter;
    }
  }
  return absl::OkStatus();
}

absl::Status SpecReader::ReadRetry(dom::element value, RunOptions& run) {
  auto object = Object(value, "retry");
  if (!object.ok()) return object.status();
  if (absl::Status s = CheckKeys(*object, "retry",
                                 {"max_attempts", "base_delay", "max_delay", "max_elapsed", "max_retry_after",
                                  "max_throttles", "jitter", "retry_invalid_responses", "budget"});
      !s.ok()) {
    return s;
  }
  RetryOptions& retry = run.retry;
  for (auto field : *object) {
    const std::string path = absl::StrCat("retry.", std::string(field.key));
    absl::Status status;
    if (field.key == "max_attempts" || field.key == "max_throttles") {
      auto n = Integer(field.value, path, 1, 1000);
      if (!n.ok()) return n.status();
      (field.key == "max_attempts" ? retry.max_attempts : retry.max_throttles) = static_cast<int>(*n);
    } else if (field.key == "jitter") {
      auto text = String(field.value, path);
      if (!text.ok()) return text.status();
      if (*text == "none") {
        retry.jitter = Jitter::kNone;
      } else if (*text == "full") {
        retry.jitter = Jitter::kFull;
      } else if (*text == "decorrelated") {
        retry.jitter = Jitter::kDecorrelated;
      } else {
        return Error(path, absl::StrCat("expected \"none\", \"full\" or \"decorrelated\", got \"", *text, "\""));
      }
    } else if (field.key == "retry_invalid_responses") {
      auto b = Bool(field.value, path);
      if (!b.ok()) return b.status();
      retry.retry_invalid_responses = *b;
    } else if (field.key == "budget") {
      // false, or the share of requests that may be retries (0.1 = 10%).
      if (field.value.is_bool()) {
        if (field.value.get_bool().value_unsafe()) return Error(path, "expected false or a ratio such as 0.1");
        run.use_retry_budget = false;
        continue;
      }
      auto ratio = Number(field.value, path);
      if (!ratio.ok()) return ratio.status();
      if (!(*ratio >= 0) || *ratio > 100) return Error(path, absl::StrCat("must be in 0..100, got ", *ratio));
      run.retry_budget.ratio = *ratio;
    } else {
      auto d = Duration(field.value, path);
      if (!d.ok()) return d.status();
      if (field.key == "base_delay") retry.base_delay = *d;
      if (field.key == "max_delay") retry.max_delay = *d;
      if (field.key == "max_elapsed") retry.max_elapsed = *d;
      if (field.key == "max_retry_after") retry.max_retry_after = *d;
    }
  }
  if (retry.base_delay > retry.max_delay) {
    return Error("retry", absl::StrCat("base_delay (", absl::FormatDuration(retry.base_delay),
                                       ") must not exceed max_delay (", absl::FormatDuration(retry.max_delay), ")"));
  }
  return absl::OkStatus();
}

absl::Status SpecReader::ReadPagination(dom::element value, const std::string& path, Pagination& pagination) {
  auto object = Object(value, path);
  if (!object.ok()) return object.status();
  if (absl::Status s = CheckKeys(*object, path,
                                 {"next_pointer", "cursor_param", "link_header", "page_param", "start",
                                  "offset_param", "limit_param", "limit"});
      !s.ok()) {
    return s;
  }
  dom::element field;
  auto has = [&](const char* key) { return object->at_key(key).get(field) == simdjson::SUCCESS; };
  std::vector<std::string> styles;
  if (has("next_pointer")) styles.push_back("next_pointer");
  if (has("link_header")) styles.push_back("link_header");
  if (has("page_param")) styles.push_back("page_param");
  if (has("offset_param")) styles.push_back("offset_param");
  if (styles.size() != 1) {
    return Error(path, absl::StrCat("expected exactly one of next_pointer, link_header, page_param or offset_param",
                                    styles.empty() ? "" : absl::StrCat(", got ", absl::StrJoin(styles, " and "))));
  }
  auto only = [&](std::initializer_list<std::string_view> keys) { return CheckKeys(*object, path, keys); };
  const std::string& style = styles[0];
  if (style == "next_pointer") {
    if (absl::Status s = only({"next_pointer", "cursor_param"}); !s.ok()) return s;
    auto pointer = Pointer(object->at_key("next_pointer").value_unsafe(), Join(path, "next_pointer"), "/next");
    if (!pointer.ok()) return pointer.status();
    if (pointer->empty()) return Error(Join(path, "next_pointer"), "must not be empty (the whole document)");
    if (has("cursor_param")) {
      auto param = String(field, Join(path, "cursor_param"));
      if (!param.ok()) return param.status();
      if (param->empty()) return Error(Join(path, "cursor_param"), "must not be empty");
      pagination = Pagination::NextCursor(*pointer, *param);
    } else {
      pagination = Pagination::NextUrl(*pointer);
    }
  } else if (style == "link_header") {
    if (absl::Status s = only({"link_header"}); !s.ok()) return s;
    auto b = Bool(field, Join(path, "link_header"));
    if (!b.ok()) return b.status();
    if (!*b) return Error(Join(path, "link_header"), "must be true (leave pagination out for single pages)");
    pagination = Pagination::LinkHeader();
  } else if (style == "page_param") {
    if (absl::Status s = only({"page_param", "start"}); !s.ok()) return s;
    auto param = String(field, Join(path, "page_param"));
    if (!param.ok()) return param.status();
    if (param->empty()) return Error(Join(path, "page_param"), "must not be empty");
    int64_t start = 1;
    if (has("start")) {
      auto n = Integer(field, Join(path, "start"), 0, 1'000'000);
      if (!n.ok()) return n.status();
      start = *n;
    }
    pagination = Pagination::Page(*param, start);
  } else {
    if (absl::Status s = only({"offset_param", "limit_param", "limit"}); !s.ok()) return s;
    auto param = String(object->at_key("offset_param").value_unsafe(), Join(path, "offset_param"));
    if (!param.ok()) return param.status();
    if (!has("limit_param")) return Error(Join(path, "limit_param"), "required with offset_param");
    auto limit_param = String(field, Join(path, "limit_param"));
    if (!limit_param.ok()) return limit_param.status();
    int64_t limit = 100;
    if (has("limit")) {
      auto n = Integer(field, Join(path, "limit"), 1, 1'000'000);
      if (!n.ok()) return n.status();
      limit = *n;
    }
    if (param->empty() || limit_param->empty()) return Error(path, "offset_param and limit_param must not be empty");
    pagination = Pagination::Offset(*param, *limit_param, limit);
  }
  return absl::OkStatus();
}

absl::Status SpecReader::ReadLevel(dom::element value, const std::string& path, Level& level) {
  auto object = Object(value, path);
  if (!object.ok()) return object.status();
  if (absl::Status s =
          CheckKeys(*object, path, {"name", "url", "items", "id", "bind", "capture", "pagination", "limits", "format"});
      !s.ok()) {
    return s;
  }
  dom::element field;
  for (const char* key : {"name", "url"}) {
    if (object->at_key(key).get(field) != simdjson::SUCCESS) return Error(Join(path, key), "required");
    auto text = String(field, Join(path, key));
    if (!text.ok()) return text.status();
    if (text->empty()) return Error(Join(path, key), "must not be empty");
    (std::string_view(key) == "name" ? level.name : level.url) = *std::move(text);
  }
  if (object->at_key("items").get(field) == simdjson::SUCCESS) {
    auto pointer = Pointer(field, Join(path, "items"), "/groups");
    if (!pointer.ok()) return pointer.status();
    level.items_pointer = *std::move(pointer);
  }
  for (const char* key : {"id", "bind"}) {
    if (object->at_key(key).get(field) != simdjson::SUCCESS) continue;
    auto text = String(field, Join(path, key));
    if (!text.ok()) return text.status();
    if (text->empty()) return Error(Join(path, key), "must not be empty");
    (std::string_view(key) == "id" ? level.id_field : level.bind) = *std::move(text);
  }
  if (object->at_key("capture").get(field) == simdjson::SUCCESS) {
    dom::array array;
    if (field.get_array().get(array) != simdjson::SUCCESS) {
      return TypeError(Join(path, "capture"), "an array of field names", field);
    }
    size_t i = 0;
    for (dom::element item : array) {
      auto name = String(item, absl::StrCat(path, ".capture[", i++, "]"));
      if (!name.ok()) return name.status();
      level.capture.push_back(*std::move(name));
    }
  }
  if (object->at_key("pagination").get(field) == simdjson::SUCCESS) {
    if (absl::Status s = ReadPagination(field, Join(path, "pagination"), level.pagination); !s.ok()) return s;
  }
  if (object->at_key("format").get(field) == simdjson::SUCCESS) {
    auto format = String(field, Join(path, "format"));
    if (!format.ok()) return format.status();
    if (*format != "json" && *format != "raw") {
      return Error(Join(path, "format"), absl::StrCat("expected \"json\" or \"raw\", got \"", *format, "\""));
    }
    level.expect_json = *format == "json";
  }
  if (object->at_key("limits").get(field) == simdjson::SUCCESS) {
    if (absl::Status s = ReadLimits(field, Join(path, "limits"), &level.rate, &level.max_in_flight, nullptr);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status SpecReader::ReadOutput(dom::element value, OutputSpec& output) {
  auto object = Object(value, "sinks");
  if (!object.ok()) return object.status();
  if (absl::Status s = CheckKeys(*object, "sinks", {"jsonl", "tree", "success_markers", "sqlite"}); !s.ok()) return s;
  for (auto field : *object) {
    const std::string path = absl::StrCat("sinks.", std::string(field.key));
    if (field.key == "success_markers" || field.key == "sqlite") {
      auto b = Bool(field.value, path);
      if (!b.ok()) return b.status();
      (field.key == "sqlite" ? output.sqlite : output.success_markers) = *b;
      continue;
    }
    auto file = String(field.value, path);
    if (!file.ok()) return file.status();
    if (file->empty()) return Error(path, "must not be empty (leave the key out for none)");
    (field.key == "jsonl" ? output.jsonl : output.tree) = Resolve(*file);
  }
  if (output.success_markers && output.tree.empty()) return Error("sinks.success_markers", "needs sinks.tree");
  return absl::OkStatus();
}

absl::StatusOr<CrawlSpec> SpecReader::Read(std::string_view json) {
  dom::parser parser;
  dom::element root;
  simdjson::padded_string padded(json);
  if (auto error = parser.parse(padded).get(root); error != simdjson::SUCCESS) {
    return Error("", absl::StrCat("not valid JSON: ", simdjson::error_message(error)));
  }
  auto object = Object(root, "");
  if (!object.ok()) return Error("", absl::StrCat("expected a JSON object, got ", TypeName(root.type())));
  if (absl::Status s = CheckKeys(*object, "",
                                 {"base_url", "allow_other_origins", "headers", "timeouts", "verify_tls", "limits",
                                  "retry", "levels", "sinks", "journal", "journal_sync", "dead_letters"});
      !s.ok()) {
    return s;
  }
  CrawlSpec spec;
  dom::element field;
  if (object->at_key("base_url").get(field) != simdjson::SUCCESS) return Error("base_url", "required");
  auto base = String(field, "base_url");
  if (!base.ok()) return base.status();
  if (!absl::StartsWith(*base, "http://") && !absl::StartsWith(*base, "https://")) {
    return Error("base_url", absl::StrCat("expected an http:// or https:// URL, got \"", *base, "\""));
  }
  spec.plan.base_url = *std::move(base);
  if (object->at_key("allow_other_origins").get(field) == simdjson::SUCCESS) {
    auto b = Bool(field, "allow_other_origins");
    if (!b.ok()) return b.status();
    spec.plan.allow_other_origins = *b;
  }
  if (object->at_key("verify_tls").get(field) == simdjson::SUCCESS) {
    auto b = Bool(field, "verify_tls");
    if (!b.ok()) return b.status();
    spec.run.verify_tls = *b;
  }
  if (object->at_key("headers").get(field) == simdjson::SUCCESS) {
    if (absl::Status s = ReadHeaders(field, spec); !s.ok()) return s;
  }
  if (object->at_key("timeouts").get(field) == simdjson::SUCCESS) {
    auto timeouts = Object(field, "timeouts");
    if (!timeouts.ok()) return timeouts.status();
    if (absl::Status s = CheckKeys(*timeouts, "timeouts", {"connect", "request"}); !s.ok()) return s;
    for (auto t : *timeouts) {
      auto d = Duration(t.value, absl::StrCat("timeouts.", std::string(t.key)));
      if (!d.ok()) return d.status();
      (t.key == "connect" ? spec.run.connect_timeout : spec.run.request_timeout) = *d;
    }
  }
  if (object->at_key("limits").get(field) == simdjson::SUCCESS) {
    if (absl::Status s = ReadLimits(field, "limits", &spec.run.engine.rate, &spec.run.engine.max_in_flight,
                                    &spec.run.engine.adaptive);
        !s.ok()) {
      return s;
    }
  }
  if (object->at_key("retry").get(field) == simdjson::SUCCESS) {
    if (absl::Status s = ReadRetry(field, spec.run); !s.ok()) return s;
  }
  if (object->at_key("levels").get(field) != simdjson::SUCCESS) return Error("levels", "required");
  dom::array levels;
  if (field.get_array().get(levels) != simdjson::SUCCESS) return TypeError("levels", "an array of levels", field);
  if (levels.size() == 0) return Error("levels", "needs at least one level");
  size_t i = 0;
  for (dom::element level : levels) {
    Level parsed;
    const std::string path = absl::StrCat("levels[", i, "]");
    if (absl::Status s = ReadLevel(level, path, parsed); !s.ok()) return s;
    const bool leaf = i + 1 == levels.size();
    if (!leaf && level.at_key("format").error() == simdjson::SUCCESS) {
      return Error(Join(path, "format"), "only the last level (the leaf) has a format: listings are always JSON");
    }
    if (!leaf && parsed.bind.empty()) {
      return Error(Join(path, "bind"), "required for a listing level (the placeholder its ids fill below)");
    }
    if (leaf) {
      for (const char* key : {"items", "bind", "capture", "pagination"}) {
        if (level.at_key(key).error() == simdjson::SUCCESS) {
          return Error(Join(path, key), "the last level is the leaf (its documents are the output): it has no items");
        }
      }
    }
    spec.plan.levels.push_back(std::move(parsed));
    ++i;
  }
  if (object->at_key("sinks").get(field) == simdjson::SUCCESS) {
    if (absl::Status s = ReadOutput(field, spec.output); !s.ok()) return s;
  }
  for (const char* key : {"journal", "dead_letters"}) {
    if (object->at_key(key).get(field) != simdjson::SUCCESS) continue;
    auto file = String(field, key);
    if (!file.ok()) return file.status();
    if (file->empty()) return Error(key, "must not be empty (leave the key out for none)");
    (std::string_view(key) == "journal" ? spec.run.journal : spec.output.dead_letters) = Resolve(*file);
  }
  if (object->at_key("journal_sync").get(field) == simdjson::SUCCESS) {
    auto sync = String(field, "journal_sync");
    if (!sync.ok()) return sync.status();
    if (*sync != "normal" && *sync != "full") {
      return Error("journal_sync", absl::StrCat("expected \"normal\" (survives a crash of the process) or \"full\" "
                                                "(also a power loss, an fsync per commit), got \"", *sync, "\""));
    }
    if (spec.run.journal.empty()) return Error("journal_sync", "needs \"journal\"");
    spec.run.journal_sync_full = *sync == "full";
  }
  if (spec.output.sqlite && spec.run.journal.empty()) {
    return Error("sinks.sqlite", "records go into the journal's own transaction: set \"journal\" too");
  }
  if (absl::Status s = spec.plan.Validate(); !s.ok()) return Error("", std::string(s.message()));
  return spec;
}

}  // namespace

absl::StatusOr<CrawlSpec> ParseCrawlSpec(std::string_view json, const SpecOptions& options) {
  return SpecReader(options).Read(json);
}

absl::StatusOr<CrawlSpec> LoadCrawlSpec(const std::string& path, SpecOptions options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    const std::string message = absl::StrFormat("spec \"%s\": cannot read: %s", path, std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message) : absl::PermissionDeniedError(message);
  }
  std::stringstream contents;
  contents << in.rdbuf();
  if (options.name.empty()) options.name = path;
  if (options.base_dir.empty()) {
    options.base_dir = std::filesystem::absolute(path).parent_path().string();
  }
  return ParseCrawlSpec(contents.str(), options);
}

std::string Redact(std::string_view text, const std::vector<std::string>& secrets) {
  std::string out(text);
  for (const std::string& secret : secrets) {
    if (secret.size() < 4) continue;
    out = absl::StrReplaceAll(out, {{secret, "[redacted]"}});
  }
  return out;
}

bool IsSecretHeaderName(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(std::string(name));
  if (lower == "authorization" || lower == "proxy-authorization" || lower == "cookie") return true;
  for (const char* word : {"token", "key", "secret", "auth", "session", "password"}) {
    if (absl::StrContains(lower, word)) return true;
  }
  return false;
}

}  // namespace fanout
