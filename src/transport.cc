// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/transport.h"

#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"

namespace fanout {

std::optional<std::string_view> FindHeader(const Headers& headers, std::string_view name) {
  const absl::string_view wanted(name.data(), name.size());
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(absl::string_view(key), wanted)) return std::string_view(value);
  }
  return std::nullopt;
}

int RequestsSent(const absl::StatusOr<Response>& result) {
  if (result.ok()) return result->requests_sent;
  const auto payload = result.status().GetPayload(kRequestsSentPayload);
  int count = 1;
  if (payload.has_value() && absl::SimpleAtoi(std::string(*payload), &count) && count >= 0) return count;
  return 1;
}

void SetRequestsSent(absl::Status& status, int requests_sent) {
  if (status.ok()) return;
  status.SetPayload(kRequestsSentPayload, absl::Cord(std::to_string(requests_sent)));
}

}  // namespace fanout
