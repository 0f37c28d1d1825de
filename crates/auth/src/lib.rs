//! ferricorn-auth: a JWT token service that answers as
//! djangorestframework-simplejwt 5.5 on Django REST framework 3.18 does, so
//! that clients of a Django deployment can be pointed at it unchanged.
//!
//! It is an [`Application`] ([`AuthApp`]) served by ferricorn's prefork
//! server, with its users and tokens in an embedded SQLite file.
//!
//! Modules:
//! - endpoints, one file each: [`obtain`], [`refresh`], [`verify`],
//!   [`blacklist`], [`protected`] (the `hello` view);
//! - [`tokens`]: claims, encoding, and the checks in simplejwt's order;
//! - [`authentication`]: the `Authorization: Bearer` header → a user;
//! - [`passwords`]: argon2id on a small pool of threads per worker, Django
//!   hashes accepted;
//! - [`settings`]: simplejwt's settings from the config file and environment;
//! - [`store`]: the [`Store`](store::Store) trait and the SQLite store;
//! - [`error`]: [`AuthError`] and its one conversion to a response;
//! - [`drf`], [`pyjson`], [`response`]: the DRF, Django and Python behaviour
//!   clients can observe (content negotiation, parsers, field messages, JSON
//!   text, Django's own pages and security headers), checked against the
//!   real simplejwt by `tests/simplejwt_differential.rs`.
//!
//! What it is not: a user-management API (users are managed with the
//! binary's commands), nor a general JWT library. Sliding tokens and
//! `CHECK_REVOKE_TOKEN` are not implemented.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod authentication;
pub mod blacklist;
pub mod drf;
pub mod error;
pub mod layer;
pub mod obtain;
pub mod passwords;
pub mod protected;
pub mod pyjson;
pub mod refresh;
pub mod response;
pub mod settings;
pub mod store;
pub mod tokens;
pub mod verify;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use http::header::{HeaderValue, ALLOW, LOCATION};
use http::{Method, StatusCode};
use rand::RngCore;

pub use error::AuthError;
use ferricorn_app_interface::{Application, BoxError, Request, Response};
pub use layer::{AuthUser, TokenLayer, TokenService};
use pyjson::Value;
use response::Rendering;
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
        async move { route(&state, request).await }
    }
}

#[derive(Clone, Copy)]
enum View {
    Obtain,
    Refresh,
    Verify,
    Blacklist,
    Hello,
}

impl View {
    fn of(path: &str) -> Option<View> {
        Some(match path {
            "/api/token/" => View::Obtain,
            "/api/token/refresh/" => View::Refresh,
            "/api/token/verify/" => View::Verify,
            "/api/token/blacklist/" => View::Blacklist,
            "/api/hello/" => View::Hello,
            _ => return None,
        })
    }

    fn allow(self) -> &'static str {
        match self {
            // `@api_view` builds this list from a Python set, so Django
            // says "GET, OPTIONS" or "OPTIONS, GET" depending on the
            // interpreter's hash seed; either is DRF's answer.
            View::Hello => "GET, OPTIONS",
            _ => "POST, OPTIONS",
        }
    }
}

async fn route(state: &State, request: Request) -> Response {
    let mut res = dispatch(state, request).await;
    response::add_django_headers(&mut res);
    res
}

