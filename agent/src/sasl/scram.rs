//! SCRAM client (RFC 5802, with SHA-256 from RFC 7677), without channel
//! binding.
//!
//! The exchange, with the state this type keeps between steps:
//!
//! 1. [`ScramClient::client_first`]: `n,,n=USER,r=CNONCE`. The `n,,` GS2
//!    header says the client supports no channel binding and sends no
//!    authorization identity. CNONCE is 18 bytes from a CSPRNG, base64.
//! 2. [`ScramClient::server_first`] parses `r=CNONCE+SNONCE,s=SALT,i=COUNT`
//!    and checks that the nonce extends ours and that the count is sane.
//!    The caller then computes the salted password (PBKDF2, the expensive
//!    part), usually through a cache.
//! 3. [`ScramClient::client_final`]: `c=biws,r=NONCE,p=PROOF`, where
//!    `biws` is the base64 of the GS2 header and PROOF shows knowledge of
//!    the password without revealing it.
//! 4. [`ScramClient::server_final`] checks `v=SIGNATURE` in constant time,
//!    which proves that the server has the account's credentials too.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::{Credentials, Hash, SaltedPasswordCache, SaslError, saslname};

/// GS2 header: no channel binding, no authorization identity.
const GS2_HEADER: &str = "n,,";
/// Bytes of randomness in the client nonce; 18 bytes give 24 base64
/// characters with no padding.
const NONCE_BYTES: usize = 18;
/// Largest iteration count accepted from a server. RFC 7677 recommends at
/// least 4096, and Prosody 0.12 uses 10000 by default. Each iteration costs
/// the agent two HMACs, so a server that sends millions would turn every
/// login into seconds of agent CPU and measure the agent, not the server.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// Step the exchange has reached.
#[derive(Debug)]
enum State {
    /// client-first sent, server-first not yet read.
    Started,
    /// server-first read; the salted password is needed next.
    Salting {
        /// Full nonce, client's and server's part.
        nonce: String,
        server_first: String,
    },
    /// client-final sent, with the server signature to expect.
    Proved { server_signature: Vec<u8> },
    /// The server's signature matched.
    Verified,
}

/// Salt and iteration count from the server, the inputs of PBKDF2 besides
/// the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaltParams {
    pub salt: Vec<u8>,
    pub iterations: u32,
}

/// One SCRAM exchange for one account.
#[derive(Debug)]
pub struct ScramClient {
    hash: Hash,
    credentials: Credentials,
    client_nonce: String,
    /// `n=USER,r=CNONCE`, part of the signed AuthMessage.
    client_first_bare: String,
    state: State,
}

