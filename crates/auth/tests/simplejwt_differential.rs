//! Differential test: `ferricorn-auth` against the real simplejwt.
//!
//! Both servers run as real processes on 127.0.0.1 — the `ferricorn-auth`
//! binary, and the Django + DRF + simplejwt 5.5.1 project of the benchmark
//! (`bench/django_app`) under Gunicorn from `bench/.venv` — with the same
//! signing key, lifetimes and rotation + blacklist settings, and the same
//! users, each created through its own side's command line. Every case is
//! one raw HTTP/1.1 request written to both over a socket; the answers are
//! compared: status line, the headers a client can read (all but the ones
//! the HTTP server itself owns, see [`SERVER_HEADERS`]), and the body byte
//! for byte — except bodies carrying fresh tokens, whose layout with the
//! tokens masked and the tokens' shapes (header, claim names in order,
//! `token_type`, `exp - iat`, the user id and its JSON type, `jti` format)
//! are compared instead, Django's own HTML pages (404, redirects, 400),
//! whose headers are compared but not the HTML, and answers to HEAD, whose
//! body Gunicorn sends and HTTP forbids.
//!
//! The hello view is the tutorial's class-based `APIView`, so its `Allow`
//! (`GET, HEAD, OPTIONS`) is compared exactly. Gunicorn's log (Django logs every 4xx) goes to a file in the
//! test's temporary directory.
//!
//! A difference we keep on purpose is listed in [`EXPECTED_DIFFERENCES`]
//! with its reason. A listed case that starts to match fails the test, so
//! the list stays honest; any other difference fails it too.
//!
//! The cases run three ways against ferricorn-auth (Gunicorn is always
//! asked HTTP/1.1 in cleartext): the same bytes in cleartext, the same
//! bytes over TLS (`--certfile`/`--keyfile`, a rustls client), and over
//! HTTP/2 with prior knowledge (`--http2c`), each raw request read back with
//! httparse and sent as the same method, target, fields and body; what
//! HTTP/2 cannot carry unchanged goes over HTTP/1.1, counted (see
//! [`NotHttp2`]). Over HTTP/2 the status is compared by its code (HTTP/2
//! has no reason phrase).
//!
//! The test skips (with a printed reason) when `bench/.venv` is missing,
//! unless `CI=true`, where that is a failure: CI creates the venv with
//! `bench/python-env.sh` first.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ferricorn_auth::pyjson::{self, Value};

mod common;

use common::django::{venv_or_skip, Django};
use common::{b64, jti, now, run, self_signed_cert, serve, tls_client, tls_roundtrip, Proc, BIN};

const KEY: &str = "differential-test-signing-key-0123456789abcdef";
const PASSWORD: &str = "correct horse";
/// Created on both sides, in this order, so the ids agree (1, 2, 3).
const USERS: &[(&str, bool)] = &[("alice", true), ("bob", false), ("zoë_日本語", true)];
/// simplejwt's defaults, which the Django project keeps and ferricorn-auth
/// has too: 5 minutes and 1 day.
const ACCESS_LIFETIME: i64 = 300;
const REFRESH_LIFETIME: i64 = 86_400;
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Headers the HTTP server writes, not the application: Gunicorn and
/// ferricorn's server each write their own (ferricorn's server also echoes
/// or makes an `X-Request-Id`, for logs, on every answer). The framing too:
/// Gunicorn sends a body without a length (Django's redirects) chunked,
/// hyper an empty one with `Content-Length: 0`; the bodies read the same.
const SERVER_HEADERS: &[&str] = &[
    "date",
    "server",
    "connection",
    "keep-alive",
    "x-request-id",
    "transfer-encoding",
];

/// Cases whose answers differ on purpose, and why. Each must differ: a
/// listed case that matches fails the test.
const EXPECTED_DIFFERENCES: &[(&str, &str)] = &[
    (
        "refresh: deleted user",
        "simplejwt's TokenRefreshSerializer looks the user up with \
         objects.get() and lets DoesNotExist escape: a 500 page. We answer \
         the 401 it gives for an inactive user (no active account for the \
         token); a server error for a client's stale token is a bug to not copy",
    ),
    (
        "refresh: non-numeric user id",
        "simplejwt looks up user_id \"abc\" with objects.get(id=\"abc\"), whose \
         ValueError escapes as a 500 page; we answer as for a deleted user",
    ),
    (
        "hello: non-numeric user id",
        "simplejwt's JWTAuthentication.get_user catches only DoesNotExist, so \
         the ValueError of user_id \"abc\" is a 500 page; we answer 401 User not \
         found (the id names no user)",
    ),
    (
        "obtain: very deep nesting",
        "CPython's JSON decoder hits the interpreter's recursion limit (a \
         RecursionError, which DRF does not catch: a 500 page); we refuse the \
         body with a 400 parse error instead of failing",
    ),
    (
        "obtain: arrays 962 deep",
        "one level past what CPython decodes under Django (961, see \
         pyjson::MAX_DEPTH): its RecursionError is a 500 page, ours a 400",
    ),
    (
        "hello: 9 KB token",
        "the HTTP servers refuse the header before any application runs: \
         Gunicorn's 431 has an HTML body, ferricorn's server (crates/server, \
         not this crate) an empty one; the status is the same",
    ),
    (
        "Host not in ALLOWED_HOSTS",
        "Django refuses a Host outside ALLOWED_HOSTS (a setting of that \
         deployment, 127.0.0.1 and localhost) with a 400 page; ferricorn-auth \
         has no host list, it serves whatever name the proxy in front routes \
         to it",
    ),
];

// ------------------------------------------------------------ processes

fn start_django(bench: &Path, dir: &Path) -> (Proc, SocketAddr) {
    let db = dir.join("django.sqlite3").display().to_string();
    let django = Django::start(
        bench,
        dir,
        &[("BENCH_SIGNING_KEY", KEY), ("BENCH_DJANGO_DB", &db)],
    );
    django.create_users(USERS, PASSWORD);
    (django.proc, django.addr)
}

/// `ferricorn-auth serve`, one worker, on a port it picks, on `db` (a
/// SQLite file or a PostgreSQL URL); the address is read from its
/// "Listening at" line.
fn start_ferricorn(dir: &Path, db: &str, extra: &[&str]) -> (Proc, SocketAddr) {
    if db.starts_with("postgres://") {
        // The admin commands need the schema; serve would make it too.
        run(
            "ferricorn-auth migrate",
            Command::new(BIN).args(["--db", db, "migrate"]),
            "",
        );
    }
    for (i, (name, active)) in USERS.iter().enumerate() {
        let mut cmd = Command::new(BIN);
        cmd.arg("--db")
            .arg(db)
            .args(["createuser", name, "--password-stdin"]);
        if !active {
            cmd.arg("--inactive");
        }
        let id = run(
            "ferricorn-auth createuser",
            &mut cmd,
            &format!("{PASSWORD}\n"),
        );
        assert_eq!(id.trim(), (i + 1).to_string());
    }
    let server = serve(
        Command::new(BIN)
            .arg("--db")
            .arg(db)
            .args(["serve", "-b", "127.0.0.1:0", "-w", "1"])
            .args(extra)
            .current_dir(dir)
            .env("FERRICORN_AUTH_SIGNING_KEY", KEY)
            .env("FERRICORN_AUTH_ROTATE_REFRESH_TOKENS", "true")
            .env("FERRICORN_AUTH_BLACKLIST_AFTER_ROTATION", "true")
            .env(
                "FERRICORN_AUTH_ACCESS_TOKEN_LIFETIME",
                ACCESS_LIFETIME.to_string(),
            )
            .env(
                "FERRICORN_AUTH_REFRESH_TOKEN_LIFETIME",
                REFRESH_LIFETIME.to_string(),
            ),
    );
    (server.proc, server.addr)
}

// ------------------------------------------------------------ HTTP

/// One answer, as read from the socket.
#[derive(Debug)]
struct Reply {
    /// `HTTP/2 <code>` over HTTP/2, which has no status line (and no
    /// reason phrase): see [`compare`].
    status_line: String,
    status: u16,
    /// Lower-case names, in order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Over HTTP/2: the stream failed after the head arrived (the client
    /// saw the server break the protocol, e.g. DATA after HEAD). Always a
    /// difference: Gunicorn's answer is complete.
    broken: Option<String>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// How a side is reached. Django (Gunicorn) is always [`Link::Plain`].
enum Link {
    /// HTTP/1.1 in cleartext.
    Plain,
    /// HTTP/1.1 over TLS, ALPN `http/1.1`, trusting the test's certificate.
    Tls(Arc<rustls::ClientConfig>),
    /// HTTP/2 with prior knowledge (`--http2c`) for the cases HTTP/2 can
    /// carry (see [`as_http2`]); HTTP/1.1 in cleartext for the others, on
    /// the same server (which serves both), so both sides see every case.
    H2c(tokio::runtime::Runtime),
}

/// How the cases reach ferricorn-auth in one run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Over {
    Http1,
    Https,
    Http2,
}

