//! The prefork master (issue 4), driven with real signals: worker processes,
//! TERM/INT/HUP/TTIN/TTOU/USR2, worker liveness, recycling, the pidfile, and
//! zero failed requests under small bounded loads on loopback.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::*;

/// Waits until the master has exactly `n` live worker processes and returns
/// their pids.
fn wait_for_workers(server: &Server, n: usize, timeout: Duration) -> Vec<i32> {
    let mut kids = Vec::new();
    let ok = wait_until(timeout, || {
        kids = children_of(server.pid());
        kids.len() == n
    });
    assert!(
        ok,
        "expected {n} workers of master {}, found {kids:?}\n--- stderr ---\n{}",
        server.pid(),
        server.stderr()
    );
    kids
}

/// Waits until every worker serves: `n` workers and each answered a request.
fn start_prefork(args: &[&str], workers: usize) -> (Server, Vec<i32>) {
    start_prefork_of("echo", args, workers)
}

/// [`start_prefork`] for example `example` (`echo` or `axum`).
fn start_prefork_of(example: &str, args: &[&str], workers: usize) -> (Server, Vec<i32>) {
    let server = Server::example(example, args);
    let pids = wait_for_workers(&server, workers, Duration::from_secs(15));
    // The announcement comes from the master; make sure requests are served.
    assert_eq!(
        request(server.addr(), get_close("/")).status_line,
        "HTTP/1.1 200 OK"
    );
    (server, pids)
}

/// One outcome of a request made by [`Load`].
#[derive(Debug)]
enum Outcome {
    Served(i32),
    Failed(String),
}

/// A small bounded load: `threads` clients, each making sequential requests
/// on new connections (`Connection: close`), until stopped or `MAX_LOAD`
/// passes.
struct Load {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<Vec<Outcome>>>,
}

const MAX_LOAD: Duration = Duration::from_secs(30);

impl Load {
    fn start(addr: SocketAddr, threads: usize, path: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                thread::spawn(move || {
                    let started = Instant::now();
                    let mut outcomes = Vec::new();
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < MAX_LOAD {
                        outcomes.push(one_request(addr, path));
                        thread::sleep(Duration::from_millis(5));
                    }
                    outcomes
                })
            })
            .collect();
        Load { stop, handles }
    }

    fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        self.handles
            .into_iter()
            .flat_map(|h| h.join().expect("load thread"))
            .collect()
    }
}

fn one_request(addr: SocketAddr, path: &str) -> Outcome {
    let attempt = || -> Result<i32, String> {
        let stream = std::net::TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut reader = std::io::BufReader::new(stream);
        use std::io::Write;
        reader
            .get_mut()
            .write_all(get_close(path).as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let resp = read_response(&mut reader, false).map_err(|e| format!("read: {e}"))?;
        if resp.status_line != "HTTP/1.1 200 OK" {
            return Err(resp.status_line);
        }
        let json: serde_json::Value =
            serde_json::from_slice(&resp.body).map_err(|e| format!("json: {e}"))?;
        json["pid"]
            .as_i64()
            .map(|p| p as i32)
            .ok_or_else(|| "no pid".to_string())
    };
    match attempt() {
        Ok(pid) => Outcome::Served(pid),
        Err(e) => Outcome::Failed(e),
    }
}

fn served_pids(outcomes: &[Outcome]) -> BTreeSet<i32> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Served(pid) => Some(*pid),
            Outcome::Failed(_) => None,
        })
        .collect()
}

fn assert_no_failures(outcomes: &[Outcome], server: &Server) {
    let failed: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Failed(e) => Some(e.as_str()),
            Outcome::Served(_) => None,
        })
        .collect();
    assert!(
        outcomes.len() >= 20,
        "the load made only {} requests",
        outcomes.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}\n--- stderr ---\n{}",
        failed.len(),
        outcomes.len(),
        &failed[..failed.len().min(10)],
        server.stderr()
    );
}

