//! Metrics (issue 14): the echo example under two workers with
//! `--metrics-bind`, scraped from the master as Prometheus would. The
//! counts are exact and summed over both workers, survive a worker killed
//! with SIGKILL and a HUP reload, name a worker killed by `--timeout`; a
//! scrape answers while every worker is stuck; the exposition passes
//! `promtool check metrics` and Python's `prometheus_client` parser; statsd
//! receives Gunicorn's names.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::*;

/// The master's metrics address, from its `Metrics at:` line.
fn metrics_addr(server: &Server) -> SocketAddr {
    assert!(
        server.wait_for_stderr("Metrics at: http://", Duration::from_secs(10)),
        "no Metrics at line:\n{}",
        server.stderr()
    );
    let log = server.stderr();
    let rest = log.split("Metrics at: http://").nth(1).unwrap();
    rest.split('/').next().unwrap().parse().unwrap()
}

/// One scrape: status, content type, body.
fn scrape_with(addr: SocketAddr, path: &str, accept: &str) -> (u16, String, String) {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap_or("")
        .to_string();
    (status, ctype, body.to_string())
}

fn scrape(addr: SocketAddr) -> String {
    let (status, _, body) = scrape_with(addr, "/metrics", "text/plain");
    assert_eq!(status, 200);
    body
}

/// The samples of a text exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn value(addr: SocketAddr, key: &str) -> f64 {
    samples(&scrape(addr)).get(key).copied().unwrap_or(0.0)
}

/// Waits (at most 10 s) until the scraped `key` equals `want`; the last
/// value seen.
fn wait_value(addr: SocketAddr, key: &str, want: f64) -> f64 {
    let mut last = 0.0;
    wait_until(Duration::from_secs(10), || {
        last = value(addr, key);
        last == want
    });
    last
}

const OK: &str = "ferricorn_http_requests_total{code=\"200\"}";

#[test]
fn counts_are_exact_across_workers_and_never_go_back() {
    let server = Server::echo(&["-w", "2", "--metrics-bind", "127.0.0.1:0"]);
    let metrics = metrics_addr(&server);
    let n = 300;
    let pids: Vec<i64> = (0..n).map(|_| echo_pid(server.addr())).collect();
    assert_eq!(tally(pids).len(), 2, "both workers served");
    assert_eq!(wait_value(metrics, OK, n as f64), n as f64);
    assert_eq!(value(metrics, "ferricorn_workers"), 2.0);
    assert_eq!(value(metrics, "ferricorn_connections_total"), n as f64);

    // A worker killed outright: what it counted stays.
    let victim = children_of(server.pid())[0];
    send_signal(victim, Signal::SIGKILL);
    let crash = "ferricorn_worker_exits_total{reason=\"crash\"}";
    assert_eq!(wait_value(metrics, crash, 1.0), 1.0);
    assert_eq!(value(metrics, OK), n as f64);

    // A reload replaces both: still nothing lost, and more counted after.
    wait_until(Duration::from_secs(10), || {
        children_of(server.pid()).len() == 2
    });
    server.signal(Signal::SIGHUP);
    let reloaded = "ferricorn_worker_exits_total{reason=\"reload\"}";
    assert_eq!(wait_value(metrics, reloaded, 2.0), 2.0);
    assert_eq!(value(metrics, "ferricorn_reloads_total"), 1.0);
    assert_eq!(value(metrics, OK), n as f64);
    for _ in 0..10 {
        echo_pid(server.addr());
    }
    assert_eq!(wait_value(metrics, OK, (n + 10) as f64), (n + 10) as f64);
}

