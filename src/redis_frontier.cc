// Copyright 2026 The fanout Authors. Licensed under the Apache License 2.0.

#include "fanout/redis_frontier.h"

#include <unistd.h>

#include <algorithm>
#include <random>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "task_codec.h"

namespace fanout {
namespace {

// Keys of crawl C, all under the hash tag {C} (one Redis Cluster slot):
//   fanout:{C}:meta     hash: _fingerprint, _levels, _seeded, _workers, and
//                       the host's entries (the spec a worker joins with)
//   fanout:{C}:task     hash: id -> encoded task (internal::EncodeTask);
//                       dropped when the task is done
//   fanout:{C}:state    hash: id -> state letter and level: "p3" pending,
//                       "l3" leased, "d3" done, "x3" dead
//   fanout:{C}:q:<L>    list: ready ids of level L, oldest first
//   fanout:{C}:wait     zset: pending ids not ready before score (server us)
//   fanout:{C}:lease    zset: leased ids, by lease expiry (server us)
//   fanout:{C}:owner    hash: leased id -> worker id
//   fanout:{C}:deliv    hash: id -> deliveries since its last outcome
//   fanout:{C}:dead     hash: dead id -> reason
//   fanout:{C}:count    hash: disc, pending, leased, done, dead, and per
//                       level L: p<L> pending, l<L> leased, d<L> done,
//                       x<L> dead
// and fanout:crawls, the set of every crawl id.
//
// Every script below starts with this prelude. A queue can hold ids whose
// state has moved on (a task completed while it waited, by a worker whose
// lease had expired); pops skip them.
constexpr char kPrelude[] = R"lua(
local P = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function count(field, by) redis.call('HINCRBY', P .. 'count', field, by) end
local function state_of(id)
  local s = redis.call('HGET', P .. 'state', id)
  if not s then return nil, nil end
  return string.sub(s, 1, 1), string.sub(s, 2)
end
local function set_state(id, st, lvl) redis.call('HSET', P .. 'state', id, st .. lvl) end
local function unlease(id, lvl)
  redis.call('ZREM', P .. 'lease', id)
  redis.call('HDEL', P .. 'owner', id)
  count('leased', -1)
  count('l' .. lvl, -1)
end
local function to_pending(id, lvl, delay_us, front)
  set_state(id, 'p', lvl)
  count('pending', 1)
  count('p' .. lvl, 1)
  if delay_us > 0 then
    redis.call('ZADD', P .. 'wait', now + delay_us, id)
  elseif front then
    redis.call('LPUSH', P .. 'q:' .. lvl, id)
  else
    redis.call('RPUSH', P .. 'q:' .. lvl, id)
  end
end
local function to_dead(id, lvl, reason)
  set_state(id, 'x', lvl)
  count('dead', 1)
  count('x' .. lvl, 1)
  redis.call('HSET', P .. 'dead', id, reason)
  redis.call('HDEL', P .. 'deliv', id)
end
local function insert(id, lvl, payload)
  if redis.call('HEXISTS', P .. 'state', id) == 1 then return end  -- sent twice
  redis.call('HSET', P .. 'task', id, payload)
  count('disc', 1)
  to_pending(id, lvl, 0, false)
end
)lua";

// ARGV: fingerprint, levels, force (0/1), crawl id. KEYS[2]: fanout:crawls.
// Returns {verdict, found, worker number}.
constexpr char kOpen[] = R"lua(
local fp = redis.call('HGET', P .. 'meta', '_fingerprint')
if fp and fp ~= ARGV[1] and ARGV[3] ~= '1' then return {'plan', fp, 0} end
local lv = redis.call('HGET', P .. 'meta', '_levels')
if lv and lv ~= ARGV[2] then return {'levels', lv, 0} end
redis.call('HSET', P .. 'meta', '_fingerprint', ARGV[1], '_levels', ARGV[2])
redis.call('HSETNX', P .. 'meta', '_created', now)
redis.call('SADD', KEYS[2], ARGV[4])
return {'ok', '', redis.call('HINCRBY', P .. 'meta', '_workers', 1)}
)lua";

