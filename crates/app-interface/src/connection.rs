//! Facts about the connection a request arrived on.
//!
//! The server puts one [`ConnectionInfo`] in every request's extensions:
//! WSGI's `environ` split from the body, typed. Read it with
//! [`ConnectionInfo::of`].

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::Request;

/// The scheme the client used, after proxy rules (`X-Forwarded-Proto` from a
/// trusted proxy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS (terminated by the server or a trusted proxy).
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The listening address a connection was accepted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAddr {
    /// A TCP listener (IPv4 or IPv6).
    Tcp(SocketAddr),
    /// A Unix domain socket listener at this path.
    Unix(PathBuf),
}

impl fmt::Display for ServerAddr {
    /// Gunicorn's spelling: `http://HOST:PORT` or `unix:PATH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddr::Tcp(addr) => write!(f, "http://{addr}"),
            ServerAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Connection facts carried in each request's extensions.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    /// The socket's peer; `None` on a Unix socket. Behind a load balancer
    /// that sends a PROXY protocol header, the balancer.
    pub socket_peer: Option<SocketAddr>,
    /// The client's address as the application should believe it: the
    /// socket peer's IP, or the address a PROXY protocol header named
    /// (`--proxy-protocol`), or the client's entry in `X-Forwarded-For` /
    /// `Forwarded` when that peer is in `--forwarded-allow-ips`. WSGI's
    /// `REMOTE_ADDR`. Empty on a Unix socket without either.
    pub remote_addr: String,
    /// The client's port when known (WSGI's `REMOTE_PORT`).
    pub remote_port: Option<u16>,
    /// The scheme, after proxy rules.
    pub scheme: Scheme,
    /// The listener that accepted the connection.
    pub server: ServerAddr,
    /// The serving worker's number (1-based, stable across its lifetime).
    pub worker_id: u32,
    /// A unique id for this request: the client's `X-Request-Id` when it
    /// sent a well-formed one, else one made by the server. It appears in the
    /// access log and in worker-timeout reports.
    pub request_id: String,
    /// The TLS session, when the connection is TLS (`--certfile`).
    pub tls: Option<TlsInfo>,
}

/// What a TLS connection negotiated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The ALPN protocol chosen (`h2`, `http/1.1`), if the client offered
    /// one.
    pub alpn: Option<String>,
    /// The subject of the client's certificate (`CN=client, O=Example`),
    /// when it presented one (`--cert-reqs 1` or `2`): verified against
    /// `--ca-certs` by the handshake.
    pub client_subject: Option<String>,
}

impl ConnectionInfo {
    /// The connection facts of a request, if the server attached them
    /// (always, for requests that came from ferricorn's server).
    pub fn of(request: &Request) -> Option<&ConnectionInfo> {
        request.extensions().get::<ConnectionInfo>()
    }
}

/// What a worker's lifecycle hooks are told about the worker.
#[derive(Clone, Debug)]
pub struct WorkerInfo {
    /// The worker's number (1-based).
    pub worker_id: u32,
    /// The worker's process id.
    pub pid: u32,
}

/// A request's header fields in the order they arrived, repeats kept.
///
/// `http::HeaderMap` groups the values of a name together (names in order
/// of first arrival), so `A: 1`, `B: 2`, `A: 3` iterates as `A, A, B`. The
/// server recovers the true order from the raw head when it can and puts a
/// `HeaderOrder` in the request's extensions; read it with
/// [`HeaderOrder::of`], which falls back to the map's order.
#[derive(Clone, Debug, Default)]
pub struct HeaderOrder(pub Vec<(http::HeaderName, http::HeaderValue)>);

impl HeaderOrder {
    /// The request's header fields in arrival order when the server recorded
    /// it, else in `HeaderMap` order.
    pub fn of(request: &Request) -> Vec<(&http::HeaderName, &http::HeaderValue)> {
        match request.extensions().get::<HeaderOrder>() {
            Some(order) => order.0.iter().map(|(n, v)| (n, v)).collect(),
            None => request.headers().iter().collect(),
        }
    }
}
