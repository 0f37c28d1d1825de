//! [`SqliteStore`]: the embedded store, one SQLite file shared by every
//! worker process.
//!
//! Many processes write at once, so: WAL mode (readers never block the
//! writer, nor it them), writes in `BEGIN IMMEDIATE` transactions (a
//! deferred transaction that upgrades to a write can fail with `SQLITE_BUSY`
//! at once, without waiting), a busy handler that waits for another
//! process's write lock, and a retry around every operation on top of it,
//! so that "database is locked" never reaches a client. Spending a refresh
//! token is an `INSERT OR IGNORE` into a table whose `jti` is unique: SQLite
//! serializes writers, so exactly one insert changes a row.
//!
//! Each store keeps one write connection, so writes within a process are
//! serialized here rather than by SQLite's file lock (in the service, one
//! [`Writer`](super::Writer) thread makes them all), and a few read
//! connections for the point reads requests make inline. Statements are
//! prepared once per connection (`prepare_cached`).
//!
//! A file made by an older version is upgraded in place as it is opened:
//! the columns it lacks are added in the same `BEGIN IMMEDIATE`
//! transaction that creates the tables, after looking again at what the
//! file holds, so of several workers opening it at once one upgrades and
//! the others find nothing left to do.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use super::{OutstandingToken, Rotation, Store, StoreError, TokenState, User, WriteOp};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    last_login INTEGER,
    date_joined INTEGER NOT NULL,
    tokens_valid_after INTEGER
);
CREATE TABLE IF NOT EXISTS outstanding_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    jti TEXT NOT NULL UNIQUE,
    user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    token TEXT NOT NULL,
    created_at INTEGER,
    expires_at INTEGER NOT NULL,
    family TEXT,
    parent TEXT
);
CREATE TABLE IF NOT EXISTS blacklisted_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    jti TEXT NOT NULL UNIQUE REFERENCES outstanding_tokens(jti) ON DELETE CASCADE,
    blacklisted_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_families (
    family TEXT PRIMARY KEY,
    user_id INTEGER,
    revoked_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
";

/// Columns added since the first version: (table, column, type). A file
/// made before them gets them on open ([`upgrade`]); [`SCHEMA`] has them
/// for a new file.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("users", "tokens_valid_after", "INTEGER"),
    ("outstanding_tokens", "family", "TEXT"),
    ("outstanding_tokens", "parent", "TEXT"),
];

/// Indexes made after [`upgrade`], since some are on added columns. Family
/// and parent are partial: most tokens have neither, and only lookups by a
/// value use them. `user_id` serves "log out everywhere".
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS outstanding_tokens_family ON outstanding_tokens (family)
    WHERE family IS NOT NULL;
CREATE INDEX IF NOT EXISTS outstanding_tokens_parent ON outstanding_tokens (parent)
    WHERE parent IS NOT NULL;
CREATE INDEX IF NOT EXISTS outstanding_tokens_user_id ON outstanding_tokens (user_id);
";

/// Tokens deleted per transaction by `flush_expired`.
const FLUSH_BATCH: usize = 1000;
/// How long one attempt waits for a lock before SQLite reports busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a busy operation is retried before it is an error.
const RETRIES: u32 = 10;
/// The write-ahead log is checkpointed when the writer is idle and this
/// long has passed since the last checkpoint...
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// ...and, as a backstop under a load that never lets the writer idle, by
/// SQLite itself at commit once the log holds this many pages (4 KiB each).
const AUTOCHECKPOINT_PAGES: u32 = 8192;

/// The SQLite store. Holds one write connection and a small pool of read
/// connections; open it in each worker process (never before the fork).
pub struct SqliteStore {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writer: Mutex<Option<Connection>>,
    checkpoint: Mutex<Checkpoint>,
}

