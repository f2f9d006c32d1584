//! Render tests: every screen drawn into ratatui's `TestBackend` and compared with insta
//! snapshots, in two themes and two sizes.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use shiplog::alert::book::{AlertRecord, AlertState};
use shiplog::alert::silence::Silence;
use shiplog::alert::{AlertSeverity, Channel};
use shiplog::log::{LogEntry, Severity, Tier};
use shiplog::stream::engine::EngineSnapshot;
use shiplog::stream::entries::EntryContext;
use shiplog::stream::runtime::entries::row_entry;
use shiplog::stream::StreamHealth;
use shiplog::tui::app::{App, Screen, Source};
use shiplog::tui::theme::Theme;
use shiplog::tui::ui;
use shiplog::vercel::{DeploymentSummary, RuntimeRow};

/// 2026-11-26T09:20:00Z
const NOW: i64 = 1_795_684_800_000;

fn deployment(
    uid: &str,
    name: &str,
    state: &str,
    branch: &str,
    message: &str,
    age_s: i64,
) -> DeploymentSummary {
    let created = NOW - age_s * 1000;
    // A made-up commit per deployment, by one of three people.
    let sha: String = uid.bytes().rev().map(|b| format!("{:02x}", b)).collect();
    let author = ["ana", "ben", "chidi"][message.len() % 3];
    let target = if name == "docs" || name == "storefront" {
        "production".into()
    } else {
        serde_json::Value::Null
    };
    serde_json::from_value(serde_json::json!({
        "uid": uid, "name": name, "readyState": state, "created": created,
        "projectId": format!("prj_{name}"), "target": target,
        "buildingAt": created + 2_000,
        "ready": if state == "BUILDING" { serde_json::Value::Null } else { (created + 95_000).into() },
        "meta": {"githubCommitRef": branch, "githubCommitMessage": message,
                 "githubCommitSha": sha, "githubCommitAuthorLogin": author}
    }))
    .expect("deployment summary")
}

fn build_line(uid: &str, i: i64, kind: &str, severity: Severity, text: &str) -> Arc<LogEntry> {
    Arc::new(
        LogEntry::at(NOW - 60_000 + i * 250, Tier::Build, severity, kind, text).with_build(uid),
    )
}

/// A dashboard with three deployments and a build log, as the demo shows it.
fn app() -> App {
    let mut app = App::new(Source::Demo, "embedded", 10_000);
    app.frozen_now = Some(NOW);
    let mut snapshot = EngineSnapshot {
        deployments: vec![
            deployment(
                "dpl_3nW8kQ",
                "storefront",
                "BUILDING",
                "main",
                "feat(cart): persist cart between visits",
                75,
            ),
            deployment(
                "dpl_7pLr2Z",
                "checkout-web",
                "ERROR",
                "feat/discount-codes",
                "feat(checkout): apply discount codes",
                420,
            ),
            deployment(
                "dpl_9xQe4M",
                "docs",
                "READY",
                "main",
                "docs: deployment guide",
                3_900,
            ),
        ],
        loaded: true,
        ..EngineSnapshot::default()
    };
    snapshot
        .health
        .insert("dpl_3nW8kQ".into(), StreamHealth::Live);
    snapshot
        .health
        .insert("dpl_7pLr2Z".into(), StreamHealth::Finished);
    snapshot
        .production
        .insert("prj_docs".into(), "dpl_9xQe4M".into());
    app.apply_snapshot(snapshot);
    let texts = [
        ("stdout", Severity::Info, "Running build in Washington, D.C., USA (East) – iad1"),
        ("stdout", Severity::Info, "Cloning github.com/acme/storefront (Branch: main, Commit: 3f2a9c1)"),
        ("command", Severity::Info, "Running \"vercel build\""),
        ("stdout", Severity::Info, "Installing dependencies..."),
        ("stderr", Severity::Warn, "npm warn deprecated inflight@1.0.6: This module is not supported, and leaks memory. Do not use it."),
        ("stdout", Severity::Info, "added 487 packages in 7s"),
        ("stdout", Severity::Info, "  ▲ Next.js 15.3.2"),
        ("stdout", Severity::Info, "   Creating an optimized production build ..."),
        ("stdout", Severity::Info, " ✓ Compiled successfully in 12.3s"),
        ("stderr", Severity::Error, "Type error: Property 'total' does not exist on type 'Cart'."),
        ("stdout", Severity::Info, "   Collecting page data ..."),
        ("stdout", Severity::Info, "Using VERCEL_TOKEN=[REDACTED] for upload"),
    ];
    let entries: Vec<Arc<LogEntry>> = (0..30)
        .map(|i| {
            let (kind, severity, text) = texts[i % texts.len()];
            build_line("dpl_3nW8kQ", i as i64, kind, severity, text)
        })
        .collect();
    app.ingest(&entries);
    app.deployments.lag_ms = Some(120);
    app
}

fn draw(app: &App, theme: &Theme, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal
        .draw(|frame| ui::render(frame, app, theme))
        .expect("draw");
    terminal
}

