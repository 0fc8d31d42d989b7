// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"

namespace fanout {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

// A fresh directory per test, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir();
    if (!pattern.empty() && pattern.back() != '/') pattern.push_back('/');
    pattern += "sink_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << pattern;
    dir_ = fs::canonical(pattern).string();
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string Path(const std::string& name) const { return absl::StrCat(dir_, "/", name); }

  std::string dir_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void WriteFile(const std::string& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
}

// Splits on '\n'; the file must end with one.
std::vector<std::string> ReadLines(const std::string& path) {
  const std::string contents = ReadFile(path);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < contents.size()) {
    const size_t end = contents.find('\n', start);
    EXPECT_NE(end, std::string::npos) << "last line of " << path << " has no newline";
    if (end == std::string::npos) break;
    lines.push_back(contents.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// Every regular file under `root` (symlinks are listed, not followed).
std::vector<fs::path> FilesUnder(const std::string& root) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_directory() || entry.is_symlink()) files.push_back(entry.path());
  }
  return files;
}

Record MakeRecord(std::vector<std::pair<std::string, std::string>> path, std::string body) {
  Record record;
  record.path = std::move(path);
  record.url = "https://api.example.com/x";
  record.status = 200;
  record.fetched_at = absl::FromCivil(absl::CivilSecond(2026, 11, 23, 19, 8, 0), absl::UTCTimeZone()) +
                      absl::Milliseconds(123);
  record.body = std::move(body);
  return record;
}

// Parses one JSON line with simdjson (strict: structure, escapes, UTF-8).
class JsonLine {
 public:
  explicit JsonLine(const std::string& line) {
    error_ = parser_.parse(line).get(doc_);
  }
  bool ok() const { return error_ == simdjson::SUCCESS; }
  std::string error() const { return simdjson::error_message(error_); }
  simdjson::dom::element doc() const { return doc_; }
  std::string String(std::string_view key) const {
    std::string_view value;
    EXPECT_EQ(doc_[key].get(value), simdjson::SUCCESS) << key;
    return std::string(value);
  }
  int64_t Int(std::string_view key) const {
    int64_t value = -1;
    EXPECT_EQ(doc_[key].get(value), simdjson::SUCCESS) << key;
    return value;
  }
  bool Has(std::string_view key) const { return doc_[key].error() == simdjson::SUCCESS; }
  std::vector<std::string> Keys() const {
    std::vector<std::string> keys;
    simdjson::dom::object object;
    EXPECT_EQ(doc_.get(object), simdjson::SUCCESS);
    for (const auto field : object) keys.emplace_back(field.key);
    return keys;
  }
  std::vector<std::pair<std::string, std::string>> Path() const {
    std::vector<std::pair<std::string, std::string>> path;
    simdjson::dom::array pairs;
    EXPECT_EQ(doc_["path"].get(pairs), simdjson::SUCCESS);
    for (const auto pair : pairs) {
      std::string_view level, id;
      EXPECT_EQ(pair.at(0).get(level), simdjson::SUCCESS);
      EXPECT_EQ(pair.at(1).get(id), simdjson::SUCCESS);
      path.emplace_back(level, id);
    }
    return path;
  }

 private:
  simdjson::dom::parser parser_;
  simdjson::dom::element doc_;
  simdjson::error_code error_;
};

