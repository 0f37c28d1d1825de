//! One connection: the I/O wrapper that watches activity, and the driver
//! that runs hyper on it under our timeouts.
//!
//! # Why our own timers, not hyper's `header_read_timeout`
//!
//! hyper 1.x starts its head timer whenever it begins waiting for a head,
//! which on a keep-alive connection is right after a response head is
//! written: while a long response body is still streaming, and through the
//! idle time between requests. So one knob would mean both "idle for 2 s"
//! and "a head must arrive within 2 s", and a slow streaming response could
//! be cut by it. We keep two separate deadlines, Gunicorn's and nginx's:
//!
//! - `--header-timeout`, from the first byte of a head (or from accept, for
//!   a connection's first request) until the head is complete. A client
//!   trickling a head one byte a second is closed when it passes.
//! - `--keep-alive`, the idle time after a response has been sent, until
//!   the first byte of the next request. Past it the connection closes
//!   gracefully.
//!
//! While a request is being served (from its parsed head until its response
//! body has been sent) neither applies; `--request-timeout` does.
//!
//! [`Activity`] is the small state both sides share: the wrapper notes the
//! first byte of a head, the service notes requests beginning and ending,
//! and the driver sleeps until the current deadline.
//!
//! # Draining
//!
//! A draining worker does not close a keep-alive connection under a client
//! that may already be sending its next request (wrk, Nginx's upstream
//! pool and browsers always do; the client sees a close with no answer).
//! Instead every connection serves one more request, answered with
//! `Connection: close` by the service, or closes as any idle connection
//! does when its `--keep-alive` passes (at most [`DRAIN_IDLE_GRACE`] into
//! the drain; before its first request, when `--header-timeout` passes);
//! past `--graceful-timeout` the worker stops it regardless.
//!
//! # Lingering close
//!
//! A response sent before its request was read to the end (a 413 for a
//! declared body over the limit, a 400 or 431 for a bad head, an
//! application that ignores the body) closes the connection while the
//! client may still be sending. Closing a socket with unread input makes
//! the kernel send a reset, which can reach the client before it has read
//! the answer: it sees EPIPE or ECONNRESET, Nginx a 502. So, as Nginx's
//! `lingering_close` does, the driver takes the socket back from hyper,
//! shuts down its write side (the client sees the end of the response)
//! and reads and discards what still comes, for a bounded time and size,
//! before closing. It reads the raw socket: after a framing violation the
//! [`TrackedIo`] wrapper fails every read on purpose.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{watch, Notify};

use super::error::ConnectionEnd;
use super::order::{HeadCapture, RawHead};
use crate::logging;

/// The worker's phase, broadcast to every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Serving.
    Running,
    /// Finish the request in progress, then close.
    Draining,
    /// Close now.
    Stopped,
}

/// What a connection's deadlines are made of.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub header: Option<Duration>,
    pub keep_alive: Option<Duration>,
    /// `--send-timeout`: a response body that has data for the client but
    /// is not taken (a full socket, a closed HTTP/2 window) for this long
    /// closes the connection.
    pub send: Option<Duration>,
}

/// How long a connection closing for idleness may take to flush its last
/// bytes to a client that does not read them.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The longest a draining worker keeps an idle keep-alive connection open
/// for the next request, from the start of the drain (its `--keep-alive`
/// deadline applies when sooner). A client that is using the connection
/// sends within a round trip; this only bounds the drain for the idle ones,
/// such as an Nginx upstream pool under `--keep-alive 65`, which would
/// otherwise hold every stop and reload for the whole `--graceful-timeout`.
const DRAIN_IDLE_GRACE: Duration = Duration::from_secs(1);

/// The longest a lingering close reads in all (Nginx's `lingering_time`
/// is 30 s; a worker has better things to do than to sink an upload).
const LINGER_TOTAL: Duration = Duration::from_secs(5);

/// The longest a lingering close waits for more input (Nginx's
/// `lingering_timeout`).
const LINGER_IDLE: Duration = Duration::from_secs(2);

/// The most bytes a lingering close discards. Generous, because a client
/// that writes its whole request before reading (Python's `sendall`, a
/// proxy that does not watch for an early answer) sees its answer only if
/// all of it is taken; on loopback this is tens of milliseconds.
const LINGER_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The activity of one connection.
#[derive(Debug)]
pub(crate) struct Activity {
    state: Mutex<State>,
    /// The most head bytes kept for recovering header order.
    head_cap: usize,
    /// Wakes the driver when the connection turns idle during a drain (see
    /// [`Activity::wake_at`]).
    idle: Notify,
}

