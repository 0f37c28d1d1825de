//! ferricorn-auth's own metrics (issue 14), summed by the master with the
//! server's: logins by result, tokens by kind, refusals by reason, password
//! hashing time, store errors. A real `ferricorn-auth serve` with two
//! workers and `--metrics-bind`, scraped as Prometheus would.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{run, serve, BIN};

const KEY: &str = "metrics-test-signing-key-0123456789abcdef0123";

fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split_once("\r\n\r\n")
        .unwrap()
        .1
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn post(base: &str, path: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{base}{path}"))
        .form(form)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(serde_json::Value::Null))
}

#[test]
fn logins_tokens_and_refusals_are_counted_across_workers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("auth.sqlite3");
    let db = db.to_str().unwrap();
    for (user, flag) in [("alice", None), ("bob", Some("--inactive"))] {
        let mut cmd = Command::new(BIN);
        cmd.args(["--db", db, "createuser", user, "--password-stdin"]);
        if let Some(f) = flag {
            cmd.arg(f);
        }
        run("createuser", &mut cmd, "pw-pw-pw\n");
    }
    let server = serve(
        Command::new(BIN)
            .args(["--db", db, "serve", "-b", "127.0.0.1:0", "-w", "2"])
            .args(["--metrics-bind", "127.0.0.1:0"])
            .env("FERRICORN_AUTH_SIGNING_KEY", KEY),
    );
    let log = server.log.lock().unwrap().clone();
    let metrics: SocketAddr = log
        .split("Metrics at: http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no Metrics at line:\n{log}"));
    let base = format!("http://{}", server.addr);

    let login = |user: &str, pw: &str| {
        post(
            &base,
            "/api/token/",
            &[("username", user), ("password", pw)],
        )
    };
    let mut refresh = String::new();
    for _ in 0..3 {
        let (s, body) = login("alice", "pw-pw-pw");
        assert_eq!(s, 200);
        refresh = body["refresh"].as_str().unwrap().to_string();
    }
    assert_eq!(login("alice", "wrong").0, 401);
    assert_eq!(login("nobody", "wrong").0, 401);
    assert_eq!(login("bob", "pw-pw-pw").0, 401);
    assert_eq!(
        post(&base, "/api/token/refresh/", &[("refresh", &refresh)]).0,
        200
    );
    assert_eq!(
        post(&base, "/api/token/verify/", &[("token", &refresh)]).0,
        200
    );
    assert_eq!(
        post(&base, "/api/token/verify/", &[("token", "not.a.token")]).0,
        401
    );
    assert_eq!(
        post(&base, "/api/token/blacklist/", &[("refresh", &refresh)]).0,
        200
    );
    assert_eq!(
        post(&base, "/api/token/refresh/", &[("refresh", &refresh)]).0,
        401
    );

    let want = [
        ("ferricorn_auth_logins_total{result=\"success\"}", 3.0),
        (
            "ferricorn_auth_logins_total{result=\"bad_credentials\"}",
            2.0,
        ),
        ("ferricorn_auth_logins_total{result=\"inactive\"}", 1.0),
        ("ferricorn_auth_tokens_total{kind=\"obtain\"}", 3.0),
        ("ferricorn_auth_tokens_total{kind=\"refresh\"}", 1.0),
        ("ferricorn_auth_tokens_total{kind=\"verify\"}", 1.0),
        ("ferricorn_auth_tokens_total{kind=\"blacklist\"}", 1.0),
        (
            "ferricorn_auth_token_rejections_total{reason=\"invalid\"}",
            1.0,
        ),
        (
            "ferricorn_auth_token_rejections_total{reason=\"blacklisted\"}",
            1.0,
        ),
        (
            "ferricorn_auth_token_rejections_total{reason=\"expired\"}",
            0.0,
        ),
        ("ferricorn_auth_store_errors_total", 0.0),
        // Six logins checked a password (the unknown user a dummy hash).
        ("ferricorn_auth_password_hash_seconds_count", 6.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = scrape(metrics);
        let wrong: Vec<String> = want
            .iter()
            .filter(|(k, v)| got.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: want {v}, got {:?}", got.get(*k)))
            .collect();
        if wrong.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", wrong.join("\n"));
        std::thread::sleep(Duration::from_millis(200));
    }
}
