//! Operator authentication for mutating calls: a bearer token compared in
//! constant time, so response timing does not leak how much of a guess matched.

use axum::http::{HeaderMap, StatusCode, header};
use subtle::ConstantTimeEq;

use super::{ApiContext, ApiError};

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
    // Compare against every token without stopping early, for the same reason.
    let matched = context
        .operator_tokens
        .iter()
        .fold(subtle::Choice::from(0), |found, token| {
            found | token.expose().as_bytes().ct_eq(presented.as_bytes())
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the operator token is wrong",
        ))
    }
}
