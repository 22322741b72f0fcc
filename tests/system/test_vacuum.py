"""Volume vacuum end to end: VacuumVolumeCheck, VacuumVolumeCompact (server
stream), VacuumVolumeCommit and VacuumVolumeCleanup (docs/vacuum.md).

Every test runs once against the Go volume server and once against kelp, with
the same expectations, except where docs/vacuum.md §10 makes kelp differ on
purpose (said where it happens). Tests that need a second server (a reference
ratio, interop, byte-for-byte compaction) always use Go as the reference, so
their [go] case checks Go against itself and their [kelp] case checks kelp
against Go.
"""
import os
import random
import shutil
import struct
import subprocess
import time

import pytest
import requests

from conftest import WEED, fid_on, wait_until
from grpc_stubs import call, vs_pb2, volume_stub

KINDS = ("go", "kelp")
VID = 41
COOKIE = 0x5eed1234
IDX_ROW = struct.Struct(">QIBi")  # key, offset (low 4 bytes, units of 8), 5th offset byte, size: the 5-byte build
LEFTOVER_SUFFIXES = (".cpd", ".cpx", ".cpc", ".cpldb")


# ---- servers ----

def start(cluster, kind, d, port=None):
    if kind == "go":
        return cluster.start_go_volume(d, port=port, extra=("-preStopSeconds=0",))
    return cluster.start_kelp(d, port=port)


def stop(cluster, srv):
    srv.stop()
    cluster.procs.remove(srv)


def restart(cluster, kind, srv, d):
    stop(cluster, srv)
    return start(cluster, kind, d, port=srv.port)


def with_volume(cluster, kind, d, vid=VID):
    """A master, one server of `kind` on `d`, and an empty volume `vid` on it."""
    if not cluster.master_port:
        cluster.start_master()
    srv = start(cluster, kind, d)
    stub = volume_stub(srv.port)
    code, details, _ = call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=vid, replication="000", version=3))
    assert code == "OK", (kind, details)
    return srv, stub


# ---- blobs ----

def fid(vid, key):
    return f"{vid},{key:x}{COOKIE:08x}"


