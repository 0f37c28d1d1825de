//! The value types of settings and the parsers that read them from text.
//!
//! One parser per kind of value, shared by the command line (as clap value
//! parsers), the environment and the TOML file, so a value means the same
//! thing wherever it is written. A parser's error is the "what is allowed"
//! half of the message; the caller adds which flag, variable or key it was.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The port Gunicorn binds when an address names none.
pub const DEFAULT_PORT: u16 = 8000;

/// Where to listen: a TCP address or a Unix socket path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BindAddr {
    /// `HOST:PORT`, `[V6]:PORT` or `HOST` (port 8000). Port 0 asks the
    /// kernel for a free port.
    Tcp(SocketAddr),
    /// `unix:PATH`.
    Unix(PathBuf),
}

impl fmt::Display for BindAddr {
    /// The spelling `--bind` accepts, so printed configs parse again.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddr::Tcp(addr) => write!(f, "{addr}"),
            BindAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl FromStr for BindAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_bind(s)
    }
}

const BIND_HELP: &str = "expected HOST:PORT, [IPV6]:PORT, HOST or unix:PATH";

/// `--statsd-host`: `HOST:PORT` (resolved when a worker starts).
pub fn parse_statsd_host(s: &str) -> Result<String, String> {
    let s = s.trim();
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(s.to_owned())
        }
        _ => Err("expected HOST:PORT, e.g. 127.0.0.1:8125".into()),
    }
}

/// Parses a `--bind` value. Host names are resolved now (the first address
/// wins), so a typo fails at start-up rather than at bind time.
pub fn parse_bind(s: &str) -> Result<BindAddr, String> {
    let s = s.trim();
    if let Some(path) = s.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(BIND_HELP.into());
        }
        return Ok(BindAddr::Unix(PathBuf::from(path)));
    }
    if s.is_empty() {
        return Err(BIND_HELP.into());
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(BindAddr::Tcp(addr));
    }
    // A bare IP (v4, v6 with or without brackets): Gunicorn's default port.
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(BindAddr::Tcp(SocketAddr::new(ip, DEFAULT_PORT)));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("{BIND_HELP} (bad port '{port}')"))?;
            (host, port)
        }
        None => (s, DEFAULT_PORT),
    };
    if host.is_empty() || host.contains(['[', ']', '/', ' ']) {
        return Err(BIND_HELP.into());
    }
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host '{host}': {e}"))?;
    addrs
        .next()
        .map(BindAddr::Tcp)
        .ok_or_else(|| format!("host '{host}' has no address"))
}

/// An IP network in `--forwarded-allow-ips`: one address or a CIDR block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` is inside this network. An IPv4-mapped IPv6 peer
    /// (`::ffff:127.0.0.1`, what a dual-stack socket reports) matches the
    /// IPv4 network it maps to.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not an IP address or CIDR network");
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = ip.parse().map_err(|_| bad())?;
        let full = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= full)
                .ok_or_else(bad)?,
            None => full,
        };
        Ok(IpNet { addr, prefix })
    }
}

/// Which socket peers may set the client address and scheme through
/// `X-Forwarded-*` and `Forwarded` headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardedAllowIps {
    /// `*`: every peer (only behind a proxy that strips these headers).
    All,
    /// These addresses and networks.
    List(Vec<IpNet>),
}

impl ForwardedAllowIps {
    /// Whether headers from this socket peer are believed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        match self {
            ForwardedAllowIps::All => true,
            ForwardedAllowIps::List(nets) => nets.iter().any(|n| n.contains(ip)),
        }
    }
}

impl Default for ForwardedAllowIps {
    fn default() -> Self {
        parse_forwarded_allow_ips("127.0.0.1,::1").expect("valid default")
    }
}

impl fmt::Display for ForwardedAllowIps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardedAllowIps::All => f.write_str("*"),
            ForwardedAllowIps::List(nets) => {
                for (i, n) in nets.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{n}")?;
                }
                Ok(())
            }
        }
    }
}

