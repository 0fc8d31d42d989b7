// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/crawl_plan.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "simdjson.h"

namespace fanout {
namespace {

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// Percent-encodes everything but RFC 3986 unreserved characters, so an id such
// as "../x" or "a/b" stays one path segment.
std::string PercentEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (IsUnreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  // "." and ".." are unreserved but would be removed as dot-segments.
  if (out == ".") return "%2E";
  if (out == "..") return "%2E%2E";
  return out;
}

bool IsJsonPointer(std::string_view p) { return p.empty() || p.front() == '/'; }

std::string_view StripScheme(std::string_view url, std::string_view* scheme) {
  const size_t colon = url.find("://");
  if (colon == std::string_view::npos) return {};
  *scheme = url.substr(0, colon);
  return url.substr(colon + 3);
}

// Placeholders of a template, in order ("{troop}" -> "troop").
absl::StatusOr<std::vector<std::string>> Placeholders(std::string_view tmpl) {
  std::vector<std::string> names;
  size_t pos = 0;
  while ((pos = tmpl.find('{', pos)) != std::string_view::npos) {
    const size_t end = tmpl.find('}', pos);
    if (end == std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrFormat("unclosed \"{\" at offset %d", pos));
    }
    std::string name(tmpl.substr(pos + 1, end - pos - 1));
    if (name.empty()) return absl::InvalidArgumentError(absl::StrFormat("empty placeholder at offset %d", pos));
    names.push_back(std::move(name));
    pos = end + 1;
  }
  return names;
}

std::string Describe(const Level& level, size_t index) {
  return absl::StrFormat("levels[%d] \"%s\"", index, level.name);
}

// Value of query parameter `name` in `url`, if present.
std::optional<std::string_view> QueryParam(std::string_view url, std::string_view name) {
  const size_t q = url.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = url.substr(q + 1);
  const size_t hash = query.find('#');
  if (hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return std::nullopt;
}

// Resolves a possibly relative URL found in a response against `current`.
std::string Resolve(std::string_view current, std::string_view ref) {
  if (absl::StrContains(absl::string_view(ref.data(), std::min<size_t>(ref.size(), 10)), "://")) {
    return std::string(ref);
  }
  const std::string origin = OriginOf(current);
  std::string_view scheme;
  StripScheme(current, &scheme);
  if (ref.substr(0, 2) == "//") return absl::StrFormat("%s:%s", scheme, ref);
  if (!ref.empty() && ref.front() == '/') return origin + std::string(ref);
  std::string_view base = current.substr(0, current.find_first_of("?#"));
  if (!ref.empty() && ref.front() == '?') return std::string(base) + std::string(ref);
  const size_t slash = base.rfind('/');
  return std::string(base.substr(0, slash + 1)) + std::string(ref);
}

// The rel="next" target of an RFC 8288 Link header, if any.
std::optional<std::string> NextFromLink(std::string_view header) {
  size_t pos = 0;
  while (pos < header.size()) {
    const size_t open = header.find('<', pos);
    if (open == std::string_view::npos) break;
    const size_t close = header.find('>', open);
    if (close == std::string_view::npos) break;
    const std::string_view target = header.substr(open + 1, close - open - 1);
    size_t next_link = header.find('<', close);
    const std::string_view params = header.substr(close + 1, next_link == std::string_view::npos
                                                                 ? std::string_view::npos
                                                                 : next_link - close - 1);
    // rel="next", rel=next, rel="prev next" (space-separated relation types)
    std::string lower = absl::AsciiStrToLower(absl::string_view(params.data(), params.size()));
    size_t rel = lower.find("rel");
    while (rel != std::string::npos) {
      size_t v = lower.find_first_not_of(" \t", rel + 3);
      if (v != std::string::npos && lower[v] == '=') {
        v = lower.find_first_not_of(" \t", v + 1);
        if (v == std::string::npos) break;
        std::string value;
        if (lower[v] == '"') {
          const size_t end = lower.find('"', v + 1);
          value = lower.substr(v + 1, end == std::string::npos ? std::string::npos : end - v - 1);
        } else {
          const size_t end = lower.find_first_of(";, \t", v);
          value = lower.substr(v, end == std::string::npos ? std::string::npos : end - v);
        }
        for (absl::string_view type : absl::StrSplit(value, ' ', absl::SkipEmpty())) {
          if (type == "next") return std::string(target);
        }
      }
      rel = lower.find("rel", rel + 3);
    }
    if (next_link == std::string_view::npos) break;
    pos = next_link;
  }
  return std::nullopt;
}

}  // namespace

std::string OriginOf(std::string_view url) {
  std::string_view scheme;
  std::string_view rest = StripScheme(url, &scheme);
  if (scheme.empty()) return "";
  const size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  const size_t at = authority.rfind('@');  // drop userinfo
  if (at != std::string_view::npos) authority = authority.substr(at + 1);
  return absl::AsciiStrToLower(absl::StrFormat("%s://%s", scheme, authority));
}

std::string WithQueryParam(std::string_view url, std::string_view name, std::string_view value) {
  const size_t hash = url.find('#');
  std::string_view fragment = hash == std::string_view::npos ? "" : url.substr(hash);
  std::string_view head = url.substr(0, hash);
  const std::string encoded = PercentEncode(value);
  const size_t q = head.find('?');
  std::string out(head.substr(0, q));
  bool replaced = false;
  char sep = '?';
  if (q != std::string_view::npos) {
    std::string_view query = head.substr(q + 1);
    while (true) {
      const size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      if (!pair.empty()) {
        const size_t eq = pair.find('=');
        out.push_back(sep);
        sep = '&';
        if (pair.substr(0, eq) == name) {
          absl::StrAppendFormat(&out, "%s=%s", name, encoded);
          replaced = true;
        } else {
          out.append(pair);
        }
      }
      if (amp == std::string_view::npos) break;
      query = query.substr(amp + 1);
    }
  }
  if (!replaced) absl::StrAppendFormat(&out, "%c%s=%s", sep, name, encoded);
  out.append(fragment);
  return out;
}

absl::Status CrawlPlan::Validate() const {
  std::string_view scheme;
  StripScheme(base_url, &scheme);
  if (scheme != "http" && scheme != "https") {
    return absl::InvalidArgumentError(
        absl::StrFormat("base_url: expected an http:// or https:// URL, got \"%s\"", base_url));
  }
  if (levels.empty()) return absl::InvalidArgumentError("levels: a plan needs at least one level");
  absl::flat_hash_set<std::string> names, bound;
  for (size_t i = 0; i < levels.size(); ++i) {
    const Level& level = levels[i];
    const std::string where = Describe(level, i);
    if (level.name.empty()) return absl::InvalidArgumentError(absl::StrFormat("levels[%d]: name is empty", i));
    if (!names.insert(level.name).second) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: name is used by an earlier level", where));
    }
    if (level.url.empty()) return absl::InvalidArgumentError(absl::StrFormat("%s: url is empty", where));
    auto placeholders = Placeholders(level.url);
    if (!placeholders.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: url \"%s\": %s", where, level.url, placeholders.status().message()));
    }
    for (const std::string& name : *placeholders) {
      if (!bound.contains(name)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: url placeholder {%s} is not bound by an earlier level (bound: %d names)", where, name,
            bound.size()));
      }
    }
    if (level.rate.has_value() && !(level.rate->rate_per_second > 0 && level.rate->burst >= 1)) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: rate must be > 0 with burst >= 1", where));
    }
    if (level.max_in_flight < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: max_in_flight must be >= 0, got %d", where, level.max_in_flight));
    }
    if (is_leaf(i)) continue;
    if (!IsJsonPointer(level.items_pointer)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: items pointer must be a JSON pointer such as \"/items\", got \"%s\"", where, level.items_pointer));
    }
    if (level.id_field.empty()) return absl::InvalidArgumentError(absl::StrFormat("%s: id_field is empty", where));
    if (level.bind.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: bind (the placeholder this level's ids fill) is empty", where));
    }
    if (!bound.insert(level.bind).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: bind {%s} is already bound by an earlier level", where, level.bind));
    }
    for (const std::string& field : level.capture) {
      if (field.empty() || !bound.insert(field).second) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: capture \"%s\" is empty or already bound", where, field));
      }
    }
    const Pagination& p = level.pagination;
    switch (p.kind) {
      case Pagination::Kind::kNone:
      case Pagination::Kind::kLinkHeader:
        break;
      case Pagination::Kind::kNextCursor:
      case Pagination::Kind::kNextUrl:
        if (p.pointer.empty() || !IsJsonPointer(p.pointer)) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "%s: pagination pointer must be a JSON pointer such as \"/next\", got \"%s\"", where, p.pointer));
        }
        if (p.kind == Pagination::Kind::kNextCursor && p.param.empty()) {
          return absl::InvalidArgumentError(absl::StrFormat("%s: pagination param (cursor parameter) is empty", where));
        }
        break;
      case Pagination::Kind::kPage:
        if (p.param.empty()) {
          return absl::InvalidArgumentError(absl::StrFormat("%s: pagination param (page parameter) is empty", where));
        }
        break;
      case Pagination::Kind::kOffset:
        if (p.param.empty() || p.limit_param.empty() || p.limit < 1) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "%s: offset pagination needs param, limit_param and limit >= 1 (got \"%s\", \"%s\", %d)", where,
              p.param, p.limit_param, p.limit));
        }
        break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ExpandUrl(const CrawlPlan& plan, size_t level, const Bindings& bindings) {
  const std::string& tmpl = plan.levels.at(level).url;
  std::string out;
  out.reserve(tmpl.size() + 32);
  size_t pos = 0;
  while (pos < tmpl.size()) {
    const size_t open = tmpl.find('{', pos);
    if (open == std::string::npos) {
      out.append(tmpl, pos, std::string::npos);
      break;
    }
    out.append(tmpl, pos, open - pos);
    const size_t close = tmpl.find('}', open);
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: unclosed placeholder in \"%s\"", Describe(plan.levels[level], level), tmpl));
    }
    const std::string_view name(tmpl.data() + open + 1, close - open - 1);
    auto it = std::find_if(bindings.rbegin(), bindings.rend(), [&](const auto& b) { return b.first == name; });
    if (it == bindings.rend()) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: placeholder {%s} has no value",
                                                        Describe(plan.levels[level], level), name));
    }
    out += PercentEncode(it->second);
    pos = close + 1;
  }
  if (absl::StrContains(absl::string_view(out.data(), std::min<size_t>(out.size(), 10)), "://")) return out;
  std::string base = plan.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (!out.empty() && out.front() != '/') base.push_back('/');
  return base + out;
}

