//! The monitor agent's systemd unit in `deploy/systemd/` passes
//! `systemd-analyze verify`, and a broken copy fails it.

#[path = "../../agent/tests/support/validators.rs"]
mod validators;

use std::path::Path;
use std::process::Command;

use validators::{
    assert_unit_accepted, assert_unit_rejected, describe, flags, read_deploy_file, setting,
    verify_unit,
};

const UNIT: &str = "xmppload-monitor.service";
const INSTALLED_BINARY: &str = "/usr/local/bin/xmppload-monitor-agent";

fn monitor_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_monitor-agent"))
}

/// The unit passes `systemd-analyze verify` and sets restart, user and limits.
#[test]
fn monitor_unit_verifies() {
    let unit = read_deploy_file(&format!("systemd/{UNIT}"));

    assert_unit_accepted(&verify_unit(
        UNIT,
        &unit,
        INSTALLED_BINARY,
        monitor_binary(),
    ));

    assert_eq!(setting(&unit, "Restart"), Some("on-failure"));
    assert_eq!(setting(&unit, "DynamicUser"), Some("yes"));
    assert_eq!(
        setting(&unit, "EnvironmentFile"),
        Some("/etc/xmppload/monitor.env")
    );
    assert!(setting(&unit, "LimitNOFILE").is_some());
    // The monitor reads other processes' /proc entries, which
    // ProtectProc=invisible would hide.
    assert_eq!(setting(&unit, "ProtectProc"), None);
}

/// A misspelt key is only a warning for `systemd-analyze`, but the check still fails.
#[test]
fn broken_monitor_unit_fails() {
    let unit = read_deploy_file(&format!("systemd/{UNIT}"));
    let broken = unit.replace("Restart=on-failure", "Restrat=on-failure");
    assert_unit_rejected(&verify_unit(
        UNIT,
        &broken,
        INSTALLED_BINARY,
        monitor_binary(),
    ));
}

/// Every flag in monitor.env is one that `monitor-agent` accepts.
#[test]
fn monitor_env_flags_exist() {
    let output = Command::new(monitor_binary())
        .arg("--help")
        .output()
        .expect("failed to run monitor-agent --help");
    assert!(output.status.success(), "{}", describe(&output));
    let help = String::from_utf8_lossy(&output.stdout);

    let env_file = read_deploy_file("systemd/monitor.env");
    let arguments =
        setting(&env_file, "XMPPLOAD_MONITOR_ARGS").expect("XMPPLOAD_MONITOR_ARGS is set");
    let names = flags(arguments);
    assert!(names.contains(&"--listen"), "{arguments}");
    for flag in names {
        assert!(
            help.contains(flag),
            "`monitor-agent --help` lists no {flag}"
        );
    }
}
