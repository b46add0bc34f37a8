//! Reads a server's OpenMetrics (or Prometheus text) endpoint, such as
//! Prosody's `mod_http_openmetrics`, once per batch.
//!
//! Only plain `http://` is supported, because the endpoint is meant to be
//! read on the server's own host. A failed read is not an error of the
//! watch: the batch carries the reason in `server_metrics_error` and the
//! next tick tries again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::Uri;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use xmppload_proto::v1;

/// Samples kept from one read, so that a server with many gauges cannot
/// make every batch large. Prosody 0.12.3 with the template in
/// deploy/local exposes fewer than ten gauge samples.
pub const MAX_SAMPLES: usize = 100;

/// Largest response body read; a larger one fails the read.
const MAX_BODY_BYTES: usize = 4 << 20;

/// A parsed endpoint address plus the names to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub uri: Uri,
    /// Host and port to connect to, taken from the URI.
    pub authority: String,
    /// Sample names to keep; empty keeps every gauge.
    pub names: Vec<String>,
}

/// Checks an `openmetrics_url` value, returning the reason it is unusable.
pub fn parse_endpoint(url: &str, names: Vec<String>) -> Result<Endpoint, String> {
    let uri: Uri = url
        .parse()
        .map_err(|err| format!("{url:?} is not a valid URL ({err})"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "{url:?} must start with http:// (the monitor reads the endpoint on the server's host without TLS)"
        ));
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("{url:?} has no host"));
    };
    let port = authority.port_u16().unwrap_or(80);
    let authority = format!("{}:{port}", authority.host());
    Ok(Endpoint {
        uri,
        authority,
        names,
    })
}

/// Reads the endpoint once and keeps the requested samples.
pub async fn read(endpoint: &Endpoint, timeout: Duration) -> Result<Vec<v1::ServerMetric>, String> {
    let body = tokio::time::timeout(timeout, fetch(endpoint))
        .await
        .map_err(|_| format!("no response within {} ms", timeout.as_millis()))??;
    let text = String::from_utf8(body).map_err(|_| "the response is not UTF-8".to_string())?;
    Ok(select(&parse(&text)?, &endpoint.names))
}

async fn fetch(endpoint: &Endpoint) -> Result<Vec<u8>, String> {
    let stream = TcpStream::connect(&endpoint.authority)
        .await
        .map_err(|err| format!("failed to connect to {}: {err}", endpoint.authority))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| format!("HTTP handshake failed: {err}"))?;
    // The connection task ends when the response is read and `sender` drops.
    tokio::spawn(connection);

    let path = endpoint
        .uri
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, &endpoint.authority)
        .body(Empty::<Bytes>::new())
        .map_err(|err| format!("failed to build the request: {err}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| format!("request failed: {err}"))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|err| format!("failed to read the response body: {err}"))?
        .to_bytes();
    if !status.is_success() {
        let excerpt: String = String::from_utf8_lossy(&body).chars().take(120).collect();
        return Err(format!("HTTP status {status}: {}", excerpt.trim()));
    }
    Ok(body.to_vec())
}

/// One sample line with the type of the family it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    pub metric: v1::ServerMetric,
    /// `# TYPE` of the family whose name equals the sample name, if any.
    pub family_type: Option<String>,
}

/// Parses the text exposition format (Prometheus 0.0.4 and OpenMetrics
/// 1.0 share the sample line syntax used here).
pub fn parse(text: &str) -> Result<Vec<ParsedSample>, String> {
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line == "# EOF" {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE")
                && let (Some(name), Some(kind)) = (words.next(), words.next())
            {
                types.insert(name.to_string(), kind.to_string());
            }
            continue;
        }
        let metric =
            parse_sample(line).map_err(|reason| format!("line {}: {reason}", index + 1))?;
        samples.push(ParsedSample {
            family_type: types.get(&metric.name).cloned(),
            metric,
        });
    }
    Ok(samples)
}

