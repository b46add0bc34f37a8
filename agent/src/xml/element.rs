//! A small owned element tree for parsed stanzas.
//!
//! quick-xml reads one stanza (a complete element cut from the stream) and
//! [`Element::parse`] builds the tree. Namespace prefixes are resolved here
//! rather than by quick-xml's `NsReader`, because a stanza cut from a c2s
//! stream inherits declarations from the stream header: `<stream:features>`
//! uses the `stream` prefix and `<message>` the default `jabber:client`
//! namespace, neither declared on the stanza itself. The caller passes those
//! inherited bindings as a [`Scope`].

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};

/// Namespace of client stanzas, the default of every c2s stream.
pub const NS_CLIENT: &str = "jabber:client";
/// Namespace of stanzas on an XEP-0114 component stream, its default.
pub const NS_COMPONENT: &str = "jabber:component:accept";
/// Namespace bound to the `stream` prefix on every stream.
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";

/// Namespace bindings in effect at some point of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Namespace of unprefixed element names, if any.
    default: Option<String>,
    /// Prefix to namespace bindings, innermost last so lookups search backwards.
    prefixes: Vec<(String, String)>,
}

impl Scope {
    /// Bindings a stanza inherits from an RFC 6120 stream header:
    /// default `jabber:client` and `stream:` for the streams namespace.
    pub fn client_stream() -> Self {
        Scope {
            default: Some(NS_CLIENT.to_owned()),
            prefixes: vec![("stream".to_owned(), NS_STREAM.to_owned())],
        }
    }

    /// Bindings a stanza inherits from an XEP-0114 component stream header:
    /// default `jabber:component:accept` and `stream:` as on c2s.
    pub fn component_stream() -> Self {
        Scope {
            default: Some(NS_COMPONENT.to_owned()),
            prefixes: vec![("stream".to_owned(), NS_STREAM.to_owned())],
        }
    }

    fn lookup(&self, prefix: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, ns)| ns.as_str())
    }
}

/// One element with its resolved namespace, attributes, children and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Local name without prefix.
    pub name: String,
    /// Resolved namespace URI; empty when the element has none.
    pub ns: String,
    /// Attributes as (qualified name, unescaped value), namespace
    /// declarations excluded.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Concatenated character data directly inside this element, unescaped.
    pub text: String,
}

/// Reasons a stanza is not a well-formed single element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("XML syntax error: {0}")]
    Syntax(String),
    #[error("the input contains no element")]
    Empty,
    #[error("the input contains more than one top-level element")]
    MultipleRoots,
    #[error("text outside of the element")]
    TextOutsideRoot,
    #[error("unbound namespace prefix `{prefix}`")]
    UnboundPrefix { prefix: String },
    #[error("unknown entity `&{name};`")]
    UnknownEntity { name: String },
    #[error("{construct} is not allowed in a stanza")]
    Forbidden { construct: &'static str },
}

impl From<quick_xml::Error> for ParseError {
    fn from(err: quick_xml::Error) -> Self {
        ParseError::Syntax(err.to_string())
    }
}

impl From<quick_xml::events::attributes::AttrError> for ParseError {
    fn from(err: quick_xml::events::attributes::AttrError) -> Self {
        ParseError::Syntax(err.to_string())
    }
}

impl From<quick_xml::encoding::EncodingError> for ParseError {
    fn from(err: quick_xml::encoding::EncodingError) -> Self {
        ParseError::Syntax(err.to_string())
    }
}

