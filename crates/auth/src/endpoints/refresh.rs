//! `POST /api/token/refresh/`: simplejwt's `TokenRefreshView`.
//!
//! A refresh token → a new access token; with ROTATE_REFRESH_TOKENS a new
//! refresh token too, and with BLACKLIST_AFTER_ROTATION the old one is
//! spent. Spending is the store's atomic blacklist insert: of concurrent
//! refreshes of one token, in any worker, exactly one wins; the others are
//! told the token is blacklisted (simplejwt itself lets such a race through).

use crate::compat::drf::{validate_fields, Data, FieldMeta};
use crate::compat::pyjson::{Object, Value};
use crate::error::AuthError;
use crate::store::{OutstandingToken, WriteOp};
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

/// Reads a refresh token as simplejwt's `RefreshToken(raw)` does with the
/// blacklist app installed: decode, blacklist, then `verify`.
pub async fn read_refresh_token(state: &State, raw: &str, now: f64) -> Result<Token, AuthError> {
    let settings = &state.settings;
    let payload = tokens::decode(raw.as_bytes(), &state.keys, settings, now)
        .map_err(AuthError::InvalidToken)?;
    let token = Token::from_payload(payload, now);
    // simplejwt reads the jti before checking it is there (a 500); we say
    // what `verify` would.
    let jti = token
        .jti(settings)
        .ok_or(AuthError::InvalidToken(TokenError::NoId))?;
    if state.store.is_blacklisted(&jti).await? {
        return Err(AuthError::InvalidToken(TokenError::Blacklisted));
    }
    tokens::verify(&token.payload, settings, Some("refresh"), now)
        .map_err(AuthError::InvalidToken)?;
    Ok(token)
}

/// The outstanding-list record of a token read from `raw`.
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

/// Handles the POST.
pub async fn post(state: &State, data: Data) -> Result<Value, AuthError> {
    let raw = validate_fields(&data, &["refresh"])?.remove(0);
    let settings = &state.settings;
    let now = tokens::now();
    let mut refresh = read_refresh_token(state, &raw, now).await?;

    if let Some(uid) = refresh
        .payload
        .get(&settings.user_id_claim)
        .filter(|v| v.truthy())
    {
        // A missing user or an unreadable id is a 500 in simplejwt.
        let id = uid.to_int().ok_or(AuthError::NoActiveAccountForToken)?;
        let user = state.store.user_by_id(id).await?;
        match user {
            Some(u) if !settings.check_user_is_active || u.is_active => {}
            _ => return Err(AuthError::NoActiveAccountForToken),
        }
    }

    let mut out = Object::new();
    out.insert(
        "access",
        Value::str(refresh.access_token(settings).encode(&state.keys, settings)),
    );

    if settings.rotate_refresh_tokens {
        let spent = settings
            .blacklist_after_rotation
            .then(|| outstanding(state, &refresh, &raw));
        refresh.set_jti(settings);
        refresh.set_exp(settings.refresh_token_lifetime);
        refresh.set_iat();
        let encoded = refresh.encode(&state.keys, settings);
        let new = outstanding(state, &refresh, &encoded);
        // Spending the old token and recording the new one is one write:
        // one transaction, and the new one is recorded only if this refresh
        // won the spend.
        let op = match spent {
            Some(spent) => WriteOp::Rotate { spent, new },
            None => WriteOp::AddOutstanding(new),
        };
        if !state.write(op).await? {
            return Err(AuthError::InvalidToken(TokenError::Blacklisted));
        }
        out.insert("refresh", Value::str(encoded));
    }
    crate::metrics::get().tokens(crate::metrics::Tokens::Refresh);
    Ok(Value::Object(out))
}
