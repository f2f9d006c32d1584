//! Runtime rows through shiplog: parse, the window of seen rows, the unified entry, redaction
//! (the logger) and the alert rules' matching; and the memory the window of seen rows holds,
//! counted by the allocator.
//!
//! `cargo bench --bench runtime`

use std::hint::black_box;
use std::sync::atomic::Ordering;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shiplog::alert::rule::RuleSet;
use shiplog::log::{Delivery, Logger};
use shiplog::stream::entries::EntryContext;
use shiplog::stream::runtime::entries::row_entry;
use shiplog::stream::runtime::{SeenRows, DEFAULT_WINDOW};
use shiplog::vercel::parse_runtime_row;

#[path = "support/counting.rs"]
mod counting;

use counting::{Counting, HELD};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ROWS: usize = 10_000;

/// Rows as Vercel sends them: requests, function logs with the odd error and stack, a token
/// now and then.
fn rows() -> Vec<Vec<u8>> {
    (0..ROWS)
        .map(|i| {
            let (level, source, status, message) = match i % 20 {
                0 => ("error", "serverless", 500, "TypeError: Cannot read properties of undefined (reading 'total')\n    at handler (/var/task/api/checkout.js:41:22)".to_owned()),
                1..=6 => ("info", "serverless", 200, format!("checkout: created order ord_{i} total=4200")),
                7 => ("warning", "edge-middleware", 307, "geo header missing, defaulting to US".to_owned()),
                8 => ("info", "serverless", 200, "calling upstream with Authorization: Bearer sk_live_4eC39HqLyjWDarjtT1zdp7dc".to_owned()),
                _ => ("info", "request", 200, String::new()),
            };
            serde_json::json!({
                "level": level, "message": message, "rowId": format!("k8r2w-1767713105118-{i:06}"),
                "source": source, "timestampInMs": 1_767_713_105_118i64 + i as i64 * 7,
                "domain": "storefront.acme.dev", "messageTruncated": false, "requestMethod": "POST",
                "requestPath": "/api/checkout", "responseStatusCode": status,
            })
            .to_string()
            .into_bytes()
        })
        .collect()
}

fn window_memory() {
    let mut seen = SeenRows::new(DEFAULT_WINDOW);
    let rows: Vec<_> = (0..DEFAULT_WINDOW * 2)
        .map(|i| shiplog::vercel::RuntimeRow {
            row_id: format!("k8r2w-1767713105118-{i:06}"),
            ..Default::default()
        })
        .collect();
    let rows_held = HELD.load(Ordering::Relaxed);
    for row in &rows {
        seen.insert(row);
    }
    let held = HELD.load(Ordering::Relaxed) - rows_held;
    println!(
        "window of seen rows: {} rows remembered in {:.0} KB of heap",
        seen.len(),
        held as f64 / 1024.0,
    );
    black_box(seen);
}

fn runtime(c: &mut Criterion) {
    window_memory();
    let rows = rows();
    let ctx = EntryContext {
        deployment_id: "vercel-dpl_2A1YdwhTadMp5nphik5kEwFBwnxR-01JD5K3M9Q".into(),
        vercel_id: "dpl_2A1YdwhTadMp5nphik5kEwFBwnxR".into(),
        project_id: Some("prj_abc".into()),
        project_name: Some("storefront".into()),
        git: Some("main 3f2a1c9".into()),
        replayed: false,
    };
    let rules = RuleSet::builtin();
    let (builder, mut rx) = Logger::builder().channel("bench", ROWS + 10, Delivery::DropWhenFull);
    let logger = builder.build();
    let mut group = c.benchmark_group("runtime_pipeline");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("rows", |b| {
        b.iter(|| {
            let mut seen = SeenRows::new(DEFAULT_WINDOW);
            for line in &rows {
                let Ok(row) = parse_runtime_row(line) else {
                    continue;
                };
                if seen.insert(&row) {
                    logger.write(row_entry(row, &ctx, Some("production")));
                }
            }
            let mut matched = 0;
            while let Ok(entry) = rx.try_recv() {
                matched += rules.matching(&entry).count();
            }
            black_box(matched)
        })
    });
    group.finish();
}

criterion_group!(benches, runtime);
criterion_main!(benches);
