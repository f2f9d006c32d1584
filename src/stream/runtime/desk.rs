//! The dashboard's runtime follower: one deployment at a time, the one on screen. Its rows
//! reach the dashboard through the logger, like build lines.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{RuntimeError, RuntimeFollower};
use crate::log::runtime::RUNTIME_UNAVAILABLE;
use crate::log::{LogEntry, Severity, Tier};
use crate::shutdown::{stopped, Shutdown};

pub enum RuntimeCommand {
    /// Follow this deployment's runtime logs, and stop following any other's.
    Follow(String),
    /// Follow none.
    Stop,
}

/// Commands in; rows come out through the logger.
pub struct RuntimeHandle {
    pub commands: mpsc::Sender<RuntimeCommand>,
}

pub fn start(follower: Arc<RuntimeFollower>, mut shutdown: Shutdown) -> RuntimeHandle {
    let (commands, mut received) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut current: Option<(watch::Sender<bool>, JoinHandle<()>)> = None;
        loop {
            let command = tokio::select! {
                command = received.recv() => command,
                _ = stopped(&mut shutdown) => None,
            };
            if let Some((stop, task)) = current.take() {
                let _ = stop.send(true);
                let _ = task.await;
            }
            let id = match command {
                Some(RuntimeCommand::Follow(id)) => id,
                Some(RuntimeCommand::Stop) => continue,
                None => return,
            };
            let (stop, stopped_here) = watch::channel(false);
            let follower = follower.clone();
            let task = tokio::spawn(async move {
                match follower.follow_on_screen(&id, stopped_here).await {
                    Ok(()) | Err(RuntimeError::Interrupted) => {}
                    Err(err) => follower.logger.write(unavailable(&id, &err)),
                }
            });
            current = Some((stop, task));
        }
    });
    RuntimeHandle { commands }
}

/// Why a deployment's runtime log stays empty, shown in it.
fn unavailable(id: &str, err: &RuntimeError) -> LogEntry {
    let mut entry = LogEntry::new(
        Tier::Runtime,
        Severity::Warn,
        RUNTIME_UNAVAILABLE,
        format!("Runtime logs of {id} cannot be followed: {err}"),
    );
    entry.build_id = Some(Arc::from(id));
    entry
}
