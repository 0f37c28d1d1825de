//! ferricorn behind a real Nginx (issue 7): the deployment the kit in
//! `deploy/` describes, tested end to end.
//!
//! Each test starts its own Nginx as an ordinary process: `daemon off`,
//! `master_process on`, every path (pid, logs, temp files) in a per-test
//! temp dir given with `-p PREFIX -c CONF`, listening on a free loopback
//! port. Nginx cannot bind port 0, so a port is picked by binding a
//! `TcpListener` to `:0` and dropping it, and the start is retried when
//! another process took the port meanwhile. Behind it run the real
//! `ferricorn-auth` and `echo` binaries with their worker processes, over a
//! Unix socket or TCP, with Nginx's default upstream protocol (HTTP/1.0, a
//! connection per request) or HTTP/1.1 with upstream keep-alive.
//!
//! The proxy headers are the ones `deploy/nginx/ferricorn.conf` sets, and
//! one test runs that file itself. Without Nginx the tests skip with a
//! message; under `CI=true` they fail (`bench/install-tools.sh --ci`
//! installs Debian's `nginx-light`).

use std::collections::BTreeSet;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::harness::*;

// ---------------------------------------------------------------------------
// Finding Nginx

/// The Nginx binary: `$FERRICORN_TEST_NGINX`, else `nginx` on `PATH`, else
/// Debian's `/usr/sbin/nginx` (not on a normal user's `PATH`).
fn nginx_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FERRICORN_TEST_NGINX") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

/// The Nginx binary, or `None` after reporting the skip (a failure under
/// `CI=true`).
fn nginx_or_skip() -> Option<PathBuf> {
    let found = nginx_binary();
    if found.is_none() {
        skip_or_fail(
            "nginx is not installed (Debian: `apt-get install nginx-light`, or run \
             `bench/install-tools.sh --ci`; or set FERRICORN_TEST_NGINX to a binary)",
        );
    }
    found
}

/// The temp-path directives for the modules this Nginx was built with:
/// each module compiled in creates its default temp directory under
/// `/var/lib/nginx` at start unless told otherwise, which an unprivileged
/// process may not do; naming a module that was left out is an error.
fn temp_path_directives(nginx: &Path, prefix: &Path) -> String {
    static BUILD: OnceLock<String> = OnceLock::new();
    let build = BUILD.get_or_init(|| {
        Command::new(nginx)
            .arg("-V")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_default()
    });
    let mut out = format!(
        "    client_body_temp_path {p}/client_body;\n    proxy_temp_path {p}/proxy;\n",
        p = prefix.display()
    );
    for module in ["fastcgi", "uwsgi", "scgi"] {
        if !build.contains(&format!("--without-http_{module}_module")) {
            out.push_str(&format!(
                "    {module}_temp_path {}/{module};\n",
                prefix.display()
            ));
        }
    }
    out
}

/// The effective uid, from `/proc/self/status`.
fn euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1))
                .and_then(|id| id.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------
// A per-test directory

/// A fresh directory, removed with its contents on drop. Short, because
/// Unix socket paths in it must stay under ~108 bytes.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = temp_path(tag, "d");
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Nginx configurations

/// How Nginx talks to ferricorn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// Nginx's default: HTTP/1.0, `Connection: close`, one upstream
    /// connection per request.
    Http10,
    /// `proxy_http_version 1.1`, an empty `Connection` header and
    /// `keepalive` in the upstream block: connections are reused.
    KeepAlive,
}

/// What the generated site looks like.
struct Site {
    /// ferricorn's address as it announced it.
    upstream: Addr,
    protocol: Protocol,
    /// `proxy_bind`: the source address of Nginx's upstream connections.
    proxy_bind: Option<&'static str>,
    client_max_body_size: &'static str,
}

impl Site {
    fn new(upstream: &Addr, protocol: Protocol) -> Site {
        Site {
            upstream: upstream.clone(),
            protocol,
            proxy_bind: None,
            // ferricorn's default --limit-request-body, 100 MiB.
            client_max_body_size: "100m",
        }
    }
}

/// The proxy directives of one location: those of
/// `deploy/nginx/ferricorn.conf` (headers, buffering, timeouts), with the
/// scheme sent as `proto` (`$scheme`, or a literal to prove it flows).
fn proxy_directives(site: &Site, proto: &str, unbuffered: bool) -> String {
    let mut out = String::from("            proxy_pass http://ferricorn;\n");
    if site.protocol == Protocol::KeepAlive || unbuffered {
        // Streaming a chunked request body upstream needs HTTP/1.1.
        out.push_str("            proxy_http_version 1.1;\n");
        out.push_str("            proxy_set_header Connection \"\";\n");
    }
    out.push_str(&format!(
        "            proxy_set_header Host $host;\n\
         \x20           proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20           proxy_set_header X-Forwarded-Proto {proto};\n\
         \x20           proxy_request_buffering {};\n\
         \x20           proxy_buffering on;\n\
         \x20           proxy_connect_timeout 5s;\n\
         \x20           proxy_send_timeout 30s;\n\
         \x20           proxy_read_timeout 30s;\n\
         \x20           proxy_next_upstream error timeout;\n\
         \x20           proxy_redirect off;\n",
        if unbuffered { "off" } else { "on" }
    ));
    if let Some(addr) = site.proxy_bind {
        out.push_str(&format!("            proxy_bind {addr};\n"));
    }
    out
}

