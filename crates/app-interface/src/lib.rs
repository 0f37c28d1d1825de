//! The contract between ferricorn and an application.
//!
//! An application implements [`Application`]: one async method that takes a
//! [`Request`] and returns a [`Response`]. Everything else here exists to make
//! that method pleasant to write:
//!
//! - [`body`]: [`Body`], the request and response body (empty, full or
//!   streamed), read chunk by chunk or collected under a size limit.
//! - [`connection`]: [`ConnectionInfo`], the facts about the connection that
//!   travel with each request (peer, scheme, server address, worker id,
//!   request id), and [`WorkerInfo`] for the lifecycle hooks.
//! - [`environ`]: a WSGI/CGI-style `environ` view of a request.
//! - [`response`]: building responses, and [`IntoResponse`].
//! - [`handler`]: adapters that turn async functions, closures and blocking
//!   functions into applications.
//!
//! What this crate is not: a server. It has no runtime, no sockets and no
//! HTTP parser, so that an application can be written, unit-tested and
//! benchmarked without any of them, and so that the server may change its
//! internals without breaking applications. `.ci/run` checks that tokio and
//! hyper stay out of this crate's dependency tree.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod body;
pub mod connection;
pub mod environ;
pub mod handler;
pub mod response;

use std::future::Future;

pub use body::{Body, BodyError, BodySender};
pub use connection::{ConnectionInfo, HeaderOrder, Scheme, ServerAddr, TlsInfo, WorkerInfo};
pub use environ::environ;
pub use handler::{blocking, from_fn, Blocking, BlockingSpawner, FnApplication, SharedSpawner};
pub use response::{IntoResponse, Json};

/// A request as the application sees it: the `http` crate's request with a
/// ferricorn [`Body`]. A [`ConnectionInfo`] is in its extensions.
pub type Request = http::Request<Body>;

/// A response as the application returns it.
pub type Response = http::Response<Body>;

/// The error type for failures that cross the contract (body read errors,
/// start-up hook failures): boxed, so applications may use any error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An application served by ferricorn.
///
/// Why it looks the way it does:
///
/// - **One method, `&self`.** As in hyper 1.x and tower without
///   `poll_ready`: a worker serves many connections at once and every one of
///   them calls the same value, so the application must be `Send + Sync` and
///   shareable. State that changes goes behind the application's own locks or
///   in its store, which keeps the concurrency visible where it happens.
/// - **Failures are responses.** `call` returns a [`Response`], not a
///   `Result`: the application decides what a client sees for each failure.
///   A panic is caught by the server and answered with an empty 500; the
///   worker keeps serving.
/// - **The future is `Send`.** A worker may run several runtime threads
///   (`--threads`), and requests may move between them.
/// - **Lifecycle hooks run in each worker process.** [`on_worker_start`] runs
///   after the worker process exists and before it accepts a connection:
///   open database pools, files and threads there, never in `main` before the
///   server starts workers (the Gunicorn `--preload` trap: a connection opened
///   before a fork is shared by every child). [`on_worker_stop`] runs when the
///   worker has drained its connections.
///
/// [`on_worker_start`]: Application::on_worker_start
/// [`on_worker_stop`]: Application::on_worker_stop
///
/// A plain async function or closure is an application through [`from_fn`];
/// a blocking function through [`blocking`].
pub trait Application: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, request: Request) -> impl Future<Output = Response> + Send;

    /// Runs once in each worker process before it serves. An error stops the
    /// worker with the "cannot build the application" exit code, and the
    /// master stops instead of respawning it forever.
    fn on_worker_start(
        &self,
        worker: &WorkerInfo,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = worker;
        async { Ok(()) }
    }

    /// Runs once in each worker process after it has drained its connections.
    fn on_worker_stop(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

impl<A: Application> Application for std::sync::Arc<A> {
    fn call(&self, request: Request) -> impl Future<Output = Response> + Send {
        (**self).call(request)
    }

    fn on_worker_start(
        &self,
        worker: &WorkerInfo,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        (**self).on_worker_start(worker)
    }

    fn on_worker_stop(&self) -> impl Future<Output = ()> + Send {
        (**self).on_worker_stop()
    }
}
