//! Encryption keys: 32 bytes given as base64 or hex in an environment variable, each known by
//! an id derived from the key itself (so a ciphertext says which key sealed it, and a wrong
//! key is named as such instead of failing as "tampered"). The newest key seals; older keys,
//! kept for rotation, only open.

use aes_gcm::aead::KeyInit;
use aes_gcm::Aes256Gcm;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::VaultError;
use crate::secret::Locked;

/// One key and its id.
pub struct Key {
    pub id: u32,
    pub(super) cipher: Aes256Gcm,
}

/// The keys of one purpose (tokens, or the breakglass copy), newest first.
pub struct Keyring {
    /// Locked out of swap; the ciphers wipe their key schedules on drop.
    keys: Vec<Locked<Key>>,
    /// The variable the newest key came from, for messages.
    pub(super) source: &'static str,
    /// The variable of the older keys, for messages.
    pub(super) older_source: &'static str,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(|k| key_id_text(k.id)).collect();
        f.debug_struct("Keyring")
            .field("source", &self.source)
            .field("key_ids", &ids)
            .finish()
    }
}

impl Keyring {
    /// The newest key from `current`, older ones from the comma-separated `older`.
    pub fn parse(
        current: &str,
        older: Option<&str>,
        source: &'static str,
        older_source: &'static str,
    ) -> Result<Keyring, VaultError> {
        let mut keys = vec![Locked::new(key_from(current, source)?)];
        for text in older.unwrap_or("").split(',').map(str::trim) {
            if !text.is_empty() {
                keys.push(Locked::new(key_from(text, older_source)?));
            }
        }
        Ok(Keyring {
            keys,
            source,
            older_source,
        })
    }

    /// From the environment: `None` when `current` is unset or empty.
    pub fn from_env(
        current: &'static str,
        older: &'static str,
    ) -> Result<Option<Keyring>, VaultError> {
        // The copies read here are wiped once parsed.
        let Some(text) = std::env::var(current)
            .ok()
            .map(Zeroizing::new)
            .filter(|v| !v.trim().is_empty())
        else {
            return Ok(None);
        };
        let older_text = std::env::var(older).ok().map(Zeroizing::new);
        Keyring::parse(
            &text,
            older_text.as_deref().map(String::as_str),
            current,
            older,
        )
        .map(Some)
    }

    pub fn newest(&self) -> &Key {
        &self.keys[0]
    }

    pub fn get(&self, id: u32) -> Option<&Key> {
        self.keys.iter().map(|k| &**k).find(|k| k.id == id)
    }
}

/// `1a2b3c4d`: how key ids are shown.
pub fn key_id_text(id: u32) -> String {
    format!("{id:08x}")
}

fn key_from(text: &str, source: &'static str) -> Result<Key, VaultError> {
    let bytes = decode(text.trim()).ok_or(VaultError::KeyEncoding { var: source })?;
    if bytes.len() != 32 {
        return Err(VaultError::KeyLength {
            var: source,
            bytes: bytes.len(),
        });
    }
    let digest = Sha256::new()
        .chain_update(b"shiplog key id v1\0")
        .chain_update(&bytes[..])
        .finalize();
    let id = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| VaultError::KeyLength {
        var: source,
        bytes: 0,
    })?;
    Ok(Key { id, cipher })
}

/// 64 hex digits, or base64 (standard or URL-safe, padded or not).
fn decode(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes = (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        return Some(Zeroizing::new(bytes));
    }
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B64: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

    #[test]
    fn base64_and_hex_give_the_same_key() {
        let hex = "abcdef1234567890abcdef1234567890abcdef1234567890abcdef1234567890";
        let a = Keyring::parse(B64, None, "K", "OLD").expect("base64");
        let b = Keyring::parse(hex, None, "K", "OLD").expect("hex");
        assert_eq!(a.newest().id, b.newest().id);
    }

    #[test]
    fn a_wrong_length_or_encoding_is_a_clear_error_without_the_key() {
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        let err = Keyring::parse(&short, None, "TOKEN_ENCRYPTION_KEY", "OLD").unwrap_err();
        assert_eq!(
            err.to_string(),
            "TOKEN_ENCRYPTION_KEY must be 32 bytes (base64 or 64 hex digits), not 16 bytes"
        );
        assert!(!err.to_string().contains(&short));
        let err = Keyring::parse("not a key!", None, "TOKEN_ENCRYPTION_KEY", "OLD").unwrap_err();
        assert!(err.to_string().contains("is not base64 or hex"), "{err}");
    }

    #[test]
    fn older_keys_are_kept_for_opening_and_debug_shows_only_ids() {
        let old = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let ring = Keyring::parse(B64, Some(&format!(" {old} ,")), "K", "OLD").expect("ring");
        let old_id = Keyring::parse(old, None, "K", "OLD")
            .expect("old")
            .newest()
            .id;
        assert!(ring.get(old_id).is_some());
        assert_ne!(ring.newest().id, old_id);
        let debug = format!("{ring:?}");
        assert!(!debug.contains(old) && !debug.contains(B64), "{debug}");
    }
}
