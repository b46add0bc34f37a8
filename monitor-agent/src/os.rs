//! Kernel facts that std does not expose: clock tick rate, page size, the
//! open file limit and time since boot.

use std::time::Duration;

use crate::MonitorError;

/// Unit conversions for `/proc` counters, read once per sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcUnits {
    /// `sysconf(_SC_CLK_TCK)`: the unit of CPU times in `/proc` (100 on
    /// common Linux builds, but not guaranteed).
    pub ticks_per_second: u64,
    /// `sysconf(_SC_PAGESIZE)`: the unit of `/proc/PID/statm`.
    pub page_size: u64,
}

impl ProcUnits {
    /// Queries the kernel for both units.
    pub fn query() -> Result<Self, MonitorError> {
        Ok(Self {
            ticks_per_second: sysconf_positive(libc::_SC_CLK_TCK, "_SC_CLK_TCK")?,
            page_size: sysconf_positive(libc::_SC_PAGESIZE, "_SC_PAGESIZE")?,
        })
    }

    /// Converts clock ticks to a duration.
    pub fn ticks_to_duration(&self, ticks: u64) -> Duration {
        let whole = ticks / self.ticks_per_second;
        let rest = ticks % self.ticks_per_second;
        let rest_nanos = rest.saturating_mul(1_000_000_000) / self.ticks_per_second;
        Duration::from_secs(whole) + Duration::from_nanos(rest_nanos)
    }
}

fn sysconf_positive(name: libc::c_int, label: &'static str) -> Result<u64, MonitorError> {
    // SAFETY: sysconf only reads a system constant and has no preconditions.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value)
        .ok()
        .filter(|value| *value > 0)
        .ok_or(MonitorError::Sysconf { name: label, value })
}

/// Returns the soft limit on open file descriptors of this process, or
/// `u64::MAX` when unlimited.
pub fn fd_soft_limit() -> Result<u64, MonitorError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call to fill in.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if status != 0 {
        return Err(MonitorError::FdLimit(std::io::Error::last_os_error()));
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        return Ok(u64::MAX);
    }
    Ok(limit.rlim_cur)
}

/// Returns the time since boot on `CLOCK_BOOTTIME`, the clock that the start
/// time in `/proc/PID/stat` is measured on, or `None` if it cannot be read.
pub fn since_boot() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the call to fill in.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    if status != 0 {
        return None;
    }
    let seconds = u64::try_from(now.tv_sec).ok()?;
    let nanos = u32::try_from(now.tv_nsec).ok()?;
    Some(Duration::new(seconds, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tick conversion keeps the fractional part.
    #[test]
    fn ticks_to_duration_fraction() {
        let units = ProcUnits {
            ticks_per_second: 100,
            page_size: 4096,
        };
        assert_eq!(units.ticks_to_duration(0), Duration::ZERO);
        assert_eq!(units.ticks_to_duration(250), Duration::from_millis(2500));
        assert_eq!(units.ticks_to_duration(7), Duration::from_millis(70));
    }

    /// The kernel reports usable units and a boot clock on this host.
    #[test]
    fn host_units_are_sane() {
        let units = ProcUnits::query().unwrap();
        assert!(units.ticks_per_second >= 1);
        assert!(units.page_size >= 512);
        assert!(fd_soft_limit().unwrap() > 0);
        assert!(since_boot().unwrap() > Duration::ZERO);
    }
}
