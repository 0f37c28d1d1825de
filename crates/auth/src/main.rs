//! `ferricorn-auth`: the simplejwt-compatible token service and its admin
//! commands.
//!
//! ```text
//! ferricorn-auth [--db PATH|URL] serve [server flags]
//! ferricorn-auth [--db PATH|URL] migrate
//! ferricorn-auth status ADDRESS [--watch SECONDS]
//! ferricorn-auth [--db PATH|URL] createuser USERNAME [--password-stdin] [--inactive]
//! ferricorn-auth [--db PATH|URL] changepassword USERNAME [--password-stdin]
//! ferricorn-auth [--db PATH|URL] logout USERNAME
//! ferricorn-auth [--db PATH|URL] setactive USERNAME true|false
//! ferricorn-auth [--db PATH|URL] listusers
//! ferricorn-auth [--db PATH|URL] flushexpiredtokens
//! ferricorn-auth [--db PATH|URL] importusers FILE
//! ```
//!
//! The database is `--db`, else `$FERRICORN_AUTH_DB`, else `db` in the
//! `[auth]` table of the config file (serve only), else
//! `ferricorn-auth.sqlite3` in the working directory. A `postgres://` URL
//! (libpq form: several hosts, `target_session_attrs`...) names a
//! PostgreSQL database, whose schema `serve` and `migrate` create and
//! upgrade; anything else is a SQLite file, created on first use. Passwords are read from the first line of standard input with
//! `--password-stdin`, else from `$FERRICORN_AUTH_PASSWORD`; there is no
//! interactive prompt (a prompt that echoes would leak the password to the
//! terminal, and scripts are the common caller).
//!
//! Exit codes: 0 success; 1 the command failed (message on stderr); 2 bad
//! usage; `serve` exits as the server's `serve_main` decides.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ferricorn_auth::store::postgres::migrations;
use ferricorn_auth::store::{Database, Db, WriteOp};
use ferricorn_auth::{load_settings, prepare, AuthApp, DbFlags};
use ferricorn_server::{Config, ServerArgs};

#[derive(Parser)]
#[command(
    name = "ferricorn-auth",
    version,
    about = "A djangorestframework-simplejwt compatible JWT token service"
)]
struct Cli {
    /// The database: a SQLite file, created on first use, or a PostgreSQL
    /// URL (postgres://USER:PASSWORD@HOST[:PORT][,HOST2...]/DBNAME)
    /// [env: FERRICORN_AUTH_DB] [default: ferricorn-auth.sqlite3]
    #[arg(long, global = true, value_name = "PATH|URL")]
    db: Option<String>,

    /// PostgreSQL connections per worker process [env:
    /// FERRICORN_AUTH_DB_POOL_SIZE] [default: 8]
    #[arg(long, global = true, value_name = "N")]
    db_pool_size: Option<usize>,

    /// Seconds to wait for a PostgreSQL connection, and for any one store
    /// operation, before answering 503 [env:
    /// FERRICORN_AUTH_DB_CONNECT_TIMEOUT] [default: 5]
    #[arg(long, global = true, value_name = "SECONDS")]
    db_connect_timeout: Option<f64>,

    /// Whose tables in PostgreSQL: `ferricorn` (its own, migrated) or
    /// `django` (a Django project's auth_user and simplejwt's
    /// token_blacklist tables, used as they are) [env:
    /// FERRICORN_AUTH_SCHEMA] [default: ferricorn]
    #[arg(long, global = true, value_name = "SCHEMA")]
    schema: Option<String>,

