//! The Lua scripts of the queue on Redis, loaded once per queue.

use redis::Script;

use super::GROUP;

/// KEYS: stream, mark. ARGV: job id, job, mark ttl.
const ENQUEUE: &str = r"
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[3]) then
  redis.call('XADD', KEYS[1], '*', 'job', ARGV[2])
  return 1
end
return 0
";

/// The start of every script that acts on a taken job: only its holder may (a worker whose
/// job was taken over must not finish it, retry it or take it back). ARGV[1] entry id,
/// ARGV[2] group, ARGV[3] consumer.
const IF_HOLDER: &str = r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[2], ARGV[1], ARGV[1], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then return 0 end
";

/// Keeps a taken job alive: its idle time starts again. KEYS: stream.
const HEARTBEAT: &str = r"
redis.call('XCLAIM', KEYS[1], ARGV[2], ARGV[3], 0, ARGV[1], 'JUSTID')
return 1
";

/// Completes or dead-letters a job. KEYS: stream, mark, the list it goes to, and for a
/// completed job its counter. ARGV[4] record, ARGV[5] how many the list keeps.
const FINISH: &str = r"
redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('LPUSH', KEYS[3], ARGV[4])
redis.call('LTRIM', KEYS[3], 0, math.max(tonumber(ARGV[5]), 1) - 1)
if KEYS[4] then redis.call('INCR', KEYS[4]) end
return 1
";

/// Puts a job back for later. KEYS: stream, delayed. ARGV[4] job, ARGV[5] due ms.
const RETRY: &str = r"
redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
return 1
";

/// KEYS: delayed, stream. ARGV: now ms, limit.
const PROMOTE: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  redis.call('XADD', KEYS[2], '*', 'job', job)
end
return #due
";

/// KEYS: the window's counter. The notifications started in it, this one included.
const RATE: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], 2000) end
return n
";

/// KEYS: the scope's sorted set of starts. ARGV: now (ms), the window (ms), the limit, a unique
/// member. 0 when one more may start now (it is counted), else the ms until one may: a sliding
/// window, exact across every instance.
const WINDOW: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
";

/// A script that begins with `IF_HOLDER`: on the stream, for the job `receipt` while `consumer`
/// holds it (its first key and first three arguments; the script's own follow).
pub(super) fn held_by<'a>(
    script: &'a Script,
    stream: &str,
    consumer: &str,
    receipt: &str,
) -> redis::ScriptInvocation<'a> {
    let mut invocation = script.key(stream);
    invocation.arg(receipt).arg(GROUP).arg(consumer);
    invocation
}

pub(super) struct Scripts {
    pub(super) enqueue: Script,
    pub(super) heartbeat: Script,
    pub(super) finish: Script,
    pub(super) retry: Script,
    pub(super) promote: Script,
    pub(super) rate: Script,
    pub(super) window: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            enqueue: Script::new(ENQUEUE),
            heartbeat: Script::new(&format!("{IF_HOLDER}{HEARTBEAT}")),
            finish: Script::new(&format!("{IF_HOLDER}{FINISH}")),
            retry: Script::new(&format!("{IF_HOLDER}{RETRY}")),
            promote: Script::new(PROMOTE),
            rate: Script::new(RATE),
            window: Script::new(WINDOW),
        }
    }
}
