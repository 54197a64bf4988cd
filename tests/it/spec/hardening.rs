//! What a real Coolify, Cloudflare or Uptime Kuma would refuse late (after
//! DNS was already changed), what would deploy something dangerous, and
//! messages that leak or mislead: each refused, warned about or fixed by
//! `fabrik validate`, through the real binary.

use std::path::Path;

use crate::support::{expect_exit, fabrik, run, stderr};

const HEAD: &str = "name: hardening
coolify: {project: default, environment: production, server: localhost}
";

/// Writes `body` (after the name and target) as `spec.yaml` in a fresh
/// project directory.
fn project(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), format!("{HEAD}{body}")).unwrap();
    dir
}

/// `fabrik validate spec.yaml` in `dir`: exit code and stderr.
fn validate_in(dir: &Path) -> (i32, String) {
    let o = run(fabrik(dir).args(["validate", "spec.yaml"]));
    (o.status.code().unwrap_or(-1), stderr(&o))
}

fn validate(body: &str) -> (i32, String) {
    let dir = project(body);
    validate_in(dir.path())
}

#[track_caller]
fn refused(body: &str, wanted: &[&str]) -> String {
    let (code, err) = validate(body);
    assert_eq!(code, 4, "expected exit 4:\n{err}");
    for w in wanted {
        assert!(err.contains(w), "expected {w:?} in\n{err}");
    }
    err
}

#[track_caller]
fn valid_with(body: &str, wanted: &[&str]) -> String {
    let (code, err) = validate(body);
    assert_eq!(code, 0, "expected exit 0:\n{err}");
    for w in wanted {
        assert!(err.contains(w), "expected {w:?} in\n{err}");
    }
    err
}

const IMAGE_APP: &str = "app:
  image: nginx:1.27
  port: 80
  domains: [shop.example.com]
";

// Credentials are refused where they do not belong, and never shown.

#[test]
fn a_domain_with_credentials_is_refused_without_printing_the_password() {
    let err = refused(
        "app:\n  image: nginx:1.27\n  port: 80\n  domains: [\"https://admin:hunter2pass@shop.example.com\"]\n",
        &[
            "`https://admin:***@shop.example.com` carries credentials",
            "basic auth",
        ],
    );
    assert!(!err.contains("hunter2pass"), "{err}");
}

#[test]
fn credentials_in_monitor_verify_webhook_and_git_urls_are_refused_and_hidden() {
    let body = format!(
        "{IMAGE_APP}monitors:
  - name: m
    url: https://admin:hunter2pass@shop.example.com/health
verify:
  http:
    - url: https://admin:hunter2pass@shop.example.com/
notifications:
  webhooks:
    - name: w
      url: https://u:hunter2pass@hooks.example.com/x
"
    );
    let dir = project(&body);
    let (code, err) = validate_in(dir.path());
    assert_eq!(code, 4, "{err}");
    assert!(!err.contains("hunter2pass"), "{err}");
    for field in [
        "field: monitors[0].url",
        "field: verify.http[0].url",
        "field: notifications.webhooks[0].url",
    ] {
        assert!(err.contains(field), "{field} in\n{err}");
    }
    assert!(err.contains("Uptime Kuma"), "{err}");
    assert!(err.contains("${secret.WEBHOOK_PASSWORD}"), "{err}");
    // `plan` stops at the same place: nothing reaches its output or a journal.
    let o = run(fabrik(dir.path()).args(["plan", "spec.yaml"]));
    expect_exit(&o, 4, &["plan"]);
    assert!(!stderr(&o).contains("hunter2pass"), "{}", stderr(&o));
    assert!(!crate::support::stdout(&o).contains("hunter2pass"));
    let git = refused(
        "app:\n  git:\n    repository: https://bot:ghp_s3cr3t@github.com/acme/site\n  port: 80\n",
        &["field: app.git.repository", "bot:***@"],
    );
    assert!(!git.contains("ghp_s3cr3t"), "{git}");
    let env = refused(
        "app:\n  image: nginx:1.27\n  port: 80\n  env:\n    DATABASE_URL: postgres://app:pl41npw@db/app\n",
        &["field: app.env.DATABASE_URL", "${secret."],
    );
    assert!(!env.contains("pl41npw"), "{env}");
    // A secret reference in the same place is the way to do it.
    valid_with(
        "app:\n  image: nginx:1.27\n  port: 80\n  env:\n    DATABASE_URL: postgres://app:${secret.DB_PW}@db/app\nsecrets:\n  DB_PW:\n",
        &[],
    );
}

