"""ScrubVolume (docs/scrub-query-receive.md §2): the same volumes, written the
same way and damaged the same way behind the server's back, scrubbed on Go
4.48 and on kelp; the counts, broken ids and every detail text must agree."""
import json
import random
import struct

import pytest

from grpc_stubs import call, vs_pb2
from test_vacuum import KINDS, VID, delete, idx_rows, upload, with_volume

INDEX, FULL, LOCAL, READS = 1, 2, 3, 5


def scrub(stub, mode, ids=(), mark=False):
    req = vs_pb2.ScrubVolumeRequest(mode=mode, volume_ids=list(ids), mark_broken_volumes_readonly=mark)
    return call(stub.ScrubVolume, req, timeout=60)


def result(r):
    return (r.total_volumes, r.total_files, list(r.broken_volume_ids), list(r.details))


def written(cluster, tmp_path, kind):
    """A server with volume VID: three uploads, an overwrite and a delete (5 .idx rows)."""
    d = tmp_path / kind
    srv, stub = with_volume(cluster, kind, d)
    rng = random.Random(31)
    for key in (1, 2, 3):
        upload(srv.url, VID, key, rng.randbytes(2000 + key))
    upload(srv.url, VID, 2, rng.randbytes(1500))
    delete(srv.url, VID, 3)
    return srv, stub, d


@pytest.fixture
def both(cluster, tmp_path):
    cluster.start_master()
    return {kind: written(cluster, tmp_path, kind) for kind in KINDS}


def test_healthy_volumes_count_every_row(both):
    for kind, (srv, stub, d) in both.items():
        for mode in (INDEX, FULL, LOCAL, READS):
            code, details, r = scrub(stub, mode, [VID])
            assert code == "OK", (kind, mode, details)
            assert result(r) == (1, 5, [], []), (kind, mode)
        # No ids: every volume of the server.
        code, _, r = scrub(stub, INDEX)
        assert code == "OK" and (r.total_volumes, r.total_files) == (1, 5), kind


def test_refusals(both):
    for kind, (srv, stub, d) in both.items():
        for mode in (0, 4, 99):
            assert scrub(stub, mode, [VID])[:2] == ("UNKNOWN", f"unsupported volume scrub mode {mode}"), kind
        # The volume is looked up before the mode is checked.
        assert scrub(stub, 99, [99999])[:2] == ("UNKNOWN", "volume id 99999 not found"), kind
        assert scrub(stub, FULL, [VID, 99999])[:2] == ("UNKNOWN", "volume id 99999 not found"), kind


def damaged_results(both, damage, mode):
    out = {}
    for kind, (srv, stub, d) in both.items():
        damage(d)
        code, details, r = scrub(stub, mode, [VID])
        assert code == "OK", (kind, details)
        out[kind] = result(r)
    return out


def test_an_index_that_is_not_whole_rows(both):
    def damage(d):
        with open(d / f"{VID}.idx", "ab") as f:
            f.write(b"\xde\xad")
    for mode in (INDEX, FULL):
        out = damaged_results(both, damage if mode == INDEX else (lambda d: None), mode)
        assert out["kelp"] == out["go"], out
        rows = 5 * 17
        assert out["go"] == (1, 5, [VID], [f"expected an index file of size {rows + 2}, got {rows}"])


def test_overlapping_rows(both):
    """A row that points into another record (the file damaged behind the server)."""
    def damage(d):
        first = idx_rows(d / f"{VID}.idx")[0]
        units = (first[1] + 8) // 8
        with open(d / f"{VID}.idx", "ab") as f:
            f.write(struct.pack(">QIBi", 77, units & 0xFFFFFFFF, units >> 32, 100))
    out = damaged_results(both, damage, INDEX)
    assert out["kelp"] == out["go"], out
    assert out["go"][2] == [VID] and any("overlaps needle 1 at [" in t for t in out["go"][3])


