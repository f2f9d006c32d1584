//! Drained batches through the listener's checks and the drain desk's reading: the signature,
//! every record read, each made a runtime entry; plain and gzipped. And the heap a 10 MB batch
//! costs beyond its own bytes while it is read, counted by the allocator.
//!
//! `cargo bench --bench drain`

use std::hint::black_box;
use std::io::Write;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shiplog::ingest::drain::for_each_record;
use shiplog::ingest::drain_desk::decoded;
use shiplog::stream::entries::EntryContext;
use shiplog::stream::runtime::entries::row_entry;
use shiplog::vercel::signature::{sign, SigningSecrets};

#[path = "support/counting.rs"]
mod counting;

use counting::{Counting, HELD, PEAK};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SECRET: &str = "bench-drain-secret";

/// About `bytes` of NDJSON lambda records as Vercel drains them: requests, the odd error.
fn batch(bytes: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(bytes + 1024);
    let mut records = 0;
    while out.len() < bytes {
        let i = records;
        let (level, status, message) = match i % 20 {
            0 => ("error", 500, "TypeError: Cannot read properties of undefined (reading 'total')\n    at handler (/var/task/api/checkout.js:41:22)".to_owned()),
            _ => ("info", 200, format!("checkout: created order ord_{i} total=4200")),
        };
        let record = serde_json::json!({
            "id": format!("1767713105233468201930{i:06}"), "deploymentId": "dpl_8fKc2RzQ9mTxW4vLbN7sY3pHdJ6e",
            "source": "lambda", "host": "storefront-8fkc2rzq9-acme.vercel.app", "timestamp": 1_767_713_105_233i64 + i as i64,
            "level": level, "message": message, "entrypoint": "api/checkout.js",
            "requestId": format!("iad1::k8r2w-{i}"), "statusCode": status, "path": "/api/checkout",
            "executionRegion": "iad1", "environment": "production", "branch": "main",
            "proxy": {"timestamp": 1_767_713_105_118i64, "method": "POST", "host": "storefront.acme.dev",
                      "path": "/api/checkout", "userAgent": ["Mozilla/5.0 (X11; Linux x86_64)"],
                      "region": "iad1", "statusCode": status, "clientIp": "203.0.113.24",
                      "vercelCache": "MISS", "pathType": "func"},
            "projectId": "prj_Qm4vT8xKz2LwR9bN6cYs1HdPgE3a", "projectName": "storefront"});
        serde_json::to_writer(&mut out, &record).expect("json");
        out.push(b'\n');
        records += 1;
    }
    (out, records)
}

fn gzipped(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// What the listener and the desk do with a batch: verify, read every record, make entries.
fn take(
    body: &Bytes,
    gzip: bool,
    secrets: &SigningSecrets,
    signature: &str,
    ctx: &EntryContext,
) -> usize {
    assert!(secrets.verify(body, Some(signature.as_bytes())));
    let mut taken = 0;
    // The desk hands entries to the logger a thousand at a time.
    let mut chunk = Vec::with_capacity(1000);
    for_each_record(decoded(body.clone(), gzip, 64 << 20), |record| {
        let target = record.environment.clone();
        chunk.push(row_entry(record.into_runtime_row(), ctx, target.as_deref()));
        if chunk.len() == 1000 {
            taken += black_box(std::mem::take(&mut chunk)).len();
        }
    })
    .expect("a good batch");
    taken + chunk.len()
}

fn bench(c: &mut Criterion) {
    let (plain, records) = batch(10 * 1024 * 1024);
    let packed = gzipped(&plain);
    let secrets = SigningSecrets::from_list(SECRET);
    let ctx = EntryContext {
        deployment_id: "vercel-dpl_8fKc-01J".into(),
        vercel_id: "dpl_8fKc2RzQ9mTxW4vLbN7sY3pHdJ6e".into(),
        project_id: None,
        project_name: Some("storefront".into()),
        git: None,
        replayed: false,
    };
    let mut group = c.benchmark_group("drain");
    group.throughput(Throughput::Elements(records as u64));
    group.sample_size(10);
    for (name, body, gzip) in [("plain_10MB", &plain, false), ("gzip_10MB", &packed, true)] {
        let body = Bytes::from(body.clone());
        let signature = sign(SECRET, &body);
        group.bench_function(name, |b| {
            b.iter(|| take(&body, gzip, &secrets, &signature, &ctx))
        });
    }
    group.finish();

    for (name, body, gzip) in [("plain", &plain, false), ("gzip", &packed, true)] {
        let body = Bytes::from(body.clone());
        let signature = sign(SECRET, &body);
        let before = HELD.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        take(&body, gzip, &secrets, &signature, &ctx);
        let peak = PEAK.load(Ordering::Relaxed) - before;
        println!(
            "drain/{name}: {records} records, {:.1} MB sent; heap beyond the batch's bytes while taking it: {:.2} MB",
            body.len() as f64 / 1e6,
            peak as f64 / 1e6
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
