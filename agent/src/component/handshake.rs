//! The XEP-0114 handshake: the digest the component sends, the stream id it
//! is computed from, and the meaning of the server's reply.
//!
//! XEP-0114 section 3 defines the digest as the SHA-1 of the stream id
//! (the `id` of the server's stream header) followed by the shared secret,
//! written as 40 lowercase hex digits. The server replies with an empty
//! `<handshake/>`, or closes the stream with a `<stream:error/>`. Prosody
//! 0.12 uses `not-authorized` for a wrong secret, `host-unknown` for a
//! domain without a `Component` entry, and `conflict` when that component
//! is already connected.

use sha1::{Digest, Sha1};

use crate::error::BotError;
use crate::xml::{Element, NS_COMPONENT, NS_STREAM, Scope};

/// Computes the handshake digest for `stream_id` and `secret`.
pub fn digest(stream_id: &str, secret: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(stream_id.as_bytes());
    hasher.update(secret.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Reads the `id` attribute of the server's `<stream:stream>` start tag.
pub fn stream_id(header: &str) -> Result<String, BotError> {
    // The start tag alone is not a complete element; closing it lets the
    // element parser read its attributes.
    let element = Element::parse(
        &format!("{header}</stream:stream>"),
        &Scope::component_stream(),
    )?;
    match element.attr("id") {
        Some(id) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err(BotError::Unexpected {
            expected: "an `id` in the component stream header",
            got: format!("a header without one: {header}"),
        }),
    }
}

/// Checks the server's reply to `<handshake>`. An empty `<handshake/>` is
/// success, and a stream error or any other element is an error.
pub fn check_reply(reply: &Element, domain: &str) -> Result<(), BotError> {
    if reply.is("handshake", NS_COMPONENT) {
        return Ok(());
    }
    if reply.is("error", NS_STREAM) {
        let condition = reply
            .first_child_name()
            .unwrap_or("undefined-condition")
            .to_owned();
        return Err(BotError::ComponentRejected {
            domain: domain.to_owned(),
            condition,
        });
    }
    Err(BotError::Unexpected {
        expected: "<handshake/>",
        got: format!("<{} xmlns='{}'>", reply.name, reply.ns),
    })
}

/// Next step for the operator after the server rejected the handshake with
/// `condition`.
pub fn rejection_hint(condition: &str) -> &'static str {
    match condition {
        "not-authorized" => "check that the secret matches the server's component_secret",
        "host-unknown" | "improper-addressing" => {
            "check that the server defines a Component for this domain"
        }
        "conflict" => {
            "another component is connected for this domain; stop it or use another domain"
        }
        _ => "see the server's log for the reason",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest for XEP-0114's example stream id. The XEP does not state
    /// the secret behind its example digest, so the expected value is
    /// `printf '3BF96D32sharedsecret' | sha1sum` (GNU coreutils).
    #[test]
    fn digest_matches_sha1sum() {
        assert_eq!(
            digest("3BF96D32", "sharedsecret"),
            "3b6c216d9b55a7b4f3e82ab3e10cb81569f115d4"
        );
    }

    /// The digest is 40 lowercase hex digits, also for an empty secret.
    #[test]
    fn digest_is_lowercase_hex() {
        let value = digest("id", "");
        assert_eq!(value.len(), 40);
        assert!(
            value
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
        // SHA-1 of "id" from sha1sum.
        assert_eq!(value, "87ea5dfc8b8e384d848979496e706390b497e547");
    }

    /// The id comes from the server's header, prefixes and all.
    #[test]
    fn stream_id_from_header() {
        let header = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
                      xmlns='jabber:component:accept' from='flood.example' id='3BF96D32'>";
        assert_eq!(stream_id(header).unwrap(), "3BF96D32");
    }

    /// A header without an id, or with an empty one, is a protocol error.
    #[test]
    fn stream_id_missing() {
        for header in [
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept'>",
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' id=''>",
        ] {
            let err = stream_id(header).unwrap_err();
            assert!(
                matches!(err, BotError::Unexpected { .. }),
                "{header}: {err}"
            );
            assert!(err.to_string().contains("`id`"), "{err}");
        }
    }

    /// An empty handshake element is success.
    #[test]
    fn reply_success() {
        let reply = Element::parse("<handshake/>", &Scope::component_stream()).unwrap();
        assert!(check_reply(&reply, "flood.example").is_ok());
    }

    /// A stream error names the condition, the domain and the fix.
    #[test]
    fn reply_not_authorized() {
        let reply = Element::parse(
            "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
            &Scope::component_stream(),
        )
        .unwrap();
        let err = check_reply(&reply, "flood.example").unwrap_err();
        assert!(matches!(
            &err,
            BotError::ComponentRejected { condition, .. } if condition == "not-authorized"
        ));
        let text = err.to_string();
        assert!(text.contains("flood.example"), "{text}");
        assert!(text.contains("<not-authorized/>"), "{text}");
        assert!(text.contains("secret"), "{text}");
        assert_eq!(err.kind(), crate::error::FailureKind::Sasl);
    }

    /// Any other element, such as a c2s SASL reply, is a protocol error.
    #[test]
    fn reply_unexpected() {
        let reply = Element::parse(
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
            &Scope::component_stream(),
        )
        .unwrap();
        let err = check_reply(&reply, "flood.example").unwrap_err();
        assert!(matches!(err, BotError::Unexpected { .. }), "{err}");
        assert_eq!(err.kind(), crate::error::FailureKind::Protocol);
    }
}
