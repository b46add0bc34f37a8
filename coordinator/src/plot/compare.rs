//! The graph of `coordinator compare`, `compare_cpu.png` and
//! `compare_cpu.svg`: the CPU of the monitored processes of several runs on
//! one axis of seconds since each run's start, one colour per run.

use std::path::Path;

use plotters::prelude::*;

use super::series::process_series;
use super::{
    AXIS_DESC_SIZE, FONT, HEIGHT, LABEL_SIZE, PALETTE, TITLE_SIZE, WIDTH, Y_LABEL_AREA,
    draw_legend, format_tick, plot_error, register_font,
};
use crate::report::{ReportError, RunData};

pub const PNG_FILE: &str = "compare_cpu.png";
pub const SVG_FILE: &str = "compare_cpu.svg";

/// Line styles of the second and later process of a run, so that the
/// processes of one run share its colour and still differ.
const DASHES: [(u32, u32); 3] = [(12, 6), (4, 4), (16, 4)];

/// One line to draw: a run's process, split at gaps.
struct Curve {
    label: String,
    color: RGBColor,
    /// Index into `DASHES` plus one, or 0 for a solid line.
    dash: usize,
    segments: Vec<Vec<(f64, f64)>>,
}

/// Draws the CPU of every run in `runs`, labelled by the given names, into
/// the folder `dir`.
pub fn render(runs: &[(&str, &RunData)], dir: &Path) -> Result<(), ReportError> {
    register_font()?;
    let mut curves = Vec::new();
    for (index, (label, data)) in runs.iter().enumerate() {
        let series = process_series(data);
        let several = series.len() > 1;
        for (process_index, process) in series.into_iter().enumerate() {
            curves.push(Curve {
                label: if several {
                    format!("{label} {}", process.process)
                } else {
                    (*label).to_owned()
                },
                color: PALETTE[index % PALETTE.len()],
                dash: process_index % (DASHES.len() + 1),
                segments: process.segments,
            });
        }
    }
    let x_max = runs
        .iter()
        .map(|(_, data)| data.duration_s().max(data.last_t_s()))
        .fold(1.0, f64::max);
    let labels: Vec<&str> = runs.iter().map(|(label, _)| *label).collect();
    let title = format!("Server CPU of runs {}", labels.join(", "));

    let png = dir.join(PNG_FILE);
    let root = BitMapBackend::new(&png, (WIDTH, HEIGHT)).into_drawing_area();
    draw(&root, &title, x_max, &curves)
        .and_then(|()| root.present())
        .map_err(|e| plot_error(&png, e))?;
    drop(root);

    let svg = dir.join(SVG_FILE);
    let root = SVGBackend::new(&svg, (WIDTH, HEIGHT)).into_drawing_area();
    draw(&root, &title, x_max, &curves)
        .and_then(|()| root.present())
        .map_err(|e| plot_error(&svg, e))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_max: f64,
    curves: &[Curve],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let y_max = curves
        .iter()
        .flat_map(|c| c.segments.iter().flatten())
        .map(|&(_, v)| v)
        .fold(0.0, f64::max);
    let y_max = (y_max * 1.1).max(10.0);

    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, TITLE_SIZE))
        .margin(16)
        .margin_right(32)
        .x_label_area_size(64)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds since run start")
        .y_desc("CPU (% of one core)")
        .x_label_formatter(&format_tick)
        .y_label_formatter(&format_tick)
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, AXIS_DESC_SIZE))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;

    for curve in curves {
        let style = curve.color.stroke_width(3);
        for (index, segment) in curve.segments.iter().enumerate() {
            let points = segment.iter().copied();
            let drawn = match curve.dash.checked_sub(1).map(|i| DASHES[i]) {
                None => chart.draw_series(LineSeries::new(points, style))?,
                Some((size, spacing)) => {
                    chart.draw_series(DashedLineSeries::new(points, size, spacing, style))?
                }
            };
            if index == 0 {
                drawn
                    .label(curve.label.as_str())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
            }
        }
    }
    draw_legend(&mut chart)
}
