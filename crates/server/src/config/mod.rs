//! Configuration: the raw flags ([`ServerArgs`]), the resolved [`Config`],
//! and the staged resolution between them.
//!
//! Resolution runs in named steps (as in pingora): read the TOML file named
//! by `--config`, read `FERRICORN_<FLAG>` environment variables, layer them
//! under the command line, apply defaults, then [`Config::validate`].
//! Precedence, lowest first:
//!
//! 1. defaults, of which two come from Gunicorn's environment variables:
//!    `--workers` defaults to `$WEB_CONCURRENCY`, else the number of CPUs;
//!    `--forwarded-allow-ips` to `$FORWARDED_ALLOW_IPS`, else `127.0.0.1,::1`;
//! 2. the config file (`-c/--config`, also `$FERRICORN_CONFIG`);
//! 3. the environment: `FERRICORN_` and the flag's long name in upper case
//!    with `_` (`FERRICORN_WORKERS`, `FERRICORN_KEEP_ALIVE`); `FERRICORN_BIND`
//!    may hold several addresses separated by commas;
//! 4. the command line.
//!
//! A bind list from a higher source replaces the lower one, it is not
//! merged. A bad value is reported with the flag, where the value came from
//! (variable or file key) and what is allowed.

mod args;
mod print;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use args::{ServerArgs, MAX_FIELD_SIZE, MAX_REQUEST_FIELDS, MAX_REQUEST_LINE};
pub use values::{
    AccessLogFormat, BindAddr, CertReqs, ForwardedAllowIps, HeaderMapMode, HttpProtocols, IpNet,
    LogLevel, LogTarget, ProxyProtocol, SslVersion, DEFAULT_ACCESS_LOG_FORMAT,
};

use args::SETTINGS;

/// The default `--limit-request-body`: 100 MiB. Gunicorn has no body limit;
/// we pick one large enough for ordinary uploads and small enough that a
/// client cannot stream an unbounded body into an application that collects
/// it. 0 turns it off.
pub const DEFAULT_LIMIT_REQUEST_BODY: u64 = 100 * 1024 * 1024;