#[test]
fn workers_are_processes_serving_the_master_sockets() {
    let (server, workers) = start_prefork(&["--workers", "2"], 2);
    assert!(!workers.contains(&server.pid()));
    let pids: BTreeSet<i32> = (0..40).map(|_| echo_pid(server.addr()) as i32).collect();
    assert!(
        pids.iter().all(|p| workers.contains(p)),
        "served by {pids:?}, workers are {workers:?}"
    );
}

#[test]
fn load_is_spread_over_the_workers() {
    let (server, workers) = start_prefork(&["--workers", "2"], 2);
    let load = Load::start(server.addr(), 4, "/");
    thread::sleep(Duration::from_secs(2));
    let outcomes = load.finish();
    assert_no_failures(&outcomes, &server);
    let counts = tally(outcomes.iter().filter_map(|o| match o {
        Outcome::Served(pid) => Some(*pid),
        Outcome::Failed(_) => None,
    }));
    let total = outcomes.len();
    for w in &workers {
        let n = counts.get(w).copied().unwrap_or(0);
        assert!(
            n * 5 >= total,
            "worker {w} served {n} of {total} requests: {counts:?}"
        );
    }
}

#[test]
fn term_lets_in_flight_requests_finish_and_exits_zero() {
    let (mut server, _) = start_prefork(&["--workers", "1", "--graceful-timeout", "10"], 1);
    let addr = server.addr();
    let in_flight = thread::spawn(move || {
        let mut conn = Conn::tcp(addr);
        conn.roundtrip(get("/sleep?s=2"))
    });
    // Give the request time to reach the worker.
    thread::sleep(Duration::from_millis(500));
    let termed = Instant::now();
    server.signal(Signal::SIGTERM);
    let resp = in_flight.join().unwrap();
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.json()["path"], "/sleep");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("master still running 10 s after TERM\n{}", server.stderr()));
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(termed.elapsed() < Duration::from_secs(8));
}

#[test]
fn term_stops_accepting_new_connections_while_draining() {
    let (mut server, _) = start_prefork(&["--workers", "1", "--graceful-timeout", "10"], 1);
    let addr = server.addr();
    let in_flight = thread::spawn(move || Conn::tcp(addr).roundtrip(get("/sleep?s=2")));
    thread::sleep(Duration::from_millis(500));
    server.signal(Signal::SIGTERM);
    thread::sleep(Duration::from_millis(500));
    // While the old request drains, a new one is not served.
    let late = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map(|s| {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut reader = std::io::BufReader::new(s);
        use std::io::Write;
        let _ = reader.get_mut().write_all(get_close("/late").as_bytes());
        read_response(&mut reader, false)
    });
    if let Ok(Ok(resp)) = &late {
        panic!("a connection made after TERM was served: {resp:?}");
    }
    assert_eq!(in_flight.join().unwrap().status_line, "HTTP/1.1 200 OK");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("master exits after TERM");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn usr1_reopens_the_access_log() {
    let log = TempFile(temp_path("usr1", "log"));
    let rotated = TempFile(temp_path("usr1-rotated", "log"));
    let (server, _) = start_prefork(
        &[
            "--workers",
            "1",
            "--access-logfile",
            log.path().to_str().unwrap(),
        ],
        1,
    );
    let logged = |path: &std::path::Path, needle: &str| {
        wait_until(Duration::from_secs(3), || {
            std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle))
        })
    };
    request(server.addr(), get_close("/before-rotation"));
    assert!(logged(log.path(), "/before-rotation"));
    std::fs::rename(log.path(), rotated.path()).unwrap();
    server.signal(Signal::SIGUSR1);
    // The reopen is asynchronous: keep asking until a line lands in the new file.
    assert!(
        wait_until(Duration::from_secs(5), || {
            request(server.addr(), get_close("/after-rotation"));
            logged(log.path(), "/after-rotation")
        }),
        "no line in a new {} after USR1\n{}",
        log.path().display(),
        server.stderr()
    );
    let old = std::fs::read_to_string(rotated.path()).unwrap();
    assert!(old.contains("/before-rotation"));
}

