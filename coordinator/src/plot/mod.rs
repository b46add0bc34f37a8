//! The graph of a run, `monitor_server.png` and `monitor_server.svg`:
//! three panels over one time axis (seconds from the run start).
//!
//! 1. CPU of each monitored process in % of one core, with whole-host CPU
//!    as a thin grey line on the same scale (host % × cores).
//! 2. Connected bots per group.
//! 3. Messages per second per group on a log axis, received solid and sent
//!    dashed, because MUC fan-out makes received far larger than sent.
//!
//! Every panel shades each group's join, talk and leave windows, labelled
//! above the first panel. Gaps in monitor data break the CPU line and are
//! marked with a cross on the time axis. A dashed red line crosses every
//! panel where an agent's slice was lost, and a dashed green one where a
//! lost agent returned, both named in the first panel. A grey span in the
//! first panel covers the time without a monitor stream.

pub mod compare;
mod losses;
mod outages;
pub mod series;

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::report::{Phase, PhaseWindow, ReportError, RunData};
use losses::LossMark;
use outages::MonitorGap;
use series::{GroupRates, GroupSeries, ProcessSeries};

pub const PNG_FILE: &str = "monitor_server.png";
pub const SVG_FILE: &str = "monitor_server.svg";
pub const WIDTH: u32 = 1600;
pub const HEIGHT: u32 = 1000;

/// Font family name that the charts request. The embedded DejaVu Sans is
/// registered under it because plotters with `ab_glyph` has no system fonts.
const FONT: &str = "sans-serif";
const TITLE_SIZE: u32 = 26;
const AXIS_DESC_SIZE: u32 = 20;
const LABEL_SIZE: u32 = 17;
/// Width left of each panel for tick labels and the vertical axis title, in pixels.
const Y_LABEL_AREA: u32 = 112;
/// Height of one row of phase labels above the first panel, in pixels.
const PHASE_LABEL_ROW: i32 = 24;
/// At most this many rows of phase labels; later labels may overlap.
const MAX_PHASE_LABEL_ROWS: usize = 3;

/// Tableau 10 colours, for lines of processes and groups.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const HOST_COLOR: RGBColor = RGBColor(160, 160, 160);

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Draws the graphs of `data` into the results folder `dir`.
pub fn render(data: &RunData, dir: &Path) -> Result<(), ReportError> {
    register_font()?;
    let plot = PlotData::new(data);

    let png = dir.join(PNG_FILE);
    let root = BitMapBackend::new(&png, (WIDTH, HEIGHT)).into_drawing_area();
    draw(&root, &plot)
        .and_then(|()| root.present())
        .map_err(|e| plot_error(&png, e))?;
    drop(root);

    let svg = dir.join(SVG_FILE);
    let root = SVGBackend::new(&svg, (WIDTH, HEIGHT)).into_drawing_area();
    draw(&root, &plot)
        .and_then(|()| root.present())
        .map_err(|e| plot_error(&svg, e))?;
    Ok(())
}

fn plot_error<E>(path: &Path, error: DrawingAreaErrorKind<E>) -> ReportError
where
    E: std::error::Error + Send + Sync + 'static,
{
    ReportError::Plot {
        path: path.to_path_buf(),
        source: Box::new(error),
    }
}

/// Registers DejaVu Sans as the plotters `sans-serif` font, once per process.
fn register_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
    });
    if *registered {
        Ok(())
    } else {
        Err(ReportError::Font)
    }
}

/// Everything drawn, computed once for both image formats.
struct PlotData {
    title: String,
    x_max: f64,
    processes: Vec<ProcessSeries>,
    /// Runs of whole-host CPU samples, broken where the monitor was gone.
    host: Vec<Vec<(f64, f64)>>,
    host_label: String,
    connected: Vec<GroupSeries>,
    rates: Vec<GroupRates>,
    phases: Vec<PhaseWindow>,
    losses: Vec<LossMark>,
    monitor_gaps: Vec<MonitorGap>,
    groups: Vec<String>,
}

impl PlotData {
    fn new(data: &RunData) -> PlotData {
        let (host_scale, host_label) = match data.monitor_cores() {
            Some(cores) => (f64::from(cores), format!("host CPU × {cores} cores")),
            None => (1.0, "host CPU (% of all cores)".to_owned()),
        };
        let mut phases = data.phases.clone();
        phases.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
        let mut title = format!("{}: server CPU, bots and messages", data.run.scenario_name);
        if data.run.stopped_early {
            title.push_str(" (stopped early)");
        }
        let x_max = data.duration_s().max(data.last_t_s()).max(1.0);
        let monitor_gaps = outages::monitor_gaps(data, x_max);
        let mut processes = series::process_series(data);
        for process in &mut processes {
            process.segments = process
                .segments
                .iter()
                .flat_map(|segment| outages::split_at_gaps(segment, &monitor_gaps))
                .collect();
        }
        let host = outages::split_at_gaps(&series::host_series(data, host_scale), &monitor_gaps);
        PlotData {
            title,
            x_max,
            processes,
            host,
            host_label,
            connected: series::connected_series(data),
            rates: series::rate_series(data),
            phases,
            losses: losses::loss_marks(data),
            monitor_gaps,
            groups: data.group_names(),
        }
    }

