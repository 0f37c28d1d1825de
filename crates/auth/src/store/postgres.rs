//! [`PgStore`]: PostgreSQL, the store for more than one host.
//!
//! Each worker process holds a pool of connections (deadpool-postgres over
//! tokio-postgres, opened lazily after the fork: a connection is a task of
//! the worker's runtime). Every statement is prepared once per connection
//! (`prepare_cached`). Every operation, including the wait for a pooled
//! connection and for a new connection, is bounded by the connect timeout:
//! when PostgreSQL is down or unreachable the caller gets
//! [`StoreError::Unavailable`] (a 503) within it, never a hang, and the pool
//! replaces broken connections by itself once PostgreSQL is back (each
//! connection is checked before it is handed out).
//!
//! The tables have the shape of Django's and simplejwt's
//! (`auth_user`, `token_blacklist_outstandingtoken`,
//! `token_blacklist_blacklistedtoken`: time columns as `timestamptz`, the
//! blacklist pointing at the outstanding row's id), under ferricorn's own
//! names unless [`Schema::Django`] names Django's tables themselves, so one
//! set of statements serves both. Ids are cast to `bigint` in every
//! statement, because Django's `auth_user.id` is an `integer`.
//!
//! Spending a refresh token is one statement, so one round trip and one
//! transaction: record the token as outstanding if it is not, `INSERT ...
//! ON CONFLICT (token_id) DO NOTHING` into the blacklist and, for a
//! rotation, record the new token only if that insert happened. Two
//! statements inserting the same `token_id` are serialized by the unique
//! index (the second waits for the first to commit, then inserts nothing),
//! so of any number of concurrent spends of one token, on any number of
//! hosts, exactly one wins.
//!
//! Refresh token families, their revocation and "log out everywhere" exist
//! in ferricorn's schema only: Django's tables are Django's and are never
//! altered, so there a token's family and parent are not stored, no family
//! is ever revoked, and a user's `tokens_valid_after` is always `None`.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

use super::{OutstandingToken, Rotation, StoreError, TokenState, User, WriteOp};

pub mod migrations;

/// Whose tables the store uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Schema {
    /// ferricorn-auth's own tables, created and upgraded by
    /// [`migrations`].
    #[default]
    Ferricorn,
    /// A Django project's own tables (`auth_user` and simplejwt's
    /// `token_blacklist_*`), used as they are: nothing is created or
    /// altered.
    Django,
}

impl FromStr for Schema {
    type Err = String;

    fn from_str(s: &str) -> Result<Schema, String> {
        match s {
            "ferricorn" => Ok(Schema::Ferricorn),
            "django" => Ok(Schema::Django),
            other => Err(format!(
                "schema {other:?} is not one of: ferricorn (ferricorn-auth's own tables), \
                 django (a Django project's auth_user and simplejwt's token_blacklist tables)"
            )),
        }
    }
}

impl Schema {
    /// The table of revoked refresh token families; `None` in Django's
    /// schema, which has none.
    fn revoked_families(self) -> Option<&'static str> {
        match self {
            Schema::Ferricorn => Some("ferricorn_revoked_family"),
            Schema::Django => None,
        }
    }

    /// The table names: users, outstanding tokens, blacklisted tokens.
    fn tables(self) -> [&'static str; 3] {
        match self {
            Schema::Ferricorn => [
                "ferricorn_user",
                "ferricorn_outstanding_token",
                "ferricorn_blacklisted_token",
            ],
            Schema::Django => [
                "auth_user",
                "token_blacklist_outstandingtoken",
                "token_blacklist_blacklistedtoken",
            ],
        }
    }
}

/// How to reach PostgreSQL, and the pool each worker keeps.
#[derive(Clone)]
pub struct PgOptions {
    /// The parsed libpq URL (several hosts, `target_session_attrs`...).
    pub config: tokio_postgres::Config,
    /// The URL as given, with any password replaced by `***`: the only form
    /// that may be printed.
    pub display: String,
    /// Connections per worker process.
    pub pool_size: usize,
    /// Bounds connecting, waiting for a pooled connection, and each
    /// operation as a whole.
    pub connect_timeout: Duration,
    /// Whose tables.
    pub schema: Schema,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &self.display)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("schema", &self.schema)
            .finish()
    }
}

