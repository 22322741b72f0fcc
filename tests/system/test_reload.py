"""SIGHUP replaces the HTTP workers under load: new workers take the same
listening socket, old ones finish what they have, and no request fails."""
import os
import random
import signal
import threading
import time

import requests

from conftest import copy_tree, worker_pids


def test_sighup_replaces_workers_without_failed_requests(go_dataset, tmp_path, cluster):
    data, blobs = go_dataset
    kelp = cluster.start_kelp(copy_tree(data, tmp_path / "data"), workers=2)
    small = [(f, c) for f, (_, c, _) in blobs.items() if len(c) < 50000][:50]
    vid = small[0][0].split(",")[0]
    stop = threading.Event()
    failures, done = [], [0]
    lock = threading.Lock()

    def client(n):
        rng = random.Random(n)
        s = requests.Session()
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if i % 4 == 0:
                    body = rng.randbytes(2000)
                    fid = f"{vid},{((n + 1) << 24) + i:x}{rng.getrandbits(32):08x}"
                    r = s.post(f"{kelp.url}/{fid}", files={"file": ("r.bin", body)}, timeout=10)
                    ok = r.status_code == 201
                else:
                    fid, content = small[rng.randrange(len(small))]
                    r = s.get(f"{kelp.url}/{fid}", timeout=10)
                    ok = r.status_code == 200 and r.content == content
            except requests.RequestException as e:
                ok, r = False, e
            with lock:
                done[0] += 1
                if not ok:
                    failures.append(f"{'POST' if i % 4 == 0 else 'GET'} {r!r} {getattr(r, 'text', '')[:120]}")

    before = set(worker_pids(kelp.pid))
    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    os.kill(kelp.pid, signal.SIGHUP)
    time.sleep(2.0)
    os.kill(kelp.pid, signal.SIGHUP)
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    deadline = time.time() + 10
    while time.time() < deadline and len(worker_pids(kelp.pid)) != 2:
        time.sleep(0.1)
    after = set(worker_pids(kelp.pid))
    assert len(after) == 2 and not (after & before), (before, after)
    assert done[0] > 300, done[0]
    assert not failures, f"{len(failures)} of {done[0]} requests failed across reloads: {failures[:5]}"