// Undoes SanitizeComponent for names that were not hashed.
std::string Unescape(const std::string& name) {
  if (name == "%") return "";
  std::string raw;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '%') {
      EXPECT_LE(i + 2, name.size() - 1) << name;
      raw.push_back(static_cast<char>(std::stoi(name.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      raw.push_back(name[i]);
    }
  }
  return raw;
}

// ---------------------------------------------------------------------------
// Record

TEST(RecordTest, KeyJoinsLevelsAndIdsAsGiven) {
  EXPECT_EQ(MakeRecord({{"troops", "t1"}, {"warriors", "w2"}, {"groups", "g3"}}, "").Key(),
            "troops/t1/warriors/w2/groups/g3");
  EXPECT_EQ(MakeRecord({{"troops", "a/b"}}, "").Key(), "troops/a/b");  // not sanitized
  EXPECT_EQ(MakeRecord({}, "").Key(), "");
}

// ---------------------------------------------------------------------------
// CallbackSink

TEST(CallbackSinkTest, PassesRecordsAndErrorsThroughAndFailsAfterClose) {
  std::vector<std::string> seen;
  CallbackSink sink([&seen](const Record& record) -> absl::Status {
    seen.push_back(record.Key() + "=" + record.body);
    if (record.body == "bad") return absl::DataLossError("no room for bad");
    return absl::OkStatus();
  });
  EXPECT_TRUE(sink.Write(MakeRecord({{"troops", "t1"}}, "one")).ok());
  const absl::Status error = sink.Write(MakeRecord({{"troops", "t2"}}, "bad"));
  EXPECT_EQ(error.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(error.message(), "no room for bad");
  EXPECT_TRUE(sink.Flush().ok());
  EXPECT_TRUE(sink.Close().ok());
  const absl::Status closed = sink.Write(MakeRecord({{"troops", "t3"}}, "late"));
  EXPECT_EQ(closed.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(closed.message(), HasSubstr("troops/t3"));
  EXPECT_TRUE(sink.Close().ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"troops/t1=one", "troops/t2=bad"}));
}

// ---------------------------------------------------------------------------
// JsonLinesSink

using JsonLinesSinkTest = TempDirTest;

TEST_F(JsonLinesSinkTest, EmbedsJsonBodyCompactedOnOneLine) {
  const std::string path = Path("out.jsonl");
  auto sink = JsonLinesSink::Open(path);
  ASSERT_TRUE(sink.ok()) << sink.status();
  const std::string body = "{\n  \"a\": [1, 2.50, \"x y\", 12345678901234567],\n  \"b\": {\"c\": null}\n}\n";
  ASSERT_TRUE((*sink)->Write(MakeRecord({{"troops", "t1"}, {"warriors", "w2"}}, body)).ok());
  ASSERT_TRUE((*sink)->Close().ok());

  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "{\"key\":\"troops/t1/warriors/w2\",\"path\":[[\"troops\",\"t1\"],[\"warriors\",\"w2\"]],"
            "\"url\":\"https://api.example.com/x\",\"status\":200,"
            "\"fetched_at\":\"2026-11-23T19:08:00.123Z\","
            "\"body\":{\"a\":[1,2.50,\"x y\",12345678901234567],\"b\":{\"c\":null}}}");
  JsonLine json(lines[0]);
  ASSERT_TRUE(json.ok()) << json.error();
  EXPECT_FALSE(json.Has("body_encoding"));
  simdjson::dom::object body_object;
  EXPECT_EQ(json.doc()["body"].get(body_object), simdjson::SUCCESS);
}

TEST_F(JsonLinesSinkTest, ScalarJsonBodyIsEmbeddedToo) {
  const std::string path = Path("out.jsonl");
  auto sink = JsonLinesSink::Open(path);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Write(MakeRecord({{"t", "1"}}, " 42 ")).ok());
  ASSERT_TRUE((*sink)->Write(MakeRecord({{"t", "2"}}, "\"s\"")).ok());
  ASSERT_TRUE((*sink)->Close().ok());
  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr(",\"body\":42}"));
  EXPECT_THAT(lines[1], HasSubstr(",\"body\":\"s\"}"));
}

TEST_F(JsonLinesSinkTest, NonJsonBodyIsTextString) {
  const std::string path = Path("out.jsonl");
  auto sink = JsonLinesSink::Open(path);
  ASSERT_TRUE(sink.ok()) << sink.status();
  const std::vector<std::string> bodies = {
      "hello, world", "", "{} {}", "{\"a\":1", "{\"a\":\"x\ny\"}", "nul", "[1,2]]", "1e400",
  };
  for (const std::string& body : bodies) {
    ASSERT_TRUE((*sink)->Write(MakeRecord({{"t", "1"}}, body)).ok()) << body;
  }
  ASSERT_TRUE((*sink)->Close().ok());
  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), bodies.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    JsonLine json(lines[i]);
    ASSERT_TRUE(json.ok()) << json.error() << ": " << lines[i];
    EXPECT_EQ(json.String("body_encoding"), "text") << lines[i];
    EXPECT_EQ(json.String("body"), bodies[i]) << lines[i];
  }
}

