//! Building responses: helpers for the common bodies and [`IntoResponse`].
//!
//! `IntoResponse` is implemented for an explicit list of types, not for
//! everything that is `Display`: a handler returning the wrong thing should
//! not compile into a surprising text body.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use serde::Serialize;

use crate::{Body, Response};

// Content types as constants: `HeaderValue::from_static` checks its bytes
// when it runs, and a `const` runs it once, at compile time.
const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");

/// A response with this status and no body.
pub fn empty(status: StatusCode) -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status;
    res
}

/// A `text/plain; charset=utf-8` response.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    with_type(status, Body::full(body.into()), TEXT_PLAIN)
}

/// An `application/json` response of `value`. A value that cannot be
/// serialized (a map with non-string keys, say) is a bug in the application
/// and becomes an empty 500.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_type(status, Body::full(bytes), APPLICATION_JSON),
        Err(_) => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn with_type(status: StatusCode, body: Body, content_type: HeaderValue) -> Response {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, content_type);
    res
}

/// A value serialized as a JSON response body with status 200.
#[derive(Clone, Debug)]
pub struct Json<T>(pub T);

/// Turns a handler's return value into a [`Response`].
pub trait IntoResponse {
    /// Makes the response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        empty(self)
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        // The static text itself, not a copy.
        with_type(StatusCode::OK, Body::from(self), TEXT_PLAIN)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        text(StatusCode::OK, self)
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        with_type(StatusCode::OK, Body::full(self), OCTET_STREAM)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        json(StatusCode::OK, &self.0)
    }
}

impl<R: IntoResponse> IntoResponse for (StatusCode, R) {
    fn into_response(self) -> Response {
        let mut res = self.1.into_response();
        *res.status_mut() = self.0;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_sets_type_and_status() {
        let res = (StatusCode::CREATED, Json(serde_json::json!({"a": 1}))).into_response();
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    }

    #[test]
    fn status_alone_is_empty() {
        let res = StatusCode::NO_CONTENT.into_response();
        assert!(res.body().is_end_stream());
    }
}
