//! The test helpers' own tests: a throwaway PostgreSQL cluster that
//! authenticates by password and survives a stop and start on the same
//! port, and an Nginx that spreads requests over several upstreams.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

mod common;

use common::nginx::Nginx;
use common::postgres::{PgCluster, PASSWORD};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn pg_cluster_authenticates_by_password_and_survives_a_restart_on_its_port() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.url();
    assert_eq!(
        url,
        format!(
            "postgres://ferricorn:s3cret-pw@127.0.0.1:{}/ferricorn",
            pg.port()
        )
    );

    // The role, its database and its password work over TCP.
    let who = pg
        .psql_url(&url, "select current_user, current_database()")
        .unwrap_or_else(|e| panic!("connecting as ferricorn: {e}"));
    assert_eq!(who.trim(), "ferricorn|ferricorn");
    pg.psql_url(
        &url,
        "create table survivor (x int); insert into survivor values (42);",
    )
    .expect("ferricorn owns its database and can create tables");

    // The password is checked, not just passed along.
    let wrong = url.replace(PASSWORD, "not-the-password");
    let err = pg
        .psql_url(&wrong, "select 1")
        .expect_err("a wrong password must be refused");
    assert!(err.contains("password authentication failed"), "{err}");

    // The superuser's URL works too, and sees the application's role.
    let roles = pg
        .psql_url(
            &pg.superuser_url(),
            "select rolname from pg_roles where rolname = 'ferricorn'",
        )
        .unwrap_or_else(|e| panic!("connecting as postgres: {e}"));
    assert_eq!(roles.trim(), "ferricorn");

    // Another database, owned by the application's role.
    let other = pg.create_database("other_db");
    assert!(
        other.ends_with(&format!(":{}/other_db", pg.port())),
        "{other}"
    );
    let owner = pg.psql(
        "postgres",
        "select pg_get_userbyid(datdba) from pg_database where datname = 'other_db'",
    );
    assert_eq!(owner.trim(), "ferricorn");
    assert_eq!(
        pg.psql_url(&other, "select current_database()")
            .unwrap_or_else(|e| panic!("{e}"))
            .trim(),
        "other_db"
    );

    // Stopped: connections fail, nothing listens on the port.
    pg.stop();
    let err = pg
        .psql_url(&url, "select 1")
        .expect_err("a stopped server must refuse connections");
    assert!(
        err.contains("Connection refused") || err.contains("connection"),
        "{err}"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", pg.port())).is_err(),
        "port {} still open after stop",
        pg.port()
    );

    // Started again: the same URL works and the data is still there.
    pg.start_again();
    let rows = pg
        .psql_url(&url, "select x from survivor")
        .unwrap_or_else(|e| panic!("after start_again: {e}"));
    assert_eq!(rows.trim(), "42");

    pg.restart_same_port();
    assert_eq!(
        pg.psql_url(&url, "select current_user")
            .unwrap_or_else(|e| panic!("after restart_same_port: {e}"))
            .trim(),
        "ferricorn"
    );

    // The password never reaches the server's log.
    assert!(!pg.log().contains(PASSWORD), "{}", pg.log());
}

/// A trivial HTTP/1.1 upstream answering every request with `name`,
/// keeping connections alive; runs until the test process exits.
fn upstream(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || serve_connection(conn, name));
        }
    });
    addr
}

/// Answers requests on `conn` until the peer closes it.
fn serve_connection(conn: TcpStream, name: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(70)));
    let mut writer = conn.try_clone().expect("clone upstream stream");
    let mut reader = BufReader::new(conn);
    loop {
        let mut content_length = 0usize;
        let mut line = String::new();
        // The request line and headers.
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            if let Some((key, value)) = line.split_once(':') {
                if key.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{name}",
            name.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// One `GET /` through `addr` on a fresh connection: status line and body.
fn get(addr: SocketAddr) -> (String, String) {
    let mut conn = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect to nginx");
    conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).expect("read nginx response");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {raw:?}"));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

#[test]
fn nginx_spreads_requests_over_all_upstreams() {
    let upstreams = [upstream("upstream-a"), upstream("upstream-b")];
    let Some(nginx) = Nginx::start(&upstreams) else {
        return;
    };
    let mut seen = BTreeSet::new();
    for _ in 0..10 {
        let (status, body) = get(nginx.addr());
        assert_eq!(
            status,
            "HTTP/1.1 200 OK",
            "body {body:?}\n{}",
            nginx.error_log()
        );
        seen.insert(body);
    }
    assert_eq!(
        seen,
        BTreeSet::from(["upstream-a".to_owned(), "upstream-b".to_owned()]),
        "round robin must reach both upstreams\n{}",
        nginx.error_log()
    );
}
