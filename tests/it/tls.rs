//! TLS (issue 16) with Gunicorn's flag names: `--certfile`/`--keyfile` on
//! every TCP bind (Unix binds stay cleartext), `--ca-certs` with
//! `--cert-reqs` (mutual TLS and the client certificate's subject),
//! `--ssl-version`, `--ciphers`, ALPN (`h2`, `http/1.1`), the handshake
//! under `--header-timeout`, a plain-HTTP client on a TLS port, the
//! certificate re-read on HUP with zero failed requests, and every bad
//! input refused at start naming its flag.
//!
//! The clients are real tools: `curl` (OpenSSL) for requests and `openssl`
//! for a CA, certificates and keys made per test in a temp directory. A
//! missing tool skips the test, or fails it under `CI=true`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::*;

/// How long a refused configuration may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A server whose TCP binds may serve TLS: the harness's [`Server`], whose
/// announcement parser reads `https://` too.
pub type TlsServer = Server;

/// An executable named `name` on `PATH` (or in `/usr/local/bin`,
/// `/usr/sbin`).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/local/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// [`find_tool`], or `None` after reporting the skip (a failure under
/// `CI=true`); `hint` says how to install it.
pub fn tool_or_skip(name: &str, hint: &str) -> Option<PathBuf> {
    let found = find_tool(name);
    if found.is_none() {
        skip_or_fail(&format!("{name} is not installed ({hint})"));
    }
    found
}

/// The Python of `bench/.venv`, or `None` after reporting the skip (a
/// failure under `CI=true`).
pub fn venv_python_or_skip() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/.venv/bin/python");
    if !python.exists() {
        skip_or_fail("bench/.venv is missing; create it with `bash bench/python-env.sh`");
        return None;
    }
    Some(python)
}

/// Runs any command to completion with its output captured, killing its
/// process group after `timeout` (and then panicking: a tool that hangs is
/// a failure, never a hung test).
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Finished {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                Signal::SIGKILL,
            );
            let _ = child.wait();
            panic!(
                "{what} still ran after {timeout:?}\n--- stderr ---\n{}\n--- stdout ---\n{}",
                stderr.join().unwrap_or_default(),
                stdout.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    // The pipes close when the child (and any child it left) exits.
    Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// `curl`, or `None` after the skip (a failure under `CI=true`).
pub fn curl_or_skip() -> Option<PathBuf> {
    tool_or_skip(
        "curl",
        "Debian: `apt-get install curl` (7.88 or later, with nghttp2)",
    )
}

/// `openssl`, or `None` after the skip (a failure under `CI=true`).
pub fn openssl_or_skip() -> Option<PathBuf> {
    tool_or_skip("openssl", "Debian: `apt-get install openssl`")
}

/// A directory removed with its contents when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = temp_path(tag, "d");
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Issued {
    pub fn cert(&self) -> &str {
        self.cert.to_str().unwrap()
    }
    pub fn key(&self) -> &str {
        self.key.to_str().unwrap()
    }
}

/// A throwaway PKI made with `openssl` in a temp directory: a CA, a server
/// certificate for `127.0.0.1` and `localhost` (subjectAltName), and a
/// client certificate `CN=client, O=Test`, all RSA 2048.
pub struct Pki {
    openssl: PathBuf,
    pub dir: TempDir,
    pub ca: Issued,
    pub server: Issued,
    pub client: Issued,
}

static SERIAL: AtomicUsize = AtomicUsize::new(1);

impl Pki {
    /// `None` when `openssl` is missing (after the skip, or the failure
    /// under `CI=true`).
    pub fn new() -> Option<Pki> {
        let openssl = openssl_or_skip()?;
        let dir = TempDir::new("pki");
        let mut pki = Pki {
            openssl,
            ca: Issued {
                cert: dir.0.join("ca.pem"),
                key: dir.0.join("ca.key"),
            },
            server: Issued {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            client: Issued {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            dir,
        };
        pki.ca = pki.new_ca("ca", "/CN=ferricorn test CA");
        pki.server = pki.issue("server", &pki.ca.clone(), "/CN=server", Usage::Server);
        pki.client = pki.issue(
            "client",
            &pki.ca.clone(),
            "/CN=client/O=Test",
            Usage::Client,
        );
        Some(pki)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    fn openssl(&self, args: &[&str]) {
        let out = run_bounded(
            Command::new(&self.openssl)
                .args(args)
                .current_dir(&self.dir.0),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {:?}\n{}{}",
            out.status,
            out.stdout,
            out.stderr
        );
    }

    /// A new RSA 2048 key (PKCS#8 PEM) at `name.key`.
    pub fn key(&self, name: &str) -> PathBuf {
        let path = self.path(&format!("{name}.key"));
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            path.to_str().unwrap(),
        ]);
        path
    }

    /// A new self-signed CA (`name.pem`, `name.key`).
    pub fn new_ca(&self, name: &str, subject: &str) -> Issued {
        let key = self.key(name);
        let cert = self.path(&format!("{name}.pem"));
        self.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
            "-days",
            "3",
            "-subj",
            subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        Issued { cert, key }
    }

    /// A new leaf certificate signed by `ca`.
    pub fn issue(&self, name: &str, ca: &Issued, subject: &str, usage: Usage) -> Issued {
        let key = self.key(name);
        let csr = self.path(&format!("{name}.csr"));
        let cert = self.path(&format!("{name}.pem"));
        let ext = self.path(&format!("{name}.ext"));
        let ext_text = match usage {
            Usage::Server => {
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
            }
            Usage::Client => {
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=clientAuth\n"
            }
        };
        std::fs::write(&ext, ext_text).unwrap();
        self.openssl(&[
            "req",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
            "-subj",
            subject,
        ]);
        let serial = format!(
            "{}",
            1000 + SERIAL.fetch_add(1, Ordering::Relaxed) + std::process::id() as usize * 1000
        );
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            ca.cert.to_str().unwrap(),
            "-CAkey",
            ca.key.to_str().unwrap(),
            "-set_serial",
            &serial,
            "-days",
            "3",
            "-extfile",
            ext.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]);
        Issued { cert, key }
    }
}

