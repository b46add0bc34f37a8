//! Validation of the `web_client` field of a `RunGroupRequest`.

use std::time::Duration;

use tonic::Status;
use xmppload_proto::v1::WebClient as ProtoWebClient;

/// Largest accepted `mam_max`. Prosody 0.12 caps a page at
/// `max_archive_query_results` (50 by default) anyway, so more is a typo.
pub const MAX_MAM_MAX: u32 = 1000;
/// Largest accepted `vcard_max_occupants`.
pub const MAX_VCARD_OCCUPANTS: u32 = 10_000;
/// Shortest accepted ping interval; shorter is a ping flood, not a client.
pub const MIN_PING_INTERVAL: Duration = Duration::from_millis(100);
/// Shortest accepted interval between nickname changes. Each change makes
/// the room send two presences to every occupant, so faster is a flood.
pub const MIN_NICK_CHANGE_EVERY: Duration = Duration::from_secs(1);
/// Reply wait when `request_timeout_ms` is 0.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest accepted duration of any web-client field (one day).
pub const MAX_WEB_DURATION_MS: u64 = 24 * 3600 * 1000;

/// Browser-like behaviours of one group, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebClientPlan {
    pub disco: bool,
    pub roster: bool,
    pub vcard: bool,
    /// Most occupant vCards one bot fetches.
    pub vcard_max_occupants: u32,
    /// Window over which bots spread the start of their occupant vCard
    /// fetches; zero starts them at the join.
    pub vcard_spread: Duration,
    pub carbons: bool,
    /// Messages requested from each room's archive; 0 sends no query.
    pub mam_max: u32,
    pub ping_interval: Option<Duration>,
    pub nick_change_every: Option<Duration>,
    pub request_timeout: Duration,
}

impl WebClientPlan {
    /// Checks the request's `web_client`; `None` when it is absent or
    /// switches nothing on.
    pub fn from_proto(web: Option<&ProtoWebClient>) -> Result<Option<WebClientPlan>, Status> {
        let Some(web) = web else {
            return Ok(None);
        };
        for (name, value) in [
            ("web_client.vcard_spread_ms", web.vcard_spread_ms),
            ("web_client.ping_interval_ms", web.ping_interval_ms),
            ("web_client.nick_change_every_ms", web.nick_change_every_ms),
            ("web_client.request_timeout_ms", web.request_timeout_ms),
        ] {
            if value > MAX_WEB_DURATION_MS {
                return Err(invalid(
                    name,
                    &value,
                    &format!("set at most {MAX_WEB_DURATION_MS} ms (one day)"),
                ));
            }
        }
        if web.mam_max > MAX_MAM_MAX {
            return Err(invalid(
                "web_client.mam_max",
                &web.mam_max,
                &format!("set 0 for no archive query, or at most {MAX_MAM_MAX} messages"),
            ));
        }
        if web.vcard_max_occupants > MAX_VCARD_OCCUPANTS {
            return Err(invalid(
                "web_client.vcard_max_occupants",
                &web.vcard_max_occupants,
                &format!("set at most {MAX_VCARD_OCCUPANTS} vCards per bot"),
            ));
        }
        let ping_interval = optional_interval(
            "web_client.ping_interval_ms",
            web.ping_interval_ms,
            MIN_PING_INTERVAL,
        )?;
        let nick_change_every = optional_interval(
            "web_client.nick_change_every_ms",
            web.nick_change_every_ms,
            MIN_NICK_CHANGE_EVERY,
        )?;
        let request_timeout = match web.request_timeout_ms {
            0 => DEFAULT_REQUEST_TIMEOUT,
            ms => Duration::from_millis(ms),
        };

        let plan = WebClientPlan {
            disco: web.disco,
            roster: web.roster,
            vcard: web.vcard,
            vcard_max_occupants: web.vcard_max_occupants,
            vcard_spread: Duration::from_millis(web.vcard_spread_ms),
            carbons: web.carbons,
            mam_max: web.mam_max,
            ping_interval,
            nick_change_every,
            request_timeout,
        };
        Ok(plan.is_active().then_some(plan))
    }

    /// True when at least one behaviour is on.
    pub fn is_active(&self) -> bool {
        self.disco
            || self.roster
            || self.vcard
            || self.carbons
            || self.mam_max > 0
            || self.ping_interval.is_some()
            || self.nick_change_every.is_some()
    }
}

/// `None` for 0, otherwise an interval of at least `min`.
fn optional_interval(name: &str, ms: u64, min: Duration) -> Result<Option<Duration>, Status> {
    if ms == 0 {
        return Ok(None);
    }
    let interval = Duration::from_millis(ms);
    if interval < min {
        return Err(invalid(
            name,
            &ms,
            &format!("set 0 to switch it off, or at least {} ms", min.as_millis()),
        ));
    }
    Ok(Some(interval))
}

fn invalid(field: &str, value: &dyn std::fmt::Debug, fix: &str) -> Status {
    Status::invalid_argument(format!("invalid `{field}` {value:?}: {fix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An absent or all-off message gives no plan.
    #[test]
    fn nothing_switched_on_gives_none() {
        assert_eq!(WebClientPlan::from_proto(None).unwrap(), None);
        let off = ProtoWebClient::default();
        assert_eq!(WebClientPlan::from_proto(Some(&off)).unwrap(), None);
    }

    /// Zero durations switch behaviours off and select the default timeout.
    #[test]
    fn zero_durations_mean_off_and_default() {
        let web = ProtoWebClient {
            disco: true,
            ..ProtoWebClient::default()
        };
        let plan = WebClientPlan::from_proto(Some(&web)).unwrap().unwrap();
        assert!(plan.disco);
        assert_eq!(plan.ping_interval, None);
        assert_eq!(plan.nick_change_every, None);
        assert_eq!(plan.request_timeout, DEFAULT_REQUEST_TIMEOUT);
    }

    /// Each out-of-range field is rejected with its name.
    #[test]
    fn out_of_range_fields_are_named() {
        let cases = [
            (
                ProtoWebClient {
                    ping_interval_ms: 50,
                    ..ProtoWebClient::default()
                },
                "web_client.ping_interval_ms",
            ),
            (
                ProtoWebClient {
                    nick_change_every_ms: 500,
                    ..ProtoWebClient::default()
                },
                "web_client.nick_change_every_ms",
            ),
            (
                ProtoWebClient {
                    mam_max: MAX_MAM_MAX + 1,
                    ..ProtoWebClient::default()
                },
                "web_client.mam_max",
            ),
            (
                ProtoWebClient {
                    vcard: true,
                    vcard_max_occupants: MAX_VCARD_OCCUPANTS + 1,
                    ..ProtoWebClient::default()
                },
                "web_client.vcard_max_occupants",
            ),
            (
                ProtoWebClient {
                    request_timeout_ms: MAX_WEB_DURATION_MS + 1,
                    ..ProtoWebClient::default()
                },
                "web_client.request_timeout_ms",
            ),
        ];
        for (web, field) in cases {
            let err = WebClientPlan::from_proto(Some(&web)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert!(err.message().contains(field), "{field}: {}", err.message());
        }
    }
}