def make_blob(rng, i):
    """1-100 KB: every fourth one compressible text (stored gzipped), the rest random bytes."""
    size = rng.randint(1000, 100_000)
    if i % 4 == 0:
        return (b"vacuum compaction needle superblock revision " * (size // 45 + 1))[:size]
    return rng.randbytes(size)


def blob_name(i):
    return f"t{i:03d}.txt" if i % 4 == 0 else f"b{i:03d}.bin"


def upload(url, vid, key, data, name=None, headers=None, params=None):
    r = requests.post(f"{url}/{fid(vid, key)}", files={"file": (name or blob_name(key), data)}, headers=headers,
                      params=params, timeout=30)
    assert r.status_code == 201, (url, key, r.status_code, r.text)
    return r.json()


def delete(url, vid, key):
    r = requests.delete(f"{url}/{fid(vid, key)}", timeout=30)
    assert r.status_code == 202, (url, key, r.status_code, r.text)


def fill(url, vid, rng, n=30):
    """n blobs, keys 1..n; then every fifth overwritten and every third deleted.
    Returns (live {key: bytes}, deleted keys)."""
    live = {}
    for key in range(1, n + 1):
        live[key] = make_blob(rng, key)
        upload(url, vid, key, live[key])
    for key in range(2, n + 1, 5):
        live[key] = make_blob(rng, key)
        upload(url, vid, key, live[key])
    gone = set(range(1, n + 1, 3))
    for key in sorted(gone):
        delete(url, vid, key)
        del live[key]
    return live, gone


def assert_blobs(url, vid, live, gone, what=""):
    for key, data in live.items():
        r = requests.get(f"{url}/{fid(vid, key)}", timeout=30)
        assert r.status_code == 200 and r.content == data, (what, key, r.status_code, len(r.content), len(data))
    for key in gone:
        r = requests.get(f"{url}/{fid(vid, key)}", timeout=30)
        assert r.status_code == 404, (what, key, r.status_code)


# ---- files and RPCs ----

def idx_rows(path):
    """[(key, byte offset, size)] of an .idx/.cpx file, in order; a tombstone's size is -1."""
    raw = path.read_bytes()
    assert len(raw) % IDX_ROW.size == 0, (path, len(raw))
    return [(k, ((hi << 32) | lo) * 8, s) for k, lo, hi, s in (IDX_ROW.unpack_from(raw, i) for i in range(0, len(raw), IDX_ROW.size))]


def revision_on_disk(path):
    """The superblock's compaction revision: bytes 4-5, big-endian."""
    return struct.unpack(">H", path.read_bytes()[4:6])[0]


def leftovers(d):
    return sorted(p.name for p in d.iterdir() if p.suffix in LEFTOVER_SUFFIXES)


def snapshot(d, vid, exts=(".dat", ".idx")):
    return {ext: (d / f"{vid}{ext}").read_bytes() for ext in exts}


def check(stub, vid):
    code, details, r = call(stub.VacuumVolumeCheck, vs_pb2.VacuumVolumeCheckRequest(volume_id=vid))
    assert code == "OK", details
    return r.garbage_ratio


def compact(stub, vid):
    """(code, details, the stream's messages) for one Compact, read to its end."""
    return call(lambda req, timeout: list(stub.VacuumVolumeCompact(req, timeout=timeout)),
                vs_pb2.VacuumVolumeCompactRequest(volume_id=vid), timeout=60)


def commit(stub, vid):
    return call(stub.VacuumVolumeCommit, vs_pb2.VacuumVolumeCommitRequest(volume_id=vid), timeout=60)


def cleanup(stub, vid):
    return call(stub.VacuumVolumeCleanup, vs_pb2.VacuumVolumeCleanupRequest(volume_id=vid))


def sync_revision(stub, vid):
    code, details, r = call(stub.VolumeSyncStatus, vs_pb2.VolumeSyncStatusRequest(volume_id=vid))
    assert code == "OK", details
    return r.compact_revision


def read_only(srv, vid):
    vols = requests.get(srv.url + "/status", timeout=10).json()["Volumes"]
    return {v["Id"]: v["ReadOnly"] for v in vols}[vid]


def vacuum(stub, d, vid):
    """Compact then Commit; returns the Commit response after checking what every commit must leave."""
    code, details, msgs = compact(stub, vid)
    assert code == "OK" and msgs == [], (details, msgs)  # under 128 MiB the stream carries no message
    code, details, r = commit(stub, vid)
    assert code == "OK", details
    assert not r.is_read_only and r.volume_size == (d / f"{vid}.dat").stat().st_size, (r, (d / f"{vid}.dat").stat())
    assert leftovers(d) == []
    return r


# ---- 1. texts and codes ----

@pytest.mark.parametrize("kind", KINDS)
def test_missing_volume_texts_and_codes(cluster, tmp_path, kind):
    """Go 4.48 answers NOT_FOUND, with each handler's prefix before the store's text."""
    srv, stub = with_volume(cluster, kind, tmp_path / "v")
    vid = 4242
    assert call(stub.VacuumVolumeCheck, vs_pb2.VacuumVolumeCheckRequest(volume_id=vid))[:2] == \
        ("NOT_FOUND", f"volume id {vid} is not found during check compact: volume not found")
    assert compact(stub, vid) == \
        ("NOT_FOUND", f"compact volume {vid}: volume id {vid} is not found during compact: volume not found", None)
    assert commit(stub, vid)[:2] == \
        ("NOT_FOUND", f"commit compact volume {vid}: volume id {vid} is not found during commit compact: volume not found")
    assert cleanup(stub, vid)[:2] == \
        ("NOT_FOUND", f"cleanup volume {vid}: volume id {vid} is not found during cleaning up: volume not found")
    assert check(stub, VID) == 0.0  # an empty volume has no garbage


@pytest.mark.parametrize("kind", KINDS)
def test_maintenance_mode_refuses_all_but_check(cluster, tmp_path, kind):
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, kind, d)
    live, gone = fill(srv.url, VID, random.Random(1), n=9)
    ratio = check(stub, VID)
    assert ratio > 0
    code, details, r = call(stub.SetState, vs_pb2.SetStateRequest(state=vs_pb2.VolumeServerState(maintenance=True, version=0)))
    assert code == "OK" and r.state.maintenance, details
    refusal = ("UNKNOWN", f"volume server 127.0.0.1:{srv.port} is in maintenance mode")
    for vid in (VID, 4242):  # the gate comes before the lookup: an unknown id gets the same refusal
        assert compact(stub, vid)[:2] == refusal, vid
        assert commit(stub, vid)[:2] == refusal, vid
        assert cleanup(stub, vid)[:2] == refusal, vid
    assert leftovers(d) == []
    assert check(stub, VID) == ratio
    assert call(stub.VacuumVolumeCheck, vs_pb2.VacuumVolumeCheckRequest(volume_id=4242))[:2] == \
        ("NOT_FOUND", "volume id 4242 is not found during check compact: volume not found")
    code, details, r = call(stub.SetState, vs_pb2.SetStateRequest(state=vs_pb2.VolumeServerState(maintenance=False, version=1)))
    assert code == "OK" and not r.state.maintenance, details
    vacuum(stub, d, VID)
    assert_blobs(srv.url, VID, live, gone)


# ---- 2. the garbage ratio ----

def ratio_workload(url, vid, rng, n=24):
    """Writes, overwrites, deletes and re-creations, one at a time; returns the
    operations in order."""
    ops = [("put", k) for k in range(1, n + 1)]
    ops += [("put", k) for k in range(1, n + 1, 4)]                  # overwrites
    ops += [("delete", k) for k in range(3, n + 1, 3)]               # deletes, some of overwritten keys
    ops += [("put", k) for k in (3, 6)] + [("delete", 6)]            # re-create deleted keys, delete one again
    for op, key in ops:
        if op == "put":
            reply = upload(url, vid, key, make_blob(rng, key))
            assert reply["size"] > 0, reply
        else:
            delete(url, vid, key)
    return ops


def ratio_of(rows, ops):
    """Go's garbage ratio for `ops`: deleted/content, both sums of .idx size
    fields. Each operation appends one .idx row, in order, so its row gives its
    size (the upload reply's "size" is the data's length, without the needle's
    own fields)."""
    assert [k for k, _, _ in rows] == [k for _, k in ops], "one .idx row per operation, in order"
    live, content, deleted = {}, 0, 0
    for (key, _, size), (op, _) in zip(rows, ops):
        if op == "put":
            assert size > 0, (key, size)
            content += size
            deleted += live.get(key, 0)
            live[key] = size
        else:
            assert size == -1, (key, size)
            deleted += live.pop(key)
    return deleted / content


@pytest.mark.parametrize("kind", KINDS)
def test_check_ratio_is_deleted_over_content(cluster, tmp_path, kind):
    cluster.start_master()
    d = tmp_path / "v"
    srv = start(cluster, kind, d)
    vid = int(fid_on(cluster.master, srv).split(",")[0])
    stub = volume_stub(srv.port)
    ops = ratio_workload(srv.url, vid, random.Random(2))
    rows = idx_rows(d / f"{vid}.idx")
    expected = ratio_of(rows, ops)
    assert 0.2 < expected < 0.8, expected
    assert check(stub, vid) == expected
    # The counters rebuilt from the .idx at load give the same ratio.
    srv = restart(cluster, kind, srv, d)
    stub = volume_stub(srv.port)
    assert check(stub, vid) == expected

    # The same workload on a Go server gives the ratio of its own rows. The
    # sizes agree except for the gzipped text blobs (every fourth key): two
    # deflate implementations need not produce the same bytes.
    ref_dir = tmp_path / "ref"
    ref = start(cluster, "go", ref_dir)
    ref_vid = int(fid_on(cluster.master, ref).split(",")[0])
    assert ref_vid != vid
    ratio_workload(ref.url, ref_vid, random.Random(2))
    ref_rows = idx_rows(ref_dir / f"{ref_vid}.idx")
    assert [(k, s) for k, _, s in ref_rows if k % 4] == [(k, s) for k, _, s in rows if k % 4]
    assert check(volume_stub(ref.port), ref_vid) == ratio_of(ref_rows, ops)


# ---- 3-5. Compact, Commit, Cleanup ----

@pytest.mark.parametrize("kind", KINDS)
def test_compact_and_commit(cluster, tmp_path, kind):
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, kind, d)
    live, gone = fill(srv.url, VID, random.Random(3))
    dat = d / f"{VID}.dat"
    before = dat.stat().st_size
    assert revision_on_disk(dat) == 0 and sync_revision(stub, VID) == 0
    assert check(stub, VID) > 0.3

    code, details, msgs = compact(stub, VID)
    assert code == "OK" and msgs == [], (details, msgs)
    assert leftovers(d) == [f"{VID}.cpd", f"{VID}.cpx"]
    assert revision_on_disk(d / f"{VID}.cpd") == 1
    code, details, r = commit(stub, VID)
    assert code == "OK", details
    assert not r.is_read_only and r.volume_size == dat.stat().st_size, (r, dat.stat().st_size)
    assert leftovers(d) == []

    assert dat.stat().st_size < before
    assert revision_on_disk(dat) == 1 and sync_revision(stub, VID) == 1
    vols = requests.get(srv.url + "/status", timeout=10).json()["Volumes"]
    assert [v["CompactRevision"] for v in vols if v["Id"] == VID] == [1]
    assert check(stub, VID) == 0.0
    # The new .idx: one row per live needle, in ascending key order, at increasing offsets.
    rows = idx_rows(d / f"{VID}.idx")
    assert [k for k, _, _ in rows] == sorted(live)
    assert all(s > 0 for _, _, s in rows) and [o for _, o, _ in rows] == sorted(o for _, o, _ in rows)
    assert_blobs(srv.url, VID, live, gone)

    assert not read_only(srv, VID)
    live[1000] = b"written after the commit" * 100
    upload(srv.url, VID, 1000, live[1000])
    assert_blobs(srv.url, VID, live, gone, "after a new write")
    assert sync_revision(stub, VID) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_cleanup_after_compact_leaves_volume_as_it_was(cluster, tmp_path, kind):
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, kind, d)
    live, gone = fill(srv.url, VID, random.Random(4))
    ratio = check(stub, VID)
    before = snapshot(d, VID)
    code, details, _ = compact(stub, VID)
    assert code == "OK", details
    assert leftovers(d) == [f"{VID}.cpd", f"{VID}.cpx"]
    assert cleanup(stub, VID)[:2] == ("OK", "")
    assert leftovers(d) == []
    assert snapshot(d, VID) == before
    assert cleanup(stub, VID)[:2] == ("OK", "")  # nothing left to remove is not an error
    assert check(stub, VID) == ratio and sync_revision(stub, VID) == 0
    assert_blobs(srv.url, VID, live, gone)
    # A later full vacuum still works.
    vacuum(stub, d, VID)
    assert revision_on_disk(d / f"{VID}.dat") == 1
    assert_blobs(srv.url, VID, live, gone)