// ARGV: worker, n, lease_us, max_deliveries, levels.
// Reclaims expired leases (to the front of their queue, or dead after
// max_deliveries), moves due retries to their queue, then leases up to n
// tasks deepest level first. Returns {{id, payload, ...}, wait_us (-1: none
// waits), {count hash}}.
constexpr char kLease[] = R"lua(
local worker, n, lease_us = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local max_deliveries, levels = tonumber(ARGV[4]), tonumber(ARGV[5])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'lease', '-inf', now, 'LIMIT', 0, 256)) do
  local st, lvl = state_of(id)
  unlease(id, lvl)
  if tonumber(redis.call('HGET', P .. 'deliv', id) or '0') >= max_deliveries then
    to_dead(id, lvl, 'lease expired ' .. max_deliveries .. ' times without an outcome (its workers died or hung)')
  else
    to_pending(id, lvl, 0, true)
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'wait', '-inf', now, 'LIMIT', 0, 1024)) do
  redis.call('ZREM', P .. 'wait', id)
  local st, lvl = state_of(id)
  if st == 'p' then redis.call('RPUSH', P .. 'q:' .. lvl, id) end
end
local out = {}
local got = 0
for lvl = levels - 1, 0, -1 do
  local q = P .. 'q:' .. lvl
  while got < n do
    local id = redis.call('LPOP', q)
    if not id then break end
    if state_of(id) == 'p' then
      set_state(id, 'l', lvl)
      count('pending', -1)
      count('p' .. lvl, -1)
      count('leased', 1)
      count('l' .. lvl, 1)
      redis.call('ZADD', P .. 'lease', now + lease_us, id)
      redis.call('HSET', P .. 'owner', id, worker)
      redis.call('HINCRBY', P .. 'deliv', id, 1)
      out[#out + 1] = id
      out[#out + 1] = redis.call('HGET', P .. 'task', id) or ''
      got = got + 1
    end
  end
  if got >= n then break end
end
local first = redis.call('ZRANGE', P .. 'wait', 0, 0, 'WITHSCORES')
local wait_us = -1
if first[2] then wait_us = math.max(0, tonumber(first[2]) - now) end
return {out, wait_us, redis.call('HGETALL', P .. 'count')}
)lua";

// ARGV: worker, then outcomes, each a letter and its fields:
//   C id n (child_id child_level payload) x n   done, with what it found
//   R id delay_us payload                         retry (its lease holder only)
//   D id reason                                   dead (its lease holder only)
//   L id                                          back to pending as it was
//   A id level payload                            a task found without a completion
//   S n (id level payload) x n                    roots: the crawl's first only
// A completion from a worker whose lease expired still counts unless the
// task is done or dead already; a batch sent twice changes nothing the
// second time. Returns the outcomes applied.
constexpr char kOutcomes[] = R"lua(
local worker = ARGV[1]
local i = 2
local applied = 0
local function holder(id)
  local st, lvl = state_of(id)
  if st == 'l' and redis.call('HGET', P .. 'owner', id) == worker then return lvl end
  return nil
end
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'C' then
    local id, n = ARGV[i + 1], tonumber(ARGV[i + 2])
    i = i + 3
    local st, lvl = state_of(id)
    local live = st == 'l' or st == 'p'
    if live then
      if st == 'l' then
        unlease(id, lvl)
      else
        count('pending', -1)
        count('p' .. lvl, -1)
      end
      set_state(id, 'd', lvl)
      count('done', 1)
      count('d' .. lvl, 1)
      redis.call('HDEL', P .. 'task', id)
      redis.call('HDEL', P .. 'deliv', id)
      applied = applied + 1
    end
    for c = 1, n do
      if live then insert(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
      i = i + 3
    end
  elseif op == 'R' then
    local id, delay, payload = ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
    i = i + 4
    local lvl = holder(id)
    if lvl then
      unlease(id, lvl)
      redis.call('HSET', P .. 'task', id, payload)
      redis.call('HDEL', P .. 'deliv', id)
      to_pending(id, lvl, delay, false)
      applied = applied + 1
    end
  elseif op == 'D' then
    local id, reason = ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    local lvl = holder(id)
    if lvl then
      unlease(id, lvl)
      to_dead(id, lvl, reason)
      applied = applied + 1
    end
  elseif op == 'L' then
    local id = ARGV[i + 1]
    i = i + 2
    local lvl = holder(id)
    if lvl then
      unlease(id, lvl)
      redis.call('HINCRBY', P .. 'deliv', id, -1)
      to_pending(id, lvl, 0, true)
      applied = applied + 1
    end
  elseif op == 'A' then
    insert(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
    i = i + 4
    applied = applied + 1
  elseif op == 'S' then
    local n = tonumber(ARGV[i + 1])
    i = i + 2
    local first = redis.call('HSETNX', P .. 'meta', '_seeded', now) == 1
    for c = 1, n do
      if first then insert(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
      i = i + 3
    end
    if first then applied = applied + 1 end
  else
    return redis.error_reply('fanout outcomes: unknown op ' .. tostring(op) .. ' at ' .. i)
  end
end
return applied
)lua";

// ARGV: worker, lease_us, ids. Extends the leases this worker still holds.
constexpr char kRenew[] = R"lua(
local worker, lease_us = ARGV[1], tonumber(ARGV[2])
local renewed = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', P .. 'owner', id) == worker then
    redis.call('ZADD', P .. 'lease', 'XX', now + lease_us, id)
    renewed = renewed + 1
  end
end
return renewed
)lua";

// ARGV: level ('' = any), reason substring ('' = any). Dead tasks back to
// pending with their attempts cleared (bytes 18..25 of the encoded task: see
// internal::EncodeTask). Returns how many.
constexpr char kRedrive[] = R"lua(
local want_level, needle = ARGV[1], ARGV[2]
local dead = redis.call('HGETALL', P .. 'dead')
local revived = 0
for j = 1, #dead, 2 do
  local id, reason = dead[j], dead[j + 1]
  local st, lvl = state_of(id)
  if st == 'x' and (want_level == '' or lvl == want_level) and
     (needle == '' or string.find(reason, needle, 1, true)) then
    redis.call('HDEL', P .. 'dead', id)
    count('dead', -1)
    count('x' .. lvl, -1)
    local payload = redis.call('HGET', P .. 'task', id)
    if payload and #payload >= 25 then
      redis.call('HSET', P .. 'task', id, string.sub(payload, 1, 17) .. string.rep('\0', 8) .. string.sub(payload, 26))
    end
    to_pending(id, lvl, 0, false)
    revived = revived + 1
  end
end
return revived
)lua";

constexpr char kCrawlsKey[] = "fanout:crawls";
constexpr int kWorkerShift = 40;  // ids: worker number << 40 | counter

std::string Prefix(std::string_view crawl_id) { return "fanout:{" + std::string(crawl_id) + "}:"; }

const RedisScript& Script(const char* body) {
  // One RedisScript per body, so its SHA is learned once per process.
  struct Scripts {
    RedisScript open{absl::StrCat(kPrelude, kOpen)};
    RedisScript lease{absl::StrCat(kPrelude, kLease)};
    RedisScript outcomes{absl::StrCat(kPrelude, kOutcomes)};
    RedisScript renew{absl::StrCat(kPrelude, kRenew)};
    RedisScript redrive{absl::StrCat(kPrelude, kRedrive)};
  };
  static const Scripts* scripts = new Scripts;
  if (body == kOpen) return scripts->open;
  if (body == kLease) return scripts->lease;
  if (body == kOutcomes) return scripts->outcomes;
  if (body == kRenew) return scripts->renew;
  return scripts->redrive;
}

}  // namespace

