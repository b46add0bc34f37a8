//! Counters of the web-client requests, shared by the bots of one slice.

use std::sync::atomic::{AtomicU64, Ordering};

use xmppload_proto::v1::{ErrorCount, GroupCounters};

use super::answer::Answered;
use super::requests::Kind;

/// Cumulative counts that fill `GroupCounters` fields 30-39.
#[derive(Debug, Default)]
pub struct WebStats {
    /// Error replies, indexed by [`Kind::index`].
    request_errors: [AtomicU64; Kind::ALL.len()],
    /// Requests without a reply in time, indexed by [`Kind::index`].
    request_timeouts: [AtomicU64; Kind::ALL.len()],
    /// Requests the bots replied to, indexed by [`Answered::index`].
    answered: [AtomicU64; Answered::ALL.len()],
    /// Archived messages received in MAM results.
    pub mam_messages: AtomicU64,
}

impl WebStats {
    pub fn record_error(&self, kind: Kind) {
        self.request_errors[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_timeout(&self, kind: Kind) {
        self.request_timeouts[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_answered(&self, answered: Answered) {
        self.answered[answered.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Copies the counts into `counters`, leaving out kinds with none.
    pub fn fill(&self, counters: &mut GroupCounters) {
        let by_kind = |counts: &[AtomicU64; Kind::ALL.len()]| -> Vec<ErrorCount> {
            Kind::ALL
                .iter()
                .map(|kind| ErrorCount {
                    kind: kind.as_str().to_owned(),
                    count: counts[kind.index()].load(Ordering::Relaxed),
                })
                .filter(|count| count.count > 0)
                .collect()
        };
        counters.request_errors = by_kind(&self.request_errors);
        counters.request_timeouts = by_kind(&self.request_timeouts);
        counters.iqs_answered = Answered::ALL
            .iter()
            .map(|answered| ErrorCount {
                kind: answered.as_str().to_owned(),
                count: self.answered[answered.index()].load(Ordering::Relaxed),
            })
            .filter(|count| count.count > 0)
            .collect();
        counters.mam_messages = self.mam_messages.load(Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts land under their kind names, and kinds with none are left out.
    #[test]
    fn counts_fill_by_kind() {
        let stats = WebStats::default();
        stats.record_error(Kind::VcardRoom);
        stats.record_error(Kind::VcardRoom);
        stats.record_timeout(Kind::Ping);
        stats.record_answered(Answered::Vcard);
        stats.mam_messages.fetch_add(4, Ordering::Relaxed);

        let mut counters = GroupCounters::default();
        stats.fill(&mut counters);
        assert_eq!(counters.request_errors.len(), 1);
        assert_eq!(counters.request_errors[0].kind, "vcard_room");
        assert_eq!(counters.request_errors[0].count, 2);
        assert_eq!(counters.request_timeouts[0].kind, "ping");
        assert_eq!(counters.iqs_answered[0].kind, "vcard");
        assert_eq!(counters.mam_messages, 4);
    }
}
