//! Starting real binaries and talking to them over real sockets.
//!
//! [`Server`] starts an example binary as a child in its own process group,
//! reads its stderr until every `Listening at:` line has appeared (no sleeps)
//! and parses the real addresses from them. Both output streams are drained
//! into buffers by threads, so the child never blocks on a full pipe and tests
//! can assert on log lines. Dropping a [`Server`] kills its whole process group
//! (the master and any workers) and reaps the child.
//!
//! [`Conn`] is a raw HTTP/1.x connection (TCP or Unix) with read and write
//! timeouts; [`read_response`] parses one response off it, framed by
//! Content-Length, chunked encoding or close, so tests can assert exact status
//! lines and exact framing.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use rustls::pki_types::pem::PemObject;

/// How long a server may take to print its `Listening at:` lines. Generous:
/// a debug build on a loaded 2-core CI machine starts slowly, and a server
/// that never announces fails the test rather than hanging it.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Default bound on any single socket read or write in the tests.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The path of an example binary built by `cargo test` / `cargo build
/// --examples`: `target/<profile>/examples/<name>`, found next to this test
/// binary (`target/<profile>/deps/it-HASH`).
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir.join("examples").join(name);
    assert!(
        bin.is_file(),
        "example binary {} is missing: run `cargo build --examples` (or a plain \
         `cargo test`, which builds the examples) before `cargo test --test it`",
        bin.display()
    );
    bin
}

/// A command for example `name` with a hermetic environment: settings that
/// the developer's shell may carry (`FERRICORN_*`, `WEB_CONCURRENCY`,
/// `FORWARDED_ALLOW_IPS`) are removed so defaults are defaults.
fn command(name: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = hermetic(Command::new(example_bin(name)), args, env);
    // The axum example's token layer opens ferricorn-auth's database in
    // each worker: unless a test names one, a database per test process
    // under the temp dir (never the working directory), with a fixed key.
    if name == "axum" && !env.iter().any(|(k, _)| *k == "FERRICORN_AUTH_DB") {
        static DB: OnceLock<PathBuf> = OnceLock::new();
        let db = DB.get_or_init(|| temp_path("axum-auth", "sqlite3"));
        cmd.env("FERRICORN_AUTH_DB", db)
            .env("FERRICORN_AUTH_SIGNING_KEY", AXUM_SIGNING_KEY);
    }
    cmd
}

/// The signing key the axum example gets when a test names none.
pub const AXUM_SIGNING_KEY: &str =
    "5ee0c1a1d8f4e2b7a9c3d6e0f1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4";

/// Strips the variables a developer's shell may carry, adds `args` and
/// `env`, pipes the output, and puts the child in its own process group, so
/// one killpg reaches the master and every worker it started.
fn hermetic(mut cmd: Command, args: &[&str], env: &[(&str, &str)]) -> Command {
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        if key_str.starts_with("FERRICORN_")
            || key_str == "WEB_CONCURRENCY"
            || key_str == "FORWARDED_ALLOW_IPS"
            || key_str == "LISTEN_FDS"
            || key_str == "LISTEN_PID"
            || key_str == "NOTIFY_SOCKET"
        {
            cmd.env_remove(&key);
        }
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    cmd
}

/// A fresh path under the temp dir, unique across tests running in parallel
/// and across test processes.
pub fn temp_path(tag: &str, ext: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    // Unix socket paths are limited to ~108 bytes: keep this short.
    std::env::temp_dir().join(format!("fc-{}-{}-{}.{}", tag, std::process::id(), n, ext))
}

