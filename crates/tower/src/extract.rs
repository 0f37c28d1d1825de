//! [`Connection`]: the axum extractor for ferricorn's connection facts.

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use ferricorn_app_interface::ConnectionInfo;
use http::request::Parts;
use http::StatusCode;

/// The [`ConnectionInfo`] of the request, as an axum extractor:
///
/// ```
/// use ferricorn_tower::Connection;
///
/// async fn whoami(Connection(info): Connection) -> String {
///     format!("{} via {} (worker {}, request {})",
///         info.remote_addr, info.scheme, info.worker_id, info.request_id)
/// }
/// let router: axum::Router = axum::Router::new().route("/whoami", axum::routing::get(whoami));
/// # let _ = router;
/// ```
///
/// Under ferricorn every request has one. Served by something else (an
/// `axum::serve` in a test, say), extraction fails with an empty 500 and
/// the handler is not called: the facts would be made up otherwise.
#[derive(Clone, Debug)]
pub struct Connection(pub ConnectionInfo);

/// The rejection of [`Connection`] outside ferricorn: an empty 500.
#[derive(Debug)]
pub struct MissingConnectionInfo;

impl IntoResponse for MissingConnectionInfo {
    fn into_response(self) -> Response {
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Connection {
    type Rejection = MissingConnectionInfo;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ConnectionInfo>()
            .cloned()
            .map(Connection)
            .ok_or(MissingConnectionInfo)
    }
}
