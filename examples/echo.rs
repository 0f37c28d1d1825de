//! An application that tells the client what the server saw; the black-box
//! tests drive it.
//!
//! Any method on any path reads the whole request body and answers 200 with
//! a JSON object: `method`, `path`, `query`, `headers` (a list of
//! `[name, value]` pairs in arrival order, repeats kept; see
//! [`HeaderOrder`]), `body_len` (bytes after de-chunking), `pid` (the
//! serving process), `peer`, `remote_port` and `scheme` (after the proxy
//! rules and a PROXY protocol header), `socket_peer` (the socket's own peer),
//! `worker_id`, `request_id` and `version`. Some paths do more first:
//!
//! - `/sleep?s=N`: waits N seconds (fractions allowed) without blocking
//!   anything;
//! - `/block?s=N`: blocks its thread N seconds, like a stuck synchronous
//!   application;
//! - `/panic`: panics (the server answers an empty 500);
//! - `/stream?n=N`: answers N chunks, streamed, instead of the JSON.
//!
//! ```text
//! cargo run --release --example echo -- --bind 127.0.0.1:8000
//! curl -d hello 'http://127.0.0.1:8000/any/path?x=1'
//! ```

use std::process::ExitCode;
use std::time::Duration;

use ferricorn_app_interface::response::{empty, json};
use ferricorn_app_interface::{from_fn, Body, ConnectionInfo, HeaderOrder, Request, Response};
use http::StatusCode;
use serde_json::json;

/// The value of `key` in a query string, as a number.
fn query_number(request: &Request, key: &str) -> Option<f64> {
    request
        .uri()
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 0.0)
}

async fn echo(request: Request) -> Response {
    let seconds = query_number(&request, "s").unwrap_or(0.0).min(3600.0);
    match request.uri().path() {
        "/sleep" => tokio::time::sleep(Duration::from_secs_f64(seconds)).await,
        // On purpose: this blocks a runtime thread, as a stuck synchronous
        // application would.
        "/block" => std::thread::sleep(Duration::from_secs_f64(seconds)),
        "/panic" => panic!("the echo example panics on /panic, as asked"),
        _ => {}
    }

    let headers: Vec<[String; 2]> = HeaderOrder::of(&request)
        .into_iter()
        .map(|(name, value)| {
            [
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ]
        })
        .collect();
    let info = ConnectionInfo::of(&request).cloned();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let version = format!("{:?}", request.version());

    let body = match request.into_body().collect_limited(u64::MAX).await {
        Ok(body) => body,
        Err(e) if e.is_too_large() => return empty(StatusCode::PAYLOAD_TOO_LARGE),
        Err(_) => return empty(StatusCode::BAD_REQUEST),
    };

    if path == "/stream" {
        let n = query_number_str(&query, "n").unwrap_or(3);
        let (mut tx, body) = Body::channel(1);
        tokio::spawn(async move {
            for i in 0..n {
                if tx.send(format!("chunk {i}\n")).await.is_err() {
                    return; // the client went away
                }
            }
        });
        let mut res = Response::new(body);
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return res;
    }

    json(
        StatusCode::OK,
        &json!({
            "method": method,
            "path": path,
            "query": query,
            "headers": headers,
            "body_len": body.len(),
            "pid": std::process::id(),
            "peer": info.as_ref().map(|i| i.remote_addr.clone()),
            "remote_port": info.as_ref().and_then(|i| i.remote_port),
            "socket_peer": info.as_ref().and_then(|i| i.socket_peer).map(|p| p.to_string()),
            "scheme": info.as_ref().map(|i| i.scheme.as_str()),
            "worker_id": info.as_ref().map(|i| i.worker_id),
            "request_id": info.as_ref().map(|i| i.request_id.clone()),
            "version": version,
        }),
    )
}

fn query_number_str(query: &str, key: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

fn main() -> ExitCode {
    ferricorn_server::main(|| {
        // For the tests of the master's failure policy: an application that
        // cannot be built.
        if std::env::var_os("ECHO_FAIL_TO_BUILD").is_some() {
            return Err("ECHO_FAIL_TO_BUILD is set".into());
        }
        Ok(from_fn(echo))
    })
}
