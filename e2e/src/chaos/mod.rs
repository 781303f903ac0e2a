//! Chaos for scenarios: fake-ec2 as the environment hosts it, so that it can be restarted (its
//! world back from its state file, or a fresh one) behind an endpoint that does not move, and cut
//! off from its clients for a while (connections refused, or accepted and never answered).

mod front;
mod world;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fake_ec2::server::{AppState, Hooks, Listeners, bind, serve_with};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use self::front::{BlackholeMode, Cuts, Front};
pub use self::world::{HARNESS_LOG_BUDGET_BYTES, WorldRecipe};

/// How long a stopping fake-ec2 may finish its answers (an SQS long poll holds one for up to
/// 20 s) before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// fake-ec2 serving one world in this process, with its kubelet (the Nodes of its instances).
struct Serving {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
    nodes: JoinHandle<()>,
}

impl Serving {
    async fn start(state: &AppState, hooks: &Arc<Hooks>, kube: &kube::Client) -> anyhow::Result<Serving> {
        let listener = bind("127.0.0.1:0".parse()?).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let (serving, hooks) = (state.clone(), hooks.clone());
        let server = tokio::spawn(async move {
            let listeners = Listeners { aws: listener, admin: None, admin_token: None, hooks };
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = serve_with(listeners, serving, shutdown).await {
                tracing::error!(error = %e, "fake-ec2 stopped serving");
            }
        });
        let (nodes_state, nodes_kube) = (state.clone(), kube.clone());
        let nodes = tokio::spawn(async move { fake_ec2::nodes::run(nodes_state, nodes_kube).await });
        Ok(Serving { addr, stop, server, nodes })
    }

    /// Stops as `fake-ec2 serve` does on SIGTERM (answers finish, the state file is written
    /// last); killed when that takes longer than [`STOP_GRACE`].
    async fn stop(self) {
        self.nodes.abort();
        let _ = self.stop.send(());
        let mut server = self.server;
        if tokio::time::timeout(STOP_GRACE, &mut server).await.is_err() {
            tracing::warn!("fake-ec2 did not stop within {STOP_GRACE:?}; killed");
            server.abort();
        }
    }
}

/// What a restart found and left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restarted {
    /// Live (not terminated) instances before, and after.
    pub instances_before: usize,
    pub instances_after: usize,
}

/// fake-ec2 as an environment hosts it: the world (shared with every observer, so a restart
/// replaces what is inside it), the server and kubelet tasks, and the front its clients use.
pub struct FakeEc2Host {
    state: AppState,
    hooks: Arc<Hooks>,
    kube: kube::Client,
    recipe: WorldRecipe,
    serving: Option<Serving>,
    front: Arc<Front>,
    /// The task that lifts the current blackhole.
    lift: Option<JoinHandle<()>>,
}

impl Drop for FakeEc2Host {
    fn drop(&mut self) {
        if let Some(l) = self.lift.take() {
            l.abort();
        }
        if let Some(s) = self.serving.take() {
            s.nodes.abort();
            s.server.abort();
        }
    }
}

fn live_instances(state: &AppState) -> usize {
    state.cloud().ec2.instances.values().filter(|i| i.state.name() != "terminated").count()
}

impl FakeEc2Host {
    /// Serves `state` (built from `recipe`) with `hooks` and its Nodes in `kube`'s cluster.
    pub async fn start(
        state: AppState,
        hooks: Arc<Hooks>,
        kube: kube::Client,
        recipe: WorldRecipe,
    ) -> anyhow::Result<FakeEc2Host> {
        let serving = Serving::start(&state, &hooks, &kube).await?;
        let front = Arc::new(Front::start(serving.addr).await.context("starting fake-ec2's front")?);
        Ok(FakeEc2Host { state, hooks, kube, recipe, serving: Some(serving), front, lift: None })
    }

