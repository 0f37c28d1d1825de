//! Listening sockets: TCP (IPv4 and IPv6) and Unix, bound with socket2 so
//! the options Gunicorn sets (SO_REUSEADDR, the backlog) are explicit, or
//! adopted from a file descriptor inherited from the master.
//!
//! A [`Listener`] is a plain std socket in non-blocking mode. It becomes a
//! tokio listener only inside a worker's runtime ([`Listener::into_tokio`]),
//! so the master, which never starts a runtime, can hold and pass it on.

use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use ferricorn_app_interface::ServerAddr;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::config::BindAddr;

/// A listening socket.
#[derive(Debug)]
pub enum Listener {
    /// A TCP socket (IPv4 or IPv6).
    Tcp(TcpListener),
    /// A Unix domain socket and its path.
    Unix(UnixListener, PathBuf),
}

/// The family of an inherited socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerKind {
    /// TCP over IPv4 or IPv6.
    Tcp,
    /// A Unix domain stream socket.
    Unix,
}

/// A listener converted for the worker's runtime.
pub(crate) enum TokioListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Listener {
    /// Binds `addr` with SO_REUSEADDR and starts listening with `backlog`.
    /// For a Unix socket, a stale socket file left by a dead server is
    /// removed first; any other file at that path is an error.
    pub fn bind(addr: &BindAddr, backlog: u32) -> io::Result<Listener> {
        let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        match addr {
            BindAddr::Tcp(sa) => {
                let socket =
                    Socket::new(Domain::for_address(*sa), Type::STREAM, Some(Protocol::TCP))?;
                socket.set_reuse_address(true)?;
                socket.set_cloexec(true)?;
                socket.bind(&SockAddr::from(*sa))?;
                socket.listen(backlog)?;
                socket.set_nonblocking(true)?;
                Ok(Listener::Tcp(socket.into()))
            }
            BindAddr::Unix(path) => {
                remove_stale_socket(path)?;
                let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
                socket.set_cloexec(true)?;
                socket.bind(&SockAddr::unix(path)?)?;
                socket.listen(backlog)?;
                socket.set_nonblocking(true)?;
                Ok(Listener::Unix(socket.into(), path.clone()))
            }
        }
    }

    /// Adopts an already-listening socket inherited from the master, checking
    /// that it is of the `kind` expected. The socket is set non-blocking.
    pub fn from_owned_fd(fd: OwnedFd, kind: ListenerKind) -> io::Result<Listener> {
        let socket = Socket::from(fd);
        let found = match socket.domain()? {
            d if d == Domain::UNIX => ListenerKind::Unix,
            d if d == Domain::IPV4 || d == Domain::IPV6 => ListenerKind::Tcp,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "inherited fd is not a TCP or Unix socket",
                ))
            }
        };
        if found != kind {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("inherited fd is a {found:?} socket, expected {kind:?}"),
            ));
        }
        Listener::from_socket(socket)
    }

    /// Adopts an inherited listening socket of either family.
    pub fn from_inherited_fd(fd: OwnedFd) -> io::Result<Listener> {
        Listener::from_socket(Socket::from(fd))
    }

    fn from_socket(socket: Socket) -> io::Result<Listener> {
        socket.set_nonblocking(true)?;
        if socket.domain()? == Domain::UNIX {
            let listener: UnixListener = socket.into();
            let path = listener
                .local_addr()?
                .as_pathname()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            Ok(Listener::Unix(listener, path))
        } else {
            Ok(Listener::Tcp(socket.into()))
        }
    }

    /// The family of this socket.
    pub fn kind(&self) -> ListenerKind {
        match self {
            Listener::Tcp(_) => ListenerKind::Tcp,
            Listener::Unix(..) => ListenerKind::Unix,
        }
    }

    /// The address actually bound (the real port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<ServerAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(ServerAddr::Tcp),
            Listener::Unix(_, path) => Ok(ServerAddr::Unix(path.clone())),
        }
    }

    /// A second handle to the same socket.
    pub fn try_clone(&self) -> io::Result<Listener> {
        match self {
            Listener::Tcp(l) => l.try_clone().map(Listener::Tcp),
            Listener::Unix(l, p) => l.try_clone().map(|l| Listener::Unix(l, p.clone())),
        }
    }

    /// Removes a Unix socket's file (when the server that made it stops for
    /// good; not when a worker exits, since the socket lives on in the
    /// master). Does nothing for TCP.
    pub fn remove_socket_file(&self) {
        if let Listener::Unix(_, path) = self {
            let _ = remove_stale_socket(path);
        }
    }

    /// Converts for the current tokio runtime. Must be called inside one.
    pub(crate) fn into_tokio(self) -> io::Result<TokioListener> {
        match self {
            Listener::Tcp(l) => tokio::net::TcpListener::from_std(l).map(TokioListener::Tcp),
            Listener::Unix(l, _) => tokio::net::UnixListener::from_std(l).map(TokioListener::Unix),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l, _) => l.as_fd(),
        }
    }
}

impl From<Listener> for OwnedFd {
    fn from(l: Listener) -> OwnedFd {
        match l {
            Listener::Tcp(l) => l.into(),
            Listener::Unix(l, _) => l.into(),
        }
    }
}

/// Removes `path` if it is a socket; refuses to touch anything else.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; remove it or bind elsewhere",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_port_zero_reports_real_port() {
        let l = Listener::bind(&BindAddr::Tcp("127.0.0.1:0".parse().unwrap()), 16).unwrap();
        match l.local_addr().unwrap() {
            ServerAddr::Tcp(a) => assert_ne!(a.port(), 0),
            other => panic!("{other:?}"),
        }
        let fd: OwnedFd = l.try_clone().unwrap().into();
        assert!(Listener::from_owned_fd(fd, ListenerKind::Unix).is_err());
        let fd: OwnedFd = l.into();
        let again = Listener::from_owned_fd(fd, ListenerKind::Tcp).unwrap();
        assert_eq!(again.kind(), ListenerKind::Tcp);
    }

    #[test]
    fn unix_socket_replaces_stale_file_but_not_others() {
        let dir = std::env::temp_dir().join(format!("ferricorn-listener-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let addr = BindAddr::Unix(path.clone());
        let first = Listener::bind(&addr, 16).unwrap();
        drop(first); // leaves the file behind, as a crashed server would
        let second = Listener::bind(&addr, 16).unwrap();
        assert_eq!(second.local_addr().unwrap(), ServerAddr::Unix(path.clone()));
        let fd: OwnedFd = second.into();
        let adopted = Listener::from_inherited_fd(fd).unwrap();
        assert_eq!(
            adopted.local_addr().unwrap(),
            ServerAddr::Unix(path.clone())
        );
        adopted.remove_socket_file();
        assert!(!path.exists());

        let plain = dir.join("plain");
        fs::write(&plain, "x").unwrap();
        let err = Listener::bind(&BindAddr::Unix(plain.clone()), 16).unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert!(plain.exists());
    }
}
