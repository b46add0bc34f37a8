//! Client CPU time of one SASL login, by mechanism and iteration count.
//!
//! Run with `cargo bench -p xmppload-agent --bench sasl_login`. It times the
//! client's side of the exchange only (building messages, PBKDF2, proofs),
//! without a network or a server, once with an empty salted-password cache
//! (a first login to an account) and once with a filled one (a repeated
//! login). BENCHMARKS.md records its output.

use std::hint::black_box;
use std::time::{Duration, Instant};

use xmppload_agent::sasl::{Credentials, Hash, SaltedPasswordCache, ScramClient, plain};

/// Salt that the simulated server-first message carries (16 bytes, base64).
const SALT_BASE64: &str = "QSXCR+Q6sek8bf92QSXCRw==";

fn credentials() -> Credentials {
    Credentials {
        username: "bot00001".to_owned(),
        password: "load-test-password".to_owned(),
    }
}

/// Runs the client side of one SCRAM login up to the client-final message.
fn scram_login(hash: Hash, iterations: u32, cache: &SaltedPasswordCache) {
    let mut client = ScramClient::with_nonce(hash, credentials(), "clientnonce".to_owned());
    black_box(client.client_first());
    let server_first = format!("r=clientnonceservernonce,s={SALT_BASE64},i={iterations}");
    let client_final = client
        .respond_blocking(server_first.as_bytes(), cache)
        .expect("the simulated server-first message is valid");
    black_box(client_final);
}

/// Mean time of `runs` calls of `work`.
fn mean(runs: u32, mut work: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..runs {
        work();
    }
    started.elapsed() / runs
}

fn main() {
    println!("| mechanism | iterations | first login (cache miss) | repeated login (cache hit) |");
    println!("| --- | --- | --- | --- |");
    for (name, hash) in [("SCRAM-SHA-1", Hash::Sha1), ("SCRAM-SHA-256", Hash::Sha256)] {
        for iterations in [4096, 10_000] {
            let miss = mean(40, || {
                scram_login(hash, iterations, &SaltedPasswordCache::new())
            });
            let cache = SaltedPasswordCache::new();
            scram_login(hash, iterations, &cache);
            let hit = mean(20_000, || scram_login(hash, iterations, &cache));
            println!(
                "| {name} | {iterations} | {:.2} ms | {:.1} µs |",
                miss.as_secs_f64() * 1e3,
                hit.as_secs_f64() * 1e6
            );
        }
    }
    let credentials = credentials();
    let plain = mean(200_000, || {
        black_box(plain::initial_response(black_box(&credentials)));
    });
    println!("| PLAIN | - | {:.2} µs | - |", plain.as_secs_f64() * 1e6);
}
