//! `POST /api/token/refresh/`: simplejwt's `TokenRefreshView`.
//!
//! A refresh token → a new access token; with ROTATE_REFRESH_TOKENS a new
//! refresh token too, and with BLACKLIST_AFTER_ROTATION the old one is
//! spent. Spending is the store's atomic blacklist insert: of concurrent
//! refreshes of one token, in any worker, exactly one wins; the others are
//! told the token is blacklisted (simplejwt itself lets such a race through).
//!
//! Beyond simplejwt: with `refresh_reuse_detection` every refresh token
//! carries its family (`fam`, fixed at login); a rotated token presented
//! again revokes the family ([`reused`]). With `refresh_cookie` the token
//! comes from, and goes to, the refresh cookie.

use http::HeaderMap;

use crate::compat::drf::{self, validate_fields, Data, FieldMeta};
use crate::compat::pyjson::{Object, Value};
use crate::endpoints::{cookie, Answer};
use crate::error::AuthError;
use crate::store::{OutstandingToken, TokenState, WriteOp};
use crate::tokens::{self, Token, TokenError};
use crate::State;

/// The view's name in `OPTIONS`.
pub const NAME: &str = "Token Refresh";
/// The view's docstring, dedented.
pub const DESCRIPTION: &str = "Takes a refresh type JSON web token and returns an access type JSON web\ntoken if the refresh token is valid.";
/// The serializer's fields.
pub const FIELDS: &[FieldMeta] = &[
    FieldMeta {
        name: "refresh",
        read_only: false,
    },
    FieldMeta {
        name: "access",
        read_only: true,
    },
];

/// The refresh token of a refresh or blacklist request: the `refresh`
/// field, or with `refresh_cookie` the cookie when the body has no such
/// field (after the cross-site check).
pub fn requested_token(
    state: &State,
    data: &Data,
    headers: &HeaderMap,
) -> Result<String, AuthError> {
    if state.settings.refresh_cookie && !drf::has_field(data, "refresh") {
        if let Some(token) = cookie::refresh_token(&state.settings, headers)? {
            return Ok(token);
        }
    }
    Ok(validate_fields(data, &["refresh"])?.remove(0))
}

/// Reads a refresh token as simplejwt's `RefreshToken(raw)` does with the
/// blacklist app installed: decode, blacklist (and, with reuse detection,
/// its family), then `verify`.
pub async fn read_refresh_token(state: &State, raw: &str, now: f64) -> Result<Token, AuthError> {
    let (token, known) = read_with_state(state, raw, now).await?;
    if known != TokenState::Live {
        return Err(AuthError::InvalidToken(TokenError::Blacklisted));
    }
    verify_refresh(state, &token, now)?;
    Ok(token)
}

/// Decodes a refresh token and reads what the store knows of it.
async fn read_with_state(
    state: &State,
    raw: &str,
    now: f64,
) -> Result<(Token, TokenState), AuthError> {
    let settings = &state.settings;
    let payload = tokens::decode(raw.as_bytes(), &state.keys, settings, now)
        .map_err(AuthError::InvalidToken)?;
    let token = Token::from_payload(payload, now);
    // simplejwt reads the jti before checking it is there (a 500); we say
    // what `verify` would.
    let jti = token
        .jti(settings)
        .ok_or(AuthError::InvalidToken(TokenError::NoId))?;
    let family = family_of(state, &token);
    let known = state.store.token_state(&jti, family.as_deref()).await?;
    Ok((token, known))
}

fn verify_refresh(state: &State, token: &Token, now: f64) -> Result<(), AuthError> {
    tokens::verify(&token.payload, &state.settings, Some("refresh"), now)
        .map_err(AuthError::InvalidToken)
}

/// The token's family, when reuse detection is on and it has one.
fn family_of(state: &State, token: &Token) -> Option<String> {
    if !state.settings.refresh_reuse_detection {
        return None;
    }
    token.family().map(str::to_string)
}

/// The outstanding-list record of a token read from `raw`.
///
/// Its family is not recorded: it is in the token, signed, and a revoked
/// family is one row the refresh's first read checks, which also refuses
/// the family's tokens issued while it was being revoked. Recording every
/// token's family would cost an index entry per refresh (a fifth of a
/// refresh's time on SQLite) for nothing but listing the members.
pub fn outstanding(state: &State, token: &Token, raw: &str) -> OutstandingToken {
    let settings = &state.settings;
    OutstandingToken {
        jti: token.jti(settings).unwrap_or_default(),
        user_id: token
            .payload
            .get(&settings.user_id_claim)
            .and_then(Value::to_int),
        token: raw.to_string(),
        created_at: token.current_time as i64,
        expires_at: token.exp(),
        family: None,
        parent: None,
    }
}

/// The answer that hands out a refresh token: in the body, or with
/// `refresh_cookie` in the cookie.
pub fn with_refresh(state: &State, mut body: Object, refresh: String) -> Answer {
    if state.settings.refresh_cookie {
        return Answer {
            cookies: cookie::set(&state.settings, &refresh),
            body: Value::Object(body),
        };
    }
    body.insert("refresh", Value::str(refresh));
    Answer::from(Value::Object(body))
}

