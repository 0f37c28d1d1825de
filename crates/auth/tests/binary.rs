//! Black-box test of the `ferricorn-auth` binary: real processes, real HTTP,
//! two worker processes sharing one database.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ferricorn-auth");

/// The served binary; killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM through `kill`, so the master stops its workers too.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn serve(dir: &std::path::Path) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "-b", "127.0.0.1:0", "-w", "2"])
        .current_dir(dir)
        .env(
            "FERRICORN_AUTH_SIGNING_KEY",
            "black-box-test-key-0123456789abcdef",
        )
        .env("FERRICORN_AUTH_ROTATE_REFRESH_TOKENS", "true")
        .env("FERRICORN_AUTH_BLACKLIST_AFTER_ROTATION", "true")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(rest) = line.split("Listening at: ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

fn admin(dir: &std::path::Path, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
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
    let server = serve(dir.path());
    let base = &server.base;

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
    assert_eq!(res.headers()["allow"], "GET, OPTIONS");
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
