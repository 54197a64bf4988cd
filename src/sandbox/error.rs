//! Errors of the sandbox layer.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::faults::FaultParseError;

/// Why the sandbox could not start, serve or read its world.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The data file could not be opened or prepared.
    #[error("cannot open the sandbox data file {path}")]
    Open {
        /// The data file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The data file could not be created or its mode set.
    #[error("cannot create the sandbox data file {path}")]
    Create {
        /// The data file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `dump` was given a data file that does not exist.
    #[error(
        "no sandbox data file at {path}; hint: run `fabrik apply --sandbox` or `fabrik sandbox serve` first"
    )]
    Missing {
        /// The data file.
        path: PathBuf,
    },
    /// The data file was written by a newer Fabrik.
    #[error(
        "the sandbox data file {path} has schema version {found}, this Fabrik knows {known}; hint: delete the file to start a fresh world"
    )]
    Schema {
        /// The data file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The version this build writes.
        known: i64,
    },
    /// A query on the world failed.
    #[error("sandbox data query failed")]
    Query(#[source] rusqlite::Error),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A server task failed.
    #[error("the sandbox server failed")]
    Serve(#[source] std::io::Error),
    /// The sandbox certificate authority could not be created or loaded.
    #[error("sandbox certificate authority: {what}")]
    Ca {
        /// What failed.
        what: &'static str,
        /// The certificate library's error.
        #[source]
        source: rcgen::Error,
    },
    /// A TLS configuration for an app certificate could not be built.
    #[error("cannot build the TLS configuration of an app certificate")]
    Tls {
        /// The TLS library's error.
        #[source]
        source: rustls::Error,
    },
    /// The fault description was invalid.
    #[error(transparent)]
    Faults(#[from] FaultParseError),
    /// A blocking task died.
    #[error("a sandbox worker task failed")]
    Worker,
}
