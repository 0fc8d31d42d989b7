// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <mutex>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "simdjson.h"

namespace fanout {
namespace {

// Longest sanitized path component kept whole; longer ones are cut and hashed.
constexpr size_t kMaxComponentBytes = 200;

// ---------------------------------------------------------------------------
// Errors.

// strerror_r comes in a GNU flavour (returns the message) and an XSI one
// (fills the buffer); these overloads accept either.
[[maybe_unused]] std::string StrerrorResult(const char* message, const char* /*buffer*/) {
  return message;
}
[[maybe_unused]] std::string StrerrorResult(int rc, const char* buffer) {
  return rc == 0 ? std::string(buffer) : std::string("unknown error");
}

std::string ErrnoMessage(int error_number) {
  char buffer[256] = {};
  return StrerrorResult(strerror_r(error_number, buffer, sizeof(buffer)), buffer);
}

// "<what>: <strerror>", with the status code that matches the errno (ENOSPC is
// ResourceExhausted, EACCES PermissionDenied, ENOENT NotFound, ...).
absl::Status ErrnoStatus(int error_number, std::string_view what) {
  return absl::Status(absl::ErrnoToStatusCode(error_number),
                      absl::StrFormat("%s: %s", what, ErrnoMessage(error_number)));
}

// A record key fit for an error message: one line, bytes escaped.
std::string Printable(std::string_view s) {
  constexpr size_t kMaxShown = 300;
  std::string shown = absl::CHexEscape(absl::string_view(s.data(), std::min(s.size(), kMaxShown)));
  if (s.size() > kMaxShown) shown += "...";
  return shown;
}

// ---------------------------------------------------------------------------
// POSIX I/O.

// Writes all of `data` to `fd`, retrying EINTR and short writes. Returns 0 or
// the errno of the failure; `*written` is what reached the file either way.
int WriteAll(int fd, std::string_view data, size_t* written) {
  *written = 0;
  while (*written < data.size()) {
    const ssize_t n = ::write(fd, data.data() + *written, data.size() - *written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // write(2) made no progress; do not spin
    *written += static_cast<size_t>(n);
  }
  return 0;
}

// fsync, retrying EINTR. Returns 0 or errno.
int FsyncFd(int fd) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

// close; EINTR is not retried (on Linux the descriptor is gone either way).
// Returns 0 or errno.
int CloseFd(int fd) { return ::close(fd) == 0 || errno == EINTR ? 0 : errno; }

// Opens `path` for appending (creating it, 0644); returns the fd and the size
// of the file.
absl::StatusOr<std::pair<int, int64_t>> OpenForAppend(const std::string& path,
                                                      std::string_view what) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int error = errno;
    return ErrnoStatus(error, absl::StrFormat("%s: cannot open \"%s\"", what, path));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return ErrnoStatus(error, absl::StrFormat("%s: cannot stat \"%s\"", what, path));
  }
  // Not only regular files: a pipe or /dev/stdout works too (their size
  // counts as 0, and a partial line cannot be cut back off them).
  return std::make_pair(fd, S_ISREG(st.st_mode) ? static_cast<int64_t>(st.st_size) : int64_t{0});
}

// ---------------------------------------------------------------------------
// UTF-8 and JSON text.

// If a well-formed UTF-8 sequence of 2-4 bytes starts at s[i] (s[i] >= 0x80),
// returns its length. Otherwise returns 0 and sets *bad_length to the length
// of the maximal ill-formed subpart there (>= 1), the unit Unicode recommends
// replacing with one U+FFFD (Unicode 15, section 3.9, Table 3-7).
size_t Utf8SequenceLength(std::string_view s, size_t i, size_t* bad_length) {
  const auto lead = static_cast<unsigned char>(s[i]);
  size_t need;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2;
  } else if (lead == 0xE0) {
    need = 3;
    low = 0xA0;  // no overlong forms
  } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
    need = 3;
  } else if (lead == 0xED) {
    need = 3;
    high = 0x9F;  // no surrogates
  } else if (lead == 0xF0) {
    need = 4;
    low = 0x90;  // no overlong forms
  } else if (lead >= 0xF1 && lead <= 0xF3) {
    need = 4;
  } else if (lead == 0xF4) {
    need = 4;
    high = 0x8F;  // nothing above U+10FFFF
  } else {
    *bad_length = 1;  // continuation byte, C0, C1 or F5-FF
    return 0;
  }
  size_t k = 1;
  for (; k < need && i + k < s.size(); ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    const bool ok = k == 1 ? (b >= low && b <= high) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
  }
  if (k == need) return need;
  *bad_length = k;
  return 0;
}

