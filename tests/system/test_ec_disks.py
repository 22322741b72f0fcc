"""EC volumes at start-up on a server with two disks, as Go 4.48 settles
them: shards moved to a disk without the volume's index are mounted there
against a copy of the index, and a few shards left on a disk beside the
whole .dat on the other one are removed. Each case runs on a Go server and
on kelp, and the files each leaves on each disk must agree."""
import random
import shutil

import requests

from grpc_stubs import call, vs_pb2, volume_stub
from test_ec_generate import generate
from test_vacuum import fid, restart, start

VID = 17
TOTAL = 14
OCTET = {"Content-Type": "application/octet-stream"}


def disks(tmp_path, kind):
    d0, d1 = tmp_path / kind / "d0", tmp_path / kind / "d1"
    d0.mkdir(parents=True)
    d1.mkdir()
    return d0, d1


def ec_names(d, vid=VID):
    return sorted(p.name for p in d.iterdir() if p.name.startswith(f"{vid}.") and (".ec" in p.name or p.suffix == ".vif"))


def encoded(cluster, kind, d0, d1, vid):
    srv = start(cluster, kind, f"{d0},{d1}")
    stub = volume_stub(srv.port)
    assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=vid, replication="000", version=3))[0] == "OK"
    rng = random.Random(vid)
    blobs = {key: rng.randbytes(rng.randint(1000, 60_000)) for key in range(1, 25)}
    for key, data in blobs.items():
        assert requests.post(f"{srv.url}/{fid(vid, key)}", data=data, headers=OCTET, timeout=30).status_code == 201
    code, details, _ = generate(srv, vid)
    assert code == "OK", details
    home = d0 if (d0 / f"{vid}.ec00").exists() else d1
    return srv, stub, blobs, home


def shard_ids(stub, vid):
    code, details, r = call(stub.VolumeEcShardsInfo, vs_pb2.VolumeEcShardsInfoRequest(volume_id=vid))
    return sorted(s.shard_id for s in r.ec_shard_infos) if code == "OK" else details


def test_shards_moved_to_a_disk_without_the_index_are_mounted_there(cluster, tmp_path):
    cluster.start_master(volume_size_limit_mb=64)
    seen = {}
    for kind in ("go", "kelp"):
        d0, d1 = disks(tmp_path, kind)
        srv, stub, blobs, home = encoded(cluster, kind, d0, d1, VID)
        other = d1 if home == d0 else d0
        assert call(stub.VolumeEcShardsMount, vs_pb2.VolumeEcShardsMountRequest(volume_id=VID, shard_ids=list(range(TOTAL))))[0] == "OK"
        assert call(stub.VolumeDelete, vs_pb2.VolumeDeleteRequest(volume_id=VID))[0] == "OK"
        srv.stop()
        for s in range(7):
            shutil.move(home / f"{VID}.ec{s:02d}", other / f"{VID}.ec{s:02d}")
        srv = restart(cluster, kind, srv, f"{d0},{d1}")
        stub = volume_stub(srv.port)
        assert shard_ids(stub, VID) == list(range(TOTAL)), kind
        for key, data in blobs.items():
            r = requests.get(f"{srv.url}/{fid(VID, key)}", timeout=30)
            assert r.status_code == 200 and r.content == data, (kind, key)
        seen[kind] = (ec_names(home), ec_names(other))
        assert f"{VID}.ecx" in seen[kind][1], (kind, seen[kind])
        srv.stop()
        cluster.procs.remove(srv)
    assert seen["kelp"] == seen["go"], seen


def test_a_few_shards_beside_a_whole_dat_on_the_other_disk_are_removed(cluster, tmp_path):
    cluster.start_master(volume_size_limit_mb=64)
    seen = {}
    for kind in ("go", "kelp"):
        d0, d1 = disks(tmp_path, kind)
        srv, stub, blobs, home = encoded(cluster, kind, d0, d1, VID)
        other = d1 if home == d0 else d0
        srv.stop()
        # One shard and the index planted on the other disk; the encode's own files go from the .dat's disk.
        for name in (f"{VID}.ec01", f"{VID}.ecx", f"{VID}.ecj", f"{VID}.vif"):
            if (home / name).exists():
                shutil.copy2(home / name, other / name)
        for p in home.iterdir():
            if p.name.startswith(f"{VID}.ec"):
                p.unlink()
        srv = restart(cluster, kind, srv, f"{d0},{d1}")
        stub = volume_stub(srv.port)
        seen[kind] = (ec_names(home), [n for n in ec_names(other) if n != f"{VID}.vif"], isinstance(shard_ids(stub, VID), str))
        for key, data in list(blobs.items())[:5]:
            r = requests.get(f"{srv.url}/{fid(VID, key)}", timeout=30)
            assert r.status_code == 200 and r.content == data, (kind, key)
        srv.stop()
        cluster.procs.remove(srv)
    assert seen["kelp"] == seen["go"], seen
    assert seen["kelp"][1] == [] and seen["kelp"][2], seen
