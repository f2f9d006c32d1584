//! The simulator's shared state: deployments, their timelines' progress, faults, recorded requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::demo::model::{
    DeploymentSpec, Fault, ReadyState, RecordedRequest, SimEvent, SimulatorOptions,
};

/// Team the simulated token belongs to.
pub(crate) const TEAM_ID: &str = "team_sh1pl0gDem0Team000000000";
pub(crate) const TEAM_SLUG: &str = "shiplog-demo";
pub(crate) const USER_ID: &str = "usr_Dem0Us3rSh1pl0g0000000";
pub(crate) const USERNAME: &str = "demo-user";
pub(crate) const USER_EMAIL: &str = "demo@shiplog.invalid";

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Scales a spec duration by the simulator speed.
pub(crate) fn scaled(ms: f64, speed: f64) -> Duration {
    let secs = ms / speed / 1000.0;
    if secs.is_finite() && secs > 0.0 {
        Duration::from_secs_f64(secs)
    } else {
        Duration::ZERO
    }
}

pub(crate) fn sanitize_speed(speed: f64) -> f64 {
    if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    }
}

/// Where a deployment's timeline stands. Updated atomically (one `watch` send), so a reader that
/// sees a terminal `state` also sees the final `produced` count (but for a `LateTail` fault,
/// whose events are produced after the outcome).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    pub produced: usize,
    pub state: ReadyState,
    /// Wall-clock ms when the outcome was reached.
    pub finished_at: Option<i64>,
}

/// Compact storage of a build log: one text arena, interned kinds/levels, precomputed stamps.
pub(crate) struct EventLog {
    texts: String,
    /// (start, end) into `texts`.
    spans: Vec<(usize, usize)>,
    kinds: Vec<u16>,
    levels: Vec<u16>,
    /// Interned strings; index 0 of `levels` means "no level".
    names: Vec<String>,
    /// `created` of every event (produced or not), non-decreasing.
    pub created: Vec<i64>,
    /// Offset of every event from the build start, in spec ms (cumulative `after_ms`).
    pub offsets_ms: Vec<u64>,
}

impl EventLog {
    fn new(spec: &DeploymentSpec, build_start_ms: i64, speed: f64) -> EventLog {
        let n = spec.events.len();
        let mut log = EventLog {
            texts: String::with_capacity(spec.events.iter().map(|e| e.text.len()).sum()),
            spans: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
            levels: Vec::with_capacity(n),
            names: vec![String::new()],
            created: Vec::with_capacity(n),
            offsets_ms: Vec::with_capacity(n),
        };
        let mut cumulative: u64 = 0;
        let mut prev_created = build_start_ms;
        for (i, ev) in spec.events.iter().enumerate() {
            cumulative = cumulative.saturating_add(ev.after_ms);
            let start = log.texts.len();
            log.texts.push_str(&ev.text);
            log.spans.push((start, log.texts.len()));
            let kind = if ev.kind.is_empty() {
                "stdout"
            } else {
                &ev.kind
            };
            let k = log.intern(kind);
            log.kinds.push(k);
            let l = match &ev.level {
                Some(level) if !level.is_empty() => log.intern(level),
                _ => 0,
            };
            log.levels.push(l);
            let stamp = build_start_ms + (cumulative as f64 / speed).floor() as i64;
            let created = if i > 0 && ev.same_ms_as_previous {
                prev_created
            } else {
                stamp.max(prev_created)
            };
            prev_created = created;
            log.created.push(created);
            log.offsets_ms.push(cumulative);
        }
        log
    }