absl::StatusOr<std::string> FirstPageUrl(const CrawlPlan& plan, size_t level, const Bindings& bindings) {
  auto url = ExpandUrl(plan, level, bindings);
  if (!url.ok() || plan.is_leaf(level)) return url;
  const Pagination& p = plan.levels[level].pagination;
  if (p.kind == Pagination::Kind::kPage) return WithQueryParam(*url, p.param, std::to_string(p.start));
  if (p.kind == Pagination::Kind::kOffset) {
    return WithQueryParam(WithQueryParam(*url, p.param, "0"), p.limit_param, std::to_string(p.limit));
  }
  return url;
}

struct ListingExtractor::Parser {
  simdjson::ondemand::parser parser;
  simdjson::dom::parser validator;
  simdjson::padded_string scratch;
};

ListingExtractor::ListingExtractor() : parser_(std::make_unique<Parser>()) {}
ListingExtractor::~ListingExtractor() = default;

namespace {

// The textual value of a JSON scalar usable as an id: a string, or a number
// as written. Anything else is an error describing what was found.
absl::StatusOr<std::string> ScalarText(simdjson::ondemand::value value) {
  simdjson::ondemand::json_type type;
  if (auto error = value.type().get(type); error) {
    return absl::InvalidArgumentError(simdjson::error_message(error));
  }
  switch (type) {
    case simdjson::ondemand::json_type::string: {
      std::string_view s;
      if (auto error = value.get_string().get(s); error) {
        return absl::InvalidArgumentError(simdjson::error_message(error));
      }
      return std::string(s);
    }
    case simdjson::ondemand::json_type::number: {
      std::string_view raw = value.raw_json_token();
      while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back()))) raw.remove_suffix(1);
      return std::string(raw);
    }
    case simdjson::ondemand::json_type::array:
      return absl::InvalidArgumentError("found an array");
    case simdjson::ondemand::json_type::object:
      return absl::InvalidArgumentError("found an object");
    case simdjson::ondemand::json_type::boolean:
      return absl::InvalidArgumentError("found a boolean");
    case simdjson::ondemand::json_type::null:
      return absl::InvalidArgumentError("found null");
  }
  return absl::InvalidArgumentError("found an unknown type");
}

