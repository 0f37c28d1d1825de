//! The bounds a service's response body and error must meet, as traits of
//! their own so that a service that misses one fails to compile with a
//! message naming it, instead of a page of unsatisfied `where` clauses.

use bytes::Buf;
use ferricorn_app_interface::{Body, BoxError};
use http_body::Body as HttpBody;
use http_body_util::BodyExt;

/// A response body ferricorn can stream to a client: any
/// `http_body::Body + Send + 'static` whose `Data: bytes::Buf` and whose
/// `Error: Into<BoxError>`. Implemented for every such type; not meant to
/// be implemented by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a response body ferricorn can serve",
    label = "the service's response body type",
    note = "ferricorn serves `http::Response<B>` where `B: http_body::Body + Send + 'static`, \
            `B::Data: bytes::Buf` and `B::Error: Into<ferricorn_tower::BoxError>`"
)]
pub trait ResponseBody: Send + 'static {
    /// The body as ferricorn's [`Body`], streamed frame by frame.
    fn into_body(self) -> Body;
}

impl<B> ResponseBody for B
where
    B: HttpBody + Send + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    fn into_body(self) -> Body {
        // `copy_to_bytes` on `Bytes` (axum's and hyper's data type) hands
        // the buffer over without copying.
        Body::from_stream(
            self.map_frame(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining()))),
        )
    }
}

/// A service error ferricorn can log: anything `Into<BoxError>`.
/// Implemented for every such type; not meant to be implemented by hand.
#[diagnostic::on_unimplemented(
    message = "the service's error type `{Self}` does not convert into a boxed error",
    label = "the service's error type",
    note = "ferricorn serves a service whose `Error: Into<ferricorn_tower::BoxError>` \
            (`Box<dyn std::error::Error + Send + Sync>`); `Infallible` and every \
            `std::error::Error + Send + Sync + 'static` do"
)]
pub trait ServiceError {
    /// The error, boxed.
    fn into_box_error(self) -> BoxError;
}

impl<E: Into<BoxError>> ServiceError for E {
    fn into_box_error(self) -> BoxError {
        self.into()
    }
}
