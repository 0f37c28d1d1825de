//! HTTP/2 (issue 16): ALPN `h2` over TLS and prior-knowledge h2c behind
//! `--http2c` next to HTTP/1.1 on one port, the existing limits, request
//! ids and the access log per stream, the `--h2-*` settings, GOAWAY with
//! in-flight streams completing on TERM and HUP, h2load over TLS and h2c,
//! and the hardening against the known HTTP/2 attacks (rapid reset,
//! CONTINUATION flood, HPACK bomb, SETTINGS and PING floods, window
//! starvation), each judged by `h2_attacks.py` over raw sockets while an
//! ordinary HTTP/1.1 client of the same worker keeps being served.
//!
//! The clients are real tools: `curl` (nghttp2), `h2load` (Debian
//! `nghttp2-client`) and bench/.venv's Python with the `h2` package. A
//! missing tool skips the test, or fails it under `CI=true`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::*;
use crate::tls::{
    curl, curl_or_skip, https_url, run_bounded, tls_echo, tool_or_skip, venv_python_or_skip,
    CurlOut, Pki, TlsServer,
};

/// `curl` with HTTP/2 support (nghttp2), or `None` after the skip.
fn curl_h2_or_skip() -> Option<PathBuf> {
    let bin = curl_or_skip()?;
    let out = run_bounded(Command::new(&bin).arg("-V"), Duration::from_secs(10));
    if !out.stdout.contains("HTTP2") {
        skip_or_fail(&format!("curl has no HTTP/2 support:\n{}", out.stdout));
        return None;
    }
    Some(bin)
}

fn h2load_or_skip() -> Option<PathBuf> {
    tool_or_skip(
        "h2load",
        "Debian: `apt-get install nghttp2-client`, or `bench/install-tools.sh --ci`",
    )
}

/// bench/.venv's Python with the `h2` package, or `None` after the skip.
fn python_h2_or_skip() -> Option<PathBuf> {
    let python = venv_python_or_skip()?;
    let out = run_bounded(
        Command::new(&python).args(["-c", "import h2, hpack, hyperframe; print(h2.__version__)"]),
        Duration::from_secs(30),
    );
    if !out.status.success() {
        skip_or_fail(&format!(
            "bench/.venv has no `h2` package (bench/requirements.txt; `bash bench/python-env.sh`): {}",
            out.stderr
        ));
        return None;
    }
    Some(python)
}

fn attack_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/h2_attacks.py")
}

/// `http://ADDR/path`.
fn http_url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// curl over h2c with prior knowledge.
fn curl_h2c(curl_bin: &Path, addr: SocketAddr, path: &str, args: &[&str]) -> CurlOut {
    let mut all = vec!["--http2-prior-knowledge"];
    all.extend_from_slice(args);
    curl(curl_bin, &all, &http_url(addr, path))
}

/// What curl reports for each of several URLs fetched in one run (one
/// connection when it can reuse it).
#[derive(Debug)]
struct Transfer {
    code: u16,
    version: String,
    /// New connections this transfer made (0 = reused).
    connects: u32,
    /// The response's header block, from `-D`.
    headers: String,
}

impl Transfer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Runs one curl over `urls` with `args`; bodies are discarded.
fn curl_many(curl_bin: &Path, args: &[&str], urls: &[String]) -> (Vec<Transfer>, Finished) {
    let dir = temp_path("curlmany", "d");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(curl_bin);
    cmd.args(["-sS", "--max-time", "20"])
        .args(["-w", "##%{http_code} %{http_version} %{num_connects}\n"])
        .args(args);
    for (i, url) in urls.iter().enumerate() {
        cmd.arg("-o")
            .arg("/dev/null")
            .arg("-D")
            .arg(dir.join(format!("{i}.h")))
            .arg(url);
    }
    let out = run_bounded(&mut cmd, Duration::from_secs(40));
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("##"))
        .collect();
    // curl 7.88 writes every transfer's header block to the last `-D`
    // file, in transfer order (which is URL order without --parallel).
    let dump =
        std::fs::read_to_string(dir.join(format!("{}.h", urls.len() - 1))).unwrap_or_default();
    let blocks: Vec<&str> = dump
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .collect();
    let transfers = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut p = l.split_whitespace();
            Transfer {
                code: p.next().and_then(|c| c.parse().ok()).unwrap_or(0),
                version: p.next().unwrap_or("").to_string(),
                connects: p.next().and_then(|c| c.parse().ok()).unwrap_or(0),
                headers: blocks.get(i).map(|b| b.to_string()).unwrap_or_default(),
            }
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (transfers, out)
}

