//! Metrics: counted in each worker, summed by the master, served by the
//! master to Prometheus (`--metrics-bind`), and sent as Gunicorn's statsd
//! metrics (`--statsd-host`).
//!
//! Why the master sums: a scrape must work while every worker is busy or
//! stuck, and multi-process exporters that scrape workers one by one (or
//! share files between them, as Python's `prometheus_client` does) get the
//! sums wrong across restarts. Here each worker's heartbeat thread sends a
//! [`Snapshot`] of everything it has counted since it started (its own
//! totals, so a lost line loses nothing), the master keeps the latest one
//! per worker, and when a worker exits — recycled, reloaded, killed — its
//! last snapshot's counters are added to what exited workers counted. A
//! counter therefore never goes backwards; a worker killed with SIGKILL
//! loses at most its last heartbeat interval.
//!
//! In the worker, counting is relaxed atomic additions on the request path
//! ([`ServerMetrics`]); an application registers its own counters and
//! histograms with [`counter`] and [`histogram`] and they are summed the
//! same way.

pub(crate) mod exposition;
pub(crate) mod fleet;
pub(crate) mod http;
pub(crate) mod statsd;
pub mod status;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The request duration buckets, seconds: 100 µs … 30 s.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// What kind of metric a family is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Only goes up; kept when a worker exits.
    Counter,
    /// A level now (in flight, open connections); a worker that exits
    /// takes its share with it.
    Gauge,
    /// Observations in buckets, with their sum and count; kept when a
    /// worker exits.
    Histogram,
}

/// One metric family as a worker reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Family {
    /// The metric name (`ferricorn_http_requests_total`).
    pub name: String,
    /// Its help text.
    pub help: String,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Histograms: the upper bounds, ascending, without `+Inf`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<f64>,
    /// Its series.
    pub series: Vec<Series>,
}

/// One series: its labels and value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Label names and values, in a fixed order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, String)>,
    /// Counter or gauge value; a histogram's sum.
    pub value: f64,
    /// Histograms: observations per bucket (not cumulative), the last one
    /// past the highest bound (`+Inf`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<u64>,
}

impl Family {
    /// A family of one series without labels.
    pub(crate) fn single(name: &str, help: &str, kind: Kind, value: f64) -> Family {
        Family {
            name: name.into(),
            help: help.into(),
            kind,
            buckets: Vec::new(),
            series: vec![Series {
                labels: Vec::new(),
                value,
                counts: Vec::new(),
            }],
        }
    }
}

/// Everything one worker has counted since it started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Its families.
    pub families: Vec<Family>,
}

// ---------------------------------------------------------------------------
// Cells: the atomics behind a series.

/// A histogram's buckets, sum and count, updated lock-free.
#[derive(Debug)]
pub(crate) struct HistogramCell {
    bounds: &'static [f64],
    /// `bounds.len() + 1` counts, the last for `+Inf`.
    counts: Box<[AtomicU64]>,
    /// The sum, as `f64` bits.
    sum: AtomicU64,
}

impl HistogramCell {
    pub(crate) fn new(bounds: &'static [f64]) -> HistogramCell {
        HistogramCell {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub(crate) fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    fn series(&self, labels: Vec<(String, String)>) -> Series {
        Series {
            labels,
            value: f64::from_bits(self.sum.load(Ordering::Relaxed)),
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------
// The application's registry.

/// A counter registered with [`counter`]; clone it freely.
#[derive(Clone, Debug)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

/// A histogram registered with [`histogram`]; clone it freely.
#[derive(Clone, Debug)]
pub struct Histogram(Arc<HistogramCell>);

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, v: f64) {
        self.0.observe(v);
    }

    /// Records a duration, in seconds.
    pub fn observe_duration(&self, d: Duration) {
        self.0.observe(d.as_secs_f64());
    }
}

enum Cell {
    Counter(Arc<AtomicU64>),
    Histogram(Arc<HistogramCell>),
}

struct AppFamily {
    name: String,
    help: String,
    kind: Kind,
    buckets: &'static [f64],
    series: Vec<(Vec<(String, String)>, Cell)>,
}

/// The application metrics of this process.
fn registry() -> &'static Mutex<Vec<AppFamily>> {
    static REGISTRY: OnceLock<Mutex<Vec<AppFamily>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Vec::new()))
}

