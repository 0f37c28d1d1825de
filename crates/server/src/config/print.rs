//! `--print-config`: the resolved [`Config`] as TOML that `--config` reads
//! back (off settings print as 0, the flags' spelling of "off").

use std::time::Duration;

use toml::{Table, Value};

use super::{Config, LogTarget};

fn secs(d: Option<Duration>) -> Value {
    let d = d.unwrap_or(Duration::ZERO);
    if d.subsec_nanos() == 0 {
        Value::Integer(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    } else {
        Value::Float(d.as_secs_f64())
    }
}

fn int(n: impl TryInto<i64>) -> Value {
    Value::Integer(n.try_into().unwrap_or(i64::MAX))
}

fn text(s: impl ToString) -> Value {
    Value::String(s.to_string())
}

pub(super) fn to_toml(c: &Config) -> String {
    let mut t = Table::new();
    let mut put = |k: &str, v: Value| {
        t.insert(k.to_owned(), v);
    };
    put("bind", Value::Array(c.bind.iter().map(text).collect()));
    put("workers", int(c.workers));
    put("threads", int(c.threads));
    put("timeout", secs(c.timeout));
    put("graceful_timeout", secs(Some(c.graceful_timeout)));
    put("keep_alive", secs(c.keep_alive));
    put("max_requests", int(c.max_requests.unwrap_or(0)));
    put("max_requests_jitter", int(c.max_requests_jitter));
    put("max_worker_memory", int(c.max_worker_memory.unwrap_or(0)));
    put("max_worker_lifetime", secs(c.max_worker_lifetime));
    put("limit_request_line", int(c.limit_request_line));
    put("limit_request_fields", int(c.limit_request_fields));
    put("limit_request_field_size", int(c.limit_request_field_size));
    put("limit_request_body", int(c.limit_request_body.unwrap_or(0)));
    put("header_timeout", secs(c.header_timeout));
    put("request_timeout", secs(c.request_timeout));
    put("send_timeout", secs(c.send_timeout));
    put("worker_connections", int(c.worker_connections));
    put("forwarded_allow_ips", text(&c.forwarded_allow_ips));
    put("header_map", text(c.header_map));
    put(
        "permit_unconventional_http_method",
        Value::Boolean(c.permit_unconventional_http_method),
    );
    put(
        "casefold_http_method",
        Value::Boolean(c.casefold_http_method),
    );
    put("proxy_protocol", text(c.proxy_protocol));
    for (key, path) in [
        ("certfile", &c.certfile),
        ("keyfile", &c.keyfile),
        ("ca_certs", &c.ca_certs),
    ] {
        if let Some(p) = path {
            put(key, text(p.display()));
        }
    }
    put("cert_reqs", int(c.cert_reqs.as_number()));
    put("ssl_version", text(c.ssl_version.as_str()));
    if let Some(ciphers) = &c.ciphers {
        put("ciphers", text(ciphers));
    }
    put("http_protocols", text(c.http_protocols));
    put("http2c", Value::Boolean(c.http2c));
    put(
        "h2_max_concurrent_streams",
        int(c.h2_max_concurrent_streams),
    );
    put("h2_initial_window_size", int(c.h2_initial_window_size));
    if let Some(n) = c.h2_max_header_list_size {
        put("h2_max_header_list_size", int(n));
    }
    put("proxy_allow_from", text(&c.proxy_allow_from));
    if let Some(target) = &c.access_logfile {
        put("access_logfile", text(target));
    }
    put("access_logformat", text(&c.access_logformat));
    put(
        "error_logfile",
        text(match &c.error_logfile {
            LogTarget::Std => "-".to_owned(),
            other => other.to_string(),
        }),
    );
    put("log_level", text(c.log_level.as_str()));
    if let Some(p) = &c.pid {
        put("pid", text(p.display()));
    }
    if let Some(n) = &c.proc_name {
        put("name", text(n));
    }
    put("backlog", int(c.backlog));
    if let Some(u) = &c.user {
        put("user", text(u));
    }
    if let Some(g) = &c.group {
        put("group", text(g));
    }
    if let Some(m) = c.umask {
        put("umask", text(format!("0o{m:o}")));
    }
    if let Some(d) = &c.chdir {
        put("chdir", text(d.display()));
    }
    if let Some(m) = &c.metrics_bind {
        put("metrics_bind", text(m));
    }
    if let Some(h) = &c.statsd_host {
        put("statsd_host", text(h));
        put("statsd_prefix", text(&c.statsd_prefix));
        put("dogstatsd_tags", text(&c.dogstatsd_tags));
    }
    put("permit_missing_host", Value::Boolean(c.permit_missing_host));
    let mut out = String::new();
    if let Some(path) = &c.config_file {
        out.push_str(&format!("# resolved from {}\n", path.display()));
    }
    out.push_str(&toml::to_string(&t).unwrap_or_default());
    for (name, table) in &c.app_tables {
        let mut wrapper = Table::new();
        wrapper.insert(name.clone(), Value::Table(table.clone()));
        out.push('\n');
        out.push_str(&toml::to_string(&wrapper).unwrap_or_default());
    }
    out
}