#[derive(Clone, Copy)]
pub enum Usage {
    Server,
    Client,
}

/// Starts `example` on `127.0.0.1:0` with TLS from `server` and `extra`.
pub fn tls_server_of(example: &str, server: &Issued, extra: &[&str]) -> TlsServer {
    let mut args = vec![
        "--bind",
        "127.0.0.1:0",
        "--certfile",
        server.cert(),
        "--keyfile",
        server.key(),
    ];
    args.extend_from_slice(extra);
    TlsServer::start(example, &args)
}

/// The echo example with TLS from `pki.server` and `extra` flags.
pub fn tls_echo(pki: &Pki, extra: &[&str]) -> TlsServer {
    tls_server_of("echo", &pki.server, extra)
}

/// `https://127.0.0.1:PORT/path`.
pub fn https_url(addr: SocketAddr, path: &str) -> String {
    format!("https://{addr}{path}")
}

/// What one `curl` run saw.
#[derive(Debug)]
pub struct CurlOut {
    /// curl's exit code (0 = a response was received).
    pub exit: Option<i32>,
    /// `%{http_code}` (0 when none).
    pub http_code: u16,
    /// `%{http_version}`: `1.1`, `2`.
    pub http_version: String,
    pub body: String,
    pub stderr: String,
}

impl CurlOut {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("curl body is not JSON ({e}): {self:?}"))
    }

    pub fn ok(&self) -> bool {
        self.exit == Some(0) && self.http_code == 200
    }
}

/// Marks the end of the body in curl's output: `-w` appends it.
const CURL_MARK: &str = "\n@@curl@@";

/// Runs `curl -sS` with a 10 s limit, `args` and then `url`; the body,
/// status and protocol version are parsed from its output.
pub fn curl(curl: &Path, args: &[&str], url: &str) -> CurlOut {
    let out = run_bounded(
        Command::new(curl)
            .args(["-sS", "--max-time", "10", "-o", "-"])
            .args([
                "-w",
                &format!("{CURL_MARK}%{{http_code}} %{{http_version}}"),
            ])
            .args(args)
            .arg(url),
        Duration::from_secs(20),
    );
    let (body, tail) = out
        .stdout
        .rsplit_once(CURL_MARK)
        .unwrap_or((&out.stdout, "000 0"));
    let mut tail = tail.split_whitespace();
    CurlOut {
        exit: out.status.code(),
        http_code: tail.next().and_then(|c| c.parse().ok()).unwrap_or(0),
        http_version: tail.next().unwrap_or("").to_string(),
        body: body.to_string(),
        stderr: out.stderr,
    }
}

/// `curl --cacert CA` to `https://ADDR/path` with `args`.
pub fn curl_tls(
    curl_bin: &Path,
    pki: &Pki,
    addr: SocketAddr,
    path: &str,
    args: &[&str],
) -> CurlOut {
    let mut all = vec!["--cacert", pki.ca.cert()];
    all.extend_from_slice(args);
    curl(curl_bin, &all, &https_url(addr, path))
}