#[test]
fn term_kills_what_remains_after_the_graceful_timeout() {
    let (mut server, _) = start_prefork(&["--workers", "1", "--graceful-timeout", "1"], 1);
    let addr = server.addr();
    let in_flight = thread::spawn(move || {
        let mut conn = Conn::tcp(addr);
        conn.send(get("/sleep?s=20"));
        conn.try_response()
    });
    thread::sleep(Duration::from_millis(500));
    let termed = Instant::now();
    server.signal(Signal::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(8))
        .unwrap_or_else(|| panic!("master still running 8 s after TERM with --graceful-timeout 1"));
    assert!(
        termed.elapsed() < Duration::from_secs(5),
        "{:?}",
        termed.elapsed()
    );
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(
        in_flight.join().unwrap().is_err(),
        "the 20 s request cannot have completed"
    );
}

#[test]
fn int_stops_quickly() {
    let (mut server, workers) = start_prefork(&["--workers", "1", "--graceful-timeout", "30"], 1);
    let addr = server.addr();
    let in_flight = thread::spawn(move || {
        let mut conn = Conn::tcp(addr);
        conn.send(get("/sleep?s=20"));
        conn.try_response()
    });
    thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    server.signal(Signal::SIGINT);
    server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("master still running 5 s after INT\n{}", server.stderr()));
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(in_flight.join().unwrap().is_err());
    assert!(wait_until(Duration::from_secs(3), || workers
        .iter()
        .all(|w| !process_alive(*w))));
}

#[test]
fn quit_stops_quickly() {
    let (mut server, _) = start_prefork(&["--workers", "1"], 1);
    server.signal(Signal::SIGQUIT);
    assert!(
        server.wait_exit(Duration::from_secs(5)).is_some(),
        "master still running 5 s after QUIT"
    );
}

#[test]
fn hup_reloads_with_new_workers_and_zero_failed_requests() {
    hup_reloads_with_zero_failed_requests("echo");
}

#[test]
fn axum_hup_reloads_with_new_workers_and_zero_failed_requests() {
    hup_reloads_with_zero_failed_requests("axum");
}

fn hup_reloads_with_zero_failed_requests(example: &str) {
    let (server, old) = start_prefork_of(example, &["--workers", "2"], 2);
    let load = Load::start(server.addr(), 3, "/");
    thread::sleep(Duration::from_millis(500));
    server.signal(Signal::SIGHUP);
    let mut now = Vec::new();
    let replaced = wait_until(Duration::from_secs(15), || {
        now = children_of(server.pid());
        now.len() == 2 && now.iter().all(|p| !old.contains(p))
    });
    thread::sleep(Duration::from_millis(500));
    let outcomes = load.finish();
    assert!(
        replaced,
        "workers not replaced: old {old:?}, now {now:?}\n{}",
        server.stderr()
    );
    assert_no_failures(&outcomes, &server);
    let pids = served_pids(&outcomes);
    assert!(
        now.iter().any(|p| pids.contains(p)),
        "no request was served by a new worker {now:?}: {pids:?}"
    );
}

/// What one keep-alive client of [`KeepAliveLoad`] saw.
#[derive(Debug, Default)]
struct KeepAliveOutcomes {
    outcomes: Vec<Outcome>,
    /// Responses that carried `Connection: close` (after which the client
    /// reconnects).
    closes: usize,
}

/// `threads` clients, each on one keep-alive connection, sending its next
/// request as soon as it has read a response (as wrk does, so a request is
/// on its way whenever the server might close). A connection closed after
/// a response with `Connection: close` is fine: the client reconnects. A
/// request that gets no response is a failure.
struct KeepAliveLoad(ClientThreads<KeepAliveOutcomes>);

impl KeepAliveLoad {
    fn start(addr: SocketAddr, threads: usize) -> KeepAliveLoad {
        KeepAliveLoad(ClientThreads::start(threads, move |stop: &AtomicBool| {
            keep_alive_client(addr, stop)
        }))
    }

    fn finish(self) -> KeepAliveOutcomes {
        let mut all = KeepAliveOutcomes::default();
        for one in self.0.finish() {
            all.outcomes.extend(one.outcomes);
            all.closes += one.closes;
        }
        all
    }
}