/// Removes a file when dropped (temp config files, sockets, pidfiles).
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(tag: &str, ext: &str, contents: &str) -> TempFile {
        let path = temp_path(tag, ext);
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An address a server announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// Parses the address out of a `Listening at: http://HOST:PORT` or
/// `Listening at: unix:PATH` line (anything after the address, such as
/// Gunicorn's ` (PID)`, is ignored).
pub fn parse_listening_line(line: &str) -> Option<Addr> {
    let rest = &line[line.find("Listening at: ")? + "Listening at: ".len()..];
    let word = rest.split_whitespace().next()?;
    // A TLS bind is announced as https://, as Gunicorn does.
    if let Some(hostport) = word
        .strip_prefix("http://")
        .or_else(|| word.strip_prefix("https://"))
    {
        hostport.trim_end_matches('/').parse().ok().map(Addr::Tcp)
    } else {
        word.strip_prefix("unix:")
            .map(|p| Addr::Unix(PathBuf::from(p)))
    }
}

/// Output of a child, appended line by line by a drain thread.
#[derive(Default)]
struct Output {
    text: String,
    closed: bool,
}

#[derive(Default)]
struct Stream {
    out: Mutex<Output>,
    changed: Condvar,
}

impl Stream {
    fn drain(self: Arc<Self>, pipe: impl Read + Send + 'static) {
        thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let mut out = self.out.lock().unwrap();
                        out.text.push_str(&String::from_utf8_lossy(&line));
                        if !out.text.ends_with('\n') {
                            out.text.push('\n');
                        }
                        self.changed.notify_all();
                    }
                }
            }
            self.out.lock().unwrap().closed = true;
            self.changed.notify_all();
        });
    }

    fn text(&self) -> String {
        self.out.lock().unwrap().text.clone()
    }

    /// Waits until `pred` holds for the whole text so far, or the stream
    /// closes, or `timeout` passes. Returns whether `pred` held.
    fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut out = self.out.lock().unwrap();
        loop {
            if pred(&out.text) {
                return true;
            }
            let now = Instant::now();
            if out.closed || now >= deadline {
                return false;
            }
            out = self.changed.wait_timeout(out, deadline - now).unwrap().0;
        }
    }
}

/// A running server binary. Killed with its process group on drop.
pub struct Server {
    child: Child,
    stderr: Arc<Stream>,
    stdout: Arc<Stream>,
    addrs: Vec<Addr>,
    exited: Option<ExitStatus>,
}

/// How many `Listening at:` lines a command line should produce: one per
/// `--bind`/`-b`, or one for the default bind.
fn expected_binds(args: &[&str]) -> usize {
    let n = args
        .iter()
        .filter(|a| {
            let short_joined = a.starts_with("-b") && a.len() > 2 && !a.starts_with("--");
            **a == "-b" || **a == "--bind" || a.starts_with("--bind=") || short_joined
        })
        .count();
    n.max(1)
}

impl Server {
    /// Starts the `echo` example bound to `127.0.0.1:0` plus `args`.
    pub fn echo(args: &[&str]) -> Server {
        Server::example("echo", args)
    }

    /// Starts example `name` bound to `127.0.0.1:0` plus `args`: `echo`, or
    /// `axum`, which keeps echo's contract on every path it does not route.
    pub fn example(name: &str, args: &[&str]) -> Server {
        let mut all = vec!["--bind", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Server::start(name, &all)
    }

    /// Starts example `name` with exactly `args` and waits for one
    /// `Listening at:` line per `--bind`.
    pub fn start(name: &str, args: &[&str]) -> Server {
        Server::start_with(name, args, &[], expected_binds(args))
    }

    /// Starts example `name` with `args` and extra environment variables,
    /// waiting for `binds` `Listening at:` lines.
    pub fn start_with(name: &str, args: &[&str], env: &[(&str, &str)], binds: usize) -> Server {
        Server::start_command(command(name, args, env), &format!("{name} {args:?}"), binds)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Every address announced, in announcement order.
    pub fn addrs(&self) -> &[Addr] {
        &self.addrs
    }

    /// The first TCP address announced.
    pub fn addr(&self) -> SocketAddr {
        self.addrs
            .iter()
            .find_map(|a| match a {
                Addr::Tcp(a) => Some(*a),
                Addr::Unix(_) => None,
            })
            .expect("server announced no TCP address")
    }

    /// `http://HOST:PORT` for a real HTTP client.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr(), path_and_query)
    }

    /// A raw connection to the first TCP address.
    pub fn connect(&self) -> Conn<TcpStream> {
        Conn::tcp(self.addr())
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        self.stderr.wait_for(timeout, |t| t.contains(needle))
    }

    /// Sends `sig` to the server process (the master once there is one).
    pub fn signal(&self, sig: Signal) {
        send_signal(self.pid(), sig);
    }

    /// Waits up to `timeout` for the server to exit; `None` if it did not.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                // Let the drain threads take the last lines.
                self.stderr.wait_for(Duration::from_secs(2), |_| false);
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The group id is the child's pid (process_group(0)). Workers forked
        // by the master stay in the group, so they die too.
        let _ = signal::killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal to one process; panics if the process does not exist.
pub fn send_signal(pid: i32, sig: Signal) {
    signal::kill(Pid::from_raw(pid), sig)
        .unwrap_or_else(|e| panic!("kill({pid}, {sig:?}) failed: {e}"));
}

/// Whether a process exists (and is not a zombie).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_state(&stat).is_some_and(|s| s != 'Z' && s != 'X'),
        Err(_) => false,
    }
}

