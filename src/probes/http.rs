//! `http`: one request (plus the redirects it earns), judged by status.
//!
//! The shared client follows no redirects: each check follows them itself
//! up to its own `max_redirects`, and drops every configured header once a
//! redirect leaves the origin (scheme, host and port). Notifiers, tiers,
//! investigators and fix `http` actions use the same client and follow no
//! redirect at all, so their headers never leave the configured origin. The body is streamed chunk by chunk and
//! never buffered past `max_body_bytes`; a larger body is an unhealthy
//! outcome (a health endpoint that suddenly returns megabytes is a problem
//! worth seeing). The timeout of the whole exchange is enforced by
//! [`Check::run`](super::Check::run).

use std::error::Error as _;
use std::time::Duration;

use bytesize::ByteSize;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode, Url};

use super::check::{CheckContext, ProbeError};
use super::facts::{CheckOutcome, Facts};
use super::kind::{OwnKey, ProbeKindSpec, RunFuture, Runner, required};
use crate::messages::Health;
use crate::settings::{ProbeKind, ProbeSettings, Problems, redact_url, scrub};

/// `max_body_bytes` when not set.
const DEFAULT_MAX_BODY: ByteSize = ByteSize::kib(64);

/// `max_redirects` when not set.
const DEFAULT_MAX_REDIRECTS: u32 = 5;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// The one HTTP client every `http` check shares: rustls, no automatic
/// redirects, TLS info kept (for the certificate's expiry), pooled
/// connections dropped after 30 s idle, no global timeout.
pub fn http_client() -> Result<reqwest::Client, ProbeError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_info(true)
        .pool_idle_timeout(POOL_IDLE)
        .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(ProbeError::HttpClient)
}

/// The `http` kind.
pub(crate) struct Http;

impl ProbeKindSpec for Http {
    fn keys(&self) -> &'static [OwnKey] {
        &[
            ("url", |p| p.url.is_some()),
            ("method", |p| p.method.is_some()),
            // `headers_files` entries are merged into `headers` at load, so
            // only the extra entries were written as `headers`.
            ("headers", |p| p.headers.len() > p.headers_files.len()),
            ("headers_files", |p| !p.headers_files.is_empty()),
            ("body", |p| p.body.is_some()),
            ("expect_status", |p| p.expect_status.is_some()),
            ("max_body_bytes", |p| p.max_body_bytes.is_some()),
            ("max_redirects", |p| p.max_redirects.is_some()),
        ]
    }

    fn validate(&self, probe: &ProbeSettings, at: &str, problems: &mut Problems) {
        match probe.url.as_deref() {
            None => required(problems, at, "url", ProbeKind::Http.as_str()),
            Some(url) => match url.parse::<axum::http::Uri>() {
                Ok(uri)
                    if matches!(uri.scheme_str(), Some("http" | "https"))
                        && uri.host().is_some() => {}
                _ => problems.push(
                    format!("{at}.url"),
                    format!("\"{}\" is not an http(s) URL", redact_url(url, false)),
                ),
            },
        }
    }

    fn build(
        &self,
        probe: &ProbeSettings,
        _timeout: Duration,
        ctx: &CheckContext,
    ) -> Result<Box<dyn Runner>, ProbeError> {
        Ok(Box::new(HttpCheck::build(probe, ctx.http.clone())?))
    }
}

pub(crate) struct HttpCheck {
    client: reqwest::Client,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<String>,
    expect_status: Option<u16>,
    max_body: ByteSize,
    max_redirects: u32,
}

impl Runner for HttpCheck {
    fn run(&self, _timeout: Duration) -> RunFuture<'_> {
        Box::pin(HttpCheck::run(self))
    }
}

