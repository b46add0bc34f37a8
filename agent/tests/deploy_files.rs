//! The agent's deployment files in `deploy/` pass their standard
//! validators, and a broken copy of each fails them.

#[path = "support/validators.rs"]
mod validators;

use std::process::Command;

use validators::{
    assert_unit_accepted, assert_unit_rejected, describe, flags, literal_block, read_deploy_file,
    run, setting, validator, verify_unit,
};

const UNIT: &str = "xmppload-agent.service";
const INSTALLED_BINARY: &str = "/usr/local/bin/xmppload-agent";
const USER_DATA: &str = "cloud-init/user-data.yaml";

fn agent_binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_agent"))
}

fn agent_help() -> String {
    let output = Command::new(agent_binary())
        .arg("--help")
        .output()
        .expect("failed to run agent --help");
    assert!(
        output.status.success(),
        "agent --help: {}",
        describe(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The unit passes `systemd-analyze verify` and sets what a load machine needs.
#[test]
fn agent_unit_verifies() {
    let unit = read_deploy_file(&format!("systemd/{UNIT}"));

    assert_unit_accepted(&verify_unit(UNIT, &unit, INSTALLED_BINARY, &agent_binary()));

    assert_eq!(setting(&unit, "Restart"), Some("on-failure"));
    assert_eq!(setting(&unit, "DynamicUser"), Some("yes"));
    assert_eq!(
        setting(&unit, "EnvironmentFile"),
        Some("/etc/xmppload/agent.env")
    );
    assert_eq!(setting(&unit, "KillSignal"), Some("SIGINT"));
    let nofile: u64 = setting(&unit, "LimitNOFILE")
        .expect("LimitNOFILE is set")
        .parse()
        .expect("LimitNOFILE is one number");
    assert!(
        nofile >= 65536,
        "LimitNOFILE={nofile} caps the agent below 65536 bots"
    );
}

/// A wrong value is only a warning for `systemd-analyze`, but the check still fails.
#[test]
fn broken_agent_unit_fails() {
    let unit = read_deploy_file(&format!("systemd/{UNIT}"));

    let bad_value = unit.replace("Restart=on-failure", "Restart=sometimes");
    assert_unit_rejected(&verify_unit(
        UNIT,
        &bad_value,
        INSTALLED_BINARY,
        &agent_binary(),
    ));

    let bad_key = unit.replace("LimitNOFILE=", "LimitNOFILES=");
    assert_unit_rejected(&verify_unit(
        UNIT,
        &bad_key,
        INSTALLED_BINARY,
        &agent_binary(),
    ));
}

/// Every flag in the environment files is one that `agent` accepts.
#[test]
fn agent_env_flags_exist() {
    let help = agent_help();
    let env_file = read_deploy_file("systemd/agent.env");
    let user_data = read_deploy_file(USER_DATA);
    let embedded_env = literal_block(&user_data, "- path: /etc/xmppload/agent.env", "content: |");

    for text in [env_file.as_str(), embedded_env.as_str()] {
        let arguments = setting(text, "XMPPLOAD_AGENT_ARGS").expect("XMPPLOAD_AGENT_ARGS is set");
        let names = flags(arguments);
        assert!(names.contains(&"--listen"), "{arguments}");
        for flag in names {
            assert!(help.contains(flag), "`agent --help` lists no {flag}");
        }
    }
    // The unit passes the token itself, so a second --token-file would conflict.
    assert!(!env_file.contains("--token-file"));
}

/// The user-data passes `cloud-init schema` and installs the unit from `deploy/systemd/`.
#[test]
fn cloud_init_user_data_valid() {
    let path = validators::repo_root().join("deploy").join(USER_DATA);
    let path_text = path.display().to_string();
    let output = run(
        &validator("cloud-init"),
        &["schema", "--config-file", &path_text],
    );
    assert!(output.status.success(), "{}", describe(&output));

    let user_data = read_deploy_file(USER_DATA);
    assert!(user_data.starts_with("#cloud-config\n"));
    let embedded_unit = literal_block(
        &user_data,
        &format!("- path: /etc/systemd/system/{UNIT}"),
        "content: |",
    );
    assert_eq!(
        embedded_unit,
        read_deploy_file(&format!("systemd/{UNIT}")),
        "the unit in {USER_DATA} differs from deploy/systemd/{UNIT}"
    );

    let sysctl = literal_block(
        &user_data,
        "- path: /etc/sysctl.d/60-xmppload.conf",
        "content: |",
    );
    for key in [
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_tw_reuse",
        "net.core.somaxconn",
        "fs.nr_open",
        "-net.netfilter.nf_conntrack_max",
    ] {
        assert!(
            setting(&sysctl, key).is_some(),
            "the sysctl file sets no {key}"
        );
    }
}

/// A user-data file with a wrongly typed field fails `cloud-init schema`.
#[test]
fn broken_user_data_fails() {
    let user_data = read_deploy_file(USER_DATA);
    let broken = user_data.replace("permissions: \"0755\"", "permissions: [755]");
    assert_ne!(broken, user_data);

    let dir = tempfile::tempdir().expect("failed to create a temporary directory");
    let path = dir.path().join("user-data.yaml");
    std::fs::write(&path, broken).expect("failed to write the broken copy");
    let path_text = path.display().to_string();
    let output = run(
        &validator("cloud-init"),
        &["schema", "--config-file", &path_text],
    );
    assert!(
        !output.status.success(),
        "a broken user-data passed: {}",
        describe(&output)
    );
}

/// The Containerfile passes hadolint with no finding at all, infos included.
#[test]
fn containerfile_passes_hadolint() {
    let path = validators::repo_root().join("deploy/container/Containerfile");
    let path_text = path.display().to_string();
    let output = run(&validator("hadolint"), &["--no-color", &path_text]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(output.stdout.is_empty(), "{}", describe(&output));

    let containerfile = read_deploy_file("container/Containerfile");
    for binary in ["dist/agent", "dist/coordinator", "dist/monitor-agent"] {
        assert!(containerfile.contains(binary), "the image lacks {binary}");
    }
}

/// A Containerfile that runs as root with an untagged base image fails hadolint.
#[test]
fn broken_containerfile_fails() {
    let containerfile = read_deploy_file("container/Containerfile");
    let broken = containerfile
        .replace("static-debian12:nonroot", "static-debian12")
        .replace("COPY dist/agent", "ADD dist/agent");
    assert_ne!(broken, containerfile);

    let dir = tempfile::tempdir().expect("failed to create a temporary directory");
    let path = dir.path().join("Containerfile");
    std::fs::write(&path, broken).expect("failed to write the broken copy");
    let path_text = path.display().to_string();
    let output = run(&validator("hadolint"), &["--no-color", &path_text]);
    assert!(
        !output.status.success(),
        "a broken Containerfile passed: {}",
        describe(&output)
    );
}
