#!/usr/bin/env python3
"""Vacuum (compaction) on kelp vs the Go volume server, same machine, same client, one run.

For each server kind in --servers, on a fresh Go master and a fresh data
directory with nothing else running against it, --rounds times (the order of
the servers rotates from round to round, and the table gives medians; the
latency rows pool the requests of every round):

1. Setup. Two volumes are allocated over gRPC and each is filled over HTTP
   with the same --mb MB of blobs (4 KB..256 KB, log-uniform; contents and
   sizes come from a fixed seed, so every server gets the same set), written
   by --threads client threads, each with its own keep-alive session; the
   second volume also gets 2000 blobs of 1 KB for the load to read. A
   --garbage share of the large blobs is then deleted from both, and `sync`
   flushes the dirty pages (the page cache is not dropped: the copy reads
   from memory, as it does on a server that has just taken those writes).
2. Throughput, on the first volume, with no other load. VacuumVolumeCheck
   gives the garbage ratio; VacuumVolumeCompact (preallocate 0, no
   -compactionMBps throttle) is timed from the call to the end of its stream,
   then VacuumVolumeCommit on its own. MB/s is the size of the .dat before the
   vacuum over the compact seconds.
3. Latency, on the second volume, vacuumed the same way under load:
   --threads reader threads loop on GETs of a random one of its 1 KB blobs
   (checked byte for byte) and one more thread loops on POSTs of new 1 KB
   blobs to it. Each request is tagged with the phase it started in: "idle"
   (--phase-seconds before the vacuum), "compact" (call to end of stream),
   "commit", "after" (--phase-seconds after the commit). A request fails when
   it raises, answers other than 200 (GET) or 201 (POST), or returns other
   bytes; every failure is counted.
4. Check. With the load stopped, every live blob of both volumes (the
   surviving large ones, the 1 KB ones, and every blob the load's POSTs got a
   201 for) must read back byte-exact, and every deleted one must answer 404.

kelp is the release build in build/bench/bin (as for benchmarks/run.py), with
two HTTP workers. The master's automatic vacuum is pushed out to a day so that
only these calls compact the volume. MB means 2^20 bytes throughout.

Temporary data goes to a new directory under --tmp (default /var/tmp), removed
at the end unless --keep.

Usage: benchmarks/vacuum.py [--mb 1024] [--garbage 0.6] [--threads 4] [--servers kelp,go] [--rounds 2]
                            [--phase-seconds 3] [--tmp DIR] [--keep]
"""
import argparse
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "system"))
import conftest  # noqa: E402  (the test harness starts the processes)
from conftest import Cluster, wait_http  # noqa: E402
from grpc_stubs import call, vs_pb2, volume_stub  # noqa: E402
import requests  # noqa: E402

KELP_BENCH_BIN = ROOT / "build" / "bench" / "bin"
MB = 1 << 20
VID = 7                      # vacuumed alone: the throughput
LOAD_VID = 8                 # vacuumed under load: the latency
COOKIE = 0x7acc0001
SEED = 20261204
SMALL_SIZE = 1024
SMALL_COUNT = 2000
SMALL_BASE = 1 << 32         # keys of the 1 KB blobs the load reads
LOAD_BASE = 1 << 33          # keys of the blobs the load writes
RPC_TIMEOUT = 3600
PHASES = ("idle", "compact", "commit", "after")
OCTET = {"Content-Type": "application/octet-stream"}


def fid(vid, key):
    return f"{vid},{key:x}{COOKIE:08x}"


def blob(key, size):
    """The bytes of blob `key`: the same for every run and every server."""
    return random.Random(SEED * 1_000_003 + key).randbytes(size)


def plan(mb, garbage):
    """({key: size} of the large blobs, the keys deleted before the vacuums)."""
    rng = random.Random(SEED)
    sizes, total, key = {}, 0, 0
    while total < mb * MB:
        key += 1
        size = int(4096 * 64 ** rng.random())  # 4 KB..256 KB, log-uniform
        sizes[key] = size
        total += size
    keys = list(sizes)
    return sizes, set(rng.sample(keys, round(len(keys) * garbage)))


