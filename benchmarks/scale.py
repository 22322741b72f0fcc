#!/usr/bin/env python3
"""Start-up time and index memory of kelp and the Go volume server holding many
needles, on one machine, in one run.

The volumes are written directly in the on-disk format (5-byte .idx offsets,
as the pinned `weed` build uses), N needles of 1 byte spread over V volumes
with the interleaved keys a master hands out. Each round copies them into a
fresh directory (so both servers start from a warm page cache), starts the
server against a running master and measures:
- first read: spawn until a GET of a needle of the first volume answers 200;
- all readable: spawn until one needle of every volume answers 200;
- memory: the proportional set size (PSS) summed over every process of the
  server (kelp: the supervisor and all its workers), once all volumes answer,
  minus the same server's PSS with an empty directory; divided by N, that is
  the memory each needle costs.
Servers take turns; the table gives medians over the rounds.
With --delete-every N every Nth needle is deleted afterwards, so the .idx is
no longer in key order (kelp then sorts it in memory instead of streaming it).
Usage: benchmarks/scale.py [--needles 10000000] [--volumes 8] [--repeat 3] [--delete-every N]
"""
import argparse
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "system"))
import conftest  # noqa: E402  (the test harness starts the processes)
from conftest import Cluster, Proc, crc32c, free_port  # noqa: E402
import requests  # noqa: E402

KELP_BENCH_BIN = ROOT / "build" / "bench" / "bin"
COOKIE = 0x12345678
DATA = b"k"
APPEND_AT = 16 + 6 + 4  # header, body (data size, data, flags), checksum: then the append time


def needle_record(key, append_ns):
    """A version-3 needle of DATA, no name/mime/ttl: header, body, checksum,
    append time, padding to 8 (always 1..8 bytes, as Go pads)."""
    body = struct.pack(">I", len(DATA)) + DATA + b"\0"  # data size, data, flags
    head = struct.pack(">IQI", COOKIE, key, len(body))
    tail = struct.pack(">IQ", crc32c(DATA), append_ns)  # the checksum raw, as Go 4.48 writes it
    unpadded = len(head) + len(body) + len(tail)
    return head + body + tail + b"\0" * (8 - unpadded % 8)


def tombstone_record(key, append_ns):
    """Go's deletion record: the needle's id and cookie, size 0, the deleted
    data's checksum and the time of the delete."""
    unpadded = 16 + 4 + 8
    return struct.pack(">IQIIQ", COOKIE, key, 0, crc32c(DATA), append_ns) + b"\0" * (8 - unpadded % 8)


