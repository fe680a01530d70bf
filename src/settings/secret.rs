//! Values that must never be shown: tokens, keys, header values, managed
//! `env` values, and the credential parts of URLs (userinfo and query; the
//! whole URL for a Slack incoming webhook). The types here print themselves
//! redacted through `Debug`, `Display` and `Serialize`, so a secret cannot
//! reach a log, an error, an audit row, an API answer or an effective-config
//! dump unless code asks for it with `expose()` at the point of use.
//!
//! [`scrub`] is the second line of defence for text Warden did not write: an
//! error a remote server echoes back may quote the header or URL it was sent.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What every redacted value is replaced with.
pub const REDACTED: &str = "***";

/// A secret value. `Debug` and `Serialize` print `"***"`, so a secret cannot
/// leak through logs, error messages or an effective-config dump by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used (comparison, header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// Why a file-held secret cannot be used. Names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file holds only whitespace.
    #[error("{} is empty", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file holds fewer characters than a token must have.
    #[error("the token in {} is shorter than {min} characters", path.display())]
    TooShort {
        /// The file.
        path: PathBuf,
        /// The fewest characters accepted.
        min: usize,
    },
}

/// The secret in `path`: every `*_file` key, token file and key file goes
/// through here, so they agree on what a file holds. Surrounding whitespace
/// (the newline an editor or `echo` adds) is not part of the secret; a file
/// with nothing else, or with fewer than `min_chars` characters, is refused.
pub fn read_secret(path: &Path, min_chars: usize) -> Result<Secret, SecretFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(SecretFileError::Empty {
            path: path.to_owned(),
        });
    }
    if secret.chars().count() < min_chars {
        return Err(SecretFileError::TooShort {
            path: path.to_owned(),
            min: min_chars,
        });
    }
    Ok(Secret::new(secret))
}

/// The secret given inline, else the one in `file` ([`read_secret`], any
/// length); `None` when neither is set.
pub fn inline_or_file(
    inline: Option<&Secret>,
    file: Option<&Path>,
) -> Result<Option<Secret>, SecretFileError> {
    match (inline, file) {
        (Some(secret), _) => Ok(Some(secret.clone())),
        (None, Some(path)) => read_secret(path, 1).map(Some),
        (None, None) => Ok(None),
    }
}

/// Header values or environment values by name: the names are shown, every
/// value is a [`Secret`].
pub type SecretMap = BTreeMap<String, Secret>;

/// A URL whose userinfo and query are secret (a token in `?key=` or
/// `user:pass@` is common in webhook URLs). `Display`, `Debug` and
/// `Serialize` give [`SecretUrl::redacted`]; `expose()` gives the URL itself.
///
/// A URL marked [`whole`](SecretUrl::mark_whole) is a credential in its
/// entirety (a Slack incoming webhook carries its key in the path): only the
/// scheme and host are shown.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl {
    url: String,
    whole: bool,
}

impl SecretUrl {
    /// Wraps a URL; only its userinfo and query count as secret.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            whole: false,
        }
    }

    /// Marks the whole URL as a credential (path included).
    pub fn mark_whole(&mut self) {
        self.whole = true;
    }

    /// Whether the whole URL is a credential.
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// The URL itself; call only where the request is made.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL with userinfo and query (and fragment) replaced by `***`;
    /// for a whole-secret URL, everything after the host. Text that does not
    /// parse as a URL is redacted entirely.
    pub fn redacted(&self) -> String {
        redact_url(&self.url, self.whole)
    }

    /// The parts a remote server could echo back: the whole URL, its
    /// userinfo, its query; for a whole-secret URL also its path. For
    /// [`scrub`].
    pub fn secret_parts(&self) -> Vec<String> {
        let mut parts = vec![self.url.clone()];
        if let Ok(url) = reqwest::Url::parse(&self.url) {
            if !url.username().is_empty() {
                parts.push(url.username().to_owned());
            }
            if let Some(password) = url.password() {
                parts.push(password.to_owned());
            }
            if let Some(query) = url.query() {
                parts.push(query.to_owned());
                parts.extend(url.query_pairs().map(|(_, value)| value.into_owned()));
            }
            if self.whole && url.path() != "/" {
                parts.push(url.path().to_owned());
            }
        }
        parts
    }
}

