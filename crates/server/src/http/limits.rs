//! Request-head limits with Gunicorn's names, and the head rules hyper does
//! not apply (a missing, repeated or invalid Host, a repeated Content-Type,
//! CONNECT, Gunicorn's method and header-name policies), checked on the
//! parsed head before the application is called.
//!
//! hyper enforces the count of fields itself (`max_headers`, 431) and the
//! whole head's size (`max_buf_size`, 431), which we size so that a head
//! within the limits always fits (see `Config::max_head_size`). What hyper
//! cannot express, the request line's length and each field's length, is
//! checked here on what hyper parsed. As in Gunicorn, the request line is
//! measured without its CRLF and a field line with it.

use ferricorn_app_interface::HeaderOrder;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};

use super::error::ProtocolError;
use super::order::RawHead;
use super::{HeadRules, Limits};
use crate::config::HeaderMapMode;

/// Checks a parsed head against the limits and the Host and CONNECT rules
/// (`rules.permit_missing_host`).
pub(crate) fn check_head(
    parts: &Parts,
    raw: &RawHead,
    limits: &Limits,
    rules: &HeadRules,
) -> Result<(), ProtocolError> {
    // "METHOD SP target SP HTTP/x.y": hyper keeps the target as sent.
    let target_len = match parts.uri.path_and_query() {
        // HTTP/2's URI holds `:scheme` and `:authority`; its target is the
        // path.
        Some(pq) if parts.uri.scheme().is_none() || parts.version == http::Version::HTTP_2 => {
            pq.as_str().len()
        }
        _ => parts.uri.to_string().len(),
    };
    let line = parts.method.as_str().len() + 1 + target_len + 1 + "HTTP/1.1".len();
    if line > limits.request_line {
        return Err(ProtocolError::RequestLineTooLong {
            len: line,
            limit: limits.request_line,
        });
    }
    let count = parts.headers.len();
    check_target(parts)?;
    if raw.bare_lf {
        return Err(ProtocolError::BareLineFeed);
    }
    if raw.leading_empty_lines {
        return Err(ProtocolError::LeadingEmptyLines);
    }
    // One pass over the fields gathers what the checks below need (a
    // lookup by name would hash it; here a standard name compares by tag).
    let mut content_lengths = 0usize;
    let mut transfer_encoding = false;
    let mut host = None;
    let mut hosts = 0usize;
    let mut content_types = 0usize;
    let mut too_large = None;
    for (name, value) in &parts.headers {
        if name == CONTENT_LENGTH {
            content_lengths += 1;
        } else if name == TRANSFER_ENCODING {
            transfer_encoding = true;
        } else if name == HOST {
            hosts += 1;
            host = Some(value);
        } else if name == CONTENT_TYPE {
            content_types += 1;
        }
        let len = name.as_str().len() + ": ".len() + value.len() + "\r\n".len();
        if len > limits.field_size && too_large.is_none() {
            too_large = Some((name, len));
        }
    }
    // Both framings: one parser may read the other's; refuse rather than
    // pick (RFC 9112 section 6.3 allows either, Gunicorn refuses).
    if (content_lengths > 0 && transfer_encoding) || raw.both_framings {
        return Err(ProtocolError::ContentLengthWithTransferEncoding);
    }
    if raw.repeated_content_length || content_lengths > 1 {
        return Err(ProtocolError::RepeatedContentLength);
    }
    if transfer_encoding {
        check_transfer_encoding(parts)?;
    }
    if let Some(why) = raw.framing {
        return Err(ProtocolError::InvalidFraming(why));
    }
    // RFC 9112 section 3.2: more than one Host field line is a 400.
    if hosts > 1 {
        return Err(ProtocolError::RepeatedHost);
    }
    if content_types > 1 {
        return Err(ProtocolError::RepeatedContentType);
    }
    if count > limits.fields {
        return Err(ProtocolError::TooManyFields {
            count,
            limit: limits.fields,
        });
    }
    if let Some((name, len)) = too_large {
        return Err(ProtocolError::FieldTooLarge {
            name: name.to_string(),
            len,
            limit: limits.field_size,
        });
    }
    // RFC 9112 section 3.2, whatever the target's form (an absolute-form
    // target's authority overrides Host, but Host must still be there).
    // HTTP/1.0 did not require Host; a higher 1.x minor is served as 1.1.
    match host {
        Some(value) => check_host(value)?,
        None if parts.version == Version::HTTP_11 && !rules.permit_missing_host => {
            return Err(ProtocolError::MissingHost)
        }
        None => {}
    }
    if parts.method == Method::CONNECT {
        return Err(ProtocolError::ConnectNotImplemented);
    }
    Ok(())
}