// Appends `s` as a JSON string literal. Control characters (and DEL) are
// escaped; each ill-formed UTF-8 subpart becomes U+FFFD, so the result is
// valid JSON and valid UTF-8 whatever the input bytes.
void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t bad = 0;
      const size_t n = Utf8SequenceLength(s, i, &bad);
      if (n > 0) {
        out->append(s.data() + i, n);
        i += n;
      } else {
        out->append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
        i += bad;
      }
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

// Appends an RFC 3339 UTC timestamp with milliseconds as a JSON string, or
// null for an infinite time (which has no RFC 3339 form).
void AppendJsonTime(std::string* out, absl::Time t) {
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) {
    out->append("null");
    return;
  }
  out->push_back('"');
  out->append(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()));
  out->push_back('"');
}

// Appends [["level","id"],...].
void AppendJsonPath(std::string* out,
                    const std::vector<std::pair<std::string, std::string>>& path) {
  out->push_back('[');
  for (size_t i = 0; i < path.size(); ++i) {
    if (i > 0) out->push_back(',');
    out->push_back('[');
    AppendJsonString(out, path[i].first);
    out->push_back(',');
    AppendJsonString(out, path[i].second);
    out->push_back(']');
  }
  out->push_back(']');
}

// ---------------------------------------------------------------------------
// Path components.

// FNV-1a, 64 bits: stable across runs, builds and platforms, which the on-disk
// layout needs (absl::Hash is seeded per process). Not collision-resistant
// against an adversary; it only has to separate long ids sharing a prefix.
uint64_t StableHash64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// True if `name` can be used as one path component as is.
bool IsPlainName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

std::string JoinPath(const std::string& root, const std::vector<std::string>& components) {
  std::string path = root;
  for (const std::string& c : components) {
    if (!path.empty() && path.back() != '/') path.push_back('/');
    path += c;
  }
  return path;
}

}  // namespace

// ---------------------------------------------------------------------------
// Record

std::string Record::Key() const {
  std::string key;
  for (const auto& [level, id] : path) {
    if (!key.empty()) key.push_back('/');
    absl::StrAppend(&key, level, "/", id);
  }
  return key;
}

// ---------------------------------------------------------------------------
// CallbackSink

absl::Status CallbackSink::Write(const Record& record) {
  if (closed_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("callback sink: write of record \"%s\" after Close", Printable(record.Key())));
  }
  return callback_(record);
}

