//! Reads arbitrary bytes as a BOSH response body, once as the response to the
//! session creation request and once inside a session. Nothing may panic,
//! and every accepted body must satisfy the checks the transport relies on.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xmppload_agent::transport::bosh::body::{BodyError, Expected, parse_response};

/// Body limit, small so that short inputs reach it.
const MAX_BODY_BYTES: usize = 4096;
/// Highest rid the client has sent, for the `ack` check.
const HIGHEST_RID: u64 = 1000;

fuzz_target!(|data: &[u8]| {
    let creation = Expected {
        sid: None,
        highest_rid: HIGHEST_RID,
    };
    let in_session = Expected {
        sid: Some("s1"),
        highest_rid: HIGHEST_RID,
    };

    match parse_response(data, creation, MAX_BODY_BYTES) {
        Ok(response) => {
            assert!(data.len() <= MAX_BODY_BYTES);
            assert!(
                response.sid.is_some() || response.terminate.is_some(),
                "a creation response without sid or terminate was accepted"
            );
        }
        Err(BodyError::TooLarge { max }) => assert!(data.len() > max),
        Err(_) => {}
    }

    if let Ok(response) = parse_response(data, in_session, MAX_BODY_BYTES) {
        assert!(
            response.sid.as_deref().is_none_or(|sid| sid == "s1"),
            "a response with another sid was accepted"
        );
    }
});
