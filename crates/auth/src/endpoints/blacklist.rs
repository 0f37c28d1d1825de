//! `POST /api/token/blacklist/`: simplejwt's `TokenBlacklistView`.
//!
//! A refresh token is read as the refresh endpoint reads it (so a second
//! blacklisting answers "Token is blacklisted" and an access token "Token
//! has wrong type"), then added to the blacklist. With `refresh_cookie` the
//! token may come from the cookie, which the answer clears.

use http::HeaderMap;

use crate::compat::drf::{Data, FieldMeta};
use crate::compat::pyjson::{Object, Value};
use crate::endpoints::refresh::{outstanding, read_refresh_token, requested_token};
use crate::endpoints::{cookie, Answer};
use crate::error::AuthError;
use crate::store::WriteOp;
use crate::tokens::{self, TokenError};
use crate::State;

/// The view's name in `OPTIONS`.
pub const NAME: &str = "Token Blacklist";
/// The view's docstring, dedented.
pub const DESCRIPTION: &str = "Takes a token and blacklists it. Must be used with the\n`rest_framework_simplejwt.token_blacklist` app installed.";
/// The serializer's fields.
pub const FIELDS: &[FieldMeta] = &[FieldMeta {
    name: "refresh",
    read_only: false,
}];

/// Handles the POST.
pub async fn post(state: &State, data: Data, headers: &HeaderMap) -> Result<Answer, AuthError> {
    let raw = requested_token(state, &data, headers)?;
    let now = tokens::now();
    let token = read_refresh_token(state, &raw, now).await?;
    let record = outstanding(state, &token, &raw);
    if !state.write(WriteOp::Blacklist(record)).await? {
        // Lost a race with another blacklisting of the same token.
        return Err(AuthError::InvalidToken(TokenError::Blacklisted));
    }
    crate::metrics::get().tokens(crate::metrics::Tokens::Blacklist);
    let mut answer = Answer::from(Value::Object(Object::new()));
    if state.settings.refresh_cookie {
        answer.cookies = cookie::clear(&state.settings);
    }
    Ok(answer)
}
