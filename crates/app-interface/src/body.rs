//! [`Body`]: the body of a request or a response.
//!
//! A body is empty, full (one buffer known up front) or streamed (any
//! [`http_body::Body`], or a [`Body::channel`] fed by the application). The
//! server hands request bodies to the application as streams, so that an
//! application reads as much as it wants and no more: chunk by chunk with
//! [`Body::chunk`], or whole with [`Body::collect_limited`], which stops
//! reading at the limit instead of buffering an unbounded upload.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_channel::mpsc;
use futures_core::Stream;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

use crate::BoxError;

/// The body of a [`Request`](crate::Request) or a [`Response`](crate::Response).
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Stream(Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send + 'static>>),
    Channel(mpsc::Receiver<Result<Bytes, BoxError>>),
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The body is longer than the limit given to
    /// [`Body::collect_limited`] (or the server's `--limit-request-body`).
    /// Answer it with 413 Payload Too Large.
    TooLarge {
        /// The limit in bytes that was exceeded.
        limit: u64,
    },
    /// The peer sent a malformed body, went away, or the stream failed.
    Read(BoxError),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::TooLarge { limit } => {
                write!(f, "body is larger than the limit of {limit} bytes")
            }
            BodyError::Read(e) => write!(f, "body could not be read: {e}"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::TooLarge { .. } => None,
            BodyError::Read(e) => Some(&**e),
        }
    }
}

impl BodyError {
    /// True when the body was refused for its size (a client error, 413).
    pub fn is_too_large(&self) -> bool {
        matches!(self, BodyError::TooLarge { .. })
    }
}

impl Body {
    /// A body with no bytes.
    pub fn empty() -> Self {
        Body { kind: Kind::Empty }
    }

    /// A body of one buffer.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Body::empty();
        }
        Body {
            kind: Kind::Full(Some(bytes)),
        }
    }

    /// A streamed body from any [`http_body::Body`]. Trailers are passed on.
    pub fn from_stream<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Body {
            kind: Kind::Stream(Box::pin(body.map_err(Into::into))),
        }
    }

    /// A streamed body fed through a [`BodySender`]; `buffer` chunks may wait
    /// unsent before [`BodySender::send`] waits for the peer to read. This is
    /// how an application streams a response it produces over time.
    pub fn channel(buffer: usize) -> (BodySender, Body) {
        let (tx, rx) = mpsc::channel(buffer);
        (
            BodySender { tx },
            Body {
                kind: Kind::Channel(rx),
            },
        )
    }

    /// The next chunk of data, `None` at the end. Trailers are skipped.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, BodyError>> {
        loop {
            let frame =
                std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut *self), cx))
                    .await;
            match frame? {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => return Some(Ok(data)),
                    Err(_trailers) => continue,
                },
                Err(e) => return Some(Err(read_error(e))),
            }
        }
    }

    /// Reads the whole body into one buffer, failing with
    /// [`BodyError::TooLarge`] as soon as more than `limit` bytes arrive (or
    /// are announced by the size hint), without reading the rest.
    pub async fn collect_limited(mut self, limit: u64) -> Result<Bytes, BodyError> {
        if http_body::Body::size_hint(&self).lower() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        if let Kind::Full(bytes) = &mut self.kind {
            return Ok(bytes.take().unwrap_or_default());
        }
        let mut first: Option<Bytes> = None;
        let mut buf = BytesMut::new();
        let mut len: u64 = 0;
        while let Some(chunk) = self.chunk().await {
            let chunk = chunk?;
            len += chunk.len() as u64;
            if len > limit {
                return Err(BodyError::TooLarge { limit });
            }
            // Avoid a copy in the common case of a body in one chunk.
            match first.take() {
                None if buf.is_empty() => first = Some(chunk),
                None => buf.extend_from_slice(&chunk),
                Some(prev) => {
                    buf.extend_from_slice(&prev);
                    buf.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| buf.freeze()))
    }

    /// Whether the body is known to be empty without reading it.
    pub fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(self)
    }
}

fn read_error(e: BoxError) -> BodyError {
    match e.downcast::<BodyError>() {
        Ok(e) => *e,
        Err(e) => BodyError::Read(e),
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "Empty",
            Kind::Full(_) => "Full",
            Kind::Stream(_) => "Stream",
            Kind::Channel(_) => "Channel",
        };
        f.debug_tuple("Body").field(&kind).finish()
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body::full(b)
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Body::full(b)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::full(s)
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::full(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Body::full(Bytes::from_static(s))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(body) => body.as_mut().poll_frame(cx),
            Kind::Channel(rx) => Pin::new(rx)
                .poll_next(cx)
                .map(|item| item.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(b) => b.is_none(),
            Kind::Stream(body) => body.is_end_stream(),
            Kind::Channel(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(body) => body.size_hint(),
            Kind::Channel(_) => SizeHint::default(),
        }
    }
}

/// The sending half of [`Body::channel`].
pub struct BodySender {
    tx: mpsc::Sender<Result<Bytes, BoxError>>,
}

impl BodySender {
    /// Sends one chunk, waiting while the buffer is full. Fails when the
    /// receiver is gone (the client disconnected): stop producing then.
    pub async fn send(&mut self, chunk: impl Into<Bytes>) -> Result<(), BodyError> {
        std::future::poll_fn(|cx| self.tx.poll_ready(cx))
            .await
            .map_err(|e| BodyError::Read(Box::new(e)))?;
        self.tx
            .start_send(Ok(chunk.into()))
            .map_err(|e| BodyError::Read(Box::new(e)))
    }

    /// Ends the body with an error: the server aborts the response (the
    /// client sees a truncated chunked body, never a clean end).
    pub fn abort(mut self, error: impl Into<BoxError>) {
        let _ = self.tx.try_send(Err(error.into()));
    }
}