TEST_F(JsonLinesSinkTest, ControlCharactersAndInvalidUtf8KeepTheLineValidJson) {
  const std::string path = Path("out.jsonl");
  auto sink = JsonLinesSink::Open(path);
  ASSERT_TRUE(sink.ok()) << sink.status();
  const std::string body = std::string("a\0b\x01\n\r\t\x1f\x7f\"\\", 11) +
                           "\xff" "c\xc3\x28" "\xe2\x82" "d\xed\xa0\x80" "\xce\xb4\xe2\x9c\x93";
  Record record = MakeRecord({{"troops", std::string("t\n\0\xfe", 4)}}, body);
  record.url = "https://h/\x02\x80";
  ASSERT_TRUE((*sink)->Write(record).ok());
  ASSERT_TRUE((*sink)->Close().ok());

  const std::string contents = ReadFile(path);
  ASSERT_EQ(std::count(contents.begin(), contents.end(), '\n'), 1) << contents;
  for (const char c : contents.substr(0, contents.size() - 1)) {
    EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f) << static_cast<int>(c);
  }
  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  JsonLine json(lines[0]);  // simdjson also validates UTF-8
  ASSERT_TRUE(json.ok()) << json.error() << ": " << lines[0];
  EXPECT_EQ(json.String("body_encoding"), "text");
  const std::string replacement = "\xef\xbf\xbd";
  // Each maximal ill-formed subpart becomes one U+FFFD: \xff; \xc3 (then '(');
  // \xe2\x82 (truncated); \xed then \xa0 then \x80 (a surrogate is ill-formed
  // from its second byte).
  EXPECT_EQ(json.String("body"), std::string("a\0b\x01\n\r\t\x1f\x7f\"\\", 11) + replacement +
                                     "c" + replacement + "(" + replacement + "d" + replacement +
                                     replacement + replacement + "\xce\xb4\xe2\x9c\x93");
  EXPECT_EQ(json.Path(), (std::vector<std::pair<std::string, std::string>>{
                             {"troops", std::string("t\n\0", 3) + replacement}}));
  EXPECT_EQ(json.String("url"), "https://h/\x02" + replacement);
  EXPECT_THAT(lines[0], HasSubstr("a\\u0000b\\u0001\\n\\r\\t\\u001f\\u007f\\\"\\\\"));
}

TEST_F(JsonLinesSinkTest, OffsetGrowsByLineSizesAndReopeningAppends) {
  const std::string path = Path("out.jsonl");
  std::string first_two;
  {
    auto sink = JsonLinesSink::Open(path);
    ASSERT_TRUE(sink.ok()) << sink.status();
    EXPECT_EQ((*sink)->offset(), 0);
    ASSERT_TRUE((*sink)->Write(MakeRecord({{"t", "1"}}, "{\"n\":1}")).ok());
    const int64_t after_one = (*sink)->offset();
    EXPECT_EQ(after_one, static_cast<int64_t>(ReadFile(path).size()));
    ASSERT_TRUE((*sink)->Write(MakeRecord({{"t", "2"}}, "plain")).ok());
    ASSERT_TRUE((*sink)->Flush().ok());
    first_two = ReadFile(path);
    EXPECT_EQ((*sink)->offset(), static_cast<int64_t>(first_two.size()));
    const std::vector<std::string> lines = ReadLines(path);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(after_one, static_cast<int64_t>(lines[0].size() + 1));
    ASSERT_TRUE((*sink)->Close().ok());
  }
  auto reopened = JsonLinesSink::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->offset(), static_cast<int64_t>(first_two.size()));
  ASSERT_TRUE((*reopened)->Write(MakeRecord({{"t", "3"}}, "[3]")).ok());
  ASSERT_TRUE((*reopened)->Close().ok());
  const std::string all = ReadFile(path);
  EXPECT_EQ(all.substr(0, first_two.size()), first_two);
  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 3u);
  JsonLine third(lines[2]);
  ASSERT_TRUE(third.ok()) << third.error();
  EXPECT_EQ(third.String("key"), "t/3");
  EXPECT_EQ((*reopened)->offset(), static_cast<int64_t>(all.size()));
}