/// Parses `--forwarded-allow-ips`: `*`, or a comma-separated list of IP
/// addresses and CIDR networks (an empty list trusts nobody).
pub fn parse_forwarded_allow_ips(s: &str) -> Result<ForwardedAllowIps, String> {
    let s = s.trim();
    if s == "*" {
        return Ok(ForwardedAllowIps::All);
    }
    let nets = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>().map_err(|e| {
                format!("expected '*' or a comma-separated list of IP addresses and networks: {e}")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ForwardedAllowIps::List(nets))
}

/// What happens to a request header field whose name contains `_`
/// (`--header-map`, Gunicorn's setting of that name).
///
/// Such names are valid tokens, but WSGI-style environments (our
/// [`environ()`](ferricorn_app_interface::environ()) among them) map `-` to
/// `_`, so `X_Forwarded_For` and `X-Forwarded-For` would land on one key
/// and an application could not tell which it read. Nginx ignores such
/// fields by default (`underscores_in_headers off`) for the same reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HeaderMapMode {
    /// Remove the field before the application sees it (Gunicorn's
    /// default). It still counts against the field limits.
    #[default]
    Drop,
    /// Refuse the request with 400.
    Refuse,
    /// Pass the field to the application as sent.
    Dangerous,
}

impl HeaderMapMode {
    /// The spelling `--header-map` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderMapMode::Drop => "drop",
            HeaderMapMode::Refuse => "refuse",
            HeaderMapMode::Dangerous => "dangerous",
        }
    }
}

impl fmt::Display for HeaderMapMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `--header-map`.
pub fn parse_header_map(s: &str) -> Result<HeaderMapMode, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "drop" => Ok(HeaderMapMode::Drop),
        "refuse" => Ok(HeaderMapMode::Refuse),
        "dangerous" => Ok(HeaderMapMode::Dangerous),
        _ => Err("expected one of drop, refuse, dangerous".into()),
    }
}

/// Which PROXY protocol headers a connection may begin with
/// (`--proxy-protocol`, Gunicorn's setting of that name).
///
/// In every mode but `off` the header is optional, as in Gunicorn: a
/// connection that does not begin with one is served as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProxyProtocol {
    /// No PROXY header is looked for.
    #[default]
    Off,
    /// The text header (`PROXY TCP4 ...\r\n`).
    V1,
    /// The binary header.
    V2,
    /// Either.
    Auto,
}

impl ProxyProtocol {
    /// The spelling `--proxy-protocol` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyProtocol::Off => "off",
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
            ProxyProtocol::Auto => "auto",
        }
    }
}

impl fmt::Display for ProxyProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `--proxy-protocol`: `off`, `v1`, `v2` or `auto`, and the other
/// spellings Gunicorn accepts (`true`/`1` for auto, `false`/`0`/`none`
/// for off).
pub fn parse_proxy_protocol(s: &str) -> Result<ProxyProtocol, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" | "false" | "0" | "none" => Ok(ProxyProtocol::Off),
        "v1" => Ok(ProxyProtocol::V1),
        "v2" => Ok(ProxyProtocol::V2),
        "auto" | "true" | "1" => Ok(ProxyProtocol::Auto),
        _ => Err("expected one of off, v1, v2, auto".into()),
    }
}

/// Whether clients must present a certificate (`--cert-reqs`, Python's
/// `ssl.CERT_*` numbers as Gunicorn takes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CertReqs {
    /// 0: no client certificate is asked for.
    #[default]
    None,
    /// 1: asked for, checked against `--ca-certs` when given, not required.
    Optional,
    /// 2: required (mutual TLS).
    Required,
}

impl CertReqs {
    /// The number `--cert-reqs` takes.
    pub fn as_number(self) -> u8 {
        match self {
            CertReqs::None => 0,
            CertReqs::Optional => 1,
            CertReqs::Required => 2,
        }
    }
}

