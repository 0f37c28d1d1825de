//! The hyper service: one request from hyper's types to the application's
//! and the response back, with the server's rules around the call.
//!
//! In order: count the request; check its head (Gunicorn's method policy,
//! the limits and head rules, `--header-map`) and apply the proxy rules;
//! register it in flight and pick its request id; refuse it for a protocol
//! error (400, 414, 431, or 413 for a declared body over the limit) without
//! calling the application;
//! call the application with the body streamed under the limit, catching a
//! panic (empty 500) and applying `--request-timeout` (504); then add our
//! headers. The request's bookkeeping (in-flight entry, keep-alive
//! activity, access log line) ends with the response body, in
//! [`Finish::done`].

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use ferricorn_app_interface::response::empty;
use ferricorn_app_interface::{Application, Body, ConnectionInfo, Request, ServerAddr};
use futures_util::FutureExt;
use http::header::{Entry, HeaderValue, CONNECTION, SERVER};
use http::{HeaderMap, HeaderName, StatusCode};
use hyper::body::Incoming;
use tokio::sync::watch;

use super::body::{BodyFlags, LimitedIncoming, TrackedBody};
use super::conn::{Activity, ActivityGuard, Phase};
use super::error::ProtocolError;
use super::{limits, proxy, Shared};
use crate::context::{InFlightGuard, RequestLabel};
use crate::logging::{self, access::AccessRecord};
use crate::metrics::{self, Rejection};

/// The `Server` header value.
pub(crate) const SERVER_NAME: &str = "ferricorn";

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

// Built at compile time (`from_static` checks its bytes when it runs).
pub(crate) const SERVER_VALUE: HeaderValue = HeaderValue::from_static(SERVER_NAME);
pub(crate) const CLOSE: HeaderValue = HeaderValue::from_static("close");

/// What a connection's service knows about the connection.
pub(crate) struct ConnMeta {
    pub peer: Option<SocketAddr>,
    /// The peer as the proxy rules see it.
    pub proxy_peer: proxy::Peer,
    pub server: ServerAddr,
    pub activity: Arc<Activity>,
    /// How the current request's body went; one request at a time is read
    /// on an HTTP/1 connection, so one set serves them all. (HTTP/2 streams
    /// run side by side: each gets its own, see [`ConnMeta::flags`].)
    pub body_flags: Arc<BodyFlags>,
    /// The worker's phase: a draining worker closes after each response.
    pub phase: watch::Receiver<Phase>,
    /// The TLS session, on a TLS connection.
    pub tls: Option<ferricorn_app_interface::TlsInfo>,
}

impl ConnMeta {
    /// The body flags of a new request: the connection's set, reset, on
    /// HTTP/1; a set of its own on HTTP/2, where streams overlap.
    fn flags(&self, version: http::Version) -> Arc<BodyFlags> {
        if version == http::Version::HTTP_2 {
            return Arc::default();
        }
        self.body_flags.reset();
        Arc::clone(&self.body_flags)
    }
}

/// The hyper service of one connection.
pub(crate) struct ConnService<A> {
    pub shared: Arc<Shared<A>>,
    pub conn: Arc<ConnMeta>,
}

impl<A: Application> hyper::service::Service<hyper::Request<Incoming>> for ConnService<A> {
    type Response = hyper::Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let (exchange, decision) = begin(&self.shared, &self.conn, req);
        match decision {
            Decision::Call(request) => {
                let shared = Arc::clone(&self.shared);
                let conn = Arc::clone(&self.conn);
                Box::pin(respond(shared, conn, exchange, request).map(Ok))
            }
            Decision::Answer(response) => {
                Box::pin(std::future::ready(Ok(end(&self.conn, exchange, response))))
            }
        }
    }
}

/// The end of a request's life, run when its response body is finished or
/// dropped.
pub(crate) struct Finish {
    activity: ActivityGuard,
    _in_flight: InFlightGuard,
    label: Arc<RequestLabel>,
    started: Instant,
    /// The response's status, for the metrics (0 until there is one).
    status: u16,
    /// Boxed: without an access log (the default) it is one null
    /// pointer, and `Finish` travels inside the response body, which is
    /// moved several times per request.
    log: Option<Box<AccessRecord>>,
}