/// The `http` block's upstream for `site`.
fn upstream_block(site: &Site) -> String {
    let server = match &site.upstream {
        Addr::Tcp(addr) => addr.to_string(),
        Addr::Unix(path) => format!("unix:{}", path.display()),
    };
    let keepalive = match site.protocol {
        Protocol::Http10 => "",
        Protocol::KeepAlive => {
            "        keepalive 16;\n        keepalive_timeout 60s;\n        keepalive_requests 1000;\n"
        }
    };
    format!(
        "    upstream ferricorn {{\n        server {server} fail_timeout=0;\n{keepalive}    }}\n"
    )
}

/// A main configuration: everything in `prefix`, `http_body` inside the
/// `http` block.
fn main_conf(nginx: &Path, prefix: &Path, http_body: &str) -> String {
    // As root, Nginx's workers would switch to `nobody` and could not use
    // the temp dir; as anyone else the directive only draws a warning.
    let user = if euid() == 0 { "user root root;\n" } else { "" };
    format!(
        "# Generated by tests/it/nginx.rs.\n\
         daemon off;\n\
         master_process on;\n\
         worker_processes 2;\n\
         {user}\
         error_log {p}/error.log info;\n\
         pid {p}/nginx.pid;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n\
         \x20   access_log {p}/access.log;\n\
         {temp}\
         {http_body}\
         }}\n",
        p = prefix.display(),
        temp = temp_path_directives(nginx, prefix),
    )
}

/// The generated site: `/` as the deployed site proxies it, `/as-https/`
/// forwarding the scheme `https`, `/unbuffered/` streaming request bodies.
fn site_conf(nginx: &Path, prefix: &Path, port: u16, site: &Site) -> String {
    let http = format!(
        "{upstream}\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       client_max_body_size {max};\n\
         \x20       keepalive_timeout 75s;\n\
         \x20       location / {{\n{root}        }}\n\
         \x20       location /as-https/ {{\n{https}        }}\n\
         \x20       location /unbuffered/ {{\n{unbuffered}        }}\n\
         \x20   }}\n",
        upstream = upstream_block(site),
        max = site.client_max_body_size,
        root = proxy_directives(site, "$scheme", false),
        https = proxy_directives(site, "https", false),
        unbuffered = proxy_directives(site, "$scheme", true),
    );
    main_conf(nginx, prefix, &http)
}

// ---------------------------------------------------------------------------
// Running Nginx

/// How long Nginx may take to listen.
const NGINX_START: Duration = Duration::from_secs(10);

/// A running Nginx in its own process group, killed with its workers on
/// drop. Keeps its directory alive.
struct Nginx {
    child: Child,
    port: u16,
    prefix: PathBuf,
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl Nginx {
    /// Starts Nginx with the configuration `conf(port)` in `prefix`, on a
    /// free port; retries with another port when that one was taken.
    fn start(nginx: &Path, prefix: &Path, conf: impl Fn(u16) -> String) -> Nginx {
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let conf_path = prefix.join("nginx.conf");
            std::fs::write(&conf_path, conf(port)).expect("write nginx.conf");
            let _ = std::fs::remove_file(prefix.join("nginx.pid"));
            let _ = std::fs::remove_file(prefix.join("error.log"));
            let child = Command::new(nginx)
                // `-e`: errors before the configuration is read go here too,
                // not to the compiled-in path.
                .arg("-e")
                .arg(prefix.join("error.log"))
                .arg("-p")
                .arg(prefix)
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", nginx.display()));
            let mut nginx_proc = Nginx {
                child,
                port,
                prefix: prefix.to_path_buf(),
            };
            match nginx_proc.wait_listening() {
                Ok(()) => return nginx_proc,
                Err(log) if log.contains("Address already in use") => {
                    last_log = log;
                    continue;
                }
                Err(log) => panic!(
                    "nginx did not start\n--- nginx.conf ---\n{}\n--- error.log ---\n{log}",
                    conf(port)
                ),
            }
        }
        panic!("nginx found no free port in 5 tries\n--- error.log ---\n{last_log}");
    }

    /// Waits until this Nginx wrote its pidfile and accepts connections;
    /// `Err(error.log)` when it exited or timed out.
    fn wait_listening(&mut self) -> Result<(), String> {
        let pid = self.child.id().to_string();
        let pidfile = self.prefix.join("nginx.pid");
        let addr = self.addr();
        let deadline = Instant::now() + NGINX_START;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(self.error_log());
            }
            let ours = std::fs::read_to_string(&pidfile).is_ok_and(|p| p.trim() == pid);
            // The pidfile is written after the listening sockets are open,
            // so whatever answers now is this Nginx.
            if ours && TcpStream::connect_timeout(&addr, IO_TIMEOUT).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "(not listening after {NGINX_START:?})\n{}",
                    self.error_log()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }

    /// The error log's `[error]`-or-worse lines (upstream failures among
    /// them), for assertion messages.
    fn errors(&self) -> Vec<String> {
        self.error_log()
            .lines()
            .filter(|l| {
                ["[error]", "[crit]", "[alert]", "[emerg]"]
                    .iter()
                    .any(|lvl| l.contains(lvl))
            })
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // The group is the master's pid (process_group(0)): this reaches the
        // workers too.
        let _ = signal::killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Nginx in `dir` in front of `site`.
fn nginx_for(nginx: &Path, dir: &TempDir, site: &Site) -> Nginx {
    Nginx::start(nginx, dir.path(), |port| {
        site_conf(nginx, dir.path(), port, site)
    })
}

// ---------------------------------------------------------------------------
// Requests

/// A request with `Host`, optional extra header lines (each ending CRLF)
/// and a Content-Length body for POST.
fn http_request(method: &str, path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let length = if method == "POST" || !body.is_empty() {
        format!("Content-Length: {}\r\n", body.len())
    } else {
        String::new()
    };
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}{length}\r\n")
        .into_bytes();
    req.extend_from_slice(body);
    req
}

