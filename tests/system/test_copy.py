"""Volume copy: CopyFile as a source (docs/copy-and-tail.md §2), against the
Go volume server and kelp with the same expectations, and across the two: a
Go server copies a volume out of kelp with VolumeCopy, and reads it."""
import os
import random
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
import requests

from conftest import wait_until, worker_pids
from grpc_stubs import call, vs_grpc, vs_pb2, volume_stub
from test_vacuum import KINDS, VID, assert_blobs, fill, start, with_volume

ANY_REVISION = 0xFFFFFFFF
INT64_MAX = (1 << 63) - 1


def copy_file(stub, **fields):
    """(code, details, [messages]) of one CopyFile stream read to its end."""
    req = vs_pb2.CopyFileRequest(**fields)
    return call(lambda r, timeout: list(stub.CopyFile(r, timeout=timeout)), req, timeout=60)


@pytest.mark.parametrize("kind", KINDS)
def test_copy_file_streams_the_volume_files(cluster, tmp_path, kind):
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, kind, d)
    big = random.Random(4).randbytes(5 << 20)  # more than two 2 MiB chunks
    live, gone = fill(srv.url, VID, random.Random(3), n=12)
    r = requests.post(f"{srv.url}/{VID},ff5eed1234", files={"file": ("big.bin", big)}, timeout=60)
    assert r.status_code == 201, r.text
    dat = (d / f"{VID}.dat").read_bytes()
    idx = (d / f"{VID}.idx").read_bytes()

    code, details, msgs = copy_file(stub, volume_id=VID, ext=".dat", compaction_revision=0, stop_offset=len(dat),
                                    ignore_source_file_not_found=True)
    assert code == "OK", details
    assert b"".join(m.file_content for m in msgs) == dat
    assert [len(m.file_content) for m in msgs[:-1]] == [2 << 20] * (len(msgs) - 1)  # Go's 2 MiB chunks
    assert msgs[0].modified_ts_ns > 0 and all(m.modified_ts_ns == 0 for m in msgs[1:])  # only the first carries the time

    # stop_offset counts the bytes sent; past the end the stream just ends.
    code, _, msgs = copy_file(stub, volume_id=VID, ext=".idx", compaction_revision=ANY_REVISION, stop_offset=100)
    assert code == "OK" and b"".join(m.file_content for m in msgs) == idx[:100]
    code, _, msgs = copy_file(stub, volume_id=VID, ext=".idx", compaction_revision=ANY_REVISION, stop_offset=INT64_MAX)
    assert code == "OK" and b"".join(m.file_content for m in msgs) == idx
    # 2^63 and more is a negative count in Go: only the metadata message.
    code, _, msgs = copy_file(stub, volume_id=VID, ext=".idx", compaction_revision=ANY_REVISION, stop_offset=1 << 63)
    assert code == "OK" and len(msgs) == 1 and msgs[0].file_content == b"" and msgs[0].modified_ts_ns > 0
    code, _, msgs = copy_file(stub, volume_id=VID, ext=".idx", compaction_revision=ANY_REVISION, stop_offset=0)
    assert code == "OK" and len(msgs) == 1 and msgs[0].file_content == b"" and msgs[0].modified_ts_ns > 0

    # A file the volume does not have: quietly nothing when the caller allows it (or wants no bytes).
    assert copy_file(stub, volume_id=VID, ext=".ecj", stop_offset=10, ignore_source_file_not_found=True) == ("OK", "", [])
    assert copy_file(stub, volume_id=VID, ext=".ecj", stop_offset=0) == ("OK", "", [])
    code, details, _ = copy_file(stub, volume_id=VID, ext=".ecj", compaction_revision=ANY_REVISION, stop_offset=10)
    assert (code, details) == ("UNKNOWN", f"open {d}/{VID}.ecj: no such file or directory")

    # Refusals, in Go's order and words.
    assert copy_file(stub, volume_id=VID, ext="dat", stop_offset=10)[:2] == ("UNKNOWN", 'invalid file extension "dat"')
    assert copy_file(stub, volume_id=VID, ext=".dat.copying", stop_offset=10)[:2] == \
        ("UNKNOWN", 'invalid file extension ".dat.copying"')
    assert copy_file(stub, volume_id=VID, ext=".dat", collection="../x", stop_offset=10)[:2] == \
        ("UNKNOWN", 'invalid collection "../x"')
    assert copy_file(stub, volume_id=4242, ext=".dat", stop_offset=10)[:2] == ("UNKNOWN", "not found volume id 4242")
    assert copy_file(stub, volume_id=VID, ext=".dat", compaction_revision=3, stop_offset=10)[:2] == \
        ("UNKNOWN", f"volume {VID} is compacted")
    assert copy_file(stub, volume_id=VID, ext=".ec00", is_ec_volume=True, stop_offset=10)[:2] == \
        ("UNKNOWN", f"CopyFile not found ec volume id {VID}")
    # An EC copy finds files by name in every location, whatever made them.
    code, _, msgs = copy_file(stub, volume_id=VID, ext=".idx", is_ec_volume=True, stop_offset=INT64_MAX)
    assert code == "OK" and b"".join(m.file_content for m in msgs) == idx
    assert copy_file(stub, volume_id=VID, ext=".ecx", is_ec_volume=True, stop_offset=10, ignore_source_file_not_found=True) == \
        ("OK", "", [])