/// The resolved configuration of a server, ready to use.
///
/// "Off" settings are `None` rather than a magic zero; `--print-config`
/// prints them as 0, which is how the flags spell "off".
#[derive(Clone, Debug)]
pub struct Config {
    /// Listening addresses (`--bind`).
    pub bind: Vec<BindAddr>,
    /// Worker processes (`--workers`).
    pub workers: u32,
    /// Runtime threads per worker (`--threads`); 1 = single-threaded runtime.
    pub threads: usize,
    /// Worker liveness timeout (`--timeout`): the master kills a worker
    /// silent for this long. `None` = off.
    pub timeout: Option<Duration>,
    /// How long a stopping worker may drain (`--graceful-timeout`).
    pub graceful_timeout: Duration,
    /// Idle time allowed between requests on a connection (`--keep-alive`).
    /// `None` = keep-alive off: one request per connection.
    pub keep_alive: Option<Duration>,
    /// Requests before a worker is replaced (`--max-requests`). `None` = off.
    pub max_requests: Option<u64>,
    /// Random extra requests per worker (`--max-requests-jitter`).
    pub max_requests_jitter: u64,
    /// Resident memory in MiB past which a worker is replaced
    /// (`--max-worker-memory`). `None` = off.
    pub max_worker_memory: Option<u64>,
    /// Age past which a worker is replaced (`--max-worker-lifetime`).
    pub max_worker_lifetime: Option<Duration>,
    /// Longest request line in bytes (`--limit-request-line`, 0 resolved
    /// to [`MAX_REQUEST_LINE`]).
    pub limit_request_line: usize,
    /// Most header fields (`--limit-request-fields`, 0 resolved to
    /// [`MAX_REQUEST_FIELDS`]).
    pub limit_request_fields: usize,
    /// Longest header field line, `name: value` and its CRLF, in bytes
    /// (`--limit-request-field_size`, 0 resolved to [`MAX_FIELD_SIZE`]).
    pub limit_request_field_size: usize,
    /// Largest request body (`--limit-request-body`). `None` = unlimited.
    pub limit_request_body: Option<u64>,
    /// Deadline for reading a request head (`--header-timeout`).
    pub header_timeout: Option<Duration>,
    /// Deadline for the application's answer (`--request-timeout`); past
    /// it the client gets 504. `None` = off.
    pub request_timeout: Option<Duration>,
    /// Deadline for a client to take more of a response it is not reading
    /// (`--send-timeout`). `None` = off.
    pub send_timeout: Option<Duration>,
    /// Open connections per worker (`--worker-connections`).
    pub worker_connections: usize,
    /// Peers whose forwarding headers are believed (`--forwarded-allow-ips`).
    pub forwarded_allow_ips: ForwardedAllowIps,
    /// What becomes of header fields whose names contain `_`
    /// (`--header-map`).
    pub header_map: HeaderMapMode,
    /// Methods Gunicorn calls unconventional (lower case, `#`, shorter than
    /// 3 or longer than 20 characters) are served rather than refused
    /// (`--permit-unconventional-http-method`).
    pub permit_unconventional_http_method: bool,
    /// Methods are upper-cased before the application sees them
    /// (`--casefold-http-method`).
    pub casefold_http_method: bool,
    /// Which PROXY protocol headers a connection may begin with
    /// (`--proxy-protocol`).
    pub proxy_protocol: ProxyProtocol,
    /// Peers that may send a PROXY protocol header (`--proxy-allow-from`).
    pub proxy_allow_from: ForwardedAllowIps,
    /// Access log destination (`--access-logfile`); `None` = no access log.
    pub access_logfile: Option<LogTarget>,
    /// Access log format (`--access-logformat`).
    pub access_logformat: AccessLogFormat,
    /// Error log destination (`--error-logfile`).
    pub error_logfile: LogTarget,
    /// Error log level (`--log-level`).
    pub log_level: LogLevel,
    /// PID file of the master (`--pid`).
    pub pid: Option<PathBuf>,
    /// The config file that was read (`--config`), if any. Applications
    /// read their own tables from it through [`Config::app_table`].
    pub config_file: Option<PathBuf>,
    /// Process name (`--name`).
    pub proc_name: Option<String>,
    /// Listen queue length (`--backlog`).
    pub backlog: u32,
    /// User workers switch to (`--user`).
    pub user: Option<String>,
    /// Group workers switch to (`--group`).
    pub group: Option<String>,
    /// File mode creation mask (`--umask`).
    pub umask: Option<u32>,
    /// Working directory (`--chdir`).
    pub chdir: Option<PathBuf>,
    /// Where the master serves Prometheus metrics (`--metrics-bind`);
    /// `None` = off.
    pub metrics_bind: Option<BindAddr>,
    /// Where workers send Gunicorn's statsd metrics (`--statsd-host`,
    /// `HOST:PORT`); `None` = off.
    pub statsd_host: Option<String>,
    /// The statsd names' prefix (`--statsd-prefix`).
    pub statsd_prefix: String,
    /// DogStatsD tags (`--dogstatsd-tags`).
    pub dogstatsd_tags: String,
    /// TLS certificate chain (`--certfile`); `None` = cleartext. TLS is
    /// served on every TCP bind; `unix:` binds stay cleartext.
    pub certfile: Option<PathBuf>,
    /// Its private key (`--keyfile`).
    pub keyfile: Option<PathBuf>,
    /// CAs of client certificates (`--ca-certs`).
    pub ca_certs: Option<PathBuf>,
    /// Client certificates asked for (`--cert-reqs`).
    pub cert_reqs: CertReqs,
    /// TLS versions offered (`--ssl-version`).
    pub ssl_version: SslVersion,
    /// Cipher suites, colon-separated (`--ciphers`); `None` = rustls's.
    pub ciphers: Option<String>,
    /// `--do-handshake-on-connect` (accepted; the handshake always runs
    /// first).
    pub do_handshake_on_connect: bool,
    /// HTTP versions served (`--http-protocols`).
    pub http_protocols: HttpProtocols,
    /// HTTP/2 with prior knowledge on cleartext binds (`--http2c`).
    pub http2c: bool,
    /// Streams open at once per HTTP/2 connection
    /// (`--h2-max-concurrent-streams`).
    pub h2_max_concurrent_streams: u32,
    /// Each HTTP/2 stream's flow-control window (`--h2-initial-window-size`).
    pub h2_initial_window_size: u32,
    /// Largest decoded HTTP/2 header list (`--h2-max-header-list-size`);
    /// `None` = from the header limits.
    pub h2_max_header_list_size: Option<u32>,
    /// The config file's top-level tables, which belong to applications
    /// (the JWT service reads `[auth]`).
    app_tables: BTreeMap<String, toml::Table>,
    /// An HTTP/1.1 request without a Host header field is served, as
    /// Gunicorn serves it, rather than refused with 400 as RFC 9112
    /// section 3.2 requires (`--permit-missing-host`). Off by default:
    /// without Host the application must guess which site is meant (WSGI
    /// falls back to the server's address), and a proxy in front may have
    /// guessed otherwise. The switch is for old clients that omit it.
    pub permit_missing_host: bool,
}

