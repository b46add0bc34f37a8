//! Incremental splitter for an RFC 6120 client-to-server XML stream.
//!
//! A c2s stream is one long XML document: `<stream:stream …>` opens it, each
//! stanza is a direct child of that element, and `</stream:stream>` ends it.
//! TCP delivers this as arbitrary byte chunks, so [`StreamSplitter`] buffers
//! bytes and cuts them into [`Frame`]s without parsing the content:
//!
//! 1. Before the header it skips whitespace and one XML declaration
//!    (`<?xml …?>`), then returns the `<stream:stream …>` start tag.
//! 2. After the header it tracks element depth. A start tag at depth 0 opens
//!    a stanza, and the matching end tag (or a self-closing tag) closes it.
//!    Whitespace between stanzas is a keepalive and is dropped.
//! 3. An end tag at depth 0 ends the stream.
//!
//! The scanner keeps its state between calls, so every byte is examined once
//! however the stream is chunked. It understands quoted attribute values
//! (which may contain `>` and `/>`) and CDATA sections (which may contain
//! `<`). Comments, DOCTYPE declarations and processing instructions are
//! forbidden inside an XMPP stream (RFC 6120 section 11.1), so they are
//! errors. Running out of bytes is not an error: [`StreamSplitter::next_frame`]
//! returns `Ok(None)` and the caller reads more.
//!
//! Memory stays bounded by the stanza limit. A unit longer than
//! `max_stanza_bytes` is an error as soon as the scanner reaches the byte
//! past the limit. Bytes before the current unit (finished frames and
//! whitespace keepalives) are dropped before more are read. A caller that
//! alternates [`StreamSplitter::push`] of at most `chunk` bytes with
//! [`StreamSplitter::next_frame`] therefore never buffers more than
//! `max_stanza_bytes + chunk` bytes.

/// Default bound on one stanza (and on the stream header), in bytes. It
/// matches Prosody 0.12's default `c2s_stanza_size_limit` of 256 KiB.
pub const DEFAULT_MAX_STANZA_BYTES: usize = 256 * 1024;

/// One unit cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The `<stream:stream …>` start tag, without any XML declaration.
    Header(String),
    /// One complete top-level element, from its `<` to its final `>`.
    Stanza(String),
    /// The closing `</stream:stream>` tag.
    End,
}

/// Violation of the stream syntax that no further bytes can repair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("stanza exceeds the maximum of {max} bytes")]
    TooLarge { max: usize },
    #[error("XML comments are not allowed in an XMPP stream")]
    Comment,
    #[error("DOCTYPE declarations are not allowed in an XMPP stream")]
    Doctype,
    #[error("processing instructions are not allowed in an XMPP stream")]
    ProcessingInstruction,
    #[error("expected <stream:stream>, found <{name}>")]
    NotAStreamHeader { name: String },
    #[error("text outside of any stanza: {text:?}")]
    TextAtStreamLevel { text: String },
    #[error("malformed markup: {detail}")]
    Malformed { detail: &'static str },
    #[error("stream content is not valid UTF-8")]
    InvalidUtf8,
}

/// Lexer position inside the markup, kept between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Character data between tags (or whitespace between stanzas).
    Text,
    /// Just after `<`, the next byte decides what follows.
    Open,
    /// Inside a start tag; `slash` records whether the last non-space byte
    /// was `/`, which makes the tag self-closing if `>` follows.
    StartTag { slash: bool },
    /// Inside a quoted attribute value of a start tag.
    Quoted { quote: u8 },
    /// Inside an end tag.
    EndTag,
    /// Inside `<? … ?>`; only the XML declaration before the header is legal.
    Declaration,
    /// After `<!`, waiting for enough bytes to tell CDATA from a comment.
    Bang,
    /// Inside `<![CDATA[ … ]]>`.
    CData,
}

/// Kind of a finished tag, which decides how the element depth changes.
enum TagKind {
    Start { self_closing: bool },
    End,
}

/// Buffer plus scanner state for one c2s stream.
#[derive(Debug)]
pub struct StreamSplitter {
    /// Received bytes not yet returned as a frame.
    buf: Vec<u8>,
    /// Offset in `buf` up to which the scanner has looked.
    pos: usize,
    /// Offset in `buf` where the current unit (tag or stanza) starts.
    unit_start: usize,
    /// Offset of the `<` of the tag that is being scanned.
    tag_start: usize,
    lex: Lex,
    /// Open elements inside the current stanza; 0 between stanzas.
    depth: usize,
    header_seen: bool,
    ended: bool,
    max_stanza_bytes: usize,
}