/// The default pool size per worker: a worker's runtime thread keeps about
/// this many store operations in flight under load.
pub const DEFAULT_POOL_SIZE: usize = 8;
/// The default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `s` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// `url` with the password (between `user:` and `@`) replaced by `***`.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some((scheme, rest)) = url.split_once("://") {
        // The userinfo ends at the last '@' before the path.
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            let userinfo = match rest[..at].split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => rest[..at].to_string(),
            };
            out = format!("{scheme}://{userinfo}{}", &rest[at..]);
        }
    }
    // A password given as a query parameter too.
    if let Some(q) = out.find("password=") {
        let end = out[q..].find('&').map_or(out.len(), |e| q + e);
        out.replace_range(q..end, "password=***");
    }
    out
}

impl PgOptions {
    /// Parses a `postgres://` URL. The error names the problem without the
    /// password.
    pub fn parse(
        url: &str,
        pool_size: usize,
        connect_timeout: Duration,
        schema: Schema,
    ) -> Result<PgOptions, String> {
        let display = redact(url);
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            format!(
                "database URL {display}: {e}; expected postgres://USER:PASSWORD@HOST[:PORT][,HOST2[:PORT]]/DBNAME[?sslmode=disable&target_session_attrs=read-write]"
            )
        })?;
        if config.get_hosts().is_empty() {
            return Err(format!(
                "database URL {display}: no host; write the host after '@' (postgres://USER@HOST/DBNAME)"
            ));
        }
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(format!(
                "database URL {display}: sslmode=require is not supported yet (TLS to PostgreSQL is not built in); \
                 use sslmode=disable on a trusted network or a local socket"
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(connect_timeout);
        }
        config.application_name("ferricorn-auth");
        config.keepalives(true);
        if pool_size == 0 {
            return Err("db_pool_size: must be at least 1".into());
        }
        Ok(PgOptions {
            config,
            display,
            pool_size,
            connect_timeout,
            schema,
        })
    }
}

/// Whether an error means "PostgreSQL cannot serve now" (down, restarting,
/// unreachable, out of connections, refusing our login), as opposed to a
/// statement that failed.
fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    let Some(db) = e.as_db_error() else {
        // I/O, a closed connection, a timeout: no answer from the server.
        return true;
    };
    let code = db.code();
    code.code().starts_with("08") // connection exception
        || code.code().starts_with("28") // invalid authorization
        || code.code().starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
        || *code == SqlState::TOO_MANY_CONNECTIONS
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION // a standby after a failover
}