impl Default for Config {
    /// The defaults, without reading the environment (`--workers` is 1
    /// here; [`Config::resolve`] applies `$WEB_CONCURRENCY` and the CPU
    /// count).
    fn default() -> Self {
        Config {
            bind: vec![BindAddr::Tcp(([127, 0, 0, 1], values::DEFAULT_PORT).into())],
            workers: 1,
            threads: 1,
            timeout: Some(Duration::from_secs(30)),
            graceful_timeout: Duration::from_secs(30),
            keep_alive: Some(Duration::from_secs(2)),
            max_requests: None,
            max_requests_jitter: 0,
            max_worker_memory: None,
            max_worker_lifetime: None,
            limit_request_line: 4094,
            limit_request_fields: 100,
            limit_request_field_size: 8190,
            limit_request_body: Some(DEFAULT_LIMIT_REQUEST_BODY),
            header_timeout: Some(Duration::from_secs(10)),
            request_timeout: None,
            send_timeout: Some(Duration::from_secs(60)),
            worker_connections: 1000,
            forwarded_allow_ips: ForwardedAllowIps::default(),
            header_map: HeaderMapMode::Drop,
            permit_unconventional_http_method: false,
            casefold_http_method: false,
            proxy_protocol: ProxyProtocol::Off,
            proxy_allow_from: ForwardedAllowIps::default(),
            access_logfile: None,
            access_logformat: AccessLogFormat::default(),
            error_logfile: LogTarget::Std,
            log_level: LogLevel::Info,
            pid: None,
            config_file: None,
            proc_name: None,
            backlog: 2048,
            user: None,
            group: None,
            umask: None,
            chdir: None,
            metrics_bind: None,
            statsd_host: None,
            statsd_prefix: String::new(),
            dogstatsd_tags: String::new(),
            certfile: None,
            keyfile: None,
            ca_certs: None,
            cert_reqs: CertReqs::None,
            ssl_version: SslVersion::Tls,
            ciphers: None,
            do_handshake_on_connect: false,
            http_protocols: HttpProtocols::default(),
            http2c: false,
            h2_max_concurrent_streams: 100,
            h2_initial_window_size: 1 << 20,
            h2_max_header_list_size: None,
            app_tables: BTreeMap::new(),
            permit_missing_host: false,
        }
    }
}

/// Why a configuration was refused. The message names the flag (and the
/// variable or file key the value came from) and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse or is out of range.
    #[error("invalid value '{value}' for '{flag}'{origin}: {allowed}")]
    Invalid {
        /// The flag as `--help` shows it, e.g. `--workers <N>`.
        flag: String,
        /// The offending text.
        value: String,
        /// Where it came from, e.g. ` (from environment variable
        /// FERRICORN_WORKERS)`; empty for values set in code.
        origin: String,
        /// What is allowed.
        allowed: String,
    },
    /// A top-level key in the config file that is no setting.
    #[error("unknown key '{key}' in config file {}: keys are the long flag names with '_' (e.g. workers, keep_alive){hint}", path.display())]
    UnknownKey {
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
        /// A suggestion, or empty.
        hint: String,
    },
    /// The config file cannot be read.
    #[error("cannot read config file {} (--config): {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {} (--config) is not valid TOML: {message}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