impl HttpCheck {
    pub(crate) fn build(
        probe: &ProbeSettings,
        client: reqwest::Client,
    ) -> Result<Self, ProbeError> {
        let name = || probe.name.clone();
        let raw = probe
            .url
            .as_deref()
            .ok_or_else(|| ProbeError::MissingField {
                probe: name(),
                kind: ProbeKind::Http.as_str(),
                field: "url",
            })?;
        let bad_url = |reason: String| ProbeError::BadUrl {
            probe: name(),
            url: raw.to_owned(),
            reason,
        };
        let url = Url::parse(raw).map_err(|err| bad_url(err.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad_url("the scheme must be http or https".into()));
        }
        let method = match probe.method.as_deref() {
            None => Method::GET,
            Some(method) => Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
                .map_err(|_| ProbeError::BadMethod {
                    probe: name(),
                    method: method.to_owned(),
                })?,
        };
        let mut headers = HeaderMap::new();
        for (key, value) in &probe.headers {
            let header =
                HeaderName::from_bytes(key.as_bytes()).map_err(|_| ProbeError::BadHeaderName {
                    probe: name(),
                    name: key.clone(),
                })?;
            let mut value =
                HeaderValue::from_str(value.expose()).map_err(|_| ProbeError::BadHeaderValue {
                    probe: name(),
                    name: key.clone(),
                })?;
            // Every configured header value is a secret, not only the
            // well-known credential headers.
            value.set_sensitive(true);
            headers.append(header, value);
        }
        Ok(Self {
            client,
            method,
            url,
            headers,
            body: probe.body.clone(),
            expect_status: probe.expect_status,
            max_body: probe.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY),
            max_redirects: probe.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS),
        })
    }

    pub(crate) async fn run(&self) -> CheckOutcome {
        let mut outcome = self.exchange().await;
        // Every configured header value is a secret, and a target may echo
        // it back in its body or an error; neither may carry it further.
        if !self.headers.is_empty() {
            let secrets = || {
                self.headers
                    .values()
                    .filter_map(|value| value.to_str().ok())
            };
            let scrub = |text: &str| scrub(text, secrets());
            let facts = &mut outcome.facts;
            for text in [&mut facts.body, &mut facts.error].into_iter().flatten() {
                *text = scrub(text);
            }
            for reason in &mut outcome.reasons {
                *reason = scrub(reason);
            }
        }
        outcome
    }

    async fn exchange(&self) -> CheckOutcome {
        let mut facts = Facts::default();
        let mut method = self.method.clone();
        let mut url = self.url.clone();
        let mut headers = self.headers.clone();
        let mut body = self.body.clone();
        let mut followed = 0_u32;
        let response = loop {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => {
                    return CheckOutcome::failed(facts, describe(&err, url.scheme() == "https"));
                }
            };
            let status = response.status();
            let location = response.headers().get(LOCATION).cloned();
            let (true, Some(location)) =
                (status.is_redirection() && self.max_redirects > 0, location)
            else {
                break response;
            };
            facts.status = Some(status.as_u16());
            if followed >= self.max_redirects {
                return CheckOutcome::failed(
                    facts,
                    format!("too many redirects (more than {})", self.max_redirects),
                );
            }
            let next = match location.to_str().ok().and_then(|to| url.join(to).ok()) {
                Some(next) if matches!(next.scheme(), "http" | "https") => next,
                _ => {
                    return CheckOutcome::failed(
                        facts,
                        format!(
                            "status {} redirects to an invalid location",
                            status.as_u16()
                        ),
                    );
                }
            };
            followed += 1;
            if redirect_becomes_get(status, &method) {
                method = Method::GET;
                body = None;
            }
            if next.origin() != url.origin() {
                // Never hand credentials to another origin: any configured
                // header may be one (an API key, a tenant token), so none
                // of them follows a redirect that leaves the origin.
                headers.clear();
            }
            url = next;
        };

        let status = response.status().as_u16();
        facts.status = Some(status);
        facts.cert_expires_in = cert_expires_in(&response);
        let mut reasons = Vec::new();
        match self.expect_status {
            Some(expected) if expected != status => {
                reasons.push(format!("status {status} (expected {expected})"));
            }
            None if !response.status().is_success() => {
                reasons.push(format!("status {status} (expected 2xx)"));
            }
            _ => {}
        }
        let mut errors = Vec::new();
        match read_body(response, self.max_body).await {
            Err(err) => errors.push(err),
            Ok(read) => {
                facts.body_truncated = read.truncated;
                if read.truncated {
                    errors.push(format!(
                        "response body exceeds max_body_bytes ({}); raise max_body_bytes if that is expected",
                        self.max_body
                    ));
                }
                match text(read.bytes, read.truncated) {
                    Ok(text) => facts.body = Some(text),
                    Err((lossy, at)) => {
                        facts.body = Some(lossy);
                        errors.push(format!("response body is not valid UTF-8 (at byte {at})"));
                    }
                }
            }
        }
        if !errors.is_empty() {
            facts.error = Some(errors.join("; "));
        }
        reasons.extend(errors);
        if reasons.is_empty() {
            CheckOutcome::healthy(facts)
        } else {
            CheckOutcome {
                facts,
                verdict: Health::Unhealthy,
                reasons,
                stage: None,
            }
        }
    }
}