TEST_F(JsonLinesSinkTest, OpenErrorsNameThePath) {
  const std::string missing = Path("no/such/dir/out.jsonl");
  auto in_missing_dir = JsonLinesSink::Open(missing);
  ASSERT_FALSE(in_missing_dir.ok());
  EXPECT_EQ(in_missing_dir.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(in_missing_dir.status().message(),
            absl::StrCat("json lines sink: cannot open \"", missing,
                         "\": No such file or directory"));

  WriteFile(Path("file"), "x");
  const std::string under_file = Path("file/out.jsonl");
  auto parent_is_file = JsonLinesSink::Open(under_file);
  ASSERT_FALSE(parent_is_file.ok());
  EXPECT_THAT(parent_is_file.status().message(), HasSubstr("\"" + under_file + "\""));
  EXPECT_THAT(parent_is_file.status().message(), HasSubstr("Not a directory"));

  auto directory = JsonLinesSink::Open(dir_);
  ASSERT_FALSE(directory.ok());
  EXPECT_THAT(directory.status().message(), HasSubstr("\"" + dir_ + "\""));
  EXPECT_THAT(directory.status().message(), HasSubstr("Is a directory"));
}

TEST_F(JsonLinesSinkTest, FullDiskFailsWithPathAndReason) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  auto sink = JsonLinesSink::Open("/dev/full");
  ASSERT_TRUE(sink.ok()) << sink.status();
  const absl::Status status = (*sink)->Write(MakeRecord({{"troops", "t1"}}, "{}"));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("\"/dev/full\""));
  EXPECT_THAT(status.message(), HasSubstr("troops/t1"));
  EXPECT_THAT(status.message(), HasSubstr("No space left on device"));
  EXPECT_EQ((*sink)->offset(), 0);
}

TEST_F(JsonLinesSinkTest, WriteAfterCloseFailsAndCloseIsIdempotent) {
  const std::string path = Path("out.jsonl");
  auto sink = JsonLinesSink::Open(path);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_TRUE((*sink)->Close().ok());
  const absl::Status status = (*sink)->Write(MakeRecord({{"t", "1"}}, "{}"));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr(path));
  EXPECT_EQ(ReadFile(path), "");
}

TEST_F(JsonLinesSinkTest, InfiniteFetchTimeIsNull) {
  const std::string path = Path("out.jsonl");
  auto sink = JsonLinesSink::Open(path);
  ASSERT_TRUE(sink.ok()) << sink.status();
  Record record = MakeRecord({{"t", "1"}}, "{}");
  record.fetched_at = absl::InfiniteFuture();
  ASSERT_TRUE((*sink)->Write(record).ok());
  ASSERT_TRUE((*sink)->Close().ok());
  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  JsonLine json(lines[0]);
  ASSERT_TRUE(json.ok()) << json.error();
  EXPECT_TRUE(json.doc()["fetched_at"].is_null());
}

// ---------------------------------------------------------------------------
// FileTreeSink

TEST(SanitizeComponentTest, EscapesUnsafeBytesAndSpecialNames) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"t1", "t1"},
      {"", "%"},
      {".", "%2E"},
      {"..", "%2E%2E"},
      {"...", "..."},
      {".hidden", ".hidden"},
      {"a/b", "a%2Fb"},
      {"a\\b", "a%5Cb"},
      {"../../etc/passwd", "..%2F..%2Fetc%2Fpasswd"},
      {std::string("\0", 1), "%00"},
      {"\n", "%0A"},
      {"\x7f", "%7F"},
      {"50% off", "50%25 off"},
      {"%2E", "%252E"},
      {"%", "%25"},
      {"~", "~"},
      {"\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae-\xe2\x9c\x93",
       "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae-\xe2\x9c\x93"},  // δοκιμή-✓
      {"\xff\xc3(", "%FF%C3("},
      {"\xed\xa0\x80", "%ED%A0%80"},  // a UTF-16 surrogate is not UTF-8
  };
  for (const auto& [raw, want] : cases) {
    EXPECT_EQ(FileTreeSink::SanitizeComponent(raw), want) << raw;
  }
}

TEST(SanitizeComponentTest, IsReversibleAndSafeForRandomBytes) {
  std::mt19937 random(20261123);  // seeded: deterministic
  std::set<std::string> names;
  for (int i = 0; i < 5000; ++i) {
    std::string raw(random() % 12, '\0');
    for (char& c : raw) {
      // Mostly dangerous bytes: controls, '.', '/', '%', '\\', high bytes.
      static constexpr char kBytes[] = {'\0', '\n', '.', '/', '%', '\\', 'a', '~',
                                        '\x7f', '\xc3', '\xa9', '\xe2', '\x9c', '\xff'};
      c = random() % 4 == 0 ? static_cast<char>(random() % 256)
                            : kBytes[random() % sizeof(kBytes)];
    }
    const std::string name = FileTreeSink::SanitizeComponent(raw);
    EXPECT_FALSE(name.empty());
    EXPECT_NE(name, ".");
    EXPECT_NE(name, "..");
    EXPECT_EQ(name.find('/'), std::string::npos) << name;
    EXPECT_EQ(name.find('\0'), std::string::npos) << name;
    EXPECT_TRUE(simdjson::validate_utf8(name.data(), name.size())) << name;
    EXPECT_EQ(Unescape(name), raw) << name;
    names.insert(name);
  }
  EXPECT_GT(names.size(), 4000u);  // not a check of injectivity, just of the test
}

