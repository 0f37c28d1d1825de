//! [`ServerArgs`]: the server's flags as parsed, before defaults.
//!
//! Every setting is an `Option` (or an empty `Vec`) with no clap default,
//! so resolution can tell "not given" from "given the default value" and
//! layer the sources: defaults < config file < environment < command line.
//! The struct derives [`clap::Args`] so another binary can
//! `#[command(flatten)]` it next to its own flags.

use std::path::PathBuf;
use std::time::Duration;

use super::values::*;

/// The largest `--limit-request-fields` (Gunicorn's).
pub const MAX_REQUEST_FIELDS: usize = 32768;
/// The largest `--limit-request-line`; 0 means this.
pub const MAX_REQUEST_LINE: usize = 65534;
/// The largest `--limit-request-field_size`; 0 means this.
pub const MAX_FIELD_SIZE: usize = 65536;

fn fields_parser(s: &str) -> Result<usize, String> {
    count_at_most(MAX_REQUEST_FIELDS)(s)
}
fn line_parser(s: &str) -> Result<usize, String> {
    count_at_most(MAX_REQUEST_LINE)(s)
}
fn field_size_parser(s: &str) -> Result<usize, String> {
    count_at_most(MAX_FIELD_SIZE)(s)
}

/// The server's command-line flags (Gunicorn's names).
///
/// Values not given here come from `FERRICORN_<FLAG>` environment
/// variables, then the `--config` file, then defaults; see
/// [`Config::resolve`](super::Config::resolve).
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Server options")]
pub struct ServerArgs {
    /// Address to listen on: HOST:PORT, [IPV6]:PORT or unix:PATH; repeat
    /// for several [default: 127.0.0.1:8000].
    #[arg(short = 'b', long = "bind", value_name = "ADDRESS", value_parser = parse_bind)]
    pub bind: Vec<BindAddr>,

    /// Number of worker processes [default: $WEB_CONCURRENCY, else the
    /// number of CPUs].
    #[arg(short = 'w', long, value_name = "N", value_parser = parse_positive::<u32>)]
    pub workers: Option<u32>,

    /// Runtime threads per worker process; 1 runs a single-threaded runtime
    /// [default: 1].
    #[arg(long, value_name = "N", value_parser = parse_positive::<usize>)]
    pub threads: Option<usize>,

    /// Seconds a silent worker lives before the master kills it; 0 = off
    /// [default: 30].
    #[arg(short = 't', long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    /// Seconds a stopping worker may spend finishing its requests
    /// [default: 30].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub graceful_timeout: Option<Duration>,

    /// Seconds an idle keep-alive connection waits for its next request;
    /// 0 disables keep-alive [default: 2].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub keep_alive: Option<Duration>,

    /// Requests a worker serves before it is replaced; 0 = off [default: 0].
    #[arg(long, value_name = "N", value_parser = parse_count::<u64>)]
    pub max_requests: Option<u64>,

    /// Up to this many requests added at random to --max-requests per worker
    /// [default: 0].
    #[arg(long, value_name = "N", value_parser = parse_count::<u64>)]
    pub max_requests_jitter: Option<u64>,

    /// Resident memory (MiB) past which a worker is replaced; 0 = off
    /// [default: 0].
    #[arg(long, value_name = "MIB", value_parser = parse_count::<u64>)]
    pub max_worker_memory: Option<u64>,

    /// Seconds after which a worker is replaced; 0 = off [default: 0].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub max_worker_lifetime: Option<Duration>,

    /// Longest request line in bytes (414 past it); 0 = the hard maximum,
    /// 65534 [default: 4094].
    #[arg(long, value_name = "BYTES", value_parser = line_parser)]
    pub limit_request_line: Option<usize>,

    /// Most header fields in a request (431 past it), up to 32768
    /// [default: 100].
    #[arg(long, value_name = "N", value_parser = fields_parser)]
    pub limit_request_fields: Option<usize>,