def write_volumes(base, needles, volumes, delete_every=0):
    """Volume v (1..V) holds keys k with k % V == v - 1: the interleaving of a
    master that assigns ids in order across writable volumes. With
    delete_every=N, every Nth needle of a volume is then deleted (a tombstone
    record and an .idx entry of size -1 appended): the .idx is no longer in
    key order, as in any volume that has seen deletes."""
    record_len = len(needle_record(1, 0))
    template = bytearray(needle_record(1, 0))
    per_volume = {v: [] for v in range(1, volumes + 1)}
    for key in range(1, needles + 1):
        per_volume[(key - 1) % volumes + 1].append(key)
    now_ns = time.time_ns()
    probes = {}  # a live needle of each volume
    for vid, keys in per_volume.items():
        dat = bytearray(8 + record_len * len(keys))
        dat[0:8] = bytes([3, 0, 0, 0, 0, 0, 0, 0])  # version 3, placement 000, no TTL, revision 0
        idx = bytearray(17 * len(keys))
        for i, key in enumerate(keys):
            at = 8 + i * record_len
            dat[at:at + record_len] = template
            struct.pack_into(">Q", dat, at + 4, key)
            struct.pack_into(">Q", dat, at + APPEND_AT, now_ns + i)
            struct.pack_into(">QIBI", idx, i * 17, key, at // 8, 0, 6)
        if delete_every:
            doomed = keys[::delete_every]
            tomb_len = len(tombstone_record(1, 0))
            at = len(dat)
            dat += b"".join(tombstone_record(key, now_ns + i) for i, key in enumerate(doomed))
            idx += b"".join(struct.pack(">QIBI", key, (at + i * tomb_len) // 8, 0, 0xFFFFFFFF) for i, key in enumerate(doomed))
            keys = [k for i, k in enumerate(keys) if i % delete_every]
        probes[vid] = keys[len(keys) // 2]
        (base / f"{vid}.dat").write_bytes(dat)
        (base / f"{vid}.idx").write_bytes(idx)
    return probes


def pss_kb(pids):
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def tree(pid):
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def start(c, server, data_dir, port):
    if server == "go":
        args = [conftest.WEED, "volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={port}", f"-dir={data_dir}",
                "-max=64", f"-master=127.0.0.1:{c.master_port}"]
    else:
        args = [KELP_BENCH_BIN / "kelp-volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "--port", str(port),
                f"-dir={data_dir}", "-max=64", "-workers=2", "-preStopSeconds=0", f"-master=127.0.0.1:{c.master_port}"]
    p = Proc(args, c.tmp / f"{server}-{port}.log")
    c.procs.append(p)
    return p


def wait_get(url, deadline):
    s = requests.Session()
    while time.monotonic() < deadline:
        try:
            if s.get(url, timeout=2).status_code == 200:
                return time.monotonic()
        except requests.RequestException:
            pass
        time.sleep(0.005)
    raise TimeoutError(url)


def settle_pss(pids):
    """PSS once it stops moving (a loader may still free its buffers)."""
    last = pss_kb(pids)
    for _ in range(20):
        time.sleep(0.25)
        now = pss_kb(pids)
        if abs(now - last) < 256:
            return now
        last = now
    return last


def measure(c, server, data_dir, probes):
    port = free_port()
    t0 = time.monotonic()
    p = start(c, server, data_dir, port)
    deadline = t0 + 600
    url = f"http://127.0.0.1:{port}"
    first_vid = min(probes)
    first = wait_get(f"{url}/{first_vid},{probes[first_vid]:x}{COOKIE:08x}", deadline) - t0
    for vid, key in probes.items():
        wait_get(f"{url}/{vid},{key:x}{COOKIE:08x}", deadline)
    every = time.monotonic() - t0
    body = requests.get(f"{url}/{first_vid},{probes[first_vid]:x}{COOKIE:08x}", timeout=5).content
    if body != DATA:
        raise RuntimeError(f"{server} served {body!r} for a generated needle")
    pss = settle_pss(tree(p.pid))
    p.stop()
    c.procs.remove(p)
    return first, every, pss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--needles", type=int, default=10_000_000)
    ap.add_argument("--volumes", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--delete-every", type=int, default=0, help="delete every Nth needle of each volume (0: none)")
    args = ap.parse_args()
    subprocess.run(["make", "-C", str(ROOT), "-j2", "BUILD=build/bench", "OFFSET_BYTES=5", "all"], check=True,
                   stdout=subprocess.DEVNULL)
    tmp = Path(tempfile.mkdtemp(prefix="kelp-scale-"))
    c = Cluster(tmp)
    try:
        c.start_master(volume_size_limit_mb=30000)
        base = tmp / "base"
        base.mkdir()
        t = time.monotonic()
        probes = write_volumes(base, args.needles, args.volumes, args.delete_every)
        print(f"wrote {args.needles:,} needles in {args.volumes} volumes in {time.monotonic() - t:.0f} s", file=sys.stderr)
        empty = {}
        for server in ("go", "kelp"):
            d = tmp / f"empty-{server}"
            d.mkdir()
            port = free_port()
            p = start(c, server, d, port)
            conftest.wait_http(f"http://127.0.0.1:{port}/status", timeout=60)
            time.sleep(1)
            empty[server] = settle_pss(tree(p.pid))
            p.stop()
            c.procs.remove(p)
        results = {"go": [], "kelp": []}
        for rep in range(args.repeat):
            for server in (("go", "kelp") if rep % 2 == 0 else ("kelp", "go")):
                d = tmp / f"{server}-{rep}"
                shutil.copytree(base, d)
                os.sync()
                results[server].append(measure(c, server, d, probes))
                shutil.rmtree(d)
        deleted = f", every {args.delete_every}th deleted" if args.delete_every else ""
        print(f"\n{args.needles:,} needles of 1 byte in {args.volumes} volumes{deleted}, {args.repeat} rounds, medians; "
              f"{os.cpu_count()} cores, warm page cache\n")
        print("| server | first read (s) | all volumes readable (s) | PSS (MiB) | PSS empty (MiB) | bytes per needle |")
        print("|---|---:|---:|---:|---:|---:|")
        for server in ("go", "kelp"):
            r = results[server]
            first = statistics.median(x[0] for x in r)
            every = statistics.median(x[1] for x in r)
            pss = statistics.median(x[2] for x in r)
            per = (pss - empty[server]) * 1024 / args.needles
            print(f"| {'Go weed volume' if server == 'go' else 'kelp'} | {first:.2f} | {every:.2f} | {pss / 1024:,.0f} | "
                  f"{empty[server] / 1024:,.0f} | {per:.1f} |")
        g = statistics.median(x[1] for x in results["go"])
        k = statistics.median(x[1] for x in results["kelp"])
        print(f"\nstart until every volume reads: kelp is {g / k:.2f}x faster than Go")
    finally:
        c.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