const char* TypeName(simdjson::ondemand::json_type type) {
  switch (type) {
    case simdjson::ondemand::json_type::array: return "array";
    case simdjson::ondemand::json_type::object: return "object";
    case simdjson::ondemand::json_type::number: return "number";
    case simdjson::ondemand::json_type::string: return "string";
    case simdjson::ondemand::json_type::boolean: return "boolean";
    case simdjson::ondemand::json_type::null: return "null";
  }
  return "unknown";
}

}  // namespace

absl::Status ListingExtractor::CheckJson(const CrawlPlan& plan, size_t level, const std::string& url,
                                        const Response& response) {
  simdjson::dom::element ignored;
  // In place when the body's buffer has room for simdjson's padding.
  const bool copy = response.body.capacity() < response.body.size() + simdjson::SIMDJSON_PADDING;
  const simdjson::error_code error =
      parser_->validator.parse(response.body.data(), response.body.size(), copy).get(ignored);
  if (error == simdjson::SUCCESS) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat("level \"%s\": not one valid JSON document (%s) in response of GET "
                                                    "%s (%d, %d bytes)",
                                                    plan.levels.at(level).name, simdjson::error_message(error), url,
                                                    response.status, response.body.size()));
}

absl::StatusOr<ListingPage> ListingExtractor::Extract(const CrawlPlan& plan, size_t level_index,
                                                      const std::string& url, const Response& response) {
  const Level& level = plan.levels.at(level_index);
  auto fail = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrFormat("level \"%s\": %s in response of GET %s (%d, %d bytes)",
                                                      level.name, what, url, response.status,
                                                      response.body.size()));
  };
  // simdjson reads a little past the end: use the body in place when its
  // buffer has room for the padding, else copy it once.
  simdjson::padded_string_view json;
  if (response.body.capacity() >= response.body.size() + simdjson::SIMDJSON_PADDING) {
    json = simdjson::padded_string_view(response.body.data(), response.body.size(), response.body.capacity());
  } else {
    parser_->scratch = simdjson::padded_string(response.body);
    json = parser_->scratch;
  }
  simdjson::ondemand::document doc;
  if (auto error = parser_->parser.iterate(json).get(doc); error) {
    return fail(absl::StrFormat("body is not JSON (%s)", simdjson::error_message(error)));
  }
  ListingPage page;
  {
    simdjson::ondemand::value items_value;
    if (auto error = doc.at_pointer(level.items_pointer).get(items_value); error) {
      if (error == simdjson::NO_SUCH_FIELD || error == simdjson::INDEX_OUT_OF_BOUNDS ||
          error == simdjson::INCORRECT_TYPE) {
        return fail(absl::StrFormat("items pointer \"%s\" matched nothing (%s)", level.items_pointer,
                                    simdjson::error_message(error)));
      }
      return fail(absl::StrFormat("body is not JSON (%s)", simdjson::error_message(error)));
    }
    simdjson::ondemand::json_type type;
    if (auto error = items_value.type().get(type); error || type != simdjson::ondemand::json_type::array) {
      return fail(absl::StrFormat("items pointer \"%s\" matched no array: found %s", level.items_pointer,
                                  error ? simdjson::error_message(error) : TypeName(type)));
    }
    simdjson::ondemand::array items = items_value.get_array().value_unsafe();
    size_t index = 0;
    for (auto item_result : items) {
      simdjson::ondemand::object item;
      if (auto error = item_result.get_object().get(item); error) {
        return fail(absl::StrFormat("items[%d] is not an object (%s)", index, simdjson::error_message(error)));
      }
      Child child;
      simdjson::ondemand::value id_value;
      if (auto error = item.find_field_unordered(level.id_field).get(id_value); error) {
        return fail(absl::StrFormat("items[%d] has no id field \"%s\" (%s)", index, level.id_field,
                                    simdjson::error_message(error)));
      }
      auto id = ScalarText(id_value);
      if (!id.ok()) {
        return fail(absl::StrFormat("items[%d].%s is not a string or number: %s", index, level.id_field,
                                    id.status().message()));
      }
      child.id = *std::move(id);
      for (const std::string& field : level.capture) {
        simdjson::ondemand::value v;
        if (auto error = item.find_field_unordered(field).get(v); error) {
          return fail(absl::StrFormat("items[%d] has no captured field \"%s\"", index, field));
        }
        auto text = ScalarText(v);
        if (!text.ok()) {
          return fail(absl::StrFormat("items[%d].%s is not a string or number: %s", index, field,
                                      text.status().message()));
        }
        child.captured.emplace_back(field, *std::move(text));
      }
      page.children.push_back(std::move(child));
      ++index;
    }
  }
  // A truncated body fails above, while walking the items array (the part a
  // cut response loses first) or looking up the next cursor.
  const Pagination& p = level.pagination;
  std::optional<std::string> next;
  if (p.kind == Pagination::Kind::kNextCursor || p.kind == Pagination::Kind::kNextUrl) {
    doc.rewind();
    simdjson::ondemand::value v;
    auto error = doc.at_pointer(p.pointer).get(v);
    if (error == simdjson::NO_SUCH_FIELD || error == simdjson::INDEX_OUT_OF_BOUNDS) {
      // no next: last page
    } else if (error) {
      return fail(absl::StrFormat("pagination pointer \"%s\": %s", p.pointer, simdjson::error_message(error)));
    } else if (!v.is_null()) {
      auto text = ScalarText(v);
      if (!text.ok()) {
        return fail(absl::StrFormat("pagination pointer \"%s\": %s", p.pointer, text.status().message()));
      }
      if (!text->empty()) {
        next = p.kind == Pagination::Kind::kNextCursor ? WithQueryParam(url, p.param, *text) : Resolve(url, *text);
      }
    }
  } else if (p.kind == Pagination::Kind::kLinkHeader) {
    if (auto link = FindHeader(response.headers, "link")) {
      if (auto target = NextFromLink(*link)) next = Resolve(url, *target);
    }
  } else if ((p.kind == Pagination::Kind::kPage || p.kind == Pagination::Kind::kOffset) &&
             !page.children.empty()) {
    int64_t current = p.kind == Pagination::Kind::kPage ? p.start : 0;
    if (auto value = QueryParam(url, p.param)) {
      if (!absl::SimpleAtoi(absl::string_view(value->data(), value->size()), &current)) {
        return fail(absl::StrFormat("page parameter %s=\"%s\" is not a number", p.param, *value));
      }
    }
    const int64_t following =
        current + (p.kind == Pagination::Kind::kPage ? 1 : static_cast<int64_t>(page.children.size()));
    next = WithQueryParam(url, p.param, std::to_string(following));
  }
  if (next.has_value() && !plan.allow_other_origins && OriginOf(*next) != OriginOf(plan.base_url)) {
    return fail(absl::StrFormat("next page \"%s\" is on another origin than %s (allow_other_origins is off)",
                                *next, OriginOf(plan.base_url)));
  }
  page.next_url = std::move(next);
  return page;
}

}  // namespace fanout
