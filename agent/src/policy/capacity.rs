//! Capacity of the agent's host: open descriptors and local ports.
//!
//! Every bot keeps one socket, so a slice that does not fit under the
//! open-file soft limit, or needs more local ports than one source address
//! has towards the server, would fail halfway with `io` errors. The agent
//! rejects such a slice before any bot starts, with the numbers.

use std::net::IpAddr;

use tonic::Status;

/// Descriptors kept free of bots for the agent itself: the gRPC listener and
/// connections, the runtime, logs and files under /proc.
pub const RESERVED_DESCRIPTORS: u32 = 64;

/// Descriptor and port limits of this agent, read once at start.
#[derive(Debug, Clone)]
pub struct HostCapacity {
    /// Soft limit on open descriptors; `None` when unknown.
    pub fd_limit: Option<u64>,
    /// Local ports per source/destination address pair, from the ephemeral
    /// port range; `None` when unknown.
    pub ports_per_destination: Option<u64>,
    /// Local addresses the bots bind to in turn; empty lets the kernel choose.
    pub source_addresses: Vec<IpAddr>,
}

impl Default for HostCapacity {
    /// Reads the limits of this process and host, without source addresses.
    fn default() -> Self {
        HostCapacity {
            fd_limit: crate::host::fd_soft_limit(),
            ports_per_destination: crate::host::ephemeral_ports(),
            source_addresses: Vec::new(),
        }
    }
}

impl HostCapacity {
    /// Most bots this host can run at once under both limits, and the name
    /// of the limit that binds; `None` when neither limit is known.
    pub fn max_bots(&self) -> Option<(u64, &'static str)> {
        let by_descriptors = self
            .fd_limit
            .map(|limit| limit.saturating_sub(u64::from(RESERVED_DESCRIPTORS)));
        let by_ports = self.ports_per_destination.map(|ports| {
            // Without source addresses the kernel uses one address per destination.
            ports.saturating_mul(self.source_addresses.len().max(1) as u64)
        });
        match (by_descriptors, by_ports) {
            (Some(fds), Some(ports)) if ports < fds => Some((ports, "ports")),
            (Some(fds), _) => Some((fds, "descriptors")),
            (None, Some(ports)) => Some((ports, "ports")),
            (None, None) => None,
        }
    }

    /// Binds a socket to each source address once, so that a typo or an
    /// address missing from this host stops the agent at start instead of
    /// failing every bot with `io` errors. Returns the first address that
    /// cannot be bound, with the error.
    pub fn check_sources(&self) -> Result<(), (IpAddr, std::io::Error)> {
        for &address in &self.source_addresses {
            std::net::TcpListener::bind((address, 0)).map_err(|err| (address, err))?;
        }
        Ok(())
    }

    /// Checks that `total` bots (the new slice of `slice` bots included)
    /// fit under the descriptor limit and the ports of each source address.
    /// Fails with `resource_exhausted` that names the numbers and the fix.
    pub fn check(&self, slice: u32, total: u32) -> Result<(), Status> {
        if let Some(limit) = self.fd_limit {
            let needed = u64::from(total) + u64::from(RESERVED_DESCRIPTORS);
            if needed > limit {
                return Err(Status::resource_exhausted(format!(
                    "{slice} more bots need {needed} open descriptors ({total} bots including the \
                     running ones, plus {RESERVED_DESCRIPTORS} for the agent), but the agent's \
                     open-file soft limit is {limit}; raise the hard limit (ulimit -Hn, \
                     LimitNOFILE) and restart the agent, or spread the group over more agents"
                )));
            }
        }
        if let Some(ports) = self.ports_per_destination {
            let sources = self.source_addresses.len().max(1) as u64;
            // Bots take the source addresses in turn, so the busiest address
            // carries the rounded-up share.
            // NOTE: this assumes every bot connects to one server address and
            // that no other process on the host uses the same address pairs.
            // Two agents on one host with the same source address share one
            // port range, which this check cannot see.
            let per_source = u64::from(total).div_ceil(sources);
            if per_source > ports {
                return Err(Status::resource_exhausted(format!(
                    "{slice} more bots need {per_source} local ports per source address \
                     ({total} bots over {sources} source addresses), but only {ports} ports \
                     are available per source/destination pair \
                     (/proc/sys/net/ipv4/ip_local_port_range); start the agent with more \
                     --source-address values or spread the group over more agents"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(fd_limit: u64, ports: u64, sources: usize) -> HostCapacity {
        HostCapacity {
            fd_limit: Some(fd_limit),
            ports_per_destination: Some(ports),
            source_addresses: (0..sources)
                .map(|i| IpAddr::from([127, 0, 0, 2 + i as u8]))
                .collect(),
        }
    }

    /// The descriptor limit counts the reserve, and the error shows the numbers.
    #[test]
    fn descriptors_reject_with_numbers() {
        let host = capacity(100, 10_000, 0);
        assert!(host.check(36, 36).is_ok());
        let status = host.check(37, 37).unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status.message().contains("need 101 open descriptors"),
            "{}",
            status.message()
        );
        assert!(
            status.message().contains("soft limit is 100"),
            "{}",
            status.message()
        );
    }

    /// Ports are counted per source address, rounded up.
    #[test]
    fn ports_scale_with_sources() {
        let host = capacity(1_000_000, 10, 2);
        assert!(host.check(20, 20).is_ok());
        let status = host.check(21, 21).unwrap_err();
        assert!(
            status
                .message()
                .contains("need 11 local ports per source address"),
            "{}",
            status.message()
        );
        assert!(
            status.message().contains("only 10 ports"),
            "{}",
            status.message()
        );
        assert_eq!(capacity(1_000_000, 10, 0).max_bots(), Some((10, "ports")));
    }

    /// The maximum is the smaller of the two limits.
    #[test]
    fn max_bots_names_binding_limit() {
        assert_eq!(
            capacity(1064, 28_232, 0).max_bots(),
            Some((1000, "descriptors"))
        );
        assert_eq!(
            capacity(100_064, 28_232, 2).max_bots(),
            Some((56_464, "ports"))
        );
        let unknown = HostCapacity {
            fd_limit: None,
            ports_per_destination: None,
            source_addresses: Vec::new(),
        };
        assert_eq!(unknown.max_bots(), None);
        assert!(unknown.check(1_000_000, 1_000_000).is_ok());
    }
}