class Clients:
    """A pool of client threads, each with its own keep-alive session."""

    def __init__(self, url, threads):
        self.url = url
        self.pool = ThreadPoolExecutor(threads)
        self.local = threading.local()

    def session(self):
        s = getattr(self.local, "session", None)
        if s is None:
            s = self.local.session = requests.Session()
        return s

    def map(self, fn, items):
        return list(self.pool.map(fn, items))

    def post(self, vid, key, data):
        r = self.session().post(f"{self.url}/{fid(vid, key)}", data=data, headers=OCTET, timeout=120)
        if r.status_code != 201:
            raise RuntimeError(f"POST {fid(vid, key)}: {r.status_code} {r.text[:200]}")

    def delete(self, vid, key):
        r = self.session().delete(f"{self.url}/{fid(vid, key)}", timeout=120)
        if r.status_code != 202:
            raise RuntimeError(f"DELETE {fid(vid, key)}: {r.status_code} {r.text[:200]}")

    def problem(self, vid, key, expected):
        """None if GET of `key` answers as expected (bytes: 200 with them; None: 404), else a description."""
        try:
            r = self.session().get(f"{self.url}/{fid(vid, key)}", timeout=120)
        except requests.RequestException as e:
            return f"{fid(vid, key)}: {type(e).__name__}"
        if expected is None:
            return None if r.status_code == 404 else f"{fid(vid, key)}: deleted, answered {r.status_code}"
        if r.status_code != 200:
            return f"{fid(vid, key)}: answered {r.status_code}"
        if r.content != expected:
            return f"{fid(vid, key)}: {len(r.content)} bytes differ from the {len(expected)} written"
        return None

    def close(self):
        self.pool.shutdown()


class Load:
    """Reader threads (GET of a random 1 KB blob) and one writer thread (POST of
    new 1 KB blobs); every request is recorded with the phase it started in."""

    def __init__(self, url, small, readers):
        self.url = url
        self.small = small
        self.phase = "idle"
        self.phase_start = {"idle": time.perf_counter()}
        self.phase_end = {}
        self.stop = threading.Event()
        self.records = []  # one list per thread: (phase, op, seconds, ok)
        self.written = []  # keys the writer got a 201 for
        self.threads = [threading.Thread(target=self.reader, args=(i,)) for i in range(readers)]
        self.threads.append(threading.Thread(target=self.writer))

    def set_phase(self, name):
        now = time.perf_counter()
        self.phase_end[self.phase] = now
        self.phase_start[name] = now
        self.phase = name

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.phase_end[self.phase] = time.perf_counter()
        self.stop.set()
        for t in self.threads:
            t.join()

    def reader(self, i):
        out = []
        self.records.append(out)
        s = requests.Session()
        rng = random.Random(SEED + i)
        keys = sorted(self.small)
        while not self.stop.is_set():
            key = rng.choice(keys)
            phase = self.phase
            t0 = time.perf_counter()
            try:
                r = s.get(f"{self.url}/{fid(LOAD_VID, key)}", timeout=60)
                ok = r.status_code == 200 and r.content == self.small[key]
            except Exception:
                ok = False
            out.append((phase, "GET", time.perf_counter() - t0, ok))

    def writer(self):
        out = []
        self.records.append(out)
        s = requests.Session()
        key = LOAD_BASE
        while not self.stop.is_set():
            key += 1
            data = blob(key, SMALL_SIZE)
            phase = self.phase
            t0 = time.perf_counter()
            try:
                r = s.post(f"{self.url}/{fid(LOAD_VID, key)}", data=data, headers=OCTET, timeout=60)
                ok = r.status_code == 201
            except Exception:
                ok = False
            out.append((phase, "POST", time.perf_counter() - t0, ok))
            if ok:
                self.written.append(key)

    def spans(self):
        """{phase: seconds it lasted}"""
        return {phase: self.phase_end.get(phase, 0) - self.phase_start.get(phase, 0) for phase in PHASES}


