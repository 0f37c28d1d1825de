//! Responses as DRF renders them: `application/json`, compact separators,
//! non-ASCII kept (`UNICODE_JSON`), U+2028/U+2029 escaped, `Vary: Accept`.

use http::header::{HeaderValue, CONTENT_TYPE, VARY};
use http::StatusCode;

use crate::pyjson::{dumps, Value};
use ferricorn_app_interface::{Body, Response};

/// A JSON response rendered as DRF's `JSONRenderer` renders it.
pub fn drf_json(status: StatusCode, value: &Value) -> Response {
    let mut res = Response::new(Body::from(dumps(value, false)));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(VARY, HeaderValue::from_static("Accept"));
    res
}
