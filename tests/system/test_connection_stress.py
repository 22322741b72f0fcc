"""Connections closed en masse never take an HTTP worker down.

Every round opens a batch of keep-alive connections to a server with two
workers, leaves each in a different state (answered, pipelined and half
answered, cut mid-body, cut mid-headers, reset with SO_LINGER 0, uploading) and
closes them all at once, so each worker tears down many connections in one
loop iteration. The workers must survive every round: same pids, no exit in the
supervisor's log. conftest's ASan options fill freed memory, so a handle that
libuv still touches after its owner was freed crashes the worker at once."""
import socket
import struct
import time

import requests

from conftest import worker_pids

ROUNDS = 250
BATCH = 32
FID = "1,01637037d6"  # volume 1, key 1, cookie 0x637037d6


def empty_volume(d):
    """Volume 1 as Go creates it: an 8-byte version-3 superblock and an empty index."""
    d.mkdir()
    (d / "1.dat").write_bytes(bytes([3, 0, 0, 0, 0, 0, 0, 0]))
    (d / "1.idx").write_bytes(b"")


def read_answer(f):
    """Reads one response; returns its status line."""
    status = f.readline()
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    f.read(length)
    return status


def upload(fid, body, length=None):
    head = (f"POST /{fid} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n").encode()
    return head + body


def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def open_in_state(port, kind, i):
    """A connection left in the state `kind`; returns the socket to close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    get = f"GET /{FID} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    if kind == 0:  # answered, idle keep-alive
        s.sendall(get)
        assert read_answer(f).startswith(b"HTTP/1.1 200")
    elif kind == 1:  # three pipelined, only the first read
        s.sendall(get * 3)
        assert read_answer(f).startswith(b"HTTP/1.1 200")
    elif kind == 2:  # cut in the middle of an upload body
        s.sendall(upload(f"1,{0x1000 + i:x}637037d6", b"x" * 500, length=5000))
    elif kind == 3:  # cut in the middle of the headers
        s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nAccept: tex")
    elif kind == 4:  # answered, then reset
        s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_answer(f).startswith(b"HTTP/1.1 200")
        reset(s)
    elif kind == 5:  # reset with a request the server is answering
        s.sendall(get * 2)
        reset(s)
    elif kind == 6:  # a whole upload answered, then another one begun
        s.sendall(upload(f"1,{0x2000 + i:x}637037d6", b"y" * 2000))
        assert read_answer(f).startswith(b"HTTP/1.1 201")
        s.sendall(upload(f"1,{0x3000 + i:x}637037d6", b"z" * 100, length=100000)[:60])
    else:  # connected, nothing sent
        pass
    f.close()
    return s


def test_mass_close_keeps_workers_alive(cluster, tmp_path):
    d = tmp_path / "data"
    empty_volume(d)
    kelp = cluster.start_kelp(d, workers=2)
    r = requests.post(f"{kelp.url}/{FID}", files={"file": ("a.txt", b"hello stress")}, timeout=10)
    assert r.status_code == 201, r.text
    before = sorted(worker_pids(kelp.pid))
    assert len(before) == 2, before

    started = time.time()
    for n in range(ROUNDS):
        socks = [open_in_state(kelp.port, (n + i) % 8, n * BATCH + i) for i in range(BATCH)]
        for s in socks:
            s.close()
        if n % 25 == 0:
            assert sorted(worker_pids(kelp.pid)) == before, f"a worker died by round {n}:\n{kelp.tail()}"
    elapsed = time.time() - started

    # Both workers still answer (each takes some of a burst of fresh connections).
    for _ in range(20):
        assert requests.get(f"{kelp.url}/{FID}", timeout=10).content == b"hello stress"
    assert sorted(worker_pids(kelp.pid)) == before, f"workers replaced:\n{kelp.tail()}"
    assert kelp.alive(), kelp.tail()
    log = open(kelp.log_path, errors="replace").read()
    assert "exited: status" not in log, log[-3000:]
    print(f"{ROUNDS} rounds of {BATCH} connections in {elapsed:.1f} s")
