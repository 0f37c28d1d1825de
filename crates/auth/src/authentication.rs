//! simplejwt's `JWTAuthentication`: the `Authorization` header → a user.
//!
//! Order and answers as simplejwt: no header, an empty one or another scheme
//! (`Token x`, a lower-case `bearer x`) is "not authenticated" (the view then
//! says credentials were not provided); our scheme with other than one value
//! is `bad_authorization_header`; then the token as an `AccessToken`, its
//! user id claim, the user, and whether the user is active.

use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::error::AuthError;
use crate::store::User;
use crate::tokens::{self, TokenError};
use crate::State;

/// Python's `bytes.split()`: runs of ASCII whitespace separate parts.
fn split_ascii_ws(b: &[u8]) -> Vec<&[u8]> {
    b.split(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        .filter(|p| !p.is_empty())
        .collect()
}

/// The authenticated user, `Ok(None)` when the request carries no
/// credentials of our scheme.
pub async fn authenticate(state: &State, headers: &HeaderMap) -> Result<Option<User>, AuthError> {
    // Several Authorization fields reach Django as one, joined with commas
    // (the WSGI environ has one value per name).
    let fields: Vec<&[u8]> = headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    if fields.is_empty() {
        return Ok(None);
    }
    let header = fields.join(&b","[..]);
    let parts = split_ascii_ws(&header);
    let Some(first) = parts.first() else {
        return Ok(None);
    };
    if !state
        .settings
        .auth_header_types
        .iter()
        .any(|t| t.as_bytes() == *first)
    {
        return Ok(None);
    }
    if parts.len() != 2 {
        return Err(AuthError::BadAuthorizationHeader);
    }
    let settings = &state.settings;
    let now = tokens::now();
    let payload = tokens::decode(parts[1], &state.keys, settings, now)
        .and_then(|p| tokens::verify(&p, settings, Some("access"), now).map(|_| p))
        .map_err(AuthError::InvalidAccessToken)?;
    let user_id = payload
        .get(&settings.user_id_claim)
        .ok_or(AuthError::NoUserIdentification)?;
    // simplejwt answers 500 for an id Django cannot read as an integer; it
    // names no user, so "User not found".
    let id = user_id.to_int().ok_or(AuthError::UserNotFound)?;
    let user = state
        .read(|s| s.user_by_id(id))?
        .ok_or(AuthError::UserNotFound)?;
    if settings.check_user_is_active && !user.is_active {
        return Err(AuthError::UserInactive);
    }
    Ok(Some(user))
}

/// For tests and tools: why a raw bearer token would be refused.
pub fn check_access(state: &State, raw: &str) -> Result<(), TokenError> {
    let now = tokens::now();
    let p = tokens::decode(raw.as_bytes(), &state.keys, &state.settings, now)?;
    tokens::verify(&p, &state.settings, Some("access"), now)
}
