//! Proxy awareness: who the client is and which scheme it used, after the
//! `--forwarded-allow-ips` rules.
//!
//! Forwarding headers are believed only when the socket peer is a trusted
//! proxy; from anyone else they are ignored (left in the request for the
//! application to see, but not used). A Unix-socket peer is trusted, as in
//! Gunicorn: only local processes can reach it, typically the proxy.
//!
//! From a trusted peer, RFC 7239 `Forwarded` wins over the `X-Forwarded-*`
//! family when both are present, since it is the standard.
//!
//! # Scheme headers
//!
//! `X-Forwarded-Proto: https`, `X-Forwarded-Ssl: on` and
//! `X-Forwarded-Protocol: ssl` each say HTTPS (Gunicorn's default
//! `secure_scheme_headers`); any other value of one of them says HTTP.
//! When a trusted peer sends several that disagree, the request is refused
//! with 400, as Gunicorn does ("Contradictory scheme headers"): one of them
//! was not written by the proxy, and guessing which could hand a plain-HTTP
//! client a secure session.
//!
//! # Which entry names the client
//!
//! Each proxy appends the address it received the request from (Nginx's
//! `$proxy_add_x_forwarded_for`), so only the entries appended by trusted
//! proxies can be believed: whatever stands left of them came from the
//! client, which may write anything there. The client is therefore the
//! right-most entry that is not itself a trusted proxy (walking from the
//! right and skipping addresses in `--forwarded-allow-ips`), as Nginx's
//! `real_ip_recursive` does. When every entry is trusted (or with
//! `--forwarded-allow-ips '*'`) the left-most one is taken. The scheme of
//! a `Forwarded` list is taken from the same element, which a trusted
//! proxy wrote.
//!
//! Values that are not IP addresses (`unknown`, obfuscated identifiers)
//! are ignored rather than passed on as an address; the walk stops there,
//! since nothing left of an unknown hop can be believed.

use std::net::{IpAddr, SocketAddr};

use ferricorn_app_interface::Scheme;
use http::{HeaderMap, HeaderName};

use super::error::ProtocolError;
use crate::config::ForwardedAllowIps;

/// The client as the application should see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientFacts {
    pub remote_addr: String,
    pub remote_port: Option<u16>,
    pub scheme: Scheme,
}

/// What the proxy rules need of a connection's socket peer, worked out
/// once per connection rather than per request.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    addr: Option<SocketAddr>,
    /// The peer's IP as text (empty on a Unix socket).
    name: String,
    /// Whether its forwarding headers are believed.
    trusted: bool,
    /// The connection is TLS: the scheme is `https` unless a trusted
    /// proxy's headers say otherwise.
    secure: bool,
}

impl Peer {
    /// The socket peer `peer` (`None` on a Unix socket) under `allow`.
    pub fn new(peer: Option<SocketAddr>, allow: &ForwardedAllowIps) -> Peer {
        Peer {
            addr: peer,
            name: peer
                .map(|p| canonical(p.ip()).to_string())
                .unwrap_or_default(),
            trusted: peer.is_none_or(|p| allow.allows(p.ip())),
            secure: false,
        }
    }

    /// The same peer on a TLS connection.
    pub fn secure(mut self, secure: bool) -> Peer {
        self.secure = secure;
        self
    }
}

static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_SSL: HeaderName = HeaderName::from_static("x-forwarded-ssl");
static X_FORWARDED_PROTOCOL: HeaderName = HeaderName::from_static("x-forwarded-protocol");

/// Applies the proxy rules to a request from socket peer `peer` (`None` on
/// a Unix socket).
#[cfg(test)]
pub(crate) fn client_facts(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    allow: &ForwardedAllowIps,
) -> ClientFacts {
    facts_of(&Peer::new(peer, allow), headers, allow).expect("no contradictory scheme headers")
}

