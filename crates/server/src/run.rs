//! The entry points of a binary that serves an application: [`main`] and
//! [`serve_main`]. Exit codes are chosen here and only here.
//!
//! The same binary plays two parts: started by a person (or systemd) it is
//! the master (`crate::arbiter`), which starts `--workers` copies of itself;
//! started by the master (`FERRICORN_WORKER_ID` in its environment) it is a
//! worker, which serves. The worker part stays callable on its own through
//! [`crate::worker::run_worker_process`].

use std::process::ExitCode;

use clap::Parser;
use ferricorn_app_interface::{Application, BoxError};

use crate::arbiter;
use crate::config::{Config, ServerArgs};
use crate::listener::Listener;
use crate::logging;
use crate::worker::supervised;

/// Exit code: the configuration is invalid (as clap uses for bad flags).
pub const EXIT_CONFIG: u8 = 2;
/// Exit code: the server could not start (a bind, a log file).
pub const EXIT_START: u8 = 1;
/// Exit code: the application could not be built or started (Gunicorn's
/// `WORKER_BOOT_ERROR`).
pub const EXIT_APP_START: u8 = 3;

/// The command line of a binary that only serves: the server's flags.
#[derive(Parser, Debug)]
#[command(
    name = "ferricorn",
    version,
    about = "Serve an application with ferricorn"
)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

/// Parses the process's command line and serves `make_app`'s application.
///
/// ```no_run
/// use ferricorn_app_interface::{from_fn, Request};
///
/// async fn hello(_req: Request) -> &'static str {
///     "Hello, World!\n"
/// }
///
/// fn main() -> std::process::ExitCode {
///     ferricorn_server::main(|| Ok(from_fn(hello)))
/// }
/// ```
pub fn main<A, F>(make_app: F) -> ExitCode
where
    A: Application,
    F: Fn() -> Result<A, BoxError> + Send + Sync + 'static,
{
    serve_main(Cli::parse().server, make_app)
}

/// As [`main`], for an application whose factory reads the resolved
/// configuration: its own table of the config file
/// ([`Config::app_table`]), the worker count, the timeouts. The factory
/// runs in each worker process, after the fork, like [`main`]'s.
pub fn main_with_config<A, F>(make_app: F) -> ExitCode
where
    A: Application,
    F: Fn(&Config) -> Result<A, BoxError> + Send + Sync + 'static,
{
    serve_main_with_config(Cli::parse().server, make_app)
}

/// Resolves `args`, then runs the master, which binds the listeners and
/// supervises worker processes that each serve the application `make_app`
/// builds, until a signal stops it (see the README's signal table).
///
/// `--check-config` exits 0 or 1; `--print-config` prints the resolved
/// configuration as TOML. A bad configuration exits 2 with a message on
/// stderr; a failed bind exits 1; an application that cannot start in a
/// worker stops the master with exit code 3. `Listening at: ...` lines are
/// logged once the sockets are bound and the signal handlers installed.
pub fn serve_main<A, F>(args: ServerArgs, make_app: F) -> ExitCode
where
    A: Application,
    F: Fn() -> Result<A, BoxError> + Send + Sync + 'static,
{
    serve_main_with_config(args, move |_: &Config| make_app())
}

/// As [`serve_main`], with a factory that reads the resolved configuration
/// (see [`main_with_config`]).
pub fn serve_main_with_config<A, F>(args: ServerArgs, make_app: F) -> ExitCode
where
    A: Application,
    F: Fn(&Config) -> Result<A, BoxError> + Send + Sync + 'static,
{
    // Before anything else: the binary's path and arguments as started, for
    // workers and for a USR2 upgrade.
    arbiter::remember_start();
    if let Some(addr) = &args.status {
        return ExitCode::from(crate::metrics::status::run(addr, args.watch) as u8);
    }
    let (check, print) = (args.check_config, args.print_config);
    let config = match Config::resolve(args.clone()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(if check { 1 } else { EXIT_CONFIG });
        }
    };
    if let Some(worker_id) = supervised::worker_id_from_env() {
        return worker_main(config, worker_id, make_app);
    }
    if check {
        eprintln!("Configuration OK");
        return ExitCode::SUCCESS;
    }
    if print {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    let code = arbiter::master_main(args, config);
    ExitCode::from(u8::try_from(code).unwrap_or(EXIT_START))
}

/// Whether this process is a worker started by a master. Workers run the
/// binary's `main` again (the master executes the binary for each), so an
/// application's `main` uses this to skip what belongs to the master alone:
/// a schema migration, a check before serving, a warning printed once.
pub fn is_worker_process() -> bool {
    supervised::worker_id_from_env().is_some()
}

/// A worker process started by the master: serve until told to stop.
fn worker_main<A, F>(config: Config, worker_id: u32, make_app: F) -> ExitCode
where
    A: Application,
    F: Fn(&Config) -> Result<A, BoxError> + Send + Sync + 'static,
{
    if let Err(e) = logging::init(&config) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_START);
    }
    let for_app = config.clone();
    let code = match supervised::run(config, worker_id, move || make_app(&for_app)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_app_start() => {
            logging::critical(&format!("Worker failed to boot: {e}"));
            ExitCode::from(EXIT_APP_START)
        }
        Err(e) => {
            logging::critical(&e.to_string());
            ExitCode::from(EXIT_START)
        }
    };
    logging::flush();
    code
}

/// Binds every `--bind` address, or says which one failed and why.
pub fn bind_all(config: &Config) -> Result<Vec<Listener>, String> {
    config
        .bind
        .iter()
        .map(|addr| {
            Listener::bind(addr, config.backlog)
                .map_err(|e| format!("Cannot listen at {addr} (--bind): {e}"))
        })
        .collect()
}
