//! [`SqliteStore`]: the embedded store, one SQLite file shared by every
//! worker process.
//!
//! Many processes write at once, so: WAL mode (readers never block the
//! writer), a busy timeout, writes in `BEGIN IMMEDIATE` transactions (a
//! deferred transaction that upgrades to a write can fail with `SQLITE_BUSY`
//! at once, without waiting), and a retry loop around every operation, so
//! that "database is locked" never reaches a client. Spending a refresh
//! token is an `INSERT OR IGNORE` into a table whose `jti` is unique: SQLite
//! serializes writers, so exactly one insert changes a row.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use super::{OutstandingToken, Store, StoreError, User};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    last_login INTEGER,
    date_joined INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outstanding_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    jti TEXT NOT NULL UNIQUE,
    user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    token TEXT NOT NULL,
    created_at INTEGER,
    expires_at INTEGER NOT NULL
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
";

/// How long one attempt waits for a lock before SQLite reports busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a busy operation is retried before it is an error.
const RETRIES: u32 = 50;

/// The SQLite store. Holds a small pool of connections; open it in each
/// worker process (never before the fork).
pub struct SqliteStore {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
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

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its tables.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let store = SqliteStore {
            path: path.as_ref().to_path_buf(),
            pool: Mutex::new(Vec::new()),
        };
        store.with_retry(|conn| {
            conn.execute_batch(SCHEMA)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn connect(&self) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Switching to WAL needs a moment of exclusive access; retried by the
        // caller when another process holds the file.
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection, retrying while the database is busy.
    fn with_retry<T>(
        &self,
        mut f: impl FnMut(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut attempt = 0;
        loop {
            let pooled = self.pool.lock().map(|mut p| p.pop()).unwrap_or(None);
            let result = match pooled {
                Some(c) => Ok(c),
                None => self.connect(),
            }
            .map_err(StoreError::from)
            .and_then(|mut conn| {
                let r = f(&mut conn);
                if let Ok(mut p) = self.pool.lock() {
                    p.push(conn);
                }
                r
            });
            match result {
                Err(StoreError::Db(e)) if is_busy(&e) && attempt < RETRIES => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(5 + u64::from(attempt) * 2));
                }
                other => return other,
            }
        }
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, retried while busy.
    fn write<T>(
        &self,
        mut f: impl FnMut(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_retry(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let v = f(&tx)?;
            tx.commit()?;
            Ok(v)
        })
    }
}

fn row_to_user(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        password: row.get(2)?,
        is_active: row.get(3)?,
        last_login: row.get(4)?,
    })
}

const USER_COLS: &str = "id, username, password, is_active, last_login";

fn insert_outstanding(
    tx: &rusqlite::Transaction<'_>,
    t: &OutstandingToken,
) -> rusqlite::Result<()> {
    // A token of a deleted user (or an external one) is kept without user.
    tx.execute(
        "INSERT OR IGNORE INTO outstanding_tokens (jti, user_id, token, created_at, expires_at)
         VALUES (?1, (SELECT id FROM users WHERE id = ?2), ?3, ?4, ?5)",
        params![t.jti, t.user_id, t.token, t.created_at, t.expires_at],
    )?;
    Ok(())
}

impl Store for SqliteStore {
    fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.with_retry(|c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE username = ?1"),
                [username],
                row_to_user,
            )
            .optional()?)
        })
    }

    fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.with_retry(|c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
                [id],
                row_to_user,
            )
            .optional()?)
        })
    }

    fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_active: bool,
    ) -> Result<i64, StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO users (username, password, is_active, date_joined) VALUES (?1, ?2, ?3, ?4)",
                params![username, password_hash, is_active, unix_now()],
            )?;
            if n == 0 {
                return Err(StoreError::UsernameTaken(username.to_string()));
            }
            Ok(tx.last_insert_rowid())
        })
    }

    fn set_password(&self, id: i64, password_hash: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE users SET password = ?1 WHERE id = ?2",
                params![password_hash, id],
            )?;
            Ok(())
        })
    }

    fn set_active(&self, username: &str, is_active: bool) -> Result<(), StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET is_active = ?1 WHERE username = ?2",
                params![is_active, username],
            )?;
            if n == 0 {
                return Err(StoreError::NoSuchUser(username.to_string()));
            }
            Ok(())
        })
    }

    fn update_last_login(&self, id: i64, at: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE users SET last_login = ?1 WHERE id = ?2",
                params![at, id],
            )?;
            Ok(())
        })
    }

    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.with_retry(|c| {
            let mut stmt = c.prepare(&format!("SELECT {USER_COLS} FROM users ORDER BY id"))?;
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
        self.with_retry(|c| {
            Ok(c.query_row(
                "SELECT 1 FROM blacklisted_tokens WHERE jti = ?1",
                [jti],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
    }

    fn blacklist(&self, token: &OutstandingToken) -> Result<bool, StoreError> {
        self.write(|tx| {
            insert_outstanding(tx, token)?;
            let n = tx.execute(
                "INSERT OR IGNORE INTO blacklisted_tokens (jti, blacklisted_at) VALUES (?1, ?2)",
                params![token.jti, unix_now()],
            )?;
            Ok(n == 1)
        })
    }

    fn flush_expired(&self, now: i64) -> Result<usize, StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM blacklisted_tokens WHERE jti IN (SELECT jti FROM outstanding_tokens WHERE expires_at <= ?1)",
                [now],
            )?;
            Ok(tx.execute("DELETE FROM outstanding_tokens WHERE expires_at <= ?1", [now])?)
        })
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
}