@pytest.mark.parametrize("kind", KINDS)
def test_commit_without_compact(cluster, tmp_path, kind):
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, kind, d)
    empty = VID + 1
    assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=empty, replication="000", version=3))[0] == "OK"
    live, gone = fill(srv.url, VID, random.Random(5), n=6)
    before = snapshot(d, VID)

    # A volume with rows: Go's makeupDiff walks the .idx down to offset 0 and one
    # row further, since no Compact recorded where the walk should stop.
    assert commit(stub, VID)[:2] == ("UNKNOWN", f"commit compact volume {VID}: readIndexEntry {d}/{VID}.idx at offset "
                                                f"-{IDX_ROW.size} failed: offset -{IDX_ROW.size} for index file is invalid")
    assert leftovers(d) == [] and snapshot(d, VID) == before
    first = min(live)
    r = requests.get(f"{srv.url}/{fid(VID, first)}", timeout=10)
    if kind == "go":
        # Go leaves the volume closed after a failed commit (docs/vacuum.md §4.4).
        assert r.status_code == 404
        assert call(stub.VolumeStatus, vs_pb2.VolumeStatusRequest(volume_id=VID))[:2] == \
            ("UNKNOWN", f"volume {VID} data backend not found")
        assert check(stub, VID) == 0.0
    else:
        # kelp reloads the old files instead (§10.2): the volume goes on serving.
        assert r.status_code == 200 and r.content == live[first]
        assert_blobs(srv.url, VID, live, gone)

    # An empty volume: nothing to carry over, so Go writes the commit marker and
    # then finds no .cpd/.cpx.
    assert commit(stub, empty)[:2] == ("UNKNOWN", f"commit compact volume {empty}: volume {empty} compact swap aborted: missing .cpd/.cpx")
    if kind == "go":
        assert leftovers(d) == [f"{empty}.cpc"]
        assert cleanup(stub, empty)[:2] == ("UNKNOWN", f"cleanup volume {empty}: volume {empty}: refusing cleanup while commit marker present")
        assert leftovers(d) == [f"{empty}.cpc"]
    else:
        # kelp checks for .cpd/.cpx before it writes the marker (§10.3): no .cpc, and Cleanup has nothing to refuse.
        assert leftovers(d) == []
        assert cleanup(stub, empty)[:2] == ("OK", "")
        upload(srv.url, empty, 1, b"still writable")

    # A restart reconciles both: the marker goes (roll forward with nothing to rename) and both volumes serve.
    srv = restart(cluster, kind, srv, d)
    stub = volume_stub(srv.port)
    assert leftovers(d) == [] and snapshot(d, VID) == before
    assert_blobs(srv.url, VID, live, gone, "after restart")
    upload(srv.url, empty, 2, b"written after the restart")
    assert requests.get(f"{srv.url}/{fid(empty, 2)}", timeout=10).content == b"written after the restart"
    assert sync_revision(stub, VID) == 0 and sync_revision(stub, empty) == 0


