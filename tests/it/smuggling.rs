//! Request smuggling and framing: requests whose framing or fields a
//! front-end proxy and this server could read differently.
//!
//! Each case is written on a fresh connection to the echo example with a
//! second request, `GET /smuggled`, right behind it. The case must be
//! refused with a 4xx (or the connection closed without an answer), the
//! connection must then close, and no answer may ever come from the echo
//! for `/smuggled`: those bytes must never be read as a request. Then a
//! request on a fresh connection must be answered exactly as if nothing
//! had happened (no residue from the case in the echo's view).
//!
//! A case that frames a body one way and a request another would be
//! ambiguous even when one reading is "right"; refusing is the only answer
//! that holds whatever the proxy in front did (RFC 9112 sections 6.1, 6.3
//! and 11.2).
//!
//! The TLS run sends the same bytes through rustls (ALPN `http/1.1`) to the
//! echo serving TLS, and asserts the same: framing is HTTP/1.1's whatever
//! carries it.
//!
//! A case the server answers differently on purpose is listed in
//! [`DIFFERENT`] with the reason; it still runs, and a listed case that is
//! refused cleanly fails the test (the list must stay true).

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crate::harness::{
    echo_headers, is_close, is_timeout, read_response, Server, Transport, IO_TIMEOUT,
};
use crate::tls::Pki;

/// How long the server may take to answer or close.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

/// The request written behind every case.
const SMUGGLED: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

/// Cases answered differently on purpose, and why.
// Empty since HTTP/1.1 without Host is refused (RFC 9112 section 3.2)
// unless `--permit-missing-host`; the list stays for the next one.
const DIFFERENT: &[(&str, &str)] = &[];

/// One hostile request: its name, its bytes, and the exact status it must
/// get if it is answered (`None`: any 4xx).
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    status: Option<u16>,
}

fn case(name: &'static str, bytes: impl AsRef<[u8]>) -> Case {
    Case {
        name,
        bytes: bytes.as_ref().to_vec(),
        status: None,
    }
}

