//! Slow and greedy clients: a crowd trickling request heads must not stop
//! ordinary requests, a worker's connection cap (`--worker-connections`)
//! answers 503 past it instead of queuing, and the body limit
//! (`--limit-request-body`) is enforced while the body streams in, not
//! after it has all been read.

use std::io::{self, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{getrlimit, setrlimit, Resource};

use crate::harness::{get, read_response, request, wait_until, Conn, Server, IO_TIMEOUT};

/// How many connections trickle their heads at once.
const TRICKLERS: usize = 1000;

/// How long they trickle while ordinary requests are timed.
const TRICKLE_FOR: Duration = Duration::from_secs(5);

/// The longest an ordinary request may take while the crowd trickles.
const PROMPT: Duration = Duration::from_secs(2);

/// Raises this process's open-file limit to at least `want` (up to the hard
/// limit), so that the test and the server it starts (which inherits the
/// limit) can hold a thousand sockets each. Returns the soft limit now set.
fn raise_nofile(want: u64) -> u64 {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft >= want {
        return soft;
    }
    let new = want.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, new, hard).expect("setrlimit");
    new
}

#[test]
fn slow_clients_trickling_heads_do_not_delay_ordinary_requests() {
    // Each trickler holds one socket here and one in the server.
    let limit = raise_nofile(TRICKLERS as u64 * 2 + 256);
    let tricklers = TRICKLERS.min((limit as usize).saturating_sub(256) / 2);
    assert!(
        tricklers >= 300,
        "RLIMIT_NOFILE hard limit {limit} is too low for this test"
    );
    // One worker, so the crowd and the ordinary requests share it; a cap
    // above the crowd, and a head deadline longer than the test, so every
    // trickler stays open throughout.
    let cap = (tricklers + 100).to_string();
    let server = Server::echo(&[
        "--workers",
        "1",
        "--worker-connections",
        &cap,
        "--header-timeout",
        "60",
    ]);
    let addr = server.addr();

    let mut crowd: Vec<TcpStream> = (0..tricklers)
        .map(|i| {
            let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
                .unwrap_or_else(|e| panic!("trickler {i}: connect: {e}"));
            s.set_nodelay(true).unwrap();
            s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
            s
        })
        .collect();
    let head = b"GET /trickle HTTP/1.1\r\nHost: slow\r\nX-Slow: ";
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut served = 0;
    let mut second = 0;
    while started.elapsed() < TRICKLE_FOR {
        // One byte a second from every trickler.
        if started.elapsed() >= Duration::from_secs(second) {
            let byte = head[(second as usize).min(head.len() - 1)];
            for (i, s) in crowd.iter_mut().enumerate() {
                s.write_all(&[byte])
                    .unwrap_or_else(|e| panic!("trickler {i} was cut off after {second} s: {e}"));
            }
            second += 1;
        }
        // Meanwhile, an ordinary request on a fresh connection.
        let t = Instant::now();
        let resp = request(addr, get("/ordinary"));
        let took = t.elapsed();
        assert_eq!(resp.status_line, "HTTP/1.1 200 OK", "{resp:?}");
        assert!(
            took < PROMPT,
            "an ordinary request took {took:?} with {tricklers} connections trickling"
        );
        worst = worst.max(took);
        served += 1;
        thread::sleep(Duration::from_millis(100));
    }
    println!(
        "slow clients: {served} ordinary requests served, slowest {worst:?}, while {tricklers} \
         connections trickled for {TRICKLE_FOR:?}"
    );
    assert!(
        served >= 10,
        "only {served} ordinary requests in {TRICKLE_FOR:?}"
    );
}

#[test]
fn slow_clients_worker_connections_cap_answers_503() {
    const CAP: usize = 5;
    let cap = CAP.to_string();
    let server = Server::echo(&[
        "--workers",
        "1",
        "--worker-connections",
        &cap,
        "--keep-alive",
        "30",
    ]);
    let addr = server.addr();

    // Fill the worker: each connection has been served once, so it is
    // certainly accepted, and stays open on keep-alive.
    let mut held: Vec<Conn<TcpStream>> = (0..CAP)
        .map(|i| {
            let mut c = Conn::tcp(addr);
            let resp = c.roundtrip(get("/hold"));
            assert_eq!(resp.status, 200, "held connection {i}: {resp:?}");
            c
        })
        .collect();

    // One more: refused with 503 promptly, not queued.
    let t = Instant::now();
    let mut extra = Conn::tcp(addr);
    let resp = extra.roundtrip(get("/over-the-cap"));
    assert_eq!(
        resp.status_line, "HTTP/1.1 503 Service Unavailable",
        "a connection past --worker-connections {CAP}: {resp:?}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "503 took {:?}",
        t.elapsed()
    );
    assert!(extra.is_closed(), "the refused connection stays open");

    // The held connections are still served.
    let resp = held[0].roundtrip(get("/still-held"));
    assert_eq!(resp.status, 200, "{resp:?}");

    // Free a slot: a new connection is served again.
    drop(held.pop());
    let served = wait_until(Duration::from_secs(3), || {
        let mut c = Conn::tcp(addr);
        c.roundtrip(get("/after-a-slot-freed")).status == 200
    });
    assert!(served, "no connection served after one of {CAP} closed");
}