TEST(SanitizeComponentTest, LongNamesAreCutAtABoundaryAndHashed) {
  const std::string a300(300, 'a');
  const std::string long_name = FileTreeSink::SanitizeComponent(a300);
  ASSERT_EQ(long_name.size(), 217u);
  EXPECT_EQ(long_name.substr(0, 201), std::string(200, 'a') + "~");
  EXPECT_EQ(long_name.find_first_not_of("0123456789abcdef", 201), std::string::npos);
  // Same long prefix, different ids: different names.
  EXPECT_NE(FileTreeSink::SanitizeComponent(std::string(299, 'a') + "b"), long_name);
  EXPECT_NE(FileTreeSink::SanitizeComponent(std::string(301, 'a')), long_name);
  // Stable: the on-disk layout depends on it.
  EXPECT_EQ(FileTreeSink::SanitizeComponent(a300), long_name);
  // Exactly 200 bytes stays as is; hashed names are always longer, so a short
  // id spelling a hashed name cannot collide with it.
  EXPECT_EQ(FileTreeSink::SanitizeComponent(std::string(200, 'a')), std::string(200, 'a'));
  EXPECT_EQ(FileTreeSink::SanitizeComponent(long_name.substr(0, 200)), long_name.substr(0, 200));

  // Not inside an escape: 199 'a' then "/" would end with "%2" at byte 200.
  const std::string escaped = FileTreeSink::SanitizeComponent(std::string(199, 'a') + "//");
  EXPECT_EQ(escaped.substr(0, 200), std::string(199, 'a') + "~");
  // Not inside a UTF-8 sequence: 'x' then 2-byte "δ"s puts one across byte 200.
  std::string greek = "x";
  for (int i = 0; i < 150; ++i) greek += "\xce\xb4";
  const std::string cut = FileTreeSink::SanitizeComponent(greek);
  EXPECT_GT(cut.size(), 200u);
  EXPECT_LE(cut.size(), 217u);
  EXPECT_EQ(cut.substr(0, 200), greek.substr(0, 199) + "~");
  EXPECT_TRUE(simdjson::validate_utf8(cut.data(), cut.size()));
}

using FileTreeSinkTest = TempDirTest;