/// Asserts a 200 from the echo example and returns its JSON.
fn echo_ok(out: &CurlOut, server: &Server) -> serde_json::Value {
    assert!(
        out.ok(),
        "expected 200 from curl, got {out:?}\n--- server stderr ---\n{}",
        server.stderr()
    );
    out.json()
}

/// The TLS version curl reports in `-v` (`SSL connection using TLSv1.3 /`).
fn negotiated_tls(out: &CurlOut) -> String {
    out.stderr
        .lines()
        .find_map(|l| {
            let rest = &l[l.find("SSL connection using ")? + "SSL connection using ".len()..];
            Some(rest.split_whitespace().next()?.to_string())
        })
        .unwrap_or_else(|| format!("<none in curl -v output: {}>", out.stderr))
}

/// The cipher curl reports in `-v` (`SSL connection using TLSv1.2 / NAME`).
fn negotiated_cipher(out: &CurlOut) -> String {
    out.stderr
        .lines()
        .find_map(|l| {
            let rest = &l[l.find("SSL connection using ")? + "SSL connection using ".len()..];
            Some(rest.split(" / ").nth(1)?.trim().to_string())
        })
        .unwrap_or_default()
}

#[test]
fn tls_bind_is_announced_as_https_and_the_app_sees_scheme_https() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &[]);
    let stderr = server.stderr();
    assert!(
        stderr.contains(&format!("Listening at: https://{}", server.addr())),
        "no `Listening at: https://` line:\n{stderr}"
    );
    let out = curl_tls(&curl_bin, &pki, server.addr(), "/tls?x=1", &["--http1.1"]);
    let json = echo_ok(&out, &server);
    assert_eq!(out.http_version, "1.1");
    assert_eq!(json["scheme"], "https", "{json}");
    assert_eq!(json["path"], "/tls");
    assert_eq!(json["query"], "x=1");
    assert_eq!(json["version"], "HTTP/1.1", "{json}");
    assert_eq!(json["peer"], "127.0.0.1", "{json}");
    // The hostname in the certificate works as well as the IP.
    let out = curl(
        &curl_bin,
        &[
            "--cacert",
            pki.ca.cert(),
            "--resolve",
            &format!("localhost:{}:127.0.0.1", server.addr().port()),
        ],
        &format!("https://localhost:{}/", server.addr().port()),
    );
    echo_ok(&out, &server);
}

#[test]
fn alpn_offers_h2_and_http11_by_default() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &[]);
    let h2 = curl_tls(&curl_bin, &pki, server.addr(), "/h2", &["--http2", "-v"]);
    let json = echo_ok(&h2, &server);
    assert_eq!(h2.http_version, "2", "{h2:?}");
    assert!(
        h2.stderr.contains("ALPN: server accepted h2"),
        "{}",
        h2.stderr
    );
    assert_eq!(json["version"], "HTTP/2.0", "{json}");
    assert_eq!(json["scheme"], "https", "{json}");
    let h1 = curl_tls(&curl_bin, &pki, server.addr(), "/h1", &["--http1.1", "-v"]);
    let json = echo_ok(&h1, &server);
    assert_eq!(h1.http_version, "1.1", "{h1:?}");
    assert!(
        h1.stderr.contains("ALPN: server accepted http/1.1"),
        "{}",
        h1.stderr
    );
    assert_eq!(json["version"], "HTTP/1.1", "{json}");
}

#[test]
fn http_protocols_h1_offers_only_http11_in_alpn() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &["--http-protocols", "h1"]);
    let out = curl_tls(&curl_bin, &pki, server.addr(), "/", &["--http2", "-v"]);
    let json = echo_ok(&out, &server);
    assert_eq!(out.http_version, "1.1", "{out:?}");
    assert_eq!(json["version"], "HTTP/1.1", "{json}");
    assert!(
        !out.stderr.contains("ALPN: server accepted h2"),
        "{}",
        out.stderr
    );
}

#[test]
fn unix_bind_stays_cleartext_next_to_a_tls_bind() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let sock = temp_path("tlsunix", "sock");
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
        ],
    );
    assert_eq!(
        server.addrs().len(),
        2,
        "{:?}\n{}",
        server.addrs(),
        server.stderr()
    );
    assert!(
        server
            .stderr()
            .contains(&format!("Listening at: unix:{}", sock.display())),
        "{}",
        server.stderr()
    );
    let resp = Conn::unix(&sock).roundtrip(get("/plain"));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.json()["scheme"], "http", "{}", resp.text());
    let out = curl_tls(&curl_bin, &pki, server.addr(), "/tls", &[]);
    assert_eq!(echo_ok(&out, &server)["scheme"], "https");
}

