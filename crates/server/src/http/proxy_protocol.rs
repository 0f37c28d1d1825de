//! The PROXY protocol (HAProxy's, v1 text and v2 binary) at the start of a
//! connection: `--proxy-protocol` and `--proxy-allow-from`.
//!
//! A load balancer that forwards TCP rather than HTTP (HAProxy's
//! `send-proxy`, AWS's network load balancers, stunnel) cannot add
//! `X-Forwarded-For`; it writes one header before the client's bytes
//! instead, naming the client's address. It is read here, before hyper sees
//! the stream, and the address it names becomes the connection's client:
//! `ConnectionInfo::remote_addr` and `remote_port`, the access log's
//! `%(h)s`, and the peer that `--forwarded-allow-ips` is checked against
//! (the balancer is transparent, so forwarding headers are believed only
//! when the client it names is trusted). `ConnectionInfo::socket_peer`
//! stays the socket's peer, the balancer.
//!
//! As in Gunicorn: the header is optional in every mode (a connection that
//! does not begin with one is served as it is, so turning this on breaks no
//! direct client); only peers in `--proxy-allow-from` may send one (a
//! Unix-socket peer always may), others are answered 403; a malformed
//! header is answered 400; both close the connection. Where the
//! specification asks a receiver to accept a header that Gunicorn refuses
//! (v1 `UNKNOWN`, v2 `UNSPEC` and `UNIX` addresses), it is accepted, and the
//! socket's peer stands.
//!
//! The read is bounded in time by `--header-timeout` from accept, and in
//! size: a v1 line by the specification's 107 bytes, a v2 header by
//! [`V2_MAX`]. Bytes read past the header reach hyper first, through
//! [`Rewind`].

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use super::conn::{self, Phase};
use super::error::ProtocolError;
use super::HttpSettings;
use crate::config::{ForwardedAllowIps, ProxyProtocol};
use crate::logging;

/// The longest v1 header, CRLF included (the specification's bound).
const V1_MAX: usize = 107;

/// The longest v2 header accepted: the fixed 16 bytes and 4 KiB of
/// addresses and TLVs (the addresses take at most 216; TLVs such as AWS's
/// endpoint id or HAProxy's TLS details are far below the rest).
pub(crate) const V2_MAX: usize = 16 + 4096;

/// The v2 signature.
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The v1 prefix.
const V1_SIG: &[u8; 6] = b"PROXY ";

/// Takes the PROXY header off a new connection when `--proxy-protocol`
/// asks for one. Returns the stream (replaying the bytes read past the
/// header) and the client address the header named, if it named one;
/// `None` when the connection was refused (answered and closed), closed
/// by the peer, timed out, or the worker stopped.
pub(crate) async fn accept<S>(
    mut stream: S,
    peer: Option<SocketAddr>,
    settings: &HttpSettings,
    phase: &mut watch::Receiver<Phase>,
) -> Option<(Rewind<S>, Option<SocketAddr>)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mode = settings.proxy_protocol;
    if mode == ProxyProtocol::Off {
        return Some((Rewind::new(stream, Vec::new()), None));
    }
    let peer_name = || peer.map_or_else(|| "a Unix socket".to_owned(), |p| p.to_string());
    let read = read_header(&mut stream, mode, peer, &settings.proxy_allow);
    let limited = async {
        match settings.timeouts.header {
            Some(limit) => tokio::time::timeout(limit, read).await.ok(),
            None => Some(read.await),
        }
    };
    let outcome = tokio::select! {
        outcome = limited => outcome,
        _ = phase.wait_for(|p| *p == Phase::Stopped) => return None,
    };
    match outcome {
        Some(Outcome::Serve { client, rest }) => Some((Rewind::new(stream, rest), client)),
        Some(Outcome::Refuse(err)) => {
            crate::metrics::server().rejected(crate::metrics::Rejection::ProxyRefused);
            if logging::enabled(crate::config::LogLevel::Debug) {
                logging::debug(&format!("Refused connection from {}: {err}", peer_name()));
            }
            refuse(stream, &err, phase).await;
            None
        }
        Some(Outcome::Closed) => None,
        None => {
            crate::metrics::server().rejected(crate::metrics::Rejection::HeaderTimeout);
            if logging::enabled(crate::config::LogLevel::Debug) {
                logging::debug(&format!(
                    "Closing connection from {}: no complete request head within --header-timeout",
                    peer_name()
                ));
            }
            None
        }
    }
}

