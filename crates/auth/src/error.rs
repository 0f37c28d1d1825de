//! [`AuthError`]: every way a request can fail, and the one conversion to the
//! answer simplejwt gives for it.
//!
//! The variant says who is at fault: everything but [`AuthError::Store`] is
//! the client's, answered with 4xx and not logged; a store failure is ours,
//! answered with 500 and logged, or with 503 `store_unavailable` while the
//! database is unavailable (logged by the store once per outage).

use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::StatusCode;

use crate::compat::pyjson::{Object, Value};
use crate::compat::response::{django_html, drf_json, Rendering, BAD_REQUEST_HTML};
use crate::store::StoreError;
use crate::tokens::TokenError;
use ferricorn_app_interface::Response;

/// Field errors of a serializer, in field order: `{"field": ["message"]}`.
pub type FieldErrors = Vec<(String, Vec<String>)>;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A body DRF's parser refuses: 400 `{"detail": "JSON parse error - ..."}`.
    #[error("{0}")]
    Parse(String),
    /// A content type no parser accepts: 415.
    #[error("Unsupported media type \"{0}\" in request.")]
    UnsupportedMediaType(String),
    /// No media type of the `Accept` header is one we render: 406.
    #[error("Could not satisfy the request Accept header.")]
    NotAcceptable,
    /// `?format=` names a format we do not render: DRF's `Http404`.
    #[error("Not found.")]
    NotFound,
    /// A method the view does not have: 405.
    #[error("Method \"{0}\" not allowed.")]
    MethodNotAllowed(String),
    /// A body larger than Django's `DATA_UPLOAD_MAX_MEMORY_SIZE`: Django's
    /// `RequestDataTooBig`, which DRF does not handle, so Django answers
    /// with its plain "Bad Request (400)" page.
    #[error("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")]
    TooLarge,
    /// A form (or query string) of more than Django's
    /// `DATA_UPLOAD_MAX_NUMBER_FIELDS` fields: `TooManyFieldsSent`, the same
    /// "Bad Request (400)" page.
    #[error("The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.")]
    TooManyFields,
    /// Serializer validation failed: 400 with the field errors.
    #[error("invalid input")]
    Validation(FieldErrors),
    /// obtain: unknown user, wrong password or inactive user.
    #[error("No active account found with the given credentials")]
    NoActiveAccount,
    /// refresh: the token's user is inactive (or gone).
    #[error("No active account found for the given token.")]
    NoActiveAccountForToken,
    /// A token given in a body was refused.
    #[error("{0}")]
    InvalidToken(TokenError),
    /// hello without credentials.
    #[error("Authentication credentials were not provided.")]
    NotAuthenticated,
    /// An `Authorization: Bearer` header without exactly one token.
    #[error("Authorization header must contain two space-delimited values")]
    BadAuthorizationHeader,
    /// The bearer token was refused (simplejwt lists why per token class).
    #[error("Given token not valid for any token type")]
    InvalidAccessToken(TokenError),
    /// The bearer token has no user id claim.
    #[error("Token contained no recognizable user identification")]
    NoUserIdentification,
    /// The bearer token's user does not exist.
    #[error("User not found")]
    UserNotFound,
    /// The bearer token's user is inactive.
    #[error("User is inactive")]
    UserInactive,
    /// A refresh or blacklist from the refresh cookie without proof that
    /// the site's own page sent it: 403, as DRF's `SessionAuthentication`
    /// answers a failed CSRF check.
    #[error("CSRF Failed: {0}")]
    Csrf(String),
    /// The store failed: our fault.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl AuthError {
    /// The status code of the answer.
    pub fn status(&self) -> StatusCode {
        use AuthError::*;
        match self {
            Parse(_) | Validation(_) | TooLarge | TooManyFields => StatusCode::BAD_REQUEST,
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Csrf(_) => StatusCode::FORBIDDEN,
            NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            NotFound => StatusCode::NOT_FOUND,
            Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            NoActiveAccount
            | NoActiveAccountForToken
            | InvalidToken(_)
            | NotAuthenticated
            | BadAuthorizationHeader
            | InvalidAccessToken(_)
            | NoUserIdentification
            | UserNotFound
            | UserInactive => StatusCode::UNAUTHORIZED,
        }
    }

    /// The JSON body simplejwt and DRF give.
    pub fn body(&self) -> Value {
        use AuthError::*;
        let mut o = Object::new();
        let code = match self {
            Validation(errors) => {
                for (field, msgs) in errors {
                    let msgs = msgs.iter().map(|m| Value::str(m.clone())).collect();
                    o.insert(field.clone(), Value::Array(msgs));
                }
                return Value::Object(o);
            }
            InvalidToken(_) | NoUserIdentification => Some("token_not_valid"),
            BadAuthorizationHeader => Some("bad_authorization_header"),
            UserNotFound => Some("user_not_found"),
            UserInactive => Some("user_inactive"),
            InvalidAccessToken(e) => {
                o.insert("detail", Value::str(self.to_string()));
                o.insert("code", Value::str("token_not_valid"));
                let mut m = Object::new();
                m.insert("token_class", Value::str("AccessToken"));
                m.insert("token_type", Value::str("access"));
                m.insert("message", Value::str(e.to_string()));
                o.insert("messages", Value::Array(vec![Value::Object(m)]));
                return Value::Object(o);
            }
            // The driver's message is in the log, never in the answer.
            Store(StoreError::Unavailable(_)) => {
                o.insert("detail", Value::str("Service temporarily unavailable"));
                o.insert("code", Value::str("store_unavailable"));
                return Value::Object(o);
            }
            Store(_) => {
                o.insert("detail", Value::str("A server error occurred."));
                return Value::Object(o);
            }
            _ => None,
        };
        o.insert("detail", Value::str(self.to_string()));
        if let Some(code) = code {
            o.insert("code", Value::str(code));
        }
        Value::Object(o)
    }

    /// Whether Django answers this one itself, with one of its HTML pages,
    /// because DRF lets the exception through: such an answer has none of
    /// DRF's headers (`Allow`).
    pub fn is_django_page(&self) -> bool {
        matches!(self, AuthError::TooLarge | AuthError::TooManyFields)
    }

    /// The response, rendered as content negotiation decided: status, JSON
    /// body and, on 401, `WWW-Authenticate` naming the first accepted header
    /// type (simplejwt's `get_authenticate_header`). The router adds `Allow`.
    pub fn into_response(self, auth_header_type: &str, rendering: Rendering) -> Response {
        let metrics = crate::metrics::get();
        match &self {
            // Logged by the store once per outage, not once per request.
            AuthError::Store(StoreError::Unavailable(_)) => metrics.store_error(),
            AuthError::Store(e) => {
                metrics.store_error();
                eprintln!("ferricorn-auth: store error: {e}");
            }
            AuthError::InvalidToken(why) | AuthError::InvalidAccessToken(why) => {
                metrics.rejected(why)
            }
            _ => {}
        }
        if self.is_django_page() {
            return django_html(StatusCode::BAD_REQUEST, BAD_REQUEST_HTML);
        }
        let mut res = drf_json(self.status(), &self.body(), rendering);
        if self.status() == StatusCode::UNAUTHORIZED {
            let v = format!("{auth_header_type} realm=\"api\"");
            if let Ok(v) = HeaderValue::from_str(&v) {
                res.headers_mut().insert(WWW_AUTHENTICATE, v);
            }
        }
        res
    }
}
