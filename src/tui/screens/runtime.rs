//! The runtime side of the log pane: per deployment, the runtime rows followed for it (a
//! bounded ring of entries), the lines the quick filter (`o`) keeps, and its responses and
//! 5xx a minute for the chart. The dashboard follows one deployment's runtime logs at a time:
//! the one on screen.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::log::runtime::{status_of, RowFilter};
use crate::log::LogEntry;
use crate::stream::runtime::regression::MinuteCounts;
use crate::stream::runtime::RuntimeCommand;
use crate::tui::buffer::LogBuffer;

/// Deployments whose runtime logs are kept at most.
const LOGS_KEPT: usize = 16;

/// One deployment's runtime log as the dashboard keeps it.
#[derive(Debug)]
pub struct RuntimeLog {
    /// When a row last came (a count of rows taken), to forget the quietest log first.
    touched: u64,
    entries: VecDeque<Arc<LogEntry>>,
    /// The lines the quick filter keeps.
    pub lines: LogBuffer,
    pub minutes: MinuteCounts,
}

#[derive(Debug)]
pub struct RuntimeLogs {
    /// The pane shows the runtime log (`r`), not the build log.
    pub shown: bool,
    logs: HashMap<String, RuntimeLog>,
    capacity: usize,
    /// Rows taken so far (for `RuntimeLog::touched`).
    taken: u64,
    /// The quick filter, as typed and as parsed.
    pub only: Option<(String, RowFilter)>,
    /// Bumped whenever the shown lines are rebuilt (a new quick filter).
    pub generation: u64,
    commands: Option<mpsc::Sender<RuntimeCommand>>,
    /// The deployment whose runtime logs are followed.
    pub following: Option<String>,
}

impl RuntimeLogs {
    pub fn new(capacity: usize) -> Self {
        RuntimeLogs {
            shown: false,
            logs: HashMap::new(),
            capacity,
            taken: 0,
            only: None,
            generation: 0,
            commands: None,
            following: None,
        }
    }

    pub fn connect(&mut self, commands: mpsc::Sender<RuntimeCommand>) {
        self.commands = Some(commands);
    }

    /// Follows no deployment's runtime logs (the runtime log is hidden).
    pub fn stop(&mut self) {
        let Some(commands) = &self.commands else {
            return;
        };
        if commands.try_send(RuntimeCommand::Stop).is_ok() {
            self.following = None;
        }
    }

    /// Follows `id`'s runtime logs (and no other's) from now on.
    pub fn follow(&mut self, id: &str) {
        if self.following.as_deref() == Some(id) {
            return;
        }
        let Some(commands) = &self.commands else {
            return;
        };
        if commands
            .try_send(RuntimeCommand::Follow(id.to_owned()))
            .is_ok()
        {
            self.following = Some(id.to_owned());
        }
    }

    /// Files a runtime entry of deployment `id`.
    pub fn ingest(&mut self, id: &str, entry: &Arc<LogEntry>) {
        self.taken += 1;
        if !self.logs.contains_key(id) {
            self.make_room();
            let log = RuntimeLog {
                touched: 0,
                entries: VecDeque::new(),
                lines: LogBuffer::new(self.capacity),
                minutes: MinuteCounts::default(),
            };
            self.logs.insert(id.to_owned(), log);
        }
        let Some(log) = self.logs.get_mut(id) else {
            return;
        };
        log.touched = self.taken;
        if let Some(status) = status_of(entry) {
            log.minutes.record(entry.ts, status);
        }
        if log.entries.len() == self.capacity {
            log.entries.pop_front();
        }
        log.entries.push_back(entry.clone());
        show(&self.only, &mut log.lines, entry);
    }

    /// Forgets the log that has been quiet longest (not the one followed) when [`LOGS_KEPT`]
    /// are kept: every production's rows arrive, and production moves.
    fn make_room(&mut self) {
        if self.logs.len() < LOGS_KEPT {
            return;
        }
        let quietest = self
            .logs
            .iter()
            .filter(|(id, _)| self.following.as_deref() != Some(id.as_str()))
            .min_by_key(|(_, log)| log.touched)
            .map(|(id, _)| id.clone());
        if let Some(id) = quietest {
            self.logs.remove(&id);
        }
    }

    pub fn get(&self, id: &str) -> Option<&RuntimeLog> {
        self.logs.get(id)
    }

