#!/usr/bin/env python3
"""Erasure coding encode (VolumeEcShardsGenerate) and rebuild
(VolumeEcShardsRebuild) on kelp vs the Go volume server, same machine, same
client, one run.

For each server kind, --rounds times (the order rotating; the table gives
medians), on a fresh Go master and data directory: one volume is allocated
over gRPC and filled with --mb MB of blobs of 4-256 KB (benchmarks/vacuum.py's
seeded set, the same for every server), `sync` runs, and VolumeEcShardsGenerate
is timed from the call to its answer. MB/s is the .dat size over those
seconds. The page cache is not dropped: both servers read a volume they have
just written.

Peak memory: for Go, the server's VmHWM (its high-water mark, reset just
before the call through /proc/PID/clear_refs); for kelp, the VmHWM of the
encode's job process, read every 20 ms while it runs, and the supervisor's
own growth over the call. (Byte identity with Go is the system tests'
business: each server here encodes the volume it wrote itself.)

Rebuild: after the encode, all 14 shards are mounted, then shards 0, 3, 10 and
13 (two data, two parity) are unmounted and their files removed, `sync` runs,
the page cache is dropped (both servers read their shards from the disk), and
VolumeEcShardsRebuild is timed the same way; MB/s is again the .dat size
over the seconds, and peak memory is measured as for the encode (kelp: the
rebuild job's VmHWM). "To durable" adds a `sync` right after the answer: kelp
syncs its outputs before answering, Go leaves them in the page cache, so the
call's own time flatters Go by whatever write-back is still to come.

Usage: benchmarks/ec_encode.py [--mb 1024] [--threads 4] [--servers kelp,go] [--rounds 2] [--tmp DIR] [--keep]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "system"))
import conftest  # noqa: E402
from conftest import Cluster, wait_http  # noqa: E402
from grpc_stubs import call, vs_pb2, volume_stub  # noqa: E402
from vacuum import KELP_BENCH_BIN, MB, Clients, blob, log, plan  # noqa: E402

VID = 7


def status_kb(pid, field):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def drop_caches():
    """Both servers' rebuilds read their shards from the disk: kelp's encode
    bypassed the page cache and Go's did not, so a warm cache would favour Go."""
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:
        log(f"cannot drop the page cache ({e}): the rebuild figures then depend on what it holds")


def job_pids(kind="encode"):
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if open(f"/proc/{pid}/cmdline", "rb").read().startswith(f"kelp-volume: ec {kind} job volume {VID}".encode()):
                    out.append(int(pid))
            except OSError:
                pass
    return out


