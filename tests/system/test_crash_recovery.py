"""Repeated SIGKILLs of the whole server under a write and delete load lose
nothing acknowledged.

Three writers upload random blobs (1 B to 300 KB, some with `fsync=true`)
through the master's assignments and a fourth client deletes some of the
acknowledged ones, while the supervisor and its workers are killed with
SIGKILL at random moments, several times, each time followed by a new kelp
on the same directory and port. Afterwards:

- no volume is read-only and no volume was loaded read-only (a kill in the
  middle of an append leaves only unacknowledged bytes, which the next load
  cuts),
- every acknowledged write that was not deleted reads back with the same
  SHA-256, and every acknowledged delete stays deleted (404),
- and the same holds when the Go volume server loads the directory.

A write acknowledged just before a kill must still be there: kelp acknowledges
only after the record and its `.idx` entry are written, and SIGKILL leaves the
page cache intact. A request whose answer was lost may or may not have taken
effect, so only acknowledged writes and deletes are checked.
"""
import hashlib
import random
import signal
import threading
import time
from pathlib import Path

import requests

from conftest import make_blob, wait_http

DURATION_S = 40
KILLS = 7
IDX_STALL_MS = 20


def blob_size(rng):
    r = rng.random()
    if r < 0.5:
        return rng.randint(1, 4096)
    if r < 0.9:
        return rng.randint(4097, 100 << 10)
    return rng.randint((100 << 10) + 1, 300 << 10)


