//! `serve --record F`: every AWS request fake-ec2 answers (and every admin call that changes
//! something) with its answer, as JSON lines, so `fake-ec2 replay F` ([`replay`]) can send the same
//! requests to a fresh world with the same seed, at the same world times, and show the first
//! answer that differs.
//!
//! The first line is a [`Header`] (world file, seed, world start); each further line an
//! [`Exchange`]. Exchanges are numbered in the order they were answered; concurrent requests are
//! replayed in that order.

pub mod replay;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use axum::http::HeaderMap;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::server::hooks::Asked;

pub const FORMAT: u32 = 1;

/// The recording's first line: what the replay needs to build the same world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub fake_ec2_recording: u32,
    /// The world file, as `serve --world` named it.
    pub world: String,
    pub seed: u64,
    /// World time at the world's start.
    pub world_start_ms: Millis,
    /// The cloud was restored from a state file: a fresh world will not answer the same.
    #[serde(default)]
    pub restored_from_state: bool,
}

/// A request or response body: UTF-8 text as is, anything else in base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    Text(String),
    Base64(String),
}

impl Payload {
    pub fn of(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(t) => Self::Text(t.to_owned()),
            Err(_) => Self::Base64(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Text(t) => t.as_bytes().to_vec(),
            // A recording edited by hand may hold bad base64: it then differs from any answer.
            Self::Base64(b) => base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default(),
        }
    }
}

/// One request and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub seq: u64,
    /// World time when the request arrived.
    pub at_ms: Millis,
    /// The service that answered (`ec2`, `sqs`, ..., `admin` for the admin API).
    pub service: String,
    pub action: String,
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// Request headers (lower-case names), `content-length` aside.
    pub headers: BTreeMap<String, String>,
    pub body: Payload,
    pub status: u16,
    pub response_headers: BTreeMap<String, String>,
    pub response_body: Payload,
}

fn header_map(h: &HeaderMap, skip: &[&str]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in h {
        let name = k.as_str().to_ascii_lowercase();
        if skip.contains(&name.as_str()) {
            continue;
        }
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        out.entry(name).and_modify(|e| e.push_str(&format!(",{v}"))).or_insert(v);
    }
    out
}

impl Exchange {
    pub fn of(asked: &Asked<'_>, status: u16, response_headers: &HeaderMap, response_body: &[u8]) -> Self {
        Self {
            seq: 0,
            at_ms: asked.at_ms,
            service: asked.service.to_owned(),
            action: asked.action.to_owned(),
            method: asked.parts.method.as_str().to_owned(),
            path: asked.parts.uri.path().to_owned(),
            query: asked.parts.uri.query().unwrap_or_default().to_owned(),
            headers: header_map(&asked.parts.headers, &["content-length"]),
            body: Payload::of(asked.body),
            status,
            response_headers: header_map(response_headers, &[]),
            response_body: Payload::of(response_body),
        }
    }
}

/// Appends exchanges to the recording, numbered as they come.
pub struct Recorder {
    sink: Mutex<(u64, Box<dyn Write + Send>)>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts a recording on `sink` with its header line.
    pub fn start(mut sink: impl Write + Send + 'static, header: &Header) -> std::io::Result<Self> {
        writeln!(sink, "{}", serde_json::to_string(header).map_err(std::io::Error::other)?)?;
        sink.flush()?;
        Ok(Self { sink: Mutex::new((0, Box::new(sink))) })
    }

    pub fn write(&self, mut exchange: Exchange) {
        let mut guard = self.sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (seq, sink) = &mut *guard;
        *seq += 1;
        exchange.seq = *seq;
        let written = serde_json::to_string(&exchange)
            .map_err(std::io::Error::other)
            .and_then(|line| writeln!(sink, "{line}"))
            .and_then(|()| sink.flush());
        // A full disk must not fail the request being answered.
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not write the recording");
        }
    }
}

/// Reads a recording: its header and exchanges, in order.
pub fn read(text: &str) -> Result<(Header, Vec<Exchange>), String> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.next().ok_or("the recording is empty")?;
    let header: Header =
        serde_json::from_str(first).map_err(|e| format!("line 1 is not a fake-ec2 recording header: {e}"))?;
    if header.fake_ec2_recording != FORMAT {
        return Err(format!("recording format {} (this fake-ec2 reads {FORMAT})", header.fake_ec2_recording));
    }
    let exchanges = lines
        .map(|(n, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", n + 1)))
        .collect::<Result<Vec<Exchange>, String>>()?;
    Ok((header, exchanges))
}
