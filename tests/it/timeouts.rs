//! Timeouts and failure isolation (issue 3, item 3): the request-head
//! deadline against slow clients, the keep-alive idle timeout, the
//! per-request deadline (504), and a panicking application (500).

use std::thread;
use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn slow_client_is_cut_off_while_others_are_served() {
    let server = Server::echo(&["--header-timeout", "1"]);
    let addr = server.addr();
    let mut slow = server.connect();
    let mut writer = slow.stream().try_clone().expect("clone stream");
    let started = Instant::now();
    // Trickle a request head one byte every 100 ms for up to 5 s.
    let trickle = thread::spawn(move || {
        use std::io::Write;
        let head = format!(
            "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: {}",
            "s".repeat(100)
        );
        for byte in head.bytes() {
            if writer.write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    // Meanwhile, ordinary requests are served promptly.
    thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let t = Instant::now();
        let resp = request(addr, get("/"));
        assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "served in {:?}",
            t.elapsed()
        );
    }
    // The slow connection is closed (optionally after a 408) around the 1 s
    // head deadline, long before its head would be complete.
    slow.set_read_timeout(Duration::from_secs(4));
    let got = slow.read_to_close();
    let closed = got.is_ok();
    let got = got.unwrap_or_default();
    let after = started.elapsed();
    assert!(closed, "slow client still connected after {after:?}");
    assert!(
        after < Duration::from_millis(2500),
        "slow client cut off only after {after:?} (--header-timeout 1)"
    );
    let answer = String::from_utf8_lossy(&got);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "unexpected answer to a slow client: {answer:?}"
    );
    trickle.join().unwrap();
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let server = Server::echo(&["--keep-alive", "1"]);
    let mut conn = server.connect();
    assert_eq!(conn.roundtrip(get("/")).status_line, "HTTP/1.1 200 OK");
    let idle_since = Instant::now();
    conn.set_read_timeout(Duration::from_secs(4));
    assert!(conn.is_closed(), "idle connection not closed after 4 s");
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(800) && idle < Duration::from_millis(2500),
        "idle connection closed after {idle:?} with --keep-alive 1"
    );
}

#[test]
fn keep_alive_default_is_two_seconds() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    assert_eq!(conn.roundtrip(get("/")).status_line, "HTTP/1.1 200 OK");
    let idle_since = Instant::now();
    conn.set_read_timeout(Duration::from_secs(5));
    assert!(conn.is_closed(), "idle connection not closed after 5 s");
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(1800) && idle < Duration::from_millis(3500),
        "idle connection closed after {idle:?} (Gunicorn's default keep-alive is 2 s)"
    );
}

#[test]
fn request_timeout_answers_504_and_logs_the_request() {
    let server = Server::echo(&["--request-timeout", "1"]);
    let started = Instant::now();
    let resp = request(server.addr(), get("/sleep?s=3"));
    let took = started.elapsed();
    assert_eq!(resp.status_line, "HTTP/1.1 504 Gateway Timeout");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "504 after {took:?} with --request-timeout 1"
    );
    assert!(
        server.wait_for_stderr("/sleep", Duration::from_secs(2)),
        "the error log does not name the timed-out request:\n{}",
        server.stderr()
    );
    // The worker still serves.
    assert_eq!(
        request(server.addr(), get("/")).status_line,
        "HTTP/1.1 200 OK"
    );
}

#[test]
fn request_timeout_is_off_by_default() {
    let server = Server::echo(&[]);
    let resp = request(server.addr(), get("/sleep?s=2"));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
}

#[test]
fn panic_is_an_empty_500_and_the_worker_keeps_serving() {
    let server = Server::echo(&[]);
    let mut conn = server.connect();
    let before = conn.roundtrip(get("/"));
    let pid = before.json()["pid"].as_i64().expect("pid") as i32;
    let resp = conn.roundtrip(get("/panic"));
    assert_eq!(resp.status_line, "HTTP/1.1 500 Internal Server Error");
    assert!(resp.body.is_empty(), "500 body: {:?}", resp.text());
    // A new connection is served, and by a process that survived the panic.
    let after = request(server.addr(), get("/"));
    assert_eq!(after.status_line, "HTTP/1.1 200 OK");
    assert!(
        process_alive(pid),
        "worker {pid} died of an application panic"
    );
    // Several panics in a row do not take the server down either.
    for _ in 0..5 {
        assert_eq!(
            request(server.addr(), get("/panic")).status_line,
            "HTTP/1.1 500 Internal Server Error"
        );
    }
    assert_eq!(
        request(server.addr(), get("/")).status_line,
        "HTTP/1.1 200 OK"
    );
    assert!(process_alive(pid));
}
