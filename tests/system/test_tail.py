"""Tails and needle streams (docs/copy-and-tail.md §5, §7-§10): VolumeTailSender,
VolumeTailReceiver, VolumeIncrementalCopy, ReadAllNeedles and WriteNeedleBlob,
and `weed shell volume.move`, which chains copy and tail.

Single-server tests run against Go and kelp with the same expectations, read
from the volume's own files; cross-server tests pair them both ways."""
import gzip
import random
import struct
import threading
import time

import pytest
import requests

from grpc_stubs import call, vs_pb2, volume_stub
from test_copy import start_trusting, volume_copy
from test_vacuum import KINDS, VID, assert_blobs, delete, fid, fill, idx_rows, upload, with_volume

PAIRS = [("go", "kelp"), ("kelp", "go"), ("kelp", "kelp")]
SLICE = 2 << 20
MAX_U64 = (1 << 64) - 1


# ---- the .dat as the tests read it (version 3, no superblock extra) ----

def records(dat):
    """[(offset, header, body, append_at_ns)] of every record after the superblock."""
    out, at = [], 8
    while at + 16 <= len(dat):
        size = struct.unpack(">I", dat[at + 12:at + 16])[0]
        pad = 8 - ((16 + size + 4 + 8) % 8)
        body_len = size + 4 + 8 + pad
        body = dat[at + 16:at + 16 + body_len]
        out.append((at, dat[at:at + 16], body, struct.unpack(">Q", body[size + 4:size + 12])[0]))
        at += 16 + body_len
    return out


def tail(stub, vid, since_ns, idle=1, timeout=60):
    req = vs_pb2.VolumeTailSenderRequest(volume_id=vid, since_ns=since_ns, idle_timeout_seconds=idle)
    return call(lambda r, timeout: list(stub.VolumeTailSender(r, timeout=timeout)), req, timeout=timeout)


def needles_of(msgs):
    """Reassembles a tail stream: [(header, body)] of its needles, and the heartbeat count."""
    out, beats, cur = [], 0, None
    for m in msgs:
        assert m.version == 3
        if not m.needle_header:
            assert m.is_last_chunk and not m.needle_body
            beats += 1
            continue
        if cur is None:
            cur = [m.needle_header, b""]
        assert m.needle_header == cur[0]  # every slice repeats the header
        assert len(m.needle_body) <= SLICE
        cur[1] += m.needle_body
        if m.is_last_chunk:
            out.append(tuple(cur))
            cur = None
    assert cur is None, "a needle without its last chunk"
    return out, beats


# ---- VolumeTailSender ----

@pytest.mark.parametrize("kind", KINDS)
def test_tail_sender_heartbeat_then_eof(cluster, tmp_path, kind):
    srv, stub = with_volume(cluster, kind, tmp_path / "v")
    started = time.time()
    code, details, msgs = tail(stub, VID, 0, idle=1)
    assert code == "OK", details
    assert [(m.needle_header, m.needle_body, m.is_last_chunk, m.version) for m in msgs] == [(b"", b"", True, 3)]
    assert time.time() - started >= 1.9  # one 2 s cycle before the idle count runs out
    assert tail(stub, 4242, 0)[:2] == ("UNKNOWN", "not found volume id 4242")


@pytest.mark.parametrize("kind", KINDS)
def test_tail_sender_streams_every_record_after_the_time(cluster, tmp_path, kind):
    """Puts, overwrites and tombstones after `since`, in .dat order, each body
    cut into 2 MiB slices, byte for byte what the .dat holds; nothing newer:
    heartbeats only."""
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, kind, d)
    rng = random.Random(21)
    for key in range(1, 7):
        upload(srv.url, VID, key, rng.randbytes(3000))
    recs = records((d / f"{VID}.dat").read_bytes())
    since = recs[2][3]  # the third record's time: the stream starts at the fourth
    upload(srv.url, VID, 2, rng.randbytes(2500))              # an overwrite
    upload(srv.url, VID, 9, rng.randbytes(SLICE + (128 << 10)))  # a needle in several slices
    delete(srv.url, VID, 4)                                   # a tombstone
    recs = records((d / f"{VID}.dat").read_bytes())
    want = [(h, b) for _, h, b, ns in recs if ns > since]
    assert len(want) == 6

    code, details, msgs = tail(stub, VID, since, idle=1, timeout=90)
    assert code == "OK", details
    got, beats = needles_of(msgs)
    assert got == want
    assert beats == 1  # the idle cycle after the records
    assert any(m.needle_header and not m.is_last_chunk for m in msgs)

    code, details, msgs = tail(stub, VID, recs[-1][3], idle=1)
    assert code == "OK", details
    assert needles_of(msgs) == ([], 1)