# ---- 6. loading with leftovers ----

@pytest.mark.parametrize("kind", KINDS)
def test_restart_after_compact_rolls_back(cluster, tmp_path, kind):
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, kind, d)
    live, gone = fill(srv.url, VID, random.Random(6))
    before = snapshot(d, VID)
    assert compact(stub, VID)[0] == "OK"
    stop(cluster, srv)
    assert leftovers(d) == [f"{VID}.cpd", f"{VID}.cpx"]
    srv = start(cluster, kind, d, port=srv.port)
    stub = volume_stub(srv.port)
    assert leftovers(d) == []
    assert snapshot(d, VID) == before
    assert sync_revision(stub, VID) == 0
    assert_blobs(srv.url, VID, live, gone)
    assert not read_only(srv, VID)


@pytest.mark.parametrize("kind", KINDS)
def test_restart_with_commit_marker_rolls_forward(cluster, tmp_path, kind):
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, kind, d)
    live, gone = fill(srv.url, VID, random.Random(7))
    before = (d / f"{VID}.dat").stat().st_size
    assert compact(stub, VID)[0] == "OK"
    stop(cluster, srv)
    compacted = snapshot(d, VID, (".cpd", ".cpx"))
    (d / f"{VID}.cpc").touch()
    srv = start(cluster, kind, d, port=srv.port)
    stub = volume_stub(srv.port)
    assert leftovers(d) == []
    assert snapshot(d, VID) == {".dat": compacted[".cpd"], ".idx": compacted[".cpx"]}
    dat = d / f"{VID}.dat"
    assert dat.stat().st_size < before and revision_on_disk(dat) == 1
    assert sync_revision(stub, VID) == 1 and check(stub, VID) == 0.0
    assert_blobs(srv.url, VID, live, gone)
    assert not read_only(srv, VID)
    upload(srv.url, VID, 1000, b"after roll forward")


