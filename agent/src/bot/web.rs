//! The bot's side of the web-client behaviours: it owns the
//! [`WebClient`] state, sends the stanzas it returns, and replies to iq
//! requests.

use tokio::time::Instant;

use super::Bot;
use crate::error::BotError;
use crate::session::Session;
use crate::webclient::answer::answer;
use crate::webclient::{BotIdentity, Reaction, WebClient};
use crate::xml::Element;

impl Bot {
    /// Creates the web-client state once the session is bound and sends the
    /// requests a browser makes right after bind.
    pub(super) async fn web_after_bind(&self, session: &mut Session) -> Result<(), BotError> {
        let Some(plan) = &self.plan.web_client else {
            return Ok(());
        };
        let send = {
            let mut web = WebClient::new(
                plan.clone(),
                self.stats.clone(),
                BotIdentity {
                    global_index: self.global_index,
                    nick: self.nick.clone(),
                    rooms: self.rooms.clone(),
                    jid: session.jid().to_owned(),
                },
            );
            let send = web.after_bind(Instant::now());
            *self.web_state() = Some(web);
            send
        };
        send_all(session, &send).await
    }

    /// Sends the requests a browser makes once it is in its rooms.
    pub(super) async fn web_after_join(&self, session: &mut Session) -> Result<(), BotError> {
        let send = self
            .web_state()
            .as_mut()
            .map(|web| web.after_join(Instant::now()))
            .unwrap_or_default();
        send_all(session, &send).await
    }

    /// Sends what is due on the web client's timers.
    pub(super) async fn web_poll(&self, session: &mut Session) -> Result<(), BotError> {
        let send = self
            .web_state()
            .as_mut()
            .map(|web| web.poll(Instant::now()))
            .unwrap_or_default();
        send_all(session, &send).await
    }

    /// Next moment the web client has timed work.
    pub(super) fn web_wake(&self) -> Option<Instant> {
        self.web_state()
            .as_ref()
            .and_then(|web| web.next_wake(Instant::now()))
    }

    /// Passes an inbound stanza to the web client, applies a nick change to
    /// the bot's occupant JIDs, and replies to an iq request addressed to
    /// the bot. Returns true when the stanza was a reply for the web client.
    pub(super) async fn web_react(
        &self,
        session: &mut Session,
        element: &Element,
    ) -> Result<bool, BotError> {
        let reaction = self
            .web_state()
            .as_mut()
            .map(|web| web.on_element(element, Instant::now()))
            .unwrap_or_default();
        let Reaction {
            send,
            renamed,
            consumed,
        } = reaction;
        if let Some((room, occupant)) = renamed {
            self.lock_occupants()[room] = occupant;
        }
        send_all(session, &send).await?;

        // RFC 6120 section 8.2.3 requires a reply to every iq get and set,
        // because the server or the occupant that sent it waits otherwise.
        if let Some((answered, reply)) = answer(element) {
            session.send(&reply).await?;
            self.stats.web.record_answered(answered);
        }
        Ok(consumed)
    }

    fn web_state(&self) -> std::sync::MutexGuard<'_, Option<WebClient>> {
        // A poisoned lock only means a panic elsewhere in this bot's task,
        // which has ended it; the state is still consistent.
        self.web
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn lock_occupants(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.occupants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn send_all(session: &mut Session, stanzas: &[String]) -> Result<(), BotError> {
    for stanza in stanzas {
        session.send(stanza).await?;
    }
    Ok(())
}
