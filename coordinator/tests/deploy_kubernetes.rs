//! The Kubernetes manifests in `deploy/kubernetes/` pass the Kubernetes API
//! schemas, a broken copy fails them, and the scenario in the ConfigMap is
//! one that the coordinator accepts once the Job adds the agents.

#[path = "../../agent/tests/support/validators.rs"]
mod validators;

use std::path::Path;

use validators::{describe, literal_block, read_deploy_file, repo_root, run, validator};
use xmppload_coordinator::scenario::{Overrides, Scenario};

const MANIFESTS: [&str; 2] = ["kubernetes/agents.yaml", "kubernetes/coordinator-job.yaml"];

fn validate(path: &Path) -> std::process::Output {
    let path_text = path.display().to_string();
    // --strict rejects properties that the schema does not define, such as a
    // misspelt field name.
    run(
        &validator("kubernetes-validate"),
        &["--strict", "--quiet", &path_text],
    )
}

/// Every manifest passes kubernetes-validate in strict mode.
#[test]
fn manifests_pass_schemas() {
    for manifest in MANIFESTS {
        let output = validate(&repo_root().join("deploy").join(manifest));
        assert!(output.status.success(), "{manifest}: {}", describe(&output));
    }
}

/// A wrongly typed value and an unknown field each fail the validation.
#[test]
fn broken_manifests_fail() {
    let agents = read_deploy_file(MANIFESTS[0]);
    let job = read_deploy_file(MANIFESTS[1]);
    let cases = [
        (
            "wrong type",
            agents.replace("replicas: 3", "replicas: three"),
        ),
        (
            "unknown field",
            job.replace(
                "restartPolicy: Never",
                "restartPolicy: Never\n      restartPolicyy: Never",
            ),
        ),
    ];

    let dir = tempfile::tempdir().expect("failed to create a temporary directory");
    for (case, broken) in cases {
        assert_ne!(broken, agents, "{case}: the replacement changed nothing");
        assert_ne!(broken, job, "{case}: the replacement changed nothing");
        let path = dir.path().join("broken.yaml");
        std::fs::write(&path, broken).expect("failed to write the broken copy");
        let output = validate(&path);
        assert!(
            !output.status.success(),
            "{case} passed: {}",
            describe(&output)
        );
    }
}

/// The ConfigMap's scenario plus the [agents] table that the Job's init
/// container writes is a valid scenario, and it leaves [agents] to the Job.
#[test]
fn configmap_scenario_parses() {
    let job = read_deploy_file(MANIFESTS[1]);
    let scenario = literal_block(&job, "data:", "scenario.toml: |");
    assert!(
        !scenario.contains("[agents]"),
        "the ConfigMap sets [agents]; the init container would add a second one"
    );

    let with_agents = format!(
        "{scenario}\n[agents]\naddresses = [\"http://10.0.0.11:15051\",\"http://10.0.0.12:15051\",\"http://10.0.0.13:15051\"]\n"
    );
    let parsed = Scenario::parse(
        Path::new("scenario.toml"),
        &with_agents,
        &Overrides::default(),
    )
    .unwrap_or_else(|err| panic!("the ConfigMap's scenario is invalid: {err}"));
    assert_eq!(parsed.agents.len(), 3);
    let bots: Vec<u32> = parsed.groups().map(|group| group.bots).collect();
    assert_eq!(bots, [300, 300]);

    // The agents' --allow-target list must admit the scenario's server.
    let agents = read_deploy_file(MANIFESTS[0]);
    for target in ["xmpp.staging.example:5222", "xmpp.staging.example:5280"] {
        assert!(
            agents.contains(target),
            "agents.yaml does not allow {target}"
        );
        assert!(
            scenario.contains(target),
            "the scenario does not use {target}"
        );
    }
}
