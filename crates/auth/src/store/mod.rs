//! The store: users, outstanding tokens, blacklisted tokens and revoked
//! refresh token families, in an embedded SQLite file ([`SqliteStore`], the
//! default) or in PostgreSQL ([`PgStore`], for several hosts). [`Database`]
//! is where the data lives as configured; [`Db`] is the store a process
//! serves from, whichever it is.
//!
//! The [`Store`] trait is the embedded stores' and is synchronous on purpose: backends are blocking libraries
//! (rusqlite). The endpoints make the short point reads (a user by id, "is
//! this jti blacklisted") inline on the runtime thread: an indexed read on a
//! warm connection takes microseconds, far less than handing it to another
//! thread and back. Writes, which may wait for another process's lock, go
//! to one [`Writer`] thread per worker process as [`WriteOp`]s, so the
//! runtime never waits on a lock and the store may commit several in one
//! transaction.

pub mod postgres;
mod sqlite;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;

pub use postgres::{PgOptions, PgStore, Schema};
pub use sqlite::SqliteStore;
pub use writer::Writer;

/// A user as the token service needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The primary key, from 1.
    pub id: i64,
    /// The unique user name (case-sensitive).
    pub username: String,
    /// The password hash (ours, or Django's `pbkdf2_sha256$`/`argon2$`).
    pub password: String,
    /// Inactive users cannot obtain or refresh tokens.
    pub is_active: bool,
    /// Unix time of the last login, when `UPDATE_LAST_LOGIN` is on.
    pub last_login: Option<i64>,
    /// Unix time of the user's last "log out everywhere"
    /// ([`WriteOp::LogoutUser`]): the caller refuses tokens whose `iat` is
    /// at or before it. Kept in the user's row so that the check costs
    /// nothing beyond the user read every authenticated request already
    /// makes. Always `None` in Django's schema, whose `auth_user` is
    /// Django's and never altered.
    pub tokens_valid_after: Option<i64>,
}

/// A token as recorded in the outstanding list (simplejwt's
/// `OutstandingToken`).
#[derive(Clone, Debug)]
pub struct OutstandingToken {
    /// The token's id claim.
    pub jti: String,
    /// Its user, when the user exists.
    pub user_id: Option<i64>,
    /// The encoded token.
    pub token: String,
    /// Unix time it was recorded.
    pub created_at: i64,
    /// Its `exp`.
    pub expires_at: i64,
    /// The refresh token family it belongs to (a 32-hex id shared by a
    /// login's refresh token and every rotation of it), so that reuse of a
    /// spent member can revoke them all ([`WriteOp::RevokeFamily`]).
    /// `None` for tokens without one. Not stored in Django's schema.
    pub family: Option<String>,
    /// The jti of the refresh token this one replaced by rotation, so that
    /// a retried refresh can find the replacement that won
    /// ([`Store::rotated_to`]). Not stored in Django's schema.
    pub parent: Option<String>,
}

/// What the store knows of a refresh token presented for refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenState {
    /// Not blacklisted, its family (if any) not revoked.
    Live,
    /// The jti is blacklisted (spent by rotation, or blacklisted).
    Blacklisted,
    /// Its family was revoked (reuse detected); wins over `Blacklisted`,
    /// because the caller answers reuse differently from a plain spent
    /// token.
    FamilyRevoked,
}

/// The replacement a rotation recorded for a spent refresh token
/// ([`Store::rotated_to`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The encoded replacement token.
    pub token: String,
    /// Unix time it was recorded.
    pub created_at: i64,
    /// Whether the replacement is itself blacklisted (spent in turn, or
    /// revoked): then it must not be handed out again.
    pub spent: bool,
}