std::string DefaultWorkerId() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::random_device random;  // two workers of one pid namespace and host still differ
  return absl::StrFormat("%s:%d:%08x", host, getpid(), static_cast<uint32_t>(random()));
}

namespace {

int64_t Int(const RedisReply& r) {
  if (r.type == RedisReply::Type::kInteger) return r.integer;
  int64_t v = 0;
  if (r.type == RedisReply::Type::kString && absl::SimpleAtoi(r.str, &v)) return v;
  return 0;
}

// Reads the count hash (HGETALL's flat array): the crawl's counts, and per
// level pending, leased, done and dead (each may be null).
void ReadCounts(const RedisReply& hash, size_t levels, FrontierCounts* counts, std::vector<int64_t>* pending,
                std::vector<int64_t>* leased, std::vector<int64_t>* done, std::vector<int64_t>* dead) {
  *counts = FrontierCounts{};
  for (std::vector<int64_t>* v : {pending, leased, done, dead}) {
    if (v != nullptr) v->assign(levels, 0);
  }
  for (size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    const std::string& field = hash.elements[i].str;
    const int64_t value = Int(hash.elements[i + 1]);
    if (field == "disc") {
      counts->discovered = value;
    } else if (field == "pending") {
      counts->pending = value;
    } else if (field == "leased") {
      counts->leased = value;
    } else if (field == "done") {
      counts->done = value;
    } else if (field == "dead") {
      counts->dead = value;
    } else if (size_t level = 0; field.size() > 1 && absl::SimpleAtoi(field.substr(1), &level) && level < levels) {
      std::vector<int64_t>* by_level = field[0] == 'p'   ? pending
                                       : field[0] == 'l' ? leased
                                       : field[0] == 'd' ? done
                                       : field[0] == 'x' ? dead
                                                         : nullptr;
      if (by_level != nullptr) (*by_level)[level] = value;
    }
  }
}

absl::Status ShapeError(const RedisClient& client, const std::string& crawl, const char* what) {
  return absl::InternalError(
      absl::StrCat("redis ", client.server(), ": crawl \"", crawl, "\": unexpected reply to ", what));
}

}  // namespace

