//! ferricorn-auth: a JWT token service that answers as
//! djangorestframework-simplejwt 5.5 on Django REST framework 3.18 does, so
//! that clients of a Django deployment can be pointed at it unchanged.
//!
//! It is an [`Application`] ([`AuthApp`]) served by ferricorn's prefork
//! server, with its users and tokens in an embedded SQLite file or, for
//! several hosts, in PostgreSQL.
//!
//! Modules:
//! - [`endpoints`]: the router and the views, one file each (`obtain`,
//!   `refresh`, `verify`, `blacklist`, `protected`: the `hello` view);
//! - [`layer`]: [`TokenLayer`], the same access-token check as a tower
//!   layer, so other services (an axum `Router`) accept these tokens;
//! - [`tokens`]: claims, keys, encoding, and the checks in simplejwt's order;
//!   `tokens::jwk`: public keys as JSON Web Keys (the JWKS endpoint, `kid`);
//! - [`authentication`]: the `Authorization: Bearer` header → a user, the
//!   one check the hello view and the layer share;
//! - [`passwords`]: argon2id on a small pool of threads per worker, Django
//!   hashes accepted;
//! - [`settings`]: simplejwt's settings from the config file and environment;
//! - [`store`]: where users and tokens live: SQLite (embedded) or
//!   PostgreSQL, behind [`Db`](store::Db);
//! - [`error`]: [`AuthError`] and its one conversion to a response;
//! - [`metrics`]: logins, tokens, refusals and hashing time, summed by the
//!   server's master with its own metrics (`--metrics-bind`);
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
pub mod metrics;
pub mod passwords;
pub mod settings;
pub mod store;
pub mod tokens;

pub use compat::pyjson;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;

pub use error::AuthError;
use ferricorn_app_interface::{Application, BoxError, Request, Response};
pub use layer::{AuthUser, TokenLayer, TokenService};
pub use settings::{Settings, SettingsError};
use store::postgres::{self, migrations, PgOptions, Schema};
use store::{Database, Db, SqliteStore, Store, WriteOp};
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
/// worker's password threads.
pub struct State {
    /// The settings.
    pub settings: Settings,
    /// The signing and verifying keys.
    pub keys: Keys,
    /// The store.
    pub store: Db,
    passwords: passwords::Pool,
}

impl State {
    /// A write; see [`WriteOp::apply_to`] for the answer.
    pub async fn write(&self, op: WriteOp) -> Result<bool, AuthError> {
        self.store.write(op).await.map_err(AuthError::from)
    }

    /// The worker's password hashing threads.
    pub fn passwords(&self) -> &passwords::Pool {
        &self.passwords
    }
}

/// The keys for `settings`. Without a configured signing key (HMAC
/// algorithms), the one kept in the database is used, generated on first
/// start, with a warning: every process on that database, on every host,
/// agrees on it.
pub fn keys_for(settings: &Settings, db: &Db) -> Result<Keys, BoxError> {
    let key = match &settings.signing_key {
        Some(k) => k.clone(),
        None => {
            let (key, created) = match db {
                Db::Embedded { store, .. } => store.signing_key(&random_key())?,
                Db::Postgres(pg) => stored_key(pg.options())?,
            };
            warn_stored_key(created);
            key
        }
    };
    Keys::new(settings, &key).map_err(|e| format!("auth signing_key/verifying_key: {e}").into())
}