/// One request on a fresh connection to `addr` (TCP or Unix).
fn send(addr: &Addr, raw: &[u8]) -> Response {
    match addr {
        Addr::Tcp(a) => {
            let mut conn = Conn::tcp(*a);
            conn.set_read_timeout(Duration::from_secs(15));
            conn.roundtrip(raw)
        }
        Addr::Unix(p) => Conn::unix(p).roundtrip(raw),
    }
}

/// The echo app's view of a GET through `addr` with extra headers.
fn echo_view(addr: &Addr, path: &str, headers: &str) -> Value {
    let resp = send(addr, &http_request("GET", path, headers, b""));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK", "{}", resp.text());
    resp.json()
}

// ---------------------------------------------------------------------------
// The token flow

const SIGNING_KEY: &str = "nginx-test-signing-key-0123456789abcdef";

/// `ferricorn-auth` with two workers on a fresh database in `dir` holding
/// the user `alice` (password `s3cret`), bound to `bind`.
fn start_auth(dir: &TempDir, bind: &str) -> Server {
    let db = dir.join("auth.sqlite3");
    let db = db.to_str().unwrap();
    let env = [("FERRICORN_AUTH_SIGNING_KEY", SIGNING_KEY)];
    let mut create = bin_command(
        "ferricorn-auth",
        &["--db", db, "createuser", "alice", "--password-stdin"],
        &env,
    );
    create.stdin(Stdio::piped()).current_dir(dir.path());
    let mut child = create.spawn().expect("spawn ferricorn-auth createuser");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret\n")
        .expect("password to createuser");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "createuser did not finish in 30 s"
        );
        thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("createuser output");
    assert!(
        status.success(),
        "createuser failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");

    let mut serve = bin_command(
        "ferricorn-auth",
        &["--db", db, "serve", "--bind", bind, "--workers", "2"],
        &env,
    );
    serve.current_dir(dir.path());
    Server::start_command(serve, "ferricorn-auth serve", 1)
}

/// One step of the flow as the client saw it: status line, the JSON body
/// with tokens replaced by `<jwt>`, and the headers simplejwt clients look
/// at.
#[derive(Debug, PartialEq)]
struct Seen {
    step: &'static str,
    status_line: String,
    body: Value,
    headers: Vec<(String, Option<String>)>,
}

/// Replaces the JWTs in `access`/`refresh` with `<jwt>` (they differ from
/// run to run) after checking they look like JWTs.
fn redact(mut body: Value) -> Value {
    for key in ["access", "refresh"] {
        if let Some(token) = body.get(key).and_then(Value::as_str) {
            assert_eq!(token.split('.').count(), 3, "not a JWT: {token}");
            body[key] = json!("<jwt>");
        }
    }
    body
}

/// The whole simplejwt flow against `addr` (ferricorn directly or Nginx):
/// obtain (as JSON and as a form), hello, refresh, verify, blacklist, and
/// the error answers around them.
fn token_flow(addr: &Addr) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut step = |name: &'static str, method: &str, path: &str, headers: &str, body: &str| {
        let resp = send(addr, &http_request(method, path, headers, body.as_bytes()));
        let json = if resp.body.is_empty() {
            Value::Null
        } else {
            resp.json()
        };
        seen.push(Seen {
            step: name,
            status_line: resp.status_line.clone(),
            body: redact(json.clone()),
            headers: ["content-type", "www-authenticate", "allow", "vary"]
                .iter()
                .map(|h| (h.to_string(), resp.header(h).map(str::to_owned)))
                .collect(),
        });
        json
    };
    let ctype = "Content-Type: application/json\r\n";
    step(
        "obtain, wrong password",
        "POST",
        "/api/token/",
        ctype,
        r#"{"username":"alice","password":"wrong"}"#,
    );
    step("obtain, missing fields", "POST", "/api/token/", ctype, "{}");
    step("GET on a POST view", "GET", "/api/token/", "", "");
    let pair = step(
        "obtain",
        "POST",
        "/api/token/",
        ctype,
        r#"{"username":"alice","password":"s3cret"}"#,
    );
    step(
        "obtain as a form, trimmed",
        "POST",
        "/api/token/",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "username=alice&password=+s3cret+",
    );
    let access = pair["access"].as_str().expect("access token").to_owned();
    let refresh = pair["refresh"].as_str().expect("refresh token").to_owned();
    let bearer = format!("Authorization: Bearer {access}\r\n");
    step("hello", "GET", "/api/hello/", &bearer, "");
    step("hello, no credentials", "GET", "/api/hello/", "", "");
    step(
        "hello, bad token",
        "GET",
        "/api/hello/",
        "Authorization: Bearer not.a.jwt\r\n",
        "",
    );
    let refresh_body = json!({ "refresh": refresh }).to_string();
    let renewed = step(
        "refresh",
        "POST",
        "/api/token/refresh/",
        ctype,
        &refresh_body,
    );
    let new_access = renewed["access"].as_str().expect("refreshed access token");
    step(
        "hello with the refreshed token",
        "GET",
        "/api/hello/",
        &format!("Authorization: Bearer {new_access}\r\n"),
        "",
    );
    step(
        "verify",
        "POST",
        "/api/token/verify/",
        ctype,
        &json!({ "token": access }).to_string(),
    );
    step(
        "verify garbage",
        "POST",
        "/api/token/verify/",
        ctype,
        r#"{"token":"garbage"}"#,
    );
    step(
        "blacklist",
        "POST",
        "/api/token/blacklist/",
        ctype,
        &refresh_body,
    );
    step(
        "blacklist again",
        "POST",
        "/api/token/blacklist/",
        ctype,
        &refresh_body,
    );
    step(
        "refresh a blacklisted token",
        "POST",
        "/api/token/refresh/",
        ctype,
        &refresh_body,
    );
    step(
        "blacklist an access token",
        "POST",
        "/api/token/blacklist/",
        ctype,
        &json!({ "refresh": access }).to_string(),
    );
    seen
}

