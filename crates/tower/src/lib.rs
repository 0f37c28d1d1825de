//! Serve the tower `Service` you already have — an axum `Router`, say —
//! under ferricorn's prefork master: Gunicorn's workers, signals, timeouts
//! naming the stuck request, recycling and hostile-input hardening around
//! the ecosystem's own service type.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//!
//! fn main() -> std::process::ExitCode {
//!     ferricorn_tower::main(|| Ok(Router::new().route("/", get(|| async { "Hello, World!\n" }))))
//! }
//! ```
//!
//! The closure runs in each worker process after the fork, inside the
//! worker's runtime, so pools, threads and `tokio::spawn`ed tasks it
//! creates belong to that worker (never open them in `main` before: a
//! connection made before a fork is shared by every child). An error it
//! returns stops the worker with exit code 3 and the master halts instead of
//! respawning forever, as for any ferricorn application.
//!
//! # What is accepted
//!
//! A service `S: tower::Service<http::Request<Body>> + Clone + Send + 'static`
//! where:
//!
//! - the request body is ferricorn's [`Body`]: the request body as it
//!   arrives, streamed, never buffered by the server, under
//!   `--limit-request-body`. It is an `http_body::Body<Data = Bytes, Error =
//!   BoxError>`, so axum's `Router` and any service generic over its body
//!   take it as it is. (A service that insists on another body type, say
//!   `axum::body::Body`, can take ours with
//!   `tower::ServiceExt::map_request(|r: Request<Body>| r.map(axum::body::Body::new))`.)
//! - the response is `http::Response<B>` for any body
//!   `B: http_body::Body + Send + 'static` whose `Data: bytes::Buf` and
//!   whose `Error` converts into a boxed error ([`ResponseBody`]). It is streamed to the client frame by
//!   frame, trailers included.
//! - `S::Error` converts into a boxed error ([`ServiceError`]) and
//!   `S::Future: Send + 'static`.
//!
//! A service that does not fit fails to compile, with a message naming the
//! bound it misses:
//!
//! ```compile_fail
//! // The response body is a number, not an `http_body::Body`.
//! let svc = tower::service_fn(|_req: http::Request<ferricorn_tower::Body>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(42u32))
//! });
//! let _app = ferricorn_tower::from_service(svc);
//! ```
//!
//! ```compile_fail
//! // The error is a number, not convertible into a boxed error.
//! let svc = tower::service_fn(|_req: http::Request<ferricorn_tower::Body>| async {
//!     Err::<http::Response<ferricorn_tower::Body>, u32>(7)
//! });
//! let _app = ferricorn_tower::from_service(svc);
//! ```
//!
//! # What happens to each request
//!
//! ferricorn parses and checks the request (framing, limits, the proxy
//! rules) before the service sees it, exactly as for an [`Application`]
//! written against ferricorn's own trait: the same HTTP layer guards both.
//! The service is cloned for the request (as hyper and axum do), then
//! `poll_ready` is awaited before `call`, so a service that applies
//! back-pressure (a concurrency limit, a rate limit) is honoured.
//!
//! The connection facts travel as request extensions: a
//! [`ConnectionInfo`] (the peer after `--forwarded-allow-ips` and PROXY
//! protocol rules, the scheme, the listener, the worker id and the request
//! id) and a [`HeaderOrder`]. axum handlers read them with the
//! [`Connection`] extractor (feature `axum`, on by default) or with
//! `axum::Extension<ConnectionInfo>`.
//!
//! A service error (`Err` from `poll_ready` or `call`) becomes an empty 500:
//! nothing of the error reaches the client, which may hold a connection
//! string or a query; the error log gets one line with the method, the path
//! and the error's text. A panic in the service is caught by the server as
//! for any application: an empty 500, a log line, and the worker serves on.
//!
//! # Why a crate of its own
//!
//! `ferricorn-app-interface` is the contract crate and stays free of any
//! runtime and of tower; `ferricorn-server` serves that contract and has no
//! reason to know tower. This crate is the one place that knows both
//! sides — tower's `Service` and ferricorn's `Application` — and only an
//! application that brings a tower service pays for it.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod adapter;
mod body;
#[cfg(feature = "axum")]
mod extract;

use std::process::ExitCode;

pub use adapter::{from_service, TowerApp};
pub use body::{ResponseBody, ServiceError};
#[cfg(feature = "axum")]
pub use extract::{Connection, MissingConnectionInfo};
pub use ferricorn_app_interface::{
    Application, Body, BoxError, ConnectionInfo, HeaderOrder, Request, Response,
};
pub use ferricorn_server::Config;

/// Parses the process's command line (every ferricorn server flag) and
/// serves the service `make_service` builds in each worker process.
///
/// The tower counterpart of [`ferricorn_server::main`]; see the crate docs
/// for the accepted service types.
pub fn main<S, F>(make_service: F) -> ExitCode
where
    F: Fn() -> Result<S, BoxError> + Send + Sync + 'static,
    TowerApp<S>: Application,
{
    ferricorn_server::main(move || make_service().map(TowerApp::new))
}

/// As [`main`], with a factory that reads the resolved server
/// configuration, for example its own table of the config file
/// ([`Config::app_table`]).
pub fn main_with_config<S, F>(make_service: F) -> ExitCode
where
    F: Fn(&Config) -> Result<S, BoxError> + Send + Sync + 'static,
    TowerApp<S>: Application,
{
    ferricorn_server::main_with_config(move |config: &Config| {
        make_service(config).map(TowerApp::new)
    })
}
