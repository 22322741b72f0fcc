"""A stalled disk stalls only itself.

kelp serves two `-dir` locations, A and B, each with its own disk writer
thread. A write to a volume in A is held for four seconds inside its `.dat`
pwrite (the test build's fault injection, $KELP_FAULTS). While it is held:

- a write to a volume in B is acknowledged (its answer arrives while the A
  write is still outstanding),
- earlier blobs in A and in B are read back,
- the master still lists the server and assigns file ids,
- the supervisor's event loop keeps feeding the systemd watchdog
  (`WATCHDOG=1` datagrams on $NOTIFY_SOCKET, sent by the supervisor itself).

Then the held write completes with 201 and reads back.
"""
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path

import grpc
import requests

from conftest import assign, wait_http
from grpc_stubs import vs_pb2, volume_stub

STALL_MS = 4000
COOKIE = 0x0d15c0de


def fid(vid, key):
    return f"{vid},{key:x}{COOKIE:08x}"


def upload(url, f, content):
    return requests.post(f"{url}/{f}", files={"file": ("blob.bin", content)}, timeout=30)


def volumes_in(d):
    return sorted(int(p.stem) for p in Path(d).glob("*.dat"))


def grow_until_both_have_volumes(master, server, a, b, timeout=30.0):
    node = f"127.0.0.1:{server.port}"
    deadline = time.time() + timeout
    while not (volumes_in(a) and volumes_in(b)):
        assert time.time() < deadline, f"volumes: A {volumes_in(a)}, B {volumes_in(b)}"
        requests.get(master + "/vol/grow", params={"count": 2, "dataNode": node, "replication": "000"}, timeout=30)
        time.sleep(0.3)


def start_with_two_locations(cluster, tmp_path):
    """A master and kelp serving locations A and B, each holding a volume:
    (kelp, a, b, vid_a, vid_b)."""
    cluster.start_master()
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir()
    b.mkdir()
    kelp = cluster.start_kelp(f"{a},{b}")
    wait_http(kelp.url + "/healthz", timeout=30)
    grow_until_both_have_volumes(cluster.master, kelp, a, b)
    return kelp, a, b, volumes_in(a)[0], volumes_in(b)[0]


def restart_with_faults(cluster, kelp, dirs, faults, monkeypatch, **env):
    """Stops kelp and starts it again on the same port with $KELP_FAULTS (and
    `env`) set for the new process only."""
    port = kelp.port
    assert kelp.stop() == 0, kelp.tail()
    cluster.procs.remove(kelp)
    env["KELP_FAULTS"] = faults
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    kelp = cluster.start_kelp(dirs, port=port)
    for name in env:
        monkeypatch.delenv(name)
    wait_http(kelp.url + "/healthz", timeout=30)
    return kelp