/// What the dark theme draws, as text.
fn screen_text(app: &App, width: u16, height: u16) -> String {
    format!("{}", draw(app, &theme("dark"), width, height).backend())
}

fn press(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

fn theme(name: &str) -> Theme {
    Theme::builtin(name).expect("built-in theme")
}

/// Snapshots `app` in the dark and mono themes, at 80x24 and 160x48.
fn snapshot_everywhere(screen: &str, app: &App) {
    for name in ["dark", "mono"] {
        for (width, height) in [(80, 24), (160, 48)] {
            let terminal = draw(app, &theme(name), width, height);
            insta::assert_snapshot!(
                format!("{screen}_{name}_{width}x{height}"),
                terminal.backend()
            );
        }
    }
}

#[test]
fn main_screen() {
    snapshot_everywhere("main", &app());
}

#[test]
fn names_from_the_api_cannot_drive_the_terminal() {
    let mut app = app();
    app.apply_snapshot(EngineSnapshot {
        deployments: vec![deployment(
            "dpl_evil",
            "evil\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{1b}[2J\u{202e}gpj.exe",
            "READY",
            "main\u{1b}[31m",
            "msg\u{9b}31m",
            60,
        )],
        loaded: true,
        ..EngineSnapshot::default()
    });
    let text = screen_text(&app, 160, 30);
    assert!(text.contains("evil\u{fffd}gpj.exe"), "{text}");
    assert!(
        !text.contains(|c: char| c.is_control() && c != '\n'),
        "{text:?}"
    );
}

#[test]
fn help_overlay() {
    let mut app = app();
    press(&mut app, KeyCode::Char('?'));
    snapshot_everywhere("help", &app);
}

#[test]
fn filter_input_shows_a_bad_pattern() {
    let mut app = app();
    press(&mut app, KeyCode::Char('f'));
    type_text(&mut app, "error (");
    snapshot_everywhere("filter_bad_pattern", &app);
}

#[test]
fn filtered_paused_wrapped_and_searched_log() {
    let mut app = app();
    press(&mut app, KeyCode::Char('f'));
    type_text(&mut app, "!warn|Cloning");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('w'));
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "next");
    press(&mut app, KeyCode::Enter);
    snapshot_everywhere("filtered", &app);
}

fn alert(
    fp: &str,
    rule: &str,
    severity: AlertSeverity,
    summary: &str,
    age_s: i64,
    state: AlertState,
) -> AlertRecord {
    AlertRecord {
        fingerprint: fp.to_owned(),
        rule: rule.to_owned(),
        severity,
        channels: vec![Channel::Slack, Channel::Discord],
        summary: summary.to_owned(),
        deployment_id: Some("vercel-dpl_7pLr2Z-01JD5K3M9Q".to_owned()),
        build_id: Some("dpl_7pLr2Z".to_owned()),
        entry_ts: NOW - age_s * 1000,
        first_seen: NOW - age_s * 1000,
        last_seen: NOW - 30_000,
        count: 3,
        state,
        deliveries: Default::default(),
        rollback_to: None,
        labels: Default::default(),
        muted: None,
    }
}

#[test]
fn alert_feed() {
    let mut app = app();
    app.screen = Screen::Alerts;
    let (commands, _rx) = tokio::sync::mpsc::channel(4);
    app.alerts
        .connect(commands, tokio::sync::mpsc::channel(1).0);
    app.alerts.records = vec![
        alert(
            "a1b2c3",
            "build_out_of_memory",
            AlertSeverity::High,
            "FATAL ERROR: JavaScript heap out of memory",
            90,
            AlertState::Firing,
        ),
        alert(
            "d4e5f6",
            "deploy_failed",
            AlertSeverity::Critical,
            "Deployment dpl_7pLr2Z of checkout-web is ERROR",
            400,
            AlertState::Acknowledged {
                by: "ana".to_owned(),
                at: NOW - 60_000,
                until: NOW + 3_600_000,
                note: Some("rolling back".to_owned()),
            },
        ),
        alert(
            "0a9b8c",
            "rate_limited",
            AlertSeverity::Medium,
            "Vercel API answered 429 (rate_limited)",
            4_000,
            AlertState::Resolved {
                by: None,
                at: NOW - 100_000,
            },
        ),
    ];
    app.alerts.selected = Some("d4e5f6".to_owned());
    snapshot_everywhere("alerts", &app);
    let mut off = self::app();
    off.screen = Screen::Alerts;
    let terminal = draw(&off, &theme("dark"), 80, 24);
    assert!(format!("{}", terminal.backend()).contains("alerting is off"));
}