    fn intern(&mut self, s: &str) -> u16 {
        if let Some(i) = self.names.iter().skip(1).position(|n| n == s) {
            return (i + 1) as u16;
        }
        if self.names.len() >= u16::MAX as usize {
            // Absurd number of distinct kinds; fold the rest into the last one.
            return (self.names.len() - 1) as u16;
        }
        self.names.push(s.to_string());
        (self.names.len() - 1) as u16
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn text(&self, i: usize) -> &str {
        let (s, e) = self.spans[i];
        &self.texts[s..e]
    }

    pub fn kind(&self, i: usize) -> &str {
        &self.names[self.kinds[i] as usize]
    }

    pub fn level(&self, i: usize) -> Option<&str> {
        match self.levels[i] {
            0 => None,
            l => Some(&self.names[l as usize]),
        }
    }

    /// The build log as a spec again (a redeploy builds the same source).
    pub fn to_events(&self) -> Vec<SimEvent> {
        let mut previous = 0;
        (0..self.len())
            .map(|i| {
                let offset = self.offsets_ms[i];
                let event = SimEvent {
                    after_ms: offset - previous,
                    kind: self.kind(i).to_owned(),
                    text: self.text(i).to_owned(),
                    level: self.level(i).map(str::to_owned),
                    ..SimEvent::default()
                };
                previous = offset;
                event
            })
            .collect()
    }
}

#[derive(Debug)]
struct FaultSlot {
    fault: Fault,
    remaining: usize,
}

/// What a request fault does to an events request.
pub(crate) enum RequestFault {
    RateLimit { retry_after_secs: u64 },
    ServerError,
}

/// One simulated deployment.
pub(crate) struct SimDeployment {
    pub id: String,
    pub build_name: String,
    pub url: String,
    pub project: String,
    pub project_id: String,
    pub branch: String,
    pub commit_message: String,
    pub commit_sha: String,
    pub target: Option<String>,
    pub outcome: ReadyState,
    /// Extra `meta` (a redeploy's action id), beside the git ones.
    pub meta: std::collections::BTreeMap<String, String>,
    pub wrapped_shape: bool,
    pub created_at: i64,
    pub building_at: i64,
    /// How long the deployment stays QUEUED (already scaled by speed).
    pub queued_for: Duration,
    /// Digits placed between the 13-digit ms and the sequence number in `id`/`serial`.
    pub serial_salt: u32,
    pub events: EventLog,
    pub progress: watch::Sender<Progress>,
    faults: Mutex<Vec<FaultSlot>>,
    has_faults: AtomicBool,
}

impl SimDeployment {
    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    pub fn inspector_url(&self) -> String {
        format!(
            "https://vercel.com/{TEAM_SLUG}/{}/{}",
            self.project,
            self.id.trim_start_matches("dpl_")
        )
    }

    /// Takes (fires) the faults tied to event `index`, in spec order, stopping after the first
    /// one that ends the response.
    pub fn take_event_faults(&self, index: usize) -> Vec<Fault> {
        if !self.has_faults.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut slots = lock(&self.faults);
        let mut fired = Vec::new();
        for slot in slots.iter_mut() {
            if slot.remaining == 0 || slot.fault.event() != Some(index) {
                continue;
            }
            slot.remaining -= 1;
            fired.push(slot.fault.clone());
            if slot.fault.ends_response() {
                break;
            }
        }
        self.refresh_has_faults(&slots);
        fired
    }

    /// Takes (fires) the `LateTail` fault: how many events come late, and how late (in spec ms).
    pub fn take_late_tail(&self) -> Option<(usize, u64)> {
        if !self.has_faults.load(Ordering::Acquire) {
            return None;
        }
        let mut slots = lock(&self.faults);
        let tail = slots.iter_mut().find_map(|slot| match slot.fault {
            Fault::LateTail { events, delay_ms } if slot.remaining > 0 => {
                slot.remaining = 0;
                Some((events, delay_ms))
            }
            _ => None,
        });
        self.refresh_has_faults(&slots);
        tail
    }

    /// Takes the first pending request fault, if any.
    pub fn take_request_fault(&self) -> Option<RequestFault> {
        if !self.has_faults.load(Ordering::Acquire) {
            return None;
        }
        let mut slots = lock(&self.faults);
        let mut out = None;
        for slot in slots.iter_mut() {
            if slot.remaining == 0 {
                continue;
            }
            match slot.fault {
                Fault::RateLimitNextRequest { retry_after_secs } => {
                    slot.remaining -= 1;
                    out = Some(RequestFault::RateLimit { retry_after_secs });
                    break;
                }
                Fault::ServerErrorNextRequests { .. } => {
                    slot.remaining -= 1;
                    out = Some(RequestFault::ServerError);
                    break;
                }
                _ => {}
            }
        }
        self.refresh_has_faults(&slots);
        out
    }

    fn refresh_has_faults(&self, slots: &[FaultSlot]) {
        self.has_faults
            .store(slots.iter().any(|s| s.remaining > 0), Ordering::Release);
    }

    pub fn add_fault(&self, fault: Fault) {
        let mut slots = lock(&self.faults);
        let remaining = match fault {
            Fault::ServerErrorNextRequests { count } => count,
            _ => 1,
        };
        slots.push(FaultSlot { fault, remaining });
        self.refresh_has_faults(&slots);
    }

    /// Faults that have not fired (completely) yet. A partly used `ServerErrorNextRequests` is
    /// reported with its remaining count.
    pub fn unfired_faults(&self) -> Vec<Fault> {
        lock(&self.faults)
            .iter()
            .filter(|s| s.remaining > 0)
            .map(|s| match s.fault {
                Fault::ServerErrorNextRequests { .. } => {
                    Fault::ServerErrorNextRequests { count: s.remaining }
                }
                ref f => f.clone(),
            })
            .collect()
    }