impl ConfigError {
    fn invalid(flag: &str, value: impl Into<String>, origin: String, allowed: String) -> Self {
        ConfigError::Invalid {
            flag: flag.to_owned(),
            value: value.into(),
            origin,
            allowed,
        }
    }
}

fn flag_of(key: &str) -> &'static str {
    SETTINGS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("?", |(_, flag)| flag)
}

fn env_name(key: &str) -> String {
    format!("FERRICORN_{}", key.to_ascii_uppercase())
}

impl Config {
    /// Resolves the command-line flags against the process environment and
    /// the config file; see the module docs for the precedence.
    pub fn resolve(args: ServerArgs) -> Result<Config, ConfigError> {
        Config::resolve_with(args, &|name| std::env::var(name).ok())
    }

    /// [`Config::resolve`] with the environment given as a lookup function
    /// (for tests, and for callers that sanitise the environment).
    pub fn resolve_with(
        cli: ServerArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let from_env = read_env(env)?;
        let file_path = cli.config.clone().or_else(|| {
            env("FERRICORN_CONFIG")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        });
        let (from_file, app_tables) = match &file_path {
            Some(path) => read_file(path)?,
            None => (ServerArgs::default(), BTreeMap::new()),
        };
        let merged = cli.or(from_env).or(from_file);
        let mut config = apply_defaults(merged, env)?;
        config.config_file = file_path;
        config.app_tables = app_tables;
        config.validate()?;
        Ok(config)
    }

    /// A top-level table of the config file that is not a server setting,
    /// e.g. `[auth]`, for the application to read.
    pub fn app_table(&self, name: &str) -> Option<&toml::Table> {
        self.app_tables.get(name)
    }

    /// Checks what the types cannot: cross-setting rules and ranges, for a
    /// `Config` built in code as well as a resolved one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, allowed: &str| {
            Err(ConfigError::invalid(
                flag_of(key),
                value,
                String::new(),
                allowed.into(),
            ))
        };
        if self.bind.is_empty() {
            return bad("bind", String::new(), "expected at least one address");
        }
        for (i, b) in self.bind.iter().enumerate() {
            // Port 0 twice is two ports; any other address twice cannot bind.
            let any_port = matches!(b, BindAddr::Tcp(sa) if sa.port() == 0);
            if !any_port && self.bind[..i].contains(b) {
                return bad("bind", b.to_string(), "the same address is bound twice");
            }
            if let BindAddr::Unix(path) = b {
                // sun_path holds 108 bytes including the terminating NUL.
                if path.as_os_str().len() > 107 {
                    return bad(
                        "bind",
                        b.to_string(),
                        "a Unix socket path may be at most 107 bytes; use a shorter path",
                    );
                }
            }
        }
        if self.workers == 0 {
            return bad("workers", "0".into(), "expected a positive integer");
        }
        if self.threads == 0 {
            return bad("threads", "0".into(), "expected a positive integer");
        }
        if self.worker_connections == 0 {
            return bad(
                "worker_connections",
                "0".into(),
                "expected a positive integer",
            );
        }
        if self.backlog == 0 {
            return bad("backlog", "0".into(), "expected a positive integer");
        }
        if !(1..=MAX_REQUEST_LINE).contains(&self.limit_request_line) {
            return bad(
                "limit_request_line",
                self.limit_request_line.to_string(),
                "expected an integer from 0 to 65534",
            );
        }
        if !(1..=MAX_REQUEST_FIELDS).contains(&self.limit_request_fields) {
            return bad(
                "limit_request_fields",
                self.limit_request_fields.to_string(),
                "expected an integer from 0 to 32768",
            );
        }
        if !(1..=MAX_FIELD_SIZE).contains(&self.limit_request_field_size) {
            return bad(
                "limit_request_field_size",
                self.limit_request_field_size.to_string(),
                "expected an integer from 0 to 65536",
            );
        }
        Ok(())
    }

    /// The resolved configuration as TOML that `--config` reads back.
    pub fn to_toml(&self) -> String {
        print::to_toml(self)
    }

    /// The largest request head the HTTP parser buffers: room for a request
    /// line and every header field at their limits, so the limits (not the
    /// buffer) decide what is refused, capped to bound memory per
    /// connection. Never below hyper's minimum of 8 KiB.
    pub fn max_head_size(&self) -> usize {
        let fields = self.limit_request_fields * (self.limit_request_field_size + 2);
        (self.limit_request_line + 2 + fields + 2).clamp(8192, 4 * 1024 * 1024)
    }
}