/// Parses `--cert-reqs`: 0, 1 or 2 (or Python's names).
pub fn parse_cert_reqs(s: &str) -> Result<CertReqs, String> {
    match s.trim().to_ascii_uppercase().as_str() {
        "0" | "CERT_NONE" | "NONE" => Ok(CertReqs::None),
        "1" | "CERT_OPTIONAL" | "OPTIONAL" => Ok(CertReqs::Optional),
        "2" | "CERT_REQUIRED" | "REQUIRED" => Ok(CertReqs::Required),
        _ => Err("expected 0 (no client certificate), 1 (optional) or 2 (required)".into()),
    }
}

/// The TLS versions offered (`--ssl-version`). rustls speaks TLS 1.2 and
/// 1.3 only; the older versions Gunicorn's Python may offer are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SslVersion {
    /// TLS 1.2 and 1.3, 1.3 preferred (Python's `PROTOCOL_TLS`, Gunicorn's
    /// default).
    #[default]
    Tls,
    /// TLS 1.3 only.
    Tls13,
}

impl SslVersion {
    /// The spelling `--ssl-version` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            SslVersion::Tls => "TLS",
            SslVersion::Tls13 => "TLSv1_3",
        }
    }
}

/// Parses `--ssl-version`: Python's protocol names (`TLS`,
/// `TLS_SERVER`, `SSLv23`: negotiate 1.2 or 1.3; `TLSv1_2`: at least 1.2,
/// the same; `TLSv1_3`: 1.3 only) or their numbers as Gunicorn prints them.
pub fn parse_ssl_version(s: &str) -> Result<SslVersion, String> {
    match s.trim().to_ascii_uppercase().replace('.', "_").as_str() {
        "TLS"
        | "TLS_SERVER"
        | "SSLV23"
        | "PROTOCOL_TLS"
        | "PROTOCOL_TLS_SERVER"
        | "2"
        | "17"
        | "TLSV1_2"
        | "TLSV1_2_SERVER"
        | "5" => Ok(SslVersion::Tls),
        "TLSV1_3" => Ok(SslVersion::Tls13),
        "TLSV1" | "TLSV1_1" | "SSLV3" | "SSLV2" | "3" | "4" | "1" | "0" => Err(
            "TLS 1.0, 1.1 and SSL are not offered (rustls speaks TLS 1.2 and 1.3 only); \
             expected TLS (1.2 and 1.3, the default), TLSv1_2 (the same) or TLSv1_3 (1.3 only)"
                .into(),
        ),
        _ => Err(
            "expected TLS (1.2 and 1.3, the default), TLSv1_2 (the same) or TLSv1_3 (1.3 only)"
                .into(),
        ),
    }
}

/// The HTTP versions served (`--http-protocols`, Gunicorn 25's setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpProtocols {
    /// HTTP/1.1 (and 1.0).
    pub h1: bool,
    /// HTTP/2: through ALPN on TLS binds, and with `--http2c` as cleartext
    /// with prior knowledge.
    pub h2: bool,
}

impl Default for HttpProtocols {
    fn default() -> Self {
        HttpProtocols { h1: true, h2: true }
    }
}

impl fmt::Display for HttpProtocols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [(self.h1, "h1"), (self.h2, "h2")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        f.write_str(&names.join(","))
    }
}

/// Parses `--http-protocols`: a comma-separated list of `h1` and `h2`.
pub fn parse_http_protocols(s: &str) -> Result<HttpProtocols, String> {
    let mut p = HttpProtocols {
        h1: false,
        h2: false,
    };
    for name in s.split(',').map(|n| n.trim().to_ascii_lowercase()) {
        match name.as_str() {
            "h1" | "http1" | "http/1.1" => p.h1 = true,
            "h2" | "http2" => p.h2 = true,
            _ => return Err("expected a comma-separated list of h1 and h2, e.g. h1,h2".into()),
        }
    }
    if !p.h1 && !p.h2 {
        return Err("expected at least one of h1 and h2".into());
    }
    Ok(p)
}

/// Parses a switch: `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`),
/// as the environment and the config file give it.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// Where a log goes: `-` (stdout for the access log, stderr for the error
/// log, as in Gunicorn) or a file, appended to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// `-`: the standard stream of that log.
    Std,
    /// A file path.
    File(PathBuf),
}

