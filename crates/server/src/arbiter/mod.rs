//! The master process: it owns the listening sockets and supervises a fleet
//! of worker processes, driven by Gunicorn's signals.
//!
//! # How workers are made: re-execution, not a bare fork
//!
//! The master starts each worker by executing its own binary again
//! (`/proc/self/exe`, same arguments) with the listening sockets and one end
//! of a control socket inherited as file descriptors, named in the
//! environment. Why not `fork()` alone, as Gunicorn does: a forked child of a
//! process that holds a tokio runtime, a logging thread or a database pool
//! inherits their locks mid-flight and one thread only. Re-executing gives
//! every worker a fresh process image, so the application's state is built
//! in the worker (see `Application::on_worker_start`) and the `--preload`
//! trap cannot happen. The same mechanism serves the USR2 upgrade: the new
//! master is the binary now on disk, handed the same sockets.
//!
//! The master never starts an async runtime. It has plain threads only: one
//! that turns signals into events, and one per worker reading its control
//! socket. Everything they learn arrives on one channel, and [`Arbiter::run`]
//! reads like Gunicorn's arbiter: wait for an event → handle it → reap dead
//! workers → kill silent ones → recycle → spawn or trim to the target count.
//!
//! # Modules
//! - `signals`: OS signals → [`ArbiterCommand`].
//! - `spawn`: building the command line and environment of a worker or a new
//!   master.

mod signals;
mod spawn;
mod start;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Child;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use signals::ArbiterCommand;
pub(crate) use spawn::{parse_fds, remember_start};
pub(crate) use start::master_main;

use crate::control::{Busy, WorkerMessage};
use crate::listener::Listener;
use crate::metrics::fleet::Fleet;
use crate::pidfile::Pidfile;
use crate::{logging, sys, systemd};

/// Exit code of a worker that could not build the application (Gunicorn's
/// `WORKER_BOOT_ERROR`). The master stops with it instead of respawning.
pub const WORKER_BOOT_ERROR: i32 = 3;

/// How often the loop wakes up without events, to check timeouts and limits.
const TICK: Duration = Duration::from_millis(250);

/// After SIGABRT, how long a timed-out worker may take to die before SIGKILL.
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// A quick stop (INT/QUIT) waits this long before SIGKILL.
const QUICK_STOP_GRACE: Duration = Duration::from_secs(2);

/// A worker whose RSS is over `--max-worker-memory` at this many consecutive
/// checks (one per second) is recycled: "stays above", not one spike.
const MEMORY_STRIKES: u32 = 3;

/// The arbiter's settings, taken from the resolved configuration. HUP
/// re-reads them.
#[derive(Debug, Clone)]
pub struct ArbiterSettings {
    /// Process name (`-n/--name`), used in process titles and logs.
    pub name: String,
    /// Target number of worker processes.
    pub workers: usize,
    /// Worker liveness timeout; `None` disables it.
    pub timeout: Option<Duration>,
    /// How long a stopping worker may drain before SIGKILL.
    pub graceful_timeout: Duration,
    /// Recycle a worker whose RSS stays above this many bytes.
    pub max_worker_memory: Option<u64>,
    /// Recycle a worker older than this (plus up to 10% jitter).
    pub max_worker_lifetime: Option<Duration>,
    /// The pidfile to write.
    pub pidfile: Option<PathBuf>,
    /// Run workers as this user id / group id (privileges dropped after the
    /// master bound its sockets).
    pub uid: Option<u32>,
    /// See `uid`.
    pub gid: Option<u32>,
}

