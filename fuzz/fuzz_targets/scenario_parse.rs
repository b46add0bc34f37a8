//! Validates arbitrary text as a scenario file. Parsing may fail, but it may
//! not panic, and the error message must render.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use xmppload_coordinator::scenario::{Overrides, Scenario};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Scenario::parse(Path::new("fuzz.toml"), text, &Overrides::default()) {
        Ok(scenario) => {
            // Computing an accepted group's deadline must not overflow.
            for group in scenario.groups() {
                let _ = group.deadline();
            }
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
