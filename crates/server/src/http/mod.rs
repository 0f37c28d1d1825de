//! The hyper ↔ application adapter: one HTTP/1 connection from accept to
//! close.
//!
//! - `conn`: the connection driver and its timeouts (`--header-timeout`,
//!   `--keep-alive`), and the worker's drain phases.
//! - `service`: the hyper service that calls the application.
//! - `body`: the request body under `--limit-request-body`, the response
//!   body counted for the access log.
//! - `limits`: request line and header field limits.
//! - `proxy`: `--forwarded-allow-ips` and the forwarding headers.
//! - `proxy_protocol`: `--proxy-protocol`, the PROXY header a connection
//!   may begin with.
//! - `order`: the raw heads (arrival order of fields, what hyper's parse
//!   hides) and the framing of the bytes between them.
//! - `chunked`: the strict check of chunked request bodies.
//! - [`error`]: protocol errors and the one match from error to status.
//!
//! What hyper does for us: framing (Content-Length, chunked both ways;
//! request bodies' chunked framing is also checked strictly by `chunked`),
//! keep-alive and HTTP/1.0 semantics, pipelining, `Expect: 100-continue`
//! (sent when the application first polls the body), HEAD, the `Date`
//! header, and the 400/414/431 answers to heads it cannot parse.

/// `AsyncWrite` for a wrapper that only watches or replays reads: every
/// write goes unchanged to the stream in its `inner` field.
macro_rules! forward_async_write {
    ($wrapper:ident) => {
        impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $wrapper<S> {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
            }

            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }
        }
    };
}

mod body;
mod chunked;
pub(crate) mod conn;
pub mod error;
mod limits;
mod order;
mod proxy;
mod proxy_protocol;
mod service;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferricorn_app_interface::{BlockingSpawner, ServerAddr, SharedSpawner};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::config::{Config, ForwardedAllowIps, HeaderMapMode, ProxyProtocol};
use crate::context::WorkerContext;
use conn::{Activity, Phase, Timeouts, TrackedIo};
use service::{ConnMeta, ConnService};

/// Request-head and body limits, resolved.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub request_line: usize,
    pub fields: usize,
    pub field_size: usize,
    pub body: Option<u64>,
}

/// Gunicorn's request-head policies, resolved: `--header-map`,
/// `--permit-unconventional-http-method`, `--casefold-http-method`,
/// `--permit-missing-host`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeadRules {
    pub header_map: HeaderMapMode,
    pub permit_unconventional_method: bool,
    pub casefold_method: bool,
    pub permit_missing_host: bool,
}

/// What every connection of a worker shares.
pub(crate) struct Shared<A> {
    pub app: Arc<A>,
    pub settings: HttpSettings,
    pub ctx: WorkerContext,
    pub spawner: SharedSpawner,
}

/// The HTTP settings of a worker, taken from its [`Config`] once.
pub(crate) struct HttpSettings {
    pub limits: Limits,
    pub forwarded: ForwardedAllowIps,
    pub rules: HeadRules,
    /// `--proxy-protocol` and `--proxy-allow-from`.
    pub proxy_protocol: ProxyProtocol,
    pub proxy_allow: ForwardedAllowIps,
    pub request_timeout: Option<Duration>,
    pub timeouts: Timeouts,
    /// The largest head hyper accepts (`Config::max_head_size`).
    pub head_cap: usize,
    builder: http1::Builder,
}

