//! Web-client behaviours against a real Prosody 0.12: each test checks that
//! the server really served the request, not only that a reply came.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{run_group, start_agent, websocket_request};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use xmppload_agent::session::{Inbound, Session};
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_agent::transport::{Endpoint, StreamLimits, tls};
use xmppload_agent::webclient::parse::{self, IqReply, NS_MUC};
use xmppload_agent::webclient::requests;
use xmppload_agent::xml::Element;
use xmppload_proto::v1::{GroupReport, WebClient};

/// Bound on each wait for one stanza in the direct-session tests.
const STANZA_WAIT: Duration = Duration::from_secs(5);

fn archiving_prosody() -> Prosody {
    Prosody::start(ProsodyOptions {
        muc_archive: true,
        ..ProsodyOptions::default()
    })
    .unwrap()
}

fn endpoint(prosody: &Prosody) -> Endpoint {
    Endpoint::WebSocket {
        url: prosody.websocket_url(),
        domain: prosody.domain().to_owned(),
        tls: Arc::clone(&tls::client_config(false).unwrap()),
        limits: StreamLimits::default(),
    }
}

/// Reads stanzas until one satisfies `wanted`, within [`STANZA_WAIT`].
async fn next_matching(session: &mut Session, wanted: impl Fn(&Element) -> bool) -> Element {
    let wait = async {
        loop {
            if let Inbound::Stanza(element) = session.next().await.unwrap()
                && wanted(&element)
            {
                return element;
            }
        }
    };
    tokio::time::timeout(STANZA_WAIT, wait)
        .await
        .expect("the expected stanza did not arrive in time")
}

/// Reads until the iq reply with this id.
async fn reply_to(session: &mut Session, id: &str) -> Element {
    next_matching(session, |e| e.name == "iq" && e.attr("id") == Some(id)).await
}

/// Joins `room` as `nick` and waits for the self-presence.
async fn join(session: &mut Session, room: &str, nick: &str) {
    session
        .send(&format!(
            "<presence xmlns='jabber:client' to='{room}/{nick}'><x xmlns='{NS_MUC}'/></presence>"
        ))
        .await
        .unwrap();
    let own = format!("{room}/{nick}");
    next_matching(session, |e| {
        e.name == "presence"
            && e.attr("from") == Some(&own)
            && parse::muc_status_codes(e).contains(&110)
    })
    .await;
}

/// Sum of the samples of one round-trip kind over all reports.
fn round_trips(reports: &[GroupReport], kind: &str) -> u64 {
    reports
        .iter()
        .flat_map(|report| &report.round_trips)
        .filter(|k| k.kind == kind)
        .map(|k| {
            let histogram: Histogram<u64> = Deserializer::new()
                .deserialize(&mut &k.histogram[..])
                .unwrap();
            histogram.len()
        })
        .sum()
}

/// Count of `kind` in one of the final report's per-kind lists.
fn final_count(list: &[xmppload_proto::v1::ErrorCount], kind: &str) -> u64 {
    list.iter()
        .filter(|c| c.kind == kind)
        .map(|c| c.count)
        .sum()
}

/// The room archive returns the messages sent before, in order, with its disco and carbons.
#[tokio::test]
async fn archive_disco_and_carbons_served() {
    let prosody = archiving_prosody();
    let room = format!("archive@{}", prosody.muc_domain());
    let mut session = Session::establish(&endpoint(&prosody), false)
        .await
        .unwrap();
    join(&mut session, &room, "talker").await;

    let bodies = ["first", "second", "third"];
    for body in bodies {
        session
            .send(&format!(
                "<message xmlns='jabber:client' to='{room}' type='groupchat'><body>{body}</body></message>"
            ))
            .await
            .unwrap();
        next_matching(&mut session, |e| {
            e.name == "message" && e.child_text("body", "jabber:client") == Some(body)
        })
        .await;
    }

    // MAM: the last two of three messages, then <fin/>.
    session
        .send(&requests::mam_last(&room, "m1", "q1", 2))
        .await
        .unwrap();
    let mut archived = Vec::new();
    let fin = loop {
        let element = next_matching(&mut session, |e| {
            e.name == "message" || e.attr("id") == Some("m1")
        })
        .await;
        if element.name == "iq" {
            break element;
        }
        if let Some(message) = parse::archived_message(&element).unwrap() {
            assert_eq!(message.query_id, "q1");
            archived.push(message.body.unwrap().to_owned());
        }
    };
    assert_eq!(archived, ["second", "third"]);
    let fin = match parse::iq_reply(&fin).unwrap() {
        IqReply::Result(result) => parse::mam_fin(result).unwrap(),
        IqReply::Error { condition } => panic!("MAM query failed: {condition}"),
    };
    assert!(!fin.complete, "one older message remains before the page");

    // disco#info of the room lists the MUC feature.
    session
        .send(&requests::disco_info(&room, "d1"))
        .await
        .unwrap();
    let info = reply_to(&mut session, "d1").await;
    let features = parse::disco_features(&info).unwrap();
    assert!(features.contains(&NS_MUC), "room features {features:?}");
    assert!(
        features.contains(&parse::NS_MAM),
        "room features {features:?}"
    );

    // Carbons: anonymous accounts cannot open a second resource of the
    // same account, so the test checks that the server accepted the enable.
    session.send(&requests::carbons_enable("c1")).await.unwrap();
    let carbons = reply_to(&mut session, "c1").await;
    assert_eq!(carbons.attr("type"), Some("result"));

    // Prosody 0.12 rooms have no vCard, and a new anonymous account has
    // none stored, so both replies are the server's documented errors.
    session
        .send(&requests::vcard(Some(&room), "v1"))
        .await
        .unwrap();
    let room_vcard = reply_to(&mut session, "v1").await;
    assert_eq!(
        parse::iq_reply(&room_vcard).unwrap(),
        IqReply::Error {
            condition: "service-unavailable".to_owned()
        }
    );
    session.send(&requests::vcard(None, "v2")).await.unwrap();
    let own_vcard = reply_to(&mut session, "v2").await;
    assert_eq!(
        parse::iq_reply(&own_vcard).unwrap(),
        IqReply::Error {
            condition: "item-not-found".to_owned()
        }
    );
    session.close().await.unwrap();
}

