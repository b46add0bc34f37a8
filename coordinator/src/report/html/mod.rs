//! `report.html`: the report as one self-contained page.
//!
//! The page carries its CSS and its graphs inline, each SVG file of the
//! folder embedded as an `<svg>` element. It has no script and loads
//! nothing from the network, so it opens the same way from a mail
//! attachment as from the results folder. Every text taken from the
//! scenario or the results goes through [`escape`], so a group named
//! `<script>` shows as text.

mod sections;

use std::fmt::Write as _;
use std::path::Path;

use super::data::RunData;
use super::error::ReportError;
use super::summary::RunSummary;

/// Name of the HTML report inside a results folder.
pub const HTML_FILE: &str = "report.html";

/// Graphs embedded in the page, by SVG file name in the results folder, with
/// the caption shown above each.
pub const GRAPHS: [(&str, &str); 1] = [(
    crate::plot::SVG_FILE,
    "Server CPU, connected bots and messages per second, with each group's phases shaded",
)];

const STYLE: &str = "
body { font-family: sans-serif; margin: 2em auto; max-width: 1700px; padding: 0 1em; color: #222; }
h1, h2, h3 { font-weight: 600; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: 0.8em; overflow-x: auto; }
.warning { background: #fff3cd; border-left: 4px solid #d39e00; padding: 0.5em 0.8em; }
figure { margin: 1em 0; }
figure svg { display: block; max-width: 100%; height: auto; border: 1px solid #ddd; }
";

/// Renders the page of `data` and writes it to the file `out`. The graphs
/// are read from the SVG files in `data.dir`, so draw them first.
pub fn write_html(data: &RunData, summary: &RunSummary, out: &Path) -> Result<(), ReportError> {
    let mut svgs = Vec::new();
    for (file, caption) in GRAPHS {
        let path = data.dir.join(file);
        let svg = std::fs::read_to_string(&path).map_err(|source| ReportError::Read {
            path: path.clone(),
            source,
        })?;
        let element = svg_element(&svg).ok_or_else(|| ReportError::Read {
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no <svg> element found; rebuild the graphs with `coordinator report DIR`",
            ),
        })?;
        svgs.push((caption, element.to_owned()));
    }
    let graphs: Vec<Graph<'_>> = svgs
        .iter()
        .map(|(caption, svg)| Graph { caption, svg })
        .collect();
    let scenario = read_scenario(data.dir.as_path())?;
    let page = render_html(data, summary, scenario.as_deref(), &graphs);
    std::fs::write(out, page).map_err(|source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    })
}

/// One graph to embed: an `<svg>` element and its caption.
pub struct Graph<'a> {
    pub caption: &'a str,
    pub svg: &'a str,
}

/// Renders the whole page. `scenario` is the text of the scenario file, if
/// the folder has one.
pub fn render_html(
    data: &RunData,
    summary: &RunSummary,
    scenario: Option<&str>,
    graphs: &[Graph<'_>],
) -> String {
    let title = format!("Load test report: {}", data.run.scenario_name);
    let mut out = String::new();
    let _ = writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>");
    let _ = writeln!(out, "<meta charset=\"utf-8\">");
    // Forbids every fetch and script, so the page stays self-contained even
    // if a future change links something by mistake.
    let _ = writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">"
    );
    let _ = writeln!(out, "<title>{}</title>", escape(&title));
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(out, "<h1>{}</h1>", escape(&title));

    sections::render_header(&mut out, data, summary);
    sections::render_warnings(&mut out, data, summary);
    render_graphs(&mut out, graphs);
    sections::render_groups_settings(&mut out, &data.run);
    sections::render_peers(&mut out, &data.run);
    for group in &summary.groups {
        sections::render_group(&mut out, group);
    }
    sections::render_comparisons(&mut out, &summary.comparisons);
    render_scenario(&mut out, scenario);
    let _ = writeln!(out, "</body>\n</html>");
    out
}

fn render_graphs(out: &mut String, graphs: &[Graph<'_>]) {
    let _ = writeln!(out, "<h2>Graphs</h2>");
    for graph in graphs {
        let _ = writeln!(
            out,
            "<figure>\n<figcaption>{}</figcaption>\n{}\n</figure>",
            escape(graph.caption),
            graph.svg
        );
    }
}

fn render_scenario(out: &mut String, scenario: Option<&str>) {
    let _ = writeln!(out, "<h2>Scenario</h2>");
    match scenario {
        Some(text) => {
            let _ = writeln!(out, "<pre>{}</pre>", escape(text));
        }
        None => {
            let _ = writeln!(
                out,
                "<p>The results folder has no <code>scenario.toml</code>.</p>"
            );
        }
    }
}

/// Reads the copy of the scenario that the run saved, if there is one.
fn read_scenario(dir: &Path) -> Result<Option<String>, ReportError> {
    let path = dir.join("scenario.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ReportError::Read { path, source }),
    }
}

/// Returns the `<svg>...</svg>` element of an SVG file, without any XML
/// declaration or comment before it, which are not valid inside HTML.
pub fn svg_element(svg: &str) -> Option<&str> {
    let start = svg.find("<svg")?;
    let end = svg.rfind("</svg>")? + "</svg>".len();
    (start < end).then(|| &svg[start..end])
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Markup characters come out as entities.
    #[test]
    fn escape_markup() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    /// The XML declaration before an SVG element is cut off.
    #[test]
    fn svg_element_drops_declaration() {
        let file = "<?xml version=\"1.0\"?>\n<svg width=\"2\"><rect/></svg>\n";
        assert_eq!(svg_element(file), Some("<svg width=\"2\"><rect/></svg>"));
        assert_eq!(svg_element("<html></html>"), None);
    }
}