/// A silenced alert (and an inhibited one) in the feed: recorded and shown, marked muted, the
/// silence named in the details.
#[test]
fn alert_feed_with_muted_alerts() {
    use shiplog::alert::book::Muted;

    let mut app = app();
    app.screen = Screen::Alerts;
    app.alerts.connect(
        tokio::sync::mpsc::channel(4).0,
        tokio::sync::mpsc::channel(1).0,
    );
    let mut silenced = alert(
        "b7c8d9",
        "build_failed",
        AlertSeverity::Medium,
        "Command \"npm run build\" exited with 1",
        120,
        AlertState::Firing,
    );
    silenced.muted = Some(Muted::Silence {
        silence: "01JD4X2K9QW8E5R7T3Y6U1I0PA".to_owned(),
        author: "ana".to_owned(),
        comment: "flaky e2e, fixing in #482".to_owned(),
        until: NOW + 7_200_000,
    });
    let mut inhibited = alert(
        "e1f2a3",
        "system_error",
        AlertSeverity::High,
        "Stream for dpl_7pLr2Z ended while the build ran",
        100,
        AlertState::Firing,
    );
    inhibited.muted = Some(Muted::Inhibited {
        rule: "deploy_failed".to_owned(),
        fingerprint: "d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3".to_owned(),
    });
    let firing = alert(
        "d4e5f6",
        "deploy_failed",
        AlertSeverity::High,
        "Deployment dpl_7pLr2Z of checkout-web is ERROR",
        90,
        AlertState::Firing,
    );
    app.alerts.records = vec![firing, inhibited, silenced];
    app.alerts.selected = Some("b7c8d9".to_owned());
    snapshot_everywhere("alerts_muted", &app);
}

fn silence(id: &str, matchers: &str, starts: i64, ends: i64, by: &str, comment: &str) -> Silence {
    Silence {
        id: id.to_owned(),
        matchers: shiplog::alert::matcher::parse(matchers).expect("matchers"),
        starts_at: starts,
        ends_at: ends,
        created_by: by.to_owned(),
        comment: comment.to_owned(),
        updated_at: starts,
    }
}

/// `s` on an alert opens the silence editor with its rule, project and deployment filled in,
/// editable; a bad matcher keeps it open with why; then how long, then why, and it is sent.
#[test]
fn the_silence_editor_starts_from_the_alert() {
    use shiplog::alert::runner::SilenceCommand;

    let mut app = app();
    app.screen = Screen::Alerts;
    let (silences, mut sent) = tokio::sync::mpsc::channel(4);
    app.alerts
        .connect(tokio::sync::mpsc::channel(4).0, silences);
    let mut record = alert(
        "b7c8d9",
        "build_failed",
        AlertSeverity::Medium,
        "Command \"npm run build\" exited with 1",
        120,
        AlertState::Firing,
    );
    record.labels = shiplog::alert::labels::Labels::from_pairs([
        ("rule", Some("build_failed")),
        ("project", Some("checkout-web")),
        ("deployment", Some("dpl_7pLr2Z")),
    ]);
    app.alerts.records = vec![record];
    press(&mut app, KeyCode::Char('s'));
    snapshot_everywhere("silence_editor", &app);
    let text = screen_text(&app, 160, 48);
    assert!(
        text.contains(r#"rule="build_failed", project="checkout-web", deployment="dpl_7pLr2Z""#),
        "{text}"
    );
    // Widened to every deployment (`, deployment="dpl_7pLr2Z"` taken out), with a typo first.
    for _ in 0..25 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, ", deploymnet=x");
    press(&mut app, KeyCode::Enter);
    let text = screen_text(&app, 160, 48);
    assert!(text.contains("unknown label \"deploymnet\""), "{text}");
    for _ in 0..14 {
        press(&mut app, KeyCode::Backspace);
    }
    press(&mut app, KeyCode::Enter);
    assert!(screen_text(&app, 160, 48).contains("silence for:"));
    for _ in 0..2 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "2h");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    assert!(
        screen_text(&app, 160, 48).contains("say why"),
        "a comment is required"
    );
    type_text(&mut app, "flaky e2e, fixing in #482");
    press(&mut app, KeyCode::Enter);
    match sent.try_recv() {
        Ok(SilenceCommand::Add(asked)) => {
            assert_eq!(
                shiplog::alert::matcher::describe(&asked.matchers),
                r#"{rule="build_failed", project="checkout-web"}"#
            );
            assert_eq!(asked.duration, std::time::Duration::from_secs(7200));
            assert_eq!(asked.comment, "flaky e2e, fixing in #482");
        }
        other => panic!("no silence sent: {other:?}"),
    }
}

