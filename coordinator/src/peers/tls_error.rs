//! Readable errors for failed TLS handshakes with a peer.
//!
//! tonic reports a failed handshake as a transport error whose source chain
//! ends in the rustls error (rustls 0.23 wording), for example "invalid peer
//! certificate: UnknownIssuer" or "received fatal alert: CertificateRequired".
//! [`classify`] matches those texts and names the file the user has to pass.

use super::PeerError;

/// One known cause: text to look for in the error chain, the problem in
/// plain words and the fix. `{role}` in both is replaced by the peer role.
struct Cause {
    needle: &'static str,
    problem: &'static str,
    fix: &'static str,
}

/// Known causes, most specific first.
const CAUSES: &[Cause] = &[
    Cause {
        needle: "UnknownIssuer",
        problem: "the {role}'s certificate is not signed by the CA given with --ca",
        fix: "pass with --ca the ca.pem that signed the {role}'s --tls-cert",
    },
    // Every CA made by `coordinator ca` has the same name, so a certificate
    // from another of them (or from before `--force`) finds an issuer by name
    // and then fails its signature check.
    Cause {
        needle: "invalid peer certificate: BadSignature",
        problem: "the {role}'s certificate is not signed by the CA given with --ca \
                  (a CA of the same name, made by another `coordinator ca` run)",
        fix: "pass with --ca the ca.pem that signed the {role}'s --tls-cert",
    },
    Cause {
        needle: "certificate not valid for name",
        problem: "the {role}'s certificate does not cover the host of this address",
        fix: "use an address whose host is in the certificate, or make the {role}'s \
              certificate again with `coordinator ca --host NAME=ADDR`",
    },
    Cause {
        needle: "certificate expired",
        problem: "the {role}'s certificate has expired",
        fix: "make new certificates with `coordinator ca --force`",
    },
    // TLS 1.3 servers send `certificate_required` (RFC 8446, section 4.4.2.4)
    // when the client presents no certificate. TLS 1.2 servers fail the
    // handshake with `handshake_failure` instead.
    Cause {
        needle: "received fatal alert: CertificateRequired",
        problem: "the {role} requires a client certificate and the coordinator sent none",
        fix: "pass --client-cert and --client-key, signed by the CA given to the {role} \
              with --client-ca",
    },
    Cause {
        needle: "received fatal alert: UnknownCA",
        problem: "the {role} rejected the coordinator's client certificate: it is not \
                  signed by the {role}'s --client-ca",
        fix: "pass a --client-cert signed by the CA given to the {role} with --client-ca",
    },
    // The server's counterpart of `BadSignature` above.
    Cause {
        needle: "received fatal alert: DecryptError",
        problem: "the {role} rejected the coordinator's client certificate: its signature \
                  does not verify against the {role}'s --client-ca",
        fix: "pass a --client-cert made by the same `coordinator ca` run as the {role}'s \
              --client-ca",
    },
    Cause {
        needle: "received fatal alert: BadCertificate",
        problem: "the {role} rejected the coordinator's client certificate",
        fix: "pass a --client-cert signed by the CA given to the {role} with --client-ca, \
              made by `coordinator ca`",
    },
    // A plain HTTP/2 peer replies to the ClientHello with its SETTINGS
    // frame, which rustls cannot read as a TLS record.
    Cause {
        needle: "received corrupt message",
        problem: "the {role} does not speak TLS at this address",
        fix: "use http:// for a {role} started without --tls-cert",
    },
];

/// Errors with which a TLS server ends a plain HTTP/2 connection: it cannot
/// read the HTTP/2 preface as a TLS record and closes the socket, so the
/// client's first write or read fails.
const CLOSED_BY_TLS_SERVER: &[&str] = &[
    "broken pipe",
    "connection reset",
    "connection closed before message completed",
    "frame with invalid size",
];

/// Returns a [`PeerError::Tls`] when `chain` (an error and its sources,
/// joined) shows a known TLS failure, otherwise `None`.
pub(super) fn classify(role: &'static str, address: &str, chain: &str) -> Option<PeerError> {
    let tls_error = |problem: String, fix: String| PeerError::Tls {
        role,
        address: address.to_string(),
        problem,
        fix,
    };

    if let Some(cause) = CAUSES.iter().find(|cause| chain.contains(cause.needle)) {
        return Some(tls_error(
            cause.problem.replace("{role}", role),
            cause.fix.replace("{role}", role),
        ));
    }

    // NOTE: a plain peer that crashes during the first call fails the same
    // way, so the message presents TLS as the likely cause, not a certain one.
    let closed = CLOSED_BY_TLS_SERVER
        .iter()
        .any(|needle| chain.to_ascii_lowercase().contains(needle));
    let rest = address.strip_prefix("http://")?;
    if closed {
        return Some(tls_error(
            format!(
                "the {role} closed the connection at the first call, as a {role} started \
                 with --tls-cert does with plain HTTP/2 ({chain})"
            ),
            format!("if it uses TLS, use https://{rest} and pass --ca PATH"),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts of rustls 0.23 errors map to the flag that fixes them, and
    /// unrelated errors map to nothing.
    #[test]
    fn classify_known_causes() {
        let address = "https://192.0.2.1:15051";
        let cases = [
            (
                "transport error: invalid peer certificate: UnknownIssuer",
                "--ca",
            ),
            (
                "transport error: invalid peer certificate: certificate not valid for name \"192.0.2.1\"",
                "coordinator ca --host",
            ),
            (
                "transport error: received fatal alert: UnknownCA",
                "--client-ca",
            ),
            (
                "transport error: received fatal alert: CertificateRequired",
                "--client-cert",
            ),
        ];
        for (chain, fix) in cases {
            let err = classify("bot agent", address, chain).expect(chain);
            let message = err.to_string();
            assert!(message.contains(address), "{message}");
            assert!(message.contains(fix), "{chain}: {message}");
        }

        let refused = "transport error: tcp connect error: Connection refused (os error 111)";
        assert!(classify("bot agent", address, refused).is_none());
        // A closed connection hints at TLS only for an http:// address.
        let closed = "transport error: stream closed because of a broken pipe";
        assert!(classify("bot agent", address, closed).is_none());
        let hint = classify("bot agent", "http://192.0.2.1:15051", closed)
            .expect("http:// with a closed connection")
            .to_string();
        assert!(hint.contains("https://192.0.2.1:15051"), "{hint}");
    }
}
