"""`weed shell` maintenance commands on clusters that mix Go and kelp volume
servers behind a real Go master (all on loopback): volume.balance,
volume.fix.replication, volume.check.disk, volume.fsck (with a Go filer on
top), volume.scrub, and volume.move while writes to the moving volume are in
flight.

Go 4.48 is the reference: every expectation here is what the shell does with
Go servers in the same places, and every blob is checked byte for byte on the
server the master names for it afterwards. Every volume server trusts its
loopback peers (-volume.allowUntrustedRemoteEndpoints), as copies and tails
between them need."""
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import WEED, Proc, free_port, wait_http
from grpc_stubs import call, vs_pb2, volume_stub
from test_copy import master_locations, start_trusting
from test_vacuum import VID, assert_blobs, fid, fill, idx_rows, upload

INDEX, FULL = 1, 2


# ---- cluster helpers ----

def run_shell(cluster, script, filer=None, timeout=180):
    """Runs `weed shell` lines against the test master (and a filer when
    given); returns everything it printed."""
    args = [WEED, "shell", f"-master=127.0.0.1:{cluster.master_port}"]
    if filer:
        args.append(f"-filer=127.0.0.1:{filer.port}")
    r = subprocess.run(args, input=script + "\nexit\n", capture_output=True, text=True, timeout=timeout)
    return r.stdout + r.stderr


def server(cluster, kind, d):
    """A volume server of `kind` that trusts loopback peers, registered with the master."""
    srv = start_trusting(cluster, kind, d)
    wait_http(srv.url + "/healthz", timeout=30)
    wait_nodes(cluster, [srv])
    return srv


def master_nodes(cluster):
    topology = requests.get(f"{cluster.master}/dir/status", timeout=10).json()["Topology"]
    return {node["Url"] for dc in topology.get("DataCenters") or [] for rack in dc.get("Racks") or []
            for node in rack.get("DataNodes") or []}


def wait_nodes(cluster, servers, timeout=30):
    want = {f"127.0.0.1:{s.port}" for s in servers}
    deadline = time.time() + timeout
    while not want <= master_nodes(cluster):
        assert time.time() < deadline, (want, master_nodes(cluster))
        time.sleep(0.2)


def allocate(srv, vid, replication="000", collection=""):
    code, details, _ = call(volume_stub(srv.port).AllocateVolume,
                            vs_pb2.AllocateVolumeRequest(volume_id=vid, collection=collection, replication=replication, version=3))
    assert code == "OK", (srv.url, vid, details)


def node(srv):
    return f"127.0.0.1:{srv.port}"


def dat_files(d):
    """The volume ids whose .dat is in directory `d`."""
    return sorted(int(p.stem.rsplit("_", 1)[-1]) for p in Path(d).glob("*.dat"))


def master_sizes(cluster):
    """{(node, vid): size} as the master last heard from its volume servers."""
    racks = requests.get(f"{cluster.master}/vol/status", timeout=10).json()["Volumes"].get("DataCenters") or {}
    return {(n, v["Id"]): v["Size"] for dc in racks.values() for rack in dc.values() for n, vols in rack.items()
            for v in vols or []}


def wait_master_sizes(cluster, srv, d, vids, timeout=30):
    """Until the master's sizes of `vids` on `srv` are those of their .dat files."""
    want = {(node(srv), vid): (Path(d) / f"{vid}.dat").stat().st_size for vid in vids}
    deadline = time.time() + timeout
    while True:
        sizes = master_sizes(cluster)
        got = {k: sizes.get(k) for k in want}
        if got == want:
            return
        assert time.time() < deadline, (want, got)
        time.sleep(0.3)


def read_only(srv, vid):
    code, details, r = call(volume_stub(srv.port).VolumeStatus, vs_pb2.VolumeStatusRequest(volume_id=vid))
    assert code == "OK", details
    return r.is_read_only