/// Reads until the peer closes or `limit` passes; `(bytes, closed, after)`.
fn read_until_close(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return (got, false, started.elapsed());
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (got, true, started.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if is_close(&e) => return (got, true, started.elapsed()),
            Err(e) if is_timeout(&e) => return (got, false, started.elapsed()),
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn plain_http_on_a_tls_port_is_closed_at_once() {
    let Some(pki) = Pki::new() else {
        return;
    };
    let server = tls_echo(&pki, &[]);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (bytes, closed, after) = read_until_close(&mut stream, Duration::from_secs(3));
    assert!(
        closed && after < Duration::from_secs(2),
        "a plain-HTTP client on a TLS port must be closed at once; closed={closed} after {after:?}, got {bytes:?}\n{}",
        server.stderr()
    );
    // Nothing but a TLS alert record (content type 21) may come back.
    assert!(
        bytes.is_empty() || bytes[0] == 0x15,
        "expected nothing or a TLS alert, got {:?}",
        String::from_utf8_lossy(&bytes)
    );
}

/// The first bytes of a TLS 1.2/1.3 ClientHello record: the record header
/// announces 512 bytes, then only part of the handshake header follows.
const HALF_CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, // handshake record, 512 bytes announced
    0x01, 0x00, 0x01, 0xfc, // ClientHello, 508 bytes announced
    0x03, 0x03, // legacy_version
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // 8 of 32 random bytes
];

#[test]
fn handshake_counts_against_the_header_timeout() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &["--header-timeout", "1"]);
    let addr = server.addr();
    // Each client is watched by its own thread, from its own connect.
    let watch = |name: &'static str, first_bytes: &'static [u8]| {
        thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            let connected = Instant::now();
            stream.write_all(first_bytes).unwrap();
            let (bytes, closed, _) = read_until_close(&mut stream, Duration::from_secs(6));
            (name, bytes, closed, connected.elapsed())
        })
    };
    let clients = [
        watch("silent", b""),
        watch("half ClientHello", HALF_CLIENT_HELLO),
    ];
    // Meanwhile the server serves others.
    let out = curl_tls(&curl_bin, &pki, addr, "/", &[]);
    echo_ok(&out, &server);
    for client in clients {
        let (name, bytes, closed, after) = client.join().unwrap();
        assert!(
            closed,
            "{name} client still open {after:?} after connecting (--header-timeout 1); got {bytes:?}\n{}",
            server.stderr()
        );
        assert!(
            after >= Duration::from_millis(500) && after < Duration::from_secs(4),
            "{name} client closed {after:?} after connecting, expected about 1 s (--header-timeout 1)"
        );
    }
}

#[test]
fn mutual_tls_required_asks_and_verifies_the_client_certificate() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &["--ca-certs", pki.ca.cert(), "--cert-reqs", "2"]);
    let with = curl_tls(
        &curl_bin,
        &pki,
        server.addr(),
        "/mtls",
        &["--cert", pki.client.cert(), "--key", pki.client.key()],
    );
    let json = echo_ok(&with, &server);
    let subject = json["client_cert_subject"].as_str().unwrap_or_default();
    assert!(subject.contains("CN=client"), "client_cert_subject: {json}");
    assert_eq!(json["scheme"], "https");
    // Over HTTP/2 too.
    let with_h2 = curl_tls(
        &curl_bin,
        &pki,
        server.addr(),
        "/mtls",
        &[
            "--http2",
            "--cert",
            pki.client.cert(),
            "--key",
            pki.client.key(),
        ],
    );
    let json = echo_ok(&with_h2, &server);
    assert_eq!(with_h2.http_version, "2");
    assert!(
        json["client_cert_subject"]
            .as_str()
            .unwrap_or_default()
            .contains("CN=client"),
        "{json}"
    );
    // No certificate: no response.
    let without = curl_tls(&curl_bin, &pki, server.addr(), "/mtls", &[]);
    assert!(
        without.exit != Some(0) && without.http_code == 0,
        "a client without a certificate was served under --cert-reqs 2: {without:?}"
    );
    // A certificate from another CA: no response.
    let other_ca = pki.new_ca("other-ca", "/CN=other CA");
    let stranger = pki.issue("stranger", &other_ca, "/CN=stranger", Usage::Client);
    let out = curl_tls(
        &curl_bin,
        &pki,
        server.addr(),
        "/mtls",
        &["--cert", stranger.cert(), "--key", stranger.key()],
    );
    assert!(
        out.exit != Some(0) && out.http_code == 0,
        "a certificate from an unknown CA was accepted under --cert-reqs 2: {out:?}"
    );
    // The server is still fine.
    echo_ok(
        &curl_tls(
            &curl_bin,
            &pki,
            server.addr(),
            "/",
            &["--cert", pki.client.cert(), "--key", pki.client.key()],
        ),
        &server,
    );
}

