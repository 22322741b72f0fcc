"""SIGKILL of an HTTP worker in the middle of a write burst loses nothing: the
supervisor replaces it within a second, and every acknowledged write is readable
from kelp and afterwards from the Go server."""
import os
import random
import signal
import threading
import time

import requests

from conftest import Cluster, assert_all_readable, copy_tree, worker_pids


def test_sigkill_http_worker_during_write_burst(go_dataset, tmp_path):
    data, blobs = go_dataset
    d = copy_tree(data, tmp_path / "data")
    vids = sorted({fid.split(",")[0] for fid in blobs})
    c = Cluster(tmp_path)
    acked = {}
    failed = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        kelp = c.start_kelp(d, workers=2)
        before = sorted(worker_pids(kelp.pid))
        assert len(before) == 2, before

        def writer(n):
            rng = random.Random(n)
            s = requests.Session()
            i = 0
            while not stop.is_set() and i < 400:
                i += 1
                vid = vids[rng.randrange(len(vids))]
                fid = f"{vid},{(n << 24) + i:x}{rng.getrandbits(32):08x}"
                body = rng.randbytes(rng.choice([10, 1000, 20000, 100000]))
                try:
                    r = s.post(f"{kelp.url}/{fid}", files={"file": ("f.bin", body)}, timeout=10)
                except requests.RequestException:
                    with lock:
                        failed.append(fid)  # in flight on the killed worker: may or may not be stored
                    s = requests.Session()
                    continue
                if r.status_code == 201:
                    with lock:
                        acked[fid] = body

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(1, 9)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        replaced = None
        while time.time() - killed_at < 1.0:
            now = worker_pids(kelp.pid)
            if len(now) == 2 and victim not in now:
                replaced = time.time() - killed_at
                break
            time.sleep(0.01)
        assert replaced is not None, f"worker not replaced within 1 s: {worker_pids(kelp.pid)}"
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert kelp.alive(), kelp.tail()
        assert len(acked) > 200, f"only {len(acked)} writes acknowledged"

        assert_all_readable(kelp.url, acked, "kelp")
        c.stop_all()

        c.start_master()
        go = c.start_go_volume(d)
        assert_all_readable(go.url, acked, "Go")
        s = requests.Session()
        for fid, (name, content, _) in list(blobs.items())[:50]:
            assert s.get(f"{go.url}/{fid}", timeout=10).content == content
        st = s.get(f"{go.url}/status", timeout=10).json()
        assert not any(v["ReadOnly"] for v in st["Volumes"])
        print(f"acknowledged {len(acked)} writes, {len(failed)} in flight on the killed worker, replaced in {replaced * 1000:.0f} ms")
    finally:
        stop.set()
        c.stop_all()
