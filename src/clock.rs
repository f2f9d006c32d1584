//! The wall clock in milliseconds since the Unix epoch, and short human durations.

use time::OffsetDateTime;

/// Now, in milliseconds since the Unix epoch (UTC).
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A duration as people write it: `90s`, `15m`, `2h`, `1d`, `1w`, or several (`1h30m`).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut seconds: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let amount: u64 = rest[..digits].parse().ok()?;
        let unit = match rest[digits..].chars().next()? {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        seconds = seconds.checked_add(amount.checked_mul(unit)?)?;
        rest = &rest[digits + 1..];
    }
    Some(std::time::Duration::from_secs(seconds))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_as_people_write_them() {
        let cases = [
            ("90s", Some(90)),
            ("15m", Some(900)),
            ("2h", Some(7200)),
            ("1h30m", Some(5400)),
            ("1d", Some(86_400)),
            ("1w", Some(604_800)),
            (" 2h ", Some(7200)),
            ("", None),
            ("2", None),
            ("h", None),
            ("2x", None),
            ("1.5h", None),
            ("99999999999999999999w", None),
        ];
        for (text, seconds) in cases {
            assert_eq!(
                parse_duration(text),
                seconds.map(Duration::from_secs),
                "{text}"
            );
        }
    }
}