/// The flow through Nginx equals the flow straight to ferricorn, and the
/// straight one is the one simplejwt gives (a spot check of the key steps,
/// so that two equally broken runs do not pass).
fn assert_flow_through_nginx(upstream_bind: &str, protocol: Protocol) {
    let Some(nginx) = nginx_or_skip() else { return };
    let dir = TempDir::new("ngx-flow");
    let bind = upstream_bind.replace("{dir}", dir.path().to_str().unwrap());
    let auth = start_auth(&dir, &bind);
    let upstream = auth.addrs()[0].clone();
    let proxy = nginx_for(&nginx, &dir, &Site::new(&upstream, protocol));

    let direct = token_flow(&upstream);
    let by_step = |name: &str| direct.iter().find(|s| s.step == name).unwrap();
    assert_eq!(by_step("obtain").status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        by_step("obtain").body,
        json!({"refresh": "<jwt>", "access": "<jwt>"})
    );
    assert_eq!(by_step("hello").body, json!({"message": "Hello, World!"}));
    assert_eq!(by_step("blacklist").body, json!({}));
    assert_eq!(
        by_step("blacklist again").body,
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
    );

    let through = token_flow(&Addr::Tcp(proxy.addr()));
    for (d, t) in direct.iter().zip(&through) {
        assert_eq!(
            d,
            t,
            "step {:?} differs through nginx ({protocol:?}, upstream {upstream:?})\n\
             --- nginx errors ---\n{:?}\n--- ferricorn stderr ---\n{}",
            d.step,
            proxy.errors(),
            auth.stderr()
        );
    }
    assert_eq!(direct.len(), through.len());
}

#[test]
fn token_flow_through_nginx_over_a_unix_socket_with_http10_matches_direct() {
    assert_flow_through_nginx("unix:{dir}/auth.sock", Protocol::Http10);
}

#[test]
fn token_flow_through_nginx_over_a_unix_socket_with_keepalive_matches_direct() {
    assert_flow_through_nginx("unix:{dir}/auth.sock", Protocol::KeepAlive);
}

#[test]
fn token_flow_through_nginx_over_tcp_with_http10_matches_direct() {
    assert_flow_through_nginx("127.0.0.1:0", Protocol::Http10);
}

#[test]
fn token_flow_through_nginx_over_tcp_with_keepalive_matches_direct() {
    assert_flow_through_nginx("127.0.0.1:0", Protocol::KeepAlive);
}

/// `deploy/nginx/ferricorn.conf` itself, with only its listen address and
/// socket path changed, serves the token flow.
#[test]
fn shipped_site_config_serves_the_token_flow() {
    let Some(nginx) = nginx_or_skip() else { return };
    let dir = TempDir::new("ngx-kit");
    let socket = dir.join("auth.sock");
    let auth = start_auth(&dir, &format!("unix:{}", socket.display()));
    let shipped_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx/ferricorn.conf");
    let shipped = std::fs::read_to_string(&shipped_path).expect("read deploy/nginx/ferricorn.conf");
    let proxy = Nginx::start(&nginx, dir.path(), |port| {
        let mut site = shipped.clone();
        for (from, to) in [
            ("listen 80;", format!("listen 127.0.0.1:{port};")),
            ("listen [::]:80;", String::new()),
            (
                "unix:/run/ferricorn-auth.sock",
                format!("unix:{}", socket.display()),
            ),
        ] {
            assert!(
                site.contains(from),
                "deploy/nginx/ferricorn.conf no longer contains `{from}`; update this test"
            );
            site = site.replace(from, &to);
        }
        main_conf(&nginx, dir.path(), &site)
    });

    let direct = token_flow(&Addr::Unix(socket.clone()));
    let through = token_flow(&Addr::Tcp(proxy.addr()));
    assert_eq!(
        direct,
        through,
        "--- nginx errors ---\n{:?}\n--- ferricorn stderr ---\n{}",
        proxy.errors(),
        auth.stderr()
    );
    // Without credentials, through the shipped site: the 401 and its header.
    let anonymous = send(
        &Addr::Tcp(proxy.addr()),
        &http_request("GET", "/api/hello/", "", b""),
    );
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
}

