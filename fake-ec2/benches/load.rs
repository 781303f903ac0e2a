//! Server-side load driver for `make bench`: fake-ec2 alone, without a Python client's cost.
//!
//! Starts the server in-process on 127.0.0.1:0 (on its own two-worker runtime) with the bench
//! world, then fires pre-encoded EC2 Query bodies at it over plain HTTP/1.1 keep-alive:
//!
//! - CreateFleet (Karpenter's shape: launch template by name, `$Latest`, 1 spot instance,
//!   price-capacity-optimized, 9 overrides, a fresh `ClientToken` as boto3 sends) with 2
//!   concurrent connections, for a bounded number of calls and time: calls/s and latency;
//! - DescribeInstances, a full listing with `MaxResults=1000` pages, at 1,000 and 10,000
//!   instances: median and p95 over a bounded number of runs;
//!
//! and times the handler alone (`fake_ec2::server::ec2_request`, no HTTP) for both.
//!
//! Run: `cargo bench -p fake-ec2 --bench load -- [--json] [--quick] [--world PATH]`.
//! With `--json` every result is one JSON object per line on stdout (bench/ec2_bench.py reads
//! them); otherwise a readable summary. Not built by `cargo test`.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fake_ec2::auth::SignedRequest;
use fake_ec2::cloud::Cloud;
use fake_ec2::ec2::query::Form;
use fake_ec2::server::{AppState, bind, ec2_request, serve};
use serde_json::{Value, json};

const AUTH: &str =
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-west-2/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=0";
const AMI: &str = "ami-0a0b0c0d0e0f10111";
const TYPES: [&str; 3] = ["m5.large", "c5.large", "m6i.large"];
const SUBNETS: [(&str, &str); 3] = [
    ("subnet-0a1a1a1a1a1a1a1a1", "us-west-2a"),
    ("subnet-0b2b2b2b2b2b2b2b2", "us-west-2b"),
    ("subnet-0c3c3c3c3c3c3c3c3", "us-west-2c"),
];

struct Opts {
    json: bool,
    world: PathBuf,
    fleet_calls: usize,
    fleet_secs: f64,
    fleet_handler_calls: usize,
    describe: Vec<(usize, usize, f64)>,
}

impl Opts {
    fn parse() -> anyhow::Result<Self> {
        let mut o = Opts {
            json: false,
            world: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/worlds/bench.yaml"),
            fleet_calls: 4000,
            fleet_secs: 8.0,
            fleet_handler_calls: 2000,
            // (instances, runs, seconds): each size stops at whichever bound comes first.
            describe: vec![(1_000, 40, 10.0), (10_000, 15, 20.0)],
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--json" => o.json = true,
                "--quick" => {
                    o.fleet_calls = 300;
                    o.fleet_secs = 2.0;
                    o.fleet_handler_calls = 200;
                    o.describe = vec![(1_000, 5, 3.0), (10_000, 2, 5.0)];
                }
                "--world" => o.world = args.next().context("--world needs a path")?.into(),
                // cargo bench passes `--bench`; libtest-style filters are ignored too.
                _ => {}
            }
        }
        Ok(o)
    }
}

