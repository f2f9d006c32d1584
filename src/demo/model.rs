//! Public data types of the simulator: options, deployment specs, faults, recorded requests.

/// The simulator serves the same `readyState` values the client reads.
pub use crate::vercel::ReadyState;

/// How the events endpoint interprets the `since` query parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SinceMode {
    /// Events with `created >= since` are sent.
    #[default]
    Inclusive,
    /// Events with `created > since` are sent.
    Exclusive,
    /// `since` is ignored: every request starts from the first event.
    Ignored,
}

/// Options for [`crate::demo::SimulatorHandle::start`].
#[derive(Clone, Debug)]
pub struct SimulatorOptions {
    /// Port on 127.0.0.1; `0` picks a free port.
    pub port: u16,
    /// `Some(t)`: only `Authorization: Bearer t` is accepted. `None`: any non-empty bearer token
    /// is accepted. A missing or wrong header gets 403 `forbidden`.
    pub token: Option<String>,
    /// `since` semantics of the events endpoint.
    pub since_mode: SinceMode,
    /// Time scale: `1.0` plays builds in real time, `1000.0` a thousand times faster. Every
    /// duration of a spec (`after_ms`, `queued_ms`) and the keepalive interval are divided by it.
    /// Non-finite or non-positive values are treated as `1.0`.
    pub speed: f64,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            port: 0,
            token: None,
            since_mode: SinceMode::Inclusive,
            speed: 1.0,
        }
    }
}

/// How the runtime logs endpoint serves ready deployments (see `runtime.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeTraffic {
    /// Rows a second, per ready deployment (not scaled by speed).
    pub rows_per_sec: f64,
    /// Rows per response before the `delimiter` row ends it (Vercel's is 256).
    pub limit: usize,
    /// How far back a new response starts (0: live rows only; whether Vercel replays is not
    /// documented, and the demo's server replays the last second).
    pub replay_ms: u64,
    /// A fault: every response breaks off after this many rows.
    pub abort_after: Option<usize>,
}

impl Default for RuntimeTraffic {
    fn default() -> Self {
        RuntimeTraffic {
            rows_per_sec: 4.0,
            limit: 256,
            replay_ms: 1_000,
            abort_after: None,
        }
    }
}

/// One deployment to play.
#[derive(Clone, Debug, PartialEq)]
pub struct DeploymentSpec {
    /// Project name (also the deployment `name`; the `projectId` is derived from it).
    pub project: String,
    /// Git branch (`meta.githubCommitRef`); `None` → `"main"`.
    pub branch: Option<String>,
    /// `meta.githubCommitMessage`; `None` → a generic message.
    pub commit_message: Option<String>,
    /// `"production"`, `"staging"`, or `None` for a preview deployment.
    pub target: Option<String>,
    /// Final state once every event has been produced: `Ready`, `Error` or `Canceled`
    /// (anything non-terminal is treated as `Ready`).
    pub outcome: ReadyState,
    /// The build log, in order.
    pub events: Vec<SimEvent>,
    /// Misbehaviours of the events endpoint, see [`Fault`].
    pub faults: Vec<Fault>,
    /// Emit the older `{"type","created","payload":{...}}` shape instead of the flat one.
    pub wrapped_shape: bool,
    /// How long the deployment stays `QUEUED` before it starts building (scaled by speed).
    pub queued_ms: u64,
    /// Extra `meta` entries (a redeploy's, say), beside the git ones.
    pub meta: std::collections::BTreeMap<String, String>,
}

impl Default for DeploymentSpec {
    fn default() -> Self {
        DeploymentSpec {
            project: "demo-app".to_string(),
            branch: None,
            commit_message: None,
            target: None,
            outcome: ReadyState::Ready,
            events: Vec::new(),
            faults: Vec::new(),
            wrapped_shape: false,
            queued_ms: 0,
            meta: std::collections::BTreeMap::new(),
        }
    }
}

/// One line of a build log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimEvent {
    /// Delay after the previous event (after the build start for the first one), scaled by speed.
    pub after_ms: u64,
    /// Stamp `created`/`date` equal to the previous event's (same-millisecond bursts).
    pub same_ms_as_previous: bool,
    /// Vercel event `type`: `"stdout"`, `"stderr"`, `"command"`, `"delimiter"`, `"exit"`, ...
    pub kind: String,
    /// The text; may hold ANSI escapes and any Unicode.
    pub text: String,
    /// `"error"` or `"warning"`, emitted as the event's `level`.
    pub level: Option<String>,
}

impl SimEvent {
    /// A `stdout` event `after_ms` after the previous one.
    pub fn stdout(after_ms: u64, text: impl Into<String>) -> SimEvent {
        SimEvent {
            after_ms,
            kind: "stdout".to_string(),
            text: text.into(),
            ..SimEvent::default()
        }
    }