fn random_key() -> String {
    let mut b = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn stored_key(options: &PgOptions) -> Result<(String, bool), BoxError> {
    Ok(migrations::blocking(migrations::signing_key(
        options,
        &random_key(),
    ))??)
}

fn warn_stored_key(created: bool) {
    eprintln!(
        "ferricorn-auth: warning: no signing key configured; {} the random key kept in the database. \
         Tokens stay valid across restarts only with this database. Set one with \
         FERRICORN_AUTH_SIGNING_KEY or signing_key in the [auth] table of the config file.",
        if created { "generated and stored" } else { "using" }
    );
}

/// What the start of `ferricorn-auth serve` does before it forks: for
/// PostgreSQL, check the connection, migrate the schema (once across hosts:
/// an advisory lock) and, without a configured key, read (or store) the
/// signing key, so that workers start without the database and a worker
/// replaced during an outage serves 503s instead of failing to boot. The
/// error is one line naming the problem and the fix, without the password.
pub fn prepare(settings: &mut Settings, db: &Database) -> Result<(), BoxError> {
    let Database::Postgres(options) = db else {
        return Ok(());
    };
    let applied = migrations::blocking(migrations::migrate(options))??;
    if !applied.is_empty() {
        eprintln!(
            "ferricorn-auth: PostgreSQL at {}: applied schema migrations {applied:?}",
            options.display
        );
    }
    if settings.signing_key.is_none() && settings.is_hmac() {
        let (key, created) = stored_key(options)?;
        warn_stored_key(created);
        settings.signing_key = Some(key);
    }
    Ok(())
}

/// The database flags of the `ferricorn-auth` binary, which win over the
/// environment and the config file.
#[derive(Clone, Debug, Default)]
pub struct DbFlags {
    /// `--db`: a SQLite file or a `postgres://` URL.
    pub db: Option<String>,
    /// `--db-pool-size`.
    pub pool_size: Option<usize>,
    /// `--db-connect-timeout`, seconds.
    pub connect_timeout: Option<f64>,
    /// `--schema`.
    pub schema: Option<String>,
}

/// The settings and the database as `ferricorn-auth serve` reads them: the
/// `[auth]` table of the config file (its `db`, `db_pool_size`,
/// `db_connect_timeout` and `schema` keys say where the data lives), then
/// `FERRICORN_AUTH_*` from `env`, which wins; `flags` win over both. The
/// database defaults to the SQLite file [`DEFAULT_DB`].
pub fn load_settings(
    table: Option<&toml::Table>,
    flags: &DbFlags,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Settings, Database), SettingsError> {
    let mut table = table.cloned();
    // The database keys, taken out of the table before simplejwt's settings
    // are read from it: (file key, environment variable, flag).
    let mut take = |key: &str,
                    var: &str,
                    flag: Option<String>|
     -> Result<Option<(String, String)>, SettingsError> {
        if let Some(v) = flag {
            return Ok(Some((format!("--{}", key.replace('_', "-")), v)));
        }
        let file = table.as_mut().and_then(|t| t.remove(key));
        if let Some(v) = env(var) {
            return Ok(Some((var.to_string(), v)));
        }
        match file {
            None => Ok(None),
            Some(toml::Value::String(v)) => Ok(Some((key.to_string(), v))),
            Some(toml::Value::Integer(v)) => Ok(Some((key.to_string(), v.to_string()))),
            Some(toml::Value::Float(v)) => Ok(Some((key.to_string(), v.to_string()))),
            Some(other) => Err(SettingsError {
                key: key.to_string(),
                message: format!("expected a string or a number, got {}", other.type_str()),
            }),
        }
    };
    let db = take("db", "FERRICORN_AUTH_DB", flags.db.clone())?;
    let pool = take(
        "db_pool_size",
        "FERRICORN_AUTH_DB_POOL_SIZE",
        flags.pool_size.map(|n| n.to_string()),
    )?;
    let timeout = take(
        "db_connect_timeout",
        "FERRICORN_AUTH_DB_CONNECT_TIMEOUT",
        flags.connect_timeout.map(|t| t.to_string()),
    )?;
    let schema = take("schema", "FERRICORN_AUTH_SCHEMA", flags.schema.clone())?;
    let settings = Settings::load(table.as_ref(), env)?;
    let db = match db {
        Some((key, url)) if postgres::is_url(&url) => {
            let pool_size = match pool {
                Some((key, v)) => v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| SettingsError {
                        key,
                        message: format!(
                            "{v:?} is not a whole number of connections of at least 1"
                        ),
                    })?,
                None => postgres::DEFAULT_POOL_SIZE,
            };
            let connect_timeout = match timeout {
                Some((key, v)) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|t| t.is_finite() && *t > 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| SettingsError {
                        key,
                        message: format!("{v:?} is not a number of seconds above 0"),
                    })?,
                None => postgres::DEFAULT_CONNECT_TIMEOUT,
            };
            let schema = match schema {
                Some((key, v)) => v
                    .parse::<Schema>()
                    .map_err(|message| SettingsError { key, message })?,
                None => Schema::default(),
            };
            if schema == Schema::Django {
                // Django's tables are never altered, and they have no room
                // for a token family or a user's log-out time.
                for (on, name) in [
                    (settings.refresh_reuse_detection, "refresh_reuse_detection"),
                    (settings.revoke_access_on_logout, "revoke_access_on_logout"),
                ] {
                    if on {
                        return Err(SettingsError {
                            key: name.into(),
                            message: "needs ferricorn-auth's own tables (--schema ferricorn): a \
                                      Django project's tables have no column for it and are never altered"
                                .into(),
                        });
                    }
                }
            }
            let options = PgOptions::parse(&url, pool_size, connect_timeout, schema)
                .map_err(|message| SettingsError { key, message })?;
            Database::Postgres(Box::new(options))
        }
        other => {
            if let Some((key, v)) = schema.filter(|(_, v)| v != "ferricorn") {
                return Err(SettingsError {
                    key,
                    message: format!("{v:?} needs a PostgreSQL database (--db postgres://...); the SQLite store has ferricorn-auth's own tables only"),
                });
            }
            Database::Sqlite(PathBuf::from(
                other.map_or_else(|| DEFAULT_DB.to_string(), |(_, v)| v),
            ))
        }
    };
    Ok((settings, db))
}

