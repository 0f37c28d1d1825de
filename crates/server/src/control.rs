//! The channel between a worker process and its master.
//!
//! Each worker gets one end of a Unix socket pair, inherited as a file
//! descriptor; the master keeps the other end and reads it on a thread of
//! its own. The worker writes short text lines:
//!
//! - `ready` once, when it has run the application's start-up hook and is
//!   accepting connections;
//! - `hb REQUESTS STALLED_MS [ELAPSED_MS METHOD REQUEST_ID PATH]` as its
//!   heartbeat: how long the worker's runtime has made no progress, and its
//!   oldest in-flight request, so that a worker timeout can say what the
//!   worker was stuck on (Gunicorn's bare "WORKER TIMEOUT" line is its most
//!   common complaint);
//! - `retire REASON` when it has served its `--max-requests` quota and asks
//!   the master to replace it;
//! - `m JSON`, with `--metrics-bind`: everything the worker has counted
//!   since it started ([`Snapshot`]), after each heartbeat and once more
//!   when it has drained, for the master to sum.
//!
//! Why a socket and not a file: Gunicorn's heartbeat is the mtime of a
//! temporary file, and on a slow disk whole fleets time out together. A
//! socket costs no I/O, and a worker sees `EPIPE` at once when its master is
//! gone. Lines stay far below `PIPE_BUF`, so each write is atomic.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Environment variable: the worker's number.
pub(crate) const ENV_WORKER_ID: &str = "FERRICORN_WORKER_ID";
/// Environment variable: the listening sockets' fds, comma-separated.
pub(crate) const ENV_LISTEN_FDS: &str = "FERRICORN_LISTEN_FDS";
/// Environment variable: the worker's end of the control socket.
pub(crate) const ENV_CONTROL_FD: &str = "FERRICORN_CONTROL_FD";

use crate::metrics::Snapshot;

/// Longest path kept in a heartbeat line.
const MAX_PATH: usize = 256;

/// What the master learns from a worker's line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WorkerMessage {
    /// The worker serves.
    Ready,
    /// The worker is alive; what it is doing.
    Heartbeat {
        /// Requests served so far.
        requests: u64,
        /// How long the worker's runtime has not ticked.
        stalled: Duration,
        /// Its oldest in-flight request, if any.
        busy: Option<Busy>,
    },
    /// The worker has reached a recycling limit and asks to be replaced.
    Retire(String),
    /// The worker's metrics totals.
    Metrics(Snapshot),
}

/// A request a worker is serving, as its heartbeat reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Busy {
    pub method: String,
    pub path: String,
    pub request_id: String,
    pub elapsed: Duration,
}

impl WorkerMessage {
    /// Parses one line (without its newline). Unknown lines yield `None`.
    pub(crate) fn parse(line: &str) -> Option<WorkerMessage> {
        let mut parts = line.splitn(7, ' ');
        match parts.next()? {
            "ready" => Some(WorkerMessage::Ready),
            "m" => serde_json::from_str(line.strip_prefix("m ")?)
                .ok()
                .map(WorkerMessage::Metrics),
            "retire" => Some(WorkerMessage::Retire(
                line.strip_prefix("retire ").unwrap_or("").to_string(),
            )),
            "hb" => {
                let requests = parts.next()?.parse().ok()?;
                let stalled = Duration::from_millis(parts.next()?.parse().ok()?);
                let busy = match parts.next() {
                    None => None,
                    Some(ms) => Some(Busy {
                        elapsed: Duration::from_millis(ms.parse().ok()?),
                        method: parts.next()?.to_string(),
                        request_id: parts.next()?.to_string(),
                        path: parts.next().unwrap_or("").to_string(),
                    }),
                };
                Some(WorkerMessage::Heartbeat {
                    requests,
                    stalled,
                    busy,
                })
            }
            _ => None,
        }
    }

    /// The line for this message, newline included.
    pub(crate) fn encode(&self) -> String {
        match self {
            WorkerMessage::Ready => "ready\n".to_string(),
            WorkerMessage::Retire(reason) => format!("retire {}\n", clean(reason, 200)),
            // JSON escapes every control byte: one line whatever the
            // application named its metrics and labels.
            WorkerMessage::Metrics(snapshot) => format!(
                "m {}\n",
                serde_json::to_string(snapshot).unwrap_or_else(|_| "{}".into())
            ),
            WorkerMessage::Heartbeat {
                requests,
                stalled,
                busy: None,
            } => format!("hb {requests} {}\n", stalled.as_millis()),
            WorkerMessage::Heartbeat {
                requests,
                stalled,
                busy: Some(b),
            } => format!(
                "hb {requests} {} {} {} {} {}\n",
                stalled.as_millis(),
                b.elapsed.as_millis(),
                clean(&b.method, 32),
                clean(&b.request_id, 64),
                clean(&b.path, MAX_PATH)
            ),
        }
    }
}

