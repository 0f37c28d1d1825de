//! systemd integration: socket activation and `sd_notify`.
//!
//! - Socket activation: when `LISTEN_PID` is this process and `LISTEN_FDS`
//!   is set, the listening sockets are fds 3.. and nothing is bound.
//! - `sd_notify`: `READY=1` once the first workers serve, `RELOADING=1` on
//!   HUP, `STOPPING=1` on stop, and `MAINPID=` from a master started by a
//!   USR2 upgrade, so systemd follows the new master (the unit needs
//!   `NotifyAccess=all` for that). Gunicorn's USR2 does not work under
//!   systemd; this is why ours does.
//!
//! Both are a handful of lines over std, so no crate is taken for them.

use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;

use crate::sys;

/// First fd passed by systemd (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// Takes the sockets systemd passed to this process, if any, and removes the
/// variables so that no child mistakes them for its own.
pub fn listen_fds() -> std::io::Result<Vec<OwnedFd>> {
    let pid_matches = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // Called at start, before the process has other threads.
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    if !pid_matches || count <= 0 {
        return Ok(Vec::new());
    }
    (LISTEN_FDS_START..LISTEN_FDS_START + count)
        .map(sys::take_inherited_fd)
        .collect()
}

/// Sends `state` to systemd when it supervises this process; a no-op
/// otherwise. Failures are ignored: systemd is an observer, not a
/// dependency of serving.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        if let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(name) {
            let _ = sock.send_to_addr(state.as_bytes(), &addr);
        }
    } else {
        let _ = sock.send_to(state.as_bytes(), &path);
    }
}
