//! Arbitrary bytes as a token through the JWT service's decoding: PyJWT's
//! checks (`tokens::decode`), simplejwt's (`tokens::verify`), re-encoding
//! of whatever claims got through, and the token endpoints in process.
//!
//! Input: a mode byte, then the data. Mode bit 0 clear: the data is the
//! token. Set: the data is `header NUL claims` (or just claims), signed
//! here with the service's key, so the claim checks and the JSON reader
//! see arbitrary input past the signature. Bits 1-2 pick the endpoint the
//! token is also posted to.
//!
//! Oracle: no panic; a token that decodes yields an access token that
//! decodes again, with the claims it was given; the endpoints never answer
//! 5xx and always answer JSON.
#![no_main]

use ferricorn_auth::pyjson::{self, Value};
use ferricorn_auth::tokens::{self, Keys, Token};
use ferricorn_auth::Settings;
use ferricorn_fuzz::{call, sign, KEY};
use libfuzzer_sys::fuzz_target;

const HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;

fn keys() -> &'static Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| Keys::new(&ferricorn_fuzz::settings(), KEY).expect("keys"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token: Vec<u8> = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let (header, claims) = match rest.iter().position(|b| *b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (HEADER, rest),
        };
        sign(header, claims).into_bytes()
    };

    let plain = ferricorn_fuzz::settings();
    let strict = Settings {
        issuer: Some("iss".into()),
        audience: Some(vec!["a".into(), "b".into()]),
        leeway: 30.0,
        ..ferricorn_fuzz::settings()
    };
    let keys = keys();
    for settings in [&plain, &strict] {
        let now = tokens::now();
        let Ok(payload) = tokens::decode(&token, keys, settings, now) else {
            continue;
        };
        for ty in [None, Some("access"), Some("refresh")] {
            let _ = tokens::verify(&payload, settings, ty, now);
        }
        // JSON text round trip of what was read.
        let text = pyjson::dumps(&Value::Object(payload.clone()), true);
        let again = pyjson::loads(&text, false).expect("our own JSON reads back");
        assert_eq!(pyjson::dumps(&again, true), text);
        // An access token made from it is one we accept.
        let t = Token::from_payload(payload, now);
        let _ = (t.jti(settings), t.exp());
        let access = t.access_token(settings).encode(keys, settings);
        let p = tokens::decode(access.as_bytes(), keys, settings, tokens::now())
            .unwrap_or_else(|e| panic!("our own access token refused: {e} ({access})"));
        tokens::verify(&p, settings, Some("access"), tokens::now())
            .unwrap_or_else(|e| panic!("our own access token refused: {e} ({access})"));
    }

    let text = String::from_utf8_lossy(&token);
    let (path, field) = match (mode >> 1) & 3 {
        0 => ("/api/token/verify/", "token"),
        1 => ("/api/token/refresh/", "refresh"),
        2 => ("/api/token/blacklist/", "refresh"),
        _ => {
            let Ok(v) = http::HeaderValue::from_bytes(&[b"Bearer ", &token[..]].concat()) else {
                return;
            };
            let req = http::Request::builder()
                .uri("/api/hello/")
                .header("authorization", v)
                .body(ferricorn_app_interface::Body::empty())
                .unwrap();
            call(req);
            return;
        }
    };
    let body = serde_json::json!({ field: text }).to_string();
    let req = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(ferricorn_app_interface::Body::from(body))
        .unwrap();
    call(req);
});
