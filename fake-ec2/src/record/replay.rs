//! `fake-ec2 replay F`: sends a recording's requests, in order, to a fresh in-process fake-ec2
//! built from the same world file and seed on a manual clock moved to each request's recorded
//! world time, and compares every answer with the recorded one: status, headers (`date` and
//! `content-length` aside) and body, byte for byte. Nothing else needs normalising: request ids
//! come from the seeded RNG's own stream and every timestamp from the world clock, which the
//! replay sets to each request's recorded time. Signatures are not checked again (the default
//! `signed` auth mode only looks for one). An admin call that changed the clock's mode is
//! skipped: the replay's clock is the recording's times.

use std::collections::BTreeMap;
use std::path::Path;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use super::{Exchange, Header, Payload};
use crate::clock::{ClockMode, iso};
use crate::cloud::{Cloud, Shared};
use crate::world::config::WorldConfig;

/// Response headers that legitimately differ between two runs (`date` is wall-clock time) or
/// that the transport sets after the recording saw the answer (`content-length`: the bodies are
/// compared byte for byte anyway).
const IGNORED_HEADERS: &[&str] = &["date", "content-length"];

/// How a replay went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every answer was the recorded one.
    Identical { replayed: usize, skipped: usize },
    /// The first answer that was not.
    Differs { seq: u64, service: String, action: String, diff: String },
}

/// Builds the recording's world (or `world`/`seed` instead) and replays `exchanges` against it.
pub async fn run(
    header: &Header,
    exchanges: &[Exchange],
    world: Option<&Path>,
    seed: Option<u64>,
) -> anyhow::Result<Outcome> {
    let world_path = world.map_or_else(|| Path::new(&header.world).to_path_buf(), Path::to_path_buf);
    let mut cfg = WorldConfig::load(&world_path)?;
    cfg.clock.mode = ClockMode::Manual;
    cfg.clock.start = Some(iso(header.world_start_ms));
    let base_dir = world_path.parent().unwrap_or(Path::new("."));
    let cloud = Cloud::new(cfg, seed.unwrap_or(header.seed), base_dir)?;
    Ok(against(Shared::new(cloud), exchanges).await)
}

/// Replays `exchanges` against a served cloud (its clock manual).
pub async fn against(state: Shared, exchanges: &[Exchange]) -> Outcome {
    let app = crate::server::app(state.clone());
    let mut skipped = 0;
    for ex in exchanges {
        if changes_clock_mode(ex) {
            skipped += 1;
            continue;
        }
        {
            let mut c = state.cloud();
            let now = c.now();
            if ex.at_ms > now {
                c.advance(ex.at_ms - now);
            }
        }
        let answer = match send(&app, ex).await {
            Ok(a) => a,
            Err(e) => return differs(ex, format!("the recorded request cannot be sent again: {e}")),
        };
        if let Some(diff) = compare(ex, &answer) {
            return differs(ex, diff);
        }
    }
    Outcome::Identical { replayed: exchanges.len() - skipped, skipped }
}

fn differs(ex: &Exchange, diff: String) -> Outcome {
    Outcome::Differs { seq: ex.seq, service: ex.service.clone(), action: ex.action.clone(), diff }
}

fn changes_clock_mode(ex: &Exchange) -> bool {
    if ex.service != "admin" || ex.path != "/_fake/clock" {
        return false;
    }
    let body: serde_json::Value = serde_json::from_slice(&ex.body.bytes()).unwrap_or_default();
    body.get("mode").is_some_and(|m| !m.is_null())
}

/// An answer as it came back.
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

async fn send(app: &axum::Router, ex: &Exchange) -> anyhow::Result<Answer> {
    let uri = if ex.query.is_empty() { ex.path.clone() } else { format!("{}?{}", ex.path, ex.query) };
    let mut builder = Request::builder().method(ex.method.as_str()).uri(uri);
    for (k, v) in &ex.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = builder.body(Body::from(ex.body.bytes()))?;
    let response = app.clone().oneshot(request).await?;
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await?.to_vec();
    Ok(Answer { status: parts.status.as_u16(), headers: super::header_map(&parts.headers, &[]), body })
}

/// What differs between the recorded answer and this one, if anything.
fn compare(ex: &Exchange, got: &Answer) -> Option<String> {
    if ex.status != got.status {
        return Some(format!(
            "status: recorded {}, replayed {}\n{}",
            ex.status,
            got.status,
            body_diff(&ex.response_body, &got.body)
        ));
    }
    let keys: std::collections::BTreeSet<&String> = ex.response_headers.keys().chain(got.headers.keys()).collect();
    for k in keys.into_iter().filter(|k| !IGNORED_HEADERS.contains(&k.as_str())) {
        let (a, b) = (ex.response_headers.get(k), got.headers.get(k));
        if a != b {
            return Some(format!("header {k}: recorded {a:?}, replayed {b:?}"));
        }
    }
    (ex.response_body.bytes() != got.body).then(|| body_diff(&ex.response_body, &got.body))
}

/// The first place two bodies part: the differing lines with two lines of context, or for one
/// long line, the text around the first differing byte.
pub fn body_diff(recorded: &Payload, replayed: &[u8]) -> String {
    let a = String::from_utf8_lossy(&recorded.bytes()).into_owned();
    let b = String::from_utf8_lossy(replayed).into_owned();
    if a == b {
        return "bodies are identical".into();
    }
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let first = la.iter().zip(&lb).position(|(x, y)| x != y).unwrap_or(la.len().min(lb.len()));
    let line_a = la.get(first).copied().unwrap_or_default();
    let line_b = lb.get(first).copied().unwrap_or_default();
    let mut out = format!("body, line {}:\n", first + 1);
    for l in &la[first.saturating_sub(2)..first] {
        out.push_str(&format!("  {l}\n"));
    }
    if line_a.len() > 160 || line_b.len() > 160 {
        let at = line_a.bytes().zip(line_b.bytes()).position(|(x, y)| x != y).unwrap_or(line_a.len().min(line_b.len()));
        out.push_str(&format!("- …{}…\n+ …{}…\n", window(line_a, at), window(line_b, at)));
        out.push_str(&format!("  (first difference at byte {at} of the line)\n"));
    } else {
        out.push_str(&format!("- {line_a}\n+ {line_b}\n"));
    }
    out
}

/// About 60 bytes either side of `at`, cut at character boundaries.
fn window(s: &str, at: usize) -> &str {
    let mut start = at.saturating_sub(60);
    while !s.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + 60).min(s.len());
    while !s.is_char_boundary(end) {
        end += 1;
    }
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_the_first_differing_line() {
        let d = body_diff(&Payload::Text("a\nb\nc\nd".into()), b"a\nb\nX\nd");
        assert!(d.contains("line 3") && d.contains("- c") && d.contains("+ X"), "{d}");
        let long_a = format!("{}A{}", "x".repeat(300), "y".repeat(10));
        let long_b = format!("{}B{}", "x".repeat(300), "y".repeat(10));
        let d = body_diff(&Payload::Text(long_a), long_b.as_bytes());
        assert!(d.contains("byte 300"), "{d}");
    }
}