# ---- 7. interop ----

@pytest.mark.parametrize("kind", KINDS)
def test_vacuumed_volume_loads_on_the_peer(cluster, tmp_path, kind):
    """A volume vacuumed by `kind` is loaded and vacuumed again by Go; a volume
    vacuumed by Go is loaded by `kind`."""
    cluster.start_master()
    da = tmp_path / "a"
    srv, stub = with_volume(cluster, kind, da)
    live, gone = fill(srv.url, VID, random.Random(8))
    vacuum(stub, da, VID)
    stop(cluster, srv)
    peer = start(cluster, "go", da)
    pstub = volume_stub(peer.port)
    assert_blobs(peer.url, VID, live, gone, "Go on the vacuumed volume")
    assert sync_revision(pstub, VID) == 1 and check(pstub, VID) == 0.0 and not read_only(peer, VID)
    upload(peer.url, VID, 1000, b"Go writes here")
    live[1000] = b"Go writes here"
    delete(peer.url, VID, 2)
    del live[2]
    gone.add(2)
    vacuum(pstub, da, VID)
    assert revision_on_disk(da / f"{VID}.dat") == 2
    assert_blobs(peer.url, VID, live, gone, "Go's second vacuum")
    stop(cluster, peer)

    db = tmp_path / "b"
    vid = VID + 1
    go, gstub = with_volume(cluster, "go", db, vid)
    live, gone = fill(go.url, vid, random.Random(9))
    vacuum(gstub, db, vid)
    stop(cluster, go)
    srv = start(cluster, kind, db)
    stub = volume_stub(srv.port)
    assert_blobs(srv.url, vid, live, gone, f"{kind} on the Go-vacuumed volume")
    assert sync_revision(stub, vid) == 1 and check(stub, vid) == 0.0 and not read_only(srv, vid)
    upload(srv.url, vid, 1000, b"and writes")


