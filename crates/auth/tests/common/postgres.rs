//! A real, throwaway PostgreSQL cluster: `initdb` into a fresh directory,
//! a server on a free loopback port, a `ferricorn` role and database. A
//! test talks to the same server a deployment would, and can stop and
//! start it under the service to see what the service does.
//!
//! Without PostgreSQL's server binaries the tests skip with a message;
//! under `CI=true` they fail instead, so CI cannot pass by skipping.
//!
//! `initdb` and `postgres` refuse to run as root. As root (CI runs the
//! tests as uid 0) every PostgreSQL program runs as an unprivileged user
//! (`postgres`, else `nobody`) through `runuser` (else `setpriv`), and the
//! cluster's directory belongs to that user.
//!
//! Host (TCP) connections need a password (`scram-sha-256`), so a wrong or
//! missing password in a URL really fails; the superuser's administration
//! goes over the cluster's own Unix socket, trusted.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use super::run_bounded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The application's role, owner of [`DATABASE`].
pub const ROLE: &str = "ferricorn";
/// [`ROLE`]'s password: distinctive, so a test can check no output shows it.
pub const PASSWORD: &str = "s3cret-pw";
/// The application's database.
pub const DATABASE: &str = "ferricorn";
/// The superuser's password, for [`PgCluster::superuser_url`] (host
/// connections always need one).
pub const SUPERUSER_PASSWORD: &str = "superuser-pw";

/// How long `pg_ctl` waits for a start or a stop (`-t`).
const PG_CTL_WAIT_SECS: u32 = 60;

// ---------------------------------------------------------------------------
// Shared with `nginx.rs`

/// Whether this run is in CI, where a skipped test must fail instead.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports a missing tool: a failure in CI (so CI cannot pass by
/// skipping), a note elsewhere.
pub fn skip_or_fail(why: &str) {
    assert!(!in_ci(), "CI=true and this test cannot run: {why}");
    eprintln!("skipped: {why}");
}

