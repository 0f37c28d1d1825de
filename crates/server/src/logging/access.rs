//! The access log's line formats: Gunicorn's `%(atom)s` language, compiled
//! once, and JSON lines.
//!
//! Atoms (Gunicorn's): `h` remote address, `l` `-`, `u` user name from Basic
//! authorization, `t` date, `r` request line, `m` method, `U` path, `q`
//! query, `H` protocol, `s` status, `B` and `b` response body bytes, `f`
//! referer, `a` user agent, `T` time in whole seconds, `M` milliseconds, `D`
//! microseconds, `L` decimal seconds, `p` `<pid>`, `{name}i` request header,
//! `{name}o` response header, `{name}e` environment variable. Ours:
//! `request_id`, `worker_id`. An unknown atom prints `-`, as Gunicorn's
//! lenient formatting does; `%%` is a literal `%`.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, Method, Uri, Version};

use super::clock::Civil;
use crate::config::AccessLogFormat;

/// What the access log knows about one finished request.
#[derive(Debug)]
pub(crate) struct AccessRecord {
    pub remote_addr: String,
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub status: u16,
    pub bytes: u64,
    pub request_headers: HeaderMap,
    pub response_headers: HeaderMap,
    pub started: SystemTime,
    pub duration: Duration,
    pub request_id: String,
    pub worker_id: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Atom {
    RemoteAddr,
    Dash,
    User,
    Time,
    RequestLine,
    Method,
    Path,
    Query,
    Protocol,
    Status,
    BytesB,
    Bytesb,
    Referer,
    UserAgent,
    Secs,
    Millis,
    Micros,
    DecimalSecs,
    Pid,
    RequestId,
    WorkerId,
    RequestHeader(HeaderName),
    ResponseHeader(HeaderName),
    Env(String),
    Unknown,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Piece {
    Literal(String),
    Atom(Atom),
}

/// A compiled access log format.
#[derive(Clone, Debug)]
pub(crate) enum AccessFormatter {
    Template(Vec<Piece>),
    Json,
}

impl AccessFormatter {
    pub fn new(format: &AccessLogFormat) -> AccessFormatter {
        match format {
            AccessLogFormat::Json => AccessFormatter::Json,
            AccessLogFormat::Template(t) => AccessFormatter::Template(compile(t)),
        }
    }

    /// One log line, without the newline.
    pub fn format(&self, r: &AccessRecord) -> String {
        match self {
            AccessFormatter::Json => json_line(r),
            AccessFormatter::Template(pieces) => {
                let mut out = String::with_capacity(128);
                for piece in pieces {
                    match piece {
                        Piece::Literal(s) => out.push_str(s),
                        Piece::Atom(a) => push_atom(&mut out, a, r),
                    }
                }
                out
            }
        }
    }
}

fn compile(template: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('%') {
        lit.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("%%") {
            lit.push('%');
            rest = after;
            continue;
        }
        let parsed = rest
            .strip_prefix("%(")
            .and_then(|r| r.find(")s").map(|end| (&r[..end], &r[end + 2..])));
        match parsed {
            Some((name, after)) => {
                if !lit.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Atom(atom(name)));
                rest = after;
            }
            None => {
                lit.push('%');
                rest = &rest[1..];
            }
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        pieces.push(Piece::Literal(lit));
    }
    pieces
}

fn atom(name: &str) -> Atom {
    if let Some(inner) = name.strip_prefix('{') {
        if let Some((key, kind)) = inner.rsplit_once('}') {
            let header = || HeaderName::from_bytes(key.to_ascii_lowercase().as_bytes()).ok();
            return match kind {
                "i" => header().map_or(Atom::Unknown, Atom::RequestHeader),
                "o" => header().map_or(Atom::Unknown, Atom::ResponseHeader),
                "e" => Atom::Env(key.to_owned()),
                _ => Atom::Unknown,
            };
        }
    }
    match name {
        "h" => Atom::RemoteAddr,
        "l" => Atom::Dash,
        "u" => Atom::User,
        "t" => Atom::Time,
        "r" => Atom::RequestLine,
        "m" => Atom::Method,
        "U" => Atom::Path,
        "q" => Atom::Query,
        "H" => Atom::Protocol,
        "s" => Atom::Status,
        "B" => Atom::BytesB,
        "b" => Atom::Bytesb,
        "f" => Atom::Referer,
        "a" => Atom::UserAgent,
        "T" => Atom::Secs,
        "M" => Atom::Millis,
        "D" => Atom::Micros,
        "L" => Atom::DecimalSecs,
        "p" => Atom::Pid,
        "request_id" => Atom::RequestId,
        "worker_id" => Atom::WorkerId,
        _ => Atom::Unknown,
    }
}

fn header_or_dash(out: &mut String, headers: &HeaderMap, name: &HeaderName) {
    match headers.get(name) {
        Some(v) => out.push_str(&String::from_utf8_lossy(v.as_bytes())),
        None => out.push('-'),
    }
}

pub(crate) fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
}

fn push_atom(out: &mut String, atom: &Atom, r: &AccessRecord) {
    use std::fmt::Write;
    match atom {
        Atom::RemoteAddr => out.push_str(if r.remote_addr.is_empty() {
            "-"
        } else {
            &r.remote_addr
        }),
        Atom::Dash | Atom::Unknown => out.push('-'),
        Atom::User => out.push_str(basic_user(&r.request_headers).as_deref().unwrap_or("-")),
        Atom::Time => out.push_str(&Civil::from_system(r.started).access_log()),
        Atom::RequestLine => {
            // An HTTP/2 request's URI carries `:scheme` and `:authority`;
            // the line shows the target as an HTTP/1 request line would.
            let target = match r.uri.path_and_query() {
                Some(pq) if r.version == http::Version::HTTP_2 => pq.as_str(),
                _ => "",
            };
            if target.is_empty() {
                let _ = write!(out, "{} {} {}", r.method, r.uri, protocol(r.version));
            } else {
                let _ = write!(out, "{} {} {}", r.method, target, protocol(r.version));
            }
        }
        Atom::Method => out.push_str(r.method.as_str()),
        Atom::Path => out.push_str(r.uri.path()),
        Atom::Query => out.push_str(r.uri.query().unwrap_or("")),
        Atom::Protocol => out.push_str(protocol(r.version)),
        Atom::Status => {
            let _ = write!(out, "{}", r.status);
        }
        Atom::BytesB | Atom::Bytesb => {
            let _ = write!(out, "{}", r.bytes);
        }
        Atom::Referer => header_or_dash(out, &r.request_headers, &http::header::REFERER),
        Atom::UserAgent => header_or_dash(out, &r.request_headers, &http::header::USER_AGENT),
        Atom::Secs => {
            let _ = write!(out, "{}", r.duration.as_secs());
        }
        Atom::Millis => {
            let _ = write!(out, "{}", r.duration.as_millis());
        }
        Atom::Micros => {
            let _ = write!(out, "{}", r.duration.as_micros());
        }
        Atom::DecimalSecs => {
            let _ = write!(
                out,
                "{}.{:06}",
                r.duration.as_secs(),
                r.duration.subsec_micros()
            );
        }
        Atom::Pid => {
            let _ = write!(out, "<{}>", std::process::id());
        }
        Atom::RequestId => out.push_str(&r.request_id),
        Atom::WorkerId => {
            let _ = write!(out, "{}", r.worker_id);
        }
        Atom::RequestHeader(name) => header_or_dash(out, &r.request_headers, name),
        Atom::ResponseHeader(name) => header_or_dash(out, &r.response_headers, name),
        Atom::Env(name) => out.push_str(&std::env::var(name).unwrap_or_else(|_| "-".into())),
    }
}

/// The user name of a `Basic` authorization header, as Gunicorn's `%(u)s`.
fn basic_user(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(token.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
    Some(user.chars().filter(|c| !c.is_control()).collect())
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= val(*b)? << (18 - 6 * i);
        }
        let take = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    Some(out)
}

fn json_line(r: &AccessRecord) -> String {
    let header = |name: &HeaderName| {
        r.request_headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    serde_json::json!({
        "time": Civil::from_system(r.started).rfc3339(),
        "remote_addr": r.remote_addr,
        "method": r.method.as_str(),
        "path": r.uri.path(),
        "query": r.uri.query().unwrap_or(""),
        "protocol": protocol(r.version),
        "status": r.status,
        "bytes": r.bytes,
        "duration_ms": r.duration.as_secs_f64() * 1000.0,
        "referer": header(&http::header::REFERER),
        "user_agent": header(&http::header::USER_AGENT),
        "user": basic_user(&r.request_headers),
        "request_id": r.request_id,
        "worker_id": r.worker_id,
        "pid": std::process::id(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn record() -> AccessRecord {
        let mut request_headers = HeaderMap::new();
        request_headers.insert("user-agent", "curl/8".parse().unwrap());
        request_headers.insert("x-thing", "42".parse().unwrap());
        // "aladdin:opensesame"
        request_headers.insert(
            "authorization",
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l".parse().unwrap(),
        );
        let mut response_headers = HeaderMap::new();
        response_headers.insert("content-type", "text/plain".parse().unwrap());
        AccessRecord {
            remote_addr: "10.1.2.3".into(),
            method: Method::GET,
            uri: "/a/b?x=1".parse().unwrap(),
            version: Version::HTTP_11,
            status: 200,
            bytes: 13,
            request_headers,
            response_headers,
            started: UNIX_EPOCH + Duration::from_secs(1_795_507_200),
            duration: Duration::from_micros(1_234_567),
            request_id: "rid".into(),
            worker_id: 2,
        }
    }

    fn fmt(template: &str) -> String {
        AccessFormatter::new(&AccessLogFormat::Template(template.into())).format(&record())
    }

    #[test]
    fn gunicorn_default_format() {
        assert_eq!(
            fmt(crate::config::DEFAULT_ACCESS_LOG_FORMAT),
            r#"10.1.2.3 - aladdin [24/Nov/2026:08:00:00 +0000] "GET /a/b?x=1 HTTP/1.1" 200 13 "-" "curl/8""#
        );
    }

    #[test]
    fn every_atom() {
        assert_eq!(
            fmt("%(m)s %(U)s %(q)s %(H)s %(s)s %(B)s"),
            "GET /a/b x=1 HTTP/1.1 200 13"
        );
        assert_eq!(fmt("%(T)s %(M)s %(D)s %(L)s"), "1 1234 1234567 1.234567");
        assert_eq!(fmt("%(p)s"), format!("<{}>", std::process::id()));
        assert_eq!(
            fmt("%({X-Thing}i)s %({content-type}o)s %({nope}i)s"),
            "42 text/plain -"
        );
        assert_eq!(fmt("%(request_id)s w%(worker_id)s"), "rid w2");
        assert_eq!(fmt("100%% %(zz)s %(h"), "100% - %(h");
        assert!(!fmt("%({PATH}e)s").is_empty());
    }

    #[test]
    fn json_lines() {
        let line = AccessFormatter::new(&AccessLogFormat::Json).format(&record());
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["status"], 200);
        assert_eq!(v["path"], "/a/b");
        assert_eq!(v["user"], "aladdin");
        assert_eq!(v["request_id"], "rid");
        assert!(!line.contains('\n'));
    }
}
