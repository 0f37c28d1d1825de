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

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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
}

/// How long a connection closing for idleness may take to flush its last
/// bytes to a client that does not read them.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The activity of one connection.
#[derive(Debug)]
pub(crate) struct Activity {
    state: Mutex<State>,
    /// The most head bytes kept for recovering header order.
    head_cap: usize,
    /// Wakes the driver when the connection turns idle (its deadline moves
    /// earlier: from none to the keep-alive deadline).
    idle: Notify,
    /// Wakes the driver when a request's head has been parsed.
    began: Notify,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    /// A head took too long: close at once.
    Head,
    /// Idle past keep-alive: close gracefully.
    Idle,
}

impl Activity {
    pub fn new(head_cap: usize) -> Arc<Activity> {
        Arc::new(Activity {
            head_cap,
            state: Mutex::new(State {
                in_flight: 0,
                served: 0,
                idle_since: Instant::now(),
                head_started: None,
                capture: HeadCapture::default(),
            }),
            idle: Notify::new(),
            began: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes bytes just read. `Err`: they break the request framing (see
    /// `order`), and the read must fail.
    fn on_read(&self, data: &[u8]) -> Result<(), &'static str> {
        let mut s = self.lock();
        if s.in_flight == 0 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
        }
        s.capture.push(data, self.head_cap)
    }

    /// What the raw head of a just-parsed request shows (see `order`).
    pub fn raw_head(&self, parts: &http::request::Parts) -> RawHead {
        self.lock().capture.inspect(parts)
    }

    /// A request's head was parsed; the guard ends it.
    pub fn begin(self: &Arc<Self>) -> ActivityGuard {
        let mut s = self.lock();
        s.in_flight += 1;
        s.head_started = None;
        drop(s);
        // No stored permit: a stale one would end a later drain too early.
        self.began.notify_waiters();
        ActivityGuard {
            activity: Arc::clone(self),
        }
    }

    /// Whether a drain should wait for this connection's next request
    /// before closing it: a connection that has served nothing yet was
    /// opened to send one (closing it now would fail a client that did
    /// nothing wrong, the classic reload race), and one whose next head is
    /// arriving has a request on the way.
    fn request_expected(&self) -> bool {
        let s = self.lock();
        s.in_flight == 0 && (s.served == 0 || s.head_started.is_some())
    }

    fn deadline(&self, t: Timeouts) -> Option<(Instant, Expiry)> {
        let s = self.lock();
        if s.in_flight > 0 {
            return None;
        }
        if s.served == 0 {
            return t.header.map(|h| (s.idle_since + h, Expiry::Head));
        }
        match s.head_started {
            Some(started) => t.header.map(|h| (started + h, Expiry::Head)),
            None => t.keep_alive.map(|k| (s.idle_since + k, Expiry::Idle)),
        }
    }
}

/// Ends a request's activity when dropped (after its response body).
#[derive(Debug)]
pub(crate) struct ActivityGuard {
    activity: Arc<Activity>,
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        let mut s = self.activity.lock();
        s.in_flight -= 1;
        s.served += 1;
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            s.head_started = None;
            drop(s);
            self.activity.idle.notify_one();
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
            if let Err(why) = self.activity.on_read(&buf.filled()[before..]) {
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

impl<S: AsyncWrite + Unpin> AsyncWrite for TrackedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Runs hyper's connection future `conn` until it ends, the head or idle
/// deadline passes, or the worker stops. `peer` names the client in logs.
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
    // Draining, but waiting for the expected request to begin (see
    // `Activity::request_expected`); its head deadline still applies.
    let mut drain_after_next = false;
    let mut hard_stop: Option<Instant> = None;
    if *phase.borrow_and_update() != Phase::Running {
        if activity.request_expected() {
            drain_after_next = true;
        } else {
            conn.as_mut().graceful_shutdown();
            closing = true;
        }
    }
    loop {
        if drain_after_next && !closing && !activity.request_expected() {
            // The expected request began (its wake-up may have been missed).
            conn.as_mut().graceful_shutdown();
            closing = true;
        }
        let deadline = if closing {
            hard_stop.map(|t| (t, Expiry::Head))
        } else {
            activity.deadline(timeouts)
        };
        tokio::select! {
            result = conn.as_mut() => {
                log_end(&result, peer);
                return;
            }
            changed = phase.changed() => {
                let now = if changed.is_err() { Phase::Stopped } else { *phase.borrow_and_update() };
                match now {
                    Phase::Running => {}
                    Phase::Draining if !closing && activity.request_expected() => {
                        drain_after_next = true;
                    }
                    Phase::Draining if !closing => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    Phase::Draining => {}
                    Phase::Stopped => return,
                }
            }
            _ = activity.idle.notified(), if !closing => {}
            _ = activity.began.notified(), if drain_after_next && !closing => {
                // The request is parsed: hyper answers it, then closes.
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = sleep_until(deadline.map(|d| d.0)), if deadline.is_some() => {
                if closing {
                    logging::debug(&format!("Closing connection from {peer}: it did not finish closing"));
                    return;
                }
                match activity.deadline(timeouts) {
                    Some((at, Expiry::Head)) if at <= Instant::now() => {
                        logging::debug(&format!("Closing connection from {peer}: no complete request head within --header-timeout"));
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

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn log_end(result: &Result<(), hyper::Error>, peer: &str) {
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

/// hyper's HTTP/1 connection future, seen through what the driver needs.
pub(crate) trait GracefulConnection:
    std::future::Future<Output = Result<(), hyper::Error>>
{
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> GracefulConnection for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::Connection::graceful_shutdown(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header: Some(Duration::from_secs(10)),
        keep_alive: Some(Duration::from_secs(2)),
    };

    #[test]
    fn deadlines_follow_the_connection() {
        let a = Activity::new(8192);
        let start = a.lock().idle_since;
        // First request: the head deadline runs from accept.
        assert_eq!(
            a.deadline(T),
            Some((start + Duration::from_secs(10), Expiry::Head))
        );
        a.on_read(b"x").unwrap();
        assert_eq!(a.deadline(T).unwrap().1, Expiry::Head);
        let g = a.begin();
        assert_eq!(a.deadline(T), None, "no deadline while serving");
        a.on_read(b"x").unwrap(); // a pipelined head
        drop(g);
        let idle = a.lock().idle_since;
        assert_eq!(
            a.deadline(T),
            Some((idle + Duration::from_secs(2), Expiry::Idle))
        );
        a.on_read(b"x").unwrap();
        let started = a.lock().head_started.unwrap();
        assert_eq!(
            a.deadline(T),
            Some((started + Duration::from_secs(10), Expiry::Head))
        );
        let no_ka = Timeouts {
            keep_alive: None,
            ..T
        };
        let g = a.begin();
        drop(g);
        assert_eq!(a.deadline(no_ka), None);
    }
}
