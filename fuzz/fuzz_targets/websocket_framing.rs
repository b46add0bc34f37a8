//! Reads arbitrary bytes as server-to-client WebSocket frames with the
//! agent's message limits, and turns every text message into an RFC 7395
//! stream event. Nothing may panic and no message may exceed the limit.

#![no_main]

use std::io::{Cursor, Read, Write};

use libfuzzer_sys::fuzz_target;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::Message;
use xmppload_agent::transport::websocket::message_event;

/// Limit on messages and frames, small so that short inputs reach it.
const MAX_MESSAGE_BYTES: usize = 4096;
/// Bound on messages read from one input, against endless control frames.
const MAX_MESSAGES: usize = 1000;

/// In-memory socket: reads come from the fuzz input, writes are dropped.
struct MemorySocket(Cursor<Vec<u8>>);

impl Read for MemorySocket {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for MemorySocket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let socket = MemorySocket(Cursor::new(data.to_vec()));
    let mut ws = WebSocket::from_raw_socket(socket, Role::Client, Some(config));
    for _ in 0..MAX_MESSAGES {
        match ws.read() {
            Ok(Message::Text(text)) => {
                assert!(text.len() <= MAX_MESSAGE_BYTES, "message of {} bytes", text.len());
                let _ = message_event(text.as_str());
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
});
