//! Evaluating a parsed condition against the facts of one check.

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

use serde_json::Value as Json;

use super::ast::{Field, Literal, Op, Parsed, PathDisplay, Segment};
use crate::probes::{FactValue, Facts};

/// Longest excerpt of a text or JSON value quoted in a reason.
const EXCERPT_CHARS: usize = 80;

/// A condition's result, with what it saw (for the reason text).
#[derive(Debug)]
pub(super) struct Evaluated {
    /// Whether the condition holds.
    pub(super) holds: bool,
    /// The field as written, e.g. `latency` or `body.status`.
    pub(super) label: String,
    /// The value read, formatted for operators, e.g. `812ms` or `"down"`.
    pub(super) actual: String,
}

/// Why a condition could not be evaluated.
#[derive(Debug)]
pub(super) enum EvalError {
    /// The fact was not measured (e.g. no status because the connection was
    /// refused). `classify` skips these when the check itself failed.
    Absent(String),
    /// The fact is there but cannot be read as the condition needs.
    Failed(String),
}

impl EvalError {
    /// Whether the fact was simply not measured.
    pub(super) fn is_absent(&self) -> bool {
        matches!(self, EvalError::Absent(_))
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Absent(why) | EvalError::Failed(why) => f.write_str(why),
        }
    }
}

/// Evaluates a parsed condition.
pub(super) fn evaluate(parsed: &Parsed, facts: &Facts) -> Result<Evaluated, EvalError> {
    let label = parsed.field.label();
    let (holds, actual) = match &parsed.field {
        Field::Status => {
            let status = facts
                .status
                .ok_or_else(|| absent(facts, "status", true, "only http probes have a status"))?;
            let actual = i64::from(status);
            (compare_int(parsed, actual)?, actual.to_string())
        }
        Field::ExitCode => {
            let code = facts.exit_code.ok_or_else(|| {
                absent(
                    facts,
                    "exit code",
                    false,
                    "the command was killed by a signal, or this is not a command probe",
                )
            })?;
            let actual = i64::from(code);
            (compare_int(parsed, actual)?, actual.to_string())
        }
        Field::Latency => duration_fact(parsed, nanos(facts.latency))?,
        Field::CertExpiresIn => {
            let seconds = facts.cert_expires_in.ok_or_else(|| {
                absent(
                    facts,
                    "certificate expiry",
                    false,
                    "only https and credential_expiry probes have one",
                )
            })?;
            duration_fact(parsed, i128::from(seconds) * 1_000_000_000)?
        }
        Field::SinceLastHeartbeat => {
            let since = facts.since_last_heartbeat.ok_or_else(|| {
                absent(
                    facts,
                    "heartbeat",
                    false,
                    "none has arrived yet, or this is not a heartbeat probe",
                )
            })?;
            duration_fact(parsed, nanos(since))?
        }
        Field::Connected => {
            let connected = facts.connected.ok_or_else(|| {
                absent(
                    facts,
                    "connection result",
                    false,
                    "only tcp probes report connected",
                )
            })?;
            (
                compare_bool(parsed, &label, connected)?,
                connected.to_string(),
            )
        }
        Field::Body(name) => {
            let body = facts.body.as_deref().ok_or_else(|| {
                absent(facts, name, true, "only http and command probes have one")
            })?;
            (compare_text(parsed, &label, body)?, excerpt(body))
        }
        Field::Stderr => {
            let stderr = facts
                .stderr
                .as_deref()
                .ok_or_else(|| absent(facts, "stderr", false, "only command probes have stderr"))?;
            (compare_text(parsed, &label, stderr)?, excerpt(stderr))
        }
        // No error means the check completed: the error is then empty, so
        // `error contains "timeout"` is simply false on a good check.
        Field::Error => {
            let error = facts.error.as_deref().unwrap_or("");
            (compare_text(parsed, &label, error)?, excerpt(error))
        }
        Field::Json(name, path) => {
            let value = json_at(facts, name, path, &label)?;
            let holds = compare_json(parsed, &label, &value)?;
            let text = serde_json::to_string(&value).unwrap_or_default();
            (holds, truncate(&text))
        }
        Field::Kind(spec) => {
            let value = facts
                .kind_fact(spec.name)
                .ok_or_else(|| absent(facts, spec.name, false, spec.absent))?;
            match value {
                FactValue::Integer(actual) => (compare_int(parsed, *actual)?, actual.to_string()),
                FactValue::Duration(actual) => duration_fact(parsed, nanos(*actual))?,
                FactValue::Bool(actual) => {
                    (compare_bool(parsed, &label, *actual)?, actual.to_string())
                }
                FactValue::Text(actual) => (compare_text(parsed, &label, actual)?, excerpt(actual)),
            }
        }
    };
    Ok(Evaluated {
        holds,
        label,
        actual,
    })
}

