//! The condition language (being built on a branch).

/// A condition that failed to parse.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConditionError(String);

/// Parses a condition. Placeholder that accepts everything until the
/// condition language lands; check-config cannot reject bad expressions yet.
pub fn parse(_expression: &str) -> Result<(), ConditionError> {
    Ok(())
}
