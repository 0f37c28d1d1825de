//! The hyper ↔ application adapter: one connection from accept to close.
//!
//! [`serve_connection`] picks the protocol, as hyper-util's `auto` does:
//! after an optional PROXY header, a TLS bind runs the handshake (within
//! `--header-timeout`) and ALPN chooses HTTP/2 or HTTP/1.1; a cleartext
//! bind with `--http2c` serves a connection that opens with HTTP/2's
//! preface as HTTP/2. Both protocols share the one service (limits, proxy
//! rules, request ids, the in-flight registry, the access log, metrics)
//! and the one driver (deadlines, drain, stop); only HTTP/1 keeps the raw
//! heads (`order`), which HTTP/2's frames do not have.
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
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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
    /// HTTP/2, when `--http-protocols` has it.
    h2: Option<http2::Builder<TokioExecutor>>,
    /// `--http2c`: cleartext HTTP/2 with prior knowledge.
    h2c: bool,
    /// The TLS acceptor of the TCP binds (`--certfile`).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl HttpSettings {
    /// The settings of `config`; `Err` when its TLS files cannot be read
    /// (the master checked them at start; they may have changed since).
    pub fn new(config: &Config) -> Result<HttpSettings, String> {
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
        let h2 = config.http_protocols.h2.then(|| h2_builder(config));
        Ok(HttpSettings {
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
                send: config.send_timeout,
            },
            head_cap: config.max_head_size(),
            builder,
            h2,
            h2c: config.http2c,
            tls: crate::tls::acceptor(config)?,
        })
    }
}

/// hyper's HTTP/2 server with the limits a stream must keep. h2 itself
/// bounds what the known HTTP/2 floods need: resets of streams the client
/// opened and reset at once (CVE-2023-44487, `max_pending_accept_reset_
/// streams`), streams it makes the server reset (`max_local_error_reset_
/// streams`), the decoded header list (HPACK bombs, and CONTINUATION
/// floods, which h2 stops at this size), and unanswered PINGs and SETTINGS
/// (h2 answers them from a bounded queue and stops reading while it is
/// full).
fn h2_builder(config: &Config) -> http2::Builder<TokioExecutor> {
    let mut b = http2::Builder::new(TokioExecutor::new());
    // The head limits an HTTP/1 request keeps, as one bound: every field
    // at its largest, plus the pseudo-headers' request line.
    let header_list = config.h2_max_header_list_size.unwrap_or_else(|| {
        let fields = config.limit_request_fields as u64 * config.limit_request_field_size as u64;
        (fields + config.limit_request_line as u64).min(1 << 20) as u32
    });
    b.timer(TokioTimer::new())
        .max_concurrent_streams(config.h2_max_concurrent_streams)
        .initial_stream_window_size(config.h2_initial_window_size)
        .initial_connection_window_size(
            config
                .h2_initial_window_size
                .saturating_mul(config.h2_max_concurrent_streams.min(16)),
        )
        .max_header_list_size(header_list)
        .max_pending_accept_reset_streams(Some(20))
        .max_local_error_reset_streams(Some(1024))
        // A client that never opens its window holds at most this much of
        // each response (h2's default is 400 KiB).
        .max_send_buf_size(64 << 10);
    b
}

/// Runs blocking jobs on the worker runtime's blocking pool.
pub(crate) struct TokioSpawner(pub tokio::runtime::Handle);

impl BlockingSpawner for TokioSpawner {
    fn spawn_blocking(&self, job: Box<dyn FnOnce() + Send + 'static>) {
        self.0.spawn_blocking(job);
    }
}

/// What a connection is, once accepted: who and where.
struct Accepted {
    at: Instant,
    /// The socket's peer (`None` on a Unix socket).
    peer: Option<SocketAddr>,
    /// The client: the one a PROXY header named, else the socket's peer.
    client: Option<SocketAddr>,
    server: ServerAddr,
}

/// Serves one accepted connection until it closes or the worker stops.
/// `peer` is the socket's peer (`None` on a Unix socket); a PROXY header
/// (`--proxy-protocol`) may name the client behind it. `secure`: the bind
/// serves TLS (a TCP bind with `--certfile`).
pub(crate) async fn serve_connection<A, S>(
    shared: Arc<Shared<A>>,
    stream: S,
    peer: Option<SocketAddr>,
    server: ServerAddr,
    mut phase: watch::Receiver<Phase>,
    secure: bool,
) where
    A: ferricorn_app_interface::Application,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let at = Instant::now();
    let _open = crate::metrics::OpenConnection::new();
    let Some((stream, proxied)) =
        proxy_protocol::accept(stream, peer, &shared.settings, &mut phase).await
    else {
        return;
    };
    let accepted = Accepted {
        at,
        peer,
        client: proxied.or(peer),
        server,
    };
    match (&shared.settings.tls, secure) {
        (Some(acceptor), true) => {
            let Some(tls) =
                handshake(acceptor, stream, &shared.settings, &accepted, &mut phase).await
            else {
                return;
            };
            let info = crate::tls::info(tls.get_ref().1);
            if info.alpn.as_deref() == Some("h2") {
                serve_h2(shared, tls, accepted, phase, Some(info)).await
            } else {
                serve_h1(shared, tls, accepted, phase, Some(info)).await
            }
        }
        _ if shared.settings.h2c => {
            let Some((stream, h2)) = sniff_preface(stream, &shared.settings, &mut phase).await
            else {
                return;
            };
            if h2 {
                serve_h2(shared, stream, accepted, phase, None).await
            } else {
                serve_h1(shared, stream, accepted, phase, None).await
            }
        }
        _ => serve_h1(shared, stream, accepted, phase, None).await,
    }
}

