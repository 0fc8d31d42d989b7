// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Binary encodings of a task's parts, shared by the durable frontiers: the
// SQLite journal stores bindings and path as blobs, Redis stores a whole task
// as one string. Internal to the library.

#ifndef FANOUT_SRC_TASK_CODEC_H_
#define FANOUT_SRC_TASK_CODEC_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fanout/frontier.h"

namespace fanout::internal {

// (name, value) pairs as length-prefixed strings: [u32 len][bytes]...
std::string EncodePairs(const std::vector<std::pair<std::string, std::string>>& pairs);
// False if `data` is not such an encoding.
bool DecodePairs(std::string_view data, std::vector<std::pair<std::string, std::string>>* pairs);

// Everything of a task but its id and not_before (which the store keeps on
// its own), and its attempts' process-local times: parent, level, page,
// attempts, throttles, url, bindings, path. Format version 1.
std::string EncodeTask(const Task& task);
// Fills every field EncodeTask wrote; false if `data` is not such an encoding.
bool DecodeTask(std::string_view data, Task* task);

}  // namespace fanout::internal

#endif  // FANOUT_SRC_TASK_CODEC_H_
