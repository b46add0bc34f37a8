//! SASL over an XMPP stream (RFC 6120 section 6).
//!
//! The client sends `<auth mechanism='M'>` with the base64 initial response
//! (`=` when it is empty), replies to each `<challenge/>` with a `<response/>`,
//! and ends on `<success/>` or `<failure/>`. With SCRAM, Prosody sends the
//! server-final message inside `<success/>`; other servers send it as a last
//! challenge and expect an empty response. Both are accepted, and either way
//! the server's signature must check out before the login counts.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Credentials, Hash, Mechanism, SaltedPasswordCache, SaslError, ScramClient, plain};
use crate::error::BotError;
use crate::session::NS_SASL;
use crate::transport::{StreamEvent, Transport};
use crate::xml::Element;

/// Most challenges one login accepts. SCRAM needs two; more means the
/// server is looping.
const MAX_CHALLENGES: usize = 4;

/// Mechanism and account of one login.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    pub mechanism: Mechanism,
    /// The account; `None` only with [`Mechanism::Anonymous`].
    pub credentials: Option<&'a Credentials>,
    /// Salted passwords of earlier SCRAM logins.
    pub cache: &'a SaltedPasswordCache,
}

/// Mechanism-specific state between messages.
enum Exchange {
    /// ANONYMOUS and PLAIN: one message, no challenge expected.
    Single,
    Scram(Box<ScramClient>),
}

/// Runs the SASL exchange on a stream whose `features` were just read.
/// The stream must be restarted afterwards.
pub async fn authenticate(
    transport: &mut Transport,
    features: &Element,
    login: Login<'_>,
) -> Result<(), BotError> {
    let offered = offered_mechanisms(features);
    let mechanism = login.mechanism;
    if !offered.iter().any(|name| name == mechanism.name()) {
        return Err(BotError::SaslNotOffered {
            mechanism: mechanism.name(),
            offered: if offered.is_empty() {
                "none".to_owned()
            } else {
                offered.join(", ")
            },
        });
    }

    let credentials = match (mechanism, login.credentials) {
        (Mechanism::Anonymous, _) => None,
        (_, Some(credentials)) => Some(credentials),
        (_, None) => {
            return Err(BotError::Sasl {
                condition: format!("{mechanism} needs an account, but the bot has none"),
            });
        }
    };
    let (initial, mut exchange) = match (mechanism, credentials) {
        (Mechanism::Plain, Some(credentials)) => {
            (plain::initial_response(credentials), Exchange::Single)
        }
        (Mechanism::ScramSha1 | Mechanism::ScramSha256, Some(credentials)) => {
            let hash = if mechanism == Mechanism::ScramSha1 {
                Hash::Sha1
            } else {
                Hash::Sha256
            };
            let client = ScramClient::new(hash, credentials.clone());
            (
                client.client_first().into_bytes(),
                Exchange::Scram(Box::new(client)),
            )
        }
        // ANONYMOUS sends an empty trace token (RFC 4505 allows it).
        _ => (Vec::new(), Exchange::Single),
    };

    transport
        .send(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='{}'>{}</auth>",
            mechanism.name(),
            encode(&initial)
        ))
        .await?;

    for _ in 0..=MAX_CHALLENGES {
        let answer = next_element(transport).await?;
        if answer.is("challenge", NS_SASL) {
            let data = decode(&answer.text)?;
            let response = match &mut exchange {
                Exchange::Single => {
                    return Err(BotError::Unexpected {
                        expected: "SASL <success/>",
                        got: format!("a <challenge/> for {mechanism}, which has none"),
                    });
                }
                Exchange::Scram(client) => respond_scram(client, &data, login.cache).await?,
            };
            transport
                .send(&format!(
                    "<response xmlns='{NS_SASL}'>{}</response>",
                    encode(&response)
                ))
                .await?;
        } else if answer.is("success", NS_SASL) {
            if let Exchange::Scram(client) = &mut exchange
                && !client.is_verified()
            {
                let data = decode(&answer.text)?;
                client.server_final(&data)?;
            }
            return Ok(());
        } else if answer.is("failure", NS_SASL) {
            // RFC 6120 section 6.5: the condition is the failure's first
            // child; `<text/>` may come first, so skip it.
            let condition = answer
                .children
                .iter()
                .find(|child| child.name != "text")
                .map_or("not-authorized", |child| child.name.as_str())
                .to_owned();
            return Err(BotError::Sasl { condition });
        } else {
            return Err(BotError::Unexpected {
                expected: "SASL <challenge/>, <success/> or <failure/>",
                got: format!("<{} xmlns='{}'>", answer.name, answer.ns),
            });
        }
    }
    Err(BotError::Sasl {
        condition: format!("server sent more than {MAX_CHALLENGES} challenges"),
    })
}