/// The error with its causes: the driver's own message is generic ("error
/// connecting to server"), the cause says which ("Connection refused").
/// Never contains the password.
pub(crate) fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        why = format!("{why}: {cause}");
        source = cause.source();
    }
    why
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        if is_unavailable(&e) {
            StoreError::Unavailable(with_causes(&e))
        } else {
            StoreError::Postgres(e)
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> StoreError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// The statements, written once per schema: the table names differ, and
/// Django's schema lacks the columns and the table of token families and
/// of "log out everywhere".
struct Sql {
    schema: Schema,
    user_by_username: String,
    user_by_id: String,
    list_users: String,
    is_blacklisted: String,
    /// Parameters: jti, then (ferricorn's schema only) family.
    token_state: String,
    /// `None`: no parent column (Django's schema), so never a rotation.
    rotated_to: Option<String>,
    /// `None`: nowhere to record a revocation (Django's schema).
    revoke_family: Option<String>,
    logout_user: String,
    insert_outstanding: String,
    spend: String,
    rotate: String,
    set_password: String,
    update_last_login: String,
    set_active: String,
    create_user: String,
    flush_batch: String,
    flush_families: Option<String>,
}

/// The columns of an outstanding token an insert names, and the values for
/// them from the parameters after `$base` (the user only if it exists: a
/// token of a deleted or unknown user is kept without user). Family and
/// parent in ferricorn's schema only; [`PgStore::token_params`] passes the
/// parameters to match.
fn outstanding_insert(schema: Schema, users: &str, base: usize) -> (String, String) {
    let p = |i: usize| format!("${}", base + i);
    let mut cols = "jti, user_id, token, created_at, expires_at".to_string();
    let mut values = format!(
        "{}, (SELECT id FROM {users} WHERE id = {}::bigint), {}, to_timestamp({}::bigint), \
         to_timestamp({}::bigint)",
        p(1),
        p(2),
        p(3),
        p(4),
        p(5)
    );
    if schema == Schema::Ferricorn {
        cols.push_str(", family, parent");
        values.push_str(&format!(", {}::text, {}::text", p(6), p(7)));
    }
    (cols, values)
}

impl Sql {
    fn new(schema: Schema) -> Sql {
        let [users, outstanding, blacklisted] = schema.tables();
        let revoked = schema.revoked_families();
        let tokens_valid_after = match schema {
            Schema::Ferricorn => "extract(epoch from tokens_valid_after)::bigint",
            Schema::Django => "NULL::bigint",
        };
        let user_cols = format!(
            "id::bigint, username, password, is_active, \
             extract(epoch from last_login)::bigint, {tokens_valid_after}"
        );
        let (cols, spent_values) = outstanding_insert(schema, users, 0);
        let n = token_param_count(schema);
        let (_, new_values) = outstanding_insert(schema, users, n);
        let is_blacklisted = format!(
            "SELECT 1 FROM {blacklisted} b JOIN {outstanding} o ON o.id = b.token_id \
             WHERE o.jti = $1"
        );
        // One round trip: both answers in one row, the caller ranks them.
        let token_state = match revoked {
            Some(revoked) => format!(
                "SELECT $2::text IS NOT NULL \
                 AND EXISTS (SELECT 1 FROM {revoked} WHERE family = $2::text), \
                 EXISTS ({is_blacklisted})"
            ),
            None => format!("SELECT false, EXISTS ({is_blacklisted})"),
        };
        // Django's auth_user has columns without defaults at the database
        // level (Django fills them): give them Django's defaults.
        let create_user = match schema {
            Schema::Ferricorn => format!(
                "INSERT INTO {users} (username, password, is_active, date_joined) \
                 VALUES ($1, $2, $3, now()) ON CONFLICT (username) DO NOTHING RETURNING id::bigint"
            ),
            Schema::Django => format!(
                "INSERT INTO {users} (username, password, is_active, date_joined, is_superuser, \
                 first_name, last_name, email, is_staff) \
                 VALUES ($1, $2, $3, now(), false, '', '', '', false) \
                 ON CONFLICT (username) DO NOTHING RETURNING id::bigint"
            ),
        };
        // Spending a token in one statement (one round trip, its own
        // transaction): record it as outstanding if it is not, then insert
        // its blacklist row. The unique index on `token_id` decides between
        // concurrent spends: a second insert waits for the first's commit,
        // then inserts nothing. `known` finds a row that was there before
        // the statement (the CTEs share one snapshot, so a row `recorded`
        // inserts is only in `recorded`).
        let spend = format!(
            "WITH recorded AS (INSERT INTO {outstanding} ({cols}) VALUES ({spent_values}) \
             ON CONFLICT (jti) DO NOTHING RETURNING id), \
             token AS (SELECT id FROM recorded UNION ALL SELECT id FROM {outstanding} WHERE jti = $1 LIMIT 1), \
             spent AS (INSERT INTO {blacklisted} (token_id, blacklisted_at) SELECT id, now() FROM token \
             ON CONFLICT (token_id) DO NOTHING RETURNING token_id)"
        );
        // Blacklists the outstanding tokens `WHERE` picks, one statement's
        // CTE; the unique `token_id` makes a concurrent spend of one of them
        // harmless.
        let sweep = |filter: &str| {
            format!(
                "INSERT INTO {blacklisted} (token_id, blacklisted_at) \
                 SELECT id, now() FROM {outstanding} WHERE {filter} \
                 ON CONFLICT (token_id) DO NOTHING"
            )
        };
        // The record first, with its unique key: of concurrent revocations
        // one inserts it (the others wait for its commit, then insert
        // nothing), and a member recorded by a statement that did not see
        // this one still reads `FamilyRevoked` once this commits. The sweep
        // runs even when the family was revoked before, so a member
        // recorded since is blacklisted too.
        let revoke_family = revoked.map(|revoked| {
            format!(
                "WITH revoked AS (INSERT INTO {revoked} (family, user_id, revoked_at, expires_at) \
                 VALUES ($1::text, $2::bigint, now(), to_timestamp($3::bigint)) \
                 ON CONFLICT (family) DO NOTHING RETURNING family), \
                 swept AS ({}) \
                 SELECT count(*) FROM revoked",
                sweep("family = $1::text")
            )
        });
        let unexpired = sweep("user_id = $1::bigint AND expires_at > to_timestamp($2::bigint)");
        // greatest() ignores NULL: the first logout sets the mark, a later
        // one only raises it. Django's auth_user has no mark to keep.
        let logout_user = match schema {
            Schema::Ferricorn => format!(
                "WITH raised AS (UPDATE {users} \
                 SET tokens_valid_after = greatest(tokens_valid_after, to_timestamp($2::bigint)) \
                 WHERE id = $1::bigint), \
                 swept AS ({unexpired}) \
                 SELECT 1"
            ),
            Schema::Django => unexpired,
        };
        Sql {
            schema,
            user_by_username: format!("SELECT {user_cols} FROM {users} WHERE username = $1"),
            user_by_id: format!("SELECT {user_cols} FROM {users} WHERE id = $1::bigint"),
            list_users: format!("SELECT {user_cols} FROM {users} ORDER BY id"),
            is_blacklisted,
            token_state,
            // `parent = $1` implies `parent IS NOT NULL`: the partial index
            // serves it.
            rotated_to: (schema == Schema::Ferricorn).then(|| {
                format!(
                    "SELECT o.token, coalesce(extract(epoch from o.created_at)::bigint, 0), \
                     EXISTS (SELECT 1 FROM {blacklisted} b WHERE b.token_id = o.id) \
                     FROM {outstanding} o WHERE o.parent = $1 ORDER BY o.id LIMIT 1"
                )
            }),
            revoke_family,
            logout_user,
            insert_outstanding: format!(
                "INSERT INTO {outstanding} ({cols}) VALUES ({spent_values}) \
                 ON CONFLICT (jti) DO NOTHING"
            ),
            spend: format!("{spend} SELECT count(*) FROM spent"),
            rotate: format!(
                "{spend}, issued AS (INSERT INTO {outstanding} ({cols}) \
                 SELECT {new_values} \
                 WHERE EXISTS (SELECT 1 FROM spent) ON CONFLICT (jti) DO NOTHING) \
                 SELECT count(*) FROM spent"
            ),
            set_password: format!("UPDATE {users} SET password = $2 WHERE id = $1::bigint"),
            update_last_login: format!(
                "UPDATE {users} SET last_login = to_timestamp($2::bigint) WHERE id = $1::bigint"
            ),
            set_active: format!("UPDATE {users} SET is_active = $2 WHERE username = $1"),
            create_user,
            // The blacklist rows go with them (ON DELETE CASCADE in both
            // schemas). Small batches keep each delete's locks short.
            flush_batch: format!(
                "WITH expired AS (SELECT id FROM {outstanding} WHERE expires_at <= to_timestamp($1::bigint) LIMIT $2), \
                 gone_b AS (DELETE FROM {blacklisted} WHERE token_id IN (SELECT id FROM expired)) \
                 DELETE FROM {outstanding} WHERE id IN (SELECT id FROM expired)"
            ),
            flush_families: revoked.map(|revoked| {
                format!("DELETE FROM {revoked} WHERE expires_at <= to_timestamp($1::bigint)")
            }),
        }
    }
}

/// Rows deleted per statement by [`PgStore::flush_expired`].
const FLUSH_BATCH: i64 = 1000;

/// The PostgreSQL store of one process.
pub struct PgStore {
    pool: Pool,
    options: PgOptions,
    sql: Sql,
    /// The outage log: PostgreSQL is logged unavailable once when an
    /// outage starts and available once when it ends, not per request.
    outage: Outage,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Whether PostgreSQL is down, as this process sees it. An outage ends
/// with a success after [`Outage::SETTLE`] without a failure, so the
/// moments of a stop or a start, when some connections still work and
/// others already fail, make one outage, not several.
#[derive(Default)]
struct Outage {
    down: AtomicBool,
    /// Milliseconds since `EPOCH` of the last failure.
    last_failure: AtomicU64,
}

static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn millis() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Outage {
    const SETTLE: Duration = Duration::from_secs(1);

    /// Records a failure; `true` when it starts an outage.
    fn failed(&self) -> bool {
        self.last_failure.store(millis(), Ordering::Relaxed);
        !self.down.swap(true, Ordering::Relaxed)
    }

    /// Records a success; `true` when it ends an outage. One atomic load
    /// when there is none.
    fn succeeded(&self) -> bool {
        self.down.load(Ordering::Relaxed)
            && millis().saturating_sub(self.last_failure.load(Ordering::Relaxed))
                >= Self::SETTLE.as_millis() as u64
            && self.down.swap(false, Ordering::Relaxed)
    }
}

fn row_to_user(row: &tokio_postgres::Row) -> User {
    User {
        id: row.get(0),
        username: row.get(1),
        password: row.get(2),
        is_active: row.get(3),
        last_login: row.get(4),
        tokens_valid_after: row.get(5),
    }
}

impl PgStore {
    /// A store with an empty pool: no connection is made until the first
    /// operation, so it can be built anywhere; connections are tasks of the
    /// runtime the operations run on (build it in the worker, after the
    /// fork).
    pub fn new(options: PgOptions) -> Result<PgStore, StoreError> {
        let manager = Manager::from_config(
            options.config.clone(),
            NoTls,
            ManagerConfig {
                // A connection closed by a restart is noticed without a
                // round trip; one that died silently fails its statement,
                // which reports unavailable and drops it.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let t = Some(options.connect_timeout);
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(t)
            .create_timeout(t)
            .recycle_timeout(t)
            .build()
            .map_err(|e| StoreError::Task(format!("building the connection pool: {e}")))?;
        Ok(PgStore {
            sql: Sql::new(options.schema),
            pool,
            options,
            outage: Outage::default(),
        })
    }

    /// Opens a first connection of the pool (a worker calls it as it
    /// starts, so its first requests do not wait for a connection and its
    /// login). A failure is only logged: requests answer 503 until
    /// PostgreSQL is reachable.
    pub async fn warm(&self) {
        let _ = self.run(self.client()).await;
    }

    /// The options it was built with.
    pub fn options(&self) -> &PgOptions {
        &self.options
    }

    /// Runs `op` bounded by the connect timeout, and keeps the outage log.
    async fn run<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = match tokio::time::timeout(self.options.connect_timeout, op).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within the connect timeout ({} s)",
                self.options.connect_timeout.as_secs_f64()
            ))),
        };
        match &result {
            Err(StoreError::Unavailable(why)) => {
                if self.outage.failed() {
                    eprintln!(
                        "ferricorn-auth: [{}] PostgreSQL at {} is unavailable: {why}; \
                         answering 503 store_unavailable until it is back",
                        std::process::id(),
                        self.options.display
                    );
                }
            }
            _ => {
                if self.outage.succeeded() {
                    eprintln!(
                        "ferricorn-auth: [{}] PostgreSQL at {} is available again",
                        std::process::id(),
                        self.options.display
                    );
                }
            }
        }
        result
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    async fn query_user(
        &self,
        sql: &str,
        param: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<Option<User>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let st = c.prepare_cached(sql).await?;
            Ok(c.query_opt(&st, &[param]).await?.as_ref().map(row_to_user))
        })
        .await
    }

    /// The user with this exact username.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.query_user(&self.sql.user_by_username, &username).await
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.query_user(&self.sql.user_by_id, &id).await
    }

    /// All users, by id.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let st = c.prepare_cached(&self.sql.list_users).await?;
            Ok(c.query(&st, &[]).await?.iter().map(row_to_user).collect())
        })
        .await
    }

    /// Whether a jti is blacklisted.
    pub async fn is_blacklisted(&self, jti: &str) -> Result<bool, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let st = c.prepare_cached(&self.sql.is_blacklisted).await?;
            Ok(c.query_opt(&st, &[&jti]).await?.is_some())
        })
        .await
    }

    /// What the store knows of a refresh token, in one statement; see
    /// [`Store::token_state`](super::Store::token_state). Django's schema
    /// ignores `family`.
    pub async fn token_state(
        &self,
        jti: &str,
        family: Option<&str>,
    ) -> Result<TokenState, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let st = c.prepare_cached(&self.sql.token_state).await?;
            let row = match self.sql.schema {
                Schema::Ferricorn => c.query_one(&st, &[&jti, &family]).await?,
                Schema::Django => c.query_one(&st, &[&jti]).await?,
            };
            Ok(if row.get(0) {
                TokenState::FamilyRevoked
            } else if row.get(1) {
                TokenState::Blacklisted
            } else {
                TokenState::Live
            })
        })
        .await
    }

    /// The replacement a rotation recorded for `jti`; see
    /// [`Store::rotated_to`](super::Store::rotated_to). Always `None` in
    /// Django's schema.
    pub async fn rotated_to(&self, jti: &str) -> Result<Option<Rotation>, StoreError> {
        let Some(sql) = &self.sql.rotated_to else {
            return Ok(None);
        };
        self.run(async {
            let c = self.client().await?;
            let st = c.prepare_cached(sql).await?;
            Ok(c.query_opt(&st, &[&jti]).await?.map(|row| Rotation {
                token: row.get(0),
                created_at: row.get(1),
                spent: row.get(2),
            }))
        })
        .await
    }

    /// Creates a user; returns the new id.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_active: bool,
    ) -> Result<i64, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let st = c.prepare_cached(&self.sql.create_user).await?;
            match c
                .query_opt(&st, &[&username, &password_hash, &is_active])
                .await?
            {
                Some(row) => Ok(row.get(0)),
                None => Err(StoreError::UsernameTaken(username.to_string())),
            }
        })
        .await
    }

    /// Sets whether a user is active; `NoSuchUser` when absent.
    pub async fn set_active(&self, username: &str, is_active: bool) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            let st = c.prepare_cached(&self.sql.set_active).await?;
            if c.execute(&st, &[&username, &is_active]).await? == 0 {
                return Err(StoreError::NoSuchUser(username.to_string()));
            }
            Ok(())
        })
        .await
    }

    /// Applies one write in one transaction; see [`WriteOp::apply_to`] for
    /// the answer. Answers once committed.
    pub async fn write(&self, op: &WriteOp) -> Result<bool, StoreError> {
        self.run(async {
            let c = self.client().await?;
            match op {
                WriteOp::AddOutstanding(t) => {
                    let st = c.prepare_cached(&self.sql.insert_outstanding).await?;
                    c.execute(&st, &self.token_params(t)).await?;
                    Ok(true)
                }
                WriteOp::SetPassword(id, hash) => {
                    let st = c.prepare_cached(&self.sql.set_password).await?;
                    c.execute(&st, &[id, hash]).await?;
                    Ok(true)
                }
                WriteOp::UpdateLastLogin(id, at) => {
                    let st = c.prepare_cached(&self.sql.update_last_login).await?;
                    c.execute(&st, &[id, at]).await?;
                    Ok(true)
                }
                WriteOp::Blacklist(t) => {
                    let st = c.prepare_cached(&self.sql.spend).await?;
                    let won: i64 = c.query_one(&st, &self.token_params(t)).await?.get(0);
                    Ok(won == 1)
                }
                WriteOp::Rotate { spent, new } => {
                    let st = c.prepare_cached(&self.sql.rotate).await?;
                    let mut params = self.token_params(spent);
                    params.extend(self.token_params(new));
                    let won: i64 = c.query_one(&st, &params).await?.get(0);
                    Ok(won == 1)
                }
                WriteOp::RevokeFamily {
                    family,
                    user_id,
                    expires_at,
                } => {
                    // Django's schema has nowhere to record it: nothing
                    // revoked by this call.
                    let Some(sql) = &self.sql.revoke_family else {
                        return Ok(false);
                    };
                    let st = c.prepare_cached(sql).await?;
                    let revoked: i64 = c
                        .query_one(&st, &[family, user_id, expires_at])
                        .await?
                        .get(0);
                    Ok(revoked == 1)
                }
                WriteOp::LogoutUser { user_id, at } => {
                    let st = c.prepare_cached(&self.sql.logout_user).await?;
                    c.execute(&st, &[user_id, at]).await?;
                    Ok(true)
                }
            }
        })
        .await
    }

    /// Deletes outstanding (and their blacklist) entries expired before
    /// `now`, [`FLUSH_BATCH`] rows per statement so logins and refreshes
    /// never wait long behind it. Not bounded by the connect timeout as a
    /// whole (each batch is).
    pub async fn flush_expired(&self, now: i64) -> Result<usize, StoreError> {
        if let Some(sql) = &self.sql.flush_families {
            // Few rows (one per reuse detected): one statement.
            self.run(async {
                let c = self.client().await?;
                let st = c.prepare_cached(sql).await?;
                Ok(c.execute(&st, &[&now]).await?)
            })
            .await?;
        }
        let mut total = 0;
        loop {
            let n = self
                .run(async {
                    let c = self.client().await?;
                    let st = c.prepare_cached(&self.sql.flush_batch).await?;
                    Ok(c.execute(&st, &[&now, &FLUSH_BATCH]).await?)
                })
                .await?;
            total += n as usize;
            if n < FLUSH_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// Runs `f` with the advisory lock `key` if no other session holds it
    /// (`None` otherwise): one worker of the whole cluster does a periodic
    /// job.
    pub async fn with_advisory_lock<T>(
        &self,
        key: i64,
        f: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<Option<T>, StoreError> {
        let c = self.run(self.client()).await?;
        let got: bool = self
            .run(async {
                Ok(c.query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                    .await?
                    .get(0))
            })
            .await?;
        if !got {
            return Ok(None);
        }
        let result = f.await;
        // An unlock that fails leaves the lock with the session, which the
        // pool closes or reuses; either way it ends with the connection.
        let _ = c.execute("SELECT pg_advisory_unlock($1)", &[&key]).await;
        result.map(Some)
    }
}

/// How many parameters [`outstanding_insert`] takes per token.
fn token_param_count(schema: Schema) -> usize {
    match schema {
        Schema::Ferricorn => 7,
        Schema::Django => 5,
    }
}

impl PgStore {
    /// A token's parameters for the statements of [`outstanding_insert`]:
    /// family and parent in ferricorn's schema only.
    fn token_params<'a>(&self, t: &'a OutstandingToken) -> Vec<&'a (dyn ToSql + Sync)> {
        let mut params: Vec<&'a (dyn ToSql + Sync)> =
            vec![&t.jti, &t.user_id, &t.token, &t.created_at, &t.expires_at];
        if self.sql.schema == Schema::Ferricorn {
            params.extend([&t.family as &(dyn ToSql + Sync), &t.parent]);
        }
        debug_assert_eq!(params.len(), token_param_count(self.sql.schema));
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_one_outage_however_it_flaps() {
        let o = Outage::default();
        assert!(!o.succeeded(), "no outage yet");
        assert!(o.failed(), "the first failure starts it");
        assert!(
            !o.succeeded(),
            "a success right after a failure does not end it"
        );
        assert!(!o.failed(), "nor does the next failure start another");
        std::thread::sleep(Outage::SETTLE + Duration::from_millis(50));
        assert!(o.succeeded(), "a success after the settling time ends it");
        assert!(!o.succeeded(), "once");
        assert!(o.failed(), "a later failure is a new outage");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:p%40ss@h1:5432,h2/db?sslmode=disable"),
            "postgres://u:***@h1:5432,h2/db?sslmode=disable"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgresql://h/db?user=u&password=secret&x=1"),
            "postgresql://h/db?user=u&password=***&x=1"
        );
        assert_eq!(redact("postgres://u:a@b@h/db"), "postgres://u:***@h/db");
    }
}
