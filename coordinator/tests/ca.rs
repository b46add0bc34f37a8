//! `coordinator ca` writes a CA, server and client certificates that parse,
//! carry the requested names and usages, and keep their keys private.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;
use xmppload_coordinator::ca::{self, CaError, CaOptions, HostSpec};
use xmppload_proto::tls::{ClientTls, ServerTls};

fn options(out: &Path, hosts: &[&str]) -> CaOptions {
    CaOptions {
        out: out.to_owned(),
        hosts: hosts.iter().map(|host| host.parse().unwrap()).collect(),
        days: 30,
        force: false,
    }
}

/// Subject alternative names of a PEM certificate, as text.
fn subject_alt_names(path: &Path) -> Vec<String> {
    let pem_bytes = std::fs::read(path).unwrap();
    let (_, pem) = parse_x509_pem(&pem_bytes).unwrap();
    let cert = pem.parse_x509().unwrap();
    let Some(extension) = cert.subject_alternative_name().unwrap() else {
        return Vec::new();
    };
    extension
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => dns.to_string(),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap()).to_string(),
                16 => IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap()).to_string(),
                other => panic!("IP address SAN of {other} bytes"),
            },
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect()
}

/// The files parse, the server certificate names every host form, and each
/// certificate has the usage its side of the handshake checks. The tls
/// tests check the signatures through real handshakes.
#[test]
fn ca_files_parse_with_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    let written = ca::create(&options(&out, &["agent1=127.0.0.1,::1", "192.0.2.7"])).unwrap();
    assert_eq!(written.len(), 8, "{written:?}");

    for stem in ["ca", "agent1", "192.0.2.7", "coordinator"] {
        let key = out.join(format!("{stem}.key"));
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
        assert!(written.contains(&key), "{}", key.display());
        assert!(written.contains(&out.join(format!("{stem}.pem"))), "{stem}");
    }

    assert_eq!(
        subject_alt_names(&out.join("agent1.pem")),
        ["agent1", "127.0.0.1", "::1"]
    );
    assert_eq!(subject_alt_names(&out.join("192.0.2.7.pem")), ["192.0.2.7"]);

    let ca_bytes = std::fs::read(out.join("ca.pem")).unwrap();
    let (_, ca_pem) = parse_x509_pem(&ca_bytes).unwrap();
    let ca_cert = ca_pem.parse_x509().unwrap();
    assert!(ca_cert.is_ca());

    let server_bytes = std::fs::read(out.join("agent1.pem")).unwrap();
    let (_, server_pem) = parse_x509_pem(&server_bytes).unwrap();
    let server = server_pem.parse_x509().unwrap();
    assert!(!server.is_ca());
    assert_eq!(server.issuer(), ca_cert.subject());
    let usage = server.extended_key_usage().unwrap().unwrap().value;
    assert!(usage.server_auth);
    assert!(!usage.client_auth);

    let client_bytes = std::fs::read(out.join("coordinator.pem")).unwrap();
    let (_, client_pem) = parse_x509_pem(&client_bytes).unwrap();
    let client = client_pem.parse_x509().unwrap();
    let usage = client.extended_key_usage().unwrap().unwrap().value;
    assert!(usage.client_auth);
    assert!(!usage.server_auth);
    assert_eq!(client.issuer(), ca_cert.subject());

    // The loaders the agents and the coordinator use accept the files.
    ServerTls::load(
        &out.join("agent1.pem"),
        &out.join("agent1.key"),
        Some(&out.join("ca.pem")),
    )
    .unwrap();
    ClientTls::load(
        &out.join("ca.pem"),
        Some((&out.join("coordinator.pem"), &out.join("coordinator.key"))),
    )
    .unwrap();
}

/// A second run keeps the existing files unless forced, and `--force`
/// replaces them with a new CA whose keys are still private.
#[test]
fn ca_keeps_files_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    ca::create(&options(dir.path(), &["agent1"])).unwrap();
    let first_ca = std::fs::read(dir.path().join("ca.pem")).unwrap();

    let err = ca::create(&options(dir.path(), &["agent1"])).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, CaError::Exists(_)), "{message}");
    assert!(message.contains("ca.pem"), "{message}");
    assert!(message.contains("--force"), "{message}");
    assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), first_ca);

    // A key left readable by others is made private again on --force.
    let key = dir.path().join("agent1.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let forced = CaOptions {
        force: true,
        ..options(dir.path(), &["agent1"])
    };
    ca::create(&forced).unwrap();
    assert_ne!(std::fs::read(dir.path().join("ca.pem")).unwrap(), first_ca);
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// Bad host arguments are rejected with the value and the expected form.
#[test]
fn host_spec_rejects_bad_input() {
    let spec: HostSpec = "agent1=192.0.2.10,2001:db8::10".parse().unwrap();
    assert_eq!(spec.name, "agent1");
    assert_eq!(spec.addresses.len(), 2);

    let err = "agent1=not-an-ip".parse::<HostSpec>().unwrap_err();
    assert!(err.contains("`not-an-ip`"), "{err}");
    assert!(err.contains("NAME=ADDR"), "{err}");

    let err = "agent 1".parse::<HostSpec>().unwrap_err();
    assert!(err.contains("`agent 1`"), "{err}");

    let err = "ca".parse::<HostSpec>().unwrap_err();
    assert!(err.contains("ca.pem"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let err = ca::create(&options(dir.path(), &["agent1", "agent1=127.0.0.1"])).unwrap_err();
    assert!(
        matches!(err, CaError::DuplicateHost(ref name) if name == "agent1"),
        "{err}"
    );
    assert!(!dir.path().join("ca.pem").exists());
}
