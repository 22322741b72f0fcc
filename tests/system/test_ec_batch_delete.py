"""BatchDelete and VolumeNeedleStatus of needles of an erasure-coded volume
spread over a kelp and a Go server: the same batch, case for case, through
kelp and through Go 4.48 gives the same statuses, texts and sizes; each
delete is journaled by exactly one holder and every server reads the needle
as deleted afterwards; kelp's needle status equals Go's, wherever the
needle's pieces are."""
import json
import random
import struct

import requests

from conftest import wait_until
from grpc_stubs import call, vs_pb2, volume_stub
from test_ec_shards import TOTAL, ec_holders, shard_files
from test_ec_large_reads import kelp_and_go
from test_shell_maintenance import run_shell
from test_vacuum import fid

VID = 13
# Needle keys (offsets from each batch's base), spread over the whole volume so
# that each batch reaches the first shards of both servers.
LIVE = list(range(1, 60, 2))
WRONG_COOKIE, TWICE, SKIPPED, BY_HTTP = 2, 4, 6, 8
STILL_LIVE = [10, 12, 14]
DELETED_BEFORE, DELETED_BEFORE_TOO = 58, 60


def actual_size(size):
    """A version-3 record's length for a header size `size`: header, body, CRC, timestamp, padding to 8."""
    n = 16 + size + 4 + 8
    return n + (8 - n % 8)
OCTET = {"Content-Type": "application/octet-stream"}


def ecj_keys(d):
    """The needle ids journaled in a .ecj (8 bytes each, big-endian)."""
    raw = (d / f"{VID}.ecj").read_bytes()
    return {struct.unpack_from(">Q", raw, i)[0] for i in range(0, len(raw), 8)}


def batch(stub, fids, skip=False):
    code, details, r = call(stub.BatchDelete, vs_pb2.BatchDeleteRequest(file_ids=fids, skip_cookie_check=skip), timeout=60)
    assert code == "OK", details
    return [(x.file_id, x.status, x.error, x.size) for x in r.results]