def test_go_copies_a_volume_out_of_kelp(cluster, tmp_path):
    """A Go target pulls a kelp volume with VolumeCopy (CopyFile on kelp's side),
    mounts it and serves every blob; deleted ones stay deleted."""
    cluster.start_master()
    kelp = start(cluster, "kelp", tmp_path / "kelp")
    # Go 4.48 refuses copy sources on loopback without this flag.
    go = cluster.start_go_volume(tmp_path / "go", extra=("-preStopSeconds=0", "-volume.allowUntrustedRemoteEndpoints"))
    kstub = volume_stub(kelp.port)
    assert call(kstub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))[0] == "OK"
    live, gone = fill(kelp.url, VID, random.Random(8), n=20)
    gstub = volume_stub(go.port)
    code, details, msgs = call(lambda r, timeout: list(gstub.VolumeCopy(r, timeout=timeout)),
                               vs_pb2.VolumeCopyRequest(volume_id=VID, source_data_node=f"127.0.0.1:{kelp.port}"), timeout=60)
    assert code == "OK", details
    assert msgs and msgs[-1].last_append_at_ns > 0
    assert (tmp_path / "go" / f"{VID}.dat").read_bytes() == (tmp_path / "kelp" / f"{VID}.dat").read_bytes()
    assert (tmp_path / "go" / f"{VID}.idx").read_bytes() == (tmp_path / "kelp" / f"{VID}.idx").read_bytes()
    assert_blobs(go.url, VID, live, gone, "on the Go copy")


def start_trusting(cluster, kind, d):
    """A server that may copy from loopback peers (Go 4.48 refuses them otherwise)."""
    if kind == "go":
        return cluster.start_go_volume(d, extra=("-preStopSeconds=0", "-volume.allowUntrustedRemoteEndpoints"))
    return cluster.start_kelp(d, extra=("-volume.allowUntrustedRemoteEndpoints",))


def volume_copy(stub, vid, source, **extra):
    req = vs_pb2.VolumeCopyRequest(volume_id=vid, source_data_node=f"127.0.0.1:{source.port}", **extra)
    return call(lambda r, timeout: list(stub.VolumeCopy(r, timeout=timeout)), req, timeout=120)


@pytest.mark.parametrize("kind", KINDS)
def test_volume_copy_refuses_a_loopback_source_without_the_flag(cluster, tmp_path, kind):
    cluster.start_master()
    source = start(cluster, "go", tmp_path / "src")
    target = start(cluster, kind, tmp_path / "dst")
    code, details, _ = volume_copy(volume_stub(target.port), VID, source)
    node = f"127.0.0.1:{source.port}"
    assert (code, details) == ("UNKNOWN", f'invalid source data node {node}: remote endpoint "{node}" resolves to loopback address 127.0.0.1')
    assert not list((tmp_path / "dst").glob(f"{VID}.*"))


