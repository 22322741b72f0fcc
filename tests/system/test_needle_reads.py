"""Maintenance reads, kelp against the Go volume server: VolumeSyncStatus,
ReadNeedleBlob and ReadNeedleMeta, and the tombstone a delete leaves.

Both servers get the same volume and the same uploads in the same order, so
their needles sit at the same offsets (the .idx of each says where). Answers
are compared field by field; what legitimately differs (write times) is
checked against each server's own files instead.
"""
import struct
import time

import requests

from grpc_stubs import call, vs_pb2
from test_grpc_admin import both, same

VID = 77
COOKIE = 0x1a2b3c4d
IDX_ENTRY = struct.Struct(">QIBi")  # id, offset (4 low bytes), 5th offset byte, size: the 5-byte build


def fid(key):
    return f"{VID},{key:x}{COOKIE:08x}"


def idx_entries(d):
    """[(needle id, byte offset, size)] of the volume's .idx, in order."""
    raw = (d / f"{VID}.idx").read_bytes()
    out = []
    for i in range(0, len(raw), IDX_ENTRY.size):
        key, low, high, size = IDX_ENTRY.unpack_from(raw, i)
        out.append((key, ((high << 32) | low) * 8, size))
    return out


def put(url, key, body, **params):
    r = requests.put(f"{url}/{fid(key)}", data=body, params=params, headers={"Content-Type": "application/octet-stream"}, timeout=10)
    assert r.status_code == 201, (url, r.status_code, r.text)


def test_maintenance_reads_match_go(cluster, tmp_path):
    servers = both(cluster, tmp_path)
    for name, srv, d, stub in servers:
        code, details, _ = call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))
        assert code == "OK", (name, details)
        put(srv.url, 1, b"a" * 100)
        put(srv.url, 2, b"b" * 5000)
        put(srv.url, 3, b"c" * 10, ttl="3d")
        assert requests.delete(f"{srv.url}/{fid(2)}", timeout=10).status_code == 202, name
    entries = same([(n, [(k, o, s) for k, o, s in idx_entries(d)]) for n, _, d, _ in servers])
    live = {k: (o, s) for k, o, s in entries if s > 0}
    tombstone = [(k, o, s) for k, o, s in entries if s < 0]
    assert set(live) == {1, 2, 3} and tombstone, entries

    # The tombstone record is Go's, byte for byte, but for its write time
    # (Go's carries the checksum of the needle it deletes).
    key, offset, _ = tombstone[-1]
    records = []
    for name, _, d, _ in servers:
        record = (d / f"{VID}.dat").read_bytes()[offset:offset + 32]
        records.append((name, record[:20] + record[28:]))
    assert same(records)[16:20] != bytes(4)

    # Whole-volume figures.
    sync = []
    for name, _, _, stub in servers:
        code, details, r = call(stub.VolumeSyncStatus, vs_pb2.VolumeSyncStatusRequest(volume_id=VID))
        sync.append((name, (code, details, r and (r.volume_id, r.collection, r.replication, r.ttl, r.tail_offset,
                                                  r.compact_revision, r.idx_file_size, r.version))))
    got = same(sync)
    assert got[2][4] == (servers[1][2] / f"{VID}.dat").stat().st_size and got[2][6] == (servers[1][2] / f"{VID}.idx").stat().st_size
    for method, req in (("VolumeSyncStatus", vs_pb2.VolumeSyncStatusRequest(volume_id=999)),
                        ("ReadNeedleBlob", vs_pb2.ReadNeedleBlobRequest(volume_id=999, offset=8, size=10)),
                        ("ReadNeedleMeta", vs_pb2.ReadNeedleMetaRequest(volume_id=999, needle_id=1, offset=8, size=10))):
        code, details = same([(n, call(getattr(s, method), req)[:2]) for n, _, _, s in servers])
        assert code != "OK", (method, details)

    # Needle blobs: the record as stored, header included.
    for key, (offset, size) in live.items():
        blobs = []
        for name, _, d, stub in servers:
            code, details, r = call(stub.ReadNeedleBlob, vs_pb2.ReadNeedleBlobRequest(volume_id=VID, offset=offset, size=size))
            assert code == "OK", (name, key, details)
            on_disk = (d / f"{VID}.dat").read_bytes()[offset:offset + len(r.needle_blob)]
            assert r.needle_blob == on_disk, (name, key)
            blobs.append((name, (len(r.needle_blob), r.needle_blob[:16])))  # length, cookie, id and size agree
        same(blobs)
    # A size that runs past the end of the file, and a size the record does not have.
    last_offset, last_size = live[3]
    for req in (vs_pb2.ReadNeedleBlobRequest(volume_id=VID, offset=last_offset, size=last_size + 4096),
                vs_pb2.ReadNeedleBlobRequest(volume_id=VID, offset=1 << 30, size=10)):
        same([(n, call(s.ReadNeedleBlob, req)[:2]) for n, _, _, s in servers])

    # Needle metadata, live and deleted; the write times are each server's own.
    for key, offset, size in [(k, o, s) for k, (o, s) in live.items()] + tombstone:
        metas, times = [], []
        for name, _, _, stub in servers:
            code, details, r = call(stub.ReadNeedleMeta, vs_pb2.ReadNeedleMetaRequest(volume_id=VID, needle_id=key, offset=offset, size=size))
            metas.append((name, (code, details, r and (r.cookie, r.crc, r.ttl))))
            times.append(r and (r.last_modified, r.append_at_ns))
        code = same(metas)[0]
        if code == "OK":
            for last_modified, append_at_ns in times:
                assert append_at_ns > 0 and abs(append_at_ns / 1e9 - time.time()) < 600, times
                assert (last_modified == 0) == (times[0][0] == 0), times
    # Wrong size, and an offset past the end.
    offset, size = live[1]
    for req in (vs_pb2.ReadNeedleMetaRequest(volume_id=VID, needle_id=1, offset=offset, size=size + 1),
                vs_pb2.ReadNeedleMetaRequest(volume_id=VID, needle_id=1, offset=1 << 30, size=size)):
        code, details = same([(n, call(s.ReadNeedleMeta, req)[:2]) for n, _, _, s in servers])
        assert code != "OK", details