/// Keeps a field to one printable token: spaces and control bytes become
/// `_`, so a hostile path cannot forge a second message.
fn clean(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if out.len() > max {
        let mut cut = max;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// The worker's end of the control socket.
pub(crate) struct ControlSender {
    stream: UnixStream,
}

impl ControlSender {
    /// Wraps the inherited socket. Writes block, which is harmless: only
    /// the heartbeat thread writes, never the runtime.
    pub(crate) fn new(stream: UnixStream) -> io::Result<Self> {
        stream.set_nonblocking(false)?;
        Ok(ControlSender { stream })
    }

    /// Sends a message. An error (`BrokenPipe`) means the master is gone.
    pub(crate) fn send(&mut self, message: &WorkerMessage) -> io::Result<()> {
        self.stream.write_all(message.encode().as_bytes())
    }
}

/// The worker's heartbeat, run on a plain thread of its own: every
/// `interval` it reports `status()` (requests served, how long the runtime
/// has been stalled, the oldest in-flight request). Once three quarters of
/// its `quota` are served it asks to retire, so that the master starts its
/// replacement before the worker stops at the quota. Returns when the
/// master is gone.
///
/// Why a thread and not a task: when the application blocks the runtime (a
/// stuck synchronous handler), a task could not report *what* blocked it.
/// The thread keeps reporting, the runtime's own ticker tells how long it
/// has been stuck, and the master decides on `--timeout` from that.
pub(crate) fn heartbeat(
    sender: &std::sync::Mutex<ControlSender>,
    interval: Duration,
    quota: Option<u64>,
    metrics: bool,
    status: impl Fn() -> (u64, Duration, Option<Busy>),
) {
    let master = std::os::unix::process::parent_id();
    let mut retired = false;
    loop {
        let (requests, stalled, busy) = status();
        let mut sender = sender.lock().unwrap_or_else(|p| p.into_inner());
        let mut result = sender.send(&WorkerMessage::Heartbeat {
            requests,
            stalled,
            busy,
        });
        if metrics {
            result = result
                .and_then(|()| sender.send(&WorkerMessage::Metrics(crate::metrics::snapshot())));
        }
        if let (Some(quota), false) = (quota, retired) {
            if requests >= quota - quota / 4 {
                retired = true;
                let reason = format!("max-requests: served {requests} of a quota of {quota}");
                result = result.and_then(|()| sender.send(&WorkerMessage::Retire(reason)));
            }
        }
        drop(sender);
        if result.is_err() || std::os::unix::process::parent_id() != master {
            return;
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_round_trips() {
        let msg = WorkerMessage::Heartbeat {
            requests: 7,
            stalled: Duration::from_millis(20),
            busy: Some(Busy {
                method: "GET".into(),
                path: "/block?s=9 x\nretire evil".into(),
                request_id: "abc".into(),
                elapsed: Duration::from_millis(1500),
            }),
        };
        let line = msg.encode();
        assert_eq!(line.matches('\n').count(), 1, "one line only: {line:?}");
        let parsed = WorkerMessage::parse(line.trim_end()).unwrap();
        match parsed {
            WorkerMessage::Heartbeat {
                requests,
                stalled,
                busy: Some(b),
            } => {
                assert_eq!(requests, 7);
                assert_eq!(stalled, Duration::from_millis(20));
                assert_eq!(b.method, "GET");
                assert_eq!(b.path, "/block?s=9_x_retire_evil");
                assert_eq!(b.request_id, "abc");
                assert_eq!(b.elapsed, Duration::from_millis(1500));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn simple_messages_round_trip() {
        for msg in [
            WorkerMessage::Ready,
            WorkerMessage::Retire("max-requests (1000)".into()),
            WorkerMessage::Heartbeat {
                requests: 0,
                stalled: Duration::ZERO,
                busy: None,
            },
        ] {
            let line = msg.encode();
            let back = WorkerMessage::parse(line.trim_end()).unwrap();
            if let WorkerMessage::Retire(r) = &back {
                assert_eq!(r, "max-requests_(1000)");
            } else {
                assert_eq!(back, msg);
            }
        }
        assert_eq!(WorkerMessage::parse("bogus"), None);
    }
}