    /// A new quick filter (empty: none); every log's lines are rebuilt from its rows.
    pub fn set_only(&mut self, text: &str) -> Result<(), String> {
        self.only = match text.trim() {
            "" => None,
            text => Some((text.to_owned(), parse_only(text)?)),
        };
        self.generation += 1;
        for log in self.logs.values_mut() {
            log.lines = LogBuffer::new(self.capacity);
            for entry in &log.entries {
                show(&self.only, &mut log.lines, entry);
            }
        }
        Ok(())
    }
}

/// Adds `entry` to the shown `lines` when the quick filter keeps it.
fn show(only: &Option<(String, RowFilter)>, lines: &mut LogBuffer, entry: &LogEntry) {
    if only.as_ref().is_none_or(|(_, only)| only.matches(entry)) {
        lines.push_entry(entry);
    }
}

/// `status=5xx,429 level=warning path=^/api source=serverless`: the quick filter's words.
pub fn parse_only(text: &str) -> Result<RowFilter, String> {
    let (mut level, mut statuses, mut path, mut sources) = (None, Vec::new(), None, Vec::new());
    for word in text.split_whitespace() {
        let Some((name, value)) = word.split_once('=') else {
            return Err(format!(
                "{word:?}: write name=value (status, level, path, source)"
            ));
        };
        match name {
            "status" => statuses.push(value.to_owned()),
            "level" => level = Some(value),
            "path" => path = Some(value),
            "source" => sources.push(value.to_owned()),
            other => {
                return Err(format!(
                    "{other:?} is no filter: status, level, path or source"
                ))
            }
        }
    }
    RowFilter::of(level, &statuses, path, &sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Severity, Tier};

    fn row(status: u16, path: &str) -> Arc<LogEntry> {
        let mut entry = LogEntry::at(
            60_000,
            Tier::Runtime,
            Severity::Info,
            "request",
            format!("GET {path} {status}"),
        );
        entry.build_id = Some(Arc::from("dpl_a"));
        entry.metadata.extra.insert("status".into(), status.into());
        entry
            .metadata
            .extra
            .insert("request_path".into(), path.into());
        entry.metadata.extra.insert("row_id".into(), "r".into());
        Arc::new(entry)
    }

    #[test]
    fn the_quick_filter_rebuilds_the_lines_from_every_row_kept() {
        let mut logs = RuntimeLogs::new(100);
        for (status, path) in [(200, "/"), (502, "/api/pay"), (404, "/cart"), (500, "/")] {
            logs.ingest("dpl_a", &row(status, path));
        }
        let shown = |logs: &RuntimeLogs| {
            let log = logs.get("dpl_a").expect("log");
            (0..log.lines.len())
                .filter_map(|i| log.lines.line(i).map(|l| l.text.clone()))
                .collect::<Vec<_>>()
        };
        logs.set_only("status=5xx path=^/api").expect("filter");
        assert_eq!(shown(&logs), ["GET /api/pay 502"]);
        logs.ingest("dpl_a", &row(503, "/api/pay"));
        assert_eq!(shown(&logs), ["GET /api/pay 502", "GET /api/pay 503"]);
        logs.set_only("").expect("no filter");
        assert_eq!(shown(&logs).len(), 5);
        let minute = logs
            .get("dpl_a")
            .and_then(|l| l.minutes.minutes().next().copied())
            .expect("minute");
        assert_eq!((minute.responses, minute.errors), (5, 3));
    }

    #[test]
    fn the_quietest_logs_are_forgotten_first() {
        let mut logs = RuntimeLogs::new(10);
        for i in 0..LOGS_KEPT + 5 {
            let mut entry = (*row(200, "/")).clone();
            entry.build_id = Some(Arc::from(format!("dpl_{i}")));
            logs.ingest(&format!("dpl_{i}"), &Arc::new(entry));
            // The first one keeps talking.
            logs.ingest("dpl_0", &row(200, "/"));
        }
        assert_eq!(logs.logs.len(), LOGS_KEPT);
        assert!(logs.get("dpl_0").is_some(), "a busy log stays");
        assert!(logs.get("dpl_1").is_none(), "the quietest went");
    }

    #[test]
    fn a_bad_quick_filter_says_what_to_write() {
        for bad in ["status", "status=6xx", "level=loud", "path=(", "colour=red"] {
            assert!(parse_only(bad).is_err(), "{bad}");
        }
        assert!(parse_only("status=5xx,429 level=warning source=serverless,request").is_ok());
    }
}
