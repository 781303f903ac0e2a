//! What happens after a request is answered and before the answer leaves: the recording
//! (`serve --record`) gets the exchange, and the state file (`serve --state-file`) gets the change.
//! Both are optional; the server carries them as an [`axum::Extension`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::response::Response;

use super::AppState;
use crate::clock::Millis;
use crate::persist::StateFile;
use crate::record::{Exchange, Recorder};

/// The optional after-answer hooks of a serving fake-ec2.
#[derive(Debug, Default)]
pub struct Hooks {
    pub state_file: Option<StateFile>,
    pub recorder: Option<Recorder>,
}

impl Hooks {
    pub fn none() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

/// What the request was, for the recording.
pub struct Asked<'a> {
    pub at_ms: Millis,
    pub service: &'a str,
    pub action: &'a str,
    pub parts: &'a Parts,
    pub body: &'a Bytes,
}

/// Records the exchange and writes the state file (for a call that changes something), then hands
/// the answer back to be sent.
pub async fn after(hooks: &Hooks, state: &AppState, asked: Asked<'_>, response: Response, read_only: bool) -> Response {
    let response = match &hooks.recorder {
        Some(recorder) => {
            let (parts, body) = response.into_parts();
            // Answers are built in memory: reading one back cannot fail short of a bug.
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            recorder.write(Exchange::of(&asked, parts.status.as_u16(), &parts.headers, &bytes));
            Response::from_parts(parts, Body::from(bytes))
        }
        None => response,
    };
    if let Some(file) = &hooks.state_file {
        file.commit(state, read_only);
    }
    response
}

/// Writes the state file one last time (on shutdown) if anything is unwritten.
pub fn flush(hooks: &Hooks, state: &AppState) {
    if let Some(file) = &hooks.state_file {
        file.flush(state);
    }
}

/// Flushes read-only calls' side effects every [`crate::persist::FLUSH_EVERY`].
pub async fn flush_periodically(hooks: Arc<Hooks>, state: AppState) {
    if hooks.state_file.is_none() {
        return;
    }
    loop {
        tokio::time::sleep(crate::persist::FLUSH_EVERY).await;
        flush(&hooks, &state);
    }
}