/// Answers a refused header as Gunicorn does (400 or 403, and close), then
/// closes without resetting the answer away (see `conn`'s lingering close).
async fn refuse<S>(mut stream: S, err: &ProtocolError, phase: &mut watch::Receiver<Phase>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let status = err
        .response()
        .map_or(http::StatusCode::BAD_REQUEST, |(status, _)| status);
    let answer = format!(
        "HTTP/1.1 {} {}\r\nServer: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        super::service::SERVER_NAME,
    );
    if stream.write_all(answer.as_bytes()).await.is_ok() && stream.shutdown().await.is_ok() {
        conn::linger(&mut stream, phase).await;
    }
}

/// What the start of a connection came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Serve it: the client address the header named (if it had one and
    /// named one) and the bytes read past the header.
    Serve {
        client: Option<SocketAddr>,
        rest: Vec<u8>,
    },
    /// Answer this and close.
    Refuse(ProtocolError),
    /// The peer closed or failed inside a header: nothing to answer.
    Closed,
}

/// Reads until the start of the stream is known to be no PROXY header, or
/// a whole one has been read.
async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    mode: ProxyProtocol,
    peer: Option<SocketAddr>,
    allow: &ForwardedAllowIps,
) -> Outcome {
    let mut buf = Vec::with_capacity(512);
    loop {
        let start = classify(&buf, mode);
        let parsed = match start {
            Start::Plain => {
                return Outcome::Serve {
                    client: None,
                    rest: buf,
                }
            }
            Start::NeedMore => Parsed::NeedMore,
            Start::V1 | Start::V2 => {
                if !peer.is_none_or(|p| allow.allows(p.ip())) {
                    return Outcome::Refuse(ProtocolError::ForbiddenProxyHeader);
                }
                let parsed = if start == Start::V1 {
                    parse_v1(&buf)
                } else {
                    parse_v2(&buf)
                };
                match parsed {
                    Ok(parsed) => parsed,
                    Err(why) => return Outcome::Refuse(ProtocolError::InvalidProxyHeader(why)),
                }
            }
        };
        if let Parsed::Done { len, client } = parsed {
            buf.drain(..len);
            return Outcome::Serve { client, rest: buf };
        }
        buf.reserve(512);
        match stream.read_buf(&mut buf).await {
            // Before a header is recognised, the end of the stream is
            // hyper's to see (a client that sent part of a request).
            Ok(0) if start == Start::NeedMore => {
                return Outcome::Serve {
                    client: None,
                    rest: buf,
                }
            }
            Ok(0) | Err(_) => return Outcome::Closed,
            Ok(_) => {}
        }
    }
}

/// What the first bytes of a connection are, as far as they tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// Too few bytes to tell.
    NeedMore,
    /// No PROXY header (of the kinds `mode` accepts).
    Plain,
    /// A v1 header.
    V1,
    /// A v2 header.
    V2,
}

fn classify(buf: &[u8], mode: ProxyProtocol) -> Start {
    let could_be = |sig: &[u8]| {
        let n = buf.len().min(sig.len());
        buf[..n] == sig[..n]
    };
    let v1 = matches!(mode, ProxyProtocol::V1 | ProxyProtocol::Auto) && could_be(V1_SIG);
    let v2 = matches!(mode, ProxyProtocol::V2 | ProxyProtocol::Auto) && could_be(V2_SIG);
    // The two signatures differ in their first byte.
    match (v1, v2) {
        (false, false) => Start::Plain,
        (true, _) if buf.len() >= V1_SIG.len() => Start::V1,
        (_, true) if buf.len() >= V2_SIG.len() => Start::V2,
        _ => Start::NeedMore,
    }
}

/// A header read so far.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    NeedMore,
    /// Complete, `len` bytes long; the client address it names, if any.
    Done {
        len: usize,
        client: Option<SocketAddr>,
    },
}