/// The database file when none is named.
pub const DEFAULT_DB: &str = "ferricorn-auth.sqlite3";

/// The token service as an [`Application`]. Build one per worker process,
/// after the fork: it opens database connections and starts the worker's
/// writer thread and [`PASSWORD_THREADS`] password threads.
#[derive(Clone)]
pub struct AuthApp {
    state: Arc<State>,
    flush_every: Option<Duration>,
}

impl AuthApp {
    /// An application on an embedded store. Without a configured signing
    /// key (HMAC algorithms), the one kept in the store is used, generated
    /// on first start.
    pub fn new(settings: Settings, store: Arc<dyn Store>) -> Result<AuthApp, BoxError> {
        AuthApp::with_db(settings, Db::embedded(store, true)?)
    }

    /// An application on `db` (opened in this process).
    pub fn with_db(settings: Settings, db: Db) -> Result<AuthApp, BoxError> {
        let keys = keys_for(&settings, &db)?;
        let passwords = passwords::Pool::new(PASSWORD_THREADS)
            .map_err(|e| format!("starting the password threads: {e}"))?;
        Ok(AuthApp {
            state: Arc::new(State {
                settings,
                keys,
                store: db,
                passwords,
            }),
            flush_every: None,
        })
    }

    /// An application on the SQLite database at `path` (created if absent).
    pub fn open(settings: Settings, path: &std::path::Path) -> Result<AuthApp, BoxError> {
        let store =
            SqliteStore::open(path).map_err(|e| format!("database {}: {e}", path.display()))?;
        AuthApp::new(settings, Arc::new(store))
    }

    /// An application on `database`, opened in this process (call it in
    /// the worker, after the fork).
    pub fn open_database(settings: Settings, database: &Database) -> Result<AuthApp, BoxError> {
        let db = database
            .open(true)
            .map_err(|e| format!("database {}: {e}", database.display()))?;
        AuthApp::with_db(settings, db)
    }

    /// Deletes expired outstanding and blacklisted tokens every `every`
    /// (`ferricorn-auth flushexpiredtokens` on a timer). With PostgreSQL
    /// one worker of the whole cluster does it each time (the one that
    /// takes an advisory lock; the others skip); with SQLite, one host,
    /// every worker tries and all but the first find nothing to delete.
    pub fn flush_expired_every(mut self, every: Option<Duration>) -> AuthApp {
        self.flush_every = every;
        self
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

    fn on_worker_start(
        &self,
        _worker: &ferricorn_app_interface::WorkerInfo,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        if let Some(every) = self.flush_every {
            tokio::spawn(flush_expired_periodically(Arc::clone(&self.state), every));
        }
        if matches!(self.state.store, Db::Postgres(_)) {
            let state = Arc::clone(&self.state);
            tokio::spawn(async move {
                if let Db::Postgres(pg) = &state.store {
                    pg.warm().await;
                }
            });
        }
        async { Ok(()) }
    }
}

/// The timer of [`AuthApp::flush_expired_every`]; ends with the worker's
/// runtime.
async fn flush_expired_periodically(state: Arc<State>, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = tokens::now() as i64;
        let flushed = match &state.store {
            Db::Postgres(pg) => {
                pg.with_advisory_lock(migrations::FLUSH_LOCK, pg.flush_expired(now))
                    .await
            }
            db => db.flush_expired(now).await.map(Some),
        };
        match flushed {
            Ok(Some(n)) if n > 0 => eprintln!(
                "ferricorn-auth: [{}] flushed {n} expired tokens",
                std::process::id()
            ),
            Ok(_) => {}
            // An outage is logged by the store itself.
            Err(store::StoreError::Unavailable(_)) => {}
            Err(e) => eprintln!("ferricorn-auth: flushing expired tokens: {e}"),
        }
    }
}
