//! The real `fake-ec2` binary as a child process: started on 127.0.0.1:0, its endpoints read from
//! the lines it prints, killed with SIGKILL when a test says so (and on drop).
#![allow(clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const WORLD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/worlds/default.yaml");

pub struct FakeEc2 {
    child: Child,
    pub endpoint: String,
    /// The admin API's base URL (the AWS endpoint unless --admin-listen moved it).
    pub admin: String,
}

impl FakeEc2 {
    /// `fake-ec2 serve --world <default> --clock manual --listen 127.0.0.1:0 <extra>`.
    pub fn serve(extra: &[&str]) -> Self {
        let mut args = vec!["serve", "--world", WORLD, "--clock", "manual", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Self::spawn(&args)
    }

    pub fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fake-ec2"))
            .args(args)
            .env("FAKE_EC2_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning fake-ec2");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let endpoint = wait_for(&rx, "fake-ec2 listening on ");
        let admin =
            if args.contains(&"--admin-listen") { wait_for(&rx, "fake-ec2 admin API on ") } else { endpoint.clone() };
        Self { child, endpoint, admin }
    }

    /// SIGKILL, then reaps the process.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaping fake-ec2");
    }
}

fn wait_for(rx: &mpsc::Receiver<String>, prefix: &str) -> String {
    loop {
        let line =
            rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("fake-ec2 never printed {prefix}"));
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest.trim().to_owned();
        }
    }
}

impl Drop for FakeEc2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `fake-ec2 <args>` to completion: (exit code, stderr).
pub fn run(args: &[&str]) -> (Option<i32>, String) {
    let (code, _, stderr) = run_out(args);
    (code, stderr)
}

/// Runs `fake-ec2 <args>` to completion: (exit code, stdout, stderr).
pub fn run_out(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fake-ec2"))
        .args(args)
        .env("FAKE_EC2_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("running fake-ec2");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// A fresh directory under the system temp dir for one test.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fake-ec2-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Waits (polling, with a timeout) until `cond` holds.
pub async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
