//! Validation of the component fields of a `RunGroupRequest`.

use tonic::Status;
use xmppload_proto::v1::{RunGroupRequest, Transport as ProtoTransport};

use crate::group::plan::invalid;

/// Most rooms one component joins. Every room costs a join and a presence
/// broadcast to its occupants before the flood starts.
// NOTE: a judgment call, not a measured limit of Prosody.
pub const MAX_COMPONENT_ROOMS: u32 = 1000;
/// Highest accepted flood rate in messages per second, over all rooms.
pub const MAX_COMPONENT_RATE: f64 = 100_000.0;

/// Settings of a component group beyond the fields every group has.
#[derive(Clone, PartialEq, Eq)]
pub struct ComponentSettings {
    /// Shared secret of the XEP-0114 handshake.
    pub secret: String,
    /// Number of messages to send; `None` sends until the talk duration ends.
    pub max_messages: Option<u64>,
}

impl std::fmt::Debug for ComponentSettings {
    // The secret stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentSettings")
            .field("secret", &"<redacted>")
            .field("max_messages", &self.max_messages)
            .finish()
    }
}

impl ComponentSettings {
    /// Checks the component fields of a `TRANSPORT_COMPONENT` request.
    /// Returns `None` for every other transport.
    pub fn from_request(request: &RunGroupRequest) -> Result<Option<ComponentSettings>, Status> {
        if request.transport != ProtoTransport::Component as i32 {
            return Ok(None);
        }
        if request.component_secret.is_empty() {
            return Err(invalid(
                "component_secret",
                &"",
                "set the shared secret of the server's Component entry (component_secret)",
            ));
        }
        if request.count != 1 {
            return Err(invalid(
                "count",
                &request.count,
                "set 1: a component group is one connection to the server",
            ));
        }
        if !(request.talk_rate > 0.0 && request.talk_rate <= MAX_COMPONENT_RATE) {
            return Err(invalid(
                "talk_rate",
                &request.talk_rate,
                &format!(
                    "set the component's messages per second, above 0 and at most {MAX_COMPONENT_RATE}"
                ),
            ));
        }
        if request.talk_duration_ms == 0 {
            return Err(invalid(
                "talk_duration_ms",
                &request.talk_duration_ms,
                "set how long the component sends, in milliseconds, above 0",
            ));
        }
        if request.rooms > MAX_COMPONENT_ROOMS {
            return Err(invalid(
                "rooms",
                &request.rooms,
                &format!(
                    "set at most {MAX_COMPONENT_ROOMS} rooms for a component, which joins every room"
                ),
            ));
        }
        Ok(Some(ComponentSettings {
            secret: request.component_secret.clone(),
            max_messages: (request.component_messages > 0).then_some(request.component_messages),
        }))
    }
}