/// Whether a metric or label name is one Prometheus accepts.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn register(
    name: &str,
    help: &str,
    kind: Kind,
    buckets: &'static [f64],
    labels: &[(&str, &str)],
    make: impl FnOnce() -> Cell,
) -> Cell {
    assert!(
        valid_name(name),
        "metric name {name:?} is not a Prometheus name"
    );
    for (l, _) in labels {
        assert!(valid_name(l), "label name {l:?} is not a Prometheus name");
    }
    let labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut families = registry().lock().unwrap_or_else(|p| p.into_inner());
    let family = match families.iter_mut().position(|f| f.name == name) {
        Some(i) => &mut families[i],
        None => {
            families.push(AppFamily {
                name: name.to_string(),
                help: help.to_string(),
                kind,
                buckets,
                series: Vec::new(),
            });
            families.last_mut().expect("just pushed")
        }
    };
    assert_eq!(family.kind, kind, "metric {name} registered as two kinds");
    if let Some((_, cell)) = family.series.iter().find(|(l, _)| *l == labels) {
        return match cell {
            Cell::Counter(c) => Cell::Counter(Arc::clone(c)),
            Cell::Histogram(h) => Cell::Histogram(Arc::clone(h)),
        };
    }
    let cell = make();
    let copy = match &cell {
        Cell::Counter(c) => Cell::Counter(Arc::clone(c)),
        Cell::Histogram(h) => Cell::Histogram(Arc::clone(h)),
    };
    family.series.push((labels, cell));
    copy
}

/// The counter `name` with these labels, registered on first use (later
/// calls return the same counter). Call it once and keep the handle: the
/// registration takes a lock, counting does not. Its totals are summed
/// over the workers by the master, as the server's own are. Label values
/// must come from a small fixed set (never a path or a user name).
///
/// Panics when `name` or a label name is not a valid Prometheus name, or
/// `name` was registered as a histogram.
pub fn counter(name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
    match register(name, help, Kind::Counter, &[], labels, || {
        Cell::Counter(Arc::new(AtomicU64::new(0)))
    }) {
        Cell::Counter(c) => Counter(c),
        Cell::Histogram(_) => unreachable!("kind checked"),
    }
}

/// The histogram `name` with these bucket bounds (ascending) and labels;
/// see [`counter`].
pub fn histogram(
    name: &str,
    help: &str,
    buckets: &'static [f64],
    labels: &[(&str, &str)],
) -> Histogram {
    assert!(
        buckets.windows(2).all(|w| w[0] < w[1]),
        "histogram {name}: bucket bounds must ascend"
    );
    match register(name, help, Kind::Histogram, buckets, labels, || {
        Cell::Histogram(Arc::new(HistogramCell::new(buckets)))
    }) {
        Cell::Histogram(h) => Histogram(h),
        Cell::Counter(_) => unreachable!("kind checked"),
    }
}