/// When the write-ahead log was last checkpointed, and whether anything was
/// committed since.
struct Checkpoint {
    at: Instant,
    dirty: bool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// SQLite's busy handler: called while another connection (in practice
/// another worker process) holds the lock we need; `true` tries again.
/// SQLite offers no blocking wait on its file locks, so this polls, but in
/// short steps: its default handler sleeps 1, 2, 5, 10... up to 100 ms,
/// which leaves a process that backed off far behind one that keeps
/// committing. Short polls hand the lock over within ~0.2 ms.
fn busy_wait(attempt: i32) -> bool {
    const FAST: i32 = 50; // 50 × 0.1 ms
    let step = if attempt < FAST {
        Duration::from_micros(100)
    } else {
        Duration::from_millis(1)
    };
    let waited = Duration::from_micros(100) * attempt.min(FAST) as u32
        + Duration::from_millis(1) * (attempt - FAST).max(0) as u32;
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(step);
    true
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One error for each op of a batch whose transaction failed.
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Db(rusqlite::Error::SqliteFailure(code, msg)) => {
            StoreError::Db(rusqlite::Error::SqliteFailure(*code, msg.clone()))
        }
        other => StoreError::Task(other.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its tables.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let store = SqliteStore {
            path: path.as_ref().to_path_buf(),
            readers: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
            checkpoint: Mutex::new(Checkpoint {
                at: Instant::now(),
                dirty: false,
            }),
        };
        // One immediate transaction: another worker opening the file at the
        // same moment waits for it, then sees the upgraded tables.
        store.write(|tx| {
            tx.execute_batch(SCHEMA)?;
            upgrade(tx)?;
            tx.execute_batch(INDEXES)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn connect(&self, write: bool) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open(&self.path)?;
        conn.busy_handler(Some(busy_wait))?;
        conn.set_prepared_statement_cache_capacity(32);
        // Switching to WAL needs a moment of exclusive access; retried by the
        // caller when another process holds the file.
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
        // synchronous=NORMAL in WAL mode: a commit is not fsynced, the log
        // is at checkpoints. The database cannot be corrupted by a crash or
        // power loss; at worst the last commits before a power loss are lost
        // (a process crash loses nothing). For tokens that is a refresh
        // token issued just before the outage, or a blacklisting to redo.
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
        if write {
            // Checkpoints are made off the request path (`idle`); SQLite's
            // own, on the commit path, only past this backstop.
            conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES)?;
        }
        Ok(conn)
    }

    /// Runs `f` on the write connection or on a pooled read connection,
    /// retrying while the database is busy.
    fn with_retry<T>(
        &self,
        write: bool,
        mut f: impl FnMut(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut attempt = 0;
        loop {
            let result = if write {
                self.on_writer(&mut f)
            } else {
                self.on_reader(&mut f)
            };
            match result {
                Err(StoreError::Db(e)) if is_busy(&e) && attempt < RETRIES => {
                    // The busy handler has already waited; this covers the
                    // cases where SQLite reports busy without calling it.
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(u64::from(attempt)));
                }
                other => return other,
            }
        }
    }

    fn on_writer<T>(
        &self,
        f: &mut impl FnMut(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(self.connect(true)?);
        }
        let conn = slot.as_mut().expect("connected above");
        f(conn)
    }

    fn on_reader<T>(
        &self,
        f: &mut impl FnMut(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // The lock is held only to take or return a connection, never while
        // it is used.
        let pooled = self.readers.lock().map(|mut p| p.pop()).unwrap_or(None);
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect(false)?,
        };
        let r = f(&mut conn);
        if let Ok(mut p) = self.readers.lock() {
            p.push(conn);
        }
        r
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, retried while busy.
    fn write<T>(
        &self,
        mut f: impl FnMut(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let r = self.with_retry(true, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let v = f(&tx)?;
            tx.commit()?;
            Ok(v)
        });
        if r.is_ok() {
            if let Ok(mut c) = self.checkpoint.lock() {
                c.dirty = true;
            }
        }
        r
    }

    /// A point read on a read connection.
    fn read_one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params + Copy,
        row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        self.with_retry(false, |c| {
            Ok(c.prepare_cached(sql)?.query_row(params, &row).optional()?)
        })
    }
}

/// Adds the [`ADDED_COLUMNS`] the file lacks. Called inside the opening
/// transaction, so the check and the change see the same schema.
fn upgrade(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    for (table, column, kind) in ADDED_COLUMNS {
        let has: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            [table, column],
            |r| r.get(0),
        )?;
        if !has {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

fn row_to_user(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        password: row.get(2)?,
        is_active: row.get(3)?,
        last_login: row.get(4)?,
        tokens_valid_after: row.get(5)?,
    })
}

fn insert_outstanding(
    tx: &rusqlite::Transaction<'_>,
    t: &OutstandingToken,
) -> rusqlite::Result<()> {
    // A token of a deleted user (or an external one) is kept without user.
    tx.prepare_cached(
        "INSERT OR IGNORE INTO outstanding_tokens
         (jti, user_id, token, created_at, expires_at, family, parent)
         VALUES (?1, (SELECT id FROM users WHERE id = ?2), ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        t.jti,
        t.user_id,
        t.token,
        t.created_at,
        t.expires_at,
        t.family,
        t.parent
    ])?;
    Ok(())
}

/// Blacklists `t`; whether this call did.
fn insert_blacklisted(
    tx: &rusqlite::Transaction<'_>,
    t: &OutstandingToken,
) -> rusqlite::Result<bool> {
    insert_outstanding(tx, t)?;
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO blacklisted_tokens (jti, blacklisted_at) VALUES (?1, ?2)",
        )?
        .execute(params![t.jti, unix_now()])?;
    Ok(n == 1)
}

fn set_password(tx: &rusqlite::Transaction<'_>, id: i64, hash: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE users SET password = ?1 WHERE id = ?2")?
        .execute(params![hash, id])?;
    Ok(())
}

fn update_last_login(tx: &rusqlite::Transaction<'_>, id: i64, at: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE users SET last_login = ?1 WHERE id = ?2")?
        .execute(params![at, id])?;
    Ok(())
}

/// Records `family` as revoked, then blacklists its members; whether this
/// call revoked it. The members are swept even when it was revoked before:
/// one recorded since then is caught too (it already reads
/// `FamilyRevoked`, this makes it blacklisted as well).
fn revoke_family(
    tx: &rusqlite::Transaction<'_>,
    family: &str,
    user_id: Option<i64>,
    expires_at: i64,
) -> rusqlite::Result<bool> {
    let now = unix_now();
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO revoked_families (family, user_id, revoked_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![family, user_id, now, expires_at])?;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO blacklisted_tokens (jti, blacklisted_at)
         SELECT jti, ?2 FROM outstanding_tokens WHERE family = ?1",
    )?
    .execute(params![family, now])?;
    Ok(n == 1)
}