/// curl 7.88 cannot reuse a prior-knowledge h2c connection for a second
/// request ("Error in the HTTP2 framing layer" before it sends it: curl
/// issue 10634, fixed in 8.0), so the tests that need several streams on
/// one connection from curl run over TLS, h2 by ALPN.
struct TlsH2 {
    pki: Pki,
    server: TlsServer,
}

impl TlsH2 {
    fn start(extra: &[&str]) -> Option<TlsH2> {
        let pki = Pki::new()?;
        let server = tls_echo(&pki, extra);
        Some(TlsH2 { pki, server })
    }

    fn url(&self, path: &str) -> String {
        https_url(self.server.addr(), path)
    }

    fn urls(&self, paths: &[String]) -> Vec<String> {
        paths.iter().map(|p| self.url(p)).collect()
    }

    /// curl `--http2 --cacert CA` with `args`, over `paths`.
    fn curl_many(
        &self,
        curl_bin: &Path,
        args: &[&str],
        paths: &[String],
    ) -> (Vec<Transfer>, Finished) {
        let mut all = vec!["--http2", "--cacert", self.pki.ca.cert()];
        all.extend_from_slice(args);
        curl_many(curl_bin, &all, &self.urls(paths))
    }
}

fn h2c_echo(extra: &[&str]) -> Server {
    let mut args = vec!["--http2c"];
    args.extend_from_slice(extra);
    Server::echo(&args)
}

#[test]
fn h2c_prior_knowledge_and_http11_share_a_port_with_http2c() {
    let Some(curl_bin) = curl_h2_or_skip() else {
        return;
    };
    let server = h2c_echo(&[]);
    let out = curl_h2c(&curl_bin, server.addr(), "/h2c?a=1", &[]);
    assert!(out.ok(), "{out:?}\n{}", server.stderr());
    assert_eq!(out.http_version, "2", "{out:?}");
    let json = out.json();
    assert_eq!(json["version"], "HTTP/2.0", "{json}");
    assert_eq!(json["scheme"], "http", "{json}");
    assert_eq!(json["path"], "/h2c");
    assert_eq!(json["query"], "a=1");
    // HTTP/1.1 on the same port, raw and by curl.
    let resp = request(server.addr(), get_close("/h1"));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.json()["version"], "HTTP/1.1");
    let out = curl(&curl_bin, &["--http1.1"], &http_url(server.addr(), "/h1"));
    assert!(out.ok() && out.http_version == "1.1", "{out:?}");
    // A POST body over h2c.
    let out = curl_h2c(
        &curl_bin,
        server.addr(),
        "/post",
        &["--data-binary", "hello h2"],
    );
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.json()["body_len"], 8);
    assert_eq!(out.json()["method"], "POST");
}

#[test]
fn h2c_is_off_by_default() {
    let Some(curl_bin) = curl_h2_or_skip() else {
        return;
    };
    let server = Server::echo(&[]);
    let out = curl_h2c(&curl_bin, server.addr(), "/", &[]);
    assert!(
        !(out.ok() && out.http_version == "2"),
        "h2c was served without --http2c: {out:?}"
    );
    assert_eq!(
        request(server.addr(), get_close("/")).status_line,
        "HTTP/1.1 200 OK"
    );
}

#[test]
fn h2c_on_a_unix_socket_next_to_tls() {
    // `--http2c` is allowed when one bind is cleartext (here a Unix
    // socket); the TLS bind still speaks h2 by ALPN.
    let (Some(curl_bin), Some(pki)) = (curl_h2_or_skip(), Pki::new()) else {
        return;
    };
    let sock = temp_path("h2cunix", "sock");
    let _cleanup = TempFile(sock.clone());
    let unix_bind = format!("unix:{}", sock.display());
    let server = TlsServer::start(
        "echo",
        &[
            "-b",
            "127.0.0.1:0",
            "-b",
            &unix_bind,
            "--certfile",
            pki.server.cert(),
            "--keyfile",
            pki.server.key(),
            "--http2c",
        ],
    );
    let out = curl(
        &curl_bin,
        &[
            "--http2-prior-knowledge",
            "--unix-socket",
            sock.to_str().unwrap(),
        ],
        "http://localhost/unix-h2c",
    );
    assert!(
        out.ok() && out.http_version == "2",
        "{out:?}\n{}",
        server.stderr()
    );
    assert_eq!(out.json()["scheme"], "http");
    let out = curl(
        &curl_bin,
        &["--http2", "--cacert", pki.ca.cert()],
        &https_url(server.addr(), "/tls-h2"),
    );
    assert!(out.ok() && out.http_version == "2", "{out:?}");
    assert_eq!(out.json()["scheme"], "https");
}

