//! The configuration surface (issue 3, item 3): Gunicorn's flag names, a TOML
//! file, `FERRICORN_<FLAG>` environment variables, the precedence defaults <
//! file < environment < command line, and messages that name the bad flag,
//! key or variable.

use std::time::Duration;

use crate::harness::*;

const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `echo --print-config` with `args` and `env` and parses its TOML.
fn print_config(args: &[&str], env: &[(&str, &str)]) -> toml::Table {
    let mut all = vec!["--print-config"];
    all.extend_from_slice(args);
    let out = run_to_exit("echo", &all, env, EXIT_TIMEOUT);
    assert!(
        out.status.success(),
        "--print-config failed: {:?}\n{}",
        out.status,
        out.stderr
    );
    out.stdout
        .parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("--print-config output is not TOML ({e}):\n{}", out.stdout))
}

/// A setting as seconds or a count, whether printed as an integer, a float
/// or a string of digits.
fn number(table: &toml::Table, key: &str) -> f64 {
    match table.get(key) {
        Some(toml::Value::Integer(i)) => *i as f64,
        Some(toml::Value::Float(f)) => *f,
        Some(toml::Value::String(s)) => s
            .trim_end_matches('s')
            .parse()
            .unwrap_or_else(|_| panic!("{key} = {s:?} is not a number")),
        other => panic!("--print-config has no number for {key}: {other:?}\n{table}"),
    }
}

fn assert_refused(out: &Finished, needle: &str) {
    assert!(
        !out.status.success(),
        "expected a refusal naming {needle:?}, but it exited {:?}\n{}",
        out.status,
        out.stderr
    );
    assert!(
        out.stderr.contains(needle),
        "the message does not name {needle:?}:\n{}",
        out.stderr
    );
}