impl ArbiterSettings {
    /// The arbiter's part of a resolved configuration. Fails when `--user`
    /// or `--group` names no such user or group.
    pub fn from_config(config: &crate::config::Config) -> Result<ArbiterSettings, String> {
        // TLS files are read here too, at start and at every reload, so a
        // missing or mismatched certificate stops the start (or keeps the
        // running workers) instead of failing every new worker.
        crate::tls::check(config)?;
        let user = match &config.user {
            None => None,
            Some(u) => Some(sys::lookup_user(u).ok_or_else(|| {
                format!("--user {u}: no such user; give a user name or a numeric uid")
            })?),
        };
        let gid = match &config.group {
            None => user.map(|(_, gid)| gid),
            Some(g) => Some(sys::lookup_group(g).ok_or_else(|| {
                format!("--group {g}: no such group; give a group name or a numeric gid")
            })?),
        };
        Ok(ArbiterSettings {
            name: config.proc_name.clone().unwrap_or_else(default_name),
            workers: config.workers as usize,
            timeout: config.timeout,
            graceful_timeout: config.graceful_timeout,
            max_worker_memory: config.max_worker_memory.map(|mib| mib << 20),
            max_worker_lifetime: config.max_worker_lifetime,
            pidfile: config.pid.clone(),
            uid: user.map(|(uid, _)| uid),
            gid,
        })
    }
}

/// The default process name: the program's file name, as Gunicorn defaults
/// to the application's module name.
pub fn default_name() -> String {
    std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .map(|n| {
            // After the title exec, argv[0] is "ferricorn: master [NAME]".
            match (n.strip_prefix("ferricorn: master ["), n.ends_with(']')) {
                (Some(rest), true) => rest[..rest.len() - 1].to_string(),
                _ => n,
            }
        })
        .unwrap_or_else(|| "ferricorn".to_string())
}

/// Re-reads the settings (HUP). An error keeps the old ones.
pub type Reloader = Box<dyn Fn() -> Result<ArbiterSettings, String>>;

/// What the arbiter's loop waits on.
#[derive(Debug)]
pub(crate) enum Event {
    Command(ArbiterCommand),
    Message(u32, WorkerMessage),
}

/// Why a worker is being replaced.
#[derive(Debug, Clone)]
enum Retire {
    Reload,
    Recycle(String),
    Scale,
}

#[derive(Debug)]
struct Worker {
    id: u32,
    child: Child,
    started: Instant,
    last_seen: Instant,
    ready: bool,
    requests: u64,
    busy: Option<(Busy, Instant)>,
    retire: Option<Retire>,
    /// When TERM (or QUIT) was sent, and the deadline for SIGKILL.
    stopping: Option<Instant>,
    aborted: Option<Instant>,
    lifetime: Option<Duration>,
    memory_strikes: u32,
}

impl Worker {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Counts toward the target: not on its way out.
    fn serving(&self) -> bool {
        self.retire.is_none() && self.stopping.is_none() && self.aborted.is_none()
    }
}

/// The master process's state.
pub struct Arbiter {
    settings: ArbiterSettings,
    reload: Reloader,
    listeners: Vec<Listener>,
    workers: BTreeMap<u32, Worker>,
    events_tx: Sender<Event>,
    events: Receiver<Event>,
    pidfile: Option<Pidfile>,
    /// Set once a stop was asked; the loop ends when no worker is left.
    stopping: Option<(ArbiterCommand, Instant)>,
    /// A new master started by USR2, while it runs.
    new_master: Option<Child>,
    /// The master that started this one by USR2, until it exits.
    old_master: Option<u32>,
    /// Spawning pauses until then after workers crash in a row.
    spawn_after: Instant,
    crash_backoff: Duration,
    announced_ready: bool,
    last_memory_check: Instant,
    exit_code: i32,
    /// The sums served by `--metrics-bind`, when it is set.
    fleet: Option<Arc<Mutex<Fleet>>>,
}

impl Arbiter {
    /// Builds an arbiter over already-bound listening sockets.
    pub fn new(
        settings: ArbiterSettings,
        reload: Reloader,
        listeners: Vec<Listener>,
    ) -> std::io::Result<Arbiter> {
        let (events_tx, events) = mpsc::channel();
        let old_master = spawn::old_master_pid();
        let pidfile = match &settings.pidfile {
            None => None,
            Some(path) => {
                // A master started by USR2 writes PIDFILE.2 until the old
                // master has exited (Gunicorn's convention).
                let path = if old_master.is_some() {
                    spawn::upgraded_pidfile(path)
                } else {
                    path.clone()
                };
                Some(Pidfile::create(&path)?)
            }
        };
        Ok(Arbiter {
            settings,
            reload,
            listeners,
            workers: BTreeMap::new(),
            events_tx,
            events,
            pidfile,
            stopping: None,
            new_master: None,
            old_master,
            spawn_after: Instant::now(),
            crash_backoff: Duration::ZERO,
            announced_ready: false,
            last_memory_check: Instant::now(),
            exit_code: 0,
            fleet: None,
        })
    }

