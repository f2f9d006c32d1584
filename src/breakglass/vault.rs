//! Sealing tokens with AES-256-GCM: a random 96-bit nonce per encryption, the tag checked on
//! opening, and associated data binding each ciphertext to its purpose, connection and field,
//! so a ciphertext copied to another record does not open. Format:
//! `v1:` + base64(`0x01` | key id (u32, big-endian) | nonce (12) | ciphertext and tag).
//! The version and key id are in the associated data too, so they cannot be swapped.

use aes_gcm::aead::{Aead, Generate, Payload};
use aes_gcm::Nonce;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::keys::{key_id_text, Keyring};
use super::VaultError;
use crate::secret::Secret;

const PREFIX: &str = "v1:";
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

/// The purpose of a connection's tokens in the vault.
pub const TOKEN: &str = "token";
/// The purpose of a breakglass entry's emergency copy.
pub const BREAKGLASS: &str = "breakglass";

/// What a sealed value is, bound into its ciphertext.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// [`TOKEN`] or [`BREAKGLASS`].
    pub purpose: &'a str,
    pub connection_id: &'a str,
    /// "access_token" or "refresh_token".
    pub field: &'a str,
}

impl Context<'_> {
    fn aad(&self, key_id: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        aad.extend_from_slice(b"shiplog/");
        aad.extend_from_slice(self.purpose.as_bytes());
        aad.push(0);
        aad.push(VERSION);
        aad.extend_from_slice(&key_id.to_be_bytes());
        aad.extend_from_slice(self.connection_id.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.field.as_bytes());
        aad
    }
}

/// Seals `plaintext` with the newest key of `keys`.
pub fn seal(
    keys: &Keyring,
    context: Context<'_>,
    plaintext: &Secret,
) -> Result<String, VaultError> {
    let key = keys.newest();
    let nonce = Nonce::generate();
    let aad = context.aad(key.id);
    let sealed = key
        .cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext.expose().as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::Encrypt)?;
    let mut blob = Vec::with_capacity(HEADER_LEN + sealed.len());
    blob.push(VERSION);
    blob.extend_from_slice(&key.id.to_be_bytes());
    blob.extend_from_slice(nonce.as_slice());
    blob.extend_from_slice(&sealed);
    Ok(format!("{PREFIX}{}", STANDARD.encode(blob)))
}

/// A login's access token and, when it has one, its refresh token, sealed with the newest key
/// for `purpose` and the connection.
pub fn seal_tokens(
    keys: &Keyring,
    purpose: &str,
    connection_id: &str,
    access: &Secret,
    refresh: Option<&Secret>,
) -> Result<(String, Option<String>), VaultError> {
    let context = |field| Context {
        purpose,
        connection_id,
        field,
    };
    Ok((
        seal(keys, context("access_token"), access)?,
        refresh
            .map(|token| seal(keys, context("refresh_token"), token))
            .transpose()?,
    ))
}

/// Opens what [`seal_tokens`] sealed.
pub fn open_tokens(
    keys: &Keyring,
    purpose: &str,
    connection_id: &str,
    access: &str,
    refresh: Option<&str>,
) -> Result<(Secret, Option<Secret>), VaultError> {
    let context = |field| Context {
        purpose,
        connection_id,
        field,
    };
    Ok((
        open(keys, context("access_token"), access)?,
        refresh
            .map(|sealed| open(keys, context("refresh_token"), sealed))
            .transpose()?,
    ))
}