absl::Status CallbackSink::Close() {
  if (!closed_) {
    closed_ = true;
    callback_ = nullptr;  // release whatever the callback holds
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// JsonLinesSink

// Decides whether a body is one valid JSON document and, if so, appends it
// with the whitespace between tokens removed. Reuses one simdjson parser (and
// its buffers) across records.
class JsonLinesSink::JsonValidator {
 public:
  bool AppendIfJson(std::string_view body, std::string* out) {
    if (body.empty()) return false;
    // Full validation: structure, strings (no raw control characters), UTF-8,
    // numbers. parse() copies the input into its own padded buffer.
    if (parser_.parse(body.data(), body.size()).error() != simdjson::SUCCESS) return false;
    minified_.resize(body.size() + simdjson::SIMDJSON_PADDING);
    size_t length = 0;
    if (simdjson::minify(body.data(), body.size(), minified_.data(), length) !=
        simdjson::SUCCESS) {
      return false;
    }
    const std::string_view compact(minified_.data(), length);
    // Valid JSON has no raw line breaks inside strings and minify removed the
    // rest; checked anyway because a line break would split the record.
    if (compact.find_first_of("\r\n") != std::string_view::npos) return false;
    out->append(compact);
    return true;
  }

 private:
  simdjson::dom::parser parser_;
  std::string minified_;
};

JsonLinesSink::JsonLinesSink(std::string path, int fd, int64_t offset)
    : path_(std::move(path)),
      fd_(fd),
      offset_(offset),
      validator_(std::make_unique<JsonValidator>()) {}

absl::StatusOr<std::unique_ptr<JsonLinesSink>> JsonLinesSink::Open(const std::string& path) {
  auto opened = OpenForAppend(path, "json lines sink");
  if (!opened.ok()) return opened.status();
  return std::unique_ptr<JsonLinesSink>(new JsonLinesSink(path, opened->first, opened->second));
}

JsonLinesSink::~JsonLinesSink() { Close().IgnoreError(); }

absl::Status JsonLinesSink::TruncateTo(int64_t offset) {
  if (fd_ < 0) {
    return absl::FailedPreconditionError(absl::StrFormat("json lines sink: truncate of \"%s\" after Close", path_));
  }
  if (offset < 0 || offset > offset_) {
    return absl::OutOfRangeError(absl::StrFormat(
        "json lines sink: cannot cut \"%s\" back to %d bytes: it holds %d", path_, offset, offset_));
  }
  if (::ftruncate(fd_, offset) != 0 || ::fsync(fd_) != 0) {
    const int error = errno;
    return absl::ErrnoToStatus(error, absl::StrFormat("json lines sink: cannot cut \"%s\" back to %d bytes",
                                                      path_, offset));
  }
  offset_ = offset;
  return absl::OkStatus();
}

absl::Status JsonLinesSink::Write(const Record& record) {
  const std::string key = record.Key();
  if (fd_ < 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "json lines sink: write of record \"%s\" to \"%s\" after Close", Printable(key), path_));
  }
  buffer_.clear();
  buffer_.append("{\"key\":");
  AppendJsonString(&buffer_, key);
  buffer_.append(",\"path\":");
  AppendJsonPath(&buffer_, record.path);
  buffer_.append(",\"url\":");
  AppendJsonString(&buffer_, record.url);
  absl::StrAppend(&buffer_, ",\"status\":", record.status, ",\"fetched_at\":");
  AppendJsonTime(&buffer_, record.fetched_at);
  const size_t before_body = buffer_.size();
  buffer_.append(",\"body\":");
  if (!validator_->AppendIfJson(record.body, &buffer_)) {
    buffer_.resize(before_body);
    buffer_.append(",\"body_encoding\":\"text\",\"body\":");
    AppendJsonString(&buffer_, record.body);
  }
  buffer_.append("}\n");

  size_t written = 0;
  const int error = WriteAll(fd_, buffer_, &written);
  if (error != 0) {
    std::string what = absl::StrFormat(
        "json lines sink: cannot append record \"%s\" (%d bytes) to \"%s\" at offset %d",
        Printable(key), buffer_.size(), path_, offset_);
    // Cut a partial line back off so the file stays whole lines.
    if (written > 0 && ::ftruncate(fd_, offset_) != 0) {
      absl::StrAppend(&what, " (and cutting the partial line back off failed: ",
                      ErrnoMessage(errno), ")");
    }
    return ErrnoStatus(error, what);
  }
  offset_ += static_cast<int64_t>(buffer_.size());
  return absl::OkStatus();
}

absl::Status JsonLinesSink::Flush() {
  if (fd_ < 0) return absl::OkStatus();  // Close already made it durable
  if (const int error = FsyncFd(fd_); error != 0) {
    return ErrnoStatus(error, absl::StrFormat("json lines sink: cannot fsync \"%s\"", path_));
  }
  return absl::OkStatus();
}

