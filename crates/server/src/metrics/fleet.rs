//! [`Fleet`]: the master's sums over its workers, live and exited, and its
//! own figures (workers, exits, boots, reloads, the process tree).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Family, Kind, Series, Snapshot};
use crate::sys;

/// Why a worker exited (`ferricorn_worker_exits_total{reason}`).
pub(crate) const EXIT_REASONS: &[&str] = &[
    "timeout",
    "max_requests",
    "max_memory",
    "max_lifetime",
    "crash",
    "reload",
    "ttou",
    "boot_error",
    "shutdown",
];

/// Worker boot time buckets, seconds.
const BOOT_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A live worker as the master knows it.
#[derive(Debug, Clone)]
pub(crate) struct LiveWorker {
    pub id: u32,
    pub started: Instant,
    pub snapshot: Snapshot,
}

/// What the master sums and counts. Shared (behind a mutex) by the
/// arbiter, which feeds it, and the metrics server, which reads it.
#[derive(Debug)]
pub(crate) struct Fleet {
    live: BTreeMap<u32, LiveWorker>,
    /// Counters and histograms of the workers that exited.
    retired: Vec<Family>,
    exits: BTreeMap<&'static str, u64>,
    reloads: u64,
    boot_counts: Vec<u64>,
    boot_sum: f64,
    start_time: f64,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet {
            live: BTreeMap::new(),
            retired: Vec::new(),
            exits: EXIT_REASONS.iter().map(|r| (*r, 0)).collect(),
            reloads: 0,
            boot_counts: vec![0; BOOT_BUCKETS.len() + 1],
            boot_sum: 0.0,
            start_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

/// Adds `from`'s series into `into`: counters and gauges add, histograms
/// add bucket by bucket. `gauges`: whether gauges are taken (a live worker's
/// are; an exited worker's are not, its level went with it).
fn add(into: &mut Vec<Family>, from: &[Family], gauges: bool) {
    for f in from {
        if f.kind == Kind::Gauge && !gauges {
            continue;
        }
        let target = match into.iter().position(|t| t.name == f.name) {
            Some(i) => &mut into[i],
            None => {
                into.push(Family {
                    series: Vec::new(),
                    ..f.clone()
                });
                into.last_mut().expect("just pushed")
            }
        };
        // A family whose shape changed (another binary after USR2) is not
        // mixed with the old one's.
        if target.kind != f.kind || target.buckets != f.buckets {
            continue;
        }
        for s in &f.series {
            match target.series.iter_mut().find(|t| t.labels == s.labels) {
                Some(t) => {
                    t.value += s.value;
                    if t.counts.len() == s.counts.len() {
                        for (a, b) in t.counts.iter_mut().zip(&s.counts) {
                            *a += b;
                        }
                    }
                }
                None => target.series.push(s.clone()),
            }
        }
    }
}

impl Fleet {
    /// A worker was started.
    pub(crate) fn spawned(&mut self, pid: u32, id: u32) {
        self.live.insert(
            pid,
            LiveWorker {
                id,
                started: Instant::now(),
                snapshot: Snapshot::default(),
            },
        );
    }

    /// A worker is ready, `boot` after it was started.
    pub(crate) fn ready(&mut self, boot: Duration) {
        let secs = boot.as_secs_f64();
        let i = BOOT_BUCKETS.partition_point(|b| *b < secs);
        self.boot_counts[i] += 1;
        self.boot_sum += secs;
    }

    /// A worker's latest totals.
    pub(crate) fn report(&mut self, pid: u32, snapshot: Snapshot) {
        if let Some(w) = self.live.get_mut(&pid) {
            w.snapshot = snapshot;
        }
    }

    /// A worker exited: what it counted is kept.
    pub(crate) fn exited(&mut self, pid: u32, reason: &'static str) {
        if let Some(w) = self.live.remove(&pid) {
            add(&mut self.retired, &w.snapshot.families, false);
        }
        *self.exits.entry(reason).or_insert(0) += 1;
    }

    /// A HUP reload.
    pub(crate) fn reloaded(&mut self) {
        self.reloads += 1;
    }

    /// The live workers (pid, what the master knows).
    pub(crate) fn live(&self) -> impl Iterator<Item = (&u32, &LiveWorker)> {
        self.live.iter()
    }

    /// Every family: the workers' sums, then the master's own, then the
    /// process tree's (which reads `/proc`).
    #[cfg(test)]
    pub(crate) fn families(&self) -> Vec<Family> {
        let mut out = self.fleet_families();
        out.extend(process_families(&self.pids()));
        out
    }

    /// The live workers' pids.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.live.keys().copied().collect()
    }

    /// The workers' sums and the master's own families: what the fleet
    /// holds, so a scrape copies it under the fleet's lock and reads
    /// `/proc` ([`process_families`]) after letting go of it.
    pub(crate) fn fleet_families(&self) -> Vec<Family> {
        let mut out = Vec::new();
        add(&mut out, &self.retired, false);
        for w in self.live.values() {
            add(&mut out, &w.snapshot.families, true);
        }
        // Gauges of workers that all exited: present, at zero.
        for f in &mut out {
            f.series.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        let plain = Family::single;
        out.push(plain(
            "ferricorn_workers",
            "Worker processes alive now.",
            Kind::Gauge,
            self.live.len() as f64,
        ));
        out.push(Family {
            name: "ferricorn_worker_exits_total".into(),
            help: "Worker processes that exited, by reason.".into(),
            kind: Kind::Counter,
            buckets: Vec::new(),
            series: self
                .exits
                .iter()
                .map(|(reason, n)| Series {
                    labels: vec![("reason".into(), reason.to_string())],
                    value: *n as f64,
                    counts: Vec::new(),
                })
                .collect(),
        });
        out.push(Family {
            name: "ferricorn_worker_boot_seconds".into(),
            help: "Time from starting a worker to its serving.".into(),
            kind: Kind::Histogram,
            buckets: BOOT_BUCKETS.to_vec(),
            series: vec![Series {
                labels: Vec::new(),
                value: self.boot_sum,
                counts: self.boot_counts.clone(),
            }],
        });
        out.push(plain(
            "ferricorn_reloads_total",
            "Reloads (HUP) handled.",
            Kind::Counter,
            self.reloads as f64,
        ));
        out.push(plain(
            "ferricorn_master_start_time_seconds",
            "When the master started, in Unix time.",
            Kind::Gauge,
            self.start_time,
        ));
        out.push(Family {
            name: "ferricorn_build_info".into(),
            help: "The running ferricorn's version (value 1).".into(),
            kind: Kind::Gauge,
            buckets: Vec::new(),
            series: vec![Series {
                labels: vec![("version".into(), env!("CARGO_PKG_VERSION").into())],
                value: 1.0,
                counts: Vec::new(),
            }],
        });
        out
    }
}

/// The memory and CPU of the master and its live workers `pids`, read from
/// `/proc` (outside the fleet's lock).
pub(crate) fn process_families(pids: &[u32]) -> [Family; 2] {
    let (rss, cpu) = process_tree(pids);
    [
        Family::single(
            "ferricorn_process_resident_memory_bytes",
            "Resident memory of the master and its live workers.",
            Kind::Gauge,
            rss as f64,
        ),
        Family::single(
            "ferricorn_process_cpu_seconds_total",
            "CPU time of the master and of every worker it ever had.",
            Kind::Counter,
            cpu,
        ),
    ]
}

/// `/proc/PID/stat`'s utime, stime, cutime and cstime, in seconds.
fn cpu_times(pid: &str) -> Option<[f64; 4]> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields resume after ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = sys::clock_ticks_per_second() as f64;
    let f = |i: usize| fields.get(i)?.parse::<f64>().ok().map(|t| t / tick);
    // Fields 14..=17 of the whole line, 11..=14 after the state (field 3).
    Some([f(11)?, f(12)?, f(13)?, f(14)?])
}

/// Resident bytes of the master and `workers`, and CPU seconds of the
/// master, its reaped children (every exited worker: cutime and cstime)
/// and its live workers: a sum that never goes down as workers come and go.
fn process_tree(workers: &[u32]) -> (u64, f64) {
    let me = std::process::id();
    let mut rss = sys::rss_bytes(me).unwrap_or(0);
    let mut cpu = cpu_times("self").map_or(0.0, |t| t.iter().sum());
    for pid in workers {
        rss += sys::rss_bytes(*pid).unwrap_or(0);
        cpu += cpu_times(&pid.to_string()).map_or(0.0, |t| t[0] + t[1]);
    }
    (rss, cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(name: &str, code: &str, v: f64) -> Family {
        Family {
            name: name.into(),
            help: "h".into(),
            kind: Kind::Counter,
            buckets: Vec::new(),
            series: vec![Series {
                labels: vec![("code".into(), code.into())],
                value: v,
                counts: Vec::new(),
            }],
        }
    }

    fn value(f: &Fleet, name: &str, code: &str) -> f64 {
        f.families()
            .into_iter()
            .find(|x| x.name == name)
            .and_then(|x| x.series.into_iter().find(|s| s.labels[0].1 == code))
            .map_or(0.0, |s| s.value)
    }

    #[test]
    fn counts_of_exited_workers_are_kept() {
        let mut f = Fleet::default();
        f.spawned(1, 1);
        f.spawned(2, 2);
        f.report(
            1,
            Snapshot {
                families: vec![counter("r_total", "200", 5.0)],
            },
        );
        f.report(
            2,
            Snapshot {
                families: vec![counter("r_total", "200", 7.0)],
            },
        );
        assert_eq!(value(&f, "r_total", "200"), 12.0);
        f.exited(1, "crash");
        assert_eq!(value(&f, "r_total", "200"), 12.0);
        f.spawned(3, 1);
        f.report(
            3,
            Snapshot {
                families: vec![counter("r_total", "404", 1.0)],
            },
        );
        assert_eq!(value(&f, "r_total", "200"), 12.0);
        assert_eq!(value(&f, "r_total", "404"), 1.0);
        assert_eq!(value(&f, "ferricorn_worker_exits_total", "crash"), 1.0);
        assert_eq!(value(&f, "ferricorn_worker_exits_total", "reload"), 0.0);
    }

    #[test]
    fn the_process_tree_is_measured() {
        let (rss, cpu) = process_tree(&[]);
        assert!(rss > 0);
        assert!(cpu >= 0.0);
    }
}