@pytest.mark.parametrize("kind", KINDS)
def test_tail_sender_follows_writes_until_idle(cluster, tmp_path, kind):
    """A tail with idle 2 that sees writes arrive while it runs sends them
    too, and ends only after two idle cycles."""
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, kind, d)
    upload(srv.url, VID, 1, b"first")
    since = records((d / f"{VID}.dat").read_bytes())[-1][3]

    def late_writes():
        for key in range(2, 5):
            time.sleep(1.0)
            upload(srv.url, VID, key, f"late {key}".encode())
    t = threading.Thread(target=late_writes)
    t.start()
    code, details, msgs = tail(stub, VID, since, idle=2, timeout=90)
    t.join()
    assert code == "OK", details
    got, beats = needles_of(msgs)
    recs = records((d / f"{VID}.dat").read_bytes())
    assert got == [(h, b) for _, h, b, _ in recs[1:]]
    assert beats >= 2


# ---- VolumeTailReceiver ----

def receive(stub, vid, source, since_ns, idle=1, timeout=120):
    req = vs_pb2.VolumeTailReceiverRequest(volume_id=vid, since_ns=since_ns, idle_timeout_seconds=idle,
                                           source_volume_server=f"127.0.0.1:{source.port}")
    return call(stub.VolumeTailReceiver, req, timeout=timeout)


@pytest.mark.parametrize("pair", PAIRS)
def test_tail_receiver_brings_a_copy_up_to_date(cluster, tmp_path, pair):
    """VolumeCopy, then writes on the source (new blobs, an overwrite, a
    delete), then VolumeTailReceiver while more writes arrive: the target
    serves what the source serves and counts at least as much (the move's check)."""
    source_kind, target_kind = pair
    cluster.start_master()
    source = start_trusting(cluster, source_kind, tmp_path / "src")
    sstub = volume_stub(source.port)
    assert call(sstub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))[0] == "OK"
    rng = random.Random(22)
    live, gone = fill(source.url, VID, rng, n=12)
    target = start_trusting(cluster, target_kind, tmp_path / "dst")
    tstub = volume_stub(target.port)
    code, details, msgs = volume_copy(tstub, VID, source)
    assert code == "OK", details
    since = msgs[-1].last_append_at_ns

    for key in range(20, 25):
        live[key] = rng.randbytes(rng.randint(100, 50_000))
        upload(source.url, VID, key, live[key])
    live[2] = b"overwritten after the copy"
    upload(source.url, VID, 2, live[2])
    delete(source.url, VID, 20)
    del live[20]
    gone.add(20)

    # More writes while the receiver follows the source (as in a move).
    def live_writes():
        for key in range(40, 52):
            data = f"written during the tail {key}".encode()
            upload(source.url, VID, key, data)
            live[key] = data
            time.sleep(0.25)
    writer = threading.Thread(target=live_writes)
    writer.start()
    code, details, _ = receive(tstub, VID, source, since, idle=2)
    writer.join()
    assert code == "OK", details
    # Go writes a tailed deletion as an empty needle: the deleted blob then
    # reads as an empty file. kelp applies it as the delete it was.
    r = requests.get(f"{target.url}/{fid(VID, 20)}", timeout=10)
    if target_kind == "go":
        assert (r.status_code, r.content) == (200, b"")
        gone.discard(20)
    else:
        assert r.status_code == 404
    assert_blobs(target.url, VID, live, gone, "on the tailed copy")
    s = call(sstub.ReadVolumeFileStatus, vs_pb2.ReadVolumeFileStatusRequest(volume_id=VID))[2]
    t = call(tstub.ReadVolumeFileStatus, vs_pb2.ReadVolumeFileStatusRequest(volume_id=VID))[2]
    assert t.dat_file_size >= s.dat_file_size and t.idx_file_size >= s.idx_file_size and t.file_count >= s.file_count