    /// serve: delete expired tokens every SECONDS (one worker of the whole
    /// cluster does it each time); off by default [env:
    /// FERRICORN_AUTH_FLUSH_EXPIRED_EVERY; config: flush_expired_every]
    #[arg(long, global = true, value_name = "SECONDS")]
    flush_expired_every: Option<f64>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the token endpoints with the prefork server.
    Serve {
        #[command(flatten)]
        server: Box<ServerArgs>,
    },
    /// Print a running ferricorn-auth's status (workers, answers, latency)
    /// from its --metrics-bind address.
    Status {
        /// The master's --metrics-bind address (HOST:PORT or unix:PATH).
        address: String,
        /// Refresh every SECONDS until interrupted.
        #[arg(long, value_name = "SECONDS")]
        watch: Option<f64>,
    },
    /// Create or upgrade the PostgreSQL schema (serve does it too; safe to
    /// run from several hosts at once).
    Migrate,
    /// Create a user; prints its id.
    Createuser {
        /// The user name (unique, case-sensitive).
        username: String,
        /// Read the password from the first line of standard input (else
        /// $FERRICORN_AUTH_PASSWORD).
        #[arg(long)]
        password_stdin: bool,
        /// Create the user inactive.
        #[arg(long)]
        inactive: bool,
    },
    /// Set a user's password; every refresh token of the user is revoked
    /// (and, with revoke_access_on_logout, every access token).
    Changepassword {
        /// The user name.
        username: String,
        /// Read the password from the first line of standard input (else
        /// $FERRICORN_AUTH_PASSWORD).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Log a user out everywhere: revoke every refresh token of the user
    /// (and, with revoke_access_on_logout, every access token), as
    /// POST /api/token/blacklist_all/ does.
    Logout {
        /// The user name.
        username: String,
    },
    /// Activate or deactivate a user.
    Setactive {
        /// The user name.
        username: String,
        /// true or false.
        #[arg(action = clap::ArgAction::Set, value_parser = clap::value_parser!(bool))]
        active: bool,
    },
    /// List users: id, username, active, last login (Unix time).
    Listusers,
    /// Delete outstanding and blacklisted tokens that have expired.
    Flushexpiredtokens,
    /// Import users from a CSV file of `username,password_hash,is_active`
    /// rows (Django hashes: pbkdf2_sha256$..., argon2$...); a header row is
    /// skipped.
    Importusers {
        /// The CSV file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let flags = DbFlags {
        db: cli.db,
        pool_size: cli.db_pool_size,
        connect_timeout: cli.db_connect_timeout,
        schema: cli.schema,
    };
    if let Command::Serve { server } = cli.command {
        return serve(flags, cli.flush_expired_every, *server);
    }
    if let Command::Status { address, watch } = &cli.command {
        let addr = match address.parse::<ferricorn_server::config::BindAddr>() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("ferricorn-auth: error: status {address}: {e}");
                return ExitCode::from(2);
            }
        };
        let watch = watch.filter(|w| *w > 0.0).map(Duration::from_secs_f64);
        return ExitCode::from(ferricorn_server::metrics::status::run(&addr, watch) as u8);
    }
    // The admin commands read the database settings from the flags and the
    // environment (no config file).
    let result = load_settings(None, &flags, |k| std::env::var(k).ok())
        .map_err(|e| e.to_string())
        .and_then(|(_, database)| admin(&database, cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferricorn-auth: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(flags: DbFlags, flush_every: Option<f64>, server: ServerArgs) -> ExitCode {
    // Only the [auth] table is read here; serve_main reads the server's part.
    let mut table = match Config::resolve(server.clone()) {
        Ok(config) => config.app_table("auth").cloned(),
        // serve_main reports configuration errors with the right exit code.
        Err(_) => None,
    };
    let flush_every = match flush_interval(flush_every, table.as_mut()) {
        Ok(every) => every,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(ferricorn_server::EXIT_CONFIG);
        }
    };
    let (mut settings, database) =
        match load_settings(table.as_ref(), &flags, |k| std::env::var(k).ok()) {
            Ok(loaded) => loaded,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(ferricorn_server::EXIT_CONFIG);
            }
        };
    // PostgreSQL: checked, migrated and its signing key read by the master,
    // before it starts workers, so that a worker replaced during an outage
    // starts without the database and answers 503 until it is back.
    if !ferricorn_server::is_worker_process() {
        let configured = settings.signing_key.is_some();
        if let Err(e) = prepare(&mut settings, &database) {
            eprintln!("ferricorn-auth: error: {e}");
            return ExitCode::from(ferricorn_server::EXIT_APP_START);
        }
        if let (false, Some(key)) = (configured, &settings.signing_key) {
            // Workers (and a master started by USR2) are new executions of
            // this binary: they receive the key as a configured one would
            // reach them. Nothing else runs yet in this process.
            std::env::set_var("FERRICORN_AUTH_SIGNING_KEY", key);
        }
    }
    // The store is opened by each worker process in make_app, after the
    // fork: a SQLite connection must never cross a fork, and a PostgreSQL
    // connection belongs to the runtime it was made on.
    ferricorn_server::serve_main(server, move || {
        AuthApp::open_database(settings.clone(), &database)
            .map(|app| app.flush_expired_every(flush_every))
    })
}

/// `--flush-expired-every`, else `FERRICORN_AUTH_FLUSH_EXPIRED_EVERY`, else
/// `flush_expired_every` in `[auth]` (taken out of the table).
fn flush_interval(
    flag: Option<f64>,
    table: Option<&mut ferricorn_server::toml::Table>,
) -> Result<Option<Duration>, String> {
    const VAR: &str = "FERRICORN_AUTH_FLUSH_EXPIRED_EVERY";
    let file = table.and_then(|t| t.remove("flush_expired_every"));
    let (name, raw) = if let Some(v) = flag {
        ("--flush-expired-every", v.to_string())
    } else if let Ok(v) = std::env::var(VAR) {
        (VAR, v)
    } else if let Some(v) = file {
        ("flush_expired_every", v.to_string())
    } else {
        return Ok(None);
    };
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Some(Duration::from_secs_f64(s)))
        .ok_or_else(|| format!("{name}: {raw:?} is not a number of seconds above 0"))
}