/// The error for a fact that was not measured. When the check failed, its
/// own error says why; otherwise `hint` does.
fn absent(facts: &Facts, what: &str, response: bool, hint: &str) -> EvalError {
    EvalError::Absent(match &facts.error {
        Some(error) if response => {
            format!("no {what}: the check failed before a response ({error})")
        }
        Some(error) => format!("no {what}: the check failed ({error})"),
        None => format!("no {what}: {hint}"),
    })
}

/// Parsing type-checks every condition, so this only guards against a bug.
fn mistyped(label: &str) -> EvalError {
    EvalError::Failed(format!(
        "internal error: the value does not match the type of {label}"
    ))
}

fn nanos(duration: Duration) -> i128 {
    i128::try_from(duration.as_nanos()).unwrap_or(i128::MAX)
}

fn ordering_holds(op: Op, ordering: Ordering) -> Option<bool> {
    Some(match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
        Op::Contains | Op::NotContains | Op::Matches | Op::NotMatches => return None,
    })
}

fn compare_int(parsed: &Parsed, actual: i64) -> Result<bool, EvalError> {
    let Literal::Int(expected) = parsed.value else {
        return Err(mistyped(&parsed.field.label()));
    };
    ordering_holds(parsed.op, actual.cmp(&expected)).ok_or_else(|| mistyped(&parsed.field.label()))
}

fn compare_bool(parsed: &Parsed, label: &str, actual: bool) -> Result<bool, EvalError> {
    let Literal::Bool(expected) = parsed.value else {
        return Err(mistyped(label));
    };
    let equal = actual == expected;
    Ok(if parsed.op == Op::Eq { equal } else { !equal })
}

fn duration_fact(parsed: &Parsed, actual: i128) -> Result<(bool, String), EvalError> {
    let Literal::Duration(expected) = parsed.value else {
        return Err(mistyped(&parsed.field.label()));
    };
    let holds = ordering_holds(parsed.op, actual.cmp(&expected))
        .ok_or_else(|| mistyped(&parsed.field.label()))?;
    Ok((holds, format_nanos(actual)))
}

/// A signed duration for operators: `812ms`, `6days 23h`, `-2days 4h`.
/// Rounded to milliseconds (to microseconds under one millisecond), since
/// nanoseconds of latency are noise in a reason.
fn format_nanos(nanos: i128) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let magnitude = nanos.unsigned_abs();
    let millis = magnitude / 1_000_000;
    let rounded = if millis == 0 && magnitude > 0 {
        Duration::from_micros(u64::try_from(magnitude / 1_000).unwrap_or(u64::MAX))
    } else {
        Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    };
    format!("{sign}{}", humantime::format_duration(rounded))
}

