//! Notifiers: deliver a [`Notice`] about an issue to the log, a signed
//! webhook, Slack or PagerDuty, retrying where the channel is remote.
//!
//! [`Notifiers`] is built once from `[[notifiers]]` (secret files are read
//! there, so a missing key fails at start, not at 3 a.m.) and is cheap to
//! clone. [`Notifier::send`] never panics and never returns `Err`: a receiver
//! that is down or answers 500 is an outcome, recorded in the [`Delivery`]
//! it returns (fault vs outcome, STYLE §7). What to do with a failed delivery
//! (record it, escalate) is the caller's decision.
//!
//! Only `webhook` and `pagerduty` let the receiver drop duplicates (an
//! `Idempotency-Key` header, a `dedup_key`); a retried Slack or log notice
//! may be seen twice.

mod console;
mod outbox;
mod pagerduty;
mod retry;
mod slack;
mod webhook;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::settings::{
    Matcher, NotifierKind, NotifierSettings, Secret, SecretFileError, SecretUrl, Severity,
    inline_or_file,
};
use retry::{Request, RetryPolicy};
use webhook::Webhook;

pub use outbox::{FAILED_SEAM, FOLDED_SEAM, Outbox, Route, SENT_SEAM, delivered, delivery_row};
pub use retry::retry_after;
pub use webhook::{IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

/// Where `pagerduty` notifiers send events when no `url` is configured.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// What every notifier delivers. The webhook body is exactly this, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// `warden-<seq>` of the audit row that caused the notice; the same on
    /// every retry, so a receiver can drop duplicates.
    pub idempotency_key: String,
    /// Seq of that audit row.
    pub seq: u64,
    /// The caller session handling the issue, if any.
    pub caller_session_id: Option<String>,
    /// The conversation this notice belongs to: the session of the issue
    /// that opened it. An incident's notices carry its opening issue's
    /// session, so the issue and its incident are one conversation per
    /// notifier (one PagerDuty `dedup_key`, one Slack thread of posts).
    /// `None`: the caller session, else the idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The probe that raised the issue.
    pub probe: String,
    /// The component the probe reports under.
    pub component: String,
    /// How serious the issue is.
    pub severity: Severity,
    /// The category, e.g. `service_unhealthy`.
    pub category: String,
    /// What happened: `fired`, `reminder`, `escalated`, `resumed`, `flapping` or `resolved`.
    pub kind: String,
    /// Whether the issue is still open.
    pub status: NoticeStatus,
    /// One line, e.g. `api: service unhealthy`.
    pub title: String,
    /// A few sentences: what is wrong and since when.
    pub summary: String,
    /// Suggested next steps from the investigation.
    pub actions: Vec<String>,
    /// A runbook link, if the issue has one.
    pub runbook: Option<String>,
    /// RFC 3339 UTC time the issue row was written.
    pub at: String,
    /// Anything else worth sending along (observation snapshot etc.).
    pub details: serde_json::Value,
}

impl Notice {
    /// The conversation key: [`Notice::group`], else the caller session,
    /// else the idempotency key. PagerDuty's `dedup_key`.
    pub fn conversation(&self) -> &str {
        self.group
            .as_deref()
            .or(self.caller_session_id.as_deref())
            .unwrap_or(&self.idempotency_key)
    }
}

/// Whether a notice is about an open or a closed issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeStatus {
    /// The issue is open.
    Firing,
    /// The issue is closed.
    Resolved,
}

impl NoticeStatus {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeStatus::Firing => "firing",
            NoticeStatus::Resolved => "resolved",
        }
    }
}

/// How one delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryOutcome {
    /// The receiver accepted the notice (a 2xx answer, or written to the log).
    Sent,
    /// Every allowed attempt failed, or the receiver refused the notice.
    Failed,
    /// Not sent: this notifier already carries the conversation in this
    /// state (a PagerDuty trigger for an alert it already triggered, a
    /// second Slack post that changes nothing). See [`Conversations`].
    Folded,
}

impl DeliveryOutcome {
    /// `sent` or `failed`, as in rows and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Sent => "sent",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::Folded => "folded",
        }
    }
}

/// The record of one [`Notifier::send`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The notifier's name.
    pub notifier: String,
    /// Sent or failed.
    pub outcome: DeliveryOutcome,
    /// Attempts made (1 without retries; 0 if the request could not be built).
    pub attempts: u32,
    /// HTTP status of the last answer, if there was one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed; never contains a secret.
    pub error: Option<String>,
    /// Wall time of the whole delivery, retries included, in milliseconds.
    pub duration_ms: u64,
}

