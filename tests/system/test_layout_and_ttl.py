"""Several -dir locations with their own -max, .idx files under -dir.idx, and
TTL expiry on read: kelp serves Go's layout and expires needles as Go does."""
import random
import time

import requests

from conftest import Cluster, assign


def test_multi_dir_idx_dir_and_ttl_expiry_match_go(tmp_path):
    dirs = [tmp_path / "d1", tmp_path / "d2"]
    idx_dir = tmp_path / "idx"
    for d in dirs + [idx_dir]:
        d.mkdir()
    layout = [f"-dir={dirs[0]},{dirs[1]}", "-max=8,8", f"-dir.idx={idx_dir}"]
    rng = random.Random(11)
    c = Cluster(tmp_path)
    blobs = {}
    try:
        c.start_master()
        go = c.start_go_volume(dirs[0], extra=layout)  # the later -dir wins over the harness default
        for i in range(40):
            ttl = "1m" if i % 2 else ""
            fid, _ = assign(c.master, ttl=ttl or None)
            body = rng.randbytes(rng.randint(1, 5000))
            up = requests.post(f"{go.url}/{fid}", params={"ttl": ttl} if ttl else {}, files={"file": (f"t{i}.bin", body)}, timeout=10)
            assert up.status_code == 201, up.text
            assert requests.get(f"{go.url}/{fid}", timeout=10).status_code == 200
            blobs[fid] = body
        # Go counts a needle's TTL from its append time: wait the minute out for
        # the last one written, so every 1m needle is expired for both servers.
        time.sleep(62)
        blobs = {fid: (body, requests.get(f"{go.url}/{fid}", timeout=10).status_code) for fid, body in blobs.items()}
        go_status = requests.get(go.url + "/status", timeout=10).json()
        c.stop_all()
    finally:
        c.stop_all()

    assert any(f.suffix == ".dat" for f in dirs[0].iterdir()) and any(f.suffix == ".dat" for f in dirs[1].iterdir())
    assert any(f.suffix == ".idx" for f in idx_dir.iterdir()) and not any(f.suffix == ".idx" for d in dirs for f in d.iterdir())
    expired = [f for f, (_, st) in blobs.items() if st == 404]
    assert expired, "Go expired nothing: the TTL case did not happen"

    c2 = Cluster(tmp_path / "kelp")
    (tmp_path / "kelp").mkdir()
    try:
        kelp = c2.start_kelp(dirs[0], extra=layout)
        for fid, (body, go_code) in blobs.items():
            r = requests.get(f"{kelp.url}/{fid}", timeout=10)
            assert r.status_code == go_code, (fid, go_code, r.status_code)
            if go_code == 200:
                assert r.content == body
        kelp_status = requests.get(kelp.url + "/status", timeout=10).json()
        by_id = {v["Id"]: v for v in kelp_status["Volumes"]}
        for v in go_status["Volumes"]:
            k = by_id[v["Id"]]
            for key in ("Collection", "FileCount", "DeleteCount", "Size", "Ttl", "ReplicaPlacement", "ReadOnly", "Version"):
                assert k[key] == v[key], (v["Id"], key, k[key], v[key])
        assert sorted(d["dir"] for d in kelp_status["DiskStatuses"]) == sorted(d["dir"] for d in go_status["DiskStatuses"])
    finally:
        c2.stop_all()
