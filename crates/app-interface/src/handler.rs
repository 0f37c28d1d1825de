//! Adapters that make applications out of functions.
//!
//! - [`from_fn`]: an async function or closure `Fn(Request) -> impl Future`
//!   whose output is anything [`IntoResponse`].
//! - [`blocking`]: a synchronous function `Fn(http::Request<Bytes>) -> R`.
//!   The adapter collects the body (up to a limit, 413 past it) and runs the
//!   function on the server's blocking thread pool, so a slow synchronous
//!   handler never stalls the async executor that serves other connections.
//!   This crate has no runtime, so the pool comes from the server through a
//!   [`BlockingSpawner`] in the request's extensions; without one (in a unit
//!   test, say) the function runs on a fresh thread.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_channel::oneshot;
use http::StatusCode;

use crate::response::{empty, IntoResponse};
use crate::{Application, Request, Response};

/// An [`Application`] made from an async function; see [`from_fn`].
#[derive(Clone)]
pub struct FnApplication<F> {
    f: F,
}

/// Makes an application of an async function or closure.
///
/// ```
/// use ferricorn_app_interface::{from_fn, Request};
///
/// async fn hello(_req: Request) -> &'static str {
///     "Hello, World!\n"
/// }
/// let app = from_fn(hello);
/// # let _ = app;
/// ```
pub fn from_fn<F, Fut, R>(f: F) -> FnApplication<F>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    FnApplication { f }
}

impl<F, Fut, R> Application for FnApplication<F>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    fn call(&self, request: Request) -> impl Future<Output = Response> + Send {
        let fut = (self.f)(request);
        async move { fut.await.into_response() }
    }
}

/// Runs blocking jobs off the async executor. The server puts one in each
/// request's extensions (tokio's blocking pool).
pub trait BlockingSpawner: Send + Sync + 'static {
    /// Runs `job` on a thread where blocking is allowed.
    fn spawn_blocking(&self, job: Box<dyn FnOnce() + Send + 'static>);
}

/// The handle to a [`BlockingSpawner`] as it travels in extensions.
pub type SharedSpawner = Arc<dyn BlockingSpawner>;

/// An [`Application`] made from a blocking function; see [`blocking`].
pub struct Blocking<F> {
    f: Arc<F>,
    body_limit: u64,
}

/// Makes an application of a synchronous function. The request body is
/// collected first (at most `body_limit` bytes; a longer body is answered
/// with 413 without calling `f`).
pub fn blocking<F, R>(body_limit: u64, f: F) -> Blocking<F>
where
    F: Fn(http::Request<Bytes>) -> R + Send + Sync + 'static,
    R: IntoResponse + Send + 'static,
{
    Blocking {
        f: Arc::new(f),
        body_limit,
    }
}

impl<F, R> Application for Blocking<F>
where
    F: Fn(http::Request<Bytes>) -> R + Send + Sync + 'static,
    R: IntoResponse + Send + 'static,
{
    fn call(&self, request: Request) -> impl Future<Output = Response> + Send {
        let f = Arc::clone(&self.f);
        let limit = self.body_limit;
        async move {
            let spawner = request.extensions().get::<SharedSpawner>().cloned();
            let (parts, body) = request.into_parts();
            let body = match body.collect_limited(limit).await {
                Ok(body) => body,
                Err(e) if e.is_too_large() => return empty(StatusCode::PAYLOAD_TOO_LARGE),
                Err(_) => return empty(StatusCode::BAD_REQUEST),
            };
            let request = http::Request::from_parts(parts, body);
            let (tx, rx) = oneshot::channel();
            let job = Box::new(move || {
                // A panic drops `tx`; the receiver sees it as cancelled and
                // answers 500 below, like a panic in an async handler.
                let _ = tx.send(f(request).into_response());
            });
            match spawner {
                Some(spawner) => spawner.spawn_blocking(job),
                None => {
                    std::thread::spawn(job);
                }
            }
            rx.await
                .unwrap_or_else(|_| empty(StatusCode::INTERNAL_SERVER_ERROR))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Body;

    fn block_on<F: Future>(fut: F) -> F::Output {
        use std::task::{Context, Poll, Wake, Waker};
        struct ThreadWaker(std::thread::Thread);
        impl Wake for ThreadWaker {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(v) => return v,
                Poll::Pending => std::thread::park(),
            }
        }
    }

    #[test]
    fn blocking_handler_runs_and_limits_body() {
        let app = blocking(4, |req: http::Request<Bytes>| {
            format!("got {}", req.body().len())
        });
        let res = block_on(app.call(Request::new(Body::full("abc"))));
        assert_eq!(res.status(), StatusCode::OK);
        let body = block_on(res.into_body().collect_limited(100)).unwrap();
        assert_eq!(&body[..], b"got 3");

        let res = block_on(app.call(Request::new(Body::full("abcdef"))));
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn blocking_panic_is_500() {
        let app = blocking(4, |_req: http::Request<Bytes>| -> &'static str {
            panic!("boom")
        });
        let res = block_on(app.call(Request::new(Body::empty())));
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn collect_limited_stops_at_limit() {
        let (mut tx, body) = Body::channel(4);
        block_on(async {
            tx.send("hello").await.unwrap();
            tx.send(" world").await.unwrap();
        });
        drop(tx);
        let err = block_on(body.collect_limited(8)).unwrap_err();
        assert!(err.is_too_large());
    }

    #[test]
    fn chunks_stream_in_order() {
        let (mut tx, mut body) = Body::channel(4);
        block_on(async {
            tx.send("a").await.unwrap();
            tx.send("b").await.unwrap();
        });
        drop(tx);
        assert_eq!(&block_on(body.chunk()).unwrap().unwrap()[..], b"a");
        assert_eq!(&block_on(body.chunk()).unwrap().unwrap()[..], b"b");
        assert!(block_on(body.chunk()).is_none());
    }
}