/// A Host value must be `uri-host [ ":" port ]` (RFC 9110 section 7.2,
/// RFC 3986 section 3.2): an IP-literal in brackets, or a reg-name (which
/// covers IPv4 addresses), then an optional port of digits. Empty is valid:
/// it is what a client sends when the target has no authority (RFC 9112
/// section 3.2). No allocation.
fn check_host(value: &HeaderValue) -> Result<(), ProtocolError> {
    let bytes = value.as_bytes();
    let (host_ok, port) = if let Some(literal) = bytes.strip_prefix(b"[") {
        let end = literal
            .iter()
            .position(|b| *b == b']')
            .ok_or(ProtocolError::InvalidHost("'[' without ']'"))?;
        (ip_literal(&literal[..end]), &literal[end + 1..])
    } else {
        let end = bytes.iter().position(|b| *b == b':').unwrap_or(bytes.len());
        (reg_name(&bytes[..end]), &bytes[end..])
    };
    if !host_ok {
        return Err(ProtocolError::InvalidHost(
            "the host is not an IP literal or a registered name",
        ));
    }
    // port = *DIGIT: "host:" is allowed by the grammar.
    match port.split_first() {
        None => Ok(()),
        Some((b':', digits)) if digits.iter().all(u8::is_ascii_digit) => Ok(()),
        Some(_) => Err(ProtocolError::InvalidHost("the port is not digits")),
    }
}

/// reg-name = *( unreserved / pct-encoded / sub-delims ).
fn reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'%' => {
                if !name
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
                {
                    return false;
                }
                i += 3;
            }
            b if unreserved_or_sub_delim(b) => i += 1,
            _ => return false,
        }
    }
    true
}

fn unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