impl fmt::Display for LogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogTarget::Std => f.write_str("-"),
            LogTarget::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Parses `--access-logfile` / `--error-logfile`.
pub fn parse_log_target(s: &str) -> Result<LogTarget, String> {
    match s.trim() {
        "" => Err("expected '-' or a file path".into()),
        "-" => Ok(LogTarget::Std),
        path => Ok(LogTarget::File(PathBuf::from(path))),
    }
}

/// The error log's level: messages below it are not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    /// Everything, protocol errors of clients included.
    Debug,
    /// Start-up, shutdown and worker events.
    #[default]
    Info,
    /// Things an operator should look at.
    Warning,
    /// Failures (application panics, request timeouts).
    Error,
    /// Failures that stop the server.
    Critical,
}

impl LogLevel {
    /// Gunicorn's spelling in log lines: `DEBUG`, `INFO`, `WARNING`, ...
    pub fn as_upper(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Critical => "CRITICAL",
        }
    }

    /// The spelling `--log-level` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}

/// Parses `--log-level`.
pub fn parse_log_level(s: &str) -> Result<LogLevel, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "debug" => Ok(LogLevel::Debug),
        "info" => Ok(LogLevel::Info),
        "warning" | "warn" => Ok(LogLevel::Warning),
        "error" => Ok(LogLevel::Error),
        "critical" => Ok(LogLevel::Critical),
        _ => Err("expected one of debug, info, warning, error, critical".into()),
    }
}

/// Gunicorn's default access log format.
pub const DEFAULT_ACCESS_LOG_FORMAT: &str =
    r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

/// The access log's line format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// A format in Gunicorn's `%(atom)s` language.
    Template(String),
    /// `json`: one JSON object per line.
    Json,
}

impl Default for AccessLogFormat {
    fn default() -> Self {
        AccessLogFormat::Template(DEFAULT_ACCESS_LOG_FORMAT.into())
    }
}

impl fmt::Display for AccessLogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessLogFormat::Template(t) => f.write_str(t),
            AccessLogFormat::Json => f.write_str("json"),
        }
    }
}

/// Parses `--access-logformat`.
pub fn parse_access_log_format(s: &str) -> Result<AccessLogFormat, String> {
    if s.trim() == "json" {
        Ok(AccessLogFormat::Json)
    } else if s.is_empty() {
        Err("expected 'json' or a format such as '%(h)s \"%(r)s\" %(s)s'".into())
    } else {
        Ok(AccessLogFormat::Template(s.to_owned()))
    }
}

/// Parses an integer of at least 1.
pub fn parse_positive<T: FromStr + PartialOrd + From<u8>>(s: &str) -> Result<T, String> {
    s.trim()
        .parse::<T>()
        .ok()
        .filter(|n| *n >= T::from(1))
        .ok_or_else(|| "expected a positive integer".into())
}

/// Parses an integer of at least 0.
pub fn parse_count<T: FromStr>(s: &str) -> Result<T, String> {
    s.trim()
        .parse::<T>()
        .map_err(|_| "expected a non-negative integer".into())
}

/// Parses a number of seconds (fractions allowed, `0` usually means off).
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let err = || "expected a number of seconds (0 or more, e.g. 30 or 0.5)".to_string();
    let secs: f64 = s.trim().parse().map_err(|_| err())?;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `--umask`: octal with a leading `0` or `0o` (Gunicorn's `0o22`,
/// `022`), else decimal.
pub fn parse_umask(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let parsed = if let Some(oct) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        u32::from_str_radix(oct, 8)
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8)
    } else {
        s.parse::<u32>()
    };
    parsed
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| "expected a mode from 0 to 0o777 (e.g. 0o22 or 022)".into())
}

/// Parses a value that may not be empty (a path, a name).
pub fn parse_nonempty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("expected a non-empty value".into())
    } else {
        Ok(s.to_owned())
    }
}

