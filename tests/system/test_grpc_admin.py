"""The VolumeServer gRPC API against the Go volume server: the same requests,
bad ones included, get the same status codes and error texts from both, and
leave the disk the same way."""
from pathlib import Path

import requests

from conftest import wait_http
from grpc_stubs import call, vs_pb2, volume_stub


def files_of(d):
    return sorted(p.name for p in Path(d).iterdir() if p.suffix in (".dat", ".idx", ".vif"))


def both(cluster, tmp_path):
    cluster.start_master()
    go_dir, kelp_dir = tmp_path / "go", tmp_path / "kelp"
    go_dir.mkdir()
    go = cluster.start_go_volume(go_dir)
    kelp = cluster.start_kelp(kelp_dir)
    wait_http(kelp.url + "/healthz", timeout=30)
    return [("go", go, go_dir, volume_stub(go.port)), ("kelp", kelp, kelp_dir, volume_stub(kelp.port))]


def same(results):
    (na, a), (nb, b) = results
    assert a == b, f"{na}: {a}\n{nb}: {b}"
    return a


def test_admin_errors_match_go(cluster, tmp_path):
    servers = both(cluster, tmp_path)
    base = 900
    cases = [
        ("AllocateVolume", vs_pb2.AllocateVolumeRequest(volume_id=base, version=0)),
        ("AllocateVolume", vs_pb2.AllocateVolumeRequest(volume_id=base, replication="300", version=3)),
        ("AllocateVolume", vs_pb2.AllocateVolumeRequest(volume_id=base, replication="-1", version=3)),
        ("AllocateVolume", vs_pb2.AllocateVolumeRequest(volume_id=base, replication="abc", version=3)),
        ("VolumeMount", vs_pb2.VolumeMountRequest(volume_id=99999)),
        ("VolumeUnmount", vs_pb2.VolumeUnmountRequest(volume_id=99999)),
        ("VolumeDelete", vs_pb2.VolumeDeleteRequest(volume_id=99999)),
        ("VolumeStatus", vs_pb2.VolumeStatusRequest(volume_id=99999)),
        ("VolumeMarkReadonly", vs_pb2.VolumeMarkReadonlyRequest(volume_id=99999)),
        ("VolumeMarkWritable", vs_pb2.VolumeMarkWritableRequest(volume_id=99999)),
        ("ReadVolumeFileStatus", vs_pb2.ReadVolumeFileStatusRequest(volume_id=99999)),
        ("VolumeNeedleStatus", vs_pb2.VolumeNeedleStatusRequest(volume_id=99999, needle_id=1)),
        ("VolumeConfigure", vs_pb2.VolumeConfigureRequest(volume_id=99999, replication="001")),
        ("SetState", vs_pb2.SetStateRequest(state=vs_pb2.VolumeServerState(maintenance=True, version=77))),
    ]
    before = {name: files_of(d) for name, _, d, _ in servers}
    mismatches = []
    for method, req in cases:
        got = []
        for name, _, _, stub in servers:
            code, details, _ = call(getattr(stub, method), req)
            got.append((method, code, details))
        if got[0] != got[1]:
            mismatches.append(f"go:   {got[0]}\nkelp: {got[1]}")
        assert got[0][1] != "OK" or method in ("VolumeUnmount", "VolumeConfigure"), got
    assert not mismatches, "\n".join(mismatches)
    # Nothing was created or removed by any refused request. (Go itself leaves
    # 900.dat and 900.vif behind after refusing version 0; kelp creates nothing.)
    _, _, kelp_dir, _ = servers[1]
    assert files_of(kelp_dir) == before["kelp"]


