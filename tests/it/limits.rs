//! Request limits with Gunicorn's names and defaults (issue 3, item 3):
//! request line 4094 bytes → 414, 100 header fields and 8190 bytes per field
//! → 431, and the request-body limit → 413.

use crate::harness::*;

/// A GET whose request line (without CRLF) is exactly `len` bytes.
fn get_with_line_len(len: usize) -> String {
    let fixed = "GET / HTTP/1.1".len();
    let path = format!("/{}", "a".repeat(len - fixed));
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(req.find("\r\n"), Some(len));
    req
}

#[test]
fn request_line_at_the_limit_is_served() {
    let server = Server::echo(&[]);
    let resp = request(server.addr(), get_with_line_len(4094));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
}

#[test]
fn request_line_over_the_limit_is_414() {
    let server = Server::echo(&[]);
    for len in [4095, 6000] {
        let mut conn = server.connect();
        let resp = conn.roundtrip(get_with_line_len(len));
        assert_eq!(
            resp.status_line, "HTTP/1.1 414 URI Too Long",
            "line of {len} bytes"
        );
        assert!(conn.is_closed(), "connection must close after 414");
    }
}

#[test]
fn limit_request_line_flag_is_applied() {
    let server = Server::echo(&["--limit-request-line", "100"]);
    assert_eq!(
        request(server.addr(), get_with_line_len(100)).status_line,
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        request(server.addr(), get_with_line_len(101)).status_line,
        "HTTP/1.1 414 URI Too Long"
    );
}

/// A GET with `n` header fields in all (Host included).
fn get_with_fields(n: usize) -> String {
    let mut req = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
    for i in 1..n {
        req.push_str(&format!("X-Field-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    req
}

#[test]
fn one_hundred_header_fields_are_served() {
    let server = Server::echo(&[]);
    let resp = request(server.addr(), get_with_fields(100));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(echo_headers(&resp.json()).len(), 100);
}

#[test]
fn one_hundred_and_one_header_fields_are_431() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    let resp = conn.roundtrip(get_with_fields(101));
    assert_eq!(
        resp.status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert!(conn.is_closed());
}

#[test]
fn limit_request_fields_flag_is_applied() {
    let server = Server::echo(&["--limit-request-fields", "5"]);
    assert_eq!(
        request(server.addr(), get_with_fields(5)).status_line,
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        request(server.addr(), get_with_fields(6)).status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}

/// A GET with one `X-Big` field whose line, CRLF included, is `len` bytes
/// (Gunicorn counts the CRLF).
fn get_with_field_line(len: usize) -> String {
    let value = "b".repeat(len - "X-Big: ".len() - 2);
    format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {value}\r\n\r\n")
}

#[test]
fn header_field_within_the_limit_is_served() {
    let server = Server::echo(&[]);
    let resp = request(server.addr(), get_with_field_line(8000));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
}

#[test]
fn header_field_over_8190_bytes_is_431() {
    let server = Server::echo(&[]);
    for len in [8191, 9000, 20_000] {
        let mut conn = server.connect();
        let resp = conn.roundtrip(get_with_field_line(len));
        assert_eq!(
            resp.status_line, "HTTP/1.1 431 Request Header Fields Too Large",
            "field line of {len} bytes"
        );
    }
}

#[test]
fn limit_request_field_size_flag_is_applied() {
    let server = Server::echo(&["--limit-request-field_size", "200"]);
    assert_eq!(
        request(server.addr(), get_with_field_line(150)).status_line,
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        request(server.addr(), get_with_field_line(300)).status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}

#[test]
fn body_at_the_limit_is_served() {
    let server = Server::echo(&["--limit-request-body", "1024"]);
    let resp = request(server.addr(), post("/", &[b'x'; 1024]));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.json()["body_len"], 1024);
    let resp = request(server.addr(), post_chunked("/", &[b'x'; 1024], 100));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.json()["body_len"], 1024);
}

#[test]
fn content_length_body_over_the_limit_is_413() {
    let server = Server::echo(&["--limit-request-body", "1024"]);
    let mut conn = server.connect();
    let resp = conn.roundtrip(post("/", &[b'x'; 1025]));
    assert_eq!(resp.status_line, "HTTP/1.1 413 Payload Too Large");
}

#[test]
fn announced_oversized_body_is_refused_without_reading_it() {
    // Content-Length alone tells the server the body is too large; it must
    // answer at once, not wait for bytes it will refuse.
    let server = Server::echo(&["--limit-request-body", "1024"]);
    let mut conn = server.connect();
    conn.send("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n");
    let resp = conn.response();
    assert_eq!(resp.status_line, "HTTP/1.1 413 Payload Too Large");
}

#[test]
fn oversized_body_with_expect_100_continue_gets_413_instead_of_100() {
    // The point of 100-continue: refuse before the client sends the body.
    let server = Server::echo(&["--limit-request-body", "1024"]);
    let mut conn = server.connect();
    conn.send(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\
         Expect: 100-continue\r\n\r\n",
    );
    let resp = conn.response();
    assert_eq!(resp.status_line, "HTTP/1.1 413 Payload Too Large");
}

#[test]
fn chunked_body_over_the_limit_is_413() {
    let server = Server::echo(&["--limit-request-body", "1024"]);
    let mut conn = server.connect();
    let resp = conn.roundtrip(post_chunked("/", &[b'x'; 3000], 500));
    assert_eq!(resp.status_line, "HTTP/1.1 413 Payload Too Large");
}

#[test]
fn default_body_limit_admits_a_megabyte() {
    // The default is documented, not Gunicorn's "none"; a megabyte upload is
    // ordinary and must pass.
    let server = Server::echo(&[]);
    let resp = request(server.addr(), post("/", &vec![b'x'; 1 << 20]));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.json()["body_len"], 1 << 20);
}