# ---- 8. byte-identical output ----

@pytest.mark.parametrize("kind", KINDS)
def test_compaction_is_byte_identical(cluster, tmp_path, kind):
    """Two copies of one Go-written volume, one compacted by Go and one by `kind`:
    the .cpd/.cpx, and after Commit the .dat/.idx, are the same bytes."""
    cluster.start_master()
    src = tmp_path / "src"
    go, _ = with_volume(cluster, "go", src)
    rng = random.Random(10)
    for key in range(1, 41):
        upload(go.url, VID, key, make_blob(rng, key))
    for key in range(3, 41, 6):
        upload(go.url, VID, key, make_blob(rng, key))                      # overwrites
    for key in range(1, 41, 4):
        delete(go.url, VID, key)
    upload(go.url, VID, 100, b"", name="empty.bin")                        # an empty upload
    upload(go.url, VID, 101, b"with pairs and a mime", name="p.json", headers={"Seaweed-Color": "blue"})
    upload(go.url, VID, 102, rng.randbytes(3000), name="noext")
    upload(go.url, VID, 103, b"flagged with a TTL on a volume without one", params={"ttl": "3d"})
    upload(go.url, VID, 104, rng.randbytes(5000))
    delete(go.url, VID, 104)                                               # the last record is a tombstone
    stop(cluster, go)

    out = {}
    for name, who in (("ref", "go"), ("test", kind)):
        d = tmp_path / name
        shutil.copytree(src, d)
        os.unlink(d / "vol_dir.uuid")  # each copy is a directory of its own to the master
        srv = start(cluster, who, d)
        stub = volume_stub(srv.port)
        code, details, msgs = compact(stub, VID)
        assert code == "OK" and msgs == [], (who, details)
        out[name] = snapshot(d, VID, (".cpd", ".cpx"))
        code, details, r = commit(stub, VID)
        assert code == "OK" and not r.is_read_only, (who, details)
        out[name].update(snapshot(d, VID))
        assert r.volume_size == len(out[name][".dat"])
        stop(cluster, srv)
    for ext in (".cpd", ".cpx", ".dat", ".idx"):
        a, b = out["ref"][ext], out["test"][ext]
        first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        assert a == b, f"{ext}: Go {len(a)} bytes, {kind} {len(b)} bytes, first difference at byte {first}"
    assert out["ref"][".dat"] == out["ref"][".cpd"] and out["ref"][".idx"] == out["ref"][".cpx"]
    keys = [k for k, _, _ in idx_rows(tmp_path / "ref" / f"{VID}.idx")]
    assert keys == sorted(keys) and 2 in keys and 1 not in keys and 104 not in keys
    assert 100 in keys  # the empty upload stays, as a size-0 row
    assert 103 not in keys  # a TTL-flagged needle on a volume without a TTL is expired at once (§10.4)


