//! End-to-end tests of the `Monitor` gRPC service on a loopback port.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Helper;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use xmppload_monitor::{MonitorConfig, MonitorError, serve};
use xmppload_proto::auth::{AttachToken, AuthToken};
use xmppload_proto::v1::monitor_client::MonitorClient;
use xmppload_proto::v1::{self, process_selector};

/// Child process entry point; does nothing unless a test started it.
#[test]
#[ignore = "helper process started by other tests"]
fn helper_process() {
    common::run_helper_if_requested();
}

struct Server {
    address: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), MonitorError>>,
}

impl Server {
    async fn start() -> Self {
        Self::start_with(None).await
    }

    async fn start_with(token: Option<AuthToken>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let config = MonitorConfig {
            name: "test-monitor".to_owned(),
            token,
            tls: None,
        };
        let task = tokio::spawn(serve(listener, config, shutdown.clone()));
        Self {
            address,
            shutdown,
            task,
        }
    }

    async fn client(&self) -> MonitorClient<Channel> {
        MonitorClient::connect(format!("http://{}", self.address))
            .await
            .unwrap()
    }

    /// Cancels the server and checks that it returns in time and cleanly.
    async fn stop(self) {
        self.shutdown.cancel();
        let result = timeout(Duration::from_secs(5), self.task)
            .await
            .expect("server did not stop within 5 s")
            .unwrap();
        result.unwrap();
    }
}

fn watch_request(processes: Vec<v1::ProcessSelector>, interval_ms: u32) -> v1::WatchRequest {
    v1::WatchRequest {
        protocol_version: xmppload_proto::PROTOCOL_VERSION,
        processes,
        interval_ms,
        ..Default::default()
    }
}

fn pid_selector(name: &str, pid: u32) -> v1::ProcessSelector {
    v1::ProcessSelector {
        name: name.to_owned(),
        target: Some(process_selector::Target::Pid(pid)),
    }
}

/// Watch streams one batch per interval for the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_at_interval() {
    let helper = Helper::spawn("sleep:5000", None);
    let server = Server::start().await;
    let mut client = server.client().await;

    let request = watch_request(vec![pid_selector("child", helper.pid())], 100);
    let mut stream = client.watch(request).await.unwrap().into_inner();

    // At 100 ms per batch, one second contains about ten; the bounds leave
    // room for a loaded machine.
    let window_end = Instant::now() + Duration::from_secs(1);
    let mut batches = Vec::new();
    while let Ok(message) = tokio::time::timeout_at(window_end, stream.message()).await {
        let batch = message.unwrap().expect("stream ended early");
        batches.push(batch);
    }
    assert!(
        (5..=12).contains(&batches.len()),
        "{} batches in 1 s at a 100 ms interval",
        batches.len()
    );

    for pair in batches.windows(2) {
        let step = pair[1].unix_micros - pair[0].unix_micros;
        assert!(step >= 50_000, "batches only {step} µs apart");
    }
    for batch in &batches {
        assert!(batch.host_cores >= 1);
        assert!((0.0..=100.0).contains(&batch.host_cpu_percent));
        assert_eq!(batch.processes.len(), 1);
        let sample = &batch.processes[0];
        assert_eq!(sample.name, "child");
        assert_eq!(sample.pid, helper.pid());
        assert!(!sample.gap);
        assert!(sample.rss_bytes > 0);
    }

    // Dropping the stream ends the watch; the server keeps serving.
    drop(stream);
    let clock = client
        .clock(v1::ClockRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(clock.unix_micros > 0);
    server.stop().await;
}

/// Invalid watch requests are rejected with a status that names the field.
#[tokio::test]
async fn watch_rejects_invalid_requests() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let own_pid = std::process::id();

    let no_target = v1::ProcessSelector {
        name: "server".to_owned(),
        target: None,
    };
    let mut wrong_version = watch_request(vec![pid_selector("server", own_pid)], 200);
    wrong_version.protocol_version = xmppload_proto::PROTOCOL_VERSION + 1;

    let cases = [
        (
            watch_request(vec![], 200),
            Code::InvalidArgument,
            "processes is empty",
        ),
        (
            watch_request(vec![pid_selector("server", own_pid)], 50),
            Code::InvalidArgument,
            "the minimum is 100",
        ),
        (
            watch_request(vec![pid_selector("", own_pid)], 200),
            Code::InvalidArgument,
            "processes[0].name is empty",
        ),
        (
            watch_request(vec![no_target], 200),
            Code::InvalidArgument,
            "processes[0].target",
        ),
        (
            wrong_version,
            Code::FailedPrecondition,
            "protocol version mismatch",
        ),
    ];
    for (request, code, expected) in cases {
        let status = client.watch(request).await.unwrap_err();
        assert_eq!(
            status.code(),
            code,
            "case {expected:?}: {}",
            status.message()
        );
        assert!(
            status.message().contains(expected),
            "message {:?} does not contain {expected:?}",
            status.message()
        );
    }
    server.stop().await;
}

