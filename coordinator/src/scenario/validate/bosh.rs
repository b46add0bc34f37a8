//! Checks of the BOSH settings: `[server] bosh_url` and a group's
//! `bosh_hold` and `bosh_wait_s`.

use toml::Spanned;

use super::{Context, ScenarioError};
use crate::scenario::Transport;

/// `hold` unless the scenario sets one: one request waiting at the server.
pub const DEFAULT_HOLD: u32 = 1;
/// `wait` in seconds unless the scenario sets one. Prosody 0.12 caps it at
/// its `bosh_max_wait`, 120 s by default.
pub const DEFAULT_WAIT_S: u32 = 60;
/// Largest `hold` accepted. Prosody 0.12.3 fixes its own hold at 1 and
/// announces `requests='2'` (constants in mod_bosh.lua), and the agents
/// never keep more requests in flight than the server announces, so a
/// larger hold changes nothing against it.
const MAX_HOLD: u32 = 8;
/// Largest `wait` accepted, in seconds.
const MAX_WAIT_S: u32 = 3600;

/// Checks `[server] bosh_url`: an `http://` or `https://` URL with a host.
pub fn url(cx: &Context, value: Spanned<String>) -> Result<String, ScenarioError> {
    let span = value.span();
    let url = value.into_inner();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let valid = rest.is_some_and(|rest| {
        !rest.is_empty() && !rest.starts_with('/') && !rest.contains(char::is_whitespace)
    });
    if !valid {
        return Err(cx.invalid(
            span,
            "server.bosh_url",
            format!(
                "`{url}` is not a BOSH URL; use http://HOST:PORT/PATH or https://HOST:PORT/PATH, \
                 like http://127.0.0.1:5280/http-bind"
            ),
        ));
    }
    Ok(url)
}

/// Resolves `bosh_hold` and `bosh_wait_s`, each with the field name that
/// errors use. A group of another transport that sets either itself is
/// rejected as a likely mistake; values from `[defaults]` apply to BOSH
/// groups only.
pub fn settings(
    cx: &Context,
    transport: Transport,
    (hold, hold_field): (Option<Spanned<u32>>, String),
    (wait, wait_field): (Option<Spanned<u32>>, String),
) -> Result<(u32, u32), ScenarioError> {
    if transport != Transport::Bosh {
        for (value, field) in [(&hold, &hold_field), (&wait, &wait_field)] {
            if let Some(value) = value
                && !field.starts_with("defaults.")
            {
                return Err(cx.invalid(
                    value.span(),
                    field,
                    "applies only to transport = \"bosh\"; remove it or change the transport",
                ));
            }
        }
        return Ok((DEFAULT_HOLD, DEFAULT_WAIT_S));
    }

    let hold = in_range(cx, hold, &hold_field, DEFAULT_HOLD, MAX_HOLD, "requests")?;
    let wait = in_range(cx, wait, &wait_field, DEFAULT_WAIT_S, MAX_WAIT_S, "seconds")?;
    Ok((hold, wait))
}

/// Returns `value`, or `default` when absent, after checking that it lies
/// from 1 to `max` (in `unit`).
fn in_range(
    cx: &Context,
    value: Option<Spanned<u32>>,
    field: &str,
    default: u32,
    max: u32,
    unit: &str,
) -> Result<u32, ScenarioError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let number = *value.get_ref();
    if !(1..=max).contains(&number) {
        return Err(cx.invalid(
            value.span(),
            field,
            format!("{number} is out of range; use 1 to {max} {unit}"),
        ));
    }
    Ok(number)
}
