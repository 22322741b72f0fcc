"""kelp behind an unmodified Go master: volumes are created, listed, marked,
deleted and written through the master's own tools, and the membership
survives restarts of either side."""
import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import WEED, assign, free_port, wait_http


def shell(cluster, commands, timeout=60):
    """Runs `weed shell` commands against the test master; returns its output."""
    r = subprocess.run([WEED, "shell", f"-master=127.0.0.1:{cluster.master_port}"], input=commands + "\nexit\n",
                       capture_output=True, text=True, timeout=timeout)
    return r.stdout + r.stderr


def volume_list(cluster, node):
    """{vid: {field: value}} for `node` as `weed shell volume.list` shows it."""
    out = shell(cluster, "volume.list")
    vols = {}
    for m in re.finditer(r"volume Id:(\d+), (.*)", out):
        fields = dict(kv.split(":", 1) for kv in m.group(2).strip().rstrip(" ").split(", ") if ":" in kv)
        vols[int(m.group(1))] = fields
    assert node in out or not vols, out
    return vols


def wait_until(fn, timeout=30.0, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {last}")


def dir_volumes(d):
    return sorted(p.name for p in Path(d).iterdir() if p.suffix in (".dat", ".idx", ".vif"))


def lookup(cluster, vid):
    r = requests.get(f"{cluster.master}/dir/lookup", params={"volumeId": vid}, timeout=5)
    return r.json()


def start_registered_kelp(cluster, d, **kw):
    k = cluster.start_kelp(d, **kw)
    wait_http(k.url + "/healthz", timeout=30)
    return k


def test_healthz_follows_registration(cluster, tmp_path):
    # No master at the configured address: not healthy, as Go's volume server.
    lone = cluster.start_kelp(tmp_path / "lone")
    time.sleep(1.5)
    assert requests.get(lone.url + "/healthz", timeout=5).status_code == 503
    assert requests.get(lone.url + "/status", timeout=5).status_code == 200
    lone.stop()
    cluster.procs.remove(lone)
    cluster.start_master()
    k = cluster.start_kelp(tmp_path / "v")
    wait_http(k.url + "/healthz", timeout=30)


def test_master_grows_volumes_and_weed_upload_download(cluster, tmp_path):
    cluster.start_master()
    d = tmp_path / "v"
    k = start_registered_kelp(cluster, d)
    r = requests.get(f"{cluster.master}/vol/grow", params={"count": 3, "collection": "grown"}, timeout=30)
    assert r.status_code == 200, r.text
    grown = [n for n in dir_volumes(d) if n.startswith("grown_") and n.endswith(".dat")]
    assert len(grown) == 3, dir_volumes(d)
    status = requests.get(k.url + "/status", timeout=5).json()
    assert sorted(v["Collection"] for v in status["Volumes"]) == ["grown"] * 3

    # On-demand growth through /dir/assign for a new collection.
    fid, url = assign(cluster.master, collection="ondemand")
    assert url.endswith(f":{k.port}")
    assert any(n.startswith("ondemand_") for n in dir_volumes(d))

    # weed upload / weed download of a few hundred files, byte for byte. (weed
    # download writes no file for an empty blob, whichever server holds it.)
    rng = random.Random(7)
    src = tmp_path / "src"
    src.mkdir()
    files = []
    for i in range(240):
        p = src / f"f{i:03d}.bin"
        p.write_bytes(rng.randbytes(rng.choice([1, 100, 1024, 5000, 70000, 300000])))
        files.append(p)
    out = subprocess.run([WEED, "upload", f"-master=127.0.0.1:{cluster.master_port}", *map(str, files)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout)
    assert len(results) == len(files)
    by_name = {r["fileName"]: r for r in results}
    assert all(not r.get("error") for r in results), [r for r in results if r.get("error")][:3]
    dl = tmp_path / "dl"
    dl.mkdir()
    fids = [by_name[p.name]["fid"] for p in files]
    for chunk in range(0, len(fids), 60):
        got = subprocess.run([WEED, "download", f"-server=127.0.0.1:{cluster.master_port}", f"-dir={dl}", *fids[chunk:chunk + 60]],
                             capture_output=True, text=True, timeout=300)
        assert got.returncode == 0, got.stderr[-2000:]
    for p in files:
        assert (dl / p.name).read_bytes() == p.read_bytes(), p.name

    # The master sees the files on kelp's volumes once the next pulse reports them.
    def counted():
        vols = volume_list(cluster, f"127.0.0.1:{k.port}")
        return sum(int(v["FileCount"]) for v in vols.values()) >= len(files) and vols
    vols = wait_until(counted, timeout=20, what="file counts in volume.list")
    local = {v["Id"]: v for v in requests.get(k.url + "/status", timeout=5).json()["Volumes"]}
    assert set(vols) == set(local)
    for vid, v in vols.items():
        assert int(v["FileCount"]) == local[vid]["FileCount"], (vid, v, local[vid])
        dat = d / (f"{v['Collection']}_{vid}.dat" if v.get("Collection") else f"{vid}.dat")
        assert int(v["Size"]) == dat.stat().st_size, (vid, v)


def test_shell_mark_delete_and_collection_delete(cluster, tmp_path):
    cluster.start_master()
    d = tmp_path / "v"
    k = start_registered_kelp(cluster, d)
    node = f"127.0.0.1:{k.port}"
    fid, _ = assign(cluster.master, collection="keep")
    vid = int(fid.split(",")[0])
    assert requests.post(f"{k.url}/{fid}", files={"file": ("f.bin", b"x" * 100)}, timeout=5).status_code == 201

    out = shell(cluster, f"lock\nvolume.mark -node {node} -volumeId {vid} -readonly\nunlock")
    wait_until(lambda: volume_list(cluster, node)[vid]["ReadOnly"] == "true", timeout=10, what="read-only in volume.list")
    r = requests.post(f"{k.url}/{vid},{fid.split(',')[1][:-8]}1{fid.split(',')[1][-8:]}", files={"file": ("f.bin", b"y")}, timeout=5)
    assert r.status_code == 500 and "read only" in r.json()["error"], (r.status_code, r.text, out)
    shell(cluster, f"lock\nvolume.mark -node {node} -volumeId {vid} -writable\nunlock")
    wait_until(lambda: volume_list(cluster, node)[vid]["ReadOnly"] == "false", timeout=10, what="writable in volume.list")
    assert requests.post(f"{k.url}/{fid}", files={"file": ("f.bin", b"z" * 10)}, timeout=5).status_code == 201

    # volume.delete removes the files and the master forgets the volume at once.
    fid2, _ = assign(cluster.master, collection="gone")
    vid2 = int(fid2.split(",")[0])
    out = shell(cluster, f"lock\nvolume.delete -node {node} -volumeId {vid2}\nunlock")
    assert not [n for n in dir_volumes(d) if n.startswith(f"gone_{vid2}.")], (dir_volumes(d), out)
    wait_until(lambda: vid2 not in volume_list(cluster, node), timeout=10, what="volume gone from volume.list")

    # collection.delete removes every volume of the collection, nothing else.
    out = shell(cluster, "lock\ncollection.delete -collection gone -force\nunlock")
    assert not [n for n in dir_volumes(d) if n.startswith("gone_")], (dir_volumes(d), out)
    assert [n for n in dir_volumes(d) if n.startswith("keep_")]
    wait_until(lambda: not any(v.get("Collection") == "gone" for v in volume_list(cluster, node).values()), timeout=10,
               what="collection gone from volume.list")
    assert requests.get(f"{k.url}/{fid}", timeout=5).content == b"z" * 10


def test_weed_benchmark_has_no_failures(cluster, tmp_path):
    cluster.start_master(volume_size_limit_mb=128)
    start_registered_kelp(cluster, tmp_path / "v")
    out = subprocess.run([WEED, "benchmark", f"-master=127.0.0.1:{cluster.master_port}", "-n", "20000", "-c", "16",
                          "-size", "1024", f"-list={tmp_path / 'bench.list'}"], capture_output=True, text=True, timeout=600)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    completed = [int(x) for x in re.findall(r"Completed requests:\s+(\d+)", text)]
    failed = [int(x) for x in re.findall(r"Failed requests:\s+(\d+)", text)]
    assert len(completed) == 2 and len(failed) == 2, text[-3000:]
    assert completed == [20000, 20000] and failed == [0, 0], text[-3000:]


def test_master_restart_and_kelp_restart(cluster, tmp_path):
    master = cluster.start_master()
    d = tmp_path / "v"
    k = start_registered_kelp(cluster, d)
    fid, _ = assign(cluster.master)
    vid, key = fid.split(",")
    assert requests.post(f"{k.url}/{fid}", files={"file": ("f.bin", b"before")}, timeout=5).status_code == 201

    # Master down: writes to existing volumes keep working.
    master.stop()
    cluster.procs.remove(master)
    time.sleep(1)
    other = f"{vid},{int(key[:-8], 16) + 7:x}{key[-8:]}"
    assert requests.post(f"{k.url}/{other}", files={"file": ("f.bin", b"during")}, timeout=5).status_code == 201
    wait_until(lambda: requests.get(k.url + "/healthz", timeout=5).status_code == 503, timeout=20, what="503 without master")

    # The same master comes back: kelp registers again with its full state.
    port = cluster.master_port
    from conftest import Proc
    mdir = tmp_path / "master"
    p = Proc([WEED, "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={port}", f"-mdir={mdir}", "-peers=none",
              "-volumeSizeLimitMB=64", "-defaultReplication=000"], tmp_path / "master2.log")
    cluster.procs.insert(0, p)
    wait_http(f"{cluster.master}/dir/status")
    wait_http(k.url + "/healthz", timeout=30)
    loc = wait_until(lambda: lookup(cluster, vid).get("locations"), timeout=30, what="volume known to restarted master")
    assert loc[0]["url"] == f"127.0.0.1:{k.port}"

    # kelp restarts: its volumes come back and the master points at them again.
    k.stop()
    cluster.procs.remove(k)
    wait_until(lambda: not lookup(cluster, vid).get("locations"), timeout=30, what="master dropping the stopped server")
    k2 = cluster.start_kelp(d, port=k.port)
    wait_http(k2.url + "/healthz", timeout=30)
    wait_until(lambda: lookup(cluster, vid).get("locations"), timeout=30, what="volume back on the master")
    assert requests.get(f"{k2.url}/{fid}", timeout=5).content == b"before"
    assert requests.get(f"{k2.url}/{other}", timeout=5).content == b"during"
    fid3, url3 = assign(cluster.master)
    assert requests.post(f"http://{url3}/{fid3}", files={"file": ("f.bin", b"after")}, timeout=5).status_code == 201
