//! OS signals, turned into [`ArbiterCommand`]s.
//!
//! The handlers installed by signal-hook only record the signal; a thread of
//! ours turns each into a command on the arbiter's event channel, and the
//! arbiter's loop acts on it. Nothing runs inside a signal handler that could
//! deadlock: Gunicorn once logged from its handlers and had to stop.

use std::sync::mpsc::Sender;

use signal_hook::consts::signal::{
    SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH,
};
use signal_hook::iterator::Signals;

use super::Event;

/// What an operator (or a test, or systemd) asks the arbiter to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArbiterCommand {
    /// TERM: stop accepting, let in-flight requests finish, then exit 0.
    GracefulStop,
    /// INT, QUIT: stop now.
    QuickStop,
    /// HUP: re-read the configuration and replace the workers.
    Reload,
    /// TTIN: one worker more.
    IncrWorkers,
    /// TTOU: one worker fewer.
    DecrWorkers,
    /// USR1: reopen the log files.
    ReopenLogs,
    /// USR2: start a new master from the binary on disk.
    Reexec,
    /// CHLD: a child exited; reap it.
    ChildExited,
    /// WINCH: ignored (Gunicorn stops its workers when daemonized; we do not
    /// daemonize).
    Ignore,
}

impl ArbiterCommand {
    fn from_signal(signal: i32) -> ArbiterCommand {
        match signal {
            SIGTERM => ArbiterCommand::GracefulStop,
            SIGINT | SIGQUIT => ArbiterCommand::QuickStop,
            SIGHUP => ArbiterCommand::Reload,
            SIGTTIN => ArbiterCommand::IncrWorkers,
            SIGTTOU => ArbiterCommand::DecrWorkers,
            SIGUSR1 => ArbiterCommand::ReopenLogs,
            SIGUSR2 => ArbiterCommand::Reexec,
            SIGCHLD => ArbiterCommand::ChildExited,
            _ => ArbiterCommand::Ignore,
        }
    }
}

/// Installs the handlers and starts the thread that forwards signals to
/// `events`. Called before the master announces anything, so a signal sent
/// right after "Listening at" is never lost.
pub(super) fn forward(events: Sender<Event>) -> std::io::Result<()> {
    let mut signals = Signals::new([
        SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGCHLD, SIGWINCH,
    ])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let command = ArbiterCommand::from_signal(signal);
                if events.send(Event::Command(command)).is_err() {
                    break;
                }
            }
        })?;
    Ok(())
}
