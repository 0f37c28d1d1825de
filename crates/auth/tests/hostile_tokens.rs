//! Hostile tokens at the JWT service (issue 6, item 4): forged, malformed,
//! oversized and strangely typed tokens at every endpoint that reads one.
//!
//! Each case goes to `refresh`, `verify`, `blacklist` (in the body) and to
//! `GET /api/hello/` (as `Authorization: Bearer`), in process through the
//! [`Application`]. A forged or malformed token gets simplejwt's 401 with
//! "Token is invalid"; a correctly signed token with odd claims gets what
//! simplejwt 5.5 answers, or the matching 401 where simplejwt answers 500
//! (an `exp` of 2^64, a string `exp`, a dict `iat`, a dict `user_id`). No
//! case may answer 500: the server turns an application panic into an
//! empty 500, so "never 500" also means "never a panic".
//!
//! The last test replays a handful through the real binary (RS256, one
//! worker) and checks that the worker that booted is still the one serving.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;

use ferricorn_app_interface::{Application, Body, Request};
use ferricorn_auth::store::{SqliteStore, Store};
use ferricorn_auth::{passwords, AuthApp, Settings};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey};
use sha2::Sha256;

mod common;

use common::{b64, jti, now, run, serve, Server, BIN};

const HS_KEY: &str = "hostile-test-signing-key-0123456789";
const RSA_PRIVATE: &str = include_str!("keys/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("keys/rsa_public.pem");
const ATTACKER_PRIVATE: &str = include_str!("keys/attacker_private.pem");
const ATTACKER_JWK: &str = include_str!("keys/attacker_jwk.json");

const INVALID: &str = "Token is invalid";
const EXPIRED: &str = "Token is expired";
const WRONG_TYPE: &str = "Token has wrong type";
const USER_NOT_FOUND: &str = r#"{"detail":"User not found","code":"user_not_found"}"#;
const NO_ACCOUNT_FOR_TOKEN: &str = r#"{"detail":"No active account found for the given token."}"#;

// ---------------------------------------------------------------- helpers

/// `header.payload.signature`, HMAC-SHA256 with `secret` (hmac + sha2, not
/// the crate under test), over whatever bytes the header and payload are.
fn hs256(header: &[u8], payload: &[u8], secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(mac.finalize().into_bytes()))
}

/// `header.payload.signature`, RS256 with a PEM private key.
fn rs256(header: &str, payload: &str, private_pem: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::RS256).unwrap();
    format!("{input}.{sig}")
}

/// Claims as simplejwt makes them, of type `ty`, valid for an hour.
fn claims(ty: &str) -> String {
    let n = now();
    format!(
        r#"{{"token_type":"{ty}","exp":{},"iat":{n},"jti":"{}","user_id":"1"}}"#,
        n + 3600,
        jti()
    )
}

struct Fixture {
    app: AuthApp,
    _dir: tempfile::TempDir,
}

fn fixture(f: impl FnOnce(&mut Settings)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("db.sqlite3")).unwrap());
    store
        .create_user("alice", &passwords::hash("pw"), true)
        .unwrap();
    let mut settings = Settings {
        signing_key: Some(HS_KEY.into()),
        ..Settings::default()
    };
    f(&mut settings);
    Fixture {
        app: AuthApp::new(settings, store).unwrap(),
        _dir: dir,
    }
}

fn rs256_fixture() -> Fixture {
    fixture(|s| {
        s.algorithm = Algorithm::RS256;
        s.signing_key = Some(RSA_PRIVATE.into());
        s.verifying_key = Some(RSA_PUBLIC.into());
    })
}

#[derive(Clone, Copy, Debug)]
enum Endpoint {
    Refresh,
    Verify,
    Blacklist,
    Hello,
}

const ENDPOINTS: [Endpoint; 4] = [
    Endpoint::Verify,
    Endpoint::Hello,
    Endpoint::Refresh,
    // Last: a correctly signed token is spent here.
    Endpoint::Blacklist,
];