/// Step: read `FERRICORN_<FLAG>` variables.
fn read_env(env: &dyn Fn(&str) -> Option<String>) -> Result<ServerArgs, ConfigError> {
    let mut args = ServerArgs::default();
    for (key, flag) in SETTINGS {
        let name = env_name(key);
        let Some(value) = env(&name) else { continue };
        let origin = format!(" (from environment variable {name})");
        let parts: Vec<&str> = if *key == "bind" {
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        } else {
            vec![value.as_str()]
        };
        for part in parts {
            args.set(key, part)
                .map_err(|allowed| ConfigError::invalid(flag, part, origin.clone(), allowed))?;
        }
    }
    Ok(args)
}

type FileLayer = (ServerArgs, BTreeMap<String, toml::Table>);

/// Step: read the TOML file.
fn read_file(path: &Path) -> Result<FileLayer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_file(path, &text)
}

fn parse_file(path: &Path, text: &str) -> Result<FileLayer, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Toml {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
    let mut args = ServerArgs::default();
    let mut app_tables = BTreeMap::new();
    for (key, value) in table {
        if let toml::Value::Table(t) = value {
            app_tables.insert(key, t);
            continue;
        }
        let Some((_, flag)) = SETTINGS.iter().find(|(k, _)| *k == key) else {
            let fixed = key.replace('-', "_");
            let hint = if SETTINGS.iter().any(|(k, _)| *k == fixed) {
                format!("; did you mean '{fixed}'?")
            } else {
                String::new()
            };
            return Err(ConfigError::UnknownKey {
                key,
                path: path.to_owned(),
                hint,
            });
        };
        let origin = format!(" (key '{key}' in config file {})", path.display());
        let texts: Vec<String> = match (&value, key.as_str()) {
            (toml::Value::Array(items), "bind") => items.iter().map(scalar_text).collect(),
            (toml::Value::Array(items), "forwarded_allow_ips" | "proxy_allow_from") => {
                vec![items.iter().map(scalar_text).collect::<Vec<_>>().join(",")]
            }
            _ => vec![scalar_text(&value)],
        };
        for text in texts {
            args.set(&key, &text).map_err(|allowed| {
                ConfigError::invalid(flag, text.clone(), origin.clone(), allowed)
            })?;
        }
    }
    Ok((args, app_tables))
}