struct RedisFrontier::Op {
  std::vector<std::string> args;  // the op's letter and fields, as the script reads them
};

absl::Status ValidateCrawlId(std::string_view crawl_id) {
  const bool ok = !crawl_id.empty() && crawl_id.size() <= 64 &&
                  std::all_of(crawl_id.begin(), crawl_id.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                           c == '_' || c == '-';
                  });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "crawl id \"%s\": expected 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
      absl::CHexEscape(absl::string_view(crawl_id.data(), crawl_id.size()))));
}

absl::StatusOr<std::unique_ptr<RedisFrontier>> RedisFrontier::Open(std::shared_ptr<RedisClient> client,
                                                                    RedisFrontierOptions options, EventLoop* loop,
                                                                    const Clock* clock) {
  if (client == nullptr || clock == nullptr) {
    return absl::InvalidArgumentError("redis frontier: client and clock are required");
  }
  if (absl::Status s = ValidateCrawlId(options.crawl_id); !s.ok()) return s;
  const auto bad = [&](std::string what) {
    return absl::InvalidArgumentError(absl::StrCat("redis frontier for crawl \"", options.crawl_id, "\": ", what));
  };
  if (options.levels < 1 || options.levels > 64) {
    return bad(absl::StrCat("levels must be in [1, 64], got ", options.levels));
  }
  if (options.lease_timeout < absl::Milliseconds(100)) {
    return bad(absl::StrCat("lease_timeout must be >= 100ms, got ", absl::FormatDuration(options.lease_timeout)));
  }
  if (options.max_deliveries < 1) return bad(absl::StrCat("max_deliveries must be >= 1, got ", options.max_deliveries));
  if (options.lease_batch < 1 || options.lease_batch > 1000) {
    return bad(absl::StrCat("lease_batch must be in [1, 1000], got ", options.lease_batch));
  }
  if (options.ack_batch < 1) return bad(absl::StrCat("ack_batch must be >= 1, got ", options.ack_batch));
  if (options.poll_interval <= absl::ZeroDuration() || options.ack_interval < absl::ZeroDuration()) {
    return bad("poll_interval must be > 0 and ack_interval >= 0");
  }
  if (options.worker_id.empty()) options.worker_id = DefaultWorkerId();
  auto frontier = std::unique_ptr<RedisFrontier>(new RedisFrontier(std::move(client), std::move(options), loop, clock));
  if (absl::Status s = frontier->Init(); !s.ok()) return s;
  return frontier;
}

RedisFrontier::RedisFrontier(std::shared_ptr<RedisClient> client, RedisFrontierOptions options, EventLoop* loop,
                             const Clock* clock)
    : client_(std::move(client)),
      options_(std::move(options)),
      loop_(loop),
      clock_(clock),
      prefix_(Prefix(options_.crawl_id)),
      last_renew_(clock_->Now()) {}

RedisFrontier::~RedisFrontier() {
  if (timer_ != 0 && loop_ != nullptr) loop_->Cancel(timer_);
  // Everything this worker holds goes back: fetched tasks, and tasks handed
  // out whose outcome will never come (a stop abandoned them).
  for (uint64_t id : held_) ops_.push_back(Op{{"L", absl::StrCat(id)}});
  held_.clear();
  GiveBackPrefetched();
  (void)SendOps(/*wait=*/false);
}

void RedisFrontier::AbandonForTesting() {
  held_.clear();
  prefetched_.clear();
  ops_.clear();
}

absl::StatusOr<RedisReply> RedisFrontier::Run(const RedisScript& script, std::vector<std::string> args) const {
  ++round_trips_;
  return client_->Eval(script, {prefix_, kCrawlsKey}, args);
}

