//! The address of a PostgreSQL journal: a `postgres://` URL whose password
//! is kept secret.
//!
//! `PgUrl` shows itself, in `Display` and `Debug` alike, as
//! `postgres://user:***@host:port/db?…`: the password is never printed, so
//! the URL can go into errors, logs and output as it is.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use super::tls::SslMode;

/// Why a `postgres://` URL cannot be used. The message never quotes the URL
/// (it may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid PostgreSQL URL: {problem}")]
pub struct UrlError {
    /// What is wrong.
    pub problem: String,
}

impl UrlError {
    fn new(problem: impl Into<String>) -> Self {
        Self {
            problem: problem.into(),
        }
    }

    /// How to write one.
    pub fn hint(&self) -> &'static str {
        "write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=verify-full&sslrootcert=CA.pem]; the password may also come from PGPASSWORD"
    }
}

/// Where a PostgreSQL journal lives, and how to reach it.
#[derive(Clone)]
pub struct PgUrl {
    /// Role name (the client library's default, the OS user, when absent).
    user: Option<String>,
    /// Password, when the URL has one (else `PGPASSWORD` at connect time).
    password: Option<SecretString>,
    /// Host name, IP address, or a directory holding the server's Unix
    /// socket (starts with `/`).
    host: String,
    /// Port (5432 when absent).
    port: Option<u16>,
    /// Database (the role name when absent, as libpq does).
    dbname: Option<String>,
    /// TLS use.
    ssl_mode: SslMode,
    /// Trusted roots for the server's certificate.
    ssl_root_cert: Option<PathBuf>,
    /// Gives up connecting after this long.
    connect_timeout: Option<Duration>,
    /// Shown in `pg_stat_activity`.
    application_name: Option<String>,
    /// Server options (`-c search_path=...`), passed through.
    options: Option<String>,
}