/// The effective uid, from `/proc/self/status` (no libc binding needed).
pub fn euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1))
                .and_then(|id| id.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

/// A loopback port that was free a moment ago (callers retry when another
/// process takes it first).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A fresh directory under the system temp dir, removed with its contents
/// on drop. Its name is short: Unix socket paths inside must stay under
/// ~108 bytes.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(tag: &str) -> ScratchDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let path = std::env::temp_dir().join(format!(
                "ferricorn-{tag}-{}-{}-{nanos:x}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            // `create_dir`, not `create_dir_all`: an existing directory is
            // someone else's, never reused.
            match std::fs::create_dir(&path) {
                Ok(()) => return ScratchDir(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("create {}: {e}", path.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Standard output and error of a finished command, for failure messages.
fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------
// Finding PostgreSQL

/// Whether `dir` holds the server programs this module runs.
fn is_server_bin_dir(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres", "psql"]
        .iter()
        .all(|p| dir.join(p).is_file())
}

/// PostgreSQL's server binaries: `$FERRICORN_TEST_PG_BIN`, else
/// `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`
/// (Debian keeps them off `PATH`), else the directory of `initdb` on
/// `PATH` (symlinks resolved, so its siblings are found).
fn server_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FERRICORN_TEST_PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|d| is_server_bin_dir(d));
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| is_server_bin_dir(d)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| is_server_bin_dir(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .map(|dir| dir.join("initdb"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|d| is_server_bin_dir(d))
}

/// A program on `PATH` or in the usual system directories.
fn system_program(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

// ---------------------------------------------------------------------------
// Running as an unprivileged user

/// Who runs PostgreSQL's programs: the current user, or (as root) an
/// unprivileged one, since `initdb` and `postgres` refuse uid 0.
#[derive(Clone, Debug)]
enum RunAs {
    Me,
    /// Through `runuser -u NAME --`.
    Runuser {
        name: String,
    },
    /// Through `setpriv`, where there is no `runuser`.
    Setpriv {
        uid: u32,
        gid: u32,
    },
}

/// A user's uid and gid, from `id`.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

impl RunAs {
    /// The current user, or as root the `postgres` system user (else
    /// `nobody`), with the directory `dir` handed over to it. `None`
    /// (with the reason) when root has no one to become.
    fn for_dir(dir: &Path) -> Result<RunAs, String> {
        if euid() != 0 {
            return Ok(RunAs::Me);
        }
        let (name, uid, gid) = ["postgres", "nobody"]
            .iter()
            .find_map(|name| user_ids(name).map(|(u, g)| (*name, u, g)))
            .ok_or("running as root and there is no `postgres` or `nobody` user")?;
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .map_err(|e| format!("chown {} to {name}: {e}", dir.display()))?;
        if system_program("runuser").is_some() {
            Ok(RunAs::Runuser {
                name: name.to_owned(),
            })
        } else if system_program("setpriv").is_some() {
            Ok(RunAs::Setpriv { uid, gid })
        } else {
            Err("running as root and neither `runuser` nor `setpriv` is installed".into())
        }
    }

    /// A command running `program` as this user, with no `PG*` variables
    /// from the environment (they would redirect psql and pg_ctl) and the
    /// connect wait bounded.
    fn command(&self, program: &Path, cwd: &Path) -> Command {
        let mut cmd = match self {
            RunAs::Me => Command::new(program),
            RunAs::Runuser { name } => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", name, "--"]).arg(program);
                cmd
            }
            RunAs::Setpriv { uid, gid } => {
                let mut cmd = Command::new("setpriv");
                cmd.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg(program);
                cmd
            }
        };
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("PG")) {
                cmd.env_remove(key);
            }
        }
        cmd.env("PGCONNECT_TIMEOUT", "10").current_dir(cwd);
        cmd
    }

    /// Hands `path` over to this user (as root; a no-op otherwise).
    fn own(&self, path: &Path) {
        let ids = match self {
            RunAs::Me => return,
            RunAs::Runuser { name } => user_ids(name).expect("user vanished"),
            RunAs::Setpriv { uid, gid } => (*uid, *gid),
        };
        std::os::unix::fs::chown(path, Some(ids.0), Some(ids.1))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

// ---------------------------------------------------------------------------
// The cluster

/// A running throwaway PostgreSQL cluster. Dropping it stops the server
/// (immediately: nothing in it is worth keeping) and deletes its files.
pub struct PgCluster {
    bin: PathBuf,
    run_as: RunAs,
    port: u16,
    // Declared last: dropped after `Drop::drop` stopped the server.
    dir: ScratchDir,
}

impl PgCluster {
    /// A fresh cluster with the `ferricorn` role and database, listening on
    /// a free loopback port; `None` (after reporting the skip, a failure
    /// under `CI=true`) when PostgreSQL is not installed.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = server_bin_dir() else {
            skip_or_fail(
                "PostgreSQL's server binaries (initdb, pg_ctl, postgres) are not installed \
                 (Debian: `apt-get install postgresql`, or run `bench/install-tools.sh --ci`; \
                 or set FERRICORN_TEST_PG_BIN to their directory)",
            );
            return None;
        };
        let dir = ScratchDir::new("pg");
        let run_as = RunAs::for_dir(dir.path()).unwrap_or_else(|why| panic!("{why}"));
        let socket_dir = dir.path().join("sock");
        std::fs::create_dir(&socket_dir).expect("create socket dir");
        run_as.own(&socket_dir);

        let mut cluster = PgCluster {
            bin,
            run_as,
            port: 0,
            dir,
        };
        cluster.initdb();
        cluster.start_on_a_free_port();
        cluster.psql(
            "postgres",
            &format!(
                "ALTER ROLE postgres PASSWORD '{SUPERUSER_PASSWORD}';\n\
                 CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}';\n\
                 CREATE DATABASE {DATABASE} OWNER {ROLE};\n"
            ),
        );
        Some(cluster)
    }

    /// `postgres://ferricorn:s3cret-pw@127.0.0.1:PORT/ferricorn`.
    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// The application role's URL for another database of this cluster.
    pub fn url_for(&self, db: &str) -> String {
        format!("postgres://{ROLE}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// The superuser's URL, for the `postgres` database.
    pub fn superuser_url(&self) -> String {
        format!(
            "postgres://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (data in `data/`, server log `postgres.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A new empty database owned by the application role; its URL.
    /// `name` must be a plain identifier (lower-case letters, digits, `_`).
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database name {name:?} is not a plain identifier"
        );
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {ROLE};"));
        self.url_for(name)
    }

    /// Runs `sql` (any number of statements, `CREATE DATABASE` included) in
    /// `db` as the superuser, stopping at the first error; returns the rows
    /// psql printed (`-At`: unaligned, `|`-separated, no headers). Panics
    /// with psql's stderr when it fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let mut cmd = self.command("psql");
        cmd.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-f", "-"]);
        let out = run_bounded("psql", &mut cmd, sql);
        assert!(
            out.status.success(),
            "psql in {db} failed: {sql}\n{}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `sql` over TCP with the credentials in `url` (what a client of
    /// the service would do); psql's stdout, or its stderr when it fails.
    pub fn psql_url(&self, url: &str, sql: &str) -> Result<String, String> {
        let mut cmd = self.command("psql");
        cmd.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-w"])
            .args(["-d", url, "-f", "-"]);
        let out = run_bounded("psql", &mut cmd, sql);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Stops the server (`-m fast`: sessions are ended, not waited for) and
    /// waits until it is down.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast"])
            .unwrap_or_else(|out| panic!("pg_ctl stop failed: {out}\n{}", self.log_report()));
    }

    /// Starts the stopped server again on the same port and data, and
    /// waits until it accepts connections.
    pub fn start_again(&self) {
        if let Err(out) = self.pg_ctl_start(self.port) {
            panic!(
                "pg_ctl start on port {} failed: {out}\n{}",
                self.port,
                self.log_report()
            );
        }
    }

    /// [`stop`](Self::stop), then [`start_again`](Self::start_again).
    pub fn restart_same_port(&self) {
        self.stop();
        self.start_again();
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn log_report(&self) -> String {
        format!("--- postgres.log ---\n{}", self.log())
    }

    /// `program` from the server's bin dir, as the cluster's user.
    fn command(&self, program: &str) -> Command {
        self.run_as
            .command(&self.bin.join(program), self.dir.path())
    }

    /// A new cluster in `data/`: superuser `postgres`, the local socket
    /// trusted, TCP by password; no fsync (a test's data need not survive
    /// a crash of the machine).
    fn initdb(&self) {
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-U", "postgres", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync");
        let out = run_bounded("initdb", &mut cmd, "");
        assert!(out.status.success(), "initdb failed: {}", describe(&out));
    }

    /// Starts the server on free ports until one is not taken meanwhile.
    fn start_on_a_free_port(&mut self) {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let _ = std::fs::remove_file(self.log_path());
            match self.pg_ctl_start(port) {
                Ok(()) => {
                    self.port = port;
                    return;
                }
                Err(out) => {
                    let log = self.log();
                    if log.contains("Address already in use") {
                        last = log;
                        continue;
                    }
                    panic!(
                        "pg_ctl start on port {port} failed: {out}\n{}",
                        self.log_report()
                    );
                }
            }
        }
        panic!("postgres found no free port in 5 tries\n--- postgres.log ---\n{last}");
    }

    /// `pg_ctl start` on `port`, waiting (bounded) until the server accepts
    /// connections.
    fn pg_ctl_start(&self, port: u16) -> Result<(), String> {
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c max_connections=200",
            self.socket_dir().display()
        );
        let log = self.log_path();
        let log = log.to_str().expect("UTF-8 temp path");
        self.pg_ctl(&["start", "-l", log, "-o", &options])
    }

    /// `pg_ctl ACTION` on this cluster with a bounded wait; `Err` describes
    /// the failed command.
    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", &PG_CTL_WAIT_SECS.to_string()])
            .args(args);
        let out = run_bounded("pg_ctl", &mut cmd, "");
        if out.status.success() {
            Ok(())
        } else {
            Err(describe(&out))
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // `immediate`: nothing to flush, and it cannot wait on a session a
        // failed test left open. An already stopped server just fails this.
        let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
    }
}