fn app_families() -> Vec<Family> {
    let families = registry().lock().unwrap_or_else(|p| p.into_inner());
    families
        .iter()
        .map(|f| Family {
            name: f.name.clone(),
            help: f.help.clone(),
            kind: f.kind,
            buckets: f.buckets.to_vec(),
            series: f
                .series
                .iter()
                .map(|(labels, cell)| match cell {
                    Cell::Counter(c) => Series {
                        labels: labels.clone(),
                        value: c.load(Ordering::Relaxed) as f64,
                        counts: Vec::new(),
                    },
                    Cell::Histogram(h) => h.series(labels.clone()),
                })
                .collect(),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The server's own metrics.

/// Why the server refused a request or a connection without calling the
/// application (`ferricorn_http_rejected_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// 400: malformed framing or head.
    BadRequest,
    /// 413: a body over `--limit-request-body`.
    BodyTooLarge,
    /// 414: a request line over `--limit-request-line`.
    UriTooLong,
    /// 431: too many or too large header fields.
    HeaderFieldsTooLarge,
    /// The head did not arrive within `--header-timeout`.
    HeaderTimeout,
    /// A client too slow to send its body or read the response.
    SlowClient,
    /// A PROXY protocol header refused.
    ProxyRefused,
    /// A TLS handshake failed (not TLS, no shared version or suite, a
    /// client certificate refused) or did not end within
    /// `--header-timeout`.
    TlsHandshake,
}

impl Rejection {
    const ALL: [Rejection; 8] = [
        Rejection::BadRequest,
        Rejection::BodyTooLarge,
        Rejection::UriTooLong,
        Rejection::HeaderFieldsTooLarge,
        Rejection::HeaderTimeout,
        Rejection::SlowClient,
        Rejection::ProxyRefused,
        Rejection::TlsHandshake,
    ];

    fn label(self) -> &'static str {
        match self {
            Rejection::BadRequest => "bad_request",
            Rejection::BodyTooLarge => "body_too_large",
            Rejection::UriTooLong => "uri_too_long",
            Rejection::HeaderFieldsTooLarge => "header_fields_too_large",
            Rejection::HeaderTimeout => "header_timeout",
            Rejection::SlowClient => "slow_client",
            Rejection::ProxyRefused => "proxy_refused",
            Rejection::TlsHandshake => "tls_handshake",
        }
    }

    /// The rejection a refusal status stands for.
    pub(crate) fn of_status(status: u16) -> Rejection {
        match status {
            413 => Rejection::BodyTooLarge,
            414 => Rejection::UriTooLong,
            431 => Rejection::HeaderFieldsTooLarge,
            _ => Rejection::BadRequest,
        }
    }
}

/// The server's counters in one worker process.
pub(crate) struct ServerMetrics {
    /// Requests answered, by status code 100..=599.
    codes: [AtomicU64; 500],
    duration: HistogramCell,
    in_flight: AtomicI64,
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
    connections_open: AtomicI64,
    connections_total: AtomicU64,
    rejected: [AtomicU64; Rejection::ALL.len()],
}

/// This process's server metrics.
pub(crate) fn server() -> &'static ServerMetrics {
    static SERVER: OnceLock<ServerMetrics> = OnceLock::new();
    SERVER.get_or_init(|| ServerMetrics {
        codes: std::array::from_fn(|_| AtomicU64::new(0)),
        duration: HistogramCell::new(DURATION_BUCKETS),
        in_flight: AtomicI64::new(0),
        request_bytes: AtomicU64::new(0),
        response_bytes: AtomicU64::new(0),
        connections_open: AtomicI64::new(0),
        connections_total: AtomicU64::new(0),
        rejected: std::array::from_fn(|_| AtomicU64::new(0)),
    })
}

