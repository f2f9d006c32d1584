//! Input-to-screen latency of the real dashboard while it ingests about 50,000 lines a second.
//! Budget (issue 3): under 50 ms. The binary runs in a pseudo-terminal against the simulator,
//! which plays one build at that rate; the `w` key toggles wrapping, and the time until the
//! screen shows it is measured, 40 times.
//!
//! `cargo bench --bench dashboard_latency`

#[path = "../tests/support/pty.rs"]
#[allow(dead_code)]
mod pty;

use std::path::Path;
use std::time::{Duration, Instant};

use shiplog::demo::{DeploymentSpec, SimEvent, SimulatorHandle, SimulatorOptions};

const LINES_PER_MS: usize = 50;
const SECONDS: usize = 12;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = runtime.block_on(async {
        SimulatorHandle::start(SimulatorOptions::default())
            .await
            .expect("simulator")
    });
    let events = (0..LINES_PER_MS * 1000 * SECONDS)
        .map(|i| {
            let event = SimEvent::stdout(
                u64::from(i % LINES_PER_MS == 0),
                format!(
                    "[build] transformed module {i:07} ./src/lib/module-{}.ts",
                    i % 997
                ),
            );
            if i % LINES_PER_MS == 0 {
                event
            } else {
                event.same_ms()
            }
        })
        .collect();
    let _guard = runtime.enter();
    sim.add_deployment(DeploymentSpec {
        project: "firehose".to_owned(),
        events,
        ..DeploymentSpec::default()
    });

    let home = tempfile::tempdir().expect("home");
    let state = home.path().join("state").display().to_string();
    let url = sim.base_url();
    let session = pty::PtySession::spawn(
        Path::new(env!("CARGO_BIN_EXE_shiplog")),
        &[],
        &[
            ("VERCEL_API_URL", url.as_str()),
            ("VERCEL_TOKEN", "bench"),
            ("SHIPLOG_STATE_DIR", state.as_str()),
            ("HOME", home.path().to_str().unwrap_or("/tmp")),
        ],
        160,
        48,
    )
    .expect("dashboard starts");
    let mut session = session;
    session
        .wait_for_text("transformed module", Duration::from_secs(30))
        .expect("lines stream in");

    let mut latencies = Vec::new();
    for round in 0..40 {
        let want_wrap = round % 2 == 0;
        let start = Instant::now();
        session.send(b"w");
        loop {
            let shows_wrap = session.contents().lines().any(|l| l.contains("[wrap]"));
            if shows_wrap == want_wrap {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "no reaction to a key in 5 s"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        latencies.push(start.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    let received = sim.produced_count(&sim.deployment_ids()[0]);
    session.send(b"q");
    let _ = session.wait_exit(Duration::from_secs(10));
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "dashboard input-to-screen latency while ingesting {} lines/s ({received} produced): median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        LINES_PER_MS * 1000,
        ms(latencies[latencies.len() / 2]),
        ms(latencies[latencies.len() * 95 / 100]),
        ms(latencies[latencies.len() - 1]),
    );
}
