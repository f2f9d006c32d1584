//! The wall clock in milliseconds since the Unix epoch, and short human durations.

use time::OffsetDateTime;

/// Now, in milliseconds since the Unix epoch (UTC).
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// "12s", "4m", "3h", "2d": short ages for narrow columns.
pub fn short_duration(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d", s / 86_400),
    }
}