/// A group with the browser behaviour on: every request kind gets its reply, counted and timed.
#[tokio::test]
async fn group_requests_counted_by_kind() {
    const BOTS: u64 = 4;
    const ARCHIVED: u64 = 3;
    let prosody = archiving_prosody();
    let room = format!("web@{}", prosody.muc_domain());

    // A talker fills the archive and stays in the room until every bot
    // has replied to it, so the archive exists when the bots query it.
    let mut talker = Session::establish(&endpoint(&prosody), false)
        .await
        .unwrap();
    join(&mut talker, &room, "talker").await;
    for k in 0..ARCHIVED {
        let body = format!("archived {k}");
        talker
            .send(&format!(
                "<message xmlns='jabber:client' to='{room}' type='groupchat'><body>{body}</body></message>"
            ))
            .await
            .unwrap();
        next_matching(&mut talker, |e| {
            e.child_text("body", "jabber:client") == Some(&body)
        })
        .await;
    }
    // The talker pings and discovers each bot through the room, as an
    // occupant's client may, and counts the bots' results.
    let talker_room = room.clone();
    let talker_task = tokio::spawn(async move {
        let bot_prefix = format!("{talker_room}/web-");
        let (mut asked, mut results) = (0u64, 0u64);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while results < 2 * BOTS {
            let Ok(Ok(Inbound::Stanza(element))) =
                tokio::time::timeout_at(deadline, talker.next()).await
            else {
                break;
            };
            let from = element.attr("from").unwrap_or_default().to_owned();
            if element.name == "presence"
                && element.attr("type").is_none()
                && from.starts_with(&bot_prefix)
            {
                asked += 1;
                talker
                    .send(&requests::ping(&from, &format!("tp{asked}")))
                    .await
                    .unwrap();
                talker
                    .send(&requests::disco_info(&from, &format!("td{asked}")))
                    .await
                    .unwrap();
            } else if element.name == "iq" && element.attr("type") == Some("result") {
                results += 1;
            }
        }
        talker.close().await.unwrap();
        results
    });

    let agent = start_agent().await;
    let mut request = websocket_request(&prosody, "web", "web", BOTS as u32);
    request.talk_rate = 0.0;
    request.leave_after_ms = 4500;
    request.web_client = Some(WebClient {
        disco: true,
        roster: true,
        vcard: true,
        vcard_max_occupants: 10,
        vcard_spread_ms: 500,
        carbons: true,
        mam_max: 10,
        ping_interval_ms: 1000,
        nick_change_every_ms: 0,
        request_timeout_ms: 3000,
    });
    let mut client = agent.client.clone();
    let reports = run_group(&mut client, request).await;
    let last = reports.last().unwrap().counters.clone().unwrap();
    assert_eq!(last.left_total, BOTS, "{last:?}");
    assert_eq!(last.failed_total, 0, "{last:?}");

    // After bind: host disco, roster, carbons and the own vCard, once per bot.
    // After the join: disco#info of the room and of the MUC service, and
    // disco#items of the MUC service.
    assert_eq!(round_trips(&reports, "disco_info"), BOTS * 3);
    assert_eq!(round_trips(&reports, "disco_items"), BOTS * 2);
    assert_eq!(round_trips(&reports, "roster"), BOTS);
    assert_eq!(round_trips(&reports, "carbons"), BOTS);
    assert_eq!(round_trips(&reports, "vcard_self"), BOTS);
    assert_eq!(round_trips(&reports, "vcard_room"), BOTS);
    for kind in [
        "disco_info",
        "disco_items",
        "roster",
        "carbons",
        "mam",
        "ping",
    ] {
        assert_eq!(
            final_count(&last.request_errors, kind),
            0,
            "{kind} errors: {last:?}"
        );
    }
    assert_eq!(final_count(&last.request_errors, "vcard_self"), BOTS);
    assert_eq!(final_count(&last.request_errors, "vcard_room"), BOTS);
    assert!(last.request_timeouts.is_empty(), "{last:?}");

    // Every bot sees the talker and the three other bots. Prosody 0.12
    // sends a vcard-temp request to an occupant on to the occupant's bare
    // JID (muc.lib.lua, handle_iq_to_occupant), so the occupant's server
    // answers, and an anonymous account has no vCard: item-not-found.
    let occupants_seen = BOTS * BOTS;
    assert_eq!(round_trips(&reports, "vcard_occupant"), occupants_seen);
    assert_eq!(
        final_count(&last.request_errors, "vcard_occupant"),
        occupants_seen
    );

    // The talker's ping and disco#info to each bot came back as results.
    assert_eq!(talker_task.await.unwrap(), 2 * BOTS);
    assert_eq!(final_count(&last.iqs_answered, "ping"), BOTS);
    assert_eq!(final_count(&last.iqs_answered, "disco_info"), BOTS);

    // Each bot's archive query returns the talker's messages.
    assert_eq!(round_trips(&reports, "mam"), BOTS);
    assert_eq!(last.mam_messages, BOTS * ARCHIVED);

    // Pings every second from the join to the leave at 4.5 s after
    // connecting: 4 per bot, or 3 when the join took over half a second.
    let pings = round_trips(&reports, "ping");
    assert!((BOTS * 3..=BOTS * 4).contains(&pings), "pings {pings}");
}

