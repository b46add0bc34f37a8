//! Peers and file readers shared by the end-to-end run tests.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::collections::HashMap;
use std::path::Path;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Starts a bot agent on a free loopback port and returns its gRPC address.
pub async fn start_agent(name: &str, stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let config = xmppload_agent::AgentConfig {
        name: name.to_string(),
        ..xmppload_agent::AgentConfig::default()
    };
    tokio::spawn(xmppload_agent::serve(listener, config, stop.clone()));
    address
}

/// Starts a monitor agent on a free loopback port and returns its gRPC address.
pub async fn start_monitor(stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let config = xmppload_monitor::MonitorConfig {
        name: "monitor".to_string(),
        ..xmppload_monitor::MonitorConfig::default()
    };
    tokio::spawn(xmppload_monitor::serve(listener, config, stop.clone()));
    address
}

/// Reads a results CSV into one column-to-value map per row.
pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            headers
                .iter()
                .map(String::from)
                .zip(record.iter().map(String::from))
                .collect()
        })
        .collect()
}
