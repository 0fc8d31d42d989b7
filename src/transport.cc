// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/transport.h"

#include <optional>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace fanout {

std::optional<std::string_view> FindHeader(const Headers& headers, std::string_view name) {
  const absl::string_view wanted(name.data(), name.size());
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(absl::string_view(key), wanted)) return std::string_view(value);
  }
  return std::nullopt;
}

}  // namespace fanout
