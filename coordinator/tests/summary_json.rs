//! summary.json of real runs validates against docs/summary.schema.json
//! with a real JSON Schema validator, carries the report's numbers, and the
//! schema rejects documents that break it.

mod fixture;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use xmppload_coordinator::report::{self, summary_json};

/// Debian's Python, which `python3-jsonschema` installs the validator for.
const PYTHON: &str = "/usr/bin/python3";

/// Validates every document given as a file against the schema (draft
/// 2020-12) and prints one line per file: `valid` or `invalid: MESSAGE`.
const VALIDATE: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    error = jsonschema.exceptions.best_match(validator.iter_errors(json.load(open(path))))
    print("valid" if error is None else "invalid: " + error.message.replace("\n", " "))
"#;

fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/summary.schema.json")
}

/// Returns the validator's verdict for each document, in order.
fn validate(documents: &[PathBuf]) -> Vec<String> {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing; install the Debian package `python3-jsonschema` (.ci/run does)"
    );
    let output = Command::new(PYTHON)
        .arg("-c")
        .arg(VALIDATE)
        .arg(schema_path())
        .args(documents)
        .output()
        .expect("run the validator");
    assert!(
        output.status.success(),
        "validator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verdicts: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(verdicts.len(), documents.len(), "one verdict per document");
    verdicts
}

fn build_summary(name: &str, scratch: &Path) -> (PathBuf, Value) {
    let dir = fixture::copy_run(name, scratch);
    report::build_outputs(&dir).expect("build the outputs");
    let path = dir.join(summary_json::SUMMARY_FILE);
    let text = std::fs::read_to_string(&path).expect("read summary.json");
    (
        path,
        serde_json::from_str(&text).expect("summary.json is JSON"),
    )
}

fn window<'a>(group: &'a Value, name: &str) -> &'a Value {
    group["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .find(|w| w["window"] == name)
        .unwrap_or_else(|| panic!("no {name} window"))
}

/// The committed runs produce valid documents with their known counts.
#[test]
fn summary_of_real_runs_is_valid() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut paths = Vec::new();
    for name in ["01", "02", "03", "04"] {
        let (path, summary) = build_summary(name, scratch.path());
        paths.push(path);

        assert_eq!(
            summary["scenario_name"].as_str().map(|s| s.contains("c2s")),
            Some(true)
        );
        assert_eq!(summary["finished"], true);
        let groups = summary["groups"].as_array().expect("groups");
        assert_eq!(groups.len(), 2, "run {name} has two groups");
        for group in groups {
            let settings = &group["settings"];
            assert_eq!(settings["stream_management"], true);
            assert_eq!(settings["tls"], "none");
            assert_eq!(settings["bots"], 50);
            assert_eq!(group["counts"]["joined"], 50, "run {name}");
            assert_eq!(group["counts"]["failed"], 0, "run {name}");
            let talk = window(group, "talk");
            assert_eq!(talk["messages"]["sent"], 500, "run {name}");
            assert_eq!(talk["messages"]["received"], 25_000, "run {name}");

            let cpu = &talk["processes"][0]["cpu"];
            let mean = cpu["mean"].as_f64().expect("talk CPU mean");
            let low = cpu["ci_low"].as_f64().expect("CI low");
            let high = cpu["ci_high"].as_f64().expect("CI high");
            assert!(low < mean, "CI low {low} is not below the mean {mean}");
            assert!(mean < high, "CI high {high} is not above the mean {mean}");
        }
    }

    // Run 01's comparison matches report.md: +7.3 points, CI 1.6 to 12.9.
    let text = std::fs::read_to_string(&paths[0]).expect("read summary.json");
    let first: Value = serde_json::from_str(&text).expect("JSON");
    let difference = &first["comparisons"][0]["groups"][0];
    assert_eq!(first["comparisons"][0]["baseline_group"], "websocket");
    assert_eq!(difference["group"], "c2s");
    let rounded = |key: &str| (difference[key].as_f64().expect(key) * 10.0).round() / 10.0;
    assert_eq!(rounded("difference"), -7.3);
    assert_eq!(rounded("ci_low"), -12.9);
    assert_eq!(rounded("ci_high"), -1.6);

    for (path, verdict) in paths.iter().zip(validate(&paths)) {
        assert_eq!(verdict, "valid", "{}", path.display());
    }
}

/// Documents with a missing key, a negative count, an unknown transport or
/// a round trip without a kind are rejected.
#[test]
fn schema_rejects_invalid_documents() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let (_, summary) = build_summary("01", scratch.path());

    let mut missing = summary.clone();
    missing.as_object_mut().expect("object").remove("groups");
    let mut negative = summary.clone();
    negative["groups"][0]["counts"]["joined"] = Value::from(-1);
    let mut transport = summary.clone();
    transport["groups"][0]["settings"]["transport"] = Value::from("udp");
    let mut extra = summary.clone();
    extra["groups"][0]["windows"][0]["cpu_percent"] = Value::from(3);
    let trips = serde_json::json!({
        "kind": "tls", "count": 3, "p50": 4.1, "p90": 6.0, "p99": 6.0, "max": 6.0
    });
    let mut with_trips = summary.clone();
    with_trips["groups"][0]["round_trips"] = Value::Array(vec![trips.clone()]);
    let mut unnamed_trips = summary.clone();
    let mut unnamed = trips;
    unnamed["kind"] = Value::from("");
    unnamed_trips["groups"][0]["round_trips"] = Value::Array(vec![unnamed]);

    let mut paths = Vec::new();
    for (index, document) in [
        summary,
        missing,
        negative,
        transport,
        extra,
        with_trips,
        unnamed_trips,
    ]
    .iter()
    .enumerate()
    {
        let path = scratch.path().join(format!("document-{index}.json"));
        std::fs::write(&path, document.to_string()).expect("write document");
        paths.push(path);
    }
    let verdicts = validate(&paths);
    assert_eq!(verdicts[0], "valid");
    assert!(
        verdicts[1].contains("'groups' is a required property"),
        "{}",
        verdicts[1]
    );
    assert!(verdicts[2].contains("-1"), "{}", verdicts[2]);
    assert!(verdicts[3].contains("'udp'"), "{}", verdicts[3]);
    assert!(verdicts[4].contains("cpu_percent"), "{}", verdicts[4]);
    assert_eq!(verdicts[5], "valid");
    assert!(verdicts[6].contains("''"), "{}", verdicts[6]);
}