impl ScramClient {
    /// Starts an exchange with a fresh random nonce.
    pub fn new(hash: Hash, credentials: Credentials) -> ScramClient {
        let mut random = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut random);
        Self::with_nonce(hash, credentials, BASE64.encode(random))
    }

    /// Starts an exchange with a given client nonce, for the RFC test
    /// vectors and the login benchmark. A real login must use
    /// [`ScramClient::new`], because a predictable nonce allows replay.
    pub fn with_nonce(hash: Hash, credentials: Credentials, client_nonce: String) -> ScramClient {
        let client_first_bare = format!("n={},r={client_nonce}", saslname(&credentials.username));
        ScramClient {
            hash,
            credentials,
            client_nonce,
            client_first_bare,
            state: State::Started,
        }
    }

    /// Returns the client-first message, sent as the initial response.
    pub fn client_first(&self) -> String {
        format!("{GS2_HEADER}{}", self.client_first_bare)
    }

    /// Returns the account's password, for the caller that salts it.
    pub fn password(&self) -> &str {
        &self.credentials.password
    }

    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// Parses and checks the server-first message and returns what PBKDF2
    /// needs.
    pub fn server_first(&mut self, message: &[u8]) -> Result<SaltParams, SaslError> {
        let text = std::str::from_utf8(message).map_err(|_| SaslError::NotUtf8)?;
        if !matches!(self.state, State::Started) {
            return Err(SaslError::OutOfOrder {
                step: "server-first",
                message: text.to_owned(),
            });
        }
        if text.starts_with("m=") {
            return Err(SaslError::MandatoryExtension);
        }

        let nonce = attribute(text, 'r')?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(SaslError::NonceMismatch {
                client: self.client_nonce.clone(),
                server: nonce.to_owned(),
            });
        }
        let salt_text = attribute(text, 's')?;
        let salt = BASE64.decode(salt_text).map_err(|_| SaslError::Base64 {
            data: salt_text.to_owned(),
        })?;
        let count_text = attribute(text, 'i')?;
        let iterations = count_text
            .parse::<u32>()
            .ok()
            .filter(|count| (1..=MAX_ITERATIONS).contains(count))
            .ok_or_else(|| SaslError::Iterations {
                value: count_text.to_owned(),
                max: MAX_ITERATIONS,
            })?;

        self.state = State::Salting {
            nonce: nonce.to_owned(),
            server_first: text.to_owned(),
        };
        Ok(SaltParams { salt, iterations })
    }

    /// Builds the client-final message from the salted password of the
    /// [`SaltParams`] that [`ScramClient::server_first`] returned.
    pub fn client_final(&mut self, salted_password: &[u8]) -> Result<String, SaslError> {
        let State::Salting {
            nonce,
            server_first,
            ..
        } = &self.state
        else {
            return Err(SaslError::OutOfOrder {
                step: "client-final",
                message: String::new(),
            });
        };
        let hash = self.hash;
        let without_proof = format!("c={},r={nonce}", BASE64.encode(GS2_HEADER));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);

        let client_key = hash.hmac(salted_password, b"Client Key");
        let stored_key = hash.digest(&client_key);
        let client_signature = hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(key, signature)| key ^ signature)
            .collect();
        let server_key = hash.hmac(salted_password, b"Server Key");
        let server_signature = hash.hmac(&server_key, auth_message.as_bytes());

        self.state = State::Proved { server_signature };
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// Runs [`ScramClient::server_first`], the salting through `cache` on
    /// this thread, and [`ScramClient::client_final`].
    pub fn respond_blocking(
        &mut self,
        server_first: &[u8],
        cache: &SaltedPasswordCache,
    ) -> Result<String, SaslError> {
        let params = self.server_first(server_first)?;
        let salted = cache.salt_password(
            self.hash,
            &self.credentials.password,
            &params.salt,
            params.iterations,
        );
        self.client_final(&salted)
    }

    /// Checks the server-final message: `v=` must carry the server
    /// signature, and `e=` is the server's own error.
    pub fn server_final(&mut self, message: &[u8]) -> Result<(), SaslError> {
        let text = std::str::from_utf8(message).map_err(|_| SaslError::NotUtf8)?;
        let State::Proved { server_signature } = &self.state else {
            return Err(SaslError::OutOfOrder {
                step: "server-final",
                message: text.to_owned(),
            });
        };
        if let Some(error) = text.strip_prefix("e=") {
            return Err(SaslError::ServerError(error.to_owned()));
        }
        let signature_text = attribute(text, 'v')?;
        let signature = BASE64
            .decode(signature_text)
            .map_err(|_| SaslError::Base64 {
                data: signature_text.to_owned(),
            })?;
        if signature.len() != server_signature.len()
            || !bool::from(signature.ct_eq(server_signature))
        {
            return Err(SaslError::ServerSignature);
        }
        self.state = State::Verified;
        Ok(())
    }

    /// True once the server's signature has been checked.
    pub fn is_verified(&self) -> bool {
        matches!(self.state, State::Verified)
    }
}

