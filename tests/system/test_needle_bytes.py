"""The needles kelp writes are the needles Go writes: the same uploads, in the
shapes SeaweedFS's own clients send them (filer, S3 gateway, `weed upload`,
replication, plain PUTs), go to a Go 4.48 volume server and to kelp under the
same file ids, and the records in the two .dat files must agree byte for byte
except the append time and, without `ts=`, the second of the write.

One difference is allowed: a compressible upload the server gzips itself is
compressed by zlib in kelp and by Go's compress/flate in Go, and the two
encoders emit different (equally valid) deflate streams at the same level, so
there the data must inflate to the same bytes and the sizes stay close."""
import base64
import gzip
import hashlib
import http.client
import json
import random

import pytest

from conftest import Cluster, wait_http
from grpc_stubs import call, vs_pb2, volume_stub
from needle_records import FLAG_COMPRESSED, read_needles

VID = 78
COOKIE = 0x5eed1e55
TS = 1764000000
BOUNDARY = "kelpNeedleBytesBoundary42"


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("needle-bytes")
    c = Cluster(tmp)
    try:
        c.start_master()
        (tmp / "go").mkdir()
        go = c.start_go_volume(tmp / "go")
        kelp = c.start_kelp(tmp / "kelp")
        wait_http(kelp.url + "/healthz", timeout=30)
        for server in (go, kelp):
            code, details, _ = call(volume_stub(server.port).AllocateVolume,
                                    vs_pb2.AllocateVolumeRequest(volume_id=VID, replication="000", version=3))
            assert code == "OK", details
        yield (go, tmp / "go"), (kelp, tmp / "kelp")
    finally:
        c.stop_all()


def raw(url, method, path, headers=None, body=None):
    host, port = url.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, [(k.lower(), v) for k, v in r.getheaders()], data


