//! `x-vercel-signature`: the lowercase hex HMAC-SHA1 of the raw body, keyed with the webhook's
//! (or the drain's) secret. Several secrets may be configured at once, so that a secret can be
//! rotated without refusing the deliveries signed with the old one in between.

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::secret::Secret;

/// The secrets a delivery may be signed with; `Debug` shows how many, never their values.
#[derive(Clone, Default)]
pub struct SigningSecrets(Vec<Secret>);

impl SigningSecrets {
    /// Secrets separated by commas (`VERCEL_WEBHOOK_SECRET=new,old` while rotating); blanks are
    /// dropped.
    pub fn from_list(list: &str) -> Self {
        SigningSecrets(
            list.split(',')
                .map(str::trim)
                .filter(|secret| !secret.is_empty())
                .map(Secret::new)
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `signature` (the header's value) is the HMAC of `body` under one of the secrets.
    /// The comparison takes the same time whatever the signature's first wrong byte.
    pub fn verify(&self, body: &[u8], signature: Option<&[u8]>) -> bool {
        self.verify_reader(body, signature)
    }

    /// [`SigningSecrets::verify`] over what `body` reads (a gunzipped batch, whose signature
    /// may be of the bytes before or after compression), read once in pieces.
    pub fn verify_reader(&self, mut body: impl std::io::Read, signature: Option<&[u8]>) -> bool {
        let Some(claimed) = signature.and_then(crate::secret::decode_hex::<20>) else {
            return false;
        };
        let mut macs: Vec<_> = self.0.iter().map(|s| keyed(s.expose(), b"")).collect();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match body.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => macs.iter_mut().for_each(|mac| mac.update(&buffer[..n])),
                Err(_) => return false,
            }
        }
        // Every secret is tried, matched or not, so the time does not tell which one matched.
        macs.into_iter().fold(false, |matched, mac| {
            mac.verify_slice(&claimed).is_ok() | matched
        })
    }
}

impl std::fmt::Debug for SigningSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningSecrets([REDACTED] x{})", self.0.len())
    }
}

/// The signature of `body` under `secret`, as Vercel sends it (for the simulator and tests).
pub fn sign(secret: &str, body: &[u8]) -> String {
    keyed(secret, body)
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The HMAC of `body` under `secret`, ready to finish or to compare.
fn keyed(secret: &str, body: &[u8]) -> Hmac<Sha1> {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_from_any_configured_secret_is_accepted_and_nothing_else() {
        let body = br#"{"id":"a","type":"deployment.created"}"#;
        let secrets = SigningSecrets::from_list(" new-secret , ,old-secret");
        let new = sign("new-secret", body);
        let old = sign("old-secret", body);
        assert!(secrets.verify(body, Some(new.as_bytes())));
        assert!(secrets.verify(body, Some(old.to_uppercase().as_bytes())));
        assert!(!secrets.verify(body, Some(sign("other", body).as_bytes())));
        assert!(!secrets.verify(b"{}", Some(new.as_bytes())), "another body");
        assert!(!secrets.verify(body, None));
        assert!(!secrets.verify(body, Some(b"sha1=abc")));
        assert!(!secrets.verify(body, Some(&new.as_bytes()[..39])));
        assert!(!SigningSecrets::default().verify(body, Some(new.as_bytes())));
        assert_eq!(format!("{secrets:?}"), "SigningSecrets([REDACTED] x2)");
        assert!(secrets.verify_reader(&body[..], Some(old.as_bytes())));
        assert!(!secrets.verify_reader(&b"{}"[..], Some(old.as_bytes())));
    }
}
