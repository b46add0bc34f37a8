//! Shared bearer token between the coordinator and its agents.
//!
//! An agent or monitor agent started with a token accepts a call only when
//! the call's `authorization` metadata is `Bearer <token>`. The check runs in
//! a tonic interceptor, [`RequireToken`], before any service code. The
//! coordinator attaches the header to every call with [`AttachToken`].
//!
//! The token comes from a file (`--token-file PATH`) or from the
//! [`TOKEN_ENV`] environment variable, the file taking precedence. It is
//! never logged: [`AuthToken`]'s `Debug` output is redacted and rejections
//! log the peer address and the reason only.
//!
//! Without TLS (see [`crate::tls`]) the channels are plain HTTP/2 and the
//! token travels unencrypted. It then keeps strangers from driving load
//! through an open port, but it does not protect against someone who can
//! read the traffic between coordinator and agents.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use subtle::ConstantTimeEq;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::tls::ServerTls;

/// Environment variable that contains the token itself (not a path).
pub const TOKEN_ENV: &str = "XMPPLOAD_TOKEN";

/// Minimum token length, so that a token cannot be guessed by trying a
/// dictionary over the network.
pub const MIN_TOKEN_CHARS: usize = 16;

/// How to make a good token, for error messages.
const TOKEN_HINT: &str = "for example `openssl rand -hex 32 > xmppload.token`";

/// Metadata key of the bearer token (HTTP `Authorization`, lower case as
/// HTTP/2 requires).
const AUTHORIZATION: &str = "authorization";

/// A validated shared secret.
#[derive(Clone)]
pub struct AuthToken {
    secret: Arc<str>,
    /// `Bearer <secret>`, marked sensitive so HPACK does not index it.
    header: MetadataValue<Ascii>,
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

/// Failure to load a token; the message names where it came from, never the
/// token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("failed to read the token file {}: {source}; check the path given to --token-file", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the token from {origin} has {chars} characters, fewer than {MIN_TOKEN_CHARS}; use a longer random token, {TOKEN_HINT}"
    )]
    TooShort { origin: String, chars: usize },
    #[error(
        "the token from {origin} contains a character that is not visible ASCII at position {position}; use letters, digits and punctuation only, {TOKEN_HINT}"
    )]
    InvalidCharacter { origin: String, position: usize },
}

impl AuthToken {
    /// Validates a token. Whitespace around it, such as the newline at the
    /// end of a file, is removed. `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<AuthToken, TokenError> {
        let secret = text.trim();
        // Visible ASCII only, because the token goes into an HTTP header.
        if let Some(position) = secret.chars().position(|c| !c.is_ascii_graphic()) {
            return Err(TokenError::InvalidCharacter {
                origin: origin.to_owned(),
                position,
            });
        }
        if secret.len() < MIN_TOKEN_CHARS {
            return Err(TokenError::TooShort {
                origin: origin.to_owned(),
                chars: secret.len(),
            });
        }

        let mut header = MetadataValue::try_from(format!("Bearer {secret}")).map_err(|_| {
            TokenError::InvalidCharacter {
                origin: origin.to_owned(),
                position: 0,
            }
        })?;
        header.set_sensitive(true);
        Ok(AuthToken {
            secret: Arc::from(secret),
            header,
        })
    }

    /// Reads and validates the token in `path`.
    pub fn from_file(path: &Path) -> Result<AuthToken, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_owned(),
            source,
        })?;
        AuthToken::parse(&text, &format!("file {}", path.display()))
    }

    /// Loads the token from `file` when given, else from `env_value` (the
    /// value of [`TOKEN_ENV`], passed in so that tests need not change the
    /// process environment). Returns `None` when neither is set. A set but
    /// empty variable is an error, because silently running without a token
    /// after a failed `$(cat FILE)` would open the agent to anyone.
    pub fn load(
        file: Option<&Path>,
        env_value: Option<OsString>,
    ) -> Result<Option<AuthToken>, TokenError> {
        if let Some(path) = file {
            return AuthToken::from_file(path).map(Some);
        }
        let Some(value) = env_value else {
            return Ok(None);
        };
        let origin = format!("environment variable {TOKEN_ENV}");
        let text = value
            .into_string()
            .map_err(|_| TokenError::InvalidCharacter {
                origin: origin.clone(),
                position: 0,
            })?;
        AuthToken::parse(&text, &origin).map(Some)
    }

    /// Compares a presented secret in time independent of where it differs.
    /// Only the length can leak, and the length is not secret.
    fn matches(&self, presented: &str) -> bool {
        self.secret.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// Reason a call was rejected. It is logged by name, never with the
/// presented value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejection {
    Missing,
    NotBearer,
    Mismatch,
}