// Compose lint: host escapes are errors, risky settings warnings that the
// spec can acknowledge.

const RISKY_COMPOSE: &str = "services:
  web:
    image: nginx:1.27
    privileged: true
    network_mode: host
    cap_add: [NET_ADMIN]
    healthcheck: {test: [\"CMD\", \"true\"]}
  builder:
    build: .
    healthcheck: {test: [\"CMD\", \"true\"]}
";

#[test]
fn absolute_bind_mounts_and_the_docker_socket_are_errors() {
    let dir = project("app:\n  compose:\n    file: docker-compose.yml\n");
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        "services:
  web:
    image: nginx:1.27
    healthcheck: {test: [\"CMD\", \"true\"]}
    volumes:
      - /etc:/host-etc
      - /var/run/docker.sock:/var/run/docker.sock
      - type: bind
        source: /root
        target: /r
      - data:/data
volumes:
  data:
",
    )
    .unwrap();
    let (code, err) = validate_in(dir.path());
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("docker-compose.yml:6:9: error: `/etc` mounts a directory of the server"),
        "{err}"
    );
    assert!(
        err.contains(
            "docker-compose.yml:7:9: error: `/var/run/docker.sock` mounts the Docker socket"
        ),
        "{err}"
    );
    assert!(
        err.contains("docker-compose.yml:9:17: error: `/root` mounts"),
        "{err}"
    );
    assert_eq!(err.matches(": error:").count(), 3, "{err}");
}

#[test]
fn privileged_host_network_capabilities_and_local_builds_warn_until_allowed() {
    let spec = format!(
        "app:\n  compose:\n    content: |\n{}",
        RISKY_COMPOSE
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    );
    let err = valid_with(
        &spec,
        &[
            "warning: service `web` is privileged",
            "warning: service `web` uses the server's network",
            "warning: service `web` adds Linux capabilities",
            "warning: service `builder` builds from `.`",
            "app.compose.allow: { web: [privileged] }",
        ],
    );
    // Each warning points at its key in the spec's inline compose block.
    assert!(
        err.contains("spec.yaml:9:11: warning: service `web` is privileged"),
        "{err}"
    );
    let allowed = spec
        + "    allow:\n      web: [privileged, host_network, capabilities]\n      builder: [local_build]\n";
    let err = valid_with(&allowed, &["valid (0 warnings)"]);
    assert!(!err.contains(": warning:"), "{err}");
    // An allowance that allows nothing is itself a warning.
    let stale = allowed.replace("[local_build]", "[local_build, privileged]");
    valid_with(&stale, &["service `builder` does not use `privileged`"]);
}

// Values a service would refuse late.

#[test]
fn port_zero_bad_git_refs_and_commits_are_refused() {
    refused(
        "app:\n  image: nginx:1.27\n  port: 0\n",
        &["field: app.port"],
    );
    refused(
        "app:\n  git:\n    repository: https://github.com/acme/site\n    branch: ../../etc\n    commit: \"HEAD; rm -rf /\"\n  port: 80\n",
        &[
            "`../../etc` is not a branch name",
            "field: app.git.branch",
            "`HEAD; rm -rf /` is not a commit id",
            "field: app.git.commit",
        ],
    );
    valid_with(
        "app:\n  git:\n    repository: https://github.com/acme/site\n    branch: release/1.2\n    commit: 4f2a9c1\n  port: 80\n",
        &[],
    );
}

#[test]
fn a_cname_to_an_ip_address_is_refused() {
    refused(
        &format!(
            "{IMAGE_APP}dns:\n  zone: example.com\n  records:\n    - {{type: CNAME, name: shop.example.com, content: 203.0.113.5}}\n"
        ),
        &["`203.0.113.5` is an IP address", "use `type: A`"],
    );
}

#[test]
fn an_unknown_one_click_service_is_refused_with_a_suggestion() {
    let err = refused(
        "app:\n  service: wordpres\n",
        &[
            "`wordpres` is not a Coolify one-click service",
            "field: app.service",
            "did you mean `wordpress",
        ],
    );
    assert!(err.contains("spec.yaml:4:12"), "{err}");
    valid_with("app:\n  service: ghost\n", &[]);
}

#[test]
fn template_parameters_can_not_inject_yaml() {
    let err = refused(
        "template:\n  name: wordpress\n  params:\n    domain: blog.example.com\n    mariadb_image: \"mariadb:11.8\\n    privileged: true\"\n    table_prefix: \"wp_\\\"x\"\n",
        &[
            "field: template.params.mariadb_image",
            "is not an image reference",
            "field: template.params.table_prefix",
            "is not an identifier",
        ],
    );
    // The newline is shown escaped, not as a second line.
    assert!(err.contains("mariadb:11.8\\n"), "{err}");
}

#[test]
fn an_env_key_that_replaces_a_compose_secret_is_refused() {
    refused(
        "app:
  compose:
    content: |
      services:
        web:
          image: nginx:1.27
          environment: {DB_PASSWORD: \"${DB_PASSWORD}\"}
          healthcheck: {test: [\"CMD\", \"true\"]}
  env:
    DB_PASSWORD: plain
secrets:
  DB_PASSWORD: {generate: true}
",
        &[
            "`DB_PASSWORD` is also a declared secret",
            "field: app.env.DB_PASSWORD",
        ],
    );
}

#[test]
fn retry_delays_of_zero_are_refused() {
    refused(
        &format!("{IMAGE_APP}retry:\n  initial_delay: 0s\n  max_delay: 0s\n"),
        &[
            "field: retry.initial_delay",
            "field: retry.max_delay",
            "at least 10ms",
        ],
    );
}

// Silent surprises.

#[test]
fn a_look_alike_domain_is_refused_with_its_punycode() {
    let err = refused(
        "app:\n  image: nginx:1.27\n  port: 80\n  domains: [shоp.example.com]\n",
        &[
            "mixes Latin and Cyrillic letters",
            "`xn--shp-ted.example.com`",
        ],
    );
    assert!(err.contains("field: app.domains[0]"), "{err}");
    // Written as punycode, it is what the author means.
    valid_with(
        "app:\n  image: nginx:1.27\n  port: 80\n  domains: [xn--shp-ted.example.com]\n",
        &[],
    );
}

/// The same rule in every field that holds a host: a monitor's URL and a
/// webhook's URL (verify checks and domains above).
#[test]
fn a_look_alike_host_is_refused_in_monitor_and_webhook_urls() {
    let err = refused(
        &format!(
            "{IMAGE_APP}monitors:\n  - {{name: a, url: \"https://shоp.example.com/health\"}}\nnotifications:\n  webhooks:\n    - {{name: ops, url: \"https://hооks.example.com/x\", events: [failed]}}\n"
        ),
        &[
            "mixes Latin and Cyrillic letters",
            "`xn--shp-ted.example.com`",
        ],
    );
    assert!(err.contains("field: monitors[0].url"), "{err}");
    assert!(
        err.contains("field: notifications.webhooks[0].url"),
        "{err}"
    );
}

#[test]
fn internal_targets_and_plain_http_webhooks_warn() {
    valid_with(
        &format!(
            "{IMAGE_APP}dns:
  zone: example.com
  records:
    - {{type: A, name: shop.example.com, content: 203.0.113.5}}
    - {{type: A, name: p.example.com, content: 127.0.0.1, proxied: true}}
    - {{type: A, name: q.example.com, content: 10.0.0.5, proxied: true}}
monitors:
  - {{name: a, url: \"http://169.254.169.254/latest/meta-data\"}}
  - {{name: b, url: \"http://localhost:8080/\"}}
notifications:
  webhooks:
    - {{name: w, url: \"http://hooks.example.com/x\"}}
    - {{name: v, url: \"https://10.1.2.3/x\"}}
"
        ),
        &[
            "`127.0.0.1` is a loopback address: Cloudflare's proxy",
            "`10.0.0.5` is a private address: Cloudflare's proxy",
            "error 1002",
            "`169.254.169.254` is a link-local address",
            "`localhost` is a loopback address",
            "called over plain http",
            "`10.1.2.3` is a private address",
        ],
    );
}

// Wrong refusals and inconsistencies.

#[test]
fn app_names_are_counted_in_characters() {
    valid_with(
        &format!(
            "app:\n  name: {}\n  image: nginx:1.27\n  port: 80\n",
            "ü".repeat(200)
        ),
        &[],
    );
    refused(
        &format!(
            "app:\n  name: {}\n  image: nginx:1.27\n  port: 80\n",
            "ü".repeat(256)
        ),
        &["must be 1 to 255 characters, found 256"],
    );
}

#[test]
fn an_international_name_is_read_the_same_in_every_field() {
    let err = valid_with(
        "app:
  image: nginx:1.27
  port: 80
  domains: [bücher.example.com]
dns:
  zone: example.com
  records:
    - {type: A, name: bücher.example.com, content: 203.0.113.5}
verify:
  http:
    - url: https://bücher.example.com/
  tls:
    - host: bücher.example.com
",
        &["valid (0 warnings)"],
    );
    assert!(!err.contains(": warning:"), "{err}");
}

#[test]
fn a_huge_dotenv_is_refused_before_it_is_read() {
    let dir = project(
        "app:\n  image: nginx:1.27\n  port: 80\n  env:\n    T: ${secret.TOKEN}\nsecrets:\n  TOKEN:\n",
    );
    let f = std::fs::File::create(dir.path().join(".env")).unwrap();
    f.set_len(60 * 1024 * 1024).unwrap();
    let o = run(fabrik(dir.path()).args(["apply", "spec.yaml", "--sandbox"]));
    expect_exit(&o, 1, &["apply"]);
    let err = stderr(&o);
    assert!(
        err.contains("is 60 MiB, larger than the limit of 1 MiB for a .env file"),
        "{err}"
    );
}

// Messages.

#[test]
fn control_and_bidirectional_characters_are_escaped_in_messages() {
    let err = refused(
        "app:\n  image: \"nginx:1.27\u{202e}evil\u{200b}\"\n  port: 80\n  domains: [\"shop\u{202e}.example.com\"]\n",
        &["\\u{202e}", "\\u{200b}"],
    );
    assert!(
        !err.contains('\u{202e}') && !err.contains('\u{200b}'),
        "{err}"
    );
}

#[test]
fn a_tab_is_reported_where_it_is() {
    let (code, err) = validate("app:\n  image: nginx:1.27\n  port: 80\n  env:\n    A: b\n\tB: c\n");
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("spec.yaml:8:1: error: invalid YAML"), "{err}");
}

#[test]
fn a_huge_spec_is_named_by_its_real_size() {
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("spec.yaml")).unwrap();
    f.set_len(52_000_000).unwrap();
    let (code, err) = validate_in(dir.path());
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("file is too large: 49.5 MiB (52000000 bytes), the limit is 1 MiB"),
        "{err}"
    );
}

#[test]
fn an_overflowing_duration_is_too_long_not_malformed() {
    let err = refused(
        &format!("{IMAGE_APP}verify:\n  timeout: 99999999999999999999s\n"),
        &["is longer than a week"],
    );
    assert!(!err.contains("write a number and a unit"), "{err}");
}

#[test]
fn url_hints_never_propose_a_nonsense_url() {
    let err = refused(
        &format!("{IMAGE_APP}monitors:\n  - {{name: a, url: \"javascript:alert(1)\"}}\n"),
        &["must use http or https"],
    );
    assert!(!err.contains("https://javascript"), "{err}");
}

#[test]
fn cross_field_rules_run_beside_a_field_that_failed_to_parse() {
    refused(
        &format!(
            "{IMAGE_APP}dns:
  zone: example.com
  records:
    - {{type: A, name: shop.example.com, content: 203.0.113.5, proxied: true, ttl: 300, extra: [1]}}
    - {{type: MX, name: m.example.com, content: 203.0.113.6, proxied: true, ttl: 300}}
notifications:
  webhooks:
    - {{name: w, url: \"https://h.example.com/\", signing_secret: NOPE, events: started}}
"
        ),
        &[
            "field: dns.records[1].type",
            "field: dns.records[1].ttl",
            "proxied records have an automatic TTL",
            "field: notifications.webhooks[0].events",
            "secret `NOPE` is referenced but not declared",
        ],
    );
}