    /// Longest header field line in bytes (431 past it); 0 = the hard
    /// maximum, 65536 [default: 8190].
    #[arg(
        long = "limit-request-field_size",
        alias = "limit-request-field-size",
        value_name = "BYTES",
        value_parser = field_size_parser
    )]
    pub limit_request_field_size: Option<usize>,

    /// Largest request body in bytes (413 past it); 0 = unlimited
    /// [default: 104857600, 100 MiB].
    #[arg(long, value_name = "BYTES", value_parser = parse_count::<u64>)]
    pub limit_request_body: Option<u64>,

    /// Seconds a client has to send a complete request head before the
    /// connection is closed; 0 = off [default: 10].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub header_timeout: Option<Duration>,

    /// Seconds an application may take to answer before the client gets a
    /// 504; 0 = off [default: 0].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub request_timeout: Option<Duration>,

    /// Seconds a response may wait on a client that does not read it (a
    /// full socket, a closed HTTP/2 window) before the connection is
    /// closed; 0 = off [default: 60, as Nginx's send_timeout].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub send_timeout: Option<Duration>,

    /// Open connections per worker; more are answered 503 [default: 1000].
    #[arg(long, value_name = "N", value_parser = parse_positive::<usize>)]
    pub worker_connections: Option<usize>,

    /// Peers whose X-Forwarded-For/-Proto and Forwarded headers are
    /// believed: comma-separated IPs or networks, or '*'
    /// [default: $FORWARDED_ALLOW_IPS, else 127.0.0.1,::1].
    #[arg(long, value_name = "IPS", value_parser = parse_forwarded_allow_ips)]
    pub forwarded_allow_ips: Option<ForwardedAllowIps>,

    /// What to do with request header fields whose names contain '_',
    /// which WSGI-style environments cannot tell from '-': drop them, refuse
    /// the request (400), or pass them on (dangerous) [default: drop].
    #[arg(long, value_name = "MODE", value_parser = parse_header_map)]
    pub header_map: Option<HeaderMapMode>,

    /// Accept methods Gunicorn refuses by default (400): with lower-case
    /// letters or '#', or shorter than 3 or longer than 20 characters
    /// [default: false].
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse_bool
    )]
    pub permit_unconventional_http_method: Option<bool>,

    /// Upper-case the method before the application sees it (methods are
    /// case-sensitive; this is for clients of older Gunicorns)
    /// [default: false].
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse_bool
    )]
    pub casefold_http_method: Option<bool>,

    /// Accept a PROXY protocol header (v1, v2 or either: auto) at the start
    /// of a connection from --proxy-allow-from, and take the client address
    /// from it; without a value, auto [default: off].
    #[arg(
        long,
        value_name = "MODE",
        num_args = 0..=1,
        default_missing_value = "auto",
        value_parser = parse_proxy_protocol
    )]
    pub proxy_protocol: Option<ProxyProtocol>,

    /// Peers that may send a PROXY protocol header: comma-separated IPs or
    /// networks, or '*' [default: 127.0.0.1,::1].
    #[arg(long, value_name = "IPS", value_parser = parse_forwarded_allow_ips)]
    pub proxy_allow_from: Option<ForwardedAllowIps>,

    /// Access log file; '-' = stdout [default: none].
    #[arg(long, value_name = "FILE", value_parser = parse_log_target)]
    pub access_logfile: Option<LogTarget>,

    /// Access log format in Gunicorn's %(atom)s language, or 'json'
    /// [default: Gunicorn's].
    #[arg(long, value_name = "FORMAT", value_parser = parse_access_log_format)]
    pub access_logformat: Option<AccessLogFormat>,

    /// Error log file; '-' = stderr [default: -].
    #[arg(long, value_name = "FILE", value_parser = parse_log_target)]
    pub error_logfile: Option<LogTarget>,

    /// Error log level: debug, info, warning, error or critical
    /// [default: info].
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level)]
    pub log_level: Option<LogLevel>,

    /// File to write the master's process id to.
    #[arg(short = 'p', long, value_name = "FILE", value_parser = parse_path)]
    pub pid: Option<PathBuf>,

    /// TOML config file; keys are the long flag names with '_'.
    #[arg(short = 'c', long, value_name = "FILE", value_parser = parse_path)]
    pub config: Option<PathBuf>,

    /// Process name shown in logs and process listings.
    #[arg(short = 'n', long, value_name = "NAME", value_parser = parse_nonempty)]
    pub name: Option<String>,

    /// Listen queue length [default: 2048].
    #[arg(long, value_name = "N", value_parser = parse_positive::<u32>)]
    pub backlog: Option<u32>,

    /// Switch worker processes to this user (name or uid).
    #[arg(long, value_name = "USER", value_parser = parse_nonempty)]
    pub user: Option<String>,

    /// Switch worker processes to this group (name or gid).
    #[arg(long, value_name = "GROUP", value_parser = parse_nonempty)]
    pub group: Option<String>,

    /// File mode creation mask, e.g. 0o22.
    #[arg(long, value_name = "MASK", value_parser = parse_umask)]
    pub umask: Option<u32>,

    /// Change to this directory before loading the application.
    #[arg(long, value_name = "DIR", value_parser = parse_path)]
    pub chdir: Option<PathBuf>,

    /// Serve Prometheus metrics (`GET /metrics`, summed over the workers)
    /// from the master on HOST:PORT or unix:PATH [default: off].
    #[arg(long, value_name = "ADDRESS", value_parser = parse_bind)]
    pub metrics_bind: Option<BindAddr>,

    /// Send Gunicorn's statsd metrics over UDP to HOST:PORT [default: off].
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_statsd_host)]
    pub statsd_host: Option<String>,

    /// Prefix of the statsd metric names (a '.' is added) [default: none].
    #[arg(long, value_name = "PREFIX")]
    pub statsd_prefix: Option<String>,

    /// DogStatsD tags added to every statsd metric: comma-separated
    /// `key:value` [default: none].
    #[arg(long, value_name = "TAGS")]
    pub dogstatsd_tags: Option<String>,

    /// Print a running master's status (workers, answers, latency) read
    /// from its --metrics-bind ADDRESS, and exit.
    #[arg(long, value_name = "ADDRESS", value_parser = parse_bind)]
    pub status: Option<BindAddr>,

    /// With --status: refresh every SECONDS until interrupted.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, requires = "status")]
    pub watch: Option<Duration>,

    /// PEM certificate chain: serve TLS on every TCP bind (unix: binds stay
    /// cleartext) [default: none].
    #[arg(long, value_name = "FILE", value_parser = parse_path)]
    pub certfile: Option<PathBuf>,

    /// PEM private key of --certfile.
    #[arg(long, value_name = "FILE", value_parser = parse_path)]
    pub keyfile: Option<PathBuf>,

    /// PEM certificates of the CAs that sign client certificates.
    #[arg(long, value_name = "FILE", value_parser = parse_path)]
    pub ca_certs: Option<PathBuf>,

    /// Client certificates: 0 not asked, 1 optional, 2 required (mutual
    /// TLS, needs --ca-certs) [default: 0].
    #[arg(long, value_name = "N", value_parser = parse_cert_reqs)]
    pub cert_reqs: Option<CertReqs>,

    /// TLS versions: TLS (1.2 and 1.3) or TLSv1_3 (1.3 only) [default: TLS].
    #[arg(long, value_name = "VERSION", value_parser = parse_ssl_version)]
    pub ssl_version: Option<SslVersion>,

    /// TLS cipher suites, colon-separated (IANA or OpenSSL names)
    /// [default: rustls's].
    #[arg(long, value_name = "LIST", value_parser = parse_nonempty)]
    pub ciphers: Option<String>,

    /// Accepted for Gunicorn's sake: the handshake always runs first,
    /// within --header-timeout.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub do_handshake_on_connect: Option<bool>,

    /// HTTP versions served: h1, h2 or h1,h2 (h2 through ALPN on TLS binds,
    /// and on cleartext ones with --http2c) [default: h1,h2].
    #[arg(long, value_name = "LIST", value_parser = parse_http_protocols)]
    pub http_protocols: Option<HttpProtocols>,

    /// Serve HTTP/2 with prior knowledge on cleartext binds (for a proxy in
    /// front that speaks it), beside HTTP/1.1 [default: off].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub http2c: Option<bool>,

    /// Streams open at once on one HTTP/2 connection [default: 100].
    #[arg(long, value_name = "N", value_parser = parse_positive::<u32>)]
    pub h2_max_concurrent_streams: Option<u32>,

    /// HTTP/2 flow-control window of each stream, in bytes [default:
    /// 1048576].
    #[arg(long, value_name = "BYTES", value_parser = parse_positive::<u32>)]
    pub h2_initial_window_size: Option<u32>,

    /// Largest HTTP/2 header list (decoded), in bytes [default: the
    /// header limits: --limit-request-fields × --limit-request-field_size,
    /// at most 1 MiB].
    #[arg(long, value_name = "BYTES", value_parser = parse_positive::<u32>)]
    pub h2_max_header_list_size: Option<u32>,

    /// Check the configuration and exit: 0 when valid, 1 when not.
    #[arg(long)]
    pub check_config: bool,

    /// Print the resolved configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Serve an HTTP/1.1 request that has no Host header field, as
    /// Gunicorn does, instead of refusing it (400, RFC 9112 section 3.2);
    /// a repeated or invalid Host is refused regardless [default: false].
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse_bool
    )]
    pub permit_missing_host: Option<bool>,
}

