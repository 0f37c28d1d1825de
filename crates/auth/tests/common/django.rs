//! The real Django + DRF + simplejwt project of `bench/django_app`, under
//! Gunicorn, as the tests run it: the oracle of the differential test, and
//! the other half of a Django-mode deployment (issue 13) sharing a
//! PostgreSQL database with ferricorn-auth.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::postgres::free_port;
use super::{run, Proc};

/// The `bench` directory when its venv (bench/python-env.sh) is there, or
/// why the test cannot run.
pub fn venv() -> Result<PathBuf, String> {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench");
    let bin = bench.join(".venv/bin");
    for tool in ["python", "gunicorn"] {
        if !bin.join(tool).exists() {
            return Err(format!(
                "{} is missing; create it with `bash bench/python-env.sh`",
                bin.join(tool).display()
            ));
        }
    }
    Ok(bench)
}

/// [`venv`], or `None` after reporting the skip (a failure under
/// `CI=true`, so CI cannot pass by skipping).
pub fn venv_or_skip() -> Option<PathBuf> {
    match venv() {
        Ok(b) => Some(b),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and the simplejwt venv is unavailable: {why}")
        }
        Err(why) => {
            eprintln!("skipping a test against the real simplejwt: {why}");
            None
        }
    }
}

/// The Django project migrated and served by one Gunicorn worker on a free
/// port; stopped on drop (with its [`Proc`]).
pub struct Django {
    pub proc: Proc,
    pub addr: SocketAddr,
    app: PathBuf,
    bin: PathBuf,
    env: Vec<(String, String)>,
}

impl Django {
    /// Migrates the project's database and starts Gunicorn. `env` chooses
    /// the database (`BENCH_DJANGO_DB`: a SQLite file; `BENCH_DJANGO_PG`: a
    /// PostgreSQL URL) and the signing key (`BENCH_SIGNING_KEY`); Gunicorn's
    /// log goes to `dir/gunicorn.log`.
    pub fn start(bench: &Path, dir: &Path, env: &[(&str, &str)]) -> Django {
        let env: Vec<(String, String)> = [
            ("DJANGO_SETTINGS_MODULE", "benchsite.settings"),
            // Keep the source tree free of __pycache__ directories.
            ("PYTHONDONTWRITEBYTECODE", "1"),
        ]
        .iter()
        .chain(env)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (app, bin) = (bench.join("django_app"), bench.join(".venv/bin"));
        run(
            "manage.py migrate",
            &mut python(&bin, &app, &env, &["manage.py", "migrate", "-v", "0"]),
            "",
        );
        let port = free_port();
        let mut proc = Proc::spawn(
            "gunicorn",
            Command::new(bin.join("gunicorn"))
                .args(["-b", &format!("127.0.0.1:{port}"), "-w", "1"])
                .args(["--log-level", "warning", "benchsite.wsgi"])
                .current_dir(&app)
                .envs(env.iter().cloned())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                // Django logs every 4xx; keep them out of the test's output.
                .stderr(std::fs::File::create(dir.join("gunicorn.log")).unwrap()),
        );
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = proc.exited() {
                panic!("gunicorn exited before listening: {status}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "gunicorn not listening in 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Django {
            proc,
            addr,
            app,
            bin,
            env,
        }
    }

    /// The project's Python with its environment, in its directory.
    pub fn python(&self, args: &[&str]) -> Command {
        python(&self.bin, &self.app, &self.env, args)
    }

    /// Runs Python `script` in `manage.py shell`; its standard output.
    pub fn shell(&self, script: &str) -> String {
        run(
            "manage.py shell",
            &mut self.python(&["manage.py", "shell", "--no-imports", "-c", script]),
            "",
        )
    }

    /// Creates `users` (name, active) with Django's `create_user`, in order:
    /// their ids are 1, 2, ... in a fresh database.
    pub fn create_users(&self, users: &[(&str, bool)], password: &str) {
        let mut script = String::from("from django.contrib.auth.models import User\n");
        for (i, (name, active)) in users.iter().enumerate() {
            script += &format!(
                "u = User.objects.create_user({name:?}, password={password:?}, is_active={})\n\
                 assert u.id == {}, u.id\n",
                if *active { "True" } else { "False" },
                i + 1
            );
        }
        self.shell(&script);
    }
}

fn python(bin: &Path, app: &Path, env: &[(String, String)], args: &[&str]) -> Command {
    let mut c = Command::new(bin.join("python"));
    c.args(args).current_dir(app).envs(env.iter().cloned());
    c
}
