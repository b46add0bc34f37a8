//! TLS and mutual TLS for the gRPC channels between the coordinator and
//! its agents.
//!
//! An agent or monitor agent started with `--tls-cert PATH --tls-key PATH`
//! serves gRPC over TLS only. With `--client-ca PATH` as well, the TLS
//! handshake also requires a client certificate signed by that CA, so a
//! coordinator without one is rejected before any call reaches the service.
//! The coordinator reaches such a peer at an `https://` address, trusts the
//! CA given with `--ca PATH` and presents `--client-cert`/`--client-key`.
//!
//! The files are read and checked when the process starts, so a wrong path
//! or a file without PEM content fails with the flag and the path named,
//! not later in a handshake. TLS uses rustls with the ring provider.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, Server, ServerTlsConfig};

/// Failure to load a certificate or key. Each message names the file, the
/// flag it came from and what to pass instead.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("failed to read {flag} {}: {source}; check the path", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{flag} {} contains no PEM certificate (`-----BEGIN CERTIFICATE-----`): {reason}; \
         pass a certificate file such as one written by `coordinator ca`",
        path.display()
    )]
    NoCertificate {
        flag: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "{flag} {} contains no PEM private key (`-----BEGIN PRIVATE KEY-----`): {reason}; \
         pass the key file written next to the certificate by `coordinator ca`",
        path.display()
    )]
    NoKey {
        flag: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "the certificate {} and the key {} are not a usable TLS identity: {reason}; \
         pass a certificate together with its own key",
        cert.display(),
        key.display()
    )]
    Identity {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error(
        "--client-cert {} is not a client certificate: its extended key usage allows only \
         {usages}; pass the coordinator's certificate (coordinator.pem from `coordinator ca`), \
         not an agent's",
        path.display()
    )]
    NotClientCert { path: PathBuf, usages: String },
}

/// TLS settings of an agent's or monitor agent's gRPC server.
#[derive(Debug, Clone)]
pub struct ServerTls {
    identity: Identity,
    /// CA that must have signed the client certificate. With `None`, clients
    /// need no certificate.
    client_ca: Option<Certificate>,
}

impl ServerTls {
    /// Reads the server certificate chain and key (`--tls-cert`,
    /// `--tls-key`) and, for mutual TLS, the client CA (`--client-ca`).
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, TlsFileError> {
        let identity = load_identity("--tls-cert", cert, "--tls-key", key)?;
        let client_ca = match client_ca {
            Some(path) => Some(load_certificate("--client-ca", path)?),
            None => None,
        };
        let tls = ServerTls {
            identity,
            client_ca,
        };

        // Building the acceptor checks that the key belongs to the
        // certificate, which the PEM parsing above cannot.
        Server::builder()
            .tls_config(tls.config())
            .map_err(|err| TlsFileError::Identity {
                cert: cert.to_owned(),
                key: key.to_owned(),
                reason: error_chain(&err),
            })?;
        Ok(tls)
    }

    /// True when the handshake requires a client certificate.
    pub fn requires_client_cert(&self) -> bool {
        self.client_ca.is_some()
    }

    /// Builds the tonic server configuration.
    pub fn config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(self.identity.clone());
        match &self.client_ca {
            Some(ca) => config.client_ca_root(ca.clone()),
            None => config,
        }
    }
}

/// TLS settings of the coordinator's channels to `https://` peers.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// CA that signed the peers' server certificates (`--ca`).
    ca: Certificate,
    /// Client certificate and key for peers that require mutual TLS.
    identity: Option<Identity>,
}

impl ClientTls {
    /// Reads the trust root (`--ca`) and, for mutual TLS, the client
    /// certificate and key (`--client-cert`, `--client-key`).
    pub fn load(ca: &Path, client: Option<(&Path, &Path)>) -> Result<Self, TlsFileError> {
        let ca = load_certificate("--ca", ca)?;
        let identity = match client {
            Some((cert, key)) => {
                let identity = load_identity("--client-cert", cert, "--client-key", key)?;
                check_client_usage(cert)?;
                Some(identity)
            }
            None => None,
        };
        Ok(ClientTls { ca, identity })
    }

    /// True when a client certificate is configured.
    pub fn has_client_cert(&self) -> bool {
        self.identity.is_some()
    }

    /// Builds the tonic channel configuration. The server name to verify comes
    /// from the host of the peer's address.
    pub fn config(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().ca_certificate(self.ca.clone());
        match &self.identity {
            Some(identity) => config.identity(identity.clone()),
            None => config,
        }
    }
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError::Read {
        flag,
        path: path.to_owned(),
        source,
    })
}

/// Reads a PEM file that must contain at least one certificate.
fn load_certificate(flag: &'static str, path: &Path) -> Result<Certificate, TlsFileError> {
    let pem_bytes = read(flag, path)?;
    let no_certificate = |reason: String| TlsFileError::NoCertificate {
        flag,
        path: path.to_owned(),
        reason,
    };

    let certificates = CertificateDer::pem_slice_iter(&pem_bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|err| no_certificate(err.to_string()))?;
    if certificates.is_empty() {
        return Err(no_certificate(
            "the file has no certificate block".to_owned(),
        ));
    }
    Ok(Certificate::from_pem(pem_bytes))
}

