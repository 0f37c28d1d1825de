//! Arbitrary `Authorization` header values at `GET /api/hello/`: the
//! scheme and split rules of simplejwt's `JWTAuthentication`, then the
//! token, the user id claim and the user lookup.
//!
//! Input: lines, each one `Authorization` field (repeats kept, as a client
//! may send them). A first byte NUL instead means "the rest is claims":
//! they are signed with the service's key and sent as `Bearer <token>`, so
//! the user id claim and the user lookup see arbitrary values.
//!
//! Oracle: no panic; 200 or 401 and a JSON body, never a 5xx.
#![no_main]

use ferricorn_app_interface::Body;
use ferricorn_fuzz::{call, sign};
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut req = http::Request::builder().uri("/api/hello/");
    if let Some((0, claims)) = data.split_first() {
        let token = sign(br#"{"alg":"HS256","typ":"JWT"}"#, claims);
        req = req.header("authorization", format!("Bearer {token}"));
    } else {
        for line in data.split(|b| *b == b'\n') {
            if let Ok(v) = HeaderValue::from_bytes(line) {
                req = req.header("authorization", v);
            }
        }
    }
    let (status, body) = call(req.body(Body::empty()).unwrap());
    assert!(
        status == 200 || status == 401,
        "answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
});