#[test]
fn mutual_tls_optional_serves_clients_with_and_without_a_certificate() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &["--ca-certs", pki.ca.cert(), "--cert-reqs", "1"]);
    let without = curl_tls(&curl_bin, &pki, server.addr(), "/", &[]);
    let json = echo_ok(&without, &server);
    assert!(
        json["client_cert_subject"].is_null(),
        "no certificate was sent, yet client_cert_subject is set: {json}"
    );
    let with = curl_tls(
        &curl_bin,
        &pki,
        server.addr(),
        "/",
        &["--cert", pki.client.cert(), "--key", pki.client.key()],
    );
    let json = echo_ok(&with, &server);
    assert!(
        json["client_cert_subject"]
            .as_str()
            .unwrap_or_default()
            .contains("CN=client"),
        "{json}"
    );
}

#[test]
fn mutual_tls_optional_still_refuses_an_unverifiable_certificate() {
    // Python's CERT_OPTIONAL (Gunicorn's --cert-reqs 1): a certificate
    // that is sent is verified.
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &["--ca-certs", pki.ca.cert(), "--cert-reqs", "1"]);
    let other_ca = pki.new_ca("other-ca", "/CN=other CA");
    let stranger = pki.issue("stranger", &other_ca, "/CN=stranger", Usage::Client);
    let out = curl_tls(
        &curl_bin,
        &pki,
        server.addr(),
        "/",
        &["--cert", stranger.cert(), "--key", stranger.key()],
    );
    assert!(
        out.exit != Some(0) && out.http_code == 0,
        "a certificate from an unknown CA was accepted under --cert-reqs 1: {out:?}"
    );
}

#[test]
fn cert_reqs_0_asks_for_no_certificate() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &["--ca-certs", pki.ca.cert(), "--cert-reqs", "0"]);
    let out = curl_tls(
        &curl_bin,
        &pki,
        server.addr(),
        "/",
        &["--cert", pki.client.cert(), "--key", pki.client.key()],
    );
    let json = echo_ok(&out, &server);
    assert!(json["client_cert_subject"].is_null(), "{json}");
}

#[test]
fn default_ssl_version_allows_tls12_and_tls13() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &[]);
    let v12 = curl_tls(
        &curl_bin,
        &pki,
        server.addr(),
        "/",
        &["-v", "--tls-max", "1.2"],
    );
    echo_ok(&v12, &server);
    assert_eq!(negotiated_tls(&v12), "TLSv1.2");
    let v13 = curl_tls(&curl_bin, &pki, server.addr(), "/", &["-v", "--tlsv1.3"]);
    echo_ok(&v13, &server);
    assert_eq!(negotiated_tls(&v13), "TLSv1.3");
}

#[test]
fn ssl_version_tlsv1_3_refuses_a_tls12_client() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &["--ssl-version", "TLSv1_3"]);
    let v12 = curl_tls(&curl_bin, &pki, server.addr(), "/", &["--tls-max", "1.2"]);
    assert!(
        v12.exit != Some(0) && v12.http_code == 0,
        "a TLS 1.2 client was served under --ssl-version TLSv1_3: {v12:?}"
    );
    let v13 = curl_tls(&curl_bin, &pki, server.addr(), "/", &["-v"]);
    echo_ok(&v13, &server);
    assert_eq!(negotiated_tls(&v13), "TLSv1.3");
}

#[test]
fn ssl_version_tlsv1_2_is_accepted_and_serves_tls12() {
    // The spec names TLSv1_2 without saying whether 1.3 stays on; what is
    // asserted is that it starts and a TLS 1.2 client is served. The
    // negotiated version of a default client is printed for the report
    // (Python's PROTOCOL_TLSv1_2, behind Gunicorn's flag, is 1.2 only).
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &["--ssl-version", "TLSv1_2"]);
    let v12 = curl_tls(
        &curl_bin,
        &pki,
        server.addr(),
        "/",
        &["-v", "--tls-max", "1.2"],
    );
    echo_ok(&v12, &server);
    assert_eq!(negotiated_tls(&v12), "TLSv1.2");
    let default = curl_tls(&curl_bin, &pki, server.addr(), "/", &["-v"]);
    eprintln!(
        "--ssl-version TLSv1_2: a default client negotiated {} (exit {:?})",
        negotiated_tls(&default),
        default.exit
    );
}

