// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/frontier.h"

#include "absl/strings/str_format.h"

namespace fanout {

absl::Status MemoryFrontier::CheckLevel(const Task& task) const {
  if (task.level >= ready_.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("frontier: task level %d out of range (plan has %d levels)", task.level, ready_.size()));
  }
  return absl::OkStatus();
}

void MemoryFrontier::Enqueue(Task task) {
  ++counts_.pending;
  ++pending_by_level_[task.level];
  if (task.not_before == absl::InfinitePast()) {
    ready_[task.level].push_back(std::move(task));
  } else {
    waiting_.push(std::move(task));
  }
}

absl::Status MemoryFrontier::Add(std::vector<Task> tasks) {
  for (const Task& task : tasks) {
    if (absl::Status s = CheckLevel(task); !s.ok()) return s;
  }
  for (Task& task : tasks) {
    task.id = next_id_++;
    ++counts_.discovered;
    Enqueue(std::move(task));
  }
  return absl::OkStatus();
}

std::optional<Task> MemoryFrontier::Lease(absl::Time now) {
  while (!waiting_.empty() && waiting_.top().not_before <= now) {
    Task task = waiting_.top();
    waiting_.pop();
    ready_[task.level].push_back(std::move(task));
  }
  for (size_t level = ready_.size(); level-- > 0;) {
    if (ready_[level].empty()) continue;
    Task task = std::move(ready_[level].front());
    ready_[level].pop_front();
    --counts_.pending;
    --pending_by_level_[level];
    ++counts_.leased;
    return task;
  }
  return std::nullopt;
}

std::optional<absl::Time> MemoryFrontier::NextReadyTime() const {
  for (const auto& queue : ready_) {
    if (!queue.empty()) return absl::InfinitePast();
  }
  if (waiting_.empty()) return std::nullopt;
  return waiting_.top().not_before;
}

absl::StatusOr<std::vector<uint64_t>> MemoryFrontier::Complete(uint64_t /*task_id*/, std::vector<Task> discovered) {
  for (const Task& task : discovered) {
    if (absl::Status s = CheckLevel(task); !s.ok()) return s;
  }
  --counts_.leased;
  ++counts_.done;
  std::vector<uint64_t> ids;
  ids.reserve(discovered.size());
  for (Task& task : discovered) {
    task.id = next_id_++;
    ids.push_back(task.id);
    ++counts_.discovered;
    Enqueue(std::move(task));
  }
  return ids;
}

absl::Status MemoryFrontier::Retry(Task task) {
  if (absl::Status s = CheckLevel(task); !s.ok()) return s;
  --counts_.leased;
  Enqueue(std::move(task));
  return absl::OkStatus();
}

absl::Status MemoryFrontier::Dead(uint64_t /*task_id*/, std::string /*reason*/) {
  --counts_.leased;
  ++counts_.dead;
  return absl::OkStatus();
}

absl::Status MemoryFrontier::Restore(std::vector<Task> pending, FrontierCounts counts, uint64_t next_id) {
  for (const Task& task : pending) {
    if (absl::Status s = CheckLevel(task); !s.ok()) return s;
  }
  counts_ = counts;
  counts_.pending = 0;
  counts_.leased = 0;
  next_id_ = next_id;
  for (Task& task : pending) Enqueue(std::move(task));
  return absl::OkStatus();
}

absl::Status MemoryFrontier::Release(Task task) {
  task.not_before = absl::InfinitePast();
  return Retry(std::move(task));
}

}  // namespace fanout
