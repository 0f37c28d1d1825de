//! HTTP/1.x protocol behaviour of the echo example: keep-alive, pipelining,
//! chunked bodies both ways, `Expect: 100-continue`, HEAD, HTTP/1.0, Date and
//! Server headers, and the echo contract itself (issue 3, items 3 and 4);
//! RFC 9112's Host rules and `--permit-missing-host`, higher minor versions
//! served as HTTP/1.1, and CONNECT refused with 501.

use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn echo_answers_any_method_and_path_with_the_contract_json() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    let resp = conn.roundtrip(
        "PUT /some/where?x=1&y=two HTTP/1.1\r\nHost: localhost\r\nX-Rep: a\r\n\
         X-Other: b\r\nX-Rep: c\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    let json = resp.json();
    assert_eq!(json["method"], "PUT", "{json}");
    assert_eq!(json["path"], "/some/where", "{json}");
    assert_eq!(json["query"], "x=1&y=two", "{json}");
    assert_eq!(json["body_len"], 3, "{json}");
    assert_eq!(json["scheme"], "http", "{json}");
    assert_eq!(json["pid"].as_i64().map(|p| p > 0), Some(true), "{json}");
    let peer = json["peer"]
        .as_str()
        .unwrap_or_else(|| panic!("no peer: {json}"));
    assert!(peer.starts_with("127.0.0.1"), "peer {peer:?}");
    // Arrival order, repeats kept.
    let headers: Vec<_> = echo_headers(&json)
        .into_iter()
        .filter(|(n, _)| n.starts_with("x-"))
        .collect();
    assert_eq!(
        headers,
        [("x-rep", "a"), ("x-other", "b"), ("x-rep", "c")]
            .map(|(n, v)| (n.to_string(), v.to_string())),
        "{json}"
    );
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    let first = conn.roundtrip(get("/one"));
    assert_eq!(first.status_line, "HTTP/1.1 200 OK");
    assert!(!first.header_has_token("connection", "close"), "{first:?}");
    let second = conn.roundtrip(get("/two"));
    assert_eq!(second.status_line, "HTTP/1.1 200 OK");
    assert_eq!(first.json()["path"], "/one");
    assert_eq!(second.json()["path"], "/two");
    // The same client port both times: one connection.
    assert_eq!(first.json()["peer"], second.json()["peer"]);
}

#[test]
fn a_real_client_reuses_its_connection() {
    let server = Server::echo(&[]);
    let client = client();
    let peers: Vec<String> = (0..3)
        .map(|i| {
            let resp = client
                .get(server.url(&format!("/r{i}?k=v")))
                .send()
                .expect("request");
            assert_eq!(resp.status(), 200);
            let json: serde_json::Value = resp.json().expect("json");
            assert_eq!(json["path"], format!("/r{i}"));
            assert_eq!(json["query"], "k=v");
            json["peer"].as_str().expect("peer").to_string()
        })
        .collect();
    assert!(
        peers.windows(2).all(|w| w[0] == w[1]),
        "connection not reused: {peers:?}"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    let mut both = get("/first").into_bytes();
    both.extend_from_slice(&post("/second", b"12345"));
    both.extend_from_slice(get("/third").as_bytes());
    conn.send(both);
    for (path, len) in [("/first", 0), ("/second", 5), ("/third", 0)] {
        let resp = conn.response();
        assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
        let json = resp.json();
        assert_eq!(json["path"], path, "{json}");
        assert_eq!(json["body_len"], len, "{json}");
    }
}

#[test]
fn chunked_request_body_is_dechunked() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    let body = vec![b'z'; 10_000];
    let resp = conn.roundtrip(post_chunked("/upload", &body, 777));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.json()["body_len"], 10_000);
    // With chunk extensions and a trailer field, on the same connection.
    let resp = conn.roundtrip(
        "POST /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
         5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.json()["body_len"], 11);
}

#[test]
fn stream_answers_with_n_chunks() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    let resp = conn.roundtrip(get("/stream?n=5"));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert!(
        resp.header_has_token("transfer-encoding", "chunked"),
        "{resp:?}"
    );
    assert_eq!(resp.header("content-length"), None);
    assert_eq!(resp.chunks, Some(5), "body: {:?}", resp.text());
    // The connection stays usable after a chunked response.
    assert_eq!(conn.roundtrip(get("/")).status_line, "HTTP/1.1 200 OK");
}

#[test]
fn stream_over_http10_is_framed_by_close() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    conn.send("GET /stream?n=3 HTTP/1.0\r\n\r\n");
    let resp = conn.response();
    assert!(
        resp.status_line == "HTTP/1.0 200 OK" || resp.status_line == "HTTP/1.1 200 OK",
        "{resp:?}"
    );
    // HTTP/1.0 has no chunked coding: the body must be delimited otherwise.
    assert!(
        !resp.header_has_token("transfer-encoding", "chunked"),
        "{resp:?}"
    );
    assert!(!resp.body.is_empty());
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    conn.send(
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\
         Expect: 100-continue\r\n\r\n",
    );
    let interim = conn.response();
    assert_eq!(interim.status_line, "HTTP/1.1 100 Continue");
    conn.send("hello");
    let resp = conn.response();
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.json()["body_len"], 5);
}

