//! In-process tests of the application: requests in, responses out, no
//! sockets. Bodies are compared byte for byte with simplejwt's answers.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ferricorn_app_interface::{Application, Body, Request, Response};
use ferricorn_auth::store::{SqliteStore, Store};
use ferricorn_auth::{passwords, AuthApp, Settings};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const KEY: &str = "test-signing-key-0123456789abcdef";

struct Fixture {
    app: AuthApp,
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
}

fn fixture(f: impl FnOnce(&mut Settings)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("db.sqlite3")).unwrap());
    store
        .create_user("alice", &passwords::hash("pw"), true)
        .unwrap();
    store
        .create_user("bob", &passwords::hash("pw"), false)
        .unwrap();
    let mut settings = Settings {
        signing_key: Some(KEY.into()),
        ..Settings::default()
    };
    f(&mut settings);
    let app = AuthApp::new(settings, store.clone()).unwrap();
    Fixture {
        app,
        _dir: dir,
        store,
    }
}

fn req(method: &str, path: &str, ctype: Option<&str>, body: &str) -> Request {
    let mut b = http::Request::builder().method(method).uri(path);
    if let Some(c) = ctype {
        b = b.header("content-type", c);
    }
    if !body.is_empty() {
        b = b.header("content-length", body.len());
    }
    b.body(Body::from(body.to_string())).unwrap()
}