    fn group_color(&self, group: &str) -> RGBColor {
        let index = self.groups.iter().position(|g| g == group).unwrap_or(0);
        PALETTE[index % PALETTE.len()]
    }
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, plot: &PlotData) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let body = root.titled(&plot.title, (FONT, TITLE_SIZE))?;
    let label_band = PHASE_LABEL_ROW * label_rows(plot) as i32 + 8;
    let body = body.margin(label_band, 0, 0, 0);

    // CPU gets two fifths of the height, bots and messages share the rest.
    let height = body.dim_in_pixel().1 as i32;
    let cpu_height = height * 2 / 5;
    let (cpu_area, rest) = body.split_vertically(cpu_height);
    let (bots_area, rates_area) = rest.split_vertically((height - cpu_height) * 2 / 5);

    draw_cpu_panel(root, &cpu_area, plot)?;
    draw_bots_panel(&bots_area, plot)?;
    draw_rates_panel(&rates_area, plot)?;
    Ok(())
}

fn label_rows(plot: &PlotData) -> usize {
    plot.phases.len().clamp(1, MAX_PHASE_LABEL_ROWS)
}

/// Light fill of a phase window, and the darker shade of that hue for its label.
fn phase_colors(phase: Phase) -> (RGBAColor, RGBColor) {
    match phase {
        Phase::Join => (RGBColor(120, 170, 230).mix(0.25), RGBColor(30, 80, 160)),
        Phase::Talk => (RGBColor(120, 210, 120).mix(0.25), RGBColor(30, 110, 30)),
        Phase::Leave => (RGBColor(250, 170, 90).mix(0.3), RGBColor(170, 80, 10)),
    }
}

/// Shades every phase window over the full height of a chart.
fn shade_phases<DB, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    phases: &[PhaseWindow],
    y_range: (Y::ValueType, Y::ValueType),
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    Y: Ranged,
    Y::ValueType: Clone + 'static,
{
    let rectangles = phases.iter().map(|p| {
        let (fill, _) = phase_colors(p.phase);
        Rectangle::new(
            [(p.start_s, y_range.0.clone()), (p.end_s, y_range.1.clone())],
            fill.filled(),
        )
    });
    chart.draw_series(rectangles)?;
    Ok(())
}

fn draw_cpu_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    plot: &PlotData,
) -> DrawResult<DB> {
    let values = plot
        .processes
        .iter()
        .flat_map(|p| p.segments.iter().flatten())
        .chain(plot.host.iter().flatten())
        .map(|&(_, v)| v);
    let y_max = (values.fold(0.0, f64::max) * 1.1).max(10.0);

    let mut chart = ChartBuilder::on(area)
        .margin_right(24)
        .margin_left(8)
        .x_label_area_size(34)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(0.0..plot.x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .y_desc("CPU (% of one core)")
        .x_label_formatter(&format_tick)
        .y_label_formatter(&format_tick)
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, AXIS_DESC_SIZE))
        .light_line_style(WHITE)
        .draw()?;
    shade_phases(&mut chart, &plot.phases, (0.0, y_max))?;
    outages::shade_monitor_gaps(&mut chart, &plot.monitor_gaps, y_max)?;

    for (index, segment) in plot.host.iter().enumerate() {
        let drawn = chart.draw_series(LineSeries::new(
            segment.iter().copied(),
            HOST_COLOR.stroke_width(1),
        ))?;
        if index == 0 {
            drawn.label(&plot.host_label).legend(|(x, y)| {
                PathElement::new([(x, y), (x + 24, y)], HOST_COLOR.stroke_width(2))
            });
        }
    }
    for (index, process) in plot.processes.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        let style = color.stroke_width(3);
        for (segment_index, segment) in process.segments.iter().enumerate() {
            let drawn = chart.draw_series(LineSeries::new(segment.iter().copied(), style))?;
            if segment_index == 0 {
                drawn
                    .label(format!("{} CPU", process.process))
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
            }
        }
        if !process.gaps.is_empty() {
            let marker = color.stroke_width(3);
            chart
                .draw_series(
                    process
                        .gaps
                        .iter()
                        .map(|&t| Cross::new((t, 0.0), 7, marker)),
                )?
                .label(format!("{} gap (no sample)", process.process))
                .legend(move |(x, y)| Cross::new((x + 12, y), 6, marker));
        }
    }
    losses::draw_loss_lines(&mut chart, &plot.losses, (0.0, y_max))?;
    draw_legend(&mut chart)?;
    draw_phase_labels(root, &chart, plot, y_max)?;
    outages::draw_monitor_gap_labels(root, &chart, &plot.monitor_gaps)?;
    losses::draw_loss_labels(root, &chart, &plot.losses, plot.x_max, y_max)
}