def test_volume_lifecycle_matches_go(cluster, tmp_path):
    servers = both(cluster, tmp_path)
    vid = 901
    for name, srv, d, stub in servers:
        code, details, _ = call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=vid, collection="c1", replication="000", ttl="", version=3))
        assert code == "OK", (name, details)
        assert {"c1_901.dat", "c1_901.idx"} <= set(files_of(d)), (name, files_of(d))
    # A volume that already exists.
    same([(n, call(s.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=vid, collection="c1", version=3))[:2]) for n, _, _, s in servers])
    # Write one needle, then the read-only, status and delete paths.
    for name, srv, d, stub in servers:
        assert requests.post(f"{srv.url}/{vid},1234abcd0001", files={"file": ("p.txt", b"payload")}, timeout=5).status_code == 201, name
    statuses = []
    for name, srv, d, stub in servers:
        code, details, resp = call(stub.VolumeStatus, vs_pb2.VolumeStatusRequest(volume_id=vid))
        statuses.append((name, (code, resp.is_read_only, resp.volume_size, resp.file_count, resp.file_deleted_count)))
    same(statuses)
    needle = []
    for name, srv, d, stub in servers:
        code, details, resp = call(stub.VolumeNeedleStatus, vs_pb2.VolumeNeedleStatusRequest(volume_id=vid, needle_id=0x1234))
        needle.append((name, (code, details, resp and (resp.needle_id, resp.cookie, resp.size, resp.crc, resp.ttl))))
    same(needle)
    same([(n, call(s.VolumeNeedleStatus, vs_pb2.VolumeNeedleStatusRequest(volume_id=vid, needle_id=0x99))[:2]) for n, _, _, s in servers])
    same([(n, call(s.VolumeDelete, vs_pb2.VolumeDeleteRequest(volume_id=vid, only_empty=True))[:2]) for n, _, _, s in servers])
    # BatchDelete: malformed ids, a wrong cookie, a missing needle, then the real one twice.
    fids = ["", "nocomma", f"{vid},zz", f"{vid},12", f"{vid},1234abcd9999", f"{vid},5634abcd0001", f"{vid},1234abcd0001",
            f"{vid},1234abcd0001", "99999,1234abcd0001"]
    results = []
    for name, srv, d, stub in servers:
        code, details, resp = call(stub.BatchDelete, vs_pb2.BatchDeleteRequest(file_ids=fids))
        results.append((name, (code, [(r.file_id, r.status, r.error, r.size) for r in resp.results] if resp else details)))
    same(results)
    for name, srv, d, stub in servers:
        assert requests.get(f"{srv.url}/{vid},1234abcd0001", timeout=5).status_code == 404, name
    # Unmount keeps the files; mount brings the volume back.
    for name, srv, d, stub in servers:
        assert call(stub.VolumeUnmount, vs_pb2.VolumeUnmountRequest(volume_id=vid))[0] == "OK", name
        assert "c1_901.dat" in files_of(d)
        assert requests.get(f"{srv.url}/{vid},5634abcd0001", timeout=5).status_code == 404
        assert call(stub.VolumeMount, vs_pb2.VolumeMountRequest(volume_id=vid))[0] == "OK", name
    # Replication change through VolumeConfigure survives a remount.
    for name, srv, d, stub in servers:
        code, details, resp = call(stub.VolumeConfigure, vs_pb2.VolumeConfigureRequest(volume_id=vid, replication="001"))
        assert code == "OK" and resp.error == "", (name, details, resp)
        st = requests.get(srv.url + "/status", timeout=5).json()
        rp = [v["ReplicaPlacement"] for v in st["Volumes"] if v["Id"] == vid]
        assert rp and rp[0] == {"node": 1}, (name, st["Volumes"])
    for name, srv, d, stub in servers:
        assert call(stub.VolumeDelete, vs_pb2.VolumeDeleteRequest(volume_id=vid))[0] == "OK", name
        assert not [f for f in files_of(d) if f.startswith("c1_901.")], (name, files_of(d))


def test_hostile_collection_is_refused(cluster, tmp_path):
    cluster.start_master()
    d = tmp_path / "kelp"
    kelp = cluster.start_kelp(d)
    stub = volume_stub(kelp.port)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for collection in ("../evil", "a/b", "..", "x\\y"):
        code, details, _ = call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=950, collection=collection, version=3))
        assert code == "UNKNOWN" and details.startswith("invalid collection"), (collection, code, details)
    assert sorted(p.name for p in tmp_path.rglob("*") if "log" not in p.name) == [n for n in before if "log" not in n]
    # A method not built yet names itself.
    code, details, _ = call(stub.FetchAndWriteNeedle, vs_pb2.FetchAndWriteNeedleRequest(volume_id=1))
    assert code == "UNIMPLEMENTED" and "FetchAndWriteNeedle" in details
    code, _, resp = call(stub.Ping, vs_pb2.PingRequest())
    assert code == "OK" and resp.start_time_ns > 0 and resp.stop_time_ns >= resp.start_time_ns
    code, details, _ = call(stub.Ping, vs_pb2.PingRequest(target="10.1.2.3:9333", target_type="master"))
    assert code == "INVALID_ARGUMENT" and "unknown ping target" in details
    code, _, resp = call(stub.Ping, vs_pb2.PingRequest(target=f"127.0.0.1:{cluster.master_port}", target_type="master"))
    assert code == "OK" and resp.remote_time_ns > 0
    # Maintenance mode refuses mutations until it is turned off again, and persists.
    code, _, resp = call(stub.SetState, vs_pb2.SetStateRequest(state=vs_pb2.VolumeServerState(maintenance=True, version=0)))
    assert code == "OK" and resp.state.maintenance and resp.state.version == 1
    code, details, _ = call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=951, version=3))
    assert code == "UNKNOWN" and details == f"volume server 127.0.0.1:{kelp.port} is in maintenance mode", details
    assert (d / "state.pb").exists()
    code, _, resp = call(stub.SetState, vs_pb2.SetStateRequest(state=vs_pb2.VolumeServerState(maintenance=False, version=1)))
    assert code == "OK" and not resp.state.maintenance and resp.state.version == 2
    assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=951, version=3))[0] == "OK"


