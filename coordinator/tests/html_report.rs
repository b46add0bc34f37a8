//! report.html built from a real run opens in headless Chromium with its
//! graphs drawn, and text from the results cannot inject markup.

mod fixture;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xmppload_coordinator::report::{self, html};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Upper bound for one Chromium run; a page without scripts loads in seconds.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);
/// Wide enough for the 1600-pixel graph, tall enough to hold it below the
/// header tables.
const WINDOW: (u32, u32) = (1700, 4000);
/// Colour of the first process's CPU line (the first Tableau 10 colour).
const CPU_LINE: [u8; 3] = [31, 119, 180];

/// Runs headless Chromium with `mode` (`--dump-dom` or `--screenshot=...`)
/// on `page` and returns its standard output.
fn chromium(page: &Path, mode: &str, scratch: &Path) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing; install the Debian package `chromium` (.ci/run does)"
    );
    let profile = tempfile::tempdir_in(scratch).expect("profile folder");
    let stdout_path = scratch.join(format!("stdout-{}.txt", std::process::id()));
    let stdout = File::create(&stdout_path).expect("create stdout file");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "chromium exited with {status}");
    std::fs::read_to_string(&stdout_path).expect("read chromium output")
}

/// Pixels of the CPU line colour in the screenshot and the width in pixels
/// of the box around them.
fn cpu_line_pixels(screenshot: &Path) -> (usize, u32) {
    let image = image::open(screenshot)
        .expect("decode screenshot")
        .to_rgb8();
    let mut count = 0;
    let (mut left, mut right) = (u32::MAX, 0);
    for (x, _, pixel) in image.enumerate_pixels() {
        let close = pixel
            .0
            .iter()
            .zip(CPU_LINE)
            .all(|(&a, b)| a.abs_diff(b) <= 12);
        if close {
            count += 1;
            left = left.min(x);
            right = right.max(x);
        }
    }
    (count, right.saturating_sub(left))
}

/// Counts the `<svg>` start tags in serialized HTML.
fn svg_elements(dom: &str) -> usize {
    dom.matches("<svg ").count() + dom.matches("<svg>").count()
}

fn build_report(scratch: &Path) -> PathBuf {
    let dir = fixture::copy_run("01", scratch);
    report::build_outputs(&dir).expect("build the outputs of results/01");
    dir
}

/// The DOM has one SVG per graph and the screenshot shows the CPU curve.
#[test]
fn html_renders_graphs_in_chromium() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = build_report(scratch.path());
    let page = dir.join(html::HTML_FILE);
    let text = std::fs::read_to_string(&page).expect("read report.html");

    // Self-contained: nothing is fetched and nothing runs.
    for forbidden in ["<script", "<link", "src=\"http", "href=\"http", "@import"] {
        assert!(
            !text.contains(forbidden),
            "report.html contains {forbidden}"
        );
    }
    // The sections the page promises, with values of this run.
    for expected in [
        "Groups and placement",
        "agent-1: 25, agent-2: 25",
        "Agents and clocks",
        "+0.022",
        "0.113",
        "CPU per phase",
        "Groups compared while talking",
        "Losses and warnings",
        "name = &quot;websocket-vs-c2s&quot;",
    ] {
        assert!(text.contains(expected), "report.html lacks {expected:?}");
    }

    let dom = chromium(&page, "--dump-dom", scratch.path());
    assert_eq!(
        svg_elements(&dom),
        html::GRAPHS.len(),
        "one <svg> element per graph in the rendered DOM"
    );
    assert!(
        dom.contains("<polyline"),
        "the graph's lines reached the DOM"
    );

    let screenshot = scratch.path().join("report.png");
    chromium(
        &page,
        &format!("--screenshot={}", screenshot.display()),
        scratch.path(),
    );
    let (pixels, width) = cpu_line_pixels(&screenshot);
    assert!(
        pixels > 2000,
        "only {pixels} pixels of the CPU line are drawn"
    );
    assert!(width > 800, "the CPU line spans only {width} pixels");
}

/// A page whose SVG is broken fails the same checks, so they can fail.
#[test]
fn html_broken_svg_detected() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = build_report(scratch.path());
    let page = dir.join(html::HTML_FILE);
    let text = std::fs::read_to_string(&page).expect("read report.html");
    let broken = text.replace("<svg ", "<svgx ").replace("</svg>", "</svgx>");
    std::fs::write(&page, broken).expect("write broken page");

    let dom = chromium(&page, "--dump-dom", scratch.path());
    assert_eq!(svg_elements(&dom), 0);

    let screenshot = scratch.path().join("broken.png");
    chromium(
        &page,
        &format!("--screenshot={}", screenshot.display()),
        scratch.path(),
    );
    let (pixels, _) = cpu_line_pixels(&screenshot);
    assert!(
        pixels < 200,
        "{pixels} pixels of the CPU line without an SVG"
    );
}

/// A group named like a script tag shows as text in the page and the graph.
#[test]
fn html_escapes_group_names() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = fixture::copy_run("01", scratch.path());
    let evil = "<script>alert(1)</script>";
    let json_name = "\"name\": \"<script>alert(1)</script>\"";
    let run_json = dir.join("run.json");
    let text = std::fs::read_to_string(&run_json).expect("read run.json");
    std::fs::write(&run_json, text.replace("\"name\": \"c2s\"", json_name))
        .expect("rename the group");
    let phases = dir.join("phases.csv");
    let text = std::fs::read_to_string(&phases).expect("read phases.csv");
    let renamed = text.replace("\nc2s,", &format!("\n\"{evil}\","));
    std::fs::write(&phases, renamed).expect("rename the group's phases");

    report::build_outputs(&dir).expect("build the outputs");
    let page = std::fs::read_to_string(dir.join(html::HTML_FILE)).expect("read report.html");
    assert!(
        !page.contains("<script"),
        "the group name was written as markup"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    let dom = chromium(&dir.join(html::HTML_FILE), "--dump-dom", scratch.path());
    assert!(!dom.contains("<script"), "Chromium parsed a script element");
    assert!(dom.contains("Group &lt;script&gt;alert(1)&lt;/script&gt;"));
}
