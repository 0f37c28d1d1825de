//! The views, one file each ([`obtain`], [`refresh`], [`verify`],
//! [`blacklist`], [`protected`]; beyond simplejwt, [`blacklist_all`] and
//! [`jwks`]), and the router in front of them: Django's URL resolution
//! (percent-decoded paths, `APPEND_SLASH`), DRF's content negotiation
//! before authentication, the method check, `Allow`, and Django's security
//! headers on every answer. [`cookie`] holds the refresh cookie and its
//! cross-site check.

pub mod blacklist;
pub mod blacklist_all;
pub mod cookie;
pub mod jwks;
pub mod obtain;
pub mod protected;
pub mod refresh;
pub mod verify;

use http::header::{HeaderValue, ALLOW, LOCATION, SET_COOKIE};
use http::{HeaderMap, Method, StatusCode};

use crate::authentication;
use crate::compat::drf;
use crate::compat::pyjson::Value;
use crate::compat::response::{self, Rendering};
use crate::error::AuthError;
use crate::State;
use ferricorn_app_interface::{Request, Response};

/// A view's successful answer: its body and the cookies it sets.
pub struct Answer {
    /// The JSON body.
    pub body: Value,
    /// `Set-Cookie` values (the refresh cookie mode).
    pub cookies: Vec<HeaderValue>,
}

impl From<Value> for Answer {
    fn from(body: Value) -> Answer {
        Answer {
            body,
            cookies: Vec::new(),
        }
    }
}

#[derive(Clone, Copy)]
enum View {
    Obtain,
    Refresh,
    Verify,
    Blacklist,
    BlacklistAll,
    Hello,
    Jwks,
}

impl View {
    fn of(path: &str, state: &State) -> Option<View> {
        Some(match path {
            "/api/token/" => View::Obtain,
            "/api/token/refresh/" => View::Refresh,
            "/api/token/verify/" => View::Verify,
            "/api/token/blacklist/" => View::Blacklist,
            "/api/token/blacklist_all/" => View::BlacklistAll,
            "/api/hello/" => View::Hello,
            // Published only with an asymmetric key and `jwks` on: an
            // HMAC secret is never published, and without the switch the
            // path is simplejwt's 404.
            "/api/token/jwks/" | "/.well-known/jwks.json" if state.keys.jwks().is_some() => {
                View::Jwks
            }
            _ => return None,
        })
    }

    fn allow(self) -> &'static str {
        match self {
            // The tutorial's `class HelloView(APIView)` with a `get`: DRF
            // lists the methods the class has in `http_method_names`
            // order, and Django's `View.setup` gives it `head` as `get`.
            View::Hello => "GET, HEAD, OPTIONS",
            View::Jwks => "GET, HEAD",
            _ => "POST, OPTIONS",
        }
    }
}

/// Answers one request as the Django deployment would.
pub(crate) async fn route(state: &State, request: Request) -> Response {
    let mut res = dispatch(state, request).await;
    response::add_django_headers(&mut res);
    res
}

async fn dispatch(state: &State, request: Request) -> Response {
    let path = django_path(request.uri().path());
    let Some(view) = View::of(&path, state) else {
        // Django's APPEND_SLASH: a known path without its slash redirects.
        if View::of(&format!("{path}/"), state).is_some() {
            let mut location = format!("{}/", escape_uri_path(&path));
            if let Some(q) = request.uri().query().filter(|q| !q.is_empty()) {
                location = format!("{location}?{q}");
            }
            let mut res = response::django_html(StatusCode::MOVED_PERMANENTLY, "");
            if let Ok(v) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(LOCATION, v);
            }
            return res;
        }
        return response::django_html(StatusCode::NOT_FOUND, response::NOT_FOUND_HTML);
    };
    if let View::Jwks = view {
        return with_allow(jwks::get(state, request.method()), view);
    }
    // DRF negotiates the rendering first, before authentication and the
    // method check: an unacceptable `Accept` is a 406 whatever else is
    // wrong. A failed negotiation renders its error as plain JSON.
    let (rendering, result) = match drf::negotiate(request.headers(), request.uri().query()) {
        Err(e) => (Rendering::default(), Err(e)),
        Ok(r) if matches!(view, View::Hello) => (r, hello(state, request).await.map(Answer::from)),
        Ok(r) => (r, token_view(state, view, request).await),
    };
    match result {
        Ok(answer) => {
            let mut res = response::drf_json(StatusCode::OK, &answer.body, rendering);
            for c in answer.cookies {
                res.headers_mut().append(SET_COOKIE, c);
            }
            with_allow(res, view)
        }
        Err(e) if e.is_django_page() => {
            e.into_response(state.settings.www_authenticate_type(), rendering)
        }
        Err(e) => with_allow(
            e.into_response(state.settings.www_authenticate_type(), rendering),
            view,
        ),
    }
}

