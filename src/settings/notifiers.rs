//! `[[notifiers]]`: where notices about issues are delivered (the log, a
//! signed webhook, Slack, PagerDuty) and how hard delivery is retried.
//!
//! One flat table per notifier with a `kind` tag, like `[[probes]]`; which
//! kind needs which field is checked in [`super::validate`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Secret, SecretMap, SecretUrl, Severity};

/// The kinds of notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifierKind {
    /// One log line plus one human line on stdout per notice.
    Log,
    /// A JSON POST of the notice, optionally HMAC-signed; `url` required.
    Webhook,
    /// A Slack incoming webhook; `url` required.
    Slack,
    /// PagerDuty Events API v2; `routing_key` (or `routing_key_file`) required.
    Pagerduty,
}

impl NotifierKind {
    /// The kind as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifierKind::Log => "log",
            NotifierKind::Webhook => "webhook",
            NotifierKind::Slack => "slack",
            NotifierKind::Pagerduty => "pagerduty",
        }
    }
}

/// One notifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifierSettings {
    /// Unique name; appears in delivery records. Required.
    pub name: String,
    /// The notifier kind. Required.
    pub kind: Option<NotifierKind>,
    /// Least severity delivered; quieter notices are skipped. Default `info`.
    pub min_severity: Severity,
    /// `webhook`, `slack`: the URL to POST to (required). `pagerduty`:
    /// default `https://events.pagerduty.com/v2/enqueue`. Its userinfo and
    /// query are secret; for `slack` the whole URL is.
    pub url: Option<SecretUrl>,
    /// A file holding `url` (surrounding whitespace ignored).
    pub url_file: Option<PathBuf>,
    /// `webhook`: HMAC-SHA256 key; signs each body (`X-Warden-Signature`).
    pub secret: Option<Secret>,
    /// `webhook`: a file holding the HMAC key (surrounding whitespace ignored).
    pub secret_file: Option<PathBuf>,
    /// `pagerduty`: the integration's routing key.
    pub routing_key: Option<Secret>,
    /// `pagerduty`: a file holding the routing key.
    pub routing_key_file: Option<PathBuf>,
    /// `webhook`: extra request headers; the values are secret.
    pub headers: SecretMap,
    /// `webhook`: extra request headers whose values are read from files
    /// (name → path; surrounding whitespace ignored).
    pub headers_files: BTreeMap<String, PathBuf>,
    /// Longest one delivery attempt may take. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries after the first attempt fails. Default 5.
    pub retries: u32,
    /// Delay before the first retry; doubles for each further one. Default `500ms`.
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    /// Upper bound of the retry delay. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// `slack`: channel override (the webhook's own channel when absent).
    pub channel: Option<String>,
    /// A dashboard link included in every message.
    pub dashboard_url: Option<String>,
    /// Routing beyond `min_severity`: every matcher must hold for a notice
    /// to go to this notifier, e.g. `["component=~shop|api", "kind!=reminder"]`.
    /// See [`Matcher`]. Default: none (every notice at or above `min_severity`).
    pub matchers: Vec<String>,
}

impl Default for NotifierSettings {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: None,
            min_severity: Severity::Info,
            url: None,
            url_file: None,
            secret: None,
            secret_file: None,
            routing_key: None,
            routing_key_file: None,
            headers: SecretMap::new(),
            headers_files: BTreeMap::new(),
            timeout: Duration::from_secs(10),
            retries: 5,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            channel: None,
            dashboard_url: None,
            matchers: Vec::new(),
        }
    }
}

/// What a [`Matcher`] can look at in a notice.
pub const MATCH_LABELS: [&str; 5] = ["component", "probe", "category", "kind", "status"];

/// One routing condition of a notifier, written as Alertmanager writes
/// them: `label=value`, `label!=value`, `label=~regex`, `label!~regex`,
/// where `label` is one of [`MATCH_LABELS`]. A regex must match the whole
/// value. The value may be quoted (`kind="incident_opened"`).
#[derive(Debug, Clone)]
pub struct Matcher {
    label: &'static str,
    negate: bool,
    test: MatchTest,
}

#[derive(Debug, Clone)]
enum MatchTest {
    Equal(String),
    Regex(regex::Regex),
}

impl Matcher {
    /// Reads one matcher; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let split = text.find(['=', '!']).ok_or_else(|| {
            "is not label=value, label!=value, label=~regex or label!~regex".to_owned()
        })?;
        let (label, rest) = text.split_at(split);
        let label = label.trim();
        let label = MATCH_LABELS
            .iter()
            .find(|known| **known == label)
            .ok_or_else(|| {
                format!(
                    "unknown label \"{label}\" (one of {})",
                    MATCH_LABELS.join(", ")
                )
            })?;
        let (negate, regex, value) = if let Some(value) = rest.strip_prefix("!~") {
            (true, true, value)
        } else if let Some(value) = rest.strip_prefix("=~") {
            (false, true, value)
        } else if let Some(value) = rest.strip_prefix("!=") {
            (true, false, value)
        } else if let Some(value) = rest.strip_prefix('=') {
            (false, false, value)
        } else {
            return Err("the operator must be =, !=, =~ or !~".to_owned());
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        let test = if regex {
            regex::Regex::new(&format!("^(?:{value})$"))
                .map(MatchTest::Regex)
                .map_err(|error| format!("bad regex: {error}"))?
        } else {
            MatchTest::Equal(value.to_owned())
        };
        Ok(Matcher {
            label,
            negate,
            test,
        })
    }

    /// The label this matcher looks at.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// Whether `value` (the notice's value of [`Matcher::label`]) passes.
    pub fn matches(&self, value: &str) -> bool {
        let hit = match &self.test {
            MatchTest::Equal(expected) => expected == value,
            MatchTest::Regex(regex) => regex.is_match(value),
        };
        hit != self.negate
    }
}

#[cfg(test)]
mod matcher_tests {
    use super::Matcher;

    #[test]
    fn matchers_read_like_alertmanager_and_regexes_match_the_whole_value() {
        let m = Matcher::parse("component=~shop|api").expect("parse");
        assert_eq!(m.label(), "component");
        assert!(m.matches("shop") && m.matches("api") && !m.matches("shopfront"));
        let m = Matcher::parse("kind != reminder").expect("parse");
        assert!(!m.matches("reminder") && m.matches("fired"));
        let m = Matcher::parse("category=\"incident\"").expect("parse");
        assert!(m.matches("incident") && !m.matches("\"incident\""));
        let m = Matcher::parse("kind!~incident_.*").expect("parse");
        assert!(!m.matches("incident_update") && m.matches("fired"));
        for (bad, why) in [
            ("team=ops", "unknown label"),
            ("component", "is not label=value"),
            ("kind=~(", "bad regex"),
        ] {
            let error = Matcher::parse(bad).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
