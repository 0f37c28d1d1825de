//! The raw request heads, and the framing of the bytes between them.
//!
//! hyper's `HeaderMap` groups repeated names, so `A, B, A` reads back as
//! `A, A, B`. Applications that must see the wire order (the echo example,
//! signature schemes) get a [`HeaderOrder`] built from the raw head. The
//! same look at the raw head finds what hyper's parse hides: lines ended by
//! a bare LF (httparse accepts them), a Content-Length next to a
//! Transfer-Encoding, or repeated with the same value (hyper keeps one).
//!
//! The socket wrapper hands every byte it reads to a [`HeadCapture`],
//! which follows the framing of the stream as hyper does: after a head
//! hyper has parsed come its body's bytes (Content-Length of them, or a
//! chunked body up to its final CRLF), then the next head. Body bytes are
//! not copied: a Content-Length body is counted, a chunked one is checked
//! byte by byte against the strict grammar of `chunked` (hyper's decoder is
//! lenient), and a violation fails the read, so hyper never sees the bytes
//! that break the framing, nor anything after them. The bytes of heads are
//! kept until the service asks about its request's head, which is then at
//! the very start of the buffer; it is re-parsed with httparse (hyper's
//! parser) and checked against hyper's map: the same fields, grouped by
//! name, in the same order. Only then is the order used; otherwise the
//! map's order stands, so a wrong order is never reported, at worst a
//! grouped one. When no name repeats, the map's order already is the
//! arrival order and no `HeaderOrder` is made.
//!
//! If the head hyper parsed is not where the framing puts it (which would
//! be a bug here, not a client's doing) the connection is refused and
//! closed rather than served unchecked.
//!
//! # Higher minor versions
//!
//! A request line saying `HTTP/1.2` to `HTTP/1.9` is to be served as
//! HTTP/1.1 (RFC 9110 section 2.5: a recipient treats a higher minor
//! version as the highest it implements), but httparse knows only 1.0 and
//! 1.1 and hyper answers anything else 400. So the capture rewrites the
//! minor digit to `1` before hyper sees it: only in a request line that
//! begins where a head must begin (nothing unparsed is pending and no body
//! is due), only the digit after `METHOD SP target SP HTTP/1.`, and in
//! place, which works however the line is split across reads (the digit
//! arrives in one read, and is rewritten in it). Any other bytes are left
//! alone: what hyper refuses stays refused (`HTTP/2.0` in a request line is
//! a 400). A head pipelined behind another in bytes read before the first
//! was parsed does not begin at a known boundary, so it is not rewritten
//! and gets hyper's 400: refused cleanly, never misread.

use ferricorn_app_interface::HeaderOrder;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Version};

use super::chunked::ChunkedCheck;

/// What the raw bytes of a head show that hyper's parse does not.
#[derive(Debug, Default)]
pub(crate) struct RawHead {
    /// The arrival order, when it differs from the map's.
    pub order: Option<HeaderOrder>,
    /// A line ended by LF alone (RFC 9112 lets a server refuse it; Gunicorn
    /// does, and so do we, since parsers that disagree on line ends are how
    /// requests get smuggled).
    pub bare_lf: bool,
    /// More than one empty line came before the request line (httparse
    /// skips any number; RFC 9112 section 2.2 asks to skip at least one,
    /// Gunicorn skips exactly one, and so do we).
    pub leading_empty_lines: bool,
    /// Both Content-Length and Transfer-Encoding were sent (hyper drops
    /// the Content-Length from the map, so only the raw head shows it).
    pub both_framings: bool,
    /// More than one Content-Length field line (hyper keeps one of equal
    /// values).
    pub repeated_content_length: bool,
    /// The framing of the stream is broken: a malformed chunked body (of
    /// this request, in bytes already read) or a head not where expected.
    pub framing: Option<&'static str>,
}

/// Room for unparsed bytes beyond the largest head: hyper holds at most a
/// head's worth in its buffer plus one read, so more means the framing here
/// and hyper's have parted.
const SLACK: usize = 64 * 1024;

