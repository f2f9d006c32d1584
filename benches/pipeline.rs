//! The follow pipeline, bytes in and entries out: split lines, parse, de-duplicate, build the
//! unified entry, redact, fan out. Budget (DESIGN.md): at least 500,000 events/s on one core.
//!
//! `cargo bench --bench pipeline`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shiplog::log::{Delivery, Logger};
use shiplog::stream::entries::{build_entry, EntryContext};
use shiplog::stream::ResumeState;
use shiplog::vercel::{parse_event, Line, LineSplitter, ParsedLine};

const EVENTS: usize = 10_000;

/// A realistic build: mostly ordinary output, some stderr warnings, 1% lines with a secret,
/// bursts of events in one millisecond.
fn build_body() -> Vec<u8> {
    let texts = [
        "  ▲ Next.js 15.1.0",
        "   Creating an optimized production build ...",
        " ✓ Compiled successfully in 12.3s",
        "   Linting and checking validity of types ...",
        "├ ○ /about                               1.42 kB         107 kB",
        "npm warn deprecated inflight@1.0.6: This module is not supported, and leaks memory.",
        "Collecting page data using 3 workers ...",
        "\u{1b}[32m✓\u{1b}[39m Generating static pages (12/12)",
    ];
    let mut body = Vec::new();
    let mut created: i64 = 1_783_471_638_756;
    for i in 0..EVENTS {
        if i % 4 == 0 {
            created += 1;
        }
        let text = if i % 100 == 7 {
            "Using VERCEL_TOKEN=vcp_aBcDeFgHiJkLmNoPqRsT1234567890abcdefghij for upload".to_owned()
        } else {
            texts[i % texts.len()].to_owned()
        };
        let kind = if i % 10 == 5 { "stderr" } else { "stdout" };
        let event = serde_json::json!({
            "created": created, "date": created, "deploymentId": "dpl_2A1YdwhTadMp5nphik5kEwFBwnxR",
            "id": format!("{created}85788158290{i:04}"), "serial": format!("{created}85788158290{i:04}"),
            "text": text, "type": kind,
            "info": {"type": "build", "name": "bld_5gndb9d0q", "entrypoint": "."}
        });
        body.extend_from_slice(event.to_string().as_bytes());
        body.push(b'\n');
    }
    body
}

fn pipeline(c: &mut Criterion) {
    let body = build_body();
    let ctx = EntryContext {
        deployment_id: "vercel-dpl_2A1YdwhTadMp5nphik5kEwFBwnxR-01JD5K3M9Q".into(),
        vercel_id: "dpl_2A1YdwhTadMp5nphik5kEwFBwnxR".into(),
        project_id: Some("prj_abc".into()),
        project_name: Some("storefront".into()),
        git: Some("main 3f2a1c9".into()),
        replayed: false,
    };
    let (builder, mut rx) = Logger::builder().channel("bench", EVENTS + 10, Delivery::DropWhenFull);
    let logger = builder.build();

    let mut group = c.benchmark_group("follow_pipeline");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("events", |b| {
        b.iter(|| {
            let mut splitter = LineSplitter::default();
            let mut cursor = ResumeState::default();
            cursor.start_connection();
            // Network-sized chunks, cut anywhere.
            for chunk in body.chunks(16 * 1024) {
                splitter.push(chunk, |line| {
                    if let Line::Complete(bytes) = line {
                        if let Ok(ParsedLine::Event(event)) = parse_event(bytes) {
                            if cursor.is_new(event.created) {
                                cursor.record(event.created, &event.id);
                                logger.write(build_entry(event, &ctx));
                            }
                        }
                    }
                });
            }
            let mut n = 0;
            while let Ok(entry) = rx.try_recv() {
                black_box(entry);
                n += 1;
            }
            assert_eq!(n, EVENTS);
        })
    });
    group.finish();

    let mut bytes = c.benchmark_group("follow_pipeline_bytes");
    bytes.throughput(Throughput::Bytes(body.len() as u64));
    bytes.bench_function("split_and_parse", |b| {
        b.iter(|| {
            let mut splitter = LineSplitter::default();
            let mut n = 0;
            for chunk in body.chunks(16 * 1024) {
                splitter.push(chunk, |line| {
                    if let Line::Complete(bytes) = line {
                        if parse_event(bytes).is_ok() {
                            n += 1;
                        }
                    }
                });
            }
            assert_eq!(n, EVENTS);
        })
    });
    bytes.finish();

    let mut stages = c.benchmark_group("follow_pipeline_stages");
    stages.throughput(Throughput::Elements(EVENTS as u64));
    stages.bench_function("parse_and_build_entry", |b| {
        b.iter(|| {
            let mut splitter = LineSplitter::default();
            for chunk in body.chunks(16 * 1024) {
                splitter.push(chunk, |line| {
                    if let Line::Complete(bytes) = line {
                        if let Ok(ParsedLine::Event(event)) = parse_event(bytes) {
                            black_box(build_entry(event, &ctx));
                        }
                    }
                });
            }
        })
    });
    // The redactor's scan, on lines as they come (most hold no secret).
    let lines: Vec<String> = body
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .filter_map(|event| event["text"].as_str().map(str::to_owned))
        .collect();
    let redactor = shiplog::log::redact::global();
    stages.bench_function("redact", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(redactor.redact(line));
            }
        })
    });
    stages.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
