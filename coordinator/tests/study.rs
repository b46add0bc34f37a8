//! End-to-end: a shortened WebSocket-vs-c2s study through real agents, a
//! real monitor and a real Prosody, checked from the files it leaves.

mod common;

use common::study::{StudyServer, run_and_check};
use xmppload_agent::testing::{Prosody, ProsodyOptions};

/// The shortened study runs end to end and its files agree with each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shortened_study_end_to_end() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let server = StudyServer {
        process: "prosody",
        domain: prosody.domain().to_owned(),
        muc_domain: prosody.muc_domain().to_owned(),
        c2s: prosody.c2s_addr(),
        websocket_url: prosody.websocket_url(),
        pidfile: prosody.pidfile(),
        pid: prosody.pid(),
    };
    run_and_check(&server).await;
}
