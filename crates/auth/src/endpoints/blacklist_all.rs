//! `POST /api/token/blacklist_all/`: log out everywhere (beyond simplejwt).
//!
//! With a valid access token, every outstanding refresh token of its user
//! is blacklisted and the user's "not before" time is set to now: a refresh
//! token issued at or before it is refused even if it escaped the
//! blacklisting (issued by a refresh racing this one), and with
//! `revoke_access_on_logout` so is every such access token. `ferricorn-auth
//! logout USERNAME` and `changepassword` do the same.

use http::HeaderMap;

use crate::compat::pyjson::{Object, Value};
use crate::endpoints::{cookie, Answer};
use crate::error::AuthError;
use crate::store::WriteOp;
use crate::{authentication, tokens, State};

/// The view's name in `OPTIONS`.
pub const NAME: &str = "Token Blacklist All";
/// The view's description.
pub const DESCRIPTION: &str =
    "Blacklists every refresh token of the authenticated user: log out everywhere.";

/// Handles the POST.
pub async fn post(state: &State, headers: &HeaderMap) -> Result<Answer, AuthError> {
    let user = authentication::authenticate(state, headers)
        .await?
        .ok_or(AuthError::NotAuthenticated)?;
    state
        .write(WriteOp::LogoutUser {
            user_id: user.id,
            at: tokens::now().floor() as i64,
        })
        .await?;
    crate::metrics::get().tokens(crate::metrics::Tokens::BlacklistAll);
    let mut answer = Answer::from(Value::Object(Object::new()));
    if state.settings.refresh_cookie {
        answer.cookies = cookie::clear(&state.settings);
    }
    Ok(answer)
}
