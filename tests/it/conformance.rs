//! Gunicorn's request-parser corpus (`data/gunicorn-requests.json`, a
//! verbatim copy of `../shared/conformance/gunicorn-requests.json`; its
//! README is `data/README.md`) replayed against the echo example as raw
//! bytes over real sockets.
//!
//! Every case is written on a fresh connection in four ways, one test each,
//! as Gunicorn's own harness does: whole, one byte at a time, line by line,
//! and in seeded random pieces (`CONFORMANCE_SEED` picks another seed; a
//! failure names the seed it used). What is asserted:
//!
//! - a **valid** case is answered 200 once per request it holds, in order,
//!   and the echo saw Gunicorn's method, target (path and query), version,
//!   header fields (names case-insensitively, values exactly, order and
//!   repeats kept) and body length; after the last answer nothing more is
//!   answered (valid/019 and valid/021 hold bytes that must never be read).
//! - an **invalid** case is refused: a 4xx (exactly Gunicorn's status where
//!   the corpus says the RFC or a limit decides it) and the connection
//!   closed, or the connection closed without an answer; never a 2xx, never
//!   a 5xx. Then a fresh connection is served, so the worker survived.
//!   valid/009 and valid/027 count as invalid: the latest Gunicorn refuses
//!   them (the corpus README says to follow it).
//!
//! A case that needs a Gunicorn setting runs with our flag of the same name
//! (see [`flags_for`]: the limits, `--forwarded-allow-ips`, `--header-map`,
//! `--permit-unconventional-http-method`, `--casefold-http-method`,
//! `--proxy-protocol`), and a valid case with an HTTP/1.1 request that has
//! no Host field runs with `--permit-missing-host` (Gunicorn serves it; our
//! default is RFC 9112's 400). Every other difference is listed in [`DIFFERENT`]
//! with its reason. A case that fails and is not listed fails the test, and
//! so does a listed case that passes (the list must stay true). Each test prints
//! `corpus (MODE): N valid pass, M invalid pass, K deliberately different`.
//!
//! The `_over_tls` tests replay the same cases, with the same expectations
//! and the same [`DIFFERENT`], through rustls (ALPN `http/1.1`) to a server
//! started with `--certfile`/`--keyfile`: the pieces of a split case become
//! separate TLS records, and a half-close is a close_notify then a FIN.
//!
//! One echo server is started per test and per set of flags (a handful of
//! limit cases need their own), and cases run on a few threads at once
//! against it, each on its own connections.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::harness::{echo_headers, is_close, is_timeout, read_response, Server, Transport, Wire};
use crate::tls::Pki;

const CORPUS: &str = include_str!("data/gunicorn-requests.json");

/// How long the server may take to answer or close. Short on purpose: a
/// server that waits for bytes that never come fails the case quickly.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a case that may need the end of the stream (a truncated head,
/// an error at the very end of a body) waits for an answer before the test
/// ends the stream.
const EOF_GRACE: Duration = Duration::from_millis(800);

/// Cases replayed at once against one server.
const PARALLEL: usize = 8;

/// The most time spent pausing between the pieces of one case, so a
/// byte-by-byte replay of an 8 KiB head stays bounded.
const PAUSE_BUDGET: Duration = Duration::from_millis(150);

/// The longest pause between two pieces.
const MAX_PAUSE: Duration = Duration::from_millis(2);

/// The default seed for random splits ("gunicorn" in ASCII).
const DEFAULT_SEED: u64 = 0x6775_6e69_636f_726e;

