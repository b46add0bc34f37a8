//! CPU of each monitored process while talking, every group against the
//! first group that has a talk phase.
//!
//! A pair is only compared when both groups put their planned load on the
//! server: a group with an incomplete slice, or whose joined bots differ
//! from its planned bots, is reported with the reason instead.

use std::fmt;

use super::data::Phase;
use super::stats::{MeanDifference, Summary, welch_interval};
use super::summary::{GroupSummary, WindowKind, WindowSummary};

/// Coverage of the intervals in the group comparison.
pub const CONFIDENCE: f64 = 0.95;

/// CPU of one process while talking, every group against the first group
/// that has a talk phase.
#[derive(Debug, Clone)]
pub struct ProcessComparison {
    pub process: String,
    pub baseline_group: String,
    pub baseline: Summary,
    pub others: Vec<GroupComparison>,
}

#[derive(Debug, Clone)]
pub struct GroupComparison {
    pub group: String,
    pub talk: Summary,
    /// `mean(group) - mean(baseline)`, or `None` when a side has fewer than
    /// two samples or `not_compared` is not empty.
    pub difference: Option<MeanDifference>,
    /// Why the pair is not compared: the group's reason first, then the baseline's.
    pub not_compared: Vec<NotComparable>,
}

/// Reason a group's CPU cannot stand for the load its scenario describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotComparable {
    /// Slices of the group on these agents did not run to their end.
    Incomplete { group: String, agents: Vec<String> },
    /// The final counters show another number of joined bots than planned.
    JoinedNotPlanned {
        group: String,
        joined: u64,
        planned: u32,
    },
    /// `run.json` does not list the group, so its planned bots are unknown.
    NotPlanned { group: String },
}

impl fmt::Display for NotComparable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotComparable::Incomplete { group, agents } => {
                write!(f, "{group} is incomplete ({})", agents.join(", "))
            }
            NotComparable::JoinedNotPlanned {
                group,
                joined,
                planned,
            } => write!(f, "{group} joined {joined} bots, not the {planned} planned"),
            NotComparable::NotPlanned { group } => {
                write!(
                    f,
                    "{group} is not in run.json, so its planned bots are unknown"
                )
            }
        }
    }
}

/// Returns why `group` cannot be compared, or `None` when it can.
pub fn comparability(group: &GroupSummary) -> Option<NotComparable> {
    if !group.incomplete.is_empty() {
        return Some(NotComparable::Incomplete {
            group: group.name.clone(),
            agents: group.incomplete.iter().map(|s| s.agent.clone()).collect(),
        });
    }
    let Some(planned) = group.planned_bots else {
        return Some(NotComparable::NotPlanned {
            group: group.name.clone(),
        });
    };
    if group.totals.joined != u64::from(planned) {
        return Some(NotComparable::JoinedNotPlanned {
            group: group.name.clone(),
            joined: group.totals.joined,
            planned,
        });
    }
    None
}

pub(super) fn compare_talk_phases(
    groups: &[GroupSummary],
    processes: &[String],
) -> Vec<ProcessComparison> {
    let talking: Vec<(&GroupSummary, &WindowSummary)> = groups
        .iter()
        .filter_map(|group| {
            let talk = group
                .windows
                .iter()
                .find(|w| w.window.kind == WindowKind::Phase(Phase::Talk))?;
            Some((group, talk))
        })
        .collect();
    let Some(&(baseline_group, baseline_talk)) = talking.first() else {
        return Vec::new();
    };
    let baseline_problem = comparability(baseline_group);

    let mut comparisons = Vec::new();
    for (process_index, process) in processes.iter().enumerate() {
        let talk_cpu = |talk: &WindowSummary| {
            talk.processes
                .get(process_index)
                .map(|p| p.cpu)
                .unwrap_or_default()
        };
        let baseline = talk_cpu(baseline_talk);
        let others = talking[1..]
            .iter()
            .map(|&(group, talk)| {
                let talk = talk_cpu(talk);
                let not_compared: Vec<NotComparable> = comparability(group)
                    .into_iter()
                    .chain(baseline_problem.clone())
                    .collect();
                let difference = if not_compared.is_empty() {
                    welch_interval(&baseline, &talk, CONFIDENCE)
                } else {
                    None
                };
                GroupComparison {
                    group: group.name.clone(),
                    talk,
                    difference,
                    not_compared,
                }
            })
            .collect();
        comparisons.push(ProcessComparison {
            process: process.clone(),
            baseline_group: baseline_group.name.clone(),
            baseline,
            others,
        });
    }
    comparisons
}
