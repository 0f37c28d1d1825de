//! `--status ADDRESS`: a one-screen view of a running master, read from its
//! metrics address (`GET /status`), for a person at a terminal: the workers
//! (pid, age, requests served, in flight, memory), the answers per status
//! class and the latency percentiles; `--watch SECONDS` refreshes it.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::Value;

use super::{Family, Kind};
use crate::config::BindAddr;

/// Fetches `GET /status` from a master's metrics address.
fn fetch(addr: &BindAddr) -> Result<Value, String> {
    let request = b"GET /status HTTP/1.1\r\nHost: ferricorn\r\nConnection: close\r\n\r\n";
    let timeout = Some(Duration::from_secs(5));
    let mut raw = Vec::new();
    let io = |e: std::io::Error| {
        format!("{addr}: {e} (is a master running with --metrics-bind {addr}?)")
    };
    match addr {
        BindAddr::Tcp(sa) => {
            let mut s =
                std::net::TcpStream::connect_timeout(sa, Duration::from_secs(5)).map_err(io)?;
            s.set_read_timeout(timeout).map_err(io)?;
            s.write_all(request).map_err(io)?;
            s.read_to_end(&mut raw).map_err(io)?;
        }
        BindAddr::Unix(path) => {
            let mut s = std::os::unix::net::UnixStream::connect(path).map_err(io)?;
            s.set_read_timeout(timeout).map_err(io)?;
            s.write_all(request).map_err(io)?;
            s.read_to_end(&mut raw).map_err(io)?;
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{addr}: not an HTTP answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "{addr}: {}",
            head.lines().next().unwrap_or("no status line")
        ));
    }
    serde_json::from_str(body).map_err(|e| format!("{addr}: not a ferricorn status ({e})"))
}

fn duration(secs: f64) -> String {
    let s = secs as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn bytes(n: f64) -> String {
    format!("{:.1} MiB", n / (1024.0 * 1024.0))
}

/// The `q` quantile of a histogram family (summed over its series), by
/// linear interpolation within the bucket, as Prometheus's
/// `histogram_quantile` does.
pub(crate) fn quantile(f: &Family, q: f64) -> Option<f64> {
    let mut counts = vec![0u64; f.buckets.len() + 1];
    for s in &f.series {
        for (c, n) in counts.iter_mut().zip(&s.counts) {
            *c += n;
        }
    }
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0u64;
    for (i, c) in counts.iter().enumerate() {
        if (seen + c) as f64 >= rank && *c > 0 {
            let lower = if i == 0 { 0.0 } else { f.buckets[i - 1] };
            let Some(upper) = f.buckets.get(i) else {
                return f.buckets.last().copied();
            };
            return Some(lower + (upper - lower) * ((rank - seen as f64) / *c as f64));
        }
        seen += c;
    }
    f.buckets.last().copied()
}

/// The screen, from a `/status` answer.
pub(crate) fn render(status: &Value) -> String {
    let families: Vec<Family> =
        serde_json::from_value(status["families"].clone()).unwrap_or_default();
    let find = |name: &str| families.iter().find(|f| f.name == name);
    let single = |name: &str| {
        find(name)
            .and_then(|f| f.series.first())
            .map_or(0.0, |s| s.value)
    };
    let version = find("ferricorn_build_info")
        .and_then(|f| f.series.first())
        .and_then(|s| s.labels.first())
        .map_or("?".to_string(), |(_, v)| v.clone());
    let started = single("ferricorn_master_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut out = format!(
        "ferricorn {version} — master up {}, {} workers, {} reloads, {} RSS in all\n\n",
        duration(now - started),
        single("ferricorn_workers"),
        single("ferricorn_reloads_total"),
        bytes(single("ferricorn_process_resident_memory_bytes")),
    );
    out.push_str(&format!(
        "{:>8}  {:>6}  {:>8}  {:>10}  {:>9}  {:>10}\n",
        "PID", "WORKER", "AGE", "REQUESTS", "IN FLIGHT", "RSS"
    ));
    for w in status["workers"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:>8}  {:>6}  {:>8}  {:>10}  {:>9}  {:>10}\n",
            w["pid"].to_string(),
            w["id"].to_string(),
            duration(w["age_seconds"].as_f64().unwrap_or(0.0)),
            w["requests"].as_f64().unwrap_or(0.0),
            w["in_flight"].as_f64().unwrap_or(0.0),
            bytes(w["rss_bytes"].as_f64().unwrap_or(0.0)),
        ));
    }
    let mut classes = [0.0; 5];
    if let Some(f) = find("ferricorn_http_requests_total") {
        for s in &f.series {
            let code: usize = s
                .labels
                .first()
                .and_then(|(_, c)| c.parse().ok())
                .unwrap_or(0);
            if let Some(c) = classes.get_mut(code / 100 - 1) {
                *c += s.value;
            }
        }
    }
    out.push_str(&format!(
        "\nanswers  1xx {}  2xx {}  3xx {}  4xx {}  5xx {}\n",
        classes[0], classes[1], classes[2], classes[3], classes[4]
    ));
    if let Some(f) =
        find("ferricorn_http_request_duration_seconds").filter(|f| f.kind == Kind::Histogram)
    {
        let ms = |q| quantile(f, q).map_or("-".to_string(), |s| format!("{:.2} ms", s * 1000.0));
        out.push_str(&format!("latency  p50 {}  p99 {}\n", ms(0.5), ms(0.99)));
    }
    out
}

/// Prints the status of the master at `addr`, every `watch` if given.
/// Returns the process exit code: 0, or 1 when the master cannot be read.
pub fn run(addr: &BindAddr, watch: Option<Duration>) -> i32 {
    loop {
        match fetch(addr) {
            Ok(status) => {
                if watch.is_some() {
                    // Clear the screen and go home, as `watch` does.
                    print!("\x1b[2J\x1b[H");
                }
                print!("{}", render(&status));
                let _ = std::io::stdout().flush();
            }
            Err(e) => {
                eprintln!("error: --status {e}");
                if watch.is_none() {
                    return 1;
                }
            }
        }
        match watch {
            Some(every) => std::thread::sleep(every),
            None => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Series;
    use super::*;

    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        let f = Family {
            name: "d".into(),
            help: String::new(),
            kind: Kind::Histogram,
            buckets: vec![1.0, 2.0],
            series: vec![Series {
                labels: Vec::new(),
                value: 0.0,
                counts: vec![50, 50, 0],
            }],
        };
        assert_eq!(quantile(&f, 0.5), Some(1.0));
        assert_eq!(quantile(&f, 0.75), Some(1.5));
    }
}