TEST_F(FileTreeSinkTest, WritesTheExpectedPathAndContent) {
  const std::string root = Path("out/tree");  // created, with its parent
  auto sink = FileTreeSink::Open({.root = root});
  ASSERT_TRUE(sink.ok()) << sink.status();
  const Record record = MakeRecord({{"troops", "t1"}, {"warriors", "w2"}, {"groups", "g3"}}, "{\"x\":1}");
  EXPECT_EQ((*sink)->RelativePath(record), "troops/t1/warriors/w2/groups/g3/data.json");
  ASSERT_TRUE((*sink)->Write(record).ok());
  EXPECT_EQ(ReadFile(root + "/troops/t1/warriors/w2/groups/g3/data.json"), "{\"x\":1}");
  EXPECT_EQ(FilesUnder(root).size(), 1u);
  struct stat st;
  ASSERT_EQ(::stat((root + "/troops/t1/warriors/w2/groups/g3/data.json").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_TRUE((*sink)->Flush().ok());
  EXPECT_TRUE((*sink)->Close().ok());
}

TEST_F(FileTreeSinkTest, SameKeyTwiceLeavesOneFileWithTheLastContentAndNoTempFiles) {
  auto sink = FileTreeSink::Open({.root = dir_, .leaf_name = "doc.txt", .fsync = false});
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Write(MakeRecord({{"troops", "t1"}}, "first, and longer")).ok());
  ASSERT_TRUE((*sink)->Write(MakeRecord({{"troops", "t1"}}, "second")).ok());
  ASSERT_TRUE((*sink)->Write(MakeRecord({{"troops", "t2"}}, "other")).ok());
  ASSERT_TRUE((*sink)->Write(MakeRecord({}, "at the root")).ok());
  EXPECT_THAT(FilesUnder(dir_),
              UnorderedElementsAreArray({fs::path(dir_ + "/troops/t1/doc.txt"),
                                         fs::path(dir_ + "/troops/t2/doc.txt"),
                                         fs::path(dir_ + "/doc.txt")}));
  EXPECT_EQ(ReadFile(dir_ + "/troops/t1/doc.txt"), "second");
  EXPECT_EQ(ReadFile(dir_ + "/doc.txt"), "at the root");
}

TEST_F(FileTreeSinkTest, HostileIdsStayInsideRootAndStayDistinct) {
  const std::string root = Path("root");
  const std::string passwd_before = ReadFile("/etc/passwd");
  auto sink = FileTreeSink::Open({.root = root});
  ASSERT_TRUE(sink.ok()) << sink.status();
  const std::vector<std::string> ids = {
      "..", "../../etc/passwd", "a/b", "", ".", std::string("\0", 1), std::string("x\0y", 3),
      "\n", std::string(300, 'z'), std::string(299, 'z') + "y", "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae-\xe2\x9c\x93",
      "50% off", "50%25 off", "%2E", "%", "a\\b", "/", "//", "/etc", "..\\..", "\xff", "%FF",
      "t1", "T1", "-rf", "~", " ", ".git",
  };
  std::vector<Record> records;
  for (size_t i = 0; i < ids.size(); ++i) {
    records.push_back(MakeRecord({{"troops", ids[i]}}, "record " + std::to_string(i)));
    // The same ids as level names, two deep.
    records.push_back(MakeRecord({{ids[i], ids[(i + 1) % ids.size()]}, {"..", ids[i]}},
                                 "nested " + std::to_string(i)));
  }
  for (const Record& record : records) {
    ASSERT_TRUE((*sink)->Write(record).ok()) << (*sink)->RelativePath(record);
  }

  // Only `root` was created in the test directory, and /etc/passwd is intact.
  std::vector<std::string> top;
  for (const auto& entry : fs::directory_iterator(dir_)) top.push_back(entry.path().string());
  EXPECT_EQ(top, std::vector<std::string>{root});
  EXPECT_EQ(ReadFile("/etc/passwd"), passwd_before);

  // Every file is a regular file strictly inside root; one per record.
  const std::string canonical_root = fs::canonical(root).string() + "/";
  std::set<std::string> contents;
  const std::vector<fs::path> files = FilesUnder(root);
  for (const fs::path& file : files) {
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(file))) << file;
    EXPECT_EQ(fs::canonical(file).string().rfind(canonical_root, 0), 0u) << file;
    EXPECT_EQ(file.filename(), "data.json") << file;
    contents.insert(ReadFile(file.string()));
  }
  EXPECT_EQ(files.size(), records.size());
  EXPECT_EQ(contents.size(), records.size());  // distinct keys, distinct files
  for (const Record& record : records) {
    EXPECT_EQ(ReadFile(root + "/" + (*sink)->RelativePath(record)), record.body)
        << (*sink)->RelativePath(record);
  }
}

TEST_F(FileTreeSinkTest, SymlinksPlantedUnderRootAreNotFollowed) {
  const std::string root = Path("root");
  const std::string outside = Path("outside");
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  WriteFile(outside + "/victim", "original");
  auto sink = FileTreeSink::Open({.root = root});
  ASSERT_TRUE(sink.ok()) << sink.status();

  // A level directory that is a symlink to a directory outside root.
  ASSERT_EQ(::symlink(outside.c_str(), (root + "/troops").c_str()), 0);
  const absl::Status at_level = (*sink)->Write(MakeRecord({{"troops", "t1"}}, "evil"));
  EXPECT_EQ(at_level.code(), absl::StatusCode::kFailedPrecondition) << at_level;
  EXPECT_THAT(at_level.message(), HasSubstr("\"" + root + "/troops\""));

  // An id directory that is a symlink, one level down.
  ASSERT_TRUE((*sink)->Write(MakeRecord({{"groups", "g1"}}, "fine")).ok());
  ASSERT_EQ(::symlink(outside.c_str(), (root + "/groups/g2").c_str()), 0);
  EXPECT_FALSE((*sink)->Write(MakeRecord({{"groups", "g2"}}, "evil")).ok());

  // The leaf file itself is a symlink to a file outside: it is replaced, not
  // written through.
  ASSERT_EQ(::mkdir((root + "/groups/g3").c_str(), 0755), 0);
  ASSERT_EQ(::symlink((outside + "/victim").c_str(), (root + "/groups/g3/data.json").c_str()), 0);
  ASSERT_TRUE((*sink)->Write(MakeRecord({{"groups", "g3"}}, "safe")).ok());
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(root + "/groups/g3/data.json")));
  EXPECT_EQ(ReadFile(root + "/groups/g3/data.json"), "safe");

  // A marker under a symlinked prefix fails too.
  EXPECT_FALSE((*sink)->WriteMarker({{"troops", "t1"}}, "_SUCCESS", "").ok());

  EXPECT_EQ(ReadFile(outside + "/victim"), "original");
  std::vector<std::string> outside_entries;
  for (const auto& entry : fs::directory_iterator(outside)) {
    outside_entries.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(outside_entries, std::vector<std::string>{"victim"});
}

