//! `coordinator compare` on the committed runs, which ran the same two
//! groups, and on folders that cannot be compared.

mod fixture;

use std::path::PathBuf;

use xmppload_coordinator::plot;
use xmppload_coordinator::report::runs::{self, CompareError, compare_runs};
use xmppload_coordinator::report::stats::welch_interval;
use xmppload_coordinator::report::summary::WindowKind;
use xmppload_coordinator::report::{Phase, load, summary::summarize};

fn committed(names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|name| fixture::committed_run(name))
        .collect()
}

/// Four runs give one row per group, window and process, with Welch
/// differences to run 01 that match a direct computation.
#[test]
fn compare_four_study_runs() {
    let comparison = compare_runs(&committed(&["01", "02", "03", "04"])).expect("compare");
    let labels: Vec<&str> = comparison.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["01", "02", "03", "04"]);
    assert_eq!(comparison.groups, ["websocket", "c2s"]);
    assert!(comparison.left_out.is_empty());
    assert_eq!(comparison.processes, ["prosody"]);
    // Two groups, four windows each (join, talk, leave, whole group), one process.
    assert_eq!(comparison.rows.len(), 8);

    let talk = comparison
        .rows
        .iter()
        .find(|r| r.group == "websocket" && r.window == WindowKind::Phase(Phase::Talk))
        .expect("websocket talk row");
    assert_eq!(talk.cells.len(), 4);
    assert!(
        talk.cells[0].difference.is_none(),
        "the first run is the baseline"
    );

    // Run 04's WebSocket talk phase against run 01's, recomputed from the folders.
    let cpu_of = |name: &str| {
        let data = load(&fixture::committed_run(name)).expect("load");
        let summary = summarize(&data).expect("summarize");
        let group = summary
            .groups
            .iter()
            .find(|g| g.name == "websocket")
            .expect("group");
        let window = group
            .windows
            .iter()
            .find(|w| w.window.kind == WindowKind::Phase(Phase::Talk))
            .expect("talk");
        window.processes[0].cpu
    };
    let expected = welch_interval(&cpu_of("01"), &cpu_of("04"), 0.95).expect("interval");
    let actual = talk.cells[3].difference.expect("run 04 compared");
    assert_eq!(actual, expected);
    // The README's table: 48.0 in run 01 and 88.1 in run 04.
    assert!(
        (actual.difference - 40.1).abs() < 0.1,
        "{}",
        actual.difference
    );
    assert!(actual.low > 0.0, "run 04 is significantly higher");

    let table = runs::render_table(&comparison);
    assert!(
        table.contains("| websocket | talk | 48.0 (69) |"),
        "{table}"
    );
    assert!(table.contains("04 minus 01 (95% CI)"), "{table}");
}

/// The out folder gets compare.md and a 1600x1000 graph in both formats.
#[test]
fn compare_writes_files() {
    let out = tempfile::tempdir().expect("temp dir");
    let out = out.path().join("compare");
    let comparison = compare_runs(&committed(&["01", "02"])).expect("compare");
    runs::write_comparison(&comparison, &out).expect("write");

    let markdown = std::fs::read_to_string(out.join(runs::COMPARE_FILE)).expect("compare.md");
    assert!(markdown.contains("| 02 | "), "{markdown}");
    assert!(markdown.contains("### prosody CPU"), "{markdown}");
    assert!(markdown.contains(plot::compare::PNG_FILE));
    assert!(!markdown.contains("WARNING"), "same settings in both runs");

    let png = image::open(out.join(plot::compare::PNG_FILE)).expect("decode PNG");
    assert_eq!((png.width(), png.height()), (plot::WIDTH, plot::HEIGHT));
    let svg = std::fs::read_to_string(out.join(plot::compare::SVG_FILE)).expect("SVG");
    assert!(svg.contains("width=\"1600\" height=\"1000\""));
    // One curve per run, each labelled in the legend by its folder name.
    for label in ["01", "02"] {
        assert!(
            svg.contains(&format!(">\n{label}\n</text>")),
            "legend lacks {label}"
        );
    }
    assert!(
        svg.matches("<polyline").count() >= 2,
        "both CPU curves are drawn"
    );
}

/// A folder without run.json is named in the error.
#[test]
fn compare_rejects_non_run() {
    let empty = tempfile::tempdir().expect("temp dir");
    let mut dirs = committed(&["01"]);
    dirs.push(empty.path().to_path_buf());
    let error = compare_runs(&dirs).expect_err("not a run");
    assert!(matches!(error, CompareError::NotARun(_)), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&empty.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("run.json"), "{message}");

    let error = compare_runs(&committed(&["01"])).expect_err("one run");
    assert!(matches!(error, CompareError::TooFewRuns(1)), "{error}");
}

/// Runs whose groups have other names cannot be compared.
#[test]
fn compare_rejects_mismatched_groups() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let renamed = fixture::copy_run("02", scratch.path());
    for file in ["run.json", "bots.csv", "latency.csv", "phases.csv"] {
        let path = renamed.join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        let text = text
            .replace("\"name\": \"websocket\"", "\"name\": \"ws-2\"")
            .replace("\"name\": \"c2s\"", "\"name\": \"tcp-2\"")
            .replace(",websocket,", ",ws-2,")
            .replace(",c2s,", ",tcp-2,")
            .replace("\nwebsocket,", "\nws-2,")
            .replace("\nc2s,", "\ntcp-2,");
        std::fs::write(&path, text).expect("write");
    }

    let mut dirs = committed(&["01"]);
    dirs.push(renamed);
    let error = compare_runs(&dirs).expect_err("no group in common");
    assert!(
        matches!(error, CompareError::NoCommonGroup { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("02 has tcp-2, ws-2"), "{message}");
    assert!(message.contains("01 has websocket, c2s"), "{message}");
}

/// Runs of other scenarios compare, with a warning naming the differing settings.
#[test]
fn compare_warns_on_other_settings() {
    let comparison = compare_runs(&committed(&["01", "05"])).expect("compare");
    let markdown = runs::render_compare_markdown(&comparison, plot::compare::PNG_FILE);
    assert!(
        markdown.contains("WARNING: group websocket has different settings"),
        "{markdown}"
    );
}