/// Whether `text` is meant as a PostgreSQL URL (rather than a file path).
pub fn is_postgres_url(text: &str) -> bool {
    let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

fn decode(part: &str, what: &str) -> Result<String, UrlError> {
    percent_decode(part).ok_or_else(|| UrlError::new(format!("the {what} is not valid UTF-8")))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && hex.bytes().all(|c| c.is_ascii_hexdigit())
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

impl PgUrl {
    /// Parses `postgres://[USER[:PASSWORD]@]HOST[:PORT][/DATABASE][?PARAMS]`
    /// (or `postgresql://`). Parameters: `sslmode`, `sslrootcert`,
    /// `connect_timeout` (seconds), `application_name`, `options`, and
    /// `host` (a Unix socket directory, for a URL without a host).
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        if !is_postgres_url(text) {
            return Err(UrlError::new(
                "it must start with postgres:// or postgresql://",
            ));
        }
        // The url crate's errors describe the problem, never the input.
        let url = ::url::Url::parse(text).map_err(|e| UrlError::new(e.to_string()))?;
        let user = match url.username() {
            "" => None,
            u => Some(decode(u, "user name")?),
        };
        let password = url
            .password()
            .map(|p| decode(p, "password").map(SecretString::from))
            .transpose()?;
        let mut host = match url.host() {
            Some(::url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => decode(&h.to_string(), "host")?,
            None => String::new(),
        };
        let dbname = match url.path().trim_start_matches('/') {
            "" => None,
            d => Some(decode(d, "database name")?),
        };
        let mut out = Self {
            user,
            password,
            host: String::new(),
            port: url.port(),
            dbname,
            ssl_mode: SslMode::default(),
            ssl_root_cert: None,
            connect_timeout: None,
            application_name: None,
            options: None,
        };
        for (key, value) in url.query_pairs() {
            let value = value.into_owned();
            match key.as_ref() {
                "sslmode" => {
                    out.ssl_mode = SslMode::parse(&value).ok_or_else(|| {
                        UrlError::new(format!(
                            "sslmode {value:?} is not one of disable, prefer, require, verify-ca, verify-full"
                        ))
                    })?;
                }
                "sslrootcert" => out.ssl_root_cert = Some(PathBuf::from(value)),
                "connect_timeout" => {
                    let secs: u64 = value.parse().map_err(|_| {
                        UrlError::new(format!(
                            "connect_timeout {value:?} is not a number of seconds"
                        ))
                    })?;
                    out.connect_timeout = Some(Duration::from_secs(secs));
                }
                "application_name" => out.application_name = Some(value),
                "options" => out.options = Some(value),
                "host" if host.is_empty() => host = value,
                "host" => {
                    return Err(UrlError::new(
                        "the host is given twice (in the URL and as ?host=)",
                    ));
                }
                "password" => {
                    return Err(UrlError::new(
                        "put the password before the host (postgres://user:password@host/db) or in PGPASSWORD, not in ?password=",
                    ));
                }
                other => {
                    return Err(UrlError::new(format!(
                        "unknown parameter {other:?} (known: sslmode, sslrootcert, connect_timeout, application_name, options, host)"
                    )));
                }
            }
        }
        if host.is_empty() {
            return Err(UrlError::new("it names no host"));
        }
        out.host = host;
        Ok(out)
    }

    /// The same server and settings, another database (tests and tools that
    /// create databases).
    pub fn with_database(&self, dbname: &str) -> Self {
        let mut out = self.clone();
        out.dbname = Some(dbname.to_owned());
        out
    }

    /// The database name, if the URL names one.
    pub fn database(&self) -> Option<&str> {
        self.dbname.as_deref()
    }

    /// The TLS mode.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        self.to_string()
    }

    /// The client configuration. The password comes from the URL, else from
    /// `PGPASSWORD`.
    pub(crate) fn config(&self) -> postgres::Config {
        let mut c = postgres::Config::new();
        if let Some(u) = &self.user {
            c.user(u);
        }
        match &self.password {
            Some(p) => {
                c.password(p.expose_secret());
            }
            None => {
                if let Some(p) = std::env::var_os("PGPASSWORD") {
                    c.password(p.as_encoded_bytes());
                }
            }
        }
        c.host(&self.host);
        if let Some(p) = self.port {
            c.port(p);
        }
        if let Some(d) = &self.dbname {
            c.dbname(d);
        }
        c.application_name(self.application_name.as_deref().unwrap_or("fabrik"));
        if let Some(o) = &self.options {
            c.options(o);
        }
        c.connect_timeout(self.connect_timeout.unwrap_or(Duration::from_secs(30)));
        // Notice a vanished server in minutes, not the system's two hours,
        // so that nothing (a lock guard's release, an append) hangs on a
        // dead connection for long.
        c.keepalives(true);
        c.keepalives_idle(Duration::from_secs(60));
        c.keepalives_interval(Duration::from_secs(10));
        c.keepalives_retries(6);
        c.tcp_user_timeout(Duration::from_secs(120));
        c.ssl_mode(self.ssl_mode.negotiation());
        c
    }

    /// Trusted roots named by `sslrootcert`.
    pub(crate) fn ssl_root_cert(&self) -> Option<&std::path::Path> {
        self.ssl_root_cert.as_deref()
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("postgres://")?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
        }
        if self.password.is_some() {
            f.write_str(":***")?;
        }
        if self.user.is_some() || self.password.is_some() {
            f.write_str("@")?;
        }
        let socket = self.host.starts_with('/');
        if !socket {
            if self.host.contains(':') {
                write!(f, "[{}]", self.host)?;
            } else {
                f.write_str(&self.host)?;
            }
            if let Some(p) = self.port {
                write!(f, ":{p}")?;
            }
        }
        f.write_str("/")?;
        if let Some(d) = &self.dbname {
            f.write_str(d)?;
        }
        let mut params: Vec<(&str, String)> = Vec::new();
        if socket {
            params.push(("host", self.host.clone()));
            if let Some(p) = self.port {
                params.push(("port", p.to_string()));
            }
        }
        if self.ssl_mode != SslMode::default() {
            params.push(("sslmode", self.ssl_mode.as_str().to_owned()));
        }
        if let Some(r) = &self.ssl_root_cert {
            params.push(("sslrootcert", r.display().to_string()));
        }
        if let Some(t) = self.connect_timeout {
            params.push(("connect_timeout", t.as_secs().to_string()));
        }
        if let Some(a) = &self.application_name {
            params.push(("application_name", a.clone()));
        }
        if let Some(o) = &self.options {
            params.push(("options", o.clone()));
        }
        for (i, (k, v)) in params.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({self})")
    }
}