@pytest.mark.parametrize("kind", KINDS)
def test_tail_receiver_errors(cluster, tmp_path, kind):
    cluster.start_master()
    source = start_trusting(cluster, "go", tmp_path / "src")
    target = start_trusting(cluster, kind, tmp_path / "dst")
    tstub = volume_stub(target.port)
    assert receive(tstub, 4242, source, 0)[:2] == ("UNKNOWN", "receiver not found volume id 4242")
    # The source's own answer comes back as it was.
    assert call(tstub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))[0] == "OK"
    assert receive(tstub, VID, source, 0)[:2] == ("UNKNOWN", f"not found volume id {VID}")


@pytest.mark.parametrize("kind", KINDS)
def test_tail_receiver_refuses_a_loopback_source_without_the_flag(cluster, tmp_path, kind):
    cluster.start_master()
    source = start_trusting(cluster, "go", tmp_path / "src")
    srv, stub = with_volume(cluster, kind, tmp_path / "dst")
    node = f"127.0.0.1:{source.port}"
    assert receive(stub, VID, source, 0)[:2] == \
        ("UNKNOWN", f'invalid source volume server {node}: remote endpoint "{node}" resolves to loopback address 127.0.0.1')


# ---- VolumeIncrementalCopy ----

def incremental(stub, vid, since_ns):
    req = vs_pb2.VolumeIncrementalCopyRequest(volume_id=vid, since_ns=since_ns)
    return call(lambda r, timeout: list(stub.VolumeIncrementalCopy(r, timeout=timeout)), req, timeout=60)


@pytest.mark.parametrize("kind", KINDS)
def test_incremental_copy_sends_the_dat_after_the_time(cluster, tmp_path, kind):
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, kind, d)
    rng = random.Random(24)
    for key in range(1, 5):
        upload(srv.url, VID, key, rng.randbytes(1000))
    upload(srv.url, VID, 5, rng.randbytes(SLICE + 4096))
    dat = (d / f"{VID}.dat").read_bytes()
    recs = records(dat)
    code, details, msgs = incremental(stub, VID, recs[1][3])
    assert code == "OK", details
    assert b"".join(m.file_content for m in msgs) == dat[recs[2][0]:]
    assert len(msgs[0].file_content) == SLICE
    code, _, msgs = incremental(stub, VID, 0)
    assert code == "OK" and b"".join(m.file_content for m in msgs) == dat[8:]  # never the superblock
    assert incremental(stub, VID, MAX_U64) == ("OK", "", [])
    assert incremental(stub, 4242, 0)[:2] == ("UNKNOWN", "not found volume id 4242")


# ---- ReadAllNeedles ----

def read_all(stub, vids):
    req = vs_pb2.ReadAllNeedlesRequest(volume_ids=vids)
    return call(lambda r, timeout: list(stub.ReadAllNeedles(r, timeout=timeout)), req, timeout=60)


def test_read_all_needles_matches_go(cluster, tmp_path):
    """The same writes on Go and kelp, ReadAllNeedles on both: the same needles,
    fields and order (overwritten versions skipped, .dat order kept)."""
    cluster.start_master()
    servers = {kind: with_volume(cluster, kind, tmp_path / kind) for kind in KINDS}
    for kind, (srv, stub) in servers.items():
        assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID + 1, replication="000", version=3))[0] == "OK"
        upload(srv.url, VID, 1, b"A first", name="a.txt")
        upload(srv.url, VID, 2, b"B" * 3000, name="b.bin")
        upload(srv.url, VID, 1, b"A second, longer", name="a2.txt")
        upload(srv.url, VID, 3, b"compressible text " * 200, name="c.txt")
        upload(srv.url, VID, 4, b"to be deleted", name="d.txt")
        delete(srv.url, VID, 4)
        upload(srv.url, VID + 1, 7, b"in the other volume", name="o.txt")

    def fields(m):
        # Gzip streams differ between Go's compressor and zlib: compare what they hold.
        blob = gzip.decompress(m.needle_blob) if m.needle_blob_compressed else m.needle_blob
        return (m.volume_id, m.needle_id, m.cookie, blob, m.needle_blob_compressed, None if m.needle_blob_compressed else m.crc,
                m.name, m.mime)
    results = {}
    for kind, (srv, stub) in servers.items():
        code, details, msgs = read_all(stub, [VID, VID + 1])
        assert code == "OK", (kind, details)
        results[kind] = [fields(m) for m in msgs]
        # A missing volume ends the stream after those before it.
        code, details, msgs = read_all(stub, [VID + 1, 4242])
        assert (code, details) == ("UNKNOWN", "not found volume id 4242"), kind
    assert results["kelp"] == results["go"]
    assert [f[1] for f in results["kelp"] if f[0] == VID][:3] == [2, 1, 3]