absl::Status JsonLinesSink::Close() {
  if (fd_ < 0) return absl::OkStatus();
  absl::Status status = Flush();
  const int error = CloseFd(fd_);
  fd_ = -1;
  if (status.ok() && error != 0) {
    status = ErrnoStatus(error, absl::StrFormat("json lines sink: cannot close \"%s\"", path_));
  }
  return status;
}

// ---------------------------------------------------------------------------
// FileTreeSink

std::string FileTreeSink::SanitizeComponent(std::string_view raw) {
  if (raw.empty()) return "%";  // no escape produces a lone '%'
  if (raw == ".") return "%2E";
  if (raw == "..") return "%2E%2E";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  // The longest prefix of `out` that ends between two units (an escape, a
  // UTF-8 sequence, a byte) and fits kMaxComponentBytes.
  size_t cut = 0;
  auto escape = [&out](unsigned char c) {
    out.push_back('%');
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  };
  size_t i = 0;
  while (i < raw.size()) {
    const auto c = static_cast<unsigned char>(raw[i]);
    if (c >= 0x80) {
      size_t bad = 0;
      const size_t n = Utf8SequenceLength(raw, i, &bad);
      if (n > 0) {
        out.append(raw.data() + i, n);
        i += n;
      } else {
        escape(c);  // byte by byte, so decoding gives the same bytes back
        ++i;
      }
    } else if (c < 0x20 || c == 0x7F || c == '%' || c == '/' || c == '\\') {
      escape(c);
      ++i;
    } else {
      out.push_back(static_cast<char>(c));
      ++i;
    }
    if (out.size() <= kMaxComponentBytes) cut = out.size();
  }
  if (out.size() <= kMaxComponentBytes) return out;
  out.resize(cut);
  absl::StrAppend(&out, "~", absl::StrFormat("%016x", StableHash64(raw)));
  return out;
}

std::string FileTreeSink::RelativePath(const Record& record) const {
  std::vector<std::string> components;
  components.reserve(record.path.size() * 2 + 1);
  for (const auto& [level, id] : record.path) {
    components.push_back(SanitizeComponent(level));
    components.push_back(SanitizeComponent(id));
  }
  components.push_back(options_.leaf_name);
  return JoinPath("", components);
}

absl::StatusOr<std::unique_ptr<FileTreeSink>> FileTreeSink::Open(Options options) {
  if (options.root.empty()) {
    return absl::InvalidArgumentError("file tree sink: root is empty");
  }
  if (!IsPlainName(options.leaf_name)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "file tree sink: leaf_name \"%s\" is not one plain path component",
        Printable(options.leaf_name)));
  }
  // mkdir -p root. The root is configuration, not API data, so symlinks in it
  // are followed; everything below it is walked with openat and O_NOFOLLOW.
  for (size_t pos = 1; pos <= options.root.size(); ++pos) {
    if (pos < options.root.size() && options.root[pos] != '/') continue;
    if (options.root[pos - 1] == '/') continue;  // "a//b" or a trailing '/'
    const std::string prefix = options.root.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      const int error = errno;
      return ErrnoStatus(error, absl::StrFormat(
          "file tree sink: cannot create directory \"%s\" (for root \"%s\")", prefix,
          options.root));
    }
  }
  int fd;
  do {
    fd = ::open(options.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int error = errno;
    return ErrnoStatus(error, absl::StrFormat("file tree sink: cannot open root directory \"%s\"",
                                              options.root));
  }
  return std::unique_ptr<FileTreeSink>(new FileTreeSink(std::move(options), fd));
}

FileTreeSink::~FileTreeSink() { Close().IgnoreError(); }

