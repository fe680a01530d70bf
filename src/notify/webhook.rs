//! `webhook`: a POST of the [`Notice`] as JSON, with an `Idempotency-Key`
//! header (the receiver drops duplicates of a retried delivery) and, when a
//! secret is configured, an HMAC-SHA256 signature so the receiver can tell
//! Warden from anyone who learnt the URL.
//!
//! The signature covers `"{timestamp}.{body}"`, where the timestamp is the
//! `X-Warden-Timestamp` header (Unix seconds), and both are made afresh for
//! every attempt. A receiver that rejects old timestamps therefore rejects
//! a replayed request, and a retry late in a long backoff still passes (the
//! same scheme as Stripe's and Slack's webhook signatures;
//! `docs/operations.md` has a verification recipe).

use hmac::{Hmac, Mac as _};
use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use super::retry::Request;
use super::{Notice, NotifyError};
use crate::settings::{Secret, SecretMap};

/// The header carrying the notice's idempotency key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The header carrying `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`.
pub const SIGNATURE_HEADER: &str = "x-warden-signature";

/// The header carrying when the attempt was sent, in Unix seconds; signed
/// together with the body.
pub const TIMESTAMP_HEADER: &str = "x-warden-timestamp";

pub(super) struct Webhook {
    url: Url,
    secret: Option<Secret>,
    /// The configured headers, parsed once.
    headers: HeaderMap,
}

impl Webhook {
    pub(super) fn build(
        notifier: &str,
        url: Url,
        secret: Option<Secret>,
        configured: &SecretMap,
    ) -> Result<Self, NotifyError> {
        let mut headers = HeaderMap::new();
        for (name, value) in configured {
            let bad = || NotifyError::BadHeader {
                notifier: notifier.to_owned(),
                header: name.clone(),
            };
            let name = HeaderName::try_from(name.as_str()).map_err(|_| bad())?;
            let mut value = HeaderValue::try_from(value.expose()).map_err(|_| bad())?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(Self {
            url,
            secret,
            headers,
        })
    }

    pub(super) fn request(&self, notice: &Notice) -> Result<Request, String> {
        let body =
            serde_json::to_vec(notice).map_err(|error| format!("cannot encode notice: {error}"))?;
        // Configured headers first, so they cannot replace the ones below.
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let key = HeaderValue::try_from(notice.idempotency_key.as_str())
            .map_err(|_| "the idempotency key is not a valid header value".to_owned())?;
        headers.insert(HeaderName::from_static(IDEMPOTENCY_KEY_HEADER), key);
        // Replaced per attempt by `stamp` when the request is signed.
        stamp(&mut headers, None, &body);
        let mut redact = Vec::new();
        if let Some(secret) = &self.secret {
            redact.push(secret.clone());
        }
        Ok(Request {
            url: self.url.clone(),
            headers,
            body,
            redact,
            signing_key: self.secret.clone(),
        })
    }
}

/// Sets `X-Warden-Timestamp` to now and, with a key, `X-Warden-Signature`
/// over that timestamp and `body`. Called for every attempt.
pub(super) fn stamp(headers: &mut HeaderMap, key: Option<&Secret>, body: &[u8]) {
    let timestamp = jiff::Timestamp::now().as_second();
    headers.insert(
        HeaderName::from_static(TIMESTAMP_HEADER),
        HeaderValue::from(timestamp),
    );
    if let Some(key) = key
        && let Ok(signature) = HeaderValue::try_from(sign(key.expose().as_bytes(), timestamp, body))
    {
        headers.insert(HeaderName::from_static(SIGNATURE_HEADER), signature);
    }
}

/// `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}" under key>`.
pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this never fails in practice; an
    // empty signature would simply not verify.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