    /// A `stderr` event with `level: "error"`.
    pub fn stderr_error(after_ms: u64, text: impl Into<String>) -> SimEvent {
        SimEvent {
            after_ms,
            kind: "stderr".to_string(),
            text: text.into(),
            level: Some("error".to_string()),
            ..SimEvent::default()
        }
    }

    /// Builder: stamp this event with the previous event's `created`.
    pub fn same_ms(mut self) -> SimEvent {
        self.same_ms_as_previous = true;
        self
    }
}

/// A misbehaviour of the events endpoint. Each fault fires once (`ServerErrorNextRequests`
/// `count` times), at the first moment its condition holds, on whichever events response is
/// serving that deployment at that moment. Event indices are 0-based indices into
/// [`DeploymentSpec::events`].
///
/// The event-position faults (`*Before`, `DropMidLine`) apply to NDJSON responses (follow mode,
/// or `format=lines` / an Accept header preferring `application/stream+json`); a response that
/// never reaches the event (because of `since`/`until`/`limit`) does not fire it. When several
/// faults name the same event they are considered in spec order: `OversizedLineBefore` and
/// `MalformedLineBefore` write their lines and let the response go on; the first of
/// `DropBefore`, `DropMidLine`, `CleanEndBefore`, `StallBefore` ends the response, and the
/// remaining ones wait for the next response that reaches that event.
///
/// The request faults (`RateLimitNextRequest`, `ServerErrorNextRequests`) apply to the next
/// events requests (any mode) for that deployment, in spec order.
///
/// `LateTail` changes the timeline itself and fires when the build starts; it must be in the
/// spec (injected later, it has no effect).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Everything before the event is written and flushed, then the connection is aborted
    /// without the chunked terminator: the client's body read fails.
    DropBefore { event: usize },
    /// Everything before the event is written, then the first half of that event's line (cut
    /// right after the first byte of the multi-byte UTF-8 character nearest to the middle, if the
    /// line has one), then the connection is aborted.
    DropMidLine { event: usize },
    /// The response ends cleanly (valid chunked terminator) just before the event, although the
    /// build may still be running.
    CleanEndBefore { event: usize },
    /// Nothing more is written (no keepalives either); the connection stays open until the client
    /// goes away or the simulator shuts down.
    StallBefore { event: usize },
    /// One extra line of exactly `bytes` bytes (not counting its `\n`; at least the size of the
    /// JSON skeleton) is written before the event: a valid flat event of type `stdout` whose text
    /// is a long run of `x`, `created` equal to the event's. It is not part of `produced_events`.
    OversizedLineBefore { event: usize, bytes: usize },
    /// Two extra lines are written before the event: one truncated JSON object (valid UTF-8,
    /// invalid JSON) and one that holds invalid UTF-8 bytes. Neither is part of `produced_events`.
    MalformedLineBefore { event: usize },
    /// One extra line is written before the event: a valid flat `stdout` event whose text holds
    /// half a UTF-16 surrogate pair (`\ud800`), which JSON allows and Rust strings do not. It is
    /// not part of `produced_events`.
    LoneSurrogateBefore { event: usize },
    /// The next events request gets `429` with `Retry-After: N` (seconds), `X-RateLimit-*`
    /// headers and the `rate_limited` error body.
    RateLimitNextRequest { retry_after_secs: u64 },
    /// The next `count` events requests get `500` with the `internal_server_error` body.
    ServerErrorNextRequests { count: usize },
    /// The last `events` events of the build reach the events API only `delay_ms` (scaled by
    /// speed) after the deployment reports its outcome, as Vercel's sometimes do: a follow
    /// stream ends at the outcome without them, and a request made at once does not return them.
    LateTail { events: usize, delay_ms: u64 },
}

impl Fault {
    /// The event index a position fault is tied to; `None` for request faults.
    pub fn event(&self) -> Option<usize> {
        match *self {
            Fault::DropBefore { event }
            | Fault::DropMidLine { event }
            | Fault::CleanEndBefore { event }
            | Fault::StallBefore { event }
            | Fault::OversizedLineBefore { event, .. }
            | Fault::MalformedLineBefore { event }
            | Fault::LoneSurrogateBefore { event } => Some(event),
            Fault::RateLimitNextRequest { .. }
            | Fault::ServerErrorNextRequests { .. }
            | Fault::LateTail { .. } => None,
        }
    }

    /// True for faults that end the response (drop, clean end, stall).
    pub fn ends_response(&self) -> bool {
        matches!(
            self,
            Fault::DropBefore { .. }
                | Fault::DropMidLine { .. }
                | Fault::CleanEndBefore { .. }
                | Fault::StallBefore { .. }
        )
    }
}

/// One HTTP request the simulator received (recorded before authorization is checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string without `?` (empty when absent).
    pub query: String,
    /// Header names lowercased, in arrival order; the `authorization` value is `"[REDACTED]"`.
    pub headers: Vec<(String, String)>,
    /// Whether the request passed the authorization check.
    pub authorized: bool,
}

impl RecordedRequest {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::demo::query::parse_query(&self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}