#[test]
fn bad_workers_value_is_refused_naming_the_flag() {
    let out = run_to_exit(
        "echo",
        &["--bind", "127.0.0.1:0", "--workers", "abc"],
        &[],
        EXIT_TIMEOUT,
    );
    assert_refused(&out, "--workers");
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn bad_gunicorn_parser_switches_are_refused_naming_the_flag() {
    for (args, env, needle) in [
        (&["--header-map", "keep"][..], &[][..], "--header-map"),
        (&["--proxy-protocol", "v3"], &[], "--proxy-protocol"),
        (&["--proxy-allow-from", "nope"], &[], "--proxy-allow-from"),
        (
            &["--casefold-http-method=maybe"],
            &[],
            "--casefold-http-method",
        ),
        (
            &[],
            &[("FERRICORN_PERMIT_UNCONVENTIONAL_HTTP_METHOD", "maybe")],
            "FERRICORN_PERMIT_UNCONVENTIONAL_HTTP_METHOD",
        ),
    ] {
        let mut all = vec!["--bind", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let out = run_to_exit("echo", &all, env, EXIT_TIMEOUT);
        assert_refused(&out, needle);
    }
}

#[test]
fn unknown_flag_is_refused_naming_it() {
    let out = run_to_exit("echo", &["--no-such-flag"], &[], EXIT_TIMEOUT);
    assert_refused(&out, "--no-such-flag");
}

#[test]
fn bad_bind_is_refused_naming_the_flag() {
    let out = run_to_exit("echo", &["--bind", "127.0.0.1:notaport"], &[], EXIT_TIMEOUT);
    assert_refused(&out, "--bind");
}

#[test]
fn bad_config_file_value_names_the_key() {
    let file = TempFile::new("badcfg", "toml", "workers = \"abc\"\n");
    let out = run_to_exit(
        "echo",
        &[
            "--bind",
            "127.0.0.1:0",
            "--config",
            file.path().to_str().unwrap(),
        ],
        &[],
        EXIT_TIMEOUT,
    );
    assert_refused(&out, "workers");
    assert!(
        out.stderr.contains(&*file.path().to_string_lossy()),
        "the message does not name the file:\n{}",
        out.stderr
    );
}

#[test]
fn unknown_config_file_key_is_refused_naming_it() {
    // `keepalive` is Gunicorn's spelling; ours is `keep_alive`. A typo that
    // is silently ignored is worse than a refusal.
    let file = TempFile::new("typo", "toml", "keepalive = 5\n");
    let out = run_to_exit(
        "echo",
        &["--bind", "127.0.0.1:0", "-c", file.path().to_str().unwrap()],
        &[],
        EXIT_TIMEOUT,
    );
    assert_refused(&out, "keepalive");
}

#[test]
fn unparsable_config_file_is_refused_naming_the_file() {
    let file = TempFile::new("broken", "toml", "this is [not toml\n");
    let out = run_to_exit(
        "echo",
        &["--config", file.path().to_str().unwrap()],
        &[],
        EXIT_TIMEOUT,
    );
    assert_refused(&out, &file.path().to_string_lossy());
}

#[test]
fn missing_config_file_is_refused_naming_it() {
    let path = temp_path("missing", "toml");
    let out = run_to_exit(
        "echo",
        &["--config", path.to_str().unwrap()],
        &[],
        EXIT_TIMEOUT,
    );
    assert_refused(&out, &path.to_string_lossy());
}

#[test]
fn bad_environment_value_names_the_variable() {
    let out = run_to_exit(
        "echo",
        &["--bind", "127.0.0.1:0"],
        &[("FERRICORN_WORKERS", "abc")],
        EXIT_TIMEOUT,
    );
    assert_refused(&out, "FERRICORN_WORKERS");
}

#[test]
fn print_config_shows_gunicorn_defaults() {
    let cfg = print_config(&[], &[]);
    assert_eq!(number(&cfg, "keep_alive"), 2.0, "{cfg}");
    assert_eq!(number(&cfg, "timeout"), 30.0, "{cfg}");
    assert_eq!(number(&cfg, "graceful_timeout"), 30.0, "{cfg}");
    assert_eq!(number(&cfg, "limit_request_line"), 4094.0, "{cfg}");
    assert_eq!(number(&cfg, "limit_request_fields"), 100.0, "{cfg}");
    assert_eq!(number(&cfg, "limit_request_field_size"), 8190.0, "{cfg}");
}

#[test]
fn precedence_is_defaults_then_file_then_environment_then_command_line() {
    let file = TempFile::new(
        "prec",
        "toml",
        "keep_alive = 5\ntimeout = 40\ngraceful_timeout = 50\nmax_requests = 60\n",
    );
    let path = file.path().to_str().unwrap();
    let cfg = print_config(
        &["--config", path, "--graceful-timeout", "52"],
        &[
            ("FERRICORN_TIMEOUT", "41"),
            ("FERRICORN_GRACEFUL_TIMEOUT", "51"),
        ],
    );
    // Default only.
    assert_eq!(number(&cfg, "limit_request_line"), 4094.0, "{cfg}");
    // File over default.
    assert_eq!(number(&cfg, "keep_alive"), 5.0, "{cfg}");
    assert_eq!(number(&cfg, "max_requests"), 60.0, "{cfg}");
    // Environment over file.
    assert_eq!(number(&cfg, "timeout"), 41.0, "{cfg}");
    // Command line over environment.
    assert_eq!(number(&cfg, "graceful_timeout"), 52.0, "{cfg}");
}

#[test]
fn config_file_can_come_from_the_environment() {
    let file = TempFile::new("envcfg", "toml", "keep_alive = 7\n");
    let cfg = print_config(&[], &[("FERRICORN_CONFIG", file.path().to_str().unwrap())]);
    assert_eq!(number(&cfg, "keep_alive"), 7.0, "{cfg}");
}

#[test]
fn printed_config_is_accepted_back_as_a_config_file() {
    let first = print_config(&["--keep-alive", "9", "--limit-request-line", "1000"], &[]);
    let file = TempFile::new("roundtrip", "toml", &first.to_string());
    let second = print_config(&["--config", file.path().to_str().unwrap()], &[]);
    assert_eq!(number(&second, "keep_alive"), 9.0, "{second}");
    assert_eq!(number(&second, "limit_request_line"), 1000.0, "{second}");
}

#[test]
fn config_file_settings_are_applied_to_the_server() {
    // Not only printed: the file's limit governs requests.
    let file = TempFile::new("applied", "toml", "limit_request_line = 100\n");
    let server = Server::echo(&["--config", file.path().to_str().unwrap()]);
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(200));
    assert_eq!(
        request(server.addr(), long).status_line,
        "HTTP/1.1 414 URI Too Long"
    );
}

#[test]
fn check_config_exits_zero_when_valid_and_nonzero_when_not() {
    let ok = run_to_exit(
        "echo",
        &["--check-config", "--keep-alive", "3"],
        &[],
        EXIT_TIMEOUT,
    );
    assert!(ok.status.success(), "{:?}\n{}", ok.status, ok.stderr);
    let file = TempFile::new("checkbad", "toml", "timeout = \"soon\"\n");
    let bad = run_to_exit(
        "echo",
        &["--check-config", "--config", file.path().to_str().unwrap()],
        &[],
        EXIT_TIMEOUT,
    );
    assert_refused(&bad, "timeout");
}

#[test]
fn help_lists_gunicorn_flag_names() {
    let out = run_to_exit("echo", &["--help"], &[], EXIT_TIMEOUT);
    assert!(out.status.success(), "{}", out.stderr);
    for flag in [
        "--bind",
        "--workers",
        "--threads",
        "--timeout",
        "--graceful-timeout",
        "--keep-alive",
        "--max-requests",
        "--max-requests-jitter",
        "--limit-request-line",
        "--limit-request-fields",
        "--limit-request-field_size",
        "--forwarded-allow-ips",
        "--header-map",
        "--permit-unconventional-http-method",
        "--casefold-http-method",
        "--permit-missing-host",
        "--proxy-protocol",
        "--proxy-allow-from",
        "--access-logfile",
        "--access-logformat",
        "--error-logfile",
        "--log-level",
        "--pid",
        "--config",
        "--name",
        "--backlog",
        "--check-config",
        "--print-config",
    ] {
        assert!(out.stdout.contains(flag), "--help does not list {flag}");
    }
}