def part(content, disposition='form-data; filename=""; name=file', **headers):
    """One part; the default disposition is what mime.FormatMediaType writes for an empty name."""
    lines = [f"Content-Disposition: {disposition}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("--" + BOUNDARY + "\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode() + content + b"\r\n"


def multipart(*parts):
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def md5(b):
    return base64.b64encode(hashlib.md5(b).digest()).decode()


def shapes():
    """(name, method, query, headers, body, server_gzips) for each upload shape."""
    rng = random.Random(78)
    binary = rng.randbytes(5000)
    text = ("kelp writes the needles Go writes, byte for byte, in every shape. " * 140).encode()  # ~9 KB
    small_text = b"a short line of text\n"
    large = rng.randbytes(300_001)  # past the datagram: the record crosses in a memfd
    gz = gzip.compress(text, mtime=0)
    idem = {"Idempotency_Key": "http://127.0.0.1:8080/78,1"}
    out = []

    def add(name, body_headers, method="POST", query="", headers=None, server_gzips=False):
        body, h = body_headers
        h = dict(h)
        h.update(headers or {})
        out.append((name, method, query, h, body, server_gzips))

    # The filer: chunks under an empty file name, with their MIME type, gzipped by the filer when compressible.
    add("filer chunk", multipart(part(binary, Content_Type="application/octet-stream", **idem)))
    add("filer chunk with mime", multipart(part(binary, Content_Type="image/png", **idem)))
    add("filer gzipped chunk", multipart(part(gz, Content_Type="text/plain; charset=utf-8", Content_Encoding="gzip",
                                              Content_MD5=md5(text), **idem)))
    add("filer chunk no mime", multipart(part(binary, **idem)))
    # The S3 gateway: empty name, application/octet-stream, whatever the content.
    add("s3 binary", multipart(part(binary, Content_Type="application/octet-stream")))
    add("s3 text", multipart(part(text, Content_Type="application/octet-stream")), server_gzips=True)
    add("s3 empty object", multipart(part(b"", Content_Type="application/octet-stream")))
    # `weed upload`: the file's name and its extension's type; text gzipped by the client.
    add("weed upload binary", multipart(part(binary, 'form-data; filename="photo.jpg"; name="file"', Content_Type="image/jpeg")))
    add("weed upload text", multipart(part(gz, 'form-data; filename="notes.txt"; name="file"',
                                           Content_Type="text/plain; charset=utf-8", Content_Encoding="gzip")))
    add("weed upload windows path", multipart(part(binary, 'form-data; filename="C:\\\\docs\\\\w.bin"; name="file"')))
    add("non-ASCII name, RFC 2231", multipart(part(binary, "form-data; filename*=utf-8''caf%C3%A9.bin; name=file")))
    add("MSIE path, unescaped backslashes", multipart(part(binary, r'form-data; name="file"; filename="C:\docs\msie.bin"')))
    add("attachment disposition in a part", multipart(part(binary, 'attachment; filename="att.bin"')))
    add("name in a later part", multipart(part(b"form field", 'form-data; name="note"'),
                                          part(binary, 'form-data; filename="late.bin"; name="file"')))
    add("empty name, later part named", multipart(part(small_text, Content_Type="text/plain"),
                                                  part(binary, 'form-data; filename="named.bin"; name="file"')))
    # Replication: the sender's bytes kept as they are, never compressed again.
    add("replica of a text", multipart(part(text, 'form-data; filename="r.txt"; name="file"', Content_Type="text/plain")),
        query=f"type=replicate&ts={TS}")
    add("replica of a gzipped text", multipart(part(gz, 'form-data; filename="rz.txt"; name="file"',
                                                    Content_Type="text/plain", Content_Encoding="gzip")),
        query=f"type=replicate&ts={TS}")
    # Plain bodies.
    add("raw PUT", (binary, {"Content-Type": "application/octet-stream"}), method="PUT")
    add("raw PUT with ts", (binary, {"Content-Type": "application/octet-stream"}), method="PUT", query=f"ts={TS}")
    add("raw PUT disposition", (binary, {"Content-Disposition": 'attachment; filename="d.bin"'}), method="PUT")
    add("raw PUT gzip", (gz, {"Content-Encoding": "gzip", "Content-Type": "text/plain"}), method="PUT", query=f"ts={TS}")
    add("raw PUT text", (text, {"Content-Type": "text/plain"}), method="PUT", server_gzips=True)
    add("raw PUT ttl", (binary, {}), method="PUT", query="ttl=3m")
    add("large raw PUT", (large, {"Content-Type": "application/octet-stream"}), method="PUT", query=f"ts={TS}")
    add("large named upload with pairs", multipart(part(large, 'form-data; filename="big.bin"; name="file"')),
        headers={"Seaweed-Color": "blue"}, query=f"ts={TS}&ttl=7d")
    # The filer's chunk manifest of a large file.
    manifest = json.dumps({"name": "big.bin", "mime": "application/octet-stream", "size": 10,
                           "chunks": [{"fid": f"{VID},1", "offset": 0, "size": 10}]}).encode()
    add("chunk manifest", multipart(part(manifest, Content_Type="application/json", **idem)), query=f"cm=true&ts={TS}")
    # Pairs and times.
    add("pairs", multipart(part(binary, 'form-data; filename="p.bin"; name="file"')),
        headers={"Seaweed-Color": "blue", "Seaweed-Multi-Word-Key": "v w", "Seaweed-Zed": ""}, query=f"ts={TS}")
    add("ts", multipart(part(small_text, 'form-data; filename="t.bin"; name="file"')), query=f"ts={TS}")
    add("server gzips text", multipart(part(text, 'form-data; filename="big.txt"; name="file"', Content_Type="text/plain")),
        server_gzips=True)
    add("server gzips by sniffing", multipart(part(text)), query=f"ts={TS}", server_gzips=True)
    return out


def needle_differences(name, query, server_gzips, go_needle, kelp_needle):
    """What differs between the two records of one upload, as readable lines."""
    gn, kn = dict(go_needle), dict(kelp_needle)
    out = []
    for n in (gn, kn):
        n.pop("append_at_ns")
        n.pop("offset")  # where a record lands depends on what came before it
    glm, klm = gn.pop("last_modified"), kn.pop("last_modified")
    if glm is None or klm is None:
        same_time = glm == klm  # an empty needle has no fields after its size
    elif "ts=" in query:
        same_time = glm == klm == TS
    else:
        same_time = abs(glm - klm) <= 2
    if not same_time:
        out.append(f"{name}: last modified {glm} (go) against {klm} (kelp)")
    if server_gzips:
        gd, kd = gn.pop("data"), kn.pop("data")
        if not (gn["flags"] & FLAG_COMPRESSED and kn["flags"] & FLAG_COMPRESSED):
            out.append(f"{name}: not stored gzipped by both")
        elif gzip.decompress(gd) != gzip.decompress(kd):
            out.append(f"{name}: the gzipped data inflate differently")
        # Same level (BestSpeed), different encoders: sizes close, bytes not
        # (Go's finds longer matches in very repetitive text: 125 against zlib's 164 here).
        if abs(len(gd) - len(kd)) > 16 + len(gd) * 0.4:
            out.append(f"{name}: gzipped to {len(gd)} bytes by go, {len(kd)} by kelp")
        if gd[:10] != kd[:10]:
            out.append(f"{name}: gzip headers {gd[:10].hex()} (go) against {kd[:10].hex()} (kelp)")
        for field in ("size", "crc", "padding"):
            gn.pop(field), kn.pop(field)
    if gn != kn:
        fields = sorted(k for k in set(gn) | set(kn) if gn.get(k) != kn.get(k))
        out.append(f"{name}: " + "; ".join(f"{k} {gn.get(k)!r} (go) against {kn.get(k)!r} (kelp)"[:300] for k in fields))
    return out


def test_needles_stored_like_go(twins):
    (go, go_dir), (kelp, kelp_dir) = twins
    fids = {}
    differences = []
    for i, (name, method, query, headers, body, server_gzips) in enumerate(shapes()):
        key = 0x100 + i
        fid = f"{VID},{key:x}{COOKIE:08x}"
        path = f"/{fid}" + (f"?{query}" if query else "")
        g, k = raw(go.url, method, path, headers, body), raw(kelp.url, method, path, headers, body)
        assert g[0] == k[0] == 201, (name, g, k)
        gj, kj = json.loads(g[2]), json.loads(k[2])
        if server_gzips:
            gj.pop("eTag"), kj.pop("eTag")
        if gj != kj:
            differences.append(f"{name}: answers differ\n go:   {g[2]!r}\n kelp: {k[2]!r}")
        fids[key] = (name, query, server_gzips)

    # Writes reach the .dat before they are acknowledged; /status is a last round trip.
    raw(go.url, "GET", "/status"), raw(kelp.url, "GET", "/status")
    go_needles, kelp_needles = read_needles(go_dir / f"{VID}.dat"), read_needles(kelp_dir / f"{VID}.dat")
    for key, (name, query, server_gzips) in fids.items():
        differences += needle_differences(name, query, server_gzips, go_needles[key], kelp_needles[key])
    assert not differences, "\n".join(differences)
