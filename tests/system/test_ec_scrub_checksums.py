"""ScrubEcVolume in CHECKSUM mode: each local shard against the .ecsum that
was read when the volume was mounted, as Go 4.48 checks it. The same files
(encoded by each server from one Go-written volume) are damaged the same way
behind both servers' backs, and kelp's answer must be Go's: flagged shards,
details, and the sidecar verdicts (stale entry cleared by Reed-Solomon, mass
mismatch called a suspect sidecar, malformed sidecar, no sidecar)."""
from grpc_stubs import vs_pb2
from test_ec_generate import crc32c, parse_ecsum
from test_ec_rebuild_decode import TOTAL, VID, encoded_pair, mount, scrub, shard_path, unmount

CHECKSUM = 4


def answers(servers):
    out = {}
    for kind, (srv, _) in servers.items():
        code, details, r = scrub(srv, CHECKSUM, (VID,))
        assert code == "OK", (kind, details)
        out[kind] = (r.total_volumes, r.total_files, list(r.broken_volume_ids),
                     [(i.volume_id, i.shard_id, i.size, i.collection) for i in r.broken_shard_infos], list(r.details))
    return out


def same(servers):
    got = answers(servers)
    assert got["kelp"] == got["go"], got
    return got["kelp"]


def remount(servers):
    for kind, (srv, _) in servers.items():
        assert unmount(srv, list(range(TOTAL)))[0] == "OK", kind
        assert mount(srv, list(range(TOTAL)))[0] == "OK", kind


def flip(d, shard, at):
    with open(shard_path(d, shard), "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x40]))


def sidecar_with(msg):
    payload = msg.SerializeToString()
    return (0x45435355).to_bytes(4, "big") + (1).to_bytes(2, "big") + len(payload).to_bytes(4, "big") + \
        crc32c(payload).to_bytes(4, "big") + payload


def test_checksum_scrub_of_ec_volumes_answers_as_go_does(cluster, tmp_path):
    servers, _, _ = encoded_pair(cluster, tmp_path)
    for kind, (srv, _) in servers.items():
        assert mount(srv, list(range(TOTAL)))[0] == "OK", kind
    good = {kind: (d / f"{VID}.ecsum").read_bytes() for kind, (_, d) in servers.items()}
    shard_size = shard_path(servers["kelp"][1], 0).stat().st_size

    assert same(servers) == (1, 0, [], [], [])

    # A stale entry (shard 5's first CRC) over good bytes: reported, then cleared by Reed-Solomon.
    for kind, (_, d) in servers.items():
        msg = parse_ecsum(good[kind])
        entry = next(s for s in msg.shards if s.shard_id == 5)
        crcs = bytearray(entry.block_crc32c)
        crcs[0] ^= 1
        entry.block_crc32c = bytes(crcs)
        (d / f"{VID}.ecsum").write_bytes(sidecar_with(msg))
    assert same(servers) == (1, 0, [], [], []), "the sidecar is read at mount"
    remount(servers)
    got = same(servers)
    assert got[2] == [VID] and got[3] == []
    assert got[4] == [f"ec volume {VID} shard 5: checksum mismatch at block 0 (offset 0)",
                      f"ec volume {VID} shard 5: sidecar mismatch but Reed-Solomon confirms the bytes are correct: stale sidecar, not flagging shard"]

    # Rot in a data shard, and a parity shard cut short after the mount.
    for kind, (_, d) in servers.items():
        (d / f"{VID}.ecsum").write_bytes(good[kind])
    remount(servers)
    for _, d in servers.values():
        flip(d, 2, 100)
        with open(shard_path(d, 12), "r+b") as f:
            f.truncate(1000)
    got = same(servers)
    assert got[3] == [(VID, 2, shard_size, ""), (VID, 12, shard_size, "")]
    assert got[4][0] == f"ec volume {VID} shard 2: checksum mismatch at block 0 (offset 0)"
    assert got[4][1].startswith(f"ec volume {VID} shard 12: read block 0 at 0: EOF (got 1000/")

    # More mismatching shards than parity shards: the sidecar is suspect, no shard is flagged.
    for _, d in servers.values():
        for s in (0, 4, 7):
            flip(d, s, 10)
    got = same(servers)
    assert got[3] == [] and got[4] == [
        f"ec volume {VID}: 5/{TOTAL} local shards mismatch (> parity 4): suspect stale sidecar, not flagging shard corruption"]

    # A sidecar that fails its own CRC, then none at all (each read at the next mount).
    for _, d in servers.values():
        raw = bytearray((d / f"{VID}.ecsum").read_bytes())
        raw[30] ^= 1
        (d / f"{VID}.ecsum").write_bytes(bytes(raw))
    remount(servers)
    assert same(servers) == (1, 0, [VID], [], [f"ec volume {VID}: bitrot sidecar is malformed/unverifiable (sidecar integrity)"])
    for _, d in servers.values():
        (d / f"{VID}.ecsum").unlink()
    remount(servers)
    assert same(servers) == (1, 0, [], [], [])