/// `S` lists the silences (pending, active, expired); `e` expires the chosen one.
#[test]
fn the_silences_list() {
    use shiplog::alert::runner::SilenceCommand;

    let mut app = app();
    app.screen = Screen::Alerts;
    let (silences, mut sent) = tokio::sync::mpsc::channel(4);
    app.alerts
        .connect(tokio::sync::mpsc::channel(4).0, silences);
    app.alerts.silences = vec![
        silence(
            "01JD4X2K9QW8E5R7T3Y6U1I0PA",
            r#"rule="build_failed", project=~"shop|web""#,
            NOW - 600_000,
            NOW + 6_600_000,
            "ana",
            "flaky e2e, fixing in #482",
        ),
        silence(
            "01JD4W7R2MV4C8N1B5X9Z3Q6PB",
            r#"project="checkout-web""#,
            NOW + 1_800_000,
            NOW + 5_400_000,
            "bo",
            "database migration window",
        ),
        silence(
            "01JD3T5P8LK2J6H9G4F1D7S3PC",
            r#"rule="runtime_error_burst", target="preview""#,
            NOW - 90_000_000,
            NOW - 86_400_000,
            "ana",
            "preview load test",
        ),
    ];
    press(&mut app, KeyCode::Char('S'));
    snapshot_everywhere("silences", &app);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('e'));
    match sent.try_recv() {
        Ok(SilenceCommand::Expire { id }) => assert_eq!(id, "01JD4W7R2MV4C8N1B5X9Z3Q6PB"),
        other => panic!("no expiry sent: {other:?}"),
    }
    press(&mut app, KeyCode::Char('S'));
    assert!(screen_text(&app, 160, 48).contains("Alerts"));
}

#[test]
fn queue_screen() {
    use shiplog::alert::queue::worker::{ChannelHealth, QueueSnapshot};
    use shiplog::alert::queue::{FinishedJob, QueueCounts};

    let mut app = app();
    app.screen = Screen::Queue;
    let (commands, _rx) = tokio::sync::mpsc::channel(4);
    app.alerts
        .connect(commands, tokio::sync::mpsc::channel(1).0);
    let mut channels = std::collections::BTreeMap::new();
    channels.insert(
        Channel::Slack,
        ChannelHealth {
            paused_until_ms: Some(NOW + 42_000),
            last_error: Some("rate limited (429)".to_owned()),
            last_sent_ms: Some(NOW - 65_000),
            ..Default::default()
        },
    );
    channels.insert(
        Channel::Discord,
        ChannelHealth {
            last_sent_ms: Some(NOW - 5_000),
            ..Default::default()
        },
    );
    channels.insert(
        Channel::Email,
        ChannelHealth {
            last_error: Some("the mail server refused: 550 5.1.1 no such user".to_owned()),
            ..Default::default()
        },
    );
    channels.insert(
        Channel::Sms,
        ChannelHealth {
            off: Some("switched off (SMS_ALERTS_ENABLED)".to_owned()),
            ..Default::default()
        },
    );
    channels.insert(
        Channel::Webhook,
        ChannelHealth {
            off: Some("no destination (ALERT_WEBHOOK_URL)".to_owned()),
            ..Default::default()
        },
    );
    app.queue = QueueSnapshot {
        name: "LOGQ:production".to_owned(),
        backend: "redis".to_owned(),
        degraded: false,
        counts: QueueCounts {
            waiting: 7,
            in_flight: 3,
            retrying: 2,
            dead_lettered: 1,
            completed: 412,
        },
        depth_history: (0..120u64).map(|i| (i * 7 % 23) / 2).collect(),
        sent_last_minute: 38,
        concurrency: 15,
        rate_per_second: 50,
        channels,
        dead: vec![FinishedJob {
            id: "0a9b.email".to_owned(),
            channel: Channel::Email,
            rule: "deploy_failed".to_owned(),
            at_ms: NOW - 300_000,
            attempts: 1,
            reason: Some("the mail server refused: 550 5.1.1 no such user".to_owned()),
        }],
    };
    snapshot_everywhere("queue", &app);
    app.queue.degraded = true;
    app.queue.backend = "in process (Redis unreachable)".to_owned();
    let screen = screen_text(&app, 120, 40);
    assert!(
        screen.contains("Redis unreachable: queueing in this process"),
        "{screen}"
    );
    assert!(
        screen.contains("alert queue: Redis unreachable"),
        "{screen}"
    );
}

