//! A string that must never be printed: tokens, passwords, keys. Wiped from memory on drop.

use std::fmt;

/// Holds a secret value. `Debug` and `Display` print `[REDACTED]`; only [`Secret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The real value, for the one place that needs it (an HTTP header, a connection).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Read from configuration files like a plain string.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// `text` with each of `secrets` replaced by `[REDACTED]`, longest first (so that no part of a
/// longer one is left behind). For messages that may echo what was sent: a server's error
/// body, a parser's complaint.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 4).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut text = text.to_owned();
    for secret in secrets {
        if text.contains(secret) {
            text = text.replace(secret, "[REDACTED]");
        }
    }
    text
}

/// What a server may echo of a secret URL (a webhook's): all of it, its path, and each long
/// part of the path (the tokens in it).
pub fn url_parts(url: &str) -> Vec<String> {
    let mut parts = vec![url.to_owned()];
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
        .unwrap_or("");
    if path.len() > 1 {
        parts.push(path.to_owned());
        parts.extend(
            path.split(['/', '?', '&', '='])
                .filter(|segment| segment.len() >= 8)
                .map(str::to_owned),
        );
    }
    parts
}

/// Keeps the process's memory, where tokens and keys live, to itself: no core dump (a crash
/// would otherwise write `TOKEN_ENCRYPTION_KEY` and `BREAKGLASS_KEY` to disk) and, on Linux,
/// no attaching a debugger or reading `/proc/<pid>/mem` as the same user. Call first thing.
pub fn protect_process() {
    #[cfg(unix)]
    {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit reads the struct we pass and nothing else.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
    }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_DUMPABLE takes one integer argument and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Memory that must not be swapped out (key material), locked while `T` lives where the OS
/// allows it (it may refuse past `RLIMIT_MEMLOCK`; the memory is then only zeroized on drop
/// by `T` itself).
pub struct Locked<T> {
    value: Box<T>,
    locked: bool,
}

impl<T> Locked<T> {
    pub fn new(value: T) -> Self {
        let value = Box::new(value);
        #[cfg(unix)]
        // SAFETY: the range is the box's own allocation, which stays put until drop.
        let locked = size_of::<T>() > 0
            && unsafe { libc::mlock(std::ptr::from_ref::<T>(&value).cast(), size_of::<T>()) } == 0;
        #[cfg(not(unix))]
        let locked = false;
        Locked { value, locked }
    }
}

impl<T> std::ops::Deref for Locked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> Drop for Locked<T> {
    fn drop(&mut self) {
        #[cfg(unix)]
        if self.locked {
            // SAFETY: the same range `new` locked, still allocated.
            unsafe { libc::munlock(std::ptr::from_ref::<T>(&self.value).cast(), size_of::<T>()) };
        }
    }
}

/// The bytes of `text`, `N` of them written as `2N` hex digits (a digest in a signature
/// header); none when it is anything else.
pub fn decode_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    let text = text.trim_ascii();
    if text.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("vcp_abcdefghijklmnopqrstuvwxyz");
        assert_eq!(format!("{s:?} {s}"), "[REDACTED] [REDACTED]");
        assert_eq!(s.expose(), "vcp_abcdefghijklmnopqrstuvwxyz");
    }

    #[test]
    fn scrubbing_hides_every_echo_of_a_secret_url() {
        let url = "https://hooks.slack.com/services/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";
        let parts = url_parts(url);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let echo = "404: no_service for /services/T0DCUJB1Q/B0DD08H5G/bJtrpFi1fO1JMCcwLx8uZyAg; token bJtrpFi1fO1JMCcwLx8uZyAg";
        let scrubbed = scrub(echo, &parts);
        assert!(!scrubbed.contains("bJtrpFi1fO1JMCcwLx8uZyAg"), "{scrubbed}");
        assert!(!scrubbed.contains("T0DCUJB1Q/"), "{scrubbed}");
        assert_eq!(
            scrub("a b", &["", "b"]),
            "a b",
            "short values are not secrets worth hiding"
        );
    }

    #[test]
    fn locked_memory_reads_as_the_value() {
        let key = Locked::new([7u8; 32]);
        assert_eq!(key[31], 7);
    }
}
