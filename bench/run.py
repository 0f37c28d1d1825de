#!/usr/bin/env python3
"""ferricorn's side-by-side benchmark (issue 8). Run through `bash bench/run.sh`,
which builds the binaries and the virtual environment first.

Each subject is started in turn on 127.0.0.1 with the same number of worker
processes, driven by wrk, measured, and stopped (its process group killed).
Rounds are interleaved (A B C ... A B C ...) and medians are reported, with
each ratio taken against the baseline measured in the same round.

Per run: requests/s, p50, p99 (from wrk's own histogram, via a Lua `done`
hook that prints JSON), errors (non-2xx/3xx plus socket errors and
timeouts), the total RSS of the subject's process tree, and server
CPU-seconds: utime+stime of every process of the tree, sampled from
/proc/PID/stat before and after the run, plus cutime+cstime so that workers
that exit during the run (a HUP reload) are still counted once reaped.

`--smoke` runs every subject and scenario for about a second, once, judges
no targets, and exits nonzero if a subject fails to start or answers an
error (errors during the HUP reload are a target, so there they are only
reported). CI runs that, so the script cannot rot.

The PostgreSQL scenarios (issue 13: pg-refresh, pg-obtain, pg-hosts) start
a throwaway PostgreSQL cluster of their own (bench/pg.py: initdb into a temp
dir, fsync on, one database per subject), and pg-hosts puts a real Nginx
(bench/nginx.py) in front of 1, 2 and 3 ferricorn-auth hosts. The cluster
is stopped and deleted at the end, also on failure.

The TLS scenarios (issue 16: tls-h1, tls-h2, tls-handshake, tls-reconnect)
serve hello's body over TLS from ferricorn, from an Nginx (bench/tls.py:
`return 200` of the same bytes and Content-Type, 2 workers, HTTP/2 by
ALPN) and from Granian (RSGI, bench/granian_hello.py), all with one
self-signed certificate made per run; HTTP/1.1 keep-alive is driven by wrk,
HTTP/2 by h2load, full handshakes by bench/tls.py's own clients (wrk's
`Connection: close` reconnections offer the previous session's ticket:
tls-reconnect measures those, with how often each server resumes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nginx as nginx_mod  # bench/nginx.py
import pg as pg_mod  # bench/pg.py
import tls as tls_mod  # bench/tls.py

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
if not TARGET.is_absolute():
    TARGET = ROOT / TARGET
SUBJECTS_BIN = BENCH / "subjects" / "target" / "release"
VENV_BIN = BENCH / ".venv" / "bin"
LUA = BENCH / "lua"

SIGNING_KEY = "ferricorn-bench-signing-key-0123456789abcdef"
USERNAME = "bench"
PASSWORD = "bench-password-0123"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Nginx workers in front of the pg-hosts subjects: one, since the hosts,
# PostgreSQL and wrk share the same 2 cores.
NGINX_WORKERS = 1

# Processes we started, by process group, so that every exit path kills them.
LIVE_GROUPS: set[int] = set()


# --------------------------------------------------------------------------
# /proc: the subject's process tree, its CPU time and its memory


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants that are alive now."""
    kids = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(kids.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """utime+stime of every live process in the tree (all its threads, dead
    ones included), plus cutime+cstime: what the tree's reaped children
    used. A worker that dies between two samples moves from the first term
    to the second, so a difference of two samples counts it once."""
    ticks = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is field 3 (state); utime..cstime are fields 14..17.
        ticks += sum(int(x) for x in fields[11:15])
    return ticks / CLK_TCK


def tree_pss_mib(root: int) -> float:
    """Sum of Pss over the tree: shared pages divided among their sharers."""
    kib = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    kib += int(line.split()[1])
        except OSError:
            continue
    return kib / 1024


def tree_rss_mib(root: int) -> float:
    """Sum of VmRSS over the tree (shared pages are counted per process, as
    `ps` and Gunicorn users see them)."""
    kib = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kib += int(line.split()[1])
        except OSError:
            continue
    return kib / 1024


# --------------------------------------------------------------------------
# Subjects


@dataclass
class Subject:
    name: str
    # argv, given the port and the run's scratch directory.
    argv: callable
    cwd: Path = BENCH
    env: dict = field(default_factory=dict)
    # GET this path (with these headers) until it answers 200: the subject is up.
    probe_path: str = "/"
    probe_auth: bool = False
    # How many processes a ready subject has (master + workers).
    processes: int = 3
    note: str = ""
    # Its store is the benchmark's PostgreSQL cluster: the cluster's CPU
    # time is measured with it.
    pg: bool = False
    # > 0: that many separate instances (argv each on its own port) behind
    # one Nginx, which is what the load generator talks to.
    hosts: int = 0
    # Serves HTTPS (the run's certificate, bench/tls.py): probed and driven
    # over https://.
    tls: bool = False


def subjects(workers: int, scratch: Path, dbs: dict[str, str]) -> dict[str, Subject]:
    """`dbs`: PostgreSQL URL by database name, filled once the cluster runs
    (argv is only called then)."""
    ex = TARGET / "release" / "examples"
    gunicorn = str(VENV_BIN / "gunicorn")
    w = str(workers)
    auth_env = {
        "FERRICORN_AUTH_SIGNING_KEY": SIGNING_KEY,
        "FERRICORN_AUTH_ROTATE_REFRESH_TOKENS": "true",
        "FERRICORN_AUTH_BLACKLIST_AFTER_ROTATION": "true",
    }
    django_env = {
        "BENCH_SIGNING_KEY": SIGNING_KEY,
        "BENCH_DJANGO_DB": str(scratch / "django.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "benchsite.settings",
    }
    axum_env = {
        "FERRICORN_AUTH_SIGNING_KEY": SIGNING_KEY,
        "FERRICORN_AUTH_DB": str(scratch / "axum-auth.sqlite3"),
    }
    gunicorn_quiet = ["--log-level", "warning"]
    auth_bin = str(TARGET / "release" / "ferricorn-auth")
    # Issue 16: one certificate for every TLS subject (made by prepare()).
    cert, key = scratch / "tls-cert.pem", scratch / "tls-key.pem"

    def nginx_tls(p):
        nginx = nginx_mod.binary()
        if nginx is None:
            raise RuntimeError("nginx is not installed (bash bench/install-tools.sh --bench installs it)")
        return tls_mod.nginx_argv(nginx, scratch / "nginx-tls", p, workers, cert, key)

    granian = VENV_BIN / "granian"

    def auth_pg(db: str, w: str):
        return lambda p: [auth_bin, "--db", dbs[db], "serve", "-b", f"127.0.0.1:{p}", "-w", w]

    s = [
        Subject("bare-hyper", lambda p: [str(SUBJECTS_BIN / "hyper-hello"), "--bind", f"127.0.0.1:{p}", "--workers", w],
                note="hyper 1 http1, no framework, N processes on one socket"),
        Subject("ferricorn-hello", lambda p: [str(ex / "hello"), "-b", f"127.0.0.1:{p}", "-w", w]),
        Subject("ferricorn-echo", lambda p: [str(ex / "echo"), "-b", f"127.0.0.1:{p}", "-w", w]),
        Subject("ferricorn-metrics", lambda p: [str(ex / "hello"), "-b", f"127.0.0.1:{p}", "-w", w,
                                                "--metrics-bind", "127.0.0.1:0"],
                note="hello with --metrics-bind: each worker reports its totals every heartbeat, the master sums"),
        Subject("actix-web", lambda p: [str(SUBJECTS_BIN / "actix-hello"), "--bind", f"127.0.0.1:{p}", "--workers", w],
                processes=1, note="actix-web 4, workers(N): N threads in one process"),
        Subject("gunicorn-sync", lambda p: [gunicorn, "-b", f"127.0.0.1:{p}", "-w", w, *gunicorn_quiet, "wsgi_hello:app"]),
        Subject("gunicorn-gthread", lambda p: [gunicorn, "-b", f"127.0.0.1:{p}", "-w", w, "-k", "gthread",
                                               "--threads", "4", *gunicorn_quiet, "wsgi_hello:app"],
                note="--threads 4"),
        Subject("ferricorn-auth", lambda p: [str(TARGET / "release" / "ferricorn-auth"), "--db", str(scratch / "auth.sqlite3"),
                                             "serve", "-b", f"127.0.0.1:{p}", "-w", w],
                env=auth_env, probe_path="/api/hello/", probe_auth=True),
        # Issue 15: the same service with reuse detection and access-token
        # revocation on (its refresh tokens carry a family).
        Subject("auth-safer", lambda p: [auth_bin, "--db", str(scratch / "auth-safer.sqlite3"),
                                         "serve", "-b", f"127.0.0.1:{p}", "-w", w],
                env={**auth_env, "FERRICORN_AUTH_REFRESH_REUSE_DETECTION": "true",
                     "FERRICORN_AUTH_REVOKE_ACCESS_ON_LOGOUT": "true"},
                probe_path="/api/hello/", probe_auth=True,
                note="ferricorn-auth with refresh_reuse_detection and revoke_access_on_logout"),
        Subject("simplejwt", lambda p: [gunicorn, "-b", f"127.0.0.1:{p}", "-w", w, *gunicorn_quiet, "benchsite.wsgi"],
                cwd=BENCH / "django_app", env=django_env, probe_path="/api/hello/", probe_auth=True,
                note="Django + DRF + simplejwt 5.5.1, Gunicorn sync"),
        # Issue 13: the same two on PostgreSQL (one cluster, a database each).
        Subject("simplejwt-pg", lambda p: [gunicorn, "-b", f"127.0.0.1:{p}", "-w", w, *gunicorn_quiet, "benchsite.wsgi"],
                cwd=BENCH / "django_app", env={**django_env, "BENCH_DJANGO_PG": ""}, probe_path="/api/hello/",
                probe_auth=True, pg=True,
                note="Django + DRF + simplejwt 5.5.1, Gunicorn sync, on PostgreSQL (psycopg 3, "
                     "CONN_MAX_AGE=600: persistent connections)"),
        Subject("ferricorn-auth-pg", auth_pg("auth", w), env=auth_env, probe_path="/api/hello/", probe_auth=True,
                pg=True, note="ferricorn-auth --db postgres://..., default pool (8 connections per worker)"),
        *[Subject(f"auth-pg-{n}host" + ("s" if n > 1 else ""), auth_pg(f"hosts{n}", "1"), env=auth_env,
                  probe_path="/api/hello/", probe_auth=True, processes=2, pg=True, hosts=n)
          for n in (1, 2, 3)],
        # The axum example's Router twice: under ferricorn (master, HTTP
        # layer, tower adapter) and under plain axum::serve, N processes on
        # one socket each. Its token layer opens the database in each worker.
        Subject("ferricorn-axum", lambda p: [str(ex / "axum"), "-b", f"127.0.0.1:{p}", "-w", w],
                env=axum_env, probe_path="/items"),
        Subject("axum-serve", lambda p: [str(SUBJECTS_BIN / "axum-serve"), "--bind", f"127.0.0.1:{p}", "--workers", w],
                env=axum_env, probe_path="/items",
                note="the same Router (examples/axum.rs) under axum::serve, N processes on one socket"),
        # Issue 16: hello's body over TLS (HTTP/1.1, and HTTP/2 by ALPN).
        Subject("nginx-tls", nginx_tls, tls=True,
                note=f"Nginx {nginx_mod.binary() and '.'.join(map(str, tls_mod.nginx_version(nginx_mod.binary())))}: "
                     f"master + N workers, `return 200` of hello's body with its Content-Type, "
                     f"`listen ... ssl http2` (`http2 on` from 1.25.1), keepalive_requests 10⁹, access_log off, "
                     f"ssl_protocols TLSv1.2 TLSv1.3, OpenSSL defaults otherwise (session cache off, tickets on)"),
        Subject("ferricorn-tls", lambda p: [str(ex / "hello"), "-b", f"127.0.0.1:{p}", "-w", w,
                                            "--certfile", str(cert), "--keyfile", str(key)], tls=True,
                note="hello with --certfile/--keyfile (rustls; ALPN h2, http/1.1)"),
    ]
    if granian.exists():
        s.append(Subject("granian-tls", lambda p: [str(granian), "--interface", "rsgi", "--host", "127.0.0.1",
                                                   "--port", str(p), "--workers", w, "--http", "auto",
                                                   "--ssl-certificate", str(cert), "--ssl-keyfile", str(key),
                                                   "--log-level", "warning", "granian_hello:app"],
                         tls=True, note=f"Granian {_granian_version()} (RSGI, bench/granian_hello.py: the same body "
                                        f"and Content-Type), --http auto, --workers N, 1 runtime thread each"))
    return {x.name: x for x in s}


def _granian_version() -> str:
    try:
        from importlib.metadata import version
        return version("granian")
    except Exception:
        return "?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """A started subject: its own process group, killed on stop."""

    def __init__(self, subject: Subject, logdir: Path, tag: str, access_token: str):
        self.subject = subject
        self.port = free_port()
        self.log = open(logdir / f"{subject.name}-{tag}.log", "wb")
        env = {**os.environ, **subject.env}
        self.proc = subprocess.Popen(
            subject.argv(self.port), cwd=subject.cwd, env=env,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        LIVE_GROUPS.add(self.proc.pid)
        self.pid = self.proc.pid
        self.token = access_token
        # The PostgreSQL server's main process, for subjects on PostgreSQL.
        self.pg_root: int | None = None
        self.proxy_root: int | None = None

    def cpu_roots(self) -> list[int]:
        """The process trees whose CPU time and memory are the subject's."""
        return [self.pid]

    def exited(self) -> str | None:
        """Why the subject is no longer running, or None while it is."""
        if self.proc.poll() is not None:
            return f"{self.subject.name} exited during the run ({self.proc.returncode})"
        return None

    @property
    def url(self) -> str:
        return f"{'https' if self.subject.tls else 'http'}://127.0.0.1:{self.port}"

    def get(self, path: str):
        """GET `path` (HTTPS without verification for TLS subjects):
        (status, Content-Type, body)."""
        req = urllib.request.Request(self.url + path)
        if self.subject.probe_auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        ctx = tls_mod.client_context() if self.subject.tls else None
        with urllib.request.urlopen(req, timeout=2, context=ctx) as r:
            return r.status, r.headers.get("Content-Type"), r.read()

    def probe(self) -> int | None:
        try:
            return self.get(self.subject.probe_path)[0]
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.subject.name} exited with {self.proc.returncode} before answering")
            last = self.probe()
            if last == 200 and len(process_tree(self.pid)) >= self.subject.processes:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.subject.name} did not answer 200 on {self.subject.probe_path} "
                           f"within {timeout}s (last: {last})")

    def stop(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        # Workers that outlive their master, or a master that would not stop.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        LIVE_GROUPS.discard(self.pid)
        self.log.close()


class HostsRunning(Running):
    """`subject.hosts` instances of a subject, each on its own port (its own
    master and workers), behind one Nginx: round robin, keep-alive to the
    hosts. The load generator talks to Nginx; the server CPU time is the
    hosts', Nginx's is reported apart (`proxy_root`)."""

    def __init__(self, subject: Subject, logdir: Path, tag: str, access_token: str, nginx_bin: Path):
        self.subject = subject
        self.token = access_token
        self.pg_root = None
        self.hosts: list[Running] = []
        self.nginx: subprocess.Popen | None = None
        self.prefix = Path(tempfile.mkdtemp(prefix="ferricorn-bench-nginx-"))
        self.nginx_bin = nginx_bin
        self.log = open(logdir / f"{subject.name}-{tag}-nginx.log", "wb")
        self.port = free_port()
        try:
            for i in range(subject.hosts):
                host = Subject(f"{subject.name}-h{i + 1}", subject.argv, env=subject.env,
                               probe_path=subject.probe_path, probe_auth=subject.probe_auth,
                               processes=subject.processes)
                self.hosts.append(Running(host, logdir, tag, access_token))
        except BaseException:
            self.stop()
            raise
        self.pid = self.hosts[0].pid

    def cpu_roots(self) -> list[int]:
        return [h.pid for h in self.hosts]

    def exited(self) -> str | None:
        for h in self.hosts:
            if h.exited():
                return h.exited()
        if self.nginx is None or self.nginx.poll() is not None:
            return "nginx exited during the run"
        return None

    def wait_ready(self, timeout: float = 30.0) -> None:
        for h in self.hosts:
            h.wait_ready(timeout)
        # Nginx only once every host answers: no request meets a dead upstream.
        self.nginx = nginx_mod.start(self.nginx_bin, self.prefix, self.port, [h.port for h in self.hosts],
                                     NGINX_WORKERS, self.log)
        LIVE_GROUPS.add(self.nginx.pid)
        self.proxy_root = self.nginx.pid
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.probe()
            if last == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"nginx in front of {self.subject.name} did not answer 200 (last: {last})")

    def stop(self) -> None:
        if self.nginx is not None:
            try:
                os.killpg(self.nginx.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.nginx.wait()
            LIVE_GROUPS.discard(self.nginx.pid)
        for h in self.hosts:
            h.stop()
        self.log.close()
        shutil.rmtree(self.prefix, ignore_errors=True)


def kill_all(*_args) -> None:
    for pgid in list(LIVE_GROUPS):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if _args:
        sys.exit(130)


# --------------------------------------------------------------------------
# Tokens, minted with the shared key by PyJWT as simplejwt would


def mint(token_type: str, lifetime: int) -> str:
    import jwt  # PyJWT, installed with simplejwt into bench/.venv

    now = int(time.time())
    return jwt.encode(
        {"token_type": token_type, "exp": now + lifetime, "iat": now,
         "jti": secrets.token_hex(16), "user_id": "1"},
        SIGNING_KEY, algorithm="HS256",
    )


def mint_pool(path_prefix: Path, threads: int, per_thread: int, family: bool = False) -> None:
    """One file of fresh refresh tokens per wrk thread; each token is spent
    by its first use (rotation with blacklist), so none repeats. `family`:
    each carries a token family (`fam`), as with reuse detection on, so the
    store checks the family too."""
    import jwt

    now = int(time.time())
    for t in range(threads):
        with open(f"{path_prefix}.{t}", "w") as f:
            for _ in range(per_thread):
                claims = {"token_type": "refresh", "exp": now + 86400, "iat": now,
                          "jti": secrets.token_hex(16), "user_id": "1"}
                if family:
                    claims["fam"] = secrets.token_hex(16)
                f.write(jwt.encode(claims, SIGNING_KEY, algorithm="HS256"))
                f.write("\n")


# --------------------------------------------------------------------------
# wrk


@dataclass
class Load:
    threads: int
    connections: int
    duration: float
    timeout: str = "5s"


def wrk_cmd(load: Load, url: str, script: Path, headers=(), script_args=()) -> list[str]:
    cmd = ["wrk", "-t", str(load.threads), "-c", str(load.connections),
           "-d", f"{load.duration:g}s", "--timeout", load.timeout, "-s", str(script)]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    return cmd


def parse_wrk(out: str) -> dict:
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            r = json.loads(line[len("WRKJSON "):])
            r["errors"] = r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
            return r
    raise RuntimeError(f"wrk printed no summary:\n{out}")


def run_wrk(cmd: list[str], hup_pid: int | None = None, hup_after: float | None = None) -> dict:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if hup_pid is not None:
        time.sleep(hup_after)
        os.kill(hup_pid, signal.SIGHUP)
    out, _ = p.communicate()
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed ({p.returncode}): {' '.join(cmd)}\n{out}")
    return parse_wrk(out)


def scrape_times(hello: Path, workers: int, scrapes: int) -> dict:
    """Starts `hello` with `workers` workers and --metrics-bind, waits until
    every worker has reported, then times `scrapes` scrapes of /metrics:
    median and worst, in ms."""
    import urllib.request
    proc = subprocess.Popen([str(hello), "-b", "127.0.0.1:0", "-w", str(workers), "--metrics-bind", "127.0.0.1:0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    LIVE_GROUPS.add(proc.pid)
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "Metrics at: " in line:
                url = line.split("Metrics at: ", 1)[1].split()[0]
        if url is None:
            raise RuntimeError("hello did not print its Metrics at line")
        while time.monotonic() < deadline:
            body = urllib.request.urlopen(url, timeout=5).read().decode()
            if f"ferricorn_workers {workers}" in body and body.count("worker_boot_seconds_count " + str(workers)):
                break
            time.sleep(0.2)
        time.sleep(2)  # every worker's heartbeat has sent its totals
        took = []
        for _ in range(scrapes):
            t = time.perf_counter()
            urllib.request.urlopen(url, timeout=5).read()
            took.append((time.perf_counter() - t) * 1000)
        return {"median": statistics.median(took), "max": max(took), "workers": workers}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except Exception:
            os.killpg(proc.pid, signal.SIGKILL)
        LIVE_GROUPS.discard(proc.pid)


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]  # idle + iowait
    total = sum(f[:8])  # without guest time, already in user
    return total - idle, total


def measured(running: Running, cmd: list[str], runner=None, **kw) -> dict:
    def cpu(roots):
        return sum(tree_cpu_seconds(p) for p in roots)

    roots = running.cpu_roots()
    others = {"pg_cpu_s": running.pg_root, "proxy_cpu_s": running.proxy_root}
    cpu0 = cpu(roots)
    other0 = {k: cpu([pid]) for k, pid in others.items() if pid}
    busy0 = machine_busy_ticks()
    r = (runner or run_wrk)(cmd, **kw)
    busy1 = machine_busy_ticks()
    cpu1 = cpu(roots)
    r["cpu_s"] = cpu1 - cpu0
    for k, pid in others.items():
        if pid:
            # The postmaster's tree: every backend, plus cutime/cstime of
            # those that ended, plus the WAL writer and checkpointer.
            r[k] = cpu([pid]) - other0[k]
    r["machine_busy"] = (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1)
    r["rss_mib"] = sum(tree_rss_mib(p) for p in roots)
    r["pss_mib"] = sum(tree_pss_mib(p) for p in roots)
    # On PostgreSQL a request's cost includes the database's share.
    r["rpcs"] = r["requests"] / (r["cpu_s"] + r.get("pg_cpu_s", 0.0)) if r["cpu_s"] > 0 else 0.0
    return r


# --------------------------------------------------------------------------
# Scenarios: name -> (title, subjects in order, baseline)

HELLO = ["bare-hyper", "ferricorn-hello", "ferricorn-echo", "actix-web", "gunicorn-sync", "gunicorn-gthread"]
JWT = ["simplejwt", "ferricorn-auth"]
# Issue 13: simplejwt on PostgreSQL, ferricorn-auth on SQLite (the same
# subject as in the jwt-* scenarios) and on PostgreSQL, in one run.
PGJWT = ["simplejwt-pg", "ferricorn-auth", "ferricorn-auth-pg"]
HOSTS = ["auth-pg-1host", "auth-pg-2hosts", "auth-pg-3hosts"]
# Issue 15: the switches beyond simplejwt, off and on, in one run.
SAFER = ["ferricorn-auth", "auth-safer"]
# Issue 16: the same body over TLS, Nginx the baseline.
TLS = ["nginx-tls", "ferricorn-tls", "granian-tls"]
SCENARIOS = {
    "keepalive": ("GET / keep-alive", HELLO, "bare-hyper"),
    "close": ("GET / with `Connection: close` on every request", HELLO, "bare-hyper"),
    "jwt-hello": ("GET /api/hello/ with a valid access token (keep-alive)", JWT, "simplejwt"),
    "jwt-refresh": ("POST /api/token/refresh/, rotation + blacklist, one fresh refresh token per request", JWT, "simplejwt"),
    "jwt-obtain": ("POST /api/token/ (password check: argon2id OWASP vs Django PBKDF2)", JWT, "simplejwt"),
    "hammer": ("p99 of GET /api/hello/ alone, then while a second wrk hammers POST /api/token/", JWT, "simplejwt"),
    "pg-refresh": ("POST /api/token/refresh/, rotation + blacklist, one fresh refresh token per request: "
                   "PostgreSQL vs SQLite", PGJWT, "simplejwt-pg"),
    "pg-obtain": ("POST /api/token/ (password check) on PostgreSQL vs SQLite", PGJWT, "simplejwt-pg"),
    "pg-hosts": ("POST /api/token/refresh/ (rotation + blacklist) through one Nginx to 1, 2, 3 ferricorn-auth "
                 "hosts (1 worker each) on one PostgreSQL database", HOSTS, "auth-pg-1host"),
    "safer-refresh": ("POST /api/token/refresh/ (rotation + blacklist), refresh_reuse_detection off vs on "
                      "(each token of a family)", SAFER, "ferricorn-auth"),
    "safer-hello": ("GET /api/hello/, revoke_access_on_logout off vs on", SAFER, "ferricorn-auth"),
    "hup": ("GET / keep-alive with SIGHUP to the master halfway", ["gunicorn-sync", "ferricorn-hello"], "gunicorn-sync"),
    "axum-items": ("GET /items of the axum example (keep-alive)", ["axum-serve", "ferricorn-axum"], "axum-serve"),
    "metrics": ("GET / keep-alive, hello without and with --metrics-bind", ["ferricorn-hello", "ferricorn-metrics"],
                "ferricorn-hello"),
    "tls-h1": ("GET / over TLS, HTTP/1.1 keep-alive (wrk)", TLS, "nginx-tls"),
    "tls-h2": ("GET / over TLS, HTTP/2 by ALPN, keep-alive, many streams per connection (h2load)", TLS, "nginx-tls"),
    "tls-handshake": ("GET / over TLS, HTTP/1.1 with `Connection: close`: a new connection and a full handshake "
                      "(no session offered) per request, so req/s = handshakes/s (bench/tls.py's clients)",
                      TLS, "nginx-tls"),
    "tls-reconnect": ("GET / over TLS, HTTP/1.1 with `Connection: close` as wrk does it: a new connection per "
                      "request that offers the last session's ticket, resumed wherever the server accepts it (wrk)",
                      TLS, "nginx-tls"),
}
# Run order for a subject; `hup` last, since it replaces the workers.
ORDER = ["keepalive", "close", "jwt-hello", "jwt-refresh", "jwt-obtain", "hammer", "pg-refresh", "pg-obtain",
         "pg-hosts", "axum-items", "metrics", "safer-refresh", "safer-hello", "tls-h1", "tls-h2", "tls-handshake",
         "tls-reconnect", "hup"]


class Bench:
    def __init__(self, args):
        self.args = args
        self.out = BENCH / "out"
        self.scratch = self.out / "scratch"
        self.logs = self.out / "logs"
        for d in (self.scratch, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        self.load = Load(args.threads, args.connections, args.duration)
        # Logins are slow by design: fewer connections, a longer timeout.
        self.obtain_load = Load(1, args.obtain_connections, args.duration, "20s")
        self.hammer_hello_load = Load(1, args.hammer_connections, args.duration)
        self.dbs: dict[str, str] = {}  # PostgreSQL database -> URL
        self.subjects = subjects(args.workers, self.scratch, self.dbs)
        self.results: dict = {}  # scenario -> subject -> [run dict per round]
        self.refresh_rate_guess = {"ferricorn-auth": 10000.0, "auth-safer": 10000.0, "simplejwt": 2000.0, "simplejwt-pg": 2000.0}
        self.lua = {}
        self.pg: pg_mod.PgCluster | None = None
        self.nginx_bin: Path | None = None
        self.pg_version = ""

    def close(self) -> None:
        """Stops and deletes the PostgreSQL cluster (idempotent)."""
        if self.pg is not None:
            self.pg.stop()

    # ---- preparation

    def prepare(self) -> None:
        for f in self.scratch.glob("*"):
            shutil.rmtree(f) if f.is_dir() else f.unlink()
        self.access = mint("access", 7 * 86400)
        names = self.wanted_subjects()
        if any(self.subjects[n].tls for n in names):
            # One certificate for every TLS subject of the run.
            tls_mod.make_cert(self.scratch, self.args.tls_key)
        for name, db in (("ferricorn-auth", "auth.sqlite3"), ("auth-safer", "auth-safer.sqlite3")):
            if name not in names:
                continue
            subprocess.run(
                [str(TARGET / "release" / "ferricorn-auth"), "--db", str(self.scratch / db),
                 "createuser", USERNAME, "--password-stdin"],
                input=PASSWORD + "\n", text=True, check=True, capture_output=True,
                env={**os.environ, **self.subjects[name].env})
        if any(self.subjects[n].pg for n in names):
            self.prepare_postgres(names)
        for django in ("simplejwt", "simplejwt-pg"):
            if django not in names:
                continue
            env = {**os.environ, **self.subjects[django].env}
            py = str(VENV_BIN / "python")
            cwd = BENCH / "django_app"
            subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=cwd, env=env, check=True)
            subprocess.run([py, "manage.py", "shell", "--no-imports", "-c",
                            "from django.contrib.auth.models import User; "
                            f"u = User.objects.create_user({USERNAME!r}, password={PASSWORD!r}); "
                            "assert u.id == 1, u.id"],
                           cwd=cwd, env=env, check=True)
        # Each wrk script gets the common JSON report hook appended.
        lua_dir = self.out / "lua"
        lua_dir.mkdir(exist_ok=True)
        report = (LUA / "report.lua").read_text()
        for name in ("get", "post", "refresh"):
            self.lua[name] = lua_dir / f"{name}.lua"
            self.lua[name].write_text((LUA / f"{name}.lua").read_text() + "\n" + report)

    def prepare_postgres(self, names: list[str]) -> None:
        """The throwaway cluster, a database per subject on it, the user in each."""
        bin_dir = pg_mod.server_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl, postgres, psql) are not installed "
                               "(bash bench/install-tools.sh --bench installs Debian's postgresql; or set "
                               "FERRICORN_TEST_PG_BIN to their directory)")
        if any(self.subjects[n].hosts for n in names):
            self.nginx_bin = nginx_mod.binary()
            if self.nginx_bin is None:
                raise RuntimeError("nginx is not installed (bash bench/install-tools.sh --bench installs it)")
        print(f"starting a PostgreSQL cluster ({bin_dir})...", flush=True)
        self.pg = pg_mod.PgCluster(bin_dir)
        self.pg_version = self.pg.version()
        auth = str(TARGET / "release" / "ferricorn-auth")
        for name in names:
            subject = self.subjects[name]
            if not subject.pg:
                continue
            if name == "simplejwt-pg":
                subject.env["BENCH_DJANGO_PG"] = self.dbs.setdefault("simplejwt", self.pg.create_database("simplejwt"))
                continue  # migrated and given its user with the SQLite one below
            db = f"hosts{subject.hosts}" if subject.hosts else "auth"
            self.dbs[db] = self.pg.create_database(db)
            env = {**os.environ, **subject.env}
            subprocess.run([auth, "--db", self.dbs[db], "migrate"], env=env, check=True, capture_output=True)
            subprocess.run([auth, "--db", self.dbs[db], "createuser", USERNAME, "--password-stdin"],
                           input=PASSWORD + "\n", text=True, check=True, capture_output=True, env=env)

    def wanted_subjects(self) -> list[str]:
        """Subjects of the chosen scenarios (granian-tls only when Granian
        installed into bench/.venv)."""
        names = []
        for sc in self.scenarios():
            for s in SCENARIOS[sc][1]:
                if s not in names and s in self.subjects and (not self.args.only or s in self.args.only):
                    names.append(s)
        return names

    def scenarios(self) -> list[str]:
        return [s for s in ORDER if not self.args.scenarios or s in self.args.scenarios]

    # ---- one subject, all its scenarios, in one process lifetime

    def run_subject(self, name: str, rnd: int) -> None:
        subject = self.subjects[name]
        if subject.hosts:
            running = HostsRunning(subject, self.logs, f"r{rnd}", self.access, self.nginx_bin)
        else:
            running = Running(subject, self.logs, f"r{rnd}", self.access)
        if subject.pg:
            running.pg_root = self.pg.postmaster_pid()
        try:
            running.wait_ready()
            if subject.tls:
                # The TLS subjects must serve the very bytes hello serves.
                status, ctype, body = running.get("/")
                if (status, ctype, body) != (200, tls_mod.CONTENT_TYPE, tls_mod.BODY.encode()):
                    raise RuntimeError(f"{name} answered GET / with {status} {ctype!r} {body!r}, not hello's "
                                       f"200 {tls_mod.CONTENT_TYPE!r} {tls_mod.BODY.encode()!r}")
            mine = [sc for sc in self.scenarios() if name in SCENARIOS[sc][1]]
            if not self.args.smoke:
                self.warm_up(running, mine[0])
            for sc in mine:
                r = getattr(self, "sc_" + sc.replace("-", "_"))(running, rnd)
                self.results.setdefault(sc, {}).setdefault(name, []).append(r)
                print(f"  {sc:12} {name:17} {summary_line(r)}", flush=True)
            if running.exited():
                raise RuntimeError(running.exited())
            if running.probe() != 200:
                raise RuntimeError(f"{name} no longer answers 200 on {subject.probe_path} after its runs")
        finally:
            running.stop()

    def warm_up(self, running: Running, sc: str) -> None:
        load = Load(self.load.threads, self.load.connections, 1)
        path, headers = ("/api/hello/", [f"Authorization: Bearer {self.access}"]) if sc.startswith(("jwt", "pg")) or sc == "hammer" else ("/", [])
        if sc == "axum-items":
            path = "/items"
        run_wrk(wrk_cmd(load, running.url + path, self.lua["get"], headers))

    def sc_keepalive(self, running, rnd):
        return measured(running, wrk_cmd(self.load, running.url + "/", self.lua["get"]))

    def sc_metrics(self, running, rnd):
        r = measured(running, wrk_cmd(self.load, running.url + "/", self.lua["get"]))
        if running.subject.name == "ferricorn-metrics":
            r["scrape_ms"] = scrape_times(TARGET / "release" / "examples" / "hello", 16, 5 if self.args.smoke else 50)
        return r

    def sc_axum_items(self, running, rnd):
        return measured(running, wrk_cmd(self.load, running.url + "/items", self.lua["get"]))

    def sc_close(self, running, rnd):
        return measured(running, wrk_cmd(self.load, running.url + "/", self.lua["get"], ["Connection: close"]))

    def sc_jwt_hello(self, running, rnd):
        return measured(running, wrk_cmd(self.load, running.url + "/api/hello/", self.lua["get"],
                                         [f"Authorization: Bearer {self.access}"]))

    def sc_jwt_refresh(self, running, rnd):
        name = running.subject.name
        per_thread = int(self.refresh_rate_guess.get(name, 10000.0) * self.load.duration * 1.5 / self.load.threads) + 100
        prefix = self.scratch / f"refresh-{name}-r{rnd}"
        mint_pool(prefix, self.load.threads, per_thread, family=name == "auth-safer")
        try:
            r = measured(running, wrk_cmd(self.load, running.url + "/api/token/refresh/", self.lua["refresh"],
                                          script_args=[str(prefix)]))
        finally:
            for t in range(self.load.threads):
                Path(f"{prefix}.{t}").unlink(missing_ok=True)
        r["pool"] = per_thread * self.load.threads
        if r["requests"] > r["pool"]:
            print(f"  warning: {name} spent the whole refresh pool ({r['pool']}); later requests failed", flush=True)
        # Size the next round's pool from what this one used.
        self.refresh_rate_guess[name] = max(r["rps"] * 1.2, 1000.0)
        return r

    def sc_jwt_obtain(self, running, rnd):
        body = json.dumps({"username": USERNAME, "password": PASSWORD})
        return measured(running, wrk_cmd(self.obtain_load, running.url + "/api/token/", self.lua["post"],
                                         ["Content-Type: application/json"], script_args=[body]))

    # Issue 13: the same refresh and obtain, on PostgreSQL; and refresh through
    # Nginx to 1, 2, 3 hosts.
    sc_pg_refresh = sc_jwt_refresh
    sc_pg_obtain = sc_jwt_obtain
    # Issue 15: reuse detection and access revocation, off and on.
    sc_safer_refresh = sc_jwt_refresh
    sc_safer_hello = sc_jwt_hello
    sc_pg_hosts = sc_jwt_refresh

    def sc_hammer(self, running, rnd):
        hello = wrk_cmd(self.hammer_hello_load, running.url + "/api/hello/", self.lua["get"],
                        [f"Authorization: Bearer {self.access}"])
        alone = measured(running, hello)
        body = json.dumps({"username": USERNAME, "password": PASSWORD})
        hammer = wrk_cmd(Load(1, self.args.hammer_obtain_connections, self.load.duration + 1, "30s"),
                         running.url + "/api/token/", self.lua["post"],
                         ["Content-Type: application/json"], script_args=[body])
        hp = subprocess.Popen(hammer, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(0.5)  # let the logins pile up first
            loaded = measured(running, hello)
        finally:
            out, _ = hp.communicate()
        h = parse_wrk(out)
        r = dict(loaded)
        r["p99_alone"] = alone["p99"]
        r["rps_alone"] = alone["rps"]
        r["p99_ratio"] = loaded["p99"] / alone["p99"] if alone["p99"] else float("inf")
        r["hammer_rps"] = h["rps"]
        r["hammer_errors"] = h["errors"]
        r["errors"] = loaded["errors"] + alone["errors"] + h["errors"]
        return r

    # Issue 16: TLS. Each run records what its handshake negotiated.
    def sc_tls_h1(self, running, rnd):
        r = measured(running, wrk_cmd(self.load, running.url + "/", self.lua["get"]))
        r["tls"] = tls_mod.negotiated(running.port)  # wrk offers no ALPN
        return r

    def sc_tls_h2(self, running, rnd):
        a = self.args
        return measured(running, tls_mod.h2load_cmd(running.url + "/", a.threads, a.h2_clients, a.h2_streams,
                                                    a.duration), runner=tls_mod.run_h2load)

    def sc_tls_handshake(self, running, rnd):
        r = measured(running, tls_mod.handshakes_cmd(running.port, self.load.duration, self.args.handshake_clients),
                     runner=tls_mod.run_handshakes)
        r["tls"] = tls_mod.negotiated(running.port)
        return r

    def sc_tls_reconnect(self, running, rnd):
        r = measured(running, wrk_cmd(self.load, running.url + "/", self.lua["get"], ["Connection: close"]))
        r["tls"] = tls_mod.negotiated(running.port)
        # How often a reconnection offering the previous ticket is resumed.
        r["resumed"] = tls_mod.resumed(running.port)
        return r

    def sc_hup(self, running, rnd):
        r = measured(running, wrk_cmd(self.load, running.url + "/", self.lua["get"]),
                     hup_pid=running.pid, hup_after=self.load.duration / 2)
        return r

    # ---- the whole run

    def run(self) -> int:
        try:
            return self._run()
        finally:
            self.close()

    def _run(self) -> int:
        # Other work on the machine skews req/s first; the load average at
        # both ends goes in the header so a reader can tell.
        self.loadavg = [os.getloadavg()[0]]
        self.prepare()
        names = self.wanted_subjects()
        failures = []
        for rnd in range(self.args.rounds):
            print(f"round {rnd + 1}/{self.args.rounds}", flush=True)
            for name in names:
                try:
                    self.run_subject(name, rnd)
                except Exception as e:  # one subject's failure must not hide the others
                    failures.append(f"{name} (round {rnd + 1}): {e}")
                    print(f"  FAILED {name}: {e}", flush=True)
        self.loadavg.append(os.getloadavg()[0])
        report = self.report()
        print()
        print(report)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        (self.out / f"results-{stamp}.json").write_text(json.dumps(
            {"header": self.header(), "args": vars(self.args), "results": self.results}, indent=1))
        (self.out / "report.md").write_text(report + "\n")
        errors = [(sc, s, r["errors"]) for sc, by in self.results.items() for s, runs in by.items()
                  for r in runs if r["errors"]]
        if self.args.smoke:
            for sc, s, n in errors:
                # Errors during a reload are a target (judged in full runs),
                # not a sign that the script or a subject is broken.
                if sc == "hup":
                    print(f"warning: {s} answered {n} errors during the HUP reload", file=sys.stderr)
                else:
                    failures.append(f"{s} answered {n} errors in {sc}")
        if failures:
            print("\nFAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
            return 1
        return 0

    # ---- report

    def header(self) -> str:
        a = self.args
        cpus = os.cpu_count()
        model = cpu_model()
        return (f"{cpus} CPUs ({model}); wrk -t{a.threads} -c{a.connections} -d{a.duration:g}s --timeout 5s "
                f"(obtain: -t1 -c{a.obtain_connections}; hammer: hello -t1 -c{a.hammer_connections} + "
                f"obtain -t1 -c{a.hammer_obtain_connections}); {a.workers} worker processes per subject; "
                f"{a.rounds} round(s) interleaved, medians; 1-min load average {self.loadavg[0]:.2f} at start, "
                f"{self.loadavg[-1]:.2f} at end" + (f"; {self.pg_version}, fsync on, in a throwaway cluster on "
                                                    f"127.0.0.1" if self.pg_version else "")
                + (f"; TLS: one self-signed {tls_mod.KEYS[a.tls_key][1]} certificate for every subject, HTTP/2 by "
                   f"h2load -t{a.threads} -c{a.h2_clients} -m{a.h2_streams} -D {a.duration:g}s"
                   if any(sc.startswith("tls-") for sc in self.scenarios()) else "")
                + (" — SMOKE, no targets judged" if a.smoke else ""))

    def ratio(self, sc: str, subject: str, other_sc: str, other: str, key: str) -> float | None:
        """Median over rounds of subject/other, both from the same round."""
        a = self.results.get(sc, {}).get(subject, [])
        b = self.results.get(other_sc, {}).get(other, [])
        rs = [x[key] / y[key] for x, y in zip(a, b) if y[key]]
        return statistics.median(rs) if rs else None

    def report(self) -> str:
        lines = [f"# ferricorn benchmark — {dt.date.today().isoformat()}", "", self.header(), ""]
        for sc in self.scenarios():
            if sc not in self.results:
                continue
            title, order, base = SCENARIOS[sc]
            lines += [f"## {sc}: {title}", ""]
            if sc == "hammer":
                lines += ["| subject | hello req/s alone | p99 alone | hello req/s hammered | p99 hammered "
                          "| p99 × | logins/s | errors |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
                for s in order:
                    runs = self.results[sc].get(s)
                    if not runs:
                        continue
                    m = lambda k: statistics.median(r[k] for r in runs)
                    lines.append(f"| {s} | {m('rps_alone'):,.0f} | {ms(m('p99_alone'))} | {m('rps'):,.0f} | "
                                 f"{ms(m('p99'))} | {m('p99_ratio'):.2f} | {m('hammer_rps'):,.1f} | "
                                 f"{sum(r['errors'] for r in runs)} |")
                lines.append("")
                continue
            if sc == "pg-hosts":
                lines += self.hosts_table(sc, order, base)
                continue
            if sc.startswith("pg-"):
                lines += self.pg_table(sc, order, base)
                continue
            if sc.startswith("tls-"):
                lines += self.tls_table(sc, order, base)
                continue
            lines += [f"| subject | req/s | p50 | p99 | errors | RSS MiB | PSS MiB | server CPU s | req/CPU-s "
                      f"| × {base} req/s | × {base} req/CPU-s |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for s in order:
                runs = self.results[sc].get(s)
                if not runs:
                    continue
                m = lambda k: statistics.median(r[k] for r in runs)
                rr = self.ratio(sc, s, sc, base, "rps")
                rc = self.ratio(sc, s, sc, base, "rpcs")
                errs = sum(r["errors"] for r in runs)
                lines.append(f"| {s} | {m('rps'):,.0f} | {ms(m('p50'))} | {ms(m('p99'))} | {errs} | "
                             f"{m('rss_mib'):.1f} | {m('pss_mib'):.1f} | {m('cpu_s'):.2f} | {m('rpcs'):,.0f} | "
                             f"{fmt(rr)} | {fmt(rc)} |")
            lines.append("")
        notes = [f"- {s.name}: {s.note}" for s in self.subjects.values() if s.note and s.name in self.wanted_subjects()]
        if notes:
            lines += ["Subjects:", *notes, ""]
        lines += ["errors = non-2xx/3xx + connect/read/write errors + timeouts, summed over rounds; "
                  "RSS = sum of VmRSS over master and workers after the run (pages shared "
                  "between them, such as the binary's text, counted once per process); PSS = the same pages "
                  "shared out, so the sum is the memory the tree really holds; server CPU s = utime+stime of "
                  "the subject's process tree during the run.", ""]
        if not self.args.smoke:
            lines += ["## Targets", "", *self.targets(), ""]
        return "\n".join(lines)

    def pg_table(self, sc: str, order: list[str], base: str) -> list[str]:
        lines = [f"| subject | store | req/s | p50 | p99 | errors | RSS MiB | server CPU s | PostgreSQL CPU s "
                 f"| req/CPU-s (server + PostgreSQL) | × {base} req/s | × {base} req/CPU-s |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s in order:
            runs = self.results[sc].get(s)
            if not runs:
                continue
            m = lambda k: statistics.median(r.get(k, 0.0) for r in runs)
            store = "PostgreSQL" if self.subjects[s].pg else "SQLite"
            rr = self.ratio(sc, s, sc, base, "rps")
            rc = self.ratio(sc, s, sc, base, "rpcs")
            errs = sum(r["errors"] for r in runs)
            pg_cpu = f"{m('pg_cpu_s'):.2f}" if self.subjects[s].pg else "—"
            lines.append(f"| {s} | {store} | {m('rps'):,.0f} | {ms(m('p50'))} | {ms(m('p99'))} | {errs} | "
                         f"{m('rss_mib'):.1f} | {m('cpu_s'):.2f} | {pg_cpu} | {m('rpcs'):,.0f} | "
                         f"{fmt(rr)} | {fmt(rc)} |")
        return lines + [""]

    def tls_table(self, sc: str, order: list[str], base: str) -> list[str]:
        """Issue 16: the keep-alive table, with h2load's mean and max
        request time where wrk gives p50 and p99, handshakes/s for
        `Connection: close`, and what each subject's handshake negotiated."""
        h2 = sc == "tls-h2"
        hs = sc in ("tls-handshake", "tls-reconnect")
        what = "handshakes/s (= req/s)" if hs else "req/s"
        per_cpu = "handshakes/CPU-s" if hs else "req/CPU-s"
        lat = ("mean", "max") if h2 else ("p50", "p99")
        lines = [f"| subject | {what} | {lat[0]} | {lat[1]} | errors | RSS MiB | PSS MiB | server CPU s | {per_cpu} "
                 f"| × {base} req/s | × {base} req/CPU-s |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        negotiated = []
        for s in order:
            runs = self.results[sc].get(s)
            if not runs:
                continue
            m = lambda k: statistics.median(r[k] for r in runs)
            rr = self.ratio(sc, s, sc, base, "rps")
            rc = self.ratio(sc, s, sc, base, "rpcs")
            errs = sum(r["errors"] for r in runs)
            lines.append(f"| {s} | {m('rps'):,.0f} | {ms(m('p50'))} | {ms(m('p99'))} | {errs} | "
                         f"{m('rss_mib'):.1f} | {m('pss_mib'):.1f} | {m('cpu_s'):.2f} | {m('rpcs'):,.0f} | "
                         f"{fmt(rr)} | {fmt(rc)} |")
            got = f"{s}: {', '.join(sorted({r.get('tls', '?') for r in runs}))}"
            if "resumed" in runs[0]:
                got += f", resumed {' / '.join(str(r['resumed']) for r in runs)} of 10 reconnections (by round)"
            negotiated.append(got)
        lines.append("")
        if "granian-tls" in order and "granian-tls" not in self.subjects:
            lines += ["granian-tls: not run — Granian is not installed in bench/.venv.", ""]
        if h2:
            tool = (f"h2load -t{self.args.threads} -c{self.args.h2_clients} -m{self.args.h2_streams} (h2load gives "
                    f"no percentiles: mean and max request time)")
        elif sc == "tls-handshake":
            tool = (f"{self.args.handshake_clients} client processes (`python bench/tls.py handshakes`), each "
                    f"sequential: connect, full handshake, GET / with `Connection: close`, read to the close; "
                    f"p50/p99 of that whole exchange")
        else:
            tool = (f"wrk -t{self.load.threads} -c{self.load.connections}"
                    + (" -H 'Connection: close'" if sc == "tls-reconnect" else ""))
        return lines + [f"Load: {tool}. Negotiated ({'by h2load' if h2 else 'by openssl s_client, as wrk: no ALPN'}): "
                        + "; ".join(negotiated) + ".", ""]

    def hosts_table(self, sc: str, order: list[str], base: str) -> list[str]:
        lines = ["| hosts | req/s | p50 | p99 | errors | ferricorn-auth CPU s | Nginx CPU s | PostgreSQL CPU s "
                 "| PostgreSQL share of server CPU | machine busy | × 1 host req/s |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s in order:
            runs = self.results[sc].get(s)
            if not runs:
                continue
            m = lambda k: statistics.median(r.get(k, 0.0) for r in runs)
            share = statistics.median(r["pg_cpu_s"] / (r["cpu_s"] + r["proxy_cpu_s"] + r["pg_cpu_s"])
                                      for r in runs)
            errs = sum(r["errors"] for r in runs)
            lines.append(f"| {self.subjects[s].hosts} | {m('rps'):,.0f} | {ms(m('p50'))} | {ms(m('p99'))} | "
                         f"{errs} | {m('cpu_s'):.2f} | {m('proxy_cpu_s'):.2f} | {m('pg_cpu_s'):.2f} | "
                         f"{share:.0%} | {m('machine_busy'):.0%} | {fmt(self.ratio(sc, s, sc, base, 'rps'))} |")
        return lines + ["", f"Each host: `ferricorn-auth --db postgres://... serve -w 1` on its own port (its own "
                        f"master, one worker, a pool of 8 connections); one Nginx ({NGINX_WORKERS} worker process) "
                        f"in front, upstream round robin with keepalive 64; PostgreSQL CPU s = the postmaster's "
                        f"process tree (backends, WAL writer, checkpointer); machine busy = all CPUs, wrk "
                        f"included, from /proc/stat.", ""]

    def targets(self) -> list[str]:
        out = []

        def judge(label, value, ok, shown):
            if value is None:
                out.append(f"- [ ] n/a — {label}: not measured")
            else:
                out.append(f"- {'held' if ok else '**NOT held**'} — {label}: {shown}")

        for sc in ("keepalive", "close"):
            r = self.ratio(sc, "ferricorn-hello", sc, "bare-hyper", "rps")
            judge(f"ferricorn hello ≥ 0.95 × bare hyper req/s ({sc})", r, r is not None and r >= 0.95, f"{fmt(r)}")
            r = self.ratio(sc, "ferricorn-hello", sc, "bare-hyper", "rpcs")
            judge(f"ferricorn hello ≥ 0.90 × bare hyper req/CPU-s ({sc})", r, r is not None and r >= 0.90, f"{fmt(r)}")
        for sc in ("keepalive", "close"):
            for key, what in (("rps", "req/s"), ("rpcs", "req/CPU-s")):
                r = self.ratio(sc, "ferricorn-hello", sc, "actix-web", key)
                judge(f"ferricorn hello ≥ actix-web {what} ({sc})", r, r is not None and r >= 1.0, f"{fmt(r)}")
        r = self.ratio("jwt-hello", "ferricorn-auth", "keepalive", "ferricorn-hello", "rps")
        judge("GET /api/hello/ ≥ 0.8 × ferricorn hello req/s", r, r is not None and r >= 0.8, fmt(r))
        r = self.ratio("jwt-refresh", "ferricorn-auth", "jwt-refresh", "simplejwt", "rps")
        judge("refresh (rotation + blacklist) ≥ 20 × simplejwt req/s", r, r is not None and r >= 20, fmt(r))
        r = self.ratio("jwt-obtain", "ferricorn-auth", "jwt-obtain", "simplejwt", "rps")
        judge("obtain ≥ 5 × simplejwt req/s", r, r is not None and r >= 5, fmt(r))
        r = self.ratio("pg-refresh", "ferricorn-auth-pg", "pg-refresh", "simplejwt-pg", "rps")
        judge("refresh on PostgreSQL ≥ 20× simplejwt on PostgreSQL req/s", r, r is not None and r >= 20, fmt(r))
        r = self.ratio("jwt-hello", "ferricorn-auth", "jwt-hello", "simplejwt", "rss_mib")
        judge("RSS of ferricorn-auth (master + workers) ≤ 1/10 of Gunicorn + Django", r,
              r is not None and r <= 0.1, f"{fmt(r)} (≤ 0.10 wanted)")
        r = self.ratio("jwt-hello", "ferricorn-auth", "jwt-hello", "simplejwt", "pss_mib")
        if r is not None:
            out.append(f"  - for comparison, by PSS (shared pages counted once): {fmt(r)}")
        runs = self.results.get("hammer", {}).get("ferricorn-auth")
        r = statistics.median(x["p99_ratio"] for x in runs) if runs else None
        judge("obtain hammering raises p99 of GET /api/hello/ by ≤ 2×", r, r is not None and r <= 2.0, fmt(r))
        for key, what in (("rps", "req/s"), ("rpcs", "req/CPU-s")):
            r = self.ratio("axum-items", "ferricorn-axum", "axum-items", "axum-serve", key)
            judge(f"axum example under ferricorn ≥ 0.95 × axum::serve {what} (GET /items, keep-alive)", r,
                  r is not None and r >= 0.95, fmt(r))
        for key, what in (("rps", "req/s"), ("rpcs", "req/CPU-s")):
            r = self.ratio("metrics", "ferricorn-metrics", "metrics", "ferricorn-hello", key)
            judge(f"hello with --metrics-bind ≥ 0.98 × without, {what} (GET /, keep-alive)", r,
                  r is not None and r >= 0.98, fmt(r))
        r = self.ratio("safer-refresh", "auth-safer", "safer-refresh", "ferricorn-auth", "rps")
        judge("refresh with refresh_reuse_detection ≥ 0.90 × without (req/s)", r, r is not None and r >= 0.90, fmt(r))
        r = self.ratio("safer-hello", "auth-safer", "safer-hello", "ferricorn-auth", "rps")
        if r is not None:
            out.append(f"- measured — GET /api/hello/ with revoke_access_on_logout: {fmt(r)} × without (req/s)")
        runs = self.results.get("metrics", {}).get("ferricorn-metrics")
        scr = [x["scrape_ms"] for x in runs or [] if "scrape_ms" in x]
        if scr:
            out.append(f"- measured — one scrape of /metrics with {scr[0]['workers']} workers: median "
                       f"{statistics.median(x['median'] for x in scr):.2f} ms, worst "
                       f"{max(x['max'] for x in scr):.2f} ms")
        runs = self.results.get("hup", {}).get("ferricorn-hello")
        n = sum(x["errors"] for x in runs) if runs else None
        judge("zero failed requests during a HUP reload", n, n == 0, f"{n} errors over {len(runs or [])} round(s)")
        # Issue 16.
        r = self.ratio("tls-h2", "ferricorn-tls", "tls-h2", "nginx-tls", "rpcs")
        judge("TLS + HTTP/2 keep-alive ≥ 0.9 × Nginx req/CPU-s", r, r is not None and r >= 0.9, fmt(r))
        for sc, what in (("tls-h2", "TLS + HTTP/2 keep-alive"), ("tls-h1", "TLS + HTTP/1.1 keep-alive"),
                         ("tls-handshake", "full TLS handshakes (`Connection: close`)"),
                         ("tls-reconnect", "wrk's `Connection: close` reconnections (resumed where accepted)")):
            parts = []
            for key, unit in (("rps", "req/s"), ("rpcs", "req/CPU-s")):
                if sc == "tls-h2" and key == "rpcs":
                    continue  # the target above
                r = self.ratio(sc, "ferricorn-tls", sc, "nginx-tls", key)
                if r is not None:
                    parts.append(f"{fmt(r)} × Nginx {unit}")
            if parts:
                out.append(f"- measured — {what}: ferricorn " + ", ".join(parts))
        return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def fmt(x) -> str:
    return "—" if x is None else f"{x:.2f}"


def summary_line(r: dict) -> str:
    lo, hi = ("mean", "max") if r.get("latency") == "mean/max" else ("p50", "p99")
    s = (f"{r['rps']:>10,.0f} req/s  {lo} {ms(r['p50']):>9}  {hi} {ms(r['p99']):>9}  err {r['errors']:>4}  "
         f"cpu {r['cpu_s']:5.2f}s  {r['rpcs']:>8,.0f} req/CPU-s  rss {r['rss_mib']:6.1f} MiB")
    if r["errors"]:
        s += "  (" + ", ".join(f"{k} {r[k]}" for k in ("status", "connect", "read", "write", "timeout",
                                                      "errored") if r.get(k)) + ")"
    if "p99_alone" in r:
        s += f"  (p99 alone {ms(r['p99_alone'])}, ×{r['p99_ratio']:.2f}; logins {r['hammer_rps']:.1f}/s)"
    return s


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="about a second per subject and scenario, one round, no targets")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--connections", type=int, default=64, help="wrk connections")
    p.add_argument("--obtain-connections", type=int, default=4)
    p.add_argument("--hammer-connections", type=int, default=16, help="connections of the GET /api/hello/ wrk")
    p.add_argument("--hammer-obtain-connections", type=int, default=4, help="connections of the POST /api/token/ wrk")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--h2-clients", type=int, default=4, help="h2load connections (tls-h2)")
    p.add_argument("--h2-streams", type=int, default=100, help="h2load streams per connection (tls-h2)")
    p.add_argument("--handshake-clients", type=int, default=8,
                   help="full-handshake client processes (tls-handshake)")
    p.add_argument("--tls-key", choices=sorted(tls_mod.KEYS), default="ec",
                   help="key of the run's self-signed certificate: ec = ECDSA P-256, rsa = RSA 2048 (tls-*)")
    p.add_argument("--only", nargs="*", help="subjects to run (default: all)")
    p.add_argument("--scenarios", nargs="*", choices=ORDER, help="scenarios to run (default: all)")
    args = p.parse_args()
    if args.smoke:
        args.rounds, args.duration = 1, 1.0
        args.threads, args.connections = 1, 8
        args.handshake_clients = 2
    signal.signal(signal.SIGINT, kill_all)
    signal.signal(signal.SIGTERM, kill_all)
    try:
        return Bench(args).run()
    finally:
        kill_all()


if __name__ == "__main__":
    sys.exit(main())