/// A write the request path makes, queued to the [`Writer`] thread.
#[derive(Clone, Debug)]
pub enum WriteOp {
    /// [`Store::add_outstanding`].
    AddOutstanding(OutstandingToken),
    /// [`Store::blacklist`]; answers whether this call blacklisted it.
    Blacklist(OutstandingToken),
    /// A refresh with rotation and blacklisting: blacklist `spent` and, if
    /// that won, record `new` as outstanding; answers whether it won.
    Rotate {
        /// The refresh token being spent.
        spent: OutstandingToken,
        /// Its replacement.
        new: OutstandingToken,
    },
    /// [`Store::set_password`]: user id, new hash.
    SetPassword(i64, String),
    /// [`Store::update_last_login`]: user id, Unix time.
    UpdateLastLogin(i64, i64),
    /// [`Store::revoke_family`]: records the family as revoked, then
    /// blacklists every outstanding member not yet blacklisted; answers
    /// whether this call revoked it.
    RevokeFamily {
        /// The family id.
        family: String,
        /// Its user, when known (kept with the record, for audit).
        user_id: Option<i64>,
        /// Unix time after which the record may be flushed: the latest
        /// `exp` a member can have.
        expires_at: i64,
    },
    /// [`Store::logout_user`]: "log out everywhere" at Unix time `at`.
    /// Answers `true`.
    LogoutUser {
        /// The user.
        user_id: i64,
        /// Tokens issued at or before it are refused from now on.
        at: i64,
    },
}

impl WriteOp {
    /// Applies the op with the store's single-operation methods. The answer
    /// is the `bool` of [`WriteOp::Blacklist`] and [`WriteOp::Rotate`],
    /// `true` for the others.
    pub fn apply_to(&self, store: &(impl Store + ?Sized)) -> Result<bool, StoreError> {
        match self {
            WriteOp::AddOutstanding(t) => store.add_outstanding(t).map(|()| true),
            WriteOp::Blacklist(t) => store.blacklist(t),
            WriteOp::Rotate { spent, new } => {
                if !store.blacklist(spent)? {
                    return Ok(false);
                }
                store.add_outstanding(new).map(|()| true)
            }
            WriteOp::SetPassword(id, hash) => store.set_password(*id, hash).map(|()| true),
            WriteOp::UpdateLastLogin(id, at) => store.update_last_login(*id, *at).map(|()| true),
            WriteOp::RevokeFamily {
                family,
                user_id,
                expires_at,
            } => store.revoke_family(family, *user_id, *expires_at),
            WriteOp::LogoutUser { user_id, at } => store.logout_user(*user_id, *at).map(|()| true),
        }
    }
}

/// A store failure. It is the server's fault: the client sees a 500, or a
/// 503 while the database is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (after retrying while it was busy).
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A PostgreSQL statement failed (not an outage: see `Unavailable`).
    #[error("PostgreSQL: {0}")]
    Postgres(tokio_postgres::Error),
    /// The database cannot serve now (down, restarting, unreachable, out of
    /// connections): a 503 `store_unavailable`, until it is back.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The username is taken (from `create_user`).
    #[error("a user named {0:?} already exists")]
    UsernameTaken(String),
    /// No user by that name (from the admin commands).
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    /// The writer thread is gone (the worker is stopping), or a batch of
    /// writes failed as a whole (the message is the cause).
    #[error("background task failed: {0}")]
    Task(String),
}

