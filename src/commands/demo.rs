//! `shiplog demo`: the built-in Vercel simulator.

use shiplog::demo::{run_demo_loop, scenarios, SimulatorHandle, SimulatorOptions};
use shiplog::exit;

use super::error::{CommandError, Exit};
use crate::cli::{Cli, DemoArgs};

/// Starts the simulator and its loop of sample deployments.
pub async fn start_demo(port: u16, speed: f64) -> std::io::Result<SimulatorHandle> {
    let handle = start_simulator(port, speed).await?;
    shiplog::demo::add_history(&handle);
    tokio::spawn(run_demo_loop(handle.clone()));
    Ok(handle)
}

async fn start_simulator(port: u16, speed: f64) -> std::io::Result<SimulatorHandle> {
    SimulatorHandle::start(SimulatorOptions {
        port,
        speed,
        ..SimulatorOptions::default()
    })
    .await
}

pub async fn run(cli: &Cli, args: DemoArgs) -> Exit {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(CommandError::new(
            exit::USAGE,
            "--speed must be a positive number",
        ));
    }
    if !args.serve_only {
        // The demo, even when a token is set.
        let mut global = cli.global.clone();
        global.token = None;
        return super::dashboard::run(&Cli {
            command: None,
            global,
        })
        .await;
    }
    let started = match args.synthetic {
        None => start_demo(args.port, args.speed).await,
        Some(_) => start_simulator(args.port, args.speed).await,
    };
    let handle = started.map_err(|err| {
        CommandError::new(
            exit::FOLLOW_FAILED,
            format!("could not start the simulator on port {}: {err}", args.port),
        )
        .hint("pick another port with --port, or 0 for a free one")
    })?;
    say!("Vercel simulator listening on {}", handle.base_url());
    if let Some(lines) = args.synthetic {
        let spec = scenarios::synthetic_over(lines, args.build_secs.saturating_mul(1000));
        let ids: Vec<String> = (0..args.builds)
            .map(|_| handle.add_deployment(spec.clone()))
            .collect();
        // Finished builds are announced once they are over; playing ones at once.
        for id in &ids {
            if args.build_secs == 0 {
                handle.wait_finished(id).await;
            }
            say!("synthetic deployment: {id}");
        }
    }
    say!("Any bearer token is accepted. Try:");
    say!(
        "  VERCEL_API_URL={} VERCEL_TOKEN=demo shiplog follow <dpl_id from {}/v6/deployments>",
        handle.base_url(),
        handle.base_url()
    );
    let mut shutdown = super::shutdown_on_signals();
    shiplog::shutdown::stopped(&mut shutdown).await;
    handle.shutdown();
    Ok(exit::OK)
}