TEST_F(FileTreeSinkTest, PathComponentThatIsAFileFailsNamingIt) {
  auto sink = FileTreeSink::Open({.root = dir_});
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_EQ(::mkdir((dir_ + "/troops").c_str(), 0755), 0);
  WriteFile(dir_ + "/troops/t1", "a file");
  const absl::Status status = (*sink)->Write(MakeRecord({{"troops", "t1"}}, "x"));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("\"" + dir_ + "/troops/t1\""));
  EXPECT_EQ(ReadFile(dir_ + "/troops/t1"), "a file");
}

TEST_F(FileTreeSinkTest, WriteMarkerWritesAtomicallyUnderThePrefix) {
  auto sink = FileTreeSink::Open({.root = dir_});
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Write(MakeRecord({{"troops", "t1"}, {"warriors", "w1"}}, "{}")).ok());
  ASSERT_TRUE((*sink)->WriteMarker({{"troops", "t1"}}, "_SUCCESS", "").ok());
  ASSERT_TRUE((*sink)->WriteMarker({{"troops", "t1"}}, "_SUCCESS", "done: 1 record").ok());
  ASSERT_TRUE((*sink)->WriteMarker({}, "_SUCCESS", "all").ok());
  ASSERT_TRUE((*sink)->WriteMarker({{"troops", "../x"}}, "_SUCCESS", "new dir").ok());
  EXPECT_EQ(ReadFile(dir_ + "/troops/t1/_SUCCESS"), "done: 1 record");
  EXPECT_EQ(ReadFile(dir_ + "/_SUCCESS"), "all");
  EXPECT_EQ(ReadFile(dir_ + "/troops/..%2Fx/_SUCCESS"), "new dir");
  EXPECT_EQ(FilesUnder(dir_).size(), 4u);  // the record, three markers, no temp files

  for (const std::string& bad : std::vector<std::string>{"", ".", "..", "a/b", std::string("a\0b", 3)}) {
    const absl::Status status = (*sink)->WriteMarker({{"troops", "t1"}}, bad, "x");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(FileTreeSinkTest, CloseMakesWritesFailAndIsIdempotent) {
  auto sink = FileTreeSink::Open({.root = dir_});
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_TRUE((*sink)->Close().ok());
  const absl::Status write = (*sink)->Write(MakeRecord({{"troops", "t1"}}, "x"));
  EXPECT_EQ(write.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(write.message(), HasSubstr("troops/t1"));
  EXPECT_EQ((*sink)->WriteMarker({}, "_SUCCESS", "").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(FilesUnder(dir_).empty());
}

TEST_F(FileTreeSinkTest, OpenValidatesOptionsAndNamesThePath) {
  EXPECT_EQ(FileTreeSink::Open({.root = ""}).status().code(), absl::StatusCode::kInvalidArgument);
  for (const std::string& bad : std::vector<std::string>{"", ".", "..", "a/b"}) {
    EXPECT_EQ(FileTreeSink::Open({.root = dir_, .leaf_name = bad}).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  WriteFile(Path("file"), "x");
  const auto under_file = FileTreeSink::Open({.root = Path("file/root")});
  ASSERT_FALSE(under_file.ok());
  EXPECT_THAT(under_file.status().message(), HasSubstr("\"" + Path("file/root") + "\""));
  EXPECT_THAT(under_file.status().message(), HasSubstr("Not a directory"));
}

TEST_F(FileTreeSinkTest, LevelNamedLikeTheLeafIsRejected) {
  auto sink = FileTreeSink::Open({.root = dir_});
  ASSERT_TRUE(sink.ok()) << sink.status();
  const absl::Status status = (*sink)->Write(MakeRecord({{"data.json", "1"}}, "x"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("data.json"));
}

// ---------------------------------------------------------------------------
// DeadLetterLog

DeadLetter MakeLetter(int n) {
  DeadLetter letter;
  letter.level = "warriors";
  letter.path = {{"troops", "t" + std::to_string(n)}, {"warriors", "w\n\"" + std::to_string(n)}};
  letter.url = "https://api.example.com/troops/t" + std::to_string(n) + "/warriors";
  letter.attempts = 5;
  letter.last_status = 503;
  letter.reason = "retries exhausted: 503 Service Unavailable";
  letter.at = absl::FromUnixMillis(1795460880123);  // 2026-11-23T19:08:00.123Z
  return letter;
}

using DeadLetterLogTest = TempDirTest;

TEST_F(DeadLetterLogTest, AppendsOneValidJsonLinePerLetter) {
  const std::string path = Path("dead.jsonl");
  auto log = DeadLetterLog::Open(path);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->Append(MakeLetter(1)).ok());
  DeadLetter no_response = MakeLetter(2);
  no_response.last_status = 0;
  no_response.path.clear();
  ASSERT_TRUE((*log)->Append(no_response).ok());
  ASSERT_TRUE((*log)->Close().ok());
  EXPECT_TRUE((*log)->Close().ok());
  EXPECT_EQ((*log)->Append(MakeLetter(3)).code(), absl::StatusCode::kFailedPrecondition);

  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0],
            "{\"level\":\"warriors\",\"path\":[[\"troops\",\"t1\"],[\"warriors\",\"w\\n\\\"1\"]],"
            "\"url\":\"https://api.example.com/troops/t1/warriors\",\"attempts\":5,"
            "\"last_status\":503,\"reason\":\"retries exhausted: 503 Service Unavailable\","
            "\"at\":\"2026-11-23T19:08:00.123Z\"}");
  for (const std::string& line : lines) {
    JsonLine json(line);
    ASSERT_TRUE(json.ok()) << json.error() << ": " << line;
    // Exactly these fields: nothing header-like can appear.
    EXPECT_EQ(json.Keys(), (std::vector<std::string>{"level", "path", "url", "attempts",
                                                     "last_status", "reason", "at"}));
    EXPECT_EQ(json.Int("attempts"), 5);
    EXPECT_EQ(json.String("at"), "2026-11-23T19:08:00.123Z");
  }
  JsonLine first(lines[0]);
  EXPECT_EQ(first.Path(), MakeLetter(1).path);
  JsonLine second(lines[1]);
  EXPECT_EQ(second.Int("last_status"), 0);
  EXPECT_TRUE(second.Path().empty());

  // Reopening appends.
  auto reopened = DeadLetterLog::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  ASSERT_TRUE((*reopened)->Append(MakeLetter(4)).ok());
  ASSERT_TRUE((*reopened)->Close().ok());
  EXPECT_EQ(ReadLines(path).size(), 3u);
}

TEST_F(DeadLetterLogTest, ConcurrentAppendsKeepLinesWhole) {
  const std::string path = Path("dead.jsonl");
  auto log = DeadLetterLog::Open(path);
  ASSERT_TRUE(log.ok()) << log.status();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 25; ++i) EXPECT_TRUE((*log)->Append(MakeLetter(t * 100 + i)).ok());
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE((*log)->Close().ok());
  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 100u);
  std::set<std::string> urls;
  for (const std::string& line : lines) {
    JsonLine json(line);
    ASSERT_TRUE(json.ok()) << json.error() << ": " << line;
    urls.insert(json.String("url"));
  }
  EXPECT_EQ(urls.size(), 100u);
}

TEST_F(DeadLetterLogTest, ErrorsNameThePath) {
  WriteFile(Path("file"), "x");
  const std::string under_file = Path("file/dead.jsonl");
  auto log = DeadLetterLog::Open(under_file);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().message(),
            absl::StrCat("dead letter log: cannot open \"", under_file, "\": Not a directory"));

  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  auto full = DeadLetterLog::Open("/dev/full");
  ASSERT_TRUE(full.ok()) << full.status();
  const absl::Status status = (*full)->Append(MakeLetter(1));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("\"/dev/full\""));
  EXPECT_THAT(status.message(), HasSubstr("No space left on device"));
}

}  // namespace
}  // namespace fanout
