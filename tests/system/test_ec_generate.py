"""Erasure coding, the encode (VolumeEcShardsGenerate): kelp writes Go 4.48's
files byte for byte from the same volume, Go serves every blob from the shards
kelp wrote, and a job process killed mid-encode fails that call alone."""
import json
import os
import random
import shutil
import signal
import threading
import time

import requests

from conftest import crc32c, wait_until
from grpc_stubs import call, vs_pb2, volume_stub
from test_vacuum import fid, start, stop

VID = 9
OCTET = {"Content-Type": "application/octet-stream"}
TOTAL = 14


def fill(url, rng, megabytes):
    """Blobs of 1-400 KB until `megabytes` MB are written, then every fifth
    deleted. Returns (live {key: bytes}, deleted keys)."""
    live, total, key = {}, 0, 0
    while total < megabytes << 20:
        key += 1
        data = rng.randbytes(rng.randint(1000, 400_000))
        r = requests.post(f"{url}/{fid(VID, key)}", data=data, headers=OCTET, timeout=30)
        assert r.status_code == 201, r.text
        live[key] = data
        total += len(data)
    gone = set(range(3, key + 1, 5))
    for k in gone:
        assert requests.delete(f"{url}/{fid(VID, k)}", timeout=30).status_code == 202
        del live[k]
    return live, gone