/// `PROXY TCP4|TCP6 SRC DST SRCPORT DSTPORT\r\n`, or `PROXY UNKNOWN ...\r\n`.
fn parse_v1(buf: &[u8]) -> Result<Parsed, &'static str> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err("a v1 line longer than 107 bytes")
        } else {
            Ok(Parsed::NeedMore)
        };
    };
    let len = end + 2;
    if len > V1_MAX {
        return Err("a v1 line longer than 107 bytes");
    }
    let line =
        std::str::from_utf8(&buf[V1_SIG.len()..end]).map_err(|_| "a v1 line that is not text")?;
    let mut fields = line.split(' ');
    let family = fields.next().unwrap_or_default();
    if family == "UNKNOWN" {
        // The specification: the rest of the line is to be ignored.
        return Ok(Parsed::Done { len, client: None });
    }
    let v6 = match family {
        "TCP4" => false,
        "TCP6" => true,
        _ => return Err("a v1 protocol other than TCP4, TCP6 or UNKNOWN"),
    };
    let (Some(src), Some(dst), Some(src_port), Some(dst_port), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err("a v1 line without exactly two addresses and two ports");
    };
    let ip = |text: &str| -> Result<IpAddr, &'static str> {
        let ip: IpAddr = text
            .parse()
            .map_err(|_| "a v1 address that is not an IP address")?;
        if ip.is_ipv6() == v6 {
            Ok(ip)
        } else {
            Err("a v1 address of the other family")
        }
    };
    let src = ip(src)?;
    ip(dst)?;
    let src_port = port(src_port)?;
    port(dst_port)?;
    Ok(Parsed::Done {
        len,
        client: Some(SocketAddr::new(src, src_port)),
    })
}

fn port(text: &str) -> Result<u16, &'static str> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a v1 port that is not a number from 0 to 65535");
    }
    text.parse()
        .map_err(|_| "a v1 port that is not a number from 0 to 65535")
}

/// The binary header: the signature, version and command, family and
/// transport, the length of what follows, then the addresses and TLVs.
fn parse_v2(buf: &[u8]) -> Result<Parsed, &'static str> {
    if buf.len() < 16 {
        return Ok(Parsed::NeedMore);
    }
    if buf[12] >> 4 != 2 {
        return Err("a v2 header of another version");
    }
    let local = match buf[12] & 0x0f {
        0 => true,
        1 => false,
        _ => return Err("a v2 command other than LOCAL or PROXY"),
    };
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > V2_MAX {
        return Err("a v2 header longer than 4 KiB");
    }
    if buf.len() < len {
        return Ok(Parsed::NeedMore);
    }
    if local {
        // The proxy's own connection (a health check): no client to name.
        return Ok(Parsed::Done { len, client: None });
    }
    let addrs = &buf[16..len];
    let be16 = |at: usize| u16::from_be_bytes([addrs[at], addrs[at + 1]]);
    let client = match (buf[13] >> 4, buf[13] & 0x0f) {
        // UNSPEC: the specification says to use the socket's addresses.
        (0, _) => None,
        (1, 1) => {
            if addrs.len() < 12 {
                return Err("a v2 header too short for IPv4 addresses");
            }
            let ip = Ipv4Addr::from([addrs[0], addrs[1], addrs[2], addrs[3]]);
            Some(SocketAddr::new(IpAddr::V4(ip), be16(8)))
        }
        (2, 1) => {
            if addrs.len() < 36 {
                return Err("a v2 header too short for IPv6 addresses");
            }
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&addrs[..16]);
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                be16(32),
            ))
        }
        // A Unix-socket client has no IP address to name.
        (3, 1) => None,
        (1..=3, _) => return Err("a v2 transport other than a stream (TCP)"),
        _ => return Err("a v2 address family other than UNSPEC, INET, INET6 or UNIX"),
    };
    Ok(Parsed::Done { len, client })
}