#[test]
fn ssl_version_tls_is_the_default_pair() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &["--ssl-version", "TLS"]);
    let v12 = curl_tls(
        &curl_bin,
        &pki,
        server.addr(),
        "/",
        &["-v", "--tls-max", "1.2"],
    );
    echo_ok(&v12, &server);
    assert_eq!(negotiated_tls(&v12), "TLSv1.2");
    let v13 = curl_tls(&curl_bin, &pki, server.addr(), "/", &["-v", "--tlsv1.3"]);
    echo_ok(&v13, &server);
    assert_eq!(negotiated_tls(&v13), "TLSv1.3");
}

#[test]
fn ciphers_restrict_the_suites_by_openssl_or_iana_name() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    for list in [
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ] {
        let server = tls_echo(&pki, &["--ssl-version", "TLSv1_2", "--ciphers", list]);
        let ok = curl_tls(
            &curl_bin,
            &pki,
            server.addr(),
            "/",
            &["-v", "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256"],
        );
        echo_ok(&ok, &server);
        assert_eq!(
            negotiated_cipher(&ok),
            "ECDHE-RSA-AES128-GCM-SHA256",
            "--ciphers {list}"
        );
        let refused = curl_tls(
            &curl_bin,
            &pki,
            server.addr(),
            "/",
            &["--ciphers", "ECDHE-RSA-AES256-GCM-SHA384"],
        );
        assert!(
            refused.exit != Some(0) && refused.http_code == 0,
            "a suite outside --ciphers {list} was negotiated: {refused:?}"
        );
    }
    // TLS 1.3 suites by their IANA names, in a colon list.
    let server = tls_echo(
        &pki,
        &[
            "--ciphers",
            "TLS_AES_256_GCM_SHA384:ECDHE-RSA-AES128-GCM-SHA256",
        ],
    );
    let ok = curl_tls(
        &curl_bin,
        &pki,
        server.addr(),
        "/",
        &[
            "-v",
            "--tlsv1.3",
            "--tls13-ciphers",
            "TLS_AES_256_GCM_SHA384",
        ],
    );
    echo_ok(&ok, &server);
    assert_eq!(negotiated_cipher(&ok), "TLS_AES_256_GCM_SHA384");
    let refused = curl_tls(
        &curl_bin,
        &pki,
        server.addr(),
        "/",
        &["--tlsv1.3", "--tls13-ciphers", "TLS_AES_128_GCM_SHA256"],
    );
    assert!(
        refused.exit != Some(0) && refused.http_code == 0,
        "TLS_AES_128_GCM_SHA256 was negotiated outside --ciphers: {refused:?}"
    );
}

#[test]
fn do_handshake_on_connect_is_accepted() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    let server = tls_echo(&pki, &["--do-handshake-on-connect"]);
    echo_ok(&curl_tls(&curl_bin, &pki, server.addr(), "/", &[]), &server);
}

/// Runs echo with `args`, which must be refused at start: a non-zero exit
/// within [`EXIT_TIMEOUT`] and a message naming `needle`.
fn assert_refused_at_start(args: &[&str], needle: &str) -> Finished {
    let started = Instant::now();
    let out = run_to_exit("echo", args, &[], EXIT_TIMEOUT);
    assert!(
        !out.status.success(),
        "{args:?} should be refused naming {needle:?}, but exited {:?}\n{}",
        out.status,
        out.stderr
    );
    assert!(
        out.stderr.contains(needle),
        "{args:?} was refused ({:?}) without naming {needle:?}:\n{}",
        out.status,
        out.stderr
    );
    assert!(
        !out.stderr.contains("Listening at:"),
        "{args:?} announced a listener before refusing:\n{}",
        out.stderr
    );
    eprintln!(
        "refused {args:?}: {:?} in {:?}: {}",
        out.status.code(),
        started.elapsed(),
        out.stderr.trim()
    );
    out
}

/// `--bind 127.0.0.1:0 --certfile CERT --keyfile KEY` then `extra`.
fn tls_args<'a>(cert: &'a str, key: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--bind",
        "127.0.0.1:0",
        "--certfile",
        cert,
        "--keyfile",
        key,
    ];
    args.extend_from_slice(extra);
    args
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn missing_certfile_is_refused_naming_the_flag() {
    let Some(pki) = Pki::new() else {
        return;
    };
    let missing = pki.path("no-such.pem");
    assert_refused_at_start(
        &tls_args(missing.to_str().unwrap(), pki.server.key(), &[]),
        "--certfile",
    );
    let missing_key = pki.path("no-such.key");
    assert_refused_at_start(
        &tls_args(pki.server.cert(), missing_key.to_str().unwrap(), &[]),
        "--keyfile",
    );
}

