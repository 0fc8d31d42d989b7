// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// fanout-mock-api: the mock vendor API as a process of its own, the same as
// `fanout mock-api` (see tools/fanout/mock_api_command.cc for its options).

#include <string>
#include <vector>

#include "commands.h"

int main(int argc, char** argv) {
  return fanout::cli::MockApiCommand(std::vector<std::string>(argv + 1, argv + argc), "fanout-mock-api");
}
