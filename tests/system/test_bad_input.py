"""Hostile and malformed input: kelp answers as the Go server does (same status,
same JSON error where Go sends one), stays up, and changes nothing stored."""
import hashlib
import socket
import time

import pytest
import requests
from pathlib import Path

from conftest import Cluster, copy_tree


def digest_dir(d):
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(d.iterdir()) if f.suffix in (".dat", ".idx")}


def raw(port, payload, read_timeout=3.0):
    """Sends raw bytes, returns what the server answers before closing or going quiet.
    A server may answer and close before it has read everything (Go does for an
    oversized header): the send is then cut short, and the answer is still read."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return out


@pytest.fixture
def pair(go_dataset, tmp_path):
    """The same Go-written data served by the Go volume server and by kelp."""
    data, blobs = go_dataset
    c = Cluster(tmp_path)
    go_dir = copy_tree(data, tmp_path / "go")
    kelp_dir = copy_tree(data, tmp_path / "kelp")
    c.start_master()
    go = c.start_go_volume(go_dir, extra=["-fileSizeLimitMB=1"])
    kelp = c.start_kelp(kelp_dir, extra=["-fileSizeLimitMB=1"])
    yield go, kelp, kelp_dir, blobs
    c.stop_all()


def fid_parts(blobs):
    fid = next(f for f, (_, content, _) in blobs.items() if len(content) > 100)
    vid, rest = fid.split(",")
    return fid, vid, rest[:-8], rest[-8:]


def requests_to_compare(blobs):
    fid, vid, key, cookie = fid_parts(blobs)
    wrong_cookie = f"{vid},{key}{(int(cookie, 16) ^ 0xdeadbeef):08x}"
    boundary = "XyZ"
    broken_multipart = f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc".encode()
    return [
        ("GET", "/notanumber,01637037d6", {}, b""),
        ("GET", f"/{vid},zz637037d6", {}, b""),
        ("GET", f"/{vid},0123", {}, b""),
        ("GET", f"/{vid}," + "1" * 25, {}, b""),
        ("GET", f"/{vid},{key}{cookie}_x", {}, b""),
        ("GET", "/4294967296,01637037d6", {}, b""),
        ("GET", "/99999,01637037d6", {}, b""),
        ("GET", f"/{wrong_cookie}", {}, b""),
        ("HEAD", f"/{wrong_cookie}", {}, b""),
        ("GET", f"/{vid},ffffffff00000001", {}, b""),
        ("GET", f"/{vid}/../../etc/passwd", {}, b""),
        ("GET", "/", {}, b""),
        ("DELETE", f"/{wrong_cookie}", {}, b""),
        ("DELETE", f"/{vid},ffffffff00000001", {}, b""),
        ("DELETE", f"/{vid},12", {}, b""),
        ("POST", f"/{wrong_cookie}", {"Content-Type": "text/plain"}, b"overwrite with the wrong cookie"),
        ("POST", f"/{vid},zz", {"Content-Type": "text/plain"}, b"x"),
        ("POST", "/abc,0163703700", {"Content-Type": "text/plain"}, b"x"),
        ("POST", f"/99999,{key}{cookie}", {"Content-Type": "text/plain"}, b"no such volume"),
        ("POST", f"/{vid},7777{cookie}", {}, b"no content type means multipart"),
        ("POST", f"/{vid},7778{cookie}", {"Content-Type": "multipart/form-data"}, b"--x--"),
        ("POST", f"/{vid},7779{cookie}", {"Content-Type": f"multipart/form-data; boundary={boundary}"}, broken_multipart),
        ("PUT", f"/{vid},777a{cookie}", {"Content-Type": "application/octet-stream"}, b"z" * ((1 << 20) + 1)),
        ("PATCH", f"/{fid}", {}, b""),
    ]


def test_bad_requests_answered_like_go_and_nothing_changes(pair):
    go, kelp, kelp_dir, blobs = pair
    before = digest_dir(kelp_dir)
    mismatches = []
    for method, path, headers, body in requests_to_compare(blobs):
        answers = []
        for server in (go, kelp):
            r = requests.request(method, server.url + path, headers=headers, data=body, timeout=10)
            error = None
            if r.headers.get("Content-Type", "").startswith("application/json"):
                error = r.json().get("error") if isinstance(r.json(), dict) else None
            answers.append((r.status_code, error))
        if answers[0][0] != answers[1][0] or (answers[0][1] is None) != (answers[1][1] is None):
            mismatches.append((method, path, "go", answers[0], "kelp", answers[1]))
    assert not mismatches, "\n".join(map(str, mismatches))
    assert kelp.alive(), kelp.tail()
    assert digest_dir(kelp_dir) == before, "bad requests changed stored data"
    # Every stored blob is still served intact.
    s = requests.Session()
    for fid, (name, content, _) in list(blobs.items())[:100]:
        assert s.get(f"{kelp.url}/{fid}", timeout=10).content == content


def test_garbage_and_truncated_requests_leave_the_server_up(pair):
    go, kelp, kelp_dir, blobs = pair
    fid, vid, key, cookie = fid_parts(blobs)
    before = digest_dir(kelp_dir)
    garbage = [
        b"\x00\xff\xfe garbage \r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * (2 << 20) + b"\r\n\r\n",
        b"POST /" + f"{vid},{key}{cookie}".encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\nonly ten b",
        b"POST /" + f"{vid},{key}{cookie}".encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\nzz\r\nbad\r\n",
        b"POST /" + f"{vid},{key}{cookie}".encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ]
    for payload in garbage:
        k = raw(kelp.port, payload)
        g = raw(go.port, payload)
        k_status = k.split(b"\r\n", 1)[0]
        g_status = g.split(b"\r\n", 1)[0]
        # Both refuse (4xx) or both stay silent on a body that never completes.
        assert (k_status[9:10] == b"4") == (g_status[9:10] == b"4"), (payload[:60], g_status, k_status)
        assert kelp.alive(), kelp.tail()
    assert digest_dir(kelp_dir) == before
    assert requests.get(f"{kelp.url}/{fid}", timeout=10).content == blobs[fid][1]


def test_torn_dat_tail_is_cut_by_kelp_and_the_go_server_then_loads_it_writable(go_dataset, tmp_path):
    """Bytes past the last indexed needle were never acknowledged: Go loads such a
    volume read-only; kelp cuts them (docs/compatibility.md), keeps the volume
    writable, and hands Go a directory it loads writable too."""
    data, blobs = go_dataset
    c = Cluster(tmp_path)
    fid, vid, key, cookie = fid_parts(blobs)
    try:
        dirs, sizes = {}, {}
        for who in ("go", "kelp"):
            d = copy_tree(data, tmp_path / who)
            dat = next(p for p in d.glob(f"*{vid}.dat") if p.stem.rpartition("_")[2] == vid)
            sizes[who] = (dat, dat.stat().st_size)
            with open(dat, "ab") as f:
                f.write(b"\x13\x37" * 11)  # a torn append: bytes past the last indexed needle
            dirs[who] = d
        c.start_master()
        go = c.start_go_volume(dirs["go"])
        kelp = c.start_kelp(dirs["kelp"])

        def read_only(server):
            st = requests.get(server.url + "/status", timeout=10).json()
            return {str(v["Id"]): v["ReadOnly"] for v in st["Volumes"]}[vid]

        assert read_only(go) is True
        assert read_only(kelp) is False
        dat, size = sizes["kelp"]
        assert dat.stat().st_size == size  # exactly the torn bytes were cut
        assert "cutting it" in Path(kelp.log_path).read_text(errors="replace")
        for server in (go, kelp):
            assert requests.get(f"{server.url}/{fid}", timeout=10).content == blobs[fid][1]
        answers = [requests.post(f"{s.url}/{vid},9999{cookie}", data=b"x", headers={"Content-Type": "text/plain"}, timeout=10)
                   for s in (go, kelp)]
        assert answers[0].status_code >= 400 and answers[1].status_code == 201, [(a.status_code, a.text) for a in answers]
        kelp.stop()
        go.stop()
        go2 = c.start_go_volume(dirs["kelp"])
        assert read_only(go2) is False
        assert requests.get(f"{go2.url}/{vid},9999{cookie}", timeout=10).content == b"x"
        assert requests.get(f"{go2.url}/{fid}", timeout=10).content == blobs[fid][1]
    finally:
        c.stop_all()


def test_hostile_numbers_in_queries_answer_like_go(pair):
    """Negative, huge and non-numeric query numbers: the same status (and JSON
    error or not) from both servers, and the same bytes stored."""
    go, kelp, kelp_dir, blobs = pair
    fid, vid, key, cookie = fid_parts(blobs)
    writes = ["ts=-1", "ts=99999999999999999999999", "ts=abc", "ttl=-5m", "ttl=99999999999y", "ttl=3x",
              "ttl=0", "fsync=maybe", "cm=2", "dl=-1"]
    reads = ["readDeleted=banana", "dl=-1", "width=-99999999999999999999&height=1", "cm=-1",
             "crop_x1=-1&crop_x2=99999999999999999999", "width=99999999999999999999"]
    for i, q in enumerate(writes):
        path = f"/{vid},{0x7790 + i:x}{cookie}?{q}"
        answers = []
        for server in (go, kelp):
            r = requests.post(server.url + path, files={"file": ("n.txt", b"numbers " * 8)}, timeout=10)
            is_json = r.headers.get("Content-Type", "").startswith("application/json")
            answers.append((r.status_code, is_json and "error" in r.json()))
        assert answers[0] == answers[1], (q, answers)
        if answers[0][0] == 201:
            got = [requests.get(server.url + path.split("?")[0], timeout=10) for server in (go, kelp)]
            assert got[0].content == got[1].content, q
            # The same write time (a ts Go ignores means "now": the two writes may straddle a second).
            from email.utils import parsedate_to_datetime
            marks = [g.headers.get("Last-Modified") for g in got]
            if marks[0] != marks[1]:
                stamps = [parsedate_to_datetime(m).timestamp() for m in marks]
                assert abs(stamps[0] - stamps[1]) <= 2, (q, marks)
    for q in reads:
        g = requests.get(f"{go.url}/{fid}?{q}", timeout=10)
        k = requests.get(f"{kelp.url}/{fid}?{q}", timeout=10)
        assert (g.status_code, g.content) == (k.status_code, k.content), q
    assert kelp.alive(), kelp.tail()


def test_gzip_bomb_upload_is_refused_and_nothing_is_stored(pair):
    """A gzip body that inflates past 4x the file size limit + 64 MB is refused
    (Go counts it all and stores it); the worker stays up."""
    import gzip
    go, kelp, kelp_dir, blobs = pair
    fid, vid, key, cookie = fid_parts(blobs)
    bomb = gzip.compress(b"\0" * (80 << 20), compresslevel=9)
    assert len(bomb) < (1 << 20)  # within -fileSizeLimitMB=1 as sent
    before = digest_dir(kelp_dir)
    r = requests.put(f"{kelp.url}/{vid},7799{cookie}", data=bomb, timeout=60,
                     headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "inflates to more than" in r.json()["error"], r.text
    assert digest_dir(kelp_dir) == before
    assert kelp.alive(), kelp.tail()
    assert requests.get(f"{kelp.url}/{fid}", timeout=10).content == blobs[fid][1]
