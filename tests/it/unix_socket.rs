//! Binding (issue 3, item 3): Unix sockets, several `--bind`s at once, IPv6,
//! and the `Listening at:` announcement for each.

use crate::harness::*;

#[test]
fn unix_socket_is_served() {
    let path = temp_path("unix", "sock");
    let bind = format!("unix:{}", path.display());
    let server = Server::start("echo", &["--bind", &bind]);
    let _cleanup = TempFile(path.clone());
    assert_eq!(server.addrs(), [Addr::Unix(path.clone())]);
    let mut conn = Conn::unix(&path);
    let resp = conn.roundtrip(get("/over-unix"));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    let json = resp.json();
    assert_eq!(json["path"], "/over-unix");
    // Keep-alive works over Unix sockets too.
    let resp = conn.roundtrip(post("/again", b"abc"));
    assert_eq!(resp.json()["body_len"], 3);
}

#[test]
fn stale_unix_socket_file_is_replaced() {
    // A socket file left by a crashed server must not stop the next start.
    let path = temp_path("stale", "sock");
    let stale = std::os::unix::net::UnixListener::bind(&path).expect("bind stale socket");
    drop(stale);
    assert!(path.exists());
    let bind = format!("unix:{}", path.display());
    let server = Server::start("echo", &["--bind", &bind]);
    let _cleanup = TempFile(path.clone());
    assert_eq!(
        Conn::unix(&path).roundtrip(get("/")).status_line,
        "HTTP/1.1 200 OK"
    );
    drop(server);
}

#[test]
fn tcp_and_unix_binds_at_once_both_answer() {
    let path = temp_path("multi", "sock");
    let bind = format!("unix:{}", path.display());
    let server = Server::start("echo", &["--bind", "127.0.0.1:0", "-b", &bind]);
    let _cleanup = TempFile(path.clone());
    let addrs = server.addrs().to_vec();
    assert_eq!(addrs.len(), 2, "{addrs:?}\n{}", server.stderr());
    assert!(
        matches!(addrs[0], Addr::Tcp(sa) if sa.port() != 0),
        "{addrs:?}"
    );
    assert_eq!(addrs[1], Addr::Unix(path.clone()));
    let via_tcp = request(server.addr(), get("/multi"));
    let via_unix = Conn::unix(&path).roundtrip(get("/multi"));
    for resp in [via_tcp, via_unix] {
        assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
        assert_eq!(resp.json()["path"], "/multi");
    }
}

#[test]
fn two_port_zero_binds_get_two_ports() {
    // Port 0 is "any free port": two such binds are two sockets, not a
    // duplicate.
    let server = Server::start("echo", &["--bind", "127.0.0.1:0", "--bind", "127.0.0.1:0"]);
    let ports: Vec<u16> = server
        .addrs()
        .iter()
        .map(|a| match a {
            Addr::Tcp(sa) => sa.port(),
            Addr::Unix(p) => panic!("unexpected {p:?}"),
        })
        .collect();
    assert_eq!(ports.len(), 2);
    assert_ne!(ports[0], ports[1]);
    for addr in server.addrs() {
        let Addr::Tcp(sa) = addr else { unreachable!() };
        assert_eq!(request(*sa, get("/")).status_line, "HTTP/1.1 200 OK");
    }
}

#[test]
fn same_port_bound_twice_is_refused_naming_it() {
    let out = run_to_exit(
        "echo",
        &["--bind", "127.0.0.1:45999", "--bind", "127.0.0.1:45999"],
        &[],
        std::time::Duration::from_secs(15),
    );
    assert!(!out.status.success());
    assert!(out.stderr.contains("--bind"), "{}", out.stderr);
}

fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn ipv6_loopback_is_served() {
    if !has_ipv6_loopback() {
        skip_or_fail("this machine has no IPv6 loopback ([::1])");
        return;
    }
    let server = Server::start("echo", &["--bind", "[::1]:0"]);
    let addr = server.addr();
    assert!(addr.is_ipv6(), "{addr}");
    assert_ne!(addr.port(), 0);
    let resp = request(addr, get("/six"));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    let json = resp.json();
    let peer = json["peer"].as_str().unwrap_or_default();
    assert!(peer.contains("::1"), "peer {peer:?}");
}

#[test]
fn ipv6_peer_is_trusted_as_proxy_by_default() {
    // The default --forwarded-allow-ips is "127.0.0.1,::1".
    if !has_ipv6_loopback() {
        skip_or_fail("this machine has no IPv6 loopback ([::1])");
        return;
    }
    let server = Server::start("echo", &["--bind", "[::1]:0"]);
    let resp = request(
        server.addr(),
        "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n\r\n",
    );
    let json = resp.json();
    assert!(
        json["peer"]
            .as_str()
            .unwrap_or_default()
            .starts_with("1.2.3.4"),
        "{json}"
    );
    assert_eq!(json["scheme"], "https", "{json}");
}

#[test]
fn unusable_bind_fails_naming_the_address() {
    // Bind a port, then ask the server for the same one.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_to_exit(
        "echo",
        &["--bind", &addr],
        &[],
        std::time::Duration::from_secs(15),
    );
    assert!(!out.status.success(), "started on a port already in use");
    assert!(
        out.stderr.contains(&addr),
        "error does not name {addr}:\n{}",
        out.stderr
    );
}
