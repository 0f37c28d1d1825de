//! The master's metrics endpoint (`--metrics-bind`): `GET /metrics` in
//! Prometheus's text format or OpenMetrics, and `GET /status`, a JSON view
//! of the workers for `--status`.
//!
//! Served by two plain threads of the master, never on the application's
//! listeners, so a scrape answers while every worker is busy or stuck. The
//! two threads are the whole concurrency: a flood of scrapes queues in the
//! listen backlog and cannot take CPU or memory from the master's
//! supervision, which runs on its own thread and only shares the sums
//! behind a mutex held for a copy. Each connection gets one request, read
//! and written within [`IO_TIMEOUT`]; anything but a well-formed `GET` or
//! `HEAD` of a known path gets its 4xx and the connection is closed.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::exposition;
use super::fleet::{self, Fleet};
use super::Family;
use crate::config::BindAddr;
use crate::{logging, sys};

/// How long one scrape may take to send its request and read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head read.
const MAX_HEAD: usize = 8192;
/// Threads answering scrapes.
const THREADS: usize = 2;

/// A bound metrics listener.
pub(crate) enum MetricsListener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

trait Conn: Read + Write {
    fn set_timeouts(&self, t: Duration) -> io::Result<()>;
}

impl Conn for std::net::TcpStream {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

impl Conn for std::os::unix::net::UnixStream {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

/// Binds `addr`. `app_binds` are the application's addresses: the metrics
/// address may not be one of them. The error names the flag.
pub(crate) fn bind(addr: &BindAddr, app_binds: &[BindAddr]) -> Result<MetricsListener, String> {
    let any_port = matches!(addr, BindAddr::Tcp(sa) if sa.port() == 0);
    if app_binds.contains(addr) && !any_port {
        return Err(format!(
            "--metrics-bind {addr}: this is also an application address (--bind); \
             metrics need an address of their own, e.g. 127.0.0.1:9100"
        ));
    }
    let fail = |e: io::Error| {
        format!(
            "--metrics-bind {addr}: cannot bind ({e}); choose a free address or stop what uses it"
        )
    };
    match addr {
        BindAddr::Tcp(sa) => TcpListener::bind(sa)
            .map(MetricsListener::Tcp)
            .map_err(fail),
        BindAddr::Unix(path) => {
            // A socket file left by a master that died is removed; one that
            // answers is in use.
            if path.exists() && std::os::unix::net::UnixStream::connect(path).is_err() {
                let _ = std::fs::remove_file(path);
            }
            UnixListener::bind(path)
                .map(MetricsListener::Unix)
                .map_err(fail)
        }
    }
}

impl MetricsListener {
    /// The address scrapers connect to, for the log.
    pub(crate) fn describe(&self) -> String {
        match self {
            MetricsListener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "?".into(), |a| format!("http://{a}")),
            MetricsListener::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
                .unwrap_or_else(|| "unix:?".into()),
        }
    }

    fn try_clone(&self) -> io::Result<MetricsListener> {
        Ok(match self {
            MetricsListener::Tcp(l) => MetricsListener::Tcp(l.try_clone()?),
            MetricsListener::Unix(l) => MetricsListener::Unix(l.try_clone()?),
        })
    }

    fn accept(&self) -> io::Result<Box<dyn Conn>> {
        Ok(match self {
            MetricsListener::Tcp(l) => Box::new(l.accept()?.0),
            MetricsListener::Unix(l) => Box::new(l.accept()?.0),
        })
    }
}

/// Starts the threads that answer scrapes from `fleet`'s sums.
pub(crate) fn serve(listener: MetricsListener, fleet: Arc<Mutex<Fleet>>) -> io::Result<()> {
    for i in 0..THREADS {
        let listener = listener.try_clone()?;
        let fleet = Arc::clone(&fleet);
        std::thread::Builder::new()
            .name(format!("metrics-{i}"))
            .spawn(move || loop {
                match listener.accept() {
                    Ok(mut conn) => {
                        if let Err(e) = answer(&mut *conn, &fleet) {
                            logging::debug(&format!("metrics: scrape failed: {e}"));
                        }
                    }
                    Err(e) => {
                        logging::warning(&format!("metrics: accept failed: {e}"));
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })?;
    }
    Ok(())
}

/// Reads one request head, within the deadline and the size limit.
fn read_head(conn: &mut dyn Conn) -> io::Result<Vec<u8>> {
    conn.set_timeouts(IO_TIMEOUT)?;
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD || Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "head too large or too slow",
            ));
        }
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

fn respond(
    conn: &mut dyn Conn,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    conn.write_all(&out)?;
    conn.flush()
}

fn answer(conn: &mut dyn Conn, fleet: &Mutex<Fleet>) -> io::Result<()> {
    let head = match read_head(conn) {
        Ok(h) => h,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return respond(
                conn,
                "400 Bad Request",
                "text/plain",
                b"bad request\n",
                false,
            );
        }
        Err(e) => return Err(e),
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let (method, path) = match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => (
            req.method.unwrap_or("").to_string(),
            req.path.unwrap_or("").to_string(),
        ),
        _ => {
            return respond(
                conn,
                "400 Bad Request",
                "text/plain",
                b"bad request\n",
                false,
            )
        }
    };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(
            conn,
            "405 Method Not Allowed",
            "text/plain",
            b"GET or HEAD\n",
            false,
        );
    }
    let accept = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("accept"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    match path.split('?').next().unwrap_or("") {
        "/metrics" => {
            let families = families(fleet);
            let om = exposition::wants_openmetrics(&accept);
            let body = exposition::render(&families, om);
            let ct = if om {
                exposition::OPENMETRICS
            } else {
                exposition::TEXT
            };
            respond(conn, "200 OK", ct, body.as_bytes(), head_only)
        }
        "/status" => {
            let body = status_json(fleet);
            respond(
                conn,
                "200 OK",
                "application/json",
                body.as_bytes(),
                head_only,
            )
        }
        _ => respond(
            conn,
            "404 Not Found",
            "text/plain",
            b"try /metrics or /status\n",
            head_only,
        ),
    }
}

/// Every family: copied under the fleet's lock (the master's control loop
/// takes it for each worker's report), `/proc` read after.
fn families(fleet: &Mutex<Fleet>) -> Vec<Family> {
    let (mut families, pids) = {
        let fleet = fleet.lock().unwrap_or_else(|p| p.into_inner());
        (fleet.fleet_families(), fleet.pids())
    };
    families.extend(fleet::process_families(&pids));
    families
}

/// The workers and the sums, for `--status`.
fn status_json(fleet: &Mutex<Fleet>) -> String {
    use serde_json::json;
    let workers: Vec<_> = {
        let fleet = fleet.lock().unwrap_or_else(|p| p.into_inner());
        fleet
            .live()
            .map(|(pid, w)| {
                let value = |name: &str| -> f64 {
                    w.snapshot
                        .families
                        .iter()
                        .find(|f| f.name == name)
                        .map_or(0.0, |f| f.series.iter().map(|s| s.value).sum())
                };
                json!({
                    "pid": pid,
                    "id": w.id,
                    "age_seconds": w.started.elapsed().as_secs_f64(),
                    "requests": value("ferricorn_http_requests_total"),
                    "in_flight": value("ferricorn_http_requests_in_flight"),
                })
            })
            .collect()
    };
    let workers: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            let pid = w["pid"].as_u64().unwrap_or(0) as u32;
            w["rss_bytes"] = json!(sys::rss_bytes(pid).unwrap_or(0));
            w
        })
        .collect();
    json!({ "workers": workers, "families": families(fleet) }).to_string()
}
