//! ferricorn's server: serves any [`Application`] over HTTP/1.x, Gunicorn
//! style.
//!
//! Modules:
//!
//! - [`config`]: the flags ([`ServerArgs`]), their resolution against the
//!   environment and a TOML file, and the resolved [`Config`].
//! - [`listener`]: TCP and Unix listening sockets, bound or inherited.
//! - [`http`]: the hyper ↔ application adapter: limits, timeouts, proxy
//!   rules, panics, the protocol-error-to-status match.
//! - [`worker`]: the inside of one worker process: runtime, accept loops,
//!   connection limit, graceful drain, and the [`WorkerContext`] a
//!   supervisor reads.
//! - [`logging`]: the error log and the access log, written off the request
//!   path.
//! - [`main`] and [`serve_main`]: the entry points of a serving binary.
//!
//! What it is not: a framework (routing, middleware and extractors belong to
//! applications; a tower `Service` or an axum `Router` is served through
//! the `ferricorn-tower` crate), an HTTP/2 or TLS server (put a proxy in
//! front).
//!
//! [`Application`]: ferricorn_app_interface::Application
#![deny(missing_docs)]

pub mod arbiter;
pub mod config;
mod context;
mod control;
pub mod http;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod pidfile;
mod run;
mod sys;
pub mod systemd;
pub mod tls;
pub mod worker;

pub use config::{Config, ServerArgs};
pub use listener::Listener;
pub use run::{
    bind_all, is_worker_process, main, main_with_config, serve_main, serve_main_with_config,
    EXIT_APP_START, EXIT_CONFIG, EXIT_START,
};
pub use worker::{run_worker_process, serve, InFlight, InFlightRequest, WorkerContext};

/// The TOML crate the config file is read with, for applications that read
/// their own table ([`Config::app_table`]) with the same types.
pub use toml;
