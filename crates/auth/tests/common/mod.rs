//! What the black-box tests of `ferricorn-auth` share: the binary run as
//! real processes (started on a port it picks, stopped with its workers,
//! every wait bounded) and the small arithmetic of hand-made tokens.

// Each test binary includes this module and uses a part of it.
#![allow(dead_code)]

pub mod django;
pub mod nginx;
pub mod postgres;

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

pub const BIN: &str = env!("CARGO_BIN_EXE_ferricorn-auth");

/// A child process in its own process group, stopped with the group on
/// drop (SIGTERM, then SIGKILL after five seconds): a master's workers go
/// with it whatever state the master is in.
pub struct Proc {
    pub child: Child,
    name: &'static str,
}

impl Proc {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
        let child = cmd
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc { child, name }
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.exited().is_none() {
            if Instant::now() > deadline {
                eprintln!("{} still running 5 s after SIGTERM; killing it", self.name);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The workers too, whatever the master did.
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A running `ferricorn-auth serve` and everything it has written to
/// stderr so far.
pub struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

/// Starts `cmd` (the binary with `serve -b 127.0.0.1:0` and its settings)
/// and waits, at most 30 s, for the address in its "Listening at" line.
/// Its stderr is drained into [`Server::log`] for as long as it runs, so it
/// never blocks on a full pipe.
pub fn serve(cmd: &mut Command) -> Server {
    let mut proc = Proc::spawn(
        "ferricorn-auth",
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = proc.child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("Listening at: ").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("ferricorn-auth did not print its Listening line in 30 s");
    // `https://` when the server was given --certfile.
    let addr = url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .parse()
        .unwrap_or_else(|e| panic!("listening address {url:?}: {e}"));
    Server { proc, addr, log }
}

/// Runs a command to completion (bounded by a watchdog) and returns its
/// standard output; panics with its output when it fails.
pub fn run(what: &str, cmd: &mut Command, stdin: &str) -> String {
    let out = run_bounded(what, cmd, stdin);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The hard limit on any one command, after which its process group is
/// killed: a hung tool fails the test instead of hanging it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` with `stdin` to completion and returns its output, killing
/// its process group after [`COMMAND_TIMEOUT`]. Never panics on a failed
/// command: callers decide what failure means.
pub fn run_bounded(what: &str, cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    // A writer thread: a child that does not read its stdin must not block
    // the test.
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_owned();
    std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(COMMAND_TIMEOUT) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            panic!("{what}: still running after {COMMAND_TIMEOUT:?}; killed");
        }
    }
}

/// Unpadded base64url, as JWT segments are written.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Now, in whole seconds since the epoch (token claims).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A fresh `jti`: 32 hex digits, never used before in any test process,
/// so no case is blacklisted by an earlier one.
pub fn jti() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:016x}{:016x}",
        now() as u64 ^ u64::from(std::process::id()) << 32,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A self-signed certificate for `127.0.0.1` and `localhost` (ECDSA P-256,
/// not a CA, so it is both the server's certificate and the client's one
/// trust anchor) and its key, made with `openssl` in `dir`: (cert, key).
/// `None` when `openssl` is missing, after reporting the skip (a failure
/// under `CI=true`, so CI cannot pass by skipping).
pub fn self_signed_cert(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    if Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        let why = "openssl is not installed (Debian: `apt-get install openssl`)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and this test cannot run: {why}"
        );
        eprintln!("skipping a TLS test: {why}");
        return None;
    }
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    run(
        "openssl req -x509",
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        "",
    );
    Some((cert, key))
}

/// A rustls client trusting the certificates of the PEM file `ca`, offering
/// `alpn` (ring as the provider, explicitly: a test binary's features do
/// not settle the process default).
pub fn tls_client(ca: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca)
        .unwrap_or_else(|e| panic!("reading {}: {e}", ca.display()))
    {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a trust anchor");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Over TLS with `config` to `addr`: the handshake (ALPN must choose
/// `http/1.1` when offered), then `raw` written, then everything read until
/// the server closes. A failed write is not an error by itself (a server
/// may answer before reading the whole body), as in cleartext.
pub fn tls_roundtrip(
    config: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    raw: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let mut sock = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(timeout)).unwrap();
    sock.set_write_timeout(Some(timeout)).unwrap();
    let name = rustls::pki_types::ServerName::from(addr.ip());
    let mut conn =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| format!("TLS handshake: {e}"))?;
    }
    if config.alpn_protocols.iter().any(|p| p == b"http/1.1")
        && conn.alpn_protocol() != Some(b"http/1.1")
    {
        return Err(format!(
            "ALPN chose {:?}, want http/1.1",
            conn.alpn_protocol().map(String::from_utf8_lossy)
        ));
    }
    let _ = rustls::Stream::new(&mut conn, &mut sock).write_all(raw);
    // Reads by hand rather than through `rustls::Stream`, which first
    // retries what a failed write left queued and would fail every read.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match conn.reader().read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // Closed without close_notify: the end, as a FIN in cleartext.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(buf),
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
        match conn.read_tls(&mut sock) {
            Ok(_) => {}
            Err(e) if !buf.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(buf)
            }
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
        conn.process_new_packets()
            .map_err(|e| format!("reading the answer: {e}"))?;
    }
}