/// The operations the token service needs from a store. Every method may be
/// called from many threads and, with the SQLite store, many processes.
pub trait Store: Send + Sync + 'static {
    /// The user with this exact username.
    fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;
    /// The user with this id.
    fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError>;
    /// Creates a user; returns the new id.
    fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_active: bool,
    ) -> Result<i64, StoreError>;
    /// Replaces a user's password hash.
    fn set_password(&self, id: i64, password_hash: &str) -> Result<(), StoreError>;
    /// Sets whether a user is active; `NoSuchUser` when absent.
    fn set_active(&self, username: &str, is_active: bool) -> Result<(), StoreError>;
    /// Records a login time.
    fn update_last_login(&self, id: i64, at: i64) -> Result<(), StoreError>;
    /// All users, by id.
    fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Records a token as outstanding (no-op if its jti is known).
    fn add_outstanding(&self, token: &OutstandingToken) -> Result<(), StoreError>;
    /// Whether a jti is blacklisted.
    fn is_blacklisted(&self, jti: &str) -> Result<bool, StoreError>;
    /// Blacklists a token (recording it as outstanding first if needed).
    /// Returns `false` when it was already blacklisted: this is the atomic
    /// "spend", so of many concurrent calls for one jti exactly one gets
    /// `true`.
    fn blacklist(&self, token: &OutstandingToken) -> Result<bool, StoreError>;
    /// What the store knows of a refresh token, in one read: its family
    /// revoked ([`TokenState::FamilyRevoked`]), else its jti blacklisted
    /// ([`TokenState::Blacklisted`]), else [`TokenState::Live`]. With
    /// `family == None` it answers as [`Store::is_blacklisted`].
    fn token_state(&self, jti: &str, family: Option<&str>) -> Result<TokenState, StoreError>;
    /// The replacement a rotation recorded for the refresh token `jti` (the
    /// outstanding token whose `parent` is `jti`; at most one, since only
    /// one rotation of a token wins), with whether it is blacklisted.
    fn rotated_to(&self, jti: &str) -> Result<Option<Rotation>, StoreError>;
    /// Records `family` as revoked until `expires_at`, then blacklists every
    /// outstanding token of it not yet blacklisted. The record comes first
    /// and has a unique key, so a member recorded concurrently still reads
    /// [`TokenState::FamilyRevoked`]. Returns `false` when the family was
    /// already revoked.
    fn revoke_family(
        &self,
        family: &str,
        user_id: Option<i64>,
        expires_at: i64,
    ) -> Result<bool, StoreError>;
    /// "Log out everywhere" at `at`: raises the user's `tokens_valid_after`
    /// to `at` (never lowers it) and blacklists the user's outstanding
    /// tokens that expire after `at`. An unknown user is not an error.
    fn logout_user(&self, user_id: i64, at: i64) -> Result<(), StoreError>;
    /// Deletes outstanding (and their blacklist) entries expired before
    /// `now`, and the revoked-family records expired by then.
    fn flush_expired(&self, now: i64) -> Result<usize, StoreError>;
    /// The signing key kept in the store, storing `candidate` if there is
    /// none yet. Returns the key and whether `candidate` was stored. Safe when
    /// many workers start at once: all get the same key.
    fn signing_key(&self, candidate: &str) -> Result<(String, bool), StoreError>;

    /// Applies `ops` in order, one answer each (see [`WriteOp::apply_to`]).
    /// The [`Writer`] thread hands over every op queued at once; a store
    /// may commit them in one transaction (each op still all or nothing),
    /// and must answer only once they are durable. The default applies them
    /// one by one.
    fn apply_writes(&self, ops: &[WriteOp]) -> Vec<Result<bool, StoreError>> {
        ops.iter().map(|op| op.apply_to(self)).collect()
    }

    /// Called by the [`Writer`] thread when its queue is empty: a moment for
    /// housekeeping off the request path (the SQLite store checkpoints its
    /// write-ahead log). The default does nothing.
    fn idle(&self) {}
}

/// Where the data lives, as configured by `--db`, `FERRICORN_AUTH_DB` or
/// `db` in the `[auth]` table: a `postgres://` URL, else a SQLite file.
#[derive(Clone, Debug)]
pub enum Database {
    /// The embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(Box<PgOptions>),
}

impl Database {
    /// The database as it may be printed (a URL without its password).
    pub fn display(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(o) => o.display.clone(),
        }
    }

    /// Opens the store in this process. Call it after the fork (in each
    /// worker): a SQLite connection must never cross a fork, and a
    /// PostgreSQL connection is a task of the runtime it was made on (the
    /// pool connects on first use). `writer`: start the writer thread of an
    /// embedded store (the service); without it, writes are made on the
    /// calling thread (the admin commands, the token layer).
    pub fn open(&self, writer: bool) -> Result<Db, StoreError> {
        match self {
            Database::Sqlite(path) => {
                let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path)?);
                Db::embedded(store, writer)
            }
            Database::Postgres(options) => {
                Ok(Db::Postgres(Box::new(PgStore::new((**options).clone())?)))
            }
        }
    }
}

/// The store a process serves from. Its methods are async: the embedded
/// stores answer reads inline and send writes to the [`Writer`] thread;
/// PostgreSQL's pool awaits the server.
pub enum Db {
    /// A synchronous [`Store`] (SQLite).
    Embedded {
        /// The store.
        store: Arc<dyn Store>,
        /// The writer thread; `None`: writes on the calling thread.
        writer: Option<Writer>,
    },
    /// PostgreSQL.
    Postgres(Box<PgStore>),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Db::Embedded { .. } => f.write_str("Db::Embedded"),
            Db::Postgres(pg) => f.debug_tuple("Db::Postgres").field(pg).finish(),
        }
    }
}

