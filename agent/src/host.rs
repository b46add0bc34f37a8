//! Facts about the agent's host for `Hello`.

/// Logical CPU cores available to this process; 1 if unknown.
pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// Soft limit on open file descriptors, read from `/proc/self/limits`
/// (Linux). Returns `None` where that file is missing or unreadable, and
/// `u64::MAX` for "unlimited".
pub fn fd_soft_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_fd_soft_limit(&limits)
}

/// Extracts the soft limit from the "Max open files" row, whose columns are
/// the name, soft limit, hard limit and unit.
fn parse_fd_soft_limit(limits: &str) -> Option<u64> {
    let row = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    let soft = row.split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// Local ports in the ephemeral range, from
/// `/proc/sys/net/ipv4/ip_local_port_range` (Linux), which Linux also uses
/// for IPv6. Each source/destination address pair can have this many
/// connections at once. Returns `None` where the file is missing.
pub fn ephemeral_ports() -> Option<u64> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    parse_port_range(&range)
}

/// Counts the ports from "LOW HIGH", both inclusive.
fn parse_port_range(range: &str) -> Option<u64> {
    let mut bounds = range.split_whitespace().map(str::parse::<u64>);
    let low = bounds.next()?.ok()?;
    let high = bounds.next()?.ok()?;
    (high >= low).then(|| high - low + 1)
}

/// Outcome of [`raise_fd_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// Soft limit before the call.
    pub before: u64,
    /// Soft limit after the call; the hard limit unless raising failed.
    pub after: u64,
}

/// Raises the soft limit on open file descriptors to the hard limit.
///
/// Every bot keeps one socket open, so the usual soft limit of 1024 would cap an
/// agent at about a thousand bots although the hard limit allows far more.
/// Raising the soft limit up to the hard one needs no privilege.
pub fn raise_fd_limit() -> std::io::Result<FdLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads the struct we pass and keeps no reference.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(FdLimit {
        before,
        after: limit.rlim_cur,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The soft limit is the first number on the "Max open files" row.
    #[test]
    fn parses_limits_file() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_fd_soft_limit(limits), Some(1024));
        assert_eq!(
            parse_fd_soft_limit("Max open files unlimited unlimited files"),
            Some(u64::MAX)
        );
        assert_eq!(parse_fd_soft_limit("nothing here"), None);
    }

    /// The port range is inclusive at both ends.
    #[test]
    fn parses_port_range() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(28_232));
        assert_eq!(parse_port_range("1024 1024"), Some(1));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("garbage"), None);
    }

    /// Raising leaves the soft limit at the hard limit, as /proc reports it.
    #[test]
    fn raise_reaches_hard_limit() {
        let limit = raise_fd_limit().unwrap();
        assert!(limit.after >= limit.before);
        let reported = fd_soft_limit().unwrap();
        let expected = if limit.after == libc::RLIM_INFINITY {
            u64::MAX
        } else {
            limit.after
        };
        assert_eq!(reported, expected);
    }
}