fn keep_alive_client(addr: SocketAddr, stop: &AtomicBool) -> KeepAliveOutcomes {
    use std::io::Write;
    let started = Instant::now();
    let mut seen = KeepAliveOutcomes::default();
    let mut conn: Option<(std::io::BufReader<std::net::TcpStream>, usize)> = None;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < MAX_LOAD {
        let (reader, served) = match &mut conn {
            Some(c) => c,
            None => match std::net::TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                Ok(s) => {
                    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                    conn.insert((std::io::BufReader::new(s), 0))
                }
                Err(e) => {
                    seen.outcomes.push(Outcome::Failed(format!("connect: {e}")));
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        let outcome = reader
            .get_mut()
            .write_all(get("/").as_bytes())
            .map_err(|e| format!("write: {e}"))
            .and_then(|()| read_response(reader, false).map_err(|e| format!("read: {e}")))
            .map_err(|e| {
                format!(
                    "request {} on its connection got no response: {e}",
                    *served + 1
                )
            });
        match outcome {
            Ok(resp) if resp.status_line == "HTTP/1.1 200 OK" => {
                *served += 1;
                let pid = resp.json()["pid"].as_i64().unwrap_or_default() as i32;
                seen.outcomes.push(Outcome::Served(pid));
                if resp.header_has_token("connection", "close") {
                    seen.closes += 1;
                    conn = None;
                }
            }
            Ok(resp) => {
                seen.outcomes.push(Outcome::Failed(resp.status_line));
                conn = None;
            }
            Err(e) => {
                seen.outcomes.push(Outcome::Failed(e));
                conn = None;
            }
        }
    }
    seen
}

/// The reload race with keep-alive clients (wrk, Nginx's upstream pool):
/// a draining worker used to close its idle keep-alive connections while
/// each client's next request was already on its way, one failed request
/// per connection. Now each connection serves one more request, answered
/// with `Connection: close`, and the client moves to a new worker.
#[test]
fn hup_twice_under_keep_alive_load_fails_no_request() {
    let (server, first) = start_prefork(&["--workers", "2"], 2);
    let load = KeepAliveLoad::start(server.addr(), 4);
    let mut retired = first;
    for round in 1..=2 {
        thread::sleep(Duration::from_millis(700));
        server.signal(Signal::SIGHUP);
        let mut now = Vec::new();
        let replaced = wait_until(Duration::from_secs(15), || {
            now = children_of(server.pid());
            now.len() == 2 && now.iter().all(|p| !retired.contains(p))
        });
        assert!(
            replaced,
            "HUP {round}: workers not replaced: old {retired:?}, now {now:?}\n{}",
            server.stderr()
        );
        retired.extend(now);
    }
    thread::sleep(Duration::from_millis(700));
    let seen = load.finish();
    assert_no_failures(&seen.outcomes, &server);
    assert!(
        seen.closes >= 4,
        "only {} responses said Connection: close: the drains did not reach the clients' connections",
        seen.closes
    );
    let current = children_of(server.pid());
    assert!(
        served_pids(&seen.outcomes)
            .iter()
            .any(|p| current.contains(p)),
        "no request was served by the workers of the last reload {current:?}"
    );
}

#[test]
fn hup_rereads_the_config_file() {
    let file = TempFile::new("hup", "toml", "limit_request_line = 4094\n");
    let (server, old) = start_prefork(
        &["--workers", "1", "--config", file.path().to_str().unwrap()],
        1,
    );
    let line = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(200)
    );
    assert_eq!(request(server.addr(), &line).status_line, "HTTP/1.1 200 OK");
    std::fs::write(file.path(), "limit_request_line = 100\n").unwrap();
    server.signal(Signal::SIGHUP);
    assert!(wait_until(Duration::from_secs(15), || {
        let now = children_of(server.pid());
        now.len() == 1 && now[0] != old[0]
    }));
    assert_eq!(
        request(server.addr(), &line).status_line,
        "HTTP/1.1 414 URI Too Long",
        "HUP did not apply the new limit from the config file"
    );
}

#[test]
fn ttin_and_ttou_change_the_worker_count() {
    let (server, _) = start_prefork(&["--workers", "2"], 2);
    server.signal(Signal::SIGTTIN);
    wait_for_workers(&server, 3, Duration::from_secs(10));
    server.signal(Signal::SIGTTIN);
    wait_for_workers(&server, 4, Duration::from_secs(10));
    server.signal(Signal::SIGTTOU);
    wait_for_workers(&server, 3, Duration::from_secs(10));
    // Standard signals do not queue: a second TTOU sent before the first is
    // delivered merges with it in the kernel, so wait between the two.
    server.signal(Signal::SIGTTOU);
    wait_for_workers(&server, 2, Duration::from_secs(10));
    server.signal(Signal::SIGTTOU);
    wait_for_workers(&server, 1, Duration::from_secs(10));
    // Never below one worker.
    server.signal(Signal::SIGTTOU);
    thread::sleep(Duration::from_secs(1));
    wait_for_workers(&server, 1, Duration::from_secs(5));
    assert_eq!(
        request(server.addr(), get_close("/")).status_line,
        "HTTP/1.1 200 OK"
    );
}

#[test]
fn ttou_under_load_fails_no_request() {
    let (server, _) = start_prefork(&["--workers", "3"], 3);
    let load = Load::start(server.addr(), 3, "/");
    thread::sleep(Duration::from_millis(300));
    server.signal(Signal::SIGTTOU);
    wait_for_workers(&server, 2, Duration::from_secs(10));
    thread::sleep(Duration::from_millis(300));
    assert_no_failures(&load.finish(), &server);
}

#[test]
fn killed_worker_is_replaced_and_the_master_keeps_serving() {
    let (server, workers) = start_prefork(&["--workers", "2"], 2);
    let load = Load::start(server.addr(), 2, "/");
    thread::sleep(Duration::from_millis(300));
    send_signal(workers[0], Signal::SIGKILL);
    let mut now = Vec::new();
    let replaced = wait_until(Duration::from_secs(10), || {
        now = children_of(server.pid());
        now.len() == 2 && !now.contains(&workers[0])
    });
    // Requests made after the replacement are all served.
    let outcomes = load.finish();
    assert!(
        replaced,
        "worker not replaced: {now:?}\n{}",
        server.stderr()
    );
    assert!(!outcomes.is_empty());
    for _ in 0..20 {
        assert!(echo_pid(server.addr()) > 0);
    }
    assert!(process_alive(server.pid()));
}

#[test]
fn blocked_worker_is_killed_and_the_log_names_the_request() {
    blocked_worker_is_killed_and_named("echo", "2");
}

/// As the issue asks of the axum example: `/block?s=30` with `--timeout 3`.
#[test]
fn axum_blocked_worker_is_killed_and_the_log_names_the_request() {
    blocked_worker_is_killed_and_named("axum", "3");
}

fn blocked_worker_is_killed_and_named(example: &str, timeout: &str) {
    let (server, workers) = start_prefork_of(example, &["--workers", "1", "--timeout", timeout], 1);
    let addr = server.addr();
    let stuck = thread::spawn(move || {
        let mut conn = Conn::tcp(addr);
        conn.set_read_timeout(Duration::from_secs(10));
        conn.send(get("/block?s=30"));
        conn.try_response()
    });
    let replaced = wait_until(Duration::from_secs(10), || {
        let now = children_of(server.pid());
        now.len() == 1 && now[0] != workers[0]
    });
    assert!(replaced, "blocked worker not replaced\n{}", server.stderr());
    let stderr = server.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("TIMEOUT") || l.contains("timed out") || l.contains("timeout"))
        .unwrap_or_else(|| panic!("no worker-timeout line in the log:\n{stderr}"));
    assert!(
        line.contains("GET"),
        "timeout line lacks the method: {line}"
    );
    assert!(
        line.contains("/block"),
        "timeout line lacks the path: {line}"
    );
    assert!(
        line.to_ascii_lowercase().contains("request") || line.contains("id"),
        "timeout line lacks the request id: {line}"
    );
    let _ = stuck.join();
    assert_eq!(
        request(server.addr(), get_close("/")).status_line,
        "HTTP/1.1 200 OK"
    );
}

