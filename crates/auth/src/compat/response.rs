//! Responses as DRF renders them: `application/json`, compact separators,
//! non-ASCII kept (`UNICODE_JSON`), U+2028/U+2029 escaped; and the headers
//! Django's middleware adds to every answer.
//!
//! No `Vary: Accept`: DRF sends it only when a view has more than one
//! renderer, and the reference deployment renders JSON only
//! (`DEFAULT_RENDERER_CLASSES = [JSONRenderer]`).

use http::header::{
    HeaderName, HeaderValue, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use http::StatusCode;

use crate::compat::pyjson::{dumps_indented, Value};
use ferricorn_app_interface::{Body, Response};

/// How the answer is rendered, as DRF's content negotiation decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rendering {
    /// `indent` from the accepted media type (`application/json; indent=4`):
    /// pretty-printed JSON.
    pub indent: Option<usize>,
}

/// A JSON response rendered as DRF's `JSONRenderer` renders it, indented
/// when the accepted media type asked for it. The `Content-Type` is the
/// renderer's, without the accepted type's parameters, as DRF sends it.
pub fn drf_json(status: StatusCode, value: &Value, rendering: Rendering) -> Response {
    let mut res = Response::new(Body::from(dumps_indented(value, false, rendering.indent)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Django's 404 page (`DEBUG = False`) for a URL no view matches.
pub const NOT_FOUND_HTML: &str = "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n";

/// Django's 400 page, for a request Django itself refuses (a body or a form
/// over its limits).
pub const BAD_REQUEST_HTML: &str = "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Bad Request (400)</title>\n</head>\n<body>\n  <h1>Bad Request (400)</h1><p></p>\n</body>\n</html>\n";

/// One of Django's own HTML answers.
pub fn django_html(status: StatusCode, body: &'static str) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res
}

/// The headers Django's `SecurityMiddleware` adds to every response with its
/// default settings (`SECURE_CONTENT_TYPE_NOSNIFF`, `SECURE_REFERRER_POLICY`,
/// `SECURE_CROSS_ORIGIN_OPENER_POLICY`), which a client or a browser reads.
pub fn add_django_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
}
