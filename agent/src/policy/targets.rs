//! Servers an agent may open bot connections to.
//!
//! The allowlist is set on the agent's command line, never by the
//! coordinator, so a coordinator (or anyone who reaches the agent's port)
//! cannot aim the agent at a third party. Hosts are compared as written in
//! the request, without DNS: a name is allowed only when that name is on the
//! list, whatever address it resolves to.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use tonic::Status;

use crate::transport::Endpoint;

/// Set of connection targets the agent accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TargetPolicy {
    /// Loopback only: 127.0.0.0/8, ::1 and the name `localhost`.
    #[default]
    Loopback,
    /// Only the listed targets; the loopback default no longer applies.
    Only(Vec<AllowedTarget>),
    /// Any host and port (`--allow-any-target`).
    Any,
}

/// One `--allow-target` entry: a host, and a port unless every port is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedTarget {
    host: Host,
    port: Option<u16>,
}

/// A host as compared by the allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    /// An address in canonical form, so `::ffff:10.0.0.1` equals `10.0.0.1`.
    Ip(IpAddr),
    /// A DNS name in lower case without a trailing dot.
    Name(String),
}

impl Host {
    /// Reads a host as the transports use it: an IP literal, else a name.
    fn parse(text: &str) -> Option<Host> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(Host::Ip(ip.to_canonical()));
        }
        let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        valid.then_some(Host::Name(name))
    }

    fn is_loopback(&self) -> bool {
        match self {
            Host::Ip(ip) => ip.is_loopback(),
            Host::Name(name) => name == "localhost",
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for AllowedTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => write!(f, "{}", self.host),
        }
    }
}

/// An `--allow-target` value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid target `{input}`: {reason}; write HOST, HOST:PORT, IPV6 or [IPV6]:PORT")]
pub struct TargetParseError {
    input: String,
    reason: &'static str,
}

impl FromStr for AllowedTarget {
    type Err = TargetParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = |reason| TargetParseError {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();

        // A bare IPv6 address has colons of its own, so it is read whole
        // before any HOST:PORT split.
        let (host_text, port_text) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| error("missing `]` after the IPv6 address"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(error("the text in brackets is not an IPv6 address"));
            }
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(error("expected `:PORT` after `]`")),
                },
            }
        } else if text.parse::<IpAddr>().is_ok() {
            (text, None)
        } else if text.matches(':').count() > 1 {
            return Err(error("an IPv6 address with a port needs brackets"));
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };

        let host = Host::parse(host_text)
            .ok_or_else(|| error("the host is neither an IP address nor a DNS name"))?;
        let port = match port_text {
            None => None,
            Some(port) => Some(
                port.parse::<u16>()
                    .ok()
                    .filter(|port| *port != 0)
                    .ok_or_else(|| error("the port is not a number between 1 and 65535"))?,
            ),
        };
        Ok(AllowedTarget { host, port })
    }
}

impl TargetPolicy {
    /// Checks that the endpoint's host and port are allowed, with
    /// `permission_denied` naming the target and the flag to allow it.
    pub fn check(&self, endpoint: &Endpoint) -> Result<(), Status> {
        let Some((host_text, port)) = endpoint.target() else {
            return Err(Status::invalid_argument(
                "invalid `websocket_url`: the URL does not parse; set a URL like \
                 ws://127.0.0.1:5280/xmpp-websocket",
            ));
        };
        let host = Host::parse(&host_text);
        if host.as_ref().is_some_and(|host| self.allows(host, port)) {
            return Ok(());
        }

        let target = match &host {
            Some(host) => format!("{host}:{port}"),
            None => format!("{host_text}:{port}"),
        };
        Err(Status::permission_denied(format!(
            "target {target} is not allowed on this agent, which accepts {}; if this server \
             is yours to load, restart the agent with --allow-target {target} \
             (or --allow-any-target)",
            self.describe()
        )))
    }

