//! rustls client configuration shared by STARTTLS, direct TLS and `wss://`.
//!
//! By default the server certificate must chain to a Mozilla root from
//! `webpki-roots` and match the server name. When a request sets
//! `accept_invalid_certs`, the chain and name checks are skipped, but the
//! handshake signatures are still verified, so the connection is encrypted
//! to the holder of the presented certificate's key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// ALPN protocol id of XMPP client connections with direct TLS (XEP-0368).
pub const ALPN_XMPP_CLIENT: &[u8] = b"xmpp-client";

/// Builds a client configuration with the ring provider. A group builds it
/// once and shares it between its bots.
pub fn client_config(accept_invalid_certs: bool) -> Result<Arc<ClientConfig>, rustls::Error> {
    build(accept_invalid_certs, Vec::new())
}

/// Like [`client_config`], offering ALPN `xmpp-client`, which XEP-0368
/// expects from a client that connects with TLS from the first byte.
pub fn direct_tls_config(accept_invalid_certs: bool) -> Result<Arc<ClientConfig>, rustls::Error> {
    build(accept_invalid_certs, vec![ALPN_XMPP_CLIENT.to_vec()])
}

fn build(
    accept_invalid_certs: bool,
    alpn_protocols: Vec<Vec<u8>>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    // An explicit provider avoids depending on a process-wide default, which
    // rustls cannot pick when several providers are compiled in.
    // rustls 0.23.48 deprecates the ring provider because it lacks
    // post-quantum key exchange. The workspace builds rustls with ring only,
    // so no aws-lc-rs toolchain is needed, and a load generator can do
    // without post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;

    let mut config = if accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth()
    } else {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = alpn_protocols;
    Ok(Arc::new(config))
}

/// Verifier that skips the certificate chain and name, for self-signed test
/// servers, while still checking the handshake signatures.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