/// The client as the socket peer alone shows it, before any header is read.
pub(crate) fn peer_facts(peer: &Peer) -> ClientFacts {
    ClientFacts {
        remote_addr: peer.name.clone(),
        remote_port: peer.addr.map(|p| p.port()),
        scheme: if peer.secure {
            Scheme::Https
        } else {
            Scheme::Http
        },
    }
}

/// Applies the proxy rules to a request from `peer`. `Err`: a trusted
/// peer's scheme headers contradict each other (see the module docs).
pub(crate) fn facts_of(
    peer: &Peer,
    headers: &HeaderMap,
    allow: &ForwardedAllowIps,
) -> Result<ClientFacts, ProtocolError> {
    let mut facts = peer_facts(peer);
    // One pass over the names instead of five lookups, for the usual
    // request that carries no forwarding header.
    if !peer.trusted || !headers.keys().any(is_forwarding) {
        return Ok(facts);
    }
    // Checked even when `Forwarded` decides, as Gunicorn (which does not
    // read `Forwarded`) would.
    let x_scheme = x_forwarded_scheme(headers)?;
    if let Some(elements) = forwarded_elements(headers) {
        if let Some(element) = pick_client(&elements, allow, |e| e.node.as_deref()) {
            if let Some((ip, port)) = element.node.as_deref().and_then(parse_node) {
                facts.remote_addr = ip.to_string();
                facts.remote_port = port;
            }
            if let Some(s) = element.proto.as_deref().and_then(parse_scheme) {
                facts.scheme = s;
            }
        }
        return Ok(facts);
    }
    if let Some(xff) = list_items(headers, &X_FORWARDED_FOR) {
        let item = pick_client(&xff, allow, |i| Some(i.as_str()));
        if let Some((ip, port)) = item.map(String::as_str).and_then(parse_node) {
            facts.remote_addr = ip.to_string();
            facts.remote_port = port;
        }
    }
    if let Some(s) = x_scheme {
        facts.scheme = s;
    }
    Ok(facts)
}

/// The scheme the `X-Forwarded-Proto`, `X-Forwarded-Ssl` and
/// `X-Forwarded-Protocol` field lines say (see the module docs); `None`
/// without any, `Err` when they disagree. Of a list the first item counts:
/// what the proxy nearest the client saw.
fn x_forwarded_scheme(headers: &HeaderMap) -> Result<Option<Scheme>, ProtocolError> {
    let mut said = None;
    for (name, secure) in [
        (&X_FORWARDED_PROTO, "https"),
        (&X_FORWARDED_SSL, "on"),
        (&X_FORWARDED_PROTOCOL, "ssl"),
    ] {
        for value in headers.get_all(name) {
            let first = value
                .to_str()
                .unwrap_or_default()
                .split(',')
                .next()
                .unwrap_or_default()
                .trim();
            let scheme = if first.eq_ignore_ascii_case(secure) {
                Scheme::Https
            } else {
                Scheme::Http
            };
            match said {
                Some(earlier) if earlier != scheme => {
                    return Err(ProtocolError::ContradictorySchemeHeaders)
                }
                _ => said = Some(scheme),
            }
        }
    }
    Ok(said)
}

/// Whether `name` is one of the forwarding headers read here.
fn is_forwarding(name: &HeaderName) -> bool {
    *name == FORWARDED || name.as_str().starts_with("x-forwarded-")
}

/// An IPv4-mapped IPv6 address (from a dual-stack socket) shown as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_scheme(s: &str) -> Option<Scheme> {
    match s.trim().to_ascii_lowercase().as_str() {
        "https" => Some(Scheme::Https),
        "http" => Some(Scheme::Http),
        _ => None,
    }
}

/// The hop that names the client in a forwarding list (oldest first): the
/// right-most whose address is not a trusted proxy, else the left-most.
/// A hop without an IP address ends the walk: what is left of it cannot
/// be believed.
fn pick_client<'a, T>(
    hops: &'a [T],
    allow: &ForwardedAllowIps,
    node: impl Fn(&T) -> Option<&str>,
) -> Option<&'a T> {
    hops.iter()
        .rev()
        .find(|hop| match node(hop).and_then(parse_node) {
            Some((ip, _)) => !allow.allows(canonical(ip)),
            None => true,
        })
        .or(hops.first())
}