/// Header slots kept on the stack when re-parsing a head.
const STACK_SLOTS: usize = 32;

/// The body of the request whose head was parsed last.
#[derive(Debug, Default)]
enum Body {
    /// None pending: the bytes read are heads.
    #[default]
    None,
    /// This many bytes of a Content-Length body are still to come.
    Length(u64),
    /// A chunked body, checked as it arrives.
    Chunked(ChunkedCheck),
    /// The framing was violated; nothing more may be read.
    Broken(&'static str),
}

impl Body {
    /// Takes the body's bytes from the start of `data`: how many.
    fn consume(&mut self, data: &[u8]) -> Result<usize, &'static str> {
        match self {
            Body::None => Ok(0),
            Body::Length(left) => {
                let n = (*left).min(data.len() as u64);
                *left -= n;
                if *left == 0 {
                    *self = Body::None;
                }
                // `n` is at most `data.len()`.
                Ok(n as usize)
            }
            Body::Chunked(check) => match check.feed(data) {
                Ok(Some(n)) => {
                    *self = Body::None;
                    Ok(n)
                }
                Ok(None) => Ok(data.len()),
                Err(e) => {
                    *self = Body::Broken(e.0);
                    Err(e.0)
                }
            },
            Body::Broken(why) => Err(why),
        }
    }
}

/// Where the scan of a request line for its version stands (see the
/// module docs on higher minor versions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum LineScan {
    /// Not in a request line known to begin at a head boundary.
    #[default]
    Off,
    /// Empty lines before the request line (httparse skips them).
    Leading,
    Method,
    Target,
    /// This many bytes of `HTTP/1.` matched.
    Version(usize),
}

impl LineScan {
    /// Scans `bytes`, the next of the head, and turns a minor version of 2
    /// to 9 into 1.
    fn feed(&mut self, bytes: &mut [u8]) {
        const PREFIX: &[u8] = b"HTTP/1.";
        for b in bytes {
            *self = match (*self, *b) {
                (LineScan::Off, _) => return,
                (LineScan::Leading, b'\r' | b'\n') => LineScan::Leading,
                (LineScan::Leading, _) => LineScan::Method,
                (LineScan::Method | LineScan::Target, b'\r' | b'\n') => LineScan::Off,
                (LineScan::Method, b' ') => LineScan::Target,
                (LineScan::Target, b' ') => LineScan::Version(0),
                (state @ (LineScan::Method | LineScan::Target), _) => state,
                (LineScan::Version(i), c) if i < PREFIX.len() => {
                    if c == PREFIX[i] {
                        LineScan::Version(i + 1)
                    } else {
                        LineScan::Off
                    }
                }
                (LineScan::Version(_), c) => {
                    // Whatever follows the digit, hyper checks: "HTTP/1.23"
                    // is refused as "HTTP/1.13" would be.
                    if matches!(c, b'2'..=b'9') {
                        *b = b'1';
                    }
                    LineScan::Off
                }
            };
        }
    }
}

/// The bytes read from a connection, between hyper's framing and ours.
#[derive(Debug, Default)]
pub(crate) struct HeadCapture {
    /// Read, not yet attributed to a head: the heads to come, and the
    /// start of a body that arrived before its head was inspected.
    buf: Vec<u8>,
    body: Body,
    scan: LineScan,
}