    /// Keeps the metrics sums in `fleet` (served by `--metrics-bind`).
    pub(crate) fn with_metrics(mut self, fleet: Arc<Mutex<Fleet>>) -> Arbiter {
        self.fleet = Some(fleet);
        self
    }

    /// Installs the signal handlers. Call before announcing "Listening at",
    /// so that a signal sent right after the announcement is never lost.
    pub fn install_signals(&self) -> std::io::Result<()> {
        signals::forward(self.events_tx.clone())
    }

    /// Runs the master until it is stopped; returns the process exit code.
    pub fn run(mut self) -> i32 {
        logging::info(&format!(
            "Arbiter booted (pid: {}, workers: {})",
            std::process::id(),
            self.settings.workers
        ));
        if self.old_master.is_some() {
            systemd::notify(&format!("MAINPID={}", std::process::id()));
        }
        loop {
            match self.events.recv_timeout(TICK) {
                Ok(event) => self.handle(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => unreachable!("the arbiter holds a sender"),
            }
            while let Ok(event) = self.events.try_recv() {
                self.handle(event);
            }
            self.reap();
            if let Some((_, deadline)) = self.stopping {
                if self.workers.is_empty() {
                    break;
                }
                if Instant::now() >= deadline {
                    self.kill_all(libc::SIGKILL);
                }
                continue;
            }
            self.murder_silent_workers();
            self.recycle();
            self.manage_workers();
            self.check_promotion();
        }
        // A Unix socket's file goes with the last master that uses it; an
        // upgraded master still does.
        if self.new_master.is_none() {
            for listener in &self.listeners {
                listener.remove_socket_file();
            }
        }
        logging::info("Shutting down: Master");
        self.exit_code
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Command(command) => self.command(command),
            Event::Message(pid, message) => self.message(pid, message),
        }
    }

    fn command(&mut self, command: ArbiterCommand) {
        match command {
            ArbiterCommand::GracefulStop | ArbiterCommand::QuickStop => {
                let graceful = command == ArbiterCommand::GracefulStop;
                self.stop(graceful);
            }
            ArbiterCommand::Reload => self.reload(),
            ArbiterCommand::IncrWorkers => {
                self.settings.workers += 1;
                logging::info(&format!(
                    "Handling signal: ttin; workers: {}",
                    self.settings.workers
                ));
            }
            ArbiterCommand::DecrWorkers => {
                if self.settings.workers > 1 {
                    self.settings.workers -= 1;
                }
                logging::info(&format!(
                    "Handling signal: ttou; workers: {}",
                    self.settings.workers
                ));
            }
            ArbiterCommand::ReopenLogs => {
                logging::info("Handling signal: usr1; reopening log files");
                logging::reopen();
                for pid in self.workers.keys() {
                    let _ = sys::kill(*pid, libc::SIGUSR1);
                }
            }
            ArbiterCommand::Reexec => self.reexec(),
            ArbiterCommand::ChildExited | ArbiterCommand::Ignore => {}
        }
    }

    fn message(&mut self, pid: u32, message: WorkerMessage) {
        let Some(worker) = self.workers.get_mut(&pid) else {
            return;
        };
        let now = Instant::now();
        worker.last_seen = now;
        match message {
            WorkerMessage::Ready => {
                worker.ready = true;
                logging::debug(&format!("Worker {} (pid: {pid}) is ready", worker.id));
                let boot = now.duration_since(worker.started);
                with_fleet(&self.fleet, |f| f.ready(boot));
            }
            WorkerMessage::Metrics(snapshot) => {
                with_fleet(&self.fleet, |f| f.report(pid, snapshot))
            }
            WorkerMessage::Heartbeat {
                requests,
                stalled,
                busy,
            } => {
                // A worker whose runtime is stuck still reports (from its
                // heartbeat thread); it counts as silent since the stall.
                worker.last_seen = now.checked_sub(stalled).unwrap_or(now);
                worker.requests = requests;
                worker.busy = busy.map(|b| (b, now));
            }
            WorkerMessage::Retire(reason) => {
                if worker.retire.is_none() {
                    logging::info(&format!(
                        "Recycling worker {} (pid: {pid}): {reason}",
                        worker.id
                    ));
                    worker.retire = Some(Retire::Recycle(reason));
                }
            }
        }
    }