absl::Status RedisFrontier::Init() {
  absl::StatusOr<RedisReply> reply = Run(
      Script(kOpen), {options_.plan_fingerprint, absl::StrCat(options_.levels), options_.force ? "1" : "0",
                      options_.crawl_id});
  if (!reply.ok()) return reply.status();
  if (reply->type != RedisReply::Type::kArray || reply->elements.size() != 3) {
    return ShapeError(*client_, options_.crawl_id, "open");
  }
  const std::string& verdict = reply->elements[0].str;
  if (verdict == "plan") {
    return absl::FailedPreconditionError(absl::StrFormat(
        "redis %s: crawl \"%s\" was started with another plan (fingerprint %s, this plan's is %s); use another "
        "crawl id, or force to join it anyway",
        client_->server(), options_.crawl_id, reply->elements[1].str, options_.plan_fingerprint));
  }
  if (verdict == "levels") {
    return absl::FailedPreconditionError(absl::StrFormat("redis %s: crawl \"%s\" has %s levels, this plan has %d",
                                                         client_->server(), options_.crawl_id,
                                                         reply->elements[1].str, options_.levels));
  }
  worker_number_ = static_cast<uint64_t>(Int(reply->elements[2]));
  if (worker_number_ == 0 || worker_number_ >= (uint64_t{1} << (63 - kWorkerShift))) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "redis %s: crawl \"%s\" has had %d workers join; its task ids are used up", client_->server(),
        options_.crawl_id, worker_number_));
  }
  counts_at_ = absl::InfinitePast();
  (void)counts();
  if (counts_at_ == absl::InfinitePast()) {
    return absl::UnavailableError("redis frontier: cannot read the crawl's counts");
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> RedisFrontier::NextId() {
  if (next_seq_ >= (uint64_t{1} << kWorkerShift)) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("redis frontier: worker %s has used all its %d task ids", options_.worker_id,
                        uint64_t{1} << kWorkerShift));
  }
  return (worker_number_ << kWorkerShift) | next_seq_++;
}

absl::Status RedisFrontier::Stamp(Task& task, std::vector<std::string>* args) {
  if (task.level >= options_.levels) {
    return absl::InvalidArgumentError(absl::StrFormat("redis frontier: task level %d is outside the plan's %d levels",
                                                      task.level, options_.levels));
  }
  auto id = NextId();
  if (!id.ok()) return id.status();
  task.id = *id;
  args->insert(args->end(), {absl::StrCat(task.id), absl::StrCat(task.level), internal::EncodeTask(task)});
  return absl::OkStatus();
}

absl::Status RedisFrontier::Add(std::vector<Task> tasks) {
  if (tasks.empty()) return absl::OkStatus();
  std::vector<std::string> roots = {"S", "0"};
  int64_t root_count = 0;
  for (Task& task : tasks) {
    if (task.parent == 0) {
      if (absl::Status s = Stamp(task, &roots); !s.ok()) return s;
      ++root_count;
      continue;
    }
    Op op{{"A"}};
    if (absl::Status s = Stamp(task, &op.args); !s.ok()) return s;
    if (absl::Status s = Buffer(std::move(op)); !s.ok()) return s;
  }
  if (root_count > 0) {
    roots[1] = absl::StrCat(root_count);
    if (absl::Status s = Buffer(Op{std::move(roots)}); !s.ok()) return s;
  }
  new_work_ = true;
  return SendOps(/*wait=*/true);
}

void RedisFrontier::GiveBackPrefetched() {
  for (const Task& task : prefetched_) ops_.push_back(Op{{"L", absl::StrCat(task.id)}});
  prefetched_.clear();
}

absl::Status RedisFrontier::NotHeld(uint64_t task_id) const {
  return absl::FailedPreconditionError(absl::StrFormat("redis frontier: task %d is not leased here", task_id));
}

std::optional<Task> RedisFrontier::Lease(absl::Time now) {
  if (!error_.ok()) return std::nullopt;
  if (prefetched_.empty()) {
    // After an empty fetch, ask again only when something may have changed:
    // this worker sent new tasks, a retry came due, or a poll is due.
    const bool due = new_work_ || now >= empty_at_ + options_.poll_interval ||
                     (next_wait_.has_value() && now >= *next_wait_);
    if (!due || now < retry_at_) return std::nullopt;
    if (!Fetch().ok()) return std::nullopt;  // an outage: NextReadyTime says when to try again
    if (prefetched_.empty()) return std::nullopt;
  }
  Task task = std::move(prefetched_.front());
  prefetched_.pop_front();
  held_.insert(task.id);
  return task;
}