#[test]
fn a_scrape_answers_while_the_worker_is_stuck_and_timeouts_are_named() {
    let server = Server::echo(&["-w", "1", "--timeout", "3", "--metrics-bind", "127.0.0.1:0"]);
    let metrics = metrics_addr(&server);
    let mut stuck = server.connect();
    stuck.send(get("/block?s=30"));
    std::thread::sleep(Duration::from_millis(500));
    // The only worker is stuck; the master answers.
    let started = Instant::now();
    let body = scrape(metrics);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a scrape took {:?}",
        started.elapsed()
    );
    assert!(body.contains("ferricorn_workers 1"), "{body}");
    // The stuck worker's heartbeat thread still reports its request.
    assert_eq!(
        wait_value(metrics, "ferricorn_http_requests_in_flight", 1.0),
        1.0
    );
    let timeout = "ferricorn_worker_exits_total{reason=\"timeout\"}";
    assert_eq!(
        wait_value(metrics, timeout, 1.0),
        1.0,
        "{}",
        server.stderr()
    );
    assert_eq!(
        value(metrics, "ferricorn_worker_exits_total{reason=\"crash\"}"),
        0.0
    );
    drop(stuck);
}

fn promtool() -> Option<std::path::PathBuf> {
    let found = ["promtool", "/usr/bin/promtool"]
        .iter()
        .map(Path::new)
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .map(Path::to_path_buf);
    if found.is_none() {
        skip_or_fail("promtool is not installed (Debian: `apt-get install prometheus`, or `bench/install-tools.sh --ci`)");
    }
    found
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_exposition_passes_promtool_and_an_independent_parser() {
    let server = Server::echo(&["-w", "2", "--metrics-bind", "127.0.0.1:0"]);
    let metrics = metrics_addr(&server);
    for _ in 0..20 {
        echo_pid(server.addr());
    }
    request(server.addr(), post("/", b"some body"));
    wait_value(metrics, OK, 21.0);
    let (status, ctype, text) = scrape_with(metrics, "/metrics", "text/plain;version=0.0.4");
    assert_eq!(status, 200);
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    let (_, om_type, om) = scrape_with(
        metrics,
        "/metrics",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    );
    assert!(
        om_type.starts_with("application/openmetrics-text"),
        "{om_type}"
    );
    assert!(om.ends_with("# EOF\n"));
    assert!(value(metrics, "ferricorn_http_request_body_bytes_total") >= 9.0);

    if let Some(promtool) = promtool() {
        let (ok, out) = run_with_stdin(Command::new(&promtool).args(["check", "metrics"]), &text);
        assert!(ok, "promtool check metrics:\n{out}\n---\n{text}");
    }

    // Python's prometheus_client, the reference parser of both formats.
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/.venv/bin/python");
    if !python.exists() {
        skip_or_fail("bench/.venv is missing; create it with `bash bench/python-env.sh`");
        return;
    }
    let script = "import sys\n\
        from prometheus_client.parser import text_string_to_metric_families as text\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as om\n\
        data = sys.stdin.read()\n\
        t, o = data.split('\\n=====\\n')\n\
        a = {f.name: (f.type, sum(1 for _ in f.samples)) for f in text(t)}\n\
        b = {f.name: (f.type, sum(1 for _ in f.samples)) for f in om(o)}\n\
        assert a['ferricorn_http_requests'][0] == 'counter', a\n\
        assert b['ferricorn_http_requests'][0] == 'counter', b\n\
        assert a['ferricorn_http_request_duration_seconds'] == ('histogram', 20), a\n\
        assert set(a) == set(b), (set(a) ^ set(b))\n\
        print(len(a))\n";
    let (ok, out) = run_with_stdin(
        Command::new(&python).args(["-c", script]),
        &format!("{text}\n=====\n{om}"),
    );
    assert!(ok, "prometheus_client refused the exposition:\n{out}");
    assert!(out.trim().parse::<usize>().unwrap() >= 15, "{out}");
}

#[test]
fn statsd_receives_gunicorns_metric_names() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let target = udp.local_addr().unwrap().to_string();
    let server = Server::echo(&[
        "-w",
        "2",
        "--statsd-host",
        &target,
        "--statsd-prefix",
        "myapp",
        "--dogstatsd-tags",
        "env:test",
    ]);
    for _ in 0..3 {
        echo_pid(server.addr());
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline
        && got
            .iter()
            .filter(|l: &&String| l.contains(".requests:"))
            .count()
            < 3
    {
        if let Ok(n) = udp.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    let has = |want: &str| got.iter().any(|l| l == want);
    assert!(has("myapp.gunicorn.requests:1|c|@1.0|#env:test"), "{got:?}");
    assert!(
        has("myapp.gunicorn.request.status.200:1|c|@1.0|#env:test"),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|l| l.starts_with("myapp.gunicorn.request.duration:")
                && l.ends_with("|ms|#env:test")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|l| l.starts_with("myapp.gunicorn.workers:") && l.ends_with("|g|#env:test")),
        "{got:?}"
    );
}

#[test]
fn a_bad_metrics_address_fails_at_start_naming_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let busy = run_to_exit(
        "echo",
        &["-b", "127.0.0.1:0", "--metrics-bind", &port],
        &[],
        Duration::from_secs(20),
    );
    assert_ne!(busy.status.code(), Some(0));
    assert!(busy.stderr.contains("--metrics-bind"), "{}", busy.stderr);

    let free = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let same = run_to_exit(
        "echo",
        &["-b", &free, "--metrics-bind", &free],
        &[],
        Duration::from_secs(20),
    );
    assert_ne!(same.status.code(), Some(0));
    assert!(
        same.stderr.contains("--metrics-bind") && same.stderr.contains("application address"),
        "{}",
        same.stderr
    );
}