fn parse_sample(line: &str) -> Result<v1::ServerMetric, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or_else(|| format!("sample without a value: {line:?}"))?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];

    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(after_brace)?;
        labels = parsed;
        rest = after;
    }

    let value_text = rest
        .split_whitespace()
        .next()
        .ok_or_else(|| format!("sample {name} has no value"))?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        text => text
            .parse::<f64>()
            .map_err(|_| format!("sample {name} has the invalid value {text:?}"))?,
    };
    Ok(v1::ServerMetric {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y"}` and returns the labels and the text after `}`.
fn parse_labels(mut text: &str) -> Result<(Vec<v1::MetricLabel>, &str), String> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(after) = text.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after_name) = text
            .split_once("=\"")
            .ok_or_else(|| format!("label without a quoted value in {text:?}"))?;
        let mut value = String::new();
        let mut chars = after_name.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => return Err("label value ends in a backslash".to_string()),
                },
                Some((index, '"')) => break index,
                Some((_, other)) => value.push(other),
                None => return Err(format!("unterminated value of label {name}")),
            }
        };
        labels.push(v1::MetricLabel {
            name: name.trim().to_string(),
            value,
        });
        text = &after_name[end + 1..];
    }
}

/// Keeps the samples named in `names`, or every gauge when `names` is
/// empty, up to [`MAX_SAMPLES`].
pub fn select(samples: &[ParsedSample], names: &[String]) -> Vec<v1::ServerMetric> {
    let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
    samples
        .iter()
        .filter(|sample| {
            if wanted.is_empty() {
                sample.family_type.as_deref() == Some("gauge")
            } else {
                wanted.contains(sample.metric.name.as_str())
            }
        })
        .take(MAX_SAMPLES)
        .map(|sample| sample.metric.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "\
# HELP prosody_mod_c2s__connections Established c2s connections
# UNIT prosody_mod_c2s__connections 
# TYPE prosody_mod_c2s__connections gauge
prosody_mod_c2s__connections{host=\"anon.localhost\",type=\"c2s\"} 3
# TYPE prosody_mod_muc__room_hit counter
prosody_mod_muc__room_hit_total{host=\"conference.anon.localhost\"} 7
# TYPE odd gauge
odd{path=\"a \\\"b\\\" \\\\ c\"} +Inf
# EOF
";

    /// Labels, escapes, infinities and family types are read.
    #[test]
    fn parse_reads_samples() {
        let samples = parse(EXPOSITION).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].metric.name, "prosody_mod_c2s__connections");
        assert_eq!(samples[0].metric.value, 3.0);
        assert_eq!(samples[0].metric.labels.len(), 2);
        assert_eq!(samples[0].metric.labels[1].name, "type");
        assert_eq!(samples[0].metric.labels[1].value, "c2s");
        assert_eq!(samples[0].family_type.as_deref(), Some("gauge"));
        assert_eq!(samples[1].family_type, None);
        assert_eq!(samples[2].metric.labels[0].value, "a \"b\" \\ c");
        assert!(samples[2].metric.value.is_infinite());
    }

    /// Without names only gauges are kept; with names exactly those.
    #[test]
    fn select_gauges_or_names() {
        let samples = parse(EXPOSITION).unwrap();
        let gauges = select(&samples, &[]);
        assert_eq!(
            gauges.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["prosody_mod_c2s__connections", "odd"]
        );
        let named = select(&samples, &["prosody_mod_muc__room_hit_total".to_string()]);
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].value, 7.0);
    }

    /// A malformed line names its line number.
    #[test]
    fn parse_rejects_bad_value() {
        let err = parse("# TYPE a gauge\na{x=\"1\"} many\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("\"many\""), "{err}");
    }

    /// Only http:// URLs with a host are accepted, and the port defaults to 80.
    #[test]
    fn endpoint_urls() {
        let endpoint = parse_endpoint("http://127.0.0.1/metrics", Vec::new()).unwrap();
        assert_eq!(endpoint.authority, "127.0.0.1:80");
        assert!(
            parse_endpoint("https://127.0.0.1:5281/metrics", Vec::new())
                .unwrap_err()
                .contains("must start with http://")
        );
        assert!(parse_endpoint("not a url", Vec::new()).is_err());
        assert!(parse_endpoint("/metrics", Vec::new()).is_err());
    }
}