impl ServerArgs {
    /// Fills every setting not given in `self` from `lower` (a source of
    /// lower precedence).
    pub(crate) fn or(self, lower: ServerArgs) -> ServerArgs {
        ServerArgs {
            bind: if self.bind.is_empty() {
                lower.bind
            } else {
                self.bind
            },
            workers: self.workers.or(lower.workers),
            threads: self.threads.or(lower.threads),
            timeout: self.timeout.or(lower.timeout),
            graceful_timeout: self.graceful_timeout.or(lower.graceful_timeout),
            keep_alive: self.keep_alive.or(lower.keep_alive),
            max_requests: self.max_requests.or(lower.max_requests),
            max_requests_jitter: self.max_requests_jitter.or(lower.max_requests_jitter),
            max_worker_memory: self.max_worker_memory.or(lower.max_worker_memory),
            max_worker_lifetime: self.max_worker_lifetime.or(lower.max_worker_lifetime),
            limit_request_line: self.limit_request_line.or(lower.limit_request_line),
            limit_request_fields: self.limit_request_fields.or(lower.limit_request_fields),
            limit_request_field_size: self
                .limit_request_field_size
                .or(lower.limit_request_field_size),
            limit_request_body: self.limit_request_body.or(lower.limit_request_body),
            header_timeout: self.header_timeout.or(lower.header_timeout),
            request_timeout: self.request_timeout.or(lower.request_timeout),
            send_timeout: self.send_timeout.or(lower.send_timeout),
            worker_connections: self.worker_connections.or(lower.worker_connections),
            forwarded_allow_ips: self.forwarded_allow_ips.or(lower.forwarded_allow_ips),
            header_map: self.header_map.or(lower.header_map),
            permit_unconventional_http_method: self
                .permit_unconventional_http_method
                .or(lower.permit_unconventional_http_method),
            casefold_http_method: self.casefold_http_method.or(lower.casefold_http_method),
            proxy_protocol: self.proxy_protocol.or(lower.proxy_protocol),
            proxy_allow_from: self.proxy_allow_from.or(lower.proxy_allow_from),
            access_logfile: self.access_logfile.or(lower.access_logfile),
            access_logformat: self.access_logformat.or(lower.access_logformat),
            error_logfile: self.error_logfile.or(lower.error_logfile),
            log_level: self.log_level.or(lower.log_level),
            pid: self.pid.or(lower.pid),
            config: self.config.or(lower.config),
            name: self.name.or(lower.name),
            backlog: self.backlog.or(lower.backlog),
            user: self.user.or(lower.user),
            group: self.group.or(lower.group),
            umask: self.umask.or(lower.umask),
            chdir: self.chdir.or(lower.chdir),
            metrics_bind: self.metrics_bind.or(lower.metrics_bind),
            statsd_host: self.statsd_host.or(lower.statsd_host),
            statsd_prefix: self.statsd_prefix.or(lower.statsd_prefix),
            dogstatsd_tags: self.dogstatsd_tags.or(lower.dogstatsd_tags),
            status: self.status.or(lower.status),
            watch: self.watch.or(lower.watch),
            certfile: self.certfile.or(lower.certfile),
            keyfile: self.keyfile.or(lower.keyfile),
            ca_certs: self.ca_certs.or(lower.ca_certs),
            cert_reqs: self.cert_reqs.or(lower.cert_reqs),
            ssl_version: self.ssl_version.or(lower.ssl_version),
            ciphers: self.ciphers.or(lower.ciphers),
            do_handshake_on_connect: self
                .do_handshake_on_connect
                .or(lower.do_handshake_on_connect),
            http_protocols: self.http_protocols.or(lower.http_protocols),
            http2c: self.http2c.or(lower.http2c),
            h2_max_concurrent_streams: self
                .h2_max_concurrent_streams
                .or(lower.h2_max_concurrent_streams),
            h2_initial_window_size: self.h2_initial_window_size.or(lower.h2_initial_window_size),
            h2_max_header_list_size: self
                .h2_max_header_list_size
                .or(lower.h2_max_header_list_size),
            check_config: self.check_config || lower.check_config,
            print_config: self.print_config || lower.print_config,
            permit_missing_host: self.permit_missing_host.or(lower.permit_missing_host),
        }
    }