absl::Status FileTreeSink::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  const int error = CloseFd(root_fd_);
  root_fd_ = -1;
  if (error != 0) {
    return ErrnoStatus(error, absl::StrFormat("file tree sink: cannot close root directory \"%s\"",
                                              options_.root));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> FileTreeSink::OpenDirectory(const std::vector<std::string>& components) {
  int dir = ::fcntl(root_fd_, F_DUPFD_CLOEXEC, 0);
  if (dir < 0) {
    const int error = errno;
    return ErrnoStatus(error, absl::StrFormat("file tree sink: cannot duplicate root \"%s\"",
                                              options_.root));
  }
  std::string shown = options_.root;  // the directory `dir` is, for messages
  for (const std::string& component : components) {
    if (!shown.empty() && shown.back() != '/') shown.push_back('/');
    shown += component;
    bool created = false;
    if (::mkdirat(dir, component.c_str(), 0755) == 0) {
      created = true;
    } else if (errno != EEXIST) {
      const int error = errno;
      ::close(dir);
      return ErrnoStatus(error,
                         absl::StrFormat("file tree sink: cannot create directory \"%s\"", shown));
    }
    // O_NOFOLLOW: a symlink here (planted, or raced in after mkdirat) fails
    // instead of redirecting the write outside root.
    int next;
    do {
      next = ::openat(dir, component.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } while (next < 0 && errno == EINTR);
    if (next < 0) {
      const int error = errno;
      ::close(dir);
      if (error == ELOOP || error == ENOTDIR) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "file tree sink: \"%s\" is a symlink or not a directory; refusing to write through it "
            "(%s)",
            shown, ErrnoMessage(error)));
      }
      return ErrnoStatus(error,
                         absl::StrFormat("file tree sink: cannot open directory \"%s\"", shown));
    }
    // A new directory entry is durable only once its parent is synced.
    int sync_error = 0;
    if (created && options_.fsync) sync_error = FsyncFd(dir);
    ::close(dir);
    dir = next;
    if (sync_error != 0) {
      ::close(dir);
      return ErrnoStatus(sync_error, absl::StrFormat(
          "file tree sink: cannot fsync the directory holding new directory \"%s\"", shown));
    }
  }
  return dir;
}

absl::Status FileTreeSink::WriteFileAtomically(int dir_fd, const std::string& dir_path,
                                               const std::string& name,
                                               std::string_view contents) {
  const std::string target = JoinPath(dir_path, {name});
  std::string temp;
  int fd = -1;
  // O_EXCL never reuses a leftover temp file (say, from a crashed run with the
  // same pid); on a clash take the next number.
  for (int attempt = 0; fd < 0; ++attempt) {
    temp = absl::StrFormat("%s.tmp.%d.%d", name, static_cast<int64_t>(::getpid()),
                           temp_counter_++);
    fd = ::openat(dir_fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0644);
    if (fd >= 0) break;
    const int error = errno;
    if (error == EINTR || (error == EEXIST && attempt < 100)) continue;
    return ErrnoStatus(error, absl::StrFormat("file tree sink: cannot create temp file \"%s\"",
                                              JoinPath(dir_path, {temp})));
  }
  auto fail = [&](int error, std::string_view step) {
    if (fd >= 0) ::close(fd);
    ::unlinkat(dir_fd, temp.c_str(), 0);
    return ErrnoStatus(error, absl::StrFormat("file tree sink: cannot write \"%s\" (%d bytes): %s",
                                              target, contents.size(), step));
  };
  size_t written = 0;
  if (const int error = WriteAll(fd, contents, &written); error != 0) {
    return fail(error, "write");
  }
  if (options_.fsync) {
    if (const int error = FsyncFd(fd); error != 0) return fail(error, "fsync");
  }
  const int close_error = CloseFd(fd);
  fd = -1;
  if (close_error != 0) return fail(close_error, "close");
  // renameat replaces a file, or a symlink itself (never its target), at `name`.
  if (::renameat(dir_fd, temp.c_str(), dir_fd, name.c_str()) != 0) {
    const int error = errno;
    return fail(error, "rename");
  }
  if (options_.fsync) {
    if (const int error = FsyncFd(dir_fd); error != 0) {
      return ErrnoStatus(error, absl::StrFormat(
          "file tree sink: cannot fsync the directory of \"%s\"", target));
    }
  }
  return absl::OkStatus();
}