#[test]
fn max_requests_recycles_workers_with_zero_failed_requests() {
    let (server, _) = start_prefork(&["--workers", "2", "--max-requests", "10"], 2);
    let load = Load::start(server.addr(), 3, "/");
    let mut seen = BTreeSet::new();
    // Until at least 3 generations of workers have served, bounded.
    let _ = wait_until(Duration::from_secs(15), || {
        seen.extend(children_of(server.pid()));
        seen.len() >= 6
    });
    let outcomes = load.finish();
    assert_no_failures(&outcomes, &server);
    let pids = served_pids(&outcomes);
    assert!(
        pids.len() >= 4,
        "only {} worker pids served {} requests with --max-requests 10",
        pids.len(),
        outcomes.len()
    );
    let counts = tally(outcomes.iter().filter_map(|o| match o {
        Outcome::Served(pid) => Some(*pid),
        Outcome::Failed(_) => None,
    }));
    // A request already accepted when the quota is reached is served, never
    // dropped (Gunicorn's threaded workers behave the same): with 3
    // concurrent clients, at most 2 beyond the quota.
    assert!(
        counts.values().all(|&n| n <= 10 + 2),
        "a worker served more than --max-requests plus what was in flight: {counts:?}"
    );
}

#[test]
fn pidfile_holds_the_master_pid_and_is_removed_on_exit() {
    let path = temp_path("pid", "pid");
    let _cleanup = TempFile(path.clone());
    let (mut server, _) = start_prefork(&["--workers", "1", "--pid", path.to_str().unwrap()], 1);
    let text = std::fs::read_to_string(&path).expect("pidfile written");
    assert_eq!(text.trim(), server.pid().to_string());
    server.signal(Signal::SIGTERM);
    server
        .wait_exit(Duration::from_secs(10))
        .expect("exit after TERM");
    assert!(!path.exists(), "pidfile left behind after a clean exit");
}

