//! `POST /vercel/drain`: a batch is verified, read whole once (a bad one is refused whole),
//! taken once (a ledger of batches in the store), queued within a budget of bytes, and only
//! then acknowledged. The ownership check (`x-vercel-verify`) is answered on every response.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use sha1::{Digest, Sha1};

use super::drain::for_each_record;
use super::drain_desk::{decoded, DrainBatch, DRAIN_ROUTE};
use super::ledger::LEDGER_TTL;
use super::routes::{busy, read_body, refusal, signature_refused, vercel_forbidden, Ingest, Peer};

/// A batch's bytes as sent: room for thousands of records (Vercel does not say how large a
/// batch may be).
pub const DRAIN_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// A gzip-encoded batch's bytes once decompressed (a small body must not unpack into gigabytes).
pub const DRAIN_DECODED_LIMIT: u64 = 64 * 1024 * 1024;
/// Batches read and checked at once (each up to [`DRAIN_BODY_LIMIT`]).
pub const DRAIN_READS: usize = 4;
/// The bytes of batches acknowledged and not yet taken, in KiB.
pub const DRAIN_QUEUE_KIB: usize = 64 * 1024;

pub async fn drain(
    State(ingest): State<Arc<Ingest>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut response = answer(&ingest, peer, &headers, body).await;
    if let Some(code) = &ingest.drain_verify {
        if let Ok(value) = HeaderValue::from_str(code.expose()) {
            response.headers_mut().insert("x-vercel-verify", value);
        }
    }
    response
}

async fn answer(ingest: &Ingest, peer: SocketAddr, headers: &HeaderMap, body: Body) -> Response {
    // Bodies are held whole until their signature is checked: only a few at once, so that
    // unsigned requests cannot make the listener hold gigabytes.
    let Ok(_reading) = ingest.drain_reads.clone().try_acquire_owned() else {
        return busy("too many drained batches are being read at once");
    };
    let why = "a batch this large is held whole while it is checked; have Vercel gzip them";
    let body = match read_body(body, headers, DRAIN_BODY_LIMIT, why).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let signature = headers.get("x-vercel-signature").map(HeaderValue::as_bytes);
    // Vercel's ownership check: an empty object, unsigned; nothing to take.
    if signature.is_none() && matches!(body.trim_ascii(), b"" | b"{}") {
        return (StatusCode::OK, Json(json!({ "ok": true }))).into_response();
    }
    if ingest.drain_secrets.is_empty() {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "drains are not set up here: start serve with VERCEL_DRAIN_SECRET",
        );
    }
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"))
        || body.starts_with(&[0x1f, 0x8b]);
    let checked = {
        let (body, secrets) = (body.clone(), ingest.drain_secrets.clone());
        let signature = signature.map(<[u8]>::to_vec);
        tokio::task::spawn_blocking(move || check(body, gzip, &secrets, signature.as_deref()))
            .await
            .unwrap_or(Err(Refused::Unreadable(
                "the batch could not be read".into(),
            )))
    };
    match checked {
        Ok(()) => {}
        Err(Refused::Signature(why)) => {
            signature_refused(ingest, peer, DRAIN_ROUTE, why);
            return vercel_forbidden();
        }
        Err(Refused::TooLarge) => {
            return refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the batch unpacks to over {DRAIN_DECODED_LIMIT} bytes"),
            )
        }
        Err(Refused::Unreadable(why)) => return refusal(StatusCode::BAD_REQUEST, &why),
    }
    queue(ingest, body, gzip).await
}

/// Room in the queue first, then the ledger: a batch refused for want of room is not marked
/// taken, so Vercel's retry of it is.
async fn queue(ingest: &Ingest, body: Bytes, gzip: bool) -> Response {
    let kib = u32::try_from(body.len().div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let Ok(room) = ingest.drain_room.clone().try_acquire_many_owned(kib) else {
        return busy("the queue of drained batches is full");
    };
    let Ok(slot) = ingest.drain_queue.try_reserve() else {
        return busy("the queue of drained batches is full");
    };
    let digest: String = Sha1::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let first = ingest
        .store
        .first_claim(&format!("drain:batch:{digest}"), LEDGER_TTL)
        .await
        .unwrap_or(true);
    if first {
        slot.send(DrainBatch { body, gzip, room });
    } else {
        ingest.metrics.duplicate_delivered(DRAIN_ROUTE);
    }
    (StatusCode::OK, Json(json!({ "ok": true }))).into_response()
}

enum Refused {
    Signature(&'static str),
    TooLarge,
    Unreadable(String),
}

/// The signature (of the bytes as sent, or of the gunzipped ones), the decompressed size and
/// every record, checked before anything is taken.
fn check(
    body: Bytes,
    gzip: bool,
    secrets: &crate::vercel::signature::SigningSecrets,
    signature: Option<&[u8]>,
) -> Result<(), Refused> {
    let signed = secrets.verify(&body, signature)
        || (gzip
            && secrets.verify_reader(decoded(body.clone(), true, DRAIN_DECODED_LIMIT), signature));
    if !signed {
        return Err(Refused::Signature(match signature {
            None => "no x-vercel-signature header",
            Some(_) => "the x-vercel-signature does not match",
        }));
    }
    // One pass reads every record and tells the unpacked size: a byte past the limit is enough.
    let mut limited = decoded(body, gzip, u64::MAX).take(DRAIN_DECODED_LIMIT + 1);
    let read = for_each_record(&mut limited as &mut dyn Read, |_| {});
    if limited.limit() == 0 {
        return Err(Refused::TooLarge);
    }
    read.map(|_| ())
        .map_err(|err| Refused::Unreadable(err.to_string()))
}
