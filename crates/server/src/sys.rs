//! The operating-system calls that need `unsafe`, and nothing else.
//!
//! This is the only module of the crate allowed to use `unsafe`; every block
//! carries a `SAFETY:` comment. Everything here is a thin, documented wrapper
//! over one libc call, so that the rest of the crate stays safe Rust.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Sends `signal` to process `pid`.
pub fn kill(pid: u32, signal: i32) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether process `pid` exists (signal 0 probe).
pub fn process_exists(pid: u32) -> bool {
    match kill(pid, 0) {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(libc::EPERM),
    }
}

/// Sets the process umask, returning the previous one.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask(2) always succeeds and touches no memory.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Sets the kernel's short name of this thread/process (`comm`, 15 bytes,
/// shown by `top` and `ps -o comm`).
pub fn set_comm(name: &str) {
    let mut buf = [0u8; 16];
    let bytes = name.as_bytes();
    let n = bytes.len().min(15);
    buf[..n].copy_from_slice(&bytes[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes;
    // `buf` is 16 bytes with a NUL at index 15 or earlier.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

/// Takes ownership of a file descriptor this process inherited (from the
/// master, or from systemd), after checking that it is open.
///
/// The descriptor number comes from the environment, so it is validated with
/// `fcntl(F_GETFD)` first; the caller must not use `fd` again afterwards.
pub fn take_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: F_GETFD only queries flags; it fails with EBADF on a closed fd.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd is open (checked above) and was handed to this process
    // to own; nothing else in the process refers to it. Setting CLOEXEC keeps
    // it from leaking into processes this one starts later.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Makes `command`, once spawned, inherit `fds` (which are otherwise
/// close-on-exec, as Rust opens every descriptor) and, when
/// `parent_death_signal` is set, receive that signal if this process dies.
pub fn inherit_fds(command: &mut Command, fds: Vec<RawFd>, parent_death_signal: Option<i32>) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: fcntl(2) and prctl(2) are, and the
    // closure allocates nothing (the Vec was allocated before the fork).
    unsafe {
        command.pre_exec(move || {
            for &fd in &fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(sig) = parent_death_signal {
                if libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// The resident set size of process `pid` in bytes, from `/proc/PID/statm`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(4096) as u64)
}

/// The kernel's clock ticks per second (`/proc/PID/stat` CPU times).
pub fn clock_ticks_per_second() -> i64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1)
}

/// Looks up a user by name or numeric id, returning (uid, primary gid).
pub fn lookup_user(user: &str) -> Option<(u32, u32)> {
    lookup_in("/etc/passwd", user).map(|f| (f[2], f[3]))
}

/// Looks up a group by name or numeric id.
pub fn lookup_group(group: &str) -> Option<u32> {
    lookup_in("/etc/group", group).map(|f| f[2])
}

/// Reads the colon-separated database `path` (passwd or group) for an entry
/// named `key`, or accepts a number as is. Returns the numeric fields at
/// positions 2 and 3 (3 is 0 for group entries).
fn lookup_in(path: &str, key: &str) -> Option<[u32; 4]> {
    if let Ok(id) = key.parse::<u32>() {
        let gid = if path.ends_with("passwd") {
            lookup_by_id(path, id).unwrap_or(id)
        } else {
            id
        };
        return Some([0, 0, id, gid]);
    }
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.first() == Some(&key) && f.len() >= 3).then(|| {
            [
                0,
                0,
                f[2].parse().unwrap_or(u32::MAX),
                f.get(3).and_then(|g| g.parse().ok()).unwrap_or(0),
            ]
        })
    })
}

fn lookup_by_id(path: &str, uid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 4 && f[2].parse() == Ok(uid)).then(|| f[3].parse().ok())?
    })
}