def start_filer(cluster, d):
    """A Go filer on loopback with its embedded store in `d`, chunks of 1 MB."""
    port = free_port()
    Path(d).mkdir(parents=True, exist_ok=True)
    p = Proc([WEED, "filer", f"-master=127.0.0.1:{cluster.master_port}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
              f"-port={port}", f"-port.grpc={port + 10000}", f"-defaultStoreDir={d}", "-maxMB=1",
              f"-localSocket={d}/filer.sock"], cluster.tmp / f"filer-{port}.log", cwd=str(d))
    p.port = port
    p.url = f"http://127.0.0.1:{port}"
    cluster.procs.append(p)
    try:
        wait_http(p.url + "/", timeout=60)
    except TimeoutError:
        raise AssertionError("the filer did not start:\n" + p.tail())
    return p


# ---- 1. volume.balance ----

def test_balance_spreads_a_full_kelp_server_over_go_and_kelp(cluster, tmp_path):
    """Three volumes of more than the size limit each on one kelp server (the
    balance weighs servers by bytes), an empty Go server and an empty kelp
    server (the same slot counts): `volume.balance -apply` leaves
    volumes on each of them, each volume's .dat in exactly one place, which is
    where the master looks it up, and every blob reads back from there."""
    cluster.start_master(volume_size_limit_mb=1)
    dirs = {"full": tmp_path / "full", "go": tmp_path / "go", "kelp": tmp_path / "kelp"}
    full = server(cluster, "kelp", dirs["full"])
    vids = list(range(VID, VID + 3))
    data = {}
    for vid in vids:
        allocate(full, vid)
        rng = random.Random(vid)
        live, gone = fill(full.url, vid, rng, n=6)
        live[99] = rng.randbytes(1 << 20)
        upload(full.url, vid, 99, live[99])
        data[vid] = live, gone
    for vid in vids:
        assert master_locations(cluster, vid, [full]) == [node(full)], vid
    wait_master_sizes(cluster, full, dirs["full"], vids)
    servers = {"full": full, "go": server(cluster, "go", dirs["go"]), "kelp": server(cluster, "kelp", dirs["kelp"])}

    out = run_shell(cluster, "lock\nvolume.balance -apply -maxDiskUsagePercent=0\nunlock")
    held = {name: dat_files(d) for name, d in dirs.items()}
    assert all(held.values()), (held, out)
    assert sorted(v for vs in held.values() for v in vs) == vids, (held, out)
    for name, vs in held.items():
        srv = servers[name]
        for vid in vs:
            assert master_locations(cluster, vid, [srv]) == [node(srv)], (name, vid, out)
            live, gone = data[vid]
            assert_blobs(srv.url, vid, live, gone, f"volume {vid} on {name}: {out}")
            others = [o for o in servers.values() if o is not srv]
            for o in others:
                r = requests.get(f"{o.url}/{fid(vid, next(iter(live)))}", timeout=10, allow_redirects=False)
                assert r.status_code == 404, (name, vid, o.url, r.status_code)


# ---- 2. volume.fix.replication ----

def test_fix_replication_restores_deleted_replicas_both_ways(cluster, tmp_path):
    """Two 001 volumes, each on a kelp and a Go server and written through one
    of them; one replica of each is deleted (VolumeDelete), kelp's of one and
    Go's of the other. One `volume.fix.replication -apply` (its passes wait
    15 s for the topology each) copies each survivor back onto the server that
    lacks it: Go pulls from kelp and kelp from Go, the master knows both
    replicas again, the copies are byte for byte the survivors' files and
    serve every blob."""
    cluster.start_master()
    dirs = {"kelp": tmp_path / "kelp", "go": tmp_path / "go"}
    servers = {kind: server(cluster, kind, d) for kind, d in dirs.items()}
    both = sorted(node(s) for s in servers.values())
    lost_on = {VID: "go", VID + 1: "kelp"}
    data = {}
    for vid, refilled_kind in lost_on.items():
        survivor = servers["kelp" if refilled_kind == "go" else "go"]
        for srv in servers.values():
            allocate(srv, vid, replication="001")
        assert master_locations(cluster, vid, list(servers.values())) == both
        data[vid] = fill(survivor.url, vid, random.Random(51 + vid), n=12)
        assert_blobs(servers[refilled_kind].url, vid, *data[vid], "replicated before the delete")

    for vid, refilled_kind in lost_on.items():
        refilled = servers[refilled_kind]
        assert call(volume_stub(refilled.port).VolumeDelete, vs_pb2.VolumeDeleteRequest(volume_id=vid))[:2] == ("OK", "")
        assert not list(dirs[refilled_kind].glob(f"{vid}.*"))
    for vid, refilled_kind in lost_on.items():
        survivor_kind = "kelp" if refilled_kind == "go" else "go"
        assert master_locations(cluster, vid, [servers[survivor_kind]]) == [node(servers[survivor_kind])]

    out = run_shell(cluster, "lock\nvolume.fix.replication -apply\nunlock")
    for vid, refilled_kind in lost_on.items():
        survivor_kind = "kelp" if refilled_kind == "go" else "go"
        assert master_locations(cluster, vid, list(servers.values())) == both, (vid, out)
        for ext in (".dat", ".idx"):
            copied = (dirs[refilled_kind] / f"{vid}{ext}").read_bytes()
            assert copied == (dirs[survivor_kind] / f"{vid}{ext}").read_bytes(), (vid, ext, out)
        for srv in servers.values():
            assert_blobs(srv.url, vid, *data[vid], f"volume {vid} on {srv.url}: {out}")


