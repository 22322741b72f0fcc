"""/status against Go 4.48: the same keys in the same order, the same disk
types (absent or "" for hard drives), ReadOnlyCanDelete, the .dat file's
modification time as ModifiedAtSecond, and no JSONP wrapping for ?callback=."""
import json
import os
import random

import pytest
import requests

from conftest import wait_http
from grpc_stubs import call, vs_pb2, volume_stub

DISK_FIGURES = {"all", "used", "free", "percent_free", "percent_used"}


def start_both(cluster, tmp_path, disk):
    cluster.start_master()
    extra = [f"-disk={disk}"] if disk else []
    (tmp_path / "go").mkdir()
    go = cluster.start_go_volume(tmp_path / "go", extra=extra)
    kelp = cluster.start_kelp(tmp_path / "kelp", extra=extra)
    wait_http(kelp.url + "/healthz", timeout=30)
    return [("go", go, tmp_path / "go"), ("kelp", kelp, tmp_path / "kelp")]


def prepare(srv, disk):
    stub = volume_stub(srv.port)
    for vid, collection, replication, ttl in ((31, "", "000", ""), (32, "pics", "001", "3d"), (33, "", "010", "")):
        code, details, _ = call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(
            volume_id=vid, collection=collection, replication=replication, ttl=ttl, version=3, disk_type=disk))
        assert code == "OK", details
    rng = random.Random(31)  # incompressible, so both servers store the same sizes
    for key in (1, 2, 3):
        r = requests.put(f"{srv.url}/31,{key:x}1a2b3c4d?ts=1700000000", data=rng.randbytes(100 * key), timeout=5)
        assert r.status_code == 201, r.text
    assert requests.delete(f"{srv.url}/31,21a2b3c4d", timeout=5).status_code == 202
    assert call(stub.VolumeMarkReadonly, vs_pb2.VolumeMarkReadonlyRequest(volume_id=33, persist=True))[0] == "OK"


def dat_mtime(d, vid):
    (dat,) = [p for p in d.iterdir() if p.suffix == ".dat" and p.stem.rpartition("_")[2] == str(vid)]
    return int(os.stat(dat).st_mtime)


def comparable(j, d):
    """The answer without what differs by machine: disk figures, paths, the version."""
    disks = [[(k, "N" if k in DISK_FIGURES else v) for k, v in s.items() if k != "dir"] for s in j["DiskStatuses"]]
    vols = []
    for v in sorted(j["Volumes"], key=lambda v: v["Id"]):
        assert v["ModifiedAtSecond"] == dat_mtime(d, v["Id"]), (d, v)
        vols.append([(k, "T" if k == "ModifiedAtSecond" else x) for k, x in v.items()])
    return list(j), disks, vols


@pytest.mark.parametrize("disk", ["", "ssd"])
def test_status_answers_like_go(cluster, tmp_path, disk):
    servers = start_both(cluster, tmp_path, disk)
    answers = []
    for name, srv, d in servers:
        prepare(srv, disk)
        plain = requests.get(srv.url + "/status", timeout=5)
        jsonp = requests.get(srv.url + "/status", params={"callback": "cb"}, timeout=5)
        assert plain.status_code == jsonp.status_code == 200, name
        assert jsonp.text.startswith("{"), (name, jsonp.text[:40])
        assert plain.headers["Content-Type"] == jsonp.headers["Content-Type"], name
        answers.append((name, plain.headers["Content-Type"], comparable(plain.json(), d), comparable(jsonp.json(), d)))
    (_, go_type, go_plain, go_jsonp), (_, kelp_type, kelp_plain, kelp_jsonp) = answers
    assert go_type == kelp_type
    assert go_plain == kelp_plain, f"\n go:   {go_plain}\n kelp: {kelp_plain}"
    assert go_jsonp == kelp_jsonp


def go_float32_json(x):
    """encoding/json's text for float32(x): the fewest digits that read back as the same float32."""
    import struct
    from decimal import Decimal
    f32 = struct.unpack("f", struct.pack("f", x))[0]
    for digits in range(1, 10):
        text = f"{f32:.{digits - 1}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == f32:
            break
    return format(Decimal(text), "f")


def test_status_disk_figures_are_gos(cluster, tmp_path):
    """free is what an unprivileged writer may use (statfs f_bavail), used is
    all - free, the percentages are float32s in encoding/json's shortest form;
    VolumeServerStatus reports the same figures. Both data directories share one
    file system, whose free space other writers may change between the calls."""
    slack = 256 << 20
    servers = start_both(cluster, tmp_path, "")
    before = os.statvfs(tmp_path)
    answers = {}
    for name, srv, d in servers:
        text = requests.get(srv.url + "/status", timeout=5).text
        (disk,) = json.loads(text)["DiskStatuses"]
        answers[name] = disk
        assert disk["used"] == disk["all"] - disk["free"], (name, disk)
        for key, part in (("percent_free", disk["free"]), ("percent_used", disk["used"])):
            expected = go_float32_json(part / disk["all"] * 100)
            assert f'"{key}":{expected}' in text, (name, key, expected, text[:300])
    after = os.statvfs(tmp_path)
    available = sorted(s.f_bavail * s.f_frsize for s in (before, after))
    for name, disk in answers.items():
        assert available[0] - slack <= disk["free"] <= available[1] + slack, (name, disk, available)
    assert abs(answers["go"]["free"] - answers["kelp"]["free"]) <= slack, answers
    kelp = servers[1][1]
    code, details, status = call(volume_stub(kelp.port).VolumeServerStatus, vs_pb2.VolumeServerStatusRequest())
    assert code == "OK", details
    (grpc_disk,) = status.disk_statuses
    assert grpc_disk.used == grpc_disk.all - grpc_disk.free
    assert abs(grpc_disk.free - answers["kelp"]["free"]) <= slack, (grpc_disk, answers["kelp"])
