//! The switches beyond simplejwt (issue 15), each through the real binary
//! with two worker processes on one SQLite file: the refresh cookie and its
//! cross-site check, reuse detection with token families, log out
//! everywhere, access revocation, and the settings that contradict each
//! other. (JWKS and key rotation: `tests/jwks.rs`.)

use std::process::Command;

mod common;

use common::{run, run_bounded, serve, Server, BIN};

const KEY: &str = "safer-test-key-0123456789abcdef0123456789";

/// `ferricorn-auth serve -w 2` in `dir` with rotation, blacklisting and
/// `env`; alice (password `pw`) exists.
fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    if !dir.join("ferricorn-auth.sqlite3").exists() {
        run(
            "createuser",
            Command::new(BIN)
                .args(["createuser", "alice", "--password-stdin"])
                .current_dir(dir),
            "pw\n",
        );
    }
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "-b", "127.0.0.1:0", "-w", "2"])
        .current_dir(dir)
        .env("FERRICORN_AUTH_SIGNING_KEY", KEY)
        .env("FERRICORN_AUTH_ROTATE_REFRESH_TOKENS", "true")
        .env("FERRICORN_AUTH_BLACKLIST_AFTER_ROTATION", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    serve(&mut cmd)
}

struct Answer {
    status: u16,
    body: String,
    cookies: Vec<String>,
}

impl Answer {
    fn field(&self, name: &str) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body));
        v[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            .to_string()
    }

    /// The value a `Set-Cookie` of this answer gives `name`.
    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.iter().find_map(|c| {
            let (k, rest) = c.split_once('=')?;
            (k == name).then(|| rest.split(';').next().unwrap_or("").to_string())
        })
    }
}

/// A POST with a new connection each time (spread over both workers).
fn post(server: &Server, path: &str, body: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = reqwest::blocking::Client::new()
        .post(format!("http://{}{path}", server.addr))
        .body(body.to_string());
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().unwrap();
    let status = res.status().as_u16();
    let cookies = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    Answer {
        status,
        body: res.text().unwrap(),
        cookies,
    }
}

fn hello(server: &Server, access: &str) -> (u16, String) {
    let res = reqwest::blocking::Client::new()
        .get(format!("http://{}/api/hello/", server.addr))
        .bearer_auth(access)
        .send()
        .unwrap();
    (res.status().as_u16(), res.text().unwrap())
}