/// Raises the user's `tokens_valid_after` to `at` and blacklists the user's
/// tokens still valid after `at`.
fn logout_user(tx: &rusqlite::Transaction<'_>, user_id: i64, at: i64) -> rusqlite::Result<()> {
    // Two-argument max() is NULL if either is: coalesce first.
    tx.prepare_cached(
        "UPDATE users SET tokens_valid_after = max(coalesce(tokens_valid_after, ?2), ?2)
         WHERE id = ?1",
    )?
    .execute(params![user_id, at])?;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO blacklisted_tokens (jti, blacklisted_at)
         SELECT jti, ?3 FROM outstanding_tokens WHERE user_id = ?1 AND expires_at > ?2",
    )?
    .execute(params![user_id, at, unix_now()])?;
    Ok(())
}

/// One op of a batch, inside its transaction.
fn apply(tx: &rusqlite::Transaction<'_>, op: &WriteOp) -> rusqlite::Result<bool> {
    match op {
        WriteOp::AddOutstanding(t) => insert_outstanding(tx, t).map(|()| true),
        WriteOp::Blacklist(t) => insert_blacklisted(tx, t),
        WriteOp::Rotate { spent, new } => {
            if !insert_blacklisted(tx, spent)? {
                return Ok(false);
            }
            insert_outstanding(tx, new).map(|()| true)
        }
        WriteOp::SetPassword(id, hash) => set_password(tx, *id, hash).map(|()| true),
        WriteOp::UpdateLastLogin(id, at) => update_last_login(tx, *id, *at).map(|()| true),
        WriteOp::RevokeFamily {
            family,
            user_id,
            expires_at,
        } => revoke_family(tx, family, *user_id, *expires_at),
        WriteOp::LogoutUser { user_id, at } => logout_user(tx, *user_id, *at).map(|()| true),
    }
}

const USER_BY_USERNAME: &str =
    "SELECT id, username, password, is_active, last_login, tokens_valid_after
     FROM users WHERE username = ?1";
const USER_BY_ID: &str = "SELECT id, username, password, is_active, last_login, tokens_valid_after
     FROM users WHERE id = ?1";
