//! Tests of the web-client state machine without a server.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::xml::Scope;

const ROOM: &str = "lobby@muc.example";

fn plan() -> WebClientPlan {
    WebClientPlan {
        disco: false,
        roster: false,
        vcard: false,
        vcard_max_occupants: 0,
        vcard_spread: Duration::ZERO,
        carbons: false,
        mam_max: 0,
        ping_interval: None,
        nick_change_every: None,
        request_timeout: Duration::from_secs(10),
    }
}

fn client(plan: WebClientPlan) -> (WebClient, Arc<GroupStats>) {
    let stats = Arc::new(GroupStats::new());
    let web = WebClient::new(
        Arc::new(plan),
        Arc::clone(&stats),
        BotIdentity {
            global_index: 1,
            nick: "bot1".to_owned(),
            rooms: vec![ROOM.to_owned()],
            jid: "u1@host.example/res".to_owned(),
        },
    );
    (web, stats)
}

fn parse(xml: &str) -> Element {
    Element::parse(xml, &Scope::client_stream()).unwrap()
}

fn id_of(stanza: &str) -> String {
    parse(stanza).attr("id").unwrap().to_owned()
}

fn counters(stats: &GroupStats) -> xmppload_proto::v1::GroupCounters {
    stats.counters()
}

/// After bind, each switch sends its request to the right address.
#[test]
fn after_bind_sends_switched_requests() {
    let (mut web, _) = client(WebClientPlan {
        disco: true,
        roster: true,
        carbons: true,
        vcard: true,
        ..plan()
    });
    let sent: Vec<Element> = web
        .after_bind(Instant::now())
        .iter()
        .map(|s| parse(s))
        .collect();
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[0].attr("to"), Some("host.example"));
    assert!(sent[0].child("query", parse::NS_DISCO_INFO).is_some());
    assert!(sent[1].child("query", parse::NS_DISCO_ITEMS).is_some());
    assert!(sent[2].child("query", parse::NS_ROSTER).is_some());
    assert!(sent[3].child("enable", parse::NS_CARBONS).is_some());
    assert!(sent[4].child("vCard", parse::NS_VCARD).is_some());
    assert_eq!(sent[4].attr("to"), None);
}