fn breakglass_app() -> App {
    use shiplog::breakglass::audit::{AuditRecord, Outcome};
    use shiplog::breakglass::desk::BreakglassView;
    use shiplog::breakglass::entry::{BreakglassEntry, Storage};
    use shiplog::breakglass::store::Boundary;
    use shiplog::role::Role;

    let entry = |id: &str, team: &str, left_ms: i64, used: u32, active: bool| BreakglassEntry {
        id: format!("bg_{id}"),
        connection_id: id.to_owned(),
        user_id: "user_ana".to_owned(),
        access_token: String::new(),
        refresh_token: None,
        storage: Storage::Sealed,
        team_id: Some(format!("team_{team}")),
        team_name: Some(team.to_owned()),
        vercel_project_id: None,
        created_by_admin_id: None,
        reason: "automatic_on_oauth_success".to_owned(),
        justification: None,
        expires_at: NOW + left_ms,
        accessed_at: None,
        access_count: used,
        max_access_count: 10,
        is_active: active,
        access_restricted_until: None,
        created_at: NOW - 3_600_000,
        updated_at: NOW - 3_600_000,
    };
    let record = |ago: i64, outcome: Outcome, reason: &str, why: &str| AuditRecord {
        at: NOW - ago,
        admin_id: "ana".to_owned(),
        role: "breakglass_admin".to_owned(),
        connection_id: "conn_7hq2m9x4k1pz".to_owned(),
        justification: why.to_owned(),
        outcome,
        reason: reason.to_owned(),
    };
    let mut app = app();
    app.screen = Screen::Breakglass;
    app.breakglass.apply_view(BreakglassView {
        enabled: true,
        user: "ana".to_owned(),
        role: Role::BreakglassAdmin,
        storage: Storage::Sealed,
        boundary: Boundary::FileOwner,
        entries: vec![
            entry("conn_7hq2m9x4k1pz", "Acme", 20 * 3_600_000, 3, true),
            entry("conn_b4c1d8e2f0aa", "Acme Labs", -60_000, 0, false),
        ],
        audit: vec![
            record(
                60_000,
                Outcome::Granted,
                "use 3 of 10",
                "TOKEN_ENCRYPTION_KEY was rotated wrongly; deploys blocked",
            ),
            record(
                120_000,
                Outcome::Denied,
                "the justification is too short: 7 characters, at least 20 are needed to say why",
                "need it",
            ),
        ],
        audit_error: None,
        error: None,
    });
    app
}

#[test]
fn breakglass_screen() {
    use shiplog::breakglass::access::{Denial, Grant};
    use shiplog::secret::Secret;

    let mut app = breakglass_app();
    app.breakglass.on_result(Ok(Grant {
        connection_id: "conn_7hq2m9x4k1pz".to_owned(),
        access_token: Secret::new("vcp_live_9f8e7d6c5b4a39281706f3a1"),
        refresh_token: None,
        team_id: Some("team_Acme".to_owned()),
        expires_at: NOW + 20 * 3_600_000,
        uses_left: 6,
        warning: "Emergency credentials: use them to restore access, then log in again and revoke these tokens.".to_owned(),
    }));
    snapshot_everywhere("breakglass_granted", &app);
    let masked = screen_text(&app, 120, 30);
    assert!(masked.contains("vcp_••••••••••••f3a1"), "{masked}");
    assert!(!masked.contains("9f8e7d6c"), "masked until revealed");
    press(&mut app, KeyCode::Char('v'));
    let shown = screen_text(&app, 120, 30);
    assert!(
        shown.contains("vcp_live_9f8e7d6c5b4a39281706f3a1"),
        "{shown}"
    );
    assert!(shown.contains("hides in 30s"), "{shown}");
    // 30 s later it is hidden again.
    app.frozen_now = Some(NOW + 30_000);
    assert!(app.breakglass.tick(app.now()));
    let hidden = screen_text(&app, 120, 30);
    assert!(!hidden.contains("9f8e7d6c"), "{hidden}");

    let mut denied = breakglass_app();
    denied
        .breakglass
        .on_result(Err(Denial::LimitReached { max: 10 }));
    snapshot_everywhere("breakglass_denied", &denied);
}

#[test]
fn breakglass_requests_need_a_justification_then_the_connection_id() {
    let mut app = breakglass_app();
    let (requests, mut sent) = tokio::sync::mpsc::channel(4);
    app.breakglass.connect(requests);
    press(&mut app, KeyCode::Enter);
    let screen = screen_text(&app, 120, 30);
    assert!(screen.contains("BREAKGLASS justification"), "{screen}");
    // Free text, not a pattern: a parenthesis is no error.
    type_text(&mut app, "TOKEN_ENCRYPTION_KEY lost (in the migration");
    let screen = screen_text(&app, 120, 30);
    assert!(!screen.contains('✖'), "{screen}");
    press(&mut app, KeyCode::Enter);
    let screen = screen_text(&app, 120, 30);
    assert!(
        screen.contains("type the connection id to confirm"),
        "{screen}"
    );
    type_text(&mut app, "conn_wrong");
    press(&mut app, KeyCode::Enter);
    let screen = screen_text(&app, 120, 30);
    assert!(
        screen.contains("Not sent: the confirmation must be the connection id conn_7hq2m9x4k1pz"),
        "{screen}"
    );
    assert!(sent.try_recv().is_err());
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, "TOKEN_ENCRYPTION_KEY lost in the migration");
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, "conn_7hq2m9x4k1pz");
    press(&mut app, KeyCode::Enter);
    let request = sent.try_recv().expect("a request");
    assert_eq!(request.connection_id, "conn_7hq2m9x4k1pz");
    assert_eq!(
        request.justification,
        "TOKEN_ENCRYPTION_KEY lost in the migration"
    );
}

#[test]
fn empty_dashboard_while_loading() {
    let mut app = App::new(Source::Team(Some("team_acme".into())), "redis", 10_000);
    app.frozen_now = Some(NOW);
    snapshot_everywhere("empty_loading", &app);
}

