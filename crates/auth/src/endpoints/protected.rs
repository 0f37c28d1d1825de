//! `GET /api/hello/`: a view behind `IsAuthenticated` with
//! `JWTAuthentication`, as in simplejwt's tutorial.

use crate::compat::pyjson::{Object, Value};

/// The view's name in `OPTIONS` (`HelloView` → "Hello").
pub const NAME: &str = "Hello";
/// The view's description (the reference view has no docstring).
pub const DESCRIPTION: &str = "";

/// The answer to an authenticated GET.
pub fn get() -> Value {
    let mut o = Object::new();
    o.insert("message", Value::str("Hello, World!"));
    Value::Object(o)
}