impl Finish {
    /// See [`ActivityGuard::body_polled`].
    pub fn body_polled(&mut self, yielded: bool) {
        self.activity.body_polled(yielded);
    }

    pub fn done(self, bytes: u64, _complete: bool) {
        let duration = self.started.elapsed();
        metrics::server().request_finished(self.status, duration, bytes);
        metrics::statsd::request(self.status, duration);
        if let Some(mut record) = self.log {
            record.bytes = bytes;
            record.duration = duration;
            logging::access(&record);
        }
    }

    pub fn body_failed(&self, why: &str) {
        logging::error(&format!(
            "Response body failed for {} {} (request id {}): {why}",
            self.label.method,
            self.label.path(),
            self.label.request_id()
        ));
    }
}

/// A request between its head and its response: what the response needs
/// from the head, kept out of the future that awaits the application so
/// that future stays small (it is boxed and moved once per request).
struct Exchange {
    finish: Finish,
    close: bool,
    /// How the request's body went.
    flags: Arc<BodyFlags>,
    /// An HTTP/2 HEAD: its answer has a head only. (hyper drops the body of
    /// an answer to HEAD on HTTP/1, but sends it on HTTP/2, where a DATA
    /// frame after the head of a HEAD is a protocol error.)
    head_only: bool,
}

/// What the server decided from a request's head.
enum Decision {
    /// Call the application with this request.
    Call(Request),
    /// Answer without calling it (a limit or framing rule refused the head).
    Answer(ferricorn_app_interface::Response),
}

/// Everything before the application: bookkeeping, the request id, the
/// proxy rules and the head limits. Synchronous, so none of its locals
/// lives in the request's future.
fn begin<A: Application>(
    shared: &Shared<A>,
    conn: &ConnMeta,
    req: hyper::Request<Incoming>,
) -> (Exchange, Decision) {
    let started = Instant::now();
    shared.ctx.count_request();
    metrics::server().request_started();
    let settings = &shared.settings;
    let (mut parts, incoming) = req.into_parts();
    if parts.version == http::Version::HTTP_2 {
        add_host(&mut parts);
    }
    let (activity, mut raw) = conn.activity.begin(&parts);

    // The head's checks come first: `--casefold-http-method` changes the
    // method everything after sees, and a dropped header field (under
    // `--header-map drop`) must be gone before the proxy rules, the access
    // log and the application look.
    let declared = http_body::Body::size_hint(&incoming).lower();
    let mut reframed = false;
    let mut refused = limits::check_method(&mut parts.method, &settings.rules)
        .and_then(|casefolded_into_head_or_connect| {
            reframed = casefolded_into_head_or_connect;
            limits::check_head(&parts, &raw, &settings.limits, &settings.rules)
        })
        .and_then(|()| {
            limits::apply_header_map(
                &mut parts.headers,
                raw.order.as_mut(),
                settings.rules.header_map,
            )
        })
        .err();
    if let Some(order) = raw.order.take() {
        parts.extensions.insert(order);
    }
    let facts = match proxy::facts_of(&conn.proxy_peer, &parts.headers, &settings.forwarded) {
        Ok(facts) => facts,
        Err(err) => {
            refused = refused.or(Some(err));
            proxy::peer_facts(&conn.proxy_peer)
        }
    };
    let refused = refused.or_else(|| {
        settings
            .limits
            .body
            .filter(|limit| declared > *limit)
            .map(|limit| ProtocolError::BodyTooLarge { limit })
    });

    let label = Arc::new(RequestLabel {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        request_id: request_id_of(&parts.headers),
    });
    let in_flight = shared
        .ctx
        .in_flight
        .begin_label(Arc::clone(&label), started);
    let log = logging::access_enabled().then(|| {
        Box::new(AccessRecord {
            remote_addr: facts.remote_addr.clone(),
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            status: 0,
            bytes: 0,
            request_headers: parts.headers.clone(),
            response_headers: HeaderMap::new(),
            started: SystemTime::now(),
            duration: Duration::ZERO,
            request_id: label.request_id().to_owned(),
            worker_id: shared.ctx.worker_id,
        })
    });
    let mut exchange = Exchange {
        finish: Finish {
            activity,
            _in_flight: in_flight,
            label,
            started,
            status: 0,
            log,
        },
        close: false,
        flags: conn.flags(parts.version),
        head_only: parts.version == http::Version::HTTP_2 && parts.method == http::Method::HEAD,
    };

    if let Some(err) = refused {
        let label = &exchange.finish.label;
        if logging::enabled(crate::config::LogLevel::Debug) {
            logging::debug(&format!(
                "Refused {} {} from {}: {err}",
                label.method,
                label.path(),
                facts.remote_addr
            ));
        }
        let (status, closes) = err.response().unwrap_or((StatusCode::BAD_REQUEST, true));
        metrics::server().rejected(Rejection::of_status(status.as_u16()));
        exchange.close = closes;
        return (exchange, Decision::Answer(empty(status)));
    }
    // See `limits::check_method`: hyper frames the response for the method
    // as sent, not as the application saw it.
    exchange.close = reframed;
    parts.extensions.insert(ConnectionInfo {
        socket_peer: conn.peer,
        remote_addr: facts.remote_addr,
        remote_port: facts.remote_port,
        scheme: facts.scheme,
        server: conn.server.clone(),
        worker_id: shared.ctx.worker_id,
        request_id: exchange.finish.label.request_id().to_owned(),
        tls: conn.tls.clone(),
    });
    parts.extensions.insert(shared.spawner.clone());
    let body = LimitedIncoming::new(
        incoming,
        settings.limits.body,
        Arc::clone(&exchange.flags),
        settings.rules.header_map,
    );
    let request = Request::from_parts(parts, Body::from_stream(body));
    (exchange, Decision::Call(request))
}

