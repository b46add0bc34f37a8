//! Login settings of a group: SASL ANONYMOUS, or a mechanism with
//! registered accounts from a pattern or a file.

use std::sync::Arc;

/// SASL mechanism of a group (`auth` in the scenario).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMechanism {
    Anonymous,
    Plain,
    ScramSha1,
    ScramSha256,
}

impl AuthMechanism {
    /// Names accepted by `auth`, lower case as scenarios write them.
    pub const NAMES: &'static str = "anonymous, plain, scram-sha-1 or scram-sha-256";

    pub fn parse(name: &str) -> Option<AuthMechanism> {
        match name.to_ascii_lowercase().as_str() {
            "anonymous" => Some(AuthMechanism::Anonymous),
            "plain" => Some(AuthMechanism::Plain),
            "scram-sha-1" => Some(AuthMechanism::ScramSha1),
            "scram-sha-256" => Some(AuthMechanism::ScramSha256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMechanism::Anonymous => "anonymous",
            AuthMechanism::Plain => "plain",
            AuthMechanism::ScramSha1 => "scram-sha-1",
            AuthMechanism::ScramSha256 => "scram-sha-256",
        }
    }
}

/// One account of an accounts file. The proto type is used as it is,
/// because its `Debug` already hides the password.
pub use xmppload_proto::v1::Account;

/// Source of the accounts of a group.
#[derive(Clone, PartialEq, Eq)]
pub enum Accounts {
    /// `accounts = "bot%05d"` with `password`: bot i (from 0) logs in as
    /// the pattern filled with `first + i`.
    Pattern {
        pattern: String,
        password: String,
        first: u32,
    },
    /// `accounts_file`: bot i logs in as the file's i-th account.
    List(Arc<Vec<Account>>),
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Accounts::Pattern { pattern, first, .. } => f
                .debug_struct("Pattern")
                .field("pattern", pattern)
                .field("password", &"<hidden>")
                .field("first", first)
                .finish(),
            Accounts::List(list) => write!(f, "List({} accounts)", list.len()),
        }
    }
}

/// The login settings of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupLogin {
    Anonymous,
    Accounts {
        mechanism: AuthMechanism,
        /// VirtualHost of the accounts, the stream's `to`.
        domain: String,
        accounts: Accounts,
    },
}

impl GroupLogin {
    pub fn mechanism(&self) -> AuthMechanism {
        match self {
            GroupLogin::Anonymous => AuthMechanism::Anonymous,
            GroupLogin::Accounts { mechanism, .. } => *mechanism,
        }
    }
}
