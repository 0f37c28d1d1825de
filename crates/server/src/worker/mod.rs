//! The inside of one worker process: the runtime, the accept loops, the
//! connection limit and the graceful drain.
//!
//! [`run_worker_process`] is the worker's `main`: it builds the tokio
//! runtime (only here, inside the worker; the master never has one), builds
//! the application, and runs [`serve`]. [`serve`] takes its shutdown as a
//! future, as mini-redis's `run` does, so tests and the master's signal
//! handling drive it the same way.
//!
//! A stop is always graceful first: stop accepting, let every connection
//! finish its request in progress (or serve the next one, which a
//! keep-alive client may already be sending) and close after it with
//! `Connection: close` (see `http::conn`), wait up to `--graceful-timeout`,
//! then drop what is left.

pub(crate) mod supervised;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use ferricorn_app_interface::{Application, BoxError, WorkerInfo};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

pub use crate::context::{InFlight, InFlightGuard, InFlightRequest, WorkerContext};

use crate::config::Config;
use crate::http::conn::Phase;
use crate::http::{self, HttpSettings, Shared, TokioSpawner};
use crate::listener::{Listener, TokioListener};
use crate::logging;

/// Why a worker stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The application could not be built, or its start-up hook failed.
    /// The master must not respawn such a worker forever (Gunicorn's
    /// `WORKER_BOOT_ERROR`).
    #[error("cannot start the application: {0}")]
    AppStart(BoxError),
    /// The runtime or a listener could not be set up.
    #[error("cannot start the worker: {0}")]
    Io(#[from] io::Error),
}

impl WorkerError {
    /// Whether the failure is the application's (exit with the boot-error
    /// code) rather than the environment's.
    pub fn is_app_start(&self) -> bool {
        matches!(self, WorkerError::AppStart(_))
    }
}

/// How long connections still open after `--graceful-timeout` get to notice
/// that they were dropped before the worker gives up on them (a handler
/// blocking its thread cannot be interrupted).
const STOP_GRACE: Duration = Duration::from_secs(1);

/// The worker's `main`: builds the runtime, builds the application with
/// `make_app`, runs [`serve`] until the future made by `shutdown` resolves,
/// and returns once drained.
///
/// The runtime has `config.threads` threads: with 1 it is tokio's
/// current-thread runtime, so a handler that blocks its thread stalls the
/// whole worker and is caught by the master's `--timeout` (Gunicorn's sync
/// worker semantics); with more it is the multi-thread runtime.
///
/// `make_app` and `shutdown` run inside the runtime, so both may use tokio
/// (open pools, install signal handlers, spawn a heartbeat task).
pub fn run_worker_process<A, F, S, SF>(
    config: Arc<Config>,
    listeners: Vec<Listener>,
    make_app: F,
    ctx: WorkerContext,
    shutdown: S,
) -> Result<(), WorkerError>
where
    A: Application,
    F: FnOnce() -> Result<A, BoxError>,
    S: FnOnce(WorkerContext) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    let runtime = if config.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .thread_name(format!("ferricorn-worker-{}", ctx.worker_id))
            .enable_all()
            .build()?
    };
    let result = runtime.block_on(async {
        let app = make_app().map_err(WorkerError::AppStart)?;
        let stop = shutdown(ctx.clone());
        serve(Arc::new(app), listeners, config, ctx, stop).await
    });
    // Blocking jobs still running (a stuck synchronous handler) must not
    // keep the process alive past its drain.
    runtime.shutdown_timeout(STOP_GRACE);
    result
}