class Ledger:
    """What the clients were told: acknowledged writes and deletes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.written = {}  # fid -> sha256 of an upload answered 201
        self.deleted = set()  # fids whose delete was answered 200/202
        self.unsure = set()  # fids whose delete got no answer or a failure
        self.delete_candidates = []
        self.write_failures = 0


def writer(n, master, ledger, stop):
    rng = random.Random(1000 + n)
    s = requests.Session()
    i = 0
    while not stop.is_set():
        i += 1
        try:
            a = s.get(master + "/dir/assign", timeout=5)
            j = a.json() if a.status_code == 200 else {}
            if "fid" not in j:
                time.sleep(0.1)
                continue
            content = make_blob(rng, blob_size(rng), i)
            params = {"fsync": "true"} if rng.random() < 0.1 else None
            r = s.post(f"http://{j['url']}/{j['fid']}", params=params,
                       files={"file": (f"b{n}-{i}.bin", content)}, timeout=10)
        except (requests.RequestException, ValueError):
            with ledger.lock:
                ledger.write_failures += 1
            s = requests.Session()
            time.sleep(0.05)
            continue
        if r.status_code == 201:
            with ledger.lock:
                ledger.written[j["fid"]] = hashlib.sha256(content).hexdigest()
                ledger.delete_candidates.append(j["fid"])
        else:
            with ledger.lock:
                ledger.write_failures += 1


def deleter(url, ledger, stop):
    rng = random.Random(99)
    s = requests.Session()
    while not stop.is_set():
        time.sleep(0.03)
        with ledger.lock:
            if len(ledger.delete_candidates) < 20 or rng.random() < 0.6:
                continue
            fid = ledger.delete_candidates.pop(rng.randrange(len(ledger.delete_candidates)))
        try:
            r = s.delete(f"{url}/{fid}", timeout=10)
        except requests.RequestException:
            s = requests.Session()
            with ledger.lock:
                ledger.unsure.add(fid)
            continue
        with ledger.lock:
            (ledger.deleted if r.status_code in (200, 202) else ledger.unsure).add(fid)


def check_blobs(server, live, deleted):
    """(lost, resurrected): live fids that do not read back intact, deleted ones that do."""
    s = requests.Session()
    lost, resurrected = [], []
    for fid, digest in live.items():
        g = s.get(f"{server.url}/{fid}", timeout=10)
        if g.status_code != 200 or hashlib.sha256(g.content).hexdigest() != digest:
            lost.append((fid, g.status_code))
    for fid in deleted:
        g = s.get(f"{server.url}/{fid}", timeout=10)
        if g.status_code != 404:
            resurrected.append((fid, g.status_code))
    return lost, resurrected


def read_only_volumes(server):
    vols = requests.get(server.url + "/status", timeout=10).json()["Volumes"]
    return sorted(v["Id"] for v in vols if v["ReadOnly"]), len(vols)


def test_repeated_sigkill_under_load_loses_nothing_acknowledged(cluster, tmp_path, monkeypatch):
    cluster.start_master(volume_size_limit_mb=1024)
    # Every .idx write waits a little first, so that a kill usually lands inside
    # an append: its record written to the .dat, its index entry not yet.
    monkeypatch.setenv("KELP_FAULTS", f"pwrite:.idx:stall={IDX_STALL_MS}:times=-1")
    d = tmp_path / "v"
    kelp = cluster.start_kelp(d, workers=2)
    port = kelp.port
    wait_http(kelp.url + "/healthz", timeout=30)

    ledger = Ledger()
    stop = threading.Event()
    threads = [threading.Thread(target=writer, args=(n, cluster.master, ledger, stop)) for n in range(3)]
    threads.append(threading.Thread(target=deleter, args=(kelp.url, ledger, stop)))
    for t in threads:
        t.start()
    rng = random.Random(4242)
    kills = 0
    try:
        deadline = time.time() + DURATION_S
        while kills < KILLS:
            time.sleep(rng.uniform(1.5, max(1.5, (deadline - time.time()) / (KILLS - kills))))
            with ledger.lock:
                acked_before = len(ledger.written)
            kelp.stop(signal.SIGKILL)
            cluster.procs.remove(kelp)
            kills += 1
            kelp = cluster.start_kelp(d, port=port, workers=2)
            print(f"kill {kills}: {acked_before} writes acknowledged before it")
        time.sleep(2.0)  # load on the last server too
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)

    with ledger.lock:
        deleted = set(ledger.deleted)
        live = {f: h for f, h in ledger.written.items() if f not in deleted and f not in ledger.unsure}
        unsure = len(ledger.unsure)
        acked_writes = len(ledger.written)
        write_failures = ledger.write_failures
    assert kills == KILLS
    assert len(live) > 100, f"only {len(live)} acknowledged writes"
    assert deleted, "no delete was acknowledged"

    ro, nvols = read_only_volumes(kelp)
    log = Path(kelp.log_path).read_text(errors="replace")
    loaded_ro = [line for line in log.splitlines() if "loaded read-only" in line]
    repairs = sum(1 for line in log.splitlines() if ".dat cut from" in line or "cut a partial .idx entry" in line)
    lost, resurrected = check_blobs(kelp, live, deleted)
    summary = (f"writes acknowledged {acked_writes}, deletes acknowledged {len(deleted)}, "
               f"lost {len(lost)}, resurrected {len(resurrected)}, read-only volumes {len(ro)} of {nvols} "
               f"({kills} kills, {repairs} tails cut at load, {write_failures} writes and {unsure} deletes unanswered or failed)")
    print("kelp: " + summary)
    assert repairs > 0, f"no kill landed inside an append; {summary}"
    assert not ro, f"{len(ro)} read-only volumes after the restarts: {ro}; {summary}"
    assert not loaded_ro, "\n".join(loaded_ro)
    assert not lost, f"acknowledged writes lost: {lost[:10]}; {summary}"
    assert not resurrected, f"acknowledged deletes undone: {resurrected[:10]}; {summary}"

    assert kelp.stop() == 0, kelp.tail()
    cluster.procs.remove(kelp)
    go = cluster.start_go_volume(d)
    ro, nvols = read_only_volumes(go)
    lost, resurrected = check_blobs(go, live, deleted)
    print(f"Go: lost {len(lost)}, resurrected {len(resurrected)}, read-only volumes {len(ro)} of {nvols}")
    assert not lost, f"the Go server lost acknowledged writes: {lost[:10]}"
    assert not resurrected, f"the Go server serves deleted blobs: {resurrected[:10]}"
    assert not ro, f"the Go server loaded volumes read-only: {ro}\n{go.tail()}"
