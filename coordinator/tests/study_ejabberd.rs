//! End-to-end: the shortened WebSocket-vs-c2s study against a real
//! ejabberd, with the monitor watching its Erlang VM.

mod common;

use common::study::{StudyServer, run_and_check};
use xmppload_agent::testing::Ejabberd;

/// The shortened study runs against ejabberd with exact counts and no failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_shortened_study() {
    let ejabberd = Ejabberd::start().expect("start ejabberd");
    let server = StudyServer {
        process: "ejabberd",
        domain: ejabberd.domain().to_owned(),
        muc_domain: ejabberd.muc_domain().to_owned(),
        c2s: ejabberd.c2s_addr(),
        websocket_url: ejabberd.websocket_url(),
        pidfile: ejabberd.pidfile(),
        pid: ejabberd.pid(),
    };
    run_and_check(&server).await;
}
