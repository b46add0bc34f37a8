//! A flood source: one XEP-0114 external component that sends groupchat
//! messages into MUC rooms at a set rate, so that a room carries heavy
//! traffic without thousands of client sessions.
//!
//! A component group is one connection, run in place of the bots of a
//! group slice (`count` = 1) and reported through the same counters:
//!
//! 1. Connect to the server's component port and authenticate with the
//!    handshake ([`stream`], [`handshake`]).
//! 2. Join every room of the group as occupant `ROOM/GROUP`, from the JID
//!    `flood@DOMAIN/GROUP` on the component's own domain, because Prosody
//!    0.12 closes a component stream that sends from any other domain
//!    (`invalid-from`, unless `validate_from_addresses` is off). The join
//!    ends when each room has returned the self-presence (status 110).
//! 3. Send message k at flood start + k / rate to room k mod rooms, until
//!    `max_messages` are sent or the talk duration ends. Bodies carry the
//!    bots' [`Marker`](crate::bot::Marker), so bots count them as room
//!    traffic and the component recognises its own reflections.
//! 4. Wait briefly for the remaining reflections, leave the rooms and close.

mod flood;
pub mod handshake;
pub mod settings;
pub mod stream;

pub use flood::Flood;
pub use settings::ComponentSettings;
pub use stream::{ComponentStream, ComponentTarget};