/// Sends one case's request over `link` and reads the answer, with why it
/// did not go over HTTP/2 when `link` is [`Link::H2c`] and HTTP/2 cannot
/// carry it (it went over HTTP/1.1 then).
fn send(
    link: &Link,
    addr: SocketAddr,
    raw: &[u8],
    head: bool,
) -> Result<(Reply, Option<NotHttp2>), String> {
    match link {
        Link::Plain => exchange(addr, raw, head).map(|r| (r, None)),
        Link::Tls(config) => {
            let buf = tls_roundtrip(config, addr, raw, IO_TIMEOUT)?;
            parse_reply(&buf, head).map(|r| (r, None))
        }
        Link::H2c(rt) => match as_http2(raw) {
            Ok(request) => rt.block_on(h2_exchange(addr, request)).map(|r| (r, None)),
            Err(why) => exchange(addr, raw, head).map(|r| (r, Some(why))),
        },
    }
}

/// Writes `raw` and reads the answer until the server closes (every request
/// says `Connection: close`). A server may answer before reading the whole
/// body, so a failed write is not an error by itself.
fn exchange(addr: SocketAddr, raw: &[u8], head: bool) -> Result<Reply, String> {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let _ = s.write_all(raw);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if !buf.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    }
    parse_reply(&buf, head)
}

/// One HTTP/1.x answer, read to the server's close, parsed.
fn parse_reply(buf: &[u8], head: bool) -> Result<Reply, String> {
    let end = find(buf, b"\r\n\r\n").ok_or_else(|| {
        format!(
            "no complete head in {:?}",
            String::from_utf8_lossy(&buf[..buf.len().min(200)])
        )
    })?;
    let head_text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or("").to_string();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &buf[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if head {
        rest.to_vec()
    } else if chunked {
        dechunk(rest)?
    } else if let Some((_, len)) = headers.iter().find(|(n, _)| n == "content-length") {
        let len: usize = len.parse().map_err(|_| format!("content-length {len}"))?;
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Reply {
        status_line,
        status,
        headers,
        body,
        broken: None,
    })
}

/// Fields HTTP/2 has no place for (RFC 9113 section 8.2.2): the
/// connection's, not the request's. Dropped from the request sent (`TE`
/// unless it is `trailers`, the one value HTTP/2 allows).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
];

/// Why a raw request cannot go over HTTP/2 unchanged: the reasons
/// [`as_http2`] gives, for the count the HTTP/2 run prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NotHttp2 {
    /// httparse refuses the head, or it is not all there.
    MalformedHead,
    /// Chunked (or any) transfer coding: HTTP/2 frames bodies itself.
    TransferEncoding,
    /// `Connection` names more than the harness's own `close`.
    ConnectionSpecific,
    /// Not origin-form: absolute-form, authority-form, `*`.
    TargetForm,
    /// No Host, or several, or one that is no valid :authority.
    Authority,
    /// A method, target, name or value HTTP/2 (the `http` crate) refuses.
    Forbidden,
    /// Content-Length missing, invalid, or not what follows the head.
    Framing,
}

/// One request as HTTP/2 sends it.
struct Http2Request {
    request: http::Request<()>,
    body: Vec<u8>,
}

/// Reads `raw` (one HTTP/1.1 request, `Connection: close` and all) back
/// into the same method, target, fields and body for HTTP/2: Host becomes
/// :authority, the hop-by-hop fields go, the rest keep their order (names
/// lower-cased, as HTTP/2 requires).
fn as_http2(raw: &[u8]) -> Result<Http2Request, NotHttp2> {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut fields);
    let head_len = match req.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err(NotHttp2::MalformedHead),
    };
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Err(NotHttp2::MalformedHead);
    };
    let mut authority = None;
    let mut length = None;
    let mut headers = http::HeaderMap::new();
    for field in req.headers.iter() {
        let name = field.name.to_ascii_lowercase();
        let value = field.value;
        match name.as_str() {
            "transfer-encoding" => return Err(NotHttp2::TransferEncoding),
            "connection" => {
                let close = std::str::from_utf8(value)
                    .is_ok_and(|v| v.split(',').all(|t| t.trim().eq_ignore_ascii_case("close")));
                if !close {
                    return Err(NotHttp2::ConnectionSpecific);
                }
                continue;
            }
            "te" if value.eq_ignore_ascii_case(b"trailers") => {}
            n if HOP_BY_HOP.contains(&n) => continue,
            "host" => {
                if authority.is_some() {
                    return Err(NotHttp2::Authority);
                }
                authority =
                    Some(http::uri::Authority::try_from(value).map_err(|_| NotHttp2::Authority)?);
                continue;
            }
            "content-length" => {
                let n = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok())
                    .ok_or(NotHttp2::Framing)?;
                if length.replace(n).is_some_and(|m| m != n) {
                    return Err(NotHttp2::Framing);
                }
            }
            _ => {}
        }
        let name =
            http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| NotHttp2::Forbidden)?;
        let value = http::HeaderValue::from_bytes(value).map_err(|_| NotHttp2::Forbidden)?;
        headers.append(name, value);
    }
    if !target.starts_with('/') {
        return Err(NotHttp2::TargetForm);
    }
    let authority = authority.ok_or(NotHttp2::Authority)?;
    let body = &raw[head_len..];
    if body.len() != length.unwrap_or(0) {
        return Err(NotHttp2::Framing);
    }
    let uri = http::Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(target)
        .build()
        .map_err(|_| NotHttp2::Forbidden)?;
    let method = http::Method::from_bytes(method.as_bytes()).map_err(|_| NotHttp2::Forbidden)?;
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .map_err(|_| NotHttp2::Forbidden)?;
    *request.headers_mut() = headers;
    Ok(Http2Request {
        request,
        body: body.to_vec(),
    })
}

/// One request on a fresh HTTP/2 connection with prior knowledge (as each
/// HTTP/1.1 case has its own connection); the answer's fields as the server
/// sent them (HTTP/2 names are lower-case already).
async fn h2_exchange(addr: SocketAddr, req: Http2Request) -> Result<Reply, String> {
    let work = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (client, connection) = h2::client::handshake(tcp)
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        tokio::spawn(connection);
        let mut client = client.ready().await.map_err(|e| format!("HTTP/2: {e}"))?;
        let end = req.body.is_empty();
        let (answer, mut stream) = client
            .send_request(req.request, end)
            .map_err(|e| format!("sending the request: {e}"))?;
        if !end {
            // Buffered by h2 and sent as the server's windows allow.
            stream
                .send_data(bytes::Bytes::from(req.body), true)
                .map_err(|e| format!("sending the body: {e}"))?;
        }
        let answer = answer
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        let (parts, mut body) = answer.into_parts();
        let mut bytes = Vec::new();
        let mut broken = None;
        while let Some(data) = body.data().await {
            let data = match data {
                Ok(data) => data,
                // The head is in: keep it for the comparison, and the
                // failure as a difference of its own.
                Err(e) => {
                    broken = Some(format!("the stream failed after the head: {e}"));
                    break;
                }
            };
            let _ = body.flow_control().release_capacity(data.len());
            bytes.extend_from_slice(&data);
        }
        Ok(Reply {
            status_line: format!("HTTP/2 {}", parts.status.as_u16()),
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).trim().to_owned(),
                    )
                })
                .collect(),
            body: bytes,
            broken,
        })
    };
    tokio::time::timeout(IO_TIMEOUT, work)
        .await
        .map_err(|_| format!("no HTTP/2 answer within {IO_TIMEOUT:?}"))?
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = find(b, b"\r\n").ok_or("chunk size line")?;
        let size = std::str::from_utf8(&b[..eol]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
            .map_err(|e| e.to_string())?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&b[..size.min(b.len())]);
        b = &b[(size + 2).min(b.len())..];
    }
}

// ------------------------------------------------------------ cases

/// How the answers of a case are compared.
#[derive(Clone, Copy, PartialEq)]
enum Check {
    /// Status line, application headers (with `Content-Length`), body bytes.
    Exact,
    /// A JSON object of fresh tokens: status line, application headers but
    /// `Content-Length`, the body with its tokens masked, and each token's
    /// shape. (Both sides' tokens differ in `jti`, `iat` and signature.)
    Tokens,
    /// One of Django's HTML pages: status line and application headers
    /// (`Location`, `Content-Type`, the security headers) but
    /// `Content-Length`; the HTML is not compared.
    Html,
}

