//! Helpers for the tests that check the files in `deploy/` with the standard
//! validators. The crates' tests include this file with `#[path]`, so that
//! each test can run next to the binary it needs.
//!
//! `deploy/install-validators.sh` installs the validators; PyPI tools go to
//! `.validators/bin/` at the repository root, which is searched before `PATH`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Root of the repository, one level above each crate.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("a crate's manifest directory has a parent")
        .to_path_buf()
}

/// Reads a file below `deploy/`.
pub fn read_deploy_file(relative: &str) -> String {
    let path = repo_root().join("deploy").join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("failed to read {}: {err}", path.display()))
}

/// Finds a validator in `.validators/bin/` or on `PATH`, and panics with the
/// install command when it is in neither.
pub fn validator(name: &str) -> PathBuf {
    let local = repo_root().join(".validators/bin").join(name);
    if local.is_file() {
        return local;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| {
        panic!("validator `{name}` not found in .validators/bin or on PATH; install it with deploy/install-validators.sh")
    })
}

/// Runs a validator and returns its output, whatever its exit status.
pub fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("failed to run {}: {err}", program.display()))
}

/// Formats a validator's exit status and output for an assert message.
pub fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Returns the content of the YAML literal block (`key: |`) that follows the
/// first line equal to `anchor` (both compared without surrounding spaces).
/// Enough for the hand-written files in `deploy/`, not a YAML parser.
pub fn literal_block(text: &str, anchor: &str, key: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let anchor_at = lines
        .iter()
        .position(|line| line.trim() == anchor)
        .unwrap_or_else(|| panic!("line `{anchor}` not found"));
    let key_at = anchor_at
        + lines[anchor_at..]
            .iter()
            .position(|line| line.trim() == key)
            .unwrap_or_else(|| panic!("`{key}` not found after `{anchor}`"));

    let body = &lines[key_at + 1..];
    let indent = body
        .iter()
        .find(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .unwrap_or_else(|| panic!("`{key}` has an empty block"));

    let mut block = String::new();
    for line in body {
        let line_indent = line.len() - line.trim_start().len();
        if !line.trim().is_empty() && line_indent < indent {
            break;
        }
        block.push_str(line.get(indent..).unwrap_or(""));
        block.push('\n');
    }
    // YAML's default chomping keeps one final line break and drops trailing blank lines.
    let trimmed = block.trim_end_matches('\n').len();
    block.truncate(trimmed);
    block.push('\n');
    block
}

/// Returns the value of `key` in a systemd unit or environment file, from
/// its first `key=value` line.
pub fn setting<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(name, _)| name.trim() == key)
        .map(|(_, value)| value.trim())
}

/// Checks a systemd unit with `systemd-analyze verify`. The unit is copied
/// to a temporary directory under its own name with `installed_binary`
/// replaced by `binary`, because the command rejects an ExecStart program
/// that does not exist. Returns the output.
pub fn verify_unit(unit_name: &str, text: &str, installed_binary: &str, binary: &Path) -> Output {
    assert!(
        text.contains(installed_binary),
        "{unit_name} does not run {installed_binary}"
    );
    let dir = tempfile::tempdir().expect("failed to create a temporary directory");
    let path = dir.path().join(unit_name);
    let rewritten = text.replace(installed_binary, &binary.display().to_string());
    std::fs::write(&path, rewritten).expect("failed to write the unit copy");
    let path_text = path.display().to_string();
    run(&validator("systemd-analyze"), &["verify", &path_text])
}

/// Asserts that `systemd-analyze verify` accepted a unit. The command
/// reports an invalid value only as a warning on stderr and still exits 0,
/// so any output counts as a failure.
pub fn assert_unit_accepted(output: &Output) {
    assert!(output.status.success(), "{}", describe(output));
    assert!(output.stderr.is_empty(), "{}", describe(output));
}

/// Asserts that `systemd-analyze verify` objected to a unit.
pub fn assert_unit_rejected(output: &Output) {
    assert!(
        !output.status.success() || !output.stderr.is_empty(),
        "a broken unit passed: {}",
        describe(output)
    );
}

/// Returns the `--flag` names in a space-separated argument list.
pub fn flags(arguments: &str) -> Vec<&str> {
    arguments
        .split_whitespace()
        .filter(|word| word.starts_with("--"))
        .collect()
}
