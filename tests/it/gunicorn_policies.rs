//! Gunicorn's request-head policies, with its switches and defaults:
//! `--header-map` (names with `_`), the method policy
//! (`--permit-unconventional-http-method`, `--casefold-http-method`),
//! contradictory scheme headers from a trusted proxy, a repeated
//! Content-Type, and empty lines before the request line.

use crate::harness::*;

/// Sends `raw` on a fresh connection and expects a 400 and a close.
fn assert_refused_400(server: &Server, raw: &str) {
    let mut conn = Conn::tcp(server.addr());
    conn.send(raw);
    let resp = conn.response();
    assert_eq!(resp.status_line, "HTTP/1.1 400 Bad Request", "{raw:?}");
    assert!(resp.header_has_token("connection", "close"), "{raw:?}");
    assert!(conn.is_closed(), "{raw:?}");
}

/// The request of Gunicorn's valid/040: names with `_` that read, in a
/// WSGI environ, as the framing headers.
const UNDERSCORES: &str = "POST /u HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: tricked\r\n\
    Content-Length: 7\r\nX-A: 1\r\nContent_Length: -1E23\r\nX-A: 2\r\n\r\ntricked";

#[test]
fn header_names_with_underscores_are_dropped_by_default() {
    let server = Server::echo(&[]);
    let mut conn = Conn::tcp(server.addr());
    let json = conn.roundtrip(UNDERSCORES).json();
    assert_eq!(
        echo_headers(&json),
        [
            ("host".to_owned(), "x".to_owned()),
            ("content-length".into(), "7".into()),
            ("x-a".into(), "1".into()),
            ("x-a".into(), "2".into()),
        ],
        "dropped, and the rest in arrival order: {json}"
    );
    assert_eq!(
        json["body_len"], 7,
        "the real Content-Length frames: {json}"
    );
    // The connection is still in step.
    assert_eq!(conn.roundtrip(get("/next")).json()["path"], "/next");
    // A dropped name is not read as a forwarding header either.
    let json = request(
        server.addr(),
        "GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n",
    )
    .json();
    assert_eq!(json["peer"], "127.0.0.1", "{json}");
}

#[test]
fn header_map_refuse_answers_400() {
    let server = Server::echo(&["--header-map", "refuse"]);
    assert_refused_400(&server, UNDERSCORES);
    assert_eq!(request(server.addr(), get("/")).status, 200);
}

#[test]
fn header_map_dangerous_passes_them_on() {
    let server = Server::echo(&["--header-map", "dangerous"]);
    let json = request(server.addr(), UNDERSCORES).json();
    let names: Vec<String> = echo_headers(&json).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "host",
            "transfer_encoding",
            "content-length",
            "x-a",
            "content_length",
            "x-a"
        ],
        "{json}"
    );
    assert_eq!(json["body_len"], 7, "{json}");
}

#[test]
fn unconventional_methods_are_refused_by_default() {
    let server = Server::echo(&[]);
    for method in ["get", "Get", "-bl", "GE", "ABCDEFGHIJKLMNOPQRSTU", "GET#"] {
        assert_refused_400(&server, &format!("{method} / HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    for method in ["M-SEARCH", "-BLARGH", "PROPFIND", "ABCDEFGHIJKLMNOPQRST"] {
        let resp = request(
            server.addr(),
            format!("{method} / HTTP/1.1\r\nHost: x\r\n\r\n"),
        );
        assert_eq!(resp.json()["method"], method);
    }
}

#[test]
fn permit_unconventional_http_method_passes_them_as_sent() {
    let server = Server::echo(&["--permit-unconventional-http-method"]);
    for method in ["get", "-bl", "GE"] {
        let resp = request(
            server.addr(),
            format!("{method} / HTTP/1.1\r\nHost: x\r\n\r\n"),
        );
        assert_eq!(resp.json()["method"], method);
    }
}

#[test]
fn casefold_http_method_upper_cases_them() {
    let server = Server::echo(&[
        "--permit-unconventional-http-method",
        "--casefold-http-method",
    ]);
    let resp = request(server.addr(), "-blargh /foo HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.json()["method"], "-BLARGH");
    // A `head` is answered as the ordinary method it was sent as (hyper
    // frames it so, with a body), while the application saw HEAD: the
    // connection closes after it, so a client that meant HEAD cannot read
    // that body as its next response.
    let mut conn = Conn::tcp(server.addr());
    conn.send("head / HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = conn.response();
    assert_eq!(resp.json()["method"], "HEAD");
    assert!(resp.header_has_token("connection", "close"), "{resp:?}");
    assert!(conn.is_closed());
    // Other methods keep the connection.
    let mut conn = Conn::tcp(server.addr());
    assert_eq!(
        conn.roundtrip("get /a HTTP/1.1\r\nHost: x\r\n\r\n").json()["method"],
        "GET"
    );
    assert_eq!(conn.roundtrip(get("/b")).json()["path"], "/b");
    // Casefolding alone does not let lower case in, as in Gunicorn.
    let server = Server::echo(&["--casefold-http-method"]);
    assert_refused_400(&server, "get / HTTP/1.1\r\nHost: x\r\n\r\n");
}

#[test]
fn contradictory_scheme_headers_from_a_trusted_proxy_are_refused() {
    let server = Server::echo(&[]);
    assert_refused_400(
        &server,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n",
    );
    let json = request(
        server.addr(),
        "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\n\r\n",
    )
    .json();
    assert_eq!(json["scheme"], "https", "{json}");
    // From a peer that is not trusted they are not read at all.
    let server = Server::echo(&["--forwarded-allow-ips", "10.9.9.9"]);
    let json = request(
        server.addr(),
        "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n",
    )
    .json();
    assert_eq!(json["scheme"], "http", "{json}");
}

#[test]
fn a_repeated_content_type_is_refused() {
    let server = Server::echo(&[]);
    assert_refused_400(
        &server,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Type: text/html\r\nContent-Length: 0\r\n\r\n",
    );
}

#[test]
fn one_empty_line_before_the_request_line_is_skipped_not_two() {
    let server = Server::echo(&[]);
    let resp = request(server.addr(), format!("\r\n{}", get("/one")));
    assert_eq!(resp.json()["path"], "/one");
    assert_refused_400(&server, &format!("\r\n\r\n{}", get("/two")));
    // Between pipelined requests too.
    let mut conn = Conn::tcp(server.addr());
    conn.send(format!("{}\r\n{}", get("/a"), get("/b")));
    assert_eq!(conn.response().json()["path"], "/a");
    assert_eq!(conn.response().json()["path"], "/b");
}

/// Gunicorn applies `--header-map` to trailer fields too.
#[test]
fn header_map_applies_to_trailer_fields() {
    let raw = "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
               5\r\nhello\r\n0\r\nX_Trailer: 1\r\n\r\n";
    for (mode, status) in [("drop", 200), ("dangerous", 200), ("refuse", 400)] {
        let server = Server::echo(&["--header-map", mode]);
        let mut conn = Conn::tcp(server.addr());
        let resp = conn.roundtrip(raw);
        assert_eq!(resp.status, status, "{mode}: {}", resp.status_line);
        if status == 200 {
            assert_eq!(resp.json()["body_len"], 5, "{mode}");
        } else {
            assert!(resp.header_has_token("connection", "close"), "{mode}");
            assert!(conn.is_closed(), "{mode}");
        }
    }
}