# ---- 3. volume.check.disk ----

def test_check_disk_repairs_replicas_that_missed_writes(cluster, tmp_path):
    """A 001 volume on kelp and Go, each replica given a needle the other never
    saw (a `type=replicate` write goes to one server only) and one delete only
    the Go replica saw. `volume.check.disk -slow -force` alone leaves absent
    needles alone (they could be vacuumed deletes); with
    -resurrectMissingNeedles -syncDeleted both replicas serve both needles and
    agree on the delete."""
    cluster.start_master()
    kelp = server(cluster, "kelp", tmp_path / "kelp")
    go = server(cluster, "go", tmp_path / "go")
    for srv in (kelp, go):
        allocate(srv, VID, replication="001")
    assert master_locations(cluster, VID, [kelp, go]) == sorted([node(kelp), node(go)])
    rng = random.Random(52)
    live, gone = fill(kelp.url, VID, rng, n=14)
    for srv in (kelp, go):
        assert_blobs(srv.url, VID, live, gone, "replicated " + srv.url)

    only = {kelp: (100, rng.randbytes(30_000)), go: (101, rng.randbytes(12_345))}
    for srv, (key, data) in only.items():
        upload(srv.url, VID, key, data, params={"type": "replicate"})
    for srv, (key, data) in only.items():
        other = go if srv is kelp else kelp
        assert requests.get(f"{other.url}/{fid(VID, key)}", timeout=10).status_code == 404, "written to one replica only"
    deleted_on_go = sorted(live)[0]
    r = requests.delete(f"{go.url}/{fid(VID, deleted_on_go)}", params={"type": "replicate"}, timeout=10)
    assert r.status_code == 202, r.text
    assert requests.get(f"{kelp.url}/{fid(VID, deleted_on_go)}", timeout=10).status_code == 200

    out = run_shell(cluster, f"lock\nvolume.check.disk -slow -force -volumeId {VID}\nunlock")
    for srv, (key, data) in only.items():
        other = go if srv is kelp else kelp
        assert requests.get(f"{other.url}/{fid(VID, key)}", timeout=10).status_code == 404, (other.url, key, out)
    assert "not resurrecting 1 needle(s)" in out, out

    out = run_shell(cluster, f"lock\nvolume.check.disk -slow -force -resurrectMissingNeedles -syncDeleted -volumeId {VID}\nunlock")
    del live[deleted_on_go]
    gone.add(deleted_on_go)
    for key, data in only.values():
        live[key] = data
    for srv in (kelp, go):
        assert_blobs(srv.url, VID, live, gone, f"after check.disk on {srv.url}: {out}")


# ---- 4. volume.fsck ----

FSCK_LINE = re.compile(r"dataNode:(\S+)\s+volume:(\d+)\s+entries:(\d+)\s+orphan:(\d+)\s")


