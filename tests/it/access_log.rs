//! The access log (issue 3, item 3): Gunicorn's default format and atoms, to
//! `-` (stdout) or a file, and the built-in JSON-lines format.

use std::time::Duration;

use crate::harness::*;

const LOG_WAIT: Duration = Duration::from_secs(3);

/// Waits for a stdout line containing `needle` and returns it.
fn stdout_line(server: &Server, needle: &str) -> String {
    let found = wait_until(LOG_WAIT, || server.stdout().contains(needle));
    let out = server.stdout();
    assert!(
        found,
        "no access-log line with {needle:?} on stdout:\n{out}"
    );
    out.lines()
        .find(|l| l.contains(needle))
        .unwrap()
        .to_string()
}

#[test]
fn default_format_is_gunicorns() {
    let server = Server::echo(&["--access-logfile", "-"]);
    let resp = request(
        server.addr(),
        "GET /logged?q=1 HTTP/1.1\r\nHost: x\r\nReferer: http://ref.example/\r\n\
         User-Agent: it-agent/1\r\n\r\n",
    );
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    let line = stdout_line(&server, "/logged");
    // %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    let after_time = &line[line
        .find("] ")
        .unwrap_or_else(|| panic!("no %(t)s: {line}"))
        + 2..];
    assert_eq!(
        after_time,
        format!(
            "\"GET /logged?q=1 HTTP/1.1\" 200 {} \"http://ref.example/\" \"it-agent/1\"",
            resp.body.len()
        ),
        "{line}"
    );
    // %(t)s is Gunicorn's [10/Oct/2000:13:55:36 -0700].
    let time = &line[line.find('[').unwrap() + 1..line.find(']').unwrap()];
    assert_eq!(time.len(), 26, "{time:?}");
    assert_eq!(&time[2..3], "/", "{time:?}");
    assert_eq!(&time[11..12], ":", "{time:?}");
}

#[test]
fn custom_format_atoms() {
    let server = Server::echo(&[
        "--access-logfile",
        "-",
        "--access-logformat",
        "M=%(m)s U=%(U)s Q=%(q)s H=%(H)s S=%(s)s B=%(B)s D=%(D)s T=%(T)s P=%(p)s X=%({x-tag}i)s",
    ]);
    let resp = request(
        server.addr(),
        "POST /atoms?a=b HTTP/1.1\r\nHost: x\r\nX-Tag: t42\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    let line = stdout_line(&server, "U=/atoms");
    let field = |k: &str| -> String {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}= in {line}"))
            .to_string()
    };
    assert_eq!(field("M"), "POST");
    assert_eq!(field("Q"), "a=b");
    assert_eq!(field("H"), "HTTP/1.1");
    assert_eq!(field("S"), "200");
    assert_eq!(field("B"), resp.body.len().to_string());
    assert!(
        field("D").parse::<u64>().is_ok(),
        "%(D)s is microseconds: {line}"
    );
    assert!(
        field("T").parse::<u64>().is_ok(),
        "%(T)s is whole seconds: {line}"
    );
    assert_eq!(
        field("P"),
        format!("<{}>", resp.json()["pid"]),
        "%(p)s is <pid>"
    );
    assert_eq!(field("X"), "t42");
}

#[test]
fn request_time_atom_measures_the_request() {
    let server = Server::echo(&[
        "--access-logfile",
        "-",
        "--access-logformat",
        "%(U)s D=%(D)s",
    ]);
    request(server.addr(), get("/sleep?s=1"));
    let line = stdout_line(&server, "/sleep");
    let micros: u64 = line
        .split("D=")
        .nth(1)
        .and_then(|d| d.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!((950_000..3_000_000).contains(&micros), "{line}");
}

#[test]
fn json_lines_access_log() {
    let server = Server::echo(&["--access-logfile", "-", "--access-logformat", "json"]);
    let resp = request(
        server.addr(),
        "GET /json-logged?z=9 HTTP/1.1\r\nHost: x\r\nUser-Agent: it-json\r\n\r\n",
    );
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    let line = stdout_line(&server, "json-logged");
    let value: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("access-log line is not JSON ({e}): {line}"));
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {line}"));
    let values: Vec<String> = obj.values().map(|v| v.to_string()).collect();
    let has = |needle: &str| values.iter().any(|v| v.contains(needle));
    assert!(has("GET"), "no method: {line}");
    assert!(has("/json-logged"), "no path: {line}");
    assert!(has("200"), "no status: {line}");
    assert!(has("it-json"), "no user agent: {line}");
    assert!(has("127.0.0.1"), "no remote address: {line}");
}

#[test]
fn access_log_to_a_file() {
    let log = TempFile(temp_path("access", "log"));
    let server = Server::echo(&["--access-logfile", log.path().to_str().unwrap()]);
    assert_eq!(
        request(server.addr(), get("/to-file")).status_line,
        "HTTP/1.1 200 OK"
    );
    assert!(
        wait_until(LOG_WAIT, || std::fs::read_to_string(log.path())
            .is_ok_and(|t| t.contains("\"GET /to-file HTTP/1.1\" 200"))),
        "access log file {} lacks the request: {:?}",
        log.path().display(),
        std::fs::read_to_string(log.path())
    );
}

#[test]
fn no_access_log_by_default() {
    let server = Server::echo(&[]);
    request(server.addr(), get("/quiet"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!server.stdout().contains("/quiet"), "{}", server.stdout());
    assert!(
        !server.stderr().contains("\"GET /quiet"),
        "{}",
        server.stderr()
    );
}