/// Cases where ferricorn differs from Gunicorn on purpose, and why. A case
/// here that runs and passes fails the test: remove it from the list.
const DIFFERENT: &[(&str, &str)] = &[
    // Gunicorn-only switches we do not offer.
    (
        "valid/028",
        "strip_header_spaces: whitespace between a field name and its colon is \
         refused (RFC 9112 section 5.1 requires a 400; it is a smuggling \
         vector), and no switch turns that off",
    ),
    (
        "valid/compat_obs_fold",
        "permit_obsolete_folding: hyper does not offer obs-fold unfolding; \
         obs-fold is always refused, as Gunicorn does by default",
    ),
    (
        "valid/compat_obs_fold_huge",
        "permit_obsolete_folding: hyper does not offer obs-fold unfolding",
    ),
    (
        "invalid/013",
        "permit_obsolete_folding (with a field-size limit): hyper does not offer \
         obs-fold unfolding",
    ),
    // Choices the RFCs leave open (basis `policy`), made the other way.
    (
        "valid/014",
        "httparse refuses '\"' in the request-target (RFC 3986 does not allow \
         it); Gunicorn passes it through",
    ),
    (
        "valid/rfc9112_target_authority_connect_01",
        "CONNECT is refused with 501 before the application: hyper turns a \
         2xx to CONNECT into a tunnel (head only, body dropped), and we do \
         not tunnel, so Gunicorn's pass-through would be an empty 200",
    ),
    (
        "valid/rfc9112_target_authority_ipv6_01",
        "CONNECT is refused with 501, as valid/rfc9112_target_authority_connect_01",
    ),
    // Artefacts of Gunicorn's harness, which parses a finite buffer.
    (
        "valid/099",
        "Content-Length announces more bytes than the fixture holds; Gunicorn's \
         harness never reads the body, a server on a socket rightly waits for it \
         (and the echo reads every body)",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivery {
    Whole,
    ByteByByte,
    Lines,
    RandomSplits,
}

/// What a case must produce.
#[derive(Debug)]
enum Expectation {
    /// Answered 200 once per request, in order, then nothing more.
    Requests(Vec<Value>),
    /// Refused: a 4xx (this one when `exact`) and closed, or closed.
    Refusal {
        status: Option<u16>,
        exact: bool,
        /// End the stream if the server has not answered after the bytes:
        /// Gunicorn's harness reads a finite buffer, so a truncated head or
        /// a body error found at the end of the bytes is seen there; a
        /// socket needs the EOF.
        half_close: bool,
    },
}

impl Expectation {
    fn of(case: &Value) -> Expectation {
        let latest = &case["observed"]["pypi-27.0.1"];
        if case["expect"] == "valid" && case["agrees_with_latest_release"] == true {
            return Expectation::Requests(case["requests"].as_array().expect("requests").clone());
        }
        if case["expect"] == "valid" {
            // valid/009 and valid/027: refused by 27.0.1 on RFC grounds (the
            // same bytes are invalid/rfc9112_te_identity_with_cl_01 and
            // invalid/rfc9112_target_non_ascii_02).
            return Expectation::Refusal {
                status: latest["status"].as_u64().map(|s| s as u16),
                exact: true,
                half_close: false,
            };
        }
        let status = case["gunicorn_status"].as_u64().map(|s| s as u16);
        Expectation::Refusal {
            status,
            exact: case["basis"] == "rfc" || case["basis"] == "limit",
            half_close: status.is_none() || latest["phase"] == "body",
        }
    }

    fn is_valid(&self) -> bool {
        matches!(self, Expectation::Requests(_))
    }
}

fn corpus() -> Vec<Value> {
    serde_json::from_str::<Value>(CORPUS)
        .expect("the corpus is JSON")
        .as_array()
        .expect("the corpus is a list")
        .clone()
}

fn name(case: &Value) -> &str {
    case["name"].as_str().expect("every case has a name")
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64 in the corpus")
}

/// The wire bytes of a corpus string: each character is one latin-1 byte.
fn latin1_bytes(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("corpus strings are latin-1"))
        .collect()
}

/// A corpus string as the echo shows it: the wire bytes read as UTF-8
/// (lossily, as the echo does).
fn as_echoed(s: &str) -> String {
    String::from_utf8_lossy(&latin1_bytes(s)).into_owned()
}

/// The flags that give a case its `gunicorn_config`, or the setting we do
/// not offer.
fn flags_for(case: &Value) -> Result<Vec<String>, String> {
    let mut flags = Vec::new();
    let config = case["gunicorn_config"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (key, value) in &config {
        match (key.as_str(), value) {
            ("limit_request_field_size", v) if v.as_u64() == Some(0) => {
                // Gunicorn's parser falls back to its stock 8190 for 0
                // (the corpus notes say so), which is our default.
            }
            (limit, Value::Number(n)) if limit.starts_with("limit_request_") => {
                let flag = match limit {
                    "limit_request_line" => "--limit-request-line",
                    "limit_request_fields" => "--limit-request-fields",
                    // Gunicorn's spelling, underscore and all.
                    "limit_request_field_size" => "--limit-request-field_size",
                    _ => return Err(format!("{key}={value}")),
                };
                flags.push(flag.into());
                flags.push(n.to_string());
            }
            ("forwarded_allow_ips", Value::String(ips)) => {
                flags.push("--forwarded-allow-ips".into());
                flags.push(ips.clone());
            }
            ("header_map", Value::String(mode)) => {
                flags.push("--header-map".into());
                flags.push(mode.clone());
            }
            ("permit_unconventional_http_method", Value::Bool(true)) => {
                flags.push("--permit-unconventional-http-method".into());
            }
            ("casefold_http_method", Value::Bool(true)) => {
                flags.push("--casefold-http-method".into());
            }
            ("proxy_protocol", Value::String(mode)) => {
                flags.push(format!("--proxy-protocol={mode}"));
            }
            _ => return Err(format!("{key}={value}")),
        }
    }
    if lacks_host(case) {
        flags.push("--permit-missing-host".into());
    }
    Ok(flags)
}

/// Whether Gunicorn read an HTTP/1.1 request without Host in this case (a
/// valid case: only those list what was read). Gunicorn serves it; we
/// refuse it unless `--permit-missing-host`, and the corpus holds many.
fn lacks_host(case: &Value) -> bool {
    case["requests"].as_array().is_some_and(|requests| {
        requests.iter().any(|r| {
            r["version"] == "HTTP/1.1"
                && !r["headers"].as_array().is_some_and(|headers| {
                    headers.iter().any(|h| {
                        h[0].as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case("host"))
                    })
                })
        })
    })
}

/// splitmix64: a small deterministic PRNG (no `rand` needed).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// FNV-1a, to give each case its own seed whatever the corpus order.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn seed() -> u64 {
    match std::env::var("CONFORMANCE_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("CONFORMANCE_SEED={s:?} is not a u64")),
        Err(_) => DEFAULT_SEED,
    }
}

