//! What the black-box tests of `ferricorn-auth` share: the binary run as
//! real processes (started on a port it picks, stopped with its workers,
//! every wait bounded) and the small arithmetic of hand-made tokens.

// Each test binary includes this module and uses a part of it.
#![allow(dead_code)]

pub mod django;
pub mod nginx;
pub mod postgres;

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

pub const BIN: &str = env!("CARGO_BIN_EXE_ferricorn-auth");

/// A child process in its own process group, stopped with the group on
/// drop (SIGTERM, then SIGKILL after five seconds): a master's workers go
/// with it whatever state the master is in.
pub struct Proc {
    pub child: Child,
    name: &'static str,
}

impl Proc {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
        let child = cmd
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc { child, name }
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.exited().is_none() {
            if Instant::now() > deadline {
                eprintln!("{} still running 5 s after SIGTERM; killing it", self.name);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The workers too, whatever the master did.
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A running `ferricorn-auth serve` and everything it has written to
/// stderr so far.
pub struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

/// Starts `cmd` (the binary with `serve -b 127.0.0.1:0` and its settings)
/// and waits, at most 30 s, for the address in its "Listening at" line.
/// Its stderr is drained into [`Server::log`] for as long as it runs, so it
/// never blocks on a full pipe.
pub fn serve(cmd: &mut Command) -> Server {
    let mut proc = Proc::spawn(
        "ferricorn-auth",
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = proc.child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("Listening at: ").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("ferricorn-auth did not print its Listening line in 30 s");
    let addr = url
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("listening address {url:?}: {e}"));
    Server { proc, addr, log }
}

/// Runs a command to completion (bounded by a watchdog) and returns its
/// standard output; panics with its output when it fails.
pub fn run(what: &str, cmd: &mut Command, stdin: &str) -> String {
    let out = run_bounded(what, cmd, stdin);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The hard limit on any one command, after which its process group is
/// killed: a hung tool fails the test instead of hanging it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` with `stdin` to completion and returns its output, killing
/// its process group after [`COMMAND_TIMEOUT`]. Never panics on a failed
/// command: callers decide what failure means.
pub fn run_bounded(what: &str, cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    // A writer thread: a child that does not read its stdin must not block
    // the test.
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_owned();
    std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(COMMAND_TIMEOUT) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            panic!("{what}: still running after {COMMAND_TIMEOUT:?}; killed");
        }
    }
}

/// Unpadded base64url, as JWT segments are written.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Now, in whole seconds since the epoch (token claims).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A fresh `jti`: 32 hex digits, never used before in any test process,
/// so no case is blacklisted by an earlier one.
pub fn jti() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:016x}{:016x}",
        now() as u64 ^ u64::from(std::process::id()) << 32,
        N.fetch_add(1, Ordering::Relaxed)
    )
}