/// Latency summary in milliseconds.
fn summary(mut ms: Vec<f64>) -> Value {
    if ms.is_empty() {
        return json!({"n": 0});
    }
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    json!({
        "n": ms.len(),
        "min_ms": round3(ms[0]),
        "p50_ms": round3(pick(0.5)),
        "p95_ms": round3(pick(0.95)),
        "max_ms": round3(ms[ms.len() - 1]),
        "mean_ms": round3(mean),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn encode(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn kv(k: impl Into<String>, v: impl Into<String>) -> (String, String) {
    (k.into(), v.into())
}

/// Karpenter's CreateFleet: one spot instance, price-capacity-optimized, a launch template by
/// name at `$Latest`, overrides for each type × subnet, tags on instance, volume and fleet.
fn create_fleet_pairs(token: &str) -> Vec<(String, String)> {
    let mut p = vec![
        kv("Action", "CreateFleet"),
        kv("Version", "2016-11-15"),
        kv("Type", "instant"),
        kv("ClientToken", token),
        kv("TargetCapacitySpecification.TotalTargetCapacity", "1"),
        kv("TargetCapacitySpecification.DefaultTargetCapacityType", "spot"),
        kv("SpotOptions.AllocationStrategy", "price-capacity-optimized"),
        kv("LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName", "bench"),
        kv("LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version", "$Latest"),
    ];
    let mut n = 0;
    for t in TYPES {
        for (subnet, zone) in SUBNETS {
            n += 1;
            let o = format!("LaunchTemplateConfigs.1.Overrides.{n}");
            p.push(kv(format!("{o}.InstanceType"), t));
            p.push(kv(format!("{o}.SubnetId"), subnet));
            p.push(kv(format!("{o}.AvailabilityZone"), zone));
        }
    }
    for (i, rt) in ["instance", "volume", "fleet"].iter().enumerate() {
        let s = format!("TagSpecification.{}", i + 1);
        p.push(kv(format!("{s}.ResourceType"), *rt));
        p.push(kv(format!("{s}.Tag.1.Key"), "karpenter.sh/nodepool"));
        p.push(kv(format!("{s}.Tag.1.Value"), "default"));
        p.push(kv(format!("{s}.Tag.2.Key"), "kubernetes.io/cluster/fake-cluster"));
        p.push(kv(format!("{s}.Tag.2.Value"), "owned"));
    }
    p
}

fn run_instances_body(count: usize, subnet: &str, token: &str) -> String {
    encode(&[
        kv("Action", "RunInstances"),
        kv("Version", "2016-11-15"),
        kv("ImageId", AMI),
        kv("InstanceType", "m5.large"),
        kv("MinCount", "1"),
        kv("MaxCount", count.to_string()),
        kv("SubnetId", subnet),
        kv("ClientToken", token),
    ])
}

fn describe_body(next: Option<&str>) -> String {
    let mut p = vec![kv("Action", "DescribeInstances"), kv("Version", "2016-11-15"), kv("MaxResults", "1000")];
    if let Some(t) = next {
        p.push(kv("NextToken", t));
    }
    encode(&p)
}

/// The `nextToken` of a page: it comes last in the response, so search from the end.
fn next_token(xml: &[u8]) -> Option<String> {
    const OPEN: &[u8] = b"<nextToken>";
    let start = xml.windows(OPEN.len()).rposition(|w| w == OPEN)? + OPEN.len();
    let len = xml[start..].iter().position(|b| *b == b'<')?;
    String::from_utf8(xml[start..start + len].to_vec()).ok()
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

struct Client {
    http: reqwest::Client,
    endpoint: String,
}

impl Client {
    /// One POST; the response body is read in full, as bytes (no text decoding on the clock).
    async fn post(&self, body: String) -> anyhow::Result<(u16, bytes::Bytes)> {
        let r = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .header("x-amz-date", "20260101T000000Z")
            .header("authorization", AUTH)
            .body(body)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.bytes().await?))
    }

    async fn ok(&self, body: String) -> anyhow::Result<bytes::Bytes> {
        let (status, bytes) = self.post(body).await?;
        if status != 200 {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(400)]));
        }
        Ok(bytes)
    }
}

/// Calls the request handler directly: no HTTP, no axum, the world lock and the handler only.
fn handler_call(state: &AppState, form: &Form) -> (u16, String) {
    let headers: BTreeMap<String, String> =
        [("authorization".to_owned(), AUTH.to_owned()), ("x-amz-date".to_owned(), "20260101T000000Z".to_owned())]
            .into();
    let signed = SignedRequest { method: "POST", path: "/", query: "", headers: &headers, body: b"" };
    ec2_request(state, form, &signed)
}

fn emit(opts: &Opts, v: &Value) {
    if opts.json {
        println!("{v}");
    } else {
        let name = v["bench"].as_str().unwrap_or("?");
        let mut parts = Vec::new();
        if let Some(o) = v.as_object() {
            for (k, x) in o {
                if k != "bench" {
                    parts.push(format!("{k}={x}"));
                }
            }
        }
        println!("{name:<28} {}", parts.join(" "));
    }
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse()?;
    let world = Cloud::from_file(&opts.world, 1).with_context(|| format!("loading {}", opts.world.display()))?;

    // The server on its own runtime (two workers, as `fake-ec2 serve` has on this machine's
    // cores); the driver on a separate single-threaded one.
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listener = server_rt.block_on(bind("127.0.0.1:0".parse()?))?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(world);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = server_rt.spawn(serve(listener, state.clone(), async {
        let _ = stop_rx.await;
    }));

    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = client_rt.block_on(run(&opts, &state, endpoint));
    let _ = stop_tx.send(());
    let _ = server_rt.block_on(server);
    result
}

