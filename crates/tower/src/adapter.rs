//! [`TowerApp`]: a tower `Service` as a ferricorn [`Application`].

use std::future::{poll_fn, Future};
use std::sync::{Mutex, PoisonError};

use ferricorn_app_interface::response::empty;
use ferricorn_app_interface::{Application, BoxError, Request, Response};
use http::StatusCode;
use tower_service::Service;

use crate::body::{ResponseBody, ServiceError};

/// A tower `Service` served as a ferricorn [`Application`]; made by
/// [`from_service`]. See the crate docs for the accepted types.
pub struct TowerApp<S> {
    /// Behind a lock only to be cloned: an `Application` is shared by every
    /// connection of a worker (`Sync`), while tower asks services for
    /// `Clone + Send` alone (axum's `BoxCloneService`, for one, is not
    /// `Sync`). Each request clones the service and lets go of the lock at
    /// once, so the lock is held for the length of a `clone`, which for
    /// axum's `Router` is one reference count.
    service: Mutex<S>,
}

/// Makes an [`Application`] of a tower service (an axum `Router`, say).
///
/// ```
/// use axum::{routing::get, Router};
///
/// let app = ferricorn_tower::from_service(Router::new().route("/", get(|| async { "hi" })));
/// # let _ = app;
/// ```
pub fn from_service<S, B>(service: S) -> TowerApp<S>
where
    S: Service<Request, Response = http::Response<B>> + Clone + Send + 'static,
    S::Error: ServiceError,
    S::Future: Send + 'static,
    B: ResponseBody,
{
    TowerApp::new(service)
}

impl<S> TowerApp<S> {
    /// [`from_service`] without its bounds, for callers whose bounds say
    /// `TowerApp<S>: Application` instead.
    pub(crate) fn new(service: S) -> TowerApp<S> {
        TowerApp {
            service: Mutex::new(service),
        }
    }

