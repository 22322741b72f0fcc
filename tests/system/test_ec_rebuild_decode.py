"""Erasure coding's repair and way back: VolumeEcShardsRebuild regenerates
lost shards byte for byte (as Go 4.48 does from the same files), and
VolumeEcShardsToVolume turns the shards into a volume that kelp mounts and Go
loads, with every live blob and none of the deleted ones. A rebuild or decode
job killed with SIGKILL fails its call alone; the retry succeeds."""
import os
import random
import shutil
import signal
import threading
import time

import requests

from conftest import wait_until
from grpc_stubs import call, vs_pb2, volume_stub
from test_ec_generate import ec_job_pid, fill, generate, go_written_volume, job_pid
from test_copy import start_trusting
from test_vacuum import fid, start

VID = 9
TOTAL = 14


def shard_path(d, shard):
    return d / f"{VID}.ec{shard:02d}"


def mount(srv, shards):
    return call(volume_stub(srv.port).VolumeEcShardsMount,
                vs_pb2.VolumeEcShardsMountRequest(volume_id=VID, shard_ids=shards))


def unmount(srv, shards):
    return call(volume_stub(srv.port).VolumeEcShardsUnmount,
                vs_pb2.VolumeEcShardsUnmountRequest(volume_id=VID, shard_ids=shards))


def rebuild(srv):
    return call(volume_stub(srv.port).VolumeEcShardsRebuild, vs_pb2.VolumeEcShardsRebuildRequest(volume_id=VID), timeout=300)


def to_volume(srv):
    return call(volume_stub(srv.port).VolumeEcShardsToVolume, vs_pb2.VolumeEcShardsToVolumeRequest(volume_id=VID), timeout=300)


def encoded_pair(cluster, tmp_path, megabytes=26):
    """A Go-written volume, encoded by a Go server and by kelp from the same
    files. Returns ({kind: (server, dir)}, live blobs, deleted keys)."""
    g, live, gone = go_written_volume(cluster, tmp_path, megabytes)
    k = tmp_path / "kelp"
    k.mkdir()
    for ext in (".dat", ".idx", ".vif"):
        if (g / f"{VID}{ext}").exists():
            shutil.copy2(g / f"{VID}{ext}", k / f"{VID}{ext}")
    servers = {"go": (start(cluster, "go", g), g), "kelp": (start_trusting(cluster, "kelp", k), k)}
    for srv, _ in servers.values():
        code, details, _ = generate(srv)
        assert code == "OK", details
    return servers, live, gone


def test_rebuild_regenerates_lost_shards_as_go_does(cluster, tmp_path):
    servers, live, gone = encoded_pair(cluster, tmp_path)
    lost = [0, 3, 13]
    originals = {s: shard_path(servers["kelp"][1], s).read_bytes() for s in lost}
    for kind, (srv, d) in servers.items():
        assert mount(srv, list(range(TOTAL)))[0] == "OK", kind
        assert unmount(srv, lost)[0] == "OK", kind
        for s in lost:
            shard_path(d, s).unlink()
        # Shard 5 emptied in place is regenerated too.
        shard_path(d, 5).write_bytes(b"")
    answers = {}
    for kind, (srv, d) in servers.items():
        code, details, r = rebuild(srv)
        assert code == "OK", (kind, details)
        answers[kind] = list(r.rebuilt_shard_ids)
    assert answers["kelp"] == answers["go"] == sorted(lost + [5]), answers
    for s in lost:
        assert shard_path(servers["kelp"][1], s).read_bytes() == originals[s], s
        assert shard_path(servers["go"][1], s).read_bytes() == originals[s], s
    assert shard_path(servers["kelp"][1], 5).read_bytes() == shard_path(servers["go"][1], 5).read_bytes()
    assert not list(servers["kelp"][1].glob("*.rebuilding"))
    # Nothing lost: an empty answer. Too much lost: Go's refusal, nothing created.
    code, _, r = rebuild(servers["kelp"][0])
    assert code == "OK" and list(r.rebuilt_shard_ids) == []
    for kind, (srv, d) in servers.items():
        assert unmount(srv, list(range(TOTAL)))[0] == "OK"
        for s in range(5):
            shard_path(d, s).unlink()
    results = {kind: rebuild(srv)[:2] for kind, (srv, _) in servers.items()}
    assert results["kelp"][0] == results["go"][0] == "UNKNOWN", results
    assert results["kelp"][1] == results["go"][1].replace(str(servers["go"][1]), str(servers["kelp"][1])), results
    assert "not enough shards to rebuild" in results["kelp"][1]
    assert not shard_path(servers["kelp"][1], 0).exists()
    # An unknown volume has nothing to rebuild.
    r = call(volume_stub(servers["kelp"][0].port).VolumeEcShardsRebuild, vs_pb2.VolumeEcShardsRebuildRequest(volume_id=777))
    assert r[0] == "OK" and list(r[2].rebuilt_shard_ids) == []


