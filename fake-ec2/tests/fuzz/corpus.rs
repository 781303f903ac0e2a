//! The seed corpus in `fake-ec2/fuzz-corpus/`, replayed by every `cargo test`: inputs that once
//! broke a parser or that reach deep into one, each checked against its fuzzer's invariant.
//!
//! `http/*.http`: a first line `<wire> <METHOD> <path-and-query>` (wire: ec2, query, json, rest
//! or any), header lines `name: value`, a blank line, then the body as is. `world/*.yaml`,
//! `userdata/*` and `patterns/*.json` hold the parser's input whole.

use std::path::{Path, PathBuf};

use fake_ec2::cloud::Cloud;
use fake_ec2::events::pattern::Pattern;
use fake_ec2::world::config::WorldConfig;

use crate::wire::{Req, Wire, exchange_status, world};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz-corpus");

fn files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(Path::new(CORPUS).join(dir))
        .unwrap_or_else(|e| panic!("fuzz-corpus/{dir}: {e}"))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "fuzz-corpus/{dir} is empty");
    out
}

/// Parses one `.http` corpus file.
pub fn http(text: &[u8]) -> Result<(Wire, Req), String> {
    let split = text.windows(2).position(|w| w == b"\n\n").ok_or("no blank line after the headers")?;
    let head = std::str::from_utf8(&text[..split]).map_err(|e| e.to_string())?;
    let body = text[split + 2..].to_vec();
    let mut lines = head.lines();
    let first = lines.next().ok_or("empty")?;
    let mut words = first.splitn(3, ' ');
    let wire = match words.next() {
        Some("ec2") => Wire::Ec2,
        Some("query") => Wire::Query,
        Some("json") => Wire::Json,
        Some("rest") => Wire::RestJson,
        Some("any") => Wire::Any,
        other => return Err(format!("unknown wire {other:?}")),
    };
    let method = words.next().ok_or("no method")?.to_owned();
    let target = words.next().ok_or("no path")?.to_owned();
    let headers = lines
        .map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())))
        .collect::<Option<Vec<_>>>()
        .ok_or("a header line without ':'")?;
    Ok((wire, Req { method, target, headers, body }))
}

pub fn replay_all() {
    let state = world();
    let mut refused = 0;
    let http_files = files("http");
    for f in &http_files {
        let text = std::fs::read(f).expect("readable");
        let (wire, req) = http(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        match exchange_status(&state, wire, &req) {
            Ok(status) => refused += usize::from(status >= 400),
            Err(e) => panic!("{}: {e}", f.display()),
        }
    }
    // Every entry is junk: each must have met a refusal, and so the format check.
    assert_eq!(refused, http_files.len(), "every corpus request is refused in its service's format");
    for f in files("world") {
        let text = std::fs::read_to_string(&f).expect("readable");
        if let Ok(cfg) = WorldConfig::parse(&text, "corpus.yaml") {
            let _ = Cloud::new(cfg, 1, Path::new("."));
        }
    }
    for f in files("userdata") {
        let _ = userdata::parse(&std::fs::read_to_string(&f).expect("readable"));
    }
    for f in files("patterns") {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).expect("readable"))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if let Ok(p) = Pattern::compile(&v) {
            let _ = p.matches(&serde_json::json!({"source": "aws.ec2", "detail": {"x": [1]}}));
        }
    }
}
