//! The breakglass engine: provider tokens sealed at rest (the vault), the connections that
//! hold them, and the guarded emergency copy of each connection's tokens, sealed with a
//! separate key, that an admin can recover with a written justification, within a time window
//! and a number of uses, behind a kill switch, audited before anything is revealed.

pub mod access;
pub mod audit;
pub mod connection;
pub mod desk;
pub mod entry;
pub mod keys;
pub mod store;
pub mod vault;

pub use access::{Breakglass, Denial, Grant, Requester};
pub use connection::Connection;
pub use entry::BreakglassEntry;
pub use keys::Keyring;

/// Why sealing or opening failed. Never holds a key or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("{var} is not set: it must hold a 32-byte key (base64 or 64 hex digits; `openssl rand -base64 32` makes one)")]
    KeyMissing { var: &'static str },
    #[error("{var} must be 32 bytes (base64 or 64 hex digits), not {bytes} bytes")]
    KeyLength { var: &'static str, bytes: usize },
    #[error("{var} is not base64 or hex")]
    KeyEncoding { var: &'static str },
    #[error("this token was sealed with key {key_id}, which neither {var} nor {older_var} holds")]
    UnknownKey {
        key_id: String,
        var: &'static str,
        older_var: &'static str,
    },
    #[error("the sealed token does not open: it was altered, copied from another record, or the key is wrong")]
    Tampered,
    #[error("the sealed token is not in shiplog's format")]
    Malformed,
    #[error("could not encrypt the token")]
    Encrypt,
}
