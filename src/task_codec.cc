// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "task_codec.h"

#include <cstdint>
#include <cstring>

namespace fanout::internal {
namespace {

constexpr char kTaskFormat = 1;

void PutU32(std::string* out, uint32_t n) { out->append(reinterpret_cast<const char*>(&n), sizeof n); }
void PutU64(std::string* out, uint64_t n) { out->append(reinterpret_cast<const char*>(&n), sizeof n); }
void PutString(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Reads from the front of `in`, consuming what it reads; false if short.
template <typename T>
bool GetInt(std::string_view* in, T* n) {
  if (in->size() < sizeof *n) return false;
  std::memcpy(n, in->data(), sizeof *n);
  in->remove_prefix(sizeof *n);
  return true;
}
bool GetString(std::string_view* in, std::string* s) {
  uint32_t n = 0;
  if (!GetInt(in, &n) || in->size() < n) return false;
  s->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

std::string EncodePairs(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string out;
  for (const auto& [name, value] : pairs) {
    PutString(&out, name);
    PutString(&out, value);
  }
  return out;
}

bool DecodePairs(std::string_view data, std::vector<std::pair<std::string, std::string>>* pairs) {
  while (!data.empty()) {
    std::string name, value;
    if (!GetString(&data, &name) || !GetString(&data, &value)) return false;
    pairs->emplace_back(std::move(name), std::move(value));
  }
  return true;
}

std::string EncodeTask(const Task& task) {
  std::string out(1, kTaskFormat);
  PutU64(&out, task.parent);
  PutU32(&out, task.level);
  PutU32(&out, task.page);
  PutU32(&out, static_cast<uint32_t>(task.attempts.attempts));
  PutU32(&out, static_cast<uint32_t>(task.attempts.throttles));
  PutString(&out, task.url);
  PutString(&out, EncodePairs(task.bindings));
  PutString(&out, EncodePairs(task.path));
  return out;
}

bool DecodeTask(std::string_view data, Task* task) {
  if (data.empty() || data[0] != kTaskFormat) return false;
  data.remove_prefix(1);
  uint32_t attempts = 0, throttles = 0;
  std::string bindings, path;
  if (!GetInt(&data, &task->parent) || !GetInt(&data, &task->level) || !GetInt(&data, &task->page) ||
      !GetInt(&data, &attempts) || !GetInt(&data, &throttles) || !GetString(&data, &task->url) ||
      !GetString(&data, &bindings) || !GetString(&data, &path) || !data.empty()) {
    return false;
  }
  task->attempts.attempts = static_cast<int>(attempts);
  task->attempts.throttles = static_cast<int>(throttles);
  task->bindings.clear();
  task->path.clear();
  return DecodePairs(bindings, &task->bindings) && DecodePairs(path, &task->path);
}

}  // namespace fanout::internal