@pytest.mark.parametrize("source_kind", KINDS)
@pytest.mark.parametrize("kind", KINDS)
def test_volume_copy_pulls_mounts_and_serves(cluster, tmp_path, kind, source_kind):
    """A target of `kind` copies a volume from a source of `source_kind`: the
    files are the source's byte for byte, the copy is mounted and serves every
    blob, the last message carries the exact append time of the last record,
    and a second copy replaces the first."""
    cluster.start_master()
    source = start_trusting(cluster, source_kind, tmp_path / "src")
    sstub = volume_stub(source.port)
    assert call(sstub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, collection="pics", replication="000",
                                                                   version=3))[0] == "OK"
    live, gone = fill(source.url, VID, random.Random(9), n=16)
    target = start_trusting(cluster, kind, tmp_path / "dst")
    tstub = volume_stub(target.port)
    code, details, msgs = volume_copy(tstub, VID, source)
    assert code == "OK", details
    assert msgs[-1].last_append_at_ns > 0 and all(m.last_append_at_ns == 0 for m in msgs[:-1])
    src_dat = (tmp_path / "src" / f"pics_{VID}.dat").read_bytes()
    assert (tmp_path / "dst" / f"pics_{VID}.dat").read_bytes() == src_dat
    assert (tmp_path / "dst" / f"pics_{VID}.idx").read_bytes() == (tmp_path / "src" / f"pics_{VID}.idx").read_bytes()
    assert not list((tmp_path / "dst").glob("*.note")) and not list((tmp_path / "dst").glob("*.copying"))
    assert_blobs(target.url, VID, live, gone, "on the copy")
    code, _, status = call(tstub.VolumeStatus, vs_pb2.VolumeStatusRequest(volume_id=VID))
    assert code == "OK" and status.volume_size == len(src_dat)

    # The source changes; a second copy replaces the target's replica.
    r = requests.post(f"{source.url}/{VID},7775eed1234", files={"file": ("late.txt", b"written after the first copy")}, timeout=30)
    assert r.status_code == 201, r.text
    code, details, msgs = volume_copy(tstub, VID, source)
    assert code == "OK", details
    got = requests.get(f"{target.url}/{VID},7775eed1234", timeout=10)
    assert got.status_code == 200 and got.content == b"written after the first copy"
    assert_blobs(target.url, VID, live, gone, "after the second copy")


@pytest.mark.parametrize("kind", KINDS)
def test_volume_copy_of_a_missing_volume_leaves_nothing(cluster, tmp_path, kind):
    cluster.start_master()
    source = start_trusting(cluster, "go", tmp_path / "src")
    target = start_trusting(cluster, kind, tmp_path / "dst")
    code, details, _ = volume_copy(volume_stub(target.port), 4242, source)
    assert code == "UNKNOWN" and details.startswith("read volume file status failed, rpc error: code = "), details
    assert not list((tmp_path / "dst").glob("4242*"))


def shell(cluster, commands):
    import subprocess
    from conftest import WEED
    r = subprocess.run([WEED, "shell", f"-master=127.0.0.1:{cluster.master_port}"], input="lock\n" + commands + "\nunlock\nexit\n",
                       capture_output=True, text=True, timeout=180)
    return r.stdout + r.stderr


def shell_between(cluster, tmp_path, pair, command, seed, n):
    """A master, a filled volume VID on a source of pair[0], an empty target of
    pair[1] (both trusting loopback peers), then `weed shell <command> -source
    -target -volumeId`. Returns (source, target, live, gone, shell output)."""
    source_kind, target_kind = pair
    cluster.start_master()
    source = start_trusting(cluster, source_kind, tmp_path / "src")
    sstub = volume_stub(source.port)
    assert call(sstub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))[0] == "OK"
    live, gone = fill(source.url, VID, random.Random(seed), n=n)
    target = start_trusting(cluster, target_kind, tmp_path / "dst")
    out = shell(cluster, f"{command} -source 127.0.0.1:{source.port} -target 127.0.0.1:{target.port} -volumeId {VID}")
    return source, target, live, gone, out