#[derive(Debug)]
struct State {
    in_flight: u32,
    served: u64,
    /// When the last response was sent (accept time before the first).
    idle_since: Instant,
    /// When the first byte of the next head arrived.
    head_started: Option<Instant>,
    capture: HeadCapture,
    /// The driver wants [`Activity::idle`] notified when a request ends.
    wake_on_idle: bool,
    /// Response bodies whose last poll yielded data, so the next poll waits
    /// on the client (hyper polls again once the socket or the HTTP/2
    /// window has room), not on the application.
    waiting_on_client: u32,
    /// When a response body was last polled.
    body_polled: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    /// A head took too long: close at once.
    Head,
    /// A response waited on a client that does not read it: close at once.
    Send,
    /// Idle past keep-alive: close gracefully.
    Idle,
}

impl Activity {
    /// The activity of a connection accepted at `accepted` (its first
    /// head is due `--header-timeout` after that). `head_cap` 0: no raw
    /// heads are kept (HTTP/2, whose bytes are frames).
    pub fn new(head_cap: usize, accepted: Instant) -> Arc<Activity> {
        Arc::new(Activity {
            head_cap,
            state: Mutex::new(State {
                in_flight: 0,
                served: 0,
                idle_since: accepted,
                head_started: None,
                capture: HeadCapture::default(),
                wake_on_idle: false,
                waiting_on_client: 0,
                body_polled: accepted,
            }),
            idle: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes bytes just read, which `order` may rewrite in place (a
    /// request line's higher minor version). `Err`: they break the request
    /// framing (see `order`), and the read must fail.
    fn on_read(&self, data: &mut [u8]) -> Result<(), &'static str> {
        let mut s = self.lock();
        if s.in_flight == 0 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
        }
        if self.head_cap == 0 {
            // HTTP/2: frames, not heads; h2 parses and frames them.
            return Ok(());
        }
        s.capture.push(data, self.head_cap)
    }

    /// A request's head was parsed as `parts`; the guard ends it. Also
    /// returns what its raw head shows (see `order`), under the same lock.
    pub fn begin(self: &Arc<Self>, parts: &http::request::Parts) -> (ActivityGuard, RawHead) {
        let mut s = self.lock();
        s.in_flight += 1;
        s.head_started = None;
        let raw = if self.head_cap == 0 {
            RawHead::default()
        } else {
            s.capture.inspect(parts)
        };
        drop(s);
        let guard = ActivityGuard {
            activity: Arc::clone(self),
            waiting_on_client: false,
        };
        (guard, raw)
    }

    /// A request's head was parsed; the guard ends it.
    #[cfg(test)]
    fn begin_request(self: &Arc<Self>) -> ActivityGuard {
        let mut s = self.lock();
        s.in_flight += 1;
        s.head_started = None;
        drop(s);
        ActivityGuard {
            activity: Arc::clone(self),
            waiting_on_client: false,
        }
    }

    /// Whether request bytes may still be on their way: the body of the
    /// last request has not all arrived, its framing broke, or bytes of a
    /// request not yet served were read. Closing such a connection at once
    /// would reset it under its last response.
    fn input_pending(&self) -> bool {
        self.lock().capture.input_pending()
    }

    /// When the driver must next look at the deadline.
    ///
    /// Reads and requests move the deadline without waking the driver (a
    /// wake-up per request would cost a task poll and a timer re-armed per
    /// request on a keep-alive connection). That is safe because every
    /// deadline they can bring runs from a moment after now (an idle one
    /// from the end of a request, a head one from the first byte of a
    /// head), so none comes before now plus the shorter timeout: the driver
    /// wakes at that or the current deadline, whichever is sooner, and
    /// looks again. A drain shortens the idle deadline to a fixed moment
    /// that may already have passed, so then the end of a request does wake
    /// the driver, through [`Activity::idle`].
    fn wake_at(&self, t: Timeouts, draining_since: Option<Instant>) -> Option<Instant> {
        let current = self.deadline(t, draining_since).map(|d| d.0);
        if draining_since.is_some() {
            self.lock().wake_on_idle = true;
            return current;
        }
        let soonest = [t.header, t.keep_alive, t.send]
            .into_iter()
            .flatten()
            .min()
            .map(|d| Instant::now() + d);
        [current, soonest].into_iter().flatten().min()
    }

    /// The current deadline; `draining_since`: when the worker began to
    /// drain, which shortens the idle one (see [`DRAIN_IDLE_GRACE`]).
    fn deadline(&self, t: Timeouts, draining_since: Option<Instant>) -> Option<(Instant, Expiry)> {
        let s = self.lock();
        if s.in_flight > 0 {
            // A request in progress: only a response the client leaves
            // unread has a deadline (the application has --request-timeout).
            return match t.send {
                Some(send) if s.waiting_on_client > 0 => Some((s.body_polled + send, Expiry::Send)),
                _ => None,
            };
        }
        if s.served == 0 {
            return t.header.map(|h| (s.idle_since + h, Expiry::Head));
        }
        match s.head_started {
            Some(started) => t.header.map(|h| (started + h, Expiry::Head)),
            None => t.keep_alive.map(|k| {
                let at = s.idle_since + k;
                let at = draining_since.map_or(at, |d| at.min(d + DRAIN_IDLE_GRACE));
                (at, Expiry::Idle)
            }),
        }
    }
}

/// Ends a request's activity when dropped (after its response body).
#[derive(Debug)]
pub(crate) struct ActivityGuard {
    activity: Arc<Activity>,
    /// This response counts in `waiting_on_client`.
    waiting_on_client: bool,
}

impl ActivityGuard {
    /// The response body was just polled; `yielded`: it gave data, so its
    /// next poll is up to the client taking it (see `--send-timeout`).
    pub fn body_polled(&mut self, yielded: bool) {
        let mut s = self.activity.lock();
        s.body_polled = Instant::now();
        match (self.waiting_on_client, yielded) {
            (false, true) => s.waiting_on_client += 1,
            (true, false) => s.waiting_on_client -= 1,
            _ => {}
        }
        self.waiting_on_client = yielded;
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        let mut s = self.activity.lock();
        if self.waiting_on_client {
            s.waiting_on_client -= 1;
        }
        s.in_flight -= 1;
        s.served += 1;
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            s.head_started = None;
            // Otherwise the driver looks again by itself (see `wake_at`).
            if s.wake_on_idle {
                drop(s);
                self.activity.idle.notify_one();
            }
        }
    }
}

/// A socket that reports reads to its connection's [`Activity`].
pub(crate) struct TrackedIo<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> TrackedIo<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        TrackedIo { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TrackedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if let Err(why) = self.activity.on_read(&mut buf.filled_mut()[before..]) {
                // hyper must not see these bytes: failing the read ends the
                // connection without serving what follows them.
                buf.set_filled(before);
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("request framing: {why}"),
                )));
            }
        }
        res
    }
}