// ---------------------------------------------------------------------------
// Client address and scheme

/// The address part of the echo's `peer`.
fn peer_ip(view: &Value) -> String {
    let peer = view["peer"].as_str().unwrap_or_default();
    match peer.parse::<SocketAddr>() {
        Ok(sa) => sa.ip().to_string(),
        Err(_) => peer.to_owned(),
    }
}

/// Under the defaults (`--forwarded-allow-ips 127.0.0.1,::1`) ferricorn
/// believes Nginx on loopback: the scheme Nginx forwards is the one the
/// application sees. Over a Unix socket the peer has no address, so the
/// client address the application sees can only have come from
/// X-Forwarded-For.
#[test]
fn app_sees_forwarded_scheme_and_client_through_nginx_by_default() {
    let Some(nginx) = nginx_or_skip() else { return };
    for unix in [false, true] {
        let dir = TempDir::new("ngx-fwd");
        let sock = dir.join("echo.sock");
        let bind = if unix {
            format!("unix:{}", sock.display())
        } else {
            "127.0.0.1:0".to_owned()
        };
        let echo = Server::start("echo", &["--bind", &bind, "--workers", "1"]);
        let proxy = nginx_for(
            &nginx,
            &dir,
            &Site::new(&echo.addrs()[0], Protocol::KeepAlive),
        );
        let front = Addr::Tcp(proxy.addr());

        let plain = echo_view(&front, "/plain", "");
        assert_eq!(plain["scheme"], "http", "{plain}");
        assert_eq!(peer_ip(&plain), "127.0.0.1", "unix={unix}: {plain}");
        let https = echo_view(&front, "/as-https/x", "");
        assert_eq!(https["scheme"], "https", "unix={unix}: {https}");
        assert_eq!(peer_ip(&https), "127.0.0.1", "unix={unix}: {https}");
        let headers = echo_headers(&https);
        assert!(
            headers.contains(&("x-forwarded-for".into(), "127.0.0.1".into())),
            "{headers:?}"
        );
        assert!(
            headers.iter().any(|(n, v)| n == "host" && v == "localhost"),
            "Host not passed on: {headers:?}"
        );
        if unix {
            // Straight to the socket, without forwarded headers: no address.
            let direct = echo_view(&echo.addrs()[0], "/direct", "");
            assert_eq!(peer_ip(&direct), "", "{direct}");
        }
    }
}

/// Nginx connects from 127.0.0.2 (`proxy_bind`), the client from
/// 127.0.0.1: with Nginx trusted the application sees the client and the
/// forwarded scheme; with Nginx not in `--forwarded-allow-ips` it sees
/// Nginx and plain http.
#[test]
fn app_sees_the_client_only_when_nginx_is_in_forwarded_allow_ips() {
    let Some(nginx) = nginx_or_skip() else { return };
    for (allow, peer, scheme) in [
        ("127.0.0.2", "127.0.0.1", "https"),
        ("10.0.0.1", "127.0.0.2", "http"),
    ] {
        let dir = TempDir::new("ngx-allow");
        let echo = Server::echo(&["--workers", "1", "--forwarded-allow-ips", allow]);
        let mut site = Site::new(&echo.addrs()[0], Protocol::Http10);
        site.proxy_bind = Some("127.0.0.2");
        let proxy = nginx_for(&nginx, &dir, &site);
        let view = echo_view(&Addr::Tcp(proxy.addr()), "/as-https/who", "");
        assert_eq!(
            (
                peer_ip(&view).as_str(),
                view["scheme"].as_str().unwrap_or("")
            ),
            (peer, scheme),
            "--forwarded-allow-ips {allow}: {view}"
        );
    }
}

/// A client that talks to ferricorn directly cannot claim another address
/// or scheme when it is not in `--forwarded-allow-ips`.
#[test]
fn forged_forwarded_headers_from_a_direct_client_are_not_believed() {
    let echo = Server::echo(&["--workers", "1", "--forwarded-allow-ips", "10.0.0.1"]);
    let view = echo_view(
        &Addr::Tcp(echo.addr()),
        "/",
        "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n\
         Forwarded: for=203.0.113.9;proto=https\r\n",
    );
    assert_eq!(peer_ip(&view), "127.0.0.1", "{view}");
    assert_eq!(view["scheme"], "http", "{view}");
}

/// With the shipped `$proxy_add_x_forwarded_for`, a client's own
/// X-Forwarded-For stays in the header, left of the address Nginx appends,
/// and ferricorn takes the right-most address that is not a trusted proxy:
/// the client cannot pass itself off as another address through Nginx.
/// Nginx connects from 127.0.0.2 (the trusted proxy), the client from
/// 127.0.0.1 (not trusted, as a client on the network would be).
#[test]
fn a_client_cannot_forge_its_address_through_nginx() {
    let Some(nginx) = nginx_or_skip() else { return };
    let dir = TempDir::new("ngx-forge");
    let echo = Server::echo(&["--workers", "1", "--forwarded-allow-ips", "127.0.0.2"]);
    let mut site = Site::new(&echo.addrs()[0], Protocol::Http10);
    site.proxy_bind = Some("127.0.0.2");
    let proxy = nginx_for(&nginx, &dir, &site);
    let view = echo_view(
        &Addr::Tcp(proxy.addr()),
        "/",
        "X-Forwarded-For: 203.0.113.9, 127.0.0.2\r\nX-Forwarded-Proto: https\r\n",
    );
    assert_eq!(peer_ip(&view), "127.0.0.1", "{view}");
    assert_eq!(view["scheme"], "http", "{view}");
    let headers = echo_headers(&view);
    assert!(
        headers.contains(&(
            "x-forwarded-for".into(),
            "203.0.113.9, 127.0.0.2, 127.0.0.1".into()
        )),
        "the client's entries are kept, Nginx's appended: {headers:?}"
    );
}

