//! The PROXY protocol (`--proxy-protocol`, `--proxy-allow-from`): a v1 or
//! v2 header at the start of a connection names the client, which the
//! application (the echo's `peer` and `remote_port`) and the access log
//! then see; the socket's peer stays `socket_peer`.

use std::time::{Duration, Instant};

use crate::harness::*;

const V2_SIG: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// A v2 PROXY header for a TCP connection from `src` to `dst`.
fn v2(src: std::net::SocketAddr, dst: std::net::SocketAddr) -> Vec<u8> {
    let mut out = V2_SIG.to_vec();
    out.push(0x21); // version 2, PROXY
    let mut addrs = Vec::new();
    match (src, dst) {
        (std::net::SocketAddr::V4(s), std::net::SocketAddr::V4(d)) => {
            out.push(0x11); // INET, STREAM
            addrs.extend_from_slice(&s.ip().octets());
            addrs.extend_from_slice(&d.ip().octets());
        }
        (std::net::SocketAddr::V6(s), std::net::SocketAddr::V6(d)) => {
            out.push(0x21); // INET6, STREAM
            addrs.extend_from_slice(&s.ip().octets());
            addrs.extend_from_slice(&d.ip().octets());
        }
        _ => panic!("one family"),
    }
    addrs.extend_from_slice(&src.port().to_be_bytes());
    addrs.extend_from_slice(&dst.port().to_be_bytes());
    out.extend_from_slice(&u16::try_from(addrs.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&addrs);
    out
}

fn with(header: &[u8], request: &[u8]) -> Vec<u8> {
    [header, request].concat()
}

#[test]
fn a_v1_header_names_the_client_for_the_whole_connection() {
    let server = Server::echo(&["--proxy-protocol", "v1"]);
    let mut conn = Conn::tcp(server.addr());
    let json = conn
        .roundtrip(with(
            b"PROXY TCP4 192.0.2.7 192.0.2.1 4711 443\r\n",
            get("/first").as_bytes(),
        ))
        .json();
    assert_eq!(json["peer"], "192.0.2.7", "{json}");
    assert_eq!(json["remote_port"], 4711, "{json}");
    let socket_peer: std::net::SocketAddr = json["socket_peer"].as_str().unwrap().parse().unwrap();
    assert_eq!(socket_peer.ip().to_string(), "127.0.0.1", "{json}");
    // The next request on the connection has no header of its own.
    let json = conn.roundtrip(get("/second")).json();
    assert_eq!(
        (json["path"].as_str(), json["peer"].as_str()),
        (Some("/second"), Some("192.0.2.7")),
        "{json}"
    );
}

#[test]
fn a_v2_header_names_the_client() {
    let server = Server::echo(&["--proxy-protocol", "v2"]);
    for (src, dst) in [
        ("198.51.100.9:50000", "192.0.2.1:443"),
        ("[2001:db8::7]:4711", "[2001:db8::1]:443"),
    ] {
        let (src, dst) = (src.parse().unwrap(), dst.parse().unwrap());
        let resp = request(server.addr(), with(&v2(src, dst), get("/v2").as_bytes()));
        let json = resp.json();
        assert_eq!(json["peer"], src.ip().to_string(), "{json}");
        assert_eq!(json["remote_port"], src.port(), "{json}");
    }
}

#[test]
fn auto_takes_either_header_or_none() {
    let server = Server::echo(&["--proxy-protocol"]);
    let v1 = request(
        server.addr(),
        with(
            b"PROXY TCP4 192.0.2.8 192.0.2.1 1 2\r\n",
            get("/").as_bytes(),
        ),
    );
    assert_eq!(v1.json()["peer"], "192.0.2.8");
    let header = v2(
        "192.0.2.9:3".parse().unwrap(),
        "192.0.2.1:4".parse().unwrap(),
    );
    let v2 = request(server.addr(), with(&header, get("/").as_bytes()));
    assert_eq!(v2.json()["peer"], "192.0.2.9");
    // Optional, as in Gunicorn: a direct client is served as it is.
    let plain = request(server.addr(), get("/")).json();
    assert_eq!(plain["peer"], "127.0.0.1", "{plain}");
    assert!(plain["remote_port"].is_u64(), "{plain}");
}

#[test]
fn malformed_headers_are_answered_400_and_closed() {
    let server = Server::echo(&["--proxy-protocol", "auto"]);
    for bad in [
        &b"PROXY TCP4 192.168.0.1 192.16...\r\n"[..],
        b"PROXY TCP4 192.168.0.1 192.168.0.11 65iii 100000\r\n",
        b"PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c",
    ] {
        let mut conn = Conn::tcp(server.addr());
        conn.send(with(bad, get("/").as_bytes()));
        let resp = conn.response();
        assert_eq!(resp.status_line, "HTTP/1.1 400 Bad Request", "{bad:?}");
        assert!(resp.header_has_token("connection", "close"), "{bad:?}");
        assert!(conn.is_closed(), "{bad:?}");
    }
    // The worker still serves.
    assert_eq!(request(server.addr(), get("/")).status, 200);
}

#[test]
fn a_header_from_a_peer_not_allowed_is_answered_403() {
    let server = Server::echo(&["--proxy-protocol", "--proxy-allow-from", "10.9.9.9"]);
    let mut conn = Conn::tcp(server.addr());
    conn.send(with(
        b"PROXY TCP4 192.0.2.7 192.0.2.1 4711 443\r\n",
        get("/").as_bytes(),
    ));
    let resp = conn.response();
    assert_eq!(resp.status_line, "HTTP/1.1 403 Forbidden");
    assert!(conn.is_closed());
    // The same peer without a header is served, under its own address.
    assert_eq!(request(server.addr(), get("/")).json()["peer"], "127.0.0.1");
}

#[test]
fn without_the_flag_a_proxy_header_is_not_read() {
    let server = Server::echo(&[]);
    let resp = request(
        server.addr(),
        with(
            b"PROXY TCP4 192.0.2.7 192.0.2.1 4711 443\r\n",
            get("/").as_bytes(),
        ),
    );
    assert_eq!(resp.status, 400, "{}", resp.status_line);
}

/// The balancer is transparent: the client it names, not the balancer, is
/// the peer `--forwarded-allow-ips` is checked against.
#[test]
fn forwarding_headers_are_believed_only_from_a_trusted_client() {
    let server = Server::echo(&["--proxy-protocol"]);
    let forged =
        "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n\r\n";
    let json = request(
        server.addr(),
        with(
            b"PROXY TCP4 192.0.2.7 192.0.2.1 4711 443\r\n",
            forged.as_bytes(),
        ),
    )
    .json();
    assert_eq!(
        (json["peer"].as_str(), json["scheme"].as_str()),
        (Some("192.0.2.7"), Some("http")),
        "{json}"
    );
    let json = request(
        server.addr(),
        with(
            b"PROXY TCP4 127.0.0.1 127.0.0.1 4711 443\r\n",
            forged.as_bytes(),
        ),
    )
    .json();
    assert_eq!(
        (json["peer"].as_str(), json["scheme"].as_str()),
        (Some("6.6.6.6"), Some("https")),
        "{json}"
    );
}

#[test]
fn the_access_log_shows_the_client_the_header_named() {
    let server = Server::echo(&["--proxy-protocol", "--access-logfile", "-"]);
    let resp = request(
        server.addr(),
        with(
            b"PROXY TCP4 203.0.113.5 192.0.2.1 4711 443\r\n",
            get("/logged-pp").as_bytes(),
        ),
    );
    assert_eq!(resp.status, 200);
    assert!(
        wait_until(Duration::from_secs(3), || server
            .stdout()
            .contains("/logged-pp")),
        "{}",
        server.stdout()
    );
    let out = server.stdout();
    let line = out.lines().find(|l| l.contains("/logged-pp")).unwrap();
    assert!(line.starts_with("203.0.113.5 - - ["), "{line}");
}

#[test]
fn a_header_cut_short_is_closed_within_the_header_timeout() {
    let server = Server::echo(&["--proxy-protocol", "--header-timeout", "1"]);
    let mut conn = Conn::tcp(server.addr());
    conn.send(b"PROXY TCP4 192.0.2.7");
    let started = Instant::now();
    assert!(conn.is_closed(), "still open");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_unix_socket_peer_may_always_send_one() {
    let path = temp_path("pp", "sock");
    let bind = format!("unix:{}", path.display());
    let server = Server::start(
        "echo",
        &[
            "--bind",
            &bind,
            "--proxy-protocol",
            "--proxy-allow-from",
            "10.9.9.9",
        ],
    );
    let _cleanup = TempFile(path.clone());
    let json = Conn::unix(&path)
        .roundtrip(with(
            b"PROXY TCP6 2001:db8::5 2001:db8::1 4711 443\r\n",
            get("/").as_bytes(),
        ))
        .json();
    assert_eq!(
        (json["peer"].as_str(), json["remote_port"].as_u64()),
        (Some("2001:db8::5"), Some(4711)),
        "{json}"
    );
    assert!(json["socket_peer"].is_null(), "{json}");
    drop(server);
}