impl Element {
    /// Parses exactly one element, resolving prefixes against `scope` plus
    /// the declarations found inside the element.
    pub fn parse(xml: &str, scope: &Scope) -> Result<Element, ParseError> {
        let mut reader = quick_xml::Reader::from_str(xml);
        reader.config_mut().check_end_names = true;

        // Open elements with the scope each one established.
        let mut stack: Vec<(Element, Scope)> = Vec::new();
        let mut root: Option<Element> = None;

        loop {
            let event = reader.read_event()?;
            match event {
                Event::Start(start) | Event::Empty(start) if root.is_some() => {
                    let _ = start;
                    return Err(ParseError::MultipleRoots);
                }
                Event::Start(start) => {
                    let parent = stack.last().map_or(scope, |(_, s)| s);
                    let (element, inner) = open_element(&start, parent)?;
                    stack.push((element, inner));
                }
                Event::Empty(start) => {
                    let parent = stack.last().map_or(scope, |(_, s)| s);
                    let (element, _) = open_element(&start, parent)?;
                    attach(&mut stack, &mut root, element);
                }
                Event::End(_) => {
                    // check_end_names guarantees the names match, and a
                    // stray end tag is a syntax error inside quick-xml.
                    if let Some((element, _)) = stack.pop() {
                        attach(&mut stack, &mut root, element);
                    }
                }
                Event::Text(text) => {
                    let text = text.decode()?;
                    push_text(&mut stack, &text)?;
                }
                Event::CData(cdata) => {
                    let text = cdata.decode()?;
                    push_text(&mut stack, &text)?;
                }
                Event::GeneralRef(reference) => {
                    let resolved = resolve_reference(&reference)?;
                    push_text(&mut stack, &resolved)?;
                }
                Event::Comment(_) => {
                    return Err(ParseError::Forbidden {
                        construct: "a comment",
                    });
                }
                Event::DocType(_) => {
                    return Err(ParseError::Forbidden {
                        construct: "a DOCTYPE",
                    });
                }
                Event::PI(_) | Event::Decl(_) => {
                    return Err(ParseError::Forbidden {
                        construct: "a processing instruction",
                    });
                }
                Event::Eof => break,
            }
        }

        if !stack.is_empty() {
            return Err(ParseError::Syntax("unclosed element".to_owned()));
        }
        root.ok_or(ParseError::Empty)
    }

    /// Value of the attribute with this qualified name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// First child with this local name and namespace.
    pub fn child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(name, ns))
    }

    /// Iterates over the children with this local name and namespace.
    pub fn children_named<'a>(
        &'a self,
        name: &'a str,
        ns: &'a str,
    ) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.is(name, ns))
    }

    /// True when the element has this local name and namespace.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// Text of the first child with this name and namespace.
    pub fn child_text(&self, name: &str, ns: &str) -> Option<&str> {
        self.child(name, ns).map(|c| c.text.as_str())
    }

    /// Name of the first child element, which for `<failure/>`, stream
    /// errors and stanza errors is the defined condition.
    pub fn first_child_name(&self) -> Option<&str> {
        self.children.first().map(|c| c.name.as_str())
    }
}

/// Builds an element from a start tag and returns the scope inside it.
fn open_element(start: &BytesStart<'_>, parent: &Scope) -> Result<(Element, Scope), ParseError> {
    let mut scope = parent.clone();
    let mut attrs = Vec::new();

    // Namespace declarations apply to the element itself, so they are
    // collected before the element's own prefix is resolved.
    for attr in start.attributes() {
        let attr = attr?;
        let key = std::str::from_utf8(attr.key.as_ref())
            .map_err(|_| ParseError::Syntax("attribute name is not UTF-8".to_owned()))?
            .to_owned();
        let value = attr.unescape_value()?.into_owned();
        if key == "xmlns" {
            scope.default = if value.is_empty() { None } else { Some(value) };
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            scope.prefixes.push((prefix.to_owned(), value));
        } else {
            attrs.push((key, value));
        }
    }

    let qname = std::str::from_utf8(start.name().as_ref())
        .map_err(|_| ParseError::Syntax("element name is not UTF-8".to_owned()))?
        .to_owned();
    let (ns, name) = match qname.split_once(':') {
        Some((prefix, local)) => {
            let ns = scope
                .lookup(prefix)
                .ok_or_else(|| ParseError::UnboundPrefix {
                    prefix: prefix.to_owned(),
                })?;
            (ns.to_owned(), local.to_owned())
        }
        None => (scope.default.clone().unwrap_or_default(), qname),
    };

    let element = Element {
        name,
        ns,
        attrs,
        children: Vec::new(),
        text: String::new(),
    };
    Ok((element, scope))
}

/// Adds a finished element to its parent, or makes it the root.
fn attach(stack: &mut [(Element, Scope)], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some((parent, _)) => parent.children.push(element),
        None => *root = Some(element),
    }
}