// ---------------------------------------------------------------------------
// Request bodies

const MIB: usize = 1024 * 1024;

/// A 5 MiB body with Content-Length, and chunked bodies buffered by Nginx
/// (sent on with a Content-Length) and streamed (sent on chunked), arrive
/// whole.
#[test]
fn large_and_chunked_bodies_pass_through_nginx() {
    let Some(nginx) = nginx_or_skip() else { return };
    let dir = TempDir::new("ngx-body");
    let echo = Server::echo(&["--workers", "1"]);
    let proxy = nginx_for(
        &nginx,
        &dir,
        &Site::new(&echo.addrs()[0], Protocol::KeepAlive),
    );
    let front = Addr::Tcp(proxy.addr());
    let body: Vec<u8> = (0..5 * MIB).map(|i| (i % 251) as u8).collect();

    let resp = send(&front, &http_request("POST", "/big", "", &body));
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK", "{}", resp.text());
    assert_eq!(resp.json()["body_len"], 5 * MIB, "{:?}", proxy.errors());

    for path in ["/chunked", "/unbuffered/chunked"] {
        let resp = send(&front, &post_chunked(path, &body[..MIB + 123], 64 * 1024));
        assert_eq!(
            resp.status_line,
            "HTTP/1.1 200 OK",
            "{path}: {}",
            resp.text()
        );
        let view = resp.json();
        assert_eq!(view["body_len"], MIB + 123, "{path}: {:?}", proxy.errors());
        let headers = echo_headers(&view);
        let streamed = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        assert_eq!(
            streamed,
            path.starts_with("/unbuffered/"),
            "{path}: {headers:?}"
        );
    }
}

/// With Nginx allowing more than ferricorn's `--limit-request-body`,
/// ferricorn's 413 reaches the client (its `x-request-id` shows it came
/// from ferricorn), for a body just over the limit and for one eight
/// times it.
///
/// Nginx sends the whole body before it reads the answer (Gunicorn's and
/// any HTTP/1.1 client may do the same), so a server that answers 413 and
/// closes with the rest of the body unread resets the connection under
/// Nginx's writes, and Nginx answers 502 instead. The server must drain
/// (lingering close, as Nginx itself does) for the 413 to arrive; the
/// 8 MiB case, past any loopback socket buffer, makes that deterministic.
#[test]
fn over_limit_body_gets_ferricorns_413_through_nginx() {
    let Some(nginx) = nginx_or_skip() else { return };
    let limit = MIB.to_string();
    for protocol in [Protocol::Http10, Protocol::KeepAlive] {
        let dir = TempDir::new("ngx-413");
        let echo = Server::echo(&["--workers", "1", "--limit-request-body", &limit]);
        let proxy = nginx_for(&nginx, &dir, &Site::new(&echo.addrs()[0], protocol));
        let front = Addr::Tcp(proxy.addr());
        let body = vec![b'x'; 8 * MIB];

        let at_limit = send(&front, &http_request("POST", "/", "", &body[..MIB]));
        assert_eq!(at_limit.status_line, "HTTP/1.1 200 OK", "{protocol:?}");
        for len in [MIB + 1, 8 * MIB] {
            let resp = send(&front, &http_request("POST", "/", "", &body[..len]));
            assert_eq!(
                resp.status,
                413,
                "{protocol:?}, {len} bytes: {}\n--- nginx errors ---\n{:?}",
                resp.status_line,
                proxy.errors()
            );
            assert!(
                resp.header("x-request-id").is_some(),
                "{protocol:?}: this 413 is not ferricorn's: {resp:?}"
            );
        }
        // Also chunked, where the size is known only while reading.
        let resp = send(&front, &post_chunked("/unbuffered/", &body, 64 * 1024));
        assert_eq!(resp.status, 413, "{protocol:?}, chunked: {resp:?}");
        // The connection pool is still good afterwards.
        let after = send(&front, &http_request("POST", "/", "", b"small"));
        assert_eq!(after.status_line, "HTTP/1.1 200 OK", "{protocol:?}");
    }
}