    /// Starts stopping: TERM (graceful) or QUIT (quick) to every worker.
    fn stop(&mut self, graceful: bool) {
        if let Some((ArbiterCommand::QuickStop, _)) = self.stopping {
            return;
        }
        let (signal, grace, what) = if graceful {
            (libc::SIGTERM, self.settings.graceful_timeout, "term")
        } else {
            (libc::SIGQUIT, QUICK_STOP_GRACE, "quit")
        };
        logging::info(&format!("Handling signal: {what}"));
        systemd::notify("STOPPING=1");
        let command = if graceful {
            ArbiterCommand::GracefulStop
        } else {
            ArbiterCommand::QuickStop
        };
        self.stopping = Some((command, Instant::now() + grace));
        self.kill_all(signal);
    }

    fn kill_all(&mut self, signal: i32) {
        let now = Instant::now();
        for (pid, worker) in &mut self.workers {
            let _ = sys::kill(*pid, signal);
            worker.stopping.get_or_insert(now);
        }
    }

    /// HUP: re-read the settings, then start a new generation of workers;
    /// the old ones retire once the new ones serve (see `recycle`).
    fn reload(&mut self) {
        logging::info("Handling signal: hup");
        systemd::notify("RELOADING=1");
        match (self.reload)() {
            Ok(settings) => {
                self.settings = ArbiterSettings {
                    // A reload does not move the pidfile.
                    pidfile: self.settings.pidfile.clone(),
                    ..settings
                };
            }
            Err(e) => {
                logging::error(&format!("Reload: configuration not reloaded: {e}"));
            }
        }
        for worker in self.workers.values_mut() {
            if worker.serving() {
                worker.retire = Some(Retire::Reload);
            }
        }
        self.announced_ready = false;
        with_fleet(&self.fleet, Fleet::reloaded);
    }

    /// USR2: start a new master from the binary now on disk, handing it the
    /// listening sockets. A TERM to this master then completes the upgrade.
    fn reexec(&mut self) {
        if self.new_master.is_some() {
            logging::warning("USR2 ignored: an upgraded master is already running");
            return;
        }
        if self.old_master.is_some() {
            logging::warning("USR2 ignored: this master has not been promoted yet");
            return;
        }
        logging::info("Handling signal: usr2; starting a new master");
        match spawn::new_master(&self.listeners) {
            Ok(child) => {
                // The new master writes PIDFILE.2; ours stays until we exit.
                logging::info(&format!("New master started (pid: {})", child.id()));
                self.new_master = Some(child);
            }
            Err(e) => logging::error(&format!("USR2: could not start a new master: {e}")),
        }
    }

    /// A master started by USR2 becomes the master once the old one exits.
    fn check_promotion(&mut self) {
        let Some(old) = self.old_master else { return };
        // The old master is our parent; once it exits we are re-parented.
        if std::os::unix::process::parent_id() == old && sys::process_exists(old) {
            return;
        }
        self.old_master = None;
        if let (Some(pidfile), Some(path)) = (&mut self.pidfile, &self.settings.pidfile) {
            if let Err(e) = pidfile.rename(path) {
                logging::error(&format!(
                    "Could not rename the pidfile to {}: {e}",
                    path.display()
                ));
            }
        }
        logging::info("Master has been promoted.");
        systemd::notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
    }

