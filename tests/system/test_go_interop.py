"""An operator swaps `weed volume` for kelp on the same directories and back:
every blob stays readable, byte for byte, in both directions."""
import filecmp
import random
import shutil
import subprocess

import requests

from conftest import WEED, Cluster, copy_tree, free_port

COMPARED_HEADERS = ["Content-Type", "Etag", "Last-Modified", "Content-Disposition", "Accept-Ranges", "Content-Encoding"]


def test_kelp_serves_every_go_written_blob(go_dataset, tmp_path, cluster):
    data, blobs = go_dataset
    d = copy_tree(data, tmp_path / "data")
    kelp = cluster.start_kelp(d)
    session = requests.Session()
    moved = 0
    for fid, (name, content, go_resp) in blobs.items():
        r = session.get(f"{kelp.url}/{fid}", timeout=30)
        assert r.status_code == 200, (fid, r.status_code)
        assert r.content == content, f"{fid} ({name}, {len(content)} bytes) differs"
        for h in COMPARED_HEADERS:
            assert r.headers.get(h) == go_resp.headers.get(h), (fid, h, r.headers.get(h), go_resp.headers.get(h))
        moved += len(content)
        # The /vid/fid and /vid/fid/name forms name the same blob.
        vid, rest = fid.split(",")
        if len(content) < 65536:
            assert session.get(f"{kelp.url}/{vid}/{rest}", timeout=10).content == content
            assert session.get(f"{kelp.url}/{vid}/{rest}/{name}", timeout=10).content == content
    assert len(blobs) >= 300 and moved > 10 << 20
    # kelp changed nothing by reading.
    for f in data.iterdir():
        if f.suffix in (".dat", ".idx"):
            assert filecmp.cmp(f, d / f.name, shallow=False), f.name


def test_go_serves_kelp_writes_and_weed_fix_agrees(go_dataset, tmp_path):
    data, blobs = go_dataset
    d = copy_tree(data, tmp_path / "data")
    rng = random.Random(7)
    c = Cluster(tmp_path)
    try:
        kelp = c.start_kelp(d)
        vids = sorted({fid.split(",")[0] for fid in blobs})
        new = {}
        for i in range(120):
            vid = vids[i % len(vids)]
            key, cookie = 0x10000000 + i, rng.getrandbits(32)
            fid = f"{vid},{key:x}{cookie:08x}"
            size = [0, 1, 100, 5000, 70000, 1 << 20, (2 << 20) - 3][i % 7]
            content = rng.randbytes(size)
            r = requests.post(f"{kelp.url}/{fid}", files={"file": (f"k{i}.bin", content)}, timeout=30)
            assert r.status_code == 201, r.text
            assert r.json()["eTag"]
            new[fid] = content
        # Overwrite one Go blob and delete a few others through kelp.
        old = list(blobs)
        deleted = set(old[:10])
        for fid in deleted:
            r = requests.delete(f"{kelp.url}/{fid}", timeout=10)
            assert r.status_code == 202, r.text
            assert requests.get(f"{kelp.url}/{fid}", timeout=10).status_code == 404
        c.stop_all()

        c.start_master()
        go = c.start_go_volume(d)
        s = requests.Session()
        for fid, content in new.items():
            r = s.get(f"{go.url}/{fid}", timeout=30)
            assert r.status_code == 200 and r.content == content, fid
        for fid, (name, content, _) in blobs.items():
            r = s.get(f"{go.url}/{fid}", timeout=30)
            if fid in deleted:
                assert r.status_code == 404, fid
            else:
                assert r.status_code == 200 and r.content == content, fid
        st = s.get(f"{go.url}/status", timeout=10).json()
        assert not any(v["ReadOnly"] for v in st["Volumes"]), "Go found a volume kelp wrote inconsistent"
        c.stop_all()
    finally:
        c.stop_all()

    # `weed fix` rebuilds each .idx from its .dat; the result must equal kelp's,
    # entry for entry. The one accepted difference is Go's own: its server indexes
    # an empty upload with size 0 and `weed fix` rebuilds that entry as a
    # tombstone (-1); the pristine Go-written files show the same.
    checked = 0
    for idx in sorted(d.glob("*.idx")):
        rebuilt = weed_fix(d, idx.stem, tmp_path / "fixed")
        assert_idx_equal_modulo_empty(idx.read_bytes(), rebuilt, idx.name)
        assert_idx_equal_modulo_empty((data / idx.name).read_bytes(), weed_fix(data, idx.stem, tmp_path / "fixed-go"),
                                      "pristine " + idx.name)
        checked += 1
    assert checked >= 3


ENTRY = 17  # the pinned weed is a 5-byte-offset build, and so is the test build of kelp


def weed_fix(src_dir, base, out_root):
    collection, _, vid = base.rpartition("_")
    work = out_root / base
    work.mkdir(parents=True)
    shutil.copy(src_dir / f"{base}.dat", work / f"{base}.dat")
    args = [str(WEED), "fix", f"-volumeId={vid}"]
    if collection:
        args.append(f"-collection={collection}")
    subprocess.run(args + [str(work)], check=True, capture_output=True, timeout=120)
    return (work / f"{base}.idx").read_bytes()


def assert_idx_equal_modulo_empty(ours, fixed, what):
    assert len(ours) % ENTRY == 0 and len(fixed) % ENTRY == 0, what
    assert len(ours) == len(fixed), f"{what}: {len(ours) // ENTRY} entries, weed fix made {len(fixed) // ENTRY}"
    for i in range(0, len(ours), ENTRY):
        a, b = ours[i:i + ENTRY], fixed[i:i + ENTRY]
        if a == b:
            continue
        same_needle = a[:13] == b[:13]
        empty_vs_tombstone = a[13:] == b"\0\0\0\0" and b[13:] == b"\xff\xff\xff\xff"
        assert same_needle and empty_vs_tombstone, f"{what}: entry {i // ENTRY} differs: {a.hex()} vs {b.hex()}"
