"""Crashes during a vacuum, at each step of the compact and of the commit.

The copy runs in a job process (kelp-worker-ec); the supervisor opens the
files, checks the job's output, and alone carries over, commits and swaps.
Two kinds of death are tested at each step:
- the job process: by a real SIGKILL, or by the test build's fault injection
  ending it on a chosen file call ($KELP_JOB_FAULTS). The compact call answers
  an error, the partial copy is removed, the supervisor and its workers live
  on, the volume serves every blob and takes writes, and a retry vacuums it;
- the supervisor: by a real SIGKILL during the copy, or by fault injection
  ending it on a chosen call of the compact or of the commit ($KELP_FAULTS;
  the process ends on the spot as SIGKILL would, page cache intact). After a
  restart no acknowledged write is lost, no deleted blob comes back, nothing
  of the vacuum is left, the commit is rolled back before its marker and
  forward after it, the volume takes writes, and the Go server loads it.
"""
import os
import random
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from grpc_stubs import call, vs_pb2, volume_stub
from test_vacuum import (VID, assert_blobs, commit, compact, delete, fill, leftovers, revision_on_disk, start, stop,
                         sync_revision, upload, vacuum, with_volume)

JOB_TITLE = f"kelp-volume: compact job volume {VID}"


def job_pids(supervisor_pid):
    """The supervisor's compaction job processes for VID, by process title."""
    out = []
    for task in Path(f"/proc/{supervisor_pid}/task").iterdir():
        try:
            children = [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
        for pid in children:
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                continue
            if title == JOB_TITLE:
                out.append(pid)
    return out


def children_of(pid):
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out |= {int(x) for x in (task / "children").read_text().split()}
        except OSError:
            pass
    return out


def pid_alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def big_fill(url, rng, n=60):
    """~3 MB in n blobs, every fourth deleted: at -compactionMBps=1 the copy takes seconds."""
    live = {}
    for key in range(1, n + 1):
        live[key] = rng.randbytes(rng.randint(40_000, 60_000))
        upload(url, VID, key, live[key])
    gone = set(range(1, n + 1, 4))
    for key in sorted(gone):
        delete(url, VID, key)
        del live[key]
    return live, gone


def compact_in_background(stub):
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("compact", compact(stub, VID)))
    t.start()
    return t, result


def wait_for(pred, timeout=30, what=""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def go_loads(cluster, d, tmp_path, live, gone, name):
    """A copy of the directory behind a Go volume server serves the same blobs."""
    copy = tmp_path / name
    shutil.copytree(d, copy)
    go = cluster.start_go_volume(copy, extra=("-preStopSeconds=0",))
    try:
        wait_for(lambda: requests.get(go.url + "/status", timeout=5).json().get("Volumes"), what="Go to load the volume")
        assert_blobs(go.url, VID, live, gone, "go")
    finally:
        stop(cluster, go)


def assert_vacuum_retry(cluster, srv, d, live, gone):
    stub = volume_stub(srv.port)
    vacuum(stub, d, VID)
    assert sync_revision(stub, VID) >= 1
    assert_blobs(srv.url, VID, live, gone, "after the retried vacuum")


# ---- the job process dies ----

def test_sigkill_of_the_job_fails_that_compaction_alone(cluster, tmp_path):
    cluster.start_master()
    d = tmp_path / "v"
    srv = cluster.start_kelp(d, extra=("-compactionMBps=1",))
    stub = volume_stub(srv.port)
    assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))[0] == "OK"
    rng = random.Random(31)
    live, gone = big_fill(srv.url, rng)
    workers = children_of(srv.pid)
    assert workers, "no workers found"

    t, result = compact_in_background(stub)
    job = wait_for(lambda: job_pids(srv.pid), what="the compaction job")[0]
    # Writes while the job copies.
    for key in range(200, 210):
        live[key] = rng.randbytes(3000)
        upload(srv.url, VID, key, live[key])
    os.kill(job, signal.SIGKILL)
    t.join(timeout=60)
    assert not t.is_alive()
    code, details, _ = result["compact"]
    assert code != "OK", details
    assert f"compact volume {VID}: " in details and "killed by signal 9" in details, details

    # The job alone failed: same supervisor, same workers, nothing left of the copy.
    assert srv.alive() and workers <= children_of(srv.pid), (workers, children_of(srv.pid))
    wait_for(lambda: not pid_alive(job), what="the job to be reaped")
    assert leftovers(d) == []
    assert revision_on_disk(d / f"{VID}.dat") == 0 and sync_revision(stub, VID) == 0
    assert_blobs(srv.url, VID, live, gone, "after the job died")
    live[300] = b"written after the job died"
    upload(srv.url, VID, 300, live[300])

    # A retry vacuums the volume (unthrottled this time).
    stop(cluster, srv)
    srv = start(cluster, "kelp", d, port=srv.port)
    assert_vacuum_retry(cluster, srv, d, live, gone)
    stop(cluster, srv)
    go_loads(cluster, d, tmp_path, live, gone, "go-copy")


# Where the job's file calls end it: the superblock and first needles, a needle
# in the middle, the index it writes, its syncs before it answers.
JOB_STEPS = {
    "first-write": "pwrite:.cpd:crash",
    "mid-copy": "pwrite:.cpd:skip=20:crash",
    "index-write": "pwrite:.cpx:crash",
    "index-sync": "fdatasync:.cpx:crash",
    "data-sync": "fdatasync:.cpd:crash",
    "torn-needle": "pwrite:.cpd:skip=5:torn",
}