#[test]
fn usr2_then_term_upgrades_with_zero_failed_requests() {
    usr2_upgrades_with_zero_failed_requests("echo");
}

#[test]
fn axum_usr2_then_term_upgrades_with_zero_failed_requests() {
    usr2_upgrades_with_zero_failed_requests("axum");
}

fn usr2_upgrades_with_zero_failed_requests(example: &str) {
    let path = temp_path("usr2", "pid");
    let _cleanup = TempFile(path.clone());
    let upgraded = std::path::PathBuf::from(format!("{}.2", path.display()));
    let _cleanup2 = TempFile(upgraded.clone());
    let (mut server, old_workers) = start_prefork_of(
        example,
        &["--workers", "1", "--pid", path.to_str().unwrap()],
        1,
    );
    let old_master = server.pid();
    let load = Load::start(server.addr(), 2, "/");
    thread::sleep(Duration::from_millis(300));
    server.signal(Signal::SIGUSR2);
    // The new master writes PIDFILE.2 and is ready when it has a worker.
    let mut new_master = 0;
    assert!(
        wait_until(Duration::from_secs(15), || {
            new_master = std::fs::read_to_string(&upgraded)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            new_master > 0 && children_of(new_master).len() == 1
        }),
        "no upgraded master with a worker\n{}",
        server.stderr()
    );
    assert_ne!(new_master, old_master);
    // The new master's workers serve alongside the old ones; then TERM the old.
    thread::sleep(Duration::from_millis(300));
    server.signal(Signal::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("old master exits");
    assert_eq!(status.code(), Some(0));
    thread::sleep(Duration::from_millis(500));
    let outcomes = load.finish();
    assert_no_failures(&outcomes, &server);
    assert!(process_alive(new_master), "the upgraded master died");
    let new_workers = children_of(new_master);
    let pids = served_pids(&outcomes);
    assert!(
        new_workers.iter().any(|p| pids.contains(p)),
        "no request served by the new master's workers {new_workers:?}"
    );
    assert!(old_workers.iter().all(|p| !process_alive(*p)));
    // The pidfile is the new master's again.
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&path)
            .map(|t| t.trim() == new_master.to_string())
            .unwrap_or(false)
    }));
    // The new master is in our process group, so the Server's drop kills it;
    // make sure of it here as well.
    send_signal(new_master, Signal::SIGKILL);
}