impl HeadCapture {
    /// Records bytes just read, rewriting a request line's higher minor
    /// version in place (see the module docs). `Err`: they break the
    /// framing (a malformed chunked body); the connection must not go on.
    pub fn push(&mut self, data: &mut [u8], head_cap: usize) -> Result<(), &'static str> {
        let taken = self.body.consume(data)?;
        let rest = &mut data[taken..];
        if rest.is_empty() {
            return Ok(());
        }
        if self.buf.is_empty() {
            // No body is due and nothing read waits for its head: these
            // bytes begin a head.
            self.scan = LineScan::Leading;
        }
        self.scan.feed(rest);
        if self.buf.len() + rest.len() > 2 * head_cap + SLACK {
            self.body = Body::Broken("more unparsed bytes than a request head may hold");
            return Err("more unparsed bytes than a request head may hold");
        }
        self.buf.extend_from_slice(rest);
        Ok(())
    }

    /// Whether request bytes may still arrive: a body is not complete (or
    /// its framing broke), or read bytes wait for their head to be parsed.
    pub fn input_pending(&self) -> bool {
        !matches!(self.body, Body::None) || !self.buf.is_empty()
    }

    /// What the raw head of `parts`, just parsed by hyper, shows; moves on
    /// to its body.
    pub fn inspect(&mut self, parts: &Parts) -> RawHead {
        let mut raw = match self.body {
            Body::None => self.head(parts),
            Body::Broken(why) => Err(why),
            // hyper reads a body to its end before it parses another head.
            Body::Length(_) | Body::Chunked(_) => Err("a head parsed inside a body"),
        }
        .unwrap_or_else(|why| {
            self.body = Body::Broken(why);
            self.buf = Vec::new();
            RawHead {
                framing: Some(why),
                ..RawHead::default()
            }
        });
        // Body bytes that came with the head.
        if !self.buf.is_empty() && raw.framing.is_none() {
            match self.body.consume(&self.buf) {
                Ok(n) => {
                    self.buf.drain(..n);
                }
                Err(why) => raw.framing = Some(why),
            }
        }
        raw
    }

    /// Parses the head at the start of the buffer, which must be the one
    /// hyper parsed as `parts`, and drops it from the buffer.
    fn head(&mut self, parts: &Parts) -> Result<RawHead, &'static str> {
        const LOST: &str = "the request head is not where the framing puts it";
        // Two CRLFs; an LF alone anywhere is `bare_lf` already.
        let leading_empty_lines = self.buf.starts_with(b"\r\n\r\n");
        // Without a framing field or a repeated name, hyper's map already
        // tells all but the line ends: a scan finds those and the head's
        // end, at a tenth of the cost of a parse. (hyper removes a
        // Content-Length only next to a Transfer-Encoding, which stays.)
        let headers = &parts.headers;
        if headers.keys_len() == headers.len()
            && !headers.contains_key(CONTENT_LENGTH)
            && !headers.contains_key(TRANSFER_ENCODING)
        {
            let (len, bare_lf) = scan_head(&self.buf, parts).ok_or(LOST)?;
            self.buf.drain(..len);
            self.body = Body::None;
            return Ok(RawHead {
                bare_lf,
                leading_empty_lines,
                ..RawHead::default()
            });
        }
        // Room for fields hyper took out of the map (a Content-Length next
        // to a Transfer-Encoding, or repeated).
        // On the stack for the usual head; more slots than asked for only
        // spare a second parse.
        let mut stack = [httparse::EMPTY_HEADER; STACK_SLOTS];
        let mut heap;
        let mut slots: &mut [httparse::Header<'_>] = if parts.headers.len() + 4 <= STACK_SLOTS {
            &mut stack
        } else {
            heap = vec![httparse::EMPTY_HEADER; parts.headers.len() + 4];
            &mut heap
        };
        if let Err(httparse::Error::TooManyHeaders) = httparse::Request::new(slots).parse(&self.buf)
        {
            let lines = self.buf.iter().filter(|b| **b == b'\n').count();
            heap = vec![httparse::EMPTY_HEADER; lines];
            slots = &mut heap;
        }
        let mut req = httparse::Request::new(slots);
        let len = match req.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) => len,
            _ => return Err(LOST),
        };
        let version = if parts.version == Version::HTTP_10 {
            0
        } else {
            1
        };
        if req.method != Some(parts.method.as_str()) || req.version != Some(version) {
            return Err(LOST);
        }
        let head = &self.buf[..len];
        let bare_lf = head
            .iter()
            .enumerate()
            .any(|(i, b)| *b == b'\n' && (i == 0 || head[i - 1] != b'\r'));
        let (mut content_lengths, mut transfer_encodings) = (0, 0);
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                content_lengths += 1;
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encodings += 1;
            }
        }
        let mut raw = RawHead {
            order: None,
            bare_lf,
            leading_empty_lines,
            both_framings: content_lengths > 0 && transfer_encodings > 0,
            repeated_content_length: content_lengths > 1,
            framing: None,
        };
        if parts.headers.keys_len() != parts.headers.len() {
            let fields: Option<Vec<(HeaderName, HeaderValue)>> = req
                .headers
                .iter()
                .map(|h| {
                    Some((
                        HeaderName::from_bytes(h.name.as_bytes()).ok()?,
                        HeaderValue::from_bytes(h.value).ok()?,
                    ))
                })
                .collect();
            raw.order = fields
                .filter(|f| same_fields_grouped(f, parts))
                .map(HeaderOrder);
        }
        self.buf.drain(..len);
        // The body as hyper frames it: hyper refuses a Transfer-Encoding
        // whose final coding is not chunked, drops a Content-Length next to
        // one, and keeps one of equal Content-Lengths.
        self.body = if transfer_encodings > 0 {
            Body::Chunked(ChunkedCheck::default())
        } else if content_lengths == 0 {
            Body::None
        } else if let Some(v) = parts.headers.get(CONTENT_LENGTH) {
            let len = std::str::from_utf8(v.as_bytes())
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(LOST)?;
            if len == 0 {
                Body::None
            } else {
                Body::Length(len)
            }
        } else {
            return Err(LOST);
        };
        Ok(raw)
    }
}