@pytest.mark.parametrize("step", sorted(JOB_STEPS))
def test_job_death_at_each_step_of_the_copy(cluster, tmp_path, monkeypatch, step):
    cluster.start_master()
    d = tmp_path / "v"
    monkeypatch.setenv("KELP_JOB_FAULTS", JOB_STEPS[step])
    srv, stub = with_volume(cluster, "kelp", d)
    live, gone = fill(srv.url, VID, random.Random(41), n=40)
    before = {ext: (d / f"{VID}{ext}").read_bytes() for ext in (".dat", ".idx")}
    workers = children_of(srv.pid)

    code, details, _ = compact(stub, VID)
    assert code != "OK", details
    assert f"compact volume {VID}: " in details and "exited with status 137" in details, details
    assert srv.alive() and workers <= children_of(srv.pid)
    assert leftovers(d) == []
    assert {ext: (d / f"{VID}{ext}").read_bytes() for ext in (".dat", ".idx")} == before
    assert_blobs(srv.url, VID, live, gone, step)
    live[500] = b"a write after the failed job"
    upload(srv.url, VID, 500, live[500])

    # Without the fault, the same server's next job succeeds.
    stop(cluster, srv)
    monkeypatch.delenv("KELP_JOB_FAULTS")
    srv = start(cluster, "kelp", d, port=srv.port)
    assert_vacuum_retry(cluster, srv, d, live, gone)


# ---- the supervisor dies ----

def test_sigkill_of_the_supervisor_during_the_copy(cluster, tmp_path):
    cluster.start_master()
    d = tmp_path / "v"
    srv = cluster.start_kelp(d, extra=("-compactionMBps=1",))
    stub = volume_stub(srv.port)
    assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))[0] == "OK"
    live, gone = big_fill(srv.url, random.Random(51))
    t, result = compact_in_background(stub)
    job = wait_for(lambda: job_pids(srv.pid), what="the compaction job")[0]
    wait_for(lambda: (d / f"{VID}.cpd").exists() and (d / f"{VID}.cpd").stat().st_size > 0, what="the copy to start")
    os.kill(srv.pid, signal.SIGKILL)
    t.join(timeout=60)
    assert result["compact"][0] != "OK"
    # The job dies with the supervisor that waits for it.
    wait_for(lambda: not pid_alive(job), timeout=10, what="the job to die with the supervisor")
    stop(cluster, srv)
    assert leftovers(d) in ([], [f"{VID}.cpd", f"{VID}.cpx"])

    srv = start(cluster, "kelp", d, port=srv.port)
    assert leftovers(d) == []
    assert sync_revision(volume_stub(srv.port), VID) == 0
    assert_blobs(srv.url, VID, live, gone, "after the restart")
    live[600] = b"after the restart"
    upload(srv.url, VID, 600, live[600])
    assert_vacuum_retry(cluster, srv, d, live, gone)
    stop(cluster, srv)
    go_loads(cluster, d, tmp_path, live, gone, "go-copy")


# Where the supervisor's own calls end it, with the revision a restart must
# find: 0 (rolled back) before the commit marker exists, 1 (rolled forward) after.
SUPERVISOR_STEPS = {
    # compact: creating the copy's files, then checking the job's output
    "compact-create-cpx": ("open:.cpx:crash", "compact", 0),
    "compact-check-output": ("open:.cpd:skip=1:crash", "compact", 0),
    # commit: carrying over writes made during the copy
    "commit-carry-data-sync": ("fdatasync:.cpd:crash", "commit", 0),
    "commit-carry-index-sync": ("fdatasync:.cpx:crash", "commit", 0),
    # the marker, then the renames around it
    "commit-before-marker": ("open:.cpc:crash", "commit", 0),
    "commit-after-marker": ("rename:.cpd:crash", "commit", 1),
    "commit-between-renames": ("rename:.cpx:crash", "commit", 1),
    "commit-after-renames": ("unlink:.cpc:crash", "commit", 1),
}


@pytest.mark.parametrize("step", sorted(SUPERVISOR_STEPS))
def test_supervisor_death_at_each_step_of_compact_and_commit(cluster, tmp_path, monkeypatch, step):
    rule, phase, revision = SUPERVISOR_STEPS[step]
    cluster.start_master()
    d = tmp_path / "v"
    monkeypatch.setenv("KELP_FAULTS", rule)
    srv, stub = with_volume(cluster, "kelp", d)
    rng = random.Random(61)
    live, gone = fill(srv.url, VID, rng, n=40)
    if phase == "compact":
        code, details, _ = compact(stub, VID)
    else:
        code, details, msgs = compact(stub, VID)
        assert code == "OK", details
        # Acknowledged while the copy waits for its commit: the commit carries them over.
        for key in range(100, 110):
            live[key] = rng.randbytes(rng.randint(100, 4000))
            upload(srv.url, VID, key, live[key])
        for key in (2, 3, 100):
            if key in live:
                delete(srv.url, VID, key)
                del live[key]
                gone.add(key)
        code, details, _ = commit(stub, VID)
    assert code != "OK", (step, details)
    wait_for(lambda: not srv.alive(), timeout=20, what="the supervisor to end at the fault")
    assert srv.p.returncode == 137, srv.tail()
    stop(cluster, srv)

    monkeypatch.delenv("KELP_FAULTS")
    srv = start(cluster, "kelp", d, port=srv.port)
    stub = volume_stub(srv.port)
    assert leftovers(d) == [], step
    assert sync_revision(stub, VID) == revision and revision_on_disk(d / f"{VID}.dat") == revision, step
    assert_blobs(srv.url, VID, live, gone, step)
    live[700] = b"a write after the restart"
    upload(srv.url, VID, 700, live[700])
    stop(cluster, srv)
    go_loads(cluster, d, tmp_path, live, gone, "go-copy")