def test_decode_gives_a_volume_kelp_mounts_and_go_loads(cluster, tmp_path):
    servers, live, gone = encoded_pair(cluster, tmp_path)
    kelp, d = servers["kelp"]
    stub = volume_stub(kelp.port)
    # Go's refusals first: shard 0 missing.
    assert mount(kelp, list(range(1, TOTAL)))[0] == "OK"
    code, details, _ = to_volume(kelp)
    assert (code, details) == ("UNKNOWN", f"ec volume {VID} missing shard 0")
    assert mount(kelp, [0])[0] == "OK"
    # Deletes journaled on the EC volume survive the decode.
    victims = sorted(live)[5:40:5]
    for key in victims:
        code, details, _ = call(stub.VolumeEcBlobDelete, vs_pb2.VolumeEcBlobDeleteRequest(volume_id=VID, file_key=key, version=3))
        assert code == "OK", details
        del live[key]
    assert (d / f"{VID}.ecj").stat().st_size == 8 * len(victims)
    # A delete journaled by another holder (Go) is gathered with its .ecj, as ec.decode does.
    go, g = servers["go"]
    assert mount(go, list(range(TOTAL)))[0] == "OK"
    peer_victim = sorted(live)[-1]
    code, details, _ = call(volume_stub(go.port).VolumeEcBlobDelete, vs_pb2.VolumeEcBlobDeleteRequest(volume_id=VID, file_key=peer_victim, version=3))
    assert code == "OK", details
    del live[peer_victim]
    code, details, _ = call(stub.VolumeEcShardsCopy, vs_pb2.VolumeEcShardsCopyRequest(
        volume_id=VID, copy_ecj_file=True, source_data_node=f"127.0.0.1:{go.port}.{go.port + 10000}"), timeout=60)
    assert code == "OK", details
    victims.append(peer_victim)
    assert call(stub.VolumeUnmount, vs_pb2.VolumeUnmountRequest(volume_id=VID))[0] == "OK"
    for name in (f"{VID}.dat", f"{VID}.idx"):
        (d / name).unlink()
    code, details, _ = to_volume(kelp)
    assert code == "OK", details
    assert (d / f"{VID}.ecj").stat().st_size == 0  # folded into the index
    assert call(stub.VolumeMount, vs_pb2.VolumeMountRequest(volume_id=VID))[0] == "OK"
    for key, data in live.items():
        r = requests.get(f"{kelp.url}/{fid(VID, key)}", timeout=30)
        assert r.status_code == 200 and r.content == data, (key, r.status_code)
    for key in list(gone) + victims:
        assert requests.get(f"{kelp.url}/{fid(VID, key)}", timeout=30).status_code == 404, key
    # Go loads kelp's decoded files and serves the same.
    h = tmp_path / "decoded"
    h.mkdir()
    for ext in (".dat", ".idx", ".vif"):
        shutil.copy2(d / f"{VID}{ext}", h / f"{VID}{ext}")
    reader = start(cluster, "go", h)
    for key, data in live.items():
        r = requests.get(f"{reader.url}/{fid(VID, key)}", timeout=30)
        assert r.status_code == 200 and r.content == data, (key, r.status_code)
    for key in victims:
        assert requests.get(f"{reader.url}/{fid(VID, key)}", timeout=30).status_code == 404, key


def test_decode_refuses_a_volume_with_nothing_live(cluster, tmp_path):
    cluster.start_master(volume_size_limit_mb=64)
    results = {}
    for kind in ("go", "kelp"):
        d = tmp_path / kind
        srv = start(cluster, kind, d)
        stub = volume_stub(srv.port)
        assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))[0] == "OK"
        assert requests.post(f"{srv.url}/{fid(VID, 1)}", data=b"only one", headers={"Content-Type": "application/octet-stream"}, timeout=10).status_code == 201
        assert requests.delete(f"{srv.url}/{fid(VID, 1)}", timeout=10).status_code == 202
        assert generate(srv)[0] == "OK"
        assert mount(srv, list(range(10)))[0] == "OK"
        results[kind] = to_volume(srv)[:2]
    assert results["kelp"] == results["go"] == ("FAILED_PRECONDITION", f"ec volume {VID} has no live entries"), results


