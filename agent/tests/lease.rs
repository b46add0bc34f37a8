//! Dead-man stop: when the coordinator goes silent without closing its TCP
//! connection, the agent stops its bots within the lease.
//!
//! The test client reaches the agent through a TCP proxy on loopback that can
//! stop forwarding while keeping both sockets open, which looks to the agent
//! like a frozen coordinator process or a cut network path.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use xmppload_agent::AgentConfig;
use xmppload_agent::policy::RunningBots;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_proto::v1::RunGroupRequest;
use xmppload_proto::v1::bot_agent_client::BotAgentClient;

const LEASE: Duration = Duration::from_secs(3);
/// Time the cancelled bots get to close their WebSockets, on top of the lease.
const CLOSE_MARGIN: Duration = Duration::from_secs(4);
const BOTS: u32 = 3;

/// A one-connection TCP proxy whose forwarding can be frozen.
struct FreezableProxy {
    addr: SocketAddr,
    /// Cancelled to stop forwarding; the sockets stay open.
    freeze: CancellationToken,
    /// Cancelled at the end of the test to close the held sockets.
    release: CancellationToken,
}

impl FreezableProxy {
    async fn start(upstream: SocketAddr) -> FreezableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let freeze = CancellationToken::new();
        let release = CancellationToken::new();

        let (freeze_task, release_task) = (freeze.clone(), release.clone());
        tokio::spawn(async move {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = release_task.cancelled() => return,
            };
            let (client, _) = accepted.unwrap();
            let server = TcpStream::connect(upstream).await.unwrap();
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(pump(
                client_read,
                server_write,
                freeze_task.clone(),
                release_task.clone(),
            ));
            tokio::spawn(pump(server_read, client_write, freeze_task, release_task));
        });
        FreezableProxy {
            addr,
            freeze,
            release,
        }
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.release.cancel();
    }
}

/// Copies bytes one way until the peer closes or `freeze` is cancelled.
/// Frozen, it keeps both halves open until `release`, because dropping the
/// write half would send a FIN and let the agent notice at once.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    freeze: CancellationToken,
    release: CancellationToken,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            biased;
            _ = freeze.cancelled() => break,
            read = from.read(&mut buffer) => read,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    release.cancelled().await;
    drop((from, to));
}

/// Polls `running` until it is zero; returns the time that took, or `None`
/// after `bound`.
async fn time_until_idle(running: &RunningBots, bound: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < bound {
        if running.current() == 0 {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// A frozen coordinator's bots are stopped within the lease; a live one's are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_coordinator_loses_bots() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let running = RunningBots::default();
    let mut agent = start_agent_with(AgentConfig {
        running_bots: running.clone(),
        lease: LEASE,
        ..AgentConfig::default()
    })
    .await;
    let proxy = FreezableProxy::start(agent.addr).await;
    let channel = Channel::from_shared(format!("http://{}", proxy.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = BotAgentClient::new(channel);

    // The bots would stay and talk for a minute if nothing stopped them.
    let request = RunGroupRequest {
        start_at_unix_micros: xmppload_proto::unix_micros_now(),
        talk_after_ms: 0,
        talk_duration_ms: 60_000,
        talk_rate: 1.0,
        leave_after_ms: 60_000,
        deadline_ms: 90_000,
        ..websocket_request(&prosody, "frozen", "lease", BOTS)
    };
    let mut stream = client.run_group(request).await.unwrap().into_inner();
    let joined = async {
        while let Some(report) = stream.message().await.unwrap() {
            if report.counters.as_ref().is_some_and(|c| c.joined == BOTS) {
                return;
            }
        }
        panic!("the stream ended before every bot joined");
    };
    tokio::time::timeout(Duration::from_secs(10), joined)
        .await
        .expect("bots did not join within 10 s");

    // A coordinator that returns PONGs keeps its bots past the lease.
    let healthy = async {
        let until = Instant::now() + LEASE + Duration::from_secs(1);
        while Instant::now() < until {
            let report = stream.message().await.unwrap().expect("stream ended early");
            assert_eq!(report.counters.unwrap().joined, BOTS, "bots left too early");
        }
    };
    tokio::time::timeout(LEASE * 3, healthy)
        .await
        .expect("reports stopped while the proxy forwarded");
    assert_eq!(running.current(), BOTS);

    // Freeze: from here on the agent hears nothing, yet no socket closes.
    proxy.freeze.cancel();
    let stopped_after = time_until_idle(&running, LEASE + CLOSE_MARGIN).await;
    let stopped_after = stopped_after.unwrap_or_else(|| {
        panic!(
            "{} bots still running {:?} after the coordinator froze",
            running.current(),
            LEASE + CLOSE_MARGIN
        )
    });
    assert!(
        stopped_after >= LEASE / 4,
        "bots stopped after {stopped_after:?}, too soon to be the lease"
    );

    // The stopped bots would still be talking, so a watcher that joins the
    // room now must hear only its own messages.
    assert_room_quiet(&mut agent.client, &prosody, "lease").await;
    drop(stream);
}
