//! File names for keys: readable, safe on every file system, and distinct per key.

/// Longest readable part of a file name; the hash keeps long keys distinct.
const READABLE_MAX: usize = 120;

/// `{readable}.{hash}.json`: the readable part keeps `[A-Za-z0-9_-]` and turns everything else
/// (`:` `/` `.` `\` ...) into `_`, so a key can never name another directory. The 64-bit hash of
/// the exact key keeps keys apart that differ only in those characters or in letter case (macOS
/// and Windows file systems ignore case by default).
pub(super) fn for_key(key: &str) -> String {
    let mut readable: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(READABLE_MAX)
        .collect();
    if readable.is_empty() {
        readable.push('_');
    }
    format!("{readable}.{:016x}.json", fnv1a(key.as_bytes()))
}

pub(super) fn is_entry(file_name: &str) -> bool {
    !file_name.starts_with('.') && file_name.ends_with(".json")
}

/// FNV-1a: stable across builds and platforms, unlike `std`'s `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_readable() {
        let name = for_key("shiplog:development:vercel:resume:dpl_abc");
        assert!(name.starts_with("shiplog_development_vercel_resume_dpl_abc."));
        assert!(name.ends_with(".json"));
    }

    #[test]
    fn never_leaves_the_directory() {
        for key in ["../../etc/passwd", "a/b\\c", "..", ".", "", "x\0y"] {
            let name = for_key(key);
            assert!(!name.contains(['/', '\\', '\0']), "{name}");
            assert!(!name.starts_with('.'), "{name}");
            assert!(is_entry(&name));
        }
    }

    #[test]
    fn keys_differing_in_case_or_punctuation_stay_apart() {
        let names = ["dpl_ABC", "dpl_abc", "dpl:abc", "dpl/abc", "dpl_abc "].map(for_key);
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                assert_ne!(a.to_lowercase(), b.to_lowercase());
            }
        }
    }

    #[test]
    fn bounds_the_length() {
        let name = for_key(&"k".repeat(10_000));
        assert!(name.len() < 160);
    }
}