def test_killed_rebuild_and_decode_jobs_fail_alone(cluster, tmp_path):
    cluster.start_master(volume_size_limit_mb=256)
    d = tmp_path / "kelp"
    # Throttled so that the jobs are still running when they are killed.
    kelp = cluster.start_kelp(d, extra=("-maintenanceMBps=2", "-compactionMBps=2"))
    stub = volume_stub(kelp.port)
    assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))[0] == "OK"
    live, _ = fill(kelp.url, random.Random(3), 24)
    assert generate(kelp)[0] == "OK"
    assert mount(kelp, list(range(TOTAL)))[0] == "OK"
    before = {s: shard_path(d, s).read_bytes() for s in range(TOTAL)}

    def killed(kind, run):
        answer = {}
        t = threading.Thread(target=lambda: answer.update(result=run()))
        t.start()
        pid = (lambda: job_pid("kelp-volume: compact job volume")) if kind == "compact" else (lambda: ec_job_pid(kind))
        assert wait_until(lambda: pid() is not None, 60, interval=0.05), f"no {kind} job appeared"
        time.sleep(0.3)
        os.kill(pid(), signal.SIGKILL)
        t.join(120)
        return answer["result"]

    assert unmount(kelp, [2, 12])[0] == "OK"
    shard_path(d, 2).unlink()
    shard_path(d, 12).unlink()
    code, details, _ = killed("rebuild", lambda: rebuild(kelp))
    assert code == "UNKNOWN" and "killed by signal 9" in details, (code, details)
    assert not shard_path(d, 2).exists() and not shard_path(d, 12).exists()
    for s in set(range(TOTAL)) - {2, 12}:
        assert shard_path(d, s).read_bytes() == before[s], s
    assert kelp.p.poll() is None
    code, details, r = rebuild(kelp)
    assert code == "OK" and list(r.rebuilt_shard_ids) == [2, 12], details
    assert shard_path(d, 2).read_bytes() == before[2] and shard_path(d, 12).read_bytes() == before[12]
    assert mount(kelp, [2, 12])[0] == "OK"

    assert call(stub.VolumeUnmount, vs_pb2.VolumeUnmountRequest(volume_id=VID))[0] == "OK"
    dat_before = (d / f"{VID}.dat").read_bytes()
    (d / f"{VID}.dat").unlink()
    (d / f"{VID}.idx").unlink()
    code, details, _ = killed("decode", lambda: to_volume(kelp))
    assert code == "UNKNOWN" and "killed by signal 9" in details, (code, details)
    assert not (d / f"{VID}.dat").exists() and not (d / f"{VID}.dat.tmp").exists()
    assert kelp.p.poll() is None
    # The offline compaction after a decode killed: as in Go, only logged; the decoded files stay uncompacted.
    code, details, _ = killed("compact", lambda: to_volume(kelp))
    assert code == "OK", details
    decoded = (d / f"{VID}.dat").read_bytes()
    assert int.from_bytes(decoded[4:6], "big") == 0 and decoded == dat_before[:len(decoded)]
    assert not list(d.glob(f"{VID}.cp*")) and not (d / f"{VID}.dat.tmp").exists()
    assert call(stub.VolumeMount, vs_pb2.VolumeMountRequest(volume_id=VID))[0] == "OK"
    for key, data in list(live.items())[:40]:
        r = requests.get(f"{kelp.url}/{fid(VID, key)}", timeout=30)
        assert r.status_code == 200 and r.content == data, key


def scrub(srv, mode, ids=()):
    return call(volume_stub(srv.port).ScrubEcVolume, vs_pb2.ScrubEcVolumeRequest(mode=mode, volume_ids=list(ids)), timeout=120)