absl::Status RedisFrontier::Fetch() {
  // Outcomes first: the children they carry may be what is leased next.
  if (absl::Status s = SendOps(/*wait=*/false); !s.ok()) return s;
  if (!ops_.empty()) return absl::UnavailableError("redis frontier: outcomes not yet sent");
  const absl::Time asked = clock_->Now();
  absl::StatusOr<RedisReply> reply =
      Run(Script(kLease), {options_.worker_id, absl::StrCat(options_.lease_batch),
                           absl::StrCat(absl::ToInt64Microseconds(options_.lease_timeout)),
                           absl::StrCat(options_.max_deliveries), absl::StrCat(options_.levels)});
  if (!reply.ok()) return Outage(reply.status());
  outage_since_ = absl::InfiniteFuture();
  if (reply->type != RedisReply::Type::kArray || reply->elements.size() != 3 ||
      reply->elements[0].type != RedisReply::Type::kArray) {
    error_ = ShapeError(*client_, options_.crawl_id, "lease");
    return error_;
  }
  const std::vector<RedisReply>& got = reply->elements[0].elements;
  for (size_t i = 0; i + 1 < got.size(); i += 2) {
    Task task;
    if (!absl::SimpleAtoi(got[i].str, &task.id) || !internal::DecodeTask(got[i + 1].str, &task)) {
      // Unreadable: written by something else. Dead, so it is seen, not lost.
      (void)Buffer(Op{{"D", got[i].str, "the task's record in Redis is malformed"}});
      continue;
    }
    prefetched_.push_back(std::move(task));
  }
  const int64_t wait_us = Int(reply->elements[1]);
  next_wait_.reset();
  if (wait_us >= 0) next_wait_ = asked + absl::Microseconds(wait_us);
  ReadCounts(reply->elements[2], options_.levels, &counts_, &pending_by_level_, nullptr, nullptr, nullptr);
  counts_at_ = asked;
  others_leased_ = counts_.leased > static_cast<int64_t>(held_.size() + prefetched_.size());
  new_work_ = false;
  empty_at_ = prefetched_.empty() ? asked : absl::InfinitePast();
  last_renew_ = std::max(last_renew_, asked);  // fresh leases need no renewal yet
  if (!prefetched_.empty()) ArmTimer(options_.lease_timeout / 3);
  return absl::OkStatus();
}

std::optional<absl::Time> RedisFrontier::NextReadyTime() const {
  std::optional<absl::Time> next;
  const auto consider = [&next](absl::Time t) { next = next.has_value() ? std::min(*next, t) : t; };
  if (!prefetched_.empty() || new_work_) consider(clock_->Now());
  if (next_wait_.has_value()) consider(*next_wait_);
  if (others_leased_) consider(empty_at_ + options_.poll_interval);
  if (!ops_.empty() || outage_since_ != absl::InfiniteFuture()) consider(std::max(retry_at_, clock_->Now()));
  return next;
}

absl::StatusOr<std::vector<uint64_t>> RedisFrontier::Complete(uint64_t task_id, std::vector<Task> discovered) {
  if (!held_.contains(task_id)) return NotHeld(task_id);
  Op op{{"C", absl::StrCat(task_id), absl::StrCat(discovered.size())}};
  std::vector<uint64_t> ids;
  ids.reserve(discovered.size());
  for (Task& task : discovered) {
    task.parent = task_id;
    if (absl::Status s = Stamp(task, &op.args); !s.ok()) return s;
    ids.push_back(task.id);
  }
  held_.erase(task_id);
  if (!discovered.empty()) new_work_ = true;
  if (absl::Status s = Buffer(std::move(op)); !s.ok()) return s;
  return ids;
}

absl::Status RedisFrontier::Retry(Task task) {
  if (held_.erase(task.id) == 0) return NotHeld(task.id);
  const absl::Duration delay = std::max(absl::ZeroDuration(), task.not_before - clock_->Now());
  new_work_ = true;
  if (delay > absl::ZeroDuration()) {
    const absl::Time ready = clock_->Now() + delay;
    next_wait_ = next_wait_.has_value() ? std::min(*next_wait_, ready) : ready;
  }
  return Buffer(Op{{"R", absl::StrCat(task.id), absl::StrCat(absl::ToInt64Microseconds(delay)),
                    internal::EncodeTask(task)}});
}

absl::Status RedisFrontier::Dead(uint64_t task_id, std::string reason) {
  if (held_.erase(task_id) == 0) return NotHeld(task_id);
  return Buffer(Op{{"D", absl::StrCat(task_id), std::move(reason)}});
}

absl::Status RedisFrontier::Release(Task task) {
  if (held_.erase(task.id) == 0) return NotHeld(task.id);
  // Handed back before it was sent: keep it here, first in line (the engine
  // releases the task it staged when it stops; Flush gives these back).
  prefetched_.push_front(std::move(task));
  return absl::OkStatus();
}

absl::Status RedisFrontier::Buffer(Op op) {
  if (ops_.empty()) {
    ops_since_ = clock_->Now();
    if (options_.ack_interval > absl::ZeroDuration()) ArmTimer(options_.ack_interval);
  }
  ops_.push_back(std::move(op));
  if (static_cast<int64_t>(ops_.size()) >= options_.ack_batch || clock_->Now() - ops_since_ >= options_.ack_interval) {
    return SendOps(/*wait=*/false);
  }
  return RenewIfDue(clock_->Now());
}