#[test]
fn unreadable_certfile_is_refused_naming_the_flag() {
    let Some(pki) = Pki::new() else {
        return;
    };
    // Root reads any file whatever its mode: a directory cannot be read
    // as a file by anyone.
    let unreadable = if running_as_root() {
        let dir = pki.path("a-directory.pem");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    } else {
        use std::os::unix::fs::PermissionsExt;
        let copy = pki.path("unreadable.pem");
        std::fs::copy(&pki.server.cert, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o000)).unwrap();
        copy
    };
    assert_refused_at_start(
        &tls_args(unreadable.to_str().unwrap(), pki.server.key(), &[]),
        "--certfile",
    );
}

#[test]
fn certfile_without_a_certificate_is_refused_naming_the_flag() {
    let Some(pki) = Pki::new() else {
        return;
    };
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").unwrap();
    assert_refused_at_start(
        &tls_args(garbage.to_str().unwrap(), pki.server.key(), &[]),
        "--certfile",
    );
    // A key where the certificate should be.
    assert_refused_at_start(
        &tls_args(pki.server.key(), pki.server.key(), &[]),
        "--certfile",
    );
}

#[test]
fn key_that_does_not_match_the_certificate_is_refused() {
    let Some(pki) = Pki::new() else {
        return;
    };
    let other = pki.key("unrelated");
    assert_refused_at_start(
        &tls_args(pki.server.cert(), other.to_str().unwrap(), &[]),
        "--keyfile",
    );
}

#[test]
fn keyfile_without_certfile_and_the_reverse_are_refused() {
    let Some(pki) = Pki::new() else {
        return;
    };
    assert_refused_at_start(
        &["--bind", "127.0.0.1:0", "--keyfile", pki.server.key()],
        "--certfile",
    );
    assert_refused_at_start(
        &["--bind", "127.0.0.1:0", "--certfile", pki.server.cert()],
        "--keyfile",
    );
}

#[test]
fn ca_certs_without_a_certificate_is_refused() {
    let Some(pki) = Pki::new() else {
        return;
    };
    let empty = pki.path("empty-ca.pem");
    std::fs::write(&empty, "").unwrap();
    assert_refused_at_start(
        &tls_args(
            pki.server.cert(),
            pki.server.key(),
            &["--ca-certs", empty.to_str().unwrap(), "--cert-reqs", "2"],
        ),
        "--ca-certs",
    );
    // A key is not a certificate either.
    assert_refused_at_start(
        &tls_args(
            pki.server.cert(),
            pki.server.key(),
            &["--ca-certs", pki.ca.key(), "--cert-reqs", "1"],
        ),
        "--ca-certs",
    );
}

#[test]
fn cert_reqs_2_without_ca_certs_is_refused() {
    let Some(pki) = Pki::new() else {
        return;
    };
    let out = assert_refused_at_start(
        &tls_args(pki.server.cert(), pki.server.key(), &["--cert-reqs", "2"]),
        "--ca-certs",
    );
    assert!(out.stderr.contains("--cert-reqs"), "{}", out.stderr);
}

#[test]
fn bad_cert_reqs_value_is_refused() {
    let Some(pki) = Pki::new() else {
        return;
    };
    assert_refused_at_start(
        &tls_args(
            pki.server.cert(),
            pki.server.key(),
            &["--ca-certs", pki.ca.cert(), "--cert-reqs", "3"],
        ),
        "--cert-reqs",
    );
}

#[test]
fn http2c_when_every_bind_is_tls_is_refused() {
    let Some(pki) = Pki::new() else {
        return;
    };
    assert_refused_at_start(
        &tls_args(pki.server.cert(), pki.server.key(), &["--http2c"]),
        "--http2c",
    );
}

#[test]
fn old_ssl_versions_are_refused_naming_the_flag() {
    let Some(pki) = Pki::new() else {
        return;
    };
    for old in ["TLSv1", "TLSv1_1", "SSLv3", "SSLv23-nonsense"] {
        assert_refused_at_start(
            &tls_args(pki.server.cert(), pki.server.key(), &["--ssl-version", old]),
            "--ssl-version",
        );
    }
}

#[test]
fn unknown_cipher_is_refused_naming_the_flag() {
    let Some(pki) = Pki::new() else {
        return;
    };
    for list in [
        "NO-SUCH-CIPHER",
        "ECDHE-RSA-AES128-GCM-SHA256:NO-SUCH-CIPHER",
        // A real OpenSSL suite that rustls does not implement.
        "DES-CBC3-SHA",
    ] {
        assert_refused_at_start(
            &tls_args(pki.server.cert(), pki.server.key(), &["--ciphers", list]),
            "--ciphers",
        );
    }
}

