"""`make bench` rows for fake-ec2 at 10,000 instances and for a soak (bench/ec2_bench.py runs them).

Scale: both servers populated to 10,000 instances (moto's populating bounded in time, as in the
main table), then at that size, taking turns: CreateFleet in Karpenter's shape (raw HTTP, a new
ClientToken each call), DescribeInstances following every NextToken (raw HTTP, MaxResults=1000),
one TerminateInstances of 1,000 instances (raw HTTP), and each server's RSS. moto is measured only
if it got to 10,000; otherwise its column says why it was skipped.

Soak (fake-ec2 alone: moto has no clock, interruptions or EventBridge rules): a fresh fake-ec2 on
the bench world plus Karpenter's interruption queue and rules, with a scaled clock, driven by one
client with Karpenter-like traffic: per tick a CreateFleet (new ClientToken), CreateTags on the new
instance, TerminateInstances of the oldest once more than `population` live, ReceiveMessage(10) +
DeleteMessageBatch on the interruption queue; every 20 ticks a filtered DescribeInstances over all
pages; every 50 a DescribeSpotPriceHistory page; every 100 a spot interruption (admin API), whose
rebalance and warning messages the queue receives. A warm-up long enough to fill every bounded
store (request and event logs, state-change log, client tokens) comes first; then one world hour
is measured: fake-ec2's RSS at its start and end, requests answered, errors. Memory is flat when
the end RSS is within 10 % of the start's: a pass/fail line in the results, not an assertion.
"""

from __future__ import annotations

import collections
import http.client
import json
import re
import tempfile
import time
import urllib.parse
from pathlib import Path

import ec2_bench as eb

SCALE = 10_000
TERMINATE = 1_000
DEFAULT_WORLD = eb.REPO / "fixtures" / "worlds" / "default.yaml"
SQS_AUTH = eb.AUTH.replace("/ec2/", "/sqs/")


# --------------------------------------------------------------------------------------------
# Scale: 10,000 instances.


def terminate_raw(peer: eb.Peer, n: int) -> dict:
    """One TerminateInstances of the `n` oldest instances, timed; the ids come from a first
    DescribeInstances page (not timed)."""
    status, body = eb.raw_post(peer.url, {"Action": "DescribeInstances", "Version": "2016-11-15",
                                          "MaxResults": str(n)})
    if status != 200:
        return {"error": f"DescribeInstances HTTP {status}"}
    ids = [m.decode() for m in re.findall(rb"<instanceId>(i-[0-9a-f]+)</instanceId>", body)][:n]
    params = [("Action", "TerminateInstances"), ("Version", "2016-11-15")]
    params += [(f"InstanceId.{i}", iid) for i, iid in enumerate(ids, 1)]
    t = time.perf_counter()
    status, body = eb.raw_post(peer.url, params)
    secs = time.perf_counter() - t
    answered = body.count(b"<currentState>")
    return {"instances": len(ids), "status": status, "answered": answered, "ms": round(secs * 1000, 3),
            "complete": status == 200 and answered == len(ids) == n}