def test_maintenance_mode_refuses_what_go_refuses(cluster, tmp_path):
    """Go 4.48 in maintenance mode still deletes volumes, marks them read-only,
    mounts and unmounts; it refuses allocation, configuration, making writable
    and batch deletes. Answers and the volumes left must be the same."""
    servers = both(cluster, tmp_path)
    for name, srv, d, stub in servers:
        for vid in (61, 62, 63, 64):
            assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=vid, replication="000", version=3))[0] == "OK"
        code, _, resp = call(stub.SetState, vs_pb2.SetStateRequest(state=vs_pb2.VolumeServerState(maintenance=True, version=0)))
        assert code == "OK" and resp.state.maintenance, name
    cases = [
        ("VolumeDelete", vs_pb2.VolumeDeleteRequest(volume_id=61)),
        ("VolumeDelete", vs_pb2.VolumeDeleteRequest(volume_id=99999)),
        ("VolumeMarkReadonly", vs_pb2.VolumeMarkReadonlyRequest(volume_id=62, persist=True)),
        ("VolumeMarkReadonly", vs_pb2.VolumeMarkReadonlyRequest(volume_id=63)),
        ("VolumeMarkReadonly", vs_pb2.VolumeMarkReadonlyRequest(volume_id=99999)),
        ("VolumeMarkWritable", vs_pb2.VolumeMarkWritableRequest(volume_id=62)),
        ("VolumeConfigure", vs_pb2.VolumeConfigureRequest(volume_id=64, replication="001")),
        ("AllocateVolume", vs_pb2.AllocateVolumeRequest(volume_id=65, version=3)),
        ("BatchDelete", vs_pb2.BatchDeleteRequest(file_ids=["64,1234abcd0001"])),
        ("VolumeUnmount", vs_pb2.VolumeUnmountRequest(volume_id=64)),
        ("VolumeMount", vs_pb2.VolumeMountRequest(volume_id=64)),
    ]
    mismatches = []
    for method, req in cases:
        got = []
        for name, srv, _, stub in servers:
            code, details, _ = call(getattr(stub, method), req)
            got.append((method, code, details.replace(f":{srv.port} ", ":PORT ")))
        if got[0] != got[1]:
            mismatches.append(f"go:   {got[0]}\nkelp: {got[1]}")
    assert not mismatches, "\n".join(mismatches)
    left = [(name, sorted((v["Id"], v["ReadOnly"]) for v in requests.get(srv.url + "/status", timeout=5).json()["Volumes"]))
            for name, srv, _, _ in servers]
    same(left)
    assert left[0][1] == [(62, True), (63, True), (64, False)], left


def test_configure_of_a_missing_volume_answers_like_go(cluster, tmp_path):
    servers = both(cluster, tmp_path)
    answers = []
    for name, _, _, stub in servers:
        code, details, resp = call(stub.VolumeConfigure, vs_pb2.VolumeConfigureRequest(volume_id=99999, replication="001"))
        answers.append((name, (code, details, resp.error if resp else None)))
    error = same(answers)[2]
    assert "failed to restore mount" in error, error
    # An unmounted volume is configured on disk and mounted again.
    results = []
    for name, srv, _, stub in servers:
        assert call(stub.AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=66, replication="000", version=3))[0] == "OK"
        assert call(stub.VolumeUnmount, vs_pb2.VolumeUnmountRequest(volume_id=66))[0] == "OK"
        code, details, resp = call(stub.VolumeConfigure, vs_pb2.VolumeConfigureRequest(volume_id=66, replication="001"))
        rp = [v["ReplicaPlacement"] for v in requests.get(srv.url + "/status", timeout=5).json()["Volumes"] if v["Id"] == 66]
        results.append((name, (code, details, resp.error if resp else None, rp)))
    assert same(results) == ("OK", "", "", [{"node": 1}])
