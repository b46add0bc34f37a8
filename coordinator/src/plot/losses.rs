//! Marks for bot agents: a dashed red line in every panel at the time a
//! slice was lost, a dashed green line where a lost agent responded again,
//! and the agent's name at each line in the CPU panel.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{DrawResult, FONT, LABEL_SIZE};
use crate::report::RunData;
use crate::results::run_info::{PeerEventKind, PeerRole};

pub const LOSS_COLOR: RGBColor = RGBColor(200, 0, 0);
pub const RETURN_COLOR: RGBColor = RGBColor(0, 150, 60);
/// Height of one row of loss labels inside the CPU panel, in pixels.
const LOSS_LABEL_ROW: i32 = 22;
/// Maximum rows of loss labels. Past them a label goes to the least used
/// row and may overlap another.
const MAX_LOSS_LABEL_ROWS: usize = 3;

/// Whether a mark shows a lost slice or a returning agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    Lost,
    Returned,
}

impl MarkKind {
    fn color(self) -> RGBColor {
        match self {
            MarkKind::Lost => LOSS_COLOR,
            MarkKind::Returned => RETURN_COLOR,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            MarkKind::Lost => "lost",
            MarkKind::Returned => "back",
        }
    }
}

/// One incomplete slice with a known time of loss, or one return of an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct LossMark {
    pub t_s: f64,
    pub agent: String,
    pub kind: MarkKind,
}

/// Collects the incomplete slices of every group that have a time of loss
/// and the returns of agents in `peer_events`, earliest first.
pub fn loss_marks(data: &RunData) -> Vec<LossMark> {
    let losses = data
        .run
        .groups
        .iter()
        .flat_map(|group| group.incomplete.iter())
        .filter_map(|slice| {
            slice.lost_at_s.map(|t_s| LossMark {
                t_s,
                agent: slice.agent.clone(),
                kind: MarkKind::Lost,
            })
        });
    let returns = data
        .run
        .peer_events
        .iter()
        .filter(|event| event.role == PeerRole::Agent && event.kind == PeerEventKind::Returned)
        .map(|event| LossMark {
            t_s: event.t_s,
            agent: event.peer.clone(),
            kind: MarkKind::Returned,
        });
    let mut marks: Vec<LossMark> = losses.chain(returns).collect();
    marks.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    marks
}

/// Draws a dashed vertical line over the full height of a chart at each
/// mark, red for a loss and green for a return.
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
    for mark in marks {
        let style = mark.kind.color().stroke_width(2);
        let points = [(mark.t_s, y_range.0.clone()), (mark.t_s, y_range.1.clone())];
        chart.draw_series(DashedLineSeries::new(points, 10, 6, style))?;
    }
    Ok(())
}

/// Writes "lost AGENT" or "back AGENT" just inside the top of the CPU
/// panel, right of each line, or left of it where the text would pass the
/// panel's right edge. A label moves down a row when it would overlap an
/// earlier one, and a repeat of the label just before it is left out.
pub fn draw_loss_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    marks: &[LossMark],
    x_max: f64,
    y_max: f64,
) -> DrawResult<DB> {
    let (right_edge, _) = chart.backend_coord(&(x_max, y_max));
    // Left and right ends, in pixels, of the labels placed in each row.
    let mut rows: Vec<Vec<(i32, i32)>> = vec![Vec::new(); MAX_LOSS_LABEL_ROWS];
    let mut previous: Option<(&LossMark, i32)> = None;
    for mark in marks {
        let (x, plot_top) = chart.backend_coord(&(mark.t_s, y_max));
        let repeat = previous.is_some_and(|(before, previous_x)| {
            before.agent == mark.agent && before.kind == mark.kind && x - previous_x < 10
        });
        if repeat {
            continue;
        }
        previous = Some((mark, x));

        let color = mark.kind.color();
        let style = TextStyle::from((FONT, LABEL_SIZE).into_font()).color(&color);
        let text = format!("{} {}", mark.kind.verb(), mark.agent);
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
        root.draw(&Text::new(text, (left, top), style))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::run_info::{
        GroupInfo, IncompleteSlice, PeerEvent, PeerEventKind, PeerRole, RunInfo,
    };

    fn group(name: &str, incomplete: Vec<IncompleteSlice>) -> GroupInfo {
        GroupInfo {
            name: name.to_string(),
            transport: "websocket".to_string(),
            tls: "none".to_string(),
            stream_management: false,
            web_client: "off".to_owned(),
            web_client_counts: Default::default(),
            auth: "anonymous".to_string(),
            bots: 2,
            room: "room@muc".to_string(),
            rooms: 1,
            room_distribution: "uniform".to_string(),
            zipf_exponent: None,
            rooms_per_bot: 1,
            join_rate: 1.0,
            talk_after_s: 1.0,
            talk_rate: 1.0,
            talk_duration_s: 1.0,
            leave_after_s: 3.0,
            body_bytes: 10,
            scheduled_start_s: 0.0,
            placement: Vec::new(),
            incomplete,
        }
    }

    fn returned(t_s: f64, role: PeerRole, peer: &str) -> PeerEvent {
        PeerEvent {
            t_s,
            role,
            peer: peer.to_string(),
            kind: PeerEventKind::Returned,
            reason: String::new(),
            returned_as: None,
        }
    }

    /// Losses come from incomplete slices and returns from agent events,
    /// in time order; the monitor's return is not an agent mark.
    #[test]
    fn marks_of_losses_and_returns() {
        let slice = IncompleteSlice {
            agent: "a".to_string(),
            bots: 1,
            reason: "stream broke off".to_string(),
            lost_at_s: Some(5.0),
        };
        let data = RunData::for_tests(RunInfo {
            groups: vec![group("first", vec![slice]), group("second", Vec::new())],
            peer_events: vec![
                returned(9.0, PeerRole::Agent, "a"),
                returned(7.0, PeerRole::Monitor, "monitor"),
            ],
            ..RunInfo::for_tests()
        });
        let marks = loss_marks(&data);
        let marks: Vec<(f64, &str, MarkKind)> = marks
            .iter()
            .map(|m| (m.t_s, m.agent.as_str(), m.kind))
            .collect();
        assert_eq!(
            marks,
            [(5.0, "a", MarkKind::Lost), (9.0, "a", MarkKind::Returned)]
        );
    }
}