/// IP-literal without its brackets: an IPv6 address (no zone) or
/// IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ).
fn ip_literal(inside: &[u8]) -> bool {
    if let Some(future) = inside.strip_prefix(b"v").or(inside.strip_prefix(b"V")) {
        let Some(dot) = future.iter().position(|b| *b == b'.') else {
            return false;
        };
        let (version, rest) = (&future[..dot], &future[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !rest.is_empty()
            && rest
                .iter()
                .all(|b| *b == b':' || unreserved_or_sub_delim(*b));
    }
    std::str::from_utf8(inside).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Gunicorn's method policy. Unless `--permit-unconventional-http-method`,
/// a method with lower-case letters or `#`, or shorter than 3 or longer
/// than 20 characters, is refused: every registered method passes, and a
/// method that differs from one only in case is not served as something it
/// is not. Then `--casefold-http-method` upper-cases it (after the check,
/// as in Gunicorn, so it alone does not let lower case in).
///
/// `Ok(true)`: the method was upper-cased into `HEAD` or `CONNECT`. hyper
/// read it as sent, an ordinary method, and frames the response as such
/// (a `head` is answered with a body), while the application and a client
/// that meant `HEAD` expect no body: the connection must close after the
/// response, so that no one reads those bytes as the next response.
///
/// For the usual request this reads a few bytes and allocates nothing.
pub(crate) fn check_method(method: &mut Method, rules: &HeadRules) -> Result<bool, ProtocolError> {
    let text = method.as_str();
    if !rules.permit_unconventional_method
        && (!(3..=20).contains(&text.len())
            || text.bytes().any(|b| b.is_ascii_lowercase() || b == b'#'))
    {
        return Err(ProtocolError::UnconventionalMethod);
    }
    if rules.casefold_method && text.bytes().any(|b| b.is_ascii_lowercase()) {
        // The upper case of a token is a token, so this cannot fail; the
        // method is left as it was if it somehow did.
        if let Ok(upper) = Method::from_bytes(text.to_ascii_uppercase().as_bytes()) {
            *method = upper;
            return Ok(*method == Method::HEAD || *method == Method::CONNECT);
        }
    }
    Ok(false)
}

/// `--header-map`: what becomes of header fields whose names contain `_`
/// (see [`HeaderMapMode`]). Dropped fields leave both the map and the
/// arrival order (`order`), and keep the order of the rest. Runs after
/// [`check_head`], so that dropped fields still count against the limits,
/// as in Gunicorn.
///
/// The usual request has no such name: one pass over the names, no
/// allocation.
pub(crate) fn apply_header_map(
    headers: &mut HeaderMap,
    order: Option<&mut HeaderOrder>,
    mode: HeaderMapMode,
) -> Result<(), ProtocolError> {
    if mode == HeaderMapMode::Dangerous {
        return Ok(());
    }
    let Some(name) = headers.keys().find(|n| has_underscore(n)) else {
        return Ok(());
    };
    if mode == HeaderMapMode::Refuse {
        return Err(ProtocolError::UnderscoreInFieldName(name.to_string()));
    }
    // Rebuilt rather than `remove`d: removing from a `HeaderMap` moves its
    // last name into the hole, which would scramble the arrival order.
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers.iter().filter(|(n, _)| !has_underscore(n)) {
        kept.append(name.clone(), value.clone());
    }
    *headers = kept;
    if let Some(order) = order {
        order.0.retain(|(n, _)| !has_underscore(n));
    }
    Ok(())
}

fn has_underscore(name: &HeaderName) -> bool {
    name.as_str().as_bytes().contains(&b'_')
}

/// The transfer codings, over all `Transfer-Encoding` lines, must end in
/// `chunked` and hold it only there (RFC 9112 section 6.1: chunked is
/// applied once, and last, to a request). hyper checks only that the last
/// line ends in `chunked`.
fn check_transfer_encoding(parts: &Parts) -> Result<(), ProtocolError> {
    let mut codings = parts
        .headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|c| c.trim_ascii())
        // Empty list elements are allowed and ignored (RFC 9110 section 5.6.1).
        .filter(|c| !c.is_empty())
        .peekable();
    if codings.peek().is_none() {
        return if parts.headers.contains_key(TRANSFER_ENCODING) {
            Err(ProtocolError::InvalidTransferEncoding("no coding"))
        } else {
            Ok(())
        };
    }
    while let Some(coding) = codings.next() {
        let chunked = coding.eq_ignore_ascii_case(b"chunked");
        let last = codings.peek().is_none();
        if chunked && !last {
            return Err(ProtocolError::InvalidTransferEncoding(
                "chunked is not the final coding, or appears twice",
            ));
        }
        if last && !chunked {
            return Err(ProtocolError::InvalidTransferEncoding(
                "the final coding is not chunked",
            ));
        }
    }
    Ok(())
}

/// The request-target's form must suit the method (RFC 9112 section 3.2):
/// `*` only for OPTIONS, authority-form only for CONNECT; and its bytes must
/// be ASCII (httparse passes raw bytes of 0x80 and above through).
fn check_target(parts: &Parts) -> Result<(), ProtocolError> {
    let uri = &parts.uri;
    let text = uri.path_and_query().map_or("", |pq| pq.as_str());
    if !text.is_ascii() {
        return Err(ProtocolError::InvalidTarget("bytes outside ASCII"));
    }
    if text == "*" && uri.scheme().is_none() && parts.method != Method::OPTIONS {
        return Err(ProtocolError::InvalidTarget("'*' is only for OPTIONS"));
    }
    let authority_form = uri.scheme().is_none() && uri.authority().is_some();
    if authority_form != (parts.method == Method::CONNECT) {
        return Err(ProtocolError::InvalidTarget(
            "the authority form is for CONNECT only, and CONNECT needs it",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            request_line: 30,
            fields: 2,
            field_size: 20,
            body: Some(10),
        }
    }

    /// Most of these heads have no Host: the tests are about other rules.
    const NO_HOST_NEEDED: HeadRules = HeadRules {
        header_map: HeaderMapMode::Drop,
        permit_unconventional_method: false,
        casefold_method: false,
        permit_missing_host: true,
    };

    fn check_head_ok(parts: &Parts, limits: &Limits) -> Result<(), ProtocolError> {
        check_head(parts, &RawHead::default(), limits, &NO_HOST_NEEDED)
    }

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn request_line() {
        // "GET " + 17 + " HTTP/1.1" = 30
        assert!(check_head_ok(&parts("/aaaaaaaaaaaaaaaa", &[]), &limits()).is_ok());
        assert_eq!(
            check_head_ok(&parts("/aaaaaaaaaaaaaaaaa", &[]), &limits()),
            Err(ProtocolError::RequestLineTooLong { len: 31, limit: 30 })
        );
    }

    #[test]
    fn fields() {
        // "x-a: " + 13 + CRLF = 20
        assert!(check_head_ok(&parts("/", &[("x-a", "1234567890123")]), &limits()).is_ok());
        let e = check_head_ok(&parts("/", &[("x-a", "12345678901234")]), &limits()).unwrap_err();
        assert!(matches!(e, ProtocolError::FieldTooLarge { len: 21, .. }));
        let e = check_head_ok(
            &parts("/", &[("a", "1"), ("b", "2"), ("a", "3")]),
            &limits(),
        )
        .unwrap_err();
        assert_eq!(e, ProtocolError::TooManyFields { count: 3, limit: 2 });
        assert_eq!(
            e.response(),
            Some((http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, true))
        );
    }

    #[test]
    fn head_rules() {
        let l = Limits {
            request_line: 100,
            ..limits()
        };
        let with = |method: &str, uri: &str| {
            let p = http::Request::builder()
                .method(method)
                .uri(uri)
                .body(())
                .unwrap()
                .into_parts()
                .0;
            check_head(&p, &RawHead::default(), &l, &NO_HOST_NEEDED)
        };
        assert!(with("OPTIONS", "*").is_ok());
        assert!(matches!(
            with("GET", "*"),
            Err(ProtocolError::InvalidTarget(_))
        ));
        assert_eq!(
            with("CONNECT", "example.com:443"),
            Err(ProtocolError::ConnectNotImplemented)
        );
        assert_eq!(
            ProtocolError::ConnectNotImplemented.response(),
            Some((http::StatusCode::NOT_IMPLEMENTED, true))
        );
        assert!(matches!(
            with("GET", "example.com:443"),
            Err(ProtocolError::InvalidTarget(_))
        ));
        assert!(with("GET", "http://example.com/x").is_ok());
        let bare = RawHead {
            bare_lf: true,
            ..RawHead::default()
        };
        assert_eq!(
            check_head(&parts("/", &[]), &bare, &l, &NO_HOST_NEEDED),
            Err(ProtocolError::BareLineFeed)
        );
        let both = parts(
            "/",
            &[("content-length", "1"), ("transfer-encoding", "chunked")],
        );
        assert_eq!(
            check_head_ok(&both, &l),
            Err(ProtocolError::ContentLengthWithTransferEncoding)
        );
    }

    #[test]
    fn framing_fields() {
        let l = Limits {
            request_line: 100,
            fields: 10,
            field_size: 100,
            ..limits()
        };
        let te = |values: &[&str]| {
            let headers: Vec<_> = values.iter().map(|v| ("transfer-encoding", *v)).collect();
            check_head_ok(&parts("/", &headers), &l)
        };
        assert!(te(&["chunked"]).is_ok());
        assert!(te(&["gzip, chunked"]).is_ok());
        assert!(te(&["identity", "Chunked"]).is_ok());
        assert!(te(&["gzip,,chunked"]).is_ok());
        for bad in [
            &["chunked, chunked"][..],
            &["chunked", "chunked"],
            &["chunked", "gzip"],
            &["chunked, identity"],
            &["identity, chunked, identity, chunked"],
            &["xchunked"],
            &[""],
            &[" , "],
        ] {
            assert!(
                matches!(te(bad), Err(ProtocolError::InvalidTransferEncoding(_))),
                "{bad:?}"
            );
        }
        let cl = parts("/", &[("content-length", "5"), ("content-length", "5")]);
        assert_eq!(
            check_head_ok(&cl, &l),
            Err(ProtocolError::RepeatedContentLength)
        );
        let raw = RawHead {
            repeated_content_length: true,
            ..RawHead::default()
        };
        assert_eq!(
            check_head(
                &parts("/", &[("content-length", "5")]),
                &raw,
                &l,
                &NO_HOST_NEEDED
            ),
            Err(ProtocolError::RepeatedContentLength)
        );
        let raw = RawHead {
            framing: Some("chunk size missing"),
            ..RawHead::default()
        };
        assert_eq!(
            check_head(&parts("/", &[]), &raw, &l, &NO_HOST_NEEDED),
            Err(ProtocolError::InvalidFraming("chunk size missing"))
        );
    }

    #[test]
    fn repeated_content_type() {
        let two = [("content-type", "a/b"), ("content-type", "c/d")];
        let l = Limits {
            request_line: 100,
            fields: 10,
            field_size: 100,
            ..limits()
        };
        assert_eq!(
            check_head_ok(&parts("/", &two), &l),
            Err(ProtocolError::RepeatedContentType)
        );
        assert!(check_head_ok(&parts("/", &two[..1]), &l).is_ok());
    }

    #[test]
    fn method_policy() {
        let gunicorn = HeadRules::default();
        let check = |m: &str, rules: &HeadRules| {
            let mut method = Method::from_bytes(m.as_bytes()).unwrap();
            check_method(&mut method, rules).map(|_| method.as_str().to_owned())
        };
        for ok in [
            "GET",
            "DELETE",
            "-BLARGH",
            "M-SEARCH",
            "VERSION-CONTROL",
            "ABCDEFGHIJKLMNOPQRST",
        ] {
            assert_eq!(check(ok, &gunicorn).as_deref(), Ok(ok));
        }
        for bad in ["get", "Get", "-bl", "GE", "ABCDEFGHIJKLMNOPQRSTU", "GET#"] {
            assert_eq!(
                check(bad, &gunicorn),
                Err(ProtocolError::UnconventionalMethod),
                "{bad}"
            );
        }
        let permit = HeadRules {
            permit_unconventional_method: true,
            ..HeadRules::default()
        };
        assert_eq!(check("-blargh", &permit).as_deref(), Ok("-blargh"));
        assert_eq!(check("GE", &permit).as_deref(), Ok("GE"));
        let casefold = HeadRules {
            casefold_method: true,
            ..permit
        };
        assert_eq!(check("-blargh", &casefold).as_deref(), Ok("-BLARGH"));
        assert_eq!(check("get", &casefold), Ok("GET".to_owned()));
        let mut head = Method::from_bytes(b"head").unwrap();
        assert_eq!(check_method(&mut head, &casefold), Ok(true), "reframed");
        assert_eq!(head, Method::HEAD);
        let mut get = Method::from_bytes(b"get").unwrap();
        assert_eq!(check_method(&mut get, &casefold), Ok(false));
        // Casefolding alone does not let lower case in (as in Gunicorn).
        let only_casefold = HeadRules {
            casefold_method: true,
            ..HeadRules::default()
        };
        assert!(check("get", &only_casefold).is_err());
    }

    #[test]
    fn header_map_modes() {
        let fields = [
            ("transfer_encoding", "tricked"),
            ("content-length", "7"),
            ("x-a", "1"),
            ("content_length", "-1E23"),
            ("x-b", "2"),
        ];
        let run = |mode| {
            let mut p = parts("/", &fields);
            let mut order = HeaderOrder(
                p.headers
                    .iter()
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect(),
            );
            let result = apply_header_map(&mut p.headers, Some(&mut order), mode);
            let names = |it: Vec<&HeaderName>| it.iter().map(|n| n.to_string()).collect::<Vec<_>>();
            (
                result,
                names(p.headers.keys().collect()),
                names(order.0.iter().map(|(n, _)| n).collect()),
            )
        };
        let all = [
            "transfer_encoding",
            "content-length",
            "x-a",
            "content_length",
            "x-b",
        ];
        let (r, map, order) = run(HeaderMapMode::Dangerous);
        assert_eq!(r, Ok(()));
        assert_eq!(map, all);
        assert_eq!(order, all);
        let (r, map, order) = run(HeaderMapMode::Drop);
        assert_eq!(r, Ok(()));
        assert_eq!(
            map,
            ["content-length", "x-a", "x-b"],
            "the rest keep their order"
        );
        assert_eq!(order, map);
        let (r, map, _) = run(HeaderMapMode::Refuse);
        assert_eq!(
            r,
            Err(ProtocolError::UnderscoreInFieldName(
                "transfer_encoding".into()
            ))
        );
        assert_eq!(map, all, "nothing dropped");
        // No such name: nothing changes.
        let mut p = parts("/", &[("x-a", "1")]);
        assert_eq!(
            apply_header_map(&mut p.headers, None, HeaderMapMode::Refuse),
            Ok(())
        );
    }

    #[test]
    fn repeated_host() {
        let e = check_head_ok(&parts("/", &[("host", "a"), ("host", "b")]), &limits()).unwrap_err();
        assert_eq!(e, ProtocolError::RepeatedHost);
        assert_eq!(e.response(), Some((http::StatusCode::BAD_REQUEST, true)));
    }

    #[test]
    fn host() {
        let l = Limits {
            request_line: 100,
            fields: 10,
            field_size: 100,
            ..limits()
        };
        let rfc = HeadRules::default();
        let with_host = |value: &[u8]| {
            let mut p = parts("/", &[]);
            p.headers
                .insert(HOST, HeaderValue::from_bytes(value).unwrap());
            check_head(&p, &RawHead::default(), &l, &rfc)
        };
        for ok in [
            &b""[..],
            b"a",
            b"a:8080",
            b"a:",
            b"127.0.0.1:1",
            b"[::1]:80",
            b"[::1]",
            b"[v1.x:y]",
            b"0.0.0.0=5000",
            b"ex%41mple.com",
            b"xn--bcher-kva.example",
        ] {
            assert_eq!(with_host(ok), Ok(()), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"a b"[..],
            b"a/b",
            b"user@a",
            b"a:port",
            b"a:80:80",
            b"[::1",
            b"[::1]x",
            b"[nope]",
            b"[fe80::1%25eth0]",
            b"a\tb",
            b"a?b",
            b"a#b",
            b"%4",
            b"caf\xc3\xa9",
        ] {
            assert!(
                matches!(with_host(bad), Err(ProtocolError::InvalidHost(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Missing: refused on HTTP/1.1 unless permitted; fine on HTTP/1.0.
        let missing = parts("/", &[]);
        assert_eq!(
            check_head(&missing, &RawHead::default(), &l, &rfc),
            Err(ProtocolError::MissingHost)
        );
        assert_eq!(
            check_head(&missing, &RawHead::default(), &l, &NO_HOST_NEEDED),
            Ok(())
        );
        let mut old = parts("/", &[]);
        old.version = Version::HTTP_10;
        assert_eq!(check_head(&old, &RawHead::default(), &l, &rfc), Ok(()));
        // An absolute-form target needs Host too.
        assert_eq!(
            check_head(&parts("http://a/", &[]), &RawHead::default(), &l, &rfc),
            Err(ProtocolError::MissingHost)
        );
        // Repeated or invalid Host is refused even when missing is permitted.
        let bad = parts("/", &[("host", "a b")]);
        assert!(matches!(
            check_head(&bad, &RawHead::default(), &l, &NO_HOST_NEEDED),
            Err(ProtocolError::InvalidHost(_))
        ));
        let two = parts("/", &[("host", "a"), ("host", "a")]);
        assert_eq!(
            check_head(&two, &RawHead::default(), &l, &NO_HOST_NEEDED),
            Err(ProtocolError::RepeatedHost)
        );
    }
}
