"""HTTP/1.1 behaviour clients depend on: keep-alive, pipelining answered in order,
Expect: 100-continue, chunked request bodies, and large reads streamed intact."""
import hashlib
import random
import socket

import requests

from conftest import copy_tree


def read_response(sock_file):
    status = sock_file.readline()
    headers = {}
    while True:
        line = sock_file.readline()
        if line in (b"\r\n", b""):
            break
        k, v = line.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = sock_file.read(int(headers.get("content-length", "0")))
    return status, headers, body


def test_pipelined_requests_on_one_connection_answer_in_order(go_dataset, tmp_path, cluster):
    data, blobs = go_dataset
    kelp = cluster.start_kelp(copy_tree(data, tmp_path / "data"))
    chosen = [f for f, (_, c, _) in blobs.items() if 0 < len(c) < 20000][:20]
    pipeline = b"".join(f"GET /{fid} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for fid in chosen)
    with socket.create_connection(("127.0.0.1", kelp.port), timeout=10) as s:
        s.sendall(pipeline)  # all requests before reading any answer
        f = s.makefile("rb")
        for fid in chosen:
            status, headers, body = read_response(f)
            assert status.startswith(b"HTTP/1.1 200"), (fid, status)
            assert body == blobs[fid][1], fid
        # The connection is still usable afterwards (keep-alive).
        s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = read_response(f)
        assert status.startswith(b"HTTP/1.1 200") and b"Volumes" in body


def test_expect_continue_and_chunked_upload(go_dataset, tmp_path, cluster):
    data, blobs = go_dataset
    kelp = cluster.start_kelp(copy_tree(data, tmp_path / "data"))
    vid = next(iter(blobs)).split(",")[0]
    payload = random.Random(3).randbytes(300000)
    with socket.create_connection(("127.0.0.1", kelp.port), timeout=10) as s:
        f = s.makefile("rb")
        s.sendall((f"PUT /{vid},a1b2c3d4e5f6 HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                   f"Content-Length: {len(payload)}\r\nExpect: 100-continue\r\n\r\n").encode())
        assert f.readline().startswith(b"HTTP/1.1 100"), "no 100 Continue before the body"
        assert f.readline() == b"\r\n"
        s.sendall(payload)
        status, headers, body = read_response(f)
        assert status.startswith(b"HTTP/1.1 201"), (status, body)
        # A chunked body on the same connection.
        chunks = [payload[i:i + 7000] for i in range(0, 70000, 7000)]
        req = (f"PUT /{vid},a1b3c3d4e5f7 HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
               "Transfer-Encoding: chunked\r\n\r\n").encode()
        req += b"".join(b"%x\r\n" % len(c) + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
        s.sendall(req)
        status, headers, body = read_response(f)
        assert status.startswith(b"HTTP/1.1 201"), (status, body)
    assert requests.get(f"{kelp.url}/{vid},a1b2c3d4e5f6", timeout=10).content == payload
    assert requests.get(f"{kelp.url}/{vid},a1b3c3d4e5f7", timeout=10).content == b"".join(chunks)


def test_large_needles_stream_and_ranges(go_dataset, tmp_path, cluster):
    data, blobs = go_dataset
    kelp = cluster.start_kelp(copy_tree(data, tmp_path / "data"))
    vid = next(iter(blobs)).split(",")[0]
    big = random.Random(4).randbytes(9 << 20)
    r = requests.post(f"{kelp.url}/{vid},b1b2c3d4e5f6", files={"file": ("big.bin", big)}, timeout=60)
    assert r.status_code == 201, r.text
    with requests.get(f"{kelp.url}/{vid},b1b2c3d4e5f6", stream=True, timeout=60) as g:
        assert g.status_code == 200 and int(g.headers["Content-Length"]) == len(big)
        h = hashlib.sha256()
        for chunk in g.iter_content(1 << 16):
            h.update(chunk)
        assert h.hexdigest() == hashlib.sha256(big).hexdigest()
    head = requests.head(f"{kelp.url}/{vid},b1b2c3d4e5f6", timeout=10)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(big) and not head.content
    part = requests.get(f"{kelp.url}/{vid},b1b2c3d4e5f6", headers={"Range": "bytes=5000000-5000999"}, timeout=10)
    assert part.status_code == 206 and part.content == big[5000000:5001000]
    assert part.headers["Content-Range"] == f"bytes 5000000-5000999/{len(big)}"
    tail = requests.get(f"{kelp.url}/{vid},b1b2c3d4e5f6", headers={"Range": "bytes=-10"}, timeout=10)
    assert tail.status_code == 206 and tail.content == big[-10:]
    bad = requests.get(f"{kelp.url}/{vid},b1b2c3d4e5f6", headers={"Range": f"bytes={len(big)}-"}, timeout=10)
    assert bad.status_code == 416