/// Hello reports name, version, cores and file limit; Clock reports the wall clock.
#[tokio::test]
async fn hello_and_clock() {
    let server = Server::start().await;
    let mut client = server.client().await;

    let hello = client
        .hello(v1::HelloRequest {
            protocol_version: xmppload_proto::PROTOCOL_VERSION,
            coordinator: "test".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hello.protocol_version, xmppload_proto::PROTOCOL_VERSION);
    assert_eq!(hello.name, "test-monitor");
    assert_eq!(hello.version, env!("CARGO_PKG_VERSION"));
    assert!(hello.cores >= 1);
    assert!(hello.fd_limit > 0);

    let status = client
        .hello(v1::HelloRequest {
            protocol_version: xmppload_proto::PROTOCOL_VERSION + 1,
            coordinator: "test".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    let before = xmppload_proto::unix_micros_now();
    let clock = client
        .clock(v1::ClockRequest {})
        .await
        .unwrap()
        .into_inner();
    let after = xmppload_proto::unix_micros_now();
    assert!(
        clock.unix_micros >= before,
        "{} < {before}",
        clock.unix_micros
    );
    assert!(
        clock.unix_micros <= after,
        "{} > {after}",
        clock.unix_micros
    );
    server.stop().await;
}

/// Shutdown ends a running watch with `unavailable` and the server returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_watch() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let request = watch_request(vec![pid_selector("self", std::process::id())], 100);
    let mut stream = client.watch(request).await.unwrap().into_inner();

    let first = timeout(Duration::from_secs(2), stream.message())
        .await
        .expect("no batch within 2 s")
        .unwrap();
    assert!(first.is_some());

    server.shutdown.cancel();
    let ending = timeout(Duration::from_secs(3), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("stream did not end within 3 s");
    let status = ending.expect_err("stream ended without a status");
    assert_eq!(status.code(), Code::Unavailable, "{status}");

    server.stop().await;
}

/// A monitor started with a token rejects calls without it and serves calls with it.
#[tokio::test]
async fn token_guards_every_call() {
    let token = AuthToken::parse("monitor-token-0123456789", "test").unwrap();
    let server = Server::start_with(Some(token.clone())).await;
    let hello = v1::HelloRequest {
        protocol_version: xmppload_proto::PROTOCOL_VERSION,
        coordinator: "test".to_owned(),
    };

    let mut anonymous = server.client().await;
    let status = anonymous.hello(hello.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
    let status = anonymous
        .watch(watch_request(
            vec![pid_selector("self", std::process::id())],
            100,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");

    let channel = Channel::from_shared(format!("http://{}", server.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut authorized = MonitorClient::with_interceptor(channel, AttachToken::new(Some(&token)));
    let response = authorized.hello(hello).await.unwrap().into_inner();
    assert_eq!(response.name, "test-monitor");
    server.stop().await;
}

/// An unreachable metrics endpoint is reported in every batch while the
/// process samples keep coming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_openmetrics_is_recorded() {
    // A port that was free a moment ago; nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = Server::start().await;
    let mut client = server.client().await;

    let mut request = watch_request(vec![pid_selector("self", std::process::id())], 100);
    request.openmetrics_url = format!("http://{closed}/metrics");
    let mut stream = client.watch(request).await.unwrap().into_inner();
    for _ in 0..3 {
        let batch = timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("a batch within 5 s")
            .unwrap()
            .expect("stream ended early");
        assert!(
            batch.server_metrics_error.contains("failed to connect"),
            "error: {:?}",
            batch.server_metrics_error
        );
        assert!(batch.server_metrics.is_empty());
        assert_eq!(batch.processes.len(), 1);
        assert_eq!(batch.processes[0].pid, std::process::id());
    }
    drop(stream);
    server.stop().await;
}

/// A metrics URL the monitor cannot read is rejected before the watch starts.
#[tokio::test]
async fn watch_rejects_https_openmetrics() {
    let server = Server::start().await;
    let mut client = server.client().await;

    let mut request = watch_request(vec![pid_selector("self", std::process::id())], 200);
    request.openmetrics_url = "https://127.0.0.1:5281/metrics".to_owned();
    let status = client.watch(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("openmetrics_url") && status.message().contains("http://"),
        "{}",
        status.message()
    );
    server.stop().await;
}