/// What an endpoint must answer.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// 200.
    Ok,
    /// 401 with this simplejwt message, in the endpoint's `token_not_valid`
    /// body.
    Refused(&'static str),
    /// 401 with exactly this body.
    Exact(&'static str),
}

fn request(endpoint: Endpoint, token: &str) -> Option<Request> {
    let (path, field) = match endpoint {
        Endpoint::Refresh => ("/api/token/refresh/", "refresh"),
        Endpoint::Verify => ("/api/token/verify/", "token"),
        Endpoint::Blacklist => ("/api/token/blacklist/", "refresh"),
        Endpoint::Hello => {
            // A token that is no header value cannot reach the view.
            let value = http::HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
            return Some(
                http::Request::builder()
                    .uri("/api/hello/")
                    .header("authorization", value)
                    .body(Body::empty())
                    .unwrap(),
            );
        }
    };
    let body = serde_json::json!({ field: token }).to_string();
    Some(
        http::Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .body(Body::from(body))
            .unwrap(),
    )
}

fn refused_body(endpoint: Endpoint, msg: &str) -> String {
    match endpoint {
        Endpoint::Hello => format!(
            r#"{{"detail":"Given token not valid for any token type","code":"token_not_valid","messages":[{{"token_class":"AccessToken","token_type":"access","message":"{msg}"}}]}}"#
        ),
        _ => format!(r#"{{"detail":"{msg}","code":"token_not_valid"}}"#),
    }
}

async fn check(app: &AuthApp, case: &str, endpoint: Endpoint, token: &str, want: Want) {
    let Some(req) = request(endpoint, token) else {
        return;
    };
    let res = app.call(req).await;
    let status = res.status().as_u16();
    let www = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = res.into_body().collect_limited(1 << 20).await.unwrap();
    let body = String::from_utf8(bytes.to_vec()).unwrap();
    assert_ne!(status, 500, "{case} at {endpoint:?}: {body}");
    match want {
        Want::Ok => assert_eq!(status, 200, "{case} at {endpoint:?}: {body}"),
        Want::Refused(msg) => assert_eq!(
            (status, body.as_str()),
            (401, refused_body(endpoint, msg).as_str()),
            "{case} at {endpoint:?}"
        ),
        Want::Exact(expected) => assert_eq!(
            (status, body.as_str()),
            (401, expected),
            "{case} at {endpoint:?}"
        ),
    }
    if status == 401 {
        assert_eq!(www.as_deref(), Some(r#"Bearer realm="api""#), "{case}");
    }
}

/// `token` is refused as invalid by all four endpoints.
async fn all_invalid(app: &AuthApp, case: &str, token: &str) {
    for e in ENDPOINTS {
        check(app, case, e, token, Want::Refused(INVALID)).await;
    }
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn alg_none_and_other_algorithms_are_invalid() {
    let f = fixture(|_| {});
    for ty in ["refresh", "access"] {
        let payload = claims(ty);
        let signed = hs256(
            br#"{"alg":"HS256","typ":"JWT"}"#,
            payload.as_bytes(),
            HS_KEY.as_bytes(),
        );
        // Sanity: the same claims, correctly signed, pass.
        check(&f.app, "control", Endpoint::Verify, &signed, Want::Ok).await;
        let real_sig = signed.rsplit('.').next().unwrap();
        for alg in ["none", "None", "NONE", "nOnE"] {
            let head = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let p = b64(&payload);
            all_invalid(
                &f.app,
                &format!("alg {alg}, no signature"),
                &format!("{head}.{p}."),
            )
            .await;
            all_invalid(
                &f.app,
                &format!("alg {alg}, no dot"),
                &format!("{head}.{p}"),
            )
            .await;
            all_invalid(
                &f.app,
                &format!("alg {alg}, signature kept"),
                &format!("{head}.{p}.{real_sig}"),
            )
            .await;
        }
        for header in [
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"alg":"hs256","typ":"JWT"}"#,
            r#"{"typ":"JWT"}"#,
            r#"{"alg":null}"#,
            r#"{"alg":1}"#,
            r#"{"alg":["HS256"]}"#,
        ] {
            // Signed with the real secret, so only the header is wrong.
            let tok = hs256(header.as_bytes(), payload.as_bytes(), HS_KEY.as_bytes());
            all_invalid(&f.app, header, &tok).await;
        }
    }
}

#[tokio::test]
async fn rs256_algorithm_confusion_is_invalid() {
    let f = rs256_fixture();
    // Sanity: RS256 tokens from the service itself work end to end.
    let res = f
        .app
        .call(
            http::Request::builder()
                .method("POST")
                .uri("/api/token/")
                .header("content-type", "application/json")
                .header("content-length", "36")
                .body(Body::from(r#"{"username":"alice","password":"pw"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200);
    for ty in ["refresh", "access"] {
        let payload = claims(ty);
        let good = rs256(r#"{"alg":"RS256","typ":"JWT"}"#, &payload, RSA_PRIVATE);
        check(&f.app, "control", Endpoint::Verify, &good, Want::Ok).await;

        // The classic confusion: HS256 with the public key as HMAC secret,
        // with and without the PEM's trailing newline.
        for secret in [RSA_PUBLIC, RSA_PUBLIC.trim_end()] {
            let tok = hs256(
                br#"{"alg":"HS256","typ":"JWT"}"#,
                payload.as_bytes(),
                secret.as_bytes(),
            );
            all_invalid(&f.app, "HS256 signed with the public key", &tok).await;
            // The same MAC under an RS256 header.
            let mac = tok.rsplit('.').next().unwrap();
            let tok = format!(
                "{}.{}.{mac}",
                b64(r#"{"alg":"RS256","typ":"JWT"}"#),
                b64(&payload)
            );
            all_invalid(&f.app, "RS256 header, HMAC signature", &tok).await;
        }
        for alg in ["none", "HS384", "HS512", "PS256", "ES256", "EdDSA"] {
            let head = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let sig = good.rsplit('.').next().unwrap();
            all_invalid(&f.app, alg, &format!("{head}.{}.{sig}", b64(&payload))).await;
        }
        // RS256 under another key, the key offered in the header.
        let header = format!(
            r#"{{"alg":"RS256","typ":"JWT","jwk":{}}}"#,
            ATTACKER_JWK.trim()
        );
        let tok = rs256(&header, &payload, ATTACKER_PRIVATE);
        all_invalid(&f.app, "embedded jwk", &tok).await;
    }
}

/// A listener standing where the token's header points; it must never see
/// a connection.
struct Trap {
    listener: TcpListener,
    url: String,
}

impl Trap {
    fn new() -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        Trap { listener, url }
    }

    fn assert_untouched(&self) {
        // Give a wrongly spawned fetch a moment to connect.
        std::thread::sleep(std::time::Duration::from_millis(200));
        match self.listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("a key URL from a token header was followed: {other:?}"),
        }
    }
}

#[tokio::test]
async fn key_urls_in_headers_are_never_followed() {
    let trap = Trap::new();
    let url = &trap.url;
    let headers = [
        format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{url}"}}"#),
        format!(r#"{{"alg":"RS256","typ":"JWT","jku":"{url}"}}"#),
        format!(r#"{{"alg":"RS256","typ":"JWT","x5u":"{url}"}}"#),
        format!(r#"{{"alg":"RS256","typ":"JWT","jku":"{url}","kid":"k1","x5u":"{url}"}}"#),
        format!(
            r#"{{"alg":"RS256","typ":"JWT","jwk":{},"jku":"{url}"}}"#,
            ATTACKER_JWK.trim()
        ),
    ];
    let f = rs256_fixture();
    for header in &headers {
        for ty in ["refresh", "access"] {
            // Signed by the forger, whose key the URL would serve.
            let forged = rs256(header, &claims(ty), ATTACKER_PRIVATE);
            all_invalid(&f.app, header, &forged).await;
            // Signed with the service's key: the header is ignored, as
            // PyJWT ignores it, and the token is good.
            let good = rs256(header, &claims(ty), RSA_PRIVATE);
            check(&f.app, header, Endpoint::Verify, &good, Want::Ok).await;
        }
    }
    // A `kid` that is no string is refused (PyJWT: "Key ID header
    // parameter must be a string").
    for kid in ["5", "{}", r#"["a"]"#, "null"] {
        let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":{kid}}}"#);
        let tok = rs256(&header, &claims("access"), RSA_PRIVATE);
        all_invalid(&f.app, &header, &tok).await;
    }
    let hs = fixture(|_| {});
    for header in &headers {
        let header = header.replace("RS256", "HS256");
        let forged = hs256(header.as_bytes(), claims("access").as_bytes(), b"attacker");
        all_invalid(&hs.app, &header, &forged).await;
    }
    trap.assert_untouched();
}

#[tokio::test]
async fn malformed_tokens_are_invalid() {
    let f = fixture(|_| {});
    let payload = claims("access");
    let good = hs256(
        br#"{"alg":"HS256","typ":"JWT"}"#,
        payload.as_bytes(),
        HS_KEY.as_bytes(),
    );
    let [h, p, s]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();
    let signed = |header: &[u8], payload: &[u8]| hs256(header, payload, HS_KEY.as_bytes());
    let header = br#"{"alg":"HS256","typ":"JWT"}"#;
    let deep = |n: usize| format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));

    let mut cases: Vec<(String, String)> = vec![
        // Shape.
        ("one segment".into(), h.into()),
        ("two segments".into(), format!("{h}.{p}")),
        ("four segments".into(), format!("{h}.{p}.{s}.{s}")),
        ("dots only".into(), "..".into()),
        ("empty segments".into(), format!("..{s}")),
        // Invalid base64 in each segment.
        ("bad header b64".into(), format!("!!!!.{p}.{s}")),
        ("bad payload b64".into(), format!("{h}.!!!!.{s}")),
        ("bad signature b64".into(), format!("{h}.{p}.!!!!")),
        ("header b64 of length 4n+1".into(), format!("{h}A.{p}.{s}")),
        ("payload b64 of length 4n+1".into(), format!("{h}.{p}A.{s}")),
        (
            "signature b64 of length 4n+1".into(),
            format!("{h}.{p}.{s}A"),
        ),
        ("non-ASCII in header".into(), format!("{h}\u{e9}.{p}.{s}")),
        (
            "non-ASCII in payload".into(),
            format!("{h}.{p}\u{1F600}.{s}"),
        ),
        (
            "truncated signature".into(),
            format!("{h}.{p}.{}", &s[..s.len() - 2]),
        ),
        ("empty signature".into(), format!("{h}.{p}.")),
        // Segments that are not JSON objects.
        (
            "header not JSON".into(),
            format!("{}.{p}.{s}", b64("not json")),
        ),
        ("header a list".into(), format!("{}.{p}.{s}", b64("[1]"))),
        (
            "header a string".into(),
            format!("{}.{p}.{s}", b64(r#""HS256""#)),
        ),
        (
            "header not UTF-8".into(),
            format!("{}.{p}.{s}", b64(b"{\"alg\":\"\xff\"}")),
        ),
        (
            "header deeply nested".into(),
            format!("{}.{p}.{s}", b64(deep(100_000))),
        ),
        (
            "header with crit".into(),
            signed(br#"{"alg":"HS256","crit":["exp"]}"#, payload.as_bytes()),
        ),
        ("payload not JSON".into(), signed(header, b"not json")),
        ("payload a list".into(), signed(header, b"[]")),
        ("payload a number".into(), signed(header, b"5")),
        ("payload empty".into(), signed(header, b"")),
        (
            "payload not UTF-8".into(),
            signed(header, b"{\"jti\":\"\xff\xfe\"}"),
        ),
        (
            "payload trailing data".into(),
            signed(header, format!("{payload} x").as_bytes()),
        ),
        (
            "payload deeply nested".into(),
            signed(header, deep(100_000).as_bytes()),
        ),
        (
            "payload nested past Python's limit".into(),
            signed(header, deep(1_000).as_bytes()),
        ),
    ];
    // A megabyte: a huge payload segment, a huge signature, all dots.
    let mb = 1 << 20;
    cases.push(("1 MB payload".into(), format!("{h}.{}.{s}", "A".repeat(mb))));
    cases.push((
        "1 MB signature".into(),
        format!("{h}.{p}.{}", "A".repeat(mb)),
    ));
    cases.push(("1 MB of dots".into(), ".".repeat(mb)));
    cases.push((
        "1 MB header".into(),
        format!(
            "{}.{p}.{s}",
            b64(format!(r#"{{"alg":"HS256","x":"{}"}}"#, "a".repeat(mb)))
        ),
    ));
    for (case, tok) in &cases {
        all_invalid(&f.app, case, tok).await;
    }
}

/// One correctly signed token with odd claims: what each endpoint answers.
struct ClaimCase {
    name: &'static str,
    /// The claims, given the token type.
    payload: fn(&str) -> String,
    refresh: Want,
    verify: Want,
    blacklist: Want,
    hello: Want,
}

fn with(ty: &str, claim: &str, value: &str) -> String {
    let n = now();
    let mut claims = vec![
        ("token_type".to_string(), format!(r#""{ty}""#)),
        ("exp".into(), (n + 3600).to_string()),
        ("iat".into(), n.to_string()),
        ("jti".into(), format!(r#""{}""#, jti())),
        ("user_id".into(), r#""1""#.into()),
    ];
    match claims.iter_mut().find(|(k, _)| k == claim) {
        Some(c) => c.1 = value.to_string(),
        None => claims.push((claim.to_string(), value.to_string())),
    }
    let body: Vec<String> = claims
        .iter()
        .map(|(k, v)| format!(r#""{k}":{v}"#))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// All four endpoints want the same.
const fn same(name: &'static str, payload: fn(&str) -> String, want: Want) -> ClaimCase {
    ClaimCase {
        name,
        payload,
        refresh: want,
        verify: want,
        blacklist: want,
        hello: want,
    }
}

#[tokio::test]
async fn odd_claims_in_signed_tokens() {
    use Want::{Exact, Ok, Refused};
    let cases = [
        // Numbers where strings belong.
        ClaimCase {
            name: "token_type: 1",
            payload: |_| with("x", "token_type", "1"),
            refresh: Refused(WRONG_TYPE),
            verify: Ok, // simplejwt's UntypedToken checks no type
            blacklist: Refused(WRONG_TYPE),
            hello: Refused(WRONG_TYPE),
        },
        same("jti: 5", |t| with(t, "jti", "5"), Refused(INVALID)),
        same("jti: {}", |t| with(t, "jti", "{}"), Refused(INVALID)),
        ClaimCase {
            // Falsy: simplejwt's refresh skips the user check, as we do;
            // its hello answers 500, we "User not found".
            name: "user_id: {}",
            payload: |t| with(t, "user_id", "{}"),
            refresh: Ok,
            verify: Ok,
            blacklist: Ok,
            hello: Exact(USER_NOT_FOUND),
        },
        ClaimCase {
            name: r#"user_id: {"id": 1}"#,
            payload: |t| with(t, "user_id", r#"{"id":1}"#),
            refresh: Exact(NO_ACCOUNT_FOR_TOKEN),
            verify: Ok,
            blacklist: Ok,
            hello: Exact(USER_NOT_FOUND),
        },
        ClaimCase {
            name: r#"user_id: "abc""#,
            payload: |t| with(t, "user_id", r#""abc""#),
            refresh: Exact(NO_ACCOUNT_FOR_TOKEN),
            verify: Ok,
            blacklist: Ok,
            hello: Exact(USER_NOT_FOUND),
        },
        // Django looks a number up as readily as a string.
        same("user_id: 1", |t| with(t, "user_id", "1"), Ok),
        // exp.
        same(
            r#"exp: "abc""#,
            |t| with(t, "exp", r#""abc""#),
            Refused(INVALID),
        ),
        same(
            "exp: a numeric string",
            |t| with(t, "exp", &format!(r#""{}""#, now() + 3600)),
            Refused(INVALID),
        ),
        same("exp: null", |t| with(t, "exp", "null"), Refused(INVALID)),
        same("exp: []", |t| with(t, "exp", "[]"), Refused(INVALID)),
        same("exp: {}", |t| with(t, "exp", "{}"), Refused(INVALID)),
        same(
            "exp: 2^64",
            |t| with(t, "exp", "18446744073709551616"),
            Refused(INVALID),
        ),
        same(
            "exp: 10^400",
            |t| with(t, "exp", &format!("1{}", "0".repeat(400))),
            Refused(INVALID),
        ),
        same("exp: 1e400", |t| with(t, "exp", "1e400"), Refused(INVALID)),
        same("exp: NaN", |t| with(t, "exp", "NaN"), Refused(INVALID)),
        same(
            "exp: Infinity",
            |t| with(t, "exp", "Infinity"),
            Refused(INVALID),
        ),
        same(
            "exp: year 10000",
            |t| with(t, "exp", "253402300800"),
            Refused(INVALID),
        ),
        same("exp: -1", |t| with(t, "exp", "-1"), Refused(EXPIRED)),
        same(
            "exp: -2^64",
            |t| with(t, "exp", "-18446744073709551616"),
            Refused(EXPIRED),
        ),
        same(
            "exp: -Infinity",
            |t| with(t, "exp", "-Infinity"),
            Refused(INVALID),
        ),
        same("exp: 1.5", |t| with(t, "exp", "1.5"), Refused(EXPIRED)),
        same("exp: true", |t| with(t, "exp", "true"), Refused(EXPIRED)),
        // A NumericDate may have a fraction (RFC 7519); simplejwt accepts it.
        same(
            "exp: a future float",
            |t| with(t, "exp", &format!("{}.5", now() + 3600)),
            Ok,
        ),
        // nbf and iat.
        same(
            "nbf in the future",
            |t| with(t, "nbf", &(now() + 3600).to_string()),
            Refused(INVALID),
        ),
        same(
            "nbf: 2^64",
            |t| with(t, "nbf", "18446744073709551616"),
            Refused(INVALID),
        ),
        same(
            r#"nbf: "x""#,
            |t| with(t, "nbf", r#""x""#),
            Refused(INVALID),
        ),
        same("nbf in the past", |t| with(t, "nbf", "1"), Ok),
        same(
            r#"iat: "garbage""#,
            |t| with(t, "iat", r#""garbage""#),
            Refused(INVALID),
        ),
        same("iat: {}", |t| with(t, "iat", "{}"), Refused(INVALID)),
        same("iat: NaN", |t| with(t, "iat", "NaN"), Refused(INVALID)),
        same(
            "iat in the future",
            |t| with(t, "iat", &(now() + 3600).to_string()),
            Refused(INVALID),
        ),
        same(
            "iat: -2^64",
            |t| with(t, "iat", "-18446744073709551616"),
            Ok,
        ),
        // Other registered claims of the wrong type.
        same("sub: 5", |t| with(t, "sub", "5"), Refused(INVALID)),
        same(
            "iss: 5 (not checked without ISSUER)",
            |t| with(t, "iss", "5"),
            Ok,
        ),
    ];
    let f = fixture(|_| {});
    for case in &cases {
        for e in ENDPOINTS {
            let (ty, want) = match e {
                Endpoint::Refresh => ("refresh", case.refresh),
                Endpoint::Verify => ("refresh", case.verify),
                Endpoint::Blacklist => ("refresh", case.blacklist),
                Endpoint::Hello => ("access", case.hello),
            };
            let payload = (case.payload)(ty);
            let tok = hs256(
                br#"{"alg":"HS256","typ":"JWT"}"#,
                payload.as_bytes(),
                HS_KEY.as_bytes(),
            );
            check(&f.app, case.name, e, &tok, want).await;
        }
    }
}

// ------------------------------------------------------- the real binary

/// The binary with the RS256 keys, one worker.
fn start(dir: &std::path::Path) -> Server {
    serve(
        Command::new(BIN)
            .args(["--db"])
            .arg(dir.join("db.sqlite3"))
            .args(["serve", "--bind", "127.0.0.1:0", "--workers", "1"])
            .env("FERRICORN_AUTH_ALGORITHM", "RS256")
            .env("FERRICORN_AUTH_SIGNING_KEY", RSA_PRIVATE)
            .env("FERRICORN_AUTH_VERIFYING_KEY", RSA_PUBLIC),
    )
}

/// One request on its own connection: the raw response's status and body.
fn raw(addr: &str, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (431) and close before reading it all.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn post(addr: &str, path: &str, json: &str) -> (u16, String) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        json.len()
    );
    raw(addr, &head, json.as_bytes())
}

fn hello(addr: &str, token: &str) -> (u16, String) {
    let head = format!(
        "GET /api/hello/ HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    raw(addr, &head, b"")
}

#[test]
fn binary_refuses_hostile_tokens_and_keeps_its_worker() {
    let dir = tempfile::tempdir().unwrap();
    run(
        "ferricorn-auth createuser",
        Command::new(BIN)
            .arg("--db")
            .arg(dir.path().join("db.sqlite3"))
            .args(["createuser", "alice", "--password-stdin"]),
        "pw\n",
    );
    let server = start(dir.path());
    let addr = &server.addr.to_string();
    let trap = Trap::new();

    let payload = claims("access");
    let refresh_claims = claims("refresh");
    let p = b64(&payload);
    let hostile: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{p}.", b64(r#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "HS256 with the public key",
            hs256(
                br#"{"alg":"HS256","typ":"JWT"}"#,
                payload.as_bytes(),
                RSA_PUBLIC.as_bytes(),
            ),
        ),
        (
            "jku to a listener, forged",
            rs256(
                &format!(
                    r#"{{"alg":"RS256","typ":"JWT","jku":"{}","x5u":"{}"}}"#,
                    trap.url, trap.url
                ),
                &payload,
                ATTACKER_PRIVATE,
            ),
        ),
        ("invalid base64", format!("!!!!.{p}.@@@@")),
        ("header not JSON", format!("{}.{p}.AAAA", b64("{"))),
        (
            "deeply nested header",
            format!("{}.{p}.AAAA", b64("[".repeat(100_000))),
        ),
        (
            "exp: 2^64",
            rs256(
                r#"{"alg":"RS256","typ":"JWT"}"#,
                &with("access", "exp", "18446744073709551616"),
                RSA_PRIVATE,
            ),
        ),
        (
            "exp: NaN",
            rs256(
                r#"{"alg":"RS256","typ":"JWT"}"#,
                &with("access", "exp", "NaN"),
                RSA_PRIVATE,
            ),
        ),
        (
            "iat: {}",
            rs256(
                r#"{"alg":"RS256","typ":"JWT"}"#,
                &with("access", "iat", "{}"),
                RSA_PRIVATE,
            ),
        ),
        (
            "payload deeply nested",
            rs256(
                r#"{"alg":"RS256","typ":"JWT"}"#,
                &format!(r#"{{"a":{}}}"#, "[".repeat(100_000)),
                RSA_PRIVATE,
            ),
        ),
        (
            "1 MB",
            format!("{}.{}.AAAA", b64(r#"{"alg":"RS256"}"#), "A".repeat(1 << 20)),
        ),
    ];
    for (case, tok) in &hostile {
        for (path, field) in [
            ("/api/token/verify/", "token"),
            ("/api/token/refresh/", "refresh"),
            ("/api/token/blacklist/", "refresh"),
        ] {
            let json = serde_json::json!({ field: tok }).to_string();
            let (status, body) = post(addr, path, &json);
            assert_eq!(
                (status, body.as_str()),
                (
                    401,
                    r#"{"detail":"Token is invalid","code":"token_not_valid"}"#
                ),
                "{case} at {path}"
            );
        }
        let (status, body) = hello(addr, tok);
        if tok.len() > 8190 {
            // Past --limit-request-field_size: the server refuses the head.
            assert_eq!(status, 431, "{case}");
        } else {
            assert_eq!(
                (status, body.as_str()),
                (401, refused_body(Endpoint::Hello, INVALID).as_str()),
                "{case} at hello"
            );
        }
    }
    // user_id: {} in a well-signed token: simplejwt's 500, our 401.
    let tok = rs256(
        r#"{"alg":"RS256","typ":"JWT"}"#,
        &with("access", "user_id", "{}"),
        RSA_PRIVATE,
    );
    assert_eq!(hello(addr, &tok), (401, USER_NOT_FOUND.to_string()));

    // Still serving, with the worker that booted first.
    let good = rs256(r#"{"alg":"RS256","typ":"JWT"}"#, &payload, RSA_PRIVATE);
    assert_eq!(
        hello(addr, &good),
        (200, r#"{"message":"Hello, World!"}"#.to_string())
    );
    let good = rs256(
        r#"{"alg":"RS256","typ":"JWT"}"#,
        &refresh_claims,
        RSA_PRIVATE,
    );
    let (status, _) = post(
        addr,
        "/api/token/refresh/",
        &format!(r#"{{"refresh":"{good}"}}"#),
    );
    assert_eq!(status, 200);
    trap.assert_untouched();
    let log = server.log.lock().unwrap().clone();
    assert_eq!(log.matches("Booting worker").count(), 1, "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("exited"), "{log}");
}
