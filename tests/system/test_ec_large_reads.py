"""Large needles of an erasure-coded volume read through kelp: the data is
streamed window by window from local shards and from a Go holder's, so an
HTTP worker's memory does not grow with the needle; lost shards are rebuilt
window by window; a needle whose CRC fails is never served whole.

Go 4.48 serves the same volume beside kelp, and its answers (status, length,
type, ranges, tags) are the expectation for kelp's."""
import http.client
import io
import random
from pathlib import Path

import requests
from PIL import Image

from conftest import wait_http, wait_until, worker_pids
from grpc_stubs import call, vs_pb2, volume_stub
from test_ec_shards import TOTAL, ec_holders, shard_files
from test_shell_maintenance import allocate, node, run_shell, wait_nodes
from test_vacuum import fid, idx_rows

VID = 11
OCTET = {"Content-Type": "application/octet-stream"}
MiB = 1 << 20
BIG = 101  # 40 MiB, its type left to sniffing
PICTURE = 103  # a PNG of more than 1 MiB, resized on the way out
# An HTTP worker holds a few stream windows, a rebuild's inputs and its
# allocator's caches (about 6 MiB healthy, 11 MiB degraded, whatever the
# needle's size); a needle read whole would add all of its 40 MiB.
MEMORY_BOUND = 20 * MiB
RANGES = ("bytes=0-99", "bytes=1000-2999999", "bytes=-5000", "bytes=20000000-", "bytes=0-9,3000000-3000009")


def kelp_and_go(cluster, tmp_path, vid, **kelp_options):
    """A master, a kelp and a Go volume server that trust loopback peers, and
    volume `vid` allocated on kelp. Returns (kelp dir, Go dir, kelp, Go)."""
    cluster.start_master(volume_size_limit_mb=64)
    dk, dg = tmp_path / "kelp", tmp_path / "go"
    kelp = cluster.start_kelp(dk, extra=("-volume.allowUntrustedRemoteEndpoints",), **kelp_options)
    go = cluster.start_go_volume(dg, extra=("-preStopSeconds=0", "-volume.allowUntrustedRemoteEndpoints"))
    for srv in (kelp, go):
        wait_http(srv.url + "/healthz", timeout=30)
    wait_nodes(cluster, [kelp, go])
    allocate(kelp, vid)
    return dk, dg, kelp, go


def reset_peak_rss(pid):
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from the current RSS


