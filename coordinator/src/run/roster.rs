//! The bot agents of a run, and which of them take bots in the next group.
//!
//! An agent is lost when its slice stream breaks off, ends without a final
//! report, cannot be opened or runs past the group's bound. Before each
//! later group the coordinator greets every lost agent again at its
//! address (`Hello` and a new clock offset, because a restarted agent may
//! run on a host whose clock moved). One that responds takes bots again and
//! keeps its name, so its rows in `bots.csv` stay in one column. The
//! attempts are few and short, and the lost agents are greeted in
//! parallel, so agents that stay down delay each group by at most 4.5 s
//! (two attempts of [`REJOIN_TIMEOUT`] and one [`REJOIN_PAUSE`]), and by
//! about the pause alone when their host refuses the connection.

use std::time::Duration;

use futures::future::join_all;
use tracing::{info, warn};
use xmppload_proto::auth::AuthToken;
use xmppload_proto::tls::ClientTls;
use xmppload_proto::unix_micros_now;

use super::group::LostAgent;
use super::seconds_since;
use crate::peers::{self, AgentPeer};
use crate::results::RunRecord;
use crate::results::run_info::{PeerEvent, PeerEventKind, PeerRole};

/// Attempts to greet a lost agent before each group. A second attempt
/// catches an agent whose listener was still starting at the first.
const REJOIN_ATTEMPTS: u32 = 2;
/// Bound on one attempt: connecting, `Hello` and the clock round trips. A
/// live agent on a working network responds to all of them within milliseconds.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two attempts.
const REJOIN_PAUSE: Duration = Duration::from_millis(500);
struct Member {
    peer: AgentPeer,
    /// True from the agent's loss until it responds again.
    lost: bool,
}

/// Every agent of the run in scenario order, with its current state.
pub struct Roster {
    members: Vec<Member>,
    token: Option<AuthToken>,
    tls: Option<ClientTls>,
}

impl Roster {
    pub fn new(agents: Vec<AgentPeer>, token: Option<AuthToken>, tls: Option<ClientTls>) -> Self {
        let members = agents
            .into_iter()
            .map(|peer| Member { peer, lost: false })
            .collect();
        Roster {
            members,
            token,
            tls,
        }
    }

    /// Greets the lost agents again, records those that respond as returned
    /// and returns the agents that take the next group's bots. When every
    /// agent is lost, the group is offered to all of them, so that its
    /// record names each agent's failure instead of showing no placement.
    pub async fn prepare_group(&mut self, record: &RunRecord, started: i64) -> Vec<AgentPeer> {
        let token = self.token.clone();
        let tls = self.tls.clone();
        let attempts = self
            .members
            .iter_mut()
            .filter(|member| member.lost)
            .map(|member| rejoin(member, token.as_ref(), tls.as_ref(), record, started));
        join_all(attempts).await;

        let available: Vec<AgentPeer> = self
            .members
            .iter()
            .filter(|member| !member.lost)
            .map(|member| member.peer.clone())
            .collect();
        if available.is_empty() {
            warn!("every bot agent is lost; offering the group to all of them");
            return self
                .members
                .iter()
                .map(|member| member.peer.clone())
                .collect();
        }
        available
    }

    /// Marks the agents that a group lost, recording each loss once: an
    /// agent that is already lost stays lost without a new event.
    pub fn mark_lost(&mut self, lost_agents: &[LostAgent], record: &RunRecord) {
        for lost in lost_agents {
            let Some(member) = self
                .members
                .iter_mut()
                .find(|member| member.peer.info.name == lost.agent)
            else {
                continue;
            };
            if member.lost {
                continue;
            }
            member.lost = true;
            warn!(agent = %lost.agent, lost_at_s = lost.lost_at_s, reason = %lost.reason, "bot agent lost; it gets no bots until it responds again");
            record.add_peer_event(PeerEvent {
                t_s: lost.lost_at_s,
                role: PeerRole::Agent,
                peer: lost.agent.clone(),
                kind: PeerEventKind::Lost,
                reason: lost.reason.clone(),
                returned_as: None,
            });
        }
    }
}

/// Greets one lost agent up to [`REJOIN_ATTEMPTS`] times and, when it
/// responds, puts it back with its new channel and clock offset.
async fn rejoin(
    member: &mut Member,
    token: Option<&AuthToken>,
    tls: Option<&ClientTls>,
    record: &RunRecord,
    started: i64,
) {
    let name = member.peer.info.name.clone();
    let address = member.peer.info.address.clone();
    for attempt in 1..=REJOIN_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(REJOIN_PAUSE).await;
        }
        let error = match tokio::time::timeout(
            REJOIN_TIMEOUT,
            peers::connect_agent(&address, token, tls),
        )
        .await
        {
            Ok(Ok(mut peer)) => {
                if peer.info.name != name {
                    info!(agent = %name, reported_name = %peer.info.name, "returning agent reports another name; keeping the first one");
                }
                peer.info.name = name.clone();
                info!(
                    agent = %name,
                    %address,
                    offset_ms = peer.clock.offset_micros as f64 / 1000.0,
                    uncertainty_ms = peer.clock.uncertainty_micros as f64 / 1000.0,
                    "bot agent returned; it takes bots again from this group on"
                );
                record.add_peer_event(PeerEvent {
                    t_s: seconds_since(started, unix_micros_now()),
                    role: PeerRole::Agent,
                    peer: name,
                    kind: PeerEventKind::Returned,
                    reason: String::new(),
                    returned_as: Some(peer.info.clone()),
                });
                member.peer = peer;
                member.lost = false;
                return;
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("timed out after {} ms", REJOIN_TIMEOUT.as_millis()),
        };
        info!(agent = %name, %address, attempt, err = %error, "lost bot agent did not respond");
    }
    warn!(agent = %name, %address, attempts = REJOIN_ATTEMPTS, "lost bot agent is still unreachable; the group runs without it");
}
