//! `coordinator ca`: a small certificate authority for TLS between the
//! coordinator and its agents.
//!
//! One run writes into the output folder:
//! - `ca.pem`, `ca.key`: the CA. Agents pass `ca.pem` as `--client-ca`, and
//!   the coordinator passes it as `--ca`.
//! - `NAME.pem`, `NAME.key` per `--host NAME[=ADDR,...]`: the server
//!   certificate of an agent or monitor agent, for `--tls-cert`/`--tls-key`.
//!   Its subject alternative names are NAME and every ADDR, so the
//!   coordinator may reach the agent by either.
//! - `coordinator.pem`, `coordinator.key`: the client certificate that the
//!   coordinator presents with `--client-cert`/`--client-key`.
//!
//! Keys are ECDSA P-256 and are written with mode 0600. Existing files are
//! kept unless `--force` is given, so a second run cannot silently replace
//! a CA that agents already trust.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// File stem of the coordinator's client certificate.
pub const CLIENT_NAME: &str = "coordinator";
/// File stem of the CA certificate and key.
pub const CA_NAME: &str = "ca";
/// Default of `--days`.
pub const DEFAULT_DAYS: u32 = 365;

/// Start of validity before now, so that a peer whose clock is a little
/// behind does not see a certificate from the future.
const CLOCK_SKEW: Duration = Duration::from_secs(3600);
const KEY_MODE: u32 = 0o600;
const CERT_MODE: u32 = 0o644;

/// An agent host: the DNS name, and the IP addresses by which it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    pub addresses: Vec<IpAddr>,
}

impl FromStr for HostSpec {
    type Err = String;

    /// Parses `NAME`, `NAME=ADDR` or `NAME=ADDR,ADDR`. NAME may itself be an
    /// IP address.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, addresses) = match text.split_once('=') {
            Some((name, addresses)) => (name, Some(addresses)),
            None => (text, None),
        };

        // The name becomes a file name and a DNS name, so allow only the
        // characters both accept.
        let valid_name = !name.is_empty()
            && !name.starts_with(['.', '-'])
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':');
        if !valid_name {
            return Err(format!(
                "invalid host name `{name}` in `{text}`: use letters, digits, `.` and `-`, \
                 for example `agent1=192.0.2.10`"
            ));
        }
        if name == CA_NAME || name == CLIENT_NAME {
            return Err(format!(
                "the host name `{name}` is taken by the `{name}.pem` file; pick another name"
            ));
        }

        let mut parsed = Vec::new();
        for address in addresses.into_iter().flat_map(|list| list.split(',')) {
            let ip = address.trim().parse::<IpAddr>().map_err(|_| {
                format!(
                    "invalid IP address `{address}` in `{text}`: use NAME=ADDR[,ADDR...], \
                     for example `agent1=192.0.2.10,2001:db8::10`"
                )
            })?;
            parsed.push(ip);
        }
        Ok(HostSpec {
            name: name.to_owned(),
            addresses: parsed,
        })
    }
}

impl HostSpec {
    /// Subject alternative names: the name (as an IP address when it is
    /// one) and every address, without repeats.
    fn subject_alt_names(&self) -> Result<Vec<SanType>, CaError> {
        let mut names = Vec::new();
        match self.name.parse::<IpAddr>() {
            Ok(ip) => names.push(SanType::IpAddress(ip)),
            Err(_) => {
                let dns = self
                    .name
                    .clone()
                    .try_into()
                    .map_err(|err| CaError::Certificate {
                        name: self.name.clone(),
                        source: err,
                    })?;
                names.push(SanType::DnsName(dns));
            }
        }
        for ip in &self.addresses {
            let san = SanType::IpAddress(*ip);
            if !names.contains(&san) {
                names.push(san);
            }
        }
        Ok(names)
    }
}

/// Options of `coordinator ca`.
#[derive(Debug, Clone)]
pub struct CaOptions {
    pub out: PathBuf,
    pub hosts: Vec<HostSpec>,
    /// Validity of every certificate, counted from now.
    pub days: u32,
    /// Replace existing files instead of failing.
    pub force: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("no --host given: name at least one agent host, for example --host agent1=192.0.2.10")]
    NoHosts,
    #[error("the host `{0}` is given twice; give each --host once, with all its addresses")]
    DuplicateHost(String),
    #[error("--days must be at least 1")]
    NoDays,
    #[error(
        "{} already exists; pass --force to replace the files, or choose another --out folder",
        .0.display()
    )]
    Exists(PathBuf),
    #[error("failed to create certificate for `{name}`: {source}")]
    Certificate { name: String, source: rcgen::Error },
    #[error("failed to write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Creates the CA, one server certificate per host and the coordinator's