def test_scrub_of_ec_volumes_finds_what_go_finds(cluster, tmp_path):
    INDEX, LOCAL = 1, 3
    servers, live, gone = encoded_pair(cluster, tmp_path)
    for kind, (srv, d) in servers.items():
        assert mount(srv, list(range(TOTAL)))[0] == "OK", kind

    def summary(kind, mode, ids=(VID,)):
        code, details, r = scrub(servers[kind][0], mode, ids)
        if code != "OK":
            return code, details
        return (r.total_volumes, r.total_files, list(r.broken_volume_ids),
                sorted((i.volume_id, i.shard_id) for i in r.broken_shard_infos), len(r.details) > 0)

    for mode in (INDEX, LOCAL):
        assert summary("kelp", mode) == summary("go", mode), mode
        assert summary("kelp", mode)[2] == [], mode
    assert summary("kelp", INDEX, ()) == summary("go", INDEX, ())
    assert summary("kelp", 99)[:1] == summary("go", 99)[:1] == ("UNKNOWN",)
    assert summary("kelp", INDEX, (777,)) == summary("go", INDEX, (777,))
    assert summary("kelp", INDEX, (777,))[0] == "UNKNOWN" and "EC volume id 777" in summary("kelp", INDEX, (777,))[1]

    # Shard 0 cut to one byte behind the servers' backs: LOCAL finds it.
    for kind, (srv, d) in servers.items():
        with open(shard_path(d, 0), "r+b") as f:
            f.truncate(1)
    got = {kind: summary(kind, LOCAL) for kind in servers}
    assert got["kelp"][2] == got["go"][2] == [VID], got
    assert got["kelp"][3] == got["go"][3] == [(VID, 0)], got
    assert got["kelp"][4] and got["go"][4]


def test_delete_collection_takes_its_ec_volumes(cluster, tmp_path):
    cluster.start_master(volume_size_limit_mb=64)
    for kind in ("go", "kelp"):
        d = tmp_path / kind
        srv = start(cluster, kind, d)
        stub = volume_stub(srv.port)
        code, details, _ = call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, collection="pics", replication="000", version=3))
        assert code == "OK", details
        assert requests.post(f"{srv.url}/{fid(VID, 1)}", data=b"x" * 5000, headers={"Content-Type": "application/octet-stream"},
                             timeout=10).status_code == 201
        assert generate(srv, collection="pics")[0] == "OK"
        assert call(stub.VolumeEcShardsMount, vs_pb2.VolumeEcShardsMountRequest(volume_id=VID, collection="pics",
                                                                                 shard_ids=list(range(TOTAL))))[0] == "OK"
        assert call(stub.VolumeDelete, vs_pb2.VolumeDeleteRequest(volume_id=VID))[0] == "OK"
        assert call(stub.DeleteCollection, vs_pb2.DeleteCollectionRequest(collection="pics"))[0] == "OK", kind
        code, details, _ = call(stub.VolumeEcShardsInfo, vs_pb2.VolumeEcShardsInfoRequest(volume_id=VID))
        assert (code, details) == ("UNKNOWN", f"VolumeEcShardsInfo: EC volume {VID} not found"), kind
        left = sorted(p.name for p in d.iterdir() if p.name.startswith("pics_"))
        assert not [n for n in left if ".ec" in n], (kind, left)


def test_an_expired_ec_volume_goes_with_its_files(cluster, tmp_path):
    import json
    cluster.start_master(volume_size_limit_mb=64)
    d = tmp_path / "kelp"
    kelp = start(cluster, "kelp", d)
    stub = volume_stub(kelp.port)
    assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))[0] == "OK"
    assert requests.post(f"{kelp.url}/{fid(VID, 1)}", data=b"y" * 5000, headers={"Content-Type": "application/octet-stream"},
                         timeout=10).status_code == 201
    assert generate(kelp)[0] == "OK"
    assert call(stub.VolumeDelete, vs_pb2.VolumeDeleteRequest(volume_id=VID))[0] == "OK"
    # The encode's .vif says when the EC volume expires (a TTL volume's); here, a minute ago.
    vif = json.loads((d / f"{VID}.vif").read_text())
    vif["expireAtSec"] = str(int(time.time()) - 60)
    (d / f"{VID}.vif").write_text(json.dumps(vif))
    kelp.stop()
    cluster.procs.remove(kelp)
    kelp = start(cluster, "kelp", d)
    # Mounted at start, destroyed at the first report to the master.
    assert wait_until(lambda: not list(d.glob(f"{VID}.ec*")), 30), sorted(p.name for p in d.iterdir())
    code, details, _ = call(volume_stub(kelp.port).VolumeEcShardsInfo, vs_pb2.VolumeEcShardsInfoRequest(volume_id=VID))
    assert (code, details) == ("UNKNOWN", f"VolumeEcShardsInfo: EC volume {VID} not found")
    assert requests.get(f"{kelp.url}/{fid(VID, 1)}", timeout=10).status_code == 404