forward_async_write!(TrackedIo);

/// Runs hyper's connection future `conn` until it ends, the head or idle
/// deadline passes, or the worker stops, then closes the socket (lingering
/// when input may be pending). `peer` names the client in logs.
///
/// A drain (`Phase::Draining`) closes nothing here: the service answers
/// the connection's next request with `Connection: close`, and the head
/// and idle deadlines (the latter shortened to [`DRAIN_IDLE_GRACE`]) end a
/// connection that sends none (see the module docs). Only `Phase::Stopped`
/// closes at once.
pub(crate) async fn drive<C>(
    conn: C,
    activity: Arc<Activity>,
    timeouts: Timeouts,
    mut phase: watch::Receiver<Phase>,
    peer: &str,
) where
    C: GracefulConnection,
{
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    let mut hard_stop: Option<Instant> = None;
    let mut draining_since = None;
    loop {
        if draining_since.is_none() && *phase.borrow() == Phase::Draining {
            draining_since = Some(Instant::now());
            if C::GOAWAY_ON_DRAIN {
                // HTTP/2 says it at once, to every stream: GOAWAY, no new
                // streams, the open ones finish (bounded by the worker's
                // --graceful-timeout, past which it stops).
                conn.as_mut().graceful_shutdown();
            }
        }
        let deadline = if closing {
            hard_stop
        } else {
            activity.wake_at(timeouts, draining_since)
        };
        tokio::select! {
            (result, io) = conn.as_mut() => {
                log_end(&result, peer);
                if let Some(io) = io {
                    close(io, &result, &activity, &mut phase, peer).await;
                }
                return;
            }
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow_and_update() == Phase::Stopped {
                    return;
                }
            }
            _ = activity.idle.notified(), if !closing && draining_since.is_some() => {}
            _ = sleep_until(deadline), if deadline.is_some() => {
                if closing {
                    logging::debug(&format!("Closing connection from {peer}: it did not finish closing"));
                    crate::metrics::server().rejected(crate::metrics::Rejection::SlowClient);
                    return;
                }
                match activity.deadline(timeouts, draining_since) {
                    Some((at, Expiry::Head)) if at <= Instant::now() => {
                        logging::debug(&format!("Closing connection from {peer}: no complete request head within --header-timeout"));
                        crate::metrics::server().rejected(crate::metrics::Rejection::HeaderTimeout);
                        return;
                    }
                    Some((at, Expiry::Send)) if at <= Instant::now() => {
                        logging::debug(&format!("Closing connection from {peer}: it took none of its response for --send-timeout"));
                        crate::metrics::server().rejected(crate::metrics::Rejection::SlowClient);
                        return;
                    }
                    Some((at, Expiry::Idle)) if at <= Instant::now() => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                        hard_stop = Some(Instant::now() + CLOSE_GRACE);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Closes a socket hyper is done with (its last response flushed): at
/// once when the request was read to its end, else with a lingering close.
async fn close<Io>(
    mut io: Io,
    result: &Result<(), hyper::Error>,
    activity: &Activity,
    phase: &mut watch::Receiver<Phase>,
    peer: &str,
) where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let unread = match result {
        Ok(()) => activity.input_pending(),
        // hyper answered a head it could not parse (400, 414, 431); what
        // follows it is unknown.
        Err(e) => e.is_parse() || e.is_parse_too_large(),
    };
    // The end of the response: the FIN follows its last byte.
    if io.shutdown().await.is_err() || !unread {
        return;
    }
    let (discarded, why) = linger(&mut io, phase).await;
    if logging::enabled(crate::config::LogLevel::Debug) {
        logging::debug(&format!(
            "Lingering close of connection from {peer}: discarded {discarded} bytes, {why}"
        ));
    }
}

/// Reads and discards input until the client closes, goes quiet for
/// [`LINGER_IDLE`], [`LINGER_TOTAL`] or [`LINGER_MAX_BYTES`] is reached,
/// or the worker stops (so a drain never waits on it past
/// `--graceful-timeout`). Returns the bytes discarded and why it ended.
pub(crate) async fn linger<Io>(
    io: &mut Io,
    phase: &mut watch::Receiver<Phase>,
) -> (u64, &'static str)
where
    Io: AsyncRead + Unpin,
{
    let end = Instant::now() + LINGER_TOTAL;
    let mut buf = vec![0u8; 64 * 1024];
    let mut discarded = 0u64;
    loop {
        let quiet_until = end.min(Instant::now() + LINGER_IDLE);
        tokio::select! {
            read = io.read(&mut buf) => match read {
                Ok(0) => return (discarded, "the client closed"),
                Err(_) => return (discarded, "the client reset"),
                Ok(n) => {
                    discarded += n as u64;
                    if discarded >= LINGER_MAX_BYTES {
                        return (discarded, "the byte cap was reached");
                    }
                }
            },
            _ = tokio::time::sleep_until(quiet_until.into()) => {
                return (discarded, if quiet_until == end { "the time cap was reached" } else { "the client went quiet" });
            }
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow_and_update() == Phase::Stopped {
                    return (discarded, "the worker stopped");
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn log_end(result: &Result<(), hyper::Error>, peer: &str) {
    // A head hyper refused itself (it answered 400, or 431 for one too
    // large): refused before the application, like the heads our own
    // checks refuse in the service.
    if let Err(e) = result {
        if e.is_parse_too_large() {
            crate::metrics::server().rejected(crate::metrics::Rejection::HeaderFieldsTooLarge);
        } else if e.is_parse() {
            crate::metrics::server().rejected(crate::metrics::Rejection::BadRequest);
        }
    }
    match (ConnectionEnd::classify(result), result) {
        (ConnectionEnd::Clean, _) | (_, Ok(())) => {}
        (ConnectionEnd::Client, Err(e)) => {
            if logging::enabled(crate::config::LogLevel::Debug) {
                logging::debug(&format!("Connection from {peer} ended: {e}"));
            }
        }
        (ConnectionEnd::Server, Err(e)) => {
            logging::error(&format!("Connection from {peer} failed: {e}"));
        }
    }
}

/// hyper's HTTP/1 connection, seen through what the driver needs: how it
/// ended, and the socket back when it did (to close it ourselves).
pub(crate) trait GracefulConnection:
    std::future::Future<Output = (Result<(), hyper::Error>, Option<Self::Io>)>
{
    /// The raw socket, under the [`TrackedIo`] wrapper.
    type Io: AsyncRead + AsyncWrite + Unpin;

    /// Whether a drain shuts the connection down at once (HTTP/2's GOAWAY
    /// lets open streams finish) rather than after its next response
    /// (HTTP/1's `Connection: close`, see the module docs).
    const GOAWAY_ON_DRAIN: bool = false;

    fn graceful_shutdown(self: Pin<&mut Self>);
}

/// hyper's HTTP/2 connection. It closes its socket itself (after GOAWAY),
/// so it gives none back: HTTP/2 needs no lingering close, a refused
/// stream is reset without touching the others.
pub(crate) struct Http2<S, Svc>
where
    Svc: hyper::service::HttpService<hyper::body::Incoming>,
{
    conn: hyper::server::conn::http2::Connection<TokioIo<S>, Svc, hyper_util::rt::TokioExecutor>,
}

impl<S, Svc> Http2<S, Svc>
where
    Svc: hyper::service::HttpService<hyper::body::Incoming>,
{
    pub fn new(
        conn: hyper::server::conn::http2::Connection<
            TokioIo<S>,
            Svc,
            hyper_util::rt::TokioExecutor,
        >,
    ) -> Self {
        Http2 { conn }
    }
}

impl<S, Svc, B> std::future::Future for Http2<S, Svc>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    Svc: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    Svc::Future: Send + 'static,
    Svc::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = (Result<(), hyper::Error>, Option<S>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Only the connection future moves; the pin projection is safe
        // because `conn` is never moved out of `self`.
        let this = self.get_mut();
        let result = std::task::ready!(Pin::new(&mut this.conn).poll(cx));
        Poll::Ready((result, None))
    }
}

impl<S, Svc, B> GracefulConnection for Http2<S, Svc>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    Svc: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    Svc::Future: Send + 'static,
    Svc::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Io = S;
    const GOAWAY_ON_DRAIN: bool = true;

    fn graceful_shutdown(self: Pin<&mut Self>) {
        Pin::new(&mut self.get_mut().conn).graceful_shutdown();
    }
}

/// hyper's connection, run without its own shutdown of the socket so that
/// the driver gets the socket back (`into_parts`) and decides how to close.
pub(crate) struct Http1<S, Svc>
where
    Svc: hyper::service::HttpService<hyper::body::Incoming>,
{
    conn: Option<hyper::server::conn::http1::Connection<TokioIo<TrackedIo<S>>, Svc>>,
}

impl<S, Svc> Http1<S, Svc>
where
    Svc: hyper::service::HttpService<hyper::body::Incoming>,
{
    pub fn new(conn: hyper::server::conn::http1::Connection<TokioIo<TrackedIo<S>>, Svc>) -> Self {
        Http1 { conn: Some(conn) }
    }
}

impl<S, Svc, B> std::future::Future for Http1<S, Svc>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Svc: hyper::service::HttpService<hyper::body::Incoming, ResBody = B> + Unpin,
    Svc::Future: Unpin,
    Svc::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = (Result<(), hyper::Error>, Option<S>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready((Ok(()), None));
        };
        let result = std::task::ready!(conn.poll_without_shutdown(cx));
        // Done, with its output flushed: even after an error (hyper's own
        // 400 for a bad head is written before it reports the error).
        let io = self
            .conn
            .take()
            .map(|c| c.into_parts().io.into_inner().inner);
        Poll::Ready((result, io))
    }
}

impl<S, Svc, B> GracefulConnection for Http1<S, Svc>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Svc: hyper::service::HttpService<hyper::body::Incoming, ResBody = B> + Unpin,
    Svc::Future: Unpin,
    Svc::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Io = S;

    fn graceful_shutdown(mut self: Pin<&mut Self>) {
        if let Some(conn) = self.conn.as_mut() {
            Pin::new(conn).graceful_shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header: Some(Duration::from_secs(10)),
        keep_alive: Some(Duration::from_secs(2)),
        send: Some(Duration::from_secs(60)),
    };

    #[test]
    fn a_response_the_client_does_not_take_has_a_deadline() {
        let a = Activity::new(0, Instant::now());
        let mut guard = a.begin_request();
        // While the application works, no deadline.
        assert_eq!(a.deadline(T, None), None);
        guard.body_polled(true);
        let (at, why) = a.deadline(T, None).unwrap();
        assert_eq!(why, Expiry::Send);
        assert!(at > Instant::now() + Duration::from_secs(59));
        // Polled again and waiting on the application: none.
        guard.body_polled(false);
        assert_eq!(a.deadline(T, None), None);
        guard.body_polled(true);
        drop(guard);
        assert_eq!(a.lock().waiting_on_client, 0);
    }

    #[test]
    fn deadlines_follow_the_connection() {
        let a = Activity::new(8192, Instant::now());
        let start = a.lock().idle_since;
        // First request: the head deadline runs from accept.
        assert_eq!(
            a.deadline(T, None),
            Some((start + Duration::from_secs(10), Expiry::Head))
        );
        a.on_read(&mut [b'x']).unwrap();
        assert_eq!(a.deadline(T, None).unwrap().1, Expiry::Head);
        let g = a.begin_request();
        assert_eq!(a.deadline(T, None), None, "no deadline while serving");
        a.on_read(&mut [b'x']).unwrap(); // a pipelined head
        drop(g);
        let idle = a.lock().idle_since;
        assert_eq!(
            a.deadline(T, None),
            Some((idle + Duration::from_secs(2), Expiry::Idle))
        );
        a.on_read(&mut [b'x']).unwrap();
        let started = a.lock().head_started.unwrap();
        assert_eq!(
            a.deadline(T, None),
            Some((started + Duration::from_secs(10), Expiry::Head))
        );
        let no_ka = Timeouts {
            keep_alive: None,
            ..T
        };
        let g = a.begin_request();
        drop(g);
        assert_eq!(a.deadline(no_ka, None), None);
    }

    #[test]
    fn the_driver_wakes_before_any_deadline_a_request_can_bring() {
        let a = Activity::new(8192, Instant::now());
        drop(a.begin_request());
        let before = Instant::now();
        let g = a.begin_request();
        // Serving: no deadline, but a wake-up no later than the soonest
        // one its end (keep-alive) or a next head (header timeout) brings.
        let at = a.wake_at(T, None).unwrap();
        assert!(at >= before + Duration::from_secs(2));
        assert!(at <= Instant::now() + Duration::from_secs(2));
        drop(g);
        assert!(!a.lock().wake_on_idle, "outside a drain, no notify");
        let idle = a.lock().idle_since;
        assert_eq!(a.wake_at(T, None), Some(idle + Duration::from_secs(2)));
        // In a drain the end of a request wakes the driver.
        let _ = a.wake_at(T, Some(Instant::now()));
        assert!(a.lock().wake_on_idle);
    }

    #[test]
    fn a_drain_shortens_only_the_idle_deadline() {
        let a = Activity::new(8192, Instant::now());
        let drain = Instant::now();
        // Before the first request: the head deadline, as without a drain.
        assert_eq!(a.deadline(T, Some(drain)), a.deadline(T, None));
        drop(a.begin_request());
        let idle = a.lock().idle_since;
        let long = Timeouts {
            keep_alive: Some(Duration::from_secs(65)),
            ..T
        };
        assert_eq!(
            a.deadline(long, Some(drain)),
            Some((drain + DRAIN_IDLE_GRACE, Expiry::Idle))
        );
        let short = Timeouts {
            keep_alive: Some(Duration::from_millis(10)),
            ..T
        };
        assert_eq!(
            a.deadline(short, Some(drain)),
            Some((idle + Duration::from_millis(10), Expiry::Idle)),
            "a sooner keep-alive deadline stands"
        );
    }
}