/// The length of the head at the start of `buf` and whether a line of it
/// ends in LF alone, found by scanning for its empty line; `None` if the
/// head there is not the one hyper parsed as `parts` (its method and
/// version) or is incomplete. Empty lines before the request line are
/// skipped, as httparse does.
fn scan_head(buf: &[u8], parts: &Parts) -> Option<(usize, bool)> {
    let mut bare_lf = false;
    let mut line_start = 0;
    let mut request_line_seen = false;
    for (i, _) in buf.iter().enumerate().filter(|(_, b)| **b == b'\n') {
        let cr = i > 0 && buf[i - 1] == b'\r';
        bare_lf |= !cr;
        let line = &buf[line_start..i - usize::from(cr)];
        line_start = i + 1;
        if line.is_empty() {
            if request_line_seen {
                return Some((i + 1, bare_lf));
            }
        } else if !request_line_seen {
            if !fits(line, parts) {
                return None;
            }
            request_line_seen = true;
        }
    }
    None
}

/// Whether a request line has the method and version of `parts`.
fn fits(line: &[u8], parts: &Parts) -> bool {
    let method = parts.method.as_str().as_bytes();
    let version: &[u8] = if parts.version == Version::HTTP_10 {
        b" HTTP/1.0"
    } else {
        b" HTTP/1.1"
    };
    line.len() > method.len()
        && line.starts_with(method)
        && line[method.len()] == b' '
        && line.ends_with(version)
}

