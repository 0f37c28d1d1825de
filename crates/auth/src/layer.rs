//! [`TokenLayer`]: ferricorn-auth's access tokens protecting any tower
//! service, an axum `Router` or route among them.
//!
//! A team runs `ferricorn-auth` for login and refresh and protects its own
//! routes with the same tokens: the layer verifies the `Authorization:
//! Bearer` token exactly as `GET /api/hello/` does (simplejwt's
//! `JWTAuthentication`: the same settings, from the same `[auth]` table and
//! `FERRICORN_AUTH_*` variables; the same 401 bodies and `WWW-Authenticate`
//! header), then hands the service the request with an [`AuthUser`] in its
//! extensions. A request that fails is answered by the layer; the service
//! never sees it.
//!
//! ```no_run
//! use axum::{routing::get, Extension, Router};
//! use ferricorn_auth::{AuthUser, TokenLayer};
//!
//! // With the `axum` feature, `user: AuthUser` is an extractor of its own.
//! async fn me(Extension(user): Extension<AuthUser>) -> String {
//!     format!("hello, user {}", user.id)
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     ferricorn_tower::main_with_config(|config| {
//!         // In each worker, after the fork: the layer opens the store there.
//!         let auth = TokenLayer::from_config(config)?;
//!         Ok(Router::new().route("/me", get(me).route_layer(auth)))
//!     })
//! }
//! ```
//!
//! Two ways to find the user, chosen when the layer is built:
//! - from the store ferricorn-auth writes ([`TokenLayer::from_config`],
//!   [`TokenLayer::new`]): one indexed read per request, and a user
//!   deactivated after the token was issued is refused at once
//!   (`User is inactive`), as simplejwt's `JWTAuthentication` does;
//! - stateless ([`TokenLayer::stateless`],
//!   [`TokenLayer::stateless_from_config`]), opted into: the token's claims
//!   alone, as simplejwt's `JWTStatelessUserAuthentication`; no store is
//!   opened, and a deactivated user keeps access until the token expires.
//!
//! The refusal is rendered as DRF renders it for a client that sent no
//! `Accept` preference (compact `application/json`). A store failure is a
//! 500 with DRF's body, logged once per request by [`AuthError`].

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ferricorn_app_interface::{Body, BoxError, Response};
use http_body_util::Either;
use tower_layer::Layer;
use tower_service::Service;

use crate::authentication::{authenticate_with, UserSource};
use crate::compat::pyjson::Value;
use crate::compat::response::Rendering;
use crate::error::AuthError;
use crate::settings::Settings;
use crate::store::{Db, SqliteStore, Store};
use crate::tokens::Keys;
use crate::{keys_for, load_settings, DbFlags};

/// The authenticated user, in the request's extensions of every request
/// the [`TokenLayer`] lets through. An axum handler takes it as an argument
/// (feature `axum`) or as `axum::Extension<AuthUser>`.
#[derive(Clone, Debug)]
pub struct AuthUser {
    /// The user's id (the `USER_ID_CLAIM` claim, `user_id` by default).
    pub id: i64,
    /// The user's name, read from the store; in stateless mode the token's
    /// `username` claim if it has one (simplejwt puts none there).
    pub username: Option<String>,
    /// Every claim of the access token (`token_type`, `exp`, `iat`, `jti`,
    /// the user id, and any the issuer added).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// What the layer checks against, shared by every clone of the layer and
/// of the services it makes.
struct Verifier {
    settings: Settings,
    keys: Keys,
    /// `None`: stateless.
    store: Option<Db>,
}

impl Verifier {
    async fn check(&self, headers: &http::HeaderMap) -> Result<AuthUser, AuthError> {
        let users = match &self.store {
            Some(store) => UserSource::Store(store),
            None => UserSource::Claims,
        };
        let found = authenticate_with(&self.settings, &self.keys, users, headers)
            .await?
            // No credentials of our scheme: `IsAuthenticated` refuses.
            .ok_or(AuthError::NotAuthenticated)?;
        let username = match &found.user {
            Some(user) => Some(user.username.clone()),
            None => found
                .claims
                .get("username")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        Ok(AuthUser {
            id: found.user_id,
            username,
            claims: found
                .claims
                .iter()
                .map(|(k, v)| (k.to_owned(), to_json(v)))
                .collect(),
        })
    }

    fn refusal(&self, error: AuthError) -> Response {
        error.into_response(self.settings.www_authenticate_type(), Rendering::default())
    }
}

/// A claim as `serde_json` holds it. An integer too large for 64 bits
/// becomes the nearest float, NaN and the infinities `null`.
fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(digits) => digits
            .parse::<i64>()
            .map(J::from)
            .or_else(|_| digits.parse::<u64>().map(J::from))
            .unwrap_or_else(|_| digits.parse::<f64>().map_or(J::Null, J::from)),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.text.clone()),
        Value::Array(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Object(o) => J::Object(o.iter().map(|(k, v)| (k.to_owned(), to_json(v))).collect()),
    }
}

/// A tower [`Layer`] that lets through only requests with a valid
/// ferricorn-auth access token; see the [module docs](self).
///
/// Build it in each worker process (in the factory given to
/// `ferricorn_tower::main`), not before the fork: with a store it holds
/// database connections, which must never cross a fork.
#[derive(Clone)]
pub struct TokenLayer {
    verifier: Arc<Verifier>,
}

impl TokenLayer {
    /// A layer that reads users from `store`. Without a configured signing
    /// key the one kept in the store is used (as ferricorn-auth does).
    pub fn new(settings: Settings, store: Arc<dyn Store>) -> Result<TokenLayer, BoxError> {
        TokenLayer::with_db(settings, Db::embedded(store, false)?)
    }

    /// A layer that reads users from `db` (SQLite or PostgreSQL).
    pub fn with_db(settings: Settings, db: Db) -> Result<TokenLayer, BoxError> {
        let keys = keys_for(&settings, &db)?;
        Ok(TokenLayer::with(settings, keys, Some(db)))
    }

    /// A layer on the SQLite database at `path`, the one ferricorn-auth's
    /// `--db` names.
    pub fn open(settings: Settings, path: &Path) -> Result<TokenLayer, BoxError> {
        let store =
            SqliteStore::open(path).map_err(|e| format!("database {}: {e}", path.display()))?;
        TokenLayer::new(settings, Arc::new(store))
    }

    /// A layer that reads its settings and database as `ferricorn-auth
    /// serve` does: the `[auth]` table of the server's config file (its `db`
    /// key: a SQLite file or a `postgres://` URL) and the `FERRICORN_AUTH_*`
    /// environment variables (`FERRICORN_AUTH_DB`,
    /// `FERRICORN_AUTH_SIGNING_KEY`, ...).
    pub fn from_config(config: &ferricorn_server::Config) -> Result<TokenLayer, BoxError> {
        let (settings, database) =
            load_settings(config.app_table("auth"), &DbFlags::default(), env)?;
        let db = database
            .open(false)
            .map_err(|e| format!("database {}: {e}", database.display()))?;
        TokenLayer::with_db(settings, db)
    }

    /// A stateless layer: the user is the token's claims, no store is read.
    /// It needs the key configured, since there is no store to keep a
    /// generated one: the HMAC signing key, or for RS/PS/ES/EdDSA the public
    /// verifying key alone (the private key stays with ferricorn-auth).
    pub fn stateless(settings: Settings) -> Result<TokenLayer, BoxError> {
        let keys = match (Keys::verifying(&settings), &settings.signing_key) {
            (Some(keys), _) => keys,
            (None, Some(secret)) => Keys::new(&settings, secret),
            (None, None) => {
                return Err(
                    "auth signing_key: the stateless token layer needs the signing key \
                     ferricorn-auth signs with; set FERRICORN_AUTH_SIGNING_KEY or signing_key \
                     in the [auth] table of the config file"
                        .into(),
                )
            }
        }
        .map_err(|e| format!("auth verifying_key/signing_key: {e}"))?;
        Ok(TokenLayer::with(settings, keys, None))
    }

    /// [`TokenLayer::stateless`] with the settings read as
    /// [`TokenLayer::from_config`] reads them (the database is not opened).
    pub fn stateless_from_config(
        config: &ferricorn_server::Config,
    ) -> Result<TokenLayer, BoxError> {
        let (settings, _db) = load_settings(config.app_table("auth"), &DbFlags::default(), env)?;
        TokenLayer::stateless(settings)
    }

    fn with(settings: Settings, keys: Keys, store: Option<Db>) -> TokenLayer {
        TokenLayer {
            verifier: Arc::new(Verifier {
                settings,
                keys,
                store,
            }),
        }
    }
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

impl<S> Layer<S> for TokenLayer {
    type Service = TokenService<S>;

    fn layer(&self, inner: S) -> TokenService<S> {
        TokenService {
            inner,
            verifier: Arc::clone(&self.verifier),
        }
    }
}

/// The service a [`TokenLayer`] wraps around `S`.
///
/// Its response body is `Either<S's body, ferricorn's Body>`: the inner
/// service's answer, or the layer's refusal.
#[derive(Clone)]
pub struct TokenService<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for TokenService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = http::Response<Either<ResBody, Body>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // tower's rule: the service that was polled ready is the one
        // called; a fresh clone stays behind for the next request.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let verifier = Arc::clone(&self.verifier);
        Box::pin(async move {
            match verifier.check(request.headers()).await {
                Ok(user) => {
                    request.extensions_mut().insert(user);
                    Ok(inner.call(request).await?.map(Either::Left))
                }
                Err(refused) => Ok(verifier.refusal(refused).map(Either::Right)),
            }
        })
    }
}

#[cfg(feature = "axum")]
mod extract {
    use axum_core::extract::FromRequestParts;
    use axum_core::response::IntoResponse;
    use http::request::Parts;

    use super::AuthUser;
    use crate::compat::response::Rendering;
    use crate::error::AuthError;

    /// The rejection of [`AuthUser`] on a route the [`super::TokenLayer`]
    /// does not cover: simplejwt's 401 for a request without credentials,
    /// so a route left unprotected by mistake fails closed.
    #[derive(Debug)]
    pub struct NotAuthenticated;

    impl IntoResponse for NotAuthenticated {
        fn into_response(self) -> axum_core::response::Response {
            AuthError::NotAuthenticated
                .into_response("Bearer", Rendering::default())
                .map(axum_core::body::Body::new)
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
        type Rejection = NotAuthenticated;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            parts
                .extensions
                .get::<AuthUser>()
                .cloned()
                .ok_or(NotAuthenticated)
        }
    }
}

#[cfg(feature = "axum")]
pub use extract::NotAuthenticated;
