//! Operator authentication for mutating calls: a bearer token compared in
//! constant time, so response timing does not leak how much of a guess matched.

use std::sync::{Arc, PoisonError, RwLock};

use axum::http::{HeaderMap, StatusCode, header};
use subtle::ConstantTimeEq;

use crate::settings::Secret;

use super::{ApiContext, ApiError};

/// The accepted operator tokens, shared so a SIGHUP can replace them without
/// a restart. Every token in the set is valid at once (overlap rotation).
#[derive(Clone, Default)]
pub struct OperatorTokens {
    tokens: Arc<RwLock<Vec<Secret>>>,
}

impl OperatorTokens {
    /// A set holding `tokens`.
    pub fn new(tokens: Vec<Secret>) -> Self {
        Self {
            tokens: Arc::new(RwLock::new(tokens)),
        }
    }

    /// Replaces every token at once.
    pub fn replace(&self, tokens: Vec<Secret>) {
        *self.tokens.write().unwrap_or_else(PoisonError::into_inner) = tokens;
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no token is accepted (mutating calls are then refused).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `presented` equals one token, comparing against every token
    /// in constant time without stopping early.
    fn matches(&self, presented: &str) -> bool {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        let matched = tokens.iter().fold(subtle::Choice::from(0), |found, token| {
            found | token.expose().as_bytes().ct_eq(presented.as_bytes())
        });
        bool::from(matched)
    }
}

/// Accepts the request when its bearer token matches one configured token.
/// 401 when no token is presented, 403 when it is wrong or none is configured.
pub(super) fn require_operator(context: &ApiContext, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented.filter(|token| !token.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this call needs the operator token as `Authorization: Bearer <token>`",
        ));
    };
    if context.operator_tokens.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "no operator token is configured (service.operator_token_file), so mutating calls are disabled",
        ));
    }
    if context.operator_tokens.matches(presented) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the operator token is wrong",
        ))
    }
}
