//! Client side of the SASL mechanisms the bots log in with.
//!
//! - ANONYMOUS (RFC 4505): an empty initial response, no account.
//! - PLAIN (RFC 4616): `authzid NUL authcid NUL password` in one message.
//! - SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677): a salted
//!   challenge-response. The client proves that it has the password without
//!   sending it. It also verifies the server's signature, so a server without
//!   the account's credentials cannot pass as one that has them.
//!
//! This module is the mechanism logic only; [`xmpp::authenticate`] carries
//! it over the `urn:ietf:params:xml:ns:xmpp-sasl` elements of a stream.
//! SCRAM's cost is PBKDF2, so [`SaltedPasswordCache`] keeps each salted
//! password once it is computed.

pub mod plain;
pub mod salted;
pub mod scram;
pub mod xmpp;

pub use salted::{Hash, SaltedPasswordCache};
pub use scram::ScramClient;
pub use xmppload_proto::account_pattern::{AccountPattern, PatternError};

/// A SASL mechanism a bot can log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Anonymous,
    Plain,
    ScramSha1,
    ScramSha256,
}

impl Mechanism {
    /// Name of the mechanism as servers list it in `<mechanisms/>`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Anonymous => "ANONYMOUS",
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// True for the mechanisms that need an account and password.
    pub fn needs_account(self) -> bool {
        self != Mechanism::Anonymous
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Username and password of one registered account. `Debug` hides the
/// password so that logging a plan or a bot cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Local part of the account's JID (the SASL authentication identity).
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Failure of a SASL exchange: a server message that breaks the
/// mechanism's rules, or a server signature that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("invalid base64 in the server's SASL data: {data:?}")]
    Base64 { data: String },

    #[error("server's SCRAM message is not UTF-8")]
    NotUtf8,

    #[error("server's SCRAM message {message:?} has no `{attribute}=` attribute")]
    MissingAttribute { message: String, attribute: char },

    #[error(
        "server's SCRAM nonce {server:?} does not extend the client nonce {client:?}; the server or a middlebox rewrote the exchange"
    )]
    NonceMismatch { client: String, server: String },

    #[error(
        "server's SCRAM iteration count {value:?} is invalid; expected an integer from 1 to {max}"
    )]
    Iterations { value: String, max: u32 },

    #[error("server's SCRAM message requires the unsupported extension `m=`")]
    MandatoryExtension,

    #[error(
        "server's SCRAM signature does not match; it does not know this account's password or the exchange was altered"
    )]
    ServerSignature,

    #[error("server ended the SCRAM exchange with error `{0}`")]
    ServerError(String),

    #[error("server sent SCRAM data {message:?} out of order, in step {step}")]
    OutOfOrder { step: &'static str, message: String },
}

/// Escapes a username for the SCRAM `n=` attribute (RFC 5802 section 5.1):
/// `=` becomes `=3D` and `,` becomes `=2C`.
pub fn saslname(username: &str) -> String {
    let mut escaped = String::with_capacity(username.len());
    for c in username.chars() {
        match c {
            '=' => escaped.push_str("=3D"),
            ',' => escaped.push_str("=2C"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `=` and `,` are escaped; everything else passes through.
    #[test]
    fn saslname_escapes_equals_and_comma() {
        assert_eq!(saslname("bot00001"), "bot00001");
        assert_eq!(saslname("a=b,c"), "a=3Db=2Cc");
        assert_eq!(saslname("=,"), "=3D=2C");
    }

    /// Debug output of credentials never contains the password.
    #[test]
    fn credentials_debug_hides_password() {
        let credentials = Credentials {
            username: "bot1".to_owned(),
            password: "s3cret".to_owned(),
        };
        let shown = format!("{credentials:?}");
        assert!(shown.contains("bot1"));
        assert!(!shown.contains("s3cret"));
    }
}