/// Replies are consumed, error replies counted, and unknown ids left alone.
#[test]
fn replies_are_matched_by_id() {
    let (mut web, stats) = client(WebClientPlan {
        roster: true,
        carbons: true,
        ..plan()
    });
    let sent = web.after_bind(Instant::now());
    let roster_id = id_of(&sent[0]);
    let carbons_id = id_of(&sent[1]);

    let result = parse(&format!("<iq type='result' id='{roster_id}'/>"));
    assert!(web.on_element(&result, Instant::now()).consumed);
    let error = parse(&format!(
        "<iq type='error' id='{carbons_id}'><error type='cancel'>\
         <feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
    assert!(web.on_element(&error, Instant::now()).consumed);
    // A second reply to the same id, or an unknown one, is not ours.
    assert!(!web.on_element(&result, Instant::now()).consumed);

    let counters = counters(&stats);
    assert_eq!(counters.request_errors.len(), 1);
    assert_eq!(counters.request_errors[0].kind, "carbons");
    let kinds: Vec<String> = stats
        .round_trips
        .take()
        .into_iter()
        .map(|k| k.kind)
        .collect();
    assert_eq!(kinds, ["carbons", "roster"]);
}

/// Occupant vCards: one per distinct occupant, capped, and never our own.
#[test]
fn occupant_vcards_capped_and_deduplicated() {
    let (mut web, _) = client(WebClientPlan {
        vcard: true,
        vcard_max_occupants: 2,
        ..plan()
    });
    let now = Instant::now();
    let mut sent = Vec::new();
    for nick in ["a", "a", "bot1", "b", "c"] {
        let presence = parse(&format!("<presence from='{ROOM}/{nick}'/>"));
        sent.extend(web.on_element(&presence, now).send);
    }
    // Before the join nothing goes out; the room vCard and both occupants after.
    assert!(sent.is_empty());
    let after_join: Vec<Element> = web.after_join(now).iter().map(|s| parse(s)).collect();
    let targets: Vec<&str> = after_join.iter().filter_map(|iq| iq.attr("to")).collect();
    assert_eq!(targets, [ROOM, &format!("{ROOM}/a"), &format!("{ROOM}/b")]);
}

/// No more than VCARD_IN_FLIGHT occupant vCards are outstanding.
#[test]
fn occupant_vcards_limited_in_flight() {
    let (mut web, _) = client(WebClientPlan {
        vcard: true,
        vcard_max_occupants: 100,
        ..plan()
    });
    let now = Instant::now();
    let room_vcard = web.after_join(now);
    assert_eq!(room_vcard.len(), 1);
    let mut sent = Vec::new();
    for k in 0..10 {
        let presence = parse(&format!("<presence from='{ROOM}/n{k}'/>"));
        sent.extend(web.on_element(&presence, now).send);
    }
    assert_eq!(sent.len(), VCARD_IN_FLIGHT);
    let reply = parse(&format!("<iq type='result' id='{}'/>", id_of(&sent[0])));
    assert_eq!(web.on_element(&reply, now).send.len(), 1);
}

/// The vCard spread delays occupant fetches by an offset inside the window.
#[test]
fn vcard_spread_delays_fetches() {
    let (mut web, _) = client(WebClientPlan {
        vcard: true,
        vcard_max_occupants: 10,
        vcard_spread: Duration::from_secs(10),
        ..plan()
    });
    let now = Instant::now();
    let presence = parse(&format!("<presence from='{ROOM}/x'/>"));
    web.on_element(&presence, now);
    assert_eq!(
        web.after_join(now).len(),
        1,
        "only the room vCard at the join"
    );
    let wake = web.next_wake(now).unwrap();
    // Bot 1's offset is 0.618 of the window.
    assert!(wake > now + Duration::from_secs(6), "woke too early");
    assert!(wake < now + Duration::from_secs(7), "woke too late");
    assert_eq!(web.poll(wake).len(), 1);
}

/// Requests without a reply in time count as timeouts by kind.
#[test]
fn unanswered_requests_time_out() {
    let (mut web, stats) = client(WebClientPlan {
        roster: true,
        ..plan()
    });
    let now = Instant::now();
    web.after_bind(now);
    assert_eq!(web.next_wake(now), Some(now + Duration::from_secs(10)));
    web.poll(now + Duration::from_secs(9));
    assert!(counters(&stats).request_timeouts.is_empty());
    web.poll(now + Duration::from_secs(10));
    let counters = counters(&stats);
    assert_eq!(counters.request_timeouts[0].kind, "roster");
    assert_eq!(counters.request_timeouts[0].count, 1);
    assert_eq!(web.next_wake(now + Duration::from_secs(10)), None);
}

/// Pings go out on the interval from the join, to the host.
#[test]
fn pings_follow_the_interval() {
    let (mut web, _) = client(WebClientPlan {
        ping_interval: Some(Duration::from_secs(5)),
        request_timeout: Duration::from_secs(60),
        ..plan()
    });
    let joined = Instant::now();
    assert!(web.after_join(joined).is_empty());
    assert!(web.poll(joined + Duration::from_secs(4)).is_empty());
    let ping = web.poll(joined + Duration::from_secs(5));
    assert_eq!(ping.len(), 1);
    let ping = parse(&ping[0]);
    assert_eq!(ping.attr("to"), Some("host.example"));
    assert!(ping.child("ping", parse::NS_PING).is_some());
    assert_eq!(
        web.next_wake(joined + Duration::from_secs(5)),
        Some(joined + Duration::from_secs(10))
    );
}

/// A ping timer far behind sends one ping and moves a whole interval on.
#[test]
fn late_ping_timer_skips_missed_pings() {
    let (mut web, _) = client(WebClientPlan {
        ping_interval: Some(Duration::from_secs(5)),
        request_timeout: Duration::from_secs(60),
        ..plan()
    });
    let joined = Instant::now();
    web.after_join(joined);
    let late = joined + Duration::from_secs(17);
    assert_eq!(web.poll(late).len(), 1);
    assert!(
        web.poll(late).is_empty(),
        "a second ping at the same instant"
    );
    assert_eq!(web.next_wake(late), Some(late + Duration::from_secs(5)));
}

/// A nick change: the 303 renames and is consumed, the new self-presence times it.
#[test]
fn nick_change_renames_and_is_timed() {
    let (mut web, stats) = client(WebClientPlan {
        nick_change_every: Some(Duration::from_secs(2)),
        ..plan()
    });
    let joined = Instant::now();
    web.after_join(joined);
    let sent = web.poll(joined + Duration::from_secs(2));
    assert_eq!(sent.len(), 1);
    let presence = parse(&sent[0]);
    assert_eq!(presence.attr("to"), Some(&*format!("{ROOM}/bot1~1")));

    let gone = parse(&format!(
        "<presence type='unavailable' from='{ROOM}/bot1'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <item nick='bot1~1'/><status code='303'/><status code='110'/></x></presence>"
    ));
    let reaction = web.on_element(&gone, joined + Duration::from_secs(2));
    assert!(reaction.consumed);
    assert_eq!(reaction.renamed, Some((0, format!("{ROOM}/bot1~1"))));

    let back = parse(&format!(
        "<presence from='{ROOM}/bot1~1'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <status code='110'/></x></presence>"
    ));
    assert!(
        !web.on_element(&back, joined + Duration::from_secs(2))
            .consumed
    );
    let kinds: Vec<String> = stats
        .round_trips
        .take()
        .into_iter()
        .map(|k| k.kind)
        .collect();
    assert_eq!(kinds, ["nick"]);
}

/// A rejected nick change is consumed and counted as an error.
#[test]
fn rejected_nick_change_counted() {
    let (mut web, stats) = client(WebClientPlan {
        nick_change_every: Some(Duration::from_secs(2)),
        ..plan()
    });
    let joined = Instant::now();
    web.after_join(joined);
    let sent = web.poll(joined + Duration::from_secs(2));
    let error = parse(&format!(
        "<presence type='error' id='{}' from='{ROOM}/bot1~1'><error type='cancel'>\
         <conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
        id_of(&sent[0])
    ));
    assert!(
        web.on_element(&error, joined + Duration::from_secs(2))
            .consumed
    );
    assert_eq!(counters(&stats).request_errors[0].kind, "nick");
}

/// Archived messages of our query are counted; others are not ours.
#[test]
fn archived_messages_counted() {
    let (mut web, stats) = client(WebClientPlan {
        mam_max: 5,
        ..plan()
    });
    let sent = web.after_join(Instant::now());
    let iq = parse(&sent[0]);
    let query_id = iq
        .child("query", parse::NS_MAM)
        .and_then(|q| q.attr("queryid"))
        .unwrap()
        .to_owned();
    let archived = |query: &str| {
        parse(&format!(
            "<message from='{ROOM}'><result xmlns='urn:xmpp:mam:2' queryid='{query}' id='1'>\
             <forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='groupchat'>\
             <body>b</body></message></forwarded></result></message>"
        ))
    };
    assert!(
        web.on_element(&archived(&query_id), Instant::now())
            .consumed
    );
    assert!(
        web.on_element(&archived(&query_id), Instant::now())
            .consumed
    );
    assert!(!web.on_element(&archived("other"), Instant::now()).consumed);
    let fin = parse(&format!(
        "<iq type='result' id='{}'><fin xmlns='urn:xmpp:mam:2' complete='true'/></iq>",
        id_of(&sent[0])
    ));
    assert!(web.on_element(&fin, Instant::now()).consumed);
    let counters = counters(&stats);
    assert_eq!(counters.mam_messages, 2);
    assert!(counters.request_errors.is_empty());
}

/// Host part of JIDs of each shape.
#[test]
fn bare_domain_of_jids() {
    assert_eq!(bare_domain("u@h/r"), "h");
    assert_eq!(bare_domain("room@muc.h"), "muc.h");
    assert_eq!(bare_domain("h"), "h");
    assert_eq!(bare_domain("h/r"), "h");
}
