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
    /// A set holding `tokens`, each trimmed: a token pasted with a trailing
    /// newline or space into the config must still match what clients send.
    pub fn new(tokens: Vec<Secret>) -> Self {
        Self {
            tokens: Arc::new(RwLock::new(trimmed(tokens))),
        }
    }

    /// Replaces every token at once.
    pub fn replace(&self, tokens: Vec<Secret>) {
        *self.tokens.write().unwrap_or_else(PoisonError::into_inner) = trimmed(tokens);
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
    pub(super) fn matches(&self, presented: &str) -> bool {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        let matched = tokens.iter().fold(subtle::Choice::from(0), |found, token| {
            found | token.expose().as_bytes().ct_eq(presented.as_bytes())
        });
        bool::from(matched)
    }
}

fn trimmed(tokens: Vec<Secret>) -> Vec<Secret> {
    tokens
        .into_iter()
        .map(|token| Secret::new(token.expose().trim()))
        .filter(|token| !token.expose().is_empty())
        .collect()
}

/// The token of an `Authorization: Bearer <token>` header, trimmed. The
/// scheme name is case-insensitive (RFC 9110 §11.1), so `bearer` and
/// `BEARER` from other clients work too.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Accepts the request when its bearer token matches one configured token.
/// 401 when no token is presented, 403 when it is wrong or none is configured.
pub(super) fn require_operator(context: &ApiContext, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(presented) = bearer(headers) else {
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