fn stat_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

fn stat_ppid(stat: &str) -> Option<i32> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The live (non-zombie) child processes of `pid`, from `/proc/*/stat`.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        if stat_ppid(&stat) == Some(pid) && stat_state(&stat).is_some_and(|s| s != 'Z') {
            kids.push(child);
        }
    }
    kids.sort_unstable();
    kids
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs example `name` to completion (for flags that make it exit: bad
/// values, `--check-config`, `--print-config`), killing it after `timeout`.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_to_exit(name: &str, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Finished {
    let mut child = command(name, args, env).spawn().expect("spawn");
    let stderr = Arc::new(Stream::default());
    let stdout = Arc::new(Stream::default());
    stderr.clone().drain(child.stderr.take().unwrap());
    stdout.clone().drain(child.stdout.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = signal::killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            panic!(
                "{name} {args:?} was expected to exit but still ran after {timeout:?}\n\
                 --- stderr ---\n{}\n--- stdout ---\n{}",
                stderr.text(),
                stdout.text()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    stderr.wait_for(Duration::from_secs(2), |_| false);
    stdout.wait_for(Duration::from_secs(2), |_| false);
    Finished {
        status,
        stdout: stdout.text(),
        stderr: stderr.text(),
    }
}

/// A raw HTTP connection with bounded reads and writes.
pub struct Conn<S: Read + Write> {
    reader: BufReader<S>,
}

impl Conn<TcpStream> {
    pub fn tcp(addr: SocketAddr) -> Conn<TcpStream> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            reader: BufReader::new(stream),
        }
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .unwrap();
    }
}

impl Conn<UnixStream> {
    pub fn unix(path: &Path) -> Conn<UnixStream> {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("connect to unix:{}: {e}", path.display()));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Conn {
            reader: BufReader::new(stream),
        }
    }
}

impl<S: Read + Write> Conn<S> {
    /// The underlying stream (for cloning a writer half).
    pub fn stream(&self) -> &S {
        self.reader.get_ref()
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let stream = self.reader.get_mut();
        stream.write_all(bytes.as_ref()).expect("write request");
        stream.flush().expect("flush");
    }

    /// Reads one response to a request that was not HEAD.
    pub fn response(&mut self) -> Response {
        read_response(&mut self.reader, false).unwrap_or_else(|e| panic!("reading a response: {e}"))
    }

    /// Reads one response to a HEAD request (no body follows).
    pub fn head_response(&mut self) -> Response {
        read_response(&mut self.reader, true)
            .unwrap_or_else(|e| panic!("reading a HEAD response: {e}"))
    }

    pub fn try_response(&mut self) -> io::Result<Response> {
        read_response(&mut self.reader, false)
    }

    /// Sends `request` and reads one response.
    pub fn roundtrip(&mut self, request: impl AsRef<[u8]>) -> Response {
        self.send(request);
        self.response()
    }

    /// Reads until the peer closes. `Ok(bytes)` on a clean EOF (or a reset,
    /// which also closes); `Err` on timeout.
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => Ok(rest),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(rest),
            Err(e) => Err(e),
        }
    }

    /// Whether the server closed the connection (EOF or reset) within the
    /// read timeout, with no bytes before the close.
    pub fn is_closed(&mut self) -> bool {
        matches!(self.read_to_close(), Ok(rest) if rest.is_empty())
    }
}

