"""Erasure-coded volumes after the encode: `weed shell` `ec.encode` on a
cluster of kelp and Go servers behind the Go master (generate, mount, the
shards balanced between the servers with VolumeEcShardsCopy, the source
deleted), the master learning every shard from kelp's heartbeats, Go servers
reading kelp's shards with VolumeEcShardRead, deletes journaled in kelp's
.ecj, and a restarted kelp mounting its shards again.

Go 4.48 is the reference: each expectation is what the same calls do on a Go
server, which the tests run side by side where they can."""
import random
import shutil
import time
from pathlib import Path

import grpc
import requests

from conftest import wait_until
from grpc_stubs import call, master_pb2, vs_pb2, volume_stub
from test_shell_maintenance import allocate, node, run_shell, server
from test_vacuum import COOKIE, fid

VID = 7
OCTET = {"Content-Type": "application/octet-stream"}
TOTAL = 14


def master_stub(cluster):

    import proto.master_pb2_grpc as master_grpc
    channel = grpc.insecure_channel(f"127.0.0.1:{cluster.master_port + 10000}")
    grpc.channel_ready_future(channel).result(timeout=20)
    return master_grpc.SeaweedStub(channel)


def ec_holders(cluster, vid):
    """{shard id: sorted server urls} as the master knows them ({} when none)."""
    code, _, r = call(master_stub(cluster).LookupEcVolume, master_pb2.LookupEcVolumeRequest(volume_id=vid))
    if code != "OK":
        return {}
    return {loc.shard_id: sorted(l.url for l in loc.locations) for loc in r.shard_id_locations if loc.locations}


def shard_files(d, vid=VID):
    return sorted(int(p.suffix[3:]) for p in Path(d).glob(f"{vid}.ec[0-9][0-9]"))


def fill(url, rng, count):
    """`count` blobs of 1-200 KB; every fourth one deleted. Returns (live, deleted)."""
    live = {}
    for key in range(1, count + 1):
        data = rng.randbytes(rng.randint(1000, 200_000))
        r = requests.post(f"{url}/{fid(VID, key)}", data=data, headers=OCTET, timeout=30)
        assert r.status_code == 201, r.text
        live[key] = data
    gone = set(range(4, count + 1, 4))
    for key in gone:
        assert requests.delete(f"{url}/{fid(VID, key)}", timeout=30).status_code == 202
        del live[key]
    return live, gone


def encoded_cluster(cluster, tmp_path):
    """Two kelp servers and a Go one; a volume written on the first kelp,
    then `ec.encode`d. Returns (dirs, servers, live, deleted) by name."""
    cluster.start_master(volume_size_limit_mb=64)
    dirs = {name: tmp_path / name for name in ("k1", "k2", "go")}
    servers = {"k1": server(cluster, "kelp", dirs["k1"]), "k2": server(cluster, "kelp", dirs["k2"]),
               "go": server(cluster, "go", dirs["go"])}
    allocate(servers["k1"], VID)
    live, gone = fill(servers["k1"].url, random.Random(7), 300)  # ~30 MB: every data shard holds needles
    out = run_shell(cluster, f"lock\nec.encode -volumeId={VID} -force\nunlock", timeout=300)
    assert "error" not in out.lower(), out
    return dirs, servers, live, gone


