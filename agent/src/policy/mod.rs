//! Rules on the requests an agent accepts from a coordinator: the servers its
//! bots may connect to ([`targets`]) and how much load it generates
//! ([`limits`]).
//! Both are set on the agent's command line and checked on every
//! `RunGroup` after the request itself is valid.

pub mod capacity;
pub mod limits;
pub mod targets;

pub use capacity::HostCapacity;
pub use limits::{BotReservation, Limits, RunningBots};
pub use targets::{AllowedTarget, TargetParseError, TargetPolicy};