/// With `client_max_body_size` equal to ferricorn's limit, as the shipped
/// site sets it, Nginx itself refuses what ferricorn would refuse, and
/// accepts what ferricorn accepts.
#[test]
fn nginx_body_limit_matches_ferricorns() {
    let Some(nginx) = nginx_or_skip() else { return };
    let dir = TempDir::new("ngx-max");
    let echo = Server::echo(&["--workers", "1", "--limit-request-body", "1048576"]);
    let mut site = Site::new(&echo.addrs()[0], Protocol::KeepAlive);
    site.client_max_body_size = "1m";
    let proxy = nginx_for(&nginx, &dir, &site);
    let front = Addr::Tcp(proxy.addr());
    let body = vec![b'x'; MIB + 1];
    let ok = send(&front, &http_request("POST", "/", "", &body[..MIB]));
    assert_eq!(ok.status_line, "HTTP/1.1 200 OK");
    assert_eq!(ok.json()["body_len"], MIB);
    let too_big = send(&front, &http_request("POST", "/", "", &body));
    assert_eq!(too_big.status, 413, "{too_big:?}");
    // Straight to ferricorn, the same body gets the same answer.
    let direct = send(&echo.addrs()[0], &http_request("POST", "/", "", &body));
    assert_eq!(direct.status, 413, "{direct:?}");
}

// ---------------------------------------------------------------------------
// Reload and upgrade under load

/// What a keep-alive load through Nginx saw.
#[derive(Debug, Default)]
struct LoadResult {
    ok: usize,
    bad_gateway: usize,
    failures: Vec<String>,
    pids: BTreeSet<i64>,
}

/// `threads` clients, each on its own keep-alive connection to Nginx
/// (reconnecting only when Nginx says `Connection: close`), making GETs
/// until stopped or `LOAD_LIMIT` passes.
struct KeepAliveLoad(ClientThreads<LoadResult>);

const LOAD_LIMIT: Duration = Duration::from_secs(30);

impl KeepAliveLoad {
    fn start(addr: SocketAddr, threads: usize) -> KeepAliveLoad {
        KeepAliveLoad(ClientThreads::start(threads, move |stop: &AtomicBool| {
            client_loop(addr, stop)
        }))
    }

    fn finish(self) -> LoadResult {
        let mut total = LoadResult::default();
        for r in self.0.finish() {
            total.ok += r.ok;
            total.bad_gateway += r.bad_gateway;
            total.failures.extend(r.failures);
            total.pids.extend(r.pids);
        }
        total
    }
}