#[test]
fn slow_clients_body_limit_is_enforced_while_streaming() {
    const LIMIT: u64 = 1024 * 1024;
    // Far more than the limit plus every socket buffer in between: if the
    // server buffered the whole body before refusing, the writer would
    // finish before any answer came.
    const TOTAL: u64 = 256 * 1024 * 1024;
    let limit = LIMIT.to_string();
    let server = Server::echo(&["--limit-request-body", &limit]);

    let stream = TcpStream::connect_timeout(&server.addr(), IO_TIMEOUT).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sent = AtomicU64::new(0);
    let answered = AtomicBool::new(false);

    let (resp, sent_when_answered, write_end) = thread::scope(|s| {
        let feeder = s.spawn(|| -> io::Result<()> {
            writer.write_all(
                b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            )?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(&chunk);
            frame.extend_from_slice(b"\r\n");
            while sent.load(Ordering::Relaxed) < TOTAL && !answered.load(Ordering::Relaxed) {
                writer.write_all(&frame)?;
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            writer.write_all(b"0\r\n\r\n")
        });
        let resp = read_response(&mut BufReader::new(&stream), false);
        let at = sent.load(Ordering::Relaxed);
        answered.store(true, Ordering::Relaxed);
        (resp, at, feeder.join().unwrap())
    });
    match resp {
        Ok(resp) => assert_eq!(
            resp.status_line, "HTTP/1.1 413 Payload Too Large",
            "a chunked body over --limit-request-body {LIMIT}: {resp:?}"
        ),
        // Closed without an answer also refuses, as long as it was early.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => {
            panic!("no answer to a body over the limit: {e} (sent {sent_when_answered} bytes)")
        }
    }
    assert!(
        sent_when_answered < TOTAL,
        "the refusal came only after the whole {TOTAL}-byte body was sent"
    );
    println!(
        "body limit: refused after {sent_when_answered} of {TOTAL} body bytes (limit {LIMIT}); \
         writer ended with {write_end:?}"
    );
}

#[test]
fn slow_clients_declared_body_over_the_limit_is_refused_before_it_is_sent() {
    let server = Server::echo(&["--limit-request-body", "1000"]);
    let mut conn = Conn::tcp(server.addr());
    // Only the head: the answer must not wait for a body it will refuse.
    conn.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
    let resp = conn.response();
    assert_eq!(
        resp.status_line, "HTTP/1.1 413 Payload Too Large",
        "{resp:?}"
    );
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// The one worker of a `--workers 1` server.
fn only_worker(server: &Server) -> i32 {
    let mut kids = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            kids = crate::harness::children_of(server.pid());
            kids.len() == 1
        }),
        "expected one worker, found {kids:?}"
    );
    kids[0]
}

#[test]
fn a_client_that_stops_reading_does_not_grow_the_worker() {
    let server = Server::echo(&["--workers", "1"]);
    let worker = only_worker(&server);
    assert_eq!(
        request(server.addr(), get("/")).status_line,
        "HTTP/1.1 200 OK"
    );
    let before = rss_kib(worker);
    // About a gigabyte of chunks that this client never reads.
    let mut stuck = TcpStream::connect(server.addr()).unwrap();
    stuck
        .write_all(get("/stream?n=100000000").as_bytes())
        .unwrap();
    thread::sleep(Duration::from_secs(3));
    let after = rss_kib(worker);
    // Backpressure: the response waits for the socket; nothing piles up.
    assert!(
        after < before + 32 * 1024,
        "worker RSS grew from {before} KiB to {after} KiB for a client that does not read"
    );
    let started = Instant::now();
    assert_eq!(
        request(server.addr(), get("/")).status_line,
        "HTTP/1.1 200 OK"
    );
    assert!(
        started.elapsed() < PROMPT,
        "the worker was held by the stuck client"
    );
    drop(stuck);
}

#[test]
fn ten_thousand_idle_keep_alive_connections_keep_memory_bounded() {
    const CONNS: usize = 10_000;
    // Headroom for the other tests of this binary running at once.
    let limit = raise_nofile(CONNS as u64 + 4096);
    assert!(
        limit >= CONNS as u64 + 1024,
        "RLIMIT_NOFILE hard limit {limit} is too low for {CONNS} connections"
    );
    let cap = (CONNS + 100).to_string();
    let server = Server::echo(&[
        "--workers",
        "1",
        "--worker-connections",
        &cap,
        "--keep-alive",
        "120",
    ]);
    let worker = only_worker(&server);
    assert_eq!(
        request(server.addr(), get("/")).status_line,
        "HTTP/1.1 200 OK"
    );
    let before = rss_kib(worker);
    let mut idle = Vec::with_capacity(CONNS);
    for i in 0..CONNS {
        let stream =
            TcpStream::connect(server.addr()).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut conn = BufReader::new(stream);
        conn.get_mut().write_all(get("/").as_bytes()).unwrap();
        let resp =
            read_response(&mut conn, false).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert_eq!(resp.status_line, "HTTP/1.1 200 OK", "connection {i}");
        idle.push(conn);
    }
    let after = rss_kib(worker);
    let per_conn = (after.saturating_sub(before)) * 1024 / CONNS as u64;
    eprintln!("{CONNS} idle keep-alive connections: worker RSS {before} KiB -> {after} KiB, {per_conn} bytes each");
    // Bounded: a small fixed cost per idle connection (hyper's buffers
    // shrink when idle), far from a request's worth of memory each.
    assert!(
        per_conn < 32 * 1024,
        "each idle connection costs {per_conn} bytes ({before} KiB -> {after} KiB)"
    );
    // All of them are still served on their own connection.
    for conn in idle.iter_mut().step_by(1000) {
        conn.get_mut().write_all(get("/").as_bytes()).unwrap();
        let resp = read_response(conn, false).unwrap();
        assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    }
}
