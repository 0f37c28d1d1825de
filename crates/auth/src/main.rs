//! `ferricorn-auth`: the simplejwt-compatible token service and its admin
//! commands.
//!
//! ```text
//! ferricorn-auth [--db PATH] serve [server flags]
//! ferricorn-auth [--db PATH] createuser USERNAME [--password-stdin] [--inactive]
//! ferricorn-auth [--db PATH] changepassword USERNAME [--password-stdin]
//! ferricorn-auth [--db PATH] setactive USERNAME true|false
//! ferricorn-auth [--db PATH] listusers
//! ferricorn-auth [--db PATH] flushexpiredtokens
//! ferricorn-auth [--db PATH] importusers FILE
//! ```
//!
//! The database is `--db`, else `$FERRICORN_AUTH_DB`, else `db` in the
//! `[auth]` table of the config file (serve only), else
//! `ferricorn-auth.sqlite3` in the working directory; it is created on first
//! use. Passwords are read from the first line of standard input with
//! `--password-stdin`, else from `$FERRICORN_AUTH_PASSWORD`; there is no
//! interactive prompt (a prompt that echoes would leak the password to the
//! terminal, and scripts are the common caller).
//!
//! Exit codes: 0 success; 1 the command failed (message on stderr); 2 bad
//! usage; `serve` exits as the server's `serve_main` decides.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use ferricorn_auth::store::{SqliteStore, Store};
use ferricorn_auth::{load_settings, passwords, AuthApp, DEFAULT_DB};
use ferricorn_server::{Config, ServerArgs};

#[derive(Parser)]
#[command(
    name = "ferricorn-auth",
    version,
    about = "A djangorestframework-simplejwt compatible JWT token service"
)]
struct Cli {
    /// SQLite database file, created on first use [env: FERRICORN_AUTH_DB]
    /// [default: ferricorn-auth.sqlite3]
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,

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
    /// Set a user's password.
    Changepassword {
        /// The user name.
        username: String,
        /// Read the password from the first line of standard input (else
        /// $FERRICORN_AUTH_PASSWORD).
        #[arg(long)]
        password_stdin: bool,
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
    let result = match cli.command {
        Command::Serve { server } => return serve(cli.db, *server),
        other => {
            let env_db = std::env::var_os("FERRICORN_AUTH_DB").map(PathBuf::from);
            let db = cli.db.or(env_db);
            admin(&db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB)), other)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferricorn-auth: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(db: Option<PathBuf>, server: ServerArgs) -> ExitCode {
    // Only the [auth] table is read here; serve_main reads the server's part.
    let table = match Config::resolve(server.clone()) {
        Ok(config) => config.app_table("auth").cloned(),
        // serve_main reports configuration errors with the right exit code.
        Err(_) => None,
    };
    let (settings, db) = match load_settings(table.as_ref(), db, |k| std::env::var(k).ok()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(ferricorn_server::EXIT_CONFIG);
        }
    };
    // The database is opened by each worker process in make_app, after the
    // fork: a SQLite connection must never cross a fork.
    ferricorn_server::serve_main(server, move || AuthApp::open(settings.clone(), &db))
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

fn open(db: &Path) -> Result<SqliteStore, String> {
    SqliteStore::open(db).map_err(|e| format!("database {}: {e}", db.display()))
}

fn admin(db: &Path, command: Command) -> Result<(), String> {
    match command {
        Command::Serve { .. } => unreachable!("handled by serve"),
        Command::Createuser {
            username,
            password_stdin,
            inactive,
        } => {
            let pw = read_password(password_stdin)?;
            let store = open(db)?;
            let id = store
                .create_user(&username, &passwords::hash(&pw), !inactive)
                .map_err(|e| e.to_string())?;
            println!("{id}");
        }
        Command::Changepassword {
            username,
            password_stdin,
        } => {
            let pw = read_password(password_stdin)?;
            let store = open(db)?;
            let user = store
                .user_by_username(&username)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user named {username:?}"))?;
            store
                .set_password(user.id, &passwords::hash(&pw))
                .map_err(|e| e.to_string())?;
        }
        Command::Setactive { username, active } => {
            open(db)?
                .set_active(&username, active)
                .map_err(|e| e.to_string())?;
        }
        Command::Listusers => {
            for u in open(db)?.list_users().map_err(|e| e.to_string())? {
                let last = u
                    .last_login
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".into());
                println!("{}\t{}\t{}\t{}", u.id, u.username, u.is_active, last);
            }
        }
        Command::Flushexpiredtokens => {
            let now = ferricorn_auth::tokens::now() as i64;
            let n = open(db)?.flush_expired(now).map_err(|e| e.to_string())?;
            println!("{n}");
        }
        Command::Importusers { file } => import(&Arc::new(open(db)?), &file)?,
    }
    Ok(())
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

fn import(store: &Arc<SqliteStore>, file: &Path) -> Result<(), String> {
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
        match store.create_user(f[0].trim(), f[1].trim(), active) {
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
