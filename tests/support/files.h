// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Small file helpers shared by the tests that check what a crawl wrote.

#ifndef FANOUT_TESTS_SUPPORT_FILES_H_
#define FANOUT_TESTS_SUPPORT_FILES_H_

#include <filesystem>
#include <fstream>
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

}  // namespace fanout::testing

#endif  // FANOUT_TESTS_SUPPORT_FILES_H_