/// Nick changes reach the room: another occupant receives the old nick's 303 and the new nick's presence.
#[tokio::test]
async fn nick_changes_seen_by_occupant() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let room = format!("nicks@{}", prosody.muc_domain());
    let mut watcher = Session::establish(&endpoint(&prosody), false)
        .await
        .unwrap();
    join(&mut watcher, &room, "watcher").await;
    let watch_room = room.clone();
    let watcher_task = tokio::spawn(async move {
        // (old occupant JID, new nick) of every 303 presence, then every
        // available presence's occupant JID.
        let mut renames = Vec::new();
        let mut arrivals = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while let Ok(Ok(Inbound::Stanza(element))) =
            tokio::time::timeout_at(deadline, watcher.next()).await
        {
            if element.name != "presence" {
                continue;
            }
            let from = element.attr("from").unwrap_or_default().to_owned();
            if !from.starts_with(&format!("{watch_room}/")) {
                continue;
            }
            if parse::muc_status_codes(&element).contains(&303) {
                renames.push((from, parse::new_nick(&element).unwrap().to_owned()));
            } else if element.attr("type").is_none() {
                arrivals.push(from);
            }
            if renames.len() >= 2 {
                break;
            }
        }
        (renames, arrivals)
    });

    let agent = start_agent().await;
    let mut request = websocket_request(&prosody, "nicks", "nicks", 1);
    request.leave_after_ms = 4000;
    request.web_client = Some(WebClient {
        nick_change_every_ms: 1500,
        ..WebClient::default()
    });
    let mut client = agent.client.clone();
    let reports = run_group(&mut client, request).await;
    let last = reports.last().unwrap().counters.clone().unwrap();
    assert_eq!(last.left_total, 1, "{last:?}");
    assert_eq!(last.failed_total, 0, "{last:?}");
    // Changes are due at 1.5 s and 3 s after the join, before the leave at 4 s.
    assert_eq!(round_trips(&reports, "nick"), 2);
    assert!(last.request_errors.is_empty(), "{last:?}");

    let (renames, arrivals) = watcher_task.await.unwrap();
    assert_eq!(
        renames,
        [
            (format!("{room}/nicks-000000"), "nicks-000000~1".to_owned()),
            (
                format!("{room}/nicks-000000~1"),
                "nicks-000000~2".to_owned()
            ),
        ]
    );
    assert!(
        arrivals.contains(&format!("{room}/nicks-000000~1")),
        "{arrivals:?}"
    );
    // The bot's own messages still come back under the new nick.
    assert_eq!(last.reflections, last.messages_sent);
}
