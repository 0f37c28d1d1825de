//! Black-box tests of the published verifying keys (`jwks`): the binary as
//! real processes (two workers), real HTTP, and PyJWT's `PyJWKClient` as the
//! relying party that verifies tokens from the JWK Set alone; then a key
//! rotation by two `SIGHUP`s under load, without one failed request.
//!
//! The key pairs are `tests/keys/jwks_*` (made for the tests with
//! `openssl genpkey`; they protect nothing): for each algorithm `a` is the
//! service's key, `b` a forger's (in the rotation, the next key), and for
//! ES256 `c` and `d` earlier keys kept in `verifying_keys`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod common;

use common::django::venv_or_skip;
use common::{b64, run, run_bounded, serve, Server, BIN};

const PASSWORD: &str = "jwks-test-password";

/// `tests/keys/jwks_{family}_{name}_{half}.pem` (`half`: private, public).
fn key_path(family: &str, name: &str, half: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(format!("jwks_{family}_{name}_{half}.pem"))
}

fn key(family: &str, name: &str, half: &str) -> String {
    let path = key_path(family, name, half);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `serve -b 127.0.0.1:0 -w 2` in `dir`, with no `FERRICORN_AUTH_*`
/// variable of the test's environment: only what the test sets.
fn serve_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "-b", "127.0.0.1:0", "-w", "2"])
        .current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("FERRICORN_AUTH_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Creates the user `alice` (id 1) in `dir`'s database.
fn create_user(dir: &Path) {
    let id = run(
        "ferricorn-auth createuser",
        Command::new(BIN)
            .args(["createuser", "alice", "--password-stdin"])
            .current_dir(dir),
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(id.trim(), "1");
}

/// A client without a connection pool: every request on a new
/// connection, spread over the workers (and, across a reload, over old
/// and new ones), with no keep-alive connection closed under it by a
/// worker that stops.
fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn answer(res: reqwest::blocking::Response) -> Result<Answer, reqwest::Error> {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.text()?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn try_get(base: &str, path: &str, bearer: Option<&str>) -> Result<Answer, reqwest::Error> {
    let mut req = client().get(format!("{base}{path}"));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    answer(req.send()?)
}

fn get(base: &str, path: &str, bearer: Option<&str>) -> Answer {
    try_get(base, path, bearer).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn try_post(base: &str, path: &str, body: &Value) -> Result<Answer, reqwest::Error> {
    answer(client().post(format!("{base}{path}")).json(body).send()?)
}

fn post(base: &str, path: &str, body: &Value) -> Answer {
    try_post(base, path, body).unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// `POST /api/token/` as alice: (refresh, access).
fn login(base: &str) -> (String, String) {
    let a = post(
        base,
        "/api/token/",
        &json!({"username": "alice", "password": PASSWORD}),
    );
    assert_eq!(a.status, 200, "POST /api/token/: {}", a.body);
    let v = a.json();
    (
        v["refresh"].as_str().unwrap().to_string(),
        v["access"].as_str().unwrap().to_string(),
    )
}

/// `POST /api/token/refresh/`: the new access token.
fn refresh(base: &str, refresh: &str) -> String {
    let a = post(base, "/api/token/refresh/", &json!({ "refresh": refresh }));
    assert_eq!(a.status, 200, "POST /api/token/refresh/: {}", a.body);
    a.json()["access"].as_str().unwrap().to_string()
}

/// A token's JOSE header.
fn jose_header(token: &str) -> Value {
    let first = token.split('.').next().unwrap();
    let raw = URL_SAFE_NO_PAD
        .decode(first)
        .unwrap_or_else(|e| panic!("header of {token:?}: {e}"));
    serde_json::from_slice(&raw).unwrap()
}

fn kid_of(token: &str) -> Option<String> {
    jose_header(token)["kid"].as_str().map(str::to_string)
}

/// The `kid`s of a JWK Set, in order.
fn kids(set: &Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("no keys array: {set}"))
        .iter()
        .map(|k| k["kid"].as_str().unwrap_or("").to_string())
        .collect()
}

const JWKS_PATHS: [&str; 2] = ["/api/token/jwks/", "/.well-known/jwks.json"];

/// The JWK Set at both paths, checked to be one document served as JSON
/// with `Cache-Control: public, max-age={max_age}`.
fn jwk_set(base: &str, max_age: i64) -> Value {
    let answers: Vec<Answer> = JWKS_PATHS.iter().map(|p| get(base, p, None)).collect();
    for (path, a) in JWKS_PATHS.iter().zip(&answers) {
        assert_eq!(a.status, 200, "GET {path}: {}", a.body);
        assert!(
            a.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "GET {path}: content-type {:?}",
            a.header("content-type")
        );
        assert_eq!(
            a.header("cache-control"),
            Some(format!("public, max-age={max_age}").as_str()),
            "GET {path}"
        );
    }
    assert_eq!(answers[0].json(), answers[1].json(), "the two paths differ");
    answers[0].json()
}

/// The service's log so far, for failure messages.
fn log_of(server: &Server) -> String {
    server.log.lock().unwrap().clone()
}

// ---------------------------------------------------------------------------
// 1. PyJWT verifies the tokens from the JWK Set.

struct Case {
    alg: &'static str,
    /// The key file family: rs256, es256, ed25519.
    family: &'static str,
    /// `jwks_max_age` when set (else the default, 300).
    max_age: Option<i64>,
    /// Earlier keys of the family, in `verifying_keys` (concatenated PEM
    /// blocks in the environment).
    earlier: &'static [&'static str],
    /// The path PyJWKClient fetches.
    path: &'static str,
}

fn jwks_verifies_tokens_with_pyjwt(case: Case) {
    let Some(bench) = venv_or_skip() else { return };
    let python = bench.join(".venv/bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jwks_verify.py");
    let py = |what: &str, args: &[&str]| -> String {
        run(
            &format!("jwks_verify.py {what}"),
            Command::new(&python)
                .arg(&script)
                .arg(what)
                .args(args)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                // urllib must reach the service directly.
                .env("NO_PROXY", "*")
                .env("no_proxy", "*"),
            "",
        )
    };
    let Case {
        alg,
        family,
        max_age,
        earlier,
        path,
    } = case;

    let dir = tempfile::tempdir().unwrap();
    create_user(dir.path());
    let mut cmd = serve_cmd(dir.path());
    cmd.env("FERRICORN_AUTH_ALGORITHM", alg)
        .env("FERRICORN_AUTH_SIGNING_KEY", key(family, "a", "private"))
        .env("FERRICORN_AUTH_VERIFYING_KEY", key(family, "a", "public"))
        .env("FERRICORN_AUTH_JWKS", "true");
    if let Some(age) = max_age {
        cmd.env("FERRICORN_AUTH_JWKS_MAX_AGE", age.to_string());
    }
    if !earlier.is_empty() {
        let pems: String = earlier.iter().map(|n| key(family, n, "public")).collect();
        cmd.env("FERRICORN_AUTH_VERIFYING_KEYS", pems);
    }
    let server = serve(&mut cmd);
    let base = &format!("http://{}", server.addr);

    // The document: one key per verifying key, newest first, each with its
    // RFC 7638 thumbprint (computed here by PyJWT's own JWK export).
    let set = jwk_set(base, max_age.unwrap_or(300));
    let pems: Vec<String> = std::iter::once("a")
        .chain(earlier.iter().copied())
        .map(|n| key_path(family, n, "public").display().to_string())
        .collect();
    let mut args = vec![alg];
    args.extend(pems.iter().map(String::as_str));
    let expected: Vec<String> = py("thumbprint", &args)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(kids(&set), expected, "kids of {set}");
    let (kty, crv) = match alg {
        "RS256" => ("RSA", None),
        "ES256" => ("EC", Some("P-256")),
        _ => ("OKP", Some("Ed25519")),
    };
    for k in set["keys"].as_array().unwrap() {
        assert_eq!(k["kty"], kty, "{k}");
        assert_eq!(k["alg"], alg, "{k}");
        assert_eq!(k["use"], "sig", "{k}");
        let params: &[&str] = match kty {
            "RSA" => &["n", "e"],
            "EC" => &["x", "y"],
            _ => &["x"],
        };
        for p in params {
            assert!(k[p].as_str().is_some_and(|s| !s.is_empty()), "{p} in {k}");
        }
        if let Some(crv) = crv {
            assert_eq!(k["crv"], crv, "{k}");
        }
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(k.get(private).is_none(), "private member {private} in {k}");
        }
    }
    let kid = expected[0].clone();

    // Tokens name their key, and PyJWT verifies both from the set alone.
    let (refresh_token, access) = login(base);
    assert_eq!(kid_of(&access).as_deref(), Some(kid.as_str()), "access");
    assert_eq!(
        kid_of(&refresh_token).as_deref(),
        Some(kid.as_str()),
        "refresh"
    );
    assert_eq!(jose_header(&access)["alg"], alg);
    let url = format!("{base}{path}");
    let out: Value = serde_json::from_str(&py(
        "verify",
        &[&url, alg, &pems[0], &access, &refresh_token],
    ))
    .unwrap();
    assert_eq!(out["thumbprint"], kid.as_str());
    for name in ["access", "refresh"] {
        let t = &out["tokens"][name];
        assert_eq!(t["kid"], kid.as_str(), "{name}: {t}");
        assert_eq!(t["jwk_kid"], kid.as_str(), "{name}: {t}");
        assert_eq!(t["claims"]["user_id"], "1", "{name}: {t}");
        assert_eq!(t["claims"]["token_type"], name, "{name}: {t}");
    }

    let hello = |token: &str| get(base, "/api/hello/", Some(token));
    let a = hello(&access);
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, r#"{"message":"Hello, World!"}"#)
    );
    // The claims signed again by the service's own key pass (the control),
    // by another key under the published kid do not.
    let private = |n: &str| key_path(family, n, "private").display().to_string();
    let resigned = py("forge", &[alg, &private("a"), &kid, &access]);
    assert_eq!(hello(resigned.trim()).status, 200, "re-signed with key a");
    let forged = py("forge", &[alg, &private("b"), &kid, &access]);
    let a = hello(forged.trim());
    assert_eq!(
        a.status, 401,
        "a token signed by another key with kid {kid} was let in: {}",
        a.body
    );
    let a = post(
        base,
        "/api/token/refresh/",
        &json!({ "refresh": py("forge", &[alg, &private("b"), &kid, &refresh_token]).trim() }),
    );
    assert_eq!(a.status, 401, "forged refresh token: {}", a.body);
    // Earlier keys still verify, access and refresh tokens alike.
    for (n, earlier_kid) in earlier.iter().zip(&expected[1..]) {
        let old = py("forge", &[alg, &private(n), earlier_kid, &access]);
        let a = hello(old.trim());
        assert_eq!(a.status, 200, "signed by earlier key {n}: {}", a.body);
        let old = py("forge", &[alg, &private(n), earlier_kid, &refresh_token]);
        let new_access = refresh(base, old.trim());
        assert_eq!(kid_of(&new_access).as_deref(), Some(kid.as_str()));
    }
    let mut server = server;
    assert!(server.proc.exited().is_none(), "{}", log_of(&server));
}

#[test]
fn jwks_verifies_tokens_with_pyjwt_rs256() {
    jwks_verifies_tokens_with_pyjwt(Case {
        alg: "RS256",
        family: "rs256",
        max_age: None,
        earlier: &[],
        path: "/api/token/jwks/",
    });
}

#[test]
fn jwks_verifies_tokens_with_pyjwt_es256() {
    jwks_verifies_tokens_with_pyjwt(Case {
        alg: "ES256",
        family: "es256",
        max_age: Some(60),
        earlier: &["c", "d"],
        path: "/.well-known/jwks.json",
    });
}

#[test]
fn jwks_verifies_tokens_with_pyjwt_eddsa() {
    jwks_verifies_tokens_with_pyjwt(Case {
        alg: "EdDSA",
        family: "ed25519",
        max_age: Some(0),
        earlier: &[],
        path: "/.well-known/jwks.json",
    });
}

// ---------------------------------------------------------------------------
// 2. Off by default; refused with HMAC and with an unparsable earlier key.

/// Runs `serve` expected to refuse its settings: non-zero exit, stderr
/// naming `setting`.
fn refuses_to_start(what: &str, cmd: &mut Command, setting: &str) {
    let out = run_bounded(what, cmd, "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{what}: started ({})\n{err}",
        out.status
    );
    assert!(
        err.contains(setting),
        "{what}: stderr does not name {setting}:\n{err}"
    );
}

#[test]
fn jwks_off_and_hmac() {
    let dir = tempfile::tempdir().unwrap();
    create_user(dir.path());
    {
        let server = serve(
            serve_cmd(dir.path())
                .env("FERRICORN_AUTH_ALGORITHM", "RS256")
                .env("FERRICORN_AUTH_SIGNING_KEY", key("rs256", "a", "private"))
                .env("FERRICORN_AUTH_VERIFYING_KEY", key("rs256", "a", "public")),
        );
        let base = &format!("http://{}", server.addr);
        for path in JWKS_PATHS {
            let a = get(base, path, None);
            assert_eq!(a.status, 404, "GET {path} without jwks: {}", a.body);
        }
        // The service itself works.
        let (_, access) = login(base);
        assert_eq!(get(base, "/api/hello/", Some(&access)).status, 200);
    }

    refuses_to_start(
        "serve with jwks and HS256",
        serve_cmd(dir.path())
            .env("FERRICORN_AUTH_ALGORITHM", "HS256")
            .env(
                "FERRICORN_AUTH_SIGNING_KEY",
                "0123456789abcdef0123456789abcdef0123456789abcdef",
            )
            .env("FERRICORN_AUTH_JWKS", "true"),
        "jwks",
    );

    // A PEM frame around something that is no key, among good keys: in the
    // config file's list, and concatenated in the environment.
    let bad = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PUBLIC KEY-----\n";
    let config = dir.path().join("bad.toml");
    let mut auth = toml::Table::new();
    auth.insert("algorithm".into(), "RS256".into());
    auth.insert("signing_key".into(), key("rs256", "a", "private").into());
    auth.insert("verifying_key".into(), key("rs256", "a", "public").into());
    auth.insert("jwks".into(), true.into());
    auth.insert(
        "verifying_keys".into(),
        toml::Value::Array(vec![key("rs256", "b", "public").into(), bad.into()]),
    );
    let mut file = toml::Table::new();
    file.insert("auth".into(), auth.into());
    std::fs::write(&config, toml::to_string(&file).unwrap()).unwrap();
    refuses_to_start(
        "serve -c with an unparsable verifying_keys entry",
        serve_cmd(dir.path()).arg("-c").arg(&config),
        "verifying_keys",
    );
    refuses_to_start(
        "serve with an unparsable FERRICORN_AUTH_VERIFYING_KEYS block",
        serve_cmd(dir.path())
            .env("FERRICORN_AUTH_ALGORITHM", "RS256")
            .env("FERRICORN_AUTH_SIGNING_KEY", key("rs256", "a", "private"))
            .env("FERRICORN_AUTH_VERIFYING_KEY", key("rs256", "a", "public"))
            .env("FERRICORN_AUTH_JWKS", "true")
            .env(
                "FERRICORN_AUTH_VERIFYING_KEYS",
                format!("{}{bad}", key("rs256", "b", "public")),
            ),
        "verifying_keys",
    );
}

// ---------------------------------------------------------------------------
// 3. Rotation by two SIGHUPs under load.

/// The RFC 7638 thumbprint of a P-256 public key (SPKI PEM), computed here
/// from its DER: the uncompressed point is the last 65 bytes.
fn p256_thumbprint(pem_text: &str) -> String {
    let der = pem::parse(pem_text).unwrap().into_contents();
    assert_eq!(der.len(), 91, "not a P-256 SPKI");
    let point = &der[26..];
    assert_eq!(point[0], 4, "not an uncompressed point");
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        b64(&point[1..33]),
        b64(&point[33..65])
    );
    b64(Sha256::digest(canonical.as_bytes()))
}

