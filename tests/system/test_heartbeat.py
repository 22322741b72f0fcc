"""The heartbeat's digest protocol against the real Go master: once the master
says it compares digests, pulses carry only the volumes that changed and the
ones that left, and the master's copy stays current without whole lists.

The master's own counters (its Prometheus metrics) say what it received: whole
lists, changed-volume heartbeats, digest matches and mismatches. The Go volume
server runs the same scenario as the reference."""
import os
import random
import re
import time
from pathlib import Path

import pytest
import requests

from conftest import WEED, Proc, free_port
from grpc_stubs import call, vs_pb2, volume_stub
from test_cluster import volume_list
from test_vacuum import delete, fid, upload

PULSE = 1


def start_server(cluster, kind, d, port=None):
    if kind == "go":
        return cluster.start_go_volume(d, port=port, extra=("-preStopSeconds=0",))  # Go 4.48 pulses every 5 s, fixed
    return cluster.start_kelp(d, port=port, extra=(f"-pulseSeconds={PULSE}",))


def heartbeat_counts(metrics_port):
    """{type: count} of the master's received_heartbeats counter."""
    text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^SeaweedFS_master_received_heartbeats\{type="([^"]+)"\} (\S+)$', text, re.M)}


def wait_for(pred, timeout=30, what=""):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {last}")


@pytest.mark.parametrize("kind", ("go", "kelp"))
def test_pulses_carry_changes_and_the_master_stays_current(cluster, tmp_path, kind):
    metrics_port = free_port()
    cluster.start_master(extra=(f"-metricsPort={metrics_port}", "-metricsIp=127.0.0.1"))
    srv = start_server(cluster, kind, tmp_path / "v")
    node = f"127.0.0.1:{srv.port}"
    stub = volume_stub(srv.port)
    for vid in (3, 4):
        assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=vid, replication="000", version=3))[0] == "OK"

    # Quiet pulses: matched digests, and whole lists stop once the master has one.
    wait_for(lambda: heartbeat_counts(metrics_port).get("volumeDigestMatch", 0) >= 3, what="three matched digests")
    quiet = heartbeat_counts(metrics_port)

    # Writes and deletes on volume 3 only: the master's file counts follow.
    rng = random.Random(5)
    for key in range(1, 9):
        upload(srv.url, 3, key, rng.randbytes(rng.randint(100, 5000)))
    for key in (2, 5):
        delete(srv.url, 3, key)
    vols = wait_for(lambda: (lambda v: v if v.get(3, {}).get("FileCount") == "8" and v.get(3, {}).get("DeleteCount") == "2"
                             else None)(volume_list(cluster, node)), what="the master's view of volume 3")
    assert vols[4].get("FileCount", "0") == "0", vols

    # Volume 4 leaves: the master forgets it.
    assert call(stub.VolumeDelete, vs_pb2.VolumeDeleteRequest(volume_id=4))[0] == "OK"
    wait_for(lambda: 4 not in volume_list(cluster, node), what="the master to drop volume 4")
    wait_for(lambda: heartbeat_counts(metrics_port).get("volumeDigestMatch", 0) >= quiet.get("volumeDigestMatch", 0) + 3,
             what="matched digests after the changes")

    after = heartbeat_counts(metrics_port)
    log = (cluster.tmp / "master.log").read_text(errors="replace")
    assert after.get("volumeDigestMismatch", 0) == 0, (after, log[-3000:])
    assert "requesting the full volume list" not in log and "still disagrees" not in log, log[-3000:]
    # The changes went as changed-volume heartbeats, not as whole lists at each pulse.
    assert after.get("changedVolumes", 0) >= 1, after
    pulses = after.get("volumeDigestMatch", 0)
    assert after.get("Volumes", 0) <= 2 < pulses, after


@pytest.mark.parametrize("kind", ("go", "kelp"))
def test_a_directory_another_server_registered_shuts_the_server_down(cluster, tmp_path, kind):
    """Two servers whose directories carry the same vol_dir.uuid (a copied or
    doubly mounted directory): the master names the uuid to the second, which
    reconnects three times (2, 4 and 8 s apart, in case the master held a stale
    session) and then shuts down with status 1, its files untouched."""
    cluster.start_master()
    first = cluster.start_go_volume(tmp_path / "first", extra=("-preStopSeconds=0",))
    uuid = (tmp_path / "first" / "vol_dir.uuid").read_text()
    d = tmp_path / "second"
    d.mkdir()
    (d / "vol_dir.uuid").write_text(uuid)
    if kind == "go":
        # Started by hand: start_go_volume waits for a registration that never comes.
        port = free_port()
        srv = Proc([WEED, "volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={port}", f"-dir={d}", "-max=4",
                    f"-master=127.0.0.1:{cluster.master_port}", "-preStopSeconds=0"], tmp_path / "second.log")
        cluster.procs.append(srv)
        log = tmp_path / "second.log"
    else:
        srv = cluster.start_kelp(d)
        log = Path(srv.log_path)
    deadline = time.time() + 90
    while srv.p.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    text = log.read_text(errors="replace")
    assert srv.p.poll() == 1, text[-3000:]
    assert f"Shut down Volume Server due to persistent duplicate volume directories after 3 retries: [{d}]" in text, text[-3000:]
    assert text.count("(retry ") == 3, text[-3000:]
    assert (d / "vol_dir.uuid").read_text() == uuid
    # The first server is still the directory's registered owner.
    assert requests.get(first.url + "/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("kind", ("kelp",))
def test_an_expired_ttl_volume_is_dropped_and_removed(cluster, tmp_path, kind):
    """A TTL volume whose newest write is older than its TTL (plus the removal
    delay) is left out of the heartbeat and its files are removed; a TTL
    volume written just now, and a volume without TTL, stay."""
    cluster.start_master()
    d = tmp_path / "v"
    srv = start_server(cluster, kind, d)
    node = f"127.0.0.1:{srv.port}"
    stub = volume_stub(srv.port)
    for vid, ttl in ((5, "1m"), (6, "1m"), (7, "")):
        req = vs_pb2.AllocateVolumeRequest(volume_id=vid, replication="000", ttl=ttl, version=3)
        assert call(stub.AllocateVolume, req)[0] == "OK"
        upload(srv.url, vid, 1, b"short-lived " + str(vid).encode(), params={"ttl": ttl} if ttl else None)
    wait_for(lambda: {5, 6, 7} <= set(volume_list(cluster, node)), what="the master to list the volumes")
    # Volume 5 was last written ten minutes ago, as the server will read it at load (the .dat's mtime).
    srv.stop()
    cluster.procs.remove(srv)
    old = time.time() - 600
    os.utime(d / "5.dat", (old, old))
    srv = start_server(cluster, kind, d, port=srv.port)
    wait_for(lambda: not (d / "5.dat").exists() and not (d / "5.idx").exists(), timeout=60, what="volume 5's files to be removed")
    vols = wait_for(lambda: (lambda v: v if 5 not in v and {6, 7} <= set(v) else None)(volume_list(cluster, node)),
                    what="the master to drop volume 5 only")
    assert (d / "6.dat").exists() and (d / "7.dat").exists(), vols
    for vid in (6, 7):
        r = requests.get(f"{srv.url}/{fid(vid, 1)}", timeout=10)
        assert r.status_code == 200 and r.content == b"short-lived " + str(vid).encode(), (vid, r.status_code)
    assert requests.get(f"{srv.url}/{fid(5, 1)}", timeout=10).status_code == 404