absl::Status RedisFrontier::Outage(const absl::Status& error) {
  const absl::Time now = clock_->Now();
  if (outage_since_ == absl::InfiniteFuture()) outage_since_ = now;
  retry_at_ = now + std::max(absl::Milliseconds(10), client_->RetryDelay());
  if (!absl::IsUnavailable(error) && !absl::IsDeadlineExceeded(error)) {
    error_ = error;  // an answer, not an outage: waiting will not help
    return error_;
  }
  if (now - outage_since_ > options_.max_outage) {
    error_ = absl::UnavailableError(absl::StrCat("redis frontier for crawl \"", options_.crawl_id,
                                                 "\": Redis unreachable for more than ",
                                                 absl::FormatDuration(options_.max_outage), ": ", error.message()));
    return error_;
  }
  return absl::OkStatus();
}

absl::Status RedisFrontier::SendOps(bool wait) {
  while (!ops_.empty()) {
    const absl::Time now = clock_->Now();
    if (now < retry_at_) {
      if (!wait) return absl::OkStatus();
      absl::SleepFor(retry_at_ - now);  // Flush: nothing else to do meanwhile
      continue;
    }
    // One script call for up to ack_batch outcomes, in order.
    const size_t n = std::min(ops_.size(), static_cast<size_t>(options_.ack_batch));
    std::vector<std::string> args = {options_.worker_id};
    for (size_t i = 0; i < n; ++i) args.insert(args.end(), ops_[i].args.begin(), ops_[i].args.end());
    absl::StatusOr<RedisReply> reply = Run(Script(kOutcomes), std::move(args));
    if (!reply.ok()) {
      if (absl::Status s = Outage(reply.status()); !s.ok()) return s;
      if (!wait) return absl::OkStatus();
      continue;
    }
    outage_since_ = absl::InfiniteFuture();
    ops_.erase(ops_.begin(), ops_.begin() + static_cast<ptrdiff_t>(n));
    counts_at_ = absl::InfinitePast();
  }
  ops_since_ = absl::InfiniteFuture();
  return RenewIfDue(clock_->Now());
}

absl::Status RedisFrontier::RenewIfDue(absl::Time now) {
  if (now - last_renew_ < options_.lease_timeout / 3 || now < retry_at_) return absl::OkStatus();
  if (held_.empty() && prefetched_.empty()) {
    last_renew_ = now;
    return absl::OkStatus();
  }
  std::vector<std::string> args = {options_.worker_id, absl::StrCat(absl::ToInt64Microseconds(options_.lease_timeout))};
  for (uint64_t id : held_) args.push_back(absl::StrCat(id));
  for (const Task& task : prefetched_) args.push_back(absl::StrCat(task.id));
  absl::StatusOr<RedisReply> reply = Run(Script(kRenew), std::move(args));
  if (!reply.ok()) return Outage(reply.status());
  last_renew_ = now;
  return absl::OkStatus();
}

void RedisFrontier::ArmTimer(absl::Duration after) {
  if (loop_ == nullptr) return;
  const absl::Time when = clock_->Now() + after;
  if (timer_ != 0 && timer_at_ <= when) return;
  if (timer_ != 0) loop_->Cancel(timer_);
  timer_at_ = when;
  timer_ = loop_->RunAt(when, [this] {
    timer_ = 0;
    timer_at_ = absl::InfiniteFuture();
    Tick();
  });
}

void RedisFrontier::Tick() {
  // Errors here surface on the engine's next call (an outage past max_outage
  // fails that call's SendOps too).
  (void)SendOps(/*wait=*/false);
  (void)RenewIfDue(clock_->Now());
  if (!ops_.empty()) ArmTimer(std::max(options_.ack_interval, retry_at_ - clock_->Now()));
  if (!held_.empty() || !prefetched_.empty()) ArmTimer(options_.lease_timeout / 3);
}

absl::Status RedisFrontier::Flush() {
  GiveBackPrefetched();
  if (absl::Status s = SendOps(/*wait=*/true); !s.ok()) return s;
  counts_at_ = absl::InfinitePast();
  return absl::OkStatus();
}

FrontierCounts RedisFrontier::counts() const {
  const absl::Time now = clock_->Now();
  if (now - counts_at_ < options_.counts_cache || now < retry_at_) return counts_;
  ++round_trips_;
  absl::StatusOr<RedisReply> reply = client_->Command({"HGETALL", absl::StrCat(prefix_, "count")});
  if (reply.ok() && reply->type == RedisReply::Type::kArray) {
    ReadCounts(*reply, options_.levels, &counts_, &pending_by_level_, nullptr, nullptr, nullptr);
    counts_at_ = now;
  }
  return counts_;
}

std::vector<int64_t> RedisFrontier::pending_by_level() const {
  (void)counts();
  return pending_by_level_;
}

