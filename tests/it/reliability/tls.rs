//! Transport security: a provider, a webhook or a deployed app behind a
//! certificate nobody vouches for is refused with a clear error, and there
//! is no way to turn certificate verification off: no flag, no variable,
//! no code path that builds a client without it.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::{fabrik, run, stderr};

/// An HTTPS server on 127.0.0.1:0 with a self-signed certificate for
/// `localhost` and 127.0.0.1, answering every request with `body` (a
/// Coolify-looking answer, so that only the certificate is wrong).
struct SelfSigned {
    rt: tokio::runtime::Runtime,
    port: u16,
    handshakes: Arc<std::sync::atomic::AtomicUsize>,
}

impl SelfSigned {
    fn start(body: &'static str) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let key = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        let cert: CertificateDer<'static> = key.cert.der().clone();
        let private =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], private)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = handshakes.clone();
        let port = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let acceptor = acceptor.clone();
                    let count = count.clone();
                    tokio::spawn(async move {
                        // A completed handshake means the client accepted
                        // the certificate: it must never happen.
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let mut buf = [0u8; 4096];
                        let _ = tls.read(&mut buf).await;
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = tls.write_all(reply.as_bytes()).await;
                        let _ = tls.shutdown().await;
                    });
                }
            });
            port
        });
        Self {
            rt,
            port,
            handshakes,
        }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    fn handshakes(&self) -> usize {
        self.handshakes.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn project(dir: &Path) {
    std::fs::write(dir.join("spec.yaml"), super::spec("tls")).unwrap();
}

#[test]
fn a_coolify_behind_a_self_signed_certificate_is_refused_clearly() {
    let server = SelfSigned::start(r#""4.3.11""#);
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let o = run(fabrik(dir.path())
        .args(["apply", "spec.yaml"])
        .env("COOLIFY_URL", server.url())
        .env("COOLIFY_TOKEN", "1|token")
        .env("CLOUDFLARE_API_URL", format!("{}/client/v4", server.url()))
        .env("CLOUDFLARE_API_TOKEN", "cf-token")
        .env("UPTIME_KUMA_URL", server.url())
        .env("UPTIME_KUMA_USERNAME", "admin")
        .env("UPTIME_KUMA_PASSWORD", "pw"));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("certificate"),
        "the error says the certificate is not trusted: {err}"
    );
    assert_eq!(server.handshakes(), 0, "no handshake completed");
    // In words, naming the URL, and what to do.
    assert!(
        err.contains(&format!(
            "{}: its certificate is signed by an authority this machine does not trust (self-signed, or a private CA)",
            server.url()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "hint: give {} a certificate from a public CA (Let's Encrypt), or add the CA that signed it to this machine's trust store; fabrik always verifies certificates",
            server.url()
        )),
        "{err}"
    );
    // Nothing was changed: the run never got past its checks.
    let events = crate::support::journal_events(dir.path());
    assert!(
        events.iter().all(|e| e["type"] != "resource_intent"),
        "{events:?}"
    );
}

#[test]
fn webhooks_and_the_verifier_refuse_a_self_signed_certificate() {
    let server = SelfSigned::start("{}");
    // The verifier, as a run uses it against real DNS.
    let verifier = fabrik::verify::Verifier::new(
        fabrik::verify::Routing::System,
        None,
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let err = server
        .rt
        .block_on(verifier.get(&format!("{}/health", server.url())))
        .unwrap_err();
    assert!(err.0.contains("certificate"), "{err}");
    // A webhook.
    let notifier = fabrik::provider::WebhookNotifier::new(
        fabrik::provider::WebhookConfig {
            url: fabrik::secret::SecretValue::new(format!("{}/hook", server.url())),
            format: fabrik::provider::WebhookFormat::Generic,
            secret: None,
        },
        fabrik::provider::HttpConfig {
            retry: fabrik::provider::RetryPolicy::none(),
            ..fabrik::provider::HttpConfig::default()
        },
    )
    .unwrap();
    let n = fabrik::provider::Notification {
        event: "succeeded".to_owned(),
        deployment: fabrik::id::DeploymentId::new("tls").unwrap(),
        run: None,
        summary: "tls".to_owned(),
        at: jiff::Timestamp::UNIX_EPOCH,
        details: Vec::new(),
    };
    use fabrik::provider::Notifier as _;
    let err = server.rt.block_on(notifier.send(&n)).unwrap_err();
    let text = fabrik::error::chain_text(&err);
    assert!(text.contains("certificate"), "{text}");
    assert_eq!(server.handshakes(), 0);
}

/// Every source file that makes TLS connections to providers, webhooks
/// and deployed apps: none may build a client that skips verification.
/// (The PostgreSQL state's `sslmode=prefer|require` are libpq's
/// documented, explicit modes and live in `src/store/postgres/tls.rs`,
/// outside this list; see `docs/storage.md`.)
#[test]
fn no_code_path_or_option_turns_certificate_verification_off() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    walk(&root, &mut files);
    let forbidden = [
        "danger_accept_invalid",
        "accept_invalid_certs",
        "accept_invalid_hostnames",
        ".dangerous()",
        "ServerCertVerifier for",
        "NoCertificateVerification",
        "tls_danger",
    ];
    let mut seen = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel.starts_with("store/postgres/") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for word in forbidden {
            if text.contains(word) {
                seen.push(format!("{rel}: {word}"));
            }
        }
    }
    assert!(files.len() > 50, "{} files", files.len());
    assert!(seen.is_empty(), "{seen:#?}");

    // No flag of any command, and no variable Fabrik reads, is about
    // skipping verification.
    let cmd = <fabrik::cli::Cli as clap::CommandFactory>::command();
    let mut names = Vec::new();
    fn args(c: &clap::Command, out: &mut Vec<String>) {
        for a in c.get_arguments() {
            out.push(a.get_id().to_string());
            if let Some(l) = a.get_long() {
                out.push(l.to_owned());
            }
        }
        for s in c.get_subcommands() {
            args(s, out);
        }
    }
    args(&cmd, &mut names);
    assert!(names.len() > 40, "{names:?}");
    // The one option with such a word is about plain http, where there
    // is no certificate to verify; https is verified with or without it
    // (`reliability::hostile::credentials_never_go_over_plain_http…`).
    let plain_http = ["allow_insecure_http", "allow-insecure-http"];
    for n in names.iter().filter(|n| !plain_http.contains(&n.as_str())) {
        let n = n.to_lowercase();
        for word in [
            "insecure",
            "no-verify",
            "no_verify",
            "skip",
            "tls",
            "ssl",
            "danger",
            "cert",
        ] {
            assert!(!n.contains(word), "an option named {n}");
        }
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for word in [
            "FABRIK_INSECURE",
            "FABRIK_SKIP_TLS",
            "FABRIK_NO_VERIFY",
            "FABRIK_TLS",
        ] {
            assert!(!text.contains(word), "{}: {word}", f.display());
        }
    }
}

/// The one variable that changes what a check trusts, FABRIK_SANDBOX_URL
/// (for runs against `fabrik sandbox serve`), is never in force unnoticed.
#[test]
fn a_run_routed_to_a_sandbox_by_the_environment_says_so() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let sandbox = crate::faults::LiveSandbox::start(
        &dir.path().join("world.db"),
        fabrik::sandbox::FaultConfig::default(),
    );
    let url = sandbox.handle().api_url.clone();
    let o = run(fabrik(dir.path())
        .envs(sandbox.env())
        .args(["apply", "spec.yaml"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).lines().next().unwrap_or_default().starts_with(&format!(
            "warning: FABRIK_SANDBOX_URL={url}: the checks of the deployed service connect to that sandbox"
        )),
        "{}",
        stderr(&o)
    );
    // A run without the variable prints no warning.
    let o = run(fabrik(dir.path())
        .envs(
            sandbox
                .env()
                .into_iter()
                .filter(|(k, _)| *k != "FABRIK_SANDBOX_URL"),
        )
        .args(["plan", "spec.yaml"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}
