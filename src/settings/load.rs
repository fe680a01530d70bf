//! Layered loading: defaults in code, then exactly one TOML file (the user's,
//! or the embedded `config/default.toml`; never both, so the demo targets in
//! the default never leak into a real set-up), then `WARDEN__SECTION__KEY`
//! environment variables.
//!
//! serde stops at the first error, which would make an operator fix a file one
//! key per run. Instead the merged tree is deserialised with
//! `serde_path_to_error`; each failure is recorded with its key path, the
//! offending key is removed (so its default applies) and deserialisation runs
//! again, until it succeeds. Validation then adds every semantic problem.

use std::collections::HashMap;
use std::path::PathBuf;

use config::{Config, Environment, File, FileFormat, Value, ValueKind};
use serde_path_to_error::Segment;

use super::validate::{Problem, validate};
use super::{Settings, SettingsError};

/// The configuration `warden run` uses when no `--config` is given.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// The origin config `config` crate gives values that came from the environment.
const ENV_ORIGIN: &str = "the environment";

/// Upper bound on remove-and-retry rounds: each round removes one key, so this
/// only stops a pathological file from looping for long.
const MAX_ROUNDS: usize = 256;

/// Where the file layer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The embedded `config/default.toml`.
    Embedded,
    /// A file given with `--config`.
    File(PathBuf),
    /// TOML text, named for messages (tests and tools).
    Text {
        /// How messages refer to it.
        name: String,
        /// The TOML itself.
        toml: String,
    },
}

impl ConfigSource {
    /// `--config FILE` if given, else the embedded default.
    pub fn from_arg(path: Option<PathBuf>) -> Self {
        path.map_or(ConfigSource::Embedded, ConfigSource::File)
    }
}

/// Loads and validates the settings with the process environment as the top layer.
pub fn load(source: &ConfigSource) -> Result<Settings, SettingsError> {
    load_with_env(source, None)
}

/// Loads and validates the settings; `env` replaces the process environment
/// (tests pass a map here instead of mutating the real environment).
pub fn load_with_env(
    source: &ConfigSource,
    env: Option<HashMap<String, String>>,
) -> Result<Settings, SettingsError> {
    let text = match source {
        ConfigSource::Embedded => DEFAULT_CONFIG.to_owned(),
        ConfigSource::File(path) => {
            std::fs::read_to_string(path).map_err(|source| SettingsError::ReadFile {
                path: path.clone(),
                source,
            })?
        }
        ConfigSource::Text { toml, .. } => toml.clone(),
    };
    let env: HashMap<String, String> = env.unwrap_or_else(|| std::env::vars().collect());
    let (env, fix_overrides) = split_fix_overrides(env);
    let environment = Environment::with_prefix("WARDEN")
        .prefix_separator("__")
        .separator("__")
        .source(Some(env));
    let merged = Config::builder()
        .add_source(File::from_str(&text, FileFormat::Toml))
        .add_source(environment)
        .build()
        .map_err(|error| SettingsError::Parse(error.to_string()))?;

    let (mut settings, mut problems) = deserialize_collecting(merged.cache);
    if let Some(settings) = &mut settings {
        problems.extend(apply_fix_overrides(settings, &fix_overrides));
        problems.extend(super::sources::resolve(settings));
        assign_listed_probes(settings);
        problems.extend(validate(settings));
    }
    match settings {
        Some(settings) if problems.is_empty() => Ok(settings),
        _ => Err(SettingsError::Invalid(problems)),
    }
}

/// A probe listed in exactly one component's `probes` that does not name
/// its `component` belongs to that component: its issues are filed, frozen
/// and joined under it, not under the probe's own name. A probe listed by
/// several components is left alone for the validator to report, and one
/// that names a different component is reported there too.
fn assign_listed_probes(settings: &mut Settings) {
    let mut listed: HashMap<String, Vec<String>> = HashMap::new();
    for component in &settings.components {
        for probe in &component.probes {
            let owners = listed.entry(probe.clone()).or_default();
            if !owners.contains(&component.name) {
                owners.push(component.name.clone());
            }
        }
    }
    for probe in &mut settings.probes {
        if probe.component.is_none()
            && let Some([owner]) = listed.get(&probe.name).map(Vec::as_slice)
        {
            probe.component = Some(owner.clone());
        }
    }
}

/// One `WARDEN__COMPONENTS__<NAME>__FIX__ENABLED`: (variable, name, value).
type FixOverride = (String, String, String);

/// `WARDEN__COMPONENTS__<NAME>__FIX__ENABLED`: components are a list, which
/// the generic `SECTION__KEY` mapping cannot index by name, so these variables
/// are taken out of the environment layer and applied by component name.
/// Returns the rest of the environment and the overrides (variable, name, value).
fn split_fix_overrides(
    env: HashMap<String, String>,
) -> (HashMap<String, String>, Vec<FixOverride>) {
    let mut rest = HashMap::new();
    let mut overrides = Vec::new();
    for (key, value) in env {
        let upper = key.to_ascii_uppercase();
        let name = upper
            .strip_prefix("WARDEN__COMPONENTS__")
            .and_then(|tail| tail.strip_suffix("__FIX__ENABLED"))
            .filter(|name| !name.is_empty() && !name.contains("__"));
        match name {
            Some(name) => overrides.push((key.clone(), name.to_owned(), value)),
            None => {
                rest.insert(key, value);
            }
        }
    }
    overrides.sort();
    (rest, overrides)
}