#[test]
fn limit_request_line_applies_per_stream() {
    let Some(curl_bin) = curl_h2_or_skip() else {
        return;
    };
    let long = format!("/{}", "a".repeat(300));
    // h2c, one request each.
    let server = h2c_echo(&["--limit-request-line", "100"]);
    let out = curl_h2c(&curl_bin, server.addr(), &long, &[]);
    assert_eq!(
        (out.http_code, out.http_version.as_str()),
        (414, "2"),
        "a 300-byte path under --limit-request-line 100 (h2c): {out:?}\n{}",
        server.stderr()
    );
    assert!(curl_h2c(&curl_bin, server.addr(), "/short", &[]).ok());
    // TLS, two streams of one connection.
    let Some(tls) = TlsH2::start(&["--limit-request-line", "100"]) else {
        return;
    };
    let (t, out) = tls.curl_many(&curl_bin, &[], &[long, "/short".to_string()]);
    assert_eq!(t.len(), 2, "{t:?}\n{}", out.stderr);
    assert_eq!(
        (t[0].code, t[0].version.as_str()),
        (414, "2"),
        "a 300-byte path under --limit-request-line 100: {t:?}\n{}",
        tls.server.stderr()
    );
    assert_eq!((t[1].code, t[1].version.as_str()), (200, "2"), "{t:?}");
    eprintln!(
        "after the 414, the next stream reused the connection: {}",
        t[1].connects == 0
    );
}

#[test]
fn header_field_limits_apply_per_stream() {
    let Some(curl_bin) = curl_h2_or_skip() else {
        return;
    };
    let server = h2c_echo(&["--limit-request-fields", "5"]);
    let mut many = Vec::new();
    for i in 0..10 {
        many.push("-H".to_string());
        many.push(format!("x-field-{i}: v"));
    }
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let out = curl_h2c(&curl_bin, server.addr(), "/", &many);
    assert_eq!(
        (out.http_code, out.http_version.as_str()),
        (431, "2"),
        "10 fields under --limit-request-fields 5: {out:?}\n{}",
        server.stderr()
    );
    let out = curl_h2c(&curl_bin, server.addr(), "/", &["-H", "x-one: v"]);
    assert!(out.ok(), "{out:?}");

    let server = h2c_echo(&["--limit-request-field_size", "100"]);
    let big = format!("x-big: {}", "b".repeat(300));
    let out = curl_h2c(&curl_bin, server.addr(), "/", &["-H", &big]);
    assert_eq!(
        (out.http_code, out.http_version.as_str()),
        (431, "2"),
        "a 300-byte field under --limit-request-field_size 100: {out:?}\n{}",
        server.stderr()
    );
    let small = format!("x-small: {}", "s".repeat(50));
    assert!(curl_h2c(&curl_bin, server.addr(), "/", &["-H", &small]).ok());
}

#[test]
fn h2_max_header_list_size_is_enforced() {
    let Some(curl_bin) = curl_h2_or_skip() else {
        return;
    };
    let server = h2c_echo(&["--h2-max-header-list-size", "4096"]);
    let big = format!("x-big: {}", "b".repeat(6000));
    let out = curl_h2c(&curl_bin, server.addr(), "/", &["-H", &big]);
    assert_eq!(
        (out.http_code, out.http_version.as_str()),
        (431, "2"),
        "a 6000-byte field under --h2-max-header-list-size 4096: {out:?}\n{}",
        server.stderr()
    );
    let small = format!("x-small: {}", "s".repeat(1000));
    let out = curl_h2c(&curl_bin, server.addr(), "/", &["-H", &small]);
    assert!(out.ok(), "{out:?}");
}