impl ServerMetrics {
    /// A request's head has arrived.
    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request's response has been sent (or abandoned).
    pub(crate) fn request_finished(&self, status: u16, duration: Duration, response_bytes: u64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(c) = (status as usize)
            .checked_sub(100)
            .and_then(|i| self.codes.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.duration.observe(duration.as_secs_f64());
        self.response_bytes
            .fetch_add(response_bytes, Ordering::Relaxed);
    }

    /// Request body bytes read.
    pub(crate) fn request_body(&self, n: u64) {
        self.request_bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self, why: Rejection) {
        let i = Rejection::ALL
            .iter()
            .position(|r| *r == why)
            .expect("every rejection is listed");
        self.rejected[i].fetch_add(1, Ordering::Relaxed);
    }

    fn families(&self) -> Vec<Family> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let single = Family::single;
        let labelled = |name: &str, help: &str, label: &str, values: Vec<(String, f64)>| Family {
            name: name.into(),
            help: help.into(),
            kind: Kind::Counter,
            buckets: Vec::new(),
            series: values
                .into_iter()
                .map(|(v, value)| Series {
                    labels: vec![(label.into(), v)],
                    value,
                    counts: Vec::new(),
                })
                .collect(),
        };
        vec![
            labelled(
                "ferricorn_http_requests_total",
                "HTTP requests answered, by status code.",
                "code",
                self.codes
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.load(Ordering::Relaxed) > 0)
                    .map(|(i, c)| ((i + 100).to_string(), load(c)))
                    .collect(),
            ),
            Family {
                name: "ferricorn_http_request_duration_seconds".into(),
                help: "Time from a request's head to the end of its response.".into(),
                kind: Kind::Histogram,
                buckets: DURATION_BUCKETS.to_vec(),
                series: vec![self.duration.series(Vec::new())],
            },
            single(
                "ferricorn_http_requests_in_flight",
                "Requests being served now.",
                Kind::Gauge,
                self.in_flight.load(Ordering::Relaxed) as f64,
            ),
            single(
                "ferricorn_http_request_body_bytes_total",
                "Request body bytes read.",
                Kind::Counter,
                load(&self.request_bytes),
            ),
            single(
                "ferricorn_http_response_body_bytes_total",
                "Response body bytes sent.",
                Kind::Counter,
                load(&self.response_bytes),
            ),
            single(
                "ferricorn_connections_open",
                "Client connections open now.",
                Kind::Gauge,
                self.connections_open.load(Ordering::Relaxed) as f64,
            ),
            single(
                "ferricorn_connections_total",
                "Client connections accepted.",
                Kind::Counter,
                load(&self.connections_total),
            ),
            labelled(
                "ferricorn_http_rejected_total",
                "Requests and connections refused by the server before the application, by reason.",
                "reason",
                Rejection::ALL
                    .iter()
                    .zip(&self.rejected)
                    .map(|(r, c)| (r.label().to_string(), load(c)))
                    .collect(),
            ),
        ]
    }
}

/// A client connection, counted open while it lives.
pub(crate) struct OpenConnection(());

impl OpenConnection {
    pub(crate) fn new() -> OpenConnection {
        let m = server();
        m.connections_total.fetch_add(1, Ordering::Relaxed);
        m.connections_open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        server().connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Everything this worker has counted: the server's metrics and the
/// application's.
pub(crate) fn snapshot() -> Snapshot {
    let mut families = server().families();
    families.extend(app_families());
    Snapshot { families }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_take_what_is_at_most_their_bound() {
        let h = HistogramCell::new(&[1.0, 2.0]);
        for v in [0.5, 1.0, 1.5, 2.0, 3.0] {
            h.observe(v);
        }
        let s = h.series(Vec::new());
        assert_eq!(s.counts, [2, 2, 1]);
        assert_eq!(s.value, 8.0);
    }

    #[test]
    fn application_metrics_are_registered_once() {
        let a = counter("test_app_events_total", "Events.", &[("kind", "a")]);
        let again = counter("test_app_events_total", "Events.", &[("kind", "a")]);
        let b = counter("test_app_events_total", "Events.", &[("kind", "b")]);
        a.inc();
        again.add(2);
        b.inc();
        let family = app_families()
            .into_iter()
            .find(|f| f.name == "test_app_events_total")
            .unwrap();
        let values: Vec<f64> = family.series.iter().map(|s| s.value).collect();
        assert_eq!(values, [3.0, 1.0]);
    }

    #[test]
    #[should_panic(expected = "not a Prometheus name")]
    fn a_bad_name_is_refused() {
        counter("bad-name", "x", &[]);
    }

    #[test]
    fn a_snapshot_survives_its_line() {
        server().request_started();
        server().request_finished(204, Duration::from_millis(3), 10);
        let snap = snapshot();
        let line = serde_json::to_string(&snap).unwrap();
        assert!(!line.contains('\n'));
        let back: Snapshot = serde_json::from_str(&line).unwrap();
        assert_eq!(back, snap);
    }
}
