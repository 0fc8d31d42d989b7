// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Small file helpers shared by the tests that check what a crawl wrote.

#ifndef FANOUT_TESTS_SUPPORT_FILES_H_
#define FANOUT_TESTS_SUPPORT_FILES_H_

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fanout::testing {

// An empty directory under the test temp dir, named after `name`.
inline std::string FreshDir(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / ("fanout_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// The lines of a text file (none if it does not exist).
inline std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The record keys in a JSON lines file of records: the "key" field of each
// line (a multiset, so duplicates show).
inline std::multiset<std::string> RecordKeys(const std::string& path) {
  std::multiset<std::string> keys;
  for (const std::string& line : Lines(path)) {
    const size_t start = line.find("\"key\":\"");
    if (start == std::string::npos) continue;
    const size_t from = start + 7;
    keys.insert(line.substr(from, line.find('"', from) - from));
  }
  return keys;
}

// Files named `name` anywhere under `root` (0 if it does not exist).
inline size_t CountFiles(const std::string& root, const std::string& name) {
  size_t n = 0;
  if (!std::filesystem::exists(root)) return 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    n += entry.path().filename() == name;
  }
  return n;
}

}  // namespace fanout::testing

#endif  // FANOUT_TESTS_SUPPORT_FILES_H_
