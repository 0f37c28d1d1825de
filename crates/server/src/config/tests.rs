use std::collections::HashMap;
use std::path::Path;

use clap::Parser;

use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

fn cli(args: &[&str]) -> ServerArgs {
    Cli::try_parse_from(std::iter::once("ferricorn").chain(args.iter().copied()))
        .unwrap()
        .server
}

fn cli_err(args: &[&str]) -> String {
    match Cli::try_parse_from(std::iter::once("ferricorn").chain(args.iter().copied())) {
        Ok(_) => panic!("{args:?} parsed"),
        Err(e) => e.to_string(),
    }
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferricorn-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults() {
    let c = Config::resolve_with(cli(&[]), &env(&[])).unwrap();
    assert_eq!(
        c.bind,
        vec![BindAddr::Tcp("127.0.0.1:8000".parse().unwrap())]
    );
    assert_eq!(c.workers as usize, num_cpus::get().max(1));
    assert_eq!(c.keep_alive, Some(Duration::from_secs(2)));
    assert_eq!(c.limit_request_line, 4094);
    assert_eq!(c.limit_request_fields, 100);
    assert_eq!(c.limit_request_field_size, 8190);
    assert_eq!(c.limit_request_body, Some(DEFAULT_LIMIT_REQUEST_BODY));
    assert_eq!(c.request_timeout, None);
    assert_eq!(c.access_logfile, None);
    assert!(c.forwarded_allow_ips.allows("::1".parse().unwrap()));
}

#[test]
fn precedence_default_file_env_cli() {
    let file = write_config(
        "prec.toml",
        "workers = 2\nthreads = 2\nkeep_alive = 5\ntimeout = 7\nbind = [\"127.0.0.1:1\", \"unix:/tmp/f.sock\"]\n",
    );
    let file = file.to_str().unwrap();
    let e = env(&[
        ("WEB_CONCURRENCY", "9"),
        ("FERRICORN_THREADS", "3"),
        ("FERRICORN_KEEP_ALIVE", "6"),
    ]);
    let c = Config::resolve_with(cli(&["-c", file, "--keep-alive", "0.5"]), &e).unwrap();
    assert_eq!(c.workers, 2, "file beats WEB_CONCURRENCY (a default)");
    assert_eq!(c.threads, 3, "env beats file");
    assert_eq!(
        c.keep_alive,
        Some(Duration::from_millis(500)),
        "cli beats env"
    );
    assert_eq!(
        c.timeout,
        Some(Duration::from_secs(7)),
        "file beats default"
    );
    assert_eq!(c.bind.len(), 2);
    assert_eq!(c.config_file.as_deref(), Some(Path::new(file)));

    // WEB_CONCURRENCY beats the CPU count; FERRICORN_WORKERS beats it.
    let c = Config::resolve_with(cli(&[]), &env(&[("WEB_CONCURRENCY", "5")])).unwrap();
    assert_eq!(c.workers, 5);
    let e = env(&[("WEB_CONCURRENCY", "5"), ("FERRICORN_WORKERS", "4")]);
    assert_eq!(Config::resolve_with(cli(&[]), &e).unwrap().workers, 4);

    // A bind list from a higher source replaces the lower one.
    let e = env(&[("FERRICORN_BIND", "127.0.0.1:2, [::1]:3")]);
    let c = Config::resolve_with(cli(&["-c", file]), &e).unwrap();
    assert_eq!(c.bind.len(), 2);
    assert_eq!(c.bind[1], BindAddr::Tcp("[::1]:3".parse().unwrap()));
    let c = Config::resolve_with(cli(&["-c", file, "-b", "127.0.0.1:0"]), &e).unwrap();
    assert_eq!(c.bind, vec![BindAddr::Tcp("127.0.0.1:0".parse().unwrap())]);

    // The config file may come from the environment too.
    let e = env(&[("FERRICORN_CONFIG", file)]);
    assert_eq!(Config::resolve_with(cli(&[]), &e).unwrap().workers, 2);
}

#[test]
fn forwarded_allow_ips_env_is_a_default() {
    let e = env(&[("FORWARDED_ALLOW_IPS", "10.0.0.1")]);
    let c = Config::resolve_with(cli(&[]), &e).unwrap();
    assert!(c.forwarded_allow_ips.allows("10.0.0.1".parse().unwrap()));
    assert!(!c.forwarded_allow_ips.allows("127.0.0.1".parse().unwrap()));
    let c = Config::resolve_with(cli(&["--forwarded-allow-ips", "*"]), &e).unwrap();
    assert_eq!(c.forwarded_allow_ips, ForwardedAllowIps::All);
}

#[test]
fn zero_means_off_or_max() {
    let c = Config::resolve_with(
        cli(&[
            "--timeout",
            "0",
            "--keep-alive",
            "0",
            "--limit-request-line",
            "0",
            "--limit-request-fields",
            "0",
            "--limit-request-field-size",
            "0",
            "--limit-request-body",
            "0",
            "--header-timeout",
            "0",
            "--max-requests",
            "0",
        ]),
        &env(&[]),
    )
    .unwrap();
    assert_eq!(c.timeout, None);
    assert_eq!(c.keep_alive, None);
    assert_eq!(c.limit_request_line, MAX_REQUEST_LINE);
    assert_eq!(c.limit_request_fields, MAX_REQUEST_FIELDS);
    assert_eq!(c.limit_request_field_size, MAX_FIELD_SIZE);
    assert_eq!(c.limit_request_body, None);
    assert_eq!(c.header_timeout, None);
    assert_eq!(c.max_requests, None);
}

#[test]
fn cli_errors_name_the_flag() {
    let e = cli_err(&["--workers", "abc"]);
    assert!(
        e.contains("invalid value 'abc' for '--workers <N>': expected a positive integer"),
        "{e}"
    );
    let e = cli_err(&["-w", "0"]);
    assert!(e.contains("'--workers <N>'"), "{e}");
    let e = cli_err(&["--limit-request-fields", "40000"]);
    assert!(e.contains("expected an integer from 0 to 32768"), "{e}");
    let e = cli_err(&["--bind", "unix:"]);
    assert!(e.contains("--bind <ADDRESS>"), "{e}");
    let e = cli_err(&["--log-level", "loud"]);
    assert!(e.contains("debug, info, warning, error, critical"), "{e}");
    // Both spellings of Gunicorn's odd flag.
    assert_eq!(
        cli(&["--limit-request-field_size", "10"]).limit_request_field_size,
        Some(10)
    );
    assert_eq!(
        cli(&["--limit-request-field-size", "11"]).limit_request_field_size,
        Some(11)
    );
}

#[test]
fn env_errors_name_the_variable() {
    let e = Config::resolve_with(cli(&[]), &env(&[("FERRICORN_WORKERS", "abc")]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "invalid value 'abc' for '--workers <N>' (from environment variable FERRICORN_WORKERS): expected a positive integer"
    );
    let e = Config::resolve_with(cli(&[]), &env(&[("WEB_CONCURRENCY", "-1")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("WEB_CONCURRENCY"), "{e}");
    // The command line wins, so a bad variable it overrides is never read.
    assert!(Config::resolve_with(cli(&["-w", "1"]), &env(&[("WEB_CONCURRENCY", "x")])).is_ok());
}

#[test]
fn file_errors_name_the_key() {
    let path = write_config("bad.toml", "keep_alive = \"soon\"\n");
    let e = Config::resolve_with(cli(&["-c", path.to_str().unwrap()]), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "invalid value 'soon' for '--keep-alive <SECONDS>' (key 'keep_alive' in config file"
        ),
        "{e}"
    );

    let path = write_config("unknown.toml", "keep-alive = 3\n");
    let e = Config::resolve_with(cli(&["-c", path.to_str().unwrap()]), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown key 'keep-alive'") && e.contains("did you mean 'keep_alive'?"),
        "{e}"
    );

    let path = write_config("syntax.toml", "workers = \n");
    let e = Config::resolve_with(cli(&["-c", path.to_str().unwrap()]), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not valid TOML"), "{e}");

    let e = Config::resolve_with(cli(&["-c", "/nonexistent/x.toml"]), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot read config file /nonexistent/x.toml"),
        "{e}"
    );
}

#[test]
fn app_tables_are_left_for_applications() {
    let path = write_config("app.toml", "workers = 1\n[auth]\ndb = \"x.sqlite\"\n");
    let c = Config::resolve_with(cli(&["-c", path.to_str().unwrap()]), &env(&[])).unwrap();
    let auth = c.app_table("auth").unwrap();
    assert_eq!(auth["db"].as_str(), Some("x.sqlite"));
    assert!(c.app_table("other").is_none());
}

#[test]
fn printed_config_reads_back() {
    let c = Config::resolve_with(
        cli(&[
            "-b",
            "127.0.0.1:0",
            "-b",
            "unix:/tmp/p.sock",
            "-w",
            "3",
            "--keep-alive",
            "1.5",
            "--umask",
            "0o27",
            "--access-logfile",
            "-",
            "--access-logformat",
            "json",
            "--request-timeout",
            "4",
            "--forwarded-allow-ips",
            "10.0.0.0/8",
        ]),
        &env(&[]),
    )
    .unwrap();
    let printed = c.to_toml();
    let path = write_config("printed.toml", &printed);
    let back = Config::resolve_with(cli(&["-c", path.to_str().unwrap()]), &env(&[])).unwrap();
    assert_eq!(
        back.to_toml().lines().skip(1).collect::<Vec<_>>(),
        printed.lines().collect::<Vec<_>>(),
        "{printed}"
    );
    assert_eq!(back.bind, c.bind);
    assert_eq!(back.workers, 3);
    assert_eq!(back.keep_alive, Some(Duration::from_millis(1500)));
    assert_eq!(back.umask, Some(0o27));
    assert_eq!(back.access_logformat, AccessLogFormat::Json);
}

#[test]
fn validate_catches_what_types_do_not() {
    let mut c = Config::default();
    assert!(c.validate().is_ok());
    c.bind.push(c.bind[0].clone());
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("bound twice"));
    let zero = BindAddr::Tcp("127.0.0.1:0".parse().unwrap());
    let c = Config {
        bind: vec![zero.clone(), zero],
        ..Config::default()
    };
    assert!(c.validate().is_ok(), "two port-0 binds are two ports");
    let c = Config {
        bind: vec![BindAddr::Unix(PathBuf::from("/".repeat(200)))],
        ..Config::default()
    };
    assert!(c.validate().unwrap_err().to_string().contains("107 bytes"));
    assert!(Config::default().max_head_size() >= 4094 + 100 * 8190);
}

#[test]
fn gunicorn_parser_switches() {
    let c = Config::resolve_with(cli(&[]), &env(&[])).unwrap();
    assert_eq!(c.header_map, HeaderMapMode::Drop);
    assert!(!c.permit_unconventional_http_method);
    assert!(!c.casefold_http_method);
    assert!(!c.permit_missing_host);
    assert_eq!(c.proxy_protocol, ProxyProtocol::Off);
    assert_eq!(c.proxy_allow_from, ForwardedAllowIps::default());

    let c = Config::resolve_with(
        cli(&[
            "--header-map",
            "refuse",
            "--permit-unconventional-http-method",
            "--casefold-http-method",
            "--proxy-protocol",
            "--proxy-allow-from",
            "10.0.0.0/8",
            "--permit-missing-host",
        ]),
        &env(&[]),
    )
    .unwrap();
    assert!(c.permit_missing_host);
    assert_eq!(c.header_map, HeaderMapMode::Refuse);
    assert!(c.permit_unconventional_http_method && c.casefold_http_method);
    assert_eq!(c.proxy_protocol, ProxyProtocol::Auto, "no value means auto");
    assert!(c.proxy_allow_from.allows("10.1.2.3".parse().unwrap()));
    assert!(!c.proxy_allow_from.allows("127.0.0.1".parse().unwrap()));
    assert_eq!(
        cli(&["--proxy-protocol", "v2"]).proxy_protocol,
        Some(ProxyProtocol::V2)
    );
    assert_eq!(
        cli(&["--casefold-http-method=false"]).casefold_http_method,
        Some(false)
    );

    let e = env(&[
        ("FERRICORN_HEADER_MAP", "dangerous"),
        ("FERRICORN_PERMIT_UNCONVENTIONAL_HTTP_METHOD", "true"),
        ("FERRICORN_PROXY_PROTOCOL", "v1"),
        ("FERRICORN_PROXY_ALLOW_FROM", "*"),
        ("FERRICORN_PERMIT_MISSING_HOST", "true"),
    ]);
    let c = Config::resolve_with(cli(&[]), &e).unwrap();
    assert!(c.permit_missing_host);
    assert_eq!(c.header_map, HeaderMapMode::Dangerous);
    assert!(c.permit_unconventional_http_method);
    assert_eq!(c.proxy_protocol, ProxyProtocol::V1);
    assert_eq!(c.proxy_allow_from, ForwardedAllowIps::All);

    let path = write_config(
        "switches.toml",
        "header_map = \"refuse\"\ncasefold_http_method = true\nproxy_protocol = \"auto\"\nproxy_allow_from = [\"192.0.2.1\", \"::1\"]\npermit_missing_host = true\n",
    );
    let c = Config::resolve_with(cli(&["-c", path.to_str().unwrap()]), &env(&[])).unwrap();
    assert_eq!(c.header_map, HeaderMapMode::Refuse);
    assert!(c.casefold_http_method && c.permit_missing_host);
    assert_eq!(c.proxy_protocol, ProxyProtocol::Auto);
    assert_eq!(c.proxy_allow_from.to_string(), "192.0.2.1,::1");
    // They print and read back.
    let printed = c.to_toml();
    let back = write_config("switches-printed.toml", &printed);
    let back = Config::resolve_with(cli(&["-c", back.to_str().unwrap()]), &env(&[])).unwrap();
    assert_eq!(
        back.to_toml().lines().skip(1).collect::<Vec<_>>(),
        printed.lines().skip(1).collect::<Vec<_>>()
    );
}

#[test]
fn gunicorn_parser_switch_errors_name_the_flag() {
    let e = cli_err(&["--header-map", "keep"]);
    assert!(
        e.contains("'--header-map <MODE>'") && e.contains("drop, refuse, dangerous"),
        "{e}"
    );
    let e = cli_err(&["--proxy-protocol", "v3"]);
    assert!(
        e.contains("--proxy-protocol") && e.contains("off, v1, v2, auto"),
        "{e}"
    );
    let e = cli_err(&["--casefold-http-method=maybe"]);
    assert!(
        e.contains("--casefold-http-method") && e.contains("true or false"),
        "{e}"
    );
    let e = cli_err(&["--proxy-allow-from", "nope"]);
    assert!(e.contains("--proxy-allow-from <IPS>"), "{e}");
    for (var, flag) in [
        ("FERRICORN_HEADER_MAP", "--header-map <MODE>"),
        ("FERRICORN_PROXY_PROTOCOL", "--proxy-protocol [<MODE>]"),
        (
            "FERRICORN_PERMIT_UNCONVENTIONAL_HTTP_METHOD",
            "--permit-unconventional-http-method[=<BOOL>]",
        ),
        (
            "FERRICORN_CASEFOLD_HTTP_METHOD",
            "--casefold-http-method[=<BOOL>]",
        ),
        ("FERRICORN_PROXY_ALLOW_FROM", "--proxy-allow-from <IPS>"),
        (
            "FERRICORN_PERMIT_MISSING_HOST",
            "--permit-missing-host[=<BOOL>]",
        ),
    ] {
        let e = Config::resolve_with(cli(&[]), &env(&[(var, "bogus")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("'{flag}'")) && e.contains(var), "{e}");
    }
}