fn draw_bots_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    plot: &PlotData,
) -> DrawResult<DB> {
    let values = plot
        .connected
        .iter()
        .flat_map(|g| g.points.iter())
        .map(|&(_, v)| v);
    let y_max = (values.fold(0.0, f64::max) * 1.1).max(1.0);

    let mut chart = ChartBuilder::on(area)
        .margin_right(24)
        .margin_left(8)
        .x_label_area_size(34)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(0.0..plot.x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .y_desc("connected bots")
        .x_label_formatter(&format_tick)
        .y_label_formatter(&format_tick)
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, AXIS_DESC_SIZE))
        .light_line_style(WHITE)
        .draw()?;
    shade_phases(&mut chart, &plot.phases, (0.0, y_max))?;

    for group in plot.connected.iter().filter(|g| !g.points.is_empty()) {
        let style = plot.group_color(&group.group).stroke_width(3);
        chart
            .draw_series(LineSeries::new(group.points.iter().copied(), style))?
            .label(group.group.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
    }
    losses::draw_loss_lines(&mut chart, &plot.losses, (0.0, y_max))?;
    draw_legend(&mut chart)
}

fn draw_rates_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    plot: &PlotData,
) -> DrawResult<DB> {
    let positive: Vec<f64> = plot
        .rates
        .iter()
        .flat_map(|g| g.sent.iter().chain(g.received.iter()))
        .map(|&(_, v)| v)
        .filter(|&v| v > 0.0)
        .collect();
    // Whole decades, so that the log axis labels are round numbers.
    let y_min = 10f64.powf(positive.iter().copied().fold(1.0, f64::min).log10().floor());
    let y_max = 10f64.powf(positive.iter().copied().fold(10.0, f64::max).log10().ceil());

    let mut chart = ChartBuilder::on(area)
        .margin_right(24)
        .margin_left(8)
        .x_label_area_size(64)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(0.0..plot.x_max, (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("seconds from start")
        .y_desc("messages/s (log)")
        .x_label_formatter(&format_tick)
        .y_label_formatter(&format_tick)
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, AXIS_DESC_SIZE))
        .light_line_style(WHITE)
        .draw()?;
    shade_phases(&mut chart, &plot.phases, (y_min, y_max))?;

    for group in &plot.rates {
        let color = plot.group_color(&group.group);
        let received = color.stroke_width(3);
        for (index, run) in series::positive_runs(&group.received)
            .into_iter()
            .enumerate()
        {
            let drawn = chart.draw_series(LineSeries::new(run, received))?;
            if index == 0 {
                drawn
                    .label(format!("{} received", group.group))
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], received));
            }
        }
        let sent = color.stroke_width(2);
        for (index, run) in series::positive_runs(&group.sent).into_iter().enumerate() {
            let drawn = chart.draw_series(DashedLineSeries::new(run, 8, 5, sent))?;
            if index == 0 {
                drawn
                    .label(format!("{} sent (dashed)", group.group))
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new([(0, 0), (8, 0)], sent)
                            + PathElement::new([(14, 0), (22, 0)], sent)
                    });
            }
        }
    }
    losses::draw_loss_lines(&mut chart, &plot.losses, (y_min, y_max))?;
    draw_legend(&mut chart)
}

/// Tick label without decimals, except below 1 where a log axis needs them.
fn format_tick(value: &f64) -> String {
    if value.abs() >= 1.0 || *value == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

fn draw_legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> DrawResult<DB>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, LABEL_SIZE))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

/// Writes "group phase" above the first panel at the start of each window,
/// moving a label down a row when it would overlap the previous one.
fn draw_phase_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    plot: &PlotData,
    y_max: f64,
) -> DrawResult<DB> {
    let rows = label_rows(plot);
    // Right end, in pixels, of the last label in each row.
    let mut row_ends = vec![i32::MIN; rows];
    for phase in &plot.phases {
        let (x, plot_top) = chart.backend_coord(&(phase.start_s, y_max));
        let (_, color) = phase_colors(phase.phase);
        let style = TextStyle::from((FONT, LABEL_SIZE).into_font()).color(&color);
        let text = format!("{} {}", phase.group, phase.phase);
        let (width, _) = root.estimate_text_size(&text, &style)?;

        let row = row_ends
            .iter()
            .position(|&end| end + 10 < x)
            .unwrap_or_else(|| (0..rows).min_by_key(|&r| row_ends[r]).unwrap_or(0));
        row_ends[row] = x + width as i32;
        let y = plot_top - PHASE_LABEL_ROW * (rows - row) as i32;
        root.draw(&Text::new(text, (x, y), style))?;
        root.draw(&PathElement::new(
            [(x, y + PHASE_LABEL_ROW - 4), (x, plot_top)],
            color.stroke_width(1),
        ))?;
    }
    Ok(())
}