impl HttpSettings {
    pub fn new(config: &Config) -> HttpSettings {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            // Our own deadlines replace hyper's; see `conn`.
            .header_read_timeout(None)
            .keep_alive(config.keep_alive.is_some())
            .max_buf_size(config.max_head_size());
        // hyper keeps 100 header slots on the stack by default; asking for
        // any other number moves them to the heap, so only ask when needed.
        if config.limit_request_fields != 100 {
            builder.max_headers(config.limit_request_fields);
        }
        HttpSettings {
            limits: Limits {
                request_line: config.limit_request_line,
                fields: config.limit_request_fields,
                field_size: config.limit_request_field_size,
                body: config.limit_request_body,
            },
            forwarded: config.forwarded_allow_ips.clone(),
            rules: HeadRules {
                header_map: config.header_map,
                permit_unconventional_method: config.permit_unconventional_http_method,
                casefold_method: config.casefold_http_method,
                permit_missing_host: config.permit_missing_host,
            },
            proxy_protocol: config.proxy_protocol,
            proxy_allow: config.proxy_allow_from.clone(),
            request_timeout: config.request_timeout,
            timeouts: Timeouts {
                header: config.header_timeout,
                keep_alive: config.keep_alive,
            },
            head_cap: config.max_head_size(),
            builder,
        }
    }
}

/// Runs blocking jobs on the worker runtime's blocking pool.
pub(crate) struct TokioSpawner(pub tokio::runtime::Handle);

impl BlockingSpawner for TokioSpawner {
    fn spawn_blocking(&self, job: Box<dyn FnOnce() + Send + 'static>) {
        self.0.spawn_blocking(job);
    }
}

/// Serves one accepted connection until it closes or the worker stops.
/// `peer` is the socket's peer (`None` on a Unix socket); a PROXY header
/// (`--proxy-protocol`) may name the client behind it.
pub(crate) async fn serve_connection<A, S>(
    shared: Arc<Shared<A>>,
    stream: S,
    peer: Option<SocketAddr>,
    server: ServerAddr,
    mut phase: watch::Receiver<Phase>,
) where
    A: ferricorn_app_interface::Application,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let accepted = Instant::now();
    let _open = crate::metrics::OpenConnection::new();
    let Some((stream, proxied)) =
        proxy_protocol::accept(stream, peer, &shared.settings, &mut phase).await
    else {
        return;
    };
    // The client: the one a PROXY header named, else the socket's peer.
    let client = proxied.or(peer);
    let activity = Activity::new(shared.settings.head_cap, accepted);
    let io = TokioIo::new(TrackedIo::new(stream, Arc::clone(&activity)));
    let timeouts = shared.settings.timeouts;
    let peer_name = client.map_or_else(|| server.to_string(), |p| p.to_string());
    let service = ConnService {
        shared: Arc::clone(&shared),
        conn: Arc::new(ConnMeta {
            peer,
            proxy_peer: proxy::Peer::new(client, &shared.settings.forwarded),
            server,
            activity: Arc::clone(&activity),
            body_flags: Arc::default(),
            phase: phase.clone(),
        }),
    };
    let conn = conn::Http1::new(shared.settings.builder.serve_connection(io, service));
    conn::drive(conn, activity, timeouts, phase, &peer_name).await;
}

/// Answers a connection over `--worker-connections` with 503 and closes
/// it. It reads the request first (after a PROXY header, when
/// `--proxy-protocol` allows one), so the client sees the answer rather
/// than a reset, within `--header-timeout`.
pub(crate) async fn refuse_connection<S>(
    stream: S,
    peer: Option<SocketAddr>,
    settings: &HttpSettings,
    mut phase: watch::Receiver<Phase>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder.keep_alive(false);
    let service = hyper::service::service_fn(|_req| async {
        let mut res = hyper::Response::new(http_body_util::Empty::<bytes::Bytes>::new());
        *res.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        res.headers_mut()
            .insert(http::header::SERVER, service::SERVER_VALUE);
        res.headers_mut()
            .insert(http::header::CONNECTION, service::CLOSE);
        Ok::<_, std::convert::Infallible>(res)
    });
    let limit = settings.timeouts.header.unwrap_or(Duration::from_secs(10));
    let _ = tokio::time::timeout(limit, async {
        let Some((stream, _)) = proxy_protocol::accept(stream, peer, settings, &mut phase).await
        else {
            return;
        };
        let _ = builder
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
    .await;
}