/// A stream that yields `prefix` before its own bytes: what was read past
/// a PROXY header. Without one the prefix is empty and costs a comparison
/// per read.
pub(crate) struct Rewind<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Rewind<S> {
    pub fn new(inner: S, prefix: Vec<u8>) -> Rewind<S> {
        Rewind {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = (self.prefix.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

forward_async_write!(Rewind);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::parse_forwarded_allow_ips;

    fn v2(cmd: u8, fam: u8, addrs: &[u8]) -> Vec<u8> {
        let mut out = V2_SIG.to_vec();
        out.push(0x20 | cmd);
        out.push(fam);
        out.extend_from_slice(&u16::try_from(addrs.len()).unwrap().to_be_bytes());
        out.extend_from_slice(addrs);
        out
    }

    /// The whole header and what follows, read by `read_header` from a
    /// stream that delivers `step` bytes at a time.
    fn read(bytes: &[u8], mode: ProxyProtocol, peer: &str, step: usize) -> Outcome {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let bytes = bytes.to_vec();
        rt.block_on(async move {
            // Ends the stream when done: a header cut short needs the EOF.
            let writer = tokio::spawn(async move {
                for piece in bytes.chunks(step.max(1)) {
                    client.write_all(piece).await.unwrap();
                    tokio::task::yield_now().await;
                }
            });
            let allow = ForwardedAllowIps::default();
            let outcome = read_header(&mut server, mode, Some(peer.parse().unwrap()), &allow).await;
            writer.await.unwrap();
            outcome
        })
    }

    fn served(outcome: Outcome) -> (Option<SocketAddr>, Vec<u8>) {
        match outcome {
            Outcome::Serve { client, rest } => (client, rest),
            other => panic!("not served: {other:?}"),
        }
    }

    const LOCAL: &str = "127.0.0.1:9";
    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\n\r\n";

    #[test]
    fn v1_in_any_pieces() {
        let bytes = [
            &b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"[..],
            REQUEST,
        ]
        .concat();
        for step in [1, 2, 5, 7, 1000] {
            let (client, rest) = served(read(&bytes, ProxyProtocol::Auto, LOCAL, step));
            assert_eq!(
                client,
                Some("192.168.0.1:56324".parse().unwrap()),
                "step {step}"
            );
            // What was read past the header is handed on, whole or in part.
            assert!(REQUEST.starts_with(&rest), "step {step}: {rest:?}");
        }
        let bytes = b"PROXY TCP6 2001:db8::1 2001:db8::2 4711 443\r\n";
        let (client, _) = served(read(bytes, ProxyProtocol::V1, LOCAL, 1000));
        assert_eq!(client, Some("[2001:db8::1]:4711".parse().unwrap()));
        let (client, _) = served(read(b"PROXY UNKNOWN\r\n", ProxyProtocol::V1, LOCAL, 1000));
        assert_eq!(client, None);
    }

    #[test]
    fn v2_in_any_pieces() {
        let v4 = v2(
            1,
            0x11,
            &[192, 168, 1, 10, 192, 168, 1, 1, 0x30, 0x39, 1, 0xbb],
        );
        let bytes = [&v4[..], REQUEST].concat();
        for step in [1, 3, 13, 1000] {
            let (client, rest) = served(read(&bytes, ProxyProtocol::Auto, LOCAL, step));
            assert_eq!(
                client,
                Some("192.168.1.10:12345".parse().unwrap()),
                "step {step}"
            );
            assert!(REQUEST.starts_with(&rest), "step {step}");
        }
        let mut addrs = vec![0u8; 36];
        addrs[0] = 0x20;
        addrs[1] = 0x01;
        addrs[15] = 1;
        addrs[32..34].copy_from_slice(&4711u16.to_be_bytes());
        // TLVs after the addresses are skipped.
        addrs.extend_from_slice(&[0x04, 0, 1, 0]);
        let (client, rest) = served(read(
            &[&v2(1, 0x21, &addrs)[..], REQUEST].concat(),
            ProxyProtocol::V2,
            LOCAL,
            1000,
        ));
        assert_eq!(client, Some("[2001::1]:4711".parse().unwrap()));
        assert_eq!(rest, REQUEST);
        // LOCAL, UNSPEC and UNIX name no client.
        for header in [v2(0, 0x00, &[]), v2(1, 0x00, &[]), v2(1, 0x31, &[0; 216])] {
            assert_eq!(
                served(read(&header, ProxyProtocol::V2, LOCAL, 1000)).0,
                None
            );
        }
    }

    #[test]
    fn no_header_is_served_as_it_is() {
        for (bytes, mode) in [
            (REQUEST, ProxyProtocol::Auto),
            (&b"\r\nGET / HTTP/1.1\r\n\r\n"[..], ProxyProtocol::Auto),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\n", ProxyProtocol::V2),
            (&v2(1, 0x00, &[]), ProxyProtocol::V1),
        ] {
            // As soon as the bytes cannot be a header, they are handed on.
            let (client, rest) = served(read(bytes, mode, LOCAL, 1));
            assert!(client.is_none() && !rest.is_empty() && bytes.starts_with(&rest));
            assert_eq!(
                served(read(bytes, mode, LOCAL, 1000)),
                (None, bytes.to_vec())
            );
        }
        // The end of the stream before anything is recognised is hyper's.
        assert_eq!(
            served(read(b"PROX", ProxyProtocol::Auto, LOCAL, 1)),
            (None, b"PROX".to_vec())
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bytes in [
            &b"PROXY TCP4 192.168.0.1 192.16...\r\n"[..],
            b"PROXY TCP4 192.168.0.1 192.168.0.11 65iii 100000\r\n",
            b"PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 65536\r\n",
            b"PROXY TCP4 2001:db8::1 192.168.0.11 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
            b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
            &[&b"PROXY TCP4 "[..], &[b'1'; 200]].concat(),
            &v2(2, 0x11, &[0; 12]),
            &v2(1, 0x11, &[0; 11]),
            &v2(1, 0x21, &[0; 35]),
            &v2(1, 0x12, &[0; 12]),
            &v2(1, 0x41, &[0; 12]),
            &v2(1, 0x11, &[0; V2_MAX]),
        ] {
            assert!(
                matches!(
                    read(bytes, ProxyProtocol::Auto, LOCAL, 1000),
                    Outcome::Refuse(ProtocolError::InvalidProxyHeader(_))
                ),
                "{bytes:?}"
            );
        }
        let mut other_version = v2(1, 0x11, &[0; 12]);
        other_version[12] = 0x11;
        assert!(matches!(
            read(&other_version, ProxyProtocol::Auto, LOCAL, 1000),
            Outcome::Refuse(ProtocolError::InvalidProxyHeader(_))
        ));
        // Cut off inside the header: nothing to answer.
        assert_eq!(
            read(b"PROXY TCP4 1.2.3.4", ProxyProtocol::Auto, LOCAL, 1000),
            Outcome::Closed
        );
    }

    #[test]
    fn only_allowed_peers_may_send_one() {
        let bytes = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
        assert_eq!(
            read(bytes, ProxyProtocol::Auto, "192.0.2.1:9", 1000),
            Outcome::Refuse(ProtocolError::ForbiddenProxyHeader)
        );
        // Without a header, any peer is served.
        assert!(matches!(
            read(REQUEST, ProxyProtocol::Auto, "192.0.2.1:9", 1000),
            Outcome::Serve { .. }
        ));
        // The list is `--proxy-allow-from`'s, networks and '*' included.
        let allow = parse_forwarded_allow_ips("192.0.2.0/24").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let outcome = rt.block_on(read_header(
            &mut &bytes[..],
            ProxyProtocol::Auto,
            Some("192.0.2.1:9".parse().unwrap()),
            &allow,
        ));
        assert!(matches!(
            outcome,
            Outcome::Serve {
                client: Some(_),
                ..
            }
        ));
        // A Unix-socket peer always may.
        let outcome = rt.block_on(read_header(
            &mut &bytes[..],
            ProxyProtocol::Auto,
            None,
            &ForwardedAllowIps::List(Vec::new()),
        ));
        assert!(matches!(
            outcome,
            Outcome::Serve {
                client: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn rewind_replays_its_prefix_first() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (mut a, b) = tokio::io::duplex(1024);
        let mut r = Rewind::new(b, b"abc".to_vec());
        let out = rt.block_on(async move {
            a.write_all(b"def").await.unwrap();
            drop(a);
            let mut out = Vec::new();
            r.read_to_end(&mut out).await.unwrap();
            out
        });
        assert_eq!(out, b"abcdef");
    }
}