# ---- 9. driven by the master ----

@pytest.mark.parametrize("kind", KINDS)
def test_master_driven_vacuum(cluster, tmp_path, kind):
    cluster.start_master()
    d = tmp_path / "v"
    srv = start(cluster, kind, d)
    vid = int(fid_on(cluster.master, srv).split(",")[0])
    stub = volume_stub(srv.port)
    live, gone = fill(srv.url, vid, random.Random(11))
    assert check(stub, vid) > 0.3
    r = subprocess.run([WEED, "shell", f"-master=127.0.0.1:{cluster.master_port}"],
                       input="lock\nvolume.vacuum -garbageThreshold=0.1\nunlock\nexit\n",
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    deadline = time.time() + 30
    while sync_revision(stub, vid) != 1 and time.time() < deadline:
        time.sleep(0.2)
    assert sync_revision(stub, vid) == 1, out
    assert check(stub, vid) < 0.05, out
    assert revision_on_disk(d / f"{vid}.dat") == 1 and leftovers(d) == []
    assert_blobs(srv.url, vid, live, gone)


def test_master_periodic_vacuum(cluster, tmp_path):
    """No shell: the master's own sweep finds the garbage over
    -garbageThreshold and runs check, compact and commit itself.

    Go 4.48's master sleeps -vacuumIntervalSeconds plus up to two minutes of
    jitter between sweeps, so the wait is long; the Go server takes the same
    path through the same master (test_master_driven_vacuum covers both)."""
    cluster.start_master(extra=("-vacuumIntervalSeconds=1", "-garbageThreshold=0.3"))
    d = tmp_path / "v"
    srv = start(cluster, "kelp", d)
    vid = int(fid_on(cluster.master, srv).split(",")[0])
    stub = volume_stub(srv.port)
    before = (d / f"{vid}.dat").stat().st_size
    # The overwrites alone stay under the threshold (about 0.17), so a sweep
    # that lands mid-fill does nothing and one vacuum sees all the garbage.
    live, gone = fill(srv.url, vid, random.Random(12))
    filled = (d / f"{vid}.dat").stat().st_size
    assert filled > before and check(stub, vid) > 0.3
    wait_until(lambda: sync_revision(stub, vid) >= 1, 150, interval=0.5)
    assert sync_revision(stub, vid) == 1, cluster.procs[0].tail()
    assert check(stub, vid) < 0.05
    assert revision_on_disk(d / f"{vid}.dat") == 1 and leftovers(d) == []
    assert (d / f"{vid}.dat").stat().st_size < filled
    assert_blobs(srv.url, vid, live, gone)


# ---- writes during the copy, reads across the commit ----

@pytest.mark.parametrize("kind", KINDS)
def test_writes_during_compaction_survive_the_commit(cluster, tmp_path, kind):
    """The copy is throttled (-compactionMBps=1, ~3 MB to copy) so that puts,
    overwrites and deletes land while it runs; the commit carries them over.
    Every acknowledged write then reads back, every delete stays deleted, a
    write right after the commit reads back at once, and the volume ends on a
    delete yet stays writable."""
    cluster.start_master()
    d = tmp_path / "v"
    extra = ("-compactionMBps=1",)
    srv = cluster.start_go_volume(d, extra=("-preStopSeconds=0",) + extra) if kind == "go" else cluster.start_kelp(d, extra=extra)
    stub = volume_stub(srv.port)
    assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))[0] == "OK"
    rng = random.Random(11)
    live = {}
    for key in range(1, 61):
        live[key] = rng.randbytes(rng.randint(40_000, 60_000))
        upload(srv.url, VID, key, live[key])
    for key in range(1, 61, 4):
        delete(srv.url, VID, key)
        del live[key]

    import threading
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("compact", compact(stub, VID)))
    t.start()
    gone = set(range(1, 61, 4))
    during = 0
    while t.is_alive() or during < 8:
        key = 100 + during
        live[key] = rng.randbytes(rng.randint(100, 5000))
        upload(srv.url, VID, key, live[key])                  # new
        old = 2 + 4 * (during % 15)
        live[old] = rng.randbytes(rng.randint(100, 5000))
        upload(srv.url, VID, old, live[old])                  # overwrite of a copied needle
        victim = 3 + 4 * (during % 15)
        if victim in live:
            delete(srv.url, VID, victim)                      # delete of a copied needle
            del live[victim]
            gone.add(victim)
        during += 1
        if during > 2000:
            break
    t.join(timeout=120)
    assert not t.is_alive()
    code, details, msgs = result["compact"]
    assert code == "OK" and msgs == [], details
    last = 100 + during - 1
    delete(srv.url, VID, last)                                # the last mutation before the commit is a delete
    del live[last]
    gone.add(last)

    stop_reads = threading.Event()
    read_errors = []

    def read_loop():
        keys = sorted(k for k in live if k < 100)
        i = 0
        while not stop_reads.is_set():
            k = keys[i % len(keys)]
            r = requests.get(f"{srv.url}/{fid(VID, k)}", timeout=30)
            if r.status_code != 200 or r.content != live[k]:
                read_errors.append((k, r.status_code))
            i += 1

    reader = threading.Thread(target=read_loop)
    snapshot_live = dict(live)
    reader.start()
    try:
        code, details, r = commit(stub, VID)
        assert code == "OK", details
        assert not r.is_read_only
        # Read-your-write, at once, on the new generation.
        upload(srv.url, VID, 500, b"written right after the commit")
        got = requests.get(f"{srv.url}/{fid(VID, 500)}", timeout=10)
        assert got.status_code == 200 and got.content == b"written right after the commit"
    finally:
        stop_reads.set()
        reader.join(timeout=60)
    assert read_errors == [], read_errors[:5]
    live = snapshot_live
    live[500] = b"written right after the commit"
    assert leftovers(d) == []
    assert sync_revision(stub, VID) == 1
    assert_blobs(srv.url, VID, live, gone)
    assert not read_only(srv, VID)
    # The tail of the new .dat holds fake tombstones (cookie 0x12345678) for the deletes made during the copy.
    data = (d / f"{VID}.dat").read_bytes()
    assert data.count(struct.pack(">I", 0x12345678)) >= 1
    srv = restart(cluster, kind, srv, d)
    assert_blobs(srv.url, VID, live, gone, "after restart")