/// See [`SecretUrl::redacted`].
pub fn redact_url(text: &str, whole: bool) -> String {
    let Ok(url) = reqwest::Url::parse(text) else {
        return REDACTED.to_owned();
    };
    let plain = url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if plain && !whole {
        return text.to_owned();
    }
    let Some(host) = url.host_str() else {
        return REDACTED.to_owned();
    };
    let mut out = format!("{}://", url.scheme());
    if !url.username().is_empty() || url.password().is_some() {
        out.push_str(REDACTED);
        out.push('@');
    }
    out.push_str(host);
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    if whole {
        out.push('/');
        out.push_str(REDACTED);
        return out;
    }
    out.push_str(url.path());
    if url.query().is_some() {
        out.push('?');
        out.push_str(REDACTED);
    }
    if url.fragment().is_some() {
        out.push('#');
        out.push_str(REDACTED);
    }
    out
}

impl From<&str> for SecretUrl {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretUrl::new)
    }
}

/// Shortest value [`scrub`] replaces: a one- or two-character "secret" would
/// garble every message it appears in by chance, and guards nothing.
const MIN_SCRUB_LEN: usize = 3;

/// `text` with every occurrence of each secret (and its percent-encoded
/// form) replaced by `***`. For text a remote server wrote: an error body
/// may echo the header or URL it was sent.
pub fn scrub<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut secrets: Vec<&str> = secrets
        .into_iter()
        .filter(|s| s.len() >= MIN_SCRUB_LEN)
        .collect();
    // Longest first, so a secret that contains another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for secret in secrets {
        if out.contains(secret) {
            out = out.replace(secret, REDACTED);
        }
        let encoded: String = url_encode(secret);
        if encoded != secret && out.contains(&encoded) {
            out = out.replace(&encoded, REDACTED);
        }
    }
    out
}

fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_print_without_userinfo_or_query() {
        let url = SecretUrl::new("https://bob:pa55@hooks.example.com:8443/a/b?token=s3cr3t#frag");
        let shown = url.to_string();
        assert_eq!(shown, "https://***@hooks.example.com:8443/a/b?***#***");
        assert_eq!(format!("{url:?}"), format!("SecretUrl({shown})"));
        assert_eq!(serde_json::to_string(&url).unwrap(), format!("\"{shown}\""));
        assert_eq!(
            url.expose(),
            "https://bob:pa55@hooks.example.com:8443/a/b?token=s3cr3t#frag"
        );
        assert_eq!(
            SecretUrl::new("http://127.0.0.1:9/hook").to_string(),
            "http://127.0.0.1:9/hook"
        );
        assert_eq!(SecretUrl::new("not a url s3cr3t").to_string(), "***");
    }

    #[test]
    fn a_whole_secret_url_shows_only_its_host() {
        let mut url = SecretUrl::new("https://hooks.slack.com/services/T0/B0/XXXXSECRET");
        url.mark_whole();
        assert_eq!(url.to_string(), "https://hooks.slack.com/***");
        assert!(
            url.secret_parts()
                .contains(&"/services/T0/B0/XXXXSECRET".to_owned())
        );
    }

    #[test]
    fn scrub_replaces_plain_and_percent_encoded_secrets() {
        let text = "bad key Bearer abc/def+1 (abc%2Fdef%2B1) and x";
        assert_eq!(
            scrub(text, ["Bearer abc/def+1", "abc/def+1", "x"]),
            "bad key *** (***) and x"
        );
    }

    #[test]
    fn a_secret_file_is_trimmed_and_every_refusal_names_the_file_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  0123456789abcdef\n").unwrap();
        let secret = read_secret(&path, 16).unwrap();
        assert_eq!(secret.expose(), "0123456789abcdef");

        let error = read_secret(&path, 17).unwrap_err();
        assert!(matches!(error, SecretFileError::TooShort { min: 17, .. }));
        let shown = error.to_string();
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");

        std::fs::write(&path, " \n\t").unwrap();
        let error = read_secret(&path, 1).unwrap_err();
        assert_eq!(error.to_string(), format!("{} is empty", path.display()));

        let absent = dir.path().join("absent");
        let error = read_secret(&absent, 1).unwrap_err();
        assert!(matches!(error, SecretFileError::Read { .. }));
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot read {}: ", absent.display()))
        );

        // Inline wins over the file; neither is no secret.
        let inline = Secret::new("inline");
        let chosen = inline_or_file(Some(&inline), Some(&absent)).unwrap();
        assert_eq!(chosen.as_ref().map(Secret::expose), Some("inline"));
        assert!(inline_or_file(None, None).unwrap().is_none());
        assert!(inline_or_file(None, Some(&absent)).is_err());
    }
}