#[test]
fn workers_exit_when_the_master_dies() {
    let (mut server, workers) = start_prefork(&["--workers", "2"], 2);
    send_signal(server.pid(), Signal::SIGKILL);
    server
        .wait_exit(Duration::from_secs(5))
        .expect("master killed");
    assert!(
        wait_until(Duration::from_secs(5), || workers
            .iter()
            .all(|w| !process_alive(*w))),
        "orphaned workers {workers:?} still alive 5 s after the master died"
    );
}

#[test]
fn process_titles_tell_master_from_worker() {
    let (server, workers) = start_prefork(&["--workers", "1", "--name", "itname"], 1);
    let title = |pid: i32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default()
    };
    let master = title(server.pid());
    let worker = title(workers[0]);
    assert!(master.contains("ferricorn: master [itname]"), "{master:?}");
    assert!(worker.contains("ferricorn: worker [itname]"), "{worker:?}");
}

/// The axum example's factory fails when its token layer cannot start (an
/// RS256 setting without its keys): exit code 3, the cause in the log.
#[test]
fn axum_factory_error_stops_the_master_with_code_3() {
    let done = run_to_exit(
        "axum",
        &["--bind", "127.0.0.1:0", "--workers", "2"],
        &[
            (
                "FERRICORN_AUTH_DB",
                temp_path("axum-fail", "sqlite3").to_str().unwrap(),
            ),
            ("FERRICORN_AUTH_ALGORITHM", "RS256"),
            ("FERRICORN_AUTH_SIGNING_KEY", "not a PEM key"),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(done.status.code(), Some(3), "stderr:\n{}", done.stderr);
    assert!(
        done.stderr.contains("auth setting") && done.stderr.contains("Worker failed to boot"),
        "the factory's error is not in the log:\n{}",
        done.stderr
    );
    assert!(
        !done.stderr.contains("not a PEM key"),
        "the log echoes the key:\n{}",
        done.stderr
    );
}

#[test]
fn a_worker_that_cannot_build_the_app_stops_the_master_with_code_3() {
    let done = run_to_exit(
        "echo",
        &["--bind", "127.0.0.1:0", "--workers", "2"],
        &[("ECHO_FAIL_TO_BUILD", "1")],
        Duration::from_secs(20),
    );
    assert_eq!(done.status.code(), Some(3), "stderr:\n{}", done.stderr);
    assert!(
        done.stderr.contains("ECHO_FAIL_TO_BUILD is set"),
        "the worker's error is not in the log:\n{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("could not be built") && done.stderr.contains("Stopping the master"),
        "the master does not say why it stops:\n{}",
        done.stderr
    );
    // Not a respawn loop: at most the first generation booted.
    assert!(
        done.stderr.matches("Booting worker").count() <= 2,
        "the master respawned failing workers:\n{}",
        done.stderr
    );
}

#[test]
fn max_worker_lifetime_recycles_with_a_reason_and_zero_failed_requests() {
    let (server, first) = start_prefork(&["--workers", "2", "--max-worker-lifetime", "1"], 2);
    let load = Load::start(server.addr(), 2, "/");
    let replaced = wait_until(Duration::from_secs(15), || {
        let now = children_of(server.pid());
        now.len() == 2 && now.iter().all(|pid| !first.contains(pid))
    });
    let outcomes = load.finish();
    assert!(replaced, "workers were not recycled\n{}", server.stderr());
    assert_no_failures(&outcomes, &server);
    assert!(
        server.stderr().contains("max-worker-lifetime"),
        "the log does not say why workers were recycled:\n{}",
        server.stderr()
    );
}

#[test]
fn max_worker_memory_recycles_with_a_reason() {
    // 1 MiB: every worker is above it, so each is recycled after three checks.
    let (server, first) = start_prefork(&["--workers", "1", "--max-worker-memory", "1"], 1);
    let replaced = wait_until(Duration::from_secs(15), || {
        let now = children_of(server.pid());
        now.len() == 1 && now[0] != first[0]
    });
    assert!(replaced, "the worker was not recycled\n{}", server.stderr());
    assert!(
        server.stderr().contains("max-worker-memory: RSS"),
        "the log does not say why the worker was recycled:\n{}",
        server.stderr()
    );
    assert_eq!(
        request(server.addr(), get_close("/")).status_line,
        "HTTP/1.1 200 OK"
    );
}

#[test]
fn systemd_notify_gets_ready_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let path = temp_path("notify", "sock");
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let path_str = path.to_str().unwrap().to_string();
    let mut server = Server::start_with(
        "echo",
        &["--bind", "127.0.0.1:0", "--workers", "2"],
        &[("NOTIFY_SOCKET", &path_str)],
        1,
    );
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("no sd_notify message");
    assert_eq!(&buf[..n], b"READY=1");
    server.signal(Signal::SIGTERM);
    let n = sock.recv(&mut buf).expect("no STOPPING message");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert_eq!(
        server
            .wait_exit(Duration::from_secs(10))
            .and_then(|s| s.code()),
        Some(0)
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn systemd_socket_activation_serves_the_passed_socket() {
    // systemd binds the socket, passes it as fd 3 and names the service's
    // process in LISTEN_PID; a small Python launcher plays systemd's part.
    use std::io::{BufRead, BufReader, Read, Write};
    let launcher = "import os, socket, sys\n\
        s = socket.socket()\n\
        s.bind(('127.0.0.1', 0)); s.listen(16)\n\
        print(s.getsockname()[1], flush=True)\n\
        os.dup2(s.fileno(), 3); os.set_inheritable(3, True)\n\
        os.environ['LISTEN_FDS'] = '1'\n\
        os.environ['LISTEN_PID'] = str(os.getpid())\n\
        os.execv(sys.argv[1], sys.argv[1:])\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", launcher])
        .arg(example_bin("echo"))
        .args(["--bind", "127.0.0.1:1", "--workers", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 is needed for this test");
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", port.trim()).parse().unwrap();
    let mut answer = String::new();
    let ok = wait_until(Duration::from_secs(15), || {
        std::net::TcpStream::connect(addr).is_ok_and(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(get_close("/").as_bytes());
            answer.clear();
            let _ = s.read_to_string(&mut answer);
            answer.starts_with("HTTP/1.1 200 OK")
        })
    });
    send_signal(child.id() as i32, Signal::SIGTERM);
    let status = child.wait().unwrap();
    assert!(ok, "the passed socket was not served: {answer:?}");
    assert_eq!(status.code(), Some(0));
}

/// `--user` / `--group`: each worker runs as that user and group, with no
/// supplementary groups, while the master keeps its identity (it must be
/// able to signal and replace its workers and re-exec on USR2). Needs root;
/// outside CI it is skipped without it, under CI that is a failure.
#[test]
fn workers_run_as_user_and_group() {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        assert!(!in_ci(), "--user/--group test needs root under CI");
        eprintln!("skipped: --user/--group needs root");
        return;
    }
    let server = Server::start(
        "hello",
        &["-w", "1", "--user", "nobody", "--group", "nogroup"],
    );
    assert_eq!(server.connect().roundtrip(get("/")).status, 200);
    let ids = |pid: i32, field: &str| -> String {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
        line[field.len()..]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let workers = children_of(server.pid());
    assert_eq!(workers.len(), 1, "one worker: {workers:?}");
    let worker = workers[0];
    // Real, effective, saved and filesystem ids all changed.
    assert_eq!(ids(worker, "Uid:"), "65534 65534 65534 65534");
    assert_eq!(ids(worker, "Gid:"), "65534 65534 65534 65534");
    assert_eq!(ids(worker, "Groups:"), "");
    assert_eq!(
        ids(server.pid(), "Uid:"),
        "0 0 0 0",
        "the master stays root"
    );
}
