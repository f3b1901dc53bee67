//! TLS for the API: a local CA and a server certificate generated at `otgate init` (clients
//! trust the CA file), or real certificate paths from the configuration; rustls with aws-lc-rs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

use otgate_broker::keys::{write_private, write_public};

use crate::WebError;

/// Files of a generated local CA and the server certificate it signed.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// CA certificate (PEM): what clients trust.
    pub ca_cert: PathBuf,
    /// CA private key (PEM, mode 0600), to sign further node certificates.
    pub ca_key: PathBuf,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM, mode 0600).
    pub key: PathBuf,
}

fn tls_error(what: &str) -> impl Fn(rcgen::Error) -> WebError + '_ {
    move |e| WebError::Tls(format!("{what}: {e}"))
}

impl TlsFiles {
    /// Generates a CA (10 years) and a server certificate (2 years) for `names` (host names
    /// and IP addresses). Refuses to overwrite.
    pub fn generate(&self, names: &[String]) -> Result<(), WebError> {
        let now = OffsetDateTime::now_utc();
        let mut ca =
            CertificateParams::new(Vec::<String>::new()).map_err(tls_error("CA parameters"))?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.distinguished_name
            .push(DnType::CommonName, "otgate local CA");
        ca.distinguished_name
            .push(DnType::OrganizationName, "otgate");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = now - Duration::minutes(5);
        ca.not_after = now + Duration::days(3650);
        let ca_key = KeyPair::generate().map_err(tls_error("CA key"))?;
        let ca_cert = ca
            .self_signed(&ca_key)
            .map_err(tls_error("CA certificate"))?;

        let mut leaf = CertificateParams::new(names.to_vec()).map_err(tls_error("server names"))?;
        leaf.distinguished_name.push(
            DnType::CommonName,
            names.first().map_or("otgate", String::as_str),
        );
        leaf.use_authority_key_identifier_extension = true;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.not_before = now - Duration::minutes(5);
        leaf.not_after = now + Duration::days(730);
        let leaf_key = KeyPair::generate().map_err(tls_error("server key"))?;
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_cert = leaf
            .signed_by(&leaf_key, &issuer)
            .map_err(tls_error("server certificate"))?;

        let broker_error = |e: otgate_broker::BrokerError| WebError::Tls(e.to_string());
        write_public(&self.ca_cert, ca_pem.as_bytes()).map_err(broker_error)?;
        write_private(&self.ca_key, issuer.key().serialize_pem().as_bytes())
            .map_err(broker_error)?;
        write_public(
            &self.cert,
            format!("{}{}", leaf_cert.pem(), ca_pem).as_bytes(),
        )
        .map_err(broker_error)?;
        write_private(&self.key, leaf_key.serialize_pem().as_bytes()).map_err(broker_error)?;
        Ok(())
    }
}

/// A rustls server configuration from PEM files (HTTP/2 and HTTP/1.1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, WebError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            WebError::Tls(format!(
                "{}: not a PEM certificate chain ({e})",
                cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(WebError::Tls(format!(
            "{}: no certificate in the file",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| WebError::Tls(format!("{}: not a PEM private key ({e})", key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| WebError::Tls(format!("certificate and key do not match: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
