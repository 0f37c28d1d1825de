//! Recovering the arrival order of header fields.
//!
//! hyper's `HeaderMap` groups repeated names, so `A, B, A` reads back as
//! `A, A, B`. Applications that must see the wire order (the echo example,
//! signature schemes) get a [`HeaderOrder`] built from the raw head.
//!
//! The socket wrapper copies the bytes it reads into a [`HeadCapture`]:
//! everything while waiting for a head (bounded by the head size hyper
//! accepts) and at most 64 KiB while a request is being served (so a
//! pipelined head after a small body is kept, but a large upload is not
//! copied). For each parsed request we find its request line in that
//! buffer, re-parse the head with httparse and check the result against
//! hyper's map: the same fields, grouped by name, in the same order. Only
//! then is the order used; any mismatch (a gap in the copy, a head we did
//! not keep) falls back to the map's order. So a wrong order is never
//! reported, at worst a grouped one.
//!
//! When no name repeats, the map's order already is the arrival order and
//! no `HeaderOrder` is made. The same look at the raw head finds lines
//! ended by a bare LF, which httparse accepts.

use ferricorn_app_interface::HeaderOrder;
use http::request::Parts;
use http::{HeaderName, HeaderValue};

/// What the raw bytes of a head show that hyper's parse does not.
#[derive(Debug, Default)]
pub(crate) struct RawHead {
    /// The arrival order, when it differs from the map's.
    pub order: Option<HeaderOrder>,
    /// A line ended by LF alone (RFC 9112 lets a server refuse it; Gunicorn
    /// does, and so do we, since parsers that disagree on line ends are how
    /// requests get smuggled).
    pub bare_lf: bool,
    /// Both Content-Length and Transfer-Encoding were sent (hyper drops
    /// the Content-Length from the map, so only the raw head shows it).
    pub both_framings: bool,
}

/// How much is copied while a request is being served.
const SERVING_CAP: usize = 64 * 1024;

/// Bytes read from a connection, kept for finding heads in.
#[derive(Debug, Default)]
pub(crate) struct HeadCapture {
    buf: Vec<u8>,
}

impl HeadCapture {
    /// Records bytes just read. `serving`: a request is in progress, so
    /// these are most likely body bytes.
    pub fn push(&mut self, data: &[u8], serving: bool, head_cap: usize) {
        let cap = if serving {
            SERVING_CAP
        } else {
            head_cap + SERVING_CAP
        };
        if self.buf.len() + data.len() > cap {
            if serving {
                return; // a gap; heads after it are found again by search
            }
            self.buf.clear();
            if data.len() > cap {
                return;
            }
        }
        self.buf.extend_from_slice(data);
    }

    /// What the raw head of `parts` shows, when it was kept; advances
    /// past that head.
    pub fn inspect(&mut self, parts: &Parts) -> RawHead {
        self.find_head(parts).unwrap_or_default()
    }

    fn find_head(&mut self, parts: &Parts) -> Option<RawHead> {
        let target = match parts.uri.path_and_query() {
            Some(pq) if parts.uri.scheme().is_none() => pq.as_str().to_owned(),
            _ => parts.uri.to_string(),
        };
        let needle = format!("{} {} HTTP/", parts.method, target);
        let pos = find(&self.buf, needle.as_bytes())?;
        // Room for fields hyper took out of the map (a Content-Length next
        // to a Transfer-Encoding).
        let mut slots = vec![httparse::EMPTY_HEADER; parts.headers.len() + 4];
        let mut req = httparse::Request::new(&mut slots);
        let len = match req.parse(&self.buf[pos..]) {
            Ok(httparse::Status::Complete(len)) => len,
            _ => return None,
        };
        let head = &self.buf[pos..pos + len];
        let bare_lf = head
            .iter()
            .enumerate()
            .any(|(i, b)| *b == b'\n' && (i == 0 || head[i - 1] != b'\r'));
        let has = |name: &str| {
            req.headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case(name))
        };
        let both_framings = has("content-length") && has("transfer-encoding");
        let repeats = parts.headers.keys_len() != parts.headers.len();
        if !repeats {
            self.buf.drain(..pos + len);
            return Some(RawHead {
                order: None,
                bare_lf,
                both_framings,
            });
        }
        let fields: Vec<(HeaderName, HeaderValue)> = req
            .headers
            .iter()
            .map(|h| {
                Some((
                    HeaderName::from_bytes(h.name.as_bytes()).ok()?,
                    HeaderValue::from_bytes(h.value).ok()?,
                ))
            })
            .collect::<Option<_>>()?;
        let order = same_fields_grouped(&fields, parts).then_some(HeaderOrder(fields));
        self.buf.drain(..pos + len);
        Some(RawHead {
            order,
            bare_lf,
            both_framings,
        })
    }
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

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        cap.push(&all, false, 8192);
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
    fn mismatch_falls_back() {
        let mut cap = HeadCapture::default();
        cap.push(
            b"GET /a HTTP/1.1\r\nA: 1\r\nB: 2\r\nA: 9\r\n\r\n",
            false,
            8192,
        );
        let parts = parse(b"GET /a HTTP/1.1\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\n");
        assert!(cap.inspect(&parts).order.is_none());
        let mut cap = HeadCapture::default();
        assert!(cap.inspect(&parts).order.is_none(), "nothing captured");
    }

    #[test]
    fn bare_lf_is_seen() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n";
        let mut cap = HeadCapture::default();
        cap.push(raw, false, 8192);
        assert!(cap.inspect(&parse(raw)).bare_lf);
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        cap.push(raw, false, 8192);
        assert!(!cap.inspect(&parse(raw)).bare_lf);
    }

    #[test]
    fn large_bodies_are_not_copied() {
        let mut cap = HeadCapture::default();
        for _ in 0..100 {
            cap.push(&[b'x'; 4096], true, 8192);
        }
        assert!(cap.buf.len() <= SERVING_CAP);
    }
}