class NotifyListener:
    """An AF_UNIX datagram socket standing in for systemd's notify socket;
    records (time, sender pid, message) of every datagram."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="kelp-notify-")
        self.path = str(Path(self.dir.name) / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        ucred = struct.calcsize("3i")
        while not self.stopped.is_set():
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(ucred))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:ucred])[0]
            with self.lock:
                for line in data.decode(errors="replace").split("\n"):
                    if line:
                        self.messages.append((time.time(), pid, line))

    def watchdog_pings(self, pid, start, end):
        with self.lock:
            return [t for t, p, m in self.messages if m == "WATCHDOG=1" and p == pid and start <= t <= end]

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=5)
        self.sock.close()
        self.dir.cleanup()


def test_a_stalled_disk_stalls_only_itself(cluster, tmp_path, monkeypatch):
    kelp, a, b, vid_a, vid_b = start_with_two_locations(cluster, tmp_path)
    assert vid_a not in volumes_in(b) and vid_b not in volumes_in(a)

    old_a, old_b = b"earlier blob in A" * 100, b"earlier blob in B" * 100
    assert upload(kelp.url, fid(vid_a, 1), old_a).status_code == 201
    assert upload(kelp.url, fid(vid_b, 1), old_b).status_code == 201
    port = kelp.port

    # The next pwrite to A's volume file, the write below, sleeps STALL_MS first.
    notify = NotifyListener()
    try:
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        kelp = restart_with_faults(cluster, kelp, f"{a},{b}", f"pwrite:{a / f'{vid_a}.dat'}:stall={STALL_MS}:times=1:skip=0",
                                   monkeypatch, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="1000000")

        new_a = b"the held write to A" * 500
        held = {}

        def write_a():
            held["start"] = time.time()
            try:
                held["response"] = upload(kelp.url, fid(vid_a, 2), new_a)
            finally:
                held["end"] = time.time()

        t = threading.Thread(target=write_a)
        t.start()
        time.sleep(0.5)
        assert t.is_alive(), f"the write to A was not held: {held}"

        # Location B writes on.
        new_b = b"a write to B while A is stalled" * 300
        r = upload(kelp.url, fid(vid_b, 2), new_b)
        assert r.status_code == 201, (r.status_code, r.text)
        assert t.is_alive(), "the write to B was answered only after the stalled write to A"

        # Reads go on in both locations.
        for f, content in ((fid(vid_a, 1), old_a), (fid(vid_b, 1), old_b), (fid(vid_b, 2), new_b)):
            g = requests.get(f"{kelp.url}/{f}", timeout=10)
            assert g.status_code == 200 and g.content == content, (f, g.status_code)
        assert t.is_alive(), "the reads were answered only after the stalled write to A"

        # The server stays in the cluster.
        topo = requests.get(cluster.master + "/dir/status", timeout=10).json()
        assert f"127.0.0.1:{port}" in str(topo), topo
        f, url = assign(cluster.master, timeout=10)
        assert url.endswith(f":{port}"), url
        assert t.is_alive(), "the master calls were answered only after the stalled write to A"

        t.join(timeout=60)
        assert not t.is_alive()
        r = held["response"]
        assert r.status_code == 201, (r.status_code, r.text)
        g = requests.get(f"{kelp.url}/{fid(vid_a, 2)}", timeout=10)
        assert g.status_code == 200 and g.content == new_a

        pings = notify.watchdog_pings(kelp.pid, held["start"], held["end"])
        assert len(pings) >= 2, (f"{len(pings)} WATCHDOG=1 from the supervisor during the "
                                 f"{held['end'] - held['start']:.1f} s stalled write; all: {notify.messages}")
        print(f"write to A held {held['end'] - held['start']:.1f} s; {len(pings)} watchdog pings meanwhile")
    finally:
        notify.close()


def test_administrative_calls_wait_for_their_own_disk_only(cluster, tmp_path, monkeypatch):
    """BatchDelete and VolumeMarkReadonly on a volume whose disk stalls are held
    on that disk's writer thread: meanwhile the loop answers gRPC status calls,
    marks a volume in the other location read-only, and serves HTTP."""
    kelp, a, b, vid_a, vid_b = start_with_two_locations(cluster, tmp_path)
    victims = [fid(vid_a, 1)]
    for f in victims + [fid(vid_b, 1)]:
        assert upload(kelp.url, f, b"to be deleted " * 50).status_code == 201
    # The tombstone of the first delete in A, and the rewrite of A's .vif, each sleep STALL_MS.
    kelp = restart_with_faults(cluster, kelp, f"{a},{b}", f"pwrite:{a / f'{vid_a}.dat'}:stall={STALL_MS}:times=1;"
                                                          f"pwrite:{a / f'{vid_a}.vif'}:stall={STALL_MS}:times=1", monkeypatch)
    stub = volume_stub(kelp.port)

    held = {}

    def call(name, fn):
        start = time.time()
        try:
            held[name] = fn()
        except Exception as e:  # recorded, asserted below
            held[name] = e
        held[name + " took"] = time.time() - start

    threads = [
        threading.Thread(target=call, args=("delete", lambda: stub.BatchDelete(
            vs_pb2.BatchDeleteRequest(file_ids=victims), timeout=60))),
        threading.Thread(target=call, args=("readonly", lambda: stub.VolumeMarkReadonly(
            vs_pb2.VolumeMarkReadonlyRequest(volume_id=vid_a, persist=True), timeout=60))),
    ]
    # Both are held by the stalled disk; the readonly waits behind the delete.
    threads[0].start()
    time.sleep(0.5)
    threads[1].start()
    time.sleep(0.5)
    assert all(t.is_alive() for t in threads), held

    # The loop and location B carry on.
    status = stub.VolumeStatus(vs_pb2.VolumeStatusRequest(volume_id=vid_b), timeout=10)
    assert not status.is_read_only
    stub.VolumeMarkReadonly(vs_pb2.VolumeMarkReadonlyRequest(volume_id=vid_b), timeout=10)
    assert stub.VolumeStatus(vs_pb2.VolumeStatusRequest(volume_id=vid_b), timeout=10).is_read_only
    g = requests.get(f"{kelp.url}/{fid(vid_b, 1)}", timeout=10)
    assert g.status_code == 200
    assert all(t.is_alive() for t in threads), ("the calls on B were answered only after the stalled disk", held)

    for t in threads:
        t.join(timeout=60)
    assert [r.status for r in held["delete"].results] == [202], held["delete"]
    assert isinstance(held["readonly"], vs_pb2.VolumeMarkReadonlyResponse), held["readonly"]
    assert stub.VolumeStatus(vs_pb2.VolumeStatusRequest(volume_id=vid_a), timeout=10).is_read_only
    for f in victims:
        assert requests.get(f"{kelp.url}/{f}", timeout=10).status_code == 404


def test_mounting_a_volume_on_a_stalled_disk_holds_only_that_mount(cluster, tmp_path, monkeypatch):
    """VolumeMount opens the files and replays the .idx on the location's
    writer thread: while A's disk stalls in that open, the loop serves B."""
    kelp, a, b, vid_a, vid_b = start_with_two_locations(cluster, tmp_path)
    blob_a, blob_b = b"kept in A " * 40, b"kept in B " * 40
    assert upload(kelp.url, fid(vid_a, 1), blob_a).status_code == 201
    assert upload(kelp.url, fid(vid_b, 1), blob_b).status_code == 201
    # The start-up load opens A's .idx once; the mount below is the second open.
    kelp = restart_with_faults(cluster, kelp, f"{a},{b}", f"open:{a / f'{vid_a}.idx'}:stall={STALL_MS}:skip=1:times=1",
                               monkeypatch)
    stub = volume_stub(kelp.port)
    stub.VolumeUnmount(vs_pb2.VolumeUnmountRequest(volume_id=vid_a), timeout=10)
    assert requests.get(f"{kelp.url}/{fid(vid_a, 1)}", timeout=10).status_code == 404

    held = {}

    def mount_a():
        try:
            held["mount"] = stub.VolumeMount(vs_pb2.VolumeMountRequest(volume_id=vid_a), timeout=60)
        except Exception as e:  # asserted below
            held["mount"] = e

    t = threading.Thread(target=mount_a)
    t.start()
    time.sleep(0.5)
    assert t.is_alive(), held

    # The loop and location B carry on, a mount in B included.
    assert not stub.VolumeStatus(vs_pb2.VolumeStatusRequest(volume_id=vid_b), timeout=10).is_read_only
    stub.VolumeUnmount(vs_pb2.VolumeUnmountRequest(volume_id=vid_b), timeout=10)
    stub.VolumeMount(vs_pb2.VolumeMountRequest(volume_id=vid_b), timeout=10)
    g = requests.get(f"{kelp.url}/{fid(vid_b, 1)}", timeout=10)
    assert g.status_code == 200 and g.content == blob_b
    assert t.is_alive(), "the calls on B were answered only after A's stalled mount"

    t.join(timeout=60)
    assert isinstance(held["mount"], vs_pb2.VolumeMountResponse), held["mount"]
    g = requests.get(f"{kelp.url}/{fid(vid_a, 1)}", timeout=10)
    assert g.status_code == 200 and g.content == blob_a