absl::Status FileTreeSink::Write(const Record& record) {
  if (closed_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("file tree sink: write of record \"%s\" under \"%s\" after Close",
                        Printable(record.Key()), options_.root));
  }
  std::vector<std::string> components;
  components.reserve(record.path.size() * 2);
  for (const auto& [level, id] : record.path) {
    components.push_back(SanitizeComponent(level));
    if (components.back() == options_.leaf_name) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "file tree sink: level name \"%s\" of record \"%s\" equals leaf_name; its directories "
          "would clash with leaf files",
          Printable(level), Printable(record.Key())));
    }
    components.push_back(SanitizeComponent(id));
  }
  absl::StatusOr<int> dir = OpenDirectory(components);
  if (!dir.ok()) return dir.status();
  absl::Status status =
      WriteFileAtomically(*dir, JoinPath(options_.root, components), options_.leaf_name,
                          record.body);
  ::close(*dir);
  return status;
}

absl::Status FileTreeSink::WriteMarker(
    const std::vector<std::pair<std::string, std::string>>& prefix, const std::string& name,
    const std::string& contents) {
  if (closed_) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "file tree sink: marker \"%s\" under \"%s\" after Close", Printable(name), options_.root));
  }
  if (!IsPlainName(name)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "file tree sink: marker name \"%s\" is not one plain path component", Printable(name)));
  }
  std::vector<std::string> components;
  components.reserve(prefix.size() * 2);
  for (const auto& [level, id] : prefix) {
    components.push_back(SanitizeComponent(level));
    components.push_back(SanitizeComponent(id));
  }
  absl::StatusOr<int> dir = OpenDirectory(components);
  if (!dir.ok()) return dir.status();
  absl::Status status =
      WriteFileAtomically(*dir, JoinPath(options_.root, components), name, contents);
  ::close(*dir);
  return status;
}

// ---------------------------------------------------------------------------
// DeadLetterLog

absl::StatusOr<std::unique_ptr<DeadLetterLog>> DeadLetterLog::Open(const std::string& path) {
  auto opened = OpenForAppend(path, "dead letter log");
  if (!opened.ok()) return opened.status();
  return std::unique_ptr<DeadLetterLog>(new DeadLetterLog(path, opened->first));
}

DeadLetterLog::~DeadLetterLog() { Close().IgnoreError(); }

absl::Status DeadLetterLog::Append(const DeadLetter& letter) {
  std::string line;
  line.append("{\"level\":");
  AppendJsonString(&line, letter.level);
  line.append(",\"path\":");
  AppendJsonPath(&line, letter.path);
  line.append(",\"url\":");
  AppendJsonString(&line, letter.url);
  absl::StrAppend(&line, ",\"attempts\":", letter.attempts, ",\"last_status\":",
                  letter.last_status, ",\"reason\":");
  AppendJsonString(&line, letter.reason);
  line.append(",\"at\":");
  AppendJsonTime(&line, letter.at);
  line.append("}\n");

  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("dead letter log: append to \"%s\" after Close", path_));
  }
  size_t written = 0;
  if (const int error = WriteAll(fd_, line, &written); error != 0) {
    std::string what = absl::StrFormat("dead letter log: cannot append %d bytes to \"%s\"",
                                       line.size(), path_);
    // Cut a partial line back off (the mutex makes this the only writer here).
    struct stat st;
    if (written > 0 && (::fstat(fd_, &st) != 0 ||
                        ::ftruncate(fd_, st.st_size - static_cast<off_t>(written)) != 0)) {
      absl::StrAppend(&what, " (and cutting the partial line back off failed: ",
                      ErrnoMessage(errno), ")");
    }
    return ErrnoStatus(error, what);
  }
  if (const int error = FsyncFd(fd_); error != 0) {
    return ErrnoStatus(error, absl::StrFormat("dead letter log: cannot fsync \"%s\"", path_));
  }
  return absl::OkStatus();
}

absl::Status DeadLetterLog::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) return absl::OkStatus();
  const int error = CloseFd(fd_);
  fd_ = -1;
  if (error != 0) {
    return ErrnoStatus(error, absl::StrFormat("dead letter log: cannot close \"%s\"", path_));
  }
  return absl::OkStatus();
}

}  // namespace fanout