def test_decode_compacts_as_go_does_and_a_staged_decode_is_adopted(cluster, tmp_path):
    from test_copy import chunk, info_msg, receive_file
    servers, live, gone = encoded_pair(cluster, tmp_path)
    decoded = {}
    for kind, (srv, d) in servers.items():
        stub = volume_stub(srv.port)
        assert mount(srv, list(range(TOTAL)))[0] == "OK"
        assert call(stub.VolumeUnmount, vs_pb2.VolumeUnmountRequest(volume_id=VID))[0] == "OK"
        before = (d / f"{VID}.dat").stat().st_size
        for ext in (".dat", ".idx"):
            (d / f"{VID}{ext}").unlink()
        code, details, _ = to_volume(srv)
        assert code == "OK", (kind, details)
        decoded[kind] = {ext: (d / f"{VID}{ext}").read_bytes() for ext in (".dat", ".idx")}
        assert len(decoded[kind][".dat"]) < before, kind  # the deleted needles' bytes are gone
        assert not list(d.glob(f"{VID}.cp*")), kind
    # Compacted offline as Go compacts it: revision 1, live needles in id order, the same bytes.
    assert decoded["kelp"][".dat"][:8] == decoded["go"][".dat"][:8]
    assert int.from_bytes(decoded["kelp"][".dat"][4:6], "big") == 1
    assert decoded["kelp"][".dat"] == decoded["go"][".dat"]
    assert decoded["kelp"][".idx"] == decoded["go"][".idx"]

    # Staged: the decoded files pushed to each server as another volume, adopted and served.
    staged = 21
    answers = {}
    for kind, (srv, d) in servers.items():
        stub = volume_stub(srv.port)
        adopt = lambda: call(stub.VolumeEcShardsToVolume, vs_pb2.VolumeEcShardsToVolumeRequest(volume_id=staged, from_staged=True,
                                                                                                 disk_type="hdd"))[:2]
        answers.setdefault("nothing", {})[kind] = adopt()
        code, _, r = receive_file(stub, [info_msg(volume_id=staged, ext=".dat", disk_type="hdd"), chunk(decoded["kelp"][".dat"])])
        assert (code, r.error) == ("OK", ""), kind
        answers.setdefault("no idx", {})[kind] = adopt()
        for ext in (".idx", ".vif"):
            content = decoded["kelp"][".idx"] if ext == ".idx" else (d / f"{VID}.vif").read_bytes()
            code, _, r = receive_file(stub, [info_msg(volume_id=staged, ext=ext, disk_type="hdd"), chunk(content)])
            assert (code, r.error) == ("OK", ""), (kind, ext)
        answers.setdefault("adopted", {})[kind] = adopt()
        answers.setdefault("again", {})[kind] = adopt()
        assert not list(d.glob(f"{staged}.*.copying")) and not (d / f"{staged}.note").exists(), kind
        for key, data in list(live.items())[:30]:
            r = requests.get(f"{srv.url}/{fid(staged, key)}", timeout=30)
            assert r.status_code == 200 and r.content == data, (kind, key)
        for key in list(gone)[:10]:
            assert requests.get(f"{srv.url}/{fid(staged, key)}", timeout=30).status_code == 404, (kind, key)
    for case, got in answers.items():
        assert got["kelp"] == got["go"], (case, got)
    assert answers["nothing"]["kelp"] == ("UNKNOWN", f"staged volume {staged}: no .dat.copying found on a hdd disk")
    assert answers["adopted"]["kelp"] == ("OK", "")
    assert answers["again"]["kelp"] == ("UNKNOWN", f"staged volume {staged} already exists on this server")
    # A collection that would name a path outside the disk is refused before any file is touched.
    kelp_stub = volume_stub(servers["kelp"][0].port)
    for call_it in (lambda: call(kelp_stub.VolumeEcShardsToVolume, vs_pb2.VolumeEcShardsToVolumeRequest(
                        volume_id=31, collection="../up", from_staged=True))[:2],
                    lambda: call(kelp_stub.VolumeEcShardsRebuild, vs_pb2.VolumeEcShardsRebuildRequest(volume_id=31, collection="../up"))[:2]):
        assert call_it() == ("UNKNOWN", 'invalid collection "../up"')
