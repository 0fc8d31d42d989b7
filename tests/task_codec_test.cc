// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// The task encodings the durable frontiers store: round trips, and every
// truncation of a valid encoding is refused rather than misread.

#include "task_codec.h"

#include <string>

#include "gtest/gtest.h"

namespace fanout::internal {
namespace {

Task Sample() {
  Task task;
  task.parent = 0x1234567890ULL;
  task.level = 3;
  task.page = 7;
  task.attempts.attempts = 2;
  task.attempts.throttles = 5;
  task.url = "https://api.example.com/troops/t1/warriors?cursor=a%20b";
  task.bindings = {{"troop", "t1"}, {"warrior", std::string("w\0x", 3)}};
  task.path = {{"troops", "t1"}, {"warriors", "../../etc"}};
  return task;
}

TEST(TaskCodec, RoundTripsEveryStoredField) {
  const Task in = Sample();
  Task out;
  ASSERT_TRUE(DecodeTask(EncodeTask(in), &out));
  EXPECT_EQ(out.parent, in.parent);
  EXPECT_EQ(out.level, in.level);
  EXPECT_EQ(out.page, in.page);
  EXPECT_EQ(out.attempts.attempts, 2);
  EXPECT_EQ(out.attempts.throttles, 5);
  EXPECT_EQ(out.url, in.url);
  EXPECT_EQ(out.bindings, in.bindings);
  EXPECT_EQ(out.path, in.path);
}

// RedisFrontier's redrive script clears the attempts by position: bytes 18
// to 25 (1-based) of the encoding.
TEST(TaskCodec, AttemptsSitAtTheDocumentedOffset) {
  const std::string encoded = EncodeTask(Sample());
  std::string cleared = encoded.substr(0, 17) + std::string(8, '\0') + encoded.substr(25);
  Task out;
  ASSERT_TRUE(DecodeTask(cleared, &out));
  EXPECT_EQ(out.attempts.attempts, 0);
  EXPECT_EQ(out.attempts.throttles, 0);
  EXPECT_EQ(out.page, 7u);
  EXPECT_EQ(out.url, Sample().url);
}

TEST(TaskCodec, RefusesTruncatedOrForeignData) {
  const std::string encoded = EncodeTask(Sample());
  Task out;
  for (size_t n = 0; n < encoded.size(); ++n) {
    EXPECT_FALSE(DecodeTask(encoded.substr(0, n), &out)) << "accepted the first " << n << " bytes";
  }
  EXPECT_FALSE(DecodeTask(encoded + "x", &out));
  EXPECT_FALSE(DecodeTask("\x02" + encoded.substr(1), &out));  // another format version
  std::vector<std::pair<std::string, std::string>> pairs;
  EXPECT_TRUE(DecodePairs(EncodePairs({{"a", "b"}}), &pairs));
  EXPECT_FALSE(DecodePairs(std::string("\x05\x00\x00\x00" "ab", 6), &pairs));
}

}  // namespace
}  // namespace fanout::internal
