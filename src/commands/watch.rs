//! `shiplog` without a subcommand: every deployment of the team, headless, until the dashboard
//! lands. Without a token, the demo.

use std::sync::Arc;

use shiplog::exit;
use shiplog::metrics::Metrics;
use shiplog::secret::Secret;
use shiplog::stream::engine::{EngineOptions, StreamEngine};
use shiplog::stream::FollowOptions;

use super::{report, report_drops};
use crate::cli::Cli;

pub async fn run(cli: &Cli) -> i32 {
    let mut settings = match super::settings(cli) {
        Ok(s) => s,
        Err(code) => return code,
    };
    super::init_diagnostics(&settings);
    let shutdown = super::shutdown_on_signals();
    let logger = match super::stdout_logger(super::text_format(true), None) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut simulator = None;
    let token = match settings.token.clone() {
        Some(token) => token,
        None => {
            let handle = match super::demo::start_demo(0, 1.0).await {
                Ok(handle) => handle,
                Err(err) => {
                    report(format!("could not start the demo simulator: {err}"), None);
                    return exit::FOLLOW_FAILED;
                }
            };
            eprintln!(
                "shiplog: demo mode: no VERCEL_TOKEN set, so a built-in Vercel simulator at {} plays sample deployments.\n  To watch your own team: VERCEL_TOKEN=... VERCEL_TEAM_ID=team_... shiplog",
                handle.base_url()
            );
            settings.api_url = handle.base_url();
            settings.team_id = None;
            // The demo's state must not mix with a real team's.
            settings.namespace = format!("{}demo:", settings.namespace);
            simulator = Some(handle);
            Secret::new("demo")
        }
    };
    let (store, client) = match super::open_session(&settings, token, &logger).await {
        Ok(session) => session,
        Err(code) => return code,
    };
    let poll_every = if simulator.is_some() {
        std::time::Duration::from_secs(1)
    } else {
        settings.poll_interval
    };
    let options = EngineOptions {
        poll_every,
        project: settings.project.clone(),
        follow: FollowOptions {
            idle_timeout: settings.idle_timeout,
            ..FollowOptions::default()
        },
    };
    let engine = StreamEngine::new(
        client,
        store,
        logger.clone(),
        Arc::new(Metrics::new()),
        options,
    );
    engine.run(shutdown).await;
    logger.flush().await;
    report_drops(&logger);
    if let Some(handle) = simulator {
        handle.shutdown();
    }
    exit::OK
}
