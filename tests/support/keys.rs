//! Encryption keys for tests (32 bytes each, in the forms a user may give them). Made up here,
//! never used anywhere else.

/// A `TOKEN_ENCRYPTION_KEY`, in base64.
pub const TOKEN_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
/// The key that replaces it, in hex.
pub const NEW_TOKEN_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// A `BREAKGLASS_KEY`, in hex.
pub const BREAKGLASS_KEY: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