def fsck_orphans(out):
    """{vid: (entries, orphans)} from volume.fsck's per-volume lines."""
    found = {}
    for m in FSCK_LINE.finditer(out):
        entries, orphans = found.get(int(m.group(2)), (0, 0))
        found[int(m.group(2))] = (entries + int(m.group(3)), orphans + int(m.group(4)))
    return found


def filer_chunks(filer, path):
    r = requests.get(f"{filer.url}{path}", params={"metadata": "true"}, timeout=10)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return [c["file_id"] for c in r.json()["chunks"]]


def test_fsck_finds_and_purges_orphans_on_kelp(cluster, tmp_path):
    """A filer stores files (one of several chunks) on kelp volumes; blobs
    written straight to those volumes are referenced by no entry. volume.fsck
    counts them per volume (not while they are younger than its cutoff), and
    with -reallyDeleteFromVolume deletes exactly them: the filer's files still
    read back whole, and a second check finds nothing."""
    cluster.start_master(volume_size_limit_mb=16)
    kelp = server(cluster, "kelp", tmp_path / "kelp")
    filer = start_filer(cluster, tmp_path / "filer")
    rng = random.Random(53)
    files = {f"/docs/f{i}.bin": rng.randbytes(size) for i, size in enumerate((5_000, 300_000, (2 << 20) + 12_345))}
    for path, data in files.items():
        r = requests.post(f"{filer.url}{path}", files={"file": (path.rsplit("/", 1)[1], data)}, timeout=60)
        assert r.status_code == 201, (path, r.status_code, r.text)
    chunks = {path: filer_chunks(filer, path) for path in files}
    assert len(chunks["/docs/f2.bin"]) == 3, chunks
    in_use = {}
    for fids in chunks.values():
        for f in fids:
            in_use[int(f.split(",")[0])] = in_use.get(int(f.split(",")[0]), 0) + 1

    orphans = {}
    for i in range(6):
        r = requests.get(f"{cluster.master}/dir/assign", timeout=10).json()
        assert r.get("url") == node(kelp), r
        data = rng.randbytes(rng.randint(100, 20_000))
        w = requests.post(f"http://{r['url']}/{r['fid']}", files={"file": (f"orphan{i}.bin", data)}, timeout=30)
        assert w.status_code == 201, w.text
        orphans[r["fid"]] = data
    per_volume = {}
    for f in orphans:
        per_volume[int(f.split(",")[0])] = per_volume.get(int(f.split(",")[0]), 0) + 1

    # The default 5 h cutoff: the orphans are too young (kelp's needle append times say so).
    out = run_shell(cluster, "lock\nvolume.fsck\nunlock", filer=filer)
    assert fsck_orphans(out) == {} and "no orphan data" in out, out

    out = run_shell(cluster, "lock\nvolume.fsck -cutoffTimeAgo=0s -verifyNeedles\nunlock", filer=filer)
    found = fsck_orphans(out)
    assert {vid: n for vid, (_, n) in found.items()} == per_volume, out
    for vid, (entries, n) in found.items():
        assert entries == n + in_use.get(vid, 0), (vid, entries, n, in_use, out)
    assert "failed to read" not in out, out
    for f, data in orphans.items():  # a check alone deletes nothing
        r = requests.get(f"{kelp.url}/{f}", timeout=10)
        assert r.status_code == 200 and r.content == data, (f, r.status_code)

    out = run_shell(cluster, "lock\nvolume.fsck -cutoffTimeAgo=0s -reallyDeleteFromVolume\nunlock", filer=filer)
    assert {vid: n for vid, (_, n) in fsck_orphans(out).items()} == per_volume, out
    assert "purge error" not in out, out
    for f in orphans:
        r = requests.get(f"{kelp.url}/{f}", timeout=10)
        assert r.status_code == 404, (f, r.status_code, out)
    for path, data in files.items():
        r = requests.get(f"{filer.url}{path}", timeout=60)
        assert r.status_code == 200 and r.content == data, (path, r.status_code, len(r.content), out)
        for f in chunks[path]:
            assert requests.get(f"{kelp.url}/{f}", timeout=10).status_code == 200, (path, f, out)

    out = run_shell(cluster, "lock\nvolume.fsck -cutoffTimeAgo=0s\nunlock", filer=filer)
    assert fsck_orphans(out) == {} and "no orphan data" in out, out
    filer.stop(signal.SIGKILL)  # its graceful stop takes 15 s and the test needs nothing of it


