#!/usr/bin/env python3
"""Reads of an erasure-coded volume, healthy and degraded, on kelp vs the Go
volume server: same machine, same client (wrk, -t2, keep-alive), one run.

For each server kind, on a fresh Go master and data directory: one volume is
filled with --small blobs of 1 KB and --large blobs of 1 MB, encoded
(VolumeEcShardsGenerate), all 14 shards are mounted and the regular volume is
deleted, so every read goes through the EC path. Each case is --seconds of
random GETs over one size's file ids at -c --connections:
- healthy: every shard mounted on the server;
- degraded: shards 0, 1, 2 and 3 unmounted and removed, so every needle those
  data shards held is rebuilt from ten others on each read.
Every answer must be 200 (wrk's non-2xx count is reported and must be 0).

Usage: benchmarks/ec_reads.py [--small 20000] [--large 300] [--seconds 5] [--connections 16] [--servers kelp,go] [--tmp DIR]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "system"))
import conftest  # noqa: E402
from conftest import Cluster, wait_http, wait_until  # noqa: E402
from grpc_stubs import call, master_pb2, vs_pb2, volume_stub  # noqa: E402
from vacuum import KELP_BENCH_BIN, Clients, blob, fid, log  # noqa: E402

VID = 7
LOST = [0, 1, 2, 3]


def wrk(url, fids_path, seconds, connections):
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(ROOT / "benchmarks" / "random_get.lua"), url],
                         capture_output=True, text=True, env=dict(os.environ, FIDS=str(fids_path)), check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, int(errors.group(1)) if errors else 0


def master_shards(cluster):
    import grpc
    import proto.master_pb2_grpc as master_grpc
    channel = grpc.insecure_channel(f"127.0.0.1:{cluster.master_port + 10000}")
    code, _, r = call(master_grpc.SeaweedStub(channel).LookupEcVolume, master_pb2.LookupEcVolumeRequest(volume_id=VID))
    return set() if code != "OK" else {l.shard_id for l in r.shard_id_locations if l.locations}


def run_kind(kind, base, args):
    tmp = base / kind
    tmp.mkdir()
    c = Cluster(tmp)
    try:
        c.start_master(volume_size_limit_mb=4096)
        d = tmp / "data"
        d.mkdir()
        srv = c.start_go_volume(d, extra=("-preStopSeconds=0",)) if kind == "go" else c.start_kelp(d, workers=2)
        wait_http(srv.url + "/healthz" if kind == "kelp" else srv.url + "/status", timeout=30)
        stub = volume_stub(srv.port)
        code, details, _ = call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))
        if code != "OK":
            raise RuntimeError(f"AllocateVolume: {details}")
        clients = Clients(srv.url, 4)
        keys = {1024: list(range(1, args.small + 1)), 1 << 20: list(range(args.small + 1, args.small + args.large + 1))}
        for size, ks in keys.items():
            clients.map(lambda k, size=size: clients.post(VID, k, blob(k, size)), ks)
        clients.close()
        for req, what in ((vs_pb2.VolumeEcShardsGenerateRequest(volume_id=VID), "generate"),):
            code, details, _ = call(stub.VolumeEcShardsGenerate, req, timeout=3600)
            if code != "OK":
                raise RuntimeError(f"{what}: {details}")
        call(stub.VolumeEcShardsMount, vs_pb2.VolumeEcShardsMountRequest(volume_id=VID, shard_ids=list(range(14))))
        code, details, _ = call(stub.VolumeDelete, vs_pb2.VolumeDeleteRequest(volume_id=VID))
        if code != "OK":
            raise RuntimeError(f"VolumeDelete: {details}")
        if not wait_until(lambda: master_shards(c) == set(range(14)), 30):
            raise RuntimeError("the master did not learn the shards")
        lists = {}
        for size, ks in keys.items():
            p = tmp / f"fids-{size}"
            p.write_text("".join(fid(VID, k) + "\n" for k in ks))
            lists[size] = p
        res = {}
        for state in ("healthy", "degraded"):
            if state == "degraded":
                call(stub.VolumeEcShardsUnmount, vs_pb2.VolumeEcShardsUnmountRequest(volume_id=VID, shard_ids=LOST))
                for s in LOST:
                    (d / f"{VID}.ec{s:02d}").unlink()
                if not wait_until(lambda: master_shards(c) == set(range(14)) - set(LOST), 30):
                    raise RuntimeError("the master did not learn of the lost shards")
            for size, p in lists.items():
                wrk(srv.url, p, 1, args.connections)  # warm-up
                rps, errors = wrk(srv.url, p, args.seconds, args.connections)
                res[(state, size)] = (rps, errors)
                log(f"{kind} {state} {size} B: {rps:,.0f} req/s, {errors} errors")
        return res
    finally:
        c.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=20000)
    ap.add_argument("--large", type=int, default=300)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--servers", default="kelp,go")
    ap.add_argument("--tmp", default="/var/tmp")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    if "kelp" in kinds:
        subprocess.run(["make", "-C", str(ROOT), "-j2", "BUILD=build/bench", "OFFSET_BYTES=5", "all"], check=True, stdout=subprocess.DEVNULL)
    os.environ["KELP_BIN"] = str(KELP_BENCH_BIN)
    conftest.KELP_BIN = KELP_BENCH_BIN
    base = Path(tempfile.mkdtemp(prefix="kelp-ec-reads-", dir=args.tmp))
    results = {}
    try:
        for kind in kinds:
            os.sync()
            results[kind] = run_kind(kind, base, args)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\nRandom GETs of an EC volume (wrk -t2 -c{args.connections}, {args.seconds} s per case; "
          f"{args.small} blobs of 1 KB, {args.large} of 1 MB); degraded = shards {LOST} lost; {os.cpu_count()} cores\n")
    print("| size | server | healthy req/s | degraded req/s | degraded / healthy | errors |")
    print("|---|---|---:|---:|---:|---:|")
    for size, name in ((1024, "1 KB"), (1 << 20, "1 MB")):
        for kind, res in results.items():
            h, dg = res[("healthy", size)], res[("degraded", size)]
            print(f"| {name} | {kind} | {h[0]:,.0f} | {dg[0]:,.0f} | {dg[0] / h[0]:.2f} | {h[1] + dg[1]} |")


if __name__ == "__main__":
    main()
