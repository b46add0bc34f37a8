//! The section that compares the groups' CPU while talking.

use std::fmt::Write as _;

use super::{NOT_AVAILABLE, cell, format_option};
use crate::report::compare::{CONFIDENCE, GroupComparison, ProcessComparison};
use crate::report::stats::Verdict;

pub(super) fn render_comparisons(out: &mut String, comparisons: &[ProcessComparison]) {
    let _ = writeln!(out, "## Groups compared while talking\n");
    let Some(first) = comparisons.first() else {
        let _ = writeln!(
            out,
            "Nothing to compare: no monitored process, or no group has a talk phase.\n"
        );
        return;
    };
    if first.others.is_empty() {
        let _ = writeln!(
            out,
            "Only one group has a talk phase, so there is nothing to compare.\n"
        );
        return;
    }

    let percent = CONFIDENCE * 100.0;
    let _ = writeln!(
        out,
        "Mean CPU (% of one core) during each group's talk phase against the first \
         group, {}. Differences are in percentage points of one core with a \
         {percent:.0}% Welch t interval.\n",
        first.baseline_group
    );
    let _ = writeln!(
        out,
        "NOTE: consecutive CPU samples are autocorrelated, while the interval \
         assumes independent samples, so it is narrower than the true \
         uncertainty. Groups that ran at different times also differ by any \
         drift of the server between them.\n"
    );

    for comparison in comparisons {
        let _ = writeln!(out, "### {}\n", comparison.process);
        let _ = writeln!(
            out,
            "| group | samples | mean CPU (%) | difference (points) | {percent:.0}% CI (points) |"
        );
        let _ = writeln!(out, "|{}", " --- |".repeat(5));
        let _ = writeln!(
            out,
            "| {} (baseline) | {} | {} | | |",
            cell(&comparison.baseline_group),
            comparison.baseline.count(),
            format_option(comparison.baseline.mean(), 1)
        );
        for other in &comparison.others {
            let (difference, interval) = match &other.difference {
                Some(d) => (
                    format!("{:+.1}", d.difference),
                    format!("{:.1} to {:.1}", d.low, d.high),
                ),
                None if !other.not_compared.is_empty() => {
                    ("not compared".to_owned(), NOT_AVAILABLE.to_owned())
                }
                None => (NOT_AVAILABLE.to_owned(), NOT_AVAILABLE.to_owned()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {difference} | {interval} |",
                cell(&other.group),
                other.talk.count(),
                format_option(other.talk.mean(), 1)
            );
        }
        out.push('\n');
        for other in &comparison.others {
            let _ = writeln!(out, "- {}", verdict_line(comparison, other));
        }
        out.push('\n');
    }
}

/// Builds the sentence that states whether `other` costs the process more CPU
/// than the baseline group while talking.
pub fn verdict_line(comparison: &ProcessComparison, other: &GroupComparison) -> String {
    let subject = format!("{} vs {}", other.group, comparison.baseline_group);
    let process = &comparison.process;
    let percent = CONFIDENCE * 100.0;
    if !other.not_compared.is_empty() {
        let reasons: Vec<String> = other.not_compared.iter().map(|r| r.to_string()).collect();
        return format!("{subject}: not compared: {}", reasons.join("; "));
    }
    let Some(d) = &other.difference else {
        return format!(
            "{subject}: too few {process} CPU samples while talking to compare \
             ({} and {}, at least two each are needed)",
            comparison.baseline.count(),
            other.talk.count()
        );
    };
    let interval = format!("{percent:.0}% CI {:.1} to {:.1}", d.low, d.high);
    match d.verdict() {
        Verdict::NoSignificantDifference => format!(
            "{subject}: no significant difference in {process} CPU while talking \
             (difference {:+.1} points, {interval})",
            d.difference
        ),
        Verdict::Higher => format!(
            "{subject}: {} costs {:.1} points more {process} CPU while talking ({interval})",
            other.group, d.difference
        ),
        Verdict::Lower => format!(
            "{subject}: {} costs {:.1} points less {process} CPU while talking ({interval})",
            other.group, -d.difference
        ),
    }
}
