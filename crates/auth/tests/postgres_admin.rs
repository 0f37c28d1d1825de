//! ferricorn-auth's commands on PostgreSQL (issue 13): `migrate` (also
//! from several processes at once), every admin command, the expired-token
//! flush by command and on a timer, and what a bad database does at start:
//! one line naming the problem and the fix, never the password.

mod common;

use std::process::{Command, Output};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::postgres::{free_port, run_bounded, PgCluster, PASSWORD as DB_PASSWORD};
use common::{run, serve, BIN};

fn cli(url: &str, args: &[&str], stdin: &str) -> Output {
    run_bounded(
        &format!("ferricorn-auth {}", args.join(" ")),
        Command::new(BIN).args(["--db", url]).args(args),
        stdin,
    )
}

fn ok(url: &str, args: &[&str], stdin: &str) -> String {
    run(
        &format!("ferricorn-auth {}", args.join(" ")),
        Command::new(BIN).args(["--db", url]).args(args),
        stdin,
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Inserts `expired` outstanding tokens that expired an hour ago (the
/// first of them blacklisted) and one that expires tomorrow.
fn expired_tokens(pg: &PgCluster, expired: usize) {
    pg.psql(
        "ferricorn",
        &format!(
            "INSERT INTO ferricorn_outstanding_token (token, created_at, expires_at, jti) \
             SELECT 't', now() - interval '2 hours', now() - interval '1 hour', 'old' || i \
             FROM generate_series(1, {expired}) i;
             INSERT INTO ferricorn_outstanding_token (token, created_at, expires_at, jti) \
             VALUES ('t', now(), now() + interval '1 day', 'live');
             INSERT INTO ferricorn_blacklisted_token (token_id, blacklisted_at) \
             SELECT id, now() FROM ferricorn_outstanding_token WHERE jti = 'old1';"
        ),
    );
}

#[test]
fn every_admin_command_works_on_postgresql() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.url();

    // Before the schema exists, a command says what to run.
    let out = cli(&url, &["listusers"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("migrate"), "{}", stderr(&out));

    // Three migrations at once: the schema is made exactly once.
    let go = Arc::new(Barrier::new(3));
    let outputs: Vec<String> = (0..3)
        .map(|_| {
            let (url, go) = (url.clone(), Arc::clone(&go));
            std::thread::spawn(move || {
                go.wait();
                ok(&url, &["migrate"], "")
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(
        outputs
            .iter()
            .filter(|o| o.contains("applied migrations [1, 2]"))
            .count(),
        1,
        "{outputs:?}"
    );
    assert_eq!(
        outputs.iter().filter(|o| o.contains("up to date")).count(),
        2,
        "{outputs:?}"
    );

    assert_eq!(
        ok(
            &url,
            &["createuser", "alice", "--password-stdin"],
            "pw-one\n"
        )
        .trim(),
        "1"
    );
    assert_eq!(
        ok(
            &url,
            &["createuser", "bob", "--password-stdin", "--inactive"],
            "pw-two\n"
        )
        .trim(),
        "2"
    );
    let dup = cli(&url, &["createuser", "alice", "--password-stdin"], "x\n");
    assert_eq!(dup.status.code(), Some(1));
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));

    let hash = |user: &str| {
        pg.psql(
            "ferricorn",
            &format!("SELECT password FROM ferricorn_user WHERE username = '{user}'"),
        )
    };
    let first = hash("alice");
    assert!(first.starts_with("argon2$argon2id$"), "{first}");
    ok(
        &url,
        &["changepassword", "alice", "--password-stdin"],
        "pw-three\n",
    );
    assert_ne!(hash("alice"), first);
    let missing = cli(
        &url,
        &["changepassword", "nobody", "--password-stdin"],
        "x\n",
    );
    assert_eq!(missing.status.code(), Some(1));

    ok(&url, &["setactive", "bob", "true"], "");
    let csv = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        csv.path(),
        "username,password_hash,is_active\n\
         carol,pbkdf2_sha256$1000$salt$aGFzaA==,true\n\
         dave,\"argon2$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\",false\n\
         broken row\n",
    )
    .unwrap();
    let import = cli(&url, &["importusers", csv.path().to_str().unwrap()], "");
    assert_eq!(import.status.code(), Some(1), "one row is bad");
    assert!(String::from_utf8_lossy(&import.stdout).contains("imported 2 users"));
    let users = ok(&url, &["listusers"], "");
    let lines: Vec<Vec<&str>> = users.lines().map(|l| l.split('\t').collect()).collect();
    // Ids come from a sequence, which a refused insert also advances (as
    // in Django): in order, not dense.
    assert_eq!(
        lines.iter().map(|l| (l[1], l[2])).collect::<Vec<_>>(),
        [
            ("alice", "true"),
            ("bob", "true"),
            ("carol", "true"),
            ("dave", "false")
        ]
    );
    let ids: Vec<i64> = lines.iter().map(|l| l[0].parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // The flush deletes in batches (2500 is three of them), blacklist rows
    // with their tokens, and nothing that has not expired.
    expired_tokens(&pg, 2500);
    assert_eq!(ok(&url, &["flushexpiredtokens"], "").trim(), "2500");
    assert_eq!(
        pg.psql("ferricorn", "SELECT jti FROM ferricorn_outstanding_token"),
        "live\n"
    );
    assert_eq!(
        pg.psql(
            "ferricorn",
            "SELECT count(*) FROM ferricorn_blacklisted_token"
        ),
        "0\n"
    );
    assert_eq!(ok(&url, &["flushexpiredtokens"], "").trim(), "0");
}

#[test]
fn the_flush_timer_runs_in_one_worker_of_the_cluster() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.url();
    ok(&url, &["migrate"], "");
    expired_tokens(&pg, 300);
    let hosts: Vec<_> = (0..2)
        .map(|_| {
            serve(
                Command::new(BIN)
                    .args(["--db", &url, "--flush-expired-every", "1", "serve"])
                    .args(["-b", "127.0.0.1:0", "-w", "2"])
                    .env(
                        "FERRICORN_AUTH_SIGNING_KEY",
                        "flush-test-key-0123456789abcdef0123456789",
                    ),
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.psql(
        "ferricorn",
        "SELECT count(*) FROM ferricorn_outstanding_token",
    ) != "1\n"
    {
        assert!(
            Instant::now() < deadline,
            "the timer flushed nothing in 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Give the other workers' timers a few rounds: they find nothing left.
    std::thread::sleep(Duration::from_secs(3));
    let flushed: usize = hosts
        .iter()
        .map(|h| h.log.lock().unwrap().clone())
        .flat_map(|log| {
            log.lines()
                .filter_map(|l| {
                    l.split("flushed ")
                        .nth(1)?
                        .split(' ')
                        .next()?
                        .parse::<usize>()
                        .ok()
                })
                .collect::<Vec<_>>()
        })
        .sum();
    assert_eq!(flushed, 300, "each expired token is flushed once");
    assert_eq!(
        pg.psql("ferricorn", "SELECT jti FROM ferricorn_outstanding_token"),
        "live\n"
    );
}

/// `serve` on `url` with `extra` flags: its exit code and stderr.
fn serve_fails(url: &str, extra: &[&str]) -> (Option<i32>, String) {
    let out = run_bounded(
        "ferricorn-auth serve",
        Command::new(BIN)
            .args(["--db", url])
            .args(extra)
            .args(["serve", "-b", "127.0.0.1:0"]),
        "",
    );
    (out.status.code(), stderr(&out))
}

#[test]
fn a_bad_database_fails_at_start_with_one_line_naming_the_fix() {
    let Some(pg) = PgCluster::start() else { return };
    let port = pg.port();
    let newer = pg.create_database("newer");
    ok(&newer, &["migrate"], "");
    pg.psql(
        "newer",
        "INSERT INTO ferricorn_schema_migrations (version) VALUES (99)",
    );
    let closed = free_port();
    let cases: Vec<(String, Vec<&str>, i32, &str)> = vec![
        (
            format!("postgres://ferricorn:wrong-{DB_PASSWORD}@127.0.0.1:{port}/ferricorn"),
            vec![],
            3,
            "check the user and password",
        ),
        (
            pg.url_for("missing"),
            vec![],
            3,
            "create the database first",
        ),
        (
            format!("postgres://ferricorn:{DB_PASSWORD}@127.0.0.1:{closed}/ferricorn"),
            vec!["--db-connect-timeout", "2"],
            3,
            "Connection refused",
        ),
        (newer.clone(), vec![], 3, "newer than this ferricorn-auth"),
        (pg.url(), vec!["--schema", "django"], 3, "manage.py migrate"),
        (
            format!("{}?sslmode=require", pg.url()),
            vec![],
            2,
            "sslmode=disable",
        ),
        (pg.url(), vec!["--db-pool-size", "0"], 2, "at least 1"),
        (pg.url(), vec!["--schema", "flask"], 2, "ferricorn"),
        (
            format!("postgres://ferricorn:{DB_PASSWORD}@127.0.0.1:notaport/x"),
            vec![],
            2,
            "postgres://USER:PASSWORD@HOST",
        ),
    ];
    for (url, extra, code, fix) in cases {
        let (got, err) = serve_fails(&url, &extra);
        assert_eq!(got, Some(code), "{url} {extra:?}: {err}");
        assert!(err.contains(fix), "{url} {extra:?}: no {fix:?} in:\n{err}");
        assert!(
            !err.contains(DB_PASSWORD),
            "{extra:?}: the password was printed:\n{err}"
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{url} {extra:?}: not one line:\n{err}"
        );
    }
}