/// One parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The exact status line, without CRLF.
    pub status_line: String,
    pub status: u16,
    /// Header fields in arrival order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body after de-chunking.
    pub body: Vec<u8>,
    /// For a chunked body, the number of data chunks on the wire.
    pub chunks: Option<usize>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header contains `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {:?}\n{}",
                String::from_utf8_lossy(&self.body),
                self.status_line
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    let n = reader.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "line not ended by CRLF: {:?}",
                String::from_utf8_lossy(&line)
            ),
        ));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Parses one HTTP/1.x response: status line, header fields, and a body
/// framed as RFC 9112 section 6.3 says (no body for HEAD, 1xx, 204, 304;
/// chunked; Content-Length; else until close).
pub fn read_response(reader: &mut impl BufRead, head_request: bool) -> io::Result<Response> {
    let status_line = read_line(reader)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(invalid(format!("bad status line {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status code in {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let mut response = Response {
        status_line,
        status,
        headers,
        body: Vec::new(),
        chunks: None,
    };
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(response);
    }
    if response.header_has_token("transfer-encoding", "chunked") {
        let mut chunks = 0;
        loop {
            let size_line = read_line(reader)?;
            let size_hex = size_line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| invalid(format!("bad chunk size line {size_line:?}")))?;
            if size == 0 {
                // Trailer fields, then the final CRLF.
                while !read_line(reader)?.is_empty() {}
                break;
            }
            chunks += 1;
            let start = response.body.len();
            response.body.resize(start + size, 0);
            reader.read_exact(&mut response.body[start..])?;
            if !read_line(reader)?.is_empty() {
                return Err(invalid("chunk data not followed by CRLF".into()));
            }
        }
        response.chunks = Some(chunks);
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
        response.body.resize(len, 0);
        reader.read_exact(&mut response.body)?;
    } else {
        reader.read_to_end(&mut response.body)?;
    }
    Ok(response)
}

/// A minimal `GET path HTTP/1.1` request with a Host header.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

/// A `GET` that asks the server to close after answering.
pub fn get_close(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

/// A `POST` with a Content-Length body.
pub fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// `body` in chunked transfer coding, split into chunks of `chunk` bytes.
pub fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in body.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A `POST` with a chunked body.
pub fn post_chunked(path: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut req =
        format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    req.extend_from_slice(&chunked(body, chunk));
    req
}

/// Sends one request on a fresh TCP connection and reads one response.
pub fn request(addr: SocketAddr, raw: impl AsRef<[u8]>) -> Response {
    Conn::tcp(addr).roundtrip(raw)
}

/// The echo example's `headers` list as `(lowercased name, value)` pairs.
pub fn echo_headers(json: &serde_json::Value) -> Vec<(String, String)> {
    json["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("echo JSON has no `headers` list: {json}"))
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap_or_default().to_ascii_lowercase(),
                pair[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A blocking reqwest client with bounded timeouts and no proxy from the
/// environment.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(IO_TIMEOUT)
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// Whether this run is in CI, where a skipped test must fail instead.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports a missing capability: a failure in CI, a note elsewhere.
pub fn skip_or_fail(why: &str) {
    assert!(!in_ci(), "CI=true and this test cannot run: {why}");
    eprintln!("skipped: {why}");
}

/// The `pid` the echo example reports, over a fresh connection.
pub fn echo_pid(addr: SocketAddr) -> i64 {
    let resp = request(addr, get_close("/"));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK", "{resp:?}");
    resp.json()["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("echo JSON has no numeric pid: {}", resp.text()))
}

/// Counts by key, for per-worker distributions.
pub fn tally<K: std::hash::Hash + Eq>(items: impl IntoIterator<Item = K>) -> HashMap<K, usize> {
    let mut map = HashMap::new();
    for item in items {
        *map.entry(item).or_insert(0) += 1;
    }
    map
}

/// The path of a workspace binary (not an example) built by `cargo test
/// --workspace` or `cargo build --workspace`: `target/<profile>/<name>`,
/// next to this test binary's `deps` directory.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.is_file(),
        "binary {} is missing: run `cargo build --workspace` (or `cargo test \
         --workspace`, which builds it) before `cargo test --test it`",
        bin.display()
    );
    bin
}