#[test]
fn head_has_the_get_headers_and_no_body() {
    let server = Server::start("hello", &["--bind", "127.0.0.1:0"]);
    let mut conn = server.connect();
    let get_resp = conn.roundtrip(get("/"));
    assert_eq!(get_resp.status_line, "HTTP/1.1 200 OK");
    assert!(!get_resp.body.is_empty());
    // HEAD then GET pipelined: if the HEAD answer carried body bytes, the
    // next status line would not parse.
    conn.send(format!(
        "HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n{}",
        get("/")
    ));
    let head = conn.head_response();
    assert_eq!(head.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        head.header("content-length"),
        Some(get_resp.body.len().to_string().as_str()),
        "HEAD must announce the length GET sends: {head:?}"
    );
    assert_eq!(head.header("content-type"), get_resp.header("content-type"));
    let after = conn.response();
    assert_eq!(after.status_line, "HTTP/1.1 200 OK");
    assert_eq!(after.body, get_resp.body);
}

#[test]
fn head_on_echo_sends_no_body() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    conn.send(format!(
        "HEAD /h HTTP/1.1\r\nHost: localhost\r\n\r\n{}",
        get("/g")
    ));
    let head = conn.head_response();
    assert_eq!(head.status_line, "HTTP/1.1 200 OK");
    let after = conn.response();
    assert_eq!(after.status_line, "HTTP/1.1 200 OK");
    assert_eq!(after.json()["path"], "/g");
}

#[test]
fn http10_request_is_answered_and_closed() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    conn.send("GET /old HTTP/1.0\r\n\r\n");
    let resp = conn.response();
    assert!(
        resp.status_line == "HTTP/1.0 200 OK" || resp.status_line == "HTTP/1.1 200 OK",
        "{resp:?}"
    );
    assert_eq!(resp.json()["path"], "/old");
    assert!(
        conn.is_closed(),
        "an HTTP/1.0 connection without keep-alive must close"
    );
}

#[test]
fn http10_keep_alive_is_honoured() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    let first = conn.roundtrip("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(first.json()["path"], "/a");
    assert!(
        first.header_has_token("connection", "keep-alive"),
        "{first:?}"
    );
    let second = conn.roundtrip("GET /b HTTP/1.0\r\n\r\n");
    assert_eq!(second.json()["path"], "/b");
}

#[test]
fn connection_close_is_honoured() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    let resp = conn.roundtrip(get_close("/"));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert!(resp.header_has_token("connection", "close"), "{resp:?}");
    assert!(conn.is_closed());
}

#[test]
fn date_and_server_headers_are_present() {
    let server = Server::echo(&[]);
    let resp = request(server.addr(), get("/"));
    let date = resp
        .header("date")
        .unwrap_or_else(|| panic!("no Date: {resp:?}"));
    // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
    assert_eq!(date.len(), 29, "{date:?}");
    assert!(date.ends_with(" GMT"), "{date:?}");
    let server_header = resp
        .header("server")
        .unwrap_or_else(|| panic!("no Server: {resp:?}"));
    assert!(!server_header.is_empty());
    // Error answers carry them too.
    let bad = request(server.addr(), "BROKEN\r\n\r\n");
    assert!(bad.header("date").is_some(), "{bad:?}");
}

#[test]
fn malformed_request_line_is_400() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    let resp = conn.roundtrip("THIS IS NOT HTTP\r\n\r\n");
    assert_eq!(resp.status_line, "HTTP/1.1 400 Bad Request");
    assert!(conn.is_closed(), "the connection must close after a 400");
}