    /// The endpoint clients use (EC2, SQS, the admin API under /_fake).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.front.addr())
    }

    /// fake-ec2 itself, past the front: the harness's way to its admin API, which a blackhole
    /// of the AWS endpoint does not cut off. Changes when fake-ec2 restarts.
    pub fn admin_endpoint(&self) -> String {
        match &self.serving {
            Some(s) => format!("http://{}", s.addr),
            None => self.endpoint(),
        }
    }

    /// What the blackholes did to connections so far.
    pub fn cuts(&self) -> Cuts {
        self.front.cuts()
    }

    /// Stops fake-ec2 and its kubelet (before the cluster goes).
    pub async fn stop(&mut self) {
        if let Some(l) = self.lift.take() {
            l.abort();
        }
        if let Some(s) = self.serving.take() {
            s.stop().await;
        }
    }

    /// Stops fake-ec2 and starts it again at the same endpoint. With `keep_state` the world comes
    /// back from the state file the stopped one wrote (instances, launch templates, queues and
    /// their messages, clock, RNG positions); without, a fresh world from the same world file and
    /// seed replaces it (its clock and random streams go on from the old one's, so no instance id
    /// comes twice; IAM, a global service, keeps its instance profiles).
    pub async fn restart(&mut self, keep_state: bool) -> anyhow::Result<Restarted> {
        let instances_before = live_instances(&self.state);
        let file = match (keep_state, &self.hooks.state_file) {
            (true, None) => bail!("restart_fake_ec2 with keep_state: fake-ec2 was started without a state file"),
            (true, Some(f)) => Some(f),
            (false, _) => None,
        };
        if let Some(s) = self.serving.take() {
            s.stop().await;
        }
        let (now, positions, iam) = {
            let cloud = self.state.cloud();
            (cloud.now(), cloud.rng.positions(), cloud.iam.snapshot())
        };
        let mut fresh = self.recipe.build(if keep_state { None } else { Some(now) })?;
        if !keep_state {
            // Its random streams go on from the old world's: EC2 never hands out an instance id
            // twice, and a fresh world that did would give a relaunch the id of an instance an
            // old NodeClaim still names (its finalizer then terminates the relaunch).
            fresh.rng.set_positions(&positions).map_err(anyhow::Error::msg)?;
            // IAM is global, not EC2's: instance profiles outlive what EC2 loses. (Karpenter
            // keeps the profile it made in its EC2NodeClass status and would not notice it gone
            // for many minutes: every launch would fail on it.)
            fresh.iam.restore(iam);
        }
        {
            let mut cloud = self.state.cloud();
            let cloud: &mut fake_ec2::cloud::Cloud = &mut cloud;
            *cloud = fresh;
        }
        if let Some(file) = file
            && !file.restore_into(&self.state)?
        {
            bail!("restart_fake_ec2: no state file at {} to restore from", file.path().display());
        }
        let serving = Serving::start(&self.state, &self.hooks, &self.kube).await?;
        self.front.set_backend(serving.addr);
        self.serving = Some(serving);
        let instances_after = live_instances(&self.state);
        tracing::info!(keep_state, instances_before, instances_after, "fake-ec2 restarted");
        Ok(Restarted { instances_before, instances_after })
    }

    /// Cuts fake-ec2's clients off as `how` says for `seconds` of world time; then `lifted` is
    /// called with what the blackholes did so far (or why the endpoint could not listen again).
    /// Returns once the cut is in place; a blackhole already in place is replaced.
    pub async fn blackhole(
        &mut self,
        how: BlackholeMode,
        seconds: f64,
        lifted: impl FnOnce(anyhow::Result<Cuts>) + Send + 'static,
    ) -> anyhow::Result<()> {
        if let Some(l) = self.lift.take() {
            l.abort();
        }
        let until = self.state.cloud().now() + (seconds * 1000.0) as i64;
        self.front.cut(how).await.context("cutting fake-ec2's endpoint off")?;
        if how == BlackholeMode::Refuse {
            // What every client now meets: a refused connect.
            match tokio::net::TcpStream::connect(self.front.addr()).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                other => bail!("blackhole_aws refuse: a connect to {} was not refused: {other:?}", self.front.addr()),
            }
        }
        let (front, state) = (self.front.clone(), self.state.clone());
        self.lift = Some(tokio::spawn(async move {
            // World time, which runs (scaled) while the endpoint is cut off.
            while state.cloud().now() < until {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let r = front.lift().await.context("listening on fake-ec2's endpoint again").map(|()| front.cuts());
            lifted(r);
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