/// Writes the config file (by a rename, so that no worker reads half of
/// it): ES256 signing with `signing`, `verifying_keys` the public halves of
/// `earlier`.
fn write_config(path: &Path, signing: &str, earlier: &[&str]) {
    let mut auth = toml::Table::new();
    auth.insert("algorithm".into(), "ES256".into());
    auth.insert(
        "signing_key".into(),
        key("es256", signing, "private").into(),
    );
    auth.insert(
        "verifying_key".into(),
        key("es256", signing, "public").into(),
    );
    auth.insert("jwks".into(), true.into());
    auth.insert(
        "verifying_keys".into(),
        toml::Value::Array(
            earlier
                .iter()
                .map(|n| key("es256", n, "public").into())
                .collect(),
        ),
    );
    let mut file = toml::Table::new();
    file.insert("auth".into(), auth.into());
    let tmp = path.with_extension("toml.new");
    std::fs::write(&tmp, toml::to_string(&file).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[derive(Default)]
struct Load {
    requests: AtomicU64,
    failures: AtomicU64,
    /// The first failures, with the time since the load started.
    first: Mutex<Vec<String>>,
}

impl Load {
    fn record(&self, started: Instant, what: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap();
        if first.len() < 20 {
            first.push(format!("{:.3} s: {what}", started.elapsed().as_secs_f64()));
        }
    }

    /// One request: its answer when it is a 200, else recorded as failed.
    fn request(
        &self,
        started: Instant,
        what: &str,
        res: Result<Answer, reqwest::Error>,
    ) -> Option<Answer> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match res {
            Ok(a) if a.status == 200 => Some(a),
            Ok(a) => {
                self.record(started, format!("{what} -> {} {}", a.status, a.body));
                None
            }
            Err(e) => {
                self.record(started, format!("{what}: {e}"));
                None
            }
        }
    }
}

/// One client of the load: logs in once, then hello and refresh in turn
/// until `stop`.
fn client_loop(base: &str, stop: &AtomicBool, load: &Load, started: Instant) {
    let credentials = json!({"username": "alice", "password": PASSWORD});
    let (refresh_token, mut access) = loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Some(a) = load.request(
            started,
            "POST /api/token/",
            try_post(base, "/api/token/", &credentials),
        ) {
            let v = a.json();
            break (
                v["refresh"].as_str().unwrap().to_string(),
                v["access"].as_str().unwrap().to_string(),
            );
        }
    };
    let body = json!({ "refresh": refresh_token });
    while !stop.load(Ordering::Relaxed) {
        load.request(
            started,
            &format!("GET /api/hello/ (kid {:?})", kid_of(&access)),
            try_get(base, "/api/hello/", Some(&access)),
        );
        if let Some(a) = load.request(
            started,
            &format!(
                "POST /api/token/refresh/ (kid {:?})",
                kid_of(&refresh_token)
            ),
            try_post(base, "/api/token/refresh/", &body),
        ) {
            access = a.json()["access"].as_str().unwrap().to_string();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `check` until it holds `times` times in a row, at most 30 s.
fn until(what: &str, server: &Server, times: u32, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut row = 0;
    while row < times {
        row = if check() { row + 1 } else { 0 };
        assert!(
            Instant::now() < deadline,
            "30 s without {what}; log:\n{}",
            log_of(server)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn key_rotation_by_hup_under_load_has_no_failed_request() {
    let (kid_a, kid_b) = (
        p256_thumbprint(&key("es256", "a", "public")),
        p256_thumbprint(&key("es256", "b", "public")),
    );
    let dir = tempfile::tempdir().unwrap();
    create_user(dir.path());
    let config = dir.path().join("ferricorn-auth.toml");
    write_config(&config, "a", &[]);
    let server = serve(serve_cmd(dir.path()).arg("-c").arg(&config));
    let base = &format!("http://{}", server.addr);
    let master = server.proc.child.id().to_string();
    let hup = || {
        let status = Command::new("kill")
            .args(["-HUP", &master])
            .status()
            .unwrap();
        assert!(status.success(), "kill -HUP {master}");
    };

    assert_eq!(kids(&jwk_set(base, 300)), [kid_a.as_str()]);
    let (refresh_a, access_a) = login(base);
    assert_eq!(kid_of(&access_a).as_deref(), Some(kid_a.as_str()));

    let stop = AtomicBool::new(false);
    let load = Load::default();
    let started = Instant::now();
    let mut steps = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| client_loop(base, &stop, &load, started));
        }
        // If anything below panics, stop the load so that the scope ends.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        std::thread::sleep(Duration::from_secs(1));

        // Step 1: B published (and accepted) before anything signs with it.
        write_config(&config, "a", &["b"]);
        steps.push(format!("{:.3} s: HUP 1", started.elapsed().as_secs_f64()));
        hup();
        let both = vec![kid_a.clone(), kid_b.clone()];
        until("a JWK Set listing A then B", &server, 20, || {
            try_get(base, JWKS_PATHS[1], None)
                .is_ok_and(|a| a.status == 200 && kids(&a.json()) == both)
        });
        steps.push(format!(
            "{:.3} s: A, B published",
            started.elapsed().as_secs_f64()
        ));
        std::thread::sleep(Duration::from_secs(1));

        // Step 2: B signs, A still verifies.
        write_config(&config, "b", &["a"]);
        steps.push(format!("{:.3} s: HUP 2", started.elapsed().as_secs_f64()));
        hup();
        until("new tokens signed by B", &server, 20, || {
            try_post(
                base,
                "/api/token/refresh/",
                &json!({ "refresh": refresh_a }),
            )
            .is_ok_and(|a| {
                a.status == 200
                    && a.json()["access"]
                        .as_str()
                        .is_some_and(|t| kid_of(t).as_deref() == Some(kid_b.as_str()))
            })
        });
        steps.push(format!("{:.3} s: B signs", started.elapsed().as_secs_f64()));
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
    });
    let requests = load.requests.load(Ordering::Relaxed);
    let failures = load.failures.load(Ordering::Relaxed);
    eprintln!(
        "rotation under load: {requests} requests, {failures} failed, in {:.1} s; {steps:?}",
        started.elapsed().as_secs_f64()
    );

    // Tokens from before the rotation still work; new ones are B's; the
    // set lists B, then A.
    for _ in 0..4 {
        let a = get(base, "/api/hello/", Some(&access_a));
        assert_eq!(a.status, 200, "pre-rotation access token: {}", a.body);
    }
    let access_b = refresh(base, &refresh_a);
    assert_eq!(kid_of(&access_b).as_deref(), Some(kid_b.as_str()));
    let (_, access_new) = login(base);
    assert_eq!(kid_of(&access_new).as_deref(), Some(kid_b.as_str()));
    for _ in 0..4 {
        assert_eq!(get(base, "/api/hello/", Some(&access_b)).status, 200);
    }
    assert_eq!(kids(&jwk_set(base, 300)), [kid_b.as_str(), kid_a.as_str()]);
    let mut server = server;
    assert!(
        server.proc.exited().is_none(),
        "the master exited:\n{}",
        log_of(&server)
    );

    assert_eq!(
        failures,
        0,
        "{failures} of {requests} requests failed during the rotation ({steps:?}):\n{}\nlog:\n{}",
        load.first.lock().unwrap().join("\n"),
        log_of(&server)
    );
    assert!(requests >= 500, "only {requests} requests under load");
}