/// Applies the fix-envelope switches. Names match case-insensitively, with `_`
/// standing for `-` (environment variable names cannot hold `-`).
fn apply_fix_overrides(
    settings: &mut Settings,
    overrides: &[(String, String, String)],
) -> Vec<Problem> {
    let normal = |name: &str| name.to_ascii_uppercase().replace('-', "_");
    let mut problems = Vec::new();
    for (variable, name, value) in overrides {
        let enabled = match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => {
                problems.push(Problem::new(
                    variable.clone(),
                    format!("must be true or false, got \"{value}\" (from environment variable {variable})"),
                ));
                continue;
            }
        };
        match settings
            .components
            .iter_mut()
            .find(|c| normal(&c.name) == *name)
        {
            Some(component) => component.fix.enabled = enabled,
            None => problems.push(Problem::new(
                variable.clone(),
                format!(
                    "no component named \"{}\" (from environment variable {variable})",
                    name.to_ascii_lowercase()
                ),
            )),
        }
    }
    problems
}

fn deserialize_collecting(mut tree: Value) -> (Option<Settings>, Vec<Problem>) {
    let mut problems = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let error = match serde_path_to_error::deserialize::<_, Settings>(tree.clone()) {
            Ok(settings) => return (Some(settings), problems),
            Err(error) => error,
        };
        let mut path: Vec<String> = error.path().iter().filter_map(segment_key).collect();
        let message = strip_key_suffix(&error.inner().to_string());
        if let Some(field) = unknown_field(&message)
            && path.last().map(String::as_str) != Some(field)
        {
            path.push(field.to_owned());
        }
        let from_env = node(&tree, &path).and_then(Value::origin) == Some(ENV_ORIGIN);
        problems.push(Problem::new(
            key_path(&path),
            describe(&path, &message, from_env),
        ));
        if path.is_empty() || !remove(&mut tree, &path) {
            // Nothing left to remove: the tree itself is unusable.
            return (None, problems);
        }
    }
    (None, problems)
}

fn segment_key(segment: &Segment) -> Option<String> {
    match segment {
        Segment::Seq { index } => Some(format!("[{index}]")),
        Segment::Map { key } => Some(key.clone()),
        Segment::Enum { .. } | Segment::Unknown => None,
    }
}

/// Joins path parts as operators write them: `probes[2].interval`.
fn key_path(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if !part.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(part);
    }
    out
}

/// The `config` crate appends ` for key `x`` to some messages; the problem already names the key.
fn strip_key_suffix(message: &str) -> String {
    match message.find(" for key `") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.find('`').map(|end| &rest[..end])
}

fn is_secret_key(path: &[String]) -> bool {
    path.iter().any(|part| {
        let part = part.to_ascii_lowercase();
        [
            "token", "secret", "password", "api_key", "url", "headers", "env",
        ]
        .iter()
        .any(|word| part.contains(word))
    })
}

fn describe(path: &[String], message: &str, from_env: bool) -> String {
    let mut text = if unknown_field(message).is_some() {
        // serde lists every expected field; the key path already says where.
        match message.find(", expected") {
            Some(at) => format!("{}{}", &message[..at], expected_hint(&message[at..])),
            None => message.to_owned(),
        }
    } else if is_secret_key(path) {
        "invalid value (not shown: the key holds a secret)".to_owned()
    } else if message.contains("expected a duration") || message.contains("time unit") {
        format!("{message} (write a positive duration such as \"500ms\", \"30s\" or \"10m\")")
    } else {
        message.to_owned()
    };
    if from_env {
        let name: Vec<String> = path
            .iter()
            .map(|part| part.trim_matches(['[', ']']).to_ascii_uppercase())
            .collect();
        text.push_str(&format!(
            " (from environment variable WARDEN__{})",
            name.join("__")
        ));
    }
    text
}

fn expected_hint(expected: &str) -> String {
    // Keep serde's suggestion list short enough to read on one line.
    if expected.len() <= 120 {
        expected.to_owned()
    } else {
        ", see docs/configuration.md for the valid keys".to_owned()
    }
}

fn child<'a>(value: &'a Value, part: &str) -> Option<&'a Value> {
    match (
        &value.kind,
        part.strip_prefix('[').and_then(|p| p.strip_suffix(']')),
    ) {
        (ValueKind::Array(items), Some(index)) => items.get(index.parse::<usize>().ok()?),
        (ValueKind::Table(table), None) => table.get(part),
        _ => None,
    }
}

fn node<'a>(tree: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |value, part| child(value, part))
}

/// Removes the value at `path`. An array element is never removed alone (that
/// would shift the indices later messages name); its whole array goes instead.
fn remove(tree: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    if last.starts_with('[') {
        return remove(tree, parents);
    }
    let mut value = tree;
    for part in parents {
        let next = match (
            &mut value.kind,
            part.strip_prefix('[').and_then(|p| p.strip_suffix(']')),
        ) {
            (ValueKind::Array(items), Some(index)) => {
                index.parse::<usize>().ok().and_then(|i| items.get_mut(i))
            }
            (ValueKind::Table(table), None) => table.get_mut(part.as_str()),
            _ => None,
        };
        match next {
            Some(next) => value = next,
            None => return false,
        }
    }
    match &mut value.kind {
        ValueKind::Table(table) => table.remove(last.as_str()).is_some(),
        _ => false,
    }
}
