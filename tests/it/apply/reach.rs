//! A provider URL that does not lead to the service, in words: a server
//! that answers but is not Coolify, Cloudflare or Uptime Kuma; `https://`
//! on a port that speaks plain HTTP; a port nobody listens on. Each names
//! the URL, the variable it came from and what to do, through
//! `fabrik doctor` and `fabrik apply` alike (one place turns transport
//! errors into text for every provider).

use std::io::{Read as _, Write as _};
use std::net::TcpListener;

use super::Project;
use crate::support::{SandboxServer, run, stderr, stdout};

/// A plain HTTP server on loopback answering every request with a 404
/// HTML page, as a website or a reverse proxy does for an unknown path.
/// Its thread lives as long as the test process.
fn html_404() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = conn.read(&mut buf);
                let body = "<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>";
                let reply = format!(
                    "HTTP/1.1 404 Not Found\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes());
            });
        }
    });
    port
}

/// `fabrik doctor` of the quickstart against a served sandbox, with
/// `vars` overridden; returns its stdout.
fn doctor(p: &Project, server: &SandboxServer, vars: &[(&str, String)]) -> String {
    let mut cmd = p.cmd();
    server.point(&mut cmd).args(["doctor", "spec.yaml"]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let o = run(&mut cmd);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

#[test]
fn urls_that_answer_but_are_not_the_services_say_so() {
    let p = Project::example("quickstart", &[]);
    let server = SandboxServer::start(p.path());
    let port = html_404();
    let url = format!("http://127.0.0.1:{port}");
    let out = doctor(
        &p,
        &server,
        &[
            ("COOLIFY_URL", url.clone()),
            ("CLOUDFLARE_API_URL", format!("{url}/client/v4")),
            ("UPTIME_KUMA_URL", url.clone()),
        ],
    );
    for expected in [
        format!(
            "COOLIFY_URL {url}: this server answered 404 with an HTML page; it does not look like a Coolify API (expected JSON from /api/v1/version)"
        ),
        format!(
            "CLOUDFLARE_API_URL {url}: this server answered 404 with an HTML page; it does not look like a Cloudflare API (expected JSON from /client/v4/zones)"
        ),
        format!(
            "UPTIME_KUMA_URL {url}: this server answered 404 with an HTML page; it does not look like Uptime Kuma (expected a Socket.IO endpoint at /socket.io/)"
        ),
        "hint: set COOLIFY_URL to the address of the Coolify instance itself".to_owned(),
    ] {
        assert!(out.contains(&expected), "{expected}\n{out}");
    }
    // Neither the page itself nor a hint about the token's team.
    assert!(!out.contains("<html") && !out.contains("DOCTYPE"), "{out}");
    assert!(!out.contains("team"), "{out}");
}

#[test]
fn https_on_a_plain_http_port_and_a_closed_port_say_what_to_do() {
    let p = Project::example("quickstart", &[]);
    let server = SandboxServer::start(p.path());
    let plain = html_404();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = doctor(
        &p,
        &server,
        &[
            ("COOLIFY_URL", format!("https://127.0.0.1:{plain}")),
            ("UPTIME_KUMA_URL", format!("http://127.0.0.1:{closed}")),
        ],
    );
    for expected in [
        format!("https://127.0.0.1:{plain}: this port speaks plain HTTP, not TLS"),
        format!(
            "hint: use http://127.0.0.1:{plain} (or the port where the service serves HTTPS) in COOLIFY_URL"
        ),
        format!(
            "http://127.0.0.1:{closed}: nothing accepts connections on this port (connection refused)"
        ),
        "hint: check that the service runs and listens there, and the port in UPTIME_KUMA_URL"
            .to_owned(),
    ] {
        assert!(out.contains(&expected), "{expected}\n{out}");
    }
    assert!(!out.contains("InvalidContentType"), "{out}");

    // apply says the same, before changing anything.
    let mut cmd = p.cmd();
    server
        .point(&mut cmd)
        .args(["apply", "spec.yaml", "--retries", "1"])
        .env("COOLIFY_URL", format!("https://127.0.0.1:{plain}"));
    let o = run(&mut cmd);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "https://127.0.0.1:{plain}: this port speaks plain HTTP, not TLS"
        )),
        "{err}"
    );
}
