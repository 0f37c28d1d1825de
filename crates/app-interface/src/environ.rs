//! A WSGI/CGI-style `environ` view of a request, for users coming from WSGI.
//!
//! The keys are PEP 3333's: `REQUEST_METHOD`, `SCRIPT_NAME`, `PATH_INFO`,
//! `QUERY_STRING`, `CONTENT_TYPE`, `CONTENT_LENGTH`, `SERVER_NAME`,
//! `SERVER_PORT`, `SERVER_PROTOCOL`, `REMOTE_ADDR`, `REMOTE_PORT`,
//! `wsgi.url_scheme`, and `HTTP_<NAME>` for every other header (upper-cased,
//! `-` turned into `_`, repeats joined with `,` as CGI prescribes).

use std::collections::BTreeMap;

use crate::connection::{ConnectionInfo, ServerAddr};
use crate::Request;

/// Builds the `environ` of a request. Values that are not valid UTF-8 are
/// read as ISO-8859-1, as WSGI servers do.
pub fn environ(request: &Request) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let info = ConnectionInfo::of(request);
    env.insert("REQUEST_METHOD".into(), request.method().as_str().into());
    env.insert("SCRIPT_NAME".into(), String::new());
    env.insert("PATH_INFO".into(), percent_decode(request.uri().path()));
    env.insert(
        "QUERY_STRING".into(),
        request.uri().query().unwrap_or("").into(),
    );
    env.insert("SERVER_PROTOCOL".into(), format!("{:?}", request.version()));
    for (name, value) in request.headers() {
        let key = match name.as_str() {
            "content-type" => "CONTENT_TYPE".to_string(),
            "content-length" => "CONTENT_LENGTH".to_string(),
            other => format!("HTTP_{}", other.to_ascii_uppercase().replace('-', "_")),
        };
        let value = latin1(value.as_bytes());
        env.entry(key)
            .and_modify(|v: &mut String| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    env.entry("CONTENT_TYPE".into()).or_default();
    env.entry("CONTENT_LENGTH".into()).or_default();

    let (server_name, server_port) = server_name_port(request, info);
    env.insert("SERVER_NAME".into(), server_name);
    env.insert("SERVER_PORT".into(), server_port);
    if let Some(info) = info {
        env.insert("REMOTE_ADDR".into(), info.remote_addr.clone());
        if let Some(port) = info.remote_port {
            env.insert("REMOTE_PORT".into(), port.to_string());
        }
        env.insert("wsgi.url_scheme".into(), info.scheme.as_str().into());
    } else {
        env.insert("wsgi.url_scheme".into(), "http".into());
    }
    env
}

/// `SERVER_NAME`/`SERVER_PORT` the way Gunicorn derives them: from the Host
/// header when present, else from the listening address.
fn server_name_port(request: &Request, info: Option<&ConnectionInfo>) -> (String, String) {
    let default_port = match info.map(|i| i.scheme) {
        Some(crate::Scheme::Https) => "443",
        _ => "80",
    };
    if let Some(host) = request.headers().get(http::header::HOST) {
        let host = latin1(host.as_bytes());
        // An IPv6 literal keeps its brackets; the port follows the last ']'.
        let split_at = match host.rfind(']') {
            Some(end) => host[end..].find(':').map(|i| end + i),
            None => host.rfind(':'),
        };
        return match split_at {
            Some(i) => (host[..i].to_string(), host[i + 1..].to_string()),
            None => (host, default_port.to_string()),
        };
    }
    match info.map(|i| &i.server) {
        Some(ServerAddr::Tcp(addr)) => (addr.ip().to_string(), addr.port().to_string()),
        Some(ServerAddr::Unix(path)) => (path.display().to_string(), String::new()),
        None => ("localhost".into(), default_port.into()),
    }
}

fn latin1(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}

/// `PATH_INFO` is the decoded path (PEP 3333), bytes read as ISO-8859-1.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, Scheme};

    fn request() -> Request {
        let mut req = http::Request::builder()
            .method("POST")
            .uri("/a%20b/c?x=1&y=2")
            .header("Host", "example.com:8080")
            .header("Content-Type", "text/plain")
            .header("Content-Length", "3")
            .header("X-Thing", "one")
            .header("X-Thing", "two")
            .body(Body::full("abc"))
            .unwrap();
        req.extensions_mut().insert(ConnectionInfo {
            socket_peer: Some("10.0.0.1:5555".parse().unwrap()),
            remote_addr: "10.0.0.1".into(),
            remote_port: Some(5555),
            scheme: Scheme::Https,
            server: ServerAddr::Tcp("127.0.0.1:8000".parse().unwrap()),
            worker_id: 1,
            request_id: "r1".into(),
            tls: None,
        });
        req
    }

    #[test]
    fn environ_has_the_cgi_keys() {
        let env = environ(&request());
        assert_eq!(env["REQUEST_METHOD"], "POST");
        assert_eq!(env["SCRIPT_NAME"], "");
        assert_eq!(env["PATH_INFO"], "/a b/c");
        assert_eq!(env["QUERY_STRING"], "x=1&y=2");
        assert_eq!(env["CONTENT_TYPE"], "text/plain");
        assert_eq!(env["CONTENT_LENGTH"], "3");
        assert_eq!(env["SERVER_NAME"], "example.com");
        assert_eq!(env["SERVER_PORT"], "8080");
        assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");
        assert_eq!(env["REMOTE_ADDR"], "10.0.0.1");
        assert_eq!(env["wsgi.url_scheme"], "https");
        assert_eq!(env["HTTP_X_THING"], "one,two");
        assert_eq!(env["HTTP_HOST"], "example.com:8080");
        assert!(!env.contains_key("HTTP_CONTENT_TYPE"));
    }

    #[test]
    fn server_name_falls_back_to_listener() {
        let mut req = request();
        req.headers_mut().remove("host");
        let env = environ(&req);
        assert_eq!(env["SERVER_NAME"], "127.0.0.1");
        assert_eq!(env["SERVER_PORT"], "8000");
    }

    #[test]
    fn ipv6_host_keeps_brackets() {
        let mut req = request();
        req.headers_mut()
            .insert("host", http::HeaderValue::from_static("[::1]:9000"));
        let env = environ(&req);
        assert_eq!(env["SERVER_NAME"], "[::1]");
        assert_eq!(env["SERVER_PORT"], "9000");
    }
}