    /// Collects exited children and decides what their exit means.
    fn reap(&mut self) {
        if let Some(child) = &mut self.new_master {
            if let Ok(Some(status)) = child.try_wait() {
                logging::warning(&format!("Upgraded master exited: {status}"));
                self.new_master = None;
            }
        }
        let mut exited = Vec::new();
        for (pid, worker) in &mut self.workers {
            if let Ok(Some(status)) = worker.child.try_wait() {
                exited.push((*pid, status));
            }
        }
        for (pid, status) in exited {
            let Some(worker) = self.workers.remove(&pid) else {
                continue;
            };
            let reason = exit_reason(&worker, &status);
            with_fleet(&self.fleet, |f| f.exited(pid, reason));
            crate::metrics::statsd::workers(self.workers.len());
            // A worker exits 0 on its own only when it retires (its request
            // quota is used up, or its master is gone).
            let expected =
                worker.stopping.is_some() || worker.aborted.is_some() || status.success();
            use std::os::unix::process::ExitStatusExt;
            if status.code() == Some(WORKER_BOOT_ERROR) && !worker.ready {
                self.boot_failed(&worker);
                continue;
            }
            if expected {
                logging::debug(&format!(
                    "Worker {} (pid: {pid}) exited: {status}",
                    worker.id
                ));
                continue;
            }
            match (status.code(), status.signal()) {
                (_, Some(sig)) => logging::error(&format!(
                    "Worker (pid:{pid}) was sent {}!",
                    signal_name(sig)
                )),
                (Some(code), _) => {
                    logging::error(&format!("Worker (pid:{pid}) exited with code {code}"))
                }
                _ => {}
            }
            // Crashing repeatedly soon after start: back off.
            if worker.started.elapsed() < Duration::from_secs(5) {
                self.crash_backoff = (self.crash_backoff * 2)
                    .max(Duration::from_millis(100))
                    .min(Duration::from_secs(10));
                self.spawn_after = Instant::now() + self.crash_backoff;
                logging::warning(&format!(
                    "Worker crashed soon after start; next start in {:.1}s",
                    self.crash_backoff.as_secs_f64()
                ));
            }
        }
    }

    /// A worker could not build the application. At start, the master stops
    /// (respawning would fail the same way forever). During a reload, the
    /// old workers keep serving.
    fn boot_failed(&mut self, worker: &Worker) {
        let reloading = self
            .workers
            .values()
            .any(|w| matches!(w.retire, Some(Retire::Reload)) && w.stopping.is_none());
        if reloading {
            logging::error(&format!(
                "Reload failed: worker {} (pid: {}) could not build the application; \
                 the previous workers keep serving",
                worker.id,
                worker.pid()
            ));
            for w in self.workers.values_mut() {
                if matches!(w.retire, Some(Retire::Reload)) {
                    w.retire = None;
                }
                if !w.ready && w.stopping.is_none() {
                    let _ = sys::kill(w.pid(), libc::SIGQUIT);
                    w.stopping = Some(Instant::now());
                }
            }
            return;
        }
        logging::critical(&format!(
            "Worker failed to boot (pid: {}): the application could not be built; \
             see the worker's error above. Stopping the master.",
            worker.pid()
        ));
        self.exit_code = WORKER_BOOT_ERROR;
        self.stopping = Some((ArbiterCommand::QuickStop, Instant::now() + QUICK_STOP_GRACE));
        self.kill_all(libc::SIGQUIT);
    }

    /// Kills workers that stayed silent for `--timeout`, naming what they
    /// were serving.
    fn murder_silent_workers(&mut self) {
        let Some(timeout) = self.settings.timeout else {
            return;
        };
        let now = Instant::now();
        for (pid, worker) in &mut self.workers {
            if let Some(at) = worker.aborted {
                if now.duration_since(at) > ABORT_GRACE {
                    let _ = sys::kill(*pid, libc::SIGKILL);
                }
                continue;
            }
            let silent = now.duration_since(worker.last_seen);
            if silent <= timeout {
                continue;
            }
            let serving = match &worker.busy {
                Some((b, seen)) => format!(
                    "; it was serving {} {} (request id {}) for {:.1}s",
                    b.method,
                    b.path,
                    b.request_id,
                    (b.elapsed + now.duration_since(*seen)).as_secs_f64()
                ),
                None if !worker.ready => "; it had not finished booting".to_string(),
                None => "; it was serving no request".to_string(),
            };
            logging::critical(&format!(
                "WORKER TIMEOUT (pid:{pid}) worker {} unresponsive for {:.1}s{serving}",
                worker.id,
                silent.as_secs_f64()
            ));
            let _ = sys::kill(*pid, libc::SIGABRT);
            worker.aborted = Some(now);
        }
    }