impl Delivery {
    /// A delivery that never reached a receiver, for `why`.
    pub fn refused(notifier: String, why: &str) -> Self {
        Delivery {
            notifier,
            outcome: DeliveryOutcome::Failed,
            attempts: 0,
            last_status: None,
            error: Some(why.to_owned()),
            duration_ms: 0,
        }
    }
}

/// Why notifiers could not be built from their settings.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Two notifiers share a name.
    #[error("duplicate notifier name \"{0}\"")]
    DuplicateName(String),
    /// A field the kind needs is absent.
    #[error("notifier \"{notifier}\": {field} is required")]
    MissingField {
        /// The notifier.
        notifier: String,
        /// The missing field.
        field: &'static str,
    },
    /// `url` is not an http(s) URL. The URL itself is not repeated: a Slack
    /// webhook URL is a credential.
    #[error("notifier \"{notifier}\": url is not a valid http(s) URL ({reason})")]
    BadUrl {
        /// The notifier.
        notifier: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configured header name or value is not valid HTTP (the value is not shown).
    #[error("notifier \"{notifier}\": header \"{header}\" is not a valid HTTP header")]
    BadHeader {
        /// The notifier.
        notifier: String,
        /// The header name, as configured.
        header: String,
    },
    /// A routing matcher does not read.
    #[error("notifier \"{notifier}\": matcher \"{matcher}\": {reason}")]
    BadMatcher {
        /// The notifier.
        notifier: String,
        /// The matcher, as configured.
        matcher: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret file (`secret_file`, `routing_key_file`) cannot be used.
    #[error("notifier \"{notifier}\": {source}")]
    Secret {
        /// The notifier.
        notifier: String,
        /// Unreadable or empty, with the file.
        #[source]
        source: SecretFileError,
    },
}

/// Every configured notifier, built once; cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Notifiers {
    all: Arc<[Notifier]>,
}

impl Notifiers {
    /// Builds every notifier, reading secret files now. `http` is the shared client.
    pub fn from_settings(
        settings: &[NotifierSettings],
        http: reqwest::Client,
    ) -> Result<Notifiers, NotifyError> {
        let mut seen = BTreeSet::new();
        let mut all = Vec::with_capacity(settings.len());
        for notifier in settings {
            if !seen.insert(notifier.name.as_str()) {
                return Err(NotifyError::DuplicateName(notifier.name.clone()));
            }
            all.push(Notifier::build(notifier, http.clone())?);
        }
        Ok(Notifiers { all: all.into() })
    }

    /// The notifiers' names, in configuration order.
    pub fn names(&self) -> Vec<String> {
        self.all.iter().map(|n| n.name.clone()).collect()
    }

    /// The notifier called `name`.
    pub fn get(&self, name: &str) -> Option<&Notifier> {
        self.all.iter().find(|n| n.name == name)
    }

    /// The notifiers that want `notice`: those whose `min_severity` it
    /// reaches and whose matchers all hold.
    pub fn for_notice(&self, notice: &Notice) -> Vec<&Notifier> {
        self.all.iter().filter(|n| n.wants(notice)).collect()
    }

    /// Tells the notifier `name` that its conversation `key` was last
    /// brought to `status` (read back from the log at start), so a restart
    /// does not post the same fact again.
    pub fn remember(&self, name: &str, key: &str, status: NoticeStatus) {
        if let Some(notifier) = self.get(name) {
            notifier.conversations.remember(key, status);
        }
    }
}

/// One configured notifier.
pub struct Notifier {
    name: String,
    kind: NotifierKind,
    min_severity: Severity,
    /// Linked from every message when set.
    dashboard_url: Option<String>,
    channel: Channel,
    policy: RetryPolicy,
    http: reqwest::Client,
    /// The URL's secret parts and the header values, blanked out of any
    /// error text a receiver answers with.
    redact: Vec<Secret>,
    /// Routing conditions beyond `min_severity`; all must hold.
    matchers: Vec<Matcher>,
    /// What this notifier last told each conversation (Slack, PagerDuty).
    conversations: Conversations,
}

/// How many conversations a notifier remembers; the oldest go first. A
/// forgotten one costs at most one repeated post, never a lost one.
const CONVERSATIONS: usize = 4096;

/// Per notifier, the state each conversation was last brought to, so the
/// same fact is not posted twice: a person hears each fact once. Only
/// Slack and PagerDuty fold; a webhook or the log gets every notice.
#[derive(Debug, Default)]
pub struct Conversations {
    inner: std::sync::Mutex<ConversationMap>,
}

#[derive(Debug, Default)]
struct ConversationMap {
    state: std::collections::HashMap<String, NoticeStatus>,
    order: std::collections::VecDeque<String>,
}

