//! Body adapters between hyper and the application.
//!
//! - [`LimitedIncoming`]: the request body as hyper delivers it, cut off at
//!   `--limit-request-body` while it streams: the application sees
//!   [`BodyError::TooLarge`] as soon as the limit is crossed, whether it
//!   reads chunk by chunk or collects. Its trailer fields pass the same
//!   rules as header fields where they apply (the forbidden names, and
//!   `--header-map`, as Gunicorn applies it to both).
//! - [`TrackedBody`]: the application's response body, counted for the
//!   access log; its end (or drop, when the client goes away) finishes the
//!   request's bookkeeping.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use ferricorn_app_interface::{Body, BodyError, BoxError};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;

use super::limits;
use super::service::Finish;
use crate::config::HeaderMapMode;

/// A request body with a byte limit enforced while streaming.
pub(crate) struct LimitedIncoming {
    inner: Incoming,
    limit: Option<u64>,
    seen: u64,
    done: bool,
    flags: Arc<BodyFlags>,
    /// `--header-map`, for trailer fields.
    header_map: HeaderMapMode,
}

/// What went wrong while the application read the body, for the service
/// to pick the status and close the connection.
#[derive(Debug, Default)]
pub(crate) struct BodyFlags {
    /// The body crossed `--limit-request-body` (413).
    pub too_large: AtomicBool,
    /// The body was malformed: bad chunking, a forbidden trailer (400).
    pub malformed: AtomicBool,
}

impl BodyFlags {
    /// Clears the flags for the connection's next request.
    pub fn reset(&self) {
        self.too_large.store(false, Ordering::Relaxed);
        self.malformed.store(false, Ordering::Relaxed);
    }
}

/// Fields that may not appear in trailers: they frame or route a message
/// and must be known before its body (RFC 9110 section 6.5.1). Merging them
/// late is a smuggling vector; Gunicorn refuses the same three.
const FORBIDDEN_TRAILERS: &[&str] = &["content-length", "transfer-encoding", "host"];

impl LimitedIncoming {
    pub fn new(
        inner: Incoming,
        limit: Option<u64>,
        flags: Arc<BodyFlags>,
        header_map: HeaderMapMode,
    ) -> Self {
        LimitedIncoming {
            inner,
            limit,
            seen: 0,
            done: false,
            flags,
            header_map,
        }
    }

    fn malformed(&mut self, error: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        self.flags.malformed.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(Box::new(BodyError::Read(error)))))
    }
}

impl http_body::Body for LimitedIncoming {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => {
                self.done = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(e))) => {
                // A peer that went away is not a malformed request.
                if e.is_incomplete_message() {
                    self.done = true;
                    return Poll::Ready(Some(Err(Box::new(BodyError::Read(Box::new(e))))));
                }
                return self.malformed(Box::new(e));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            crate::metrics::server().request_body(data.len() as u64);
        }
        if let (Some(data), Some(limit)) = (frame.data_ref(), self.limit) {
            self.seen += data.len() as u64;
            if self.seen > limit {
                self.done = true;
                self.flags.too_large.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(Box::new(BodyError::TooLarge { limit }))));
            }
        }
        if let Some(trailers) = frame.trailers_ref() {
            if let Some(name) = FORBIDDEN_TRAILERS
                .iter()
                .find(|n| trailers.contains_key(**n))
            {
                return self.malformed(format!("{name} is not allowed in trailers").into());
            }
        }
        // Trailers are rare: only they pay for `--header-map`.
        let frame = match frame.into_trailers() {
            Ok(mut trailers) => {
                if let Err(e) = limits::apply_header_map(&mut trailers, None, self.header_map) {
                    return self.malformed(format!("in trailers: {e}").into());
                }
                Frame::trailers(trailers)
            }
            Err(frame) => frame,
        };
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body as hyper sends it.
pub(crate) struct TrackedBody {
    inner: Body,
    sent: u64,
    finish: Option<Finish>,
}

impl TrackedBody {
    pub fn new(inner: Body, finish: Finish) -> Self {
        TrackedBody {
            inner,
            sent: 0,
            finish: Some(finish),
        }
    }

    fn finish(&mut self, complete: bool) {
        if let Some(f) = self.finish.take() {
            f.done(self.sent, complete);
        }
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        // A panic in a streamed body would otherwise unwind through hyper and
        // kill the connection's task without a log line.
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
            Pin::new(&mut this.inner).poll_frame(cx)
        }));
        if let (Some(f), Ok(p)) = (&mut this.finish, &polled) {
            f.body_polled(matches!(p, Poll::Ready(Some(Ok(_)))));
        }
        match polled {
            Ok(Poll::Ready(Some(Ok(frame)))) => {
                if let Some(d) = frame.data_ref() {
                    this.sent += d.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Ok(Poll::Ready(None)) => {
                this.finish(true);
                Poll::Ready(None)
            }
            Ok(Poll::Ready(Some(Err(e)))) => {
                if let Some(f) = &this.finish {
                    f.body_failed(&e.to_string());
                }
                this.finish(false);
                Poll::Ready(Some(Err(e)))
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => {
                let msg = super::service::panic_message(&panic);
                if let Some(f) = &this.finish {
                    f.body_failed(&format!("panic in the response body: {msg}"));
                }
                this.finish(false);
                Poll::Ready(Some(Err(
                    format!("panic in the response body: {msg}").into()
                )))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        // hyper drops a body without polling it to the end for HEAD, for
        // bodiless statuses, and when the client goes away.
        let complete = self.inner.is_end_stream();
        self.finish(complete);
    }
}
