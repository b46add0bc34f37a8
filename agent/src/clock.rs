//! The agent's wall clock, with an offset that tests set.
//!
//! Every timestamp the agent sends (reports, phase times, the `Clock` RPC)
//! and every schedule it follows (group start, bot start times, deadlines)
//! is read from one [`AgentClock`]. Shifting it therefore shifts the agent
//! as a whole, as a machine whose clock is off would be, and a test can check
//! that the coordinator's offset estimate undoes the shift.

use xmppload_proto::unix_micros_now;

/// System time plus a fixed offset, in Unix microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentClock {
    /// Added to the system clock; 0 outside tests.
    pub offset_micros: i64,
}

impl AgentClock {
    pub fn now(&self) -> i64 {
        unix_micros_now().saturating_add(self.offset_micros)
    }
}
