//! The PostgreSQL schema: versioned migrations, the start-up checks, and
//! the signing key kept in the database.
//!
//! Migrations run in one transaction that first takes a transaction-level
//! advisory lock, so hosts that start at the same moment apply each one
//! exactly once: the others wait for the lock, then find nothing to do.
//! `ferricorn-auth serve` migrates before it forks its workers; ops may
//! instead run `ferricorn-auth migrate` on its own and start the hosts
//! after. A database whose schema is newer than this binary knows is
//! refused, never downgraded.
//!
//! These run at start, outside any request, on a connection of their own
//! made on a runtime of their own ([`blocking`]), so the master (which has
//! no runtime) and a worker's factory (inside one) can both call them.

use std::future::Future;

use tokio_postgres::{Client, NoTls};

use super::{PgOptions, Schema};
use crate::store::StoreError;

/// The advisory lock key of the migrations ("ferricorn" as a number).
const MIGRATION_LOCK: i64 = 0x6665_7272_6963_6f72;
/// The advisory lock key of the periodic flush of expired tokens.
pub const FLUSH_LOCK: i64 = MIGRATION_LOCK + 1;

/// The migrations, in order; version `i + 1` is `MIGRATIONS[i]`. Never edit
/// one that has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the tables, in the shape of Django's auth_user and simplejwt's
    // token_blacklist tables (see the module doc of `postgres`).
    "CREATE TABLE ferricorn_user (
        id bigserial PRIMARY KEY,
        password varchar(128) NOT NULL,
        last_login timestamptz NULL,
        username varchar(150) NOT NULL UNIQUE,
        is_active boolean NOT NULL DEFAULT true,
        date_joined timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE ferricorn_outstanding_token (
        id bigserial PRIMARY KEY,
        token text NOT NULL,
        created_at timestamptz NULL,
        expires_at timestamptz NOT NULL,
        user_id bigint NULL REFERENCES ferricorn_user(id) ON DELETE SET NULL,
        jti varchar(255) NOT NULL UNIQUE
    );
    CREATE INDEX ferricorn_outstanding_token_expires_at ON ferricorn_outstanding_token (expires_at);
    CREATE INDEX ferricorn_outstanding_token_user_id ON ferricorn_outstanding_token (user_id);
    CREATE TABLE ferricorn_blacklisted_token (
        id bigserial PRIMARY KEY,
        blacklisted_at timestamptz NOT NULL,
        token_id bigint NOT NULL UNIQUE REFERENCES ferricorn_outstanding_token(id) ON DELETE CASCADE
    );
    CREATE TABLE ferricorn_meta (
        key text PRIMARY KEY,
        value text NOT NULL
    );",
    // 2: refresh token families and "log out everywhere". The new columns
    // are NULL without a default, so adding them rewrites no row. The
    // family and parent indexes are partial: only tokens that have one are
    // ever looked up by it. The indexes are built inside the migration's
    // transaction (CONCURRENTLY cannot be), so writes to the table wait for
    // the build, once.
    "ALTER TABLE ferricorn_user ADD COLUMN tokens_valid_after timestamptz NULL;
    ALTER TABLE ferricorn_outstanding_token
        ADD COLUMN family varchar(64) NULL,
        ADD COLUMN parent varchar(255) NULL;
    CREATE INDEX ferricorn_outstanding_token_family ON ferricorn_outstanding_token (family)
        WHERE family IS NOT NULL;
    CREATE INDEX ferricorn_outstanding_token_parent ON ferricorn_outstanding_token (parent)
        WHERE parent IS NOT NULL;
    CREATE TABLE ferricorn_revoked_family (
        family varchar(64) PRIMARY KEY,
        user_id bigint NULL,
        revoked_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX ferricorn_revoked_family_expires_at ON ferricorn_revoked_family (expires_at);",
];

/// The schema version this binary writes and reads.
pub const LATEST: i32 = MIGRATIONS.len() as i32;

/// Runs `f` to completion on a current-thread runtime of its own, on a
/// thread of its own: callable with or without a runtime around, and
/// leaving no thread or task behind (the master forks after it).
pub fn blocking<T: Send>(f: impl Future<Output = T> + Send) -> Result<T, StoreError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Task(format!("starting a runtime: {e}")))?;
            Ok(rt.block_on(f))
        })
        .join()
        .unwrap_or_else(|_| Err(StoreError::Task("the start-up thread panicked".into())))
    })
}