# ---- 5. volume.scrub ----

SCRUBBED = re.compile(r"Scrubbed (\d+) files and (\d+) volumes on (\d+) nodes")
AFFECTED = re.compile(r"Affected volumes: (.*)")


def scrub_report(out):
    """(files, volumes, nodes, {"host:port:vid"}, [detail lines]) from volume.scrub's output."""
    m = SCRUBBED.search(out)
    assert m, out
    affected = AFFECTED.search(out)
    broken = set(affected.group(1).strip().split(", ")) if affected else set()
    details = [line.strip() for line in out.splitlines() if line.startswith("\t[")]
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), broken, details


def flip_data_byte(d, vid, key):
    """One byte inside the data of `key`'s newest record in the .dat."""
    row = [r for r in idx_rows(d / f"{vid}.idx") if r[0] == key][-1]
    with open(d / f"{vid}.dat", "r+b") as f:
        f.seek(row[1] + 16 + 4 + 100)
        b = f.read(1)
        f.seek(row[1] + 16 + 4 + 100)
        f.write(bytes([b[0] ^ 0xFF]))


def test_scrub_reports_the_broken_kelp_volume(cluster, tmp_path):
    """kelp and Go each hold a healthy volume and one whose needle 1 has a
    flipped data byte: `volume.scrub -mode full` names exactly the two broken
    volumes, kelp's detail is Go's (with its own volume id), the files counted
    are the .idx rows; scrubbing only the healthy kelp volume reports nothing
    broken, and -markBrokenReadonly marks only the broken one."""
    cluster.start_master()
    servers = {"kelp": (server(cluster, "kelp", tmp_path / "kelp"), tmp_path / "kelp", VID),
               "go": (server(cluster, "go", tmp_path / "go"), tmp_path / "go", VID + 2)}
    for kind, (srv, d, healthy) in servers.items():
        rng = random.Random(54)  # the same blobs on both
        for vid in (healthy, healthy + 1):
            allocate(srv, vid)
            for key in (1, 2, 3):
                upload(srv.url, vid, key, rng.randbytes(2000 + key))
            upload(srv.url, vid, 2, rng.randbytes(1500))
            requests.delete(f"{srv.url}/{fid(vid, 3)}", timeout=10).raise_for_status()
        flip_data_byte(d, healthy + 1, 1)
    rows = sum(len(idx_rows(d / f"{vid}.idx")) for srv, d, h in servers.values() for vid in (h, h + 1))

    out = run_shell(cluster, "lock\nvolume.scrub -mode full -details\nunlock")
    files, volumes, nodes, broken, details = scrub_report(out)
    assert (files, volumes, nodes) == (rows, 4, 2), out
    assert broken == {f"{node(srv)}:{h + 1}" for srv, d, h in servers.values()}, out
    by_server = {kind: [t for t in details if t.startswith(f"[{node(srv)}]")] for kind, (srv, d, h) in servers.items()}
    go_detail = [t.replace(f"[{node(servers['go'][0])}]", "").replace(f"volume {VID + 3}", "volume {vid}") for t in by_server["go"]]
    kelp_detail = [t.replace(f"[{node(servers['kelp'][0])}]", "").replace(f"volume {VID + 1}", "volume {vid}") for t in by_server["kelp"]]
    assert go_detail and any("needle 1" in t for t in go_detail), out
    assert kelp_detail == go_detail, out

    kelp, kdir, healthy = servers["kelp"]
    out = run_shell(cluster, f"lock\nvolume.scrub -mode full -node {node(kelp)} -volumeId {healthy}\nunlock")
    files, volumes, nodes, broken, details = scrub_report(out)
    assert (files, volumes, nodes, broken) == (len(idx_rows(kdir / f"{healthy}.idx")), 1, 1, set()), out
    assert "scrub failures" not in out, out

    out = run_shell(cluster, f"lock\nvolume.scrub -mode full -node {node(kelp)} -markBrokenReadonly\nunlock")
    assert scrub_report(out)[3] == {f"{node(kelp)}:{healthy + 1}"}, out
    assert read_only(kelp, healthy + 1) and not read_only(kelp, healthy), out