/// A command for workspace binary `name`, hermetic and in its own process
/// group as [`command`] makes them for the examples (the same variables
/// removed, plus the auth service's `FERRICORN_AUTH_*`, which the
/// `FERRICORN_` prefix already covers).
pub fn bin_command(name: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    hermetic(Command::new(workspace_bin(name)), args, env)
}

impl Server {
    /// Starts `cmd` (from [`bin_command`], or any command whose child prints
    /// `Listening at:` lines on stderr) and waits for `binds` of them.
    /// `what` names it in failure messages.
    pub fn start_command(mut cmd: Command, what: &str, binds: usize) -> Server {
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let stderr = Arc::new(Stream::default());
        let stdout = Arc::new(Stream::default());
        stderr.clone().drain(child.stderr.take().unwrap());
        stdout.clone().drain(child.stdout.take().unwrap());
        let mut server = Server {
            child,
            stderr,
            stdout,
            addrs: Vec::new(),
            exited: None,
        };
        let announced = server.stderr.wait_for(START_TIMEOUT, |text| {
            text.lines().filter_map(parse_listening_line).count() >= binds
        });
        let text = server.stderr.text();
        server.addrs = text.lines().filter_map(parse_listening_line).collect();
        if !announced {
            let status = server.child.try_wait().ok().flatten();
            panic!(
                "{what} did not announce {binds} `Listening at:` line(s) within \
                 {START_TIMEOUT:?} (exit status: {status:?})\n--- stderr ---\n{text}\n--- stdout ---\n{}",
                server.stdout.text()
            );
        }
        server
    }
}

/// Whether a read or write error means the peer closed the connection
/// (cleanly or with a reset).
pub fn is_close(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Whether an error is a socket timeout (`SO_RCVTIMEO` reports either).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Client threads that run until told to stop (a load running while a test
/// signals the server); each returns what it saw.
pub struct ClientThreads<R> {
    stop: Arc<AtomicBool>,
    handles: Vec<thread::JoinHandle<R>>,
}

impl<R: Send + 'static> ClientThreads<R> {
    /// Starts `threads` threads, each running `client` with the stop flag.
    pub fn start<F>(threads: usize, client: F) -> ClientThreads<R>
    where
        F: Fn(&AtomicBool) -> R + Clone + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..threads)
            .map(|_| {
                let (stop, client) = (Arc::clone(&stop), client.clone());
                thread::spawn(move || client(&stop))
            })
            .collect();
        ClientThreads { stop, handles }
    }

    /// Stops the clients and returns what each saw.
    pub fn finish(self) -> Vec<R> {
        self.stop.store(true, Ordering::Relaxed);
        self.handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    }
}

/// How a raw-bytes test reaches the server: cleartext TCP, or TLS over TCP
/// (rustls, trusting one test CA, offering ALPN `http/1.1` only, so the
/// same HTTP/1.1 bytes are read by the same parser behind the handshake).
#[derive(Clone)]
pub enum Transport {
    Plain,
    Tls(Arc<rustls::ClientConfig>),
}

