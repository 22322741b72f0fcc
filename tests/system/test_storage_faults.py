"""kelp's storage under injected disk faults, checked end to end.

1. Every volume the storage fault and crash unit tests leave behind (a failed
   or torn append or delete at each step, a crash at each step) is loaded by
   the Go volume server, which serves exactly the needles the test expects to
   be live and answers 404 for the ones that must be absent.
2. Over HTTP, a failed `.idx` write (ENOSPC) fails that one upload with a 500
   and a JSON error; the uploads before and after it succeed and read back
   byte-identical, from kelp and afterwards from the Go server, and the failed
   one is not found.
3. A failed fsync of a `.dat` fails the `fsync=true` upload with a 500 and
   turns that volume read-only for good: later writes to it are refused and
   `/status` shows it ReadOnly, while the server's other volumes take writes.

The test build of kelp-volume arms its fault-injecting file system from
$KELP_FAULTS ("op:pathpart[:key=value...]" rules separated by ';').
"""
import os
import random
import shutil
import subprocess
from pathlib import Path

import requests

from conftest import KELP_BIN, Cluster, assign, wait_http


def read_expectations(d):
    """(live, absent) of one fault directory: {fid: content} and [fid]."""
    live, absent = {}, []
    for line in (d / "expect.txt").read_text().split("\n"):
        if not line:
            continue
        kind, rest = line.split(" ", 1)
        if kind == "live":
            fid, content = rest.split(" ", 1)  # content keeps its trailing space
            live[fid] = content.encode()
        else:
            assert kind == "absent", line
            absent.append(rest)
    return live, absent


def renumber(src, dst, new_vid):
    """Copies the one volume of `src` into `dst` under volume id `new_vid`;
    returns the old id. Only the file names carry the volume id."""
    dst.mkdir(parents=True)
    old = {p.stem for p in src.iterdir() if p.suffix in (".dat", ".idx", ".vif")}
    assert len(old) == 1, f"{src}: expected one volume, found {sorted(old)}"
    old_vid = old.pop()
    for p in src.iterdir():
        if p.stem == old_vid and p.suffix in (".dat", ".idx", ".vif"):
            shutil.copyfile(p, dst / f"{new_vid}{p.suffix}")
    return int(old_vid)


def with_vid(fid, vid):
    return f"{vid},{fid.split(',', 1)[1]}"


