//! The ejabberd harness and session negotiation against a real ejabberd.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xmppload_agent::session::{Inbound, Session};
use xmppload_agent::testing::Ejabberd;
use xmppload_agent::transport::{Endpoint, StreamLimits, TlsMode, tls};

/// Bound on waiting for the server to act (send `<r/>`, end processes).
const WAIT_BOUND: Duration = Duration::from_secs(5);

fn endpoints(ejabberd: &Ejabberd) -> [Endpoint; 2] {
    let tls = tls::client_config(false).unwrap();
    [
        Endpoint::Tcp {
            host: "127.0.0.1".to_owned(),
            port: ejabberd.c2s_addr().port(),
            domain: ejabberd.domain().to_owned(),
            tls_mode: TlsMode::Never,
            tls: Arc::clone(&tls),
            limits: StreamLimits::default(),
        },
        Endpoint::WebSocket {
            url: ejabberd.websocket_url(),
            domain: ejabberd.domain().to_owned(),
            tls,
            limits: StreamLimits::default(),
        },
    ]
}

/// Live (not zombie) processes as (pid, parent pid), from /proc.
fn processes() -> Vec<(u32, u32)> {
    let mut processes = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, ...
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let parent = fields.get(1).and_then(|field| field.parse().ok());
        if let (Some(&state), Some(parent)) = (fields.first(), parent)
            && state != "Z"
        {
            processes.push((pid, parent));
        }
    }
    processes
}

/// Pids of `root` and all its live descendants.
fn process_tree(root: u32) -> Vec<u32> {
    let all = processes();
    let mut tree = Vec::new();
    if all.iter().any(|(pid, _)| *pid == root) {
        tree.push(root);
    }
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(
            all.iter()
                .filter(|(_, p)| *p == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    tree
}

/// Pids among `pids` that still run, as live processes.
fn alive(pids: &[u32]) -> Vec<u32> {
    let live = processes();
    pids.iter()
        .copied()
        .filter(|pid| live.iter().any(|(p, _)| p == pid))
        .collect()
}

/// Stream management negotiates on c2s and WebSocket, and acks are accepted.
#[tokio::test]
async fn ejabberd_sessions_with_acks() {
    let ejabberd = Ejabberd::start().unwrap();
    for endpoint in endpoints(&ejabberd) {
        let mut session = Session::establish(&endpoint, true).await.unwrap();
        let jid = session.jid().to_owned();
        assert!(jid.contains("@anon.localhost/"), "bound JID {jid}");

        // Two rounds: a wrong h in the first reply would make ejabberd end
        // the stream with an error before or during the second.
        for round in 0..2 {
            session
                .send(&format!(
                    "<message xmlns='jabber:client' to='{jid}' type='chat'><body>{round}</body></message>"
                ))
                .await
                .unwrap();
            let wait = async { while session.next().await.unwrap() != Inbound::AckRequest {} };
            tokio::time::timeout(WAIT_BOUND, wait)
                .await
                .expect("ejabberd sent no <r/>");
            session.send_ack().await.unwrap();
        }
        session.close().await.unwrap();
    }
}

/// The template's BOSH endpoint opens a session on request.
#[test]
fn ejabberd_serves_bosh() {
    let ejabberd = Ejabberd::start().unwrap();
    assert!(ejabberd.bosh_url().ends_with("/http-bind"));

    let body = format!(
        "<body xmlns='http://jabber.org/protocol/httpbind' rid='1000' to='{}' \
         wait='1' hold='1' ver='1.6' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>",
        ejabberd.domain()
    );
    let request = format!(
        "POST /http-bind HTTP/1.1\r\nHost: {}\r\nContent-Type: text/xml; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        ejabberd.http_addr(),
        body.len()
    );
    let mut stream = TcpStream::connect(ejabberd.http_addr()).unwrap();
    stream.set_read_timeout(Some(WAIT_BOUND)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();

    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(" sid="), "no BOSH session id: {response}");
    assert!(
        response.contains("urn:ietf:params:xml:ns:xmpp-sasl"),
        "no SASL mechanisms: {response}"
    );
}

/// The pidfile names the VM, and drop ends the VM, its helpers and the run directory.
#[test]
fn ejabberd_drop_cleans_up() {
    let ejabberd = Ejabberd::start().unwrap();
    let pid = ejabberd.pid();
    let run_dir = ejabberd.run_dir().to_owned();
    let pidfile = std::fs::read_to_string(ejabberd.pidfile()).unwrap();
    assert_eq!(pidfile.trim(), pid.to_string());
    let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert!(command.starts_with("beam"), "pid {pid} runs {command}");
    let tree = process_tree(pid);
    assert!(tree.len() > 1, "the VM starts helper processes: {tree:?}");

    drop(ejabberd);
    let started = Instant::now();
    while !alive(&tree).is_empty() && started.elapsed() < WAIT_BOUND {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        alive(&tree),
        Vec::<u32>::new(),
        "processes left of {tree:?}"
    );
    assert!(!Path::new(&run_dir).exists(), "{} left", run_dir.display());
}
