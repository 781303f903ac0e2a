//! A TCP front for fake-ec2's AWS endpoint, owned by the environment. Clients (the autoscaler
//! under test, ours or Karpenter) keep the front's address while fake-ec2 behind it restarts on
//! another port, and a blackhole cuts them off: `refuse` closes the listening socket (a connect
//! is refused by the kernel) and closes open connections; `hang` accepts connections and never
//! answers, and freezes open ones. Lifting it rebinds the same address; frozen and held
//! connections are closed then, as a client would give them up.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a blackhole treats connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlackholeMode {
    /// Nothing listens: every connect is refused.
    #[default]
    Refuse,
    /// Connections are accepted and never answered.
    Hang,
}

impl BlackholeMode {
    pub fn name(self) -> &'static str {
        match self {
            BlackholeMode::Refuse => "refuse",
            BlackholeMode::Hang => "hang",
        }
    }
}

/// What the front does with connections now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pass,
    Cut(BlackholeMode),
}

/// How long lifting a `refuse` blackhole keeps trying to listen on the address again.
const REBIND_FOR: Duration = Duration::from_secs(10);

/// What the blackholes did to the autoscaler's connections so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cuts {
    /// Connections accepted during a `hang` and never answered.
    pub held: u64,
    /// Open connections a blackhole closed (`refuse`) or froze (`hang`).
    pub cut: u64,
}

/// What the acceptor and each connection share.
struct Shared {
    backend: Mutex<SocketAddr>,
    held: AtomicU64,
    cut: AtomicU64,
}

pub struct Front {
    addr: SocketAddr,
    shared: Arc<Shared>,
    mode: watch::Sender<Mode>,
    acceptor: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Front {
    fn drop(&mut self) {
        if let Ok(mut a) = self.acceptor.try_lock()
            && let Some(task) = a.take()
        {
            task.abort();
        }
        // Dropping `mode` ends every connection task (their waits on it fail).
    }
}

impl Front {
    /// Listens on a free loopback port and forwards every connection to `backend`.
    pub async fn start(backend: SocketAddr) -> std::io::Result<Front> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared { backend: Mutex::new(backend), held: AtomicU64::new(0), cut: AtomicU64::new(0) });
        let (mode, _) = watch::channel(Mode::Pass);
        let task = tokio::spawn(accept_loop(listener, shared.clone(), mode.subscribe()));
        Ok(Front { addr, shared, mode, acceptor: tokio::sync::Mutex::new(Some(task)) })
    }

    /// The address clients are given.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where new connections go from now on (fake-ec2 restarted on another port).
    pub fn set_backend(&self, backend: SocketAddr) {
        *self.shared.backend.lock().unwrap_or_else(PoisonError::into_inner) = backend;
    }

    pub fn cuts(&self) -> Cuts {
        Cuts { held: self.shared.held.load(Ordering::Relaxed), cut: self.shared.cut.load(Ordering::Relaxed) }
    }

    /// Cuts clients off as `how` says, until [`Front::lift`].
    pub async fn cut(&self, how: BlackholeMode) -> std::io::Result<()> {
        self.set(Mode::Cut(how)).await
    }

    /// Lets connections through again.
    pub async fn lift(&self) -> std::io::Result<()> {
        self.set(Mode::Pass).await
    }

    async fn set(&self, mode: Mode) -> std::io::Result<()> {
        let mut acceptor = self.acceptor.lock().await;
        self.mode.send_replace(mode);
        match (mode, acceptor.take()) {
            (Mode::Cut(BlackholeMode::Refuse), Some(task)) => {
                task.abort();
                // Once the task is gone its listener is closed: the next connect is refused.
                let _ = task.await;
            }
            (Mode::Cut(BlackholeMode::Refuse), None) => {}
            (_, Some(task)) => *acceptor = Some(task),
            (_, None) => {
                let listener = rebind(self.addr).await?;
                *acceptor = Some(tokio::spawn(accept_loop(listener, self.shared.clone(), self.mode.subscribe())));
            }
        }
        Ok(())
    }
}

/// Listens on `addr` again; another socket may hold the port for a moment (a connect that got
/// it as its local port), so this retries for [`REBIND_FOR`].
async fn rebind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let deadline = Instant::now() + REBIND_FOR;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "the AWS endpoint's address is busy; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mode: watch::Receiver<Mode>) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(connection(client, shared.clone(), mode.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "the AWS endpoint's front could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Waits until connections pass again (or the front is gone).
async fn until_lifted(mode: &mut watch::Receiver<Mode>) {
    let _ = mode.wait_for(|m| *m == Mode::Pass).await;
}

async fn connection(mut client: TcpStream, shared: Arc<Shared>, mut mode: watch::Receiver<Mode>) {
    let now = *mode.borrow_and_update();
    if now == Mode::Cut(BlackholeMode::Hang) {
        shared.held.fetch_add(1, Ordering::Relaxed);
        until_lifted(&mut mode).await;
        return;
    }
    let backend = *shared.backend.lock().unwrap_or_else(PoisonError::into_inner);
    // fake-ec2 restarting: the connection closes, as a connect to a stopped server would fail.
    let Ok(mut server) = TcpStream::connect(backend).await else { return };
    let cut = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => None,
        m = mode.wait_for(|m| *m != Mode::Pass) => m.ok().map(|m| *m),
    };
    if let Some(m) = cut {
        shared.cut.fetch_add(1, Ordering::Relaxed);
        if m == Mode::Cut(BlackholeMode::Hang) {
            until_lifted(&mut mode).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// An echo server: what a connection sends comes back.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn forwards_and_follows_the_backend() {
        let front = Front::start(echo().await).await.unwrap();
        assert_eq!(round_trip(front.addr()).await.unwrap(), b"ping");
        front.set_backend(echo().await);
        assert_eq!(round_trip(front.addr()).await.unwrap(), b"ping");
    }

    #[tokio::test]
    async fn refuse_closes_the_port_and_lift_reopens_the_same_one() {
        let front = Front::start(echo().await).await.unwrap();
        let mut open = TcpStream::connect(front.addr()).await.unwrap();
        open.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        open.read_exact(&mut buf).await.unwrap();
        front.cut(BlackholeMode::Refuse).await.unwrap();
        let e = TcpStream::connect(front.addr()).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        // The open connection was closed.
        let n = tokio::time::timeout(Duration::from_secs(5), open.read(&mut buf)).await.unwrap().unwrap_or(0);
        assert_eq!(n, 0);
        assert_eq!(front.cuts().cut, 1);
        front.lift().await.unwrap();
        assert_eq!(round_trip(front.addr()).await.unwrap(), b"ping");
    }

    #[tokio::test]
    async fn hang_accepts_and_never_answers_until_lifted() {
        let front = Front::start(echo().await).await.unwrap();
        front.cut(BlackholeMode::Hang).await.unwrap();
        let mut s = TcpStream::connect(front.addr()).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        let answered = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
        assert!(answered.is_err(), "a hung connection answered: {answered:?}");
        assert_eq!(front.cuts().held, 1);
        front.lift().await.unwrap();
        // The held connection is closed without an answer; a new one is answered.
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap_or(0);
        assert_eq!(n, 0);
        assert_eq!(round_trip(front.addr()).await.unwrap(), b"ping");
    }
}