/// Whether `fields`, grouped by name in order of first appearance, is
/// exactly what the map iterates.
fn same_fields_grouped(fields: &[(HeaderName, HeaderValue)], parts: &Parts) -> bool {
    let mut names: Vec<&HeaderName> = Vec::new();
    for (n, _) in fields {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let grouped = names
        .iter()
        .flat_map(|name| fields.iter().filter(move |(n, _)| n == *name));
    fields.len() == parts.headers.len()
        && grouped
            .zip(parts.headers.iter())
            .all(|((n1, v1), (n2, v2))| n1 == n2 && v1 == v2)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl HeadCapture {
        fn push_copy(&mut self, data: &[u8], head_cap: usize) -> Result<(), &'static str> {
            self.push(&mut data.to_vec(), head_cap)
        }
    }

    fn parse(raw: &[u8]) -> Parts {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut slots);
        req.parse(raw).unwrap();
        let mut b = http::Request::builder()
            .method(req.method.unwrap())
            .uri(req.path.unwrap());
        for h in req.headers.iter() {
            b = b.header(h.name, h.value);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn names(order: &HeaderOrder) -> Vec<&str> {
        order.0.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn pipelined_heads_keep_their_order() {
        let one = b"GET /a HTTP/1.1\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\n";
        let two = b"POST /b HTTP/1.1\r\nContent-Length: 2\r\nX: 1\r\nY: 2\r\nX: 3\r\n\r\nhi";
        let three = b"GET /c HTTP/1.1\r\nH: 1\r\n\r\n";
        let mut cap = HeadCapture::default();
        let mut all = Vec::new();
        all.extend_from_slice(one);
        all.extend_from_slice(two);
        all.extend_from_slice(three);
        cap.push_copy(&all, 8192).unwrap();
        let o = cap.inspect(&parse(one)).order.unwrap();
        assert_eq!(names(&o), ["a", "b", "a"]);
        let o = cap.inspect(&parse(two)).order.unwrap();
        assert_eq!(names(&o), ["content-length", "x", "y", "x"]);
        assert!(
            cap.inspect(&parse(three)).order.is_none(),
            "no repeats: map order is exact"
        );
        assert!(cap.buf.is_empty());
    }

    #[test]
    fn heads_without_framing_or_repeats_are_scanned() {
        let one = b"\r\nGET /a HTTP/1.1\r\nA: 1\r\n\r\n";
        let two = b"GET /b HTTP/1.1\nB: 2\r\n\r\n";
        let three = b"HEAD /c HTTP/1.0\r\n\r\n";
        let mut cap = HeadCapture::default();
        let mut all = Vec::new();
        all.extend_from_slice(one);
        all.extend_from_slice(two);
        all.extend_from_slice(three);
        cap.push_copy(&all, 8192).unwrap();
        let raw = cap.inspect(&parse(&one[2..]));
        assert!(raw.framing.is_none() && !raw.bare_lf && raw.order.is_none());
        let raw = cap.inspect(&parse(b"GET /b HTTP/1.1\r\nB: 2\r\n\r\n"));
        assert!(raw.framing.is_none() && raw.bare_lf, "a bare LF is seen");
        let mut head = parse(b"HEAD /c HTTP/1.1\r\n\r\n");
        head.version = Version::HTTP_10;
        assert!(cap.inspect(&head).framing.is_none());
        assert!(cap.buf.is_empty());

        // Not the head hyper parsed: the connection is refused.
        let mut cap = HeadCapture::default();
        cap.push_copy(b"GET /a HTTP/1.1\r\n\r\n", 8192).unwrap();
        assert!(cap
            .inspect(&parse(b"PUT /a HTTP/1.1\r\n\r\n"))
            .framing
            .is_some());
        // Incomplete: likewise.
        let mut cap = HeadCapture::default();
        cap.push_copy(b"GET /a HTTP/1.1\r\n", 8192).unwrap();
        assert!(cap
            .inspect(&parse(b"GET /a HTTP/1.1\r\n\r\n"))
            .framing
            .is_some());
    }

    #[test]
    fn mismatch_falls_back() {
        let mut cap = HeadCapture::default();
        cap.push_copy(b"GET /a HTTP/1.1\r\nA: 1\r\nB: 2\r\nA: 9\r\n\r\n", 8192)
            .unwrap();
        let parts = parse(b"GET /a HTTP/1.1\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\n");
        assert!(cap.inspect(&parts).order.is_none());
        let mut cap = HeadCapture::default();
        let raw = cap.inspect(&parts);
        assert!(raw.order.is_none(), "nothing captured");
        assert!(raw.framing.is_some(), "a head hyper has but we do not");
    }

    #[test]
    fn bare_lf_is_seen() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n";
        let mut cap = HeadCapture::default();
        cap.push_copy(raw, 8192).unwrap();
        assert!(cap.inspect(&parse(raw)).bare_lf);
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        cap.push_copy(raw, 8192).unwrap();
        assert!(!cap.inspect(&parse(raw)).bare_lf);
    }

    #[test]
    fn leading_empty_lines_are_seen() {
        let mut cap = HeadCapture::default();
        let one = b"\r\nGET / HTTP/1.1\r\n\r\n";
        cap.push_copy(one, 8192).unwrap();
        let raw = cap.inspect(&parse(one));
        assert!(!raw.leading_empty_lines && raw.framing.is_none());
        let two = b"\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        cap.push_copy(two, 8192).unwrap();
        assert!(cap.inspect(&parse(two)).leading_empty_lines);
    }

    #[test]
    fn bodies_are_not_copied() {
        let mut cap = HeadCapture::default();
        let head = b"POST /up HTTP/1.1\r\nContent-Length: 409600\r\n\r\n";
        cap.push_copy(head, 8192).unwrap();
        cap.push_copy(&[b'x'; 4096], 8192).unwrap();
        let raw = cap.inspect(&parse(head));
        assert!(raw.framing.is_none());
        assert!(cap.buf.is_empty());
        for _ in 1..100 {
            cap.push_copy(&[b'x'; 4096], 8192).unwrap();
        }
        assert!(cap.buf.is_empty());
        // The next head is kept.
        let next = b"GET /next HTTP/1.1\r\n\r\n";
        cap.push_copy(next, 8192).unwrap();
        assert_eq!(cap.buf, next);
    }

    #[test]
    fn repeated_content_length_is_seen() {
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
        let mut cap = HeadCapture::default();
        cap.push_copy(raw, 8192).unwrap();
        // hyper keeps one of the equal values.
        let parts = parse(b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n");
        let head = cap.inspect(&parts);
        assert!(head.repeated_content_length && !head.both_framings);
        assert!(cap.buf.is_empty(), "the body was taken");
    }

    /// Pipelined chunked requests, fed in pieces of `step` bytes; the
    /// service inspects each head as soon as it is complete.
    fn pipeline(step: usize) -> Result<Vec<RawHead>, &'static str> {
        let one = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let body = b"5;x=\"y\"\r\nhello\r\n0\r\nT: 1\r\n\r\n";
        let two = b"GET /b HTTP/1.1\r\nA: 1\r\nA: 2\r\n\r\n";
        let all = [&one[..], body, one, body, two].concat();
        let heads = [
            (&one[..], 0),
            (one, one.len() + body.len()),
            (two, all.len() - two.len()),
        ];
        let mut cap = HeadCapture::default();
        let mut seen = Vec::new();
        for (i, piece) in all.chunks(step).enumerate() {
            cap.push_copy(piece, 8192)?;
            let read = (i * step + piece.len()).min(all.len());
            while let Some((head, at)) = heads.get(seen.len()) {
                if read < at + head.len() {
                    break;
                }
                seen.push(cap.inspect(&parse(head)));
            }
        }
        Ok(seen)
    }

    #[test]
    fn pipelined_chunked_bodies_in_any_pieces() {
        for step in [1, 2, 3, 7, 16, 1000] {
            let heads = pipeline(step).unwrap();
            assert_eq!(heads.len(), 3, "step {step}");
            assert!(heads.iter().all(|h| h.framing.is_none()), "step {step}");
            assert!(
                heads[2].order.is_some(),
                "step {step}: the last head was found"
            );
        }
    }

    #[test]
    fn malformed_chunked_bodies_break_the_framing() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let parts = parse(head);
        // Arriving with the head: seen when the head is inspected.
        let mut cap = HeadCapture::default();
        cap.push_copy(&[&head[..], b"5 \r\nhello\r\n0\r\n\r\n"].concat(), 8192)
            .unwrap();
        assert!(cap.inspect(&parts).framing.is_some());
        assert!(cap.push_copy(b"GET / HTTP/1.1\r\n\r\n", 8192).is_err());
        // Arriving later: the read that brings it fails.
        let mut cap = HeadCapture::default();
        cap.push_copy(head, 8192).unwrap();
        assert!(cap.inspect(&parts).framing.is_none());
        cap.push_copy(b"5;a=\"b", 8192).unwrap();
        assert!(cap.push_copy(b"\r\nhello\r\n0\r\n\r\n", 8192).is_err());
        assert!(
            cap.push_copy(b"x", 8192).is_err(),
            "and every read after it"
        );
    }

    #[test]
    fn unparsed_bytes_are_bounded() {
        let mut cap = HeadCapture::default();
        let cap_bytes = 2 * 8192 + SLACK;
        cap.push_copy(&vec![b'a'; cap_bytes], 8192).unwrap();
        assert!(cap.push_copy(b"a", 8192).is_err());
    }

    /// Feeds `raw` in pieces of `n` bytes; returns what hyper would see.
    fn rewritten(cap: &mut HeadCapture, raw: &[u8], n: usize) -> Vec<u8> {
        let mut seen = Vec::new();
        for piece in raw.chunks(n) {
            let mut piece = piece.to_vec();
            cap.push(&mut piece, 8192).unwrap();
            seen.extend_from_slice(&piece);
        }
        seen
    }

    #[test]
    fn higher_minor_version_is_read_as_1_1() {
        for n in [1, 2, 3, 7, 100] {
            for (sent, seen) in [
                (
                    &b"GET /a HTTP/1.2\r\nHost: a\r\n\r\n"[..],
                    &b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n"[..],
                ),
                (b"\r\nGET / HTTP/1.9\r\n\r\n", b"\r\nGET / HTTP/1.1\r\n\r\n"),
                // Untouched: 1.0, 1.1, other majors, anything not a version.
                (b"GET / HTTP/1.0\r\n\r\n", b"GET / HTTP/1.0\r\n\r\n"),
                (b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n"),
                (b"GET / HTTP/2.0\r\n\r\n", b"GET / HTTP/2.0\r\n\r\n"),
                (b"GET / HTTP/3.2\r\n\r\n", b"GET / HTTP/3.2\r\n\r\n"),
                (b"GET /HTTP/1.2 x\r\n\r\n", b"GET /HTTP/1.2 x\r\n\r\n"),
                (
                    b"GET /\r\nX: a HTTP/1.2\r\n\r\n",
                    b"GET /\r\nX: a HTTP/1.2\r\n\r\n",
                ),
                (
                    b"GET / HTTP/1.1\r\nX: a b HTTP/1.2\r\n\r\n",
                    b"GET / HTTP/1.1\r\nX: a b HTTP/1.2\r\n\r\n",
                ),
            ] {
                let mut cap = HeadCapture::default();
                assert_eq!(
                    rewritten(&mut cap, sent, n),
                    seen,
                    "{} in pieces of {n}",
                    String::from_utf8_lossy(sent)
                );
            }
        }
        // The next head is rewritten once the first and its body are
        // through; a body that looks like a request line is not.
        let mut cap = HeadCapture::default();
        let first = b"POST / HTTP/1.1\r\nContent-Length: 15\r\n\r\n";
        assert_eq!(rewritten(&mut cap, first, 5), first);
        cap.inspect(&parse(first));
        let body_and_next = b"GET / HTTP/1.2\r\nGET / HTTP/1.3\r\n\r\n";
        assert_eq!(
            rewritten(&mut cap, body_and_next, 4),
            b"GET / HTTP/1.2\r\nGET / HTTP/1.1\r\n\r\n"
        );
        let raw = cap.inspect(&parse(b"GET / HTTP/1.1\r\n\r\n"));
        assert_eq!(raw.framing, None, "the capture kept the rewritten head");
    }
}