impl Db {
    /// An embedded store, with its writer thread when `writer`.
    pub fn embedded(store: Arc<dyn Store>, writer: bool) -> Result<Db, StoreError> {
        let writer = if writer {
            Some(
                Writer::new(Arc::clone(&store))
                    .map_err(|e| StoreError::Task(format!("starting the writer thread: {e}")))?,
            )
        } else {
            None
        };
        Ok(Db::Embedded { store, writer })
    }

    /// Whether the users are a Django project's own (`--schema django`):
    /// their hashes stay in the format of Django's default hasher, which
    /// every Django reads, so they are never upgraded to ours.
    pub fn keeps_django_hashes(&self) -> bool {
        matches!(self, Db::Postgres(pg) if pg.options().schema == Schema::Django)
    }

    /// The password hash to store for `password`: ours (argon2id), or in a
    /// Django table Django's default (PBKDF2-SHA256). Slow on purpose: call
    /// it off the runtime (the admin commands).
    pub fn hash_password(&self, password: &str) -> String {
        if self.keeps_django_hashes() {
            crate::passwords::hash_django_pbkdf2(password)
        } else {
            crate::passwords::hash(password)
        }
    }

    /// The user with this exact username.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        match self {
            Db::Embedded { store, .. } => store.user_by_username(username),
            Db::Postgres(pg) => pg.user_by_username(username).await,
        }
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        match self {
            Db::Embedded { store, .. } => store.user_by_id(id),
            Db::Postgres(pg) => pg.user_by_id(id).await,
        }
    }

    /// Whether a jti is blacklisted.
    pub async fn is_blacklisted(&self, jti: &str) -> Result<bool, StoreError> {
        match self {
            Db::Embedded { store, .. } => store.is_blacklisted(jti),
            Db::Postgres(pg) => pg.is_blacklisted(jti).await,
        }
    }

    /// What the store knows of a refresh token; see [`Store::token_state`].
    pub async fn token_state(
        &self,
        jti: &str,
        family: Option<&str>,
    ) -> Result<TokenState, StoreError> {
        match self {
            Db::Embedded { store, .. } => store.token_state(jti, family),
            Db::Postgres(pg) => pg.token_state(jti, family).await,
        }
    }

    /// The replacement a rotation recorded for `jti`; see
    /// [`Store::rotated_to`].
    pub async fn rotated_to(&self, jti: &str) -> Result<Option<Rotation>, StoreError> {
        match self {
            Db::Embedded { store, .. } => store.rotated_to(jti),
            Db::Postgres(pg) => pg.rotated_to(jti).await,
        }
    }

    /// Applies a write; see [`WriteOp::apply_to`] for the answer. Answers
    /// once it is durable.
    pub async fn write(&self, op: WriteOp) -> Result<bool, StoreError> {
        match self {
            Db::Embedded {
                writer: Some(w), ..
            } => w.write(op).await,
            Db::Embedded { store, .. } => op.apply_to(&**store),
            Db::Postgres(pg) => pg.write(&op).await,
        }
    }

    /// Creates a user; returns the new id.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_active: bool,
    ) -> Result<i64, StoreError> {
        match self {
            Db::Embedded { store, .. } => store.create_user(username, password_hash, is_active),
            Db::Postgres(pg) => pg.create_user(username, password_hash, is_active).await,
        }
    }

    /// Sets whether a user is active; `NoSuchUser` when absent.
    pub async fn set_active(&self, username: &str, is_active: bool) -> Result<(), StoreError> {
        match self {
            Db::Embedded { store, .. } => store.set_active(username, is_active),
            Db::Postgres(pg) => pg.set_active(username, is_active).await,
        }
    }

    /// All users, by id.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        match self {
            Db::Embedded { store, .. } => store.list_users(),
            Db::Postgres(pg) => pg.list_users().await,
        }
    }

    /// Deletes outstanding (and their blacklist) entries expired before
    /// `now`, and the revoked-family records expired by then; how many
    /// outstanding entries went.
    pub async fn flush_expired(&self, now: i64) -> Result<usize, StoreError> {
        match self {
            Db::Embedded { store, .. } => store.flush_expired(now),
            Db::Postgres(pg) => pg.flush_expired(now).await,
        }
    }
}
