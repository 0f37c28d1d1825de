//! Black-box test of the `ferricorn-auth` binary: real processes, real HTTP,
//! two worker processes sharing one database.

use std::process::Command;

mod common;

use common::{run, serve, Server, BIN};

/// The service as the test runs it: two workers sharing one database,
/// rotation and blacklist on.
fn start(dir: &std::path::Path) -> Server {
    serve(
        Command::new(BIN)
            .args(["serve", "-b", "127.0.0.1:0", "-w", "2"])
            .current_dir(dir)
            .env(
                "FERRICORN_AUTH_SIGNING_KEY",
                "black-box-test-key-0123456789abcdef",
            )
            .env("FERRICORN_AUTH_ROTATE_REFRESH_TOKENS", "true")
            .env("FERRICORN_AUTH_BLACKLIST_AFTER_ROTATION", "true"),
    )
}

/// An administration command (`createuser`, `listusers`...) in `dir`.
fn admin(dir: &std::path::Path, args: &[&str], stdin: &str) -> String {
    run(
        &format!("ferricorn-auth {args:?}"),
        Command::new(BIN).args(args).current_dir(dir),
        stdin,
    )
}

fn post(base: &str, path: &str, body: &str) -> (u16, String) {
    // A new client per call: new connections, spread over the workers.
    let res = reqwest::blocking::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    (res.status().as_u16(), res.text().unwrap())
}

fn field(body: &str, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v[name].as_str().unwrap().to_string()
}

#[test]
fn flow_rotation_and_concurrency_across_workers() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        admin(
            dir.path(),
            &["createuser", "alice", "--password-stdin"],
            "pw\n"
        )
        .trim(),
        "1"
    );
    assert_eq!(
        admin(
            dir.path(),
            &["createuser", "bob", "--password-stdin", "--inactive"],
            "pw\n"
        )
        .trim(),
        "2"
    );
    let server = start(dir.path());
    let base = &format!("http://{}", server.addr);

    let (s, b) = post(base, "/api/token/", r#"{"username":"bob","password":"pw"}"#);
    assert_eq!(
        (s, b.as_str()),
        (
            401,
            r#"{"detail":"No active account found with the given credentials"}"#
        )
    );
    let (s, b) = post(
        base,
        "/api/token/",
        r#"{"username":"alice","password":"pw"}"#,
    );
    assert_eq!(s, 200);
    let (refresh, access) = (field(&b, "refresh"), field(&b, "access"));

    let res = reqwest::blocking::Client::new()
        .get(format!("{base}/api/hello/"))
        .bearer_auth(&access)
        .send()
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET, HEAD, OPTIONS");
    assert_eq!(res.text().unwrap(), r#"{"message":"Hello, World!"}"#);

    // Rotate, then reuse the old token (likely through the other worker).
    let (s, b) = post(
        base,
        "/api/token/refresh/",
        &format!(r#"{{"refresh":"{refresh}"}}"#),
    );
    assert_eq!(s, 200);
    let rotated = field(&b, "refresh");
    for _ in 0..4 {
        let (s, b) = post(
            base,
            "/api/token/refresh/",
            &format!(r#"{{"refresh":"{refresh}"}}"#),
        );
        assert_eq!(
            (s, b.as_str()),
            (
                401,
                r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#
            )
        );
    }

    // Many concurrent refreshes of one token: exactly one wins.
    let body = format!(r#"{{"refresh":"{rotated}"}}"#);
    let statuses: Vec<u16> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..16)
            .map(|_| sc.spawn(|| post(base, "/api/token/refresh/", &body).0))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );

    let (s, b) = post(
        base,
        "/api/token/blacklist/",
        &format!(r#"{{"refresh":"{rotated}"}}"#),
    );
    assert_eq!(
        (s, b.as_str()),
        (
            401,
            r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#
        )
    );
    drop(server);
    assert!(
        admin(dir.path(), &["listusers"], "").starts_with("1\talice\ttrue\t-\n2\tbob\tfalse\t-")
    );
}

/// A weak HMAC key stops `serve` at start (issue 15, item 2), naming the
/// setting, the minimum and how to make one, never the key; the override
/// starts with a warning.
#[test]
fn a_weak_signing_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "-b", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("FERRICORN_AUTH_SIGNING_KEY", "secret123")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("signing_key") && err.contains("at least 32 bytes"),
        "{err}"
    );
    assert!(err.contains("openssl rand -hex 32"), "{err}");
    assert!(!err.contains("secret123"), "the key was printed: {err}");

    let allowed = serve(
        Command::new(BIN)
            .args(["serve", "-b", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env("FERRICORN_AUTH_SIGNING_KEY", "secret123")
            .env("FERRICORN_AUTH_ALLOW_WEAK_KEYS", "true"),
    );
    let log = allowed.log.lock().unwrap().clone();
    assert!(log.contains("warning: signing_key"), "{log}");
    assert!(!log.contains("secret123"), "{log}");
}
