//! The `BotAgent` gRPC service.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::info;
use xmppload_proto::v1::bot_agent_server::BotAgent;
use xmppload_proto::v1::{
    ClockRequest, ClockResponse, GroupReport, HelloRequest, HelloResponse, RunGroupRequest,
};

use crate::AgentConfig;
use crate::group::{self, plan::GroupPlan};

/// Reports buffered per stream; the reporter waits when the client lags.
const REPORT_BUFFER: usize = 8;

/// Service state: the agent's name and its shutdown signal.
#[derive(Debug, Clone)]
pub struct AgentService {
    config: AgentConfig,
    /// Cancelled when the agent stops; every running slice stops with it.
    shutdown: CancellationToken,
}

impl AgentService {
    pub fn new(config: AgentConfig, shutdown: CancellationToken) -> Self {
        AgentService { config, shutdown }
    }
}

#[tonic::async_trait]
impl BotAgent for AgentService {
    async fn hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloResponse>, Status> {
        let request = request.into_inner();
        xmppload_proto::check_version(request.protocol_version)?;
        info!(coordinator = %request.coordinator, "hello from coordinator");
        Ok(Response::new(HelloResponse {
            protocol_version: xmppload_proto::PROTOCOL_VERSION,
            name: self.config.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            cores: crate::host::cores(),
            // 0 means the limit is unknown.
            fd_limit: crate::host::fd_soft_limit().unwrap_or(0),
        }))
    }

    async fn clock(
        &self,
        _request: Request<ClockRequest>,
    ) -> Result<Response<ClockResponse>, Status> {
        Ok(Response::new(ClockResponse {
            unix_micros: xmppload_proto::unix_micros_now(),
        }))
    }

    type RunGroupStream = ReceiverStream<Result<GroupReport, Status>>;

    async fn run_group(
        &self,
        request: Request<RunGroupRequest>,
    ) -> Result<Response<Self::RunGroupStream>, Status> {
        let plan = GroupPlan::from_request(request.into_inner())?;
        let (reports, receiver) = mpsc::channel(REPORT_BUFFER);
        tokio::spawn(group::run(plan, reports, self.shutdown.clone()));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