def pooled_summary(loads):
    """{(phase, op): (requests, failed, p50 ms, p99 ms, max ms, req/s)} over the
    requests of every round's load (each a (records, spans) pair)."""
    groups, spans = {}, {phase: 0.0 for phase in PHASES}
    for records, span in loads:
        for phase in PHASES:
            spans[phase] += span[phase]
        for rec in records:
            for phase, op, seconds, ok in rec:
                g = groups.setdefault((phase, op), ([], [0]))
                g[0].append(seconds * 1000)
                g[1][0] += not ok
    out = {}
    for phase in PHASES:
        for op in ("GET", "POST"):
            ms, failed = groups.get((phase, op), ([], [0]))
            ms.sort()
            out[(phase, op)] = (len(ms), failed[0], percentile(ms, 0.50), percentile(ms, 0.99),
                                ms[-1] if ms else None, len(ms) / spans[phase] if spans[phase] > 0 else None)
    return out


def percentile(sorted_ms, p):
    if not sorted_ms:
        return None
    return sorted_ms[min(len(sorted_ms) - 1, max(0, math.ceil(p * len(sorted_ms)) - 1))]


def vacuum(stub, vid, dat, on_phase=lambda name: None):
    """Check, Compact (timed to the end of its stream), Commit (timed); the figures."""
    code, details, r = call(stub.VacuumVolumeCheck, vs_pb2.VacuumVolumeCheckRequest(volume_id=vid))
    if code != "OK":
        raise RuntimeError(f"VacuumVolumeCheck: {code} {details}")
    ratio = r.garbage_ratio
    before = dat.stat().st_size
    on_phase("compact")
    t0 = time.perf_counter()
    code, details, msgs = call(lambda req, timeout: list(stub.VacuumVolumeCompact(req, timeout=timeout)),
                               vs_pb2.VacuumVolumeCompactRequest(volume_id=vid, preallocate=0), timeout=RPC_TIMEOUT)
    compact_s = time.perf_counter() - t0
    if code != "OK":
        call(stub.VacuumVolumeCleanup, vs_pb2.VacuumVolumeCleanupRequest(volume_id=vid))
        raise RuntimeError(f"VacuumVolumeCompact: {code} {details}")
    on_phase("commit")
    t0 = time.perf_counter()
    code, details, r = call(stub.VacuumVolumeCommit, vs_pb2.VacuumVolumeCommitRequest(volume_id=vid), timeout=RPC_TIMEOUT)
    commit_s = time.perf_counter() - t0
    on_phase("after")
    if code != "OK":
        raise RuntimeError(f"VacuumVolumeCommit: {code} {details}")
    return {"ratio": ratio, "before": before, "after": dat.stat().st_size, "compact_s": compact_s,
            "commit_s": commit_s, "mbps": before / MB / compact_s if compact_s > 0 else 0.0,
            "read_only": r.is_read_only}