fn scalar_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Step: fill what no source gave.
fn apply_defaults(
    args: ServerArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let d = Config::default();
    let workers = match args.workers {
        Some(n) => n,
        None => match env("WEB_CONCURRENCY") {
            Some(v) => values::parse_positive(&v).map_err(|allowed| {
                ConfigError::invalid(
                    flag_of("workers"),
                    v,
                    " (from environment variable WEB_CONCURRENCY)".into(),
                    allowed,
                )
            })?,
            None => u32::try_from(num_cpus::get()).unwrap_or(1).max(1),
        },
    };
    let forwarded_allow_ips = match args.forwarded_allow_ips {
        Some(f) => f,
        None => match env("FORWARDED_ALLOW_IPS") {
            Some(v) => values::parse_forwarded_allow_ips(&v).map_err(|allowed| {
                ConfigError::invalid(
                    flag_of("forwarded_allow_ips"),
                    v,
                    " (from environment variable FORWARDED_ALLOW_IPS)".into(),
                    allowed,
                )
            })?,
            None => d.forwarded_allow_ips,
        },
    };
    let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
    let or_max = |n: usize, max: usize| if n == 0 { max } else { n };
    Ok(Config {
        bind: if args.bind.is_empty() {
            d.bind
        } else {
            args.bind
        },
        workers,
        threads: args.threads.unwrap_or(d.threads),
        timeout: args.timeout.map_or(d.timeout, nonzero),
        graceful_timeout: args.graceful_timeout.unwrap_or(d.graceful_timeout),
        keep_alive: args.keep_alive.map_or(d.keep_alive, nonzero),
        max_requests: args.max_requests.filter(|n| *n > 0),
        max_requests_jitter: args.max_requests_jitter.unwrap_or(0),
        max_worker_memory: args.max_worker_memory.filter(|n| *n > 0),
        max_worker_lifetime: args.max_worker_lifetime.and_then(nonzero),
        limit_request_line: or_max(
            args.limit_request_line.unwrap_or(d.limit_request_line),
            MAX_REQUEST_LINE,
        ),
        limit_request_fields: or_max(
            args.limit_request_fields.unwrap_or(d.limit_request_fields),
            MAX_REQUEST_FIELDS,
        ),
        limit_request_field_size: or_max(
            args.limit_request_field_size
                .unwrap_or(d.limit_request_field_size),
            MAX_FIELD_SIZE,
        ),
        limit_request_body: args
            .limit_request_body
            .map_or(d.limit_request_body, |n| (n > 0).then_some(n)),
        header_timeout: args.header_timeout.map_or(d.header_timeout, nonzero),
        request_timeout: args.request_timeout.and_then(nonzero),
        send_timeout: args.send_timeout.map_or(d.send_timeout, nonzero),
        worker_connections: args.worker_connections.unwrap_or(d.worker_connections),
        forwarded_allow_ips,
        header_map: args.header_map.unwrap_or(d.header_map),
        permit_unconventional_http_method: args
            .permit_unconventional_http_method
            .unwrap_or(d.permit_unconventional_http_method),
        casefold_http_method: args.casefold_http_method.unwrap_or(d.casefold_http_method),
        proxy_protocol: args.proxy_protocol.unwrap_or(d.proxy_protocol),
        proxy_allow_from: args.proxy_allow_from.unwrap_or(d.proxy_allow_from),
        access_logfile: args.access_logfile,
        access_logformat: args.access_logformat.unwrap_or(d.access_logformat),
        error_logfile: args.error_logfile.unwrap_or(d.error_logfile),
        log_level: args.log_level.unwrap_or(d.log_level),
        pid: args.pid,
        config_file: None,
        proc_name: args.name,
        backlog: args.backlog.unwrap_or(d.backlog),
        user: args.user,
        group: args.group,
        umask: args.umask,
        chdir: args.chdir,
        metrics_bind: args.metrics_bind,
        statsd_host: args.statsd_host,
        statsd_prefix: args.statsd_prefix.unwrap_or_default(),
        dogstatsd_tags: args.dogstatsd_tags.unwrap_or_default(),
        certfile: args.certfile,
        keyfile: args.keyfile,
        ca_certs: args.ca_certs,
        cert_reqs: args.cert_reqs.unwrap_or(d.cert_reqs),
        ssl_version: args.ssl_version.unwrap_or(d.ssl_version),
        ciphers: args.ciphers,
        do_handshake_on_connect: args.do_handshake_on_connect.unwrap_or(false),
        http_protocols: args.http_protocols.unwrap_or(d.http_protocols),
        http2c: args.http2c.unwrap_or(false),
        h2_max_concurrent_streams: args
            .h2_max_concurrent_streams
            .unwrap_or(d.h2_max_concurrent_streams),
        h2_initial_window_size: args
            .h2_initial_window_size
            .unwrap_or(d.h2_initial_window_size),
        h2_max_header_list_size: args.h2_max_header_list_size,
        app_tables: BTreeMap::new(),
        permit_missing_host: args.permit_missing_host.unwrap_or(d.permit_missing_host),
    })
}

#[cfg(test)]
mod tests;