/// Value of the first `name=` attribute of a comma-separated SCRAM message.
fn attribute(message: &str, name: char) -> Result<&str, SaslError> {
    message
        .split(',')
        .find_map(|part| {
            let mut chars = part.chars();
            (chars.next() == Some(name) && chars.next() == Some('=')).then(|| &part[2..])
        })
        .ok_or_else(|| SaslError::MissingAttribute {
            message: message.to_owned(),
            attribute: name,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_pencil() -> Credentials {
        Credentials {
            username: "user".to_owned(),
            password: "pencil".to_owned(),
        }
    }

    /// Client for the RFC 5802 section 5 example, past server-first.
    fn rfc5802_client() -> ScramClient {
        ScramClient::with_nonce(
            Hash::Sha1,
            user_pencil(),
            "fyko+d2lbbFgONRv9qkxdawL".to_owned(),
        )
    }

    const RFC5802_SERVER_FIRST: &str =
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";

    /// The RFC 5802 SCRAM-SHA-1 example exchange, message by message.
    #[test]
    fn rfc5802_example_exchange() {
        let cache = SaltedPasswordCache::new();
        let mut client = rfc5802_client();
        assert_eq!(
            client.client_first(),
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
        );

        let client_final = client
            .respond_blocking(RFC5802_SERVER_FIRST.as_bytes(), &cache)
            .unwrap();
        assert_eq!(
            client_final,
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );

        client
            .server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
            .unwrap();
        assert!(client.is_verified());
    }

    /// The RFC 7677 SCRAM-SHA-256 example exchange, message by message.
    #[test]
    fn rfc7677_example_exchange() {
        let cache = SaltedPasswordCache::new();
        let mut client = ScramClient::with_nonce(
            Hash::Sha256,
            user_pencil(),
            "rOprNGfwEbeRWgbNEkqO".to_owned(),
        );
        assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");

        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = client
            .respond_blocking(server_first.as_bytes(), &cache)
            .unwrap();
        assert_eq!(
            client_final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );

        client
            .server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(client.is_verified());
    }

    /// Two fresh clients draw different nonces of the expected length.
    #[test]
    fn fresh_nonces_differ() {
        let first = ScramClient::new(Hash::Sha1, user_pencil());
        let second = ScramClient::new(Hash::Sha1, user_pencil());
        assert_ne!(first.client_nonce, second.client_nonce);
        assert_eq!(first.client_nonce.len(), 24);
        assert!(!first.client_nonce.contains(','));
    }

    /// A username with `=` and `,` goes out escaped.
    #[test]
    fn username_is_escaped_in_client_first() {
        let credentials = Credentials {
            username: "a,b=c".to_owned(),
            password: "p".to_owned(),
        };
        let client = ScramClient::with_nonce(Hash::Sha1, credentials, "abc".to_owned());
        assert_eq!(client.client_first(), "n,,n=a=2Cb=3Dc,r=abc");
    }

    /// Error of a server-first message given to a fresh RFC 5802 client.
    fn server_first_error(message: &str) -> SaslError {
        rfc5802_client()
            .server_first(message.as_bytes())
            .expect_err("the server-first message should be rejected")
    }

    /// Each malformed server-first message gives its own clear error.
    #[test]
    fn malformed_server_first_rejected() {
        assert_eq!(
            server_first_error("s=QSXCR+Q6sek8bf92,i=4096"),
            SaslError::MissingAttribute {
                message: "s=QSXCR+Q6sek8bf92,i=4096".to_owned(),
                attribute: 'r',
            }
        );
        assert!(matches!(
            server_first_error("r=someoneelse123,s=QSXCR+Q6sek8bf92,i=4096"),
            SaslError::NonceMismatch { .. }
        ));
        // The server must add its own part; echoing ours is a mismatch.
        assert!(matches!(
            server_first_error("r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096"),
            SaslError::NonceMismatch { .. }
        ));
        assert_eq!(
            server_first_error("r=fyko+d2lbbFgONRv9qkxdawLX,s=!!notbase64!!,i=4096"),
            SaslError::Base64 {
                data: "!!notbase64!!".to_owned()
            }
        );
        assert!(matches!(
            server_first_error("r=fyko+d2lbbFgONRv9qkxdawLX,i=4096"),
            SaslError::MissingAttribute { attribute: 's', .. }
        ));
        assert_eq!(
            server_first_error("r=fyko+d2lbbFgONRv9qkxdawLX,s=QSXCR+Q6sek8bf92,i=0"),
            SaslError::Iterations {
                value: "0".to_owned(),
                max: MAX_ITERATIONS
            }
        );
        assert_eq!(
            server_first_error("r=fyko+d2lbbFgONRv9qkxdawLX,s=QSXCR+Q6sek8bf92,i=4000000000"),
            SaslError::Iterations {
                value: "4000000000".to_owned(),
                max: MAX_ITERATIONS
            }
        );
        assert!(matches!(
            server_first_error("r=fyko+d2lbbFgONRv9qkxdawLX,s=QSXCR+Q6sek8bf92,i=-5"),
            SaslError::Iterations { .. }
        ));
        assert_eq!(
            server_first_error("m=ext,r=fyko+d2lbbFgONRv9qkxdawLX,s=QSXCR+Q6sek8bf92,i=4096"),
            SaslError::MandatoryExtension
        );
        assert_eq!(server_first_error_bytes(&[0xff, 0xfe]), SaslError::NotUtf8);
    }

    fn server_first_error_bytes(message: &[u8]) -> SaslError {
        rfc5802_client()
            .server_first(message)
            .expect_err("the server-first message should be rejected")
    }

    /// Client past client-final in the RFC 5802 example.
    fn proved_client() -> ScramClient {
        let mut client = rfc5802_client();
        client
            .respond_blocking(RFC5802_SERVER_FIRST.as_bytes(), &SaltedPasswordCache::new())
            .unwrap();
        client
    }

    /// A wrong, garbled or missing server signature fails verification.
    #[test]
    fn bad_server_final_rejected() {
        // Valid base64, wrong signature (last character changed).
        assert_eq!(
            proved_client().server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKA="),
            Err(SaslError::ServerSignature)
        );
        // A signature of the wrong length.
        assert_eq!(
            proved_client().server_final(b"v=AAAA"),
            Err(SaslError::ServerSignature)
        );
        assert_eq!(
            proved_client().server_final(b"v=***"),
            Err(SaslError::Base64 {
                data: "***".to_owned()
            })
        );
        assert!(matches!(
            proved_client().server_final(b"x=1"),
            Err(SaslError::MissingAttribute { attribute: 'v', .. })
        ));
        assert_eq!(
            proved_client().server_final(b"e=invalid-proof"),
            Err(SaslError::ServerError("invalid-proof".to_owned()))
        );
        let mut client = proved_client();
        assert!(!client.is_verified());
        assert!(
            client
                .server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
                .is_ok()
        );
    }

    /// Messages in the wrong order are rejected instead of signed.
    #[test]
    fn out_of_order_messages_rejected() {
        assert!(matches!(
            rfc5802_client().server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="),
            Err(SaslError::OutOfOrder {
                step: "server-final",
                ..
            })
        ));
        assert!(matches!(
            rfc5802_client().client_final(&[0; 20]),
            Err(SaslError::OutOfOrder {
                step: "client-final",
                ..
            })
        ));
        assert!(matches!(
            proved_client().server_first(RFC5802_SERVER_FIRST.as_bytes()),
            Err(SaslError::OutOfOrder {
                step: "server-first",
                ..
            })
        ));
    }
}