    /// Sets the setting `key` (a long flag name with `_`) from text, as
    /// the environment and the config file give it. `Err` carries the
    /// "what is allowed" message; `Ok(false)` means no such setting.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "bind" => self.bind.push(parse_bind(value)?),
            "workers" => self.workers = Some(parse_positive(value)?),
            "threads" => self.threads = Some(parse_positive(value)?),
            "timeout" => self.timeout = Some(parse_seconds(value)?),
            "graceful_timeout" => self.graceful_timeout = Some(parse_seconds(value)?),
            "keep_alive" => self.keep_alive = Some(parse_seconds(value)?),
            "max_requests" => self.max_requests = Some(parse_count(value)?),
            "max_requests_jitter" => self.max_requests_jitter = Some(parse_count(value)?),
            "max_worker_memory" => self.max_worker_memory = Some(parse_count(value)?),
            "max_worker_lifetime" => self.max_worker_lifetime = Some(parse_seconds(value)?),
            "limit_request_line" => self.limit_request_line = Some(line_parser(value)?),
            "limit_request_fields" => self.limit_request_fields = Some(fields_parser(value)?),
            "limit_request_field_size" => {
                self.limit_request_field_size = Some(field_size_parser(value)?)
            }
            "limit_request_body" => self.limit_request_body = Some(parse_count(value)?),
            "header_timeout" => self.header_timeout = Some(parse_seconds(value)?),
            "request_timeout" => self.request_timeout = Some(parse_seconds(value)?),
            "send_timeout" => self.send_timeout = Some(parse_seconds(value)?),
            "worker_connections" => self.worker_connections = Some(parse_positive(value)?),
            "forwarded_allow_ips" => {
                self.forwarded_allow_ips = Some(parse_forwarded_allow_ips(value)?)
            }
            "header_map" => self.header_map = Some(parse_header_map(value)?),
            "permit_unconventional_http_method" => {
                self.permit_unconventional_http_method = Some(parse_bool(value)?)
            }
            "casefold_http_method" => self.casefold_http_method = Some(parse_bool(value)?),
            "proxy_protocol" => self.proxy_protocol = Some(parse_proxy_protocol(value)?),
            "proxy_allow_from" => self.proxy_allow_from = Some(parse_forwarded_allow_ips(value)?),
            "access_logfile" => self.access_logfile = Some(parse_log_target(value)?),
            "access_logformat" => self.access_logformat = Some(parse_access_log_format(value)?),
            "error_logfile" => self.error_logfile = Some(parse_log_target(value)?),
            "log_level" => self.log_level = Some(parse_log_level(value)?),
            "pid" => self.pid = Some(parse_path(value)?),
            "name" => self.name = Some(parse_nonempty(value)?),
            "backlog" => self.backlog = Some(parse_positive(value)?),
            "user" => self.user = Some(parse_nonempty(value)?),
            "group" => self.group = Some(parse_nonempty(value)?),
            "umask" => self.umask = Some(parse_umask(value)?),
            "chdir" => self.chdir = Some(parse_path(value)?),
            "metrics_bind" => self.metrics_bind = Some(parse_bind(value)?),
            "statsd_host" => self.statsd_host = Some(parse_statsd_host(value)?),
            "statsd_prefix" => self.statsd_prefix = Some(value.to_owned()),
            "dogstatsd_tags" => self.dogstatsd_tags = Some(value.to_owned()),
            "certfile" => self.certfile = Some(parse_path(value)?),
            "keyfile" => self.keyfile = Some(parse_path(value)?),
            "ca_certs" => self.ca_certs = Some(parse_path(value)?),
            "cert_reqs" => self.cert_reqs = Some(parse_cert_reqs(value)?),
            "ssl_version" => self.ssl_version = Some(parse_ssl_version(value)?),
            "ciphers" => self.ciphers = Some(parse_nonempty(value)?),
            "do_handshake_on_connect" => self.do_handshake_on_connect = Some(parse_bool(value)?),
            "http_protocols" => self.http_protocols = Some(parse_http_protocols(value)?),
            "http2c" => self.http2c = Some(parse_bool(value)?),
            "h2_max_concurrent_streams" => {
                self.h2_max_concurrent_streams = Some(parse_positive(value)?)
            }
            "h2_initial_window_size" => self.h2_initial_window_size = Some(parse_positive(value)?),
            "h2_max_header_list_size" => {
                self.h2_max_header_list_size = Some(parse_positive(value)?)
            }
            "permit_missing_host" => self.permit_missing_host = Some(parse_bool(value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The settings the environment and the config file may set: the TOML key
/// and the flag as `--help` shows it (for messages).
pub(crate) const SETTINGS: &[(&str, &str)] = &[
    ("bind", "--bind <ADDRESS>"),
    ("workers", "--workers <N>"),
    ("threads", "--threads <N>"),
    ("timeout", "--timeout <SECONDS>"),
    ("graceful_timeout", "--graceful-timeout <SECONDS>"),
    ("keep_alive", "--keep-alive <SECONDS>"),
    ("max_requests", "--max-requests <N>"),
    ("max_requests_jitter", "--max-requests-jitter <N>"),
    ("max_worker_memory", "--max-worker-memory <MIB>"),
    ("max_worker_lifetime", "--max-worker-lifetime <SECONDS>"),
    ("limit_request_line", "--limit-request-line <BYTES>"),
    ("limit_request_fields", "--limit-request-fields <N>"),
    (
        "limit_request_field_size",
        "--limit-request-field_size <BYTES>",
    ),
    ("limit_request_body", "--limit-request-body <BYTES>"),
    ("header_timeout", "--header-timeout <SECONDS>"),
    ("request_timeout", "--request-timeout <SECONDS>"),
    ("send_timeout", "--send-timeout <SECONDS>"),
    ("worker_connections", "--worker-connections <N>"),
    ("forwarded_allow_ips", "--forwarded-allow-ips <IPS>"),
    ("header_map", "--header-map <MODE>"),
    (
        "permit_unconventional_http_method",
        "--permit-unconventional-http-method[=<BOOL>]",
    ),
    ("casefold_http_method", "--casefold-http-method[=<BOOL>]"),
    ("proxy_protocol", "--proxy-protocol [<MODE>]"),
    ("proxy_allow_from", "--proxy-allow-from <IPS>"),
    ("access_logfile", "--access-logfile <FILE>"),
    ("access_logformat", "--access-logformat <FORMAT>"),
    ("error_logfile", "--error-logfile <FILE>"),
    ("log_level", "--log-level <LEVEL>"),
    ("pid", "--pid <FILE>"),
    ("name", "--name <NAME>"),
    ("backlog", "--backlog <N>"),
    ("user", "--user <USER>"),
    ("group", "--group <GROUP>"),
    ("umask", "--umask <MASK>"),
    ("chdir", "--chdir <DIR>"),
    ("metrics_bind", "--metrics-bind <ADDRESS>"),
    ("statsd_host", "--statsd-host <HOST:PORT>"),
    ("statsd_prefix", "--statsd-prefix <PREFIX>"),
    ("dogstatsd_tags", "--dogstatsd-tags <TAGS>"),
    ("certfile", "--certfile <FILE>"),
    ("keyfile", "--keyfile <FILE>"),
    ("ca_certs", "--ca-certs <FILE>"),
    ("cert_reqs", "--cert-reqs <N>"),
    ("ssl_version", "--ssl-version <VERSION>"),
    ("ciphers", "--ciphers <LIST>"),
    (
        "do_handshake_on_connect",
        "--do-handshake-on-connect[=<BOOL>]",
    ),
    ("http_protocols", "--http-protocols <LIST>"),
    ("http2c", "--http2c[=<BOOL>]"),
    (
        "h2_max_concurrent_streams",
        "--h2-max-concurrent-streams <N>",
    ),
    ("h2_initial_window_size", "--h2-initial-window-size <BYTES>"),
    (
        "h2_max_header_list_size",
        "--h2-max-header-list-size <BYTES>",
    ),
    ("permit_missing_host", "--permit-missing-host[=<BOOL>]"),
];
