// Many anonymous MUC bots in one Node.js process, written the way a web chat
// client uses @xmpp/client: one client object per user, default features.
// deploy/local/bench_tools.py starts this script to measure what such bots
// cost next to the xmppload agent and Tsung on the same Prosody.
//
// Settings come as one JSON argument (see bench_tools.py). Every second the
// script prints a JSON line with cumulative counters; it exits by itself when
// the last bot has left or the deadline passed.
"use strict";

const { client, xml } = require("@xmpp/client");

const settings = JSON.parse(process.argv[2]);
// The first bot arrives after a pause, so that the process's memory can be
// measured before any connection.
const startDelayMs = (settings.start_delay_s || 0) * 1000;
const started = Date.now() + startDelayMs;
const counters = {
  connected: 0,
  joined: 0,
  left: 0,
  failed: 0,
  sent: 0,
  received: 0,
  stanzas: 0,
};
const timers = new Set();
const errorsSeen = new Set();

// Prints each distinct failure once, so a mass failure stays readable.
function noteError(err) {
  const text = String((err && (err.message || err.condition)) || err);
  if (!errorsSeen.has(text)) {
    errorsSeen.add(text);
    process.stderr.write(`bot failed: ${text}\n`);
  }
}

function later(ms, action) {
  const timer = setTimeout(() => {
    timers.delete(timer);
    action();
  }, Math.max(0, ms));
  timers.add(timer);
}

function report(done) {
  const line = { t_ms: Date.now() - started, done, ...counters };
  process.stdout.write(JSON.stringify(line) + "\n");
}

async function runBot(index) {
  const arrival = started + (index * 1000) / settings.join_rate;
  const nick = `xjs${index}`;
  const roomJid = settings.rooms[index % settings.rooms.length];
  const room = `${roomJid}/${nick}`;
  const xmpp = client({ service: settings.service, domain: settings.domain });
  // A load bot must not come back on its own after the server closed it.
  xmpp.reconnect.stop();
  // The library gives up after 2 s. A busy load machine can take longer to
  // finish a TLS handshake, and a slow bot is not a failed one.
  xmpp.timeout = 10000;
  xmpp.on("error", () => {});

  let joined = false;
  xmpp.on("stanza", (stanza) => {
    counters.stanzas += 1;
    if (stanza.is("message") && stanza.attrs.type === "groupchat") {
      counters.received += 1;
    } else if (!joined && stanza.is("presence") && stanza.attrs.from === room) {
      joined = true;
      counters.joined += 1;
    }
  });

  try {
    await xmpp.start();
  } catch (err) {
    counters.failed += 1;
    noteError(err);
    return;
  }
  counters.connected += 1;
  await xmpp.send(
    xml("presence", { to: room }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })),
  );

  const body = "x".repeat(settings.body_bytes);
  const interval = 1000 / settings.talk_rate;
  const messages = settings.talk_rate > 0
    ? Math.round(settings.talk_duration_s * settings.talk_rate)
    : 0;
  for (let k = 0; k < messages; k += 1) {
    later(arrival + settings.talk_after_s * 1000 + k * interval - Date.now(), () => {
      counters.sent += 1;
      xmpp
        .send(xml("message", { to: roomJid, type: "groupchat" }, xml("body", {}, body)))
        .catch(() => {});
    });
  }
  later(arrival + settings.leave_after_s * 1000 - Date.now(), () => {
    xmpp.stop().then(
      () => { counters.left += 1; },
      () => { counters.failed += 1; },
    );
  });
}

for (let index = 0; index < settings.bots; index += 1) {
  later(startDelayMs + (index * 1000) / settings.join_rate, () => runBot(index));
}

const ticker = setInterval(() => report(false), 1000);
const deadline = setTimeout(finish, settings.deadline_s * 1000);
const watcher = setInterval(() => {
  if (counters.left + counters.failed >= settings.bots) {
    finish();
  }
}, 200);

function finish() {
  clearInterval(ticker);
  clearInterval(watcher);
  clearTimeout(deadline);
  for (const timer of timers) {
    clearTimeout(timer);
  }
  report(true);
  process.exit(0);
}