    fn clone_service(&self) -> S
    where
        S: Clone,
    {
        // A panic in another request's `clone` poisons nothing we rely on:
        // the service value is whole either way.
        self.service
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl<S, B> Application for TowerApp<S>
where
    S: Service<Request, Response = http::Response<B>> + Clone + Send + 'static,
    S::Error: ServiceError,
    S::Future: Send + 'static,
    B: ResponseBody,
{
    fn call(&self, request: Request) -> impl Future<Output = Response> + Send {
        let mut service = self.clone_service();
        // For the log line of a failed request only; both share their
        // bytes with the request's, so the clones cost no copy.
        let method = request.method().clone();
        let uri = request.uri().clone();
        async move {
            // tower's contract: `call` only after `poll_ready` said ready.
            if let Err(e) = poll_fn(|cx| service.poll_ready(cx)).await {
                return failed(&method, &uri, "was not ready", e.into_box_error());
            }
            match service.call(request).await {
                Ok(response) => response.map(ResponseBody::into_body),
                Err(e) => failed(&method, &uri, "failed", e.into_box_error()),
            }
        }
    }
}

/// A service error: logged, answered with an empty 500 that names nothing.
fn failed(method: &http::Method, uri: &http::Uri, what: &str, error: BoxError) -> Response {
    ferricorn_server::logging::error(&format!(
        "Error handling request {method} {}: the service {what}: {error}",
        uri.path()
    ));
    empty(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use ferricorn_app_interface::{Body, ConnectionInfo, Scheme, ServerAddr};
    use http_body_util::BodyExt;

    use super::*;

    fn info() -> ConnectionInfo {
        ConnectionInfo {
            socket_peer: None,
            remote_addr: "10.0.0.7".into(),
            remote_port: Some(4242),
            scheme: Scheme::Https,
            server: ServerAddr::Unix("/run/app.sock".into()),
            worker_id: 3,
            request_id: "req-1".into(),
            tls: None,
        }
    }

    async fn body_text(res: Response) -> String {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn router_sees_body_and_connection_facts() {
        use axum::routing::post;
        let router = axum::Router::new().route(
            "/up",
            post(
                |axum::Extension(info): axum::Extension<ConnectionInfo>, body: Bytes| async move {
                    format!(
                        "{} {} {} {}",
                        info.worker_id,
                        info.request_id,
                        info.scheme,
                        body.len()
                    )
                },
            ),
        );
        let app = from_service(router);
        let mut req = Request::new(Body::full("hello"));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = "/up".parse().unwrap();
        req.extensions_mut().insert(info());
        let res = app.call(req).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(body_text(res).await, "3 req-1 https 5");
    }

    #[tokio::test]
    async fn streamed_request_body_reaches_the_service_chunk_by_chunk() {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        let svc = tower::service_fn(move |req: Request| {
            let counter = Arc::clone(&counter);
            async move {
                let mut body = req.into_body();
                while let Some(chunk) = body.chunk().await {
                    chunk.unwrap();
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<_, Infallible>(http::Response::new(Body::empty()))
            }
        });
        let (mut tx, body) = Body::channel(1);
        let feed = tokio::spawn(async move {
            for part in ["a", "b", "c"] {
                tx.send(part).await.unwrap();
            }
        });
        let res = from_service(svc).call(Request::new(body)).await;
        feed.await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn streamed_response_body_keeps_its_frames_and_trailers() {
        use http_body::Frame;
        let svc = tower::service_fn(|_req: Request| async {
            let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
                Ok(Frame::data(Bytes::from_static(b"one "))),
                Ok(Frame::data(Bytes::from_static(b"two"))),
                Ok(Frame::trailers(
                    [("x-checksum", "42")]
                        .into_iter()
                        .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                        .collect(),
                )),
            ];
            let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
            Ok::<_, Infallible>(http::Response::new(body))
        });
        let res = from_service(svc).call(Request::new(Body::empty())).await;
        let collected = res.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-checksum"], "42");
        assert_eq!(&collected.to_bytes()[..], b"one two");
    }

    #[derive(Clone)]
    struct Failing;

    impl Service<Request> for Failing {
        type Response = http::Response<Body>;
        type Error = std::io::Error;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _req: Request) -> Self::Future {
            std::future::ready(Err(std::io::Error::other(
                "the database refused: password authentication failed",
            )))
        }
    }

    #[tokio::test]
    async fn service_error_is_an_empty_500() {
        let res = from_service(Failing)
            .call(Request::new(Body::empty()))
            .await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_text(res).await, "");
    }

    /// Ready only on the second poll, and counts calls made before ready.
    #[derive(Clone)]
    struct Gate {
        polls: Arc<AtomicUsize>,
        early_calls: Arc<AtomicUsize>,
    }

    impl Service<Request> for Gate {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            if self.polls.fetch_add(1, Ordering::SeqCst) == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _req: Request) -> Self::Future {
            if self.polls.load(Ordering::SeqCst) < 2 {
                self.early_calls.fetch_add(1, Ordering::SeqCst);
            }
            std::future::ready(Ok(http::Response::new(Body::from("ok"))))
        }
    }

    #[tokio::test]
    async fn poll_ready_is_awaited_before_call() {
        let gate = Gate {
            polls: Arc::new(AtomicUsize::new(0)),
            early_calls: Arc::new(AtomicUsize::new(0)),
        };
        let res = from_service(gate.clone())
            .call(Request::new(Body::empty()))
            .await;
        assert_eq!(body_text(res).await, "ok");
        assert_eq!(gate.polls.load(Ordering::SeqCst), 2);
        assert_eq!(gate.early_calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_service_that_is_not_sync_is_served() {
        let svc = tower::util::BoxCloneService::new(tower::service_fn(|_req: Request| async {
            Ok::<_, Infallible>(http::Response::new(Body::from("boxed")))
        }));
        let app = from_service(svc);
        let res = app.call(Request::new(Body::empty())).await;
        assert_eq!(body_text(res).await, "boxed");
    }
}
