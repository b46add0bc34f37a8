//! XEP-0124 BOSH with XEP-0206: one XMPP stream over HTTP requests.
//!
//! 1. [`BoshTransport::open_stream`] first sends the session creation
//!    request. Its response carries the `sid` and, from Prosody, the first
//!    `<stream:features/>`. After SASL the same call sends a stream restart
//!    (`xmpp:restart='true'`), and the server responds with new features.
//! 2. [`BoshTransport::send`] puts the stanza in a `<body/>` right away when
//!    a request may start. Otherwise it queues the stanza, and the next
//!    request that may start carries every queued stanza, as browser BOSH
//!    clients do. Queued time is part of the latency a bot measures.
//! 3. While the session is open and no request is in flight,
//!    [`BoshTransport::next`] sends an empty body. The connection manager
//!    keeps it waiting for up to `wait` seconds, so it always has a request
//!    to push stanzas into.
//! 4. [`BoshTransport::close`] sends `type='terminate'` with any queued
//!    stanzas. A terminate from
//!    the server with a `condition` fails the bot as
//!    [`BotError::BoshTerminated`].
//!
//! Every request gets the next `rid`, one above the previous. At most
//! `hold + 1` requests are in flight (fewer if the server's `requests`
//! says so): with `hold = 1` that is one long-poll and one carrying data.
//! Each of them has its own keep-alive HTTP connection, which later
//! requests reuse, so a bot opens two connections for its whole session.
//! Responses on different connections can overtake each other, so they are
//! handled in `rid` order.
//!
//! In-flight requests are futures stored in the transport, and finished
//! ones wait in `completed` until their turn. A `next` cancelled by a timer
//! therefore loses no response.

pub mod body;
mod http;

use crate::steps::StepTimes;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

pub use body::BodyError;
pub use http::BoshUrl;

use self::http::{HttpConnection, HttpTarget};
use crate::error::BotError;
use crate::transport::{CLOSE_WAIT, StreamEvent, StreamLimits};

/// Default of the BOSH `hold` attribute: one request held by the server.
pub const DEFAULT_HOLD: u32 = 1;
/// Default of the BOSH `wait` attribute in seconds. Prosody 0.12 caps it at
/// `bosh_max_wait`, 120 s by default.
pub const DEFAULT_WAIT_S: u32 = 60;

/// What a request does, which decides how its response is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Create,
    Restart,
    /// Stanzas, or none for a long-poll.
    Payload,
    Terminate,
}

/// A finished request, as its future returns it.
struct Completed {
    kind: RequestKind,
    /// The connection, when it can carry another request.
    connection: Option<HttpConnection>,
    result: Result<Bytes, BotError>,
}

type Exchange = Pin<Box<dyn Future<Output = (u64, Completed)> + Send>>;

/// Lifecycle state of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Active,
    /// The session ended normally, or a request failed.
    Ended,
    /// The server ended the session with this condition.
    Terminated(String),
}

/// A BOSH session carrying one XMPP stream.
pub struct BoshTransport {
    target: Arc<HttpTarget>,
    domain: String,
    hold: u32,
    /// Requested `wait` in seconds, replaced by the server's value.
    wait_s: u32,
    /// Session id, set by the creation response.
    sid: Option<String>,
    /// `rid` of the next request.
    next_rid: u64,
    /// Lowest `rid` whose response has not been handled.
    next_to_handle: u64,
    max_in_flight: usize,
    /// Keep-alive connections without a request, at most `max_in_flight`.
    idle: Vec<HttpConnection>,
    in_flight: FuturesUnordered<Exchange>,
    /// Response bodies by `rid`, waiting for the ones before them.
    completed: BTreeMap<u64, (RequestKind, Bytes)>,
    /// Events from handled responses that `next` has not returned yet.
    inbox: VecDeque<StreamEvent>,
    /// Stanzas waiting for a request slot, concatenated.
    // NOTE: nothing bounds it but the bot's own schedule. A server that
    // never responds fails the bot by the response timeout instead.
    outbox: String,
    state: State,
}

impl std::fmt::Debug for BoshTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoshTransport")
            .field("url", &self.target.url)
            .field("sid", &self.sid)
            .field("next_rid", &self.next_rid)
            .field("in_flight", &self.in_flight.len())
            .field("state", &self.state)
            .finish()
    }
}

