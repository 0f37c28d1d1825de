//! The error log and the access log.
//!
//! Lines are formatted on the caller's thread and written by one dedicated
//! writer thread, fed through a bounded channel. A request never waits for a
//! disk: when the channel is full the line is dropped and counted, and the
//! writer reports the count once it catches up. [`reopen`] (the master's
//! USR1) reopens the files, for log rotation.
//!
//! The logger is process-global, like Gunicorn's: [`init`] installs it from
//! a [`Config`]; before that, and if the writer thread is gone, lines go
//! straight to stderr so that nothing is lost at start-up. Each worker
//! process, being a fresh process image, calls [`init`] itself.
//!
//! Error log lines look like Gunicorn's:
//! `[2026-11-24 08:00:00 +0000] [PID] [INFO] message`.

pub(crate) mod access;
mod clock;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::config::{Config, LogLevel, LogTarget};
use access::{AccessFormatter, AccessRecord};
use clock::Civil;

/// Lines that may wait for the writer before new ones are dropped.
const QUEUE: usize = 16 * 1024;

struct Logger {
    tx: SyncSender<Msg>,
    level: LogLevel,
    access: Option<AccessFormatter>,
    dropped: Arc<AtomicU64>,
}

enum Msg {
    Error(String),
    Access(String),
    Reopen,
    Flush(mpsc::Sender<()>),
}

static LOGGER: RwLock<Option<Arc<Logger>>> = RwLock::new(None);

fn current() -> Option<Arc<Logger>> {
    LOGGER.read().ok().and_then(|g| g.clone())
}

/// Installs the process's logger from `config` (levels, files, access
/// format), replacing any earlier one. Fails when a log file cannot be
/// opened, naming the flag.
pub fn init(config: &Config) -> io::Result<()> {
    let error_out = Output::open(&config.error_logfile, Std::Err)
        .map_err(|e| named(e, "--error-logfile", &config.error_logfile))?;
    let access_out = match &config.access_logfile {
        Some(target) => {
            Some(Output::open(target, Std::Out).map_err(|e| named(e, "--access-logfile", target))?)
        }
        None => None,
    };
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let logger = Logger {
        tx,
        level: config.log_level,
        access: access_out
            .is_some()
            .then(|| AccessFormatter::new(&config.access_logformat)),
        dropped: Arc::clone(&dropped),
    };
    std::thread::Builder::new()
        .name("ferricorn-log".into())
        .spawn(move || writer(rx, error_out, access_out, dropped))?;
    let old = LOGGER
        .write()
        .map(|mut g| g.replace(Arc::new(logger)))
        .unwrap_or(None);
    if let Some(old) = old {
        // Let the old writer finish what it holds; it exits when its
        // channel closes.
        old.flush_for(Duration::from_secs(1));
    }
    Ok(())
}

fn named(e: io::Error, flag: &str, target: &LogTarget) -> io::Error {
    io::Error::new(e.kind(), format!("cannot open {target} ({flag}): {e}"))
}

/// Whether error-log messages at `level` are written.
pub fn enabled(level: LogLevel) -> bool {
    level >= current().map_or(LogLevel::Info, |l| l.level)
}

