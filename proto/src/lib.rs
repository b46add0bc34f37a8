//! gRPC contract between the coordinator and its agents.
//!
//! The generated types live in [`v1`]. Peers check [`PROTOCOL_VERSION`] in
//! `Hello` and in every request that starts work, so a coordinator and an
//! agent built from different contracts fail early with a clear status
//! instead of misreading each other's messages. [`auth`] carries the shared
//! bearer token that agents may require of every call, and [`tls`] the
//! certificates for TLS and mutual TLS on those channels.

pub mod account_pattern;
pub mod auth;
pub mod shutdown;
pub mod tls;

pub mod v1 {
    tonic::include_proto!("xmppload.v1");

    impl std::fmt::Debug for Account {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Account")
                .field("username", &self.username)
                .field("password", &"<hidden>")
                .finish()
        }
    }

    impl std::fmt::Debug for AccountPattern {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("AccountPattern")
                .field("pattern", &self.pattern)
                .field("password", &"<hidden>")
                .field("first", &self.first)
                .finish()
        }
    }
}

/// Version of the contract in `proto/xmppload.proto`; bump it on any change
/// that an older peer would misread. Version 2 adds BOSH, direct TLS,
/// registered-account logins, web-client requests and component groups,
/// which a version 1 agent would ignore and run as anonymous c2s bots.
pub const PROTOCOL_VERSION: u32 = 2;

/// Rejects a request whose protocol version differs from ours.
pub fn check_version(peer_version: u32) -> Result<(), tonic::Status> {
    if peer_version == PROTOCOL_VERSION {
        return Ok(());
    }
    Err(tonic::Status::failed_precondition(format!(
        "protocol version mismatch: peer speaks {peer_version}, this binary speaks {PROTOCOL_VERSION}; \
         run the same release of coordinator and agents"
    )))
}

/// Unwraps an optional message field, turning its absence into
/// `invalid_argument` that names the field.
pub fn required<T>(field: Option<T>, name: &str) -> Result<T, tonic::Status> {
    field.ok_or_else(|| tonic::Status::invalid_argument(format!("missing required field `{name}`")))
}

/// Current wall clock in Unix microseconds.
pub fn unix_micros_now() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}
