//! Proxy awareness: who the client is and which scheme it used, after the
//! `--forwarded-allow-ips` rules.
//!
//! Forwarding headers are believed only when the socket peer is a trusted
//! proxy; from anyone else they are ignored (left in the request for the
//! application to see, but not used). A Unix-socket peer is trusted, as in
//! Gunicorn: only local processes can reach it, typically the proxy.
//!
//! From a trusted peer, RFC 7239 `Forwarded` wins over the `X-Forwarded-*`
//! family when both are present, since it is the standard. In either, the
//! first (left-most) entry names the original client. Values that are not
//! IP addresses (`unknown`, obfuscated identifiers) are ignored rather than
//! passed on as an address.

use std::net::{IpAddr, SocketAddr};

use ferricorn_app_interface::Scheme;
use http::HeaderMap;

use crate::config::ForwardedAllowIps;

/// The client as the application should see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientFacts {
    pub remote_addr: String,
    pub remote_port: Option<u16>,
    pub scheme: Scheme,
}

/// Applies the proxy rules to a request from socket peer `peer` (`None` on
/// a Unix socket).
pub(crate) fn client_facts(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    allow: &ForwardedAllowIps,
) -> ClientFacts {
    let mut facts = ClientFacts {
        remote_addr: peer
            .map(|p| canonical(p.ip()).to_string())
            .unwrap_or_default(),
        remote_port: peer.map(|p| p.port()),
        scheme: Scheme::Http,
    };
    let trusted = match peer {
        None => true,
        Some(p) => allow.allows(p.ip()),
    };
    if !trusted {
        return facts;
    }
    if let Some(first) = first_forwarded_element(headers) {
        let mut for_seen = false;
        for pair in split_unquoted(&first, ';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let value = unquote(value.trim());
            match key.trim().to_ascii_lowercase().as_str() {
                "for" if !for_seen => {
                    for_seen = true;
                    if let Some((ip, port)) = parse_node(&value) {
                        facts.remote_addr = ip.to_string();
                        facts.remote_port = port;
                    }
                }
                "proto" => {
                    if let Some(s) = parse_scheme(&value) {
                        facts.scheme = s;
                    }
                }
                _ => {}
            }
        }
        return facts;
    }
    if let Some(xff) = first_list_item(headers, "x-forwarded-for") {
        if let Some((ip, port)) = parse_node(&xff) {
            facts.remote_addr = ip.to_string();
            facts.remote_port = port;
        }
    }
    if let Some(proto) = first_list_item(headers, "x-forwarded-proto") {
        if let Some(s) = parse_scheme(&proto) {
            facts.scheme = s;
        }
    } else if header_is(headers, "x-forwarded-ssl", "on")
        || header_is(headers, "x-forwarded-protocol", "ssl")
    {
        facts.scheme = Scheme::Https;
    }
    facts
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

fn header_is(headers: &HeaderMap, name: &str, want: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

/// The first item of a comma-separated header that may be repeated.
fn first_list_item(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    (!first.is_empty()).then(|| first.to_owned())
}

fn first_forwarded_element(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("forwarded")?.to_str().ok()?;
    split_unquoted(value, ',')
        .into_iter()
        .next()
        .map(|s| s.trim().to_owned())
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

    #[test]
    fn trusted_peer_x_forwarded() {
        let f = facts(
            Some("127.0.0.1:5000"),
            &[
                ("x-forwarded-for", "203.0.113.9, 10.0.0.1"),
                ("x-forwarded-proto", "https"),
            ],
        );
        assert_eq!(f.remote_addr, "203.0.113.9");
        assert_eq!(f.remote_port, None);
        assert_eq!(f.scheme, Scheme::Https);
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
        let f = facts(
            Some("[::1]:1"),
            &[
                (
                    "forwarded",
                    "for=\"[2001:db8::1]:4711\";proto=https;by=203.0.113.43, for=10.0.0.1",
                ),
                ("x-forwarded-for", "9.9.9.9"),
            ],
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
