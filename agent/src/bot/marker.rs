//! The marker each bot puts at the start of its message bodies.
//!
//! Format: `xl1 NICK SEQ SENT_MICROS` followed by padding up to the body
//! size. NICK identifies the sender, SEQ counts its messages from 0, and
//! SENT_MICROS is the agent's wall clock at the send in Unix microseconds.
//! A bot recognises its own reflection by the NICK in the marker together
//! with the occupant nickname in the message's `from`.

/// First word of every marker, with a format version.
const TAG: &str = "xl1";
/// Byte used to pad bodies to the requested size.
const PADDING: char = '.';

/// Fields carried by a marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker<'a> {
    pub nick: &'a str,
    pub seq: u64,
    pub sent_unix_micros: i64,
}

impl Marker<'_> {
    /// Renders the body: the marker padded to at least `body_bytes` bytes.
    /// A `body_bytes` smaller than the marker yields just the marker.
    pub fn to_body(&self, body_bytes: usize) -> String {
        let mut body = format!(
            "{TAG} {} {} {} ",
            self.nick, self.seq, self.sent_unix_micros
        );
        let padding = body_bytes.saturating_sub(body.len());
        body.extend(std::iter::repeat_n(PADDING, padding));
        body
    }

    /// Reads the marker from a body; `None` when the body carries none.
    pub fn parse(body: &str) -> Option<Marker<'_>> {
        let mut words = body.split(' ');
        if words.next()? != TAG {
            return None;
        }
        let nick = words.next()?;
        let seq = words.next()?.parse().ok()?;
        let sent_unix_micros = words.next()?.parse().ok()?;
        Some(Marker {
            nick,
            seq,
            sent_unix_micros,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rendered body parses back to the same marker and has the exact size.
    #[test]
    fn round_trip_with_padding() {
        let marker = Marker {
            nick: "lobby-000042",
            seq: 7,
            sent_unix_micros: 1_700_000_000_123_456,
        };
        let body = marker.to_body(200);
        assert_eq!(body.len(), 200);
        assert_eq!(Marker::parse(&body), Some(marker));
    }

    /// A size below the marker length keeps the whole marker.
    #[test]
    fn small_size_keeps_marker() {
        let marker = Marker {
            nick: "g-000001",
            seq: 0,
            sent_unix_micros: 5,
        };
        assert_eq!(Marker::parse(&marker.to_body(1)), Some(marker));
    }

    /// Foreign or damaged bodies carry no marker.
    #[test]
    fn rejects_foreign_bodies() {
        for body in [
            "",
            "hello",
            "xl1",
            "xl1 nick",
            "xl1 nick x 5 ",
            "xl1 nick 1 y ",
            "xl2 nick 1 2 ",
        ] {
            assert_eq!(Marker::parse(body), None, "body {body:?}");
        }
    }
}