def run_kind(kind, base, args, sizes, deleted, round_no):
    tmp = base / f"{kind}-{round_no}"
    tmp.mkdir()
    c = Cluster(tmp)
    clients = None
    try:
        c.start_master(volume_size_limit_mb=min(30000, max(1024, 3 * args.mb)),
                       extra=("-vacuumIntervalSeconds=86400",))
        d = tmp / "data"
        d.mkdir()
        if kind == "go":
            srv = c.start_go_volume(d, extra=("-preStopSeconds=0",))
        else:
            srv = c.start_kelp(d, workers=2)
            wait_http(srv.url + "/healthz", timeout=30)
        stub = volume_stub(srv.port)
        for vid in (VID, LOAD_VID):
            code, details, _ = call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=vid, replication="000", version=3))
            if code != "OK":
                raise RuntimeError(f"AllocateVolume {vid}: {code} {details}")
        clients = Clients(srv.url, args.threads)

        t0 = time.perf_counter()
        for vid in (VID, LOAD_VID):
            clients.map(lambda k: clients.post(vid, k, blob(k, sizes[k])), sorted(sizes))
        fill_s = (time.perf_counter() - t0) / 2
        small = {SMALL_BASE + i: blob(SMALL_BASE + i, SMALL_SIZE) for i in range(SMALL_COUNT)}
        clients.map(lambda k: clients.post(LOAD_VID, k, small[k]), sorted(small))
        for vid in (VID, LOAD_VID):
            clients.map(lambda k: clients.delete(vid, k), sorted(deleted))
        os.sync()
        log(f"{kind} round {round_no}: two volumes of {len(sizes)} blobs, {sum(sizes.values()) / MB:.0f} MB each "
            f"({fill_s:.1f} s to write one), {len(deleted)} deleted from each; vacuum of volume {VID}")
        res = {"fill_s": fill_s, "alone": vacuum(stub, VID, d / f"{VID}.dat")}
        os.sync()

        log(f"{kind} round {round_no}: vacuum of volume {LOAD_VID} under load")
        load = Load(srv.url, small, args.threads)
        load.start()
        try:
            time.sleep(args.phase_seconds)
            res["loaded"] = vacuum(stub, LOAD_VID, d / f"{LOAD_VID}.dat", load.set_phase)
            time.sleep(args.phase_seconds)
        finally:
            load.finish()
        res["load"] = (load.records, load.spans())
        res["written"] = len(load.written)

        log(f"{kind} round {round_no}: checking every blob")
        expected = []
        for vid in (VID, LOAD_VID):
            expected += [(vid, k, sizes[k]) for k in sorted(sizes) if k not in deleted]
            expected += [(vid, k, None) for k in sorted(deleted)]
        expected += [(LOAD_VID, k, SMALL_SIZE) for k in sorted(small)]
        expected += [(LOAD_VID, k, SMALL_SIZE) for k in load.written]
        problems = [p for p in clients.map(lambda e: clients.problem(e[0], e[1], None if e[2] is None else blob(e[1], e[2])),
                                           expected) if p]
        res["checked"] = len(expected)
        res["problems"] = problems
        for p in problems[:10]:
            log(f"{kind}: check: {p}")
        return res
    except Exception:
        traceback.print_exc()
        for p in c.procs:
            log(f"--- {p.log_path}\n{p.tail()}")
        return {"error": traceback.format_exc(limit=0).strip().splitlines()[-1]}
    finally:
        if clients:
            clients.close()
        c.stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fmt(x, spec=".1f"):
    return "—" if x is None else format(x, spec)


def median_of(runs, part, field):
    return statistics.median(r[part][field] for r in runs)


