//! Proxy awareness (issue 3, item 3): `X-Forwarded-For`/`X-Forwarded-Proto`
//! and `Forwarded` set the peer and scheme only when the connection comes
//! from an address in `--forwarded-allow-ips` (default `127.0.0.1,::1`).

use crate::harness::*;

fn echo_with(server: &Server, extra_headers: &str) -> serde_json::Value {
    let resp = request(
        server.addr(),
        format!("GET /p HTTP/1.1\r\nHost: localhost\r\n{extra_headers}\r\n"),
    );
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    resp.json()
}

/// The address part of the echo's `peer` ("1.2.3.4" or "1.2.3.4:PORT").
fn peer_ip(json: &serde_json::Value) -> String {
    let peer = json["peer"]
        .as_str()
        .unwrap_or_else(|| panic!("no peer: {json}"));
    match peer.parse::<std::net::SocketAddr>() {
        Ok(sa) => sa.ip().to_string(),
        Err(_) => peer.to_string(),
    }
}

#[test]
fn x_forwarded_headers_are_honoured_from_localhost_by_default() {
    let server = Server::echo(&[]);
    let json = echo_with(
        &server,
        "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n",
    );
    assert_eq!(peer_ip(&json), "1.2.3.4", "{json}");
    assert_eq!(json["scheme"], "https", "{json}");
}

#[test]
fn x_forwarded_headers_are_ignored_from_other_peers() {
    let server = Server::echo(&["--forwarded-allow-ips", "10.9.9.9"]);
    let json = echo_with(
        &server,
        "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n",
    );
    assert_eq!(peer_ip(&json), "127.0.0.1", "{json}");
    assert_eq!(json["scheme"], "http", "{json}");
}

#[test]
fn forwarded_header_is_honoured_from_localhost() {
    let server = Server::echo(&[]);
    let json = echo_with(&server, "Forwarded: for=1.2.3.4;proto=https\r\n");
    assert_eq!(peer_ip(&json), "1.2.3.4", "{json}");
    assert_eq!(json["scheme"], "https", "{json}");
}

#[test]
fn forwarded_header_with_quoted_ipv6_is_honoured() {
    let server = Server::echo(&[]);
    let json = echo_with(
        &server,
        "Forwarded: for=\"[2001:db8::1]:4711\";proto=https\r\n",
    );
    assert_eq!(peer_ip(&json), "2001:db8::1", "{json}");
    assert_eq!(json["scheme"], "https", "{json}");
}

#[test]
fn forwarded_header_is_ignored_from_other_peers() {
    let server = Server::echo(&["--forwarded-allow-ips", "10.9.9.9"]);
    let json = echo_with(&server, "Forwarded: for=1.2.3.4;proto=https\r\n");
    assert_eq!(peer_ip(&json), "127.0.0.1", "{json}");
    assert_eq!(json["scheme"], "http", "{json}");
}

#[test]
fn wildcard_allows_every_peer() {
    let server = Server::echo(&["--forwarded-allow-ips", "*"]);
    let json = echo_with(
        &server,
        "X-Forwarded-For: 5.6.7.8\r\nX-Forwarded-Proto: https\r\n",
    );
    assert_eq!(peer_ip(&json), "5.6.7.8", "{json}");
    assert_eq!(json["scheme"], "https", "{json}");
}

#[test]
fn bad_forwarded_allow_ips_is_refused_naming_the_flag() {
    let out = run_to_exit(
        "echo",
        &[
            "--bind",
            "127.0.0.1:0",
            "--forwarded-allow-ips",
            "not-an-ip",
        ],
        &[],
        std::time::Duration::from_secs(10),
    );
    assert!(
        !out.status.success(),
        "started with a bad --forwarded-allow-ips"
    );
    assert!(
        out.stderr.contains("--forwarded-allow-ips"),
        "{}",
        out.stderr
    );
}