def run_kind(kind, base, args, sizes, round_no):
    tmp = base / f"{kind}-{round_no}"
    tmp.mkdir()
    c = Cluster(tmp)
    clients = None
    try:
        c.start_master(volume_size_limit_mb=min(30000, max(1024, 3 * args.mb)))
        d = tmp / "data"
        d.mkdir()
        if kind == "go":
            srv = c.start_go_volume(d, extra=("-preStopSeconds=0",))
            server_pid = srv.p.pid
        else:
            srv = c.start_kelp(d, workers=2)
            wait_http(srv.url + "/healthz", timeout=30)
            server_pid = srv.p.pid
        stub = volume_stub(srv.port)
        code, details, _ = call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))
        if code != "OK":
            raise RuntimeError(f"AllocateVolume: {code} {details}")
        clients = Clients(srv.url, args.threads)
        clients.map(lambda k: clients.post(VID, k, blob(k, sizes[k])), sorted(sizes))
        os.sync()
        dat = (d / f"{VID}.dat").stat().st_size
        log(f"{kind} round {round_no}: {dat / MB:,.0f} MB written; encoding")

        def timed(job, run):
            peak = {"job": 0}
            stop = threading.Event()

            def watch():
                while not stop.is_set():
                    for pid in job_pids(job):
                        peak["job"] = max(peak["job"], status_kb(pid, "VmHWM") or 0)
                    time.sleep(0.02)

            if kind == "go":
                with open(f"/proc/{server_pid}/clear_refs", "w") as f:
                    f.write("5")
            rss_before = status_kb(server_pid, "VmRSS")
            watcher = threading.Thread(target=watch)
            watcher.start()
            t0 = time.perf_counter()
            code, details, _ = run()
            seconds = time.perf_counter() - t0
            stop.set()
            watcher.join()
            if code != "OK":
                raise RuntimeError(f"{job}: {code} {details}")
            # Until the outputs are on disk: kelp syncs its shards before it
            # answers; Go leaves them in the page cache.
            os.sync()
            durable = time.perf_counter() - t0
            out = {"seconds": seconds, "mbps": dat / MB / seconds, "durable": durable, "durable_mbps": dat / MB / durable}
            if kind == "go":
                out["peak_mb"] = status_kb(server_pid, "VmHWM") / 1024
                out["server_growth_mb"] = None
            else:
                out["peak_mb"] = peak["job"] / 1024
                out["server_growth_mb"] = max(0, (status_kb(server_pid, "VmRSS") or 0) - (rss_before or 0)) / 1024
            return out

        res = {"dat": dat}
        res["encode"] = timed("encode", lambda: call(stub.VolumeEcShardsGenerate, vs_pb2.VolumeEcShardsGenerateRequest(volume_id=VID), timeout=3600))
        lost = [0, 3, 10, 13]
        for req in (vs_pb2.VolumeEcShardsMountRequest(volume_id=VID, shard_ids=list(range(14))),):
            code, details, _ = call(stub.VolumeEcShardsMount, req)
            if code != "OK":
                raise RuntimeError(f"mount: {details}")
        call(stub.VolumeEcShardsUnmount, vs_pb2.VolumeEcShardsUnmountRequest(volume_id=VID, shard_ids=lost))
        for shard in lost:
            (d / f"{VID}.ec{shard:02d}").unlink()
        os.sync()
        drop_caches()
        log(f"{kind} round {round_no}: rebuilding shards {lost}")
        res["rebuild"] = timed("rebuild", lambda: call(stub.VolumeEcShardsRebuild, vs_pb2.VolumeEcShardsRebuildRequest(volume_id=VID), timeout=3600))
        return res
    finally:
        if clients:
            clients.close()
        c.stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--servers", default="kelp,go")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tmp", default="/var/tmp")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    if "kelp" in kinds:
        subprocess.run(["make", "-C", str(ROOT), "-j2", "BUILD=build/bench", "OFFSET_BYTES=5", "all"], check=True, stdout=subprocess.DEVNULL)
    os.environ["KELP_BIN"] = str(KELP_BENCH_BIN)
    conftest.KELP_BIN = KELP_BENCH_BIN
    sizes, _ = plan(args.mb, 0.0)
    base = Path(tempfile.mkdtemp(prefix="kelp-ec-", dir=args.tmp))
    results = {k: [] for k in kinds}
    try:
        for r in range(args.rounds):
            for i in range(len(kinds)):
                kind = kinds[(r + i) % len(kinds)]
                os.sync()
                results[kind].append(run_kind(kind, base, args, sizes, r))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\nOne volume of {len(sizes)} blobs of 4-256 KB, encoded, then 4 of its 14 shards rebuilt; {os.cpu_count()} cores; "
          f"medians of {args.rounds} round(s), the servers' order rotating; MB = 2^20 bytes, MB/s = .dat MB / seconds\n")
    print("| call | server | .dat MB | seconds | MB/s | vs Go | seconds to durable | MB/s durable | vs Go durable | peak memory MB | supervisor growth MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for job in ("encode", "rebuild"):
        go = {f: statistics.median(r[job][f] for r in results["go"]) for f in ("mbps", "durable_mbps")} if results.get("go") else None
        for kind, runs in results.items():
            m = {f: statistics.median(r[job][f] for r in runs) for f in ("seconds", "mbps", "durable", "durable_mbps", "peak_mb")}
            dat = statistics.median(r["dat"] for r in runs)
            growth = "—" if kind == "go" else f"{statistics.median(r[job]['server_growth_mb'] for r in runs):.1f}"
            what = "server VmHWM" if kind == "go" else "job VmHWM"
            print(f"| {job} | {kind} | {dat / MB:,.0f} | {m['seconds']:.2f} | {m['mbps']:,.0f} | "
                  f"{(m['mbps'] / go['mbps']) if go else 0:.2f}x | {m['durable']:.2f} | {m['durable_mbps']:,.0f} | "
                  f"{(m['durable_mbps'] / go['durable_mbps']) if go else 0:.2f}x | {m['peak_mb']:.1f} ({what}) | {growth} |")


if __name__ == "__main__":
    main()
