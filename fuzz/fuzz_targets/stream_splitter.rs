//! Feeds arbitrary bytes to the c2s stream splitter in arbitrary chunks and
//! parses every stanza it cuts. Nothing may panic, no stanza may exceed the
//! limit, and the buffer may not grow past the limit plus one chunk.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xmppload_agent::xml::{Element, Frame, Scope, StreamSplitter};

fuzz_target!(|data: &[u8]| {
    let Some((&[chunk_byte, limit_byte], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    let chunk = usize::from(chunk_byte % 64) + 1;
    // Limits from 64 to 16384 bytes, so that short inputs reach them.
    let max = 64usize << (limit_byte % 9);

    let mut splitter = StreamSplitter::new(max);
    let scope = Scope::client_stream();
    'feed: for piece in stream.chunks(chunk) {
        splitter.push(piece);
        assert!(
            splitter.capacity() <= max + chunk,
            "capacity {} over limit {max} plus chunk {chunk}",
            splitter.capacity()
        );
        loop {
            match splitter.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Stanza(text))) => {
                    assert!(text.len() <= max, "stanza of {} bytes over {max}", text.len());
                    if let Ok(element) = Element::parse(&text, &scope)
                        && element.name == "success"
                    {
                        // The bots restart the stream after SASL success.
                        splitter.restart();
                    }
                }
                Ok(Some(Frame::Header(text))) => {
                    assert!(text.len() <= max, "header of {} bytes over {max}", text.len());
                }
                Ok(Some(Frame::End)) | Err(_) => break 'feed,
            }
        }
    }
});