def test_ec_encode_spreads_kelp_shards_over_kelp_and_go_and_go_reads_them(cluster, tmp_path):
    dirs, servers, live, gone = encoded_cluster(cluster, tmp_path)
    k1, k2, go = servers["k1"], servers["k2"], servers["go"]

    # The source volume is gone; the shards are spread over all three servers.
    assert not (dirs["k1"] / f"{VID}.dat").exists()
    held = {name: shard_files(d) for name, d in dirs.items()}
    assert sorted(s for shards in held.values() for s in shards) == list(range(TOTAL)), held
    assert all(held.values()), held
    urls = {"k1": node(k1), "k2": node(k2), "go": node(go)}
    want = {s: [urls[name]] for name, shards in held.items() for s in shards}
    assert wait_until(lambda: ec_holders(cluster, VID) == want, 30), str({s: (ec_holders(cluster, VID).get(s), w) for s, w in want.items() if ec_holders(cluster, VID).get(s) != w})
    for name in ("k1", "k2"):
        d = dirs[name]
        assert (d / f"{VID}.ecx").exists() and (d / f"{VID}.ecj").exists() and (d / f"{VID}.vif").exists(), name

    # Every holder reports the same config; kelp's info agrees with Go's.
    infos = {}
    for name, srv in (("k1", k1), ("k2", k2), ("go", go)):
        code, details, r = call(volume_stub(srv.port).VolumeEcShardsInfo, vs_pb2.VolumeEcShardsInfoRequest(volume_id=VID))
        assert code == "OK", (name, details)
        assert sorted(i.shard_id for i in r.ec_shard_infos) == held[name]
        infos[name] = (r.file_count, r.file_deleted_count, r.volume_size, r.ec_shard_config.block_size,
                       r.ec_shard_config.encode_ts_ns)
    assert infos["k1"] == infos["k2"] == infos["go"], infos
    assert infos["go"][0] == len(live)

    # Every server reads every blob: Go mostly from kelp's shards, kelp from
    # its own, the other kelp's and Go's.
    for srv in (go, k1, k2):
        for key, data in live.items():
            r = requests.get(f"{srv.url}/{fid(VID, key)}", timeout=30)
            assert r.status_code == 200 and r.content == data, (srv.url, key, r.status_code)
        for key in gone:
            assert requests.get(f"{srv.url}/{fid(VID, key)}", timeout=30).status_code == 404, (srv.url, key)
        # A wrong cookie is a 404, as on a regular volume.
        key = next(iter(live))
        assert requests.get(f"{srv.url}/{VID},{key:x}deadbeef", timeout=30).status_code == 404

    # Deletes through Go are journaled by the primary shard's holder (kelp
    # for most needles) and seen by reads through Go afterwards.
    # Deletes through Go and through kelp (alternately) are journaled by the
    # primary shard's holder and seen by reads everywhere afterwards.
    victims = sorted(live)[::10]
    for i, key in enumerate(victims):
        via = (go, k1)[i % 2]
        r = requests.delete(f"{via.url}/{fid(VID, key)}", timeout=30)
        assert r.status_code == 202, (via.url, key, r.status_code, r.text)
        assert r.json()["size"] > len(live[key]), r.text  # the record's length on disk
        del live[key]
    # Go's answers for what cannot be deleted (already deleted: 404; not in
    # the index, a wrong cookie: 500 with Go's text), from kelp as from Go.
    for path in (fid(VID, victims[0]), fid(VID, 999_999), f"{VID},{sorted(live)[1]:x}deadbeef"):
        answers = [requests.delete(f"{srv.url}/{path}", timeout=30) for srv in (go, k2)]
        assert (answers[0].status_code, answers[0].json()) == (answers[1].status_code, answers[1].json()), path
    # Exactly one holder journals each delete, kelp's among them.
    journaled = {name: (dirs[name] / f"{VID}.ecj").stat().st_size // 8 for name in dirs}
    assert sum(journaled.values()) == len(victims) and journaled["k1"] + journaled["k2"] > 0, journaled
    for srv in (go, k1, k2):
        for key in victims:
            assert requests.get(f"{srv.url}/{fid(VID, key)}", timeout=30).status_code == 404, (srv.url, key)

    # A restarted kelp mounts its shards again and the master hears of them.
    k2.stop()
    cluster.procs.remove(k2)
    k2 = cluster.start_kelp(dirs["k2"], port=k2.port, extra=("-volume.allowUntrustedRemoteEndpoints",))
    assert wait_until(lambda: ec_holders(cluster, VID) == want, 60), (ec_holders(cluster, VID), want)
    code, details, r = call(volume_stub(k2.port).VolumeEcShardsInfo, vs_pb2.VolumeEcShardsInfoRequest(volume_id=VID))
    assert code == "OK" and sorted(i.shard_id for i in r.ec_shard_infos) == held["k2"], details
    for key, data in list(live.items())[:30]:
        r = requests.get(f"{go.url}/{fid(VID, key)}", timeout=30)
        assert r.status_code == 200 and r.content == data, (key, r.status_code)
    for key in victims:
        assert requests.get(f"{go.url}/{fid(VID, key)}", timeout=30).status_code == 404, key


def test_ec_rebuild_and_decode_through_the_shell_on_a_mixed_cluster(cluster, tmp_path):
    dirs, servers, live, gone = encoded_cluster(cluster, tmp_path)
    go = servers["go"]
    # A new, empty kelp server: ec.balance moves shards onto it.
    dirs["k3"] = tmp_path / "k3"
    servers["k3"] = server(cluster, "kelp", dirs["k3"])
    out = run_shell(cluster, "lock\nec.balance -apply\nunlock", timeout=300)
    assert "error" not in out.lower(), out
    held = {name: shard_files(d) for name, d in dirs.items()}
    assert held["k3"] and sorted(s for shards in held.values() for s in shards) == list(range(TOTAL)), held
    urls = {name: node(srv) for name, srv in servers.items()}
    want = {s: [urls[name]] for name, shards in held.items() for s in shards}
    assert wait_until(lambda: ec_holders(cluster, VID) == want, 30), ec_holders(cluster, VID)
    for key, data in list(live.items())[:60]:
        r = requests.get(f"{servers['k3'].url}/{fid(VID, key)}", timeout=30)
        assert r.status_code == 200 and r.content == data, (key, r.status_code)
    # Two shards of a kelp server are lost.
    lost = shard_files(dirs["k1"])[:2]
    originals = {s: (dirs["k1"] / f"{VID}.ec{s:02d}").read_bytes() for s in lost}
    stub = volume_stub(servers["k1"].port)
    assert call(stub.VolumeEcShardsUnmount, vs_pb2.VolumeEcShardsUnmountRequest(volume_id=VID, shard_ids=lost))[0] == "OK"
    code, details, _ = call(stub.VolumeEcShardsDelete, vs_pb2.VolumeEcShardsDeleteRequest(volume_id=VID, shard_ids=lost))
    assert code == "OK", details
    assert not set(lost) & set(shard_files(dirs["k1"]))
    assert wait_until(lambda: not set(lost) & set(ec_holders(cluster, VID)), 30), ec_holders(cluster, VID)

    out = run_shell(cluster, "lock\nec.rebuild -apply\nunlock", timeout=300)
    assert "error" not in out.lower(), out
    assert wait_until(lambda: sorted(ec_holders(cluster, VID)) == list(range(TOTAL)), 30), ec_holders(cluster, VID)
    held = {name: shard_files(d) for name, d in dirs.items()}
    assert sorted(s for shards in held.values() for s in shards) == list(range(TOTAL)), held
    for s in lost:  # rebuilt byte for byte, wherever the shell put them
        where = [d for d in dirs.values() if (d / f"{VID}.ec{s:02d}").exists()]
        assert len(where) == 1 and (where[0] / f"{VID}.ec{s:02d}").read_bytes() == originals[s], s
    for srv in servers.values():
        for key, data in live.items():
            r = requests.get(f"{srv.url}/{fid(VID, key)}", timeout=30)
            assert r.status_code == 200 and r.content == data, (srv.url, key, r.status_code)

    out = run_shell(cluster, f"lock\nec.decode -volumeId={VID}\nunlock", timeout=300)
    assert "error" not in out.lower(), out
    assert wait_until(lambda: ec_holders(cluster, VID) == {}, 30), ec_holders(cluster, VID)
    holders = [name for name, d in dirs.items() if (d / f"{VID}.dat").exists()]
    assert len(holders) == 1, holders
    assert not any(shard_files(d) for d in dirs.values())
    srv = servers[holders[0]]
    for key, data in live.items():
        r = requests.get(f"{srv.url}/{fid(VID, key)}", timeout=30)
        assert r.status_code == 200 and r.content == data, (holders, key, r.status_code)
    for key in gone:
        assert requests.get(f"{srv.url}/{fid(VID, key)}", timeout=30).status_code == 404, key
    assert urls[holders[0]] in requests.get(f"{cluster.master}/dir/lookup", params={"volumeId": VID}, timeout=10).text


def test_kelp_serves_go_s_shards_and_reads_through_lost_ones(cluster, tmp_path):
    from test_ec_generate import generate, go_written_volume
    from test_vacuum import start
    g, live, gone = go_written_volume(cluster, tmp_path, 26)
    go = start(cluster, "go", g)
    code, details, _ = call(volume_stub(go.port).VolumeEcShardsGenerate, vs_pb2.VolumeEcShardsGenerateRequest(volume_id=9), timeout=300)
    assert code == "OK", details
    go.stop()
    cluster.procs.remove(go)
    # kelp takes Go's EC files (no .dat) and mounts them at start.
    k = tmp_path / "kelp"
    k.mkdir()
    for p in g.iterdir():
        if p.suffix.startswith(".ec") or p.suffix == ".vif":
            shutil.copy2(p, k / p.name)
    kelp = cluster.start_kelp(k)
    assert wait_until(lambda: sorted(ec_holders(cluster, 9)) == list(range(TOTAL)), 30), ec_holders(cluster, 9)
    for key, data in live.items():
        r = requests.get(f"{kelp.url}/{9},{key:x}{COOKIE:08x}", timeout=30)
        assert r.status_code == 200 and r.content == data, (key, r.status_code)
    for key in gone:
        assert requests.get(f"{kelp.url}/{9},{key:x}{COOKIE:08x}", timeout=30).status_code == 404, key
    # VolumeNeedleStatus from the shards.
    stub = volume_stub(kelp.port)
    key = next(iter(live))
    code, details, r = call(stub.VolumeNeedleStatus, vs_pb2.VolumeNeedleStatusRequest(volume_id=9, needle_id=key))
    assert code == "OK" and (r.needle_id, r.cookie) == (key, COOKIE) and r.size >= len(live[key]), details
    assert call(stub.VolumeNeedleStatus, vs_pb2.VolumeNeedleStatusRequest(volume_id=9, needle_id=999_999))[:2] == \
        ("NOT_FOUND", "needle not found 999999")  # Go 4.48's answer (test_ec_batch_delete.py compares)

    # Four data shards lost: every read is rebuilt from the other ten.
    lost = [0, 2, 5, 7]
    assert call(stub.VolumeEcShardsUnmount, vs_pb2.VolumeEcShardsUnmountRequest(volume_id=9, shard_ids=lost))[0] == "OK"
    assert call(stub.VolumeEcShardsDelete, vs_pb2.VolumeEcShardsDeleteRequest(volume_id=9, shard_ids=lost))[0] == "OK"
    assert not (k / "9.ec00").exists()
    assert wait_until(lambda: sorted(ec_holders(cluster, 9)) == sorted(set(range(TOTAL)) - set(lost)), 30), ec_holders(cluster, 9)
    for key, data in live.items():
        r = requests.get(f"{kelp.url}/{9},{key:x}{COOKIE:08x}", timeout=30)
        assert r.status_code == 200 and r.content == data, (key, r.status_code)
    for key in gone:
        assert requests.get(f"{kelp.url}/{9},{key:x}{COOKIE:08x}", timeout=30).status_code == 404, key
    # A fifth: not enough shards left, the read fails (500) and nothing else does.
    assert call(stub.VolumeEcShardsUnmount, vs_pb2.VolumeEcShardsUnmountRequest(volume_id=9, shard_ids=[1]))[0] == "OK"
    assert wait_until(lambda: 1 not in ec_holders(cluster, 9), 30)
    readable = 0
    for key in list(live)[:40]:
        r = requests.get(f"{kelp.url}/{9},{key:x}{COOKIE:08x}", timeout=30)
        assert r.status_code in (200, 500), r.status_code
        readable += r.status_code == 200
        if r.status_code == 200:
            assert r.content == live[key]
    assert readable < 40
    assert kelp.p.poll() is None