/// Reads a certificate chain and its private key.
fn load_identity(
    cert_flag: &'static str,
    cert: &Path,
    key_flag: &'static str,
    key: &Path,
) -> Result<Identity, TlsFileError> {
    let certificate = load_certificate(cert_flag, cert)?;
    let key_bytes = read(key_flag, key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|err| TlsFileError::NoKey {
        flag: key_flag,
        path: key.to_owned(),
        reason: err.to_string(),
    })?;
    check_key_matches(cert, key, key_der)?;
    Ok(Identity::from_pem(certificate, key_bytes))
}

/// Checks that the key belongs to the first certificate of `cert`.
/// Without this check a client finds out only in the handshake, as an alert
/// from the peer that does not name either file.
fn check_key_matches(
    cert: &Path,
    key: &Path,
    key_der: PrivateKeyDer<'static>,
) -> Result<(), TlsFileError> {
    let identity_error = |reason: String| TlsFileError::Identity {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| identity_error(err.to_string()))?;

    // Only the key check runs here, so the ring provider's missing
    // post-quantum key exchange (the reason rustls 0.23.48 deprecates it)
    // does not matter.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    match rustls::sign::CertifiedKey::from_der(chain, key_der, &provider) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err(identity_error(
            "the key does not belong to the certificate".to_owned(),
        )),
        Err(err) => Err(identity_error(err.to_string())),
    }
}

/// Checks that the client certificate's extended key usage, if it has one,
/// includes TLS client authentication. Peers reject a certificate without it
/// with a bare alert, and an agent's certificate is the usual mistake.
fn check_client_usage(cert: &Path) -> Result<(), TlsFileError> {
    let Some(Ok(first)) = CertificateDer::pem_file_iter(cert)
        .ok()
        .and_then(|mut certs| certs.next())
    else {
        // load_certificate has already rejected a file without certificates.
        return Ok(());
    };
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(&first) else {
        // Let the handshake report a certificate that does not parse.
        return Ok(());
    };
    let Ok(Some(usage)) = parsed.extended_key_usage() else {
        return Ok(());
    };
    let usage = usage.value;
    if usage.any || usage.client_auth {
        return Ok(());
    }
    let mut usages = Vec::new();
    if usage.server_auth {
        usages.push("serverAuth");
    }
    if usage.code_signing {
        usages.push("codeSigning");
    }
    if usage.email_protection {
        usages.push("emailProtection");
    }
    if usages.is_empty() {
        usages.push("other purposes");
    }
    Err(TlsFileError::NotClientCert {
        path: cert.to_owned(),
        usages: usages.join(", "),
    })
}

/// Joins an error and its sources into one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing file is reported with its flag and path.
    #[test]
    fn missing_file_names_flag() {
        let err = ServerTls::load(
            Path::new("/nonexistent/agent.pem"),
            Path::new("/nonexistent/agent.key"),
            None,
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, TlsFileError::Read { .. }), "{message}");
        assert!(message.contains("--tls-cert"), "{message}");
        assert!(message.contains("/nonexistent/agent.pem"), "{message}");
    }

    /// Writes a certificate for `name` with the given extended key usage and
    /// returns the certificate and key paths.
    fn write_identity(
        dir: &Path,
        name: &str,
        usage: rcgen::ExtendedKeyUsagePurpose,
    ) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.self_signed(&key).unwrap();
        let cert_path = dir.join(format!("{name}.pem"));
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    /// A key that belongs to another certificate is rejected, naming both files.
    #[test]
    fn mismatched_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let client = rcgen::ExtendedKeyUsagePurpose::ClientAuth;
        let (cert, _) = write_identity(dir.path(), "one", client.clone());
        let (ca, other_key) = write_identity(dir.path(), "two", client);

        let err = ClientTls::load(&ca, Some((&cert, &other_key))).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, TlsFileError::Identity { .. }), "{message}");
        assert!(
            message.contains("does not belong to the certificate"),
            "{message}"
        );
        assert!(message.contains("one.pem"), "{message}");
        assert!(message.contains("two.key"), "{message}");
    }

    /// A server-only certificate given as the client certificate is rejected
    /// with its usage named, and a client certificate is accepted.
    #[test]
    fn server_cert_as_client_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (server, server_key) = write_identity(
            dir.path(),
            "agent",
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client, client_key) = write_identity(
            dir.path(),
            "coordinator",
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );

        let err = ClientTls::load(&server, Some((&server, &server_key))).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, TlsFileError::NotClientCert { .. }),
            "{message}"
        );
        assert!(message.contains("allows only serverAuth"), "{message}");

        assert!(ClientTls::load(&server, Some((&client, &client_key))).is_ok());
    }

    /// A file without a certificate block is rejected up front.
    #[test]
    fn file_without_certificate_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();

        let err = ClientTls::load(&path, None).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, TlsFileError::NoCertificate { .. }),
            "{message}"
        );
        assert!(message.contains("--ca"), "{message}");
        assert!(message.contains("ca.pem"), "{message}");
    }
}
