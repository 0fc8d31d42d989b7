// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// The crash test: crawl the mock API (faults on) with a journal, kill -9 the
// crawling process at seeded random moments, resume each time, and check at
// the end that nothing was lost or written twice: every deliverable leaf is
// in the JSON lines file exactly once and in the file tree, only poison
// leaves are dead, and listings were hardly ever fetched again.

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mock_api_server.h"
#include "support/files.h"

extern char** environ;

namespace fanout {
namespace {

namespace fs = std::filesystem;

using testing::Lines;

std::string Field(const std::string& line, const std::string& name) {
  const std::string key = "\"" + name + "\":\"";
  const size_t start = line.find(key);
  if (start == std::string::npos) return "";
  const size_t from = start + key.size();
  return line.substr(from, line.find('"', from) - from);
}

pid_t Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

TEST(KillAndResume, NothingLostNothingTwice) {
  const fs::path dir = testing::FreshDir("kill_resume");
  mock::MockApiOptions api;
  api.troops = 30;
  api.warriors = 4;
  api.groups = 5;  // 600 leaves, ~760 requests
  api.page_size = 10;
  api.error_rate = 0.02;
  api.reset_rate = 0.01;
  api.truncate_rate = 0.01;
  api.poison_leaf_permille = 15;
  api.seed = 20261123;
  api.request_log_path = (dir / "requests.log").string();
  auto server = mock::MockApiServer::Start(api);
  ASSERT_TRUE(server.ok()) << server.status();

  const std::vector<std::string> command = {
      FANOUT_CRAWLER, "--base_url=" + (*server)->base_url(), "--rate=200", "--burst=2", "--max_in_flight=8",
      "--out=" + (dir / "tree").string(), "--jsonl=" + (dir / "records.jsonl").string(),
      "--dead_letters=" + (dir / "dead.jsonl").string(), "--journal=" + (dir / "journal.db").string()};

  std::mt19937_64 rng(7);
  int kills = 0;
  int exit_code = -1;
  for (int run = 0; run < 40 && exit_code != 0; ++run) {
    const pid_t pid = Spawn(command);
    ASSERT_GT(pid, 0);
    int status = 0;
    if (kills < 12) {
      // Kill it at a random moment, unless it finished first.
      const auto at = std::chrono::steady_clock::now() + std::chrono::milliseconds(60 + rng() % 240);
      while (std::chrono::steady_clock::now() < at && waitpid(pid, &status, WNOHANG) == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      if (waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ++kills;
        continue;
      }
    } else {
      waitpid(pid, &status, 0);  // the last runs go to the end (bounded by ctest's timeout)
    }
    ASSERT_TRUE(WIFEXITED(status)) << "run " << run;
    exit_code = WEXITSTATUS(status);
    ASSERT_TRUE(exit_code == 0 || exit_code == 3) << "run " << run << " exited " << exit_code;
  }
  ASSERT_EQ(exit_code, 0) << "the crawl never finished";
  EXPECT_GE(kills, 10);

  // Every deliverable leaf exactly once in the JSON lines file.
  const std::vector<std::string> poison = (*server)->poison_leaves();
  const std::set<std::string> poison_set(poison.begin(), poison.end());
  ASSERT_FALSE(poison.empty()) << "the seed should poison some leaves";
  std::set<std::string> keys;
  for (const std::string& line : Lines((dir / "records.jsonl").string())) {
    const std::string key = Field(line, "key");
    ASSERT_FALSE(key.empty()) << "a cut or malformed line: " << line.substr(0, 120);
    EXPECT_TRUE(keys.insert(key).second) << "written twice: " << key;
    EXPECT_FALSE(poison_set.contains(key)) << key;
  }
  EXPECT_EQ(static_cast<int64_t>(keys.size()), (*server)->expected_leaves() - static_cast<int64_t>(poison.size()));
  // And in the tree.
  int64_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir / "tree")) {
    if (entry.is_regular_file() && entry.path().filename() == "data.json") ++files;
  }
  EXPECT_EQ(files, static_cast<int64_t>(keys.size()));
  // Only the poison leaves are dead (a dead letter may be logged again if a
  // kill came before its commit, so compare sets).
  std::set<std::string> dead;
  for (const std::string& line : Lines((dir / "dead.jsonl").string())) {
    const std::string url = Field(line, "url");
    const size_t at = url.find("/troops/");
    dead.insert(url.substr(at + 1, url.rfind("/data") - at - 1));
  }
  EXPECT_EQ(dead, poison_set);

  // Listings answered 200 more than once: only those whose completion a kill
  // caught before its commit, at most the requests in flight at each kill.
  std::map<std::string, int> listing_successes;
  for (const std::string& line : Lines(api.request_log_path)) {
    if (line.find(" 200") == std::string::npos || line.find("/data ") != std::string::npos) continue;
    ++listing_successes[line.substr(0, line.rfind(' '))];
  }
  int refetched = 0;
  for (const auto& [target, count] : listing_successes) refetched += count - 1;
  EXPECT_LE(refetched, kills * 8) << "listings fetched again after their completion";
  std::printf("kill and resume: %d kills, %zu documents, %zu dead, %d listing pages fetched again\n", kills,
              keys.size(), dead.size(), refetched);
}

}  // namespace
}  // namespace fanout