/// Parses a path that may not be empty.
pub fn parse_path(s: &str) -> Result<PathBuf, String> {
    parse_nonempty(s).map(PathBuf::from)
}

/// Returns a parser for an integer in `0..=max`.
pub fn count_at_most(max: usize) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync {
    move |s| {
        s.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("expected an integer from 0 to {max}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_forms() {
        assert_eq!(
            parse_bind("127.0.0.1:0").unwrap(),
            BindAddr::Tcp("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(
            parse_bind("[::1]:8080").unwrap(),
            BindAddr::Tcp("[::1]:8080".parse().unwrap())
        );
        assert_eq!(
            parse_bind("0.0.0.0").unwrap(),
            BindAddr::Tcp("0.0.0.0:8000".parse().unwrap())
        );
        assert_eq!(
            parse_bind("unix:/tmp/x.sock").unwrap(),
            BindAddr::Unix("/tmp/x.sock".into())
        );
        assert!(parse_bind("localhost:9").is_ok());
        assert!(parse_bind("127.0.0.1:99999").is_err());
        assert!(parse_bind("unix:").is_err());
        assert!(parse_bind("").is_err());
        // Printed form parses back.
        for s in ["127.0.0.1:1", "[::1]:2", "unix:/a/b"] {
            assert_eq!(parse_bind(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn networks_match() {
        let allow = parse_forwarded_allow_ips("127.0.0.1, ::1 ,10.0.0.0/8").unwrap();
        assert!(allow.allows("127.0.0.1".parse().unwrap()));
        assert!(allow.allows("::1".parse().unwrap()));
        assert!(allow.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(allow.allows("10.200.3.4".parse().unwrap()));
        assert!(!allow.allows("11.0.0.1".parse().unwrap()));
        assert!(!allow.allows("127.0.0.2".parse().unwrap()));
        assert!(parse_forwarded_allow_ips("*")
            .unwrap()
            .allows("8.8.8.8".parse().unwrap()));
        assert!(!parse_forwarded_allow_ips("")
            .unwrap()
            .allows("127.0.0.1".parse().unwrap()));
        assert!(parse_forwarded_allow_ips("10.0.0.0/33").is_err());
        assert!(parse_forwarded_allow_ips("nope").is_err());
        assert_eq!(allow.to_string(), "127.0.0.1,::1,10.0.0.0/8");
        let zero = parse_forwarded_allow_ips("0.0.0.0/0").unwrap();
        assert!(zero.allows("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn switches_and_modes() {
        assert_eq!(parse_bool("true"), Ok(true));
        assert_eq!(parse_bool(" 0 "), Ok(false));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_header_map("Refuse"), Ok(HeaderMapMode::Refuse));
        assert!(parse_header_map("keep").is_err());
        for m in [
            HeaderMapMode::Drop,
            HeaderMapMode::Refuse,
            HeaderMapMode::Dangerous,
        ] {
            assert_eq!(parse_header_map(m.as_str()), Ok(m));
        }
        assert_eq!(parse_proxy_protocol("true"), Ok(ProxyProtocol::Auto));
        assert_eq!(parse_proxy_protocol("none"), Ok(ProxyProtocol::Off));
        assert!(parse_proxy_protocol("v3").is_err());
        for m in [
            ProxyProtocol::Off,
            ProxyProtocol::V1,
            ProxyProtocol::V2,
            ProxyProtocol::Auto,
        ] {
            assert_eq!(parse_proxy_protocol(m.as_str()), Ok(m));
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_positive::<u32>("3"), Ok(3));
        assert_eq!(
            parse_positive::<u32>("0"),
            Err("expected a positive integer".into())
        );
        assert!(parse_positive::<u32>("abc").is_err());
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("inf").is_err());
        assert_eq!(parse_umask("0o22"), Ok(0o22));
        assert_eq!(parse_umask("022"), Ok(0o22));
        assert_eq!(parse_umask("18"), Ok(18));
        assert!(parse_umask("0o1000").is_err());
        assert!(count_at_most(5)("6").is_err());
    }
}
