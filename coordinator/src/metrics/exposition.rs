//! Rendering of the registry in the Prometheus text exposition format 0.0.4.

use std::collections::BTreeMap;
use std::fmt::Write;

use xmppload_proto::v1::GroupCounters;

use super::State;

/// Name, help text and field of a cumulative counter in `GroupCounters`.
type CounterFamily = (&'static str, &'static str, fn(&GroupCounters) -> u64);

/// Quantiles of the latency summary.
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// Builds the text of one metric family: its HELP and TYPE lines plus
/// sample lines.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Self {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        Self { out, name }
    }

    fn sample(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        write_sample(self.out, &format!("{}{suffix}", self.name), labels, value);
    }
}

fn write_sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (index, (label, value)) in labels.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", format_value(value));
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value == f64::INFINITY {
        "+Inf".to_string()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        value.to_string()
    }
}

pub(super) fn render(state: &State) -> String {
    let mut out = String::new();

    let mut family = Family::new(
        &mut out,
        "xmppload_run_steps_started_total",
        "counter",
        "Timeline steps (waits and groups) started so far.",
    );
    family.sample("", &[], state.steps_started as f64);
    if !state.phase.is_empty() {
        let mut family = Family::new(
            &mut out,
            "xmppload_run_phase_info",
            "gauge",
            "Current timeline step of the run, in the phase label; always 1.",
        );
        family.sample("", &[("phase", &state.phase)], 1.0);
    }

    render_bots(&mut out, &state.counters);
    render_latency(&mut out, state);
    render_monitor(&mut out, state);
    out
}

fn render_bots(out: &mut String, counters: &BTreeMap<(String, String), GroupCounters>) {
    let mut family = Family::new(
        out,
        "xmppload_bots",
        "gauge",
        "Bots of a group on an agent in each state at the latest report.",
    );
    for ((group, agent), counters) in counters {
        for (state, count) in [
            ("connecting", counters.connecting),
            ("connected", counters.connected),
            ("joined", counters.joined),
        ] {
            family.sample(
                "",
                &[("group", group), ("agent", agent), ("state", state)],
                f64::from(count),
            );
        }
    }

    let totals: [CounterFamily; 6] = [
        (
            "xmppload_bots_joined_total",
            "Bots that joined the room.",
            |c| c.joined_total,
        ),
        (
            "xmppload_bots_failed_total",
            "Bots that failed, for any reason.",
            |c| c.failed_total,
        ),
        (
            "xmppload_messages_sent_total",
            "Groupchat messages sent by the bots.",
            |c| c.messages_sent,
        ),
        (
            "xmppload_messages_received_total",
            "Groupchat messages received from the room, own reflections included.",
            |c| c.messages_received,
        ),
        (
            "xmppload_stanzas_received_total",
            "Stanzas of every kind received by the bots.",
            |c| c.stanzas_received,
        ),
        (
            "xmppload_late_sends_total",
            "Sends more than 100 ms after their scheduled time.",
            |c| c.late_sends,
        ),
    ];
    for (name, help, value) in totals {
        let mut family = Family::new(out, name, "counter", help);
        for ((group, agent), counters) in counters {
            family.sample(
                "",
                &[("group", group), ("agent", agent)],
                value(counters) as f64,
            );
        }
    }

    let mut family = Family::new(
        out,
        "xmppload_failures_total",
        "counter",
        "Bot failures by kind (refused, timeout, tls, sasl, stream_error, join_error, closed, protocol, io).",
    );
    for ((group, agent), counters) in counters {
        for error in &counters.errors {
            family.sample(
                "",
                &[("group", group), ("agent", agent), ("kind", &error.kind)],
                error.count as f64,
            );
        }
    }
}

fn render_latency(out: &mut String, state: &State) {
    let mut family = Family::new(
        out,
        "xmppload_latency_seconds",
        "summary",
        "Send-to-reflection latency of a group since it started, merged over agents; the sum comes from the histogram, so it has 3 significant digits.",
    );
    for (group, histogram) in &state.latency {
        for quantile in QUANTILES {
            let seconds = histogram.value_at_quantile(quantile) as f64 / 1e6;
            family.sample(
                "",
                &[("group", group), ("quantile", &quantile.to_string())],
                seconds,
            );
        }
        let sum_micros = histogram.mean() * histogram.len() as f64;
        family.sample("_sum", &[("group", group)], sum_micros / 1e6);
        family.sample("_count", &[("group", group)], histogram.len() as f64);
    }
}

fn render_monitor(out: &mut String, state: &State) {
    if let Some(host_cpu) = state.host_cpu_percent {
        let mut family = Family::new(
            out,
            "xmppload_host_cpu_percent",
            "gauge",
            "Busy share of all cores of the monitored host, 0 to 100.",
        );
        family.sample("", &[], host_cpu);
    }

    let mut family = Family::new(
        out,
        "xmppload_process_cpu_percent",
        "gauge",
        "CPU of a monitored process over the latest sample, in percent of one core.",
    );
    for (process, sample) in &state.processes {
        family.sample("", &[("process", process)], sample.cpu_percent);
    }
    let mut family = Family::new(
        out,
        "xmppload_process_rss_bytes",
        "gauge",
        "Resident memory of a monitored process.",
    );
    for (process, sample) in &state.processes {
        family.sample("", &[("process", process)], sample.rss_bytes as f64);
    }
    let mut family = Family::new(
        out,
        "xmppload_process_pid",
        "gauge",
        "Process id of a monitored process; 0 while none matches.",
    );
    for (process, sample) in &state.processes {
        family.sample("", &[("process", process)], f64::from(sample.pid));
    }

    let Some(up) = state.server_metrics_up else {
        return;
    };
    let mut family = Family::new(
        out,
        "xmppload_server_metrics_up",
        "gauge",
        "1 when the monitor read the server's metrics endpoint for the latest batch, else 0.",
    );
    family.sample("", &[], if up { 1.0 } else { 0.0 });

    // The server's samples keep their own names and labels, so dashboards
    // written for the server work unchanged. Their type is not carried over
    // the monitor protocol, hence `untyped`.
    let mut by_name: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for metric in &state.server_metrics {
        by_name
            .entry(metric.name.as_str())
            .or_default()
            .push(metric);
    }
    for (name, metrics) in by_name {
        let _ = writeln!(out, "# TYPE {name} untyped");
        for metric in metrics {
            let labels: Vec<(&str, &str)> = metric
                .labels
                .iter()
                .map(|label| (label.name.as_str(), label.value.as_str()))
                .collect();
            write_sample(out, name, &labels, metric.value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Label values are escaped as the format requires.
    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        write_sample(&mut out, "m", &[("a", "x\"y\\z\nw")], 1.5);
        assert_eq!(out, "m{a=\"x\\\"y\\\\z\\nw\"} 1.5\n");
    }

    /// Special float values use the format's spellings.
    #[test]
    fn special_values() {
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(3.0), "3");
    }
}
