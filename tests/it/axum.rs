//! The axum example (`examples/axum.rs`) under the prefork master, through
//! the tower adapter: its routes over raw sockets, keep-alive and close,
//! streamed bodies both ways, the connection facts, panics; and the token
//! layer against tokens from a running `ferricorn-auth` on the same
//! database. (The corpus, the smuggling cases, HUP, USR2, the stuck worker
//! and the factory error run against it in `conformance`, `smuggling` and
//! `prefork`, beside echo.)

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::*;

/// A JSON request with `Content-Type: application/json`.
fn post_json(path: &str, body: &str, close: bool) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes()
}

#[test]
fn routes_answer_with_json_and_status_codes_on_one_keep_alive_connection() {
    // One connection, so one worker and its one list of items.
    let server = Server::example("axum", &["--workers", "2"]);
    let mut conn = server.connect();

    let empty = conn.roundtrip(get("/items"));
    assert_eq!(empty.status_line, "HTTP/1.1 200 OK");
    assert_eq!(empty.header("content-type"), Some("application/json"));
    assert_eq!(empty.json(), serde_json::json!([]));

    let created = conn.roundtrip(post_json("/items", r#"{"name": "tea"}"#, false));
    assert_eq!(created.status_line, "HTTP/1.1 201 Created");
    assert_eq!(created.json(), serde_json::json!({"id": 1, "name": "tea"}));
    assert_eq!(created.header("location"), Some("/items/1"));
    let second = conn.roundtrip(post_json("/items", r#"{"name": "milk"}"#, false));
    assert_eq!(second.json()["id"], 2);

    let list = conn.roundtrip(get("/items"));
    assert_eq!(
        list.json(),
        serde_json::json!([{"id": 1, "name": "tea"}, {"id": 2, "name": "milk"}])
    );
    let one = conn.roundtrip(get("/items/2"));
    assert_eq!(one.status, 200);
    assert_eq!(one.json(), serde_json::json!({"id": 2, "name": "milk"}));
    let missing = conn.roundtrip(get("/items/99"));
    assert_eq!(missing.status_line, "HTTP/1.1 404 Not Found");
    assert_eq!(missing.json(), serde_json::json!({"error": "no item 99"}));
    // axum's own rejections.
    assert_eq!(conn.roundtrip(get("/items/abc")).status, 400);
    assert_eq!(
        conn.roundtrip(post_json("/items", r#"{"name": "#, false))
            .status,
        400
    );
    assert_eq!(
        conn.roundtrip(post_json("/items", r#"{"nom": "tea"}"#, false))
            .status,
        422
    );
    assert_eq!(conn.roundtrip(post("/items", b"{}")).status, 415);
    // The connection lived through all of it.
    assert_eq!(
        conn.roundtrip(get("/items"))
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let closing = conn.roundtrip(post_json("/items", r#"{"name": "last"}"#, true));
    assert_eq!(closing.status, 201);
    assert!(closing.header_has_token("connection", "close"));
    assert!(
        conn.is_closed(),
        "the server kept the connection after close"
    );
}

#[test]
fn other_methods_and_paths_keep_the_echo_contract() {
    let server = Server::example("axum", &["--workers", "2"]);
    let mut conn = server.connect();
    for (raw, method, path) in [
        (post("/any/path?x=1", b"hello"), "POST", "/any/path"),
        (get("/").into_bytes(), "GET", "/"),
        (
            b"DELETE /items HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            "DELETE",
            "/items",
        ),
        (
            b"PUT /me HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
            "PUT",
            "/me",
        ),
    ] {
        let res = conn.roundtrip(&raw);
        assert_eq!(res.status, 200, "{method} {path}: {res:?}");
        let json = res.json();
        assert_eq!(json["method"], method);
        assert_eq!(json["path"], path);
        assert!(json["pid"].as_i64().unwrap() > 0);
        assert!(json["body_len"].is_u64());
    }
    let res = conn.roundtrip(post("/any/path?x=1", b"hello"));
    assert_eq!(res.json()["query"], "x=1");
    assert_eq!(res.json()["body_len"], 5);
}

#[test]
fn chunked_uploads_and_streamed_responses_pass_through() {
    let server = Server::example("axum", &["--workers", "2"]);
    let mut conn = server.connect();
    let body = vec![b'x'; 100_000];
    let res = conn.roundtrip(post_chunked("/upload", &body, 1000));
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["body_len"], 100_000);

    let mut req = b"POST /items HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    req.extend_from_slice(&chunked(br#"{"name": "chunked tea"}"#, 4));
    let res = conn.roundtrip(&req);
    assert_eq!(res.status, 201, "{res:?}");
    assert_eq!(res.json()["name"], "chunked tea");

    let res = conn.roundtrip(get("/stream?n=5"));
    assert_eq!(res.status, 200);
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    assert_eq!(res.chunks, Some(5), "{res:?}");
    assert_eq!(res.text(), "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    // Still in step after the stream.
    assert_eq!(conn.roundtrip(get("/after")).json()["path"], "/after");
}

#[test]
fn connection_facts_reach_the_service() {
    let server = Server::example("axum", &["--workers", "1"]);
    let res = request(
        server.addr(),
        "GET /facts HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: trace-42\r\n\r\n",
    );
    let json = res.json();
    assert_eq!(json["request_id"], "trace-42");
    assert_eq!(res.header("x-request-id"), Some("trace-42"));
    assert_eq!(json["worker_id"], 1);
    assert_eq!(json["peer"], "127.0.0.1");
    assert_eq!(json["scheme"], "http");
    assert!(json["remote_port"].as_u64().unwrap() > 0);
}

#[test]
fn a_panic_is_an_empty_500_and_the_worker_serves_on() {
    let server = Server::example("axum", &["--workers", "1"]);
    let mut conn = server.connect();
    let before = conn.roundtrip(get("/")).json()["pid"].clone();
    let res = conn.roundtrip(get("/panic"));
    assert_eq!(res.status_line, "HTTP/1.1 500 Internal Server Error");
    assert!(res.body.is_empty());
    let after = request(server.addr(), get_close("/")).json()["pid"].clone();
    assert_eq!(before, after, "the worker was replaced after a panic");
    assert!(server.wait_for_stderr("the application panicked", Duration::from_secs(5)));
}

/// A `ferricorn-auth` and the axum example on one database and key.
struct AuthPair {
    auth: Server,
    axum: Server,
    db: String,
    _db_file: TempFile,
}

const KEY: &str = "9f2c6a41e0d3b7c58a1e4f6d2b9c07e3a5d8f1b4c6e2a9d7f0b3c5e8a1d4f6b2";

fn admin(db: &str, args: &[&str], password: Option<&str>) {
    let mut all = vec!["--db", db];
    all.extend_from_slice(args);
    let mut child = bin_command("ferricorn-auth", &all, &[])
        .stdin(Stdio::piped())
        .spawn()
        .expect("ferricorn-auth admin command");
    if let Some(pw) = password {
        writeln!(child.stdin.take().unwrap(), "{pw}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "ferricorn-auth {args:?}: {out:?}");
}

fn auth_pair(extra_env: &[(&str, &str)]) -> AuthPair {
    let db_file = TempFile(temp_path("token-layer", "sqlite3"));
    let db = db_file.path().to_str().unwrap().to_owned();
    admin(
        &db,
        &["createuser", "alice", "--password-stdin"],
        Some("s3cret pw"),
    );
    let mut env = vec![
        ("FERRICORN_AUTH_DB", db.as_str()),
        ("FERRICORN_AUTH_SIGNING_KEY", KEY),
    ];
    env.extend_from_slice(extra_env);
    let auth = Server::start_command(
        bin_command(
            "ferricorn-auth",
            &["serve", "-b", "127.0.0.1:0", "-w", "1"],
            &env,
        ),
        "ferricorn-auth serve",
        1,
    );
    let axum = Server::start_with("axum", &["-b", "127.0.0.1:0", "-w", "2"], &env, 1);
    AuthPair {
        auth,
        axum,
        db,
        _db_file: db_file,
    }
}

impl AuthPair {
    /// `(access, refresh)` from `POST /api/token/`.
    fn obtain(&self) -> (String, String) {
        // A login hashes a password on a thread at nice 19 on purpose; on a
        // machine busy with other tests it may wait longer than IO_TIMEOUT.
        let mut conn = Conn::tcp(self.auth.addr());
        conn.set_read_timeout(Duration::from_secs(60));
        let res = conn.roundtrip(post_json(
            "/api/token/",
            r#"{"username": "alice", "password": "s3cret pw"}"#,
            true,
        ));
        assert_eq!(res.status, 200, "{}", res.text());
        let json = res.json();
        (
            json["access"].as_str().unwrap().to_owned(),
            json["refresh"].as_str().unwrap().to_owned(),
        )
    }

    fn get_with(server: &Server, path: &str, authorization: Option<&str>) -> Response {
        let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        request(
            server.addr(),
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"),
        )
    }

    /// `/me` on the axum example and `/api/hello/` on ferricorn-auth, for
    /// the same header.
    fn me_and_hello(&self, authorization: Option<&str>) -> (Response, Response) {
        (
            AuthPair::get_with(&self.axum, "/me", authorization),
            AuthPair::get_with(&self.auth, "/api/hello/", authorization),
        )
    }

    /// `/me` refuses as `/api/hello/` does, with simplejwt's text.
    fn assert_refused_like_hello(&self, authorization: Option<&str>, expected: &str) {
        let (me, hello) = self.me_and_hello(authorization);
        assert_eq!(me.status_line, "HTTP/1.1 401 Unauthorized", "{}", me.text());
        assert_eq!(me.json(), hello.json(), "{authorization:?}");
        assert!(
            me.text().contains(expected),
            "{authorization:?}: {}",
            me.text()
        );
        assert_eq!(me.header("www-authenticate"), Some("Bearer realm=\"api\""));
        assert_eq!(
            me.header("www-authenticate"),
            hello.header("www-authenticate")
        );
    }
}

#[test]
fn a_token_from_ferricorn_auth_opens_me_and_bad_ones_are_refused_as_hello_refuses_them() {
    let pair = auth_pair(&[]);
    let (access, refresh) = pair.obtain();
    let bearer = format!("Bearer {access}");
    let (me, hello) = pair.me_and_hello(Some(&bearer));
    assert_eq!(me.status_line, "HTTP/1.1 200 OK", "{}", me.text());
    assert_eq!(hello.status, 200);
    assert_eq!(
        me.json(),
        serde_json::json!({"user_id": 1, "username": "alice"})
    );

    // The signature's first character: all six of its bits are real (the
    // last character's low bits are padding a decoder ignores).
    let sig_at = access.rfind('.').unwrap() + 1;
    let first = &access[sig_at..sig_at + 1];
    let tampered = format!(
        "{}{}{}",
        &access[..sig_at],
        if first == "A" { "B" } else { "A" },
        &access[sig_at + 1..]
    );
    let payload = access.split('.').nth(1).unwrap();
    // {"alg":"none","typ":"JWT"}, the same claims, no signature.
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    pair.assert_refused_like_hello(None, "Authentication credentials were not provided.");
    pair.assert_refused_like_hello(Some(&format!("Bearer {tampered}")), "Token is invalid");
    pair.assert_refused_like_hello(Some(&format!("Bearer {none}")), "Token is invalid");
    pair.assert_refused_like_hello(Some(&format!("Bearer {refresh}")), "Token has wrong type");
    pair.assert_refused_like_hello(
        Some(&format!("Bearer {access} {access}")),
        "two space-delimited values",
    );

    // Deactivated after the token was issued: refused at the next request.
    admin(&pair.db, &["setactive", "alice", "false"], None);
    pair.assert_refused_like_hello(Some(&bearer), "User is inactive");
}

#[test]
fn an_expired_token_from_ferricorn_auth_is_refused_as_hello_refuses_it() {
    let pair = auth_pair(&[("FERRICORN_AUTH_ACCESS_TOKEN_LIFETIME", "1")]);
    let (access, _) = pair.obtain();
    let bearer = format!("Bearer {access}");
    assert_eq!(pair.me_and_hello(Some(&bearer)).0.status, 200);
    std::thread::sleep(Duration::from_millis(2100));
    pair.assert_refused_like_hello(Some(&bearer), "Token is expired");
}