/// DRF's `Allow` header, on every answer of a view.
fn with_allow(mut res: Response, view: View) -> Response {
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(view.allow()));
    res
}

/// The path as Django's URL resolver sees it: percent-decoded (the WSGI
/// server decodes `PATH_INFO`), read as UTF-8, with bytes that are not
/// UTF-8 percent-encoded again (Django's `repercent_broken_unicode`). So
/// `/api/%68ello/` and `/api/token%2F` reach their views.
fn django_path(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|c| hex(*c)),
            b.get(i + 2).and_then(|c| hex(*c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                bytes.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Django's `escape_uri_path`: the path quoted for a `Location`, keeping
/// `/:@&+$,-_.!~*'()`, letters and digits.
fn escape_uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"/:@&+$,-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

async fn token_view(state: &State, view: View, request: Request) -> Result<Answer, AuthError> {
    let (name, description, fields) = match view {
        View::Obtain => (obtain::NAME, obtain::DESCRIPTION, obtain::FIELDS),
        View::Refresh => (refresh::NAME, refresh::DESCRIPTION, refresh::FIELDS),
        View::Verify => (verify::NAME, verify::DESCRIPTION, verify::FIELDS),
        View::BlacklistAll => (blacklist_all::NAME, blacklist_all::DESCRIPTION, &[][..]),
        _ => (blacklist::NAME, blacklist::DESCRIPTION, blacklist::FIELDS),
    };
    match *request.method() {
        Method::POST => {
            // The cookie mode reads the request's cookies and its
            // cross-site headers after the body has been taken.
            let headers = if state.settings.refresh_cookie || matches!(view, View::BlacklistAll) {
                request.headers().clone()
            } else {
                HeaderMap::new()
            };
            if let View::BlacklistAll = view {
                // Authenticated before the body is read, as DRF checks
                // permissions before the view parses anything.
                return blacklist_all::post(state, &headers).await;
            }
            let data = drf::read_data(request).await?;
            match view {
                View::Obtain => obtain::post(state, data).await,
                View::Refresh => refresh::post(state, data, &headers).await,
                View::Verify => verify::post(state, data).await.map(Answer::from),
                _ => blacklist::post(state, data, &headers).await,
            }
        }
        Method::OPTIONS => {
            Ok(drf::metadata(name, description, (!fields.is_empty()).then_some(fields)).into())
        }
        ref m => Err(AuthError::MethodNotAllowed(m.as_str().to_string())),
    }
}

async fn hello(state: &State, request: Request) -> Result<Value, AuthError> {
    // DRF authenticates and checks permissions before looking at the
    // method: an anonymous POST is a 401, not a 405.
    if authentication::authenticate(state, request.headers())
        .await?
        .is_none()
    {
        return Err(AuthError::NotAuthenticated);
    }
    // The tutorial's class-based view: Django's `View.setup` makes `head`
    // an alias of `get` and DRF dispatches it, so HEAD is answered as GET
    // (the server sends no body).
    match *request.method() {
        Method::GET | Method::HEAD => Ok(protected::get()),
        Method::OPTIONS => Ok(drf::metadata(protected::NAME, protected::DESCRIPTION, None)),
        ref m => Err(AuthError::MethodNotAllowed(m.as_str().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_django_reads_them() {
        assert_eq!(django_path("/api/%68ello/"), "/api/hello/");
        assert_eq!(django_path("/api/token%2F"), "/api/token/");
        assert_eq!(django_path("/a/%C3%A9%FF%zz"), "/a/é%FF%zz");
        assert_eq!(escape_uri_path("/a b/é"), "/a%20b/%C3%A9");
    }
}
