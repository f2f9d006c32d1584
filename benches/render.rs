//! One dashboard frame with 50 deployments and 100,000 buffered lines, plain, filtered and
//! wrapped. Budget (DESIGN.md): under 2 ms a frame.
//!
//! `cargo bench --bench render`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use shiplog::log::{LogEntry, Severity, Tier};
use shiplog::stream::engine::EngineSnapshot;
use shiplog::tui::app::{App, Source};
use shiplog::tui::theme::Theme;
use shiplog::tui::ui;
use shiplog::vercel::DeploymentSummary;

fn loaded_app() -> App {
    let mut app = App::new(Source::Demo, "embedded", 100_000);
    let deployments: Vec<DeploymentSummary> = (0..50)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "uid": format!("dpl_{i:04}"), "name": format!("project-{i}"),
                "readyState": if i % 3 == 0 { "BUILDING" } else { "READY" },
                "created": 1_795_684_800_000i64 - i * 60_000,
                "meta": {"githubCommitRef": "main", "githubCommitMessage": "fix: a commit message"}
            }))
            .expect("summary")
        })
        .collect();
    app.apply_snapshot(EngineSnapshot {
        deployments,
        loaded: true,
        ..EngineSnapshot::default()
    });
    let entries: Vec<Arc<LogEntry>> = (0..100_000i64)
        .map(|i| {
            let text = format!(
                "[build] transformed module {i:07} ./src/lib/module-{}.ts ({} kB) and a longer tail of text to wrap",
                i % 997,
                i % 89
            );
            Arc::new(LogEntry::at(i, Tier::Build, Severity::Info, "stdout", text).with_build("dpl_0000"))
        })
        .collect();
    app.ingest(&entries);
    app
}

fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn frame(c: &mut Criterion) {
    let theme = Theme::default_theme();
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    let mut group = c.benchmark_group("dashboard_frame");

    let mut app = loaded_app();
    group.bench_function("plain", |b| {
        b.iter(|| terminal.draw(|f| ui::render(f, &app, &theme)).map(|_| ()))
    });

    key(&mut app, KeyCode::Char('w'));
    group.bench_function("wrapped", |b| {
        b.iter(|| terminal.draw(|f| ui::render(f, &app, &theme)).map(|_| ()))
    });

    key(&mut app, KeyCode::Char('f'));
    for c in "module-1[0-9]".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    group.bench_function("filtered_wrapped", |b| {
        b.iter(|| terminal.draw(|f| ui::render(f, &app, &theme)).map(|_| ()))
    });

    // Scrolled to the middle: the view is not at the end of the buffer.
    key(&mut app, KeyCode::Home);
    for _ in 0..200 {
        key(&mut app, KeyCode::PageDown);
    }
    group.bench_function("filtered_wrapped_scrolled", |b| {
        b.iter(|| terminal.draw(|f| ui::render(f, &app, &theme)).map(|_| ()))
    });
    group.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