/// Handles the POST.
pub async fn post(state: &State, data: Data, headers: &HeaderMap) -> Result<Answer, AuthError> {
    let raw = requested_token(state, &data, headers)?;
    let settings = &state.settings;
    let now = tokens::now();
    let (mut refresh, known) = read_with_state(state, &raw, now).await?;
    match known {
        TokenState::Live => {}
        TokenState::Blacklisted if family_of(state, &refresh).is_some() => {
            verify_refresh(state, &refresh, now)?;
            return reused(state, &refresh, now).await;
        }
        _ => return Err(AuthError::InvalidToken(TokenError::Blacklisted)),
    }
    verify_refresh(state, &refresh, now)?;

    if let Some(uid) = refresh
        .payload
        .get(&settings.user_id_claim)
        .filter(|v| v.truthy())
    {
        // A missing user or an unreadable id is a 500 in simplejwt.
        let id = uid.to_int().ok_or(AuthError::NoActiveAccountForToken)?;
        let user = state.store.user_by_id(id).await?;
        match user {
            Some(u) if !settings.check_user_is_active || u.is_active => {
                // Issued before the user logged out everywhere: refused even
                // if it escaped that blacklisting.
                if u.tokens_valid_after.is_some_and(|t| refresh.iat() <= t) {
                    return Err(AuthError::InvalidToken(TokenError::Blacklisted));
                }
            }
            _ => return Err(AuthError::NoActiveAccountForToken),
        }
    }

    let mut out = Object::new();
    out.insert(
        "access",
        Value::str(refresh.access_token(settings).encode(&state.keys, settings)),
    );

    if !settings.rotate_refresh_tokens {
        crate::metrics::get().tokens(crate::metrics::Tokens::Refresh);
        return Ok(Answer::from(Value::Object(out)));
    }
    let spent = settings
        .blacklist_after_rotation
        .then(|| outstanding(state, &refresh, &raw));
    let presented = settings.refresh_reuse_detection.then(|| refresh.clone());
    if settings.refresh_reuse_detection && refresh.family().is_none() {
        // A token issued before reuse detection was switched on starts a
        // family with its replacement.
        refresh.set_family();
    }
    refresh.set_jti(settings);
    refresh.set_exp(settings.refresh_token_lifetime);
    refresh.set_iat();
    let encoded = refresh.encode(&state.keys, settings);
    let mut new = outstanding(state, &refresh, &encoded);
    // Spending the old token and recording the new one is one write:
    // one transaction, and the new one is recorded only if this refresh
    // won the spend.
    let op = match spent {
        Some(spent) => {
            // The link from a token to its replacement serves only the
            // grace window's lookup: without one it is not written (one
            // index entry fewer per refresh).
            if settings.refresh_reuse_grace > 0.0 {
                new.parent = Some(spent.jti.clone());
            }
            WriteOp::Rotate { spent, new }
        }
        None => WriteOp::AddOutstanding(new),
    };
    if !state.write(op).await? {
        // Another refresh of this token won: with reuse detection, a
        // second presentation of a rotated token, whichever came first.
        if let Some(presented) = presented.filter(|p| p.family().is_some()) {
            return reused(state, &presented, now).await;
        }
        return Err(AuthError::InvalidToken(TokenError::Blacklisted));
    }
    crate::metrics::get().tokens(crate::metrics::Tokens::Refresh);
    Ok(with_refresh(state, out, encoded))
}

/// A refresh token presented after it was rotated (RFC 9700 §4.14.2): a
/// stolen copy is in use, by the thief or by the client. Within
/// `refresh_reuse_grace` of the rotation, and while its replacement is
/// unused, the client is retrying a lost answer: it gets the replacement
/// again. Otherwise the whole family is revoked, the newest token with it.
async fn reused(state: &State, token: &Token, now: f64) -> Result<Answer, AuthError> {
    let settings = &state.settings;
    let jti = token.jti(settings).unwrap_or_default();
    let family = family_of(state, token).unwrap_or_default();
    if settings.refresh_reuse_grace > 0.0 {
        if let Some(rotation) = state.store.rotated_to(&jti).await? {
            if !rotation.spent && now - rotation.created_at as f64 <= settings.refresh_reuse_grace {
                if let Ok(payload) =
                    tokens::decode(rotation.token.as_bytes(), &state.keys, settings, now)
                {
                    let replacement = Token::from_payload(payload, now);
                    let mut out = Object::new();
                    out.insert(
                        "access",
                        Value::str(
                            replacement
                                .access_token(settings)
                                .encode(&state.keys, settings),
                        ),
                    );
                    crate::metrics::get().tokens(crate::metrics::Tokens::Refresh);
                    return Ok(with_refresh(state, out, rotation.token));
                }
            }
        }
    }
    let user_id = token
        .payload
        .get(&settings.user_id_claim)
        .and_then(Value::to_int);
    let revoked = state
        .write(WriteOp::RevokeFamily {
            family: family.clone(),
            user_id,
            // Every token of the family expires before this.
            expires_at: (now + settings.leeway) as i64 + settings.refresh_token_lifetime + 1,
        })
        .await?;
    if revoked {
        crate::metrics::get().tokens(crate::metrics::Tokens::FamilyRevoked);
        let user = user_id.map_or_else(|| "unknown".to_string(), |id| id.to_string());
        eprintln!(
            "ferricorn-auth: warning: refresh token reuse detected: a rotated refresh token of user {user} \
             was presented again; its token family {family} is revoked (every refresh token of that login)"
        );
    }
    Err(AuthError::InvalidToken(TokenError::Blacklisted))
}
