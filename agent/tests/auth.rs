//! The shared bearer token, checked on every RPC of a real agent over gRPC.

mod common;

use common::*;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use xmppload_agent::AgentConfig;
use xmppload_proto::auth::{AttachToken, AuthToken};
use xmppload_proto::v1::bot_agent_client::BotAgentClient;
use xmppload_proto::v1::{ClockRequest, HelloRequest, RunGroupRequest};

const SECRET: &str = "agent-token-0123456789";

fn hello() -> HelloRequest {
    HelloRequest {
        protocol_version: xmppload_proto::PROTOCOL_VERSION,
        coordinator: "auth-test".to_owned(),
    }
}

async fn start_with_token() -> TestAgent {
    start_agent_with(AgentConfig {
        name: "guarded".to_owned(),
        token: Some(AuthToken::parse(SECRET, "test").unwrap()),
        ..AgentConfig::default()
    })
    .await
}

async fn client_with(
    agent: &TestAgent,
    secret: &str,
) -> BotAgentClient<InterceptedService<Channel, AttachToken>> {
    let token = AuthToken::parse(secret, "test").unwrap();
    let channel = Channel::from_shared(format!("http://{}", agent.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    BotAgentClient::with_interceptor(channel, AttachToken::new(Some(&token)))
}

/// Calls without a token are rejected on every RPC, and the message explains how to pass one.
#[tokio::test]
async fn missing_token_is_unauthenticated() {
    let agent = start_with_token().await;
    let mut client = agent.client.clone();

    let status = client.hello(hello()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
    assert!(status.message().contains("--token-file"), "{status}");
    assert!(status.message().contains("XMPPLOAD_TOKEN"), "{status}");
    assert!(!status.message().contains(SECRET), "{status}");

    let status = client.clock(ClockRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");

    let status = client
        .run_group(RunGroupRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
}

/// A wrong token is rejected like a missing one, without echoing either token.
#[tokio::test]
async fn wrong_token_is_unauthenticated() {
    let agent = start_with_token().await;
    let mut client = client_with(&agent, "not-the-agent-token-42").await;

    let status = client.hello(hello()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
    assert!(status.message().contains("does not match"), "{status}");
    assert!(!status.message().contains(SECRET), "{status}");
    assert!(
        !status.message().contains("not-the-agent-token-42"),
        "{status}"
    );
}

/// The right token passes every RPC through to the service.
#[tokio::test]
async fn right_token_is_accepted() {
    let agent = start_with_token().await;
    let mut client = client_with(&agent, SECRET).await;

    let response = client.hello(hello()).await.unwrap().into_inner();
    assert_eq!(response.name, "guarded");
    let clock = client.clock(ClockRequest {}).await.unwrap().into_inner();
    assert!(clock.unix_micros > 0);

    // Past the token check, the service itself validates the request.
    let status = client
        .run_group(RunGroupRequest {
            protocol_version: xmppload_proto::PROTOCOL_VERSION,
            ..RunGroupRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
}

/// An agent without a token serves clients that send one anyway.
#[tokio::test]
async fn open_agent_ignores_token() {
    let agent = start_agent().await;
    let mut client = client_with(&agent, SECRET).await;
    let response = client.hello(hello()).await.unwrap().into_inner();
    assert_eq!(response.name, "test-agent");
}