/// Kinds that are news in their own right on Slack even while the
/// conversation is already open: scheduled incident updates and where the
/// escalation ladder ended (paged a person, exhausted, rolled back,
/// stopped). "Still escalating" is not: the open post already says so.
const NEWS_KINDS: [&str; 5] = [
    "incident_update",
    "escalation",
    "exhausted",
    "rolled_back",
    "automation_stopped",
];

impl Conversations {
    /// Claims `notice` for sending: `Some(previous)` to send (restore it with
    /// [`Conversations::release`] if the send fails), `None` to fold it.
    fn claim(&self, kind: NotifierKind, notice: &Notice) -> Option<Option<NoticeStatus>> {
        let Ok(mut map) = self.inner.lock() else {
            return Some(None);
        };
        let key = notice.conversation();
        let previous = map.state.get(key).copied();
        let repeat = previous == Some(notice.status);
        let fold = match kind {
            NotifierKind::Pagerduty => repeat && notice.kind != "acknowledged",
            NotifierKind::Slack => repeat && !NEWS_KINDS.contains(&notice.kind.as_str()),
            NotifierKind::Log | NotifierKind::Webhook => return Some(previous),
        };
        if fold {
            return None;
        }
        if previous.is_none() {
            map.order.push_back(key.to_owned());
            if map.order.len() > CONVERSATIONS
                && let Some(oldest) = map.order.pop_front()
            {
                map.state.remove(&oldest);
            }
        }
        map.state.insert(key.to_owned(), notice.status);
        Some(previous)
    }

    /// Records that `key` is in `status`, as the log says it was left.
    fn remember(&self, key: &str, status: NoticeStatus) {
        let Ok(mut map) = self.inner.lock() else {
            return;
        };
        if map.state.insert(key.to_owned(), status).is_none() {
            map.order.push_back(key.to_owned());
            if map.order.len() > CONVERSATIONS
                && let Some(oldest) = map.order.pop_front()
            {
                map.state.remove(&oldest);
            }
        }
    }

    /// Undoes a claim whose send failed, so the next notice tries again.
    fn release(&self, notice: &Notice, previous: Option<NoticeStatus>) {
        let Ok(mut map) = self.inner.lock() else {
            return;
        };
        let key = notice.conversation().to_owned();
        match previous {
            Some(status) => {
                map.state.insert(key, status);
            }
            None => {
                map.state.remove(&key);
                map.order.retain(|k| *k != key);
            }
        }
    }
}

/// What a notifier kind needs at send time.
enum Channel {
    Log,
    Webhook(Webhook),
    Slack { url: Url, channel: Option<String> },
    Pagerduty { url: Url, routing_key: Secret },
}

