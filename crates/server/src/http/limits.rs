//! Request-head limits with Gunicorn's names, and the head rules hyper does
//! not apply (a repeated Host), checked on the parsed head before the
//! application is called.
//!
//! hyper enforces the count of fields itself (`max_headers`, 431) and the
//! whole head's size (`max_buf_size`, 431), which we size so that a head
//! within the limits always fits (see `Config::max_head_size`). What hyper
//! cannot express, the request line's length and each field's length, is
//! checked here on what hyper parsed. As in Gunicorn, the request line is
//! measured without its CRLF and a field line with it.

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::request::Parts;
use http::Method;

use super::error::ProtocolError;
use super::order::RawHead;
use super::Limits;

/// Checks a parsed head against the limits.
pub(crate) fn check_head(
    parts: &Parts,
    raw: &RawHead,
    limits: &Limits,
) -> Result<(), ProtocolError> {
    // "METHOD SP target SP HTTP/x.y": hyper keeps the target as sent.
    let target_len = match parts.uri.path_and_query() {
        Some(pq) if parts.uri.scheme().is_none() => pq.as_str().len(),
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
    // One pass over the fields gathers what the checks below need (a
    // lookup by name would hash it; here a standard name compares by tag).
    let mut content_lengths = 0usize;
    let mut transfer_encoding = false;
    let mut hosts = 0usize;
    let mut too_large = None;
    for (name, value) in &parts.headers {
        if name == CONTENT_LENGTH {
            content_lengths += 1;
        } else if name == TRANSFER_ENCODING {
            transfer_encoding = true;
        } else if name == HOST {
            hosts += 1;
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
    Ok(())
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

    fn check_head_ok(parts: &Parts, limits: &Limits) -> Result<(), ProtocolError> {
        check_head(parts, &RawHead::default(), limits)
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
            check_head(&p, &RawHead::default(), &l)
        };
        assert!(with("OPTIONS", "*").is_ok());
        assert!(matches!(
            with("GET", "*"),
            Err(ProtocolError::InvalidTarget(_))
        ));
        assert!(with("CONNECT", "example.com:443").is_ok());
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
            check_head(&parts("/", &[]), &bare, &l),
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
            check_head(&parts("/", &[("content-length", "5")]), &raw, &l),
            Err(ProtocolError::RepeatedContentLength)
        );
        let raw = RawHead {
            framing: Some("chunk size missing"),
            ..RawHead::default()
        };
        assert_eq!(
            check_head(&parts("/", &[]), &raw, &l),
            Err(ProtocolError::InvalidFraming("chunk size missing"))
        );
    }

    #[test]
    fn repeated_host() {
        let e = check_head_ok(&parts("/", &[("host", "a"), ("host", "b")]), &limits()).unwrap_err();
        assert_eq!(e, ProtocolError::RepeatedHost);
        assert_eq!(e.response(), Some((http::StatusCode::BAD_REQUEST, true)));
    }
}