#[test]
fn limit_request_body_applies_per_stream() {
    let Some(curl_bin) = curl_h2_or_skip() else {
        return;
    };
    let server = h2c_echo(&["--limit-request-body", "1000"]);
    let body = TempFile::new("h2body", "bin", &"x".repeat(5000));
    let at = format!("@{}", body.path().display());
    let out = curl_h2c(&curl_bin, server.addr(), "/big", &["--data-binary", &at]);
    assert_eq!(
        (out.http_code, out.http_version.as_str()),
        (413, "2"),
        "a 5000-byte body under --limit-request-body 1000: {out:?}\n{}",
        server.stderr()
    );
    let ok = TempFile::new("h2body", "bin", &"x".repeat(1000));
    let at = format!("@{}", ok.path().display());
    let out = curl_h2c(&curl_bin, server.addr(), "/ok", &["--data-binary", &at]);
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.json()["body_len"], 1000);
}

#[test]
fn every_stream_gets_its_own_request_id() {
    let Some(curl_bin) = curl_h2_or_skip() else {
        return;
    };
    let Some(tls) = TlsH2::start(&[]) else {
        return;
    };
    let paths: Vec<String> = (0..3).map(|i| format!("/id{i}")).collect();
    let (t, out) = tls.curl_many(&curl_bin, &[], &paths);
    assert_eq!(t.len(), 3, "{t:?}\n{}", out.stderr);
    assert!(t.iter().all(|t| t.code == 200 && t.version == "2"), "{t:?}");
    assert_eq!(
        t.iter().map(|t| t.connects).sum::<u32>(),
        1,
        "the three requests were not streams of one connection: {t:?}"
    );
    let ids: Vec<String> = t
        .iter()
        .map(|t| {
            t.header("x-request-id")
                .unwrap_or_else(|| panic!("no x-request-id on an h2 response: {}", t.headers))
        })
        .collect();
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        3,
        "request ids repeat across streams: {ids:?}"
    );
    // A sane id from the client is kept.
    let (t, _) = tls.curl_many(
        &curl_bin,
        &["-H", "x-request-id: trace-h2-7"],
        &["/given".to_string()],
    );
    assert_eq!(
        t[0].header("x-request-id").as_deref(),
        Some("trace-h2-7"),
        "{t:?}"
    );
    // And over h2c too (one request).
    let server = h2c_echo(&[]);
    let (t, _) = curl_many(
        &curl_bin,
        &["--http2-prior-knowledge", "-H", "x-request-id: trace-h2c-8"],
        &[http_url(server.addr(), "/given")],
    );
    assert_eq!((t[0].code, t[0].version.as_str()), (200, "2"), "{t:?}");
    assert_eq!(
        t[0].header("x-request-id").as_deref(),
        Some("trace-h2c-8"),
        "{t:?}"
    );
}

#[test]
fn access_log_has_one_line_per_stream() {
    let Some(curl_bin) = curl_h2_or_skip() else {
        return;
    };
    let Some(tls) = TlsH2::start(&["--access-logfile", "-"]) else {
        return;
    };
    let server = &tls.server;
    let paths: Vec<String> = ["/log-a", "/log-b", "/log-c"]
        .iter()
        .map(|p| p.to_string())
        .collect();
    let (t, out) = tls.curl_many(&curl_bin, &[], &paths);
    assert!(
        t.len() == 3 && t.iter().all(|t| t.code == 200 && t.version == "2"),
        "{t:?}\n{}",
        out.stderr
    );
    assert_eq!(t.iter().map(|t| t.connects).sum::<u32>(), 1, "{t:?}");
    let logged = wait_until(Duration::from_secs(5), || {
        let text = server.stdout();
        ["/log-a", "/log-b", "/log-c"]
            .iter()
            .all(|p| text.lines().any(|l| l.contains(p)))
    });
    let text = server.stdout();
    assert!(logged, "not one access-log line per stream:\n{text}");
    for p in ["/log-a", "/log-b", "/log-c"] {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(p)).collect();
        assert_eq!(lines.len(), 1, "{p}: {lines:?}");
        assert!(
            lines[0].contains(&format!("\"GET {p} HTTP/2")) && lines[0].contains("\" 200 "),
            "access-log line for an h2 stream: {}",
            lines[0]
        );
    }
}

