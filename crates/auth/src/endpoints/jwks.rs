//! `GET /api/token/jwks/` and `GET /.well-known/jwks.json`: the verifying
//! keys as a JWK Set (RFC 7517), so that Nginx, Envoy and other services
//! verify tokens without holding any secret. Routed only when `jwks` is on
//! with an asymmetric algorithm; each key's `kid` is its RFC 7638
//! thumbprint, the one new tokens carry in their header.
//!
//! The document is built once per worker (keys change by a reload, which
//! replaces the workers), and cached by clients for `jwks_max_age`: after a
//! rotation, keep the old key in `verifying_keys` at least that long plus
//! the access token lifetime.

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::Method;

use crate::compat::response::Rendering;
use crate::error::AuthError;
use crate::State;
use ferricorn_app_interface::{Body, Response};

/// Answers `GET` and `HEAD` (the server drops a HEAD's body); any other
/// method is a 405 (the router adds `Allow`).
pub fn get(state: &State, method: &Method) -> Response {
    let document = state.keys.jwks().unwrap_or("{\"keys\":[]}");
    if !matches!(*method, Method::GET | Method::HEAD) {
        return AuthError::MethodNotAllowed(method.as_str().to_string())
            .into_response(state.settings.www_authenticate_type(), Rendering::default());
    }
    let mut res = Response::new(Body::from(document.to_string()));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) =
        HeaderValue::from_str(&format!("public, max-age={}", state.settings.jwks_max_age))
    {
        res.headers_mut().insert(CACHE_CONTROL, v);
    }
    res
}
