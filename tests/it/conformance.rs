//! Gunicorn's request-parser fixtures (`data/gunicorn-requests.json`, see
//! `data/README.md`) replayed against the echo example over real sockets.
//!
//! A valid case must be answered 200 once per request it holds, with the
//! echo's method, path, query, headers and body length matching what
//! Gunicorn parsed. An invalid case must be refused with Gunicorn's status
//! (400, 414, 431) and a closed connection; a head cut off by EOF gets no
//! answer. Each test collects every mismatch and reports them all at once.
//! Cases that need a Gunicorn-only switch are left out; limit overrides are
//! mapped onto our flags.

use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use base64::Engine;
use serde_json::Value;

use crate::harness::*;

const CORPUS: &str = include_str!("data/gunicorn-requests.json");

fn corpus() -> Vec<Value> {
    serde_json::from_str::<Value>(CORPUS)
        .expect("corpus parses")
        .as_array()
        .expect("corpus is a list")
        .clone()
}

fn b64(case: &Value, key: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(case[key].as_str().unwrap_or_default())
        .expect("base64")
}

fn name(case: &Value) -> &str {
    case["name"].as_str().unwrap()
}

/// The flags that reproduce a case's `gunicorn_config`, or `None` when it
/// needs a setting we do not offer (or give another meaning).
fn flags_for(case: &Value) -> Option<Vec<String>> {
    let mut flags = Vec::new();
    for (key, value) in case["gunicorn_config"].as_object()? {
        let flag = match key.as_str() {
            "limit_request_line" => "--limit-request-line",
            "limit_request_fields" => "--limit-request-fields",
            "limit_request_field_size" => "--limit-request-field_size",
            _ => return None,
        };
        let n = value.as_u64()?;
        // Gunicorn reads 0 as its default here; ours is "the hard maximum".
        if n == 0 {
            return None;
        }
        flags.push(flag.to_string());
        flags.push(n.to_string());
    }
    Some(flags)
}

/// Cases grouped by the server flags they need, one server per group.
fn by_flags(cases: Vec<Value>) -> Vec<(Vec<String>, Vec<Value>)> {
    let mut groups: Vec<(Vec<String>, Vec<Value>)> = Vec::new();
    for case in cases {
        let Some(flags) = flags_for(&case) else {
            continue;
        };
        match groups.iter_mut().find(|(f, _)| *f == flags) {
            Some((_, list)) => list.push(case),
            None => groups.push((flags, vec![case])),
        }
    }
    groups
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    BufReader::new(stream)
}

fn latin1(bytes: &str) -> Option<&str> {
    bytes.is_ascii().then_some(bytes)
}