def test_go_serves_every_volume_the_fault_and_crash_tests_leave(tmp_path):
    out = tmp_path / "fault-out"
    out.mkdir()
    env = dict(os.environ, KELP_FAULT_OUT=str(out), ASAN_OPTIONS="detect_leaks=0")
    r = subprocess.run([str(KELP_BIN / "unit-tests"), "-tc=fault matrix*,crash during*"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]

    cases = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(cases) >= 20, [p.name for p in cases]

    # One Go server loads them all: each case in a -dir of its own, its volume
    # renumbered so that the ids are unique.
    dirs, expected = [], {}
    for i, case in enumerate(cases, start=1):
        d = tmp_path / "go" / case.name
        old_vid = renumber(case, d, i)
        live, absent = read_expectations(case)
        assert live, f"{case.name}: nothing expected to be live"
        for fid in list(live) + absent:
            assert fid.startswith(f"{old_vid},"), (case.name, fid)
        expected[case.name] = (i, {with_vid(f, i): c for f, c in live.items()}, [with_vid(f, i) for f in absent])
        dirs.append(str(d))

    c = Cluster(tmp_path)
    try:
        c.start_master()  # the Go volume server does not start serving before it reached one
        go = c.start_go_volume(",".join(dirs), extra=["-max=4"])
        loaded = {v["Id"]: v for v in requests.get(go.url + "/status", timeout=10).json()["Volumes"]}
        s = requests.Session()
        checked = 0
        for name, (vid, live, absent) in expected.items():
            assert vid in loaded, f"{name}: the Go server did not load volume {vid}:\n{go.tail()}"
            assert not loaded[vid]["ReadOnly"], f"{name}: the Go server loaded volume {vid} read-only:\n{go.tail()}"
            for fid, content in live.items():
                g = s.get(f"{go.url}/{fid}", timeout=10)
                assert g.status_code == 200, f"{name}: {fid} is {g.status_code} on Go, expected live"
                assert g.content == content, f"{name}: {fid} reads {g.content[:80]!r}, expected {content[:80]!r}"
                checked += 1
            for fid in absent:
                g = s.get(f"{go.url}/{fid}", timeout=10)
                assert g.status_code == 404, f"{name}: {fid} is {g.status_code} on Go, expected absent"
                checked += 1
        print(f"the Go server loaded {len(expected)} fault and crash volumes; {checked} needles as expected")
    finally:
        c.stop_all()


def upload(url, fid, content, method="POST", params=None):
    return requests.request(method, f"{url}/{fid}", params=params, files={"file": ("blob.bin", content)}, timeout=30)


def test_failed_index_write_fails_only_that_upload(cluster, tmp_path, monkeypatch):
    cluster.start_master()
    d = tmp_path / "v"
    # Three .idx writes go through, the fourth fails with ENOSPC, the rest go through.
    monkeypatch.setenv("KELP_FAULTS", "pwrite:.idx:skip=3:errno=ENOSPC")
    kelp = cluster.start_kelp(d)
    monkeypatch.delenv("KELP_FAULTS")
    wait_http(kelp.url + "/healthz", timeout=30)

    rng = random.Random(7)
    results = []  # (fid, content, status, body)
    for i in range(8):
        content = rng.randbytes(rng.choice([1, 100, 5000, 70000]))
        fid, url = assign(cluster.master)
        assert url.endswith(f":{kelp.port}"), url
        r = upload(kelp.url, fid, content)
        results.append((fid, content, r.status_code, r))
    statuses = [st for _, _, st, _ in results]
    assert statuses == [201, 201, 201, 500, 201, 201, 201, 201], statuses

    failed = results[3][3]
    assert failed.headers.get("Content-Type", "").startswith("application/json"), failed.headers
    err = failed.json()
    # Go's shape for a failed index write: the local-disk prefix, the needle, and the OS error text.
    assert err["error"].startswith("failed to write to local disk: index needle "), err
    assert err["error"].endswith(".idx: no space left on device"), err
    print(f"the upload whose .idx write failed: 500 {err}")

    good = [(fid, content) for fid, content, st, _ in results if st == 201]
    for fid, content in good:
        g = requests.get(f"{kelp.url}/{fid}", timeout=10)
        assert g.status_code == 200 and g.content == content, f"{fid}: {g.status_code}"
    assert requests.get(f"{kelp.url}/{results[3][0]}", timeout=10).status_code == 404

    assert kelp.stop() == 0, kelp.tail()
    cluster.procs.remove(kelp)
    go = cluster.start_go_volume(d)
    for fid, content in good:
        g = requests.get(f"{go.url}/{fid}", timeout=10)
        assert g.status_code == 200 and g.content == content, f"Go reads {fid}: {g.status_code}"
    assert requests.get(f"{go.url}/{results[3][0]}", timeout=10).status_code == 404
    st = requests.get(go.url + "/status", timeout=10).json()
    assert not any(v["ReadOnly"] for v in st["Volumes"]), st["Volumes"]


def volumes_of(server):
    return {v["Id"]: v for v in requests.get(server.url + "/status", timeout=10).json()["Volumes"]}


def test_failed_fsync_turns_the_volume_read_only(cluster, tmp_path, monkeypatch):
    cluster.start_master()
    d = tmp_path / "v"
    # Volumes are created (and their .dat synced) before the fault is armed.
    kelp = cluster.start_kelp(d)
    wait_http(kelp.url + "/healthz", timeout=30)
    fid, _ = assign(cluster.master)
    first = b"written before the fault"
    assert upload(kelp.url, fid, first).status_code == 201
    vid = int(fid.split(",")[0])
    assert kelp.stop() == 0, kelp.tail()
    cluster.procs.remove(kelp)
    others = sorted(int(p.stem) for p in d.glob("*.dat") if int(p.stem) != vid)
    assert others, f"only volume {vid} in {d}"

    monkeypatch.setenv("KELP_FAULTS", "fdatasync:.dat:errno=EIO")
    kelp = cluster.start_kelp(d)
    monkeypatch.delenv("KELP_FAULTS")
    assert not volumes_of(kelp)[vid]["ReadOnly"]

    cookie = 0x5a5a0001
    r = upload(kelp.url, f"{vid},{0x100001:x}{cookie:08x}", b"synced write", method="PUT", params={"fsync": "true"})
    assert r.status_code == 500, (r.status_code, r.text)
    print(f"fsync=true upload after a failed fdatasync: {r.status_code} {r.text}")

    # From now on the volume refuses writes; its earlier data is still served.
    r = upload(kelp.url, f"{vid},{0x100002:x}{cookie:08x}", b"plain write")
    assert not 200 <= r.status_code < 300, (r.status_code, r.text)
    print(f"plain upload to the volume afterwards: {r.status_code} {r.text}")
    vols = volumes_of(kelp)
    assert vols[vid]["ReadOnly"] is True, vols[vid]
    assert requests.get(f"{kelp.url}/{fid}", timeout=10).content == first

    # Only that volume: another one takes writes (the rule fired once).
    other = others[0]
    assert vols[other]["ReadOnly"] is False, vols[other]
    r = upload(kelp.url, f"{other},{0x100003:x}{cookie:08x}", b"another volume", params={"fsync": "true"})
    assert r.status_code == 201, (r.status_code, r.text)
    assert requests.get(f"{kelp.url}/{other},{0x100003:x}{cookie:08x}", timeout=10).content == b"another volume"
    assert "is read-only from now on" in Path(kelp.log_path).read_text(errors="replace")