#[test]
fn streams_of_one_connection_run_concurrently() {
    let Some(curl_bin) = curl_h2_or_skip() else {
        return;
    };
    let Some(tls) = TlsH2::start(&[]) else {
        return;
    };
    let paths: Vec<String> = (0..20).map(|i| format!("/sleep?s=1&i={i}")).collect();
    let started = Instant::now();
    let (t, out) = tls.curl_many(&curl_bin, &["--parallel", "--parallel-max", "20"], &paths);
    let took = started.elapsed();
    assert_eq!(t.len(), 20, "{t:?}\n{}", out.stderr);
    assert!(t.iter().all(|t| t.code == 200 && t.version == "2"), "{t:?}");
    assert_eq!(t.iter().map(|t| t.connects).sum::<u32>(), 1, "{t:?}");
    assert!(
        took < Duration::from_secs(4),
        "20 streams of /sleep?s=1 on one connection took {took:?}: not concurrent"
    );
}

/// Runs `h2_attacks.py CASE 127.0.0.1 PORT [ARG]` and returns its verdict.
fn run_script(python: &Path, case: &str, addr: SocketAddr, arg: Option<&str>) -> serde_json::Value {
    let mut cmd = Command::new(python);
    cmd.arg(attack_script())
        .args([case, &addr.ip().to_string(), &addr.port().to_string()])
        .args(arg);
    let out = run_bounded(&mut cmd, Duration::from_secs(90));
    let last = out.stdout.lines().last().unwrap_or_default();
    assert!(
        out.status.success(),
        "h2_attacks.py {case} failed: {:?}\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "h2_attacks.py {case}: no JSON verdict ({e}):\n{}\n{}",
            out.stdout, out.stderr
        )
    })
}

#[test]
fn h2_settings_advertise_the_flags() {
    let Some(python) = python_h2_or_skip() else {
        return;
    };
    let server = h2c_echo(&[]);
    let v = run_script(&python, "settings", server.addr(), None);
    assert_eq!(
        v["settings"]["MAX_CONCURRENT_STREAMS"], 100,
        "default --h2-max-concurrent-streams: {v}"
    );
    let server = h2c_echo(&[
        "--h2-max-concurrent-streams",
        "7",
        "--h2-initial-window-size",
        "1048576",
        "--h2-max-header-list-size",
        "16384",
    ]);
    let v = run_script(&python, "settings", server.addr(), None);
    let s = &v["settings"];
    assert_eq!(s["MAX_CONCURRENT_STREAMS"], 7, "{v}");
    assert_eq!(s["INITIAL_WINDOW_SIZE"], 1048576, "{v}");
    assert_eq!(s["MAX_HEADER_LIST_SIZE"], 16384, "{v}");
}

#[test]
fn h2_max_concurrent_streams_is_obeyed_by_curl() {
    let Some(curl_bin) = curl_h2_or_skip() else {
        return;
    };
    // With 2 streams a connection, curl spreads 6 parallel requests over
    // at least 3 connections, and all succeed.
    let Some(tls) = TlsH2::start(&["--h2-max-concurrent-streams", "2"]) else {
        return;
    };
    let paths: Vec<String> = (0..6).map(|i| format!("/sleep?s=1&i={i}")).collect();
    let (t, out) = tls.curl_many(&curl_bin, &["--parallel", "--parallel-max", "6"], &paths);
    assert!(
        t.len() == 6 && t.iter().all(|t| t.code == 200 && t.version == "2"),
        "{t:?}\n{}",
        out.stderr
    );
    let connects: u32 = t.iter().map(|t| t.connects).sum();
    assert!(
        connects >= 3,
        "6 parallel streams at 2 per connection used {connects} connection(s): {t:?}"
    );
}

#[test]
fn h2_max_concurrent_streams_is_enforced() {
    // A client that opens a third stream while two run is refused that
    // stream (RST_STREAM REFUSED_STREAM, RFC 9113 section 5.1.2); the two
    // complete.
    let Some(python) = python_h2_or_skip() else {
        return;
    };
    let server = h2c_echo(&["--h2-max-concurrent-streams", "2"]);
    let v = run_script(&python, "over_limit", server.addr(), Some("3"));
    assert_eq!(v["statuses"]["200"], 2, "{v}\n{}", server.stderr());
    assert_eq!(v["rst_codes"]["REFUSED_STREAM"], 1, "{v}");
}

