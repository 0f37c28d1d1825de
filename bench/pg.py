"""A throwaway PostgreSQL cluster for the benchmark (issue 13): `initdb` into
a fresh temp directory, a server on a free loopback port, the `bench` role
and one database per subject; stopped and deleted at the end, also on
failure. The Python twin of crates/auth/tests/common/postgres.rs.

Unlike the tests' cluster, fsync stays ON: the benchmark measures what a
real deployment would see, WAL flushes at commit included (the WAL and data
live in the system temp dir, whatever disk that is).

`initdb` and `postgres` refuse to run as root. As root every PostgreSQL
program runs as `postgres` (else `nobody`) through `runuser -u USER --`
(else `setpriv`), and the cluster's directory belongs to that user.
Host (TCP) connections need a password (scram-sha-256); the superuser's
administration goes over the cluster's own Unix socket, trusted.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROLE = "bench"
PASSWORD = "bench-pg-password-0123"
PG_CTL_WAIT_SECS = 60
# The hard limit on any one command: a hung tool fails the run, not hangs it.
COMMAND_TIMEOUT = 120


def _is_server_bin_dir(d: Path) -> bool:
    return all((d / p).is_file() for p in ("initdb", "pg_ctl", "postgres", "psql"))


def server_bin_dir() -> Path | None:
    """$FERRICORN_TEST_PG_BIN, else the newest /usr/lib/postgresql/*/bin
    (Debian keeps them off PATH), else the directory of `initdb` on PATH
    (symlinks resolved, so its siblings are found)."""
    if os.environ.get("FERRICORN_TEST_PG_BIN"):
        d = Path(os.environ["FERRICORN_TEST_PG_BIN"])
        return d if _is_server_bin_dir(d) else None
    versions = []
    base = Path("/usr/lib/postgresql")
    if base.is_dir():
        for e in base.iterdir():
            if e.name.isdigit() and _is_server_bin_dir(e / "bin"):
                versions.append((int(e.name), e / "bin"))
    if versions:
        return max(versions)[1]
    initdb = shutil.which("initdb")
    if initdb:
        d = Path(initdb).resolve().parent
        if _is_server_bin_dir(d):
            return d
    return None


def _user_ids(name: str) -> tuple[int, int] | None:
    try:
        import pwd
        p = pwd.getpwnam(name)
        return p.pw_uid, p.pw_gid
    except KeyError:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """A running cluster. `stop()` (idempotent) stops the server and deletes
    its directory; call it in a `finally`."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        # Short: the Unix socket path inside must stay under ~108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="ferricorn-bench-pg-"))
        self.port = 0
        self.prefix: list[str] = []
        self.ids: tuple[int, int] | None = None
        self.stopped = False
        try:
            self._run_as()
            self.sock = self.dir / "sock"
            self.sock.mkdir()
            self._own(self.sock)
            self._initdb()
            self._start_on_a_free_port()
            self.psql("postgres", f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}';")
        except BaseException:
            self.stop()
            raise

    # ---- running as someone else

    def _run_as(self) -> None:
        if os.geteuid() != 0:
            return
        for name in ("postgres", "nobody"):
            ids = _user_ids(name)
            if ids:
                break
        else:
            raise RuntimeError("running as root and there is no `postgres` or `nobody` user")
        self.ids = ids
        self._own(self.dir)
        if shutil.which("runuser") or Path("/usr/sbin/runuser").is_file():
            self.prefix = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", name, "--"]
        elif shutil.which("setpriv"):
            self.prefix = ["setpriv", f"--reuid={ids[0]}", f"--regid={ids[1]}", "--clear-groups"]
        else:
            raise RuntimeError("running as root and neither `runuser` nor `setpriv` is installed")

    def _own(self, path: Path) -> None:
        if self.ids:
            os.chown(path, *self.ids)

    def _cmd(self, program: str, args: list[str], stdin: str = "") -> subprocess.CompletedProcess:
        # No PG* variables from the environment: they would redirect psql and pg_ctl.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = "10"
        return subprocess.run([*self.prefix, str(self.bin / program), *args], input=stdin, text=True,
                              capture_output=True, cwd=self.dir, env=env, timeout=COMMAND_TIMEOUT)

    # ---- paths

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def log_path(self) -> Path:
        return self.dir / "postgres.log"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # ---- life cycle

    def _initdb(self) -> None:
        out = self._cmd("initdb", ["-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                                   "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "-N"])
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed ({out.returncode}):\n{out.stdout}{out.stderr}")

    def _pg_ctl(self, args: list[str]) -> subprocess.CompletedProcess:
        return self._cmd("pg_ctl", ["-D", str(self.data), "-w", "-t", str(PG_CTL_WAIT_SECS), *args])

    def _start_on_a_free_port(self) -> None:
        last = ""
        for _ in range(5):
            port = _free_port()
            self.log_path.unlink(missing_ok=True)
            # fsync stays on (the default): a benchmark of a real deployment.
            opts = (f"-p {port} -k {self.sock} -c listen_addresses=127.0.0.1 "
                    f"-c max_connections=200")
            out = self._pg_ctl(["start", "-l", str(self.log_path), "-o", opts])
            if out.returncode == 0:
                self.port = port
                return
            last = self.log()
            if "Address already in use" not in last:
                raise RuntimeError(f"pg_ctl start on port {port} failed:\n{out.stdout}{out.stderr}\n"
                                   f"--- postgres.log ---\n{last}")
        raise RuntimeError(f"postgres found no free port in 5 tries\n--- postgres.log ---\n{last}")

    def psql(self, db: str, sql: str) -> str:
        """Runs `sql` in `db` as the superuser over the Unix socket; psql's rows."""
        out = self._cmd("psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(self.sock),
                                 "-p", str(self.port), "-U", "postgres", "-d", db, "-f", "-"], sql)
        if out.returncode != 0:
            raise RuntimeError(f"psql in {db} failed: {sql}\n{out.stdout}{out.stderr}")
        return out.stdout

    def create_database(self, name: str) -> str:
        """A new empty database owned by the bench role; its URL."""
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"database name {name!r} is not a plain identifier")
        self.psql("postgres", f"CREATE DATABASE {name} OWNER {ROLE};")
        return self.url(name)

    def url(self, db: str) -> str:
        return f"postgres://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{db}"

    def postmaster_pid(self) -> int | None:
        """The server's main process: its process tree is every backend."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def version(self) -> str:
        try:
            return self._cmd("postgres", ["--version"]).stdout.strip()
        except Exception:  # only for the report's header
            return "PostgreSQL"

    def stop(self) -> None:
        """`pg_ctl stop -m fast`, SIGKILL to the postmaster if that fails,
        then the directory is deleted. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        try:
            if (self.data / "postmaster.pid").exists():
                pid = self.postmaster_pid()
                try:
                    out = self._pg_ctl(["stop", "-m", "fast"])
                    ok = out.returncode == 0
                except subprocess.TimeoutExpired:
                    ok = False
                if not ok and pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        time.sleep(0.5)
                    except ProcessLookupError:
                        pass
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