/// Where `raw` is cut for `delivery`: the lengths of its pieces.
fn split(raw: &[u8], delivery: Delivery, seed: u64) -> Vec<usize> {
    match delivery {
        Delivery::Whole => vec![raw.len()],
        Delivery::ByteByByte => vec![1; raw.len()],
        Delivery::Lines => raw
            .split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::len)
            .collect(),
        Delivery::RandomSplits => {
            let mut rng = SplitMix(seed);
            let mut pieces = Vec::new();
            let mut left = raw.len();
            while left > 0 {
                // Mostly small pieces, some large, so cuts land everywhere:
                // inside tokens, between CR and LF, across the head's end.
                let max = [1, 3, 8, 40, 300][rng.below(5)];
                let n = (1 + rng.below(max)).min(left);
                pieces.push(n);
                left -= n;
            }
            pieces
        }
    }
}

/// Writes `raw` in `pieces`, pausing between them so the server sees them
/// in separate reads.
fn send(stream: &mut Wire, raw: &[u8], pieces: &[usize]) -> io::Result<()> {
    let pause = (PAUSE_BUDGET / pieces.len().max(1) as u32).min(MAX_PAUSE);
    let mut at = 0;
    for (i, n) in pieces.iter().enumerate() {
        stream.write_all(&raw[at..at + n])?;
        stream.flush()?;
        at += n;
        if i + 1 < pieces.len() && pieces.len() > 1 && pause >= Duration::from_micros(50) {
            thread::sleep(pause);
        }
    }
    Ok(())
}

/// A fresh connection; `preamble` (a PROXY header, over TLS) is written in
/// cleartext before the handshake.
fn connect(
    transport: &Transport,
    addr: SocketAddr,
    preamble: &[u8],
) -> Result<BufReader<Wire>, String> {
    let wire = transport
        .connect_after(addr, ANSWER_TIMEOUT, preamble)
        .map_err(|e| format!("connect ({}): {e}", transport.name()))?;
    Ok(BufReader::new(wire))
}

/// Reads until the server closes. `Ok(bytes)` on EOF or reset.
fn read_to_close(conn: &mut BufReader<Wire>) -> io::Result<Vec<u8>> {
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) => Ok(rest),
        Err(e) if is_close(&e) => Ok(rest),
        Err(e) => Err(e),
    }
}

fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
    format!("{text:?}{}", if bytes.len() > 200 { "…" } else { "" })
}

/// How a case's bytes travel over `transport`: (transport, cleartext
/// preamble, bytes for the transport). Over TLS, a case run with
/// `--proxy-protocol` that starts with a PROXY header sends that header
/// before the handshake, as a load balancer does (the server reads it
/// there); a case that is nothing but a PROXY header never reaches TLS, so
/// it runs in cleartext, which is what such a client's bytes are on a TLS
/// port. Cleartext: everything as it is.
fn over<'a, 't>(
    transport: &'t Transport,
    case: &Value,
    raw: &'a [u8],
) -> (&'t Transport, &'a [u8], &'a [u8]) {
    static PLAIN: Transport = Transport::Plain;
    let proxied = case["gunicorn_config"]
        .get("proxy_protocol")
        .is_some_and(|v| !v.is_null());
    if !matches!(transport, Transport::Tls(_)) || !proxied {
        return (transport, &[], raw);
    }
    let (preamble, rest) = raw.split_at(proxy_header_len(raw));
    if rest.is_empty() {
        (&PLAIN, &[], raw)
    } else {
        (transport, preamble, rest)
    }
}

/// The length of the PROXY header `raw` starts with (v1: through the first
/// CRLF; v2: the 16-byte prefix and its length), or 0 without one. A
/// header cut short counts as all of `raw`.
fn proxy_header_len(raw: &[u8]) -> usize {
    const V2: &[u8] = b"\r\n\r\n\x00\r\nQUIT\n";
    if raw.starts_with(b"PROXY ") {
        return raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(raw.len(), |p| p + 2);
    }
    if raw.starts_with(V2) && raw.len() >= 16 {
        let len = 16 + usize::from(u16::from_be_bytes([raw[14], raw[15]]));
        return len.min(raw.len());
    }
    if raw.starts_with(V2) {
        return raw.len();
    }
    0
}

/// Replays one case on a fresh connection; `Err` says what differed.
fn replay(
    transport: &Transport,
    addr: SocketAddr,
    case: &Value,
    delivery: Delivery,
    seed: u64,
) -> Result<(), String> {
    let whole = b64(case["raw_b64"].as_str().unwrap_or_default());
    let (carrier, preamble, raw) = over(transport, case, &whole);
    let pieces = split(raw, delivery, seed ^ fnv(name(case)));
    match Expectation::of(case) {
        Expectation::Requests(requests) => {
            check_requests(carrier, addr, preamble, raw, &pieces, &requests)
        }
        Expectation::Refusal {
            status,
            exact,
            half_close,
        } => {
            check_refusal(
                carrier, addr, preamble, raw, &pieces, status, exact, half_close,
            )?;
            // The worker must still serve, over the test's transport.
            let mut conn = connect(transport, addr, &[])?;
            // No header fields: it must fit the smallest limits in the corpus.
            let probe = b"GET /after-refusal HTTP/1.0\r\n\r\n";
            conn.get_mut()
                .write_all(probe)
                .map_err(|e| format!("after the refusal, a new connection: write: {e}"))?;
            match read_response(&mut conn, false) {
                Ok(resp) if resp.status == 200 => Ok(()),
                Ok(resp) => Err(format!(
                    "after the refusal, a new connection got {:?}",
                    resp.status_line
                )),
                Err(e) => Err(format!("after the refusal, a new connection: {e}")),
            }
        }
    }
}

fn check_requests(
    transport: &Transport,
    addr: SocketAddr,
    preamble: &[u8],
    raw: &[u8],
    pieces: &[usize],
    requests: &[Value],
) -> Result<(), String> {
    let mut conn = connect(transport, addr, preamble)?;
    // A write may fail once the server has closed on purpose: after a
    // request that ends the connection (HTTP/1.0, `Connection: close`),
    // the bytes that follow are never read. The answers decide.
    let written = send(conn.get_mut(), raw, pieces);
    for (i, want) in requests.iter().enumerate() {
        let resp = read_response(&mut conn, false).map_err(|e| match &written {
            Ok(()) => format!("request {i}: {e}"),
            Err(w) => format!("request {i}: {e} (writing failed: {w})"),
        })?;
        if resp.status != 200 {
            return Err(format!(
                "request {i}: got {:?} {}, want 200",
                resp.status_line,
                show(&resp.body)
            ));
        }
        let got: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("request {i}: not JSON ({e}): {}", show(&resp.body)))?;
        compare(&got, want).map_err(|e| format!("request {i}: {e}"))?;
    }
    // Nothing more may be read as a request: end the stream and expect the
    // server to close without another answer.
    conn.get_mut().shutdown_write();
    match read_to_close(&mut conn) {
        Ok(rest) if rest.is_empty() => Ok(()),
        Ok(rest) => Err(format!(
            "after {} answer(s), more came: {}",
            requests.len(),
            show(&rest)
        )),
        Err(e) => Err(format!("not closed after the stream ended: {e}")),
    }
}

