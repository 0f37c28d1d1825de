//! The exposition: families as Prometheus's text format (0.0.4) or, when
//! the scraper asks for it, OpenMetrics 1.0.
//!
//! Written here rather than with a client library: the families are sums
//! the master computes from its workers' reports, not metric objects living
//! in this process, which is what the client libraries' registries hold;
//! the format itself is a few lines of escaping. `promtool check metrics`
//! and an independent parser check it in the tests.

use super::{Family, Kind};

/// The content type of the text format.
pub(crate) const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of OpenMetrics.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header prefers OpenMetrics (Prometheus sends
/// `application/openmetrics-text;version=1.0.0,...;q=0.5,text/plain...`).
pub(crate) fn wants_openmetrics(accept: &str) -> bool {
    let mut best: Option<(f32, bool)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let open = media == "application/openmetrics-text";
        if !open && media != "text/plain" && media != "*/*" {
            continue;
        }
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, open));
        }
    }
    best.is_some_and(|(q, open)| open && q > 0.0)
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A bucket bound, always with a fraction (`1.0`), as client libraries
/// write them.
fn bound(v: f64) -> String {
    format!("{v:?}")
}

fn labels(pairs: &[(String, String)], extra: Option<(&str, &str)>) -> String {
    let mut all: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    if let Some((k, v)) = extra {
        all.push(format!("{k}=\"{v}\""));
    }
    if all.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", all.join(","))
    }
}

/// Renders `families`; `openmetrics` picks the format.
pub(crate) fn render(families: &[Family], openmetrics: bool) -> String {
    let mut out = String::new();
    for f in families {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        // OpenMetrics names a counter family without its `_total`, which
        // every sample then carries.
        let (family, sample) = match (openmetrics, f.kind) {
            (true, Kind::Counter) => {
                let base = f.name.strip_suffix("_total").unwrap_or(&f.name);
                (base.to_string(), format!("{base}_total"))
            }
            _ => (f.name.clone(), f.name.clone()),
        };
        out.push_str(&format!("# HELP {family} {}\n", escape_help(&f.help)));
        out.push_str(&format!("# TYPE {family} {kind}\n"));
        for s in &f.series {
            match f.kind {
                Kind::Counter | Kind::Gauge => {
                    out.push_str(&format!(
                        "{sample}{} {}\n",
                        labels(&s.labels, None),
                        number(s.value)
                    ));
                }
                Kind::Histogram => {
                    let mut cumulative = 0;
                    for (i, c) in s.counts.iter().enumerate() {
                        cumulative += c;
                        let le = f.buckets.get(i).map_or("+Inf".to_string(), |b| bound(*b));
                        out.push_str(&format!(
                            "{family}_bucket{} {cumulative}\n",
                            labels(&s.labels, Some(("le", &le)))
                        ));
                    }
                    let l = labels(&s.labels, None);
                    out.push_str(&format!("{family}_sum{l} {}\n", number(s.value)));
                    out.push_str(&format!("{family}_count{l} {cumulative}\n"));
                }
            }
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Series;
    use super::*;

    fn families() -> Vec<Family> {
        vec![
            Family {
                name: "x_requests_total".into(),
                help: "Requests.\nBy code \\ kind.".into(),
                kind: Kind::Counter,
                buckets: Vec::new(),
                series: vec![Series {
                    labels: vec![("code".into(), "2\"0\"0".into())],
                    value: 3.0,
                    counts: Vec::new(),
                }],
            },
            Family {
                name: "x_seconds".into(),
                help: "Time.".into(),
                kind: Kind::Histogram,
                buckets: vec![0.5, 1.0],
                series: vec![Series {
                    labels: Vec::new(),
                    value: 2.25,
                    counts: vec![1, 0, 2],
                }],
            },
        ]
    }

    #[test]
    fn text_format() {
        assert_eq!(
            render(&families(), false),
            "# HELP x_requests_total Requests.\\nBy code \\\\ kind.\n\
             # TYPE x_requests_total counter\n\
             x_requests_total{code=\"2\\\"0\\\"0\"} 3\n\
             # HELP x_seconds Time.\n\
             # TYPE x_seconds histogram\n\
             x_seconds_bucket{le=\"0.5\"} 1\n\
             x_seconds_bucket{le=\"1.0\"} 1\n\
             x_seconds_bucket{le=\"+Inf\"} 3\n\
             x_seconds_sum 2.25\n\
             x_seconds_count 3\n"
        );
    }

    #[test]
    fn openmetrics_format() {
        let om = render(&families(), true);
        assert!(om.contains("# TYPE x_requests counter\n"), "{om}");
        assert!(om.contains("\nx_requests_total{code="), "{om}");
        assert!(om.ends_with("# EOF\n"));
    }

    #[test]
    fn negotiation() {
        assert!(wants_openmetrics(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(!wants_openmetrics("text/plain;version=0.0.4"));
        assert!(!wants_openmetrics(""));
        assert!(!wants_openmetrics(
            "text/plain, application/openmetrics-text;q=0.5"
        ));
    }
}
