//! Gunicorn's statsd metrics (`--statsd-host`, `--statsd-prefix`,
//! `--dogstatsd-tags`), with Gunicorn's names and line formats
//! (`gunicorn/instrument/statsd.py`), so existing dashboards keep working:
//!
//! - per request, from the worker: `gunicorn.requests:1|c|@1.0`,
//!   `gunicorn.request.duration:MS|ms`, `gunicorn.request.status.NNN:1|c|@1.0`;
//! - from the master: `gunicorn.workers:N|g` on each change.
//!
//! One datagram per metric, as Gunicorn sends them, on a non-blocking UDP
//! socket: a full socket buffer or an absent statsd drops the metric, never
//! delays a request.

use std::net::UdpSocket;
use std::sync::OnceLock;
use std::time::Duration;

use crate::config::Config;
use crate::logging;

struct Statsd {
    socket: UdpSocket,
    prefix: String,
    tags: String,
}

static STATSD: OnceLock<Option<Statsd>> = OnceLock::new();

/// Gunicorn's prefix rule: a non-empty prefix ends with exactly one `.`.
fn prefix_of(p: &str) -> String {
    let p = p.trim_end_matches('.');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}.")
    }
}

/// Opens the socket when `--statsd-host` is set. Call once per process; a
/// host that does not resolve is logged and statsd stays off.
pub(crate) fn init(config: &Config) {
    STATSD.get_or_init(|| {
        let host = config.statsd_host.as_ref()?;
        let open = || -> std::io::Result<UdpSocket> {
            let target = std::net::ToSocketAddrs::to_socket_addrs(host.as_str())?
                .next()
                .ok_or_else(|| std::io::Error::other("no address"))?;
            let local = if target.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let socket = UdpSocket::bind(local)?;
            socket.connect(target)?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        };
        match open() {
            Ok(socket) => Some(Statsd {
                socket,
                prefix: prefix_of(&config.statsd_prefix),
                tags: config.dogstatsd_tags.trim().to_string(),
            }),
            Err(e) => {
                logging::error(&format!("--statsd-host {host}: {e}; statsd is off"));
                None
            }
        }
    });
}

fn send(s: &Statsd, metric: &str) {
    let mut line = format!("{}{metric}", s.prefix);
    if !s.tags.is_empty() {
        line.push_str("|#");
        line.push_str(&s.tags);
    }
    // Dropped when the buffer is full or nobody listens: by design.
    let _ = s.socket.send(line.as_bytes());
}

/// One request's metrics.
pub(crate) fn request(status: u16, duration: Duration) {
    let Some(Some(s)) = STATSD.get() else { return };
    send(s, "gunicorn.requests:1|c|@1.0");
    send(
        s,
        &format!(
            "gunicorn.request.duration:{}|ms",
            duration.as_secs_f64() * 1000.0
        ),
    );
    send(s, &format!("gunicorn.request.status.{status}:1|c|@1.0"));
}

/// The master's worker count.
pub(crate) fn workers(n: usize) {
    let Some(Some(s)) = STATSD.get() else { return };
    send(s, &format!("gunicorn.workers:{n}|g"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_end_with_one_dot() {
        assert_eq!(prefix_of(""), "");
        assert_eq!(prefix_of("app"), "app.");
        assert_eq!(prefix_of("app.."), "app.");
    }
}