async fn dispatch(state: &State, request: Request) -> Response {
    let path = django_path(request.uri().path());
    let Some(view) = View::of(&path) else {
        // Django's APPEND_SLASH: a known path without its slash redirects.
        if View::of(&format!("{path}/")).is_some() {
            let mut location = format!("{}/", escape_uri_path(&path));
            if let Some(q) = request.uri().query().filter(|q| !q.is_empty()) {
                location = format!("{location}?{q}");
            }
            let mut res = response::django_html(StatusCode::MOVED_PERMANENTLY, "");
            if let Ok(v) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(LOCATION, v);
            }
            return res;
        }
        return response::django_html(StatusCode::NOT_FOUND, response::NOT_FOUND_HTML);
    };
    // DRF negotiates the rendering first, before authentication and the
    // method check: an unacceptable `Accept` is a 406 whatever else is
    // wrong. A failed negotiation renders its error as plain JSON.
    let (rendering, result) = match drf::negotiate(request.headers(), request.uri().query()) {
        Err(e) => (Rendering::default(), Err(e)),
        Ok(r) if matches!(view, View::Hello) => (r, hello(state, request).await),
        Ok(r) => (r, token_view(state, view, request).await),
    };
    match result {
        Ok(value) => with_allow(response::drf_json(StatusCode::OK, &value, rendering), view),
        Err(e) if e.is_django_page() => {
            e.into_response(state.settings.www_authenticate_type(), rendering)
        }
        Err(e) => with_allow(
            e.into_response(state.settings.www_authenticate_type(), rendering),
            view,
        ),
    }
}

/// DRF's `Allow` header, on every answer of a view.
fn with_allow(mut res: Response, view: View) -> Response {
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(view.allow()));
    res
}

/// The path as Django's URL resolver sees it: percent-decoded (the WSGI
/// server decodes `PATH_INFO`), read as UTF-8, with bytes that are not
/// UTF-8 percent-encoded again (Django's `repercent_broken_unicode`). So
/// `/api/%68ello/` and `/api/token%2F` reach their views.
fn django_path(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|c| hex(*c)),
            b.get(i + 2).and_then(|c| hex(*c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                bytes.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Django's `escape_uri_path`: the path quoted for a `Location`, keeping
/// `/:@&+$,-_.!~*'()`, letters and digits.
fn escape_uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"/:@&+$,-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

async fn token_view(state: &State, view: View, request: Request) -> Result<Value, AuthError> {
    let (name, description, fields) = match view {
        View::Obtain => (obtain::NAME, obtain::DESCRIPTION, obtain::FIELDS),
        View::Refresh => (refresh::NAME, refresh::DESCRIPTION, refresh::FIELDS),
        View::Verify => (verify::NAME, verify::DESCRIPTION, verify::FIELDS),
        _ => (blacklist::NAME, blacklist::DESCRIPTION, blacklist::FIELDS),
    };
    match *request.method() {
        Method::POST => {
            let data = drf::read_data(request).await?;
            match view {
                View::Obtain => obtain::post(state, data).await,
                View::Refresh => refresh::post(state, data).await,
                View::Verify => verify::post(state, data).await,
                _ => blacklist::post(state, data).await,
            }
        }
        Method::OPTIONS => Ok(drf::metadata(name, description, Some(fields))),
        ref m => Err(AuthError::MethodNotAllowed(m.as_str().to_string())),
    }
}

async fn hello(state: &State, request: Request) -> Result<Value, AuthError> {
    // DRF authenticates and checks permissions before looking at the
    // method: an anonymous POST is a 401, not a 405.
    if authentication::authenticate(state, request.headers())
        .await?
        .is_none()
    {
        return Err(AuthError::NotAuthenticated);
    }
    // `@api_view(["GET"])` lists `get` and `options` only: Django's
    // `View.setup` makes `head` an alias of `get`, but DRF dispatches only
    // the methods listed, so HEAD is a 405 there.
    match *request.method() {
        Method::GET => Ok(protected::get()),
        Method::OPTIONS => Ok(drf::metadata(protected::NAME, protected::DESCRIPTION, None)),
        ref m => Err(AuthError::MethodNotAllowed(m.as_str().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_django_reads_them() {
        assert_eq!(django_path("/api/%68ello/"), "/api/hello/");
        assert_eq!(django_path("/api/token%2F"), "/api/token/");
        assert_eq!(django_path("/a/%C3%A9%FF%zz"), "/a/é%FF%zz");
        assert_eq!(escape_uri_path("/a b/é"), "/a%20b/%C3%A9");
    }
}