# ---- 6. volume.move with writes in flight ----

class Writer(threading.Thread):
    """Keeps writing new blobs to one server's copy of a volume; records what
    each write was answered."""

    def __init__(self, url, vid, first_key):
        super().__init__(daemon=True)
        self.url, self.vid, self.key = url, vid, first_key
        self.stop = threading.Event()
        self.acked, self.rejected, self.errors = {}, {}, {}
        self.phase = "before"
        self.attempts = {"before": 0, "during": 0, "after": 0}
        self.rng = random.Random(first_key)

    def run(self):
        session = requests.Session()
        while not self.stop.is_set():
            key, data = self.key, self.rng.randbytes(self.rng.randint(1, 6000))
            self.key += 1
            self.attempts[self.phase] += 1
            try:
                r = session.post(f"{self.url}/{fid(self.vid, key)}", files={"file": (f"w{key}.bin", data)}, timeout=30)
            except requests.RequestException as e:
                self.errors[key] = repr(e)
                session = requests.Session()
                continue
            if r.status_code == 201:
                self.acked[key] = data
            else:
                self.rejected[key] = (r.status_code, r.text[:200])
            time.sleep(0.01)


@pytest.mark.parametrize("pair", [("kelp", "kelp"), ("go", "kelp"), ("kelp", "go")])
def test_volume_move_keeps_every_acknowledged_in_flight_write(cluster, tmp_path, pair):
    """A thread keeps writing to the source's volume while `volume.move` runs
    (kelp->kelp, Go->kelp, kelp->Go): afterwards only the target holds the
    volume, the master knows only the target, and every write that was
    answered 201, before, during or after the move, reads back from it byte for
    byte; a write that was not taken was answered with an error status (never
    a success other than 201, never a dropped connection). The moved volume
    then takes writes on its new server."""
    source_kind, target_kind = pair
    cluster.start_master(volume_size_limit_mb=16)
    source = server(cluster, source_kind, tmp_path / "src")
    target = server(cluster, target_kind, tmp_path / "dst")
    allocate(source, VID)
    assert master_locations(cluster, VID, [source]) == [node(source)]
    live, gone = fill(source.url, VID, random.Random(55), n=8)

    writer = Writer(source.url, VID, 1000)
    writer.start()
    deadline = time.time() + 30
    while len(writer.acked) < 5:
        assert time.time() < deadline and writer.is_alive(), (writer.acked.keys(), writer.rejected, writer.errors)
        time.sleep(0.05)
    writer.phase = "during"
    try:
        out = run_shell(cluster, f"lock\nvolume.move -source {node(source)} -target {node(target)} -volumeId {VID}\nunlock")
    finally:
        writer.phase = "after"
        # A few more writes to the source once it no longer holds the volume.
        settle = writer.attempts["after"] + 5
        deadline = time.time() + 30
        while writer.attempts["after"] < settle and time.time() < deadline and writer.is_alive():
            time.sleep(0.05)
        writer.stop.set()
        writer.join(60)
    assert writer.attempts["during"] > 0, writer.attempts
    assert master_locations(cluster, VID, [target]) == [node(target)], out
    assert not list((tmp_path / "src").glob(f"{VID}.*")), out
    assert writer.errors == {}, (writer.errors, out)
    assert all(400 <= status < 600 for status, _ in writer.rejected.values()), (writer.rejected, out)
    assert writer.rejected, "the source still took writes after the move: " + out
    assert_blobs(target.url, VID, live, gone, "moved: " + out)
    lost = []
    for key, data in writer.acked.items():
        r = requests.get(f"{target.url}/{fid(VID, key)}", timeout=10)
        if r.status_code != 200 or r.content != data:
            lost.append((key, r.status_code, len(r.content), len(data)))
    assert not lost, (lost, len(writer.acked), out)
    # The moved volume takes writes on its new server.
    upload(target.url, VID, 99, b"after the move")
    assert requests.get(f"{target.url}/{fid(VID, 99)}", timeout=10).content == b"after the move"
