//! XML handling: cutting a c2s byte stream into stanzas ([`framing`]) and
//! parsing one stanza into an element tree ([`element`]).

pub mod element;
pub mod framing;

pub use element::{Element, NS_CLIENT, NS_COMPONENT, NS_STREAM, ParseError, Scope};
pub use framing::{DEFAULT_MAX_STANZA_BYTES, Frame, FramingError, StreamSplitter};

/// Escapes text for use in character data or a quoted attribute value.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(text)
}