impl Rejection {
    fn as_str(self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::NotBearer => "not_bearer",
            Rejection::Mismatch => "mismatch",
        }
    }
}

/// Server interceptor: rejects calls without the right bearer token with
/// `unauthenticated`. Without a token configured it lets every call through.
#[derive(Debug, Clone)]
pub struct RequireToken {
    token: Option<AuthToken>,
    /// Rejections so far, shared by the clones tonic makes per connection;
    /// used to rate-limit the warnings.
    rejected: Arc<AtomicU64>,
}

impl RequireToken {
    pub fn new(token: Option<AuthToken>) -> RequireToken {
        RequireToken {
            token,
            rejected: Arc::new(AtomicU64::new(0)),
        }
    }

    fn check(token: &AuthToken, request: &Request<()>) -> Result<(), Rejection> {
        let value = request
            .metadata()
            .get(AUTHORIZATION)
            .ok_or(Rejection::Missing)?;
        let value = value.to_str().map_err(|_| Rejection::NotBearer)?;
        // The scheme name is case-insensitive (RFC 7235, section 2.1).
        let (scheme, presented) = value.split_once(' ').ok_or(Rejection::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Rejection::NotBearer);
        }
        if token.matches(presented.trim()) {
            Ok(())
        } else {
            Err(Rejection::Mismatch)
        }
    }
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.token else {
            return Ok(request);
        };
        let Err(rejection) = RequireToken::check(token, &request) else {
            return Ok(request);
        };

        // Warn on the 1st, 2nd, 4th, 8th, ... rejection, so that a client
        // retrying in a loop cannot flood the log.
        let rejected_total = self.rejected.fetch_add(1, Ordering::Relaxed) + 1;
        if rejected_total.is_power_of_two() {
            tracing::warn!(
                peer = ?request.remote_addr(),
                reason = rejection.as_str(),
                rejected_total,
                "rejected a call without a valid bearer token"
            );
        }

        let problem = match rejection {
            Rejection::Missing => "the call has no `authorization` metadata",
            Rejection::NotBearer => "the `authorization` metadata is not `Bearer <token>`",
            Rejection::Mismatch => "the bearer token does not match this server's token",
        };
        Err(Status::unauthenticated(format!(
            "{problem}; this server requires a shared token: start the coordinator with \
             --token-file PATH or the {TOKEN_ENV} environment variable set to the token \
             this server was started with"
        )))
    }
}

/// Client interceptor: adds `authorization: Bearer <token>` to every call,
/// or nothing when no token is configured.
#[derive(Debug, Clone)]
pub struct AttachToken {
    header: Option<MetadataValue<Ascii>>,
}

impl AttachToken {
    pub fn new(token: Option<&AuthToken>) -> AttachToken {
        AttachToken {
            header: token.map(|token| token.header.clone()),
        }
    }
}

impl Interceptor for AttachToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request.metadata_mut().insert(AUTHORIZATION, header.clone());
        }
        Ok(request)
    }
}