/// Serves `listeners` with `app` until `shutdown` resolves, then drains.
///
/// Runs the application's `on_worker_start` before accepting (an error
/// returns [`WorkerError::AppStart`] without serving) and `on_worker_stop`
/// after draining. [`WorkerContext::ready`] resolves once it accepts.
pub async fn serve<A: Application>(
    app: Arc<A>,
    listeners: Vec<Listener>,
    config: Arc<Config>,
    ctx: WorkerContext,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    let info = WorkerInfo {
        worker_id: ctx.worker_id,
        pid: std::process::id(),
    };
    app.on_worker_start(&info)
        .await
        .map_err(WorkerError::AppStart)?;

    let listeners = listeners
        .into_iter()
        .map(|l| Ok((l.local_addr()?, l.into_tokio()?)))
        .collect::<io::Result<Vec<_>>>()?;

    let settings = HttpSettings::new(&config).map_err(|e| WorkerError::Io(io::Error::other(e)))?;
    let shared = Arc::new(Shared {
        app: Arc::clone(&app),
        settings,
        ctx: ctx.clone(),
        spawner: Arc::new(TokioSpawner(tokio::runtime::Handle::current())),
    });
    let max_conns = config.worker_connections;
    let permits = Arc::new(Semaphore::new(max_conns));
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);

    let mut accept_loops = JoinSet::new();
    for (server, listener) in listeners {
        accept_loops.spawn(accept_loop(
            listener,
            server,
            Arc::clone(&shared),
            Arc::clone(&permits),
            max_conns,
            phase_rx.clone(),
        ));
    }
    ctx.set_ready();

    shutdown.await;

    // Stop accepting (dropping this worker's copies of the listening
    // sockets; the master keeps its own), then drain.
    phase_tx.send_replace(Phase::Draining);
    while accept_loops.join_next().await.is_some() {}
    let open = max_conns - permits.available_permits();
    if open > 0 {
        logging::debug(&format!(
            "Worker {} draining {open} connections",
            ctx.worker_id
        ));
    }
    let all = u32::try_from(max_conns).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(config.graceful_timeout, permits.acquire_many(all)).await;
    if drained.is_err() {
        let left = max_conns - permits.available_permits();
        logging::warning(&format!(
            "Worker {}: {left} connections still open after --graceful-timeout ({}s); closing them",
            ctx.worker_id,
            config.graceful_timeout.as_secs_f64()
        ));
        phase_tx.send_replace(Phase::Stopped);
        let _ = tokio::time::timeout(STOP_GRACE, permits.acquire_many(all)).await;
    }
    app.on_worker_stop().await;
    Ok(())
}

/// Accepts on one listener until the worker drains. Each connection holds
/// one of `--worker-connections` permits; without a free one it is
/// answered 503 and closed.
async fn accept_loop<A: Application>(
    listener: TokioListener,
    server: ferricorn_app_interface::ServerAddr,
    shared: Arc<Shared<A>>,
    permits: Arc<Semaphore>,
    max_conns: usize,
    mut phase: watch::Receiver<Phase>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = phase.wait_for(|p| *p != Phase::Running) => return,
            a = accept(&listener) => a,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) if is_transient(&e) => continue,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning, as
                // mini-redis does; connections in the queue wait.
                logging::error(&format!("Accept on {server} failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                let shared = Arc::clone(&shared);
                let server = server.clone();
                let phase = phase.clone();
                tokio::spawn(async move {
                    // TLS on TCP binds only: a unix: bind faces a local
                    // proxy.
                    let tls = shared.settings.tls.is_some();
                    match stream {
                        Stream::Tcp(s) => {
                            http::serve_connection(shared, s, peer, server, phase, tls).await
                        }
                        Stream::Unix(s) => {
                            http::serve_connection(shared, s, peer, server, phase, false).await
                        }
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                logging::warning(&format!(
                    "Refusing a connection on {server}: --worker-connections ({}) reached",
                    max_conns
                ));
                let shared = Arc::clone(&shared);
                let phase = phase.clone();
                tokio::spawn(async move {
                    let settings = &shared.settings;
                    match stream {
                        // A TLS client cannot read a cleartext 503, and a
                        // handshake is the costly part a full worker must
                        // not take on: closed.
                        Stream::Tcp(s) if settings.tls.is_some() => drop(s),
                        Stream::Tcp(s) => http::refuse_connection(s, peer, settings, phase).await,
                        Stream::Unix(s) => http::refuse_connection(s, peer, settings, phase).await,
                    }
                });
            }
        }
    }
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &TokioListener) -> io::Result<(Stream, Option<std::net::SocketAddr>)> {
    match listener {
        TokioListener::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            // Responses are written whole by hyper; Nagle would only delay
            // the last segment of each.
            let _ = s.set_nodelay(true);
            Ok((Stream::Tcp(s), Some(peer)))
        }
        TokioListener::Unix(l) => {
            let (s, _) = l.accept().await?;
            Ok((Stream::Unix(s), None))
        }
    }
}

/// Errors about one connection that died in the queue, not the listener.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