/// The application's part, and the response it makes.
async fn respond<A: Application>(
    shared: Arc<Shared<A>>,
    conn: Arc<ConnMeta>,
    exchange: Exchange,
    request: Request,
) -> hyper::Response<TrackedBody> {
    let response = call_app(&shared, request, &exchange.finish).await;
    end(&conn, exchange, response)
}

/// Everything after the application: the status a body error calls for,
/// the connection's fate, our headers, the access log's view.
fn end(
    conn: &ConnMeta,
    exchange: Exchange,
    mut response: ferricorn_app_interface::Response,
) -> hyper::Response<TrackedBody> {
    let Exchange {
        mut finish,
        mut close,
        flags,
        head_only,
    } = exchange;
    // The rest of a refused body was not read, so the connection cannot be
    // reused. An application that turned the body error into a 5xx gets the
    // client error it should have chosen.
    if flags.too_large.load(Ordering::Relaxed) {
        metrics::server().rejected(Rejection::BodyTooLarge);
        close = true;
        if response.status().is_server_error() {
            response = empty(StatusCode::PAYLOAD_TOO_LARGE);
        }
    } else if flags.malformed.load(Ordering::Relaxed) {
        metrics::server().rejected(Rejection::BadRequest);
        close = true;
        if response.status().is_server_error() {
            response = empty(StatusCode::BAD_REQUEST);
        }
    }
    // A draining worker closes the connection after this response, and
    // says so here, in the response (the head is written as soon as it is
    // returned): the client then opens its next connection to another
    // worker instead of sending its next request into our close.
    if *conn.phase.borrow() != Phase::Running {
        close = true;
    }
    let headers = response.headers_mut();
    if let Entry::Vacant(e) = headers.entry(SERVER) {
        e.insert(SERVER_VALUE);
    }
    if let Entry::Vacant(e) = headers.entry(&X_REQUEST_ID) {
        e.insert(finish.label.request_id.clone());
    }
    if close {
        headers.insert(CONNECTION, CLOSE);
    }
    if head_only {
        // The head as GET's, its Content-Length included (which hyper
        // writes from the body's size on HTTP/1), without the body.
        if let Some(len) = http_body::Body::size_hint(response.body()).exact() {
            if let Entry::Vacant(e) = response.headers_mut().entry(http::header::CONTENT_LENGTH) {
                e.insert(HeaderValue::from(len));
            }
        }
        response = response.map(|_| ferricorn_app_interface::Body::empty());
    }
    finish.status = response.status().as_u16();
    if let Some(record) = &mut finish.log {
        record.status = response.status().as_u16();
        record.response_headers = response.headers().clone();
    }
    response.map(|body| TrackedBody::new(body, finish))
}