/// One connection for start-up work; its task ends with the runtime.
async fn connect(options: &PgOptions) -> Result<Client, String> {
    let (client, connection) = tokio::time::timeout(
        options.connect_timeout,
        options.config.connect(NoTls),
    )
    .await
    .map_err(|_| {
        format!(
            "PostgreSQL at {}: no connection within {} s; check the host and port, that PostgreSQL runs and \
             accepts TCP connections (listen_addresses), or raise --db-connect-timeout",
            options.display,
            options.connect_timeout.as_secs_f64()
        )
    })?
    .map_err(|e| explain(options, &e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A connection error as one line naming the fix (the URL is shown
/// redacted; the driver's message never contains the password).
fn explain(options: &PgOptions, e: &tokio_postgres::Error) -> String {
    let url = &options.display;
    let Some(db) = e.as_db_error() else {
        return format!(
            "PostgreSQL at {url}: {}; check the host and port in the URL, and that PostgreSQL is running",
            super::with_causes(e)
        );
    };
    use tokio_postgres::error::SqlState;
    let fix = match db.code() {
        c if *c == SqlState::INVALID_PASSWORD
            || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            "check the user and password in the URL (and pg_hba.conf)"
        }
        c if *c == SqlState::INVALID_CATALOG_NAME => {
            "create the database first (createdb NAME), or fix its name in the URL"
        }
        c if *c == SqlState::TOO_MANY_CONNECTIONS => {
            "raise max_connections in PostgreSQL or lower --db-pool-size"
        }
        _ => "see PostgreSQL's log",
    };
    format!("PostgreSQL at {url}: {}; {fix}", db.message())
}

fn sql_error(options: &PgOptions, what: &str, e: tokio_postgres::Error) -> String {
    format!("PostgreSQL at {}: {what}: {e}", options.display)
}

/// Creates or upgrades ferricorn-auth's tables; returns the versions
/// applied (none when already current). Django mode only checks.
pub async fn migrate(options: &PgOptions) -> Result<Vec<i32>, String> {
    migrate_to(options, LATEST).await
}

/// [`migrate`], but no further than version `target`: how a test makes a
/// database of an older version to upgrade. A database already past
/// `target` is left as it is (never downgraded); a `target` newer than this
/// binary knows is refused.
pub async fn migrate_to(options: &PgOptions, target: i32) -> Result<Vec<i32>, String> {
    if target > LATEST {
        return Err(format!(
            "migrating to version {target}: this ferricorn-auth knows versions up to {LATEST}"
        ));
    }
    let mut client = connect(options).await?;
    if options.schema == Schema::Django {
        check_django(options, &client).await?;
        return Ok(Vec::new());
    }
    let tx = client
        .transaction()
        .await
        .map_err(|e| sql_error(options, "starting the migration", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| sql_error(options, "taking the migration lock", e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS ferricorn_schema_migrations (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(|e| {
        sql_error(
            options,
            "creating ferricorn_schema_migrations (does the user have CREATE on the database's schema?)",
            e,
        )
    })?;
    let current = current_version(&tx)
        .await
        .map_err(|e| sql_error(options, "reading the schema version", e))?;
    refuse_newer(options, current)?;
    let mut applied = Vec::new();
    for version in current + 1..=target {
        tx.batch_execute(MIGRATIONS[version as usize - 1])
            .await
            .map_err(|e| sql_error(options, &format!("migration {version}"), e))?;
        tx.execute(
            "INSERT INTO ferricorn_schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(|e| sql_error(options, &format!("recording migration {version}"), e))?;
        applied.push(version);
    }
    tx.commit()
        .await
        .map_err(|e| sql_error(options, "committing the migrations", e))?;
    Ok(applied)
}

async fn current_version(
    c: &impl tokio_postgres::GenericClient,
) -> Result<i32, tokio_postgres::Error> {
    let row = c
        .query_one(
            "SELECT coalesce(max(version), 0) FROM ferricorn_schema_migrations",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

fn refuse_newer(options: &PgOptions, current: i32) -> Result<(), String> {
    if current > LATEST {
        return Err(format!(
            "PostgreSQL at {}: the schema is version {current}, newer than this ferricorn-auth knows \
             (version {LATEST}); run the newer ferricorn-auth that migrated it",
            options.display
        ));
    }
    Ok(())
}

/// Django mode: the tables must be there already (Django's migrations make
/// them); nothing is created.
async fn check_django(options: &PgOptions, client: &Client) -> Result<(), String> {
    for table in Schema::Django.tables() {
        let found: Option<String> = client
            .query_one("SELECT to_regclass($1)::text", &[&table])
            .await
            .map_err(|e| sql_error(options, "looking for Django's tables", e))?
            .get(0);
        if found.is_none() {
            return Err(format!(
                "PostgreSQL at {}: --schema django needs Django's table {table}, which this database lacks; \
                 point the URL at the Django project's database, or run `python manage.py migrate` there \
                 (with django.contrib.auth and rest_framework_simplejwt.token_blacklist in INSTALLED_APPS)",
                options.display
            ));
        }
    }
    Ok(())
}

/// What a process checks at start: the database answers and its schema is
/// the one this binary uses (current for ferricorn's tables, present for
/// Django's).
pub async fn check(options: &PgOptions) -> Result<(), String> {
    let client = connect(options).await?;
    if options.schema == Schema::Django {
        return check_django(options, &client).await;
    }
    let current = match current_version(&client).await {
        Ok(v) => v,
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => 0,
        Err(e) => return Err(sql_error(options, "reading the schema version", e)),
    };
    refuse_newer(options, current)?;
    if current < LATEST {
        return Err(format!(
            "PostgreSQL at {}: the schema is at version {current}, this ferricorn-auth needs {LATEST}; \
             run `ferricorn-auth --db URL migrate`",
            options.display
        ));
    }
    Ok(())
}

/// The signing key kept in the database, storing `candidate` if there is
/// none yet; whether `candidate` was stored. Every host agrees on it.
pub async fn signing_key(options: &PgOptions, candidate: &str) -> Result<(String, bool), String> {
    if options.schema == Schema::Django {
        return Err(
            "--schema django needs a signing key: set FERRICORN_AUTH_SIGNING_KEY (or signing_key in [auth]) \
             to the Django project's SIMPLE_JWT SIGNING_KEY, which defaults to its SECRET_KEY"
                .into(),
        );
    }
    let client = connect(options).await?;
    let n = client
        .execute(
            "INSERT INTO ferricorn_meta (key, value) VALUES ('signing_key', $1) ON CONFLICT (key) DO NOTHING",
            &[&candidate],
        )
        .await
        .map_err(|e| sql_error(options, "storing the signing key", e))?;
    let key: String = client
        .query_one(
            "SELECT value FROM ferricorn_meta WHERE key = 'signing_key'",
            &[],
        )
        .await
        .map_err(|e| sql_error(options, "reading the signing key", e))?
        .get(0);
    Ok((key, n == 1))
}
