"""-port.public (reads only), /ui/index.html, /metrics on -metricsPort summed over
all workers, and the in-flight limits (-concurrentUploadLimitMB,
-concurrentDownloadLimitMB) with Go's 429 once the wait times out; each
compared with the Go volume server."""
import http.client
import random
import re
import socket
import time

import requests

from conftest import fid_on, free_port, wait_http


def raw(port, method, path, headers=None, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


KEPT = ("content-type", "content-length", "etag", "last-modified", "content-disposition", "accept-ranges",
        "access-control-allow-methods", "access-control-allow-headers")


def kept(h):
    return {k: v for k, v in h.items() if k in KEPT}


def test_public_port_serves_reads_only_like_go(cluster, tmp_path):
    cluster.start_master()
    kp, gp = free_port(), free_port()
    kelp = cluster.start_kelp(tmp_path / "k", extra=[f"-port.public={kp}"])
    go = cluster.start_go_volume(tmp_path / "g", extra=[f"-port.public={gp}"])
    wait_http(kelp.url + "/healthz", timeout=30)
    fids = {}
    for server, public in ((kelp, kp), (go, gp)):
        fid = fid_on(cluster.master, server)
        r = requests.post(f"{server.url}/{fid}?ts=1700000000", files={"file": ("a.bin", b"public bytes")})
        assert r.status_code == 201
        fids[public] = fid
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        k = raw(kp, method, "/" + fids[kp], body=b"x" if method in ("POST", "PUT") else None)
        g = raw(gp, method, "/" + fids[gp], body=b"x" if method in ("POST", "PUT") else None)
        assert (k[0], kept(k[1]), k[2]) == (g[0], kept(g[1]), g[2]), method
    for path in ("/status", "/healthz", "/ui/index.html"):
        assert raw(kp, "GET", path)[0] == raw(gp, "GET", path)[0] == 400, path
    for path in ("/favicon.ico", "/seaweedfsstatic/seaweed50x50.png"):
        assert raw(kp, "GET", path)[0] == raw(gp, "GET", path)[0] == 200, path
    # Nothing was written or deleted through the public port.
    assert raw(kelp.port, "GET", "/" + fids[kp])[2] == b"public bytes"
    # The advertised public URL is the public port.
    loc = requests.get(f"{cluster.master}/dir/lookup", params={"volumeId": fids[kp].split(",")[0]}).json()
    assert loc["locations"][0]["publicUrl"] == f"127.0.0.1:{kp}"


def test_ui_page(cluster, tmp_path):
    cluster.start_master()
    kelp = cluster.start_kelp(tmp_path / "k")
    wait_http(kelp.url + "/healthz", timeout=30)
    fid = fid_on(cluster.master, kelp)
    requests.post(f"{kelp.url}/{fid}", files={"file": ("a.bin", b"x")})
    st, h, body = raw(kelp.port, "GET", "/ui/index.html")
    assert st == 200 and h["content-type"] == "text/html; charset=utf-8"
    assert b"<td>" + fid.split(",")[0].encode() + b"</td>" in body
    # kelp's own icon where Go serves its static files.
    import io
    from PIL import Image
    st, h, body = raw(kelp.port, "GET", "/favicon.ico")
    assert st == 200 and h["content-type"] == "image/x-icon"
    assert Image.open(io.BytesIO(body)).size == (32, 32)
    st, h, body = raw(kelp.port, "GET", "/seaweedfsstatic/seaweed50x50.png")
    assert st == 200 and h["content-type"] == "image/png"
    assert Image.open(io.BytesIO(body)).size == (50, 50)


def metrics(port):
    text = requests.get(f"http://127.0.0.1:{port}/metrics").text
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return text, out


def test_metrics_cover_every_worker_with_go_names(cluster, tmp_path):
    cluster.start_master()
    km, gm = free_port(), free_port()
    kelp = cluster.start_kelp(tmp_path / "k", workers=2, extra=[f"-metricsPort={km}"])
    go = cluster.start_go_volume(tmp_path / "g", extra=[f"-metricsPort={gm}"])
    wait_http(kelp.url + "/healthz", timeout=30)
    for server in (kelp, go):
        fid = fid_on(cluster.master, server)
        assert requests.post(f"{server.url}/{fid}", files={"file": ("a.bin", b"m")}).status_code == 201
        # Fresh connections, so the reads spread over the workers.
        for _ in range(20):
            assert raw(server.port, "GET", "/" + fid)[0] == 200
        assert raw(server.port, "GET", "/" + fid.split(",")[0] + ",ffff00000000")[0] == 404
        assert raw(server.port, "PATCH", "/" + fid)[0] == 400
    ktext, k = metrics(km)
    gtext, g = metrics(gm)
    for name in ('SeaweedFS_volumeServer_request_total{code="200",type="GET"}',
                 'SeaweedFS_volumeServer_request_total{code="201",type="POST"}',
                 'SeaweedFS_volumeServer_request_total{code="404",type="GET"}',
                 'SeaweedFS_volumeServer_request_total{code="400",type="INVALID"}',
                 'SeaweedFS_volumeServer_request_seconds_count{type="GET"}',
                 'SeaweedFS_volumeServer_max_volumes',
                 'SeaweedFS_volumeServer_concurrent_upload_limit'):
        assert name in g and k.get(name) == g[name], (name, k.get(name), g.get(name))
    assert k['SeaweedFS_volumeServer_request_total{code="200",type="GET"}'] == 20
    assert k['SeaweedFS_volumeServer_volumes{collection="",type="volume"}'] >= 1
    assert k['SeaweedFS_volumeServer_request_seconds_bucket{type="GET",le="+Inf"}'] == 21
    # Every family kelp exports is one Go exports, with the same type. Go 4.48
    # fills these two only in some heartbeats; they are its gauges all the same.
    ktypes = dict(re.findall(r"^# TYPE (\S+) (\S+)$", ktext, re.M))
    gtypes = dict(re.findall(r"^# TYPE (\S+) (\S+)$", gtext, re.M))
    gtypes.setdefault("SeaweedFS_volumeServer_read_only_volumes", "gauge")
    gtypes.setdefault("SeaweedFS_volumeServer_total_disk_size", "gauge")
    for family, kind in ktypes.items():
        assert gtypes.get(family) == kind, family
    assert requests.get(f"http://127.0.0.1:{km}/other").status_code == 404


def slow_upload(port, path, total, sent):
    """Starts an upload of `total` bytes, sends `sent` of them and leaves it open."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall((f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
               f"Content-Length: {total}\r\n\r\n").encode() + b"u" * sent)
    return s


def read_response(s):
    s.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split()[1]), body


def test_upload_limit_answers_429_after_the_wait_like_go(cluster, tmp_path):
    cluster.start_master()
    flags = ["-concurrentUploadLimitMB=1", "-inflightUploadDataTimeout=1s"]
    kelp = cluster.start_kelp(tmp_path / "k", workers=2, extra=flags)
    go = cluster.start_go_volume(tmp_path / "g", extra=flags)
    wait_http(kelp.url + "/healthz", timeout=30)
    total = 3 << 20
    for server in (kelp, go):
        first, second = fid_on(cluster.master, server), fid_on(cluster.master, server)
        holder = slow_upload(server.port, "/" + first, total, 1000)
        time.sleep(0.3)
        started = time.time()
        st, h, body = raw(server.port, "PUT", "/" + second, {"Content-Type": "application/octet-stream"}, b"y" * 10)
        waited = time.time() - started
        assert st == 429, (server.url, st, body)
        assert body == b'{"error":"reject because inflight upload data 3145728 \\u003e 1048576, and wait timeout"}', body
        assert 0.8 < waited < 5, waited
        # The held upload completes; then there is room again.
        holder.sendall(b"u" * (total - 1000))
        assert read_response(holder)[0] == 201
        holder.close()
        assert raw(server.port, "PUT", "/" + second, {"Content-Type": "application/octet-stream"}, b"y" * 10)[0] == 201
        # Replica writes are never held back.
        third = fid_on(cluster.master, server)
        holder = slow_upload(server.port, "/" + first, total, 1000)
        time.sleep(0.3)
        assert raw(server.port, "PUT", f"/{third}?type=replicate", {"Content-Type": "application/octet-stream"}, b"z")[0] == 201
        holder.close()


def test_download_limit_answers_429_after_the_wait_like_go(cluster, tmp_path):
    cluster.start_master()
    flags = ["-concurrentDownloadLimitMB=1", "-inflightDownloadDataTimeout=1s"]
    kelp = cluster.start_kelp(tmp_path / "k", workers=2, extra=flags)
    go = cluster.start_go_volume(tmp_path / "g", extra=flags)
    wait_http(kelp.url + "/healthz", timeout=30)
    blob = random.Random(3).randbytes(32 << 20)
    for server in (kelp, go):
        big, small = fid_on(cluster.master, server), fid_on(cluster.master, server)
        for fid, data in ((big, blob), (small, b"small")):
            assert requests.put(f"{server.url}/{fid}", data=data, headers={"Content-Type": "application/octet-stream"}).status_code == 201
        # A reader that does not read keeps the big answer in flight.
        s = socket.create_connection(("127.0.0.1", server.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET /{big} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.5)
        st, h, body = raw(server.port, "GET", "/" + small)
        assert st == 429, (server.url, st, body)
        assert re.fullmatch(rb'\{"error":"request /' + small.encode() + rb' because inflight download data \d+ \\u003e 1048576, and wait timeout"\}', body), body
        s.close()
        deadline = time.time() + 10
        while raw(server.port, "GET", "/" + small)[0] != 200:
            assert time.time() < deadline, "the limit was never released"
            time.sleep(0.2)