def test_set_state_calls_queue_behind_a_stalled_state_write(cluster, tmp_path, monkeypatch):
    """SetState writes state.pb on the first location's writer thread. Calls
    that arrive meanwhile wait their turn and see the version it wrote; the
    loop answers other calls."""
    cluster.start_master()
    a = tmp_path / "A"
    a.mkdir()
    monkeypatch.setenv("KELP_FAULTS", f"pwrite:state.pb:stall={STALL_MS}:times=1")
    kelp = cluster.start_kelp(str(a))
    monkeypatch.delenv("KELP_FAULTS")
    wait_http(kelp.url + "/healthz", timeout=30)
    stub = volume_stub(kelp.port)
    answers = {}

    def call(name, req):
        try:
            answers[name] = stub.SetState(req, timeout=60)
        except Exception as e:  # asserted below
            answers[name] = e

    state = vs_pb2.VolumeServerState
    calls = [("maintenance on", vs_pb2.SetStateRequest(state=state(maintenance=True, version=0))),
             ("read", vs_pb2.SetStateRequest()),
             ("stale version", vs_pb2.SetStateRequest(state=state(maintenance=False, version=0))),
             ("maintenance off", vs_pb2.SetStateRequest(state=state(maintenance=False, version=1)))]
    threads = []
    for name, req in calls:
        threads.append(threading.Thread(target=call, args=(name, req)))
        threads[-1].start()
        time.sleep(0.3)
    assert all(t.is_alive() for t in threads), answers
    # The loop answers while the state write is held.
    assert requests.get(kelp.url + "/status", timeout=10).status_code == 200
    assert stub.GetState(vs_pb2.GetStateRequest(), timeout=10).state.version == 0
    assert all(t.is_alive() for t in threads), answers
    for t in threads:
        t.join(timeout=60)
    assert answers["maintenance on"].state.version == 1 and answers["maintenance on"].state.maintenance
    assert answers["read"].state.version == 1
    assert isinstance(answers["stale version"], grpc.RpcError) and "version mismatch" in answers["stale version"].details()
    assert answers["maintenance off"].state.version == 2 and not answers["maintenance off"].state.maintenance
    assert (a / "state.pb").exists()