fn compare_text(parsed: &Parsed, label: &str, actual: &str) -> Result<bool, EvalError> {
    let Literal::Str(expected) = &parsed.value else {
        return Err(mistyped(label));
    };
    Ok(match parsed.op {
        Op::Eq => actual == expected,
        Op::Ne => actual != expected,
        Op::Contains => actual.contains(expected.as_str()),
        Op::NotContains => !actual.contains(expected.as_str()),
        Op::Matches | Op::NotMatches => {
            let regex = parsed.regex.as_ref().ok_or_else(|| mistyped(label))?;
            regex.is_match(actual) == (parsed.op == Op::Matches)
        }
        Op::Lt | Op::Le | Op::Gt | Op::Ge => return Err(mistyped(label)),
    })
}

/// Reads the body as JSON and follows the path.
fn json_at(facts: &Facts, name: &str, path: &[Segment], label: &str) -> Result<Json, EvalError> {
    let body = facts
        .body
        .as_deref()
        .ok_or_else(|| absent(facts, name, true, "only http and command probes have one"))?;
    if facts.body_truncated {
        return Err(EvalError::Failed(format!(
            "{name} was cut at the size cap, so {label} cannot be read as JSON (raise max_body_bytes)"
        )));
    }
    let root: Json = serde_json::from_str(body)
        .map_err(|error| EvalError::Failed(format!("{name} is not JSON: {error}")))?;
    let mut current = &root;
    for segment in path {
        let next = match segment {
            Segment::Key(key) => current.as_object().and_then(|object| object.get(key)),
            Segment::Index(index) => current.as_array().and_then(|array| array.get(*index)),
        };
        current = next.ok_or_else(|| {
            let shown = PathDisplay(path).to_string();
            let shown = shown.strip_prefix('.').unwrap_or(&shown).to_owned();
            EvalError::Failed(format!("{name} has no field {shown}"))
        })?;
    }
    Ok(current.clone())
}

fn json_type(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn compare_json(parsed: &Parsed, label: &str, value: &Json) -> Result<bool, EvalError> {
    match parsed.op {
        Op::Eq | Op::Ne => {
            let equal = json_equals(value, &parsed.value);
            Ok(if parsed.op == Op::Eq { equal } else { !equal })
        }
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let ordering = json_number_cmp(value, &parsed.value).ok_or_else(|| {
                EvalError::Failed(format!("{label} is {}, not a number", json_type(value)))
            })?;
            ordering_holds(parsed.op, ordering).ok_or_else(|| mistyped(label))
        }
        Op::Contains | Op::NotContains | Op::Matches | Op::NotMatches => {
            let text = value.as_str().ok_or_else(|| {
                EvalError::Failed(format!("{label} is {}, not a string", json_type(value)))
            })?;
            compare_text(parsed, label, text)
        }
    }
}

/// Equality across JSON and literal types; different types are unequal.
fn json_equals(value: &Json, literal: &Literal) -> bool {
    match (value, literal) {
        (Json::Null, Literal::Null) => true,
        (Json::Bool(a), Literal::Bool(b)) => a == b,
        (Json::String(a), Literal::Str(b)) => a == b,
        (Json::Number(_), Literal::Int(_) | Literal::Float(_)) => {
            json_number_cmp(value, literal) == Some(Ordering::Equal)
        }
        _ => false,
    }
}

/// Compares a JSON number to a numeric literal; exact for integers.
fn json_number_cmp(value: &Json, literal: &Literal) -> Option<Ordering> {
    let Json::Number(number) = value else {
        return None;
    };
    match literal {
        Literal::Int(b) => match number.as_i64() {
            Some(a) => Some(a.cmp(b)),
            // Precision loss past 2^53 is acceptable for health checks.
            #[allow(clippy::cast_precision_loss)]
            None => number.as_f64()?.partial_cmp(&(*b as f64)),
        },
        Literal::Float(b) => number.as_f64()?.partial_cmp(b),
        _ => None,
    }
}

fn truncate(text: &str) -> String {
    let mut shown: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

/// A quoted excerpt of a text fact.
fn excerpt(text: &str) -> String {
    format!("{:?}", truncate(text))
}