/// client certificate, and returns the paths written, in order.
pub fn create(options: &CaOptions) -> Result<Vec<PathBuf>, CaError> {
    check_options(options)?;

    let mut stems = vec![CA_NAME.to_owned()];
    stems.extend(options.hosts.iter().map(|host| host.name.clone()));
    stems.push(CLIENT_NAME.to_owned());
    let files: Vec<(PathBuf, PathBuf)> = stems
        .iter()
        .map(|stem| {
            let cert = options.out.join(format!("{stem}.pem"));
            let key = options.out.join(format!("{stem}.key"));
            (cert, key)
        })
        .collect();
    // Check every file before writing any, so a refusal leaves no mix of
    // old and new files behind.
    if !options.force {
        let existing = files
            .iter()
            .flat_map(|(cert, key)| [cert, key])
            .find(|path| path.exists());
        if let Some(path) = existing {
            return Err(CaError::Exists(path.clone()));
        }
    }
    std::fs::create_dir_all(&options.out).map_err(|source| CaError::Write {
        path: options.out.clone(),
        source,
    })?;

    let validity = Validity::from_now(options.days);
    let certificate_error = |name: &str| {
        let name = name.to_owned();
        move |source| CaError::Certificate { name, source }
    };

    let ca_key = KeyPair::generate().map_err(certificate_error(CA_NAME))?;
    let ca_params = ca_params(&validity);
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(certificate_error(CA_NAME))?;
    let mut written = Vec::new();
    write_pair(
        &files[0],
        &ca_cert.pem(),
        &ca_key.serialize_pem(),
        &mut written,
    )?;
    let issuer = Issuer::new(ca_params, ca_key);

    for (host, paths) in options.hosts.iter().zip(&files[1..]) {
        let mut params = leaf_params(&host.name, &validity, ExtendedKeyUsagePurpose::ServerAuth);
        params.subject_alt_names = host.subject_alt_names()?;
        let key = KeyPair::generate().map_err(certificate_error(&host.name))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(certificate_error(&host.name))?;
        write_pair(paths, &cert.pem(), &key.serialize_pem(), &mut written)?;
    }

    // The client certificate needs no subject alternative name: agents check
    // only that the CA signed it.
    let client_params = leaf_params(CLIENT_NAME, &validity, ExtendedKeyUsagePurpose::ClientAuth);
    let client_key = KeyPair::generate().map_err(certificate_error(CLIENT_NAME))?;
    let client_cert = client_params
        .signed_by(&client_key, &issuer)
        .map_err(certificate_error(CLIENT_NAME))?;
    let client_paths = &files[files.len() - 1];
    write_pair(
        client_paths,
        &client_cert.pem(),
        &client_key.serialize_pem(),
        &mut written,
    )?;

    Ok(written)
}

fn check_options(options: &CaOptions) -> Result<(), CaError> {
    if options.hosts.is_empty() {
        return Err(CaError::NoHosts);
    }
    if options.days == 0 {
        return Err(CaError::NoDays);
    }
    let mut seen = HashSet::new();
    for host in &options.hosts {
        if !seen.insert(host.name.as_str()) {
            return Err(CaError::DuplicateHost(host.name.clone()));
        }
    }
    Ok(())
}

struct Validity {
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Validity {
    fn from_now(days: u32) -> Validity {
        let now = SystemTime::now();
        Validity {
            not_before: now - CLOCK_SKEW,
            not_after: now + Duration::from_secs(u64::from(days) * 86_400),
        }
    }

    fn apply(&self, params: &mut CertificateParams) {
        params.not_before = self.not_before.into();
        params.not_after = self.not_after.into();
    }
}

fn ca_params(validity: &Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "xmppload CA");
    // Path length 0: the CA signs only end-entity certificates.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity.apply(&mut params);
    params
}

fn leaf_params(
    name: &str,
    validity: &Validity,
    purpose: ExtendedKeyUsagePurpose,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![purpose];
    params.use_authority_key_identifier_extension = true;
    validity.apply(&mut params);
    params
}

/// Writes a certificate (mode 0644) and its key (mode 0600).
fn write_pair(
    (cert_path, key_path): &(PathBuf, PathBuf),
    cert: &str,
    key: &str,
    written: &mut Vec<PathBuf>,
) -> Result<(), CaError> {
    write_file(key_path, key, KEY_MODE)?;
    written.push(key_path.clone());
    write_file(cert_path, cert, CERT_MODE)?;
    written.push(cert_path.clone());
    Ok(())
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), CaError> {
    let write_error = |source| CaError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(write_error)?;
    // `mode` applies only when the file is created. A file replaced with
    // --force would keep its old mode, so the mode is set again before the
    // key is written into it.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(write_error)?;
    file.write_all(contents.as_bytes()).map_err(write_error)?;
    Ok(())
}