impl Default for StreamSplitter {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_STANZA_BYTES)
    }
}

impl StreamSplitter {
    /// Creates a splitter that rejects stanzas longer than `max_stanza_bytes`.
    pub fn new(max_stanza_bytes: usize) -> Self {
        StreamSplitter {
            buf: Vec::new(),
            pos: 0,
            unit_start: 0,
            tag_start: 0,
            lex: Lex::Text,
            depth: 0,
            header_seen: false,
            ended: false,
            max_stanza_bytes,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        let needed = self.buf.len() + bytes.len();
        if needed > self.buf.capacity() {
            // Grow by doubling as `Vec` does, but never reserve more than the
            // stanza limit plus this push, so that a stanza close to the limit
            // does not make the buffer allocate twice the limit.
            let target = self
                .buf
                .capacity()
                .saturating_mul(2)
                .min(self.max_stanza_bytes.saturating_add(bytes.len()))
                .max(needed);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as frames. After
    /// [`StreamSplitter::next_frame`] returned `Ok(None)` these are exactly
    /// the bytes of an unfinished unit.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes allocated for the buffer, which the stanza limit bounds.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Largest stanza this splitter accepts, in bytes.
    pub fn max_stanza_bytes(&self) -> usize {
        self.max_stanza_bytes
    }

    /// Prepares for a new stream header on the same connection, as after
    /// SASL success (RFC 6120 section 6.4.6). Buffered bytes are kept.
    pub fn restart(&mut self) {
        self.pos = 0;
        self.unit_start = 0;
        self.lex = Lex::Text;
        self.depth = 0;
        self.header_seen = false;
        self.ended = false;
    }

    /// Cuts the next frame from the buffer. `Ok(None)` means more bytes are
    /// needed; after [`Frame::End`] it always returns `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        while !self.ended && self.pos < self.buf.len() {
            let byte = self.buf[self.pos];
            self.pos += 1;
            if let Some(frame) = self.step(byte)? {
                return Ok(Some(frame));
            }
        }
        if self.pos - self.unit_start > self.max_stanza_bytes {
            return Err(FramingError::TooLarge {
                max: self.max_stanza_bytes,
            });
        }
        if !self.ended {
            self.drop_scanned_prefix();
        }
        Ok(None)
    }

    /// Removes the bytes before the current unit, which belong to no frame
    /// (whitespace keepalives or an XML declaration), so that a server that
    /// sends only whitespace cannot grow the buffer.
    fn drop_scanned_prefix(&mut self) {
        if self.unit_start == 0 {
            return;
        }
        self.buf.drain(..self.unit_start);
        self.pos -= self.unit_start;
        self.tag_start = self.tag_start.saturating_sub(self.unit_start);
        self.unit_start = 0;
    }

    /// Advances the lexer by one byte, which sits at `self.pos - 1`.
    fn step(&mut self, byte: u8) -> Result<Option<Frame>, FramingError> {
        let at = self.pos - 1;
        if at - self.unit_start >= self.max_stanza_bytes {
            return Err(FramingError::TooLarge {
                max: self.max_stanza_bytes,
            });
        }
        match self.lex {
            Lex::Text => {
                if byte == b'<' {
                    self.tag_start = at;
                    self.lex = Lex::Open;
                } else if self.depth == 0 {
                    // Between stanzas only whitespace keepalives are legal.
                    if !byte.is_ascii_whitespace() {
                        return Err(self.text_at_stream_level(at));
                    }
                    self.unit_start = self.pos;
                }
            }
            Lex::Open => match byte {
                b'/' => self.lex = Lex::EndTag,
                b'?' => self.lex = Lex::Declaration,
                b'!' => self.lex = Lex::Bang,
                b'>' | b'<' => {
                    return Err(FramingError::Malformed {
                        detail: "empty tag",
                    });
                }
                _ if byte.is_ascii_whitespace() => {
                    return Err(FramingError::Malformed {
                        detail: "whitespace after `<`",
                    });
                }
                _ => {
                    if self.depth == 0 {
                        // A new top-level unit begins at this tag.
                        self.unit_start = self.tag_start;
                    }
                    self.lex = Lex::StartTag { slash: false };
                }
            },
            Lex::StartTag { slash } => match byte {
                b'"' | b'\'' => self.lex = Lex::Quoted { quote: byte },
                b'>' => {
                    return self.finish_tag(TagKind::Start {
                        self_closing: slash,
                    });
                }
                b'<' => {
                    return Err(FramingError::Malformed {
                        detail: "`<` inside a tag",
                    });
                }
                b'/' => self.lex = Lex::StartTag { slash: true },
                _ if byte.is_ascii_whitespace() => {}
                _ => self.lex = Lex::StartTag { slash: false },
            },
            Lex::Quoted { quote } => {
                if byte == quote {
                    self.lex = Lex::StartTag { slash: false };
                } else if byte == b'<' {
                    return Err(FramingError::Malformed {
                        detail: "`<` inside an attribute value",
                    });
                }
            }
            Lex::EndTag => match byte {
                b'>' => return self.finish_tag(TagKind::End),
                b'<' => {
                    return Err(FramingError::Malformed {
                        detail: "`<` inside an end tag",
                    });
                }
                _ => {}
            },
            Lex::Declaration => {
                if byte == b'>' && self.buf[at - 1] == b'?' {
                    self.finish_declaration()?;
                }
            }
            Lex::Bang => self.classify_bang()?,
            Lex::CData => {
                if byte == b'>' && at >= 2 && &self.buf[at - 2..at] == b"]]" {
                    self.lex = Lex::Text;
                }
            }
        }
        Ok(None)
    }

    /// Decides between CDATA, comment and DOCTYPE once enough bytes after
    /// `<!` are buffered; until then the lexer stays in [`Lex::Bang`].
    fn classify_bang(&mut self) -> Result<(), FramingError> {
        const CDATA: &[u8] = b"<![CDATA[";
        let seen = &self.buf[self.tag_start..self.pos];
        if seen.starts_with(b"<!-") {
            return Err(FramingError::Comment);
        }
        if seen.starts_with(b"<!D") || seen.starts_with(b"<!d") {
            return Err(FramingError::Doctype);
        }
        if !CDATA.starts_with(&seen[..seen.len().min(CDATA.len())]) {
            return Err(FramingError::Malformed {
                detail: "unknown `<!` construct",
            });
        }
        if seen.len() == CDATA.len() {
            if self.depth == 0 {
                return Err(FramingError::Malformed {
                    detail: "CDATA outside of any stanza",
                });
            }
            self.lex = Lex::CData;
        }
        Ok(())
    }

    /// Accepts `<?xml …?>` before the header and rejects every other
    /// processing instruction.
    fn finish_declaration(&mut self) -> Result<(), FramingError> {
        let tag = &self.buf[self.tag_start..self.pos];
        let is_xml_decl = tag.len() > 5
            && tag[..5].eq_ignore_ascii_case(b"<?xml")
            && tag[5].is_ascii_whitespace();
        if self.header_seen || !is_xml_decl {
            return Err(FramingError::ProcessingInstruction);
        }
        self.lex = Lex::Text;
        self.unit_start = self.pos;
        Ok(())
    }

    /// Applies a finished start or end tag to the element depth and returns
    /// a frame when it completes one.
    fn finish_tag(&mut self, kind: TagKind) -> Result<Option<Frame>, FramingError> {
        self.lex = Lex::Text;

        if !self.header_seen {
            return match kind {
                TagKind::Start {
                    self_closing: false,
                } => {
                    let name = self.tag_name();
                    if name != "stream:stream" {
                        return Err(FramingError::NotAStreamHeader { name });
                    }
                    self.header_seen = true;
                    let header = self.take_unit()?;
                    Ok(Some(Frame::Header(header)))
                }
                _ => Err(FramingError::NotAStreamHeader {
                    name: self.tag_name(),
                }),
            };
        }

        match kind {
            TagKind::Start { self_closing: true } if self.depth == 0 => {
                Ok(Some(Frame::Stanza(self.take_unit()?)))
            }
            TagKind::Start { self_closing: true } => Ok(None),
            TagKind::Start {
                self_closing: false,
            } => {
                self.depth += 1;
                Ok(None)
            }
            TagKind::End if self.depth == 0 => {
                // The only end tag legal at stream level closes the stream.
                if self.tag_name() != "stream:stream" {
                    return Err(FramingError::Malformed {
                        detail: "end tag without a start tag",
                    });
                }
                self.ended = true;
                self.unit_start = self.tag_start;
                self.take_unit()?;
                Ok(Some(Frame::End))
            }
            TagKind::End => {
                self.depth -= 1;
                if self.depth == 0 {
                    Ok(Some(Frame::Stanza(self.take_unit()?)))
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Name of the tag being finished, for header checks and messages.
    fn tag_name(&self) -> String {
        let tag = &self.buf[self.tag_start + 1..self.pos];
        let tag = tag.strip_prefix(b"/").unwrap_or(tag);
        let end = tag
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
            .unwrap_or(tag.len());
        String::from_utf8_lossy(&tag[..end]).into_owned()
    }

    /// Removes the current unit from the buffer and returns it as text.
    fn take_unit(&mut self) -> Result<String, FramingError> {
        let unit = self.buf[self.unit_start..self.pos].to_vec();
        self.buf.drain(..self.pos);
        self.pos = 0;
        self.unit_start = 0;
        self.tag_start = 0;
        String::from_utf8(unit).map_err(|_| FramingError::InvalidUtf8)
    }

    fn text_at_stream_level(&self, at: usize) -> FramingError {
        let end = (at + 20).min(self.buf.len());
        FramingError::TextAtStreamLevel {
            text: String::from_utf8_lossy(&self.buf[at..end]).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='a1' version='1.0'>";

    /// Feeds all input at once and collects frames until more bytes are needed.
    fn split_all(input: &[u8]) -> Result<Vec<Frame>, FramingError> {
        let mut splitter = StreamSplitter::default();
        splitter.push(input);
        let mut frames = Vec::new();
        while let Some(frame) = splitter.next_frame()? {
            frames.push(frame);
        }
        Ok(frames)
    }

    /// Feeds the input in two pieces, split at `cut`.
    fn split_at(input: &[u8], cut: usize) -> Result<Vec<Frame>, FramingError> {
        let mut splitter = StreamSplitter::default();
        let mut frames = Vec::new();
        for piece in [&input[..cut], &input[cut..]] {
            splitter.push(piece);
            while let Some(frame) = splitter.next_frame()? {
                frames.push(frame);
            }
        }
        Ok(frames)
    }

    fn stanza(text: &str) -> Frame {
        Frame::Stanza(text.to_owned())
    }

    /// A full stream with tricky content yields exactly the expected frames.
    #[test]
    fn splits_header_stanzas_and_end() {
        let body = "<message to='r@c/n' a='x>y' b=\"/>\"><body>a &lt; b<![CDATA[<not a tag/>]]></body></message>";
        let input = format!(
            "<?xml version='1.0'?>\n{HEADER}\n <stream:features><sm xmlns='urn:xmpp:sm:3'/></stream:features>\
             <r xmlns='urn:xmpp:sm:3'/> \n{body}</stream:stream>"
        );
        let frames = split_all(input.as_bytes()).unwrap();
        assert_eq!(frames.len(), 5);
        assert_eq!(frames[0], Frame::Header(HEADER.to_owned()));
        assert_eq!(
            frames[1],
            stanza("<stream:features><sm xmlns='urn:xmpp:sm:3'/></stream:features>")
        );
        assert_eq!(frames[2], stanza("<r xmlns='urn:xmpp:sm:3'/>"));
        assert_eq!(frames[3], stanza(body));
        assert_eq!(frames[4], Frame::End);
    }

    /// Splitting the input at every byte boundary gives the same frames.
    #[test]
    fn same_frames_for_every_split_point() {
        let input = format!(
            "<?xml version='1.0'?>{HEADER}<iq type='result' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <jid>x@y/z</jid></bind></iq><presence a='/>'/><message><body><![CDATA[]]>]]></body></message></stream:stream>"
        );
        let expected = split_all(input.as_bytes()).unwrap();
        assert_eq!(expected.len(), 5);
        for cut in 0..=input.len() {
            assert_eq!(
                split_at(input.as_bytes(), cut).unwrap(),
                expected,
                "cut at byte {cut}"
            );
        }
    }

    /// Feeding one byte at a time reports "need more" until a frame completes.
    #[test]
    fn byte_by_byte_needs_more_until_complete() {
        let input = format!("{HEADER}<a/>");
        let mut splitter = StreamSplitter::default();
        let mut frames = Vec::new();
        for byte in input.as_bytes() {
            splitter.push(std::slice::from_ref(byte));
            if let Some(frame) = splitter.next_frame().unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(
            frames,
            vec![Frame::Header(HEADER.to_owned()), stanza("<a/>")]
        );
        assert_eq!(splitter.buffered(), 0);
    }

    /// Multi-byte UTF-8 split across chunks is reassembled intact.
    #[test]
    fn utf8_split_across_chunks() {
        let input = format!("{HEADER}<message><body>größe ✓</body></message>");
        for cut in 0..=input.len() {
            let frames = split_at(input.as_bytes(), cut).unwrap();
            assert_eq!(frames[1], stanza("<message><body>größe ✓</body></message>"));
        }
    }

    /// Restart after SASL accepts a second header on the same splitter.
    #[test]
    fn restart_accepts_new_header() {
        let mut splitter = StreamSplitter::default();
        splitter.push(
            format!("{HEADER}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>").as_bytes(),
        );
        assert!(matches!(
            splitter.next_frame().unwrap(),
            Some(Frame::Header(_))
        ));
        assert!(matches!(
            splitter.next_frame().unwrap(),
            Some(Frame::Stanza(_))
        ));
        splitter.restart();
        splitter.push(HEADER.as_bytes());
        assert_eq!(
            splitter.next_frame().unwrap(),
            Some(Frame::Header(HEADER.to_owned()))
        );
    }

    /// Forbidden or broken constructs are errors, not "need more bytes".
    #[test]
    fn rejects_malformed_input() {
        let cases: &[(String, FramingError)] = &[
            (format!("{HEADER}<!-- hi -->"), FramingError::Comment),
            (format!("{HEADER}<a><!-- hi --></a>"), FramingError::Comment),
            ("<!DOCTYPE x>".to_owned(), FramingError::Doctype),
            (
                format!("{HEADER}<?php x?>"),
                FramingError::ProcessingInstruction,
            ),
            (
                format!("{HEADER}<?xml version='1.0'?>"),
                FramingError::ProcessingInstruction,
            ),
            (
                format!("{HEADER}<a><?pi x?></a>"),
                FramingError::ProcessingInstruction,
            ),
            (
                "<html>".to_owned(),
                FramingError::NotAStreamHeader {
                    name: "html".to_owned(),
                },
            ),
            (
                "<stream:stream/>".to_owned(),
                FramingError::NotAStreamHeader {
                    name: "stream:stream".to_owned(),
                },
            ),
            (
                format!("{HEADER}hello"),
                FramingError::TextAtStreamLevel {
                    text: "hello".to_owned(),
                },
            ),
            (
                format!("{HEADER}<a b='<'/>"),
                FramingError::Malformed {
                    detail: "`<` inside an attribute value",
                },
            ),
            (
                format!("{HEADER}< a/>"),
                FramingError::Malformed {
                    detail: "whitespace after `<`",
                },
            ),
            (
                format!("{HEADER}<![CDATA[x]]>"),
                FramingError::Malformed {
                    detail: "CDATA outside of any stanza",
                },
            ),
            (
                format!("{HEADER}</a>"),
                FramingError::Malformed {
                    detail: "end tag without a start tag",
                },
            ),
            (
                format!("{HEADER}<a><!ENTITY x></a>"),
                FramingError::Malformed {
                    detail: "unknown `<!` construct",
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                split_all(input.as_bytes()).unwrap_err(),
                *expected,
                "input {input:?}"
            );
        }
        let mut invalid = format!("{HEADER}<a>").into_bytes();
        invalid.extend_from_slice(&[0xff, 0xfe]);
        invalid.extend_from_slice(b"</a>");
        assert_eq!(split_all(&invalid).unwrap_err(), FramingError::InvalidUtf8);
    }

    /// A stanza over the limit fails even while it is still incomplete.
    #[test]
    fn rejects_oversized_stanza() {
        let mut splitter = StreamSplitter::new(64);
        splitter.push(b"<stream:stream>");
        assert!(matches!(
            splitter.next_frame().unwrap(),
            Some(Frame::Header(_))
        ));
        splitter.push(b"<message><body>");
        assert_eq!(splitter.next_frame().unwrap(), None);
        splitter.push(&[b'x'; 100]);
        assert_eq!(
            splitter.next_frame().unwrap_err(),
            FramingError::TooLarge { max: 64 }
        );
    }

    /// A stanza of exactly the limit is accepted.
    #[test]
    fn accepts_stanza_at_limit() {
        let stanza_text = format!("<a>{}</a>", "x".repeat(57));
        assert_eq!(stanza_text.len(), 64);
        let mut splitter = StreamSplitter::new(64);
        splitter.push(format!("<stream:stream>{stanza_text}").as_bytes());
        assert!(matches!(
            splitter.next_frame().unwrap(),
            Some(Frame::Header(_))
        ));
        assert_eq!(splitter.next_frame().unwrap(), Some(stanza(&stanza_text)));
    }

    /// Whitespace keepalives between stanzas produce no frames.
    #[test]
    fn whitespace_keepalive_is_dropped() {
        let frames = split_all(format!("{HEADER} \n\t <a/>  \n").as_bytes()).unwrap();
        assert_eq!(
            frames,
            vec![Frame::Header(HEADER.to_owned()), stanza("<a/>")]
        );
    }

    /// An endless stanza fails at the limit, and the buffer never contains more
    /// than the limit plus one pushed chunk.
    #[test]
    fn endless_stanza_keeps_buffer_bounded() {
        const MAX: usize = 16 * 1024;
        const CHUNK: usize = 1000;
        let mut splitter = StreamSplitter::new(MAX);
        splitter.push(format!("{HEADER}<message><body>").as_bytes());
        assert!(matches!(
            splitter.next_frame().unwrap(),
            Some(Frame::Header(_))
        ));

        let filler = [b'x'; CHUNK];
        let mut pushed = 0;
        let err = loop {
            assert!(pushed < 10 * MAX, "no error after {pushed} bytes");
            splitter.push(&filler);
            pushed += CHUNK;
            assert!(
                splitter.capacity() <= MAX + CHUNK,
                "capacity {} after {pushed} bytes",
                splitter.capacity()
            );
            match splitter.next_frame() {
                Ok(None) => {}
                Ok(Some(frame)) => panic!("unexpected frame {frame:?}"),
                Err(err) => break err,
            }
        };
        assert_eq!(err, FramingError::TooLarge { max: MAX });
        assert!(
            pushed <= MAX + CHUNK,
            "error came late, after {pushed} bytes"
        );
    }

    /// Whitespace keepalives without end are dropped instead of buffered.
    #[test]
    fn whitespace_flood_is_not_buffered() {
        let mut splitter = StreamSplitter::new(1024);
        splitter.push(HEADER.as_bytes());
        assert!(matches!(
            splitter.next_frame().unwrap(),
            Some(Frame::Header(_))
        ));
        for _ in 0..100 {
            splitter.push(&[b' '; 512]);
            assert_eq!(splitter.next_frame().unwrap(), None);
            assert_eq!(splitter.buffered(), 0);
        }
        assert!(splitter.capacity() <= 1024 + 512);

        splitter.push(b"<a/>");
        assert_eq!(splitter.next_frame().unwrap(), Some(stanza("<a/>")));
    }

    /// A partial stanza after whitespace keeps only its own bytes buffered.
    #[test]
    fn partial_stanza_is_all_that_stays_buffered() {
        let mut splitter = StreamSplitter::default();
        splitter.push(format!("{HEADER}  \n<message><bo").as_bytes());
        assert!(matches!(
            splitter.next_frame().unwrap(),
            Some(Frame::Header(_))
        ));
        assert_eq!(splitter.next_frame().unwrap(), None);
        assert_eq!(splitter.buffered(), "<message><bo".len());
        splitter.push(b"dy>hi</body></message>");
        assert_eq!(
            splitter.next_frame().unwrap(),
            Some(stanza("<message><body>hi</body></message>"))
        );
        assert_eq!(splitter.buffered(), 0);
    }
}