#[test]
fn a_malformed_scrape_gets_a_400_and_a_scrape_flood_does_not_delay_supervision() {
    let server = Server::echo(&["-w", "1", "--timeout", "2", "--metrics-bind", "127.0.0.1:0"]);
    let metrics = metrics_addr(&server);
    let mut s = TcpStream::connect(metrics).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GARBAGE \x01\x02 nonsense\r\n\r\n").unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    assert!(raw.starts_with("HTTP/1.1 400 "), "{raw:?}");
    assert_eq!(scrape_with(metrics, "/nope", "*/*").0, 404);

    // Scrapers that connect and send nothing hold both scrape threads; the
    // master still finds a stuck worker within --timeout and replaces it.
    let idle: Vec<TcpStream> = (0..20)
        .filter_map(|_| TcpStream::connect(metrics).ok())
        .collect();
    let mut stuck = server.connect();
    stuck.send(get("/block?s=30"));
    // Killed long before its 30 s block would end (within --timeout on a
    // quiet machine; the bound leaves room for a loaded CI machine).
    let started = Instant::now();
    assert!(
        server.wait_for_stderr("WORKER TIMEOUT", Duration::from_secs(20)),
        "no timeout while scrapes hung:\n{}",
        server.stderr()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
    assert_eq!(scrape_with(metrics, "/metrics", "*/*").0, 200);
}

#[test]
fn status_prints_the_workers_and_the_answers() {
    let server = Server::echo(&["-w", "2", "--metrics-bind", "127.0.0.1:0"]);
    let metrics = metrics_addr(&server);
    for _ in 0..40 {
        echo_pid(server.addr());
    }
    wait_value(metrics, OK, 40.0);
    let addr = metrics.to_string();
    let out = run_to_exit("echo", &["--status", &addr], &[], Duration::from_secs(20));
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("2 workers"), "{}", out.stdout);
    for pid in children_of(server.pid()) {
        assert!(
            out.stdout.contains(&format!(" {pid} ")),
            "no worker {pid}:\n{}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("2xx 40"), "{}", out.stdout);
    assert!(out.stdout.contains("p99 "), "{}", out.stdout);

    let gone = run_to_exit(
        "echo",
        &["--status", "127.0.0.1:1"],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(gone.status.code(), Some(1));
    assert!(gone.stderr.contains("--metrics-bind"), "{}", gone.stderr);
}

/// A head hyper refuses itself (a field line without a colon: its own 400,
/// the service never sees it) counts as a refusal too.
#[test]
fn refusals_hyper_answers_itself_are_counted() {
    let server = Server::echo(&["-w", "1", "--metrics-bind", "127.0.0.1:0"]);
    let metrics = metrics_addr(&server);
    let bad = "ferricorn_http_rejected_total{reason=\"bad_request\"}";
    let before = value(metrics, bad);
    let answer = request(
        server.addr(),
        "GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n",
    );
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(wait_value(metrics, bad, before + 1.0), before + 1.0);
}