/// Starts `h2_attacks.py inflight` for `path` and returns once it printed
/// `ready` (the server has read the request), with a receiver of the
/// verdict.
fn start_inflight(
    python: &Path,
    addr: SocketAddr,
    path: &str,
) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(python)
        .arg(attack_script())
        .args([
            "inflight",
            &addr.ip().to_string(),
            &addr.port().to_string(),
            path,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn h2_attacks.py");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(10));
    assert_eq!(
        ready.as_deref(),
        Ok("ready"),
        "h2_attacks.py inflight did not get ready"
    );
    (child, rx)
}

fn inflight_verdict(
    mut child: std::process::Child,
    rx: mpsc::Receiver<String>,
) -> serde_json::Value {
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("no verdict from h2_attacks.py inflight within 30 s");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad verdict ({e}): {line}"))
}

#[test]
fn term_sends_goaway_and_the_in_flight_stream_completes() {
    let Some(python) = python_h2_or_skip() else {
        return;
    };
    let mut server = h2c_echo(&["--workers", "1", "--graceful-timeout", "10"]);
    let (child, rx) = start_inflight(&python, server.addr(), "/sleep?s=2");
    let signalled = Instant::now();
    server.signal(Signal::SIGTERM);
    let v = inflight_verdict(child, rx);
    eprintln!("in-flight verdict: {v}");
    assert!(
        v["goaway"].is_string(),
        "no GOAWAY after TERM while a stream was in flight: {v}\n{}",
        server.stderr()
    );
    assert_eq!(
        v["status_1"],
        "200",
        "the in-flight stream did not complete: {v}\n{}",
        server.stderr()
    );
    assert_eq!(v["stream_1"], "end", "{v}");
    assert!(
        v["goaway_last_stream_id"].as_u64().unwrap_or(0) >= 1,
        "the GOAWAY does not cover the in-flight stream 1: {v}"
    );
    assert!(
        v["goaway_at"].as_f64().unwrap() <= v["stream_end_at"].as_f64().unwrap(),
        "GOAWAY came only after the stream ended (not at TERM): {v}"
    );
    let status = server
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the master still runs 15 s after TERM\n{}", server.stderr()));
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(
        signalled.elapsed() >= Duration::from_millis(1500),
        "exited before the stream ended"
    );
}

#[test]
fn hup_sends_goaway_and_the_in_flight_stream_completes() {
    let Some(python) = python_h2_or_skip() else {
        return;
    };
    let server = h2c_echo(&["--workers", "1", "--graceful-timeout", "10"]);
    let mut old = Vec::new();
    assert!(wait_until(Duration::from_secs(15), || {
        old = children_of(server.pid());
        old.len() == 1
    }));
    let (child, rx) = start_inflight(&python, server.addr(), "/sleep?s=2");
    server.signal(Signal::SIGHUP);
    let v = inflight_verdict(child, rx);
    eprintln!("in-flight verdict: {v}");
    assert!(
        v["goaway"].is_string(),
        "no GOAWAY after HUP while a stream was in flight: {v}\n{}",
        server.stderr()
    );
    assert_eq!(
        v["status_1"],
        "200",
        "the in-flight stream did not complete: {v}\n{}",
        server.stderr()
    );
    assert_eq!(v["stream_1"], "end", "{v}");
    // A new worker serves new connections.
    let mut now = Vec::new();
    assert!(
        wait_until(Duration::from_secs(15), || {
            now = children_of(server.pid());
            now.len() == 1 && !old.contains(&now[0])
        }),
        "worker not replaced after HUP: old {old:?}, now {now:?}"
    );
    assert_eq!(echo_pid(server.addr()), now[0] as i64);
}

/// Parses h2load's `requests: N total, N started, N done, N succeeded, F
/// failed, E errored, T timeout` line.
fn h2load_counts(out: &str) -> Option<(u64, u64, u64, u64, u64)> {
    let line = out.lines().find(|l| l.starts_with("requests:"))?;
    let num = |word: &str| -> Option<u64> {
        line.split(',')
            .find(|p| p.trim().ends_with(word))?
            .trim()
            .trim_start_matches("requests:")
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((
        num("total")?,
        num("succeeded")?,
        num("failed")?,
        num("errored")?,
        num("timeout")?,
    ))
}

fn run_h2load(h2load: &Path, url: &str) -> Finished {
    run_bounded(
        Command::new(h2load).args(["-n", "4000", "-c", "4", "-m", "100", url]),
        Duration::from_secs(120),
    )
}

fn assert_h2load_all_succeeded(out: &Finished, server: &Server, over: &str) {
    let counts = h2load_counts(&out.stdout);
    eprintln!("h2load {over}:\n{}", out.stdout);
    assert_eq!(
        counts,
        Some((4000, 4000, 0, 0, 0)),
        "h2load over {over}: {:?}\n{}\n{}\n--- server ---\n{}",
        out.status,
        out.stdout,
        out.stderr,
        server.stderr()
    );
    assert!(
        out.stdout.contains("Application protocol: h2"),
        "h2load over {over} did not speak h2:\n{}",
        out.stdout
    );
    assert!(out.stdout.contains("4000 2xx"), "{}", out.stdout);
}

#[test]
fn h2load_over_tls_all_requests_succeed() {
    let (Some(h2load), Some(pki)) = (h2load_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &[]);
    let out = run_h2load(&h2load, &https_url(server.addr(), "/"));
    assert_h2load_all_succeeded(&out, &server, "TLS");
}

#[test]
fn h2load_over_h2c_all_requests_succeed() {
    let Some(h2load) = h2load_or_skip() else {
        return;
    };
    let server = h2c_echo(&[]);
    let out = run_h2load(&h2load, &http_url(server.addr(), "/"));
    assert_h2load_all_succeeded(&out, &server, "h2c");
}

/// What the ordinary client saw and the worker's memory during an attack.
struct Bystander {
    latencies: Vec<Duration>,
    failures: Vec<String>,
    rss_before_kib: u64,
    rss_max_kib: u64,
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs `attack` while a plain HTTP/1.1 client (a fresh connection per
/// GET) keeps requesting from the same single worker and a sampler reads
/// the worker's VmRSS every 20 ms.
fn with_bystander<T>(server: &Server, worker: i32, attack: impl FnOnce() -> T) -> (T, Bystander) {
    let addr = server.addr();
    // Warm up the worker so the baseline includes its steady state.
    for _ in 0..50 {
        assert_eq!(request(addr, get_close("/warm")).status, 200);
    }
    let rss_before_kib = rss_kib(worker).expect("worker VmRSS");
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        thread::spawn(move || {
            let (mut latencies, mut failures) = (Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let outcome = std::panic::catch_unwind(|| {
                    let mut conn = Conn::tcp(addr);
                    conn.set_read_timeout(Duration::from_secs(5));
                    conn.send(get_close("/bystander"));
                    conn.try_response()
                });
                match outcome {
                    Ok(Ok(r)) if r.status == 200 => latencies.push(t.elapsed()),
                    Ok(Ok(r)) => failures.push(r.status_line),
                    Ok(Err(e)) => failures.push(e.to_string()),
                    Err(_) => failures.push("connect failed".into()),
                }
                thread::sleep(Duration::from_millis(5));
            }
            (latencies, failures)
        })
    };
    let sampler = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut max = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(worker) {
                    max = max.max(kib);
                }
                thread::sleep(Duration::from_millis(20));
            }
            max
        })
    };
    let result = attack();
    stop.store(true, Ordering::Relaxed);
    let (latencies, failures) = client.join().unwrap();
    let rss_max_kib = sampler.join().unwrap();
    (
        result,
        Bystander {
            latencies,
            failures,
            rss_before_kib,
            rss_max_kib,
        },
    )
}

