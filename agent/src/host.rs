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
}