impl Transport {
    /// TLS trusting the CA certificate(s) in the PEM file `ca`.
    pub fn tls(ca: &Path) -> Transport {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca)
            .unwrap_or_else(|e| panic!("reading {}: {e}", ca.display()))
        {
            roots.add(cert.expect("a PEM certificate")).expect("a CA");
        }
        // The ring provider explicitly: the process default is not decided
        // by feature unification in a test binary.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Transport::Tls(Arc::new(config))
    }

    /// `plain` or `tls`, for test output.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Plain => "plain",
            Transport::Tls(_) => "tls",
        }
    }

    /// A connection to `addr` with `read_timeout` (writes: [`IO_TIMEOUT`]);
    /// over TLS the handshake is done here, and ALPN must have chosen
    /// `http/1.1`.
    pub fn connect(&self, addr: SocketAddr, read_timeout: Duration) -> io::Result<Wire> {
        self.connect_after(addr, read_timeout, &[])
    }

    /// [`Transport::connect`], writing `preamble` on the TCP stream first,
    /// in cleartext whatever the transport: a PROXY header comes before the
    /// TLS handshake, as a load balancer sends it.
    pub fn connect_after(
        &self,
        addr: SocketAddr,
        read_timeout: Duration,
        preamble: &[u8],
    ) -> io::Result<Wire> {
        let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(read_timeout))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        if !preamble.is_empty() {
            stream.write_all(preamble)?;
        }
        match self {
            Transport::Plain => Ok(Wire::Plain(stream)),
            Transport::Tls(config) => {
                let name = rustls::pki_types::ServerName::from(addr.ip());
                let mut conn = rustls::ClientConnection::new(Arc::clone(config), name)
                    .map_err(io::Error::other)?;
                while conn.is_handshaking() {
                    conn.complete_io(&mut stream)?;
                }
                let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
                if alpn.as_deref() != Some(b"http/1.1") {
                    return Err(io::Error::other(format!(
                        "ALPN chose {:?}, want http/1.1",
                        alpn.map(|a| String::from_utf8_lossy(&a).into_owned())
                    )));
                }
                Ok(Wire::Tls(Box::new(rustls::StreamOwned::new(conn, stream))))
            }
        }
    }
}

/// One connection made by a [`Transport`]: the bytes read and written are
/// HTTP's whichever it is.
pub enum Wire {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Wire {
    fn tcp(&self) -> &TcpStream {
        match self {
            Wire::Plain(s) => s,
            Wire::Tls(s) => &s.sock,
        }
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.tcp().set_read_timeout(Some(timeout)).unwrap();
    }

    /// Ends the client's stream: over TLS a close_notify first, so the
    /// server reads a clean end of the stream (as a FIN in cleartext)
    /// rather than a truncation.
    pub fn shutdown_write(&mut self) {
        if let Wire::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let _ = self.tcp().shutdown(std::net::Shutdown::Write);
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = match self {
            Wire::Plain(s) => return s.read(buf),
            Wire::Tls(s) => s,
        };
        // Not `StreamOwned::read`: it first retries sending what a failed
        // write left queued, so after the server closes on purpose (and a
        // write of bytes it never reads fails) every read would fail too.
        // In cleartext the failed bytes are just lost, and reads go on.
        loop {
            match s.conn.reader().read(buf) {
                // Plaintext, or 0 after the server's close_notify; an
                // `UnexpectedEof` when it closed without one.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            s.conn.read_tls(&mut s.sock)?;
            s.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.write(buf),
            Wire::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Plain(s) => s.flush(),
            Wire::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_lines() {
        assert_eq!(
            parse_listening_line("[2024-01-01] [1] [INFO] Listening at: http://127.0.0.1:8000 (1)"),
            Some(Addr::Tcp("127.0.0.1:8000".parse().unwrap()))
        );
        assert_eq!(
            parse_listening_line("Listening at: http://[::1]:41234"),
            Some(Addr::Tcp("[::1]:41234".parse().unwrap()))
        );
        assert_eq!(
            parse_listening_line("INFO Listening at: unix:/tmp/x.sock (12)"),
            Some(Addr::Unix("/tmp/x.sock".into()))
        );
        assert_eq!(parse_listening_line("Booting worker"), None);
    }

    #[test]
    fn counts_binds() {
        assert_eq!(expected_binds(&["--bind", "a", "-b", "b", "--bind=c"]), 3);
        assert_eq!(expected_binds(&["--workers", "2"]), 1);
    }

    #[test]
    fn parses_framings() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n\
                    HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno\
                    HTTP/1.0 200 OK\r\n\r\nrest";
        let mut r = BufReader::new(&raw[..]);
        let a = read_response(&mut r, false).unwrap();
        assert_eq!(
            (a.status, a.body.as_slice(), a.chunks),
            (200, &b"abcde"[..], Some(2))
        );
        let b = read_response(&mut r, false).unwrap();
        assert_eq!(
            (b.status_line.as_str(), b.body.as_slice()),
            ("HTTP/1.1 404 Not Found", &b"no"[..])
        );
        let c = read_response(&mut r, false).unwrap();
        assert_eq!(c.body, b"rest");
    }
}