/// Opens a value sealed by [`seal`] for the same context.
pub fn open(keys: &Keyring, context: Context<'_>, sealed: &str) -> Result<Secret, VaultError> {
    let blob = sealed
        .strip_prefix(PREFIX)
        .and_then(|text| STANDARD.decode(text).ok())
        .filter(|blob| blob.len() > HEADER_LEN && blob[0] == VERSION)
        .ok_or(VaultError::Malformed)?;
    let key_id = u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]);
    let key = keys.get(key_id).ok_or_else(|| VaultError::UnknownKey {
        key_id: key_id_text(key_id),
        var: keys.source,
        older_var: keys.older_source,
    })?;
    let nonce = Nonce::try_from(&blob[5..HEADER_LEN]).map_err(|_| VaultError::Malformed)?;
    let plain = zeroize::Zeroizing::new(
        key.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &blob[HEADER_LEN..],
                    aad: &context.aad(key_id),
                },
            )
            .map_err(|_| VaultError::Tampered)?,
    );
    let text = std::str::from_utf8(&plain).map_err(|_| VaultError::Malformed)?;
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
    const OTHER: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn ring(key: &str) -> Keyring {
        Keyring::parse(
            key,
            None,
            "TOKEN_ENCRYPTION_KEY",
            "TOKEN_ENCRYPTION_OLD_KEYS",
        )
        .expect("key")
    }

    /// The key id a sealed value names.
    fn key_id_of(sealed: &str) -> Option<u32> {
        let blob = STANDARD.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        (blob.len() > HEADER_LEN && blob[0] == VERSION)
            .then(|| u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]))
    }

    fn context(connection_id: &str) -> Context<'_> {
        Context {
            purpose: TOKEN,
            connection_id,
            field: "access_token",
        }
    }

    #[test]
    fn a_sealed_token_opens_and_never_shows_in_the_blob() {
        let token = Secret::new("vca_live_token_value_123");
        let sealed = seal(&ring(KEY), context("conn_a"), &token).expect("seal");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("vca_live"));
        let again = seal(&ring(KEY), context("conn_a"), &token).expect("seal");
        assert_ne!(sealed, again, "a fresh nonce each time");
        assert_eq!(
            open(&ring(KEY), context("conn_a"), &sealed).expect("open"),
            token
        );
    }

    #[test]
    fn a_tampered_copied_or_foreign_ciphertext_does_not_open() {
        let sealed = seal(&ring(KEY), context("conn_a"), &Secret::new("vca_x")).expect("seal");
        let mut blob = STANDARD.decode(&sealed[3..]).expect("base64");
        let last = blob.len() - 1;
        blob[last] ^= 1;
        let tampered = format!("v1:{}", STANDARD.encode(&blob));
        assert_eq!(
            open(&ring(KEY), context("conn_a"), &tampered).unwrap_err(),
            VaultError::Tampered
        );
        // Copied to another connection, or to the other field.
        assert_eq!(
            open(&ring(KEY), context("conn_b"), &sealed).unwrap_err(),
            VaultError::Tampered
        );
        let refresh = Context {
            field: "refresh_token",
            ..context("conn_a")
        };
        assert_eq!(
            open(&ring(KEY), refresh, &sealed).unwrap_err(),
            VaultError::Tampered
        );
        assert_eq!(
            open(&ring(KEY), context("conn_a"), "v1:bm90IGEgYmxvYg==").unwrap_err(),
            VaultError::Malformed
        );
    }

    #[test]
    fn a_wrong_key_is_named_and_an_older_key_still_opens() {
        let sealed = seal(&ring(OTHER), context("conn_a"), &Secret::new("vca_x")).expect("seal");
        let err = open(&ring(KEY), context("conn_a"), &sealed).unwrap_err();
        let id = key_id_text(key_id_of(&sealed).expect("id"));
        assert_eq!(
            err.to_string(),
            format!("this token was sealed with key {id}, which neither TOKEN_ENCRYPTION_KEY nor TOKEN_ENCRYPTION_OLD_KEYS holds")
        );
        let rotated =
            Keyring::parse(KEY, Some(OTHER), "TOKEN_ENCRYPTION_KEY", "OLD").expect("ring");
        assert_eq!(
            open(&rotated, context("conn_a"), &sealed)
                .expect("opens")
                .expose(),
            "vca_x"
        );
    }
}
