//! Building the command of a worker process or of an upgraded master.
//!
//! Both are this program run again with its own arguments; what differs is
//! the environment, which names the inherited descriptors:
//!
//! - a worker gets `FERRICORN_WORKER_ID`, `FERRICORN_LISTEN_FDS` and
//!   `FERRICORN_CONTROL_FD`, and is executed from `/proc/self/exe` (the very
//!   image the master runs, even if the file on disk was replaced);
//! - a new master (USR2) gets `FERRICORN_MASTER_FDS` and
//!   `FERRICORN_OLD_MASTER_PID`, and is executed from the path the binary had
//!   at start, so that it is the binary now on disk.

use std::ffi::OsString;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use super::ArbiterSettings;
use crate::control::{ENV_CONTROL_FD, ENV_LISTEN_FDS, ENV_WORKER_ID};
use crate::listener::Listener;
use crate::sys;

/// Environment: the listening sockets handed to an upgraded master.
pub(crate) const ENV_MASTER_FDS: &str = "FERRICORN_MASTER_FDS";
/// Environment: the pid of the master that started this one by USR2.
pub(crate) const ENV_OLD_MASTER_PID: &str = "FERRICORN_OLD_MASTER_PID";

/// The variables that belong to one process and must not leak to children.
const PRIVATE_ENV: &[&str] = &[
    ENV_MASTER_FDS,
    ENV_OLD_MASTER_PID,
    ENV_WORKER_ID,
    ENV_LISTEN_FDS,
    ENV_CONTROL_FD,
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

static START: OnceLock<(PathBuf, Vec<OsString>, Option<u32>)> = OnceLock::new();

/// Records the binary's path, the arguments and the old master's pid as
/// they were at start. Call first thing in `main`, before anything could
/// replace the binary on disk.
pub(crate) fn remember_start() {
    START.get_or_init(|| {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
        let args = std::env::args_os().collect();
        let old = std::env::var(ENV_OLD_MASTER_PID)
            .ok()
            .and_then(|p| p.parse().ok());
        (exe, args, old)
    });
}

fn start() -> &'static (PathBuf, Vec<OsString>, Option<u32>) {
    remember_start();
    START.get().expect("initialised above")
}

/// The master that started this one by USR2, if any.
pub(crate) fn old_master_pid() -> Option<u32> {
    start().2
}

/// `PIDFILE.2`: where an upgraded master writes its pid until promoted.
pub(crate) fn upgraded_pidfile(path: &std::path::Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".2");
    PathBuf::from(name)
}

/// The listening sockets handed over by an old master, if this master was
/// started by USR2.
pub(crate) fn inherited_master_fds() -> std::io::Result<Vec<OwnedFd>> {
    let Ok(list) = std::env::var(ENV_MASTER_FDS) else {
        return Ok(Vec::new());
    };
    parse_fds(&list)?
        .into_iter()
        .map(sys::take_inherited_fd)
        .collect()
}

/// Parses a comma-separated fd list from the environment.
pub(crate) fn parse_fds(list: &str) -> std::io::Result<Vec<RawFd>> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("bad file descriptor list {list:?}"),
                )
            })
        })
        .collect()
}

fn base_command(program: impl Into<PathBuf>, arg0: OsString) -> Command {
    let (_, args, _) = start();
    let mut cmd = Command::new(program.into());
    cmd.arg0(arg0).args(args.iter().skip(1));
    for var in PRIVATE_ENV {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn join(fds: &[RawFd]) -> String {
    fds.iter()
        .map(|fd| fd.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Starts worker `id`. It inherits the listeners and `control_fd`, drops
/// privileges to `--user`/`--group`, and gets SIGTERM if the master dies.
pub(crate) fn worker(
    id: u32,
    settings: &ArbiterSettings,
    listener_fds: &[RawFd],
    control_fd: RawFd,
) -> std::io::Result<Child> {
    let mut cmd = base_command(
        "/proc/self/exe",
        format!("ferricorn: worker [{}]", settings.name).into(),
    );
    cmd.env(ENV_WORKER_ID, id.to_string())
        .env(ENV_LISTEN_FDS, join(listener_fds))
        .env(ENV_CONTROL_FD, control_fd.to_string())
        // systemd talks to the master only.
        .env_remove("NOTIFY_SOCKET");
    if let Some(gid) = settings.gid {
        cmd.gid(gid);
    }
    if let Some(uid) = settings.uid {
        cmd.uid(uid);
    }
    let mut fds = listener_fds.to_vec();
    fds.push(control_fd);
    sys::inherit_fds(&mut cmd, fds, Some(libc::SIGTERM));
    cmd.spawn()
}

/// Starts a new master from the binary on disk, handing it the listeners.
pub(crate) fn new_master(listeners: &[Listener]) -> std::io::Result<Child> {
    use std::os::fd::{AsFd, AsRawFd};
    let (exe, args, _) = start();
    let arg0 = args.first().cloned().unwrap_or_else(|| exe.clone().into());
    let fds: Vec<RawFd> = listeners.iter().map(|l| l.as_fd().as_raw_fd()).collect();
    let mut cmd = base_command(exe.clone(), arg0);
    cmd.env(ENV_MASTER_FDS, join(&fds))
        .env(ENV_OLD_MASTER_PID, std::process::id().to_string());
    // No parent-death signal: the new master must outlive this one.
    sys::inherit_fds(&mut cmd, fds, None);
    cmd.spawn()
}