/// Mechanism names listed in `<mechanisms/>`, in the server's order.
pub fn offered_mechanisms(features: &Element) -> Vec<String> {
    features
        .child("mechanisms", NS_SASL)
        .map(|mechanisms| {
            mechanisms
                .children_named("mechanism", NS_SASL)
                .map(|m| m.text.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Builds the response to the server-first message, or checks the
/// server-final message when the server sends it as a challenge.
async fn respond_scram(
    client: &mut ScramClient,
    data: &[u8],
    cache: &SaltedPasswordCache,
) -> Result<Vec<u8>, SaslError> {
    if client.is_verified() {
        return Err(SaslError::OutOfOrder {
            step: "after server-final",
            message: String::from_utf8_lossy(data).into_owned(),
        });
    }
    // A `v=` challenge is the server-final message; the response is empty.
    if data.starts_with(b"v=") || data.starts_with(b"e=") {
        client.server_final(data)?;
        return Ok(Vec::new());
    }
    let params = client.server_first(data)?;
    let salted = cache
        .salt_password_async(
            client.hash(),
            client.password(),
            &params.salt,
            params.iterations,
        )
        .await;
    Ok(client.client_final(&salted)?.into_bytes())
}

/// Base64 of SASL data, `=` for empty data (RFC 6120 section 6.4.2).
fn encode(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_owned()
    } else {
        BASE64.encode(data)
    }
}

/// Decodes the base64 text of a challenge or success; empty text and `=`
/// are both empty data.
fn decode(text: &str) -> Result<Vec<u8>, SaslError> {
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    BASE64.decode(text).map_err(|_| SaslError::Base64 {
        data: text.to_owned(),
    })
}

/// Reads the next element of the negotiation.
async fn next_element(transport: &mut Transport) -> Result<Element, BotError> {
    match transport.next().await? {
        StreamEvent::Stanza(element) => Ok(element),
        StreamEvent::End => Err(BotError::Closed),
        StreamEvent::Header => Err(BotError::Unexpected {
            expected: "SASL <success/>",
            got: "a stream header".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Scope;

    /// Mechanisms are read in order, and a missing list gives none.
    #[test]
    fn offered_mechanisms_in_order() {
        let features = Element::parse(
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism> PLAIN </mechanism>\
             </mechanisms></stream:features>",
            &Scope::client_stream(),
        )
        .unwrap();
        assert_eq!(offered_mechanisms(&features), ["SCRAM-SHA-1", "PLAIN"]);

        let bare = Element::parse("<stream:features/>", &Scope::client_stream()).unwrap();
        assert!(offered_mechanisms(&bare).is_empty());
    }

    /// Empty data is `=` on the wire, and both empty forms decode to nothing.
    #[test]
    fn empty_data_round_trip() {
        assert_eq!(encode(b""), "=");
        assert_eq!(encode(b"n,,"), "biws");
        assert_eq!(decode("=").unwrap(), b"");
        assert_eq!(decode("  ").unwrap(), b"");
        assert_eq!(decode("biws").unwrap(), b"n,,");
        assert!(matches!(decode("%%"), Err(SaslError::Base64 { .. })));
    }
}