# ---- WriteNeedleBlob ----

def needle_blob(stub, d, vid, key):
    row = [r for r in idx_rows(d / f"{vid}.idx") if r[0] == key][-1]
    code, details, r = call(stub.ReadNeedleBlob, vs_pb2.ReadNeedleBlobRequest(volume_id=vid, offset=row[1], size=row[2]))
    assert code == "OK", details
    return r.needle_blob, row[2]


@pytest.mark.parametrize("pair", PAIRS)
def test_write_needle_blob_repairs_a_replica(cluster, tmp_path, pair):
    """volume.check.disk's repair: a needle read with ReadNeedleBlob on one
    server is written with WriteNeedleBlob to the other, which then serves it;
    writing it again changes nothing."""
    source_kind, target_kind = pair
    cluster.start_master()
    src, sstub = with_volume(cluster, source_kind, tmp_path / "src")
    dst, tstub = with_volume(cluster, target_kind, tmp_path / "dst")
    data = random.Random(25).randbytes(20_000)
    upload(src.url, VID, 5, data, name="repair.bin")
    blob, size = needle_blob(sstub, tmp_path / "src", VID, 5)
    req = vs_pb2.WriteNeedleBlobRequest(volume_id=VID, needle_id=5, size=size, needle_blob=blob)
    assert call(tstub.WriteNeedleBlob, req)[0] == "OK"
    r = requests.get(f"{dst.url}/{fid(VID, 5)}", timeout=10)
    assert r.status_code == 200 and r.content == data
    before = (tmp_path / "dst" / f"{VID}.dat").stat().st_size
    assert call(tstub.WriteNeedleBlob, req)[0] == "OK"
    assert (tmp_path / "dst" / f"{VID}.dat").stat().st_size == before  # "already exists"
    # Filed under another key, the same record reads there as itself (Go's clone).
    clone = vs_pb2.WriteNeedleBlobRequest(volume_id=VID, needle_id=6, size=size, needle_blob=blob)
    assert call(tstub.WriteNeedleBlob, clone)[:2] == ("OK", "")
    r = requests.get(f"{dst.url}/{fid(VID, 6)}", timeout=10)
    assert r.status_code == 200 and r.content == data
    code, details, st = call(tstub.VolumeNeedleStatus, vs_pb2.VolumeNeedleStatusRequest(volume_id=VID, needle_id=6))
    assert code == "OK" and st.needle_id == 5, details


@pytest.mark.parametrize("kind", KINDS)
def test_write_needle_blob_refusals(cluster, tmp_path, kind):
    d = tmp_path / "v"
    srv, stub = with_volume(cluster, kind, d)
    upload(srv.url, VID, 5, b"a needle to copy")
    blob, size = needle_blob(stub, d, VID, 5)
    before = (d / f"{VID}.dat").read_bytes()

    def write(**f):
        return call(stub.WriteNeedleBlob, vs_pb2.WriteNeedleBlobRequest(**f))[:2]
    assert write(volume_id=4242, needle_id=5, size=size, needle_blob=blob) == ("UNKNOWN", "not found volume id 4242")
    pre = f"write blob needle 6 size {size}: needle 6"
    assert write(volume_id=VID, needle_id=6, size=size, needle_blob=blob[:10]) == \
        ("UNKNOWN", f"{pre} blob of 10 bytes is shorter than a needle header")
    assert write(volume_id=VID, needle_id=6, size=size + 1, needle_blob=blob) == \
        ("UNKNOWN", f"write blob needle 6 size {size + 1}: needle 6 size {size + 1} does not match its blob header size {size}")
    assert write(volume_id=VID, needle_id=6, size=size, needle_blob=blob + b"\0" * 8) == \
        ("UNKNOWN", f"{pre} blob of {len(blob) + 8} bytes does not match the {len(blob)} bytes size {size} takes in a version 3 volume")
    assert (d / f"{VID}.dat").read_bytes() == before
    state = call(stub.GetState, vs_pb2.GetStateRequest())[2].state
    assert call(stub.SetState, vs_pb2.SetStateRequest(state=vs_pb2.VolumeServerState(maintenance=True, version=state.version)))[0] == "OK"
    code, details = write(volume_id=VID, needle_id=5, size=size, needle_blob=blob)
    assert code == "UNKNOWN" and details.endswith("is in maintenance mode"), details