impl BoshTransport {
    /// Opens the first HTTP connection, so that an unreachable server fails
    /// here like it does for the other transports. No BOSH session exists yet.
    /// Its `tcp` connect and `tls` handshake go into `steps`. Later
    /// connections of the session are not timed.
    #[allow(clippy::too_many_arguments)]
    pub async fn connect(
        url: &BoshUrl,
        domain: &str,
        tls: Arc<rustls::ClientConfig>,
        source: Option<IpAddr>,
        limits: StreamLimits,
        hold: u32,
        wait_s: u32,
        steps: &mut StepTimes,
    ) -> Result<BoshTransport, BotError> {
        let target = Arc::new(HttpTarget {
            url: url.clone(),
            tls,
            source,
            limits,
        });
        let first = HttpConnection::open_timed(&target, steps).await?;
        let rid = initial_rid();
        let hold = hold.max(1);
        Ok(BoshTransport {
            target,
            domain: domain.to_owned(),
            hold,
            wait_s: wait_s.max(1),
            sid: None,
            next_rid: rid,
            next_to_handle: rid,
            max_in_flight: hold as usize + 1,
            idle: vec![first],
            in_flight: FuturesUnordered::new(),
            completed: BTreeMap::new(),
            inbox: VecDeque::new(),
            outbox: String::new(),
            state: State::Active,
        })
    }

    /// Sends the session creation request, or a stream restart once the
    /// session exists. The server's response becomes a
    /// [`StreamEvent::Header`] followed by its stanzas.
    pub async fn open_stream(&mut self) -> Result<(), BotError> {
        self.wait_for_slot().await?;
        let rid = self.next_rid;
        match &self.sid {
            None => {
                let text = body::creation_request(rid, &self.domain, self.hold, self.wait_s);
                self.start(RequestKind::Create, text);
            }
            Some(sid) => {
                let text = body::restart_request(rid, sid, &self.domain);
                self.start(RequestKind::Restart, text);
            }
        }
        Ok(())
    }

    /// Sends one element, or queues it until a request may start.
    pub async fn send(&mut self, xml: &str) -> Result<(), BotError> {
        self.check_active()?;
        if self.sid.is_none() {
            return Err(BotError::Unexpected {
                expected: "BOSH session creation",
                got: "a stanza to send before the session exists".to_owned(),
            });
        }
        self.outbox.push_str(xml);
        self.flush();
        Ok(())
    }

    /// Returns the next event, long-polling while nothing is in flight.
    pub async fn next(&mut self) -> Result<StreamEvent, BotError> {
        loop {
            if let Some(event) = self.inbox.pop_front() {
                return Ok(event);
            }
            self.check_active()?;

            self.flush();
            if self.in_flight.is_empty() {
                let Some(sid) = &self.sid else {
                    return Err(BotError::Unexpected {
                        expected: "BOSH session creation",
                        got: "a read before the creation request".to_owned(),
                    });
                };
                let poll = body::payload_request(self.next_rid, sid, "");
                self.start(RequestKind::Payload, poll);
            }
            self.collect_one().await?;
        }
    }

    /// Ends the session with `type='terminate'` and waits up to
    /// [`CLOSE_WAIT`] for the server to respond to every request in flight.
    pub async fn close(&mut self) -> Result<(), BotError> {
        let finish = async {
            if self.state == State::Active
                && let Some(sid) = self.sid.clone()
            {
                self.wait_for_slot().await?;
                let queued = std::mem::take(&mut self.outbox);
                let text = body::terminate_request(self.next_rid, &sid, &queued);
                self.start(RequestKind::Terminate, text);
            }
            while !self.in_flight.is_empty() {
                self.collect_one().await?;
            }
            Ok::<(), BotError>(())
        };
        // Errors after the terminate was sent change nothing for the bot,
        // which is leaving anyway.
        let _ = tokio::time::timeout(CLOSE_WAIT, finish).await;

        self.state = State::Ended;
        self.in_flight.clear();
        self.idle.clear();
        Ok(())
    }

    /// Fails unless the session can still carry requests.
    fn check_active(&self) -> Result<(), BotError> {
        match &self.state {
            State::Active => Ok(()),
            State::Ended => Err(BotError::Closed),
            State::Terminated(condition) => Err(BotError::BoshTerminated {
                condition: condition.clone(),
            }),
        }
    }

    /// Waits until one more request may be sent. Responses that arrive
    /// meanwhile are handled, so their events wait in the inbox.
    async fn wait_for_slot(&mut self) -> Result<(), BotError> {
        loop {
            self.check_active()?;
            if self.in_flight.len() < self.max_in_flight {
                return Ok(());
            }
            self.collect_one().await?;
        }
    }

    /// Starts a request with the queued stanzas when a request may start.
    fn flush(&mut self) {
        if self.outbox.is_empty() || self.in_flight.len() >= self.max_in_flight {
            return;
        }
        let Some(sid) = &self.sid else {
            return;
        };
        let text = body::payload_request(self.next_rid, sid, &self.outbox);
        self.outbox.clear();
        self.start(RequestKind::Payload, text);
    }