#[test]
fn content_length_with_transfer_encoding_is_refused_or_closed() {
    // Request smuggling guard, RFC 9112 section 6.3: a server may refuse the
    // message (Gunicorn does: 400) or frame it by Transfer-Encoding alone,
    // and either way MUST close the connection after responding.
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    conn.send(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\
         Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    let resp = conn.response();
    match resp.status {
        400 => assert_eq!(resp.status_line, "HTTP/1.1 400 Bad Request"),
        200 => assert_eq!(
            resp.json()["body_len"],
            3,
            "not framed by Transfer-Encoding"
        ),
        _ => panic!("unexpected answer {resp:?}"),
    }
    assert!(
        conn.is_closed(),
        "connection left open after a Content-Length + Transfer-Encoding request ({})",
        resp.status_line
    );
}

#[test]
fn repeated_host_header_is_400() {
    // RFC 9112 section 3.2: a server MUST answer 400 to a request with more
    // than one Host field line.
    let server = Server::echo(&[]);
    let resp = request(
        server.addr(),
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    );
    assert_eq!(resp.status_line, "HTTP/1.1 400 Bad Request");
}

#[test]
fn sleep_does_not_block_other_requests() {
    let server = Server::echo(&[]);
    let addr = server.addr();
    let sleeper = std::thread::spawn(move || {
        let mut conn = Conn::tcp(addr);
        let started = Instant::now();
        let resp = conn.roundtrip(get("/sleep?s=2"));
        (resp, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let resp = request(addr, get("/"));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a request waited {:?} behind /sleep",
        started.elapsed()
    );
    let (slept, took) = sleeper.join().unwrap();
    assert_eq!(slept.status_line, "HTTP/1.1 200 OK");
    assert!(
        took >= Duration::from_millis(1900),
        "/sleep?s=2 took {took:?}"
    );
}

/// Sends `request` on a fresh connection and returns the status line;
/// a refusal must also close the connection.
fn status_of(server: &Server, request: impl AsRef<[u8]>) -> String {
    let mut conn = server.connect();
    let resp = conn.roundtrip(request);
    if resp.status >= 400 {
        assert!(
            conn.is_closed(),
            "{:?}: the connection stayed open",
            resp.status_line
        );
    }
    resp.status_line
}

#[test]
fn http11_without_host_is_400_unless_permit_missing_host() {
    let server = Server::echo(&[]);
    for request in [
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nX: 1\r\n\r\n",
        // The absolute form names the host, but RFC 9112 section 3.2 still
        // asks for the field.
        "GET http://a/ HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(
            status_of(&server, request),
            "HTTP/1.1 400 Bad Request",
            "{request:?}"
        );
    }
    // HTTP/1.0 did not require Host.
    assert_eq!(
        status_of(&server, "GET / HTTP/1.0\r\n\r\n"),
        "HTTP/1.0 200 OK"
    );

    let gunicorn = Server::echo(&["--permit-missing-host"]);
    let mut conn = gunicorn.connect();
    let resp = conn.roundtrip("GET /x HTTP/1.1\r\n\r\n");
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.json()["path"], "/x");
    // A repeated or invalid Host stays refused under the switch.
    assert_eq!(
        status_of(&gunicorn, "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        status_of(&gunicorn, "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
        "HTTP/1.1 400 Bad Request"
    );
}

#[test]
fn host_values_outside_the_grammar_are_400() {
    let server = Server::echo(&[]);
    assert_eq!(
        status_of(&server, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        "HTTP/1.1 400 Bad Request",
        "two Host fields"
    );
    for value in [
        &b"a b"[..],
        b"a/b",
        b"user@a",
        b"a:port",
        b"[::1",
        b"a\x01b",
        b"a\tb",
        b"a?b",
    ] {
        let request = [b"GET / HTTP/1.1\r\nHost: ", value, b"\r\n\r\n"].concat();
        assert_eq!(
            status_of(&server, &request),
            "HTTP/1.1 400 Bad Request",
            "Host: {:?}",
            String::from_utf8_lossy(value)
        );
    }
    for value in ["a", "a:8080", "127.0.0.1:1", "[::1]:80", ""] {
        let mut conn = server.connect();
        let resp = conn.roundtrip(format!("GET / HTTP/1.1\r\nHost: {value}\r\n\r\n"));
        assert_eq!(resp.status_line, "HTTP/1.1 200 OK", "Host: {value:?}");
        let host = echo_headers(&resp.json())
            .into_iter()
            .find(|(n, _)| n == "host")
            .map(|(_, v)| v);
        assert_eq!(host.as_deref(), Some(value), "the echo saw Host as sent");
    }
}

#[test]
fn a_higher_minor_version_is_served_as_http11() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    for (i, minor) in ["2", "9"].iter().enumerate() {
        let resp = conn.roundtrip(format!("GET /v{i} HTTP/1.{minor}\r\nHost: a\r\n\r\n"));
        assert_eq!(resp.status_line, "HTTP/1.1 200 OK", "HTTP/1.{minor}");
        let json = resp.json();
        assert_eq!(json["version"], "HTTP/1.1", "{json}");
        assert_eq!(json["path"], format!("/v{i}"), "{json}");
    }
    // The same connection goes on as HTTP/1.1 (keep-alive).
    assert_eq!(conn.roundtrip(get("/after")).status_line, "HTTP/1.1 200 OK");
}

#[test]
fn a_higher_minor_version_sent_one_byte_at_a_time_is_served() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    for byte in b"GET /split HTTP/1.2\r\nHost: a\r\n\r\n" {
        conn.send([*byte]);
        std::thread::sleep(Duration::from_millis(2));
    }
    let resp = conn.response();
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.json()["path"], "/split");
}

#[test]
fn other_major_versions_in_an_http1_request_line_are_refused() {
    let server = Server::echo(&[]);
    for version in ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/1.x"] {
        assert_eq!(
            status_of(&server, format!("GET / {version}\r\nHost: a\r\n\r\n")),
            "HTTP/1.1 400 Bad Request",
            "{version}"
        );
    }
}

#[test]
fn connect_is_501_never_an_empty_200() {
    // A 2xx to CONNECT is a tunnel to hyper: it would send the echo's head
    // alone and drop its body. The server does not tunnel, so it says so.
    for example in ["echo", "hello"] {
        let server = Server::example(example, &[]);
        for request in [
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
        ] {
            assert_eq!(
                status_of(&server, request),
                "HTTP/1.1 501 Not Implemented",
                "{example}: {request:?}"
            );
        }
    }
}