/// 303 always becomes GET (except HEAD); 301/302 turn a POST into a GET, as
/// browsers and curl do.
fn redirect_becomes_get(status: StatusCode, method: &Method) -> bool {
    match status {
        StatusCode::SEE_OTHER => *method != Method::HEAD,
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => *method == Method::POST,
        _ => false,
    }
}

struct Body {
    bytes: Vec<u8>,
    truncated: bool,
}

/// Streams the body up to `max`; past it, stops and drops the connection.
async fn read_body(mut response: reqwest::Response, max: ByteSize) -> Result<Body, String> {
    let max = usize::try_from(max.as_u64()).unwrap_or(usize::MAX);
    let expected = response.content_length();
    if expected.is_some_and(|length| length > max as u64) {
        return Ok(Body {
            bytes: Vec::new(),
            truncated: true,
        });
    }
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(None) => {
                return Ok(Body {
                    bytes,
                    truncated: false,
                });
            }
            Ok(Some(chunk)) => {
                let room = max.saturating_sub(bytes.len());
                if chunk.len() > room {
                    bytes.extend_from_slice(chunk.get(..room).unwrap_or_default());
                    return Ok(Body {
                        bytes,
                        truncated: true,
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(_) => {
                let read = bytes.len();
                return Err(match expected {
                    Some(total) => {
                        format!("connection closed mid-response (read {read} of {total} bytes)")
                    }
                    None => format!("connection closed mid-response (read {read} bytes)"),
                });
            }
        }
    }
}

/// The body as text; on invalid UTF-8 a lossy excerpt and the first bad
/// byte. A body cut at the cap may end inside a character: that is not an
/// error.
fn text(mut bytes: Vec<u8>, truncated: bool) -> Result<String, (String, usize)> {
    match std::str::from_utf8(&bytes) {
        Ok(_) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(err) if truncated && err.error_len().is_none() => {
            bytes.truncate(err.valid_up_to());
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        Err(err) => Err((
            String::from_utf8_lossy(&bytes).into_owned(),
            err.valid_up_to(),
        )),
    }
}

/// Seconds until the peer certificate's notAfter, for TLS responses.
fn cert_expires_in(response: &reqwest::Response) -> Option<i64> {
    let info = response.extensions().get::<reqwest::tls::TlsInfo>()?;
    seconds_until_not_after(info.peer_certificate()?, jiff::Timestamp::now().as_second())
}

/// Seconds from `now` (Unix seconds) to a DER certificate's notAfter.
fn seconds_until_not_after(der: &[u8], now: i64) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp() - now)
}

/// An operator-facing cause for a failed request: the root of the error
/// chain, with the common cases named plainly.
fn describe(err: &reqwest::Error, https: bool) -> String {
    let mut chain: Vec<&(dyn std::error::Error + 'static)> = vec![err];
    let mut next = err.source();
    while let Some(source) = next {
        chain.push(source);
        next = source.source();
    }
    let io_kind = chain
        .iter()
        .find_map(|err| err.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    let messages: Vec<String> = chain.iter().map(ToString::to_string).collect();
    let root = messages.last().cloned().unwrap_or_default();
    match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => return "connection refused".into(),
        Some(std::io::ErrorKind::ConnectionReset) => return "connection reset by peer".into(),
        _ => {}
    }
    if let Some(dns) = messages
        .iter()
        .find(|message| message.starts_with("dns error"))
    {
        return dns.clone();
    }
    // rustls errors surface as io::Error(InvalidData) from the TLS stream.
    let tls = (https && io_kind == Some(std::io::ErrorKind::InvalidData))
        || messages.iter().any(|message| {
            let message = message.to_ascii_lowercase();
            [
                "certificate",
                "tls",
                "handshake",
                "received fatal alert",
                "corrupt message",
            ]
            .iter()
            .any(|needle| message.contains(needle))
        });
    if tls {
        return format!("TLS: {root}");
    }
    if err.is_connect() {
        return format!("connect failed: {root}");
    }
    if err.source().is_none() {
        return format!("request failed: {err}");
    }
    format!("request failed: {root}")
}

#[cfg(test)]
mod tests;
