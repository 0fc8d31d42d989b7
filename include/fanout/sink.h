// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.
//
// Sink: where leaf documents go. Writes are idempotent per record key: a task
// replayed after a crash overwrites its record instead of duplicating it.
// Sinks know nothing about where records came from.

#ifndef FANOUT_SINK_H_
#define FANOUT_SINK_H_

#include <mutex>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <functional>
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fanout {

// One leaf document.
struct Record {
  // The ids on the path from the root, one per listing level, each with that
  // level's name (e.g. {"troops","t1"}, {"warriors","w2"}, {"groups","g3"}).
  // Together they are the record's key.
  std::vector<std::pair<std::string, std::string>> path;
  std::string url;        // as fetched (no credentials)
  int status = 0;         // HTTP status
  absl::Time fetched_at;  // wall-clock time of the response
  std::string body;       // the document as received

  // The record's key, "troops/t1/warriors/w2/groups/g3", for idempotency and
  // logs (values as given, not sanitized).
  std::string Key() const;
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Writes one record; writing the same key again replaces it. Called from one
  // thread at a time. An error fails the task (it is retried or dead-lettered).
  virtual absl::Status Write(const Record& record) = 0;
  // Makes everything written so far durable (as the sink defines it).
  virtual absl::Status Flush() = 0;
  // Flushes and releases resources; further writes fail with
  // FailedPrecondition. Idempotent.
  virtual absl::Status Close() = 0;
};

// Calls a function for every record (for hosts that handle records in memory).
// The callback's error is returned from Write as is.
class CallbackSink final : public Sink {
 public:
  explicit CallbackSink(std::function<absl::Status(const Record&)> callback)
      : callback_(std::move(callback)) {}
  absl::Status Write(const Record& record) override;
  absl::Status Flush() override { return absl::OkStatus(); }
  absl::Status Close() override;

 private:
  std::function<absl::Status(const Record&)> callback_;
  bool closed_ = false;
};

// Appends one JSON object a line to a file:
//   {"key":"troops/t1/warriors/w2","path":[["troops","t1"],["warriors","w2"]],
//    "url":"...","status":200,"fetched_at":"2026-11-23T19:08:00.123Z",
//    "body":<the document>}
// "path" is an array of [level name, id] pairs, in order (unambiguous even if
// a level name repeats). The body is embedded as JSON (whitespace outside
// strings removed, so the line stays one line; numbers kept byte for byte)
// when it is one valid JSON document, else as a JSON string preceded by
// "body_encoding":"text". Documents simdjson cannot represent (integers beyond
// 64 bits, numbers beyond double range, nesting deeper than 1024) count as
// text. In every string, control characters are escaped and each ill-formed
// UTF-8 sequence is replaced by U+FFFD, so every line is valid JSON and valid
// UTF-8. "fetched_at" is RFC 3339 UTC with milliseconds (null if infinite).
// Lines are written whole: a failed write is cut back off the file. Idempotency
// across crash and resume is provided with the journal (the file is cut back to
// the last committed offset); within one run each key is written once.
// Not thread-safe (one thread at a time, as Sink requires).
class JsonLinesSink final : public Sink {
 public:
  // Opens (creating with mode 0644, or appending to) `path`. Errors name the
  // path and the system error.
  static absl::StatusOr<std::unique_ptr<JsonLinesSink>> Open(const std::string& path);
  // Closes the file (as Close(), ignoring its error).
  ~JsonLinesSink() override;
  // Appends one line with a single write loop (retrying EINTR and short
  // writes). Costs one JSON validation of the body plus one write(2).
  absl::Status Write(const Record& record) override;
  absl::Status Flush() override;  // fsync(2)
  absl::Status Close() override;
  // Bytes in the file: its size when opened plus bytes written since (the
  // committed offset the journal records, once flushed).
  int64_t offset() const { return offset_; }
  const std::string& path() const { return path_; }
  // Cuts the file back to `offset` bytes (a resumed crawl drops the lines the
  // journal never recorded as committed; they are written again). Errors
  // name the path; OutOfRange if `offset` is beyond the end.
  absl::Status TruncateTo(int64_t offset);

 private:
  class JsonValidator;  // wraps a reused simdjson parser (defined in sink.cc)
  JsonLinesSink(std::string path, int fd, int64_t offset);
  std::string path_;
  int fd_;
  int64_t offset_;
  std::string buffer_;
  std::unique_ptr<JsonValidator> validator_;
};

// Writes each record to its own file under `root`, at a path built from its
// ids like an object-store prefix:
//   root/troops/t1/warriors/w2/groups/g3/data.json
// (each level contributes "<collection>/<id>"; the leaf file is `leaf_name`).
// Written atomically: a temp file "<leaf>.tmp.<pid>.<n>" in the same
// directory (O_EXCL, 0644), fsync, rename over the target, fsync of the
// directory; writing the same key again replaces the file. Directories are
// created as needed (0755). Path components come from API data and are
// sanitized (see SanitizeComponent), and the tree is walked with openat from a
// descriptor of `root` without following symlinks, so no id, and no symlink
// planted under root, can make a write land outside `root`.
// Not thread-safe (one thread at a time, as Sink requires).
class FileTreeSink final : public Sink {
 public:
  struct Options {
    std::string root;                 // created if missing (mkdir -p, 0755)
    // The leaf file's name: one plain component (no '/', NUL, "." or "..").
    std::string leaf_name = "data.json";
    bool fsync = true;                // fsync file and directory on each write
  };
  // Creates `root` if needed and opens it. InvalidArgument for an empty root or
  // an unsafe leaf_name; otherwise errors name the path and the system error.
  static absl::StatusOr<std::unique_ptr<FileTreeSink>> Open(Options options);
  // Closes the root descriptor.
  ~FileTreeSink() override;
  // Writes record.body to root/RelativePath(record). InvalidArgument if a
  // level name sanitizes to leaf_name (its directory would clash with a leaf
  // file); a path component that exists as a symlink or non-directory fails
  // the write (FailedPrecondition). Other errors name the path and errno.
  absl::Status Write(const Record& record) override;
  // Nothing to do: with options.fsync each Write is durable when it returns.
  absl::Status Flush() override { return absl::OkStatus(); }
  absl::Status Close() override;

  // The path a record is written to (relative to root), after sanitizing:
  // "<level>/<id>/.../<leaf_name>".
  std::string RelativePath(const Record& record) const;
  // Writes a marker file `name` (e.g. "_SUCCESS") holding `contents` in the
  // directory of a path prefix (created if needed), atomically: used when a
  // subtree completes. `name` must be one plain component (InvalidArgument).
  absl::Status WriteMarker(const std::vector<std::pair<std::string, std::string>>& prefix,
                           const std::string& name, const std::string& contents);

  // One path component made safe (exposed for tests and for other sinks):
  //  - '%', '/', '\\', bytes 0x00-0x1F and 0x7F, and bytes that are not part
  //    of well-formed UTF-8 become "%XX" (uppercase hex); printable ASCII and
  //    well-formed UTF-8 are kept;
  //  - "" becomes "%", "." becomes "%2E", ".." becomes "%2E%2E" (no escape
  //    produces a lone "%", and a raw "%2E" becomes "%252E");
  //  - a result over 200 bytes is cut to at most 200 bytes (never inside an
  //    escape or a UTF-8 sequence) and suffixed with "~" and 16 hex digits of
  //    a stable 64-bit hash (FNV-1a) of `raw`: longer than 200 bytes, at
  //    most 217.
  // Escaped results (<= 200 bytes) decode back to `raw`, and hashed results
  // are longer than any escaped one, so distinct inputs give distinct names
  // except for 64-bit hash collisions between long inputs. Never empty, never
  // "." or "..", never contains '/' or NUL. The hash is part of the on-disk
  // layout and must not change.
  static std::string SanitizeComponent(std::string_view raw);

 private:
  FileTreeSink(Options options, int root_fd) : options_(std::move(options)), root_fd_(root_fd) {}
  // Opens (creating) the directory root/<components...>; returns an owned fd.
  absl::StatusOr<int> OpenDirectory(const std::vector<std::string>& components);
  // Atomically replaces `name` in the directory `dir_fd` (shown as `dir_path`).
  absl::Status WriteFileAtomically(int dir_fd, const std::string& dir_path,
                                   const std::string& name, std::string_view contents);
  Options options_;
  int root_fd_ = -1;
  uint64_t temp_counter_ = 0;
  bool closed_ = false;
};

// A task that could not be completed: kept for inspection and redrive. Never
// holds request headers (they may carry secrets).
struct DeadLetter {
  std::string level;        // level name
  std::vector<std::pair<std::string, std::string>> path;  // ids bound so far
  std::string url;
  int attempts = 0;
  int last_status = 0;      // 0 if no response
  std::string reason;       // the retry policy's or the engine's reason
  absl::Time at;            // wall-clock time
};

// Appends dead letters as JSON lines to a file, one object a line:
//   {"level":"warriors","path":[["troops","t1"]],"url":"...","attempts":5,
//    "last_status":503,"reason":"...","at":"2026-11-23T19:08:00.123Z"}
// Strings are escaped as in JsonLinesSink. Thread-safe.
class DeadLetterLog {
 public:
  // Opens (creating with mode 0644, or appending to) `path`. Errors name the
  // path and the system error.
  static absl::StatusOr<std::unique_ptr<DeadLetterLog>> Open(const std::string& path);
  // Closes the file (as Close(), ignoring its error).
  ~DeadLetterLog();
  // Appends one whole line and fsyncs it (dead letters are rare and must not
  // be lost). FailedPrecondition after Close.
  absl::Status Append(const DeadLetter& letter);
  // Closes the file. Idempotent.
  absl::Status Close();

 private:
  DeadLetterLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  const std::string path_;
  std::mutex mu_;
  int fd_ /* guarded by mu_ */;
};

}  // namespace fanout

#endif  // FANOUT_SINK_H_
