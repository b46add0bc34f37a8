//! The section that lists the peers lost during the run and their returns.

use std::fmt::Write as _;

use super::cell;
use crate::results::run_info::RunInfo;

/// Lists each outage of a bot agent or the monitor; writes nothing for a
/// run without one.
pub(super) fn render_outages(out: &mut String, run: &RunInfo) {
    let outages = run.outages();
    if outages.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Lost peers\n");
    let _ = writeln!(
        out,
        "Peers that stopped answering during the run, on the coordinator's clock. \
         A bot agent that answers again takes bots from the next group on. The \
         monitor has no samples from its loss to its return, so CPU windows that \
         overlap the gap have low coverage.\n"
    );
    let _ = writeln!(
        out,
        "| peer | role | lost at (s) | back at (s) | out for (s) | cause |"
    );
    let _ = writeln!(out, "|{}", " --- |".repeat(6));
    for outage in &outages {
        let (back, duration) = match outage.returned_s {
            Some(returned) => (
                format!("{returned:.1}"),
                format!("{:.1}", returned - outage.lost_s),
            ),
            None => ("did not return".to_owned(), String::new()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {back} | {duration} | {} |",
            cell(&outage.peer),
            outage.role.as_str(),
            outage.lost_s,
            cell(&outage.reason),
        );
    }
    out.push('\n');
}
