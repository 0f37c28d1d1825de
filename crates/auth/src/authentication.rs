//! simplejwt's `JWTAuthentication`: the `Authorization` header → a user.
//!
//! Order and answers as simplejwt: no header, an empty one or another scheme
//! (`Token x`, a lower-case `bearer x`) is "not authenticated" (the view then
//! says credentials were not provided); our scheme with other than one value
//! is `bad_authorization_header`; then the token as an `AccessToken`, its
//! user id claim, the user, and whether the user is active.

use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::compat::pyjson::Object;
use crate::error::AuthError;
use crate::settings::Settings;
use crate::store::{Db, User};
use crate::tokens::{self, Keys, TokenError};
use crate::State;

/// Python's `bytes.split()`: runs of ASCII whitespace separate parts.
fn split_ascii_ws(b: &[u8]) -> Vec<&[u8]> {
    b.split(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        .filter(|p| !p.is_empty())
        .collect()
}

/// Where the user of a valid access token comes from.
#[derive(Clone, Copy)]
pub enum UserSource<'a> {
    /// The store ferricorn-auth writes (simplejwt's `JWTAuthentication`):
    /// the user must exist, and be active under `CHECK_USER_IS_ACTIVE`, so
    /// a deactivated user is refused at the next request.
    Store(&'a Db),
    /// The token's claims alone (simplejwt's
    /// `JWTStatelessUserAuthentication`): no read, and a user deactivated
    /// after the token was issued keeps access until it expires.
    Claims,
}

/// The credentials of a request, checked.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// The user id claim, as an integer.
    pub user_id: i64,
    /// The user as the store has it; `None` from [`UserSource::Claims`].
    pub user: Option<User>,
    /// The token's claims.
    pub claims: Object,
}

/// The authenticated user, `Ok(None)` when the request carries no
/// credentials of our scheme.
pub async fn authenticate(state: &State, headers: &HeaderMap) -> Result<Option<User>, AuthError> {
    let found = authenticate_with(
        &state.settings,
        &state.keys,
        UserSource::Store(&state.store),
        headers,
    )
    .await?;
    Ok(found.and_then(|a| a.user))
}

/// simplejwt's `JWTAuthentication.authenticate` with the user read from
/// `users`: `Ok(None)` when the request carries no credentials of our
/// scheme, the refusal simplejwt gives otherwise.
pub async fn authenticate_with(
    settings: &Settings,
    keys: &Keys,
    users: UserSource<'_>,
    headers: &HeaderMap,
) -> Result<Option<Authenticated>, AuthError> {
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
    if !settings
        .auth_header_types
        .iter()
        .any(|t| t.as_bytes() == *first)
    {
        return Ok(None);
    }
    if parts.len() != 2 {
        return Err(AuthError::BadAuthorizationHeader);
    }
    let now = tokens::now();
    let claims = tokens::decode(parts[1], keys, settings, now)
        .and_then(|p| tokens::verify(&p, settings, Some("access"), now).map(|_| p))
        .map_err(AuthError::InvalidAccessToken)?;
    let user_id = claims
        .get(&settings.user_id_claim)
        .ok_or(AuthError::NoUserIdentification)?;
    let user = match users {
        UserSource::Store(store) => {
            // simplejwt answers 500 for an id Django cannot read as an
            // integer; it names no user, so "User not found".
            let id = user_id.to_int().ok_or(AuthError::UserNotFound)?;
            let user = store.user_by_id(id).await?.ok_or(AuthError::UserNotFound)?;
            if settings.check_user_is_active && !user.is_active {
                return Err(AuthError::UserInactive);
            }
            // Issued before the user logged out everywhere: checked on the
            // row just read, so it costs nothing more.
            if settings.revoke_access_on_logout
                && user
                    .tokens_valid_after
                    .is_some_and(|t| tokens::issued_at(&claims) <= t)
            {
                return Err(AuthError::InvalidAccessToken(TokenError::Blacklisted));
            }
            Some(user)
        }
        UserSource::Claims => None,
    };
    // Without a store an id that is not an integer identifies nobody.
    let user_id = match &user {
        Some(user) => user.id,
        None => user_id.to_int().ok_or(AuthError::NoUserIdentification)?,
    };
    Ok(Some(Authenticated {
        user_id,
        user,
        claims,
    }))
}

/// For tests and tools: why a raw bearer token would be refused.
pub fn check_access(state: &State, raw: &str) -> Result<(), TokenError> {
    let now = tokens::now();
    let p = tokens::decode(raw.as_bytes(), &state.keys, &state.settings, now)?;
    tokens::verify(&p, &state.settings, Some("access"), now)
}