/// A POST with `fields` (each a full line without CRLF) and `body`.
fn post(fields: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut out = b"POST /case HTTP/1.1\r\nHost: x\r\n".to_vec();
    for field in fields {
        out.extend_from_slice(field);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A chunked POST whose first chunk-size line is `size_line`.
fn chunked_with(size_line: &[u8]) -> Vec<u8> {
    let mut body = size_line.to_vec();
    body.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    post(&[b"Transfer-Encoding: chunked"], &body)
}

fn cases() -> Vec<Case> {
    let chunked_body: &[u8] = b"5\r\nhello\r\n0\r\n\r\n";
    let mut cases = vec![
        // Content-Length together with Transfer-Encoding (CL.TE / TE.CL).
        case(
            "CL then TE",
            post(
                &[b"Content-Length: 4", b"Transfer-Encoding: chunked"],
                chunked_body,
            ),
        ),
        case(
            "TE then CL",
            post(
                &[b"Transfer-Encoding: chunked", b"Content-Length: 30"],
                chunked_body,
            ),
        ),
        case(
            "CL 0 with TE",
            post(
                &[b"Content-Length: 0", b"Transfer-Encoding: chunked"],
                chunked_body,
            ),
        ),
        // Duplicate and conflicting Content-Length.
        case(
            "duplicate CL, same value",
            post(&[b"Content-Length: 5", b"Content-Length: 5"], b"hello"),
        ),
        case(
            "conflicting CL",
            post(&[b"Content-Length: 5", b"Content-Length: 6"], b"hello!"),
        ),
        case(
            "CL list, same value",
            post(&[b"Content-Length: 5, 5"], b"hello"),
        ),
        case(
            "CL list, conflicting",
            post(&[b"Content-Length: 5, 6"], b"hello!"),
        ),
        case("CL with a sign", post(&[b"Content-Length: +5"], b"hello")),
        case("CL hex", post(&[b"Content-Length: 0x5"], b"hello")),
        case(
            "CL overflow",
            post(&[b"Content-Length: 99999999999999999999999"], b"hello"),
        ),
        // Obfuscated Transfer-Encoding, with a Content-Length as the
        // alternative framing: whichever way it is read, it is ambiguous.
        case(
            "TE xchunked with CL",
            post(
                &[b"Transfer-Encoding: xchunked", b"Content-Length: 5"],
                b"hello",
            ),
        ),
        case(
            "TE xchunked alone",
            post(&[b"Transfer-Encoding: xchunked"], chunked_body),
        ),
        case(
            "TE chunked, identity",
            post(&[b"Transfer-Encoding: chunked, identity"], chunked_body),
        ),
        case(
            "TE chunked twice",
            post(&[b"Transfer-Encoding: chunked, chunked"], chunked_body),
        ),
        case(
            "TE chunked then gzip on two lines",
            post(
                &[b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"],
                chunked_body,
            ),
        ),
        case(
            "TE with leading space value and CL",
            post(
                &[b"Transfer-Encoding:  chunked", b"Content-Length: 5"],
                b"hello",
            ),
        ),
        case(
            "TE line starting with a space (fold) and CL",
            post(
                &[
                    b"X-A: 1",
                    b" Transfer-Encoding: chunked",
                    b"Content-Length: 5",
                ],
                b"hello",
            ),
        ),
        case(
            "TE with tab value and CL",
            post(
                &[b"Transfer-Encoding:\tchunked", b"Content-Length: 5"],
                b"hello",
            ),
        ),
        case(
            "TE with vertical tab",
            post(&[b"Transfer-Encoding:\x0bchunked"], chunked_body),
        ),
        case(
            "TE with form feed",
            post(&[b"Transfer-Encoding:\x0cchunked"], chunked_body),
        ),
        case(
            "TE quoted",
            post(&[b"Transfer-Encoding: \"chunked\""], chunked_body),
        ),
        case(
            "TE name with a space before the colon and CL",
            post(
                &[b"Transfer-Encoding : chunked", b"Content-Length: 5"],
                b"hello",
            ),
        ),
        case(
            "TE on HTTP/1.0",
            [
                &b"POST /case HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
                chunked_body,
            ]
            .concat(),
        ),
        // Invalid chunk sizes and extensions.
        case("chunk size 0x5", chunked_with(b"0x5")),
        case("chunk size -1", chunked_with(b"-1")),
        case("chunk size +5", chunked_with(b"+5")),
        case("chunk size overflow", chunked_with(b"ffffffffffffffffff")),
        case("chunk size empty", chunked_with(b"")),
        case("chunk size with a space inside", chunked_with(b"5 5")),
        case("chunk size with trailing space", chunked_with(b"5 ")),
        case("chunk ext with NUL", chunked_with(b"5;a=\x00")),
        case("chunk ext with a control byte", chunked_with(b"5;a=\x01b")),
        case("chunk ext with bare CR", chunked_with(b"5;a\rb")),
        case("chunk ext with bare LF", chunked_with(b"5;a\nb")),
        case("chunk ext unterminated quote", chunked_with(b"5;a=\"b")),
        case(
            "chunk data longer than its size",
            post(&[b"Transfer-Encoding: chunked"], b"3\r\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "chunk data not followed by CRLF",
            post(&[b"Transfer-Encoding: chunked"], b"5\r\nhelloXX0\r\n\r\n"),
        ),
        // Bare LF and bare CR as line ends.
        case("bare LF everywhere", "GET /case HTTP/1.1\nHost: x\n\n"),
        case(
            "bare LF after a field",
            "GET /case HTTP/1.1\r\nHost: x\nX: 1\r\n\r\n",
        ),
        case(
            "bare LF after the request line",
            "GET /case HTTP/1.1\nHost: x\r\n\r\n",
        ),
        case(
            "bare CR in the request line",
            "GET /case\rHTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        case(
            "bare CR after a field",
            "GET /case HTTP/1.1\r\nHost: x\rX: 1\r\n\r\n",
        ),
        case(
            "bare CR in a value",
            "GET /case HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
        ),
        // NUL and control bytes in field names and values.
        case(
            "NUL in a name",
            "GET /case HTTP/1.1\r\nHost: x\r\nX\x00Y: 1\r\n\r\n",
        ),
        case(
            "NUL in a value",
            "GET /case HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
        ),
        case(
            "SOH in a name",
            "GET /case HTTP/1.1\r\nHost: x\r\nX\x01: 1\r\n\r\n",
        ),
        case(
            "SOH in a value",
            "GET /case HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
        ),
        case(
            "ESC in a value",
            "GET /case HTTP/1.1\r\nHost: x\r\nX: a\x1bb\r\n\r\n",
        ),
        case(
            "DEL in a value",
            "GET /case HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
        ),
        case(
            "NUL in the target",
            "GET /ca\x00se HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        case(
            "space in a name",
            "GET /case HTTP/1.1\r\nHost: x\r\nX Y: 1\r\n\r\n",
        ),
        case("empty name", "GET /case HTTP/1.1\r\nHost: x\r\n: 1\r\n\r\n"),
        case(
            "line without a colon",
            "GET /case HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        ),
        // obs-fold.
        case(
            "obs-fold with a space",
            "GET /case HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
        ),
        case(
            "obs-fold with a tab",
            "GET /case HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb\r\n\r\n",
        ),
        case(
            "obs-fold of Content-Length",
            post(&[b"Content-Length:", b" 5"], b"hello"),
        ),
        // Whitespace between the name and the colon.
        case(
            "space before the colon of Content-Length",
            post(&[b"Content-Length : 5"], b"hello"),
        ),
        case(
            "tab before the colon",
            "GET /case HTTP/1.1\r\nHost: x\r\nX\t: 1\r\n\r\n",
        ),
        case(
            "space before the colon of Host",
            "GET /case HTTP/1.1\r\nHost : x\r\n\r\n",
        ),
        // Two Host fields, and HTTP/1.1 without one.
        case(
            "two Host fields",
            "GET /case HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        ),
        case(
            "HTTP/1.1 without Host",
            "GET /case HTTP/1.1\r\nX: 1\r\n\r\n",
        ),
        // Malformed request lines.
        case(
            "two spaces in the request line",
            "GET  /case HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        case(
            "tab in the request line",
            "GET\t/case HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        case(
            "lower-case version",
            "GET /case http/1.1\r\nHost: x\r\n\r\n",
        ),
    ];
    // Over-long lines, with the statuses Gunicorn's names promise.
    let mut long_line = b"GET /".to_vec();
    long_line.extend(std::iter::repeat_n(b'a', 5000));
    long_line.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    cases.push(Case {
        name: "request line over 4094 bytes",
        bytes: long_line,
        status: Some(414),
    });
    let mut long_field = b"GET /case HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
    long_field.extend(std::iter::repeat_n(b'a', 9000));
    long_field.extend_from_slice(b"\r\n\r\n");
    cases.push(Case {
        name: "field line over 8190 bytes",
        bytes: long_field,
        status: Some(431),
    });
    let mut many = b"GET /case HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..120 {
        many.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    cases.push(Case {
        name: "over 100 fields",
        bytes: many,
        status: Some(431),
    });
    let mut long_ext = b"5;".to_vec();
    long_ext.extend(std::iter::repeat_n(b'a', 100 * 1024));
    cases.push(case("chunk extension of 100 KiB", chunked_with(&long_ext)));
    cases
}

/// What one case got, or why it failed.
fn check(transport: &Transport, addr: SocketAddr, case: &Case) -> Result<(), String> {
    let wire = transport
        .connect(addr, ANSWER_TIMEOUT)
        .map_err(|e| format!("connect ({}): {e}", transport.name()))?;
    let mut conn = BufReader::new(wire);
    // The server may refuse before reading everything: a failed write is
    // fine, the answers decide.
    let mut bytes = case.bytes.clone();
    bytes.extend_from_slice(SMUGGLED);
    let _ = conn.get_mut().write_all(&bytes);

    let first = match read_response(&mut conn, false) {
        Ok(resp) => resp,
        Err(e) if is_close(&e) => return Ok(()),
        Err(e) if is_timeout(&e) => {
            return Err(format!(
                "neither answered nor closed within {ANSWER_TIMEOUT:?}"
            ))
        }
        Err(e) => return Err(format!("unreadable answer: {e}")),
    };
    let described = describe(&first);
    if !(400..500).contains(&first.status) {
        return Err(format!("answered {described}, want a 4xx or a close"));
    }
    if case.status.is_some_and(|s| s != first.status) {
        return Err(format!(
            "answered {described}, want {}",
            case.status.unwrap()
        ));
    }
    // Nothing more: the connection closes, and `/smuggled` is never served.
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) if is_close(&e) => {}
        Err(e) => {
            return Err(format!(
                "answered {described}, then the connection stayed open ({e})"
            ))
        }
    }
    if !rest.is_empty() {
        let second = read_response(&mut BufReader::new(&rest[..]), false)
            .map(|r| describe(&r))
            .unwrap_or_else(|_| String::from_utf8_lossy(&rest).into_owned());
        return Err(format!(
            "answered {described}, then answered again (the smuggled request?): {second}"
        ));
    }
    Ok(())
}

fn describe(resp: &crate::harness::Response) -> String {
    let path = serde_json::from_slice::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|j| j["path"].as_str().map(str::to_owned));
    match path {
        Some(path) => format!("{:?} (the echo, for {path})", resp.status_line),
        None => format!("{:?}", resp.status_line),
    }
}

/// A fresh connection sees exactly its own request: the same method, path,
/// fields and an empty body.
fn check_no_residue(transport: &Transport, addr: SocketAddr) -> Result<(), String> {
    let wire = transport
        .connect(addr, IO_TIMEOUT)
        .map_err(|e| format!("fresh connection ({}): {e}", transport.name()))?;
    let mut conn = BufReader::new(wire);
    conn.get_mut()
        .write_all(b"GET /fresh?q=1 HTTP/1.1\r\nHost: fresh\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("fresh connection: write: {e}"))?;
    let resp =
        read_response(&mut conn, false).map_err(|e| format!("fresh connection: read: {e}"))?;
    if resp.status_line != "HTTP/1.1 200 OK" {
        return Err(format!("fresh connection: {:?}", resp.status_line));
    }
    let json = resp.json();
    let headers = echo_headers(&json);
    let want = vec![
        ("host".to_string(), "fresh".to_string()),
        ("connection".to_string(), "close".to_string()),
    ];
    if json["method"] != "GET"
        || json["path"] != "/fresh"
        || json["query"] != "q=1"
        || json["body_len"] != 0
        || headers != want
    {
        return Err(format!("fresh connection saw residue: {json}"));
    }
    Ok(())
}

#[test]
fn smuggling_and_framing_attacks_are_refused_without_desync() {
    refuse_every_case("echo", None);
}

/// The same cases, with the same expectations and [`DIFFERENT`], through
/// rustls (ALPN `http/1.1`) to the echo with `--certfile`/`--keyfile`: TLS
/// moves the bytes, the same HTTP/1.1 parser decides. Skips without
/// `openssl` (fails under `CI=true`).
#[test]
fn smuggling_and_framing_attacks_over_tls_are_refused_without_desync() {
    let Some(pki) = Pki::new() else { return };
    refuse_every_case("echo", Some(&pki));
}

/// The axum example through the tower adapter: the same HTTP layer guards
/// it, so the same cases must be refused the same way.
#[test]
fn axum_smuggling_and_framing_attacks_are_refused_without_desync() {
    refuse_every_case("axum", None);
}

/// Every case against `example`, over TLS from `pki.server` when given.
fn refuse_every_case(example: &str, pki: Option<&Pki>) {
    let (transport, server) = match pki {
        Some(pki) => (
            Transport::tls(&pki.ca.cert),
            Server::example(
                example,
                &[
                    "--certfile",
                    pki.server.cert(),
                    "--keyfile",
                    pki.server.key(),
                ],
            ),
        ),
        None => (Transport::Plain, Server::example(example, &[])),
    };
    let addr = server.addr();
    let cases = cases();
    for (listed, _) in DIFFERENT {
        assert!(
            cases.iter().any(|c| c.name == *listed),
            "DIFFERENT names {listed}, which is not a case"
        );
    }
    let failures = Mutex::new(Vec::new());
    let different = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    // A few at a time: a case the server wrongly waits on costs the answer
    // timeout, and the whole test stays well under its budget.
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| loop {
                let Some(case) = cases.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                let result =
                    check(&transport, addr, case).and_then(|()| check_no_residue(&transport, addr));
                let listed = DIFFERENT.iter().find(|(n, _)| *n == case.name);
                let result = match (result, listed) {
                    (Ok(()), Some(_)) => Err(
                        "refused cleanly but listed in DIFFERENT: remove it from the list"
                            .to_string(),
                    ),
                    (Err(why), Some((_, reason))) => {
                        println!("  different: {}: {reason}\n    (here: {why})", case.name);
                        different.fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    }
                    (result, None) => result,
                };
                if let Err(why) = result {
                    failures.lock().unwrap().push(format!(
                        "{}: {why}\n    bytes: {:?}",
                        case.name,
                        String::from_utf8_lossy(&case.bytes[..case.bytes.len().min(160)])
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let different = different.into_inner();
    println!(
        "smuggling ({example}, {}): {} of {} cases refused without desync, {different} deliberately different",
        transport.name(),
        cases.len() - failures.len() - different,
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} smuggling cases were not refused cleanly ({}):\n{}",
        failures.len(),
        cases.len(),
        transport.name(),
        failures.join("\n")
    );
}

/// Sanity check of the method: the same connection, with a well-framed
/// request in place of a hostile one, does answer `/smuggled`, so the test
/// above would see a desync if there were one.
#[test]
fn smuggling_probe_is_answered_after_a_well_framed_request() {
    let server = Server::echo(&[]);
    let stream = TcpStream::connect_timeout(&server.addr(), IO_TIMEOUT).unwrap();
    stream.set_read_timeout(Some(ANSWER_TIMEOUT)).unwrap();
    let mut conn = BufReader::new(stream);
    let mut bytes = post(&[b"Content-Length: 5"], b"hello");
    bytes.extend_from_slice(SMUGGLED);
    conn.get_mut().write_all(&bytes).unwrap();
    let first = read_response(&mut conn, false).expect("first answer");
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json()["body_len"], 5);
    let second = read_response(&mut conn, false).expect("second answer");
    assert_eq!(second.json()["path"], "/smuggled");
}