/// Appends character data to the open element; whitespace outside the root
/// is tolerated, anything else there is an error.
fn push_text(stack: &mut [(Element, Scope)], text: &str) -> Result<(), ParseError> {
    match stack.last_mut() {
        Some((element, _)) => {
            element.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(ParseError::TextOutsideRoot),
    }
}

/// Resolves `&name;`: the five predefined XML entities and character references.
fn resolve_reference(
    reference: &quick_xml::events::BytesRef<'_>,
) -> Result<Cow<'static, str>, ParseError> {
    if let Some(ch) = reference.resolve_char_ref()? {
        return Ok(Cow::Owned(ch.to_string()));
    }
    let name = reference.decode()?;
    let resolved = match name.as_ref() {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => {
            return Err(ParseError::UnknownEntity {
                name: name.into_owned(),
            });
        }
    };
    Ok(Cow::Borrowed(resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<Element, ParseError> {
        Element::parse(xml, &Scope::client_stream())
    }

    /// A groupchat message parses into names, namespaces, attributes and text.
    #[test]
    fn parses_message_with_inherited_namespace() {
        let message = parse(
            "<message from='room@conf/nick' type='groupchat'><body>a &lt; b &amp; c &#x2713;</body>\
             <delay xmlns='urn:xmpp:delay' stamp='2024'/></message>",
        )
        .unwrap();
        assert!(message.is("message", NS_CLIENT));
        assert_eq!(message.attr("from"), Some("room@conf/nick"));
        assert_eq!(message.attr("type"), Some("groupchat"));
        assert_eq!(message.attr("to"), None);
        assert_eq!(message.child_text("body", NS_CLIENT), Some("a < b & c ✓"));
        assert!(message.child("delay", "urn:xmpp:delay").is_some());
        assert!(message.child("delay", NS_CLIENT).is_none());
    }

    /// The `stream` prefix resolves through the inherited scope.
    #[test]
    fn resolves_stream_prefix() {
        let features = parse(
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
             <mechanism>ANONYMOUS</mechanism></mechanisms></stream:features>",
        )
        .unwrap();
        assert!(features.is("features", NS_STREAM));
        let mechanisms = features
            .child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl")
            .unwrap();
        let names: Vec<_> = mechanisms
            .children_named("mechanism", "urn:ietf:params:xml:ns:xmpp-sasl")
            .map(|m| m.text.as_str())
            .collect();
        assert_eq!(names, ["ANONYMOUS"]);
    }

    /// Prefixes declared on the element itself override inherited ones.
    #[test]
    fn local_declarations_apply_to_the_element() {
        let element = Element::parse(
            "<s:error xmlns:s='urn:other'><x:y xmlns:x='urn:x'/></s:error>",
            &Scope {
                default: None,
                prefixes: Vec::new(),
            },
        )
        .unwrap();
        assert!(element.is("error", "urn:other"));
        assert!(element.children[0].is("y", "urn:x"));
        assert_eq!(element.first_child_name(), Some("y"));
    }

    /// CDATA contributes text verbatim.
    #[test]
    fn cdata_is_text() {
        let body = parse("<body><![CDATA[<b>&amp;</b>]]></body>").unwrap();
        assert_eq!(body.text, "<b>&amp;</b>");
    }

    /// Bad input yields the matching error, never a panic.
    #[test]
    fn rejects_bad_input() {
        let cases: &[(&str, ParseError)] = &[
            ("", ParseError::Empty),
            ("   ", ParseError::Empty),
            ("<a/><b/>", ParseError::MultipleRoots),
            ("<a></a><b></b>", ParseError::MultipleRoots),
            ("text<a/>", ParseError::TextOutsideRoot),
            (
                "<p:a/>",
                ParseError::UnboundPrefix {
                    prefix: "p".to_owned(),
                },
            ),
            (
                "<a>&nbsp;</a>",
                ParseError::UnknownEntity {
                    name: "nbsp".to_owned(),
                },
            ),
            (
                "<a><!-- c --></a>",
                ParseError::Forbidden {
                    construct: "a comment",
                },
            ),
            (
                "<a><?pi x?></a>",
                ParseError::Forbidden {
                    construct: "a processing instruction",
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input).unwrap_err(), *expected, "input {input:?}");
        }
        for input in ["<a>", "<a></b>", "<a b='1' b='2'/>", "<a b=1/>", "</a>"] {
            assert!(
                matches!(parse(input), Err(ParseError::Syntax(_))),
                "input {input:?}: {:?}",
                parse(input)
            );
        }
    }
}