fn login(server: &Server) -> Answer {
    let a = post(
        server,
        "/api/token/",
        r#"{"username":"alice","password":"pw"}"#,
        &[],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    a
}

fn refresh_body(token: &str) -> String {
    format!(r#"{{"refresh":"{token}"}}"#)
}

const BLACKLISTED: &str = r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#;

#[test]
fn refresh_cookie_with_its_attributes_and_the_csrf_check() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            ("FERRICORN_AUTH_REFRESH_COOKIE", "true"),
            ("FERRICORN_AUTH_REFRESH_COOKIE_NAME", "rt"),
            ("FERRICORN_AUTH_REFRESH_COOKIE_PATH", "/api/token/"),
            ("FERRICORN_AUTH_REFRESH_COOKIE_SAMESITE", "Strict"),
            ("FERRICORN_AUTH_REFRESH_COOKIE_DOMAIN", "auth.example.com"),
            ("FERRICORN_AUTH_REFRESH_TOKEN_LIFETIME", "3600"),
            (
                "FERRICORN_AUTH_CSRF_TRUSTED_ORIGINS",
                "https://app.example.com",
            ),
        ],
    );
    let pair = login(&server);
    // The refresh token is in the cookie only.
    let body: serde_json::Value = serde_json::from_str(&pair.body).unwrap();
    assert!(body.get("refresh").is_none(), "{}", pair.body);
    assert!(body["access"].is_string());
    let set = pair
        .cookies
        .iter()
        .find(|c| c.starts_with("rt="))
        .expect("the refresh cookie");
    let token = pair.cookie("rt").unwrap();
    assert_eq!(token.split('.').count(), 3, "{set}");
    let attrs: Vec<&str> = set.split("; ").skip(1).collect();
    assert_eq!(attrs[0], "Domain=auth.example.com", "{set}");
    assert!(
        attrs[1].starts_with("expires=") && attrs[1].ends_with(" GMT"),
        "{set}"
    );
    assert_eq!(
        &attrs[2..],
        [
            "HttpOnly",
            "Max-Age=3600",
            "Path=/api/token/",
            "SameSite=Strict",
            "Secure"
        ],
        "{set}"
    );
    let csrf = pair.cookie("csrf_refresh_token").expect("the csrf cookie");
    let csrf_set = pair
        .cookies
        .iter()
        .find(|c| c.starts_with("csrf_refresh_token="))
        .unwrap();
    assert!(
        !csrf_set.contains("HttpOnly") && csrf_set.contains("; Path=/;"),
        "{csrf_set}"
    );

    let jar = format!("rt={token}; csrf_refresh_token={csrf}");
    // From the cookie without the double-submit token: refused, nothing spent.
    let a = post(&server, "/api/token/refresh/", "", &[("cookie", &jar)]);
    assert_eq!(
        (a.status, a.body.as_str()),
        (403, r#"{"detail":"CSRF Failed: CSRF token missing."}"#)
    );
    let a = post(
        &server,
        "/api/token/refresh/",
        "",
        &[("cookie", &jar), ("x-csrf-token", "0000")],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    // Another site's page, even with the right token (it could not read it).
    let a = post(
        &server,
        "/api/token/refresh/",
        "",
        &[
            ("cookie", &jar),
            ("x-csrf-token", &csrf),
            ("origin", "https://evil.example"),
        ],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("Origin checking failed"), "{}", a.body);
    // With the token: a new access token, the new refresh token in the cookie.
    let a = post(
        &server,
        "/api/token/refresh/",
        "",
        &[("cookie", &jar), ("x-csrf-token", &csrf)],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(!a.body.contains("refresh"), "{}", a.body);
    let token2 = a.cookie("rt").expect("rotated cookie");
    assert_ne!(token2, token);
    assert_eq!(hello(&server, &a.field("access")).0, 200);
    // The spent one, even with a valid token, is blacklisted.
    let a = post(
        &server,
        "/api/token/refresh/",
        "",
        &[("cookie", &jar), ("x-csrf-token", &csrf)],
    );
    assert_eq!((a.status, a.body.as_str()), (401, BLACKLISTED));
    // A trusted origin needs no token.
    let a = post(
        &server,
        "/api/token/refresh/",
        "",
        &[
            ("cookie", &format!("rt={token2}")),
            ("origin", "https://app.example.com"),
        ],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let token3 = a.cookie("rt").unwrap();
    // A token in the body needs no cross-site proof (no page of another
    // site can read it) and still works as simplejwt's.
    let a = post(&server, "/api/token/refresh/", &refresh_body(&token3), &[]);
    assert_eq!(a.status, 200, "{}", a.body);
    let token4 = a.cookie("rt").unwrap();
    // A malformed cookie is a 401 like a malformed token.
    for junk in ["garbage", "a.b.c", "", "%ZZ"] {
        let a = post(
            &server,
            "/api/token/refresh/",
            "",
            &[
                ("cookie", &format!("rt={junk}")),
                ("origin", "https://app.example.com"),
            ],
        );
        assert!(
            a.status == 401 || (junk.is_empty() && a.status == 400),
            "{junk:?}: {} {}",
            a.status,
            a.body
        );
    }
    // No cookie and no body: the field is required, as in simplejwt.
    let a = post(&server, "/api/token/refresh/", "", &[]);
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, r#"{"refresh":["This field is required."]}"#)
    );
    // Blacklist from the cookie clears both cookies.
    let a = post(
        &server,
        "/api/token/blacklist/",
        "",
        &[
            ("cookie", &format!("rt={token4}; csrf_refresh_token={csrf}")),
            ("x-csrf-token", &csrf),
        ],
    );
    assert_eq!((a.status, a.body.as_str()), (200, "{}"));
    assert_eq!(a.cookie("rt").as_deref(), Some("\"\""));
    assert!(
        a.cookies.iter().all(|c| c.contains("Max-Age=0")),
        "{:?}",
        a.cookies
    );
    let a = post(&server, "/api/token/refresh/", &refresh_body(&token4), &[]);
    assert_eq!((a.status, a.body.as_str()), (401, BLACKLISTED));
}

#[test]
fn a_replayed_refresh_token_revokes_its_family_across_workers() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[("FERRICORN_AUTH_REFRESH_REUSE_DETECTION", "true")],
    );
    let r1 = login(&server).field("refresh");
    let mut chain = vec![r1.clone()];
    for _ in 0..3 {
        let a = post(
            &server,
            "/api/token/refresh/",
            &refresh_body(chain.last().unwrap()),
            &[],
        );
        assert_eq!(a.status, 200, "{}", a.body);
        chain.push(a.field("refresh"));
    }
    // Another login is another family, untouched by what follows.
    let other = login(&server).field("refresh");
    // The replay of the first token: refused, and the newest token with it.
    let a = post(&server, "/api/token/refresh/", &refresh_body(&r1), &[]);
    assert_eq!((a.status, a.body.as_str()), (401, BLACKLISTED));
    let newest = chain.last().unwrap();
    for _ in 0..4 {
        // Through either worker.
        let a = post(&server, "/api/token/refresh/", &refresh_body(newest), &[]);
        assert_eq!((a.status, a.body.as_str()), (401, BLACKLISTED));
    }
    let a = post(&server, "/api/token/refresh/", &refresh_body(&other), &[]);
    assert_eq!(a.status, 200, "{}", a.body);
    // One warning naming the user and the family, never a token.
    let log = server.log.lock().unwrap().clone();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reuse detected"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("user 1"), "{}", warnings[0]);
    for t in chain.iter().chain([&other]) {
        assert!(!log.contains(t.as_str()), "a token in the log: {log}");
        let payload = t.split('.').nth(1).unwrap();
        assert!(!log.contains(payload), "a token in the log: {log}");
    }

    // The race of concurrent refreshes of one token: one winner.
    let fresh = login(&server).field("refresh");
    let body = refresh_body(&fresh);
    let answers: Vec<Answer> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..12)
            .map(|_| sc.spawn(|| post(&server, "/api/token/refresh/", &body, &[])))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        answers
            .iter()
            .all(|a| a.status == 200 || a.body == BLACKLISTED),
        "{statuses:?}"
    );
}