    /// Marks workers past their memory or lifetime limit, then retires
    /// marked workers once enough replacements serve: capacity never drops.
    fn recycle(&mut self) {
        let now = Instant::now();
        let check_memory = now.duration_since(self.last_memory_check) >= Duration::from_secs(1);
        if check_memory {
            self.last_memory_check = now;
        }
        for (pid, worker) in &mut self.workers {
            if !worker.serving() || !worker.ready {
                continue;
            }
            if let Some(limit) = worker.lifetime {
                if worker.started.elapsed() > limit {
                    let reason = format!(
                        "max-worker-lifetime: alive {:.0}s > {:.0}s",
                        worker.started.elapsed().as_secs_f64(),
                        limit.as_secs_f64()
                    );
                    logging::info(&format!(
                        "Recycling worker {} (pid: {pid}): {reason}",
                        worker.id
                    ));
                    worker.retire = Some(Retire::Recycle(reason));
                    continue;
                }
            }
            if let (true, Some(limit)) = (check_memory, self.settings.max_worker_memory) {
                let rss = sys::rss_bytes(*pid).unwrap_or(0);
                if rss > limit {
                    worker.memory_strikes += 1;
                } else {
                    worker.memory_strikes = 0;
                }
                if worker.memory_strikes >= MEMORY_STRIKES {
                    let reason = format!(
                        "max-worker-memory: RSS {} MiB > {} MiB",
                        rss >> 20,
                        limit >> 20
                    );
                    logging::info(&format!(
                        "Recycling worker {} (pid: {pid}): {reason}",
                        worker.id
                    ));
                    worker.retire = Some(Retire::Recycle(reason));
                }
            }
        }

        // Retire marked workers once the serving, ready ones reach the target.
        let ready = self
            .workers
            .values()
            .filter(|w| w.serving() && w.ready)
            .count();
        let retiring: Vec<u32> = self
            .workers
            .iter()
            .filter(|(_, w)| w.retire.is_some() && w.stopping.is_none())
            .map(|(pid, _)| *pid)
            .collect();
        if ready >= self.settings.workers {
            for pid in retiring {
                self.stop_worker(pid);
            }
            if !self.announced_ready {
                self.announced_ready = true;
                systemd::notify("READY=1");
            }
        }
    }

    fn stop_worker(&mut self, pid: u32) {
        if let Some(worker) = self.workers.get_mut(&pid) {
            if worker.stopping.is_none() {
                let why = match &worker.retire {
                    Some(Retire::Reload) => "reload".to_string(),
                    Some(Retire::Recycle(r)) => r.clone(),
                    Some(Retire::Scale) => "fewer workers wanted".to_string(),
                    None => "stop".to_string(),
                };
                logging::info(&format!(
                    "Stopping worker {} (pid: {pid}): {why}",
                    worker.id
                ));
                let _ = sys::kill(pid, libc::SIGTERM);
                worker.stopping = Some(Instant::now());
            }
        }
    }

    /// Kills retired workers that are still draining past the graceful
    /// timeout.
    fn kill_stragglers(&mut self) {
        let grace = self.settings.graceful_timeout;
        for (pid, worker) in &self.workers {
            if worker.stopping.is_some_and(|since| since.elapsed() > grace) {
                let _ = sys::kill(*pid, libc::SIGKILL);
            }
        }
    }