/// Every item of a comma-separated header, over all its field lines in
/// order; `None` when there is none, or a line is not text.
fn list_items(headers: &HeaderMap, name: &HeaderName) -> Option<Vec<String>> {
    let mut items = Vec::new();
    for value in headers.get_all(name) {
        items.extend(
            value
                .to_str()
                .ok()?
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_owned),
        );
    }
    (!items.is_empty()).then_some(items)
}

/// One element of a `Forwarded` list: its first `for` and its `proto`.
#[derive(Debug, Default)]
struct ForwardedElement {
    node: Option<String>,
    proto: Option<String>,
}

/// The elements of the `Forwarded` field lines, in order; `None` when
/// there is none.
fn forwarded_elements(headers: &HeaderMap) -> Option<Vec<ForwardedElement>> {
    let mut elements = Vec::new();
    for value in headers.get_all(&FORWARDED) {
        let Ok(value) = value.to_str() else { continue };
        for element in split_unquoted(value, ',') {
            let mut e = ForwardedElement::default();
            for pair in split_unquoted(&element, ';') {
                let Some((key, value)) = pair.split_once('=') else {
                    continue;
                };
                let value = unquote(value.trim());
                match key.trim().to_ascii_lowercase().as_str() {
                    "for" if e.node.is_none() => e.node = Some(value),
                    "proto" => e.proto = Some(value),
                    _ => {}
                }
            }
            elements.push(e);
        }
    }
    (!elements.is_empty()).then_some(elements)
}

/// Splits at `sep` outside double quotes.
fn split_unquoted(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c == sep && !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => s.to_owned(),
    }
}