def test_creating_and_deleting_volumes_on_a_stalled_disk_holds_only_those_calls(cluster, tmp_path, monkeypatch):
    """AllocateVolume creates the files, and VolumeDelete removes them, on the
    location's writer thread; the answer comes when the files are there, or
    gone. While A's disk stalls in creating a volume, the loop allocates in B (a
    volume being created counts in its location), a delete in A waits behind
    the stalled creation, and the loop configures a volume in B and serves B's
    blobs."""
    kelp, a, b, vid_a, vid_b = start_with_two_locations(cluster, tmp_path)
    stub = volume_stub(kelp.port)
    # One volume in each location: a tie, which the first location (A) wins.
    for extra in volumes_in(a)[1:] + volumes_in(b)[1:]:
        stub.VolumeDelete(vs_pb2.VolumeDeleteRequest(volume_id=extra), timeout=10)
    assert (volumes_in(a), volumes_in(b)) == ([vid_a], [vid_b])
    blob_a, blob_b = b"doomed in A " * 40, b"kept in B " * 40
    assert upload(kelp.url, fid(vid_a, 1), blob_a).status_code == 201
    assert upload(kelp.url, fid(vid_b, 1), blob_b).status_code == 201
    new_a, new_b = 900, 901
    kelp = restart_with_faults(cluster, kelp, f"{a},{b}", f"open:{a / f'{new_a}.dat'}:stall={STALL_MS}:times=1", monkeypatch)
    stub = volume_stub(kelp.port)
    held = {}

    def call(name, fn):
        try:
            held[name] = fn()
        except Exception as e:  # asserted below
            held[name] = e

    allocate = lambda vid: lambda: stub.AllocateVolume(vs_pb2.AllocateVolumeRequest(volume_id=vid, replication="000", version=3), timeout=60)
    threads = [threading.Thread(target=call, args=("allocate A", allocate(new_a))),
               threading.Thread(target=call, args=("delete A", lambda: stub.VolumeDelete(
                   vs_pb2.VolumeDeleteRequest(volume_id=vid_a), timeout=60)))]
    threads[0].start()
    time.sleep(0.5)
    assert threads[0].is_alive(), held
    # A holds one volume and one being created, B one: the next goes to B, at once.
    stub.AllocateVolume(vs_pb2.AllocateVolumeRequest(volume_id=new_b, replication="000", version=3), timeout=10)
    assert (b / f"{new_b}.dat").exists()
    assert threads[0].is_alive(), held
    threads[1].start()
    time.sleep(0.5)
    assert all(t.is_alive() for t in threads), held
    configured = stub.VolumeConfigure(vs_pb2.VolumeConfigureRequest(volume_id=vid_b, replication="000"), timeout=10)
    assert configured.error == ""
    g = requests.get(f"{kelp.url}/{fid(vid_b, 1)}", timeout=10)
    assert g.status_code == 200 and g.content == blob_b
    assert all(t.is_alive() for t in threads), ("the calls on B were answered only after A's stalled disk", held)

    for t in threads:
        t.join(timeout=60)
    assert isinstance(held["allocate A"], vs_pb2.AllocateVolumeResponse), held["allocate A"]
    assert isinstance(held["delete A"], vs_pb2.VolumeDeleteResponse), held["delete A"]
    # Answered after the files were created, and after they were removed.
    assert (a / f"{new_a}.dat").exists() and (a / f"{new_a}.idx").exists()
    assert not (a / f"{vid_a}.dat").exists() and not (a / f"{vid_a}.idx").exists()
    assert requests.get(f"{kelp.url}/{fid(vid_a, 1)}", timeout=10).status_code == 404
    for vid in (new_a, new_b):
        assert upload(kelp.url, fid(vid, 1), b"into a new volume").status_code == 201