async fn call(app: &AuthApp, r: Request) -> (u16, Response, String) {
    let res = app.call(r).await;
    let status = res.status().as_u16();
    let (parts, body) = res.into_parts();
    let bytes = body.collect_limited(1 << 20).await.unwrap();
    (
        status,
        Response::from_parts(parts, Body::empty()),
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

async fn post(app: &AuthApp, path: &str, json: &str) -> (u16, Response, String) {
    call(app, req("POST", path, Some("application/json"), json)).await
}

fn field(body: &str, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v[name].as_str().unwrap().to_string()
}

async fn login(app: &AuthApp) -> (String, String) {
    let (s, _, b) = post(
        app,
        "/api/token/",
        r#"{"username":"alice","password":"pw"}"#,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    (field(&b, "refresh"), field(&b, "access"))
}

async fn hello(app: &AuthApp, auth: Option<&str>) -> (u16, Response, String) {
    let mut b = http::Request::builder().uri("/api/hello/");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    call(app, b.body(Body::empty()).unwrap()).await
}

/// An independent HS256 implementation (hmac + sha2), not jsonwebtoken.
fn hs256(payload_json: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload_json)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

const INVALID: &str = r#"{"detail":"Token is invalid","code":"token_not_valid"}"#;

#[tokio::test]
async fn whole_flow_and_token_shape() {
    let f = fixture(|_| {});
    let (refresh, access) = login(&f.app).await;
    // Checked with an independent HMAC: header, claim order, claim types.
    for (tok, ty) in [(&refresh, "refresh"), (&access, "access")] {
        let parts: Vec<&str> = tok.split('.').collect();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            br#"{"alg":"HS256","typ":"JWT"}"#
        );
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(hs256(&payload), **tok);
        let prefix = format!(r#"{{"token_type":"{ty}","exp":"#);
        assert!(payload.starts_with(&prefix), "{payload}");
        let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(v["user_id"], "1");
        let jti = v["jti"].as_str().unwrap();
        assert!(
            jti.len() == 32
                && jti
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        let mut expect = vec!["exp", "iat", "jti", "token_type", "user_id"];
        expect.sort();
        assert_eq!(keys, expect);
        assert!(v["exp"].as_i64().unwrap() > v["iat"].as_i64().unwrap());
    }
    let (s, res, b) = hello(&f.app, Some(&format!("Bearer {access}"))).await;
    assert_eq!((s, b.as_str()), (200, r#"{"message":"Hello, World!"}"#));
    assert_eq!(res.headers()["allow"], "GET, HEAD, OPTIONS");
    assert_eq!(res.headers()["content-type"], "application/json");

    let (s, _, b) = post(
        &f.app,
        "/api/token/refresh/",
        &format!(r#"{{"refresh":"{refresh}"}}"#),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        b.starts_with(r#"{"access":""#) && !b.contains("refresh"),
        "{b}"
    );
    let (s, _, b) = post(
        &f.app,
        "/api/token/verify/",
        &format!(r#"{{"token":"{access}"}}"#),
    )
    .await;
    assert_eq!((s, b.as_str()), (200, "{}"));
    let (s, _, b) = post(
        &f.app,
        "/api/token/blacklist/",
        &format!(r#"{{"refresh":"{refresh}"}}"#),
    )
    .await;
    assert_eq!((s, b.as_str()), (200, "{}"));
    let (s, res, b) = post(
        &f.app,
        "/api/token/blacklist/",
        &format!(r#"{{"refresh":"{refresh}"}}"#),
    )
    .await;
    assert_eq!(
        (s, b.as_str()),
        (
            401,
            r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#
        )
    );
    assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="api""#);
    assert_eq!(res.headers()["allow"], "POST, OPTIONS");
    let (s, _, b) = post(
        &f.app,
        "/api/token/refresh/",
        &format!(r#"{{"refresh":"{refresh}"}}"#),
    )
    .await;
    assert_eq!(
        (s, b.as_str()),
        (
            401,
            r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#
        )
    );
    // Blacklist on, rotation off: verify of a blacklisted token still passes.
    let (s, _, b) = post(
        &f.app,
        "/api/token/verify/",
        &format!(r#"{{"token":"{refresh}"}}"#),
    )
    .await;
    assert_eq!((s, b.as_str()), (200, "{}"));
    let (s, _, b) = post(
        &f.app,
        "/api/token/blacklist/",
        &format!(r#"{{"refresh":"{access}"}}"#),
    )
    .await;
    assert_eq!(
        (s, b.as_str()),
        (
            401,
            r#"{"detail":"Token has wrong type","code":"token_not_valid"}"#
        )
    );
}

#[tokio::test]
async fn obtain_errors() {
    let f = fixture(|_| {});
    let no = r#"{"detail":"No active account found with the given credentials"}"#;
    for body in [
        r#"{"username":"alice","password":"bad"}"#,
        r#"{"username":"nobody","password":"pw"}"#,
        r#"{"username":"bob","password":"pw"}"#,
        r#"{"username":"Alice","password":"pw"}"#,
    ] {
        let (s, res, b) = post(&f.app, "/api/token/", body).await;
        assert_eq!((s, b.as_str()), (401, no));
        assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="api""#);
    }
    // Whitespace is trimmed.
    let (s, _, _) = post(
        &f.app,
        "/api/token/",
        r#"{"username":" alice ","password":" pw\t"}"#,
    )
    .await;
    assert_eq!(s, 200);
    let cases = [
        (
            "{}",
            r#"{"username":["This field is required."],"password":["This field is required."]}"#,
        ),
        (
            r#"{"username":"","password":null}"#,
            r#"{"username":["This field may not be blank."],"password":["This field may not be null."]}"#,
        ),
        (
            r#"{"username":{},"password":true}"#,
            r#"{"username":["Not a valid string."],"password":["Not a valid string."]}"#,
        ),
        (
            "[1]",
            r#"{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}"#,
        ),
        ("null", r#"{"non_field_errors":["No data provided"]}"#),
        (
            "{bad",
            r#"{"detail":"JSON parse error - Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"}"#,
        ),
        (
            "x",
            r#"{"detail":"JSON parse error - Expecting value: line 1 column 1 (char 0)"}"#,
        ),
    ];
    for (body, expect) in cases {
        let (s, res, b) = post(&f.app, "/api/token/", body).await;
        assert_eq!((s, b.as_str()), (400, expect), "{body}");
        assert!(res.headers().get("www-authenticate").is_none());
        assert_eq!(res.headers()["allow"], "POST, OPTIONS");
    }
    let (s, res, b) = call(&f.app, req("POST", "/api/token/", Some("text/plain"), "x")).await;
    assert_eq!(
        (s, b.as_str()),
        (
            415,
            r#"{"detail":"Unsupported media type \"text/plain\" in request."}"#
        )
    );
    assert!(res.headers().get("www-authenticate").is_none());
    let (s, res, b) = call(&f.app, req("GET", "/api/token/", None, "")).await;
    assert_eq!(
        (s, b.as_str()),
        (405, r#"{"detail":"Method \"GET\" not allowed."}"#)
    );
    assert_eq!(res.headers()["allow"], "POST, OPTIONS");
    // Form and multipart bodies.
    let (s, _, _) = call(
        &f.app,
        req(
            "POST",
            "/api/token/",
            Some("application/x-www-form-urlencoded"),
            "username=alice&password=pw",
        ),
    )
    .await;
    assert_eq!(s, 200);
    let mp = "--b\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\npw\r\n--b--\r\n";
    let (s, _, _) = call(
        &f.app,
        req(
            "POST",
            "/api/token/",
            Some("multipart/form-data; boundary=b"),
            mp,
        ),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, b) = call(&f.app, req("OPTIONS", "/api/token/", None, "")).await;
    assert_eq!(s, 200);
    assert_eq!(
        b,
        r#"{"name":"Token Obtain Pair","description":"Takes a set of user credentials and returns an access and refresh JSON web\ntoken pair to prove the authentication of those credentials.","renders":["application/json"],"parses":["application/json","application/x-www-form-urlencoded","multipart/form-data"],"actions":{"POST":{"username":{"type":"string","required":true,"read_only":false,"label":"Username"},"password":{"type":"string","required":true,"read_only":false,"label":"Password"}}}}"#
    );
}

#[tokio::test]
async fn token_errors() {
    let f = fixture(|_| {});
    let t = now();
    let cases = [
        (
            format!(
                r#"{{"token_type":"refresh","exp":{},"iat":{t},"jti":"a","user_id":"1"}}"#,
                t - 10
            ),
            r#"{"detail":"Token is expired","code":"token_not_valid"}"#,
        ),
        (
            format!(
                r#"{{"token_type":"access","exp":{},"iat":{t},"jti":"a","user_id":"1"}}"#,
                t + 60
            ),
            r#"{"detail":"Token has wrong type","code":"token_not_valid"}"#,
        ),
        (
            format!(r#"{{"exp":{},"iat":{t},"jti":"a","user_id":"1"}}"#, t + 60),
            r#"{"detail":"Token has no type","code":"token_not_valid"}"#,
        ),
        (
            format!(r#"{{"token_type":"refresh","iat":{t},"jti":"a","user_id":"1"}}"#),
            r#"{"detail":"Token has no 'exp' claim","code":"token_not_valid"}"#,
        ),
        (
            format!(
                r#"{{"token_type":"refresh","exp":{},"user_id":"1"}}"#,
                t + 60
            ),
            r#"{"detail":"Token has no id","code":"token_not_valid"}"#,
        ),
        (
            format!(
                r#"{{"token_type":"refresh","exp":{},"jti":"a","nbf":{}}}"#,
                t + 60,
                t + 30
            ),
            INVALID,
        ),
        // Expired and wrong type: the expiry (PyJWT's check) wins.
        (
            format!(r#"{{"token_type":"access","exp":{},"jti":"a"}}"#, t - 60),
            r#"{"detail":"Token is expired","code":"token_not_valid"}"#,
        ),
        (
            format!(
                r#"{{"token_type":"refresh","exp":{},"jti":"a","user_id":"99"}}"#,
                t + 60
            ),
            r#"{"detail":"No active account found for the given token."}"#,
        ),
        (
            format!(
                r#"{{"token_type":"refresh","exp":{},"jti":"a","user_id":"2"}}"#,
                t + 60
            ),
            r#"{"detail":"No active account found for the given token."}"#,
        ),
        (
            format!(
                r#"{{"token_type":"refresh","exp":{},"jti":"a","user_id":"x"}}"#,
                t + 60
            ),
            r#"{"detail":"No active account found for the given token."}"#,
        ),
    ];
    for (payload, expect) in cases {
        let (s, res, b) = post(
            &f.app,
            "/api/token/refresh/",
            &format!(r#"{{"refresh":"{}"}}"#, hs256(&payload)),
        )
        .await;
        assert_eq!((s, b.as_str()), (401, expect), "{payload}");
        assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="api""#);
    }
    // Externally minted token accepted, extra claims carried to the access token.
    let ext = hs256(&format!(
        r#"{{"token_type":"refresh","exp":{},"iat":{t},"jti":"ext1","user_id":"1","role":"admin"}}"#,
        t + 60
    ));
    let (s, _, b) = post(
        &f.app,
        "/api/token/refresh/",
        &format!(r#"{{"refresh":"{ext}"}}"#),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let access = field(&b, "access");
    let payload = String::from_utf8(
        URL_SAFE_NO_PAD
            .decode(access.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(
        payload.ends_with(r#","user_id":"1","role":"admin"}"#),
        "{payload}"
    );
    // Bad signature, alg none, another algorithm, garbage.
    let good = hs256(&format!(
        r#"{{"token_type":"refresh","exp":{},"jti":"z"}}"#,
        t + 60
    ));
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let bad_sig = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode([0u8; 32])
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    parts[0] = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS512","typ":"JWT"}"#);
    let other = parts.join(".");
    for tok in [bad_sig, none, other, "abc".into(), "a.b.c".into()] {
        let (s, _, b) = post(
            &f.app,
            "/api/token/verify/",
            &format!(r#"{{"token":"{tok}"}}"#),
        )
        .await;
        assert_eq!((s, b.as_str()), (401, INVALID), "{tok}");
    }
    let (s, _, b) = post(&f.app, "/api/token/refresh/", "{}").await;
    assert_eq!(
        (s, b.as_str()),
        (400, r#"{"refresh":["This field is required."]}"#)
    );
}

#[tokio::test]
async fn hello_errors() {
    let f = fixture(|_| {});
    let not_provided = r#"{"detail":"Authentication credentials were not provided."}"#;
    for auth in [None, Some("Token x"), Some("bearer x"), Some("")] {
        let (s, res, b) = hello(&f.app, auth).await;
        assert_eq!((s, b.as_str()), (401, not_provided), "{auth:?}");
        assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="api""#);
        assert_eq!(res.headers()["allow"], "GET, HEAD, OPTIONS");
    }
    let two = r#"{"detail":"Authorization header must contain two space-delimited values","code":"bad_authorization_header"}"#;
    for auth in ["Bearer", "Bearer a b"] {
        let (s, _, b) = hello(&f.app, Some(auth)).await;
        assert_eq!((s, b.as_str()), (401, two));
    }
    let (s, _, b) = hello(&f.app, Some("Bearer x")).await;
    assert_eq!(
        (s, b.as_str()),
        (
            401,
            r#"{"detail":"Given token not valid for any token type","code":"token_not_valid","messages":[{"token_class":"AccessToken","token_type":"access","message":"Token is invalid"}]}"#
        )
    );
    let t = now();
    let mk = |extra: &str| {
        hs256(&format!(
            r#"{{"token_type":"access","exp":{},"jti":"j"{extra}}}"#,
            t + 60
        ))
    };
    let cases = [
        (
            mk(""),
            r#"{"detail":"Token contained no recognizable user identification","code":"token_not_valid"}"#,
        ),
        (
            mk(r#","user_id":"42""#),
            r#"{"detail":"User not found","code":"user_not_found"}"#,
        ),
        (
            mk(r#","user_id":"2""#),
            r#"{"detail":"User is inactive","code":"user_inactive"}"#,
        ),
    ];
    for (tok, expect) in cases {
        let (s, _, b) = hello(&f.app, Some(&format!("Bearer {tok}"))).await;
        assert_eq!((s, b.as_str()), (401, expect));
    }
    let (refresh, _) = login(&f.app).await;
    let (s, _, b) = hello(&f.app, Some(&format!("Bearer {refresh}"))).await;
    assert!(
        s == 401 && b.contains(r#""message":"Token has wrong type""#),
        "{b}"
    );
}

#[tokio::test]
async fn rotation_and_blacklist() {
    let f = fixture(|s| {
        s.rotate_refresh_tokens = true;
        s.blacklist_after_rotation = true;
    });
    let (refresh, _) = login(&f.app).await;
    let (s, _, b) = post(
        &f.app,
        "/api/token/refresh/",
        &format!(r#"{{"refresh":"{refresh}"}}"#),
    )
    .await;
    assert_eq!(s, 200);
    assert!(b.starts_with(r#"{"access":""#) && b.contains(r#","refresh":""#));
    let (s, _, b) = post(
        &f.app,
        "/api/token/refresh/",
        &format!(r#"{{"refresh":"{refresh}"}}"#),
    )
    .await;
    assert_eq!(
        (s, b.as_str()),
        (
            401,
            r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#
        )
    );
    let (s, res, b) = post(
        &f.app,
        "/api/token/verify/",
        &format!(r#"{{"token":"{refresh}"}}"#),
    )
    .await;
    assert_eq!(
        (s, b.as_str()),
        (400, r#"{"non_field_errors":["Token is blacklisted"]}"#)
    );
    assert!(res.headers().get("www-authenticate").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_refreshes_have_one_winner() {
    let f = fixture(|s| {
        s.rotate_refresh_tokens = true;
        s.blacklist_after_rotation = true;
    });
    let (refresh, _) = login(&f.app).await;
    // A second application on the same file stands for a second worker.
    let other = AuthApp::new(
        Settings {
            signing_key: Some(KEY.into()),
            rotate_refresh_tokens: true,
            blacklist_after_rotation: true,
            ..Settings::default()
        },
        Arc::new(SqliteStore::open(f._dir.path().join("db.sqlite3")).unwrap()),
    )
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let app = if i % 2 == 0 {
            f.app.clone()
        } else {
            other.clone()
        };
        let body = format!(r#"{{"refresh":"{refresh}"}}"#);
        tasks.push(tokio::spawn(async move {
            post(&app, "/api/token/refresh/", &body).await.0
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            401 => {}
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!(ok, 1);
    assert!(f
        .store
        .is_blacklisted(&{
            let p = URL_SAFE_NO_PAD
                .decode(refresh.split('.').nth(1).unwrap())
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
            v["jti"].as_str().unwrap().to_string()
        })
        .unwrap());
}

#[tokio::test]
async fn generated_key_is_shared() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let a = AuthApp::open(Settings::default(), &path).unwrap();
    let b = AuthApp::open(Settings::default(), &path).unwrap();
    a.state()
        .store
        .create_user("u", &passwords::hash("p"), true)
        .await
        .unwrap();
    let (s, _, body) = post(&a, "/api/token/", r#"{"username":"u","password":"p"}"#).await;
    assert_eq!(s, 200);
    let access = field(&body, "access");
    let (s, _, _) = hello(&b, Some(&format!("Bearer {access}"))).await;
    assert_eq!(s, 200);
}