    /// Moves a non-terminal deployment to `CANCELED`. Returns false when it already finished.
    pub fn cancel(&self) -> bool {
        self.progress.send_if_modified(|p| {
            if p.state.is_terminal() {
                false
            } else {
                p.state = ReadyState::Canceled;
                p.finished_at = Some(now_ms());
                true
            }
        })
    }
}

/// The simulation: state shared by the handle, the HTTP server and the timelines.
pub(crate) struct Simulation {
    pub options: SimulatorOptions,
    pub speed: f64,
    deployments: Mutex<Vec<Arc<SimDeployment>>>,
    by_id: Mutex<HashMap<String, Arc<SimDeployment>>>,
    projects: Mutex<HashMap<String, String>>,
    requests: Mutex<Vec<RecordedRequest>>,
    last_created: Mutex<i64>,
    pub shutdown: watch::Sender<bool>,
    /// The runtime the simulator was started on (timelines are spawned there).
    pub runtime: tokio::runtime::Handle,
    /// NDJSON event responses currently being served.
    pub open_streams: Arc<watch::Sender<usize>>,
    /// Where each project's production points, by project id.
    pub production: Mutex<HashMap<String, Production>>,
    /// Answers to actions still to be lost (the action is done, its answer breaks off).
    pub lost_answers: std::sync::atomic::AtomicUsize,
    /// How runtime logs are served.
    pub traffic: Mutex<super::model::RuntimeTraffic>,
    /// Per deployment, its error rate changes: (from ms, per mille), in time order.
    pub error_rates: Mutex<HashMap<String, Vec<(i64, u32)>>>,
    /// Registered webhooks and drains.
    pub hooks: super::hooks::Hooks,
}

/// A project's production as promotes and rollbacks left it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Production {
    /// The deployment a promote or rollback pointed production at, and when.
    pub pinned: Option<(String, i64)>,
    /// Off after a rollback: new production deployments then stay off production until a
    /// promote.
    pub frozen: bool,
    /// `lastAliasRequest`, as the projects endpoint shows it.
    pub last_request: Option<serde_json::Value>,
}

impl Simulation {
    pub fn new(options: SimulatorOptions, runtime: tokio::runtime::Handle) -> Simulation {
        let speed = sanitize_speed(options.speed);
        Simulation {
            options,
            speed,
            deployments: Mutex::new(Vec::new()),
            by_id: Mutex::new(HashMap::new()),
            projects: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            last_created: Mutex::new(0),
            shutdown: watch::Sender::new(false),
            runtime,
            open_streams: Arc::new(watch::Sender::new(0)),
            production: Mutex::new(HashMap::new()),
            lost_answers: std::sync::atomic::AtomicUsize::new(0),
            traffic: Mutex::new(super::model::RuntimeTraffic::default()),
            error_rates: Mutex::new(HashMap::new()),
            hooks: super::hooks::Hooks::default(),
        }
    }