def test_batch_delete_on_an_ec_volume_answers_as_go_does(cluster, tmp_path):
    dk, dg, kelp, go = kelp_and_go(cluster, tmp_path, VID)

    # Needles for each server's batch.
    rng = random.Random(13)
    base = {"kelp": 0, "go": 1000}
    lengths = [rng.randint(3000, 400_000) for _ in range(60)]
    for i, n in enumerate(lengths):  # interleaved: each batch's needles lie all over the shards
        for b in base.values():
            r = requests.post(f"{kelp.url}/{fid(VID, b + 1 + i)}", data=rng.randbytes(n), headers=OCTET, timeout=30)
            assert r.status_code == 201, r.text
    for b in base.values():
        manifest = json.dumps({"name": "m", "mime": "", "size": 0, "chunks": []}).encode()
        r = requests.post(f"{kelp.url}/{fid(VID, b + 500)}", params={"cm": "true"}, data=manifest, headers=OCTET, timeout=30)
        assert r.status_code == 201, r.text
        for key in (b + DELETED_BEFORE, b + DELETED_BEFORE_TOO):  # deleted before the encode
            assert requests.delete(f"{kelp.url}/{fid(VID, key)}", timeout=30).status_code == 202
    out = run_shell(cluster, f"lock\nec.encode -volumeId={VID} -force\nunlock", timeout=300)
    assert "error" not in out.lower(), out
    assert sorted(shard_files(dk, VID) + shard_files(dg, VID)) == list(range(TOTAL))
    assert wait_until(lambda: sorted(ec_holders(cluster, VID)) == list(range(TOTAL)), 30), ec_holders(cluster, VID)

    # Go 4.48 reports a deleted EC needle's size as the record length of a
    # record whose size is the record length: ActualSize(ActualSize(size)).
    go_stub = volume_stub(go.port)

    def reported(key):
        code, details, r = call(go_stub.VolumeNeedleStatus, vs_pb2.VolumeNeedleStatusRequest(volume_id=VID, needle_id=key))
        assert code == "OK", details
        return actual_size(actual_size(r.size))
    sizes = {key: reported(key) for b in base.values() for key in [b + k for k in LIVE + [TWICE, SKIPPED, BY_HTTP]]}

    # kelp's VolumeNeedleStatus equals Go's, for needles with pieces here and on Go.
    kelp_stub = volume_stub(kelp.port)
    for key in sorted(sizes) + [900, 1040]:
        answers = [call(stub.VolumeNeedleStatus, vs_pb2.VolumeNeedleStatusRequest(volume_id=VID, needle_id=key)) for stub in (kelp_stub, go_stub)]
        assert [(c, d, r.SerializeToString() if r else None) for c, d, r in answers] == \
            [(c, d, r.SerializeToString() if r else None) for c, d, r in answers[1:] * 2], (key, answers)

    results = {}
    for who, srv in (("kelp", kelp), ("go", go)):
        b = base[who]
        stub = volume_stub(srv.port)
        live = [fid(VID, b + k) for k in LIVE]
        checked = batch(stub, live + [
            f"{VID},{b + WRONG_COOKIE:x}deadbeef",
            fid(VID, b + 900),                 # not in the volume
            fid(VID, b + DELETED_BEFORE),
            fid(VID, b + 500),                 # a chunk manifest
            fid(VID, b + TWICE), fid(VID, b + TWICE),
            "not-a-fid",
        ])
        # Without the cookie check, Go 4.48 counts a needle deleted already as 0 bytes deleted: 304.
        skipped = batch(stub, [f"{VID},{b + SKIPPED:x}deadbeef", fid(VID, b + DELETED_BEFORE_TOO), fid(VID, b + 900), live[0]], skip=True)
        results[who] = [(status, error) for _, status, error, _ in checked + skipped]
        assert [f for f, *_ in checked + skipped][:len(LIVE)] == live
        deleted = {b + k: size for k, (_, status, _, size) in zip(LIVE + [0] * 4 + [TWICE], checked) if status == 202}
        deleted[b + SKIPPED] = skipped[0][3]
        assert deleted == {key: sizes[key] for key in deleted}, who
        # An HTTP DELETE answers the same size.
        r = requests.delete(f"{srv.url}/{fid(VID, b + BY_HTTP)}", timeout=30)
        assert r.status_code == 202 and r.json()["size"] == sizes[b + BY_HTTP], (who, r.text, sizes[b + BY_HTTP])

    assert results["kelp"] == results["go"], [
        (i, k, g) for i, (k, g) in enumerate(zip(results["kelp"], results["go"])) if k != g]
    statuses = [s for s, _ in results["kelp"]]
    assert statuses[:len(LIVE)] == [202] * len(LIVE), statuses
    assert statuses[len(LIVE):] == [400, 404, 404, 406, 202, 404, 400, 202, 500, 500, 304], statuses

    # Journaled once each (33 per server: 32 by its batches, 1 by HTTP; on
    # whichever server holds each needle's first shard), and deleted for every reader.
    gone = {b + k for b in base.values() for k in LIVE + [TWICE, SKIPPED, BY_HTTP]}
    journals = {name: ecj_keys(d) for name, d in (("kelp", dk), ("go", dg))}
    assert journals["kelp"] | journals["go"] == gone and not journals["kelp"] & journals["go"], journals
    # Each server's batch reached holders on both servers.
    for b in base.values():
        mine = {b + k for k in LIVE}
        assert journals["kelp"] & mine and journals["go"] & mine, (b, journals)
    for key in sorted(gone)[::7]:
        answers = [call(stub.VolumeNeedleStatus, vs_pb2.VolumeNeedleStatusRequest(volume_id=VID, needle_id=key))[:2] for stub in (kelp_stub, go_stub)]
        assert answers[0] == answers[1] == ("UNKNOWN", "already deleted"), (key, answers)
    for key in sorted(gone):
        for srv in (kelp, go):
            assert requests.get(f"{srv.url}/{fid(VID, key)}", timeout=30).status_code == 404, (srv.url, key)
    for b in base.values():
        for key in [b + WRONG_COOKIE] + [b + k for k in STILL_LIVE]:
            for srv in (kelp, go):
                assert requests.get(f"{srv.url}/{fid(VID, key)}", timeout=30).status_code == 200, (srv.url, key)
