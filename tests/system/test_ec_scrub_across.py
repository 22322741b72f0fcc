"""ScrubEcVolume FULL and READS of an EC volume whose shards are spread over a
kelp and a Go server: every live needle is read whole, its pieces from local
shards or from the other server. Corruption on the other server's shard, and
a shard that server no longer serves, must be reported by kelp as Go 4.48
reports them (FULL: the shards nobody served, never rebuilt; READS: rebuilt,
the unserved shard flagged without a text)."""
import random
import re

import requests

from conftest import wait_until
from grpc_stubs import call, vs_pb2, volume_stub
from test_ec_large_reads import OCTET, kelp_and_go
from test_ec_shards import TOTAL, ec_holders, shard_files
from test_shell_maintenance import run_shell
from test_vacuum import fid

VID = 13
FULL, READS = 2, 5


def scrub(srv, mode, force=False):
    code, details, r = call(volume_stub(srv.port).ScrubEcVolume,
                            vs_pb2.ScrubEcVolumeRequest(mode=mode, volume_ids=[VID], force_deleted_needles_check=force), timeout=120)
    assert code == "OK", details
    return (r.total_volumes, r.total_files, list(r.broken_volume_ids),
            [(i.volume_id, i.shard_id, i.size, i.collection) for i in r.broken_shard_infos], list(r.details))


def without_rebuilt_crc(answer):
    """A rebuilt piece's bytes depend on which ten shards rebuilt it: the CRC
    it is found with is each server's own."""
    return answer[:4] + ([re.sub(r"\(got [0-9a-f]+, want", "(got *, want", d) for d in answer[4]],)


def test_full_and_reads_scrubs_read_other_servers_pieces_as_go_does(cluster, tmp_path):
    dk, dg, kelp, go = kelp_and_go(cluster, tmp_path, VID)
    rng = random.Random(13)
    for key in range(1, 60):
        data = rng.randbytes(rng.randint(1000, 300_000))
        assert requests.post(f"{kelp.url}/{fid(VID, key)}", data=data, headers=OCTET, timeout=60).status_code == 201
    for key in (5, 6):
        assert requests.delete(f"{kelp.url}/{fid(VID, key)}", timeout=60).status_code == 202
    out = run_shell(cluster, f"lock\nec.encode -volumeId={VID} -force\nunlock", timeout=300)
    assert "error" not in out.lower(), out
    held = {"kelp": shard_files(dk, VID), "go": shard_files(dg, VID)}
    assert held["kelp"] and held["go"] and sorted(held["kelp"] + held["go"]) == list(range(TOTAL)), held
    assert wait_until(lambda: sorted(ec_holders(cluster, VID)) == list(range(TOTAL)), 30)

    servers = {"kelp": kelp, "go": go}
    for mode in (FULL, READS):
        got = {kind: scrub(srv, mode) for kind, srv in servers.items()}
        assert got["kelp"] == got["go"] == (1, 57, [], [], []), (mode, got)

    # One byte of a data shard on Go flipped: kelp reads that piece from Go and finds the needle's CRC wrong.
    rotten = min(s for s in held["go"] if s < 10)
    with open(dg / f"{VID}.ec{rotten:02d}", "r+b") as f:
        f.seek(5000)
        b = f.read(1)
        f.seek(5000)
        f.write(bytes([b[0] ^ 0xFF]))
    for mode in (FULL, READS):
        got = {kind: scrub(srv, mode) for kind, srv in servers.items()}
        assert got["kelp"] == got["go"], (mode, got)
        assert got["kelp"][2] == [VID] and len(got["kelp"][4]) == 1 and "invalid CRC" in got["kelp"][4][0]

    # A data shard Go stops serving (the master's answer both servers cached still names Go).
    gone = max(s for s in held["go"] if s < 10)
    assert call(volume_stub(go.port).VolumeEcShardsUnmount, vs_pb2.VolumeEcShardsUnmountRequest(volume_id=VID, shard_ids=[gone]))[0] == "OK"
    full = {kind: scrub(srv, FULL) for kind, srv in servers.items()}
    assert full["kelp"] == full["go"], full
    assert [i[1] for i in full["kelp"][3]] == [gone]
    assert any(d.startswith(f"failed to read EC shard {gone} for needle ") and "not found ec shard" in d for d in full["kelp"][4])
    assert full == {kind: scrub(srv, FULL, force=True) for kind, srv in servers.items()}
    reads = {kind: without_rebuilt_crc(scrub(srv, READS)) for kind, srv in servers.items()}
    assert reads["kelp"] == reads["go"], reads
    assert [i[1] for i in reads["kelp"][3]] == [gone] and not any("failed to read" in d for d in reads["kelp"][4])
