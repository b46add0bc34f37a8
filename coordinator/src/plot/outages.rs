//! Spans without the monitor, from its loss to its return or to the end
//! of the run: shaded grey over the CPU panel and labelled "no monitor"
//! at the bottom, where the agents' labels at the top cannot cover it.
//! The CPU lines break at each span instead of bridging it.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{DrawResult, FONT, LABEL_SIZE};
use crate::report::RunData;
use crate::results::run_info::PeerRole;

pub const MONITOR_GAP_COLOR: RGBColor = RGBColor(110, 110, 110);
/// Opacity of the shading, light enough that the phases show through.
const MONITOR_GAP_OPACITY: f64 = 0.25;
/// Colour of the "no monitor" label, darker than the shading under it.
pub const MONITOR_GAP_LABEL_COLOR: RGBColor = RGBColor(50, 50, 50);

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

/// Splits a time series into runs that do not cross a gap: two
/// consecutive points go to separate runs when a gap lies between them.
pub fn split_at_gaps(points: &[(f64, f64)], gaps: &[MonitorGap]) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for &point in points {
        if let Some(&(previous_t, _)) = current.last() {
            let crosses = gaps
                .iter()
                .any(|gap| previous_t < gap.end_s && point.0 > gap.start_s);
            if crosses {
                runs.push(std::mem::take(&mut current));
            }
        }
        current.push(point);
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
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
/// its left edge, on a light box that keeps it legible over the lines.
pub fn draw_monitor_gap_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    gaps: &[MonitorGap],
) -> DrawResult<DB> {
    const TEXT: &str = "no monitor";
    let style = TextStyle::from((FONT, LABEL_SIZE).into_font()).color(&MONITOR_GAP_LABEL_COLOR);
    let (width, height) = root.estimate_text_size(TEXT, &style)?;
    let (width, height) = (width as i32, height as i32);
    for gap in gaps {
        let (x, bottom) = chart.backend_coord(&(gap.start_s, 0.0));
        let (left, top) = (x + 4, bottom - height - 14);
        root.draw(&Rectangle::new(
            [(left - 2, top - 1), (left + width + 2, top + height + 1)],
            WHITE.mix(0.85).filled(),
        ))?;
        root.draw(&Text::new(TEXT, (left, top), style.clone()))?;
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

    /// A series breaks between two points with a gap between them, and
    /// only there.
    #[test]
    fn series_split_at_gaps() {
        let gaps = [MonitorGap {
            start_s: 2.0,
            end_s: 4.0,
        }];
        let points = [(0.0, 1.0), (1.0, 1.0), (2.1, 1.0), (4.5, 2.0), (5.0, 2.0)];
        assert_eq!(
            split_at_gaps(&points, &gaps),
            [
                vec![(0.0, 1.0), (1.0, 1.0)],
                vec![(2.1, 1.0)],
                vec![(4.5, 2.0), (5.0, 2.0)],
            ]
        );
        assert_eq!(split_at_gaps(&points, &[]), [points.to_vec()]);
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