/// Writes `message` to the error log at `level`.
pub fn log(level: LogLevel, message: &str) {
    let logger = current();
    if level < logger.as_ref().map_or(LogLevel::Info, |l| l.level) {
        return;
    }
    let line = format!(
        "[{}] [{}] [{}] {}\n",
        Civil::from_system(SystemTime::now()).error_log(),
        std::process::id(),
        level.as_upper(),
        message
    );
    match logger {
        Some(l) => l.send(Msg::Error(line)),
        None => {
            let _ = io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Writes `message` at INFO whatever `--log-level` says: for the lines
/// that supervisors and tests wait for (`Listening at: ...`), which must not
/// vanish when an operator quiets the log.
pub fn announce(message: &str) {
    let line = format!(
        "[{}] [{}] [INFO] {}\n",
        Civil::from_system(SystemTime::now()).error_log(),
        std::process::id(),
        message
    );
    match current() {
        Some(l) => l.send(Msg::Error(line)),
        None => {
            let _ = io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Logs at DEBUG.
pub fn debug(message: &str) {
    log(LogLevel::Debug, message)
}
/// Logs at INFO.
pub fn info(message: &str) {
    log(LogLevel::Info, message)
}
/// Logs at WARNING.
pub fn warning(message: &str) {
    log(LogLevel::Warning, message)
}
/// Logs at ERROR.
pub fn error(message: &str) {
    log(LogLevel::Error, message)
}
/// Logs at CRITICAL.
pub fn critical(message: &str) {
    log(LogLevel::Critical, message)
}

/// Reopens the log files (after rotation; the master's USR1).
pub fn reopen() {
    if let Some(l) = current() {
        l.send(Msg::Reopen);
    }
}

/// Waits (up to a second) until every line logged so far is written. Call
/// before the process exits.
pub fn flush() {
    if let Some(l) = current() {
        l.flush_for(Duration::from_secs(1));
    }
}

/// Whether an access log is configured (so the request path can skip
/// collecting what only the access log needs).
pub(crate) fn access_enabled() -> bool {
    current().is_some_and(|l| l.access.is_some())
}

/// Writes one access log line.
pub(crate) fn access(record: &AccessRecord) {
    if let Some(l) = current() {
        if let Some(formatter) = &l.access {
            let mut line = formatter.format(record);
            line.push('\n');
            l.send(Msg::Access(line));
        }
    }
}

impl Logger {
    fn send(&self, msg: Msg) {
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(Msg::Error(line))) => {
                let _ = io::stderr().write_all(line.as_bytes());
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn flush_for(&self, limit: Duration) {
        let (tx, rx) = mpsc::channel();
        // A blocking send is fine here: this is the exit path.
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(limit);
        }
    }
}

#[derive(Clone, Copy)]
enum Std {
    Out,
    Err,
}

/// A log destination the writer thread owns.
enum Output {
    Std(Std),
    File {
        path: PathBuf,
        file: io::BufWriter<File>,
    },
}

impl Output {
    fn open(target: &LogTarget, std: Std) -> io::Result<Output> {
        match target {
            LogTarget::Std => Ok(Output::Std(std)),
            LogTarget::File(path) => Ok(Output::File {
                file: io::BufWriter::new(append(path)?),
                path: path.clone(),
            }),
        }
    }

    fn write(&mut self, line: &str) {
        let _ = match self {
            Output::Std(Std::Out) => io::stdout().lock().write_all(line.as_bytes()),
            Output::Std(Std::Err) => io::stderr().lock().write_all(line.as_bytes()),
            Output::File { file, .. } => file.write_all(line.as_bytes()),
        };
    }

    fn flush(&mut self) {
        let _ = match self {
            Output::Std(Std::Out) => io::stdout().flush(),
            Output::Std(Std::Err) => Ok(()),
            Output::File { file, .. } => file.flush(),
        };
    }

    fn reopen(&mut self) -> io::Result<()> {
        if let Output::File { path, file } = self {
            let _ = file.flush();
            *file = io::BufWriter::new(append(path)?);
        }
        Ok(())
    }
}

fn append(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn writer(
    rx: mpsc::Receiver<Msg>,
    mut error_out: Output,
    mut access_out: Option<Output>,
    dropped: Arc<AtomicU64>,
) {
    let stamp = |level: LogLevel, message: &str| {
        format!(
            "[{}] [{}] [{}] {}\n",
            Civil::from_system(SystemTime::now()).error_log(),
            std::process::id(),
            level.as_upper(),
            message
        )
    };
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        // Write everything queued, then flush once: one syscall per burst.
        while let Some(msg) = next {
            match msg {
                Msg::Error(line) => error_out.write(&line),
                Msg::Access(line) => {
                    if let Some(out) = &mut access_out {
                        out.write(&line)
                    }
                }
                Msg::Reopen => {
                    let mut failed = Vec::new();
                    for out in std::iter::once(&mut error_out).chain(access_out.as_mut()) {
                        if let Err(e) = out.reopen() {
                            failed.push(e.to_string());
                        }
                    }
                    for e in failed {
                        error_out.write(&stamp(
                            LogLevel::Error,
                            &format!("cannot reopen log file: {e}"),
                        ));
                    }
                }
                Msg::Flush(done) => {
                    error_out.flush();
                    if let Some(out) = &mut access_out {
                        out.flush();
                    }
                    let _ = done.send(());
                }
            }
            next = rx.try_recv().ok();
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            error_out.write(&stamp(
                LogLevel::Warning,
                &format!("{lost} log lines dropped: the log writer could not keep up"),
            ));
        }
        error_out.flush();
        if let Some(out) = &mut access_out {
            out.flush();
        }
    }
}