/// One request. `%NAME%` in the path, the header values and the body is
/// replaced by the variable `NAME` of the side it is sent to (a token that
/// side issued, or a token minted here, the same for both).
struct Case {
    name: String,
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    /// Send `Content-Length` (with a body). Off to send a body-less request
    /// without the header.
    content_length: bool,
    check: Check,
    /// Answer fields to keep as variables: (JSON key, variable).
    capture: Vec<(&'static str, &'static str)>,
}

impl Case {
    fn new(name: impl Into<String>, method: &'static str, path: &str) -> Case {
        Case {
            name: name.into(),
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
            content_length: true,
            check: Check::Exact,
            capture: Vec::new(),
        }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Case {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = Some(body.into());
        self
    }

    fn json(self, body: impl Into<Vec<u8>>) -> Case {
        self.header("Content-Type", "application/json").body(body)
    }

    fn no_length(mut self) -> Case {
        self.content_length = false;
        self
    }

    fn tokens(mut self) -> Case {
        self.check = Check::Tokens;
        self
    }

    fn html(mut self) -> Case {
        self.check = Check::Html;
        self
    }

    fn capture(mut self, key: &'static str, var: &'static str) -> Case {
        self.capture.push((key, var));
        self
    }

    fn bearer(self, var: &str) -> Case {
        self.header("Authorization", format!("Bearer %{var}%"))
    }
}

type Vars = BTreeMap<String, String>;

fn substitute(text: &[u8], vars: &Vars) -> Vec<u8> {
    let mut out = text.to_vec();
    for (k, v) in vars {
        let pat = format!("%{k}%");
        while let Some(p) = find(&out, pat.as_bytes()) {
            out.splice(p..p + pat.len(), v.bytes());
        }
    }
    out
}

fn raw_request(case: &Case, addr: SocketAddr, vars: &Vars) -> Vec<u8> {
    let path = substitute(case.path.as_bytes(), vars);
    let mut r = Vec::new();
    r.extend_from_slice(case.method.as_bytes());
    r.push(b' ');
    r.extend_from_slice(&path);
    r.extend_from_slice(b" HTTP/1.1\r\n");
    if !case
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("host"))
    {
        r.extend_from_slice(format!("Host: {addr}\r\n").as_bytes());
    }
    for (n, v) in &case.headers {
        r.extend_from_slice(n.as_bytes());
        r.extend_from_slice(b": ");
        r.extend_from_slice(&substitute(v.as_bytes(), vars));
        r.extend_from_slice(b"\r\n");
    }
    let body = case.body.as_ref().map(|b| substitute(b, vars));
    if let (Some(b), true) = (&body, case.content_length) {
        r.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes());
    }
    r.extend_from_slice(b"Connection: close\r\n\r\n");
    if let Some(b) = body {
        r.extend_from_slice(&b);
    }
    r
}