impl fmt::Debug for Notifier {
    // By hand: the URL (a Slack webhook URL is a credential) and headers stay out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("min_severity", &self.min_severity)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    fn build(settings: &NotifierSettings, http: reqwest::Client) -> Result<Self, NotifyError> {
        let name = settings.name.clone();
        let kind = settings.kind.ok_or_else(|| NotifyError::MissingField {
            notifier: name.clone(),
            field: "kind",
        })?;
        let channel = match kind {
            NotifierKind::Log => Channel::Log,
            NotifierKind::Webhook => {
                let secret = secret(
                    &name,
                    settings.secret.as_ref(),
                    settings.secret_file.as_deref(),
                )?;
                let url = url(&name, settings.url.as_ref().map(SecretUrl::expose))?;
                Channel::Webhook(Webhook::build(&name, url, secret, &settings.headers)?)
            }
            NotifierKind::Slack => Channel::Slack {
                url: url(&name, settings.url.as_ref().map(SecretUrl::expose))?,
                channel: settings.channel.clone(),
            },
            NotifierKind::Pagerduty => Channel::Pagerduty {
                url: url(
                    &name,
                    Some(
                        settings
                            .url
                            .as_ref()
                            .map_or(PAGERDUTY_EVENTS_URL, SecretUrl::expose),
                    ),
                )?,
                routing_key: secret(
                    &name,
                    settings.routing_key.as_ref(),
                    settings.routing_key_file.as_deref(),
                )?
                .ok_or_else(|| NotifyError::MissingField {
                    notifier: name.clone(),
                    field: "routing_key",
                })?,
            },
        };
        let matchers = settings
            .matchers
            .iter()
            .map(|text| {
                Matcher::parse(text).map_err(|reason| NotifyError::BadMatcher {
                    notifier: name.clone(),
                    matcher: text.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let redact = settings
            .url
            .iter()
            .flat_map(SecretUrl::secret_parts)
            .map(Secret::new)
            .chain(settings.headers.values().cloned())
            .collect();
        Ok(Notifier {
            redact,
            name,
            kind,
            min_severity: settings.min_severity,
            dashboard_url: settings.dashboard_url.clone(),
            channel,
            policy: RetryPolicy::from_settings(settings),
            http,
            matchers,
            conversations: Conversations::default(),
        })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The notifier kind.
    pub fn kind(&self) -> NotifierKind {
        self.kind
    }

    /// The least severity this notifier delivers.
    pub fn min_severity(&self) -> Severity {
        self.min_severity
    }

    /// The longest one delivery can take: every attempt timing out, with
    /// the longest wait between them.
    pub fn patience(&self) -> std::time::Duration {
        let p = self.policy;
        p.timeout.saturating_mul(p.retries.saturating_add(1))
            + p.backoff_max.saturating_mul(p.retries)
    }

    /// Whether this notifier takes `notice`: its severity reaches
    /// `min_severity` and every matcher holds.
    pub fn wants(&self, notice: &Notice) -> bool {
        notice.severity >= self.min_severity
            && self.matchers.iter().all(|matcher| {
                matcher.matches(match matcher.label() {
                    "component" => &notice.component,
                    "probe" => &notice.probe,
                    "category" => &notice.category,
                    "kind" => &notice.kind,
                    "status" => notice.status.as_str(),
                    _ => "",
                })
            })
    }

    /// Whether the receiver can drop a duplicate of a retried notice:
    /// `webhook` (the `Idempotency-Key` header and body field) and
    /// `pagerduty` (`dedup_key`) can; `slack` and `log` cannot.
    pub fn honours_idempotency_key(&self) -> bool {
        matches!(self.kind, NotifierKind::Webhook | NotifierKind::Pagerduty)
    }

    /// Delivers `notice` unless this notifier already brought its
    /// conversation to that state (then the delivery is `Folded`).
    pub async fn send(&self, notice: &Notice) -> Delivery {
        let Some(previous) = self.conversations.claim(self.kind, notice) else {
            return Delivery {
                notifier: self.name.clone(),
                outcome: DeliveryOutcome::Folded,
                attempts: 0,
                last_status: None,
                error: None,
                duration_ms: 0,
            };
        };
        let delivery = self.send_now(notice).await;
        if delivery.outcome != DeliveryOutcome::Sent {
            self.conversations.release(notice, previous);
        }
        delivery
    }

    /// Delivers `notice`, retrying remote kinds as configured. Never panics;
    /// every failure is described in the returned [`Delivery`].
    async fn send_now(&self, notice: &Notice) -> Delivery {
        let dashboard = self.dashboard_url.as_deref();
        let built = match &self.channel {
            Channel::Log => {
                console::write(&self.name, notice, dashboard);
                return Delivery {
                    notifier: self.name.clone(),
                    outcome: DeliveryOutcome::Sent,
                    attempts: 1,
                    last_status: None,
                    error: None,
                    duration_ms: 0,
                };
            }
            Channel::Webhook(webhook) => webhook.request(notice),
            Channel::Slack { url, channel } => json_request(
                url,
                &slack::payload(notice, channel.as_deref(), dashboard),
                Vec::new(),
            ),
            Channel::Pagerduty { url, routing_key } => json_request(
                url,
                &pagerduty::payload(notice, routing_key, dashboard),
                vec![routing_key.clone()],
            ),
        };
        match built {
            Ok(mut request) => {
                request.redact.extend(self.redact.iter().cloned());
                retry::deliver(&self.http, &self.name, self.policy, request).await
            }
            Err(error) => Delivery {
                notifier: self.name.clone(),
                outcome: DeliveryOutcome::Failed,
                attempts: 0,
                last_status: None,
                error: Some(error),
                duration_ms: 0,
            },
        }
    }
}

/// A POST of `body` as JSON.
fn json_request(
    url: &Url,
    body: &serde_json::Value,
    redact: Vec<Secret>,
) -> Result<Request, String> {
    let body = serde_json::to_vec(body).map_err(|error| format!("cannot encode: {error}"))?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(Request {
        url: url.clone(),
        headers,
        body,
        redact,
        signing_key: None,
    })
}

fn url(notifier: &str, raw: Option<&str>) -> Result<Url, NotifyError> {
    let raw = raw.ok_or_else(|| NotifyError::MissingField {
        notifier: notifier.to_owned(),
        field: "url",
    })?;
    let bad = |reason: String| NotifyError::BadUrl {
        notifier: notifier.to_owned(),
        reason,
    };
    let url = Url::parse(raw).map_err(|error| bad(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https".into()));
    }
    Ok(url)
}

/// The secret given inline or in a file; `None` if neither is set.
fn secret(
    notifier: &str,
    inline: Option<&Secret>,
    file: Option<&Path>,
) -> Result<Option<Secret>, NotifyError> {
    inline_or_file(inline, file).map_err(|source| NotifyError::Secret {
        notifier: notifier.to_owned(),
        source,
    })
}