def master_locations(cluster, vid, servers):
    """The urls the master's /dir/lookup gives for `vid`, once they are those
    of `servers` (or after 30 s: the caller's assertion says what they were)."""
    import time
    want = sorted(f"127.0.0.1:{s.port}" for s in servers)
    deadline = time.time() + 30
    while True:
        locs = requests.get(f"{cluster.master}/dir/lookup", params={"volumeId": vid}, timeout=10).json().get("locations", [])
        urls = sorted(l["url"] for l in locs)
        if urls == want or time.time() > deadline:
            return urls
        time.sleep(0.3)


@pytest.mark.parametrize("pair", [("go", "kelp"), ("kelp", "go"), ("kelp", "kelp")])
def test_shell_volume_copy_between_servers(cluster, tmp_path, pair):
    """`weed shell volume.copy` from one server to the other: the master then
    knows two replicas, and both serve every blob."""
    source, target, live, gone, out = shell_between(cluster, tmp_path, pair, "volume.copy", seed=10, n=10)
    assert (tmp_path / "dst" / f"{VID}.dat").exists(), out
    assert_blobs(target.url, VID, live, gone, "on the target: " + out)
    urls = master_locations(cluster, VID, [source, target])
    assert urls == sorted([f"127.0.0.1:{source.port}", f"127.0.0.1:{target.port}"]), (urls, out)


# ---- ReceiveFile (docs/copy-and-tail.md §4) ----

def receive_file(stub, messages):
    """(code, details, response) of one ReceiveFile client stream."""
    return call(lambda r, timeout: stub.ReceiveFile(iter(r), timeout=timeout), messages, timeout=60)


def info_msg(**f):
    return vs_pb2.ReceiveFileRequest(info=vs_pb2.ReceiveFileInfo(**f))


def chunk(data):
    return vs_pb2.ReceiveFileRequest(file_content=data)


@pytest.mark.parametrize("kind", KINDS)
def test_receive_file_writes_pushed_files_where_go_puts_them(cluster, tmp_path, kind):
    """An EC shard and a staged volume file pushed in chunks land under Go's
    names with every byte; Go's in-band refusals leave nothing behind."""
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, kind, d)
    data = random.Random(11).randbytes(200_000)
    code, details, r = receive_file(stub, [info_msg(volume_id=77, ext=".ec03", collection="c", is_ec_volume=True, shard_id=3,
                                                    file_size=len(data)), chunk(data[:65536]), chunk(data[65536:])])
    assert (code, r.error, r.bytes_written) == ("OK", "", len(data)), details
    assert (d / "c_77.ec03").read_bytes() == data
    # A later push replaces the file.
    code, _, r = receive_file(stub, [info_msg(volume_id=77, ext=".ec03", collection="c", is_ec_volume=True), chunk(b"short")])
    assert (code, r.error, r.bytes_written) == ("OK", "", 5) and (d / "c_77.ec03").read_bytes() == b"short"
    # A regular volume this server does not hold is staged for an EC decode when a disk type is named.
    code, _, r = receive_file(stub, [info_msg(volume_id=78, ext=".dat", disk_type="hdd"), chunk(b"staged")])
    assert (code, r.error) == ("OK", "") and (d / "78.dat.copying").read_bytes() == b"staged"
    (d / "78.dat.copying").unlink()

    before = sorted(p.name for p in d.iterdir())
    refusals = [
        ([chunk(b"x")], "file info must be sent first"),
        ([vs_pb2.ReceiveFileRequest()], "unknown message type"),
        ([info_msg(volume_id=77, ext=".ec/x", is_ec_volume=True)], 'invalid file extension ".ec/x"'),
        ([info_msg(volume_id=77, ext=".ec01", collection="../up", is_ec_volume=True)], 'invalid collection "../up"'),
        ([info_msg(volume_id=4242, ext=".dat")], "volume 4242 not found"),
        ([info_msg(volume_id=77, ext=".ec01", is_ec_volume=True, disk_id=5)], "invalid disk_id 5: only have 1 disks"),
        ([info_msg(volume_id=79, ext=".dat", disk_type="ssd")], "no ssd disk location with a free slot for volume 79"),
    ]
    for msgs, text in refusals:
        code, details, r = receive_file(stub, msgs)
        assert (code, r.error, r.bytes_written) == ("OK", text, 0), (kind, details)
    assert sorted(p.name for p in d.iterdir()) == before
    # An empty stream writes nothing.
    code, _, r = receive_file(stub, [])
    assert (code, r.error, r.bytes_written) == ("OK", "", 0)

    state = call(stub.GetState, vs_pb2.GetStateRequest())[2].state
    assert call(stub.SetState, vs_pb2.SetStateRequest(state=vs_pb2.VolumeServerState(maintenance=True, version=state.version)))[0] == "OK"
    code, details, _ = receive_file(stub, [info_msg(volume_id=77, ext=".ec04", is_ec_volume=True), chunk(b"y")])
    assert code == "UNKNOWN" and details.endswith("is in maintenance mode"), details
    assert not (d / "77.ec04").exists()


