//! `security_hmac_failed`: a request with a missing or wrong signature writes an entry the rule
//! of that name alerts on, at most once a minute per source address and a few times a minute in
//! all, so that a flood of forged requests cannot flood the alert channels.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::log::{LogEntry, Logger, Severity};

const EVERY: Duration = Duration::from_secs(60);
/// Entries a minute from all sources together.
const MOST_A_MINUTE: usize = 10;

pub struct SignatureAlarm {
    logger: Logger,
    /// Per source: when its last entry was written (the refusals themselves are counted in the
    /// metrics).
    sources: Mutex<HashMap<IpAddr, Instant>>,
}

impl SignatureAlarm {
    pub fn new(logger: Logger) -> Self {
        SignatureAlarm {
            logger,
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// A request from `ip` to `route` was refused for its signature (`why`).
    pub fn raise(&self, ip: IpAddr, route: &str, why: &str) {
        // An IPv4 peer seen through an IPv6 socket is itself.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let now = Instant::now();
        let mut sources = self
            .sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sources.retain(|_, last| now.duration_since(*last) < EVERY);
        if sources.contains_key(&ip) || sources.len() >= MOST_A_MINUTE {
            return;
        }
        sources.insert(ip, now);
        drop(sources);
        self.logger.write(LogEntry::system(
            Severity::Warn,
            "webhook",
            format!(
                "HMAC signature validation failed for a request to {route} from {ip}: {why}; refused with 403 (further failures from there are counted, not reported, for a minute)"
            ),
        ));
    }
}
