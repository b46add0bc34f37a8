//! The `BotAgent` gRPC service.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::{info, warn};
use xmppload_proto::v1::bot_agent_server::BotAgent;
use xmppload_proto::v1::{
    ClockRequest, ClockResponse, GroupReport, HelloRequest, HelloResponse, RunGroupRequest,
};

use crate::AgentConfig;
use crate::group::{self, plan::GroupPlan};
use crate::policy::BotReservation;

/// Reports buffered per stream; the reporter waits when the client lags.
const REPORT_BUFFER: usize = 8;

/// Service state: the agent's settings and its shutdown signal.
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

    /// Checks a valid plan against the agent's allowlist and limits, and
    /// reserves its bots under `--max-bots`.
    fn admit(&self, plan: &GroupPlan) -> Result<BotReservation, Status> {
        self.config.targets.check(&plan.endpoint)?;
        let limits = &self.config.limits;
        limits.check_plan(plan, self.config.clock.now())?;
        let reservation = self
            .config
            .running_bots
            .reserve(plan.count, limits.max_bots)?;
        // The reservation is counted in `current`, so a rejection here
        // drops it again and the slice's places are given back.
        self.config
            .capacity
            .check(plan.count, self.config.running_bots.current())?;
        Ok(reservation)
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
        let capacity = &self.config.capacity;
        Ok(Response::new(HelloResponse {
            protocol_version: xmppload_proto::PROTOCOL_VERSION,
            name: self.config.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            cores: crate::host::cores(),
            // 0 means the limit is unknown.
            fd_limit: capacity.fd_limit.unwrap_or(0),
            source_addresses: capacity
                .source_addresses
                .iter()
                .map(ToString::to_string)
                .collect(),
            ports_per_destination: capacity.ports_per_destination.unwrap_or(0),
            max_bots: self.config.limits.max_bots,
            running_bots: self.config.running_bots.current(),
            reserved_descriptors: crate::policy::capacity::RESERVED_DESCRIPTORS,
            max_connect_rate: self.config.limits.max_connect_rate,
        }))
    }

    async fn clock(
        &self,
        _request: Request<ClockRequest>,
    ) -> Result<Response<ClockResponse>, Status> {
        Ok(Response::new(ClockResponse {
            unix_micros: self.config.clock.now(),
        }))
    }

    type RunGroupStream = ReceiverStream<Result<GroupReport, Status>>;

    async fn run_group(
        &self,
        request: Request<RunGroupRequest>,
    ) -> Result<Response<Self::RunGroupStream>, Status> {
        let mut plan = GroupPlan::from_request(request.into_inner(), self.config.clock)?;
        plan.source_addresses = self.config.capacity.source_addresses.clone();
        let reservation = self.admit(&plan).inspect_err(|status| {
            warn!(group = %plan.group, code = ?status.code(), message = status.message(), "rejected a group");
        })?;

        let (reports, receiver) = mpsc::channel(REPORT_BUFFER);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            group::run(plan, reports, shutdown).await;
            // The slice's bots have all ended (or were aborted) by now.
            drop(reservation);
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
