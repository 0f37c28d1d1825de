//! Starting a master: process hygiene, the listening sockets, the
//! announcement, then the arbiter's loop.

use std::os::unix::process::CommandExt;

use std::sync::{Arc, Mutex};

use super::{Arbiter, ArbiterSettings};
use crate::config::{Config, ServerArgs};
use crate::listener::Listener;
use crate::metrics::{self, fleet::Fleet};
use crate::{logging, sys, systemd};

/// Environment marker: this process already carries its master title.
const ENV_TITLED: &str = "FERRICORN_TITLED";

/// Runs the master with `config` (resolved from `args`, which HUP resolves
/// again). Returns the process exit code.
pub(crate) fn master_main(args: ServerArgs, config: Config) -> i32 {
    let settings = match ArbiterSettings::from_config(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    set_title(&settings.name);
    if let Some(mask) = config.umask {
        sys::set_umask(mask);
    }
    if let Some(dir) = &config.chdir {
        if let Err(e) = std::env::set_current_dir(dir) {
            eprintln!("error: --chdir {}: {e}", dir.display());
            return 2;
        }
    }
    if let Err(e) = logging::init(&config) {
        eprintln!("error: cannot open the log file: {e}; check --error-logfile / --access-logfile");
        return 2;
    }
    let listeners = match listeners(&config) {
        Ok(l) => l,
        Err(e) => {
            logging::error(&e);
            logging::flush();
            return 1;
        }
    };
    let reload: super::Reloader = Box::new(move || {
        let config = Config::resolve(args.clone()).map_err(|e| e.to_string())?;
        ArbiterSettings::from_config(&config)
    });
    // Gunicorn's spelling: https:// for the binds that serve TLS.
    let tls = crate::tls::enabled(&config);
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| match l.local_addr() {
            Ok(a @ ferricorn_app_interface::ServerAddr::Tcp(_)) if tls => {
                a.to_string().replacen("http://", "https://", 1)
            }
            Ok(a) => a.to_string(),
            Err(_) => String::new(),
        })
        .collect();
    let mut arbiter = match Arbiter::new(settings, reload, listeners) {
        Ok(a) => a,
        Err(e) => {
            logging::error(&format!("cannot start: {e}"));
            logging::flush();
            return 1;
        }
    };
    crate::metrics::statsd::init(&config);
    if let Some(addr) = &config.metrics_bind {
        let fleet = Arc::new(Mutex::new(Fleet::default()));
        if let Err(e) = start_metrics(addr, &config.bind, Arc::clone(&fleet)) {
            logging::error(&e);
            logging::flush();
            return 1;
        }
        arbiter = arbiter.with_metrics(fleet);
    }
    if let Err(e) = arbiter.install_signals() {
        logging::error(&format!("cannot install signal handlers: {e}"));
        return 1;
    }
    logging::info(&format!("Starting ferricorn {}", env!("CARGO_PKG_VERSION")));
    for addr in addrs {
        logging::announce(&format!("Listening at: {addr} ({})", std::process::id()));
    }
    let code = arbiter.run();
    systemd::notify("STOPPING=1");
    logging::flush();
    code
}

/// Binds the metrics address and starts answering scrapes. A master started
/// by USR2 finds the address still held by the old master: it keeps trying
/// in the background until the old one has gone (the old master answers
/// scrapes meanwhile).
fn start_metrics(
    addr: &crate::config::BindAddr,
    app_binds: &[crate::config::BindAddr],
    fleet: Arc<Mutex<Fleet>>,
) -> Result<(), String> {
    let upgraded = super::spawn::old_master_pid().is_some();
    match metrics::http::bind(addr, app_binds) {
        Ok(listener) => {
            logging::info(&format!("Metrics at: {}/metrics", listener.describe()));
            metrics::http::serve(listener, fleet).map_err(|e| format!("--metrics-bind {addr}: {e}"))
        }
        Err(e) if upgraded && !app_binds.contains(addr) => {
            logging::info(&format!("{e}; retrying until the old master has gone"));
            let (addr, app_binds) = (addr.clone(), app_binds.to_vec());
            std::thread::spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_millis(250));
                if let Ok(listener) = metrics::http::bind(&addr, &app_binds) {
                    logging::info(&format!("Metrics at: {}/metrics", listener.describe()));
                    if let Err(e) = metrics::http::serve(listener, fleet) {
                        logging::error(&format!("--metrics-bind {addr}: {e}"));
                    }
                    return;
                }
            });
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The listening sockets: handed over by an old master (USR2), passed by
/// systemd (socket activation), or bound here.
fn listeners(config: &Config) -> Result<Vec<Listener>, String> {
    let inherited = super::spawn::inherited_master_fds()
        .map_err(|e| format!("cannot adopt the sockets of the old master: {e}"))?;
    let inherited = if inherited.is_empty() {
        systemd::listen_fds()
            .map_err(|e| format!("cannot adopt systemd's sockets (LISTEN_FDS): {e}"))?
    } else {
        inherited
    };
    if !inherited.is_empty() {
        return inherited
            .into_iter()
            .map(|fd| Listener::from_inherited_fd(fd).map_err(|e| format!("inherited socket: {e}")))
            .collect();
    }
    config
        .bind
        .iter()
        .map(|addr| {
            Listener::bind(addr, config.backlog).map_err(|e| {
                format!("Connection in use or cannot bind: {addr} ({e}); check --bind")
            })
        })
        .collect()
}

/// Gives the master the title `ferricorn: master [NAME]` in `ps`, by
/// executing itself once with that `argv[0]` (same pid, same descriptors).
/// Nothing else is running yet, so this costs one exec at start. If the exec
/// fails the master simply keeps its original title.
fn set_title(name: &str) {
    sys::set_comm("ferricorn");
    if std::env::var_os(ENV_TITLED).is_some() {
        return;
    }
    let title = format!("ferricorn: master [{name}]");
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(&title)
        .args(args)
        .env(ENV_TITLED, "1")
        .exec();
    let _ = err;
}