#[test]
fn a_retry_within_the_grace_window_gets_the_same_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            ("FERRICORN_AUTH_REFRESH_REUSE_DETECTION", "true"),
            ("FERRICORN_AUTH_REFRESH_REUSE_GRACE", "30"),
        ],
    );
    let r1 = login(&server).field("refresh");
    let a = post(&server, "/api/token/refresh/", &refresh_body(&r1), &[]);
    assert_eq!(a.status, 200, "{}", a.body);
    let r2 = a.field("refresh");
    // The answer was "lost": the client retries with r1.
    let again = post(&server, "/api/token/refresh/", &refresh_body(&r1), &[]);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.field("refresh"), r2);
    assert_eq!(hello(&server, &again.field("access")).0, 200);
    // r2 is still good; once used, r1 is a replay after all.
    let a = post(&server, "/api/token/refresh/", &refresh_body(&r2), &[]);
    assert_eq!(a.status, 200, "{}", a.body);
    let r3 = a.field("refresh");
    let a = post(&server, "/api/token/refresh/", &refresh_body(&r1), &[]);
    assert_eq!((a.status, a.body.as_str()), (401, BLACKLISTED));
    let a = post(&server, "/api/token/refresh/", &refresh_body(&r3), &[]);
    assert_eq!((a.status, a.body.as_str()), (401, BLACKLISTED));
}