/// The TLS handshake, within `--header-timeout` (a client that connects
/// and stalls is cut like a slow HTTP client); `None` when it failed.
async fn handshake<S>(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: S,
    settings: &HttpSettings,
    accepted: &Accepted,
    phase: &mut watch::Receiver<Phase>,
) -> Option<tokio_rustls::server::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limit = settings.timeouts.header.unwrap_or(Duration::from_secs(60));
    let outcome = tokio::select! {
        r = tokio::time::timeout(limit, acceptor.accept(stream)) => r,
        _ = phase.wait_for(|p| *p == Phase::Stopped) => return None,
    };
    let why = match outcome {
        Ok(Ok(tls)) => return Some(tls),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no handshake within --header-timeout".to_owned(),
    };
    crate::metrics::server().rejected(crate::metrics::Rejection::TlsHandshake);
    if crate::logging::enabled(crate::config::LogLevel::Debug) {
        crate::logging::debug(&format!(
            "TLS handshake with {} failed: {why}",
            peer_name(accepted)
        ));
    }
    None
}

/// Reads as much of the connection's start as tells HTTP/2's preface from
/// an HTTP/1 request (the first byte, usually), within `--header-timeout`;
/// the bytes are given back in front of the stream. `None`: the client
/// closed or stalled.
async fn sniff_preface<S>(
    mut stream: S,
    settings: &HttpSettings,
    phase: &mut watch::Receiver<Phase>,
) -> Option<(proxy_protocol::Rewind<S>, bool)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::with_capacity(H2_PREFACE.len());
    let read = async {
        let mut buf = [0u8; 24];
        loop {
            let want = H2_PREFACE.len() - seen.len();
            let n = stream.read(&mut buf[..want]).await.ok()?;
            if n == 0 {
                return None;
            }
            seen.extend_from_slice(&buf[..n]);
            if !H2_PREFACE.starts_with(&seen) {
                return Some(false);
            }
            if seen.len() == H2_PREFACE.len() {
                return Some(true);
            }
        }
    };
    let limit = settings.timeouts.header.unwrap_or(Duration::from_secs(60));
    let h2 = tokio::select! {
        r = tokio::time::timeout(limit, read) => r.ok().flatten(),
        _ = phase.wait_for(|p| *p == Phase::Stopped) => None,
    };
    let Some(h2) = h2 else {
        crate::metrics::server().rejected(crate::metrics::Rejection::HeaderTimeout);
        return None;
    };
    Some((proxy_protocol::Rewind::new(stream, seen), h2))
}

/// The service of one connection.
fn service<A>(
    shared: &Arc<Shared<A>>,
    accepted: &Accepted,
    activity: &Arc<Activity>,
    phase: &watch::Receiver<Phase>,
    tls: Option<ferricorn_app_interface::TlsInfo>,
) -> ConnService<A> {
    ConnService {
        shared: Arc::clone(shared),
        conn: Arc::new(ConnMeta {
            peer: accepted.peer,
            proxy_peer: proxy::Peer::new(accepted.client, &shared.settings.forwarded)
                .secure(tls.is_some()),
            server: accepted.server.clone(),
            activity: Arc::clone(activity),
            body_flags: Arc::default(),
            phase: phase.clone(),
            tls,
        }),
    }
}

fn peer_name(accepted: &Accepted) -> String {
    accepted
        .client
        .map_or_else(|| accepted.server.to_string(), |p| p.to_string())
}

/// HTTP/1.1 (and 1.0) on `stream`.
async fn serve_h1<A, S>(
    shared: Arc<Shared<A>>,
    stream: S,
    accepted: Accepted,
    phase: watch::Receiver<Phase>,
    tls: Option<ferricorn_app_interface::TlsInfo>,
) where
    A: ferricorn_app_interface::Application,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new(shared.settings.head_cap, accepted.at);
    let io = TokioIo::new(TrackedIo::new(stream, Arc::clone(&activity)));
    let service = service(&shared, &accepted, &activity, &phase, tls);
    let conn = conn::Http1::new(shared.settings.builder.serve_connection(io, service));
    let timeouts = shared.settings.timeouts;
    conn::drive(conn, activity, timeouts, phase, &peer_name(&accepted)).await;
}

/// HTTP/2 on `stream`: each stream through the same service, under the
/// same deadlines (the first request within `--header-timeout`, idle
/// connections closed after `--keep-alive`).
async fn serve_h2<A, S>(
    shared: Arc<Shared<A>>,
    stream: S,
    accepted: Accepted,
    phase: watch::Receiver<Phase>,
    tls: Option<ferricorn_app_interface::TlsInfo>,
) where
    A: ferricorn_app_interface::Application,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(builder) = &shared.settings.h2 else {
        return;
    };
    let activity = Activity::new(0, accepted.at);
    let io = TokioIo::new(TrackedIo::new(stream, Arc::clone(&activity)));
    let service = service(&shared, &accepted, &activity, &phase, tls);
    let conn = conn::Http2::new(builder.serve_connection(io, service));
    let timeouts = shared.settings.timeouts;
    conn::drive(conn, activity, timeouts, phase, &peer_name(&accepted)).await;
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