fn client_loop(addr: SocketAddr, stop: &AtomicBool) -> LoadResult {
    let mut result = LoadResult::default();
    let started = Instant::now();
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < LOAD_LIMIT {
        let reader = match &mut conn {
            Some(reader) => reader,
            None => match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                    conn.insert(BufReader::new(stream))
                }
                Err(e) => {
                    result.failures.push(format!("connect: {e}"));
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        let outcome = reader
            .get_mut()
            .write_all(get("/load").as_bytes())
            .map_err(|e| format!("write: {e}"))
            .and_then(|()| read_response(reader, false).map_err(|e| format!("read: {e}")));
        match outcome {
            Ok(resp) if resp.status == 200 => {
                result.ok += 1;
                if let Some(pid) = serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .and_then(|v| v["pid"].as_i64())
                {
                    result.pids.insert(pid);
                }
                if resp.header_has_token("connection", "close") {
                    conn = None;
                }
            }
            Ok(resp) if resp.status == 502 => {
                result.bad_gateway += 1;
                conn = None;
            }
            Ok(resp) => {
                result.failures.push(resp.status_line);
                conn = None;
            }
            Err(e) => {
                result.failures.push(e);
                conn = None;
            }
        }
        thread::sleep(Duration::from_millis(2));
    }
    result
}

/// ferricorn's echo with two workers and a pidfile behind Nginx.
struct Fleet {
    dir: TempDir,
    echo: Server,
    proxy: Nginx,
    pidfile: PathBuf,
    workers: Vec<i32>,
}

fn fleet(nginx: &Path, unix: bool, protocol: Protocol) -> Fleet {
    let dir = TempDir::new("ngx-fleet");
    let pidfile = dir.join("echo.pid");
    let bind = if unix {
        format!("unix:{}", dir.join("echo.sock").display())
    } else {
        "127.0.0.1:0".to_owned()
    };
    let echo = Server::start(
        "echo",
        &[
            "--bind",
            &bind,
            "--workers",
            "2",
            "--pid",
            pidfile.to_str().unwrap(),
            // Outlives Nginx's upstream keepalive_timeout, as deployed.
            "--keep-alive",
            "65",
        ],
    );
    let mut workers = Vec::new();
    assert!(
        wait_until(Duration::from_secs(15), || {
            workers = children_of(echo.pid());
            workers.len() == 2
        }),
        "expected 2 workers, found {workers:?}\n{}",
        echo.stderr()
    );
    let proxy = nginx_for(nginx, &dir, &Site::new(&echo.addrs()[0], protocol));
    let warm = echo_view(&Addr::Tcp(proxy.addr()), "/warm", "");
    assert!(warm["pid"].is_i64(), "{warm}");
    Fleet {
        dir,
        echo,
        proxy,
        pidfile,
        workers,
    }
}

/// Zero 502s, zero failed requests, and enough requests to mean something.
fn assert_clean_load(load: &LoadResult, fleet: &Fleet, what: &str) {
    eprintln!(
        "{what}: {} ok, {} 502s, {} failed, served by {:?}",
        load.ok,
        load.bad_gateway,
        load.failures.len(),
        load.pids
    );
    assert!(
        load.bad_gateway == 0 && load.failures.is_empty() && load.ok >= 100,
        "{what}: {} ok, {} 502s, {} failed {:?}\n--- nginx errors ---\n{:#?}\n\
         --- ferricorn stderr ---\n{}",
        load.ok,
        load.bad_gateway,
        load.failures.len(),
        &load.failures[..load.failures.len().min(10)],
        fleet.proxy.errors(),
        fleet.echo.stderr()
    );
}

/// HUP: new workers start, the old ones retire; through Nginx not one
/// request fails.
fn assert_hup_is_invisible(unix: bool, protocol: Protocol) {
    let Some(nginx) = nginx_or_skip() else { return };
    let fleet = fleet(&nginx, unix, protocol);
    let load = KeepAliveLoad::start(fleet.proxy.addr(), 4);
    thread::sleep(Duration::from_millis(700));
    fleet.echo.signal(Signal::SIGHUP);
    let mut now = Vec::new();
    let replaced = wait_until(Duration::from_secs(15), || {
        now = children_of(fleet.echo.pid());
        now.len() == 2 && now.iter().all(|p| !fleet.workers.contains(p))
    });
    thread::sleep(Duration::from_millis(1500));
    let result = load.finish();
    assert!(
        replaced,
        "workers not replaced after HUP: {:?} -> {now:?}\n{}",
        fleet.workers,
        fleet.echo.stderr()
    );
    assert_clean_load(&result, &fleet, &format!("HUP ({protocol:?}, unix={unix})"));
    assert!(
        now.iter().any(|p| result.pids.contains(&i64::from(*p))),
        "no request served by the new workers {now:?}: {:?}",
        result.pids
    );
}

#[test]
fn hup_reload_through_nginx_over_a_unix_socket_with_keepalive_fails_nothing() {
    assert_hup_is_invisible(true, Protocol::KeepAlive);
}

#[test]
fn hup_reload_through_nginx_over_tcp_with_http10_fails_nothing() {
    assert_hup_is_invisible(false, Protocol::Http10);
}

/// USR2 starts a new master (pidfile `PIDFILE.2`) sharing the socket; TERM
/// to the old master completes the upgrade (`PIDFILE.2` becomes
/// `PIDFILE`); through Nginx not one request fails, and the socket is
/// still there for the new master.
fn assert_usr2_is_invisible(unix: bool, protocol: Protocol) {
    let Some(nginx) = nginx_or_skip() else { return };
    let mut fleet = fleet(&nginx, unix, protocol);
    let old_master = fleet.echo.pid();
    let upgraded = PathBuf::from(format!("{}.2", fleet.pidfile.display()));
    let load = KeepAliveLoad::start(fleet.proxy.addr(), 4);
    thread::sleep(Duration::from_millis(500));

    fleet.echo.signal(Signal::SIGUSR2);
    let mut new_master = 0;
    let started = wait_until(Duration::from_secs(15), || {
        new_master = std::fs::read_to_string(&upgraded)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        new_master > 0 && children_of(new_master).len() == 2
    });
    if !started {
        let result = load.finish();
        panic!(
            "no upgraded master with 2 workers after USR2 (load: {} ok, {} 502s)\n{}",
            result.ok,
            result.bad_gateway,
            fleet.echo.stderr()
        );
    }
    assert_ne!(new_master, old_master);
    thread::sleep(Duration::from_millis(500));
    fleet.echo.signal(Signal::SIGTERM);
    let status = fleet.echo.wait_exit(Duration::from_secs(15));
    let promoted = wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&fleet.pidfile).is_ok_and(|t| t.trim() == new_master.to_string())
    });
    thread::sleep(Duration::from_millis(1000));
    let result = load.finish();

    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "old master after TERM\n{}",
        fleet.echo.stderr()
    );
    assert!(
        promoted,
        "{} does not hold the new master's pid {new_master}",
        fleet.pidfile.display()
    );
    assert!(!upgraded.exists(), "{} left behind", upgraded.display());
    assert_clean_load(
        &result,
        &fleet,
        &format!("USR2 ({protocol:?}, unix={unix})"),
    );
    let new_workers = children_of(new_master);
    assert!(
        new_workers
            .iter()
            .any(|p| result.pids.contains(&i64::from(*p))),
        "no request served by the new master's workers {new_workers:?}: {:?}",
        result.pids
    );
    assert!(fleet.workers.iter().all(|p| !process_alive(*p)));
    if unix {
        let sock = fleet.dir.join("echo.sock");
        assert!(
            sock.exists(),
            "the old master removed {} on exit; the new master still listens on it",
            sock.display()
        );
    }
    // New connections, Nginx's and straight ones, reach the new master.
    let after = echo_view(&Addr::Tcp(fleet.proxy.addr()), "/after", "");
    assert!(
        new_workers.contains(&(after["pid"].as_i64().unwrap_or(0) as i32)),
        "{after}"
    );
    let direct = send(&fleet.echo.addrs()[0], get_close("/direct").as_bytes());
    assert_eq!(direct.status_line, "HTTP/1.1 200 OK");
    // The new master is in the old one's process group, which the Server's
    // drop kills; be explicit anyway.
    send_signal(new_master, Signal::SIGKILL);
}

#[test]
fn usr2_upgrade_through_nginx_over_a_unix_socket_with_keepalive_fails_nothing() {
    assert_usr2_is_invisible(true, Protocol::KeepAlive);
}

#[test]
fn usr2_upgrade_through_nginx_over_tcp_with_keepalive_fails_nothing() {
    assert_usr2_is_invisible(false, Protocol::KeepAlive);
}
