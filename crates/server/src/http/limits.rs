//! Request-head limits with Gunicorn's names, checked on the parsed head
//! before the application is called.
//!
//! hyper enforces the count of fields itself (`max_headers`, 431) and the
//! whole head's size (`max_buf_size`, 431), which we size so that a head
//! within the limits always fits (see `Config::max_head_size`). What hyper
//! cannot express, the request line's length and each field's length, is
//! checked here on what hyper parsed; the lengths are those of the bytes on
//! the wire, less line endings.

use http::request::Parts;

use super::error::ProtocolError;
use super::Limits;

/// Checks a parsed head against the limits.
pub(crate) fn check_head(parts: &Parts, limits: &Limits) -> Result<(), ProtocolError> {
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
    if count > limits.fields {
        return Err(ProtocolError::TooManyFields {
            count,
            limit: limits.fields,
        });
    }
    for (name, value) in &parts.headers {
        let len = name.as_str().len() + 2 + value.len();
        if len > limits.field_size {
            return Err(ProtocolError::FieldTooLarge {
                name: name.to_string(),
                len,
                limit: limits.field_size,
            });
        }
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
        assert!(check_head(&parts("/aaaaaaaaaaaaaaaa", &[]), &limits()).is_ok());
        assert_eq!(
            check_head(&parts("/aaaaaaaaaaaaaaaaa", &[]), &limits()),
            Err(ProtocolError::RequestLineTooLong { len: 31, limit: 30 })
        );
    }

    #[test]
    fn fields() {
        // "x-a: " + 15 = 20
        assert!(check_head(&parts("/", &[("x-a", "123456789012345")]), &limits()).is_ok());
        let e = check_head(&parts("/", &[("x-a", "1234567890123456")]), &limits()).unwrap_err();
        assert!(matches!(e, ProtocolError::FieldTooLarge { len: 21, .. }));
        let e = check_head(
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
}
