//! The one integration-test binary: it starts the real example binaries on
//! port 0 and drives them over real sockets (ripgrep's `tests/it` layout).
//!
//! Build the examples first (`cargo test` does; `cargo test --test it`
//! alone does not: run `cargo build --examples`).
//!
//! One module per area:
//! - `harness`: starting servers, raw connections, response parsing.
//! - `http1`: keep-alive, pipelining, chunked bodies, 100-continue, HEAD,
//!   HTTP/1.0, Date/Server headers.
//! - `limits`: 414, 431 and 413 at Gunicorn's limits and the flags'.
//! - `timeouts`: slow clients, idle keep-alive, request deadline, panics.
//! - `proxy`: forwarded headers and `--forwarded-allow-ips`.
//! - `proxy_protocol`: `--proxy-protocol` v1 and v2 headers and
//!   `--proxy-allow-from`.
//! - `gunicorn_policies`: `--header-map`, the method policy, contradictory
//!   scheme headers, a repeated Content-Type, leading empty lines.
//! - `unix_socket`: Unix sockets, several binds, IPv6.
//! - `config_cli`: flags, config file, environment, precedence, messages.
//! - `access_log`: Gunicorn's access log format and the JSON-lines log.
//! - `conformance`: Gunicorn's request-parser corpus replayed over sockets.
//! - `prefork`: the master's signals, workers, recycling and upgrades.
//! - `smuggling`: CL/TE, chunk and field-syntax attacks, and no desync.
//! - `slow_clients`: trickling and greedy clients, `--worker-connections`.
//! - `axum`: the axum example through the tower adapter, and the token
//!   layer against a running `ferricorn-auth`.

mod access_log;
mod axum;
mod config_cli;
mod conformance;
mod gunicorn_policies;
mod harness;
mod http1;
mod http2;
mod limits;
mod metrics;
mod nginx;
mod prefork;
mod proxy;
mod proxy_protocol;
mod slow_clients;
mod smuggling;
mod timeouts;
mod tls;
mod unix_socket;