    fn allows(&self, host: &Host, port: u16) -> bool {
        match self {
            TargetPolicy::Any => true,
            TargetPolicy::Loopback => host.is_loopback(),
            TargetPolicy::Only(list) => list
                .iter()
                .any(|allowed| allowed.host == *host && allowed.port.is_none_or(|p| p == port)),
        }
    }

    /// Describes the accepted targets for messages and the start-up log.
    pub fn describe(&self) -> String {
        match self {
            TargetPolicy::Any => "any target".to_owned(),
            TargetPolicy::Loopback => {
                "only loopback targets (127.0.0.0/8, ::1, localhost)".to_owned()
            }
            TargetPolicy::Only(list) => {
                let names: Vec<String> = list.iter().map(ToString::to_string).collect();
                format!("only {}", names.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> AllowedTarget {
        text.parse().unwrap_or_else(|err| panic!("{err}"))
    }

    /// Every accepted spelling parses into the host and port it names.
    #[test]
    fn parse_accepts_forms() {
        let cases = [
            ("xmpp.example.org", "xmpp.example.org"),
            ("XMPP.Example.org.:5222", "xmpp.example.org:5222"),
            ("10.0.0.5", "10.0.0.5"),
            ("10.0.0.5:5280", "10.0.0.5:5280"),
            ("::1", "[::1]"),
            ("[2001:db8::1]:5222", "[2001:db8::1]:5222"),
            ("[::ffff:10.0.0.5]", "10.0.0.5"),
        ];
        for (input, shown) in cases {
            assert_eq!(target(input).to_string(), shown, "{input}");
        }
    }

    /// Malformed entries are rejected with the reason.
    #[test]
    fn parse_rejects_malformed() {
        for (input, reason) in [
            ("", "neither an IP address"),
            ("host:0", "between 1 and 65535"),
            ("host:http", "between 1 and 65535"),
            ("[::1", "missing `]`"),
            ("[example.org]:1", "not an IPv6 address"),
            ("[::1]5222", "expected `:PORT`"),
            ("bad host", "neither an IP address"),
            ("2001:db8::1:99999", "needs brackets"),
        ] {
            let err = input.parse::<AllowedTarget>().unwrap_err().to_string();
            assert!(err.contains(reason), "{input}: {err}");
            assert!(err.contains(input), "{input}: {err}");
        }
    }

    /// The default accepts loopback hosts only.
    #[test]
    fn loopback_policy_hosts() {
        let policy = TargetPolicy::Loopback;
        for host in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "::ffff:127.0.0.1",
            "localhost",
            "LocalHost.",
        ] {
            assert!(policy.allows(&Host::parse(host).unwrap(), 5222), "{host}");
        }
        for host in [
            "10.0.0.1",
            "0.0.0.0",
            "::",
            "example.org",
            "localhost.example.org",
            "2130706433",
        ] {
            assert!(!policy.allows(&Host::parse(host).unwrap(), 5222), "{host}");
        }
    }

    /// A list replaces the default and honours ports.
    #[test]
    fn list_policy_matches_host_and_port() {
        let policy = TargetPolicy::Only(vec![target("xmpp.example.org:5222"), target("10.0.0.5")]);
        let allows = |host: &str, port| policy.allows(&Host::parse(host).unwrap(), port);
        assert!(allows("xmpp.example.org", 5222));
        assert!(allows("XMPP.example.org", 5222));
        assert!(!allows("xmpp.example.org", 5280));
        assert!(allows("10.0.0.5", 1));
        assert!(allows("::ffff:10.0.0.5", 1));
        assert!(!allows("127.0.0.1", 5222));
    }

    /// `--allow-any-target` accepts every parsable host.
    #[test]
    fn any_policy_accepts_all() {
        for host in ["192.0.2.1", "example.org", "::1"] {
            assert!(
                TargetPolicy::Any.allows(&Host::parse(host).unwrap(), 1),
                "{host}"
            );
        }
    }
}