/// A node: `IP`, `IP:PORT`, `[IPV6]`, `[IPV6]:PORT` or a bare IPv6.
fn parse_node(s: &str) -> Option<(IpAddr, Option<u16>)> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some((ip, None));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse().ok().map(|ip| (ip, None));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::parse_forwarded_allow_ips;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn facts(peer: Option<&str>, pairs: &[(&str, &str)]) -> ClientFacts {
        client_facts(
            peer.map(|p| p.parse().unwrap()),
            &headers(pairs),
            &ForwardedAllowIps::default(),
        )
    }

    fn facts_with(allow: &str, peer: &str, pairs: &[(&str, &str)]) -> ClientFacts {
        client_facts(
            Some(peer.parse().unwrap()),
            &headers(pairs),
            &parse_forwarded_allow_ips(allow).unwrap(),
        )
    }

    #[test]
    fn trusted_peer_x_forwarded() {
        let f = facts(
            Some("127.0.0.1:5000"),
            &[
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "https"),
            ],
        );
        assert_eq!(f.remote_addr, "203.0.113.9");
        assert_eq!(f.remote_port, None);
        assert_eq!(f.scheme, Scheme::Https);
    }

    /// What a client writes into `X-Forwarded-For` stands left of what the
    /// trusted proxies append, so the client is the right-most address that
    /// is not a trusted proxy; the left-most only when all are trusted.
    #[test]
    fn x_forwarded_for_takes_the_right_most_untrusted_address() {
        // Nginx with `$proxy_add_x_forwarded_for` under a forging client.
        let xff = |v| [("x-forwarded-for", v)];
        let f = facts(Some("127.0.0.1:1"), &xff("6.6.6.6, 203.0.113.9"));
        assert_eq!(f.remote_addr, "203.0.113.9", "the forged entry is skipped");
        // Before this rule, the left-most was taken.
        let f = facts(Some("127.0.0.1:1"), &xff("203.0.113.9, 10.0.0.1"));
        assert_eq!(f.remote_addr, "10.0.0.1", "10.0.0.1 is not trusted");
        // Two trusted proxies in a row.
        let allow = "127.0.0.1,10.0.0.0/8";
        let f = facts_with(allow, "127.0.0.1:1", &xff("6.6.6.6, 203.0.113.9, 10.1.2.3"));
        assert_eq!(f.remote_addr, "203.0.113.9");
        // Every entry trusted: the left-most.
        let f = facts_with(allow, "127.0.0.1:1", &xff("10.9.9.9, 127.0.0.1"));
        assert_eq!(f.remote_addr, "10.9.9.9");
        // '*' trusts every address, so the left-most, as Gunicorn does.
        let f = facts_with("*", "192.0.2.1:1", &xff("1.1.1.1, 2.2.2.2"));
        assert_eq!(f.remote_addr, "1.1.1.1");
        // A hop that is not an address ends the walk.
        let f = facts_with(allow, "127.0.0.1:1", &xff("1.2.3.4, unknown, 10.0.0.1"));
        assert_eq!(f.remote_addr, "127.0.0.1");
        // Repeated field lines are one list, in order.
        let f = facts(
            Some("127.0.0.1:1"),
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", "198.51.100.7:4711"),
            ],
        );
        assert_eq!(
            (f.remote_addr.as_str(), f.remote_port),
            ("198.51.100.7", Some(4711))
        );
    }

    #[test]
    fn untrusted_peer_is_ignored() {
        let f = facts(
            Some("192.0.2.1:5000"),
            &[
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "https"),
                ("forwarded", "for=1.2.3.4"),
            ],
        );
        assert_eq!(f.remote_addr, "192.0.2.1");
        assert_eq!(f.remote_port, Some(5000));
        assert_eq!(f.scheme, Scheme::Http);
    }

    #[test]
    fn unix_peer_is_trusted() {
        assert_eq!(facts(None, &[]).remote_addr, "");
        let f = facts(None, &[("x-forwarded-for", "198.51.100.7:4711")]);
        assert_eq!(f.remote_addr, "198.51.100.7");
        assert_eq!(f.remote_port, Some(4711));
    }

    #[test]
    fn rfc7239_forwarded() {
        let forwarded = (
            "forwarded",
            "for=\"[2001:db8::1]:4711\";proto=https;by=203.0.113.43, for=10.0.0.1",
        );
        let f = facts_with(
            "::1,10.0.0.1",
            "[::1]:1",
            &[forwarded, ("x-forwarded-for", "9.9.9.9")],
        );
        assert_eq!(f.remote_addr, "2001:db8::1");
        assert_eq!(f.remote_port, Some(4711));
        assert_eq!(f.scheme, Scheme::Https);
        let f = facts(
            Some("127.0.0.1:1"),
            &[("forwarded", "For=unknown;proto=http")],
        );
        assert_eq!(
            f.remote_addr, "127.0.0.1",
            "non-IP identifiers are not addresses"
        );
    }

    /// The same right-most rule for `Forwarded`, with the scheme of the
    /// element it picks (written by a trusted proxy).
    #[test]
    fn forwarded_takes_the_right_most_untrusted_element() {
        let f = facts(
            Some("127.0.0.1:1"),
            &[(
                "forwarded",
                "for=\"[2001:db8::1]:4711\";proto=https, for=10.0.0.1;proto=http",
            )],
        );
        assert_eq!((f.remote_addr.as_str(), f.remote_port), ("10.0.0.1", None));
        assert_eq!(f.scheme, Scheme::Http);
        // A forged element left of the proxy's, over two field lines.
        let f = facts(
            Some("127.0.0.1:1"),
            &[
                ("forwarded", "for=6.6.6.6;proto=http"),
                ("forwarded", "for=198.51.100.1;proto=https"),
            ],
        );
        assert_eq!(f.remote_addr, "198.51.100.1");
        assert_eq!(f.scheme, Scheme::Https);
        // All trusted: the left-most.
        let f = facts(
            Some("127.0.0.1:1"),
            &[("forwarded", "for=127.0.0.1;proto=https, for=\"[::1]\"")],
        );
        assert_eq!(f.remote_addr, "127.0.0.1");
        assert_eq!(f.scheme, Scheme::Https);
        // An unknown hop ends the walk; its element's scheme still counts.
        let f = facts(
            Some("127.0.0.1:1"),
            &[("forwarded", "for=1.2.3.4, for=_hidden;proto=https")],
        );
        assert_eq!(f.remote_addr, "127.0.0.1");
        assert_eq!(f.scheme, Scheme::Https);
    }

    #[test]
    fn junk_values_are_ignored() {
        let f = facts(
            Some("127.0.0.1:1"),
            &[
                ("x-forwarded-for", "not-an-ip"),
                ("x-forwarded-proto", "gopher"),
            ],
        );
        assert_eq!(f.remote_addr, "127.0.0.1");
        assert_eq!(f.scheme, Scheme::Http);
        let f = facts(Some("127.0.0.1:1"), &[("x-forwarded-ssl", "on")]);
        assert_eq!(f.scheme, Scheme::Https);
    }

    /// Gunicorn's `InvalidSchemeHeaders`: a trusted peer's scheme headers
    /// must agree; an untrusted peer's are not read at all.
    #[test]
    fn contradictory_scheme_headers_are_refused() {
        let allow = ForwardedAllowIps::default();
        let run = |peer: &str, pairs: &[(&str, &str)]| {
            facts_of(
                &Peer::new(Some(peer.parse().unwrap()), &allow),
                &headers(pairs),
                &allow,
            )
        };
        let local = "127.0.0.1:1";
        for pairs in [
            &[("x-forwarded-proto", "https"), ("x-forwarded-ssl", "off")][..],
            &[("x-forwarded-proto", "http"), ("x-forwarded-ssl", "on")],
            &[
                ("x-forwarded-protocol", "ssl"),
                ("x-forwarded-proto", "http"),
            ],
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-proto", "http"),
            ],
            &[("x-forwarded-proto", "gopher"), ("x-forwarded-ssl", "on")],
        ] {
            assert_eq!(
                run(local, pairs),
                Err(ProtocolError::ContradictorySchemeHeaders),
                "{pairs:?}"
            );
        }
        let agree = [
            ("x-forwarded-proto", "https"),
            ("x-forwarded-ssl", "on"),
            ("x-forwarded-protocol", "ssl"),
        ];
        assert_eq!(run(local, &agree).unwrap().scheme, Scheme::Https);
        let agree = [("x-forwarded-proto", "http"), ("x-forwarded-ssl", "off")];
        assert_eq!(run(local, &agree).unwrap().scheme, Scheme::Http);
        let f = run(
            "192.0.2.1:1",
            &[("x-forwarded-proto", "https"), ("x-forwarded-ssl", "off")],
        );
        assert_eq!(f.unwrap().scheme, Scheme::Http, "untrusted: not read");
        // Forwarded still decides, but the contradiction is refused anyway.
        let f = run(
            local,
            &[
                ("forwarded", "for=1.2.3.4;proto=https"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-ssl", "off"),
            ],
        );
        assert_eq!(f, Err(ProtocolError::ContradictorySchemeHeaders));
    }

    #[test]
    fn mapped_v4_peer_and_star() {
        let all = parse_forwarded_allow_ips("*").unwrap();
        let f = client_facts(
            Some("[::ffff:8.8.8.8]:1".parse().unwrap()),
            &headers(&[("x-forwarded-for", "1.1.1.1")]),
            &all,
        );
        assert_eq!(f.remote_addr, "1.1.1.1");
        let f = client_facts(
            Some("[::ffff:127.0.0.1]:1".parse().unwrap()),
            &HeaderMap::new(),
            &ForwardedAllowIps::default(),
        );
        assert_eq!(f.remote_addr, "127.0.0.1");
    }
}
