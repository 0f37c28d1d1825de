//! A worker process started by the master: it adopts the inherited sockets,
//! reports to the master over its control socket (see `crate::control`),
//! and answers the master's signals.
//!
//! - TERM: graceful stop (finish in-flight requests, up to
//!   `--graceful-timeout`).
//! - QUIT, INT: exit now (the master's quick stop).
//! - USR1: reopen the log files.
//! - The master gone (control socket closed, or re-parented): graceful stop,
//!   so an orphaned worker never lingers. The master also sets the
//!   parent-death signal to TERM, which covers a master killed by SIGKILL.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferricorn_app_interface::{Application, BoxError};
use tokio::signal::unix::{signal, SignalKind};

use super::{run_worker_process, WorkerContext, WorkerError};
use crate::arbiter::jitter_fraction;
use crate::config::Config;
use crate::control::{self, Busy, ControlSender, WorkerMessage};
use crate::listener::Listener;
use crate::{logging, sys};

/// The worker id, if this process was started by a master as a worker.
pub(crate) fn worker_id_from_env() -> Option<u32> {
    std::env::var(control::ENV_WORKER_ID).ok()?.parse().ok()
}

/// Runs this process as worker `worker_id` of a master.
pub(crate) fn run<A, F>(config: Config, worker_id: u32, make_app: F) -> Result<(), WorkerError>
where
    A: Application,
    F: FnOnce() -> Result<A, BoxError>,
{
    let (listeners, control) = inherited()?;
    sys::set_comm(&format!("ferricorn-w{worker_id}"));
    let quota = config
        .max_requests
        .map(|max| max + (config.max_requests_jitter as f64 * jitter_fraction()).round() as u64);
    // Heartbeats four times per timeout, at most once a second.
    let interval = config.timeout.map_or(Duration::from_secs(1), |t| {
        (t / 4).clamp(Duration::from_millis(100), Duration::from_secs(1))
    });
    let metrics = config.metrics_bind.is_some();
    crate::metrics::statsd::init(&config);
    let control = Arc::new(std::sync::Mutex::new(control));
    let final_report = Arc::clone(&control);
    let config = Arc::new(config);
    let result = run_worker_process(
        config,
        listeners,
        make_app,
        WorkerContext::new(worker_id),
        move |ctx| {
            let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
            let mut quit = signal(SignalKind::quit()).expect("install SIGQUIT handler");
            let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
            let mut usr1 = signal(SignalKind::user_defined1()).expect("install SIGUSR1 handler");
            if let Some(quota) = quota {
                ctx.set_request_quota(quota);
            }
            let quota_ctx = ctx.clone();
            // The runtime's ticker: proves the runtime makes progress.
            let started = Instant::now();
            let last_tick = Arc::new(AtomicU64::new(0));
            let tick = Arc::clone(&last_tick);
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(interval / 2);
                loop {
                    ticks.tick().await;
                    tick.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                }
            });
            let (gone_tx, gone) = tokio::sync::oneshot::channel::<()>();
            std::thread::Builder::new()
                .name("heartbeat".into())
                .spawn(move || {
                    // Ready once the start-up hook ran and listeners accept.
                    while !ctx.is_ready() {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let ready = control
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .send(&WorkerMessage::Ready);
                    if ready.is_ok() {
                        control::heartbeat(&control, interval, quota, metrics, || {
                            let now = started.elapsed().as_millis() as u64;
                            let stalled = now.saturating_sub(last_tick.load(Ordering::Relaxed));
                            let busy = ctx.in_flight.oldest().map(|r| Busy {
                                method: r.method,
                                path: r.path,
                                request_id: r.request_id,
                                elapsed: r.started.elapsed(),
                            });
                            (ctx.request_count(), Duration::from_millis(stalled), busy)
                        });
                    }
                    let _ = gone_tx.send(());
                })
                .expect("start the heartbeat thread");
            async move {
                let mut gone = gone;
                loop {
                    tokio::select! {
                        _ = term.recv() => {
                            logging::info(&format!("Worker exiting (pid: {})", std::process::id()));
                            return;
                        }
                        _ = quit.recv() => quick_exit(),
                        _ = int.recv() => quick_exit(),
                        _ = usr1.recv() => logging::reopen(),
                        _ = quota_ctx.quota_reached() => {
                            logging::info("Autorestarting worker after current request.");
                            return;
                        }
                        _ = &mut gone => {
                            logging::warning("Master is gone; worker stopping");
                            return;
                        }
                    }
                }
            }
        },
    );
    // Drained: the last totals, so that the master keeps every request
    // this worker served.
    if metrics {
        let snapshot = WorkerMessage::Metrics(crate::metrics::snapshot());
        let _ = final_report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(&snapshot);
    }
    result
}

/// The master's quick stop: no drain.
fn quick_exit() -> ! {
    logging::flush();
    std::process::exit(0)
}

/// Adopts the sockets named in the environment.
fn inherited() -> std::io::Result<(Vec<Listener>, ControlSender)> {
    let fds = std::env::var(control::ENV_LISTEN_FDS).unwrap_or_default();
    let listeners = crate::arbiter::parse_fds(&fds)?
        .into_iter()
        .map(|fd| Listener::from_inherited_fd(sys::take_inherited_fd(fd)?))
        .collect::<std::io::Result<Vec<_>>>()?;
    let control_fd: i32 = std::env::var(control::ENV_CONTROL_FD)
        .ok()
        .and_then(|fd| fd.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no control socket")
        })?;
    let control = ControlSender::new(UnixStream::from(sys::take_inherited_fd(control_fd)?))?;
    Ok((listeners, control))
}