#[test]
fn control_characters_in_build_output_never_reach_the_screen() {
    let mut app = app();
    app.ingest(&[build_line(
        "dpl_3nW8kQ",
        40,
        "stdout",
        Severity::Info,
        "\u{1b}[2J\u{1b}]0;owned\u{7}clean\u{8}\r",
    )]);
    let terminal = draw(&app, &theme("dark"), 80, 24);
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("clean"));
    assert!(!screen.contains("owned") && !screen.contains('\u{1b}'));
}

/// Budget: a frame in under 2 ms with 50 deployments and 100,000 buffered lines. Measured in
/// `benches/render.rs`; this test only proves such a frame renders the newest lines.
#[test]
fn a_large_buffer_renders_its_newest_lines() {
    let mut app = App::new(Source::Demo, "embedded", 100_000);
    app.frozen_now = Some(NOW);
    let deployments = (0..50)
        .map(|i| {
            deployment(
                &format!("dpl_{i:04}"),
                "storefront",
                "BUILDING",
                "main",
                "m",
                i,
            )
        })
        .collect();
    app.apply_snapshot(EngineSnapshot {
        deployments,
        loaded: true,
        ..EngineSnapshot::default()
    });
    let entries: Vec<Arc<LogEntry>> = (0..100_000)
        .map(|i| {
            build_line(
                "dpl_0000",
                i,
                "stdout",
                Severity::Info,
                &format!("line {i}"),
            )
        })
        .collect();
    app.ingest(&entries);
    let terminal = draw(&app, &theme("dark"), 160, 48);
    assert!(format!("{}", terminal.backend()).contains("line 99999"));
}

/// Themes reach the screen: dark colours the failed build's state, mono uses no colour at all
/// (NO_COLOR users still see bold, reverse video and the symbols).
#[test]
fn themes_colour_the_screen_and_mono_has_no_colour() {
    use ratatui::style::Color;
    let app = app();
    let cell_style = |theme_name: &str, symbol: &str| {
        let terminal = draw(&app, &theme(theme_name), 80, 24);
        let buffer = terminal.backend().buffer().clone();
        let area = buffer.area;
        let position = (area.top()..area.bottom())
            .flat_map(|y| (area.left()..area.right()).map(move |x| (x, y)))
            .find(|&(x, y)| buffer[(x, y)].symbol() == symbol)
            .expect("symbol on screen");
        (buffer[position].style(), buffer)
    };
    let (dark_error, _) = cell_style("dark", "✖");
    assert!(
        dark_error.fg.is_some_and(|c| c != Color::Reset),
        "{dark_error:?}"
    );
    let (_, mono) = cell_style("mono", "✖");
    for cell in mono.content() {
        let no_colour = |c: Color| c == Color::Reset;
        assert!(
            no_colour(cell.fg) && no_colour(cell.bg),
            "a colour in mono: {cell:?}"
        );
    }
}

mod actions {
    use super::*;
    use shiplog::actions::desk::{ActionAnswer, ActionCommand, ActivityView};
    use shiplog::actions::{
        ActionKind, ActionRecord, ActionRequest, Confirmation, Consent, Finished, Outcome, Plan,
    };
    use shiplog::role::Role;
    use shiplog::tui::input::InputKind;
    use shiplog::vercel::ReadyState;

    fn record(action: ActionKind, outcome: Outcome, user: &str, ago_s: i64) -> ActionRecord {
        ActionRecord {
            at: NOW - ago_s * 1000,
            action_id: format!("01J{user}{ago_s}"),
            action,
            outcome,
            user: user.to_owned(),
            role: Role::Operator,
            project: "checkout-web".to_owned(),
            deployment: "dpl_7pLr2Z".to_owned(),
            from: None,
            created: None,
            reason: None,
            answer: None,
            instance: "host-1".to_owned(),
        }
    }

    fn plan(kind: ActionKind, deployment: &str, project: &str, confirmation: Confirmation) -> Plan {
        Plan {
            action_id: "01JPLAN".to_owned(),
            kind,
            deployment: deployment.to_owned(),
            state: ReadyState::Building,
            target: Some("production".to_owned()),
            project_id: "prj_1".to_owned(),
            project: project.to_owned(),
            production: Some("dpl_current".to_owned()),
            confirmation,
            planned_at: NOW,
        }
    }

    /// The demo dashboard, connected to an actions engine that a test answers by hand.
    fn acting_app() -> (App, tokio::sync::mpsc::Receiver<ActionCommand>) {
        let mut app = app();
        let (commands, sent) = tokio::sync::mpsc::channel(8);
        app.actions.connect(commands);
        app.actions.view = Some(ActivityView {
            user: "alice".to_owned(),
            role: Role::Operator,
            actions: vec![
                record(ActionKind::Rollback, Outcome::Succeeded, "alice", 120),
                record(ActionKind::Cancel, Outcome::Failed, "bob", 900),
            ],
            error: None,
        });
        (app, sent)
    }

