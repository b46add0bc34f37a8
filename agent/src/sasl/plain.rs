//! SASL PLAIN (RFC 4616).

use super::Credentials;

/// Builds the single PLAIN message: an empty authorization identity, then
/// the username and the password, separated by NUL bytes. The server
/// derives the authorization identity from the username.
pub fn initial_response(credentials: &Credentials) -> Vec<u8> {
    let mut message =
        Vec::with_capacity(2 + credentials.username.len() + credentials.password.len());
    message.push(0);
    message.extend_from_slice(credentials.username.as_bytes());
    message.push(0);
    message.extend_from_slice(credentials.password.as_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message is NUL, username, NUL, password, as in RFC 4616 section 4.
    #[test]
    fn plain_message_layout() {
        let credentials = Credentials {
            username: "tim".to_owned(),
            password: "tanstaaftanstaaf".to_owned(),
        };
        assert_eq!(
            initial_response(&credentials),
            b"\0tim\0tanstaaftanstaaf".to_vec()
        );
    }
}