def peak_rss(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def headers_of(r):
    h = {k: r.headers.get(k) for k in ("Content-Length", "Content-Range", "Etag", "Last-Modified", "Accept-Ranges")}
    ctype = r.headers.get("Content-Type", "")
    h["Content-Type"] = "multipart/byteranges" if ctype.startswith("multipart/byteranges") else ctype
    if h["Content-Type"] == "multipart/byteranges":
        h["Content-Length"] = None  # the boundary is each server's own
    return r.status_code, h


def shard_span(ecx, key, shard_size, size):
    """The data shards holding needle `key`'s record (Go 4.48's layout: one row
    of blocks of the shard size)."""
    offset = next(o for k, o, _ in idx_rows(ecx) if k == key)
    return set(range(offset // shard_size, (offset + size - 1) // shard_size + 1)), offset


def corrupt_byte(dirs, first, last, shard_size):
    """Flips a .dat byte in [first, last) that a shard file still holds (the
    first one found, 1 MiB apart)."""
    for offset in range(first, last, MiB):
        shard, at = divmod(offset, shard_size)
        for d in dirs:
            p = d / f"{VID}.ec{shard:02d}"
            if p.exists():
                with open(p, "r+b") as f:
                    f.seek(at)
                    b = f.read(1)
                    f.seek(at)
                    f.write(bytes([b[0] ^ 0xFF]))
                return
    raise AssertionError("no shard file holds the range")


def test_large_ec_needles_stream_from_local_and_go_shards_in_bounded_memory(cluster, tmp_path):
    # One HTTP worker whose freed memory goes back at once (no ASan quarantine), so its peak RSS tells.
    dk, dg, kelp, go = kelp_and_go(cluster, tmp_path, VID, workers=1, asan_options="quarantine_size_mb=0")
    rng = random.Random(11)
    blobs = {key: rng.randbytes(rng.randint(1000, 100_000)) for key in range(1, 21)}
    blobs[100] = rng.randbytes(3 * MiB)
    blobs[BIG] = b"<html><body>" + rng.randbytes(40 * MiB - 12)
    blobs[102] = rng.randbytes(2 * MiB)
    png = io.BytesIO()
    Image.frombytes("RGB", (700, 700), rng.randbytes(700 * 700 * 3)).save(png, "PNG")
    blobs[PICTURE] = png.getvalue()
    assert len(blobs[PICTURE]) > MiB
    for key, data in blobs.items():
        if key == BIG:  # a form part without a type: none is stored
            r = requests.post(f"{kelp.url}/{fid(VID, key)}", files={"file": ("page", data)}, timeout=60)
        elif key == PICTURE:
            r = requests.post(f"{kelp.url}/{fid(VID, key)}", files={"file": ("noise.png", data, "image/png")}, timeout=60)
        else:
            r = requests.post(f"{kelp.url}/{fid(VID, key)}", data=data, headers=OCTET, timeout=60)
        assert r.status_code == 201, r.text
    out = run_shell(cluster, f"lock\nec.encode -volumeId={VID} -force\nunlock", timeout=300)
    assert "error" not in out.lower(), out
    held = {"kelp": shard_files(dk, VID), "go": shard_files(dg, VID)}
    assert sorted(held["kelp"] + held["go"]) == list(range(TOTAL)), held
    assert wait_until(lambda: sorted(ec_holders(cluster, VID)) == list(range(TOTAL)), 30), ec_holders(cluster, VID)

    # The big needle spans shards on both servers: kelp streams local and remote pieces.
    ecx = next(p for p in (dk / f"{VID}.ecx", dg / f"{VID}.ecx") if p.exists())
    shard_size = (dk / f"{VID}.ec{held['kelp'][0]:02d}").stat().st_size
    span, big_at = shard_span(ecx, BIG, shard_size, len(blobs[BIG]))
    assert span & set(held["kelp"]) and span & set(held["go"]), (span, held)

    # Warm up the worker (descriptors, channels to Go) with small reads only.
    for key in range(1, 21):
        r = requests.get(f"{kelp.url}/{fid(VID, key)}", timeout=30)
        assert r.status_code == 200 and r.content == blobs[key], key
    [worker] = worker_pids(kelp.p.pid)
    reset_peak_rss(worker)
    before = peak_rss(worker)

    # Whole reads through both servers, with Go's headers.
    types = {}
    for key in (100, BIG, 102):
        answers = {}
        for name, srv in (("kelp", kelp), ("go", go)):
            r = requests.get(f"{srv.url}/{fid(VID, key)}", timeout=120)
            assert r.status_code == 200 and r.content == blobs[key], (name, key, r.status_code)
            answers[name] = headers_of(r)
        assert answers["kelp"] == answers["go"], (key, answers)
        types[key] = answers["kelp"][1]["Content-Type"]
    assert types[BIG].startswith("text/html") and types[100] == "application/octet-stream", types
    grown = peak_rss(worker) - before
    assert grown < MEMORY_BOUND, f"the HTTP worker's peak RSS grew by {grown} bytes reading a {len(blobs[BIG])}-byte needle"

    # Ranges and HEAD, as Go answers them.
    for rng_header in RANGES:
        got = {}
        for name, srv in (("kelp", kelp), ("go", go)):
            r = requests.get(f"{srv.url}/{fid(VID, BIG)}", headers={"Range": rng_header}, timeout=120)
            got[name] = (headers_of(r), r.content if r.status_code == 206 and "multipart" not in r.headers["Content-Type"] else None)
            if "," in rng_header:
                assert blobs[BIG][0:10] in r.content and blobs[BIG][3000000:3000010] in r.content, name
        assert got["kelp"] == got["go"], (rng_header, got["kelp"][0], got["go"][0])
    heads = [headers_of(requests.head(f"{srv.url}/{fid(VID, BIG)}", timeout=30)) for srv in (kelp, go)]
    assert heads[0] == heads[1], heads
    # A resize needs the whole picture: it is read whole, then resized as Go resizes it.
    sizes = []
    for srv in (kelp, go):
        r = requests.get(f"{srv.url}/{fid(VID, PICTURE)}", params={"width": 100}, timeout=60)
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/png", (srv.url, r.status_code)
        sizes.append(Image.open(io.BytesIO(r.content)).size)
    assert sizes[0] == sizes[1] == (100, 100), sizes
    r = requests.get(f"{kelp.url}/{fid(VID, PICTURE)}", timeout=60)
    assert r.status_code == 200 and r.content == blobs[PICTURE]

    # Two of kelp's shards under the needle lost: each window is rebuilt from the other shards.
    lost = sorted(span & set(held["kelp"]))[:2]
    stub = volume_stub(kelp.port)
    assert call(stub.VolumeEcShardsUnmount, vs_pb2.VolumeEcShardsUnmountRequest(volume_id=VID, shard_ids=lost))[0] == "OK"
    assert call(stub.VolumeEcShardsDelete, vs_pb2.VolumeEcShardsDeleteRequest(volume_id=VID, shard_ids=lost))[0] == "OK"
    assert wait_until(lambda: not set(lost) & set(ec_holders(cluster, VID)), 30), ec_holders(cluster, VID)
    for key in (100, BIG, 102):
        r = requests.get(f"{kelp.url}/{fid(VID, key)}", timeout=120)
        assert r.status_code == 200 and r.content == blobs[key], (key, r.status_code)
    r = requests.get(f"{kelp.url}/{fid(VID, BIG)}", headers={"Range": "bytes=1000-2999999"}, timeout=120)
    assert r.status_code == 206 and r.content == blobs[BIG][1000:3000000]
    grown = peak_rss(worker) - before
    assert grown < MEMORY_BOUND, f"the HTTP worker's peak RSS grew by {grown} bytes on degraded reads"

    # A large needle deleted through kelp: journaled, then gone everywhere.
    r = requests.delete(f"{kelp.url}/{fid(VID, 102)}", timeout=60)
    assert r.status_code == 202 and r.json()["size"] > len(blobs[102]), r.text
    for srv in (kelp, go):
        assert requests.get(f"{srv.url}/{fid(VID, 102)}", timeout=30).status_code == 404, srv.url

    # One flipped byte in the middle of the big needle's data: the body is cut
    # short of its length (the connection closes), never served whole; a range
    # that does not cover the whole data is served as stored, as on a regular volume.
    corrupt_byte((dk, dg), big_at + 4 * MiB, big_at + len(blobs[BIG]), shard_size)
    conn = http.client.HTTPConnection("127.0.0.1", kelp.port, timeout=120)
    conn.request("GET", f"/{fid(VID, BIG)}")
    resp = conn.getresponse()
    assert resp.status == 200 and int(resp.getheader("Content-Length")) == len(blobs[BIG])
    try:
        body = resp.read()
        cut = len(body) < len(blobs[BIG])
    except http.client.IncompleteRead as e:
        cut = len(e.partial) < len(blobs[BIG])
    assert cut, "a needle whose CRC fails was served whole"
    conn.close()
    r = requests.get(f"{kelp.url}/{fid(VID, 100)}", timeout=30)
    assert r.status_code == 200 and r.content == blobs[100]
    assert kelp.p.poll() is None
