//! `POST /api/token/`: simplejwt's `TokenObtainPairView`.
//!
//! Credentials → a refresh token (recorded as outstanding) and an access
//! token minted from it. Unknown user, wrong password and inactive user get
//! the same answer and cost the same time.

use crate::compat::drf::{validate_fields, Data, FieldMeta};
use crate::compat::pyjson::{Object, Value};
use crate::endpoints::{refresh, Answer};
use crate::error::AuthError;
use crate::metrics::{Login, Tokens};
use crate::store::{OutstandingToken, WriteOp};
use crate::tokens::{self, Token};
use crate::{passwords, State};

/// The view's name in `OPTIONS`.
pub const NAME: &str = "Token Obtain Pair";
/// The view's docstring, dedented, as DRF shows it.
pub const DESCRIPTION: &str = "Takes a set of user credentials and returns an access and refresh JSON web\ntoken pair to prove the authentication of those credentials.";
/// The serializer's fields.
pub const FIELDS: &[FieldMeta] = &[
    FieldMeta {
        name: "username",
        read_only: false,
    },
    FieldMeta {
        name: "password",
        read_only: false,
    },
];

/// Handles the POST.
pub async fn post(state: &State, data: Data) -> Result<Answer, AuthError> {
    let mut values = validate_fields(&data, &["username", "password"])?.into_iter();
    let (username, password) = (
        values.next().unwrap_or_default(),
        values.next().unwrap_or_default(),
    );
    let user = state.store.user_by_username(&username).await?;
    let django = state.store.keeps_django_hashes();
    // An unknown user is checked against a dummy hash on the same threads,
    // so it costs what a wrong password costs (in a Django table, what
    // Django's default hasher costs).
    let stored = match &user {
        Some(u) => Some(u.password.clone()),
        None if django => Some(passwords::DJANGO_DUMMY_HASH.to_string()),
        None => None,
    };
    let verified = state.passwords().verify(password.clone(), stored).await;
    let metrics = crate::metrics::get();
    let user = match user {
        Some(u) if verified.ok => u,
        _ => {
            metrics.login(Login::BadCredentials);
            return Err(AuthError::NoActiveAccount);
        }
    };
    if verified.needs_upgrade && !django {
        // Django re-hashes with the preferred hasher on a successful check;
        // a Django project's own table keeps Django's hashes (Django
        // upgrades them itself).
        let hash = state.passwords().hash(password).await;
        state.write(WriteOp::SetPassword(user.id, hash)).await?;
    }
    // Django's ModelBackend refuses inactive users whatever
    // CHECK_USER_IS_ACTIVE says.
    if !user.is_active {
        metrics.login(Login::Inactive);
        return Err(AuthError::NoActiveAccount);
    }
    let settings = &state.settings;
    // Tokens issued in the second of a log-out-everywhere would be refused
    // with the ones it revoked (`iat` is in whole seconds): wait for the
    // next second. Only a login within a second of a log-out waits.
    if let Some(t) = user.tokens_valid_after {
        let wait = (t + 1) as f64 - tokens::now();
        if wait > 0.0 {
            tokio::time::sleep(std::time::Duration::from_secs_f64(wait)).await;
        }
    }
    let now = tokens::now();
    let mut refresh = Token::refresh_for_user(user.id, now, settings);
    if settings.refresh_reuse_detection {
        // A login starts a family; every rotation keeps it.
        refresh.set_family();
    }
    let encoded = refresh.encode(&state.keys, settings);
    let outstanding = OutstandingToken {
        jti: refresh.jti(settings).unwrap_or_default(),
        user_id: Some(user.id),
        token: encoded.clone(),
        created_at: now as i64,
        expires_at: refresh.exp(),
        // The family travels in the token (signed); the store keeps only
        // revoked families (see `refresh::outstanding`).
        family: None,
        parent: None,
    };
    state.write(WriteOp::AddOutstanding(outstanding)).await?;
    let access = refresh.access_token(settings).encode(&state.keys, settings);
    if settings.update_last_login {
        state
            .write(WriteOp::UpdateLastLogin(user.id, now as i64))
            .await?;
    }
    metrics.login(Login::Success);
    metrics.tokens(Tokens::Obtain);
    if settings.refresh_cookie {
        let mut out = Object::new();
        out.insert("access", Value::str(access));
        return Ok(refresh::with_refresh(state, out, encoded));
    }
    let mut out = Object::new();
    out.insert("refresh", Value::str(encoded));
    out.insert("access", Value::str(access));
    Ok(Answer::from(Value::Object(out)))
}
