//! The `-p/--pid` file: the master's process id, for init scripts and
//! logrotate.
//!
//! As in Gunicorn: a pidfile naming a live process stops the start ("already
//! running"); a stale one is replaced. A master started by a USR2 upgrade
//! writes `PIDFILE.2` and renames it to `PIDFILE` once the old master has
//! exited. A master removes the file on exit only if it still names it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::sys;

/// A pidfile this process wrote.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
}

impl Pidfile {
    /// Writes this process's pid to `path`, refusing when the file names
    /// another live process.
    pub fn create(path: &Path) -> io::Result<Pidfile> {
        let me = std::process::id();
        if let Some(pid) = read_pid(path) {
            if pid != me && sys::process_exists(pid) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "already running on PID {pid} (or pid file '{}' is stale); \
                         stop it or remove the file",
                        path.display()
                    ),
                ));
            }
        }
        // Write to a temporary name, then rename: a reader never sees a
        // half-written file.
        let tmp = path.with_extension(format!("tmp{me}"));
        {
            let mut f = fs::File::create(&tmp)?;
            writeln!(f, "{me}")?;
        }
        fs::rename(&tmp, path)?;
        Ok(Pidfile {
            path: path.to_path_buf(),
        })
    }

    /// The file's current path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the file to `to` (the promoted master's `PIDFILE.2` → `PIDFILE`).
    pub fn rename(&mut self, to: &Path) -> io::Result<()> {
        fs::rename(&self.path, to)?;
        self.path = to.to_path_buf();
        Ok(())
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        if read_pid(&self.path) == Some(std::process::id()) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The pid in a pidfile, if it holds one.
pub fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_and_remove() {
        let path = std::env::temp_dir().join(format!("ferricorn-pid-{}", std::process::id()));
        let pf = Pidfile::create(&path).unwrap();
        assert_eq!(read_pid(&path), Some(std::process::id()));
        drop(pf);
        assert!(!path.exists());
    }

    #[test]
    fn live_pid_refuses() {
        let path = std::env::temp_dir().join(format!("ferricorn-pid1-{}", std::process::id()));
        // pid 1 always exists.
        fs::write(&path, "1\n").unwrap();
        let err = Pidfile::create(&path).unwrap_err();
        assert!(
            err.to_string().contains("already running on PID 1"),
            "{err}"
        );
        fs::remove_file(&path).unwrap();
    }
}