/// The family check first: a revoked family answers `FamilyRevoked` even
/// for a jti that is also blacklisted. With no family, `?2 IS NOT NULL`
/// skips the family lookup.
const TOKEN_STATE: &str = "SELECT CASE
     WHEN ?2 IS NOT NULL AND EXISTS (SELECT 1 FROM revoked_families WHERE family = ?2) THEN 2
     WHEN EXISTS (SELECT 1 FROM blacklisted_tokens WHERE jti = ?1) THEN 1
     ELSE 0 END";
/// `parent = ?1` implies `parent IS NOT NULL`, so the partial index serves
/// it.
const ROTATED_TO: &str = "SELECT o.token, coalesce(o.created_at, 0),
     EXISTS (SELECT 1 FROM blacklisted_tokens b WHERE b.jti = o.jti)
     FROM outstanding_tokens o WHERE o.parent = ?1 ORDER BY o.id LIMIT 1";

impl Store for SqliteStore {
    fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.read_one(USER_BY_USERNAME, [username], row_to_user)
    }

    fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.read_one(USER_BY_ID, [id], row_to_user)
    }

    fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_active: bool,
    ) -> Result<i64, StoreError> {
        self.write(|tx| {
            let n = tx.prepare_cached(
                "INSERT OR IGNORE INTO users (username, password, is_active, date_joined) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![username, password_hash, is_active, unix_now()])?;
            if n == 0 {
                return Err(StoreError::UsernameTaken(username.to_string()));
            }
            Ok(tx.last_insert_rowid())
        })
    }

    fn set_password(&self, id: i64, password_hash: &str) -> Result<(), StoreError> {
        self.write(|tx| Ok(set_password(tx, id, password_hash)?))
    }

    fn set_active(&self, username: &str, is_active: bool) -> Result<(), StoreError> {
        self.write(|tx| {
            let n = tx
                .prepare_cached("UPDATE users SET is_active = ?1 WHERE username = ?2")?
                .execute(params![is_active, username])?;
            if n == 0 {
                return Err(StoreError::NoSuchUser(username.to_string()));
            }
            Ok(())
        })
    }

    fn update_last_login(&self, id: i64, at: i64) -> Result<(), StoreError> {
        self.write(|tx| Ok(update_last_login(tx, id, at)?))
    }

    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.with_retry(false, |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, username, password, is_active, last_login, tokens_valid_after
                 FROM users ORDER BY id",
            )?;
            let users = stmt
                .query_map([], row_to_user)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(users)
        })
    }

    fn add_outstanding(&self, token: &OutstandingToken) -> Result<(), StoreError> {
        self.write(|tx| Ok(insert_outstanding(tx, token)?))
    }

    fn is_blacklisted(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self
            .read_one(
                "SELECT 1 FROM blacklisted_tokens WHERE jti = ?1",
                [jti],
                |_| Ok(()),
            )?
            .is_some())
    }

    fn blacklist(&self, token: &OutstandingToken) -> Result<bool, StoreError> {
        self.write(|tx| Ok(insert_blacklisted(tx, token)?))
    }

    fn token_state(&self, jti: &str, family: Option<&str>) -> Result<TokenState, StoreError> {
        let state: i64 = self
            .read_one(TOKEN_STATE, params![jti, family], |r| r.get(0))?
            .unwrap_or(0);
        Ok(match state {
            2 => TokenState::FamilyRevoked,
            1 => TokenState::Blacklisted,
            _ => TokenState::Live,
        })
    }

    fn rotated_to(&self, jti: &str) -> Result<Option<Rotation>, StoreError> {
        self.read_one(ROTATED_TO, [jti], |r| {
            Ok(Rotation {
                token: r.get(0)?,
                created_at: r.get(1)?,
                spent: r.get(2)?,
            })
        })
    }

    fn revoke_family(
        &self,
        family: &str,
        user_id: Option<i64>,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.write(|tx| Ok(revoke_family(tx, family, user_id, expires_at)?))
    }

    fn logout_user(&self, user_id: i64, at: i64) -> Result<(), StoreError> {
        self.write(|tx| Ok(logout_user(tx, user_id, at)?))
    }

    /// In transactions of [`FLUSH_BATCH`] tokens, so that logins and
    /// refreshes of the other workers wait for the write lock only briefly.
    fn flush_expired(&self, now: i64) -> Result<usize, StoreError> {
        // Few rows (one per reuse detected): one statement.
        self.write(|tx| {
            Ok(tx
                .prepare_cached("DELETE FROM revoked_families WHERE expires_at <= ?1")?
                .execute([now])?)
        })?;
        let mut total = 0;
        loop {
            let n = self.write(|tx| {
                tx.prepare_cached(
                    "CREATE TEMP TABLE IF NOT EXISTS flush (jti TEXT PRIMARY KEY)",
                )?
                .execute([])?;
                tx.prepare_cached("DELETE FROM temp.flush")?.execute([])?;
                tx.prepare_cached(
                    "INSERT INTO temp.flush SELECT jti FROM outstanding_tokens WHERE expires_at <= ?1 LIMIT ?2",
                )?
                .execute(params![now, FLUSH_BATCH])?;
                tx.prepare_cached(
                    "DELETE FROM blacklisted_tokens WHERE jti IN (SELECT jti FROM temp.flush)",
                )?
                .execute([])?;
                Ok(tx
                    .prepare_cached(
                        "DELETE FROM outstanding_tokens WHERE jti IN (SELECT jti FROM temp.flush)",
                    )?
                    .execute([])?)
            })?;
            total += n;
            if n < FLUSH_BATCH {
                return Ok(total);
            }
        }
    }

    fn signing_key(&self, candidate: &str) -> Result<(String, bool), StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('signing_key', ?1)",
                [candidate],
            )?;
            let key: String = tx.query_row(
                "SELECT value FROM meta WHERE key = 'signing_key'",
                [],
                |r| r.get(0),
            )?;
            Ok((key, n == 1))
        })
    }

    /// One transaction for the whole batch, one savepoint per op: an op that
    /// fails is rolled back alone and answered with its error; the others
    /// are answered once the transaction has committed. A busy database
    /// retries the whole batch (the ops are data, so they can be rerun).
    fn apply_writes(&self, ops: &[WriteOp]) -> Vec<Result<bool, StoreError>> {
        let batch = self.write(|tx| {
            let mut results = Vec::with_capacity(ops.len());
            for op in ops {
                tx.execute_batch("SAVEPOINT op")?;
                match apply(tx, op) {
                    Ok(v) => {
                        tx.execute_batch("RELEASE op")?;
                        results.push(Ok(v));
                    }
                    // Busy mid-transaction: retry the batch.
                    Err(e) if is_busy(&e) => return Err(e.into()),
                    Err(e) => {
                        tx.execute_batch("ROLLBACK TO op; RELEASE op")?;
                        results.push(Err(StoreError::from(e)));
                    }
                }
            }
            Ok(results)
        });
        match batch {
            Ok(results) => results,
            Err(e) => ops.iter().map(|_| Err(copy_error(&e))).collect(),
        }
    }

    /// Checkpoints the write-ahead log (passively: it waits for no reader
    /// or writer) when something was committed and the last checkpoint is
    /// [`CHECKPOINT_EVERY`] old, so that the copy into the database file
    /// and its fsync are not made on a commit that a request waits for.
    fn idle(&self) {
        let Ok(mut c) = self.checkpoint.lock() else {
            return;
        };
        if !c.dirty || c.at.elapsed() < CHECKPOINT_EVERY {
            return;
        }
        let done = self.on_writer(&mut |conn| {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
            Ok(())
        });
        if done.is_ok() {
            *c = Checkpoint {
                at: Instant::now(),
                dirty: false,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(jti: &str) -> OutstandingToken {
        OutstandingToken {
            jti: jti.into(),
            user_id: Some(1),
            token: "t".into(),
            created_at: 0,
            expires_at: 10,
            family: None,
            parent: None,
        }
    }

    #[test]
    fn users_and_blacklist() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path().join("db.sqlite3")).unwrap();
        assert_eq!(s.create_user("alice", "h", true).unwrap(), 1);
        assert!(matches!(
            s.create_user("alice", "h", true),
            Err(StoreError::UsernameTaken(_))
        ));
        assert_eq!(s.create_user("bob", "h", false).unwrap(), 2);
        assert_eq!(s.user_by_username("alice").unwrap().unwrap().id, 1);
        assert!(s.user_by_username("Alice").unwrap().is_none());
        assert!(s.blacklist(&tok("a")).unwrap());
        assert!(!s.blacklist(&tok("a")).unwrap());
        assert!(s.is_blacklisted("a").unwrap());
        assert_eq!(s.flush_expired(100).unwrap(), 1);
        // More than one batch, and nothing unexpired.
        for i in 0..2500 {
            s.add_outstanding(&tok(&format!("e{i}"))).unwrap();
        }
        s.add_outstanding(&OutstandingToken {
            expires_at: 1000,
            ..tok("live")
        })
        .unwrap();
        assert!(s.blacklist(&tok("e7")).unwrap());
        assert_eq!(s.flush_expired(100).unwrap(), 2500);
        assert!(!s.is_blacklisted("e7").unwrap());
        assert_eq!(s.flush_expired(100).unwrap(), 0);
        assert_eq!(s.flush_expired(1000).unwrap(), 1);
        let (k1, new1) = s.signing_key("one").unwrap();
        let (k2, new2) = s.signing_key("two").unwrap();
        assert_eq!(
            (k1.as_str(), new1, k2.as_str(), new2),
            ("one", true, "one", false)
        );
    }

    #[test]
    fn concurrent_spend_has_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        SqliteStore::open(&path).unwrap();
        let wins: usize = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..16)
                .map(|_| {
                    let path = path.clone();
                    // Separate stores: separate connections, as separate workers.
                    sc.spawn(move || {
                        SqliteStore::open(path)
                            .unwrap()
                            .blacklist(&tok("x"))
                            .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
        });
        assert_eq!(wins, 1);
    }

    #[test]
    fn a_batch_spends_a_token_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path().join("db.sqlite3")).unwrap();
        let rotate = |new: &str| WriteOp::Rotate {
            spent: tok("old"),
            new: tok(new),
        };
        let results: Vec<bool> = s
            .apply_writes(&[rotate("a"), rotate("b"), WriteOp::AddOutstanding(tok("c"))])
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(results, [true, false, true]);
        assert!(s.is_blacklisted("old").unwrap());
        let known: Vec<String> = s
            .with_retry(false, |c| {
                let mut st = c.prepare("SELECT jti FROM outstanding_tokens ORDER BY jti")?;
                let v = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
                Ok(v)
            })
            .unwrap();
        // The loser's replacement was never recorded.
        assert_eq!(known, ["a", "c", "old"]);
    }

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path().join("db.sqlite3")).unwrap();
        (dir, s)
    }

    fn member(jti: &str, family: &str) -> OutstandingToken {
        OutstandingToken {
            family: Some(family.into()),
            expires_at: 1000,
            ..tok(jti)
        }
    }

    fn revoke(family: &str, expires_at: i64) -> WriteOp {
        WriteOp::RevokeFamily {
            family: family.into(),
            user_id: Some(1),
            expires_at,
        }
    }

    #[test]
    fn token_state_ranks_a_revoked_family_over_a_blacklisted_jti() {
        let (_dir, s) = open();
        s.add_outstanding(&member("a", "f1")).unwrap();
        s.add_outstanding(&member("b", "f1")).unwrap();
        assert_eq!(s.token_state("a", Some("f1")).unwrap(), TokenState::Live);
        assert_eq!(s.token_state("a", None).unwrap(), TokenState::Live);
        assert!(s.blacklist(&member("a", "f1")).unwrap());
        assert_eq!(
            s.token_state("a", Some("f1")).unwrap(),
            TokenState::Blacklisted
        );
        assert_eq!(s.token_state("a", None).unwrap(), TokenState::Blacklisted);
        assert_eq!(s.token_state("b", Some("f1")).unwrap(), TokenState::Live);
        assert!(revoke("f1", 1000).apply_to(&s).unwrap());
        for jti in ["a", "b"] {
            assert_eq!(
                s.token_state(jti, Some("f1")).unwrap(),
                TokenState::FamilyRevoked
            );
        }
        // Without its family, the jti alone answers (as is_blacklisted).
        assert_eq!(s.token_state("b", None).unwrap(), TokenState::Blacklisted);
        assert_eq!(s.token_state("unknown", None).unwrap(), TokenState::Live);
    }

    #[test]
    fn revoking_a_family_blacklists_every_member_once() {
        let (_dir, s) = open();
        for jti in ["a", "b", "c"] {
            s.add_outstanding(&member(jti, "f1")).unwrap();
        }
        s.add_outstanding(&member("other", "f2")).unwrap();
        assert!(s.blacklist(&member("a", "f1")).unwrap());
        // Through the batch path, as the writer thread applies it.
        let answers: Vec<bool> = s
            .apply_writes(&[revoke("f1", 1000), revoke("f1", 1000)])
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(answers, [true, false]);
        assert!(!s.revoke_family("f1", None, 1000).unwrap());
        for jti in ["a", "b", "c"] {
            assert!(s.is_blacklisted(jti).unwrap(), "{jti}");
        }
        assert!(!s.is_blacklisted("other").unwrap());
        assert_eq!(
            s.token_state("other", Some("f2")).unwrap(),
            TokenState::Live
        );
    }

    #[test]
    fn a_member_recorded_after_the_revocation_reads_revoked() {
        let (_dir, s) = open();
        assert!(s.revoke_family("f1", Some(1), 1000).unwrap());
        s.add_outstanding(&member("late", "f1")).unwrap();
        assert!(!s.is_blacklisted("late").unwrap());
        assert_eq!(
            s.token_state("late", Some("f1")).unwrap(),
            TokenState::FamilyRevoked
        );
        // A second revocation sweeps it too.
        assert!(!s.revoke_family("f1", Some(1), 1000).unwrap());
        assert!(s.is_blacklisted("late").unwrap());
    }

    #[test]
    fn logging_out_everywhere_raises_the_mark_and_blacklists_live_tokens() {
        let (_dir, s) = open();
        let alice = s.create_user("alice", "h", true).unwrap();
        let bob = s.create_user("bob", "h", true).unwrap();
        let of = |jti: &str, user: i64, expires_at: i64| OutstandingToken {
            user_id: Some(user),
            expires_at,
            ..tok(jti)
        };
        s.add_outstanding(&of("a-live", alice, 500)).unwrap();
        s.add_outstanding(&of("a-expired", alice, 100)).unwrap();
        s.add_outstanding(&of("b-live", bob, 500)).unwrap();
        assert_eq!(
            s.user_by_id(alice).unwrap().unwrap().tokens_valid_after,
            None
        );

        let logout = |at| WriteOp::LogoutUser { user_id: alice, at };
        assert!(logout(200).apply_to(&s).unwrap());
        let valid_after = |id| s.user_by_id(id).unwrap().unwrap().tokens_valid_after;
        assert_eq!(valid_after(alice), Some(200));
        assert_eq!(valid_after(bob), None);
        assert!(s.is_blacklisted("a-live").unwrap());
        assert!(!s.is_blacklisted("a-expired").unwrap());
        assert!(!s.is_blacklisted("b-live").unwrap());
        // Never lowered, in the batch path too.
        assert_eq!(s.apply_writes(&[logout(150)])[0].as_ref().unwrap(), &true);
        assert_eq!(valid_after(alice), Some(200));
        assert!(logout(300).apply_to(&s).unwrap());
        assert_eq!(valid_after(alice), Some(300));
        let listed = s.list_users().unwrap();
        assert_eq!(listed[0].tokens_valid_after, Some(300));
        assert_eq!(
            s.user_by_username("alice")
                .unwrap()
                .unwrap()
                .tokens_valid_after,
            Some(300)
        );
        // An unknown user, or one without tokens: nothing happens.
        assert!(WriteOp::LogoutUser { user_id: 99, at: 1 }
            .apply_to(&s)
            .unwrap());
    }

    #[test]
    fn rotated_to_finds_the_replacement_that_won() {
        let (_dir, s) = open();
        let old = member("old", "f1");
        let new = OutstandingToken {
            token: "new-token".into(),
            created_at: 42,
            parent: Some("old".into()),
            ..member("new", "f1")
        };
        s.add_outstanding(&old).unwrap();
        assert_eq!(s.rotated_to("old").unwrap(), None);
        let rotate = |new: &OutstandingToken| WriteOp::Rotate {
            spent: old.clone(),
            new: new.clone(),
        };
        assert!(rotate(&new).apply_to(&s).unwrap());
        // A losing rotation records nothing.
        let loser = OutstandingToken {
            token: "loser".into(),
            ..member("new2", "f1")
        };
        assert!(!s.apply_writes(&[rotate(&loser)])[0].as_ref().unwrap());
        let expected = Rotation {
            token: "new-token".into(),
            created_at: 42,
            spent: false,
        };
        assert_eq!(s.rotated_to("old").unwrap(), Some(expected.clone()));
        assert!(s.blacklist(&new).unwrap());
        assert_eq!(
            s.rotated_to("old").unwrap(),
            Some(Rotation {
                spent: true,
                ..expected
            })
        );
        assert_eq!(s.rotated_to("new").unwrap(), None);
    }

    #[test]
    fn flush_removes_expired_revoked_families() {
        let (_dir, s) = open();
        assert!(s.revoke_family("old", None, 100).unwrap());
        assert!(s.revoke_family("new", None, 1000).unwrap());
        s.flush_expired(100).unwrap();
        // Its record gone, the family could be revoked again.
        assert_eq!(s.token_state("x", Some("old")).unwrap(), TokenState::Live);
        assert_eq!(
            s.token_state("x", Some("new")).unwrap(),
            TokenState::FamilyRevoked
        );
    }

    /// The tables as the first version made them.
    const OLD_SCHEMA: &str = "
        CREATE TABLE users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            username TEXT NOT NULL UNIQUE,
            password TEXT NOT NULL,
            is_active INTEGER NOT NULL DEFAULT 1,
            last_login INTEGER,
            date_joined INTEGER NOT NULL
        );
        CREATE TABLE outstanding_tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            jti TEXT NOT NULL UNIQUE,
            user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
            token TEXT NOT NULL,
            created_at INTEGER,
            expires_at INTEGER NOT NULL
        );
        CREATE TABLE blacklisted_tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            jti TEXT NOT NULL UNIQUE REFERENCES outstanding_tokens(jti) ON DELETE CASCADE,
            blacklisted_at INTEGER NOT NULL
        );
        INSERT INTO users (username, password, is_active, last_login, date_joined)
            VALUES ('alice', 'h', 1, 7, 1);
        INSERT INTO outstanding_tokens (jti, user_id, token, created_at, expires_at)
            VALUES ('kept', 1, 't', 0, 1000);
        INSERT INTO blacklisted_tokens (jti, blacklisted_at) VALUES ('kept', 5);
    ";

    #[test]
    fn an_old_file_is_upgraded_on_open_by_many_workers_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        Connection::open(&path)
            .unwrap()
            .execute_batch(OLD_SCHEMA)
            .unwrap();
        // As worker processes starting together: each its own store.
        let stores: Vec<SqliteStore> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|_| sc.spawn(|| SqliteStore::open(&path).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let s = &stores[0];
        let alice = s.user_by_username("alice").unwrap().unwrap();
        assert_eq!(
            (alice.id, alice.last_login, alice.tokens_valid_after),
            (1, Some(7), None)
        );
        assert_eq!(
            s.token_state("kept", None).unwrap(),
            TokenState::Blacklisted
        );
        // The new columns and table work.
        s.add_outstanding(&OutstandingToken {
            parent: Some("kept".into()),
            ..member("child", "f1")
        })
        .unwrap();
        assert!(s.rotated_to("kept").unwrap().is_some());
        assert!(s.revoke_family("f1", Some(1), 1000).unwrap());
        assert_eq!(
            stores[7].token_state("child", Some("f1")).unwrap(),
            TokenState::FamilyRevoked
        );
        assert!(s.logout_user(1, 50).is_ok());
        assert_eq!(
            s.user_by_id(1).unwrap().unwrap().tokens_valid_after,
            Some(50)
        );
        let indexes: Vec<String> = s
            .with_retry(false, |c| {
                let mut st = c.prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'index' \
                     AND tbl_name = 'outstanding_tokens' AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )?;
                let v = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
                Ok(v)
            })
            .unwrap();
        assert_eq!(
            indexes,
            [
                "outstanding_tokens_family",
                "outstanding_tokens_parent",
                "outstanding_tokens_user_id"
            ]
        );
        // Opening an upgraded file again changes nothing.
        drop(stores);
        let again = SqliteStore::open(&path).unwrap();
        assert_eq!(again.list_users().unwrap().len(), 1);
    }
}
