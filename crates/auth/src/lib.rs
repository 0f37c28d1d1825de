//! ferricorn-auth: a JWT token service that answers as
//! djangorestframework-simplejwt 5.5 on Django REST framework 3.18 does, so
//! that clients of a Django deployment can be pointed at it unchanged.
//!
//! It is an [`Application`] ([`AuthApp`]) served by ferricorn's prefork
//! server, with its users and tokens in an embedded SQLite file.
//!
//! Modules:
//! - [`endpoints`]: the router and the views, one file each (`obtain`,
//!   `refresh`, `verify`, `blacklist`, `protected`: the `hello` view);
//! - [`layer`]: [`TokenLayer`], the same access-token check as a tower
//!   layer, so other services (an axum `Router`) accept these tokens;
//! - [`tokens`]: claims, keys, encoding, and the checks in simplejwt's order;
//! - [`authentication`]: the `Authorization: Bearer` header → a user, the
//!   one check the hello view and the layer share;
//! - [`passwords`]: argon2id on a small pool of threads per worker, Django
//!   hashes accepted;
//! - [`settings`]: simplejwt's settings from the config file and environment;
//! - [`store`]: the [`Store`](store::Store) trait and the SQLite store;
//! - [`error`]: [`AuthError`] and its one conversion to a response;
//! - [`compat`]: the DRF, Django and Python behaviour clients can observe
//!   (content negotiation, parsers, field messages, JSON text, Django's own
//!   pages and security headers), checked against the real simplejwt by
//!   `tests/simplejwt_differential.rs`.
//!
//! What it is not: a user-management API (users are managed with the
//! binary's commands), nor a general JWT library. Sliding tokens and
//! `CHECK_REVOKE_TOKEN` are not implemented.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod authentication;
pub mod compat;
pub mod endpoints;
pub mod error;
pub mod layer;
pub mod passwords;
pub mod settings;
pub mod store;
pub mod tokens;

pub use compat::pyjson;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use rand::RngCore;

pub use error::AuthError;
use ferricorn_app_interface::{Application, BoxError, Request, Response};
pub use layer::{AuthUser, TokenLayer, TokenService};
pub use settings::{Settings, SettingsError};
use store::{SqliteStore, Store, StoreError, WriteOp, Writer};
use tokens::Keys;

/// Password hashing threads per worker process. One: argon2id at OWASP's
/// parameters is memory-bound and takes its 19 MiB per thread in flight, and
/// a prefork deployment already runs about one worker per core, so one
/// thread each gives a login flood every core while leaving each worker's
/// runtime thread a core's share to serve everything else. More threads
/// would neither raise the logins per second of a host whose workers fill
/// its cores nor keep the other requests' latency; they would add memory.
pub const PASSWORD_THREADS: usize = 1;

/// What every request handler shares: settings, keys, the store, and the
/// worker's password and writer threads.
pub struct State {
    /// The settings.
    pub settings: Settings,
    /// The signing and verifying keys.
    pub keys: Keys,
    /// The store.
    pub store: Arc<dyn Store>,
    writer: Writer,
    passwords: passwords::Pool,
}

impl State {
    /// A point read (a user, a blacklist lookup), made inline on the
    /// calling runtime thread: with the SQLite store it is an indexed read
    /// of a few microseconds on a warm connection with a prepared
    /// statement, much less than a hop to another thread and back, and in
    /// WAL mode a reader does not wait for writers. Nothing else belongs
    /// here.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError>,
    ) -> Result<T, AuthError> {
        f(&*self.store).map_err(AuthError::from)
    }

    /// A write, made by the worker's writer thread; see
    /// [`WriteOp::apply_to`] for the answer.
    pub async fn write(&self, op: WriteOp) -> Result<bool, AuthError> {
        self.writer.write(op).await.map_err(AuthError::from)
    }

    /// The worker's password hashing threads.
    pub fn passwords(&self) -> &passwords::Pool {
        &self.passwords
    }
}

/// The keys for `settings`. Without a configured signing key (HMAC
/// algorithms), the one kept in `store` is used, generated on first start,
/// with a warning: every process on that database agrees on it.
pub fn keys_for(settings: &Settings, store: &dyn Store) -> Result<Keys, BoxError> {
    let key = match &settings.signing_key {
        Some(k) => k.clone(),
        None => {
            let mut b = [0u8; 48];
            rand::rngs::OsRng.fill_bytes(&mut b);
            let (key, created) = store.signing_key(&hex::encode(b))?;
            eprintln!(
                "ferricorn-auth: warning: no signing key configured; {} the random key kept in the database. \
                 Tokens stay valid across restarts only with this database. Set one with \
                 FERRICORN_AUTH_SIGNING_KEY or signing_key in the [auth] table of the config file.",
                if created { "generated and stored" } else { "using" }
            );
            key
        }
    };
    Keys::new(settings, &key).map_err(|e| format!("auth signing_key/verifying_key: {e}").into())
}

/// The settings and the database as `ferricorn-auth serve` reads them: the
/// `[auth]` table of the config file (its `db` key names the database),
/// then `FERRICORN_AUTH_*` from `env`, which wins; `db` is the `--db` flag,
/// which wins over both. The database defaults to [`DEFAULT_DB`].
pub fn load_settings(
    table: Option<&toml::Table>,
    db: Option<PathBuf>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Settings, PathBuf), SettingsError> {
    let mut table = table.cloned();
    let file_db = table
        .as_mut()
        .and_then(|t| t.remove("db"))
        .and_then(|v| v.as_str().map(PathBuf::from));
    let db = db
        .or_else(|| env("FERRICORN_AUTH_DB").map(PathBuf::from))
        .or(file_db)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    Ok((Settings::load(table.as_ref(), env)?, db))
}

/// The database file when none is named.
pub const DEFAULT_DB: &str = "ferricorn-auth.sqlite3";

/// The token service as an [`Application`]. Build one per worker process,
/// after the fork: it opens database connections and starts the worker's
/// writer thread and [`PASSWORD_THREADS`] password threads.
#[derive(Clone)]
pub struct AuthApp {
    state: Arc<State>,
}

impl AuthApp {
    /// An application on `store`. Without a configured signing key (HMAC
    /// algorithms), the one kept in the store is used, generated on first
    /// start.
    pub fn new(settings: Settings, store: Arc<dyn Store>) -> Result<AuthApp, BoxError> {
        let keys = keys_for(&settings, &*store)?;
        let writer = Writer::new(Arc::clone(&store))
            .map_err(|e| format!("starting the writer thread: {e}"))?;
        let passwords = passwords::Pool::new(PASSWORD_THREADS)
            .map_err(|e| format!("starting the password threads: {e}"))?;
        Ok(AuthApp {
            state: Arc::new(State {
                settings,
                keys,
                store,
                writer,
                passwords,
            }),
        })
    }

    /// An application on the SQLite database at `path` (created if absent).
    pub fn open(settings: Settings, path: &std::path::Path) -> Result<AuthApp, BoxError> {
        let store =
            SqliteStore::open(path).map_err(|e| format!("database {}: {e}", path.display()))?;
        AuthApp::new(settings, Arc::new(store))
    }

    /// The shared state (for tests and tools).
    pub fn state(&self) -> &State {
        &self.state
    }
}

impl Application for AuthApp {
    fn call(&self, request: Request) -> impl Future<Output = Response> + Send {
        let state = Arc::clone(&self.state);
        async move { endpoints::route(&state, request).await }
    }
}