/// Writes `src` over `dst` atomically (a rename), as a deploy tool does.
fn replace_file(src: &Path, dst: &Path) {
    let tmp = dst.with_extension("tmp");
    std::fs::copy(src, &tmp).unwrap();
    std::fs::rename(&tmp, dst).unwrap();
}

/// One outcome of a request of the reload load.
#[derive(Debug)]
enum Outcome {
    Served,
    Failed(String),
}

#[test]
fn hup_rereads_certificate_and_key_with_zero_failed_requests() {
    let (Some(curl_bin), Some(pki)) = (curl_or_skip(), Pki::new()) else {
        return;
    };
    // The second certificate comes from a second CA: which CA verifies a
    // handshake tells which certificate the server presented.
    let ca2 = pki.new_ca("ca2", "/CN=second CA");
    let server2 = pki.issue("server2", &ca2, "/CN=server2", Usage::Server);
    let bundle = pki.path("both-cas.pem");
    std::fs::write(
        &bundle,
        std::fs::read_to_string(&pki.ca.cert).unwrap()
            + &std::fs::read_to_string(&ca2.cert).unwrap(),
    )
    .unwrap();
    let live = Issued {
        cert: pki.path("live.pem"),
        key: pki.path("live.key"),
    };
    std::fs::copy(&pki.server.cert, &live.cert).unwrap();
    std::fs::copy(&pki.server.key, &live.key).unwrap();
    let server = tls_server_of("echo", &live, &["--workers", "2"]);
    let addr = server.addr();
    let mut old = Vec::new();
    assert!(
        wait_until(Duration::from_secs(15), || {
            old = children_of(server.pid());
            old.len() == 2
        }),
        "expected 2 workers: {old:?}\n{}",
        server.stderr()
    );
    let only = |ca: &Path| {
        curl(
            &curl_bin,
            &["--cacert", ca.to_str().unwrap()],
            &https_url(addr, "/"),
        )
    };
    echo_ok(&only(&pki.ca.cert), &server);
    // Fresh connections: each request a new curl, so a new handshake.
    let done = std::sync::Arc::new(AtomicUsize::new(0));
    let load = ClientThreads::start(3, {
        let curl_bin = curl_bin.clone();
        let bundle = bundle.clone();
        let done = done.clone();
        move |stop: &std::sync::atomic::AtomicBool| {
            let mut outcomes = Vec::new();
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                let out = curl(
                    &curl_bin,
                    &["--cacert", bundle.to_str().unwrap()],
                    &https_url(addr, "/"),
                );
                done.fetch_add(1, Ordering::Relaxed);
                outcomes.push(if out.ok() {
                    Outcome::Served
                } else {
                    Outcome::Failed(format!("{out:?}"))
                });
            }
            outcomes
        }
    });
    // Some requests before the reload.
    assert!(
        wait_until(Duration::from_secs(20), || done.load(Ordering::Relaxed)
            >= 6),
        "the load made no progress\n{}",
        server.stderr()
    );
    replace_file(&server2.key, &live.key);
    replace_file(&server2.cert, &live.cert);
    server.signal(Signal::SIGHUP);
    let mut now = Vec::new();
    let replaced = wait_until(Duration::from_secs(20), || {
        now = children_of(server.pid());
        now.len() == 2 && now.iter().all(|p| !old.contains(p))
    });
    let new_cert = wait_until(Duration::from_secs(10), || only(&ca2.cert).ok());
    // Some requests after the reload.
    let after = done.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(20), || {
        done.load(Ordering::Relaxed) >= after + 6
    });
    let outcomes: Vec<Outcome> = load.finish().into_iter().flatten().collect();
    assert!(
        replaced,
        "workers not replaced after HUP: old {old:?}, now {now:?}\n{}",
        server.stderr()
    );
    assert!(
        new_cert,
        "after HUP the server does not present the new certificate (signed by the second CA)\n{}",
        server.stderr()
    );
    let by_old_ca = only(&pki.ca.cert);
    assert!(
        !by_old_ca.ok(),
        "after HUP the old certificate is still presented: {by_old_ca:?}"
    );
    let failed: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Failed(why) => Some(why),
            Outcome::Served => None,
        })
        .collect();
    eprintln!(
        "reload load: {} requests, {} failed",
        outcomes.len(),
        failed.len()
    );
    assert!(
        outcomes.len() >= 10,
        "too few requests ran: {}",
        outcomes.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the certificate reload; first: {}\n{}",
        failed.len(),
        outcomes.len(),
        failed[0],
        server.stderr()
    );
}
