//! The condition language for probes, and the final verdict.
//!
//! A probe's `unhealthy_if` and `degraded_if` entries are each one condition,
//! `<field> <operator> <value>`, read against the [`Facts`] a check measured.
//! A condition that is *true* means something is wrong:
//!
//! ```text
//! status != 200
//! latency > 500ms
//! cert_expires_in < 14d
//! body.checks[0].ok == false
//! stderr matches "(?i)warning"
//! ```
//!
//! Conditions are type-checked when the settings load ([`parse`]), so a typo
//! such as `latency < 300` (no unit) fails `warden check-config` instead of
//! misclassifying at run time. [`classify`] then combines the kind's own
//! verdict with every condition; a condition that cannot be evaluated (the
//! fact is missing, the body is not JSON) counts against the probe, because
//! a check we cannot judge is not a healthy one.
//!
//! # Layout
//! - `parse.rs`: the grammar.
//! - `ast.rs`: the parsed form and the parse-time type checks.
//! - `eval.rs`: reading facts, comparing, and the operator-facing texts.
//! - `tests.rs`: unit tests and proptests.

use std::fmt;

use crate::messages::Health;

use super::facts::{CheckOutcome, Facts};

mod ast;
mod eval;
mod parse;

#[cfg(test)]
mod tests;

/// A condition that failed to parse. The messages are written for the
/// operator who typed the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// Nothing but whitespace.
    #[error("empty condition (expected <field> <operator> <value>, e.g. status == 200)")]
    Empty,
    /// The expression does not start with a field name.
    #[error("expected a field name at column {column}, found {found}")]
    ExpectedField {
        /// 1-based column.
        column: usize,
        /// What was there instead.
        found: String,
    },
    /// The field name is not one the language knows.
    #[error("unknown field \"{name}\" (expected one of {})", parse::field_list())]
    UnknownField {
        /// The name as written.
        name: String,
    },
    /// A JSON path that is malformed or hangs off a field that is not `body`.
    #[error("{0}")]
    BadPath(String),
    /// No operator after the field.
    #[error(
        "expected an operator after {field} ({}), found {found}",
        parse::OPERATOR_LIST
    )]
    MissingOperator {
        /// The field as written.
        field: String,
        /// What was there instead.
        found: String,
    },
    /// A word or symbol where an operator should be.
    #[error(
        "unknown operator \"{found}\" (expected one of {})",
        parse::OPERATOR_LIST
    )]
    UnknownOperator {
        /// What was written.
        found: String,
    },
    /// Nothing after the operator.
    #[error("expected a value after \"{operator}\", found end of input")]
    MissingValue {
        /// The operator as written.
        operator: String,
    },
    /// Something after the operator that is not a value.
    #[error(
        "expected a value at column {column} (a number, a duration such as 300ms, a quoted string, true, false or null), found {found}"
    )]
    BadValue {
        /// 1-based column.
        column: usize,
        /// What was there instead.
        found: String,
    },
    /// A string literal without its closing quote.
    #[error("unterminated string starting at column {column} (missing closing \")")]
    UnterminatedString {
        /// 1-based column of the opening quote.
        column: usize,
    },
    /// A backslash followed by something other than `"` or `\`.
    #[error(
        "invalid escape \"\\{escape}\" in string at column {column} (only \\\" and \\\\ are allowed)"
    )]
    BadEscape {
        /// 1-based column of the backslash.
        column: usize,
        /// The character after the backslash.
        escape: char,
    },
    /// A number that does not fit or is malformed.
    #[error("invalid number \"{text}\": {reason}")]
    BadNumber {
        /// The literal as written.
        text: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A duration humantime cannot read.
    #[error("invalid duration \"{text}\": {reason} (examples: 300ms, 2s, 7d, 1h30m)")]
    BadDuration {
        /// The literal as written.
        text: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A regular expression that does not compile.
    #[error("invalid regular expression \"{pattern}\": {reason}")]
    BadRegex {
        /// The pattern as written.
        pattern: String,
        /// The regex crate's explanation.
        reason: String,
    },
    /// Input left after a complete condition.
    #[error(
        "unexpected \"{rest}\" after the condition at column {column} (write one condition per entry)"
    )]
    TrailingInput {
        /// 1-based column where the rest starts.
        column: usize,
        /// The rest, as written.
        rest: String,
    },
    /// The operator does not apply to the field, or the value has the wrong
    /// type for it, e.g. `latency < 300`.
    #[error("{0}")]
    Type(String),
}

/// A parsed, type-checked condition.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The expression as the operator wrote it, trimmed.
    text: String,
    /// What it reads, how it compares, and to what.
    parsed: ast::Parsed,
}

impl Condition {
    /// The original expression, trimmed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates the condition. `Ok(true)` means the condition holds (the
    /// probe is in trouble); `Err` says, for an operator, why it could not be
    /// evaluated.
    pub fn eval(&self, facts: &Facts) -> Result<bool, String> {
        eval::evaluate(&self.parsed, facts)
            .map(|outcome| outcome.holds)
            .map_err(|error| error.to_string())
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The field names every kind shares; the kinds declare the rest.
#[cfg(test)]
pub(crate) fn shared_fields() -> &'static [&'static str] {
    parse::SHARED_FIELDS
}

/// Parses and type-checks one condition.
pub fn parse(expression: &str) -> Result<Condition, ConditionError> {
    let text = expression.trim();
    let parsed = parse::parse(text)?;
    Ok(Condition {
        text: text.to_owned(),
        parsed,
    })
}

/// The final verdict of one check: the kind's verdict, made worse by every
/// `unhealthy_if` condition that holds (or cannot be evaluated) and every
/// `degraded_if` condition likewise. Returns the health and its reasons
/// (the kind's first, then the conditions', without duplicates; empty when
/// healthy).
pub fn classify(
    outcome: CheckOutcome,
    unhealthy_if: &[Condition],
    degraded_if: &[Condition],
) -> (Health, Vec<String>) {
    let CheckOutcome {
        facts,
        verdict,
        reasons,
        stage: _,
    } = outcome;
    // When the check itself failed, the kind has already said why; a
    // condition on a fact that was never measured would only repeat it.
    let check_failed = verdict == Health::Unhealthy && facts.error.is_some();
    let mut health = verdict;
    let mut all: Vec<String> = Vec::new();
    for reason in reasons {
        push_unique(&mut all, reason);
    }
    for (conditions, level) in [
        (unhealthy_if, Health::Unhealthy),
        (degraded_if, Health::Degraded),
    ] {
        for condition in conditions {
            match eval::evaluate(&condition.parsed, &facts) {
                Ok(outcome) if outcome.holds => {
                    health = health.max(level);
                    push_unique(
                        &mut all,
                        format!(
                            "condition \"{}\" matched ({} {})",
                            condition.text, outcome.label, outcome.actual
                        ),
                    );
                }
                Ok(_) => {}
                Err(error) if check_failed && error.is_absent() => {}
                Err(error) => {
                    health = health.max(level);
                    push_unique(
                        &mut all,
                        format!(
                            "condition \"{}\" could not be evaluated: {error}",
                            condition.text
                        ),
                    );
                }
            }
        }
    }
    if health == Health::Healthy {
        all.clear();
    }
    (health, all)
}

fn push_unique(reasons: &mut Vec<String>, reason: String) {
    if !reasons.contains(&reason) {
        reasons.push(reason);
    }
}