fn p99(latencies: &[Duration]) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

/// Runs attack `case` against a one-worker h2c server started with
/// `extra` and checks the common requirements: the server ends the
/// connection (GOAWAY and/or close) within `limit_s` seconds of the start,
/// the worker survives with its RSS growth under `max_growth_mib`, and the
/// ordinary client got only 200s with p99 under 200 ms.
fn judge_attack(
    case: &str,
    extra: &[&str],
    arg: Option<&str>,
    limit_s: f64,
    max_growth_mib: u64,
) -> serde_json::Value {
    let Some(python) = python_h2_or_skip() else {
        return serde_json::Value::Null;
    };
    let mut args = vec!["--workers", "1"];
    args.extend_from_slice(extra);
    let server = h2c_echo(&args);
    let mut workers = Vec::new();
    assert!(wait_until(Duration::from_secs(15), || {
        workers = children_of(server.pid());
        workers.len() == 1
    }));
    let worker = workers[0];
    let addr = server.addr();
    let (v, seen) = with_bystander(&server, worker, || run_script(&python, case, addr, arg));
    let growth_mib = seen.rss_max_kib.saturating_sub(seen.rss_before_kib) / 1024;
    let p99 = if seen.latencies.is_empty() {
        Duration::MAX
    } else {
        p99(&seen.latencies)
    };
    eprintln!(
        "{case}: verdict {v}\n{case}: bystander {} ok, {} failed, p99 {p99:?}; worker RSS {} KiB -> max {} KiB",
        seen.latencies.len(),
        seen.failures.len(),
        seen.rss_before_kib,
        seen.rss_max_kib
    );
    let ended_at = v["ended_at"].as_f64();
    assert!(
        v["ended"] == true && ended_at.is_some_and(|t| t < limit_s),
        "{case}: the server did not send GOAWAY or close within {limit_s} s: {v}\n--- server ---\n{}",
        server.stderr()
    );
    assert_eq!(
        children_of(server.pid()),
        vec![worker],
        "{case}: the worker died (or was replaced)\n{}",
        server.stderr()
    );
    assert!(
        growth_mib < max_growth_mib,
        "{case}: worker RSS grew by {growth_mib} MiB ({} KiB -> {} KiB), limit {max_growth_mib} MiB",
        seen.rss_before_kib,
        seen.rss_max_kib
    );
    assert!(
        seen.failures.is_empty(),
        "{case}: the ordinary HTTP/1.1 client failed during the attack: {:?}",
        &seen.failures[..seen.failures.len().min(5)]
    );
    assert!(
        seen.latencies.len() >= 20,
        "{case}: the ordinary client got only {} responses",
        seen.latencies.len()
    );
    assert!(
        p99 < Duration::from_millis(200),
        "{case}: the ordinary client's p99 was {p99:?} during the attack"
    );
    assert_eq!(request(addr, get_close("/after")).status, 200);
    v
}

