//! Protocol errors and the one exhaustive `match` from an error to what the
//! client gets (Gunicorn's `handle_error` ladder).
//!
//! Two sources feed it. Limits checked here, on the parsed head, before the
//! application is called ([`super::limits`]). And hyper's own errors, which
//! hyper answers itself before the connection ends: a malformed head gets
//! 400, too many or too large header fields 431, an over-long URI (65534
//! bytes) 414; other framing errors (an HTTP/2 preface, a truncated message)
//! close the connection without an answer. hyper never answers a client's
//! mistake with a 5xx. [`ConnectionEnd::classify`] sorts what hyper reports
//! when a connection ends into who was at fault, which decides the log
//! level.

use http::StatusCode;

/// A request refused for the protocol, before the application sees it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The request line is longer than `--limit-request-line`.
    #[error("request line of {len} bytes is over --limit-request-line ({limit})")]
    RequestLineTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// More header fields than `--limit-request-fields`.
    #[error("{count} header fields are over --limit-request-fields ({limit})")]
    TooManyFields {
        /// How many arrived.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A header field line longer than `--limit-request-field_size`.
    #[error("header field {name} of {len} bytes is over --limit-request-field_size ({limit})")]
    FieldTooLarge {
        /// The field's name.
        name: String,
        /// The length of `name: value` and its CRLF.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A request-target that does not suit the method, or is not ASCII.
    #[error("invalid request target: {0}")]
    InvalidTarget(&'static str),
    /// A line of the head ended by LF alone.
    #[error("a line of the request head ends with a bare LF")]
    BareLineFeed,
    /// Both `Content-Length` and `Transfer-Encoding`.
    #[error("both Content-Length and Transfer-Encoding")]
    ContentLengthWithTransferEncoding,
    /// More than one `Content-Length` field line, even with equal values
    /// (RFC 9112 section 6.3 lets a recipient merge them; Gunicorn refuses,
    /// and so do we: a proxy that kept the other one frames differently).
    #[error("more than one Content-Length field line")]
    RepeatedContentLength,
    /// A `Transfer-Encoding` that does not end in exactly one `chunked`.
    #[error("invalid Transfer-Encoding: {0}")]
    InvalidTransferEncoding(&'static str),
    /// The message framing is broken: a malformed chunked body.
    #[error("invalid message framing: {0}")]
    InvalidFraming(&'static str),
    /// More than one `Host` field line (RFC 9112 section 3.2).
    #[error("more than one Host header field")]
    RepeatedHost,
    /// An HTTP/1.1 request without a `Host` field (RFC 9112 section 3.2);
    /// `--permit-missing-host` serves it, as Gunicorn does.
    #[error("HTTP/1.1 request without a Host header field; --permit-missing-host accepts it")]
    MissingHost,
    /// A `Host` value outside `uri-host [ ":" port ]` (RFC 9110 section
    /// 7.2), such as a space, `/`, `@`, a port that is not digits, or an
    /// unclosed `[`. Refused whatever the switches: a value that one
    /// parser splits differently from another is how a request reaches a
    /// site it was not routed to.
    #[error("invalid Host header field value: {0}")]
    InvalidHost(&'static str),
    /// `CONNECT`, which asks for a tunnel. We are an origin server and do
    /// not tunnel: hyper turns any 2xx to a CONNECT into a tunnel, sends
    /// the head alone and drops the body, so an application's answer would
    /// reach the client as an empty 200 and a connection that then says
    /// nothing. 501 says what is true (RFC 9110 section 15.6.2: a method
    /// the server does not implement), before the application is called.
    #[error("CONNECT: this server does not tunnel")]
    ConnectNotImplemented,
    /// More than one `Content-Type` field line: its grammar holds one
    /// value, so two cannot be merged (RFC 9110 section 5.3) and which one
    /// counts is anyone's guess. Gunicorn refuses it too.
    #[error("more than one Content-Type header field")]
    RepeatedContentType,
    /// More than one empty line before the request line (RFC 9112 section
    /// 2.2 asks a server to skip at least one; Gunicorn skips exactly one).
    #[error("more than one empty line before the request line")]
    LeadingEmptyLines,
    /// A method Gunicorn refuses unless `--permit-unconventional-http-method`:
    /// with lower-case letters or `#`, or not 3 to 20 characters long.
    #[error("unconventional method (lower case, '#', or not 3 to 20 characters); --permit-unconventional-http-method accepts it")]
    UnconventionalMethod,
    /// A header field name with `_` under `--header-map refuse`.
    #[error("header field name {0} contains '_' (--header-map refuse)")]
    UnderscoreInFieldName(String),
    /// A trusted proxy's `X-Forwarded-Proto`, `X-Forwarded-Ssl` and
    /// `X-Forwarded-Protocol` fields disagree on whether the client used
    /// HTTPS (Gunicorn's `InvalidSchemeHeaders`).
    #[error(
        "contradictory scheme headers (X-Forwarded-Proto, X-Forwarded-Ssl, X-Forwarded-Protocol)"
    )]
    ContradictorySchemeHeaders,
    /// A malformed PROXY protocol header (`--proxy-protocol`).
    #[error("invalid PROXY protocol header: {0}")]
    InvalidProxyHeader(&'static str),
    /// A PROXY protocol header from a peer not in `--proxy-allow-from`.
    #[error("PROXY protocol header from a peer not in --proxy-allow-from")]
    ForbiddenProxyHeader,
    /// A body declared or streamed past `--limit-request-body`.
    #[error("request body is over --limit-request-body ({limit} bytes)")]
    BodyTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The client did not send a complete head within `--header-timeout`.
    #[error("request head not received within --header-timeout")]
    HeadTimeout,
}

impl ProtocolError {
    /// The answer, and whether the connection closes after it. `None`: no
    /// answer, the connection is just closed (a client too slow to send a
    /// head is not worth a response, and may not read it).
    pub fn response(&self) -> Option<(StatusCode, bool)> {
        match self {
            ProtocolError::RequestLineTooLong { .. } => Some((StatusCode::URI_TOO_LONG, true)),
            ProtocolError::TooManyFields { .. } | ProtocolError::FieldTooLarge { .. } => {
                Some((StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, true))
            }
            // Closing: the rest of the body is not read.
            ProtocolError::BodyTooLarge { .. } => Some((StatusCode::PAYLOAD_TOO_LARGE, true)),
            ProtocolError::InvalidTarget(_)
            | ProtocolError::BareLineFeed
            | ProtocolError::ContentLengthWithTransferEncoding
            | ProtocolError::RepeatedContentLength
            | ProtocolError::InvalidTransferEncoding(_)
            | ProtocolError::InvalidFraming(_)
            | ProtocolError::RepeatedHost
            | ProtocolError::MissingHost
            | ProtocolError::InvalidHost(_)
            | ProtocolError::RepeatedContentType
            | ProtocolError::LeadingEmptyLines
            | ProtocolError::UnconventionalMethod
            | ProtocolError::UnderscoreInFieldName(_)
            | ProtocolError::ContradictorySchemeHeaders
            | ProtocolError::InvalidProxyHeader(_) => Some((StatusCode::BAD_REQUEST, true)),
            // Closing: a client that meant a tunnel may already be sending
            // the tunnel's bytes (a TLS hello), which are no request.
            ProtocolError::ConnectNotImplemented => Some((StatusCode::NOT_IMPLEMENTED, true)),
            // Gunicorn's answer to a PROXY header from a peer it does not
            // trust with one.
            ProtocolError::ForbiddenProxyHeader => Some((StatusCode::FORBIDDEN, true)),
            ProtocolError::HeadTimeout => None,
        }
    }
}

/// How a connection ended, for the error log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectionEnd {
    /// Cleanly (the client closed, keep-alive ended, shutdown).
    Clean,
    /// The client's fault: a malformed request (hyper answered 4xx), a
    /// truncated message, a reset. Logged at DEBUG, as Gunicorn does.
    Client,
    /// Ours or the application's: a response body that failed, an internal
    /// error. Logged at ERROR.
    Server,
}

impl ConnectionEnd {
    pub fn classify(result: &Result<(), hyper::Error>) -> ConnectionEnd {
        let Err(e) = result else {
            return ConnectionEnd::Clean;
        };
        if e.is_parse()
            || e.is_parse_too_large()
            || e.is_parse_version_h2()
            || e.is_incomplete_message()
            || e.is_timeout()
            || e.is_canceled()
            || e.is_closed()
        {
            return ConnectionEnd::Client;
        }
        if e.is_body_write_aborted() || e.is_user() {
            return ConnectionEnd::Server;
        }
        // What remains is I/O: a reset or broken pipe is the peer leaving.
        let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
        match io.map(|io| io.kind()) {
            Some(
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::TimedOut
                // Our socket wrapper's refusal of a malformed chunked body.
                | std::io::ErrorKind::InvalidData,
            ) => ConnectionEnd::Client,
            _ => ConnectionEnd::Server,
        }
    }
}
