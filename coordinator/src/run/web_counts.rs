//! Totals of a group's web-client counters over its agents' final reports.

use std::collections::BTreeMap;

use xmppload_proto::v1::GroupCounters;

/// Adds one slice's web-client counters to `totals`, keyed
/// `error.KIND`, `timeout.KIND`, `answered.KIND` and `mam_messages`.
/// Zero counts add no key.
pub fn add(totals: &mut BTreeMap<String, u64>, counters: &GroupCounters) {
    for (prefix, list) in [
        ("error", &counters.request_errors),
        ("timeout", &counters.request_timeouts),
        ("answered", &counters.iqs_answered),
    ] {
        for count in list.iter().filter(|count| count.count > 0) {
            *totals
                .entry(format!("{prefix}.{}", count.kind))
                .or_default() += count.count;
        }
    }
    if counters.mam_messages > 0 {
        *totals.entry("mam_messages".to_owned()).or_default() += counters.mam_messages;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmppload_proto::v1::ErrorCount;

    fn count(kind: &str, count: u64) -> ErrorCount {
        ErrorCount {
            kind: kind.to_owned(),
            count,
        }
    }

    /// Two slices' counts add up under prefixed keys.
    #[test]
    fn slices_add_up_by_key() {
        let slice = GroupCounters {
            request_errors: vec![count("vcard_room", 3)],
            request_timeouts: vec![count("ping", 1)],
            iqs_answered: vec![count("ping", 2), count("other", 0)],
            mam_messages: 10,
            ..GroupCounters::default()
        };
        let mut totals = BTreeMap::new();
        add(&mut totals, &slice);
        add(&mut totals, &slice);
        let expected: BTreeMap<String, u64> = [
            ("answered.ping", 4),
            ("error.vcard_room", 6),
            ("mam_messages", 20),
            ("timeout.ping", 2),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        assert_eq!(totals, expected);
    }
}