fn read_password(from_stdin: bool) -> Result<String, String> {
    let pw = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading the password from standard input: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        std::env::var("FERRICORN_AUTH_PASSWORD").map_err(|_| {
            "no password: pass --password-stdin and write it to standard input, or set FERRICORN_AUTH_PASSWORD"
                .to_string()
        })?
    };
    if pw.is_empty() {
        return Err("the password is empty".into());
    }
    Ok(pw)
}

fn admin(database: &Database, command: Command) -> Result<(), String> {
    // The password is read before anything connects.
    let password = match &command {
        Command::Createuser { password_stdin, .. }
        | Command::Changepassword { password_stdin, .. } => Some(read_password(*password_stdin)?),
        _ => None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime: {e}"))?;
    rt.block_on(async {
        if let Database::Postgres(options) = database {
            if matches!(command, Command::Migrate) {
                let applied = migrations::migrate(options).await?;
                if applied.is_empty() {
                    println!("the schema is up to date (version {})", migrations::LATEST);
                } else {
                    println!("applied migrations {applied:?}");
                }
                return Ok(());
            }
            migrations::check(options).await?;
        } else if matches!(command, Command::Migrate) {
            // Opening a SQLite file creates its tables.
            database.open(false).map_err(|e| open_error(database, e))?;
            println!("the schema is up to date");
            return Ok(());
        }
        let db = database.open(false).map_err(|e| open_error(database, e))?;
        run_admin(&db, command, password).await
    })
}

fn open_error(database: &Database, e: impl std::fmt::Display) -> String {
    format!("database {}: {e}", database.display())
}

async fn run_admin(db: &Db, command: Command, password: Option<String>) -> Result<(), String> {
    let hash = || db.hash_password(password.as_deref().expect("read before connecting"));
    match command {
        Command::Serve { .. } | Command::Status { .. } | Command::Migrate => {
            unreachable!("handled by the caller")
        }
        Command::Createuser {
            username, inactive, ..
        } => {
            let id = db
                .create_user(&username, &hash(), !inactive)
                .await
                .map_err(|e| e.to_string())?;
            println!("{id}");
        }
        Command::Changepassword { username, .. } => {
            let id = user_id(db, &username).await?;
            db.write(WriteOp::SetPassword(id, hash()))
                .await
                .map_err(|e| e.to_string())?;
            logout(db, id).await?;
        }
        Command::Logout { username } => {
            let id = user_id(db, &username).await?;
            logout(db, id).await?;
        }
        Command::Setactive { username, active } => {
            db.set_active(&username, active)
                .await
                .map_err(|e| e.to_string())?;
        }
        Command::Listusers => {
            for u in db.list_users().await.map_err(|e| e.to_string())? {
                let last = u
                    .last_login
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".into());
                println!("{}\t{}\t{}\t{}", u.id, u.username, u.is_active, last);
            }
        }
        Command::Flushexpiredtokens => {
            let now = ferricorn_auth::tokens::now() as i64;
            let n = db.flush_expired(now).await.map_err(|e| e.to_string())?;
            println!("{n}");
        }
        Command::Importusers { file } => import(db, &file).await?,
    }
    Ok(())
}

async fn user_id(db: &Db, username: &str) -> Result<i64, String> {
    Ok(db
        .user_by_username(username)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user named {username:?}"))?
        .id)
}

/// Revokes every token of the user issued until now (see
/// `endpoints::blacklist_all`).
async fn logout(db: &Db, user_id: i64) -> Result<(), String> {
    let at = ferricorn_auth::tokens::now().floor() as i64;
    db.write(WriteOp::LogoutUser { user_id, at })
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Splits one CSV line (RFC 4180 quoting, no line breaks inside fields).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

async fn import(db: &Db, file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let (mut imported, mut failed) = (0, 0);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let f = csv_fields(line);
        if n == 0 && f[0].trim().eq_ignore_ascii_case("username") {
            continue;
        }
        let row = n + 1;
        if f.len() != 3 {
            eprintln!(
                "{}:{row}: expected username,password_hash,is_active",
                file.display()
            );
            failed += 1;
            continue;
        }
        let active = match f[2].trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" => true,
            "0" | "false" | "f" | "no" => false,
            other => {
                eprintln!(
                    "{}:{row}: is_active {other:?} is not true or false",
                    file.display()
                );
                failed += 1;
                continue;
            }
        };
        match db.create_user(f[0].trim(), f[1].trim(), active).await {
            Ok(_) => imported += 1,
            Err(e) => {
                eprintln!("{}:{row}: {e}", file.display());
                failed += 1;
            }
        }
    }
    println!("imported {imported} users");
    if failed > 0 {
        return Err(format!("{failed} rows were not imported"));
    }
    Ok(())
}