    #[test]
    fn cancel_from_the_menu_asks_yes_or_no_and_the_list_shows_it_at_once() {
        let (mut app, mut sent) = acting_app();
        snapshot_everywhere("actions_activity", &app);
        press(&mut app, KeyCode::Char('x'));
        snapshot_everywhere("actions_menu", &app);
        press(&mut app, KeyCode::Enter);
        let Ok(ActionCommand::Plan(request)) = sent.try_recv() else {
            panic!("the chosen action is looked up");
        };
        assert_eq!(request, ActionRequest::on(ActionKind::Cancel, "dpl_3nW8kQ"));
        let cancel = plan(
            ActionKind::Cancel,
            "dpl_3nW8kQ",
            "storefront",
            Confirmation::YesNo,
        );
        app.on_action_answer(ActionAnswer::Planned(Ok(cancel.clone())));
        snapshot_everywhere("actions_confirm_cancel", &app);
        press(&mut app, KeyCode::Char('y'));
        let Ok(ActionCommand::Run(sent_plan, consent)) = sent.try_recv() else {
            panic!("a yes sends it");
        };
        assert_eq!(sent_plan, cancel);
        assert_eq!(
            consent,
            Consent::Given {
                typed: None,
                reason: None
            }
        );
        app.on_action_answer(ActionAnswer::Ran(Ok(Finished {
            plan: cancel,
            outcome: Outcome::Succeeded,
            created: None,
            message: "dpl_3nW8kQ canceled".to_owned(),
        })));
        let screen = screen_text(&app, 160, 48);
        assert!(screen.contains("dpl_3nW8kQ canceled"), "{screen}");
        let row = screen
            .lines()
            .find(|l| l.contains("storefront") && (l.contains(" BUILD ") || l.contains(" CANCEL ")))
            .unwrap_or_default();
        assert!(
            row.contains("CANCEL") && !row.contains("BUILD"),
            "the list shows it at once: {row}"
        );
        assert!(!app.actions.is_open());
    }

    #[test]
    fn a_production_change_asks_for_the_project_name_then_a_reason() {
        let (mut app, mut sent) = acting_app();
        app.deployments.snapshot.deployments[2].target = Some("production".to_owned());
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Char('x'));
        let menu = screen_text(&app, 120, 30);
        assert!(
            menu.contains("Promote to production") && menu.contains("Roll production back"),
            "{menu}"
        );
        press(&mut app, KeyCode::Char('b'));
        let Ok(ActionCommand::Plan(request)) = sent.try_recv() else {
            panic!("looked up");
        };
        assert_eq!(request.kind, ActionKind::Rollback);
        let rollback = plan(
            ActionKind::Rollback,
            "dpl_9xQe4M",
            "docs",
            Confirmation::ProjectName,
        );
        app.on_action_answer(ActionAnswer::Planned(Ok(rollback.clone())));
        assert_eq!(
            app.input.as_ref().map(|i| i.kind),
            Some(InputKind::ProjectName)
        );
        snapshot_everywhere("actions_confirm_production", &app);
        type_text(&mut app, "docs");
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.input.as_ref().map(|i| i.kind), Some(InputKind::Reason));
        type_text(&mut app, "500s after the deploy");
        press(&mut app, KeyCode::Enter);
        let Ok(ActionCommand::Run(_, consent)) = sent.try_recv() else {
            panic!("sent after the reason");
        };
        assert_eq!(
            consent,
            Consent::Given {
                typed: Some("docs".to_owned()),
                reason: Some("500s after the deploy".to_owned())
            }
        );

        // Esc while typing declines: the engine records it, nothing is sent to Vercel.
        press(&mut app, KeyCode::Char('x'));
        press(&mut app, KeyCode::Char('b'));
        let _ = sent.try_recv();
        app.on_action_answer(ActionAnswer::Planned(Ok(rollback)));
        app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        let Ok(ActionCommand::Run(_, consent)) = sent.try_recv() else {
            panic!("the decline is recorded");
        };
        assert_eq!(consent, Consent::Declined);
        assert!(!app.actions.is_open());
    }

    #[test]
    fn names_from_the_api_or_the_trail_cannot_drive_the_terminal_from_a_popup() {
        let (mut app, _sent) = acting_app();
        if let Some(view) = app.actions.view.as_mut() {
            view.actions[0].user = "mallory\u{1b}]0;pwned\u{7}\u{1b}[2J".to_owned();
        }
        let evil = plan(
            ActionKind::Rollback,
            "dpl_9xQe4M",
            "docs\u{1b}[2J\u{9b}31m",
            Confirmation::ProjectName,
        );
        app.on_action_answer(ActionAnswer::Planned(Ok(evil)));
        let screen = screen_text(&app, 160, 48);
        assert!(
            !screen.contains(|c: char| c.is_control() && c != '\n'),
            "{screen:?}"
        );
        // The whole sequence goes, not only its escape character.
        assert!(
            !screen.contains("]0;pwned") && !screen.contains("[2J"),
            "{screen}"
        );
        assert!(
            screen.contains("mallory") && screen.contains("Roll back production of docs"),
            "{screen}"
        );
    }

    #[test]
    fn a_viewer_is_told_before_anything_opens() {
        let (mut app, mut sent) = acting_app();
        if let Some(view) = app.actions.view.as_mut() {
            view.role = Role::Viewer;
        }
        press(&mut app, KeyCode::Char('x'));
        assert!(!app.actions.is_open());
        assert!(sent.try_recv().is_err());
        let screen = screen_text(&app, 120, 30);
        assert!(
            screen.contains("The viewer role may not act on deployments"),
            "{screen}"
        );
    }
}