    /// Starts a request with the next `rid` on an idle connection, or on a
    /// new one when none is idle.
    fn start(&mut self, kind: RequestKind, text: String) {
        let rid = self.next_rid;
        self.next_rid += 1;

        let connection = loop {
            match self.idle.pop() {
                Some(connection) if connection.is_closed() => continue,
                other => break other,
            }
        };
        let target = Arc::clone(&self.target);
        // The server may hold the request for `wait` seconds before it
        // starts the response.
        let response_timeout =
            Duration::from_secs(u64::from(self.wait_s)) + self.target.limits.stall_timeout;
        let exchange = async move {
            let (connection, result) =
                exchange(&target, connection, Bytes::from(text), response_timeout).await;
            let completed = Completed {
                kind,
                connection,
                result,
            };
            (rid, completed)
        };
        self.in_flight.push(Box::pin(exchange));
    }

    /// Waits for one request to finish and handles every response whose
    /// turn has come. A failed request fails the session at once.
    async fn collect_one(&mut self) -> Result<(), BotError> {
        let Some((rid, completed)) = self.in_flight.next().await else {
            return Ok(());
        };
        if let Some(connection) = completed.connection
            && self.idle.len() < self.max_in_flight
        {
            self.idle.push(connection);
        }
        let bytes = match completed.result {
            Ok(bytes) => bytes,
            Err(err) => {
                self.state = State::Ended;
                return Err(err);
            }
        };
        self.completed.insert(rid, (completed.kind, bytes));

        while let Some((kind, bytes)) = self.completed.remove(&self.next_to_handle) {
            self.next_to_handle += 1;
            if let Err(err) = self.handle(kind, &bytes) {
                self.state = State::Ended;
                return Err(err);
            }
        }
        Ok(())
    }

    /// Turns one response into inbox events and session state.
    fn handle(&mut self, kind: RequestKind, bytes: &[u8]) -> Result<(), BotError> {
        if self.state != State::Active {
            // Responses after the end, such as held polls that completed after
            // a terminate, carry nothing the bot may still read.
            return Ok(());
        }
        let expected = body::Expected {
            sid: self.sid.as_deref(),
            highest_rid: self.next_rid - 1,
        };
        let response = body::parse_response(bytes, expected, self.target.limits.max_stanza_bytes)?;

        match kind {
            RequestKind::Create if response.terminate.is_none() => {
                self.sid = response.sid;
                if let Some(requests) = response.requests {
                    let allowed = usize::try_from(requests).unwrap_or(usize::MAX).max(1);
                    self.max_in_flight = self.max_in_flight.min(allowed);
                }
                if let Some(wait) = response.wait {
                    self.wait_s = wait.max(1);
                }
                self.inbox.push_back(StreamEvent::Header);
            }
            RequestKind::Restart if response.terminate.is_none() => {
                self.inbox.push_back(StreamEvent::Header);
            }
            _ => {}
        }
        self.inbox
            .extend(response.stanzas.into_iter().map(StreamEvent::Stanza));

        match response.terminate {
            None if kind == RequestKind::Terminate => {
                self.inbox.push_back(StreamEvent::End);
                self.state = State::Ended;
            }
            None => {}
            Some(Some(condition)) if kind != RequestKind::Terminate => {
                self.state = State::Terminated(condition);
            }
            Some(_) => {
                self.inbox.push_back(StreamEvent::End);
                self.state = State::Ended;
            }
        }
        Ok(())
    }
}

/// Runs one request on `connection`, or on a new connection, and returns
/// the connection when it can carry another request.
async fn exchange(
    target: &HttpTarget,
    connection: Option<HttpConnection>,
    text: Bytes,
    response_timeout: Duration,
) -> (Option<HttpConnection>, Result<Bytes, BotError>) {
    let reused = connection.is_some();
    let mut connection = match connection {
        Some(connection) => connection,
        None => match HttpConnection::open(target).await {
            Ok(connection) => connection,
            Err(err) => return (None, Err(err)),
        },
    };
    let mut result = connection
        .post(target, text.clone(), response_timeout)
        .await;

    // The server may close an idle keep-alive connection just as a request
    // goes out on it. XEP-0124 section 14.3 lets the client send the same
    // rid again, so that case gets one retry on a fresh connection.
    let stale = matches!(&result, Err(BotError::Http(err))
        if err.is_canceled() || err.is_closed() || err.is_incomplete_message());
    if reused && stale {
        connection = match HttpConnection::open(target).await {
            Ok(connection) => connection,
            Err(err) => return (None, Err(err)),
        };
        result = connection.post(target, text, response_timeout).await;
    }

    let reusable = result.is_ok() && !connection.is_closed();
    (reusable.then_some(connection), result)
}

/// Returns a random first `rid`. XEP-0124 requires an unpredictable value
/// far enough below 2^53 that the session can never reach that limit, and a
/// start below 2^32 leaves room for billions of requests.
fn initial_rid() -> u64 {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (random % (1 << 32)) + 1
}