    /// Spawns or trims workers to the target count.
    fn manage_workers(&mut self) {
        let serving: Vec<(u32, Instant)> = self
            .workers
            .iter()
            .filter(|(_, w)| w.serving())
            .map(|(pid, w)| (*pid, w.started))
            .collect();
        let target = self.settings.workers;
        if serving.len() > target {
            // Trim the oldest first, as Gunicorn does.
            let excess = serving.len() - target;
            let mut by_age = serving;
            by_age.sort_by_key(|(_, started)| *started);
            for (pid, _) in by_age.into_iter().take(excess) {
                if let Some(w) = self.workers.get_mut(&pid) {
                    w.retire = Some(Retire::Scale);
                }
                self.stop_worker(pid);
            }
            return;
        }
        self.kill_stragglers();
        if Instant::now() < self.spawn_after {
            return;
        }
        for _ in serving.len()..target {
            if let Err(e) = self.spawn_worker() {
                logging::error(&format!("Could not start a worker: {e}"));
                self.spawn_after = Instant::now() + Duration::from_secs(1);
                return;
            }
        }
        // Stable workers clear the crash back-off.
        if self
            .workers
            .values()
            .any(|w| w.ready && w.started.elapsed() > Duration::from_secs(5))
        {
            self.crash_backoff = Duration::ZERO;
        }
    }

    fn spawn_worker(&mut self) -> std::io::Result<()> {
        let id = (1..)
            .find(|id| !self.workers.values().any(|w| w.id == *id))
            .expect("a free worker id");
        let (ours, theirs) = UnixStream::pair()?;
        let listener_fds: Vec<i32> = self
            .listeners
            .iter()
            .map(|l| l.as_fd().as_raw_fd())
            .collect();
        let child = spawn::worker(id, &self.settings, &listener_fds, theirs.as_raw_fd())?;
        drop(theirs);
        let pid = child.id();
        logging::info(&format!("Booting worker with pid: {pid}"));
        read_control(pid, ours, self.events_tx.clone())?;
        with_fleet(&self.fleet, |f| f.spawned(pid, id));
        crate::metrics::statsd::workers(self.workers.len() + 1);
        let now = Instant::now();
        let lifetime = self
            .settings
            .max_worker_lifetime
            .map(|l| l + l.mul_f64(jitter_fraction() * 0.1));
        self.workers.insert(
            pid,
            Worker {
                id,
                child,
                started: now,
                last_seen: now,
                ready: false,
                requests: 0,
                busy: None,
                retire: None,
                stopping: None,
                aborted: None,
                lifetime,
                memory_strikes: 0,
            },
        );
        Ok(())
    }
}

/// Runs `f` on the metrics sums, when metrics are on.
fn with_fleet(fleet: &Option<Arc<Mutex<Fleet>>>, f: impl FnOnce(&mut Fleet)) {
    if let Some(fleet) = fleet {
        f(&mut fleet.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Why `worker` exited, as `ferricorn_worker_exits_total{reason}` says it.
fn exit_reason(worker: &Worker, status: &std::process::ExitStatus) -> &'static str {
    if worker.aborted.is_some() {
        return "timeout";
    }
    if status.code() == Some(WORKER_BOOT_ERROR) && !worker.ready {
        return "boot_error";
    }
    match &worker.retire {
        Some(Retire::Reload) => "reload",
        Some(Retire::Scale) => "ttou",
        Some(Retire::Recycle(why)) if why.starts_with("max-worker-memory") => "max_memory",
        Some(Retire::Recycle(why)) if why.starts_with("max-worker-lifetime") => "max_lifetime",
        Some(Retire::Recycle(_)) => "max_requests",
        None if worker.stopping.is_some() || status.success() => "shutdown",
        None => "crash",
    }
}

/// Reads a worker's control socket on a thread of its own, until the worker
/// closes it (by exiting).
fn read_control(pid: u32, stream: UnixStream, events: Sender<Event>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("control-{pid}"))
        .spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if let Some(message) = WorkerMessage::parse(&line) {
                    if events.send(Event::Message(pid, message)).is_err() {
                        break;
                    }
                }
            }
        })?;
    Ok(())
}

/// A number in [0, 1) that differs between calls, for jitter. std's
/// randomly keyed hasher is enough; nothing here needs a CSPRNG.
pub(crate) fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "SIGKILL! Perhaps out of memory?".to_string(),
        libc::SIGABRT => "SIGABRT".to_string(),
        libc::SIGSEGV => "SIGSEGV".to_string(),
        libc::SIGTERM => "SIGTERM".to_string(),
        other => format!("signal {other}"),
    }
}