/// Compares the echo's view of a request with Gunicorn's.
fn compare(got: &Value, want: &Value) -> Result<(), String> {
    let field = |key: &str| as_echoed(want[key].as_str().unwrap_or_default());
    if got["method"] != field("method").as_str() {
        return Err(format!("method {} != {:?}", got["method"], field("method")));
    }
    // The target: the echo shows path and query (the fragment, which is no
    // part of a request-target, is dropped by the `http` crate's Uri), so
    // compare them with Gunicorn's split of `uri`.
    if let Some(target) = got["target"].as_str() {
        if target != field("uri") {
            return Err(format!("target {target:?} != {:?}", field("uri")));
        }
    }
    if got["path"] != field("path").as_str() {
        return Err(format!(
            "path {} != {:?} (uri {:?})",
            got["path"],
            field("path"),
            field("uri")
        ));
    }
    if got["query"] != field("query").as_str() {
        return Err(format!(
            "query {} != {:?} (uri {:?})",
            got["query"],
            field("query"),
            field("uri")
        ));
    }
    if let Some(version) = got["version"].as_str() {
        if version != field("version") {
            return Err(format!("version {version:?} != {:?}", field("version")));
        }
    }
    let got_headers = echo_headers(got);
    let want_headers: Vec<(String, String)> = want["headers"]
        .as_array()
        .ok_or("the case has no headers list")?
        .iter()
        .map(|h| {
            (
                as_echoed(h[0].as_str().unwrap_or_default()).to_ascii_lowercase(),
                as_echoed(h[1].as_str().unwrap_or_default()),
            )
        })
        .collect();
    if got_headers != want_headers {
        return Err(format!(
            "headers (lower-cased names, in order)\n      got  {got_headers:?}\n      want {want_headers:?}"
        ));
    }
    let body = b64(want["body_b64"].as_str().unwrap_or_default());
    if got["body_len"] != body.len() {
        return Err(format!("body_len {} != {}", got["body_len"], body.len()));
    }
    if let Some(echoed) = got["body_b64"].as_str() {
        if b64(echoed) != body {
            return Err(format!("body {} != {}", show(&b64(echoed)), show(&body)));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn check_refusal(
    transport: &Transport,
    addr: SocketAddr,
    preamble: &[u8],
    raw: &[u8],
    pieces: &[usize],
    status: Option<u16>,
    exact: bool,
    half_close: bool,
) -> Result<(), String> {
    let mut conn = connect(transport, addr, preamble)?;
    // The server may refuse before it has read everything; a failed write
    // is fine as long as the answer is.
    let _ = send(conn.get_mut(), raw, pieces);
    let mut first = if half_close {
        // Give the server a moment to decide from the bytes alone: ending
        // the stream at once would let a close caused by the EOF pass for a
        // refusal of the bytes.
        conn.get_ref().set_read_timeout(EOF_GRACE);
        let first = read_response(&mut conn, false);
        conn.get_ref().set_read_timeout(ANSWER_TIMEOUT);
        first
    } else {
        read_response(&mut conn, false)
    };
    if half_close && matches!(&first, Err(e) if is_timeout(e)) {
        conn.get_mut().shutdown_write();
        first = read_response(&mut conn, false);
    }
    let resp = match first {
        Ok(resp) => resp,
        // Closed without an answer: a refusal too (and the only right
        // answer to a head cut off by EOF).
        Err(e) if is_close(&e) => return Ok(()),
        Err(e) if is_timeout(&e) => {
            return Err(format!(
                "neither answered nor closed within {ANSWER_TIMEOUT:?}; want {}",
                want_text(status, exact)
            ))
        }
        Err(e) => return Err(format!("unreadable answer: {e}")),
    };
    if !(400..500).contains(&resp.status) {
        return Err(format!(
            "got {:?}, want {} or a close",
            resp.status_line,
            want_text(status, exact)
        ));
    }
    if exact && status.is_some_and(|s| s != resp.status) {
        return Err(format!(
            "got {:?}, want {}",
            resp.status_line,
            want_text(status, exact)
        ));
    }
    match read_to_close(&mut conn) {
        Ok(rest) if rest.is_empty() => Ok(()),
        Ok(rest) => Err(format!(
            "{:?}, then more was answered: {}",
            resp.status_line,
            show(&rest)
        )),
        Err(e) => Err(format!(
            "{:?}, but the connection stayed open ({e})",
            resp.status_line
        )),
    }
}

fn want_text(status: Option<u16>, exact: bool) -> String {
    match (status, exact) {
        (Some(s), true) => s.to_string(),
        (Some(s), false) => format!("a 4xx (Gunicorn: {s})"),
        (None, _) => "a close without an answer".into(),
    }
}

/// The outcome of one case in one mode.
enum Outcome {
    Pass { valid: bool },
    Fail(String),
    NotRun(String),
}

/// Replays the whole corpus in one delivery mode against example `example`
/// (`echo`, or `axum`, whose fallback keeps echo's contract: the same HTTP
/// layer must guard both) and checks the outcomes against [`DIFFERENT`].
fn replay_corpus(example: &str, delivery: Delivery) {
    replay_corpus_over(example, delivery, None);
}

/// [`replay_corpus`] over TLS: every server also gets `--certfile` and
/// `--keyfile` (a throwaway PKI, the server certificate for 127.0.0.1) and
/// each case's bytes go through a rustls connection with ALPN `http/1.1`.
/// The expectations and [`DIFFERENT`] are the cleartext run's: TLS changes
/// the transport, never what the HTTP/1.1 parser decides. Skips without
/// `openssl` (fails under `CI=true`).
fn replay_corpus_over_tls(example: &str, delivery: Delivery) {
    let Some(pki) = Pki::new() else { return };
    replay_corpus_over(example, delivery, Some(&pki));
}

/// The replay itself; TLS from `pki.server` when `pki` is given.
fn replay_corpus_over(example: &str, delivery: Delivery, pki: Option<&Pki>) {
    let transport = match pki {
        Some(pki) => Transport::tls(&pki.ca.cert),
        None => Transport::Plain,
    };
    let tls_args: Vec<&str> = match pki {
        Some(pki) => vec![
            "--certfile",
            pki.server.cert(),
            "--keyfile",
            pki.server.key(),
        ],
        None => Vec::new(),
    };
    let cases = corpus();
    assert_eq!(cases.len(), 145, "the corpus README promises 145 cases");
    for (listed, _) in DIFFERENT {
        assert!(
            cases.iter().any(|c| name(c) == *listed),
            "DIFFERENT names {listed}, which is not in the corpus"
        );
    }
    let seed = seed();

    // One server per set of flags; cases that need a setting we lack are
    // not run.
    let mut outcomes: Vec<Option<Outcome>> = (0..cases.len()).map(|_| None).collect();
    let mut groups: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for (i, case) in cases.iter().enumerate() {
        match flags_for(case) {
            Ok(flags) => groups.entry(flags).or_default().push(i),
            Err(setting) => outcomes[i] = Some(Outcome::NotRun(setting)),
        }
    }
    let outcomes = Mutex::new(outcomes);
    for (flags, indices) in &groups {
        let mut args = vec!["--bind", "127.0.0.1:0"];
        args.extend(&tls_args);
        args.extend(flags.iter().map(String::as_str));
        let server = Server::start(example, &args);
        let addr = server.addr();
        let next = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..PARALLEL.min(indices.len()) {
                s.spawn(|| loop {
                    let Some(&i) = indices.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    let case = &cases[i];
                    let outcome = match replay(&transport, addr, case, delivery, seed) {
                        Ok(()) => Outcome::Pass {
                            valid: Expectation::of(case).is_valid(),
                        },
                        Err(why) => Outcome::Fail(why),
                    };
                    outcomes.lock().unwrap()[i] = Some(outcome);
                });
            }
        });
        drop(server);
    }

    let (mut valid_pass, mut invalid_pass, mut different) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    for (case, outcome) in cases.iter().zip(outcomes.into_inner().unwrap()) {
        let case_name = name(case);
        let listed = DIFFERENT.iter().find(|(n, _)| *n == case_name);
        let basis = case["basis"].as_str().unwrap_or("?");
        match (outcome.expect("every case has an outcome"), listed) {
            (Outcome::Pass { valid: true }, None) => valid_pass += 1,
            (Outcome::Pass { valid: false }, None) => invalid_pass += 1,
            (Outcome::Pass { .. }, Some(_)) => failures.push(format!(
                "{case_name} ({basis}) passes but is listed in DIFFERENT: remove it from the list"
            )),
            (Outcome::Fail(why), None) => {
                failures.push(format!("{case_name} ({basis}): {why}"));
            }
            (Outcome::Fail(why), Some((_, reason))) => {
                different += 1;
                notes.push(format!("{case_name}: {reason}\n    (here: {why})"));
            }
            (Outcome::NotRun(_), Some((_, reason))) => {
                different += 1;
                notes.push(format!("{case_name}: not run: {reason}"));
            }
            (Outcome::NotRun(setting), None) => failures.push(format!(
                "{case_name} needs the Gunicorn setting {setting}: offer an equivalent flag \
                 (see flags_for) or list the case in DIFFERENT with the reason"
            )),
        }
    }
    let summary = format!(
        "corpus ({example}, {}, {delivery:?}, seed {seed}): {valid_pass} valid pass, {invalid_pass} invalid pass, \
         {different} deliberately different",
        transport.name()
    );
    println!("{summary}");
    for note in &notes {
        println!("  different: {note}");
    }
    assert!(
        failures.is_empty(),
        "{summary}; {} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn conformance_corpus_whole() {
    replay_corpus("echo", Delivery::Whole);
}

#[test]
fn axum_conformance_corpus_whole() {
    replay_corpus("axum", Delivery::Whole);
}

#[test]
fn conformance_corpus_one_byte_at_a_time() {
    replay_corpus("echo", Delivery::ByteByByte);
}

#[test]
fn axum_conformance_corpus_one_byte_at_a_time() {
    replay_corpus("axum", Delivery::ByteByByte);
}

#[test]
fn conformance_corpus_line_by_line() {
    replay_corpus("echo", Delivery::Lines);
}

#[test]
fn axum_conformance_corpus_line_by_line() {
    replay_corpus("axum", Delivery::Lines);
}

#[test]
fn conformance_corpus_random_splits() {
    replay_corpus("echo", Delivery::RandomSplits);
}

#[test]
fn axum_conformance_corpus_random_splits() {
    replay_corpus("axum", Delivery::RandomSplits);
}

#[test]
fn conformance_corpus_whole_over_tls() {
    replay_corpus_over_tls("echo", Delivery::Whole);
}

#[test]
fn conformance_corpus_one_byte_at_a_time_over_tls() {
    replay_corpus_over_tls("echo", Delivery::ByteByByte);
}

#[test]
fn conformance_corpus_line_by_line_over_tls() {
    replay_corpus_over_tls("echo", Delivery::Lines);
}

#[test]
fn conformance_corpus_random_splits_over_tls() {
    replay_corpus_over_tls("echo", Delivery::RandomSplits);
}

#[test]
fn splits_cover_the_bytes_and_are_deterministic() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for delivery in [
        Delivery::Whole,
        Delivery::ByteByByte,
        Delivery::Lines,
        Delivery::RandomSplits,
    ] {
        let pieces = split(raw, delivery, 7);
        assert_eq!(pieces.iter().sum::<usize>(), raw.len(), "{delivery:?}");
        assert!(pieces.iter().all(|n| *n > 0), "{delivery:?}");
        assert_eq!(pieces, split(raw, delivery, 7), "{delivery:?}");
    }
    assert_eq!(split(raw, Delivery::Lines, 0), vec![16, 9, 2]);
    assert_ne!(
        split(&[0; 500], Delivery::RandomSplits, 1),
        split(&[0; 500], Delivery::RandomSplits, 2)
    );
}