def job_pid(title):
    """The pid of a kelp job process whose title starts with `title`, if one runs."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if open(f"/proc/{pid}/cmdline", "rb").read().startswith(title.encode()):
                    return int(pid)
            except OSError:
                pass
    return None


def ec_job_pid(kind="encode", vid=VID):
    """The pid of the running EC job of `kind` (encode, rebuild, decode) on `vid`, if there is one."""
    return job_pid(f"kelp-volume: ec {kind} job volume {vid}")


def generate(srv, vid=VID, collection=""):
    return call(volume_stub(srv.port).VolumeEcShardsGenerate,
                vs_pb2.VolumeEcShardsGenerateRequest(volume_id=vid, collection=collection), timeout=300)


def ec_files(d):
    return sorted(p.name for p in d.iterdir() if p.suffix.startswith(".ec"))


def parse_ecsum(raw):
    """(header fields, EcBitrotProtection) of an .ecsum, its header checked."""
    magic, version = int.from_bytes(raw[0:4], "big"), int.from_bytes(raw[4:6], "big")
    length, crc = int.from_bytes(raw[6:10], "big"), int.from_bytes(raw[10:14], "big")
    payload = raw[14:]
    assert (magic, version, length) == (0x45435355, 1, len(payload))
    assert crc == crc32c(payload)
    msg = vs_pb2.EcBitrotProtection()
    msg.ParseFromString(payload)
    return msg


def go_written_volume(cluster, tmp_path, megabytes):
    """A volume a Go server wrote (with deletions); its directory and blobs."""
    cluster.start_master(volume_size_limit_mb=256)
    d = tmp_path / "go"
    go = start(cluster, "go", d)
    code, details, _ = call(volume_stub(go.port).AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))
    assert code == "OK", details
    live, gone = fill(go.url, random.Random(megabytes), megabytes)
    stop(cluster, go)
    return d, live, gone


def test_generate_writes_go_s_files_and_go_serves_kelp_s_shards(cluster, tmp_path):
    # 26 MB: blocks of 3 MiB, where Go 4.48's uniform layout and the older
    # two-tier one place the bytes differently.
    g, live, gone = go_written_volume(cluster, tmp_path, 26)
    k = tmp_path / "kelp"
    k.mkdir()
    for ext in (".dat", ".idx", ".vif"):
        if (g / f"{VID}{ext}").exists():
            shutil.copy2(g / f"{VID}{ext}", k / f"{VID}{ext}")
    go, kelp = start(cluster, "go", g), start(cluster, "kelp", k)

    # Go's refusals, word for word.
    for srv in (go, kelp):
        assert generate(srv, vid=77)[:2] == ("UNKNOWN", "volume 77 not found")
        assert generate(srv, collection="pics")[:2] == ("UNKNOWN", "existing collection: unexpected input: pics")
    before = time.time_ns()
    for srv in (go, kelp):
        code, details, _ = generate(srv)
        assert code == "OK", details
    after = time.time_ns()

    names = [f"{VID}.ec{i:02d}" for i in range(TOTAL)] + [f"{VID}.ecx"]
    assert ec_files(k) == ec_files(g) == sorted(names + [f"{VID}.ecsum"])
    dat_size = (g / f"{VID}.dat").stat().st_size
    assert dat_size > 20 << 20
    for name in names:
        assert (k / name).read_bytes() == (g / name).read_bytes(), name
    assert (k / f"{VID}.ec00").stat().st_size == 3 << 20

    go_vif, kelp_vif = (json.loads((d / f"{VID}.vif").read_text()) for d in (g, k))
    for vif in (go_vif, kelp_vif):
        ts = int(vif["ecShardConfig"].pop("encodeTsNs"))
        assert before <= ts <= after
    assert kelp_vif == go_vif
    assert kelp_vif["datFileSize"] == str(dat_size) and kelp_vif["ecShardConfig"]["blockSize"] == str(3 << 20)

    go_sum, kelp_sum = (parse_ecsum((d / f"{VID}.ecsum").read_bytes()) for d in (g, k))
    assert len(go_sum.encode_uuid) == len(kelp_sum.encode_uuid) == 16
    go_sum.ClearField("encode_uuid")
    kelp_sum.ClearField("encode_uuid")
    assert kelp_sum == go_sum
    assert len(kelp_sum.shards) == TOTAL

    # The volume itself is untouched and goes on taking writes.
    r = requests.post(f"{kelp.url}/{fid(VID, 999_999)}", data=b"after the encode", headers=OCTET, timeout=30)
    assert r.status_code == 201

    # A Go server with kelp's EC files and no .dat serves every blob from them.
    h = tmp_path / "shards"
    h.mkdir()
    for name in names + [f"{VID}.vif", f"{VID}.ecsum"]:
        shutil.copy2(k / name, h / name)
    reader = start(cluster, "go", h)
    for key, data in live.items():
        r = requests.get(f"{reader.url}/{fid(VID, key)}", timeout=30)
        assert r.status_code == 200 and r.content == data, (key, r.status_code)
    for key in gone:
        assert requests.get(f"{reader.url}/{fid(VID, key)}", timeout=30).status_code == 404, key


def test_a_killed_encode_job_fails_alone_and_a_retry_succeeds(cluster, tmp_path):
    cluster.start_master(volume_size_limit_mb=256)
    d = tmp_path / "kelp"
    # Throttled so that the encode is still running when its process is killed.
    kelp = cluster.start_kelp(d, extra=("-maintenanceMBps=4",))
    code, details, _ = call(volume_stub(kelp.port).AllocateVolume, vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))
    assert code == "OK", details
    live, gone = fill(kelp.url, random.Random(5), 24)
    vif_before = (d / f"{VID}.vif").read_bytes()

    answer = {}
    t = threading.Thread(target=lambda: answer.update(result=generate(kelp)))
    t.start()
    assert wait_until(lambda: ec_job_pid() is not None, 30, interval=0.05), "no encode job process appeared"
    victim = ec_job_pid()
    time.sleep(0.5)  # into the shards
    os.kill(victim, signal.SIGKILL)
    t.join(60)
    code, details, _ = answer["result"]
    assert code == "UNKNOWN" and "killed by signal 9" in details, (code, details)
    assert ec_files(d) == []
    assert (d / f"{VID}.vif").read_bytes() == vif_before
    for key in list(live)[:20]:
        r = requests.get(f"{kelp.url}/{fid(VID, key)}", timeout=30)
        assert r.status_code == 200 and r.content == live[key]
    r = requests.post(f"{kelp.url}/{fid(VID, 999_999)}", data=b"still writable", headers=OCTET, timeout=30)
    assert r.status_code == 201
    assert kelp.p.poll() is None

    code, details, _ = generate(kelp)
    assert code == "OK", details
    assert len([n for n in ec_files(d) if n.startswith(f"{VID}.ec") and n[-2:].isdigit()]) == TOTAL
