//! The parsed form of a condition, and the type checks applied to it.

use std::fmt;

use regex::Regex;

use super::ConditionError;
use crate::probes::{FactSpec, FactType};

/// What a condition reads from the facts.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Field {
    /// `status`.
    Status,
    /// `exit_code`.
    ExitCode,
    /// `latency`.
    Latency,
    /// `cert_expires_in`.
    CertExpiresIn,
    /// `since_last_heartbeat`.
    SinceLastHeartbeat,
    /// `connected`.
    Connected,
    /// `body`, or its alias `stdout` (the name as written, for messages).
    Body(&'static str),
    /// `stderr`.
    Stderr,
    /// `error`.
    Error,
    /// A JSON path into the body: the body's name as written, then the path.
    Json(&'static str, Vec<Segment>),
    /// A fact only some kind measures, as that kind declares it.
    Kind(&'static FactSpec),
}

/// The types a field compares as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Duration,
    Bool,
    Text,
    Json,
}

impl Field {
    fn kind(&self) -> Kind {
        match self {
            Field::Status | Field::ExitCode => Kind::Integer,
            Field::Latency | Field::CertExpiresIn | Field::SinceLastHeartbeat => Kind::Duration,
            Field::Connected => Kind::Bool,
            Field::Body(_) | Field::Stderr | Field::Error => Kind::Text,
            Field::Json(..) => Kind::Json,
            Field::Kind(spec) => match spec.ty {
                FactType::Integer => Kind::Integer,
                FactType::Duration => Kind::Duration,
                FactType::Bool => Kind::Bool,
                FactType::Text => Kind::Text,
            },
        }
    }

    /// The field as an operator would write it, e.g. `body.checks[0].ok`.
    pub(super) fn label(&self) -> String {
        match self {
            Field::Status => "status".to_owned(),
            Field::ExitCode => "exit_code".to_owned(),
            Field::Latency => "latency".to_owned(),
            Field::CertExpiresIn => "cert_expires_in".to_owned(),
            Field::SinceLastHeartbeat => "since_last_heartbeat".to_owned(),
            Field::Connected => "connected".to_owned(),
            Field::Body(name) => (*name).to_owned(),
            Field::Stderr => "stderr".to_owned(),
            Field::Error => "error".to_owned(),
            Field::Json(name, path) => format!("{name}{}", PathDisplay(path)),
            Field::Kind(spec) => spec.name.to_owned(),
        }
    }

    /// An example value for type errors.
    fn example(&self) -> &'static str {
        match self {
            Field::Status => "200",
            Field::ExitCode => "0",
            Field::Latency => "300ms",
            Field::CertExpiresIn => "7d",
            Field::SinceLastHeartbeat => "5m",
            Field::Kind(spec) => spec.example,
            _ => "\"ok\"",
        }
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Writes a path as `.a.b[0]["odd key"]`.
pub(super) struct PathDisplay<'a>(pub(super) &'a [Segment]);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in self.0 {
            match segment {
                Segment::Key(key) if !key.is_empty() && key.chars().all(is_key_char) => {
                    write!(f, ".{key}")?;
                }
                Segment::Key(key) => {
                    let escaped = key.replace('\\', "\\\\").replace('"', "\\\"");
                    write!(f, "[\"{escaped}\"]")?;
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// How a condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `contains`.
    Contains,
    /// `not contains`.
    NotContains,
    /// `matches`.
    Matches,
    /// `not matches`.
    NotMatches,
}

impl Op {
    fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    fn is_equality(self) -> bool {
        matches!(self, Op::Eq | Op::Ne)
    }

    fn is_text(self) -> bool {
        matches!(
            self,
            Op::Contains | Op::NotContains | Op::Matches | Op::NotMatches
        )
    }

    pub(super) fn is_regex(self) -> bool {
        matches!(self, Op::Matches | Op::NotMatches)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::NotContains => "not contains",
            Op::Matches => "matches",
            Op::NotMatches => "not matches",
        })
    }
}

/// A value as written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    /// A whole number.
    Int(i64),
    /// A number with a fractional part (JSON paths only).
    Float(f64),
    /// A duration in nanoseconds; negative when written with `-`.
    Duration(i128),
    /// A quoted string, unescaped.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// `null` (JSON paths only).
    Null,
}

/// A condition after parsing and type checking.
#[derive(Debug, Clone)]
pub(super) struct Parsed {
    /// What it reads.
    pub(super) field: Field,
    /// How it compares.
    pub(super) op: Op,
    /// What it compares to.
    pub(super) value: Literal,
    /// The compiled pattern, for `matches` and `not matches`.
    pub(super) regex: Option<Regex>,
}

pub(super) fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The parse-time type checks: the operator must apply to the field, and the
/// value must have the field's type.
pub(super) fn check_types(field: &Field, op: Op, value: &Literal) -> Result<(), ConditionError> {
    let label = field.label();
    let example = field.example();
    let fail = |message: String| Err(ConditionError::Type(message));
    match field.kind() {
        Kind::Integer => {
            if !(op.is_equality() || op.is_ordering()) {
                return fail(format!(
                    "{label} takes ==, !=, <, <=, >, >= (\"{op}\" is for text: body, stdout, stderr, error)"
                ));
            }
            if !matches!(value, Literal::Int(_)) {
                return fail(format!(
                    "{label} compares to a whole number such as {example}"
                ));
            }
        }
        Kind::Duration => {
            if !(op.is_equality() || op.is_ordering()) {
                return fail(format!(
                    "{label} takes ==, !=, <, <=, >, >= (\"{op}\" is for text: body, stdout, stderr, error)"
                ));
            }
            if !matches!(value, Literal::Duration(_)) {
                return fail(format!("{label} compares to a duration such as {example}"));
            }
        }
        Kind::Bool => {
            if !op.is_equality() {
                return fail(format!("{label} takes only == or !="));
            }
            if !matches!(value, Literal::Bool(_)) {
                return fail(format!("{label} compares to true or false"));
            }
        }
        Kind::Text => {
            if op.is_ordering() {
                return fail(format!(
                    "{label} is text: it takes ==, !=, contains, not contains, matches or not matches (\"{op}\" is for numbers and durations)"
                ));
            }
            if !matches!(value, Literal::Str(_)) {
                return fail(if op.is_regex() {
                    format!("{op} takes a quoted regular expression such as \"^ok\"")
                } else {
                    format!("{label} compares to a quoted string such as \"ok\"")
                });
            }
        }
        Kind::Json => {
            if op.is_ordering() && !matches!(value, Literal::Int(_) | Literal::Float(_)) {
                return fail(format!(
                    "\"{op}\" compares numbers: {label} {op} needs a number such as 10"
                ));
            }
            if op.is_text() && !matches!(value, Literal::Str(_)) {
                return fail(if op.is_regex() {
                    format!("{op} takes a quoted regular expression such as \"^ok\"")
                } else {
                    format!("{op} takes a quoted string such as \"ok\"")
                });
            }
            if matches!(value, Literal::Duration(_)) {
                return fail(format!(
                    "{label} compares to a string, number, true, false or null (JSON has no durations)"
                ));
            }
        }
    }
    Ok(())
}