def test_receive_file_never_replaces_a_mounted_volumes_data(cluster, tmp_path):
    """Go truncates a mounted volume's .dat or .idx when a peer pushes one;
    kelp refuses, and the volume keeps serving."""
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, "kelp", d)
    live, gone = fill(srv.url, VID, random.Random(12), n=6)
    files = {ext: (d / f"{VID}{ext}").read_bytes() for ext in (".dat", ".idx")}
    for ext in (".dat", ".idx"):
        for ec in (False, True):  # an EC push names the same files
            code, _, r = receive_file(volume_stub(srv.port), [info_msg(volume_id=VID, ext=ext, is_ec_volume=ec), chunk(b"garbage")])
            assert (code, r.error) == ("OK", f"volume {VID} is mounted: its {ext} is not replaced while in use"), ec
    assert {ext: (d / f"{VID}{ext}").read_bytes() for ext in (".dat", ".idx")} == files
    assert_blobs(srv.url, VID, live, gone)


# ---- VolumeConsolidateIndex ----

@pytest.mark.parametrize("kind", KINDS)
def test_consolidate_index(cluster, tmp_path, kind):
    srv, stub = with_volume(cluster, kind, tmp_path / "v")
    req = vs_pb2.VolumeConsolidateIndexRequest
    assert call(stub.VolumeConsolidateIndex, req(volume_id=VID))[0] == "OK"  # no -dir.idx: nothing to move
    assert call(stub.VolumeConsolidateIndex, req(volume_id=4242))[:2] == ("UNKNOWN", "volume 4242 not found on disk")


def test_a_receive_the_grpc_worker_abandons_by_dying_leaves_no_file(cluster, tmp_path):
    """kill -9 of the gRPC worker in the middle of a push: the half-written
    shard is removed, the worker comes back, and a new push succeeds."""
    import os
    import signal
    import threading
    import time
    from conftest import worker_pids
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, "kelp", d)
    started = threading.Event()

    def slow():
        yield info_msg(volume_id=77, ext=".ec05", is_ec_volume=True)
        yield chunk(b"half of a shard")
        started.set()
        time.sleep(30)
    result = {}
    t = threading.Thread(target=lambda: result.update(r=receive_file(stub, slow())))
    t.start()
    assert started.wait(20)
    deadline = time.time() + 10
    while not (d / "77.ec05").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert (d / "77.ec05").exists()
    [pid] = worker_pids(srv.pid, "grpc")
    os.kill(pid, signal.SIGKILL)
    t.join(60)
    assert result["r"][0] != "OK"
    deadline = time.time() + 20
    while (d / "77.ec05").exists() and time.time() < deadline:
        time.sleep(0.1)
    assert not (d / "77.ec05").exists()

    def respawned_listens():
        new = [p for p in worker_pids(srv.pid, "grpc") if p != pid]
        return new and grpc_listeners(new[0], srv.port + 10000)
    assert wait_until(respawned_listens, 30), "no new gRPC worker listens"
    fresh = volume_stub(srv.port)
    code, _, r = receive_file(fresh, [info_msg(volume_id=77, ext=".ec05", is_ec_volume=True), chunk(b"whole")])
    assert (code, r.error) == ("OK", "") and (d / "77.ec05").read_bytes() == b"whole"