/// Replays one valid case; `Err` describes the first mismatch.
fn check_valid(addr: SocketAddr, case: &Value, byte_by_byte: bool) -> Result<(), String> {
    let raw = b64(case, "raw_b64");
    let mut conn = connect(addr);
    let written = if byte_by_byte {
        raw.iter()
            .try_for_each(|b| conn.get_mut().write_all(std::slice::from_ref(b)))
    } else {
        conn.get_mut().write_all(&raw)
    };
    written.map_err(|e| format!("write: {e}"))?;
    let requests = case["requests"].as_array().ok_or("no requests")?;
    for (i, expected) in requests.iter().enumerate() {
        let resp = read_response(&mut conn, false).map_err(|e| format!("request {i}: {e}"))?;
        if resp.status_line != "HTTP/1.1 200 OK" && resp.status_line != "HTTP/1.0 200 OK" {
            return Err(format!("request {i}: {}", resp.status_line));
        }
        let want = |key: &str| expected[key].as_str().unwrap_or_default().to_string();
        if want("method") == "CONNECT" {
            // A 2xx to CONNECT opens a tunnel and has no body (RFC 9110
            // 9.3.6): that the application was called is all we can see.
            return Ok(());
        }
        let json: Value =
            serde_json::from_slice(&resp.body).map_err(|e| format!("request {i}: json: {e}"))?;
        if json["method"] != want("method") {
            return Err(format!(
                "request {i}: method {} != {:?}",
                json["method"],
                want("method")
            ));
        }
        let uri = want("uri");
        // Compare path/query for origin-form targets (CONNECT's split is
        // meaningless; absolute-form is compared by its path).
        if uri.starts_with('/') || uri.starts_with("http") {
            if let Some(path) = latin1(expected["path"].as_str().unwrap_or_default()) {
                if json["path"] != path {
                    return Err(format!("request {i}: path {} != {path:?}", json["path"]));
                }
            }
            let query = want("query");
            if json["query"] != query.as_str() && !(query.is_empty() && json["query"].is_null()) {
                return Err(format!("request {i}: query {} != {query:?}", json["query"]));
            }
        }
        let got = echo_headers(&json);
        let exp: Vec<(String, String)> = expected["headers"]
            .as_array()
            .ok_or("no headers")?
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap_or_default().to_ascii_lowercase(),
                    h[1].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let got_names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        let exp_names: Vec<&str> = exp.iter().map(|(n, _)| n.as_str()).collect();
        if got_names != exp_names {
            return Err(format!(
                "request {i}: header names {got_names:?} != {exp_names:?}"
            ));
        }
        for ((n, g), (_, e)) in got.iter().zip(&exp) {
            if latin1(e).is_some() && g != e {
                return Err(format!("request {i}: header {n}: {g:?} != {e:?}"));
            }
        }
        let body_len = base64::engine::general_purpose::STANDARD
            .decode(expected["body_b64"].as_str().unwrap_or_default())
            .map(|b| b.len())
            .unwrap_or(0);
        if json["body_len"] != body_len {
            return Err(format!(
                "request {i}: body_len {} != {body_len}",
                json["body_len"]
            ));
        }
    }
    Ok(())
}

/// Replays one invalid case; `Err` describes how the answer differed.
fn check_invalid(addr: SocketAddr, case: &Value) -> Result<(), String> {
    let raw = b64(case, "raw_b64");
    let mut conn = connect(addr);
    // The server may refuse before it has read everything; a failed write
    // is fine as long as the answer is right.
    let _ = conn.get_mut().write_all(&raw);
    let expected = case["gunicorn_status"].as_u64();
    let body_phase = case["observed"]["pypi-27.0.1"]["phase"] == "body";
    if expected.is_none() || body_phase {
        // Gunicorn's harness reads a finite stream: end it, so a server that
        // waits for more bytes (a truncated head, a missing final CRLF) sees
        // the end instead of a stalled client.
        let _ = conn.get_ref().shutdown(Shutdown::Write);
    }
    match read_response(&mut conn, false) {
        Ok(resp) => {
            let ok = match expected {
                Some(code) => {
                    resp.status as u64 == code
                        || (name(case) == "invalid/version_02" && resp.status == 505)
                }
                // An answer to a truncated head may only be a refusal.
                None => resp.status == 400,
            };
            if !ok {
                return Err(format!("got {:?}, want {expected:?}", resp.status_line));
            }
            let mut rest = Vec::new();
            match std::io::Read::read_to_end(&mut conn, &mut rest) {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
                Err(e) => Err(format!("{}: connection not closed ({e})", resp.status_line)),
            }
        }
        // Closed without an answer: right for a truncated head, and
        // tolerated for chunk-framing errors found while reading the body
        // (the request was refused either way).
        Err(e)
            if e.kind() == std::io::ErrorKind::UnexpectedEof
                || e.kind() == std::io::ErrorKind::ConnectionReset =>
        {
            if expected.is_none() || body_phase {
                Ok(())
            } else {
                Err(format!("closed without an answer, want {expected:?}"))
            }
        }
        Err(e) => Err(format!("no answer ({e}), want {expected:?}")),
    }
}

