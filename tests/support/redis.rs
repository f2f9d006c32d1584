//! A private `redis-server` for tests: started on a free loopback port, killed on drop.
//!
//! With `REDIS_URL` set, `RedisServer::start` uses that server instead. Tests that stop and
//! restart the server use `start_private`, which always spawns its own.

use std::env;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const READY_DEADLINE: Duration = Duration::from_secs(10);
const SPAWN_ATTEMPTS: usize = 3;
const MISSING: &str = "redis-server not found: install it (apt-get install redis-server) or set REDIS_URL; scripts/test installs it";

pub struct RedisServer {
    pub url: String,
    child: Option<Child>,
    port: Option<u16>,
    extra_args: Vec<String>,
}

impl RedisServer {
    /// The server at `REDIS_URL` if set, else a private one.
    pub fn start() -> Self {
        match env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => Self {
                url,
                child: None,
                port: None,
                extra_args: Vec::new(),
            },
            _ => Self::start_private(),
        }
    }

    /// A private server even when `REDIS_URL` is set (for tests that stop it).
    pub fn start_private() -> Self {
        Self::start_private_with(&[])
    }

    /// A private server with extra `redis-server` arguments, e.g. `["--requirepass", "pw"]`.
    pub fn start_private_with(extra_args: &[&str]) -> Self {
        let mut server = Self {
            url: String::new(),
            child: None,
            port: None,
            extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
        };
        server.spawn_on_free_port();
        server
    }

    /// The private server's port.
    pub fn port(&self) -> u16 {
        self.port
            .expect("port() is only known for a private server (start_private)")
    }

    /// Kill the server, keeping its port for `restart`.
    pub fn stop(&mut self) {
        assert!(
            self.port.is_some(),
            "stop() needs a private server (start_private), not REDIS_URL"
        );
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the server again on the same port (empty: nothing is persisted).
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port();
        let deadline = Instant::now() + READY_DEADLINE;
        // The old process may still hold the port for a moment.
        loop {
            let mut child = self.spawn(port);
            match wait_until_ready(port, &mut child, deadline) {
                Ok(()) => {
                    self.child = Some(child);
                    return;
                }
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Err(why) => panic!("redis-server did not restart on port {port}: {why}"),
            }
        }
    }

    fn spawn_on_free_port(&mut self) {
        let mut last_error = String::new();
        for _ in 0..SPAWN_ATTEMPTS {
            let port = free_port();
            let mut child = self.spawn(port);
            match wait_until_ready(port, &mut child, Instant::now() + READY_DEADLINE) {
                Ok(()) => {
                    self.url = format!("redis://127.0.0.1:{port}");
                    self.port = Some(port);
                    self.child = Some(child);
                    return;
                }
                // Most likely another process took the port between our probe and the spawn.
                Err(why) => last_error = why,
            }
        }
        panic!("redis-server did not start after {SPAWN_ATTEMPTS} attempts: {last_error}");
    }

    fn spawn(&self, port: u16) -> Child {
        let binary = find_redis_server().unwrap_or_else(|| panic!("{MISSING}"));
        Command::new(&binary)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("could not run {}: {err}", binary.display()))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A namespace no other test (or test run) uses: `shiplog:test:{pid}:{counter}:{random}:`.
pub fn fresh_namespace() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "shiplog:test:{}:{}:{:08x}:",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

fn find_redis_server() -> Option<PathBuf> {
    let on_path = env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let usual = [
        "/usr/bin",
        "/usr/sbin",
        "/usr/local/bin",
        "/opt/homebrew/bin",
    ]
    .map(PathBuf::from);
    on_path
        .into_iter()
        .chain(usual)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|err| panic!("could not bind a loopback port: {err}"));
    listener
        .local_addr()
        .unwrap_or_else(|err| panic!("could not read the bound port: {err}"))
        .port()
}

/// Poll with PING until the server answers, it exits, or the deadline passes.
fn wait_until_ready(port: u16, child: &mut Child, deadline: Instant) -> Result<(), String> {
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "redis-server on port {port} exited early ({status})"
            ));
        }
        if answers_ping(port) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "redis-server on port {port} did not answer PING within {READY_DEADLINE:?}"
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Any RESP reply counts: a server started with `--requirepass` answers `-NOAUTH`.
fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 1];
    matches!(stream.read(&mut reply), Ok(1) if reply[0] == b'+' || reply[0] == b'-')
}
