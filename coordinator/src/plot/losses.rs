//! Marks for slices that did not finish: a dashed red line in every panel
//! at the time the slice was lost, and the agent's name in the CPU panel.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{DrawResult, FONT, LABEL_SIZE};
use crate::report::RunData;

const LOSS_COLOR: RGBColor = RGBColor(200, 0, 0);
/// Height of one row of loss labels inside the CPU panel, in pixels.
const LOSS_LABEL_ROW: i32 = 22;
/// Maximum rows of loss labels. Past them a label goes to the least used
/// row and may overlap another.
const MAX_LOSS_LABEL_ROWS: usize = 3;

/// One incomplete slice with a known time of loss.
#[derive(Debug, Clone)]
pub struct LossMark {
    pub t_s: f64,
    pub agent: String,
}

/// Collects the incomplete slices of every group that have a time of loss,
/// earliest first.
pub fn loss_marks(data: &RunData) -> Vec<LossMark> {
    let mut marks: Vec<LossMark> = data
        .run
        .groups
        .iter()
        .flat_map(|group| group.incomplete.iter())
        .filter_map(|slice| {
            slice.lost_at_s.map(|t_s| LossMark {
                t_s,
                agent: slice.agent.clone(),
            })
        })
        .collect();
    marks.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    marks
}

/// Draws a dashed red vertical line over the full height of a chart at each loss.
pub fn draw_loss_lines<DB, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    marks: &[LossMark],
    y_range: (Y::ValueType, Y::ValueType),
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    Y: Ranged,
    Y::ValueType: Clone + 'static,
{
    let style = LOSS_COLOR.stroke_width(2);
    for mark in marks {
        let points = [(mark.t_s, y_range.0.clone()), (mark.t_s, y_range.1.clone())];
        chart.draw_series(DashedLineSeries::new(points, 10, 6, style))?;
    }
    Ok(())
}

/// Writes "lost AGENT" just inside the top of the CPU panel, right of each
/// loss line, or left of it where the text would pass the panel's right
/// edge. A label moves down a row when it would overlap an earlier one,
/// and a repeat of the label just before it is left out.
pub fn draw_loss_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    marks: &[LossMark],
    x_max: f64,
    y_max: f64,
) -> DrawResult<DB> {
    let (right_edge, _) = chart.backend_coord(&(x_max, y_max));
    let style = TextStyle::from((FONT, LABEL_SIZE).into_font()).color(&LOSS_COLOR);
    // Left and right ends, in pixels, of the labels placed in each row.
    let mut rows: Vec<Vec<(i32, i32)>> = vec![Vec::new(); MAX_LOSS_LABEL_ROWS];
    let mut previous: Option<(&str, i32)> = None;
    for mark in marks {
        let (x, plot_top) = chart.backend_coord(&(mark.t_s, y_max));
        if previous.is_some_and(|(agent, previous_x)| agent == mark.agent && x - previous_x < 10) {
            continue;
        }
        previous = Some((mark.agent.as_str(), x));

        let text = format!("lost {}", mark.agent);
        let (width, height) = root.estimate_text_size(&text, &style)?;
        let width = width as i32;
        let left = if x + 4 + width <= right_edge {
            x + 4
        } else {
            x - 4 - width
        };
        let right = left + width;

        let row = rows
            .iter()
            .position(|placed| placed.iter().all(|&(l, r)| right + 6 < l || r + 6 < left))
            .unwrap_or_else(|| (0..rows.len()).min_by_key(|&r| rows[r].len()).unwrap_or(0));
        rows[row].push((left, right));
        let top = plot_top + 4 + LOSS_LABEL_ROW * row as i32;

        // A light box keeps the text legible over lines and shading.
        root.draw(&Rectangle::new(
            [(left - 2, top - 1), (right + 2, top + height as i32 + 1)],
            WHITE.mix(0.85).filled(),
        ))?;
        root.draw(&Text::new(text, (left, top), style.clone()))?;
    }
    Ok(())
}