absl::StatusOr<RedisCrawlSummary> InspectRedisCrawl(RedisClient& client, const std::string& crawl_id,
                                                    size_t max_reasons) {
  if (absl::Status s = ValidateCrawlId(crawl_id); !s.ok()) return s;
  const std::string prefix = Prefix(crawl_id);
  absl::StatusOr<RedisReply> meta = client.Command({"HGETALL", prefix + "meta"});
  if (!meta.ok()) return meta.status();
  RedisCrawlSummary summary;
  summary.crawl_id = crawl_id;
  size_t levels = 0;
  for (size_t i = 0; i + 1 < meta->elements.size(); i += 2) {
    summary.meta.emplace_back(meta->elements[i].str, meta->elements[i + 1].str);
    if (meta->elements[i].str == "_levels") (void)absl::SimpleAtoi(meta->elements[i + 1].str, &levels);
  }
  if (summary.meta.empty()) {
    return absl::NotFoundError(absl::StrFormat("redis %s: no crawl \"%s\"", client.server(), crawl_id));
  }
  std::sort(summary.meta.begin(), summary.meta.end());
  absl::StatusOr<RedisReply> counts = client.Command({"HGETALL", prefix + "count"});
  if (!counts.ok()) return counts.status();
  ReadCounts(*counts, levels, &summary.counts, &summary.pending_by_level, &summary.leased_by_level,
             &summary.done_by_level,
             &summary.dead_by_level);
  absl::StatusOr<RedisReply> dead = client.Command({"HVALS", prefix + "dead"});
  if (!dead.ok()) return dead.status();
  absl::flat_hash_map<std::string, int64_t> reasons;
  for (const RedisReply& reason : dead->elements) ++reasons[reason.str];
  summary.dead_by_reason.assign(reasons.begin(), reasons.end());
  std::sort(summary.dead_by_reason.begin(), summary.dead_by_reason.end(),
            [](const auto& a, const auto& b) {
              return a.second != b.second ? a.second > b.second : a.first < b.first;
            });
  if (summary.dead_by_reason.size() > max_reasons) summary.dead_by_reason.resize(max_reasons);
  return summary;
}

absl::StatusOr<int64_t> RedriveRedisCrawl(RedisClient& client, const std::string& crawl_id,
                                          std::optional<uint32_t> level, const std::string& reason_contains) {
  if (absl::Status s = ValidateCrawlId(crawl_id); !s.ok()) return s;
  absl::StatusOr<RedisReply> reply =
      client.Eval(Script(kRedrive), {Prefix(crawl_id), kCrawlsKey},
                  {level.has_value() ? absl::StrCat(*level) : "", reason_contains});
  if (!reply.ok()) return reply.status();
  if (reply->type != RedisReply::Type::kInteger) return ShapeError(client, crawl_id, "redrive");
  return reply->integer;
}

absl::StatusOr<std::vector<std::string>> ListRedisCrawls(RedisClient& client) {
  absl::StatusOr<RedisReply> reply = client.Command({"SMEMBERS", kCrawlsKey});
  if (!reply.ok()) return reply.status();
  std::vector<std::string> ids;
  for (const RedisReply& e : reply->elements) ids.push_back(e.str);
  std::sort(ids.begin(), ids.end());
  return ids;
}

absl::Status SetRedisCrawlMeta(RedisClient& client, const std::string& crawl_id,
                               const std::vector<std::pair<std::string, std::string>>& entries) {
  if (absl::Status s = ValidateCrawlId(crawl_id); !s.ok()) return s;
  if (entries.empty()) return absl::OkStatus();
  std::vector<std::string> args = {"HSET", Prefix(crawl_id) + "meta"};
  for (const auto& [key, value] : entries) {
    if (key.empty() || key[0] == '_') {
      return absl::InvalidArgumentError(
          absl::StrFormat("crawl \"%s\": meta key \"%s\" is reserved (keys starting with '_' are fanout's own)",
                          crawl_id, key));
    }
    args.push_back(key);
    args.push_back(value);
  }
  absl::StatusOr<RedisReply> reply = client.Command(args);
  return reply.status();
}

absl::StatusOr<std::optional<std::string>> GetRedisCrawlMeta(RedisClient& client, const std::string& crawl_id,
                                                             const std::string& key) {
  if (absl::Status s = ValidateCrawlId(crawl_id); !s.ok()) return s;
  absl::StatusOr<RedisReply> reply = client.Command({"HGET", Prefix(crawl_id) + "meta", key});
  if (!reply.ok()) return reply.status();
  if (reply->type == RedisReply::Type::kNil) return std::optional<std::string>();
  return std::optional<std::string>(reply->str);
}

}  // namespace fanout