impl PartialEq for PgUrl {
    fn eq(&self, other: &Self) -> bool {
        self.user == other.user
            && self.password.as_ref().map(|p| p.expose_secret().to_owned())
                == other
                    .password
                    .as_ref()
                    .map(|p| p.expose_secret().to_owned())
            && self.host == other.host
            && self.port == other.port
            && self.dbname == other.dbname
            && self.ssl_mode == other.ssl_mode
            && self.ssl_root_cert == other.ssl_root_cert
            && self.connect_timeout == other.connect_timeout
            && self.application_name == other.application_name
            && self.options == other.options
    }
}

impl Eq for PgUrl {}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr%40t-pa55";

    #[test]
    fn the_password_is_never_shown() {
        let u = PgUrl::parse(&format!(
            "postgres://deploy:{SECRET}@db.example.com:6432/fabrik?sslmode=verify-full&sslrootcert=/etc/ca.pem"
        ))
        .unwrap();
        let shown = u.to_string();
        assert_eq!(
            shown,
            "postgres://deploy:***@db.example.com:6432/fabrik?sslmode=verify-full&sslrootcert=/etc/ca.pem"
        );
        let debug = format!("{u:?}");
        for text in [&shown, &debug, &u.redacted()] {
            assert!(!text.contains("s3cr"), "{text}");
            assert!(!text.contains("pa55"), "{text}");
        }
        // The password reaches the client configuration decoded.
        assert_eq!(u.config().get_password(), Some(&b"s3cr@t-pa55"[..]));
        // The client configuration's own Debug does not show it either.
        assert!(!format!("{:?}", u.config()).contains("pa55"));
    }

    #[test]
    fn parse_errors_never_quote_the_url() {
        for bad in [
            format!("postgres://u:{SECRET}@/db"),
            format!("postgres://u:{SECRET}@host:99999/db"),
            format!("postgres://u:{SECRET}@host/db?sslmode=sometimes"),
            format!("postgres://u:{SECRET}@host/db?colour=blue"),
            format!("postgres://u@host/db?password={SECRET}"),
        ] {
            let e = PgUrl::parse(&bad).unwrap_err().to_string();
            assert!(!e.contains("pa55"), "{e}");
        }
    }

    #[test]
    fn urls_are_told_apart_from_paths() {
        assert!(is_postgres_url("postgres://h/db"));
        assert!(is_postgres_url("PostgreSQL://h/db"));
        assert!(!is_postgres_url(".fabrik/state.db"));
        assert!(!is_postgres_url("postgres.db"));
    }

    #[test]
    fn defaults_and_sockets() {
        let u = PgUrl::parse("postgresql://127.0.0.1/journal").unwrap();
        assert_eq!(u.to_string(), "postgres://127.0.0.1/journal");
        assert_eq!(u.ssl_mode(), SslMode::Prefer);
        let s = PgUrl::parse("postgres:///journal?host=/run/postgresql").unwrap();
        assert_eq!(s.to_string(), "postgres:///journal?host=/run/postgresql");
        let v6 = PgUrl::parse("postgres://u@[::1]:5433/j").unwrap();
        assert_eq!(v6.to_string(), "postgres://u@[::1]:5433/j");
        assert_eq!(
            v6.with_database("other").database(),
            Some("other"),
            "with_database keeps the rest"
        );
    }
}