/// An HS256 token over exactly `payload`, with `key`.
fn mint_raw(payload: &str, key: &str) -> String {
    let input = format!("{}.{}", b64(r#"{"alg":"HS256","typ":"JWT"}"#), b64(payload));
    let sig = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{input}.{sig}")
}

/// A simplejwt-shaped token: type, `exp` from now + `exp_in`, `iat`, a
/// fresh `jti`, the user id (as a string, as simplejwt writes it), then
/// `extra` claims.
fn mint(token_type: &str, exp_in: i64, user_id: &str, extra: &str) -> String {
    let t = now();
    let payload = format!(
        r#"{{"token_type":"{token_type}","exp":{},"iat":{t},"jti":"{}","user_id":"{user_id}"{extra}}}"#,
        t + exp_in,
        jti()
    );
    mint_raw(&payload, KEY)
}

/// The tokens minted here, sent to both sides alike.
fn minted() -> Vars {
    let mut v = Vars::new();
    let mut put = |k: &str, t: String| {
        v.insert(k.to_string(), t);
    };
    put("EXPIRED_REFRESH", mint("refresh", -3600, "1", ""));
    put("EXPIRED_ACCESS", mint("access", -3600, "1", ""));
    put(
        "BADSIG_REFRESH",
        mint_raw(
            &format!(
                r#"{{"token_type":"refresh","exp":{},"iat":{},"jti":"{}","user_id":"1"}}"#,
                now() + 3600,
                now(),
                jti()
            ),
            "some-other-key",
        ),
    );
    put(
        "BADSIG_ACCESS",
        mint_raw(
            &format!(
                r#"{{"token_type":"access","exp":{},"iat":{},"jti":"{}","user_id":"1"}}"#,
                now() + 300,
                now(),
                jti()
            ),
            "some-other-key",
        ),
    );
    let none_payload = format!(
        r#"{{"token_type":"refresh","exp":{},"iat":{},"jti":"{}","user_id":"1"}}"#,
        now() + 3600,
        now(),
        jti()
    );
    put(
        "NONE_REFRESH",
        format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&none_payload)
        ),
    );
    let none_access = none_payload.replace("refresh", "access");
    put(
        "NONE_ACCESS",
        format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&none_access)
        ),
    );
    put("INACTIVE_ACCESS", mint("access", 300, "2", ""));
    put("INACTIVE_REFRESH", mint("refresh", 3600, "2", ""));
    put("GONE_ACCESS", mint("access", 300, "999", ""));
    put("GONE_REFRESH", mint("refresh", 3600, "999", ""));
    put(
        "MINTED_REFRESH",
        mint("refresh", 3600, "1", r#","scope":"x""#),
    );
    put("MINTED_ACCESS", mint("access", 300, "1", r#","scope":"x""#));
    put("TEXT_USER_REFRESH", mint("refresh", 3600, "abc", ""));
    put("TEXT_USER_ACCESS", mint("access", 300, "abc", ""));
    let t = now();
    put(
        "INT_USER_REFRESH",
        mint_raw(
            &format!(
                r#"{{"token_type":"refresh","exp":{},"iat":{t},"jti":"{}","user_id":1}}"#,
                t + 3600,
                jti()
            ),
            KEY,
        ),
    );
    put(
        "NO_USER_REFRESH",
        mint_raw(
            &format!(
                r#"{{"token_type":"refresh","exp":{},"iat":{t},"jti":"{}"}}"#,
                t + 3600,
                jti()
            ),
            KEY,
        ),
    );
    put(
        "NO_JTI_ACCESS",
        mint_raw(
            &format!(
                r#"{{"token_type":"access","exp":{},"iat":{},"user_id":"1"}}"#,
                now() + 300,
                now()
            ),
            KEY,
        ),
    );
    put(
        "NO_TYPE_ACCESS",
        mint_raw(
            &format!(
                r#"{{"exp":{},"iat":{},"jti":"{}","user_id":"1"}}"#,
                now() + 300,
                now(),
                jti()
            ),
            KEY,
        ),
    );
    put(
        "NO_USER_ACCESS",
        mint_raw(
            &format!(
                r#"{{"token_type":"access","exp":{},"iat":{},"jti":"{}"}}"#,
                now() + 300,
                now(),
                jti()
            ),
            KEY,
        ),
    );
    put(
        "INT_USER_ACCESS",
        mint_raw(
            &format!(
                r#"{{"token_type":"access","exp":{},"iat":{},"jti":"{}","user_id":1}}"#,
                now() + 300,
                now(),
                jti()
            ),
            KEY,
        ),
    );
    v
}

const OBTAIN: &str = "/api/token/";
const REFRESH: &str = "/api/token/refresh/";
const VERIFY: &str = "/api/token/verify/";
const BLACKLIST: &str = "/api/token/blacklist/";
const HELLO: &str = "/api/hello/";

fn creds(user: &str, pw: &str) -> String {
    serde_json::json!({ "username": user, "password": pw }).to_string()
}

fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str)>) -> (String, Vec<u8>) {
    let boundary = "----differential7MA4YWxkTrZu0gW";
    let mut b = Vec::new();
    for (n, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some((n, f)) = file {
        b.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{n}\"; filename=\"{f}\"\r\n\
                 Content-Type: text/plain\r\n\r\nfile body\r\n"
            )
            .as_bytes(),
        );
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

/// Every case, in the order sent (later cases use tokens captured earlier).
fn cases() -> Vec<Case> {
    let mut c = Vec::new();
    let alice = creds("alice", PASSWORD);

    // ---- obtain: the flows that issue the tokens used below
    c.push(
        Case::new("obtain: right password", "POST", OBTAIN)
            .json(alice.clone())
            .tokens()
            .capture("refresh", "R1")
            .capture("access", "A1"),
    );
    c.push(
        Case::new("obtain: second pair", "POST", OBTAIN)
            .json(alice.clone())
            .tokens()
            .capture("refresh", "R2")
            .capture("access", "A2"),
    );
    c.push(
        Case::new("obtain: third pair", "POST", OBTAIN)
            .json(alice.clone())
            .tokens()
            .capture("refresh", "R3"),
    );
    c.push(
        Case::new("obtain: unicode username", "POST", OBTAIN)
            .json(creds("zoë_日本語", PASSWORD))
            .tokens(),
    );
    c.push(
        Case::new("obtain: unicode username, \\u escapes", "POST", OBTAIN)
            .json(format!(
                r#"{{"username":"zo\u00eb_\u65e5\u672c\u8a9e","password":"{PASSWORD}"}}"#
            ))
            .tokens(),
    );
    c.push(
        Case::new("obtain: username with surrounding spaces", "POST", OBTAIN)
            .json(creds("  alice\t", PASSWORD))
            .tokens(),
    );
    c.push(
        Case::new("obtain: extra fields", "POST", OBTAIN)
            .json(format!(
                r#"{{"username":"alice","password":"{PASSWORD}","remember":true,"x":[1]}}"#
            ))
            .tokens(),
    );
    c.push(
        Case::new("obtain: form-encoded", "POST", OBTAIN)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("username=alice&password=correct+horse")
            .tokens(),
    );
    let (ct, body) = multipart(&[("username", "alice"), ("password", PASSWORD)], None);
    c.push(
        Case::new("obtain: multipart", "POST", OBTAIN)
            .header("Content-Type", ct)
            .body(body)
            .tokens(),
    );
    c.push(
        Case::new("obtain: JSON with charset", "POST", OBTAIN)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(alice.clone())
            .tokens(),
    );
    c.push(
        Case::new("obtain: upper-case content type", "POST", OBTAIN)
            .header("Content-Type", "Application/JSON")
            .body(alice.clone())
            .tokens(),
    );
    c.push(
        Case::new("obtain: duplicate key, last wins", "POST", OBTAIN)
            .json(format!(
                r#"{{"username":"nobody","username":"alice","password":"{PASSWORD}"}}"#
            ))
            .tokens(),
    );

    // ---- obtain: refusals
    let post = |name: &str, body: &str| Case::new(name, "POST", OBTAIN).json(body.to_string());
    c.push(post("obtain: wrong password", &creds("alice", "nope")));
    c.push(post("obtain: unknown user", &creds("mallory", PASSWORD)));
    c.push(post("obtain: inactive user", &creds("bob", PASSWORD)));
    c.push(post(
        "obtain: username case differs",
        &creds("Alice", PASSWORD),
    ));
    c.push(post("obtain: missing fields", "{}"));
    c.push(post("obtain: missing password", r#"{"username":"alice"}"#));
    c.push(post("obtain: missing username", r#"{"password":"x"}"#));
    c.push(post(
        "obtain: empty strings",
        r#"{"username":"","password":""}"#,
    ));
    c.push(post(
        "obtain: whitespace strings",
        r#"{"username":"  ","password":"\t"}"#,
    ));
    c.push(post(
        "obtain: null values",
        r#"{"username":null,"password":null}"#,
    ));
    c.push(post(
        "obtain: number values",
        r#"{"username":123,"password":4.5}"#,
    ));
    c.push(post(
        "obtain: boolean values",
        r#"{"username":true,"password":false}"#,
    ));
    c.push(post(
        "obtain: list values",
        r#"{"username":["alice"],"password":[]}"#,
    ));
    c.push(post(
        "obtain: object values",
        r#"{"username":{},"password":{"a":1}}"#,
    ));
    c.push(post(
        "obtain: big integer",
        r#"{"username":123456789012345678901234567890,"password":1e400}"#,
    ));
    c.push(post(
        "obtain: NUL in username",
        r#"{"username":"al\u0000ice","password":"x"}"#,
    ));
    c.push(post(
        "obtain: lone surrogate",
        r#"{"username":"\ud800","password":"x"}"#,
    ));
    c.push(post("obtain: NaN", r#"{"username":NaN,"password":"x"}"#));
    c.push(post("obtain: invalid JSON", "{username: alice}"));
    c.push(post("obtain: truncated JSON", r#"{"username":"alice","#));
    c.push(post(
        "obtain: trailing comma",
        r#"{"username":"alice","password":"x",}"#,
    ));
    c.push(post("obtain: trailing data", r#"{"username":"alice"} {}"#));
    c.push(post("obtain: JSON array", r#"["alice","x"]"#));
    c.push(post("obtain: JSON string", r#""alice""#));
    c.push(post("obtain: JSON null", "null"));
    c.push(post("obtain: JSON number", "42"));
    c.push(post("obtain: JSON true", "true"));
    c.push(post("obtain: unterminated string", r#"{"username":"alice"#));
    c.push(post("obtain: invalid escape", r#"{"username":"a\x"}"#));
    c.push(post("obtain: control character", "{\"username\":\"a\nb\"}"));
    c.push(post("obtain: whitespace only", "   "));
    c.push(post("obtain: byte order mark", "\u{feff}{}"));
    c.push(
        Case::new("obtain: invalid UTF-8", "POST", OBTAIN)
            .header("Content-Type", "application/json")
            .body(b"{\"username\":\"\xff\xfe\",\"password\":\"x\"}".to_vec()),
    );
    c.push(
        Case::new("obtain: latin-1 charset", "POST", OBTAIN)
            .header("Content-Type", "application/json; charset=latin-1")
            .body(b"{\"username\":\"zo\xeb\",\"password\":\"x\"}".to_vec()),
    );
    c.push(post(
        "obtain: deep nesting",
        &format!("{}{}", "[".repeat(50), "]".repeat(50)),
    ));
    c.push(post(
        "obtain: huge username",
        &creds(&"a".repeat(100_000), PASSWORD),
    ));
    c.push(post(
        "obtain: odd unicode username",
        &creds("\u{202e}ǅ\u{1F600}\u{FFFF}\u{0301}", PASSWORD),
    ));
    c.push(post(
        "obtain: unicode password",
        &creds("alice", "pässwörd🔑"),
    ));
    c.push(Case::new("obtain: empty body, JSON content type", "POST", OBTAIN).json(""));
    c.push(Case::new(
        "obtain: no body, no content type",
        "POST",
        OBTAIN,
    ));
    c.push(Case::new("obtain: body without content type", "POST", OBTAIN).body(alice.clone()));
    c.push(
        Case::new("obtain: text/plain", "POST", OBTAIN)
            .header("Content-Type", "text/plain")
            .body(alice.clone()),
    );
    c.push(
        Case::new("obtain: application/xml", "POST", OBTAIN)
            .header("Content-Type", "application/xml")
            .body("<username>alice</username>"),
    );
    c.push(
        Case::new("obtain: empty body, text/plain", "POST", OBTAIN)
            .header("Content-Type", "text/plain")
            .body(""),
    );
    c.push(
        Case::new("obtain: form-encoded, missing password", "POST", OBTAIN)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("username=alice"),
    );
    c.push(
        Case::new("obtain: form-encoded, wrong password", "POST", OBTAIN)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("username=alice&password=x"),
    );
    c.push(
        Case::new("obtain: form-encoded, empty body", "POST", OBTAIN)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(""),
    );
    let (ct, body) = multipart(&[("username", "alice")], Some(("password", "pw.txt")));
    c.push(
        Case::new("obtain: multipart, password as a file", "POST", OBTAIN)
            .header("Content-Type", ct)
            .body(body),
    );
    c.push(
        post(
            "obtain: unicode spaces around username",
            &creds("\u{a0}alice\u{2003}", PASSWORD),
        )
        .tokens(),
    );
    c.push(
        post(
            "obtain: spaces around password",
            &creds("alice", &format!("  {PASSWORD} ")),
        )
        .tokens(),
    );
    c.push(post(
        "obtain: decomposed unicode username",
        &creds("zoe\u{308}_日本語", PASSWORD),
    ));
    c.push(
        Case::new("obtain: form-encoded, unicode username", "POST", OBTAIN)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("username=zo%C3%AB_%E6%97%A5%E6%9C%AC%E8%AA%9E&password=correct%20horse")
            .tokens(),
    );
    c.push(
        Case::new(
            "obtain: form-encoded, invalid percent-escape",
            "POST",
            OBTAIN,
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("username=%FF%zz&password=x"),
    );
    c.push(
        Case::new("obtain: form-encoded, too many fields", "POST", OBTAIN)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                (0..1001)
                    .map(|i| format!("f{i}=x"))
                    .collect::<Vec<_>>()
                    .join("&"),
            ),
    );
    c.push(
        Case::new("obtain: 3 MB JSON body", "POST", OBTAIN)
            .json(creds(&"a".repeat(3 << 20), PASSWORD)),
    );
    c.push(
        Case::new("obtain: 3 MB form body", "POST", OBTAIN)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("username={}&password=x", "a".repeat(3 << 20))),
    );
    c.push(
        Case::new("obtain: chunked body", "POST", OBTAIN)
            .header("Content-Type", "application/json")
            .header("Transfer-Encoding", "chunked")
            .body(format!("{:x}\r\n{alice}\r\n0\r\n\r\n", alice.len()))
            .no_length(),
    );
    let utf16: Vec<u8> = std::iter::once(0xfeffu16)
        .chain(alice.encode_utf16())
        .flat_map(|u| u.to_le_bytes())
        .collect();
    c.push(
        Case::new("obtain: UTF-16 JSON", "POST", OBTAIN)
            .header("Content-Type", "application/json; charset=utf-16")
            .body(utf16)
            .tokens(),
    );
    let wide = |big: bool, unit: usize, bom: bool| -> Vec<u8> {
        let mut units: Vec<u32> = if bom { vec![0xfeff] } else { vec![] };
        units.extend(alice.chars().map(u32::from));
        units
            .iter()
            .flat_map(|u| {
                let b = u.to_be_bytes()[4 - unit..].to_vec();
                if big {
                    b
                } else {
                    b.into_iter().rev().collect()
                }
            })
            .collect()
    };
    for (charset, body, tokens) in [
        ("UTF-16BE", wide(true, 2, false), true),
        ("utf_16_le", wide(false, 2, false), true),
        ("utf-16", wide(false, 2, false), false),
        ("utf-32", wide(false, 4, true), true),
        ("utf-32", wide(true, 4, false), false),
        ("utf-8-sig", format!("\u{feff}{alice}").into_bytes(), true),
        ("US-ASCII", b"{\"username\":\"\xe9\"}".to_vec(), false),
        (
            "ISO-8859-1",
            b"{\"username\":\"zo\xeb\",\"password\":\"x\"}".to_vec(),
            false,
        ),
        ("no-such-charset", alice.clone().into_bytes(), true),
        ("bz2_codec", alice.clone().into_bytes(), false),
    ] {
        let case = Case::new(
            format!("obtain: JSON in {charset}, {} bytes", body.len()),
            "POST",
            OBTAIN,
        )
        .header(
            "Content-Type",
            format!("application/json; charset={charset}"),
        )
        .body(body);
        c.push(if tokens { case.tokens() } else { case });
    }
    c.push(
        Case::new("obtain: form-encoded in latin-1", "POST", OBTAIN)
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded; charset=latin-1",
            )
            .body(b"username=zo\xeb&password=x".to_vec()),
    );
    c.push(
        Case::new("obtain: 300-character content type", "POST", OBTAIN)
            .header(
                "Content-Type",
                format!("application/json; x={}", "a".repeat(280)),
            )
            .body(alice.clone()),
    );
    c.push(
        Case::new("obtain: body at the size limit", "POST", OBTAIN)
            .json(format!("{}{}", alice, " ".repeat(2_621_440 - alice.len())))
            .tokens(),
    );
    c.push(
        Case::new("obtain: body one byte over the size limit", "POST", OBTAIN).json(format!(
            "{}{}",
            alice,
            " ".repeat(2_621_441 - alice.len())
        )),
    );
    c.push(
        Case::new("obtain: 1000 form fields", "POST", OBTAIN)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("username=alice&password=x{}", "&".repeat(998))),
    );
    c.push(
        Case::new(
            "obtain: 1001 query fields",
            "POST",
            &format!("/api/token/?{}", "&".repeat(1000)),
        )
        .json(alice.clone()),
    );
    for ct in [
        "application/json;",
        "application/json ; charset=UTF-8",
        "*/*",
        "application/*",
        "application/jsonx",
        "application/vnd.api+json",
        "application/json, text/plain",
    ] {
        c.push(
            Case::new(format!("obtain: Content-Type {ct:?}"), "POST", OBTAIN)
                .header("Content-Type", ct)
                .body(creds("alice", "wrong")),
        );
    }
    c.push(
        Case::new("obtain: form-encoded, repeated username", "POST", OBTAIN)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("username=bob&username=alice&password=correct+horse")
            .tokens(),
    );
    c.push(post(
        "obtain: float usernames",
        r#"{"username":1e5,"password":-0.0}"#,
    ));
    c.push(post(
        "obtain: very deep nesting",
        &format!(r#"{{"username":{}}}"#, "[".repeat(100_000)),
    ));
    for depth in [950, 961, 962] {
        c.push(post(
            &format!("obtain: arrays {depth} deep"),
            &format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        ));
    }
    c.push(post(
        "obtain: objects 961 deep",
        &format!("{}1{}", r#"{"a":"#.repeat(961), "}".repeat(961)),
    ));
    let (ct, body) = multipart(&[("username", "zoë_日本語"), ("password", PASSWORD)], None);
    c.push(
        Case::new("obtain: multipart, unicode username", "POST", OBTAIN)
            .header("Content-Type", ct)
            .body(body)
            .tokens(),
    );
    c.push(
        Case::new("obtain: multipart without boundary", "POST", OBTAIN)
            .header("Content-Type", "multipart/form-data")
            .body("x"),
    );

    // ---- refresh
    let refresh = |name: &str, body: String| Case::new(name, "POST", REFRESH).json(body);
    c.push(
        refresh("refresh: valid", r#"{"refresh":"%R1%"}"#.into())
            .tokens()
            .capture("refresh", "R1_ROTATED")
            .capture("access", "A1_REFRESHED"),
    );
    c.push(refresh(
        "refresh: reused after rotation (blacklisted)",
        r#"{"refresh":"%R1%"}"#.into(),
    ));
    c.push(
        refresh(
            "refresh: the rotated token",
            r#"{"refresh":"%R1_ROTATED%"}"#.into(),
        )
        .tokens(),
    );
    c.push(
        refresh(
            "refresh: minted token with an extra claim",
            r#"{"refresh":"%MINTED_REFRESH%"}"#.into(),
        )
        .tokens(),
    );
    c.push(
        Case::new("refresh: form-encoded", "POST", REFRESH)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("refresh=%R2%")
            .tokens()
            .capture("refresh", "R2_ROTATED"),
    );
    c.push(refresh(
        "refresh: garbage",
        r#"{"refresh":"garbage"}"#.into(),
    ));
    c.push(refresh(
        "refresh: three dots",
        r#"{"refresh":"a.b.c"}"#.into(),
    ));
    c.push(refresh(
        "refresh: access token as refresh",
        r#"{"refresh":"%A1%"}"#.into(),
    ));
    c.push(refresh(
        "refresh: expired",
        r#"{"refresh":"%EXPIRED_REFRESH%"}"#.into(),
    ));
    c.push(refresh(
        "refresh: wrong signature",
        r#"{"refresh":"%BADSIG_REFRESH%"}"#.into(),
    ));
    c.push(refresh(
        "refresh: alg none",
        r#"{"refresh":"%NONE_REFRESH%"}"#.into(),
    ));
    c.push(refresh(
        "refresh: inactive user",
        r#"{"refresh":"%INACTIVE_REFRESH%"}"#.into(),
    ));
    c.push(refresh(
        "refresh: deleted user",
        r#"{"refresh":"%GONE_REFRESH%"}"#.into(),
    ));
    c.push(
        refresh(
            "refresh: integer user id",
            r#"{"refresh":"%INT_USER_REFRESH%"}"#.into(),
        )
        .tokens(),
    );
    c.push(
        refresh(
            "refresh: no user id",
            r#"{"refresh":"%NO_USER_REFRESH%"}"#.into(),
        )
        .tokens(),
    );
    c.push(refresh(
        "refresh: non-numeric user id",
        r#"{"refresh":"%TEXT_USER_REFRESH%"}"#.into(),
    ));
    c.push(
        refresh(
            "refresh: token with surrounding spaces",
            r#"{"refresh":"  %R2_ROTATED%\n"}"#.into(),
        )
        .tokens(),
    );
    c.push(refresh("refresh: missing field", "{}".into()));
    c.push(refresh(
        "refresh: wrong field name",
        r#"{"token":"%R2%"}"#.into(),
    ));
    c.push(refresh("refresh: empty string", r#"{"refresh":""}"#.into()));
    c.push(refresh("refresh: null", r#"{"refresh":null}"#.into()));
    c.push(refresh("refresh: number", r#"{"refresh":12345}"#.into()));
    c.push(refresh("refresh: list", r#"{"refresh":["%R2%"]}"#.into()));
    c.push(refresh(
        "refresh: object",
        r#"{"refresh":{"a":"b"}}"#.into(),
    ));
    c.push(refresh("refresh: invalid JSON", "{".into()));

    // ---- verify
    let verify = |name: &str, body: String| Case::new(name, "POST", VERIFY).json(body);
    c.push(verify("verify: access", r#"{"token":"%A1%"}"#.into()));
    c.push(verify("verify: refresh", r#"{"token":"%R3%"}"#.into()));
    c.push(verify(
        "verify: rotated refresh",
        r#"{"token":"%R1_ROTATED%"}"#.into(),
    ));
    c.push(verify(
        "verify: blacklisted refresh",
        r#"{"token":"%R1%"}"#.into(),
    ));
    c.push(verify(
        "verify: access from a refresh",
        r#"{"token":"%A1_REFRESHED%"}"#.into(),
    ));
    c.push(verify(
        "verify: bad token",
        r#"{"token":"not.a.token"}"#.into(),
    ));
    c.push(verify(
        "verify: expired",
        r#"{"token":"%EXPIRED_ACCESS%"}"#.into(),
    ));
    c.push(verify(
        "verify: wrong signature",
        r#"{"token":"%BADSIG_ACCESS%"}"#.into(),
    ));
    c.push(verify(
        "verify: alg none",
        r#"{"token":"%NONE_ACCESS%"}"#.into(),
    ));
    c.push(verify(
        "verify: no jti",
        r#"{"token":"%NO_JTI_ACCESS%"}"#.into(),
    ));
    c.push(verify(
        "verify: no token type",
        r#"{"token":"%NO_TYPE_ACCESS%"}"#.into(),
    ));
    c.push(verify(
        "verify: deleted user",
        r#"{"token":"%GONE_ACCESS%"}"#.into(),
    ));
    c.push(verify("verify: missing", "{}".into()));
    c.push(verify("verify: null", r#"{"token":null}"#.into()));
    c.push(verify("verify: number", r#"{"token":1}"#.into()));
    c.push(verify("verify: empty", r#"{"token":""}"#.into()));

    // ---- blacklist
    let blacklist = |name: &str, body: String| Case::new(name, "POST", BLACKLIST).json(body);
    c.push(blacklist(
        "blacklist: valid refresh",
        r#"{"refresh":"%R3%"}"#.into(),
    ));
    c.push(blacklist(
        "blacklist: the same token twice",
        r#"{"refresh":"%R3%"}"#.into(),
    ));
    c.push(refresh(
        "refresh: blacklisted through the blacklist endpoint",
        r#"{"refresh":"%R3%"}"#.into(),
    ));
    c.push(verify(
        "verify: refresh blacklisted through the endpoint",
        r#"{"token":"%R3%"}"#.into(),
    ));
    c.push(blacklist(
        "blacklist: access token",
        r#"{"refresh":"%A1%"}"#.into(),
    ));
    c.push(blacklist(
        "blacklist: expired",
        r#"{"refresh":"%EXPIRED_REFRESH%"}"#.into(),
    ));
    c.push(blacklist(
        "blacklist: garbage",
        r#"{"refresh":"garbage"}"#.into(),
    ));
    c.push(blacklist(
        "blacklist: inactive user's refresh",
        r#"{"refresh":"%INACTIVE_REFRESH%"}"#.into(),
    ));
    c.push(blacklist(
        "blacklist: deleted user's refresh",
        r#"{"refresh":"%GONE_REFRESH%"}"#.into(),
    ));
    c.push(blacklist("blacklist: missing", "{}".into()));
    c.push(blacklist("blacklist: list", r#"{"refresh":[]}"#.into()));
    c.push(blacklist(
        "blacklist: minted, never issued",
        r#"{"refresh":"%MINTED_REFRESH%"}"#.into(),
    ));

    // ---- the protected view
    let hello = |name: &str| Case::new(name, "GET", HELLO);
    c.push(hello("hello: valid").bearer("A1"));
    c.push(hello("hello: access from a refresh").bearer("A1_REFRESHED"));
    c.push(hello("hello: minted access with an extra claim").bearer("MINTED_ACCESS"));
    c.push(hello("hello: integer user id").bearer("INT_USER_ACCESS"));
    c.push(hello("hello: no Authorization"));
    c.push(hello("hello: empty Authorization").header("Authorization", ""));
    c.push(hello("hello: Bearer alone").header("Authorization", "Bearer"));
    c.push(hello("hello: Bearer a b").header("Authorization", "Bearer a b"));
    c.push(hello("hello: Token x").header("Authorization", "Token x"));
    c.push(hello("hello: Basic").header("Authorization", "Basic YWxpY2U6cHc="));
    c.push(hello("hello: lowercase bearer").header("Authorization", "bearer %A1%"));
    c.push(hello("hello: two spaces").header("Authorization", "Bearer  %A1%"));
    c.push(hello("hello: garbage token").header("Authorization", "Bearer garbage"));
    c.push(hello("hello: refresh token as access").bearer("R2_ROTATED"));
    c.push(hello("hello: expired access").bearer("EXPIRED_ACCESS"));
    c.push(hello("hello: wrong signature").bearer("BADSIG_ACCESS"));
    c.push(hello("hello: alg none").bearer("NONE_ACCESS"));
    c.push(hello("hello: inactive user").bearer("INACTIVE_ACCESS"));
    c.push(hello("hello: deleted user").bearer("GONE_ACCESS"));
    c.push(hello("hello: no jti").bearer("NO_JTI_ACCESS"));
    c.push(hello("hello: no token type").bearer("NO_TYPE_ACCESS"));
    c.push(hello("hello: no user id").bearer("NO_USER_ACCESS"));
    c.push(hello("hello: non-numeric user id").bearer("TEXT_USER_ACCESS"));
    c.push(
        hello("hello: 9 KB token").header("Authorization", format!("Bearer {}", "a".repeat(9000))),
    );
    c.push(hello("hello: tab after Bearer").header("Authorization", "Bearer\t%A1%"));
    c.push(hello("hello: non-ASCII token").header("Authorization", "Bearer \u{e9}t\u{e9}"));
    c.push(
        hello("hello: two Authorization headers")
            .bearer("A1")
            .bearer("A1"),
    );
    c.push(
        hello("hello: Authorization of another scheme, then Bearer")
            .header("Authorization", "Token x")
            .bearer("A1"),
    );
    c.push(Case::new("hello: query string", "GET", "/api/hello/?a=1&b").bearer("A1"));

    // ---- methods
    for path in [OBTAIN, REFRESH, VERIFY, BLACKLIST] {
        for m in ["GET", "PUT", "PATCH", "DELETE", "HEAD"] {
            c.push(Case::new(format!("{m} {path}"), m, path));
        }
        c.push(Case::new(format!("OPTIONS {path}"), "OPTIONS", path));
    }
    c.push(Case::new("TRACE /api/token/", "TRACE", OBTAIN));
    c.push(Case::new("FOO /api/token/", "FOO", OBTAIN));
    c.push(Case::new("PUT /api/token/ with a JSON body", "PUT", OBTAIN).json(alice.clone()));
    for m in ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"] {
        c.push(Case::new(format!("{m} {HELLO} without a token"), m, HELLO));
        c.push(Case::new(format!("{m} {HELLO} with a token"), m, HELLO).bearer("A1"));
    }
    c.push(
        Case::new(
            "POST /api/hello/ with a JSON body and a token",
            "POST",
            HELLO,
        )
        .bearer("A1")
        .json("{}"),
    );

    // ---- content negotiation
    for accept in [
        "application/json",
        "*/*",
        "application/*",
        "text/html",
        "application/xml",
        "text/html, application/json;q=0.5",
        "application/json; indent=4",
        "application/json; indent=0",
        "application/json; indent=20",
        "application/json; indent=x",
        "application/json; version=2",
        "application/json;q=0",
        "",
        "text/*",
    ] {
        c.push(
            hello(&format!("hello: Accept {accept:?}"))
                .bearer("A1")
                .header("Accept", accept),
        );
        c.push(
            hello(&format!("hello without a token: Accept {accept:?}")).header("Accept", accept),
        );
        c.push(
            Case::new(
                format!("obtain, wrong password: Accept {accept:?}"),
                "POST",
                OBTAIN,
            )
            .json(creds("alice", "nope"))
            .header("Accept", accept),
        );
    }
    c.push(
        Case::new("obtain: Accept with indent, tokens", "POST", OBTAIN)
            .json(alice.clone())
            .header("Accept", "application/json; indent=2")
            .tokens(),
    );
    c.push(
        Case::new("GET /api/token/: Accept text/html", "GET", OBTAIN).header("Accept", "text/html"),
    );
    c.push(
        Case::new("OPTIONS /api/token/: Accept indent", "OPTIONS", OBTAIN)
            .header("Accept", "application/json; indent=4"),
    );
    c.push(Case::new("hello: ?format=json", "GET", "/api/hello/?format=json").bearer("A1"));
    c.push(Case::new("hello: ?format=xml", "GET", "/api/hello/?format=xml").bearer("A1"));
    c.push(Case::new("hello: ?format=api", "GET", "/api/hello/?format=api").bearer("A1"));
    c.push(Case::new("obtain: ?format=xml", "POST", "/api/token/?format=xml").json(alice.clone()));

    c.push(
        Case::new("OPTIONS /api/token/: Accept text/html", "OPTIONS", OBTAIN)
            .header("Accept", "text/html"),
    );
    c.push(
        hello("hello: two Accept headers")
            .bearer("A1")
            .header("Accept", "text/html")
            .header("Accept", "application/json"),
    );
    c.push(
        hello("hello: Accept */json")
            .bearer("A1")
            .header("Accept", "*/json"),
    );
    c.push(
        hello("hello: Accept */*; indent=2")
            .bearer("A1")
            .header("Accept", "*/*; indent=2"),
    );
    c.push(
        hello("hello: Accept with quoted indent")
            .bearer("A1")
            .header("Accept", "application/json; indent=\"3\""),
    );
    c.push(
        hello("hello: Accept APPLICATION/JSON")
            .bearer("A1")
            .header("Accept", "APPLICATION/JSON"),
    );
    c.push(Case::new("hello: ?format=", "GET", "/api/hello/?format=").bearer("A1"));
    c.push(
        Case::new(
            "hello: ?format=xml&format=json",
            "GET",
            "/api/hello/?format=xml&format=json",
        )
        .bearer("A1"),
    );
    c.push(Case::new(
        "hello without a token: ?format=xml",
        "GET",
        "/api/hello/?format=xml",
    ));

    // ---- the token views do not authenticate; the hello view does first
    c.push(
        Case::new("obtain with a bad bearer token", "POST", OBTAIN)
            .json(alice.clone())
            .header("Authorization", "Bearer garbage")
            .tokens(),
    );
    c.push(
        Case::new(
            "OPTIONS /api/token/refresh/ with a bad bearer token",
            "OPTIONS",
            REFRESH,
        )
        .header("Authorization", "Bearer garbage"),
    );
    c.push(
        Case::new(
            "OPTIONS /api/hello/ with a bad bearer token",
            "OPTIONS",
            HELLO,
        )
        .header("Authorization", "Bearer garbage"),
    );
    c.push(
        Case::new("POST /api/hello/ with a bad bearer token", "POST", HELLO)
            .header("Authorization", "Bearer garbage"),
    );
    c.push(
        hello("hello: bad bearer token and Accept text/html")
            .header("Authorization", "Bearer garbage")
            .header("Accept", "text/html"),
    );
    c.push(
        hello("hello: bad bearer token, indented")
            .header("Authorization", "Bearer garbage")
            .header("Accept", "application/json; indent=2"),
    );
    c.push(
        Case::new("obtain: missing fields, indented", "POST", OBTAIN)
            .json("{}")
            .header("Accept", "application/json; indent=2"),
    );
    c.push(
        Case::new("obtain: non-ASCII content type", "POST", OBTAIN)
            .header("Content-Type", "text/plain; charset=\u{e9}")
            .body(alice.clone()),
    );

    // ---- Django's own answers
    c.push(Case::new("unknown path", "GET", "/nope/").html());
    c.push(Case::new("root", "GET", "/").html());
    c.push(
        Case::new("POST /api/token without slash", "POST", "/api/token")
            .json(alice.clone())
            .html(),
    );
    c.push(Case::new("GET /api/hello without slash", "GET", "/api/hello").html());
    c.push(Case::new("GET /api/hello?x=1 without slash", "GET", "/api/hello?x=1").html());
    c.push(
        Case::new(
            "GET /api/token/refresh without slash",
            "GET",
            "/api/token/refresh",
        )
        .html(),
    );
    c.push(Case::new("GET /api/ (prefix only)", "GET", "/api/").html());
    c.push(Case::new("double slash", "GET", "/api//hello/").html());
    c.push(Case::new("percent-encoded path", "GET", "/api/%68ello/").bearer("A1"));
    c.push(
        Case::new("percent-encoded slash", "POST", "/api/token%2F")
            .json(alice.clone())
            .tokens(),
    );
    c.push(Case::new("percent-encoded path without slash", "GET", "/api/%68ello").html());
    c.push(Case::new("path below a view", "GET", "/api/hello/x/").html());
    c.push(Case::new("upper-case path", "GET", "/API/HELLO/").html());
    c.push(
        Case::new(
            "POST /api/token?next=1 without slash",
            "POST",
            "/api/token?next=1",
        )
        .json(alice.clone())
        .html(),
    );
    c.push(
        Case::new("Host not in ALLOWED_HOSTS", "GET", HELLO)
            .header("Host", "evil.example")
            .bearer("A1")
            .html(),
    );
    c
}

// ------------------------------------------------------------ comparison

/// The application headers of an answer: all but the server's own, by name.
fn app_headers(r: &Reply, with_length: bool) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, v) in &r.headers {
        if SERVER_HEADERS.contains(&n.as_str()) || (!with_length && n == "content-length") {
            continue;
        }
        m.entry(n.clone()).or_default().push(v.clone());
    }
    m
}

/// A token's shape: what must agree between two tokens issued for the same
/// request at about the same time.
fn token_shape(token: &str) -> Result<String, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(format!("not a JWT: {token:?}"));
    }
    let header = URL_SAFE_NO_PAD
        .decode(parts[0])
        .map_err(|e| format!("header: {e}"))?;
    let payload = URL_SAFE_NO_PAD
        .decode(parts[1])
        .map_err(|e| format!("payload: {e}"))?;
    let payload = String::from_utf8(payload).map_err(|e| e.to_string())?;
    // Claim order matters to a client comparing payloads, so the claims are
    // read with an order-keeping parser.
    let Ok(Value::Object(claims)) = pyjson::loads(&payload, false) else {
        return Err(format!("payload not an object: {payload}"));
    };
    let int = |k: &str| match claims.get(k) {
        Some(Value::Int(s)) => s.parse::<i64>().ok(),
        _ => None,
    };
    let (exp, iat) = (int("exp"), int("iat"));
    let mut shape = format!("header={} claims=[", String::from_utf8_lossy(&header));
    for (k, v) in claims.iter() {
        shape += &format!("{k}:{} ", v.type_name());
    }
    shape += "]";
    shape += &format!(" token_type={:?}", claims.get("token_type"));
    // `exp - iat` of an access token made from a refresh token counts from
    // the refresh token's making (simplejwt's `current_time`), `iat` from its
    // own: a second boundary between them makes it one less.
    let life = exp.zip(iat).map(|(e, i)| e - i);
    let life = match life {
        Some(l) if l == ACCESS_LIFETIME - 1 => ACCESS_LIFETIME,
        other => other.unwrap_or(-1),
    };
    shape += &format!(" exp-iat={life}");
    if let Some(i) = iat {
        let skew = (i - now()).abs();
        if skew > 30 {
            shape += &format!(" iat-off-by={skew}");
        }
    }
    shape += &format!(" user_id={:?}", claims.get("user_id"));
    match claims.get("jti") {
        Some(Value::Str(s))
            if s.text.len() == 32
                && s.text
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) =>
        {
            shape += " jti=uuid4-hex"
        }
        other => shape += &format!(" jti={other:?}"),
    }
    for (k, v) in claims.iter() {
        if !["token_type", "exp", "iat", "jti", "user_id"].contains(&k) {
            shape += &format!(" {k}={}", pyjson::dumps(v, false));
        }
    }
    Ok(shape)
}

/// The layout, keys and token shapes of a token-bearing body: the body with
/// each token replaced by `<jwt>` (so key order and whitespace count), then
/// each token's shape.
fn tokens_shape(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match pyjson::loads(&text, false) {
        Ok(Value::Object(o)) => {
            let mut layout = text.to_string();
            let mut shapes = Vec::new();
            for (k, v) in o.iter() {
                match v.as_str().map(token_shape) {
                    Some(Ok(s)) => {
                        layout = layout.replace(v.as_str().unwrap_or_default(), "<jwt>");
                        shapes.push(format!("{k}: {s}"));
                    }
                    Some(Err(e)) => shapes.push(format!("{k}: {e}")),
                    None => shapes.push(format!("{k}: {}", pyjson::dumps(v, false))),
                }
            }
            format!("{layout}\n    {}", shapes.join("\n    "))
        }
        _ => format!("not a JSON object: {text}"),
    }
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 400 {
        let mut cut = 400;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}... ({} bytes)", &s[..cut], b.len())
    } else {
        s.into_owned()
    }
}

/// The differences between the two answers to `case`, one line each.
fn compare(case: &Case, ours: &Reply, theirs: &Reply) -> Vec<String> {
    let mut d = Vec::new();
    if let Some(why) = &ours.broken {
        d.push(format!("HTTP/2: {why}"));
    }
    // HTTP/2 has no reason phrase, nor a version in an answer: the code is
    // what it carries of the status line.
    if ours.status_line.starts_with("HTTP/2 ") {
        if ours.status != theirs.status {
            d.push(format!(
                "status: ours {:?}, simplejwt {:?}",
                ours.status_line, theirs.status_line
            ));
        }
    } else if ours.status_line != theirs.status_line {
        d.push(format!(
            "status: ours {:?}, simplejwt {:?}",
            ours.status_line, theirs.status_line
        ));
    }
    let with_length = case.check == Check::Exact;
    let (mine, other) = (
        app_headers(ours, with_length),
        app_headers(theirs, with_length),
    );
    let names: BTreeSet<&String> = mine.keys().chain(other.keys()).collect();
    for n in names {
        let (a, b) = (mine.get(n), other.get(n));
        let same = a == b;
        if !same {
            d.push(format!("header {n}: ours {a:?}, simplejwt {b:?}"));
        }
    }
    // Gunicorn writes the body of an answer to HEAD; HTTP forbids it and
    // ferricorn's server (hyper) never sends one, whatever the application
    // gives. A client reads no body after HEAD, so only the head counts.
    if case.method == "HEAD" {
        return d;
    }
    match case.check {
        Check::Exact if ours.body != theirs.body => d.push(format!(
            "body:\n    ours      {}\n    simplejwt {}",
            show(&ours.body),
            show(&theirs.body)
        )),
        Check::Tokens if ours.status == 200 || theirs.status == 200 => {
            let (a, b) = (tokens_shape(&ours.body), tokens_shape(&theirs.body));
            if a != b {
                d.push(format!("tokens:\n    ours      {a}\n    simplejwt {b}"));
            }
        }
        Check::Tokens if ours.body != theirs.body => d.push(format!(
            "body:\n    ours      {}\n    simplejwt {}",
            show(&ours.body),
            show(&theirs.body)
        )),
        _ => {}
    }
    d
}

fn capture(case: &Case, reply: &Reply, vars: &mut Vars) {
    if case.capture.is_empty() {
        return;
    }
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
        panic!(
            "{}: answer is not JSON ({e}): {}",
            case.name,
            show(&reply.body)
        )
    });
    for (key, var) in &case.capture {
        let tok = v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no {key:?} in {v}", case.name));
        vars.insert(var.to_string(), tok.to_string());
    }
}

#[test]
fn ferricorn_auth_answers_as_simplejwt_does() {
    let Some(bench) = venv_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("auth.sqlite3");
    compare_with_simplejwt(&bench, dir.path(), db.to_str().unwrap(), Over::Http1);
}

/// The same cases with ferricorn-auth serving TLS (`--certfile`,
/// `--keyfile`; a self-signed certificate made with openssl) and its
/// requests going through rustls; Gunicorn stays cleartext. The same bytes
/// (the Host field too) must get the same answers: TLS adds nothing a
/// client compares.
#[test]
fn ferricorn_auth_over_https_answers_as_simplejwt_does() {
    let Some(bench) = venv_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("auth.sqlite3");
    compare_with_simplejwt(&bench, dir.path(), db.to_str().unwrap(), Over::Https);
}

/// The same cases with ferricorn-auth asked over HTTP/2 (`--http2c`, prior
/// knowledge) and Django over HTTP/1.1: each raw request is read back with
/// httparse and sent as the same method, target, fields (Host as
/// :authority, the hop-by-hop ones dropped) and body. What HTTP/2 cannot
/// carry unchanged (see [`NotHttp2`]) goes over HTTP/1.1 to the same
/// server, so both sides keep seeing every case; those are counted and
/// printed, and at least 80 % of the cases must have gone over HTTP/2.
#[test]
fn ferricorn_auth_over_http2_answers_as_simplejwt_does() {
    let Some(bench) = venv_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("auth.sqlite3");
    compare_with_simplejwt(&bench, dir.path(), db.to_str().unwrap(), Over::Http2);
}

/// The same cases with ferricorn-auth on PostgreSQL (issue 13): the store
/// changes nothing a client can see.
#[test]
fn ferricorn_auth_on_postgresql_answers_as_simplejwt_does() {
    let Some(bench) = venv_or_skip() else { return };
    let Some(pg) = common::postgres::PgCluster::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    compare_with_simplejwt(&bench, dir.path(), &pg.url(), Over::Http1);
}

fn compare_with_simplejwt(bench: &Path, dir: &Path, db: &str, over: Over) {
    let (link, extra) = match over {
        Over::Http1 => (Link::Plain, Vec::new()),
        Over::Https => {
            let Some((cert, key)) = self_signed_cert(dir) else {
                return;
            };
            let flags = vec![
                "--certfile".to_owned(),
                cert.display().to_string(),
                "--keyfile".to_owned(),
                key.display().to_string(),
            ];
            (Link::Tls(tls_client(&cert, &[b"http/1.1"])), flags)
        }
        Over::Http2 => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            (Link::H2c(rt), vec!["--http2c".to_owned()])
        }
    };
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let (_django, django) = start_django(bench, dir);
    let (_ours, ours) = start_ferricorn(dir, db, &extra);

    let minted = minted();
    let (mut our_vars, mut their_vars) = (minted.clone(), minted);
    let cases = cases();
    let mut names = BTreeSet::new();
    for case in &cases {
        assert!(
            names.insert(case.name.as_str()),
            "two cases named {:?}",
            case.name
        );
    }
    for (name, _) in EXPECTED_DIFFERENCES {
        assert!(
            names.contains(name),
            "listed difference {name:?} is no case"
        );
    }

    let mut matched = 0;
    let mut failures = Vec::new();
    let mut report = String::new();
    let mut not_http2: BTreeMap<NotHttp2, Vec<&str>> = BTreeMap::new();
    for case in &cases {
        let head = case.method == "HEAD";
        let (a, why) = send(&link, ours, &raw_request(case, ours, &our_vars), head)
            .unwrap_or_else(|e| panic!("{}: ferricorn-auth ({over:?}): {e}", case.name));
        if let Some(why) = why {
            not_http2.entry(why).or_default().push(&case.name);
        }
        let b = exchange(django, &raw_request(case, django, &their_vars), head)
            .unwrap_or_else(|e| panic!("{}: simplejwt: {e}", case.name));
        let diffs = compare(case, &a, &b);
        let expected = EXPECTED_DIFFERENCES.iter().find(|(n, _)| *n == case.name);
        if diffs.is_empty() {
            matched += 1;
            report += &format!("match    {}\n", case.name);
            if let Some((_, why)) = expected {
                failures.push(format!(
                    "{}: listed as a difference ({why}) but now matches; remove it from EXPECTED_DIFFERENCES",
                    case.name
                ));
            }
        } else {
            let detail = diffs.join("\n  ");
            match expected {
                Some((_, why)) => {
                    report += &format!("expected {} ({why})\n  {detail}\n", case.name)
                }
                None => {
                    report += &format!("DIFFERS  {}\n  {detail}\n", case.name);
                    failures.push(format!("{}:\n  {detail}", case.name));
                }
            }
        }
        if a.status == 200 && b.status == 200 {
            capture(case, &a, &mut our_vars);
            capture(case, &b, &mut their_vars);
        } else if !case.capture.is_empty() {
            panic!(
                "{}: a token-issuing case failed, the cases after it cannot run:\n{report}",
                case.name
            );
        }
    }
    eprintln!("{report}");
    eprintln!(
        "{over:?}: {matched} of {} cases match simplejwt; {} listed differences",
        cases.len(),
        EXPECTED_DIFFERENCES.len()
    );
    if over == Over::Http2 {
        let skipped: usize = not_http2.values().map(Vec::len).sum();
        let sent = cases.len() - skipped;
        eprintln!(
            "{sent} of {} cases went over HTTP/2; {skipped} over HTTP/1.1, as HTTP/2 cannot carry them:",
            cases.len()
        );
        for (why, names) in &not_http2 {
            eprintln!("  {why:?} ({}): {}", names.len(), names.join("; "));
        }
        // So the run cannot pass by sending everything over HTTP/1.1.
        assert!(
            sent * 10 >= cases.len() * 8,
            "only {sent} of {} cases went over HTTP/2: {not_http2:?}",
            cases.len()
        );
    }
    assert!(
        failures.is_empty(),
        "{} unexpected results:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