    pub fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub fn record(&self, req: RecordedRequest) {
        lock(&self.requests).push(req);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<SimDeployment>> {
        lock(&self.by_id).get(id).cloned()
    }

    /// Looks a deployment up by id or by its URL hostname (with or without scheme / trailing
    /// slash).
    pub fn find(&self, id_or_url: &str) -> Option<Arc<SimDeployment>> {
        if let Some(d) = self.get(id_or_url) {
            return Some(d);
        }
        let host = id_or_url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        lock(&self.deployments)
            .iter()
            .find(|d| d.url.eq_ignore_ascii_case(host))
            .cloned()
    }

    /// All deployments, oldest first.
    pub fn all(&self) -> Vec<Arc<SimDeployment>> {
        lock(&self.deployments).clone()
    }

    /// Forgets the oldest finished deployments so that at most `keep` finished ones remain.
    pub fn prune_finished(&self, keep: usize) {
        let mut list = lock(&self.deployments);
        let finished = list
            .iter()
            .filter(|d| d.progress().state.is_terminal())
            .count();
        if finished <= keep {
            return;
        }
        let mut to_remove = finished - keep;
        let mut by_id = lock(&self.by_id);
        list.retain(|d| {
            if to_remove > 0 && d.progress().state.is_terminal() {
                to_remove -= 1;
                by_id.remove(&d.id);
                false
            } else {
                true
            }
        });
    }

    /// The project's name and id, by either.
    pub fn project(&self, id_or_name: &str) -> Option<(String, String)> {
        lock(&self.projects)
            .iter()
            .find(|(name, id)| *name == id_or_name || *id == id_or_name)
            .map(|(name, id)| (name.clone(), id.clone()))
    }

    /// The deployment production points at: the last promote or rollback, or a production
    /// deployment that became ready after it (not after a rollback, which freezes production).
    pub fn production_of(&self, project_id: &str) -> Option<Arc<SimDeployment>> {
        let state = lock(&self.production)
            .get(project_id)
            .cloned()
            .unwrap_or_default();
        let pinned = state
            .pinned
            .as_ref()
            .and_then(|(id, at)| Some((self.get(id)?, *at)));
        if state.frozen {
            return pinned.map(|(dep, _)| dep);
        }
        let newest_ready = self
            .all()
            .into_iter()
            .filter(|d| d.project_id == project_id && d.target.as_deref() == Some("production"))
            .filter_map(|d| {
                let p = d.progress();
                (p.state == ReadyState::Ready).then_some((d, p.finished_at.unwrap_or(0)))
            })
            .max_by_key(|(_, at)| *at);
        match (pinned, newest_ready) {
            (Some(pinned), Some(ready)) => Some(if ready.1 > pinned.1 {
                ready.0
            } else {
                pinned.0
            }),
            (pinned, ready) => pinned.or(ready).map(|(dep, _)| dep),
        }
    }

    fn project_id(&self, project: &str) -> String {
        lock(&self.projects)
            .entry(project.to_string())
            .or_insert_with(|| format!("prj_{}", Alphanumeric.sample_string(&mut rand::rng(), 28)))
            .clone()
    }

    /// Registers a deployment that was created `ago_ms` ago and has long reached its outcome,
    /// every event produced (history: no timeline runs).
    pub fn insert_finished(&self, spec: &DeploymentSpec, ago_ms: i64) -> Arc<SimDeployment> {
        let created_at = now_ms() - ago_ms.max(0);
        let dep = self.insert_at(spec, created_at);
        let duration = dep.events.offsets_ms.last().copied().unwrap_or(0) as i64;
        dep.progress.send_replace(Progress {
            produced: dep.events.len(),
            state: dep.outcome,
            finished_at: Some(dep.building_at + duration),
        });
        dep
    }

    /// Registers a deployment; the caller starts its timeline.
    pub fn insert(&self, spec: &DeploymentSpec) -> Arc<SimDeployment> {
        // Distinct, increasing createdAt values so that `until`-based pagination never skips.
        let created_at = {
            let mut last = lock(&self.last_created);
            let t = now_ms().max(*last + 1);
            *last = t;
            t
        };
        self.insert_at(spec, created_at)
    }

    fn insert_at(&self, spec: &DeploymentSpec, created_at: i64) -> Arc<SimDeployment> {
        let mut rng = rand::rng();
        let id = format!("dpl_{}", Alphanumeric.sample_string(&mut rng, 28));
        let build_name = format!("bld_{}", lower_alnum(&mut rng, 9));
        let slug = url_slug(&spec.project);
        let url = format!("{slug}-{}-{TEAM_SLUG}.vercel.app", lower_alnum(&mut rng, 9));
        let commit_sha: String = (0..40)
            .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
            .collect();
        let queued_for = scaled(spec.queued_ms as f64, self.speed);
        let building_at = created_at + queued_for.as_millis() as i64;
        let events = EventLog::new(spec, building_at, self.speed);
        let outcome = if spec.outcome.is_terminal() {
            spec.outcome
        } else {
            ReadyState::Ready
        };
        let initial_state = if spec.queued_ms > 0 {
            ReadyState::Queued
        } else {
            ReadyState::Building
        };
        let mut faults = Vec::new();
        for f in &spec.faults {
            let remaining = match f {
                Fault::ServerErrorNextRequests { count } => *count,
                _ => 1,
            };
            faults.push(FaultSlot {
                fault: f.clone(),
                remaining,
            });
        }
        let has_faults = faults.iter().any(|s| s.remaining > 0);
        let dep = Arc::new(SimDeployment {
            id: id.clone(),
            build_name,
            url,
            project: spec.project.clone(),
            project_id: self.project_id(&spec.project),
            branch: spec.branch.clone().unwrap_or_else(|| "main".to_string()),
            commit_message: spec
                .commit_message
                .clone()
                .unwrap_or_else(|| "Update dependencies".to_string()),
            commit_sha,
            target: spec.target.clone(),
            outcome,
            meta: spec.meta.clone(),
            wrapped_shape: spec.wrapped_shape,
            created_at,
            building_at,
            queued_for,
            serial_salt: rng.random_range(10_000_000..100_000_000),
            events,
            progress: watch::Sender::new(Progress {
                produced: 0,
                state: initial_state,
                finished_at: None,
            }),
            faults: Mutex::new(faults),
            has_faults: AtomicBool::new(has_faults),
        });
        lock(&self.deployments).push(dep.clone());
        lock(&self.by_id).insert(id, dep.clone());
        dep
    }
}

fn lower_alnum(rng: &mut impl Rng, n: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// A project name as it appears in a deployment hostname.
fn url_slug(project: &str) -> String {
    let mut s: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_matches('-');
    if s.is_empty() {
        "app".to_string()
    } else {
        s.chars().take(32).collect()
    }
}