/// Logs a warning when a server listens beyond loopback without a way to
/// authenticate its caller (a token or a required client certificate), and
/// when its token would travel without TLS. `exposure` completes "anyone
/// who can reach this port can ...".
pub fn warn_if_unprotected(
    listen: Option<SocketAddr>,
    token: Option<&AuthToken>,
    tls: Option<&ServerTls>,
    exposure: &str,
) {
    let Some(address) = listen else {
        return;
    };
    if address.ip().is_loopback() {
        return;
    }
    let client_cert_required = tls.is_some_and(ServerTls::requires_client_cert);
    if token.is_none() && !client_cert_required {
        tracing::warn!(
            listen = %address,
            "listening beyond loopback without a token or client certificates: anyone who can \
             reach this port can {exposure}; set --token-file PATH or {TOKEN_ENV}, or \
             --tls-cert, --tls-key and --client-ca, or listen on 127.0.0.1"
        );
    }
    if token.is_some() && tls.is_none() {
        tracing::warn!(
            listen = %address,
            "listening beyond loopback without TLS: the token travels unencrypted; \
             set --tls-cert and --tls-key"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123";

    fn request_with(value: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = value {
            let value = MetadataValue::try_from(value).expect("test header is ASCII");
            request.metadata_mut().insert(AUTHORIZATION, value);
        }
        request
    }

    fn token() -> AuthToken {
        AuthToken::parse(SECRET, "test").expect("test token is valid")
    }

    /// A file's trailing newline is not part of the token.
    #[test]
    fn file_token_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{SECRET}\n")).unwrap();
        let token = AuthToken::from_file(&path).unwrap();
        assert!(token.matches(SECRET));
    }

    /// The file wins over the environment variable.
    #[test]
    fn file_takes_precedence_over_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, SECRET).unwrap();
        let token = AuthToken::load(Some(&path), Some("fedcba9876543210fedcba".into()))
            .unwrap()
            .unwrap();
        assert!(token.matches(SECRET));
        assert!(!token.matches("fedcba9876543210fedcba"));
    }

    /// No file and no variable means no token.
    #[test]
    fn load_without_sources_is_none() {
        assert!(AuthToken::load(None, None).unwrap().is_none());
    }

    /// An empty variable is an error, not an open agent.
    #[test]
    fn empty_env_is_rejected() {
        let err = AuthToken::load(None, Some("".into())).unwrap_err();
        assert!(
            matches!(err, TokenError::TooShort { chars: 0, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(TOKEN_ENV), "{err}");
    }

    /// Short tokens and tokens with spaces are rejected without echoing them.
    #[test]
    fn weak_tokens_are_rejected() {
        let short = AuthToken::parse("abc", "test").unwrap_err();
        assert!(
            matches!(short, TokenError::TooShort { chars: 3, .. }),
            "{short}"
        );

        let spaced = AuthToken::parse("0123456789 abcdef0123", "test").unwrap_err();
        assert!(
            matches!(spaced, TokenError::InvalidCharacter { position: 10, .. }),
            "{spaced}"
        );
        assert!(!spaced.to_string().contains("0123456789"), "{spaced}");
    }

    /// A missing file is named in the error.
    #[test]
    fn missing_file_is_named() {
        let err = AuthToken::from_file(Path::new("/nonexistent/xmppload.token")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/xmppload.token"),
            "{err}"
        );
        assert!(err.to_string().contains("--token-file"), "{err}");
    }

    /// Debug output never contains the secret.
    #[test]
    fn debug_is_redacted() {
        let text = format!("{:?} {:?}", token(), AttachToken::new(Some(&token())));
        assert!(!text.contains(SECRET), "{text}");
    }

    /// The server interceptor accepts the token and rejects everything else.
    #[test]
    fn require_token_checks_header() {
        let mut interceptor = RequireToken::new(Some(token()));
        let bearer = format!("Bearer {SECRET}");
        let lower = format!("bearer {SECRET}");
        assert!(interceptor.call(request_with(Some(&bearer))).is_ok());
        assert!(interceptor.call(request_with(Some(&lower))).is_ok());

        for value in [
            None,
            Some("Basic abc"),
            Some("Bearer wrong-token-of-length"),
            Some(SECRET),
        ] {
            let status = interceptor.call(request_with(value)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{value:?}");
            assert!(status.message().contains("--token-file"), "{value:?}");
            assert!(!status.message().contains(SECRET), "{value:?}");
        }
    }

    /// Without a configured token every call passes.
    #[test]
    fn no_token_lets_calls_through() {
        let mut interceptor = RequireToken::new(None);
        assert!(interceptor.call(request_with(None)).is_ok());
    }

    /// The client interceptor adds exactly the header the server expects.
    #[test]
    fn attach_token_sets_header() {
        let mut attach = AttachToken::new(Some(&token()));
        let request = attach.call(Request::new(())).unwrap();
        let value = request.metadata().get(AUTHORIZATION).unwrap();
        assert_eq!(value.to_str().unwrap(), format!("Bearer {SECRET}"));
        assert!(value.is_sensitive());

        let mut server = RequireToken::new(Some(token()));
        assert!(server.call(request).is_ok());
    }
}