#[test]
fn rapid_reset_is_cut_off() {
    let v = judge_attack("rapid_reset", &[], None, 10.0, 64);
    if v.is_null() {
        return;
    }
    assert!(
        v["streams_opened_total"].as_u64().unwrap_or(0) >= 1000,
        "the attack opened too few streams to mean anything: {v}"
    );
}

#[test]
fn continuation_flood_is_cut_off() {
    let v = judge_attack("continuation_flood", &[], None, 10.0, 64);
    if v.is_null() {
        return;
    }
    assert!(
        v["responses"].as_u64().unwrap_or(0) <= 1,
        "the server answered the endless header block: {v}"
    );
}

#[test]
fn hpack_bomb_is_cut_off() {
    judge_attack("hpack_bomb", &[], None, 10.0, 64);
}

/// SETTINGS and PING floods (after one ordinary request, never reading
/// the acks): h2 answers from a bounded queue and stops reading when it is
/// full, so the flood stalls; the connection must then be closed within
/// about 10 s (the default `--header-timeout` is 10 s; 0.5 s of slack for
/// the measurement).
const FLOOD_LIMIT_S: f64 = 10.5;

#[test]
fn settings_flood_is_cut_off() {
    judge_attack("settings_flood", &[], None, FLOOD_LIMIT_S, 64);
}

#[test]
fn ping_flood_is_cut_off() {
    judge_attack("ping_flood", &[], None, FLOOD_LIMIT_S, 64);
}

#[test]
fn window_starvation_is_cut_off_without_buffering_the_response() {
    // A client that never opens its receive window holds a stream of a
    // ~70 MB response: the server may send the first 65535 bytes, must not
    // buffer the rest, and must cut the connection once --send-timeout
    // passes without the client taking any of it.
    let v = judge_attack(
        "window_starvation",
        &["--send-timeout", "3"],
        Some("/stream?n=5000000"),
        10.0,
        32,
    );
    if v.is_null() {
        return;
    }
    assert!(
        v["data_bytes"].as_u64().unwrap_or(0) <= 65535,
        "more DATA than the client's window allowed: {v}"
    );
}