#[test]
fn blacklist_all_logs_out_everywhere_and_revokes_access_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    for revoke_access in [true, false] {
        let server = start(
            dir.path(),
            &[(
                "FERRICORN_AUTH_REVOKE_ACCESS_ON_LOGOUT",
                if revoke_access { "true" } else { "false" },
            )],
        );
        let sessions: Vec<Answer> = (0..3).map(|_| login(&server)).collect();
        let access = sessions[0].field("access");
        // Without a valid access token: 401, nothing revoked.
        let a = post(&server, "/api/token/blacklist_all/", "", &[]);
        assert_eq!(a.status, 401, "{}", a.body);
        let a = post(
            &server,
            "/api/token/blacklist_all/",
            "",
            &[("authorization", &format!("Bearer {access}"))],
        );
        assert_eq!((a.status, a.body.as_str()), (200, "{}"));
        for s in &sessions {
            let a = post(
                &server,
                "/api/token/refresh/",
                &refresh_body(&s.field("refresh")),
                &[],
            );
            assert_eq!((a.status, a.body.as_str()), (401, BLACKLISTED));
        }
        let (status, body) = hello(&server, &access);
        if revoke_access {
            assert_eq!(status, 401, "{body}");
            assert!(body.contains("Token is blacklisted"), "{body}");
        } else {
            assert_eq!(status, 200, "{body}");
        }
        // A new login right away works (it waits out the second of the
        // log-out), with its access and refresh tokens.
        let new = login(&server);
        assert_eq!(hello(&server, &new.field("access")).0, 200);
        let a = post(
            &server,
            "/api/token/refresh/",
            &refresh_body(&new.field("refresh")),
            &[],
        );
        assert_eq!(a.status, 200, "{}", a.body);
        let kept = a.field("refresh");

        // The CLI: logout, and changepassword, do the same.
        run(
            "logout",
            Command::new(BIN)
                .args(["logout", "alice"])
                .current_dir(dir.path()),
            "",
        );
        let a = post(&server, "/api/token/refresh/", &refresh_body(&kept), &[]);
        assert_eq!((a.status, a.body.as_str()), (401, BLACKLISTED));
        let new = login(&server);
        run(
            "changepassword",
            Command::new(BIN)
                .args(["changepassword", "alice", "--password-stdin"])
                .current_dir(dir.path()),
            "pw\n",
        );
        let a = post(
            &server,
            "/api/token/refresh/",
            &refresh_body(&new.field("refresh")),
            &[],
        );
        assert_eq!((a.status, a.body.as_str()), (401, BLACKLISTED));
        assert_eq!(
            hello(&server, &new.field("access")).0,
            if revoke_access { 401 } else { 200 }
        );
        let out = run_bounded(
            "logout nobody",
            Command::new(BIN)
                .args(["logout", "nobody"])
                .current_dir(dir.path()),
            "",
        );
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no user named \"nobody\""));
    }
}

#[test]
fn contradictory_settings_fail_at_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("FERRICORN_AUTH_REFRESH_REUSE_DETECTION", "true"),
                ("FERRICORN_AUTH_ROTATE_REFRESH_TOKENS", "false"),
            ],
            "refresh_reuse_detection",
        ),
        (
            &[
                ("FERRICORN_AUTH_REFRESH_REUSE_DETECTION", "true"),
                ("FERRICORN_AUTH_BLACKLIST_AFTER_ROTATION", "false"),
            ],
            "refresh_reuse_detection",
        ),
        (
            &[
                ("FERRICORN_AUTH_REFRESH_COOKIE", "true"),
                ("FERRICORN_AUTH_REFRESH_COOKIE_SAMESITE", "None"),
                ("FERRICORN_AUTH_REFRESH_COOKIE_SECURE", "false"),
            ],
            "REFRESH_COOKIE_SAMESITE",
        ),
        (
            &[("FERRICORN_AUTH_REFRESH_COOKIE_SAMESITE", "sometimes")],
            "REFRESH_COOKIE_SAMESITE",
        ),
        (&[("FERRICORN_AUTH_JWKS", "true")], "jwks"),
        (
            &[(
                "FERRICORN_AUTH_CSRF_TRUSTED_ORIGINS",
                "app.example.com/path",
            )],
            "csrf_trusted_origins",
        ),
        (
            &[("FERRICORN_AUTH_REFRESH_COOKIE_NAME", "a b")],
            "refresh_cookie_name",
        ),
        (
            &[("FERRICORN_AUTH_REFRESH_REUSE_GRACE", "-1")],
            "refresh_reuse_grace",
        ),
        (
            &[
                ("FERRICORN_AUTH_ALGORITHM", "RS256"),
                (
                    "FERRICORN_AUTH_SIGNING_KEY",
                    include_str!("keys/rsa_private.pem"),
                ),
                (
                    "FERRICORN_AUTH_VERIFYING_KEY",
                    include_str!("keys/rsa_public.pem"),
                ),
                (
                    "FERRICORN_AUTH_VERIFYING_KEYS",
                    "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
                ),
            ],
            "verifying_keys",
        ),
    ];
    for (env, named) in cases {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "-b", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env("FERRICORN_AUTH_SIGNING_KEY", KEY)
            .env("FERRICORN_AUTH_ROTATE_REFRESH_TOKENS", "true")
            .env("FERRICORN_AUTH_BLACKLIST_AFTER_ROTATION", "true");
        for (k, v) in *env {
            cmd.env(k, v);
        }
        let out = run_bounded(&format!("serve with {env:?}"), &mut cmd, "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {err}");
        assert!(
            err.to_lowercase().contains(&named.to_lowercase()),
            "{env:?} should name {named}: {err}"
        );
        assert!(!err.contains(KEY), "the key was printed: {err}");
    }
}
