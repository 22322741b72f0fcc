"""The index merge under load, with two HTTP workers.

A volume's shared index is a sorted base plus a small hash delta; when the
delta fills, the supervisor merges it into a new segment and hands that to
every worker, keeping the old one up to date until each has switched. These
tests write enough small needles to one volume to merge it several times:

* every acknowledged write reads back at once on a new connection, whichever
  worker takes it, while merges happen;
* a worker that never switches (stopped with SIGSTOP) does not turn the
  volume read-only: once the old segment is full, writes wait for the switch;
  the supervisor drops the stuck worker at its handover deadline, every write
  is then acknowledged, and the volume stays writable. Go loads the result.
"""
import os
import random
import signal
import threading
from pathlib import Path

import requests

from conftest import Cluster, assert_all_readable, copy_tree, wait_until, worker_pids

# A Go-written volume holds about a hundred needles, so its delta has the
# minimum 4096 slots: a merge comes every ~3000 new keys, and the old segment
# can take ~1000 more while the workers switch.
WRITES = 7000
THREADS = 8


def pick_volume(blobs):
    counts = {}
    for fid in blobs:
        vid = fid.split(",")[0]
        counts[vid] = counts.get(vid, 0) + 1
    return max(counts, key=counts.get)


def fid_of(vid, key):
    return f"{vid},{key:x}{0x1234abcd:08x}"


def write_many(url, vid, keys, on_ack, failures, timeout):
    """Writes `keys` on THREADS threads, each with its own connection."""
    lock = threading.Lock()
    queue = list(keys)

    def run():
        s = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                key = queue.pop()
            fid = fid_of(vid, key)
            body = f"needle {key} ".encode() * 4
            try:
                r = s.post(f"{url}/{fid}", files={"file": ("n.bin", body)}, timeout=timeout)
            except requests.RequestException as e:
                with lock:
                    failures.append(f"{fid}: {e}")
                s = requests.Session()
                continue
            if r.status_code != 201:
                with lock:
                    failures.append(f"{fid}: {r.status_code} {r.text}")
                continue
            on_ack(fid, body)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def merges_logged(kelp, vid):
    return Path(kelp.log_path).read_text(errors="replace").count(f"volume {vid}: index merged")


def test_acknowledged_writes_read_back_on_any_worker_while_the_index_merges(go_dataset, tmp_path):
    data, blobs = go_dataset
    d = copy_tree(data, tmp_path / "data")
    vid = pick_volume(blobs)
    c = Cluster(tmp_path)
    misses = []
    acked = {}
    recent = []  # acknowledged fids in order, for the readers
    lock = threading.Lock()
    try:
        kelp = c.start_kelp(d, workers=2)
        # /status answers once one worker listens; the other may still be starting.
        assert wait_until(lambda: len(worker_pids(kelp.pid)) == 2, 10)

        def on_ack(fid, body):
            # A new connection each time: the read lands on either worker.
            r = requests.get(f"{kelp.url}/{fid}", timeout=30)
            if r.status_code != 200 or r.content != body:
                misses.append(f"{fid}: {r.status_code} right after its write")
            with lock:
                acked[fid] = body
                recent.append(fid)

        stop = threading.Event()

        def reader():
            rng = random.Random(7)
            while not stop.is_set():
                with lock:
                    fid = rng.choice(recent[-500:]) if recent else None
                    body = acked.get(fid)
                if fid is None:
                    stop.wait(0.01)  # nothing acknowledged yet
                    continue
                r = requests.get(f"{kelp.url}/{fid}", timeout=30)
                if r.status_code != 200 or r.content != body:
                    misses.append(f"{fid}: {r.status_code} on a later read")

        readers = [threading.Thread(target=reader) for _ in range(2)]
        for t in readers:
            t.start()
        failures = []
        write_many(kelp.url, vid, range(1 << 20, (1 << 20) + WRITES), on_ack, failures, timeout=60)
        stop.set()
        for t in readers:
            t.join()
        assert not failures, failures[:5]
        assert not misses, misses[:5]
        assert len(acked) == WRITES
        assert merges_logged(kelp, vid) >= 2, kelp.tail()
        assert kelp.alive(), kelp.tail()
        st = requests.get(f"{kelp.url}/status", timeout=10).json()
        assert not next(v for v in st["Volumes"] if str(v["Id"]) == vid)["ReadOnly"]
    finally:
        c.stop_all()


def test_a_worker_that_never_switches_is_dropped_and_the_volume_stays_writable(go_dataset, tmp_path):
    data, blobs = go_dataset
    d = copy_tree(data, tmp_path / "data")
    vid = pick_volume(blobs)
    c = Cluster(tmp_path)
    acked = {}
    lock = threading.Lock()
    stopped = None
    try:
        kelp = c.start_kelp(d, workers=2)
        # /status answers once one worker listens; the other may still be starting.
        assert wait_until(lambda: len(worker_pids(kelp.pid)) == 2, 10)
        workers = sorted(worker_pids(kelp.pid))
        stopped = workers[0]
        # Stopped, it never reads the announcement of the merged segment; the
        # other worker accepts every connection made from now on.
        os.kill(stopped, signal.SIGSTOP)

        def on_ack(fid, body):
            with lock:
                acked[fid] = body

        failures = []
        # Past the first merge and past what the old segment can take after it.
        write_many(kelp.url, vid, range(1 << 21, (1 << 21) + 4500), on_ack, failures, timeout=120)
        assert not failures, failures[:5]
        assert len(acked) == 4500
        log = Path(kelp.log_path).read_text(errors="replace")
        assert "the old index segment is full" in log, kelp.tail()
        assert f"(pid {stopped}): did not switch to a new index segment in time" in log, kelp.tail()
        assert "index segment full" not in log, kelp.tail()
        # The stuck worker is gone and its slot runs a new one.
        assert wait_until(lambda: stopped not in worker_pids(kelp.pid) and len(worker_pids(kelp.pid)) == 2, 10)
        st = requests.get(f"{kelp.url}/status", timeout=10).json()
        assert not next(v for v in st["Volumes"] if str(v["Id"]) == vid)["ReadOnly"]
        r = requests.post(f"{kelp.url}/{fid_of(vid, 1 << 22)}", files={"file": ("n.bin", b"after")}, timeout=30)
        assert r.status_code == 201, r.text
        acked[fid_of(vid, 1 << 22)] = b"after"
        assert_all_readable(kelp.url, acked, "kelp")
        c.stop_all()

        c.start_master()
        go = c.start_go_volume(d)
        assert_all_readable(go.url, acked, "Go")
    finally:
        if stopped:
            try:
                os.kill(stopped, signal.SIGCONT)
            except ProcessLookupError:
                pass
        c.stop_all()
