//! Spans without the monitor, from its loss to its return or to the end
//! of the run: shaded grey over the CPU panel and labelled "no monitor"
//! at the bottom, where the agents' labels at the top cannot cover it.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{DrawResult, FONT, LABEL_SIZE};
use crate::report::RunData;
use crate::results::run_info::PeerRole;

pub const MONITOR_GAP_COLOR: RGBColor = RGBColor(110, 110, 110);
/// Opacity of the shading, light enough that the phases show through.
const MONITOR_GAP_OPACITY: f64 = 0.3;

/// Seconds since run start without a monitor stream.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorGap {
    pub start_s: f64,
    pub end_s: f64,
}

/// Collects the monitor's outages, ending one that has no return at `x_max`.
pub fn monitor_gaps(data: &RunData, x_max: f64) -> Vec<MonitorGap> {
    data.run
        .outages()
        .into_iter()
        .filter(|outage| outage.role == PeerRole::Monitor)
        .map(|outage| MonitorGap {
            start_s: outage.lost_s,
            end_s: outage.returned_s.unwrap_or(x_max).max(outage.lost_s),
        })
        .collect()
}

/// Shades each gap over the full height of the CPU chart.
pub fn shade_monitor_gaps<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    gaps: &[MonitorGap],
    y_max: f64,
) -> DrawResult<DB> {
    let fill = MONITOR_GAP_COLOR.mix(MONITOR_GAP_OPACITY).filled();
    chart.draw_series(
        gaps.iter()
            .map(|gap| Rectangle::new([(gap.start_s, 0.0), (gap.end_s, y_max)], fill)),
    )?;
    Ok(())
}

/// Writes "no monitor" inside the bottom of each gap's span, starting at
/// its left edge.
pub fn draw_monitor_gap_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    gaps: &[MonitorGap],
) -> DrawResult<DB> {
    let style = TextStyle::from((FONT, LABEL_SIZE).into_font()).color(&MONITOR_GAP_COLOR);
    for gap in gaps {
        let (x, bottom) = chart.backend_coord(&(gap.start_s, 0.0));
        let (_, height) = root.estimate_text_size("no monitor", &style)?;
        root.draw(&Text::new(
            "no monitor",
            (x + 4, bottom - height as i32 - 6),
            style.clone(),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::run_info::{PeerEvent, PeerEventKind, RunInfo};

    fn event(t_s: f64, role: PeerRole, kind: PeerEventKind) -> PeerEvent {
        PeerEvent {
            t_s,
            role,
            peer: "peer".to_string(),
            kind,
            reason: String::new(),
            returned_as: None,
        }
    }

    fn data(peer_events: Vec<PeerEvent>) -> RunData {
        RunData::for_tests(RunInfo {
            peer_events,
            ..RunInfo::for_tests()
        })
    }

    /// Monitor outages become gaps, an open one ends at the graph's end,
    /// and agent outages are left to the agent marks.
    #[test]
    fn gaps_from_monitor_outages() {
        use PeerEventKind::{Lost, Returned};
        let data = data(vec![
            event(2.0, PeerRole::Monitor, Lost),
            event(3.0, PeerRole::Agent, Lost),
            event(4.5, PeerRole::Monitor, Returned),
            event(6.0, PeerRole::Agent, Returned),
            event(8.0, PeerRole::Monitor, Lost),
        ]);
        assert_eq!(
            monitor_gaps(&data, 20.0),
            [
                MonitorGap {
                    start_s: 2.0,
                    end_s: 4.5
                },
                MonitorGap {
                    start_s: 8.0,
                    end_s: 20.0
                },
            ]
        );
    }
}