fn run_cases(
    cases: Vec<Value>,
    check: impl Fn(SocketAddr, &Value) -> Result<(), String>,
) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut ran = 0;
    for (flags, group) in by_flags(cases) {
        let mut args = vec!["--bind", "127.0.0.1:0"];
        args.extend(flags.iter().map(String::as_str));
        let server = Server::start("echo", &args);
        for case in &group {
            ran += 1;
            if let Err(why) = check(server.addr(), case) {
                let notes = case["notes"].to_string();
                failures.push(format!(
                    "{} ({}): {why} — notes: {notes}",
                    name(case),
                    case["basis"]
                ));
            }
        }
    }
    (ran, failures)
}

fn assert_all_pass(what: &str, (ran, failures): (usize, Vec<String>)) {
    assert!(ran > 0, "no {what} case ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} {what} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Valid cases that the latest Gunicorn release also accepts.
fn valid_cases(basis: &[&str]) -> Vec<Value> {
    corpus()
        .into_iter()
        .filter(|c| c["expect"] == "valid" && c["agrees_with_latest_release"] == true)
        .filter(|c| basis.iter().any(|b| c["basis"] == *b))
        .filter(|c| !body_shorter_than_announced(c))
        .collect()
}

/// Whether a case announces a Content-Length its bytes do not hold
/// (valid/099): Gunicorn's harness parses a finite buffer and never waits
/// for the rest, but a server on a socket rightly does.
fn body_shorter_than_announced(case: &Value) -> bool {
    let announced = case["headers"].as_array().and_then(|hs| {
        hs.iter()
            .find(|h| {
                h[0].as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case("content-length"))
            })
            .and_then(|h| h[1].as_str()?.trim().parse::<usize>().ok())
    });
    let body = base64::engine::general_purpose::STANDARD
        .decode(case["body_b64"].as_str().unwrap_or_default())
        .map(|b| b.len())
        .unwrap_or(0);
    announced.is_some_and(|n| n > body)
}

fn invalid_cases(basis: &[&str]) -> Vec<Value> {
    corpus()
        .into_iter()
        .filter(|c| c["expect"] == "invalid")
        .filter(|c| basis.iter().any(|b| c["basis"] == *b))
        .collect()
}

#[test]
fn conformance_valid_requests_are_parsed_as_gunicorn_parses_them() {
    assert_all_pass(
        "valid (rfc, limit)",
        run_cases(valid_cases(&["rfc", "limit"]), |addr, case| {
            check_valid(addr, case, false)
        }),
    );
}

#[test]
fn conformance_valid_requests_fed_one_byte_at_a_time() {
    assert_all_pass(
        "valid (rfc, limit; byte by byte)",
        run_cases(valid_cases(&["rfc", "limit"]), |addr, case| {
            check_valid(addr, case, true)
        }),
    );
}

/// Requests Gunicorn accepts where the RFCs would let a server refuse: a
/// failure here is a choice to make on purpose (and write down), not
/// necessarily a bug.
#[test]
fn conformance_valid_requests_accepted_by_gunicorn_policy() {
    assert_all_pass(
        "valid (policy)",
        run_cases(valid_cases(&["policy"]), |addr, case| {
            check_valid(addr, case, false)
        }),
    );
}

#[test]
fn conformance_invalid_requests_refused_by_the_rfc() {
    assert_all_pass(
        "invalid (rfc)",
        run_cases(invalid_cases(&["rfc"]), check_invalid),
    );
}

/// Requests Gunicorn refuses where the RFCs would let a server accept:
/// matching them is worthwhile (smuggling guards), and a failure here is a
/// choice to make on purpose.
#[test]
fn conformance_invalid_requests_refused_by_gunicorn_policy() {
    assert_all_pass(
        "invalid (policy)",
        run_cases(invalid_cases(&["policy"]), check_invalid),
    );
}

#[test]
fn conformance_limits() {
    assert_all_pass(
        "invalid (limit)",
        run_cases(invalid_cases(&["limit"]), check_invalid),
    );
}
