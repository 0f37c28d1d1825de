//! The echo contract that the black-box kits judge, shared by
//! `examples/echo.rs` and the fallback route of `examples/axum.rs` so that
//! both answer the same bytes: what the server saw of a request, after it
//! was read whole. Not a module a newcomer needs to copy.

use std::time::Duration;

use ferricorn_app_interface::{Body, ConnectionInfo, HeaderOrder};
use serde_json::json;

/// The value of `key` in a query string, as a non-negative number.
pub fn query_number(query: Option<&str>, key: &str) -> Option<f64> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 0.0)
}

/// What some paths do before answering: `/sleep?s=N` waits N seconds
/// without blocking anything, `/block?s=N` blocks its thread N seconds as a
/// stuck synchronous application would, `/panic` panics.
pub async fn act_on(uri: &http::Uri) {
    let seconds = query_number(uri.query(), "s").unwrap_or(0.0).min(3600.0);
    match uri.path() {
        "/sleep" => tokio::time::sleep(Duration::from_secs_f64(seconds)).await,
        // On purpose: this blocks a runtime thread.
        "/block" => std::thread::sleep(Duration::from_secs_f64(seconds)),
        "/panic" => panic!("the example panics on /panic, as asked"),
        _ => {}
    }
}

/// `/stream?n=N`: N chunks, streamed as the client reads them.
pub fn streamed(uri: &http::Uri) -> Option<Body> {
    if uri.path() != "/stream" {
        return None;
    }
    let n = query_number(uri.query(), "n").map_or(3, |n| n as u64);
    let (mut tx, body) = Body::channel(1);
    tokio::spawn(async move {
        for i in 0..n {
            if tx.send(format!("chunk {i}\n")).await.is_err() {
                return; // the client went away
            }
        }
    });
    Some(body)
}

/// The JSON answer: `method`, `path`, `query`, `headers` (`[name, value]`
/// pairs in arrival order, repeats kept), `body_len`, `pid`, and the
/// connection facts.
pub fn describe(parts: &http::request::Parts, body_len: u64) -> serde_json::Value {
    let pairs: Vec<(&http::HeaderName, &http::HeaderValue)> =
        match parts.extensions.get::<HeaderOrder>() {
            Some(order) => order.0.iter().map(|(n, v)| (n, v)).collect(),
            None => parts.headers.iter().collect(),
        };
    let headers: Vec<[String; 2]> = pairs
        .into_iter()
        .map(|(name, value)| {
            [
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ]
        })
        .collect();
    let info = parts.extensions.get::<ConnectionInfo>();
    json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "body_len": body_len,
        "pid": std::process::id(),
        "peer": info.map(|i| i.remote_addr.clone()),
        "remote_port": info.and_then(|i| i.remote_port),
        "socket_peer": info.and_then(|i| i.socket_peer).map(|p| p.to_string()),
        "scheme": info.map(|i| i.scheme.as_str()),
        "worker_id": info.map(|i| i.worker_id),
        "request_id": info.map(|i| i.request_id.clone()),
        "version": format!("{:?}", parts.version),
        "tls_version": info.and_then(|i| i.tls.as_ref()).map(|t| t.version.clone()),
        "alpn": info.and_then(|i| i.tls.as_ref()).and_then(|t| t.alpn.clone()),
        "client_cert_subject": info
            .and_then(|i| i.tls.as_ref())
            .and_then(|t| t.client_subject.clone()),
    })
}
