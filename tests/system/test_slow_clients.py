"""Clients that stop reading, and headers that never finish, give their slot
back: a stalled reader is dropped once no byte of its answer has left for
-idleTimeout (Go's rule), and a request header must arrive whole within
-idleTimeout (at most 30 s) of its first byte, however steadily it trickles."""
import os
import socket
import time
from pathlib import Path

import requests

from conftest import fid_on, wait_http, wait_until, worker_pids

IDLE_TIMEOUT_S = 3
STALLED = 60
BLOB = 8 << 20


def open_fds(pids):
    return sum(len(os.listdir(f"/proc/{p}/fd")) for p in pids)


def rss_kb(pids):
    total = 0
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def stalled_readers(port, path, n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        socks.append(s)
    return socks


def dropped(sock, timeout=10):
    """The server closed or reset this connection. What it had already handed
    to the kernel is still delivered (and thrown away here) before the end."""
    sock.settimeout(timeout)
    try:
        while sock.recv(1 << 20):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_clients_that_stop_reading_are_dropped_and_their_resources_freed(cluster, tmp_path):
    cluster.start_master()
    go = cluster.start_go_volume(tmp_path / "go", extra=[f"-idleTimeout={IDLE_TIMEOUT_S}"])
    kelp = cluster.start_kelp(tmp_path / "kelp", extra=[f"-idleTimeout={IDLE_TIMEOUT_S}"])
    wait_http(kelp.url + "/healthz", timeout=30)
    blob = os.urandom(BLOB)
    paths = {}
    for name, s in (("go", go), ("kelp", kelp)):
        fid = fid_on(cluster.master, s)
        assert requests.post(f"{s.url}/{fid}", files={"file": ("big.bin", blob)}, timeout=60).status_code == 201
        paths[name] = "/" + fid
    kelp_workers = worker_pids(kelp.pid)
    baseline = {"go": open_fds([go.pid]), "kelp": open_fds(kelp_workers)}
    rss_before = rss_kb(kelp_workers)

    socks = {"go": stalled_readers(go.port, paths["go"], STALLED), "kelp": stalled_readers(kelp.port, paths["kelp"], STALLED)}
    held = {"go": lambda: open_fds([go.pid]), "kelp": lambda: open_fds(kelp_workers)}
    for name in socks:
        assert wait_until(lambda: held[name]() >= baseline[name] + STALLED, 10), (name, held[name](), baseline[name])
    rss_stalled = rss_kb(kelp_workers)

    # Nothing is read. After -idleTimeout without progress both servers drop them all.
    for name in socks:
        assert wait_until(lambda: held[name]() <= baseline[name] + 2, IDLE_TIMEOUT_S * 6), (name, held[name](), baseline[name])
        assert all(dropped(s) for s in socks[name]), name
        for s in socks[name]:
            s.close()
    rss_after = rss_kb(kelp_workers)
    print(f"kelp http workers RSS: {rss_before} kB idle, {rss_stalled} kB with {STALLED} stalled readers, {rss_after} kB after the drop")
    # The server still answers, and a reader that keeps reading is not dropped, however slow the whole answer is.
    for name, s in (("go", go), ("kelp", kelp)):
        assert requests.get(f"{s.url}{paths[name]}", timeout=30).content == blob, name


def test_a_header_trickled_in_forever_loses_its_connection(cluster, tmp_path):
    cluster.start_master()
    kelp = cluster.start_kelp(tmp_path / "kelp", extra=[f"-idleTimeout={IDLE_TIMEOUT_S}"])
    socks = []
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", kelp.port))
        s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(s)
    # One byte a second: never idle for -idleTimeout, but the header never ends.
    start = time.time()
    while time.time() - start < IDLE_TIMEOUT_S * 4:
        for s in socks:
            try:
                s.sendall(b"a")
            except OSError:
                pass
        time.sleep(1)
    assert all(dropped(s) for s in socks), sum(dropped(s) for s in socks)
    for s in socks:
        s.close()
    assert requests.get(kelp.url + "/status", timeout=10).status_code == 200


def test_an_idle_keep_alive_connection_is_closed_at_idle_timeout_but_not_before(cluster, tmp_path):
    cluster.start_master()
    kelp = cluster.start_kelp(tmp_path / "kelp", extra=[f"-idleTimeout={IDLE_TIMEOUT_S}"])
    s = socket.create_connection(("127.0.0.1", kelp.port))
    for _ in range(3):
        # Requests spaced by less than the idle timeout keep the connection, past the header deadline's length.
        s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200"), reply[:80]
        time.sleep(IDLE_TIMEOUT_S / 2)
    s.settimeout(IDLE_TIMEOUT_S * 5)
    assert s.recv(100) == b""