/// The demo's start screen: its day of history as the simulator serves it (ids, commits and
/// times made steady for the snapshot; live builds come later).
#[tokio::test]
async fn the_demo_start_screen() {
    use shiplog::demo::{add_history, SimulatorHandle, SimulatorOptions};
    use shiplog::secret::Secret;
    use shiplog::vercel::client::ListQuery;
    use shiplog::vercel::{ClientConfig, VercelClient};

    let sim = SimulatorHandle::start(SimulatorOptions::default())
        .await
        .expect("simulator");
    add_history(&sim);
    let client =
        VercelClient::new(ClientConfig::new(sim.base_url(), Secret::new("t"))).expect("client");
    let listed = client
        .list_deployments(&ListQuery::default())
        .await
        .expect("list")
        .deployments;
    let real_now = shiplog::clock::now_ms();
    let steady = |ms: Option<i64>| ms.map(|t| NOW - ((real_now - t) / 60_000) * 60_000);
    let mut production = std::collections::HashMap::new();
    let mut deployments = Vec::new();
    for (i, mut d) in listed.into_iter().enumerate() {
        let project = d.project_id.clone().unwrap_or_default();
        let serving = client.get_project(&project).await.expect("project");
        let id = format!("dpl_day{i:02}");
        if serving.production_id() == Some(d.uid.as_str()) {
            production.insert(project.clone(), id.clone());
        }
        d.uid = id;
        let shift = steady(d.created).unwrap_or(NOW) - d.created.unwrap_or(real_now);
        d.created = steady(d.created);
        d.building_at = d.building_at.map(|t| t + shift);
        d.ready = d.ready.map(|t| t + shift);
        d.meta.insert(
            "githubCommitSha".into(),
            format!("{:07x}", 0xa11ce + i * 4099).into(),
        );
        deployments.push(d);
    }
    let mut app = App::new(Source::Demo, "embedded", 10_000);
    app.frozen_now = Some(NOW);
    app.apply_snapshot(EngineSnapshot {
        deployments,
        production,
        loaded: true,
        ..EngineSnapshot::default()
    });
    snapshot_everywhere("demo_start", &app);
}

/// The docs deployment (production) chosen, its runtime log shown, with three minutes of
/// traffic: requests, function output, a failing request now and then.
fn runtime_app() -> App {
    let mut app = app();
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('r'));
    let ctx = EntryContext {
        deployment_id: "vercel-dpl_9xQe4M-01J".into(),
        vercel_id: "dpl_9xQe4M".into(),
        project_id: Some("prj_docs".into()),
        project_name: Some("docs".into()),
        git: None,
        replayed: false,
    };
    let paths = ["/", "/guides/deploy", "/api/search", "/api/feedback"];
    let entries: Vec<Arc<LogEntry>> = (0..90)
        .map(|i: i64| {
            let path = paths[i as usize % paths.len()];
            let failed = i % 9 == 4 || (i > 60 && i % 3 == 0);
            let row = RuntimeRow {
                level: if failed { "error" } else { "info" }.into(),
                message: if failed {
                    format!("Error: search index unavailable ({path})")
                } else if path.starts_with("/api") {
                    format!("{path} handled in {}ms", 20 + i % 40)
                } else {
                    String::new()
                },
                row_id: format!("r{i}"),
                source: if path.starts_with("/api") {
                    "serverless"
                } else {
                    "request"
                }
                .into(),
                timestamp_ms: NOW - 180_000 + i * 2_000,
                request_method: "GET".into(),
                request_path: path.into(),
                status: Some(if failed { 502 } else { 200 }),
                ..RuntimeRow::default()
            };
            Arc::new(row_entry(row, &ctx, Some("production")))
        })
        .collect();
    app.ingest(&entries);
    app
}

#[test]
fn runtime_log_with_its_chart() {
    let app = runtime_app();
    snapshot_everywhere("runtime", &app);
}

#[test]
fn runtime_log_narrowed_to_failed_requests() {
    let mut app = runtime_app();
    press(&mut app, KeyCode::Char('o'));
    type_text(&mut app, "status=5xx path=^/api");
    press(&mut app, KeyCode::Enter);
    let text = screen_text(&app, 160, 48);
    assert!(text.contains("[only status=5xx path=^/api]"), "{text}");
    assert!(text.contains("search index unavailable (/api/search)"));
    assert!(!text.contains("handled in"), "only failed requests: {text}");
    assert!(
        !text.contains("search index unavailable (/)"),
        "only /api paths"
    );
}