@pytest.mark.parametrize("kind", KINDS)
def test_volume_copy_in_maintenance_mode_refuses_before_dialling(cluster, tmp_path, kind):
    """Maintenance mode answers first, before the source is checked or dialled
    (nothing listens at the source here)."""
    cluster.start_master()
    target = start_trusting(cluster, kind, tmp_path / "dst")
    stub = volume_stub(target.port)
    state = call(stub.GetState, vs_pb2.GetStateRequest())[2].state
    assert call(stub.SetState, vs_pb2.SetStateRequest(state=vs_pb2.VolumeServerState(maintenance=True, version=state.version)))[0] == "OK"
    req = vs_pb2.VolumeCopyRequest(volume_id=VID, source_data_node="127.0.0.1:1234")
    code, details, _ = call(lambda r, timeout: list(stub.VolumeCopy(r, timeout=timeout)), req, timeout=30)
    assert code == "UNKNOWN" and details.endswith("is in maintenance mode"), details


def grpc_listeners(pid, port):
    """The sockets of process `pid` that listen on TCP `port` (IPv4 or IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    held = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held.add(target)
    except OSError:
        pass
    return held


def test_a_reload_undoes_only_the_old_grpc_workers_pushes(cluster, tmp_path):
    """SIGHUP replaces the gRPC worker: the old one drains (its open push is
    cut when its grace ends and that file removed), while a push the new worker
    started meanwhile goes on and completes."""
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, "kelp", d)
    [old] = worker_pids(srv.pid, "grpc")
    hold_a, release_b = threading.Event(), threading.Event()

    def push_a():
        yield info_msg(volume_id=77, ext=".ec01", is_ec_volume=True)
        yield chunk(b"pushed to the old worker")
        hold_a.wait(60)

    def push_b():
        yield info_msg(volume_id=78, ext=".ec02", is_ec_volume=True)
        yield chunk(b"first half, ")
        release_b.wait(60)
        yield chunk(b"second half")
    results = {}
    ta = threading.Thread(target=lambda: results.update(a=receive_file(stub, push_a())))
    ta.start()
    assert wait_until((d / "77.ec01").exists, 20)

    os.kill(srv.pid, signal.SIGHUP)
    # The new worker listens, and the old one no longer does: a new
    # connection can only reach the new one.
    def only_new_listens():
        new = [p for p in worker_pids(srv.pid, "grpc") if p != old]
        return new and grpc_listeners(new[0], srv.port + 10000) and not grpc_listeners(old, srv.port + 10000)
    assert wait_until(only_new_listens, 30), "the old gRPC worker never stopped listening"
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port + 10000}", options=[("grpc.use_local_subchannel_pool", 1)])
    grpc.channel_ready_future(channel).result(timeout=20)
    fresh = vs_grpc.VolumeServerStub(channel)
    tb = threading.Thread(target=lambda: results.update(b=receive_file(fresh, push_b())))
    tb.start()
    assert wait_until((d / "78.ec02").exists, 20)

    # The old worker's grace ends with push A still open: it exits.
    assert wait_until(lambda: not os.path.exists(f"/proc/{old}"), 30)
    hold_a.set()
    ta.join(30)
    assert results["a"][0] != "OK"
    assert wait_until(lambda: not (d / "77.ec01").exists(), 20)

    release_b.set()
    tb.join(30)
    code, details, r = results["b"]
    assert (code, details, r.error) == ("OK", "", "")
    assert (d / "78.ec02").read_bytes() == b"first half, second half"
    channel.close()
