"""A regular volume's needles whose bytes changed on disk behind the server's
back, read from kelp and from Go 4.48 holding the same damaged files.

kelp reads a record of 128 KiB or more through a mapping of the .dat, and
streams a needle over 1 MiB from such mappings: a flipped byte gets Go's
answer and never a body, and a record cut off by a truncated .dat is a failed
read, not the end of the worker."""
import http.client
import shutil

import pytest
import requests

from conftest import assign, wait_http, worker_pids
from needle_records import HEADER, read_needles

COOKIE = 0x12345678
# The pread path, a mapped whole read, and two streamed needles (a record
# body over 1 MiB, Go's PagedReadLimit, streams: exactly 1 MiB of data is
# one); the mapped one comes last in the volume, for the truncation case.
SIZES = [10_000, 3 << 20, 17 << 20, 1 << 20, 200_000]
CHECK_FIRST_LIMIT = 16 << 20  # kelp checks a larger needle as it streams


def body_of(i, size):
    unit = bytes((i * 37 + k) % 251 for k in range(4096))
    return (unit * (size // len(unit) + 1))[:size]


def get(url, path):
    """(status, body, complete): `complete` is False when the connection closed
    before the announced Content-Length arrived."""
    host, port = url.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        c.request("GET", path)
        r = c.getresponse()
        try:
            return r.status, r.read(), True
        except http.client.IncompleteRead as e:
            return r.status, e.partial, False
    except (ConnectionError, http.client.RemoteDisconnected):
        return None, b"", False
    finally:
        c.close()


@pytest.fixture
def written(cluster, tmp_path):
    """A Go-written volume holding one needle of each size: (data dir, [(fid, body)])."""
    cluster.start_master(volume_size_limit_mb=64)
    base = tmp_path / "base"
    go = cluster.start_go_volume(base)
    fid, _ = assign(cluster.master)
    vid = fid.split(",")[0]
    blobs = []
    for i, size in enumerate(SIZES):
        f = f"{vid},{0x7000 + i:x}{COOKIE:08x}"
        b = body_of(i, size)
        r = requests.put(f"{go.url}/{f}", data=b, headers={"Content-Type": "application/octet-stream"}, timeout=60)
        assert r.status_code == 201, (r.status_code, r.text)
        blobs.append((f, b))
    go.stop()
    cluster.procs.remove(go)
    return base, vid, blobs


def two_copies(cluster, tmp_path, base):
    dirs = {k: tmp_path / k for k in ("go", "kelp")}
    for d in dirs.values():
        shutil.copytree(base, d)
        (d / "vol_dir.uuid").unlink()  # two servers of one master never share a directory's id
    return dirs


def start_both(cluster, dirs):
    go = cluster.start_go_volume(dirs["go"])
    kelp = cluster.start_kelp(dirs["kelp"])
    wait_http(kelp.url + "/healthz", timeout=30)
    return go, kelp


def test_a_flipped_data_byte_is_never_served_whole(cluster, tmp_path, written):
    base, vid, blobs = written
    dirs = two_copies(cluster, tmp_path, base)
    for d in dirs.values():
        records = read_needles(d / f"{vid}.dat")
        with open(d / f"{vid}.dat", "r+b") as f:
            for fid, b in blobs:
                rec = records[int(fid.split(",")[1][:-8], 16)]
                at = rec["offset"] + HEADER + 4 + len(b) // 2  # the middle of the data
                f.seek(at)
                byte = f.read(1)
                f.seek(at)
                f.write(bytes([byte[0] ^ 0x5A]))
    go, kelp = start_both(cluster, dirs)
    pids = worker_pids(kelp.pid)
    for fid, b in blobs:
        g = get(go.url, f"/{fid}")
        k = get(kelp.url, f"/{fid}")
        if len(b) <= CHECK_FIRST_LIMIT:
            assert g[0] != 200 and g[2], (fid, g[:1])
            if len(b) >= 1 << 20:
                assert g[1].startswith(b"ReadNeedleData checksum "), g[1]
            # Checked before the answer is committed: Go's status and body (an
            # empty 500 for a record read whole, the ReadNeedleData text for
            # one over 1 MiB that Go streams).
            assert (k[0], k[1], k[2]) == (g[0], g[1], True), (fid, len(b), k[:2], g[:2])
        else:
            # Checked as it streams, by both: the status line left first, and
            # the connection closes short (Go 4.48 after 16 MiB of 17; kelp
            # before its last piece).
            assert g[0] == 200 and not g[2] and len(g[1]) < len(b), (fid, g[0], g[2], len(g[1]))
            assert k[0] == 200 and not k[2] and len(k[1]) < len(b), (fid, k[0], k[2], len(k[1]))
    assert sorted(worker_pids(kelp.pid)) == sorted(pids), "an HTTP worker ended"


def test_a_record_cut_off_by_a_truncated_dat_is_a_failed_read(cluster, tmp_path, written):
    base, vid, blobs = written
    dirs = two_copies(cluster, tmp_path, base)
    go, kelp = start_both(cluster, dirs)
    pids = worker_pids(kelp.pid)
    for fid, b in blobs:
        assert get(kelp.url, f"/{fid}")[:2] == (200, b)
    last_fid, last = blobs[-1]
    for d in dirs.values():
        records = read_needles(d / f"{vid}.dat")
        rec = records[int(last_fid.split(",")[1][:-8], 16)]
        with open(d / f"{vid}.dat", "r+b") as f:
            f.truncate(rec["offset"] + HEADER + len(last) // 2)
    g = get(go.url, f"/{last_fid}")
    k = get(kelp.url, f"/{last_fid}")
    assert g[0] == 500 and g[2], g[:2]
    assert k[0] == g[0] and k[2], k[:2]
    # The worker that met the cut record is still the one serving, and the
    # needles before it read as before.
    assert sorted(worker_pids(kelp.pid)) == sorted(pids), "an HTTP worker ended"
    for fid, b in blobs[:-1]:
        assert get(kelp.url, f"/{fid}")[:2] == (200, b)