/// Calls the application: a panic becomes an empty 500, a call past
/// `--request-timeout` an empty 504. The deadline covers producing the
/// response head; a streamed body after it is not cut.
async fn call_app<A: Application>(
    shared: &Shared<A>,
    request: Request,
    finish: &Finish,
) -> ferricorn_app_interface::Response {
    // The call is built in each arm (not once before the match), so the
    // future holds one copy of it, not two.
    let outcome = match shared.settings.request_timeout {
        Some(limit) => match tokio::time::timeout(
            limit,
            AssertUnwindSafe(shared.app.call(request)).catch_unwind(),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => {
                logging::error(&format!(
                    "Request timeout: {} {} (request id {}) took longer than --request-timeout ({}s); answered 504",
                    finish.label.method,
                    finish.label.path(),
                    finish.label.request_id(),
                    limit.as_secs_f64()
                ));
                return empty(StatusCode::GATEWAY_TIMEOUT);
            }
        },
        None => {
            AssertUnwindSafe(shared.app.call(request))
                .catch_unwind()
                .await
        }
    };
    match outcome {
        Ok(response) => response,
        Err(panic) => {
            logging::error(&format!(
                "Error handling request {} {} (request id {}): the application panicked: {}",
                finish.label.method,
                finish.label.path(),
                finish.label.request_id(),
                panic_message(&panic)
            ));
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// An HTTP/2 request names its host in `:authority` (the URI), which
/// applications read as `Host` (WSGI's `HTTP_HOST`, Django's
/// `ALLOWED_HOSTS`): RFC 9113 §8.3.1 has a server that hands a request on
/// as HTTP/1.1 make the `Host` field from it when there is none.
fn add_host(parts: &mut http::request::Parts) {
    if parts.headers.contains_key(http::header::HOST) {
        return;
    }
    if let Some(value) = parts
        .uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        parts.headers.insert(http::header::HOST, value);
    }
}

/// The client's `X-Request-Id` when it is sane (1 to 128 characters of
/// letters, digits and `-_.:/+=@`, so it cannot break a log line), else a
/// new one.
fn request_id_of(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(&X_REQUEST_ID)
        .filter(|v| {
            let v = v.as_bytes();
            (1..=128).contains(&v.len())
                && v.iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b))
        })
        .cloned()
        .unwrap_or_else(|| {
            // Hex digits are a valid value. Owned bytes, so that the copy
            // for the response header shares them instead of allocating.
            HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(new_request_id()))
                .unwrap_or(HeaderValue::from_static("-"))
        })
}

/// 32 hex digits: a per-process random half and a counter scrambled by
/// splitmix64 (a bijection, so ids never repeat within a process).
fn new_request_id() -> [u8; 32] {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 32];
    put_hex(&mut id[..16], splitmix64(seed ^ 0x5bd1_e995_7f4a_7c15));
    put_hex(&mut id[16..], splitmix64(seed.wrapping_add(n)));
    id
}

/// Writes `v` as 16 lowercase hex digits into `out` (`{:016x}` without
/// the formatting machinery, which showed in profiles).
fn put_hex(out: &mut [u8], v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, digit) in out.iter_mut().take(16).enumerate() {
        *digit = DIGITS[(v >> ((15 - i) * 4)) as usize & 0xf];
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", "abc-123".parse().unwrap());
        assert_eq!(request_id_of(&h), "abc-123");
        h.insert("x-request-id", "bad id\"with quotes".parse().unwrap());
        let generated = request_id_of(&h);
        assert_eq!(generated.len(), 32);
        assert!(generated.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_ne!(generated, request_id_of(&h));
        assert_eq!(request_id_of(&HeaderMap::new()).len(), 32);
    }
}