def measure_scale(peers: dict[str, eb.Peer], res: dict, moto_secs: float, quick: bool) -> dict:
    """Populates each peer towards 10,000 instances (moto bounded by `moto_secs`) and measures it
    there, taking turns; moto only if it got there."""
    scale = 1_000 if quick else SCALE
    out: dict = {"scale": scale, "terminate": TERMINATE // 10 if quick else TERMINATE, "peers": {}}
    for n, peer in peers.items():
        bound = moto_secs if n == "moto" else 120
        eb.log(f"scale: {n}: populating to {scale} (have {peer.instances}, ≤ {bound:.0f} s)")
        pop = peer.populate(scale, bound)
        eb.log(f"scale: {n}:   {pop}")
        out["peers"][n] = {"populate": pop, "memory": peer.memory()}
    there = {n: p for n, p in peers.items() if p.instances >= scale}
    for n in peers:
        if n not in there:
            out["peers"][n]["skipped"] = (f"it reached {peers[n].instances:,} of {scale:,} instances within its "
                                          f"{moto_secs:.0f} s populate bound")
    calls = {n: (40 if n == "fake-ec2" else 20) for n in there}
    eb.log(f"scale: CreateFleet at {scale} instances, taking turns")
    jobs = {n: there[n].create_fleet_raw(calls[n], 10, 5, token_prefix="scale") for n in there}
    eb.interleave(list(jobs.values()))
    for n, j in jobs.items():
        out["peers"][n]["create_fleet"] = j.result()
    eb.log("scale: DescribeInstances, every page, taking turns")
    jobs = {}
    for n, p in there.items():
        expected_ms = (eb.g(res, n, "sizes", str(scale), "describe_raw", "p50_ms") or 0)
        if n == "moto" and time.monotonic() - eb.START + expected_ms / 1000 > res["budget_secs"] + 600:
            out["peers"][n]["describe"] = {"skipped": f"over the {res['budget_secs']:.0f} s time budget"}
            continue
        jobs[n] = p.describe("raw", 10 if n == "fake-ec2" else 1, 5 if n == "fake-ec2" else 0)
    eb.interleave(list(jobs.values()))
    for n, j in jobs.items():
        out["peers"][n]["describe"] = j.result()
    for n, p in there.items():
        out["peers"][n]["memory"] = p.memory()
        eb.log(f"scale: {n}: TerminateInstances of {out['terminate']}")
        out["peers"][n]["terminate"] = terminate_raw(p, out["terminate"])
        eb.log(f"scale: {n}:   {out['peers'][n]['terminate']}")
    return out


def scale_rows(scale: dict) -> list[dict]:
    rows: list[dict] = []
    f, m = eb.g(scale, "peers", "fake-ec2") or {}, eb.g(scale, "peers", "moto") or {}
    size = scale.get("scale", SCALE)
    note = f"moto skipped: {m['skipped']}" if m.get("skipped") else ""

    def row(metric, key, path, unit, better, complete=None):
        fv, mv = eb.g(f, key, *path), eb.g(m, key, *path)
        r = eb.ratio(fv, mv) if better == "higher" else eb.ratio(mv, fv)
        n = note or (f"moto skipped: {m[key]['skipped']}" if eb.g(m, key, "skipped") else "")
        for who, d in (("fake-ec2", f), ("moto", m)):
            if complete and eb.g(d, key) and not eb.g(d, key, complete):
                n += f" {who}'s answer was incomplete!"
        rows.append({"metric": metric, "fake_ec2": fv, "moto": mv, "unit": unit, "ratio": r, "target": None,
                     "met": None, "note": n.strip()})

    cf = f"calls: {eb.g(f, 'create_fleet', 'calls') or '—'} / {eb.g(m, 'create_fleet', 'calls') or '—'}"
    row(f"CreateFleet instant at {size:,} instances, raw HTTP, p50 ({cf})", "create_fleet", ["p50_ms"], "ms", "lower")
    row(f"CreateFleet instant at {size:,} instances, raw HTTP ({cf})", "create_fleet", ["calls_per_sec"],
        "calls/s", "higher")
    runs = f"runs: {eb.g(f, 'describe', 'n') or '—'} / {eb.g(m, 'describe', 'n') or '—'}"
    for stat in ("p50_ms", "p95_ms"):
        row(f"DescribeInstances, all {size:,} instances, every page of 1,000, raw HTTP, {stat[:3]} ({runs})",
            "describe", [stat], "ms", "lower", complete="complete")
    row(f"TerminateInstances of {scale.get('terminate', TERMINATE):,} instances in one call, at {size:,}, raw HTTP",
        "terminate", ["ms"], "ms", "lower", complete="complete")
    row(f"Server RSS at {size:,} instances", "memory", ["VmRSS"], "KiB", "lower")
    for r in rows[-1:]:
        r["fake_ec2"], r["moto"], r["unit"] = eb.kib_to_mib(r["fake_ec2"]), eb.kib_to_mib(r["moto"]), "MiB"
    return rows


# --------------------------------------------------------------------------------------------
# Soak.


def soak_world(tmp: Path) -> Path:
    """The bench world with Karpenter's interruption queue and its five rules (from the default
    world)."""
    default = DEFAULT_WORLD.read_text()
    start, end = default.index("\nqueues:"), default.index("\ncluster:")
    path = tmp / "soak.yaml"
    path.write_text(eb.WORLD.read_text().rstrip("\n") + "\n" + default[start:end].strip("\n") + "\n")
    return path


class Conn:
    """One keep-alive HTTP connection, reopened once if the server closed it."""

    def __init__(self, url: str):
        self.u = urllib.parse.urlsplit(url)
        self.c: http.client.HTTPConnection | None = None

    def post(self, body: bytes, headers: dict, path: str = "/") -> tuple[int, bytes]:
        for attempt in (0, 1):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection(self.u.hostname, self.u.port, timeout=120)
                self.c.request("POST", path, body=body, headers=headers)
                r = self.c.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                if self.c:
                    self.c.close()
                self.c = None
                if attempt:
                    raise
        return 0, b""


class SoakClient:
    """Karpenter-like traffic over one connection, counting answers and errors by action."""

    def __init__(self, url: str):
        self.conn = Conn(url)
        self.calls: collections.Counter = collections.Counter()
        self.errors: collections.Counter = collections.Counter()
        self.first_errors: list[str] = []

    def _count(self, action: str, status: int, body: bytes) -> bytes:
        self.calls[action] += 1
        if status != 200:
            self.errors[action] += 1
            if len(self.first_errors) < 5:
                self.first_errors.append(f"{action} HTTP {status}: {body[:300]!r}")
        return body

    def ec2(self, params: list | dict) -> bytes:
        action = dict(params)["Action"] if isinstance(params, list) else params["Action"]
        status, body = self.conn.post(urllib.parse.urlencode(params).encode(), {
            "Authorization": eb.AUTH, "X-Amz-Date": "20260101T000000Z",
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        return self._count(action, status, body)

    def sqs(self, op: str, payload: dict) -> dict:
        status, body = self.conn.post(json.dumps(payload).encode(), {
            "Authorization": SQS_AUTH, "X-Amz-Date": "20260101T000000Z", "X-Amz-Target": f"AmazonSQS.{op}",
            "Content-Type": "application/x-amz-json-1.0"})
        self._count(op, status, body)
        return json.loads(body or b"{}") if status == 200 else {}

    def admin(self, path: str, payload: dict) -> None:
        status, body = self.conn.post(json.dumps(payload).encode(), {"Content-Type": "application/json"}, path)
        # A 409 is an interruption of an instance already gone: not the server's error.
        self._count(f"admin {path}", 200 if status in (200, 409) else status, body)


def soak_tick(c: SoakClient, peer: eb.Peer, queue: str, i: int, live: collections.deque, population: int,
              messages: list[int]) -> None:
    body = c.ec2(peer.fleet_params(f"soak-{i}"))
    ids = [m.decode() for m in re.findall(rb"<item>(i-[0-9a-f]+)</item>", body)]
    for iid in ids:
        c.ec2({"Action": "CreateTags", "Version": "2016-11-15", "ResourceId.1": iid,
               "Tag.1.Key": "karpenter.sh/nodeclaim", "Tag.1.Value": f"soak-{i}"})
        live.append(iid)
    while len(live) > population:
        c.ec2({"Action": "TerminateInstances", "Version": "2016-11-15", "InstanceId.1": live.popleft()})
    got = c.sqs("ReceiveMessage", {"QueueUrl": queue, "MaxNumberOfMessages": 10, "VisibilityTimeout": 20,
                                   "WaitTimeSeconds": 0}).get("Messages", [])
    if got:
        messages[0] += len(got)
        c.sqs("DeleteMessageBatch", {"QueueUrl": queue, "Entries": [
            {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(got)]})
    if i % 20 == 0:
        token = None
        while True:
            params = {"Action": "DescribeInstances", "Version": "2016-11-15", "MaxResults": "500",
                      "Filter.1.Name": "tag-key", "Filter.1.Value.1": "karpenter.sh/nodepool",
                      "Filter.2.Name": "instance-state-name", "Filter.2.Value.1": "pending",
                      "Filter.2.Value.2": "running"}
            if token:
                params["NextToken"] = token
            m = re.search(rb"<nextToken>([^<]+)</nextToken>", c.ec2(params))
            token = m.group(1).decode() if m else None
            if not token:
                break
    if i % 50 == 0:
        c.ec2({"Action": "DescribeSpotPriceHistory", "Version": "2016-11-15", "MaxResults": "100",
               "InstanceType.1": "m5.large", "InstanceType.2": "c5.large", "InstanceType.3": "m6i.large",
               "ProductDescription.1": "Linux/UNIX"})
    if i % 100 == 0 and live:
        c.admin("/_fake/interrupt", {"instance_ids": [live[len(live) // 2]]})


def run_soak(binary: Path, logdir: Path, quick: bool) -> dict:
    """Warm-up, then one world hour measured, on a fresh fake-ec2; the server is stopped at the end."""
    factor = 60
    warmup_ticks, measured_secs, population = (2_000, 10, 200) if quick else (30_000, 3600 / factor, 1_000)
    world = soak_world(Path(tempfile.mkdtemp(prefix="soak_world_")))
    s = eb.start_fake(binary, logdir, world=world, clock=["--clock", "scaled", "--clock-factor", str(factor)],
                      name="fake-ec2-soak")
    out: dict = {"factor": factor, "warmup_ticks": warmup_ticks, "population": population,
                 "measured_world_secs": measured_secs * factor}
    try:
        peer = eb.Peer(s)
        peer.setup()
        c = SoakClient(s.url)
        queue = c.sqs("GetQueueUrl", {"QueueName": "karpenter-interruption"}).get("QueueUrl", "")
        out["rss_idle_kib"] = eb.rss_kib(s.pid).get("VmRSS")
        live: collections.deque = collections.deque()
        messages = [0]
        samples = []
        t0, i = time.monotonic(), 0
        eb.log(f"soak: warm-up, {warmup_ticks} ticks (clock ×{factor})")
        while i < warmup_ticks and time.monotonic() - t0 < 900:
            i += 1
            soak_tick(c, peer, queue, i, live, population, messages)
        out["warmup_secs"] = round(time.monotonic() - t0, 1)
        out["warmup_done_ticks"] = i
        calls_before, errors_before = sum(c.calls.values()), sum(c.errors.values())
        rss_start = eb.rss_kib(s.pid).get("VmRSS")
        eb.log(f"soak: measuring one world hour ({measured_secs:.0f} s real) from RSS {rss_start} KiB")
        t1 = last_sample = time.monotonic()
        first_tick = i
        while time.monotonic() - t1 < measured_secs:
            i += 1
            soak_tick(c, peer, queue, i, live, population, messages)
            if time.monotonic() - last_sample >= measured_secs / 12:
                last_sample = time.monotonic()
                samples.append((round(last_sample - t1, 1), eb.rss_kib(s.pid).get("VmRSS")))
        rss_end = eb.rss_kib(s.pid).get("VmRSS")
        summary = {}
        try:
            conn = http.client.HTTPConnection(c.conn.u.hostname, c.conn.u.port, timeout=30)
            conn.request("GET", "/_fake/requests/summary")
            summary = json.loads(conn.getresponse().read())
            conn.close()
        except (OSError, ValueError, http.client.HTTPException):
            pass
        out.update({
            "measured_secs": round(time.monotonic() - t1, 1), "measured_ticks": i - first_tick,
            "rss_start_kib": rss_start, "rss_end_kib": rss_end, "rss_samples_kib": samples,
            "rss_hwm_kib": eb.rss_kib(s.pid).get("VmHWM"),
            "requests_measured": sum(c.calls.values()) - calls_before,
            "errors_measured": sum(c.errors.values()) - errors_before,
            "requests_total": sum(c.calls.values()), "errors_total": sum(c.errors.values()),
            "calls_by_action": dict(c.calls), "errors_by_action": dict(c.errors), "first_errors": c.first_errors,
            "messages_received": messages[0], "server_last_seq": summary.get("last_seq"),
            "server_errors_by_code": summary.get("errors_by_code"),
        })
        growth = (rss_end or 0) - (rss_start or 0)
        out["flat"] = bool(rss_start and rss_end and growth <= 0.10 * rss_start)
        eb.log(f"soak: RSS {rss_start} → {rss_end} KiB, {out['requests_measured']} requests, "
               f"{out['errors_measured']} errors, flat: {out['flat']}")
    finally:
        s.stop()
    return out


def soak_span(soak: dict) -> str:
    """How much world time the soak measured, in words."""
    secs = soak.get("measured_world_secs", 3600)
    return f"{secs / 3600:g} world hour" if secs >= 3600 else f"{secs / 60:g} world minutes"


def soak_rows(soak: dict) -> list[dict]:
    if not soak:
        return []
    what = f"Soak, {soak_span(soak)} of Karpenter-like traffic"
    start, end = eb.kib_to_mib(soak.get("rss_start_kib")), eb.kib_to_mib(soak.get("rss_end_kib"))
    rows = [
        {"metric": f"{what}: fake-ec2 RSS at its start", "fake_ec2": start, "unit": "MiB"},
        {"metric": f"{what}: fake-ec2 RSS at its end", "fake_ec2": end, "unit": "MiB",
         "target": "flat: within 10 % of the start", "met": soak.get("flat")},
        {"metric": f"{what}: requests answered", "fake_ec2": soak.get("requests_measured"), "unit": ""},
        {"metric": f"{what}: errors", "fake_ec2": soak.get("errors_measured"), "unit": "",
         "target": "0", "met": soak.get("errors_measured") == 0},
    ]
    for r in rows:
        r.setdefault("target", None)
        r.setdefault("met", None)
        r.update({"moto": None, "ratio": None, "note": ""})
    return rows


def soak_details(soak: dict) -> list[str]:
    if not soak:
        return []
    samples = ", ".join(f"{mib:.1f}" for mib in (eb.kib_to_mib(k) for _, k in soak.get("rss_samples_kib", [])) if mib)
    return [
        f"Soak details: clock ×{soak.get('factor')}; a warm-up of {soak.get('warmup_done_ticks'):,} ticks "
        f"({soak.get('warmup_secs')} s real; RSS {fmt_mib(soak.get('rss_idle_kib'))} idle before it) fills every "
        f"bounded store first; then {soak_span(soak)} ({soak.get('measured_secs')} s real, "
        f"{soak.get('measured_ticks'):,} ticks) is measured, at {soak.get('population'):,} live instances plus "
        f"those terminated in the last world hour. RSS through the hour (MiB): {samples}. Interruption-queue "
        f"messages received and deleted over the whole run: {soak.get('messages_received'):,}; requests the server "
        f"logged over the whole run: {soak.get('server_last_seq')}, errors by code: "
        f"{soak.get('server_errors_by_code') or 'none'}.",
        "",
    ]


def fmt_mib(kib) -> str:
    return "—" if kib is None else f"{kib / 1024:.1f} MiB"


def section(scale_run: dict | None) -> list[str]:
    """The results.md section for these rows (empty if they never ran)."""
    if not scale_run:
        return []
    mi = scale_run.get("machine", {})
    lines = [
        "<!-- scale-and-soak: written by bench/ec2_bench.py (BENCH_ONLY=scale,soak runs only these) -->",
        "## fake-ec2 at 10,000 instances, and a soak",
        "",
        f"Measured {mi.get('date')} on {mi.get('nproc')} CPUs (git {mi.get('git_commit')}"
        f"{', dirty tree' if mi.get('git_dirty') else ''}, release build), "
        f"moto {mi.get('moto')}. CPU busy just before: {scale_run.get('cpu_busy_before_pct')}%; load average "
        f"before/after: {scale_run.get('loadavg_before')} / {scale_run.get('loadavg_after')}"
        + (" (other work shared the machine: absolute numbers are pessimistic, ratios by turns much less so)"
           if (scale_run.get("cpu_busy_before_pct") or 0) > 20 else "") + ". "
        "Scale rows: both servers populated by RunInstances batches of 500, measured at the same size taking "
        "turns (raw HTTP, a new connection per call); moto only where it got to the size. Soak: fake-ec2 "
        "alone (moto has no clock, interruptions or EventBridge), one client on a keep-alive connection; "
        "*flat* means the RSS at the end of the measured hour is within 10 % of its start.",
        "",
        "| metric | fake-ec2 | moto | ratio | target | met? |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in scale_run.get("rows", []):
        lines.append(eb.row_line(r))
    lines.append("")
    kept = scale_run.get("kept_from") or {}
    if kept:
        lines += [f"Not measured in this run, kept from the run of {', '.join(f'{v} ({k})' for k, v in kept.items())}.",
                  ""]
    lines += soak_details(scale_run.get("soak") or {})
    return lines