def report(args, results, sizes, deleted):
    print(f"\nvacuum of a volume of {len(sizes)} blobs of 4-256 KB, {sum(sizes.values()) / MB:,.0f} MB written, "
          f"{len(deleted)} deleted ({args.garbage:.0%}); {os.cpu_count()} cores; medians of {args.rounds} round(s), "
          f"the servers' order rotating; MB = 2^20 bytes\n")
    ok = {kind: [r for r in runs if "error" not in r] for kind, runs in results.items()}
    errors = {kind: [r["error"] for r in runs if "error" in r] for kind, runs in results.items()}
    print("| server | garbage ratio | .dat before (MB) | .dat after (MB) | compact s | MB/s | MB/s vs Go | commit s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    go_mbps = median_of(ok["go"], "alone", "mbps") if ok.get("go") else None
    for kind, runs in ok.items():
        for e in errors[kind]:
            print(f"| {kind} | error: {e} |||||||")
        if not runs:
            continue
        m = {f: median_of(runs, "alone", f) for f in ("ratio", "before", "after", "compact_s", "mbps", "commit_s")}
        ratio = f"{m['mbps'] / go_mbps:.2f}x" if go_mbps else "—"
        print(f"| {kind} | {m['ratio']:.3f} | {m['before'] / MB:,.1f} | {m['after'] / MB:,.1f} | {m['compact_s']:.2f} | "
              f"{m['mbps']:,.0f} | {ratio} | {m['commit_s']:.3f} |")

    print(f"\nthe same vacuum of a second such volume under load ({args.threads} GET threads on its 1 KB blobs, "
          f"1 POST thread of 1 KB blobs to it); then every blob of both volumes read back\n")
    print("| server | .dat before (MB) | .dat after (MB) | compact s | commit s | POSTs acknowledged | blobs checked | check |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for kind, runs in ok.items():
        if not runs:
            continue
        m = {f: median_of(runs, "loaded", f) for f in ("before", "after", "compact_s", "commit_s")}
        problems = sum(len(r["problems"]) for r in runs)
        check = "pass" if not problems else f"FAIL ({problems} wrong)"
        print(f"| {kind} | {m['before'] / MB:,.1f} | {m['after'] / MB:,.1f} | {m['compact_s']:.2f} | {m['commit_s']:.3f} | "
              f"{sum(r['written'] for r in runs):,} | {sum(r['checked'] for r in runs):,} | {check} |")

    print("\nlatency by the phase a request started in, every round's requests pooled\n")
    print("| server | phase | op | requests | failed | req/s | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for kind, runs in ok.items():
        if not runs:
            continue
        for (phase, op), (n, failed, p50, p99, mx, rate) in pooled_summary([r["load"] for r in runs]).items():
            print(f"| {kind} | {phase} | {op} | {n:,} | {failed:,} | {fmt(rate, ',.0f')} | {fmt(p50, '.2f')} | "
                  f"{fmt(p99, '.2f')} | {fmt(mx, '.1f')} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=1024, help="MB of blobs written to the volume")
    ap.add_argument("--garbage", type=float, default=0.6, help="share of the blobs deleted before the first vacuum")
    ap.add_argument("--threads", type=int, default=4, help="client threads for the fill, the check and the GET load")
    ap.add_argument("--servers", default="kelp,go", help="server kinds, in order: kelp, go")
    ap.add_argument("--rounds", type=int, default=2, help="rounds; the servers' order rotates from one to the next")
    ap.add_argument("--phase-seconds", type=float, default=3.0, help="load before the loaded vacuum and after its commit")
    ap.add_argument("--tmp", default="/var/tmp", help="directory under which the temporary data directory is made")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    if not kinds or any(k not in ("kelp", "go") for k in kinds) or len(set(kinds)) != len(kinds):
        ap.error("--servers takes kelp and/or go, each at most once")
    if not 0 <= args.garbage < 1:
        ap.error("--garbage must be in [0, 1)")
    if "kelp" in kinds:
        subprocess.run(["make", "-C", str(ROOT), "-j2", "BUILD=build/bench", "OFFSET_BYTES=5", "all"], check=True,
                       stdout=subprocess.DEVNULL)
    os.environ["KELP_BIN"] = str(KELP_BENCH_BIN)
    conftest.KELP_BIN = KELP_BENCH_BIN

    sizes, deleted = plan(args.mb, args.garbage)
    base = Path(tempfile.mkdtemp(prefix="kelp-vacuum-", dir=args.tmp))
    results = {kind: [] for kind in kinds}
    try:
        for round_no in range(args.rounds):
            for i in range(len(kinds)):
                kind = kinds[(round_no + i) % len(kinds)]
                os.sync()  # no writeback of the previous server's files during this one
                results[kind].append(run_kind(kind, base, args, sizes, deleted, round_no))
    finally:
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    report(args, results, sizes, deleted)
    if any("error" in r or r["problems"] for runs in results.values() for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
