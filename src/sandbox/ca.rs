//! The sandbox certificate authority and the app certificates it signs.
//!
//! The CA key and certificate live in the data file, so a CA that Fabrik
//! trusted once stays valid across restarts. Leaf certificates are made on
//! demand for each domain (SNI) and kept in memory; their validity follows
//! the wall clock (TLS clients check against it) and the `cert_days` fault.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rusqlite::TransactionBehavior;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::SandboxError;
use super::config::system_now_ms;
use super::store::Store;

/// Days a leaf certificate is valid when no fault says otherwise.
const DEFAULT_DAYS: i64 = 90;

/// Leaf certificates are re-issued after this long, so "valid for N days"
/// stays true of what a client sees.
const REISSUE_AFTER_MS: i64 = 3_600_000;

/// The name on the certificate served for unknown names (like a reverse
/// proxy's default certificate, it matches nothing a client asked for).
pub(crate) const DEFAULT_NAME: &str = "sandbox.invalid";

/// A TLS config and when its certificate was issued (ms).
type Issued = (i64, Arc<ServerConfig>);

/// The CA and a cache of TLS configs per (domain, days).
pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
    cache: Mutex<HashMap<(String, i64), Issued>>,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Fabrik Sandbox CA");
    name.push(
        DnType::OrganizationName,
        "Fabrik sandbox (test double, never trust in production)",
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 12, 31);
    params
}

impl Ca {
    /// Loads the CA from the data file, creating it on first use.
    pub(crate) fn load_or_create(store: &Store) -> Result<Self, SandboxError> {
        let ca_err = |what| move |source| SandboxError::Ca { what, source };
        let stored = store.run(TransactionBehavior::Immediate, 0, |tx| {
            match (tx.meta("ca_key_pem")?, tx.meta("ca_cert_pem")?) {
                (Some(key), Some(cert)) => Ok(Ok((key, cert))),
                _ => {
                    let made = KeyPair::generate().and_then(|key| {
                        let cert = ca_params().self_signed(&key)?;
                        Ok((key.serialize_pem(), cert.pem()))
                    });
                    if let Ok((key, cert)) = &made {
                        tx.set_meta("ca_key_pem", key)?;
                        tx.set_meta("ca_cert_pem", cert)?;
                    }
                    Ok(made)
                }
            }
        })?;
        let (key_pem, cert_pem) = stored.map_err(ca_err("cannot create the CA"))?;
        let key = KeyPair::from_pem(&key_pem).map_err(ca_err("cannot read the CA key"))?;
        let der = pem_to_der(&cert_pem).ok_or(SandboxError::Ca {
            what: "cannot read the CA certificate",
            source: rcgen::Error::CouldNotParseCertificate,
        })?;
        Ok(Self {
            // Same distinguished name and key: certificates signed now chain
            // to the certificate stored when the CA was made.
            issuer: Issuer::new(ca_params(), key),
            pem: cert_pem,
            der,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, PEM.
    pub(crate) fn pem(&self) -> &str {
        &self.pem
    }

    /// A TLS config serving a certificate for `domain` valid `days` days.
    pub(crate) fn server_config(
        &self,
        domain: &str,
        days: i64,
    ) -> Result<Arc<ServerConfig>, SandboxError> {
        let now = system_now_ms();
        let key = (domain.to_owned(), days);
        if let Ok(cache) = self.cache.lock()
            && let Some((issued, config)) = cache.get(&key)
            && now - issued < REISSUE_AFTER_MS
        {
            return Ok(config.clone());
        }
        let config = Arc::new(self.issue(domain, days, now)?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, (now, config.clone()));
        }
        Ok(config)
    }

    fn issue(&self, domain: &str, days: i64, now_ms: i64) -> Result<ServerConfig, SandboxError> {
        let (cert, key) = self.leaf(domain, days, now_ms)?;
        let chain = vec![cert, self.der.clone()];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls_err = |source| SandboxError::Tls { source };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(tls_err)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// A certificate for `domain` signed by the CA, and its key.
    fn leaf(
        &self,
        domain: &str,
        days: i64,
        now_ms: i64,
    ) -> Result<(CertificateDer<'static>, KeyPair), SandboxError> {
        let ca_err = |what| move |source| SandboxError::Ca { what, source };
        let mut params = CertificateParams::new(vec![domain.to_owned()])
            .map_err(ca_err("invalid certificate name"))?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, domain);
        params.distinguished_name = name;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        let now = epoch + Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
        let day = Duration::from_secs(86_400);
        let span = day * u32::try_from(days.unsigned_abs()).unwrap_or(u32::MAX / 86_400);
        if days > 0 {
            params.not_before = now - Duration::from_secs(3600);
            params.not_after = now + span;
        } else {
            // Already expired: valid for one day that ended |days| days ago
            // (or just now for zero).
            params.not_after = now - span - Duration::from_secs(1);
            params.not_before = params.not_after - day;
        }
        let key = KeyPair::generate().map_err(ca_err("cannot make a certificate key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(ca_err("cannot sign a certificate"))?;
        Ok((cert.der().clone(), key))
    }
}

/// Days the app certificates are valid under the given fault value.
pub(crate) fn leaf_days(fault: Option<i64>) -> i64 {
    fault.unwrap_or(DEFAULT_DAYS)
}

fn pem_to_der(pem: &str) -> Option<CertificateDer<'static>> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
        .map(CertificateDer::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::store::WorldInit;

    fn store(dir: &std::path::Path) -> Store {
        Store::open(
            &dir.join("s.db"),
            &WorldInit {
                seed: 0,
                zones: vec![],
                servers: vec![],
                now: 0,
            },
        )
        .unwrap()
    }

    #[test]
    fn the_ca_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first = Ca::load_or_create(&store(dir.path())).unwrap();
        let again = Ca::load_or_create(&store(dir.path())).unwrap();
        assert_eq!(first.pem(), again.pem());
        assert!(first.pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn leaves_chain_to_the_ca_with_the_requested_validity() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(&store(dir.path())).unwrap();
        let now = system_now_ms();
        let (leaf, _) = ca.leaf("app.example.com", 3, now).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca.der).unwrap();
        assert_eq!(parsed.issuer(), ca_cert.subject());
        let not_after = parsed.validity().not_after.timestamp();
        let expected = now / 1000 + 3 * 86_400;
        assert!(
            (not_after - expected).abs() <= 1,
            "{not_after} vs {expected}"
        );
        assert!(parsed.validity().is_valid());
        let (expired, _) = ca.leaf("app.example.com", 0, now).unwrap();
        let (_, expired) = x509_parser::parse_x509_certificate(&expired).unwrap();
        assert!(!expired.validity().is_valid());
        assert!(ca.server_config("app.example.com", 90).is_ok());
    }

    #[test]
    fn leaf_days_default_to_ninety() {
        assert_eq!(leaf_days(None), 90);
        assert_eq!(leaf_days(Some(2)), 2);
    }
}
