//! Secrets that live in files: every `*_file` key (`url_file`,
//! `base_url_file`, `bearer_token_file`) and every `*_files` map
//! (`headers_files`, `env_files`, name → path) is read once, at load, into
//! the secret it stands for, so the rest of Warden sees one typed value
//! whatever its source. A file's surrounding whitespace is ignored. Setting a
//! value both inline and from a file is an error naming both keys; an
//! unreadable or empty file is an error naming the key and the path, never
//! the content.
//!
//! Also marks each Slack notifier's URL as secret in its entirety.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::validate::Problem;
use super::{NotifierKind, Secret, SecretMap, SecretUrl, Settings, read_secret};

/// Reads every file-held secret into `settings`; returns what went wrong.
pub(crate) fn resolve(settings: &mut Settings) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (index, probe) in settings.probes.iter_mut().enumerate() {
        let at = format!("probes[{index}]");
        map_files(
            &mut problems,
            &at,
            "headers",
            &mut probe.headers,
            &probe.headers_files,
        );
    }
    for (index, notifier) in settings.notifiers.iter_mut().enumerate() {
        let at = format!("notifiers[{index}]");
        url_file(
            &mut problems,
            &at,
            "url",
            &mut notifier.url,
            notifier.url_file.as_deref(),
        );
        map_files(
            &mut problems,
            &at,
            "headers",
            &mut notifier.headers,
            &notifier.headers_files,
        );
        if notifier.kind == Some(NotifierKind::Slack)
            && let Some(url) = &mut notifier.url
        {
            // An incoming webhook's path is its key.
            url.mark_whole();
        }
    }
    for (index, component) in settings.components.iter_mut().enumerate() {
        let at = format!("components[{index}]");
        map_files(
            &mut problems,
            &at,
            "env",
            &mut component.env,
            &component.env_files,
        );
        map_files(
            &mut problems,
            &format!("{at}.fix.action"),
            "headers",
            &mut component.fix.action.headers,
            &component.fix.action.headers_files,
        );
        for (tier_index, tier) in component.tiers.iter_mut().enumerate() {
            let at = format!("{at}.tiers[{tier_index}]");
            url_file(
                &mut problems,
                &at,
                "url",
                &mut tier.url,
                tier.url_file.as_deref(),
            );
            map_files(
                &mut problems,
                &at,
                "headers",
                &mut tier.headers,
                &tier.headers_files,
            );
            if let Some(path) = &tier.bearer_token_file {
                let key = format!("{at}.bearer_token_file");
                if tier
                    .headers
                    .keys()
                    .any(|name| name.eq_ignore_ascii_case("authorization"))
                {
                    problems.push(Problem::new(
                        key,
                        "set either bearer_token_file or an Authorization header, not both",
                    ));
                } else if let Some(token) = read(&mut problems, &key, path) {
                    tier.headers.insert(
                        "Authorization".to_owned(),
                        Secret::new(format!("Bearer {}", token.expose())),
                    );
                }
            }
        }
    }
    let investigator = &mut settings.investigator;
    url_file(
        &mut problems,
        "investigator",
        "url",
        &mut investigator.url,
        investigator.url_file.as_deref(),
    );
    url_file(
        &mut problems,
        "investigator",
        "base_url",
        &mut investigator.base_url,
        investigator.base_url_file.as_deref(),
    );
    problems
}

/// The secret in `path`, or a problem at `key`.
fn read(problems: &mut Vec<Problem>, key: &str, path: &Path) -> Option<Secret> {
    read_secret(path, 1)
        .map_err(|error| problems.push(Problem::new(key, error.to_string())))
        .ok()
}

/// `<field>_file` into `<field>`.
fn url_file(
    problems: &mut Vec<Problem>,
    at: &str,
    field: &str,
    value: &mut Option<SecretUrl>,
    file: Option<&Path>,
) {
    let Some(path) = file else {
        return;
    };
    let key = format!("{at}.{field}_file");
    if value.is_some() {
        problems.push(Problem::new(
            format!("{at}.{field}"),
            format!("set either {field} or {field}_file, not both"),
        ));
    } else if let Some(text) = read(problems, &key, path) {
        *value = Some(SecretUrl::new(text.expose()));
    }
}

/// `<field>_files` into `<field>`.
fn map_files(
    problems: &mut Vec<Problem>,
    at: &str,
    field: &str,
    values: &mut SecretMap,
    files: &BTreeMap<String, PathBuf>,
) {
    for (name, path) in files {
        if values.contains_key(name) {
            problems.push(Problem::new(
                format!("{at}.{field}_files.{name}"),
                format!("{name} is also set in {field}; set it in one place"),
            ));
        } else if let Some(text) = read(problems, &format!("{at}.{field}_files.{name}"), path) {
            values.insert(name.clone(), text);
        }
    }
}

#[cfg(test)]
mod tests;