async fn run(opts: &Opts, state: &AppState, endpoint: String) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(4).timeout(Duration::from_secs(60)).build()?;
    let client = std::sync::Arc::new(Client { http, endpoint });
    emit(
        opts,
        &json!({
            "bench": "meta",
            "world": opts.world.display().to_string(),
            "endpoint": client.endpoint,
            "server_workers": 2,
            "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        }),
    );

    client
        .ok(encode(&[
            kv("Action", "CreateLaunchTemplate"),
            kv("Version", "2016-11-15"),
            kv("LaunchTemplateName", "bench"),
            kv("LaunchTemplateData.ImageId", AMI),
            kv("LaunchTemplateData.SecurityGroupId.1", "sg-0fedcba9876543210"),
        ]))
        .await
        .context("CreateLaunchTemplate")?;

    // Warm-up: connections, allocator, code paths.
    for i in 0..20 {
        let xml = client.ok(encode(&create_fleet_pairs(&format!("warmup-{i}")))).await?;
        if count(&xml, b"<instanceIds>") != 1 {
            bail!("CreateFleet launched nothing: {}", String::from_utf8_lossy(&xml[..xml.len().min(600)]));
        }
    }

    // CreateFleet over HTTP, 2 connections, bounded by calls and time.
    let conns = 2;
    let bodies: Vec<String> =
        (0..opts.fleet_calls).map(|i| encode(&create_fleet_pairs(&format!("http-{i}")))).collect();
    let bodies = std::sync::Arc::new(bodies);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(opts.fleet_secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, bodies, next) = (client.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= bodies.len() || Instant::now() >= deadline {
                    break;
                }
                let t = Instant::now();
                match client.post(bodies[i].clone()).await {
                    Ok((200, xml)) => {
                        lat.push(ms(t.elapsed()));
                        // Checked off the clock: one instance launched.
                        if count(&xml, b"<instanceIds>") != 1 {
                            errors += 1;
                        }
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    let calls = lat.len();
    emit(
        opts,
        &merge(
            json!({"bench": "create_fleet", "transport": "http", "conns": conns, "calls": calls, "errors": errors,
                   "secs": round3(secs), "calls_per_sec": round3(calls as f64 / secs)}),
            summary(lat),
        ),
    );

    // CreateFleet through the handler alone, one thread.
    let forms: Vec<Form> = (0..opts.fleet_handler_calls)
        .map(|i| Form::parse(encode(&create_fleet_pairs(&format!("handler-{i}"))).as_bytes()))
        .collect();
    let mut lat = Vec::with_capacity(forms.len());
    let mut errors = 0;
    let deadline = Instant::now() + Duration::from_secs_f64(opts.fleet_secs);
    let started = Instant::now();
    for f in &forms {
        if Instant::now() >= deadline {
            break;
        }
        let t = Instant::now();
        let (status, _) = handler_call(state, f);
        lat.push(ms(t.elapsed()));
        if status != 200 {
            errors += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let calls = lat.len();
    emit(
        opts,
        &merge(
            json!({"bench": "create_fleet", "transport": "handler", "conns": 1, "calls": calls, "errors": errors,
                   "secs": round3(secs), "calls_per_sec": round3(calls as f64 / secs)}),
            summary(lat),
        ),
    );

    // DescribeInstances starts from a fresh world, so the sizes are exact: the CreateFleet
    // calls above launched thousands of instances of their own.
    *state.cloud() = Cloud::from_file(&opts.world, 1)?;
    let mut batch = 0usize;
    for &(target, runs, budget) in &opts.describe {
        // Populate with RunInstances batches of up to 500, round-robin over the subnets.
        let t = Instant::now();
        loop {
            let have = state.cloud().ec2.instances.len();
            if have >= target {
                break;
            }
            let (subnet, _) = SUBNETS[batch % SUBNETS.len()];
            batch += 1;
            client.ok(run_instances_body((target - have).min(500), subnet, &format!("populate-{batch}"))).await?;
            if t.elapsed() > Duration::from_secs(120) {
                bail!("populating {target} instances took over 120 s");
            }
        }
        let instances = state.cloud().ec2.instances.len();
        emit(opts, &json!({"bench": "populate", "instances": instances, "secs": round3(t.elapsed().as_secs_f64())}));

        // Full listing over HTTP, following nextToken. Run 0 is a warm-up, which also checks
        // (off the clock) that every instance was listed.
        let mut lat = Vec::new();
        let mut pages = 0;
        let mut bytes = 0;
        let mut listed = 0;
        let deadline = Instant::now() + Duration::from_secs_f64(budget);
        for run in 0..=runs {
            if run > 1 && Instant::now() >= deadline {
                break;
            }
            let t = Instant::now();
            let (mut p, mut b) = (0, 0);
            let mut token: Option<String> = None;
            loop {
                let xml = client.ok(describe_body(token.as_deref())).await?;
                p += 1;
                b += xml.len();
                if run == 0 {
                    listed += count(&xml, b"<instanceId>");
                }
                token = next_token(&xml);
                if token.is_none() || p > 100 {
                    break;
                }
            }
            if run > 0 {
                lat.push(ms(t.elapsed()));
            }
            (pages, bytes) = (p, b);
        }
        if listed != instances {
            bail!("DescribeInstances listed {listed} of {instances} instances");
        }
        emit(
            opts,
            &merge(
                json!({"bench": "describe_instances", "transport": "http", "instances": instances, "pages": pages,
                       "bytes": bytes}),
                summary(lat),
            ),
        );

        // The same listing through the handler alone.
        let mut lat = Vec::new();
        let deadline = Instant::now() + Duration::from_secs_f64(budget / 2.0);
        for run in 0..=runs {
            if run > 1 && Instant::now() >= deadline {
                break;
            }
            let t = Instant::now();
            let mut token: Option<String> = None;
            let mut p = 0;
            loop {
                let form = Form::parse(describe_body(token.as_deref()).as_bytes());
                let (status, xml) = handler_call(state, &form);
                if status != 200 {
                    bail!("DescribeInstances via handler: {status}");
                }
                p += 1;
                token = next_token(xml.as_bytes());
                if token.is_none() || p > 100 {
                    break;
                }
            }
            if run > 0 {
                lat.push(ms(t.elapsed()));
            }
        }
        emit(
            opts,
            &merge(
                json!({"bench": "describe_instances", "transport": "handler", "instances": instances, "pages": pages}),
                summary(lat),
            ),
        );
    }
    Ok(())
}
