//! Django mode (issue 13): ferricorn-auth with `--schema django` on a
//! Django project's own PostgreSQL database, beside the real Django, DRF
//! and simplejwt project serving the same users with the same signing key. A
//! token minted by either refreshes, verifies and blacklists on the other;
//! users created by either log in on both; nothing of Django's schema is
//! created or altered, and Django's password hashes stay Django's.

mod common;

use std::process::Command;
use std::time::Duration;

use common::django::{venv_or_skip, Django};
use common::postgres::{run_bounded, PgCluster, PASSWORD as DB_PASSWORD};
use common::{run, serve, BIN};
use serde_json::{json, Value};

const KEY: &str = "django-mode-test-signing-key-0123456789abcdef";
const PASSWORD: &str = "correct horse";

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn post(base: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(format!("{base}{path}"))
        .form(form)
        .send()
        .unwrap_or_else(|e| panic!("POST {base}{path}: {e}"));
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn hello(base: &str, access: &str) -> (u16, Value) {
    let r = http()
        .get(format!("{base}/api/hello/"))
        .bearer_auth(access)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn obtain(base: &str, user: &str) -> (String, String) {
    let (status, body) = post(
        base,
        "/api/token/",
        &[("username", user), ("password", PASSWORD)],
    );
    assert_eq!(status, 200, "obtain {user} on {base}: {body}");
    (
        body["refresh"].as_str().unwrap().to_string(),
        body["access"].as_str().unwrap().to_string(),
    )
}

/// Refreshes `token` on `base`, expecting success; the rotated token.
fn refresh(base: &str, token: &str) -> String {
    let (status, body) = post(base, "/api/token/refresh/", &[("refresh", token)]);
    assert_eq!(status, 200, "refresh on {base}: {body}");
    body["refresh"].as_str().unwrap().to_string()
}

fn refused_as_blacklisted(base: &str, token: &str) {
    let (status, body) = post(base, "/api/token/refresh/", &[("refresh", token)]);
    assert_eq!(
        (status, body),
        (
            401,
            json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
        ),
        "refresh on {base}"
    );
}

#[test]
fn django_and_ferricorn_auth_serve_the_same_users_and_tokens() {
    let Some(bench) = venv_or_skip() else { return };
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();

    // Before Django's migrations, Django mode refuses to start and says why.
    let out = run_bounded(
        "ferricorn-auth serve --schema django",
        Command::new(BIN)
            .args([
                "--db",
                &url,
                "--schema",
                "django",
                "serve",
                "-b",
                "127.0.0.1:0",
            ])
            .env("FERRICORN_AUTH_SIGNING_KEY", KEY),
        "",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("auth_user") && stderr.contains("manage.py migrate"),
        "{stderr}"
    );
    assert!(!stderr.contains(DB_PASSWORD), "{stderr}");

    let django = Django::start(
        &bench,
        dir.path(),
        &[
            ("BENCH_SIGNING_KEY", KEY),
            ("BENCH_DJANGO_PG", &url),
            ("BENCH_UPDATE_LAST_LOGIN", "1"),
        ],
    );
    django.create_users(&[("alice", true), ("bob", true)], PASSWORD);
    let tables_before = pg.psql(
        "ferricorn",
        "SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY table_name, column_name) \
         FROM information_schema.columns WHERE table_schema = 'public'",
    );

    let ours = serve(
        Command::new(BIN)
            .args([
                "--db",
                &url,
                "--schema",
                "django",
                "serve",
                "-b",
                "127.0.0.1:0",
                "-w",
                "2",
            ])
            .env("FERRICORN_AUTH_SIGNING_KEY", KEY)
            .env("FERRICORN_AUTH_ROTATE_REFRESH_TOKENS", "true")
            .env("FERRICORN_AUTH_BLACKLIST_AFTER_ROTATION", "true")
            .env("FERRICORN_AUTH_UPDATE_LAST_LOGIN", "true"),
    );
    let (d, f) = (
        format!("http://{}", django.addr),
        format!("http://{}", ours.addr),
    );

    // A Django user (Django's PBKDF2 hash) logs in on ferricorn-auth; the
    // hash stays Django's, and last_login is Django's column.
    let hash_of = |user: &str| {
        pg.psql(
            "ferricorn",
            &format!("SELECT password FROM auth_user WHERE username = '{user}'"),
        )
    };
    let before = hash_of("alice");
    assert!(before.starts_with("pbkdf2_sha256$"), "{before}");
    let (from_ours, access_ours) = obtain(&f, "alice");
    assert_eq!(hash_of("alice"), before, "Django's hash was rewritten");
    assert_eq!(
        pg.psql(
            "ferricorn",
            "SELECT last_login IS NOT NULL FROM auth_user WHERE username = 'alice'"
        ),
        "t\n"
    );

    // Minted by ferricorn-auth: accepted by Django, refreshed there, and
    // the spent token is refused back on ferricorn-auth.
    assert_eq!(hello(&d, &access_ours).0, 200);
    let (status, _) = post(&d, "/api/token/verify/", &[("token", &from_ours)]);
    assert_eq!(status, 200);
    let rotated_by_django = refresh(&d, &from_ours);
    refused_as_blacklisted(&f, &from_ours);
    // ...and what Django issued refreshes on ferricorn-auth.
    let rotated_by_ours = refresh(&f, &rotated_by_django);
    refused_as_blacklisted(&d, &rotated_by_django);

    // Minted by Django: accepted by ferricorn-auth.
    let (from_django, access_django) = obtain(&d, "bob");
    assert_eq!(hello(&f, &access_django).0, 200);
    let (status, _) = post(&f, "/api/token/verify/", &[("token", &from_django)]);
    assert_eq!(status, 200);

    // Blacklisted on one, refused on the other, both ways.
    let (status, body) = post(&f, "/api/token/blacklist/", &[("refresh", &from_django)]);
    assert_eq!(status, 200, "{body}");
    refused_as_blacklisted(&d, &from_django);
    let (status, body) = post(
        &d,
        "/api/token/blacklist/",
        &[("refresh", &rotated_by_ours)],
    );
    assert_eq!(status, 200, "{body}");
    refused_as_blacklisted(&f, &rotated_by_ours);
    let (status, body) = post(&f, "/api/token/verify/", &[("token", &rotated_by_ours)]);
    assert_eq!(
        (status, body),
        (400, json!({"non_field_errors": ["Token is blacklisted"]}))
    );

    // A user made with ferricorn-auth's command logs in on Django.
    run(
        "ferricorn-auth createuser",
        Command::new(BIN).args([
            "--db",
            &url,
            "--schema",
            "django",
            "createuser",
            "carol",
            "--password-stdin",
        ]),
        &format!("{PASSWORD}\n"),
    );
    assert!(hash_of("carol").starts_with("pbkdf2_sha256$1000000$"));
    let (_, carol) = obtain(&d, "carol");
    assert_eq!(hello(&f, &carol).0, 200);
    // Django sees it as one of its own users.
    let seen = django.shell(
        "from django.contrib.auth.models import User\n\
         u = User.objects.get(username='carol')\n\
         print(u.is_active, u.is_staff, u.is_superuser, repr(u.email), u.check_password('correct horse'))",
    );
    assert_eq!(seen.trim(), "True False False '' True");

    // Deactivated with ferricorn-auth's command: refused by both.
    run(
        "ferricorn-auth setactive",
        Command::new(BIN).args([
            "--db",
            &url,
            "--schema",
            "django",
            "setactive",
            "carol",
            "false",
        ]),
        "",
    );
    for base in [&d, &f] {
        let (status, body) = hello(base, &carol);
        assert_eq!(
            (status, &body["code"]),
            (401, &json!("user_inactive")),
            "{base}: {body}"
        );
    }

    // Nothing of Django's schema was created or altered.
    let tables_after = pg.psql(
        "ferricorn",
        "SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY table_name, column_name) \
         FROM information_schema.columns WHERE table_schema = 'public'",
    );
    assert_eq!(tables_after, tables_before);
    let log = ours.log.lock().unwrap().clone();
    assert!(!log.contains(DB_PASSWORD) && !log.contains(KEY), "{log}");
}