def test_a_truncated_data_file(both):
    def damage(d):
        with open(d / f"{VID}.dat", "r+b") as f:
            f.truncate(8)
    out = damaged_results(both, damage, FULL)
    assert out["kelp"] == out["go"], out
    total, files, broken, details = out["go"]
    assert (total, files, broken) == (1, 5, [VID])
    assert f"failed to read needle 1 on volume {VID}: EOF" in details
    # The index alone is still whole.
    for kind, (srv, stub, d) in both.items():
        assert result(scrub(stub, INDEX, [VID])[2]) == (1, 5, [], []), kind


def test_a_flipped_data_byte(both):
    def damage(d):
        row = [r for r in idx_rows(d / f"{VID}.idx") if r[0] == 1][-1]
        with open(d / f"{VID}.dat", "r+b") as f:
            f.seek(row[1] + 16 + 4 + 100)
            b = f.read(1)
            f.seek(row[1] + 16 + 4 + 100)
            f.write(bytes([b[0] ^ 0xFF]))
    out = damaged_results(both, damage, FULL)
    assert out["kelp"] == out["go"], out
    assert out["go"][2] == [VID] and out["go"][3][0].startswith(f"failed to read needle 1 on volume {VID}: invalid CRC for needle 1 (got ")


@pytest.mark.parametrize("maintenance", [False, True])
def test_broken_volumes_are_marked_read_only(both, maintenance):
    """Even in maintenance mode (Go 4.48 marks them; 4.44 refused)."""
    for kind, (srv, stub, d) in both.items():
        with open(d / f"{VID}.idx", "ab") as f:
            f.write(b"\xde\xad")
        assert not call(stub.VolumeStatus, vs_pb2.VolumeStatusRequest(volume_id=VID))[2].is_read_only
        if maintenance:
            state = call(stub.GetState, vs_pb2.GetStateRequest())[2].state
            assert call(stub.SetState, vs_pb2.SetStateRequest(
                state=vs_pb2.VolumeServerState(maintenance=True, version=state.version)))[0] == "OK"
        code, details, r = scrub(stub, INDEX, [VID], mark=True)
        assert code == "OK", (kind, details)
        assert list(r.broken_volume_ids) == [VID] and r.details[-1] == f"volume {VID} is now read-only", kind
        assert call(stub.VolumeStatus, vs_pb2.VolumeStatusRequest(volume_id=VID))[2].is_read_only, kind
        assert json.loads((d / f"{VID}.vif").read_text()).get("readOnly") is True, kind


def test_scrubs_while_writes_go_on_find_nothing(both):
    """Writes keep landing during every scrub (Go holds them, kelp does not);
    a healthy volume is never reported broken."""
    import threading
    for kind, (srv, stub, d) in both.items():
        stop = threading.Event()

        def writes():
            key = 100
            while not stop.is_set():
                upload(srv.url, VID, key, b"x" * (key % 700 + 1))
                key += 1
        t = threading.Thread(target=writes)
        t.start()
        try:
            for _ in range(15):
                for mode in (INDEX, FULL):
                    code, details, r = scrub(stub, mode, [VID])
                    assert code == "OK" and list(r.broken_volume_ids) == [], (kind, mode, details, list(r.details))
        finally:
            stop.set()
            t.join()


def test_ec_scrub_without_ec_volumes(both):
    for kind, (srv, stub, d) in both.items():
        req = vs_pb2.ScrubEcVolumeRequest
        code, details, r = call(stub.ScrubEcVolume, req(mode=INDEX))
        assert code == "OK" and (r.total_volumes, list(r.broken_volume_ids)) == (0, []), (kind, details)
        assert call(stub.ScrubEcVolume, req(mode=INDEX, volume_ids=[4242]))[:2] == ("UNKNOWN", "EC volume id 4242 not found"), kind
        assert call(stub.ScrubEcVolume, req(mode=INDEX, force_deleted_needles_check=True))[:2] == \
            ("UNKNOWN", "deleted needle checks are only supported for FULL and READS scrubs"), kind
