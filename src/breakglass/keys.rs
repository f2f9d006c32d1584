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
    /// For [`FileSeal`]: derived from the key, never the key itself.
    mac_key: Zeroizing<[u8; 32]>,
}

type Hmac = hmac::Hmac<Sha256>;

/// Tags that make the breakglass files tamper-evident: HMAC-SHA256 with a key derived from
/// `BREAKGLASS_KEY` (older keys verify what they tagged). Whoever edits a file without the key
/// cannot make its tag.
#[derive(Clone)]
pub struct FileSeal {
    /// (key id, derived key), newest first.
    keys: std::sync::Arc<Vec<(u32, Zeroizing<[u8; 32]>)>>,
}

impl std::fmt::Debug for FileSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileSeal([REDACTED])")
    }
}

impl FileSeal {
    fn mac(key: &[u8; 32], data: &[u8]) -> Hmac {
        let mut mac = <Hmac as hmac::Mac>::new_from_slice(key).expect("HMAC takes any key length");
        hmac::Mac::update(&mut mac, data);
        mac
    }

    /// `keyid:hex` of `data` under the newest key.
    pub fn tag(&self, data: &[u8]) -> String {
        let (id, key) = &self.keys[0];
        let bytes = hmac::Mac::finalize(Self::mac(key, data)).into_bytes();
        format!("{}:{bytes:x}", key_id_text(*id))
    }

    /// A small sealed file: `body`, and its tag on the next line.
    pub fn seal_text(&self, body: &str) -> String {
        format!("{body}\n{}\n", self.tag(body.as_bytes()))
    }

    /// The body of a text [`FileSeal::seal_text`] made, if its tag is still the body's.
    pub fn open_text<'a>(&self, text: &'a str) -> Option<&'a str> {
        let (body, tag) = text.trim().split_once('\n').unwrap_or((text.trim(), ""));
        self.verify(body.as_bytes(), tag.trim()).then_some(body)
    }

    /// Whether `tag` is `data`'s, under the key it names; compared in constant time.
    pub fn verify(&self, data: &[u8], tag: &str) -> bool {
        let Some((id, hex)) = tag.split_once(':') else {
            return false;
        };
        let Some((_, key)) = self.keys.iter().find(|(k, _)| key_id_text(*k) == id) else {
            return false;
        };
        hex_bytes(hex)
            .is_some_and(|bytes| hmac::Mac::verify_slice(Self::mac(key, data), &bytes).is_ok())
    }
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

    /// The tags for files this keyring guards.
    pub fn file_seal(&self) -> FileSeal {
        FileSeal {
            keys: std::sync::Arc::new(
                self.keys
                    .iter()
                    .map(|k| (k.id, k.mac_key.clone()))
                    .collect(),
            ),
        }
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
    let Ok(key) = <[u8; 32]>::try_from(&bytes[..]).map(Zeroizing::new) else {
        return Err(VaultError::KeyLength {
            var: source,
            bytes: bytes.len(),
        });
    };
    let digest = Sha256::new()
        .chain_update(b"shiplog key id v1\0")
        .chain_update(&bytes[..])
        .finalize();
    let id = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| VaultError::KeyLength {
        var: source,
        bytes: 0,
    })?;
    let mut mac_key = Zeroizing::new([0u8; 32]);
    let derived =
        hmac::Mac::finalize(FileSeal::mac(&key, b"shiplog breakglass files v1")).into_bytes();
    mac_key.copy_from_slice(&derived);
    Ok(Key {
        id,
        cipher,
        mac_key,
    })
}

/// The bytes of an even number of hex digits; `None` for anything else.
fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// 64 hex digits, or base64 (standard or URL-safe, padded or not).
fn decode(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    if let Some(bytes) = hex_bytes(text).filter(|_| text.len() == 64) {
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
