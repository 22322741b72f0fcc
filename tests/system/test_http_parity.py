"""HTTP answers compared with the Go volume server: the same requests go to a Go
4.48 server and to kelp, each holding a volume with the same id, and the status,
headers and bodies must agree (modulo the per-request Date, X-Amz-Request-Id,
multipart boundary and the Server version)."""
import base64
import gzip
import hashlib
import http.client
import random
import re

import pytest

from conftest import Cluster, wait_http
from grpc_stubs import call, vs_pb2, volume_stub

VID = 77
VOLATILE = {"date", "x-amz-request-id", "server"}


def raw(url, method, path, headers=None, body=None):
    host, port = url.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, [(k.lower(), v) for k, v in r.getheaders()], data


def normalized(answer, etag=True):
    """`etag=False` for gzipped needles: zlib and Go's flate compress differently,
    so the stored bytes and their CRC (the ETag) differ."""
    status, headers, body = answer
    if not etag:
        headers = [(k, "E" if k == "etag" else v) for k, v in headers]
        body = re.sub(rb'"eTag":"[0-9a-f]+"', b'"eTag":"E"', body)
    boundary = None
    out = []
    for k, v in headers:
        if k in VOLATILE:
            continue
        m = re.match(r"multipart/byteranges; boundary=([0-9a-f]{60})$", v)
        if k == "content-type" and m:
            boundary = m.group(1)
            v = "multipart/byteranges; boundary=B"
        out.append((k, v))
    if boundary:
        body = body.replace(boundary.encode(), b"B")
    return status, out, body


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("twins")
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
        yield go, kelp
    finally:
        c.stop_all()


class Twins:
    """Sends every request to both servers and compares the answers."""

    def __init__(self, go, kelp):
        self.go, self.kelp = go, kelp
        self.key = random.Random(4).randint(1 << 20, 1 << 30)

    def fid(self):
        self.key += 1
        return f"{VID},{self.key:x}1a2b3c4d"

    def both(self, method, path, headers=None, body=None):
        return raw(self.go.url, method, path, headers, body), raw(self.kelp.url, method, path, headers, body)

    def same(self, method, path, headers=None, body=None, what="", etag=True):
        g, k = self.both(method, path, headers, body)
        ng, nk = normalized(g, etag), normalized(k, etag)
        assert ng == nk, f"{what or method + ' ' + path} {headers}\n go:   {ng[0]} {ng[1]} {ng[2][:200]!r}\n kelp: {nk[0]} {nk[1]} {nk[2][:200]!r}"
        return g, k


def multipart(name, content, ctype="application/octet-stream", extra_headers=""):
    b = "kelpboundary0123456789"
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: {ctype}\r\n{extra_headers}\r\n").encode() + content + f"\r\n--{b}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={b}"}


def upload_same(t, path, name, content, ctype="application/octet-stream", headers=None, what="", etag=True):
    body, h = multipart(name, content, ctype)
    h.update(headers or {})
    return t.same("POST", path + "?ts=1764000000", h, body, what=what, etag=etag)


def test_range_requests_answer_as_go(twins):
    t = Twins(*twins)
    rng = random.Random(11)
    small, big = t.fid(), t.fid()
    upload_same(t, "/" + small, "x.bin", bytes(range(256)) * 4)
    # Past kelp's whole-read limit: streamed from the volume file.
    upload_same(t, "/" + big, "big.bin", rng.randbytes(3 << 20))
    headers = ["bytes=0-3", "bytes=0-3,9999-10000", "bytes=9999-10000,0-3", "bytes=1024-", "bytes=1023-", "bytes=-0",
               "bytes=-2000", "bytes=5-2", "bytes=0-3, 5-6", "bytes=,0-1", "bytes=0-1,", "bytes=abc", "bytes=0-1,x",
               "items=0-1", "bytes=0-", "bytes=0-0,-1", "bytes=-0,0-1", "bytes= 1 - 2 ", "bytes=1024-1025,0-1",
               "bytes=0-1,1024-1025,2-3", "bytes=99999999999999999999-", "bytes=-99999999999999999999",
               "bytes=+1-2", "bytes=--1,0-1", "bytes=" + ",".join(f"{i}-{i}" for i in range(0, 300, 2)),
               "bytes=100-1048675,2097152-2097251", "bytes=3145000-,0-99", "bytes=-5,5-9"]
    for fid in (small, big):
        for h in headers:
            t.same("GET", "/" + fid, {"Range": h}, what=f"{fid} Range {h}")
        # HEAD ignores ranges.
        t.same("HEAD", "/" + fid, {"Range": "bytes=0-1,4-5"})


def test_conditional_reads_answer_304_with_last_modified(twins):
    t = Twins(*twins)
    fid = t.fid()
    g, _ = upload_same(t, "/" + fid, "c.bin", b"conditional")
    etag = dict(g[1])["etag"]
    for h, want in (({"If-Modified-Since": "Wed, 25 Nov 2099 04:16:41 GMT"}, 304), ({"If-None-Match": etag}, 304),
                    ({"If-Modified-Since": "Wed, 25 Nov 2000 04:16:41 GMT"}, 200), ({"If-None-Match": '"other"'}, 200)):
        g, k = t.same("GET", "/" + fid, h)
        assert g[0] == k[0] == want, (h, g[0], k[0])
        if want == 304:
            assert dict(k[1]).get("last-modified"), h
            assert k[2] == b"", h


def test_compressible_uploads_are_stored_gzipped(twins):
    t = Twins(*twins)
    text = ("kelp stores compressible uploads gzipped, as Go does. " * 100).encode()
    for name, ctype, compressed in (("a.txt", "text/plain", True), ("a.json", "application/json", False),
                                    ("feed.xml", "application/xml", True), ("p.png", "image/png", False)):
        fid = t.fid()
        body, h = multipart(name, text, ctype)
        g, k = t.both("POST", f"/{fid}", h, body)
        assert g[0] == k[0] == 201
        # The stored (compressed) bytes differ between zlib and Go's flate, so do their CRCs: compare the rest.
        gj, kj = (re.sub(rb'"eTag":"[0-9a-f]+"', b"", x[2]) for x in (g, k))
        assert gj == kj, (gj, kj)
        for accept in ("gzip", "identity"):
            g, k = t.both("GET", f"/{fid}", {"Accept-Encoding": accept})
            gh, kh = dict(g[1]), dict(k[1])
            assert gh.get("content-encoding") == kh.get("content-encoding") == ("gzip" if compressed and accept == "gzip" else None), name
            if gh.get("content-encoding"):
                assert gzip.decompress(g[2]) == gzip.decompress(k[2]) == text
            else:
                assert g[2] == k[2] == text
                assert gh["content-length"] == kh["content-length"]


def test_content_md5_is_verified(twins):
    t = Twins(*twins)
    content = b"checked content"
    good = base64.b64encode(hashlib.md5(content).digest()).decode()
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    for md5 in (good, wrong, "not-base64"):
        upload_same(t, "/" + t.fid(), "m.bin", content, headers={"Content-MD5": md5}, what=f"Content-MD5 {md5}")
    # Verified against the text as sent even when the server compresses it.
    text = b"compressible " * 300
    upload_same(t, "/" + t.fid(), "m.txt", text, "application/octet-stream",
                headers={"Content-MD5": base64.b64encode(hashlib.md5(text).digest()).decode()}, etag=False)
    upload_same(t, "/" + t.fid(), "m.txt", text, "application/octet-stream", headers={"Content-MD5": wrong})
    # A refused upload stores nothing.
    fid = t.fid()
    upload_same(t, "/" + fid, "m.bin", content, headers={"Content-MD5": wrong})
    t.same("GET", "/" + fid)


def test_gzip_uploads_report_the_inflated_size(twins):
    t = Twins(*twins)
    plain = bytes(range(256)) * 64
    fid = t.fid()
    g, k = t.both("PUT", f"/{fid}?ts=1764000000", {"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"},
                  gzip.compress(plain))
    assert g[0] == k[0] == 201
    assert re.sub(rb'"eTag":"[0-9a-f]+"', b"", g[2]) == re.sub(rb'"eTag":"[0-9a-f]+"', b"", k[2])
    g, k = t.both("GET", f"/{fid}", {"Accept-Encoding": "identity"})
    assert g[2] == k[2] == plain


def test_request_ids_and_admin_paths(twins):
    t = Twins(*twins)
    ids = set()
    for path in ("/status", "/healthz", "/readyz", "/" + t.fid(), "/stats/counter"):
        g, k = t.both("GET", path, {"X-Amz-Request-Id": "client-chosen"})
        for answer in (g, k):
            rid = dict(answer[1]).get("x-amz-request-id", "")
            assert re.fullmatch(r"[0-9A-F]{24}", rid), (path, rid)
            ids.add(rid)
    assert len(ids) == 10
    for path in ("/readyz", "/healthz", "/stats/counter", "/stats/memory", "/stats/disk"):
        t.same("GET", path)
    t.same("PATCH", "/" + t.fid())
    t.same("OPTIONS", "/" + t.fid(), {"Origin": "http://example.com"})


def test_deliberate_range_differences(twins):
    """The three places docs/compatibility.md says kelp answers ranges unlike Go."""
    t = Twins(*twins)
    fid = t.fid()
    content = bytes(range(256)) * 4
    upload_same(t, "/" + fid, "x.bin", content)
    # Ranges adding up to more than the blob: Go sends an empty 200, kelp the blob.
    g, k = t.both("GET", "/" + fid, {"Range": "bytes=0-600,100-700"})
    assert (g[0], g[2]) == (200, b"")
    assert (k[0], k[2]) == (200, content)
    # A negative suffix: both 206 with the same Content-Range and no bytes; Go chunks, kelp says 0.
    g, k = t.both("GET", "/" + fid, {"Range": "bytes=--1"})
    gh, kh = dict(g[1]), dict(k[1])
    assert g[0] == k[0] == 206 and g[2] == k[2] == b""
    assert gh["content-range"] == kh["content-range"] == "bytes 1025-1023/1024"
    assert gh.get("transfer-encoding") == "chunked" and kh["content-length"] == "0"
    # A suffix that wraps below zero: kelp refuses it (Go slices out of bounds).
    k = raw(t.kelp.url, "GET", "/" + fid, {"Range": "bytes=-9223372036854775808"})
    assert k[0] == 416 and k[2] == b"invalid range\n"


def test_writes_parse_their_form_as_go_does(twins):
    """Go's write handler starts with Request.ParseForm: a Content-Type or query
    that does not parse is a 400 with Go's text, and a form-urlencoded body is
    read as a form (its values before the query's), so the needle stores nothing."""
    t = Twins(*twins)
    form = "application/x-www-form-urlencoded"
    cases = [  # (method, query, content type, body, extra headers)
        ("PUT", "", form, b"a=b&c=d", {}), ("POST", "", form, b"a=b", {}),
        ("PUT", "", form + "; charset=utf-8", b"a=b", {}), ("PUT", "", "Application/X-WWW-Form-Urlencoded", b"a=b", {}),
        ("PUT", "?ts=1764000000", form, b"ts=1700000000", {}), ("PUT", "", form, b"a+b=c%20d", {}),
        ("PUT", "", form, b"%zz=1", {}), ("PUT", "", form, b"a;b", {}), ("PUT", "?%yy", form, b"%zz", {}),
        ("PUT", "", form, b"&".join([b"a"] * 10001), {}), ("PUT", "", form, b"&".join([b"a"] * 10000), {}),
        ("PUT", "", form, b"a=b", {"Content-MD5": base64.b64encode(hashlib.md5(b"a=b").digest()).decode()}),
        ("PUT", "?a=%zz", "text/plain", b"abc", {}), ("PUT", "?%zz", "text/plain", b"abc", {}),
        ("PUT", "?ts=1&x=%2", "text/plain", b"abc", {}), ("PUT", "?a=b;c=d", "text/plain", b"abc", {}),
        ("PUT", "?" + "&".join(["a"] * 10001), "text/plain", b"abc", {}),
        ("POST", "?a=%zz", "multipart/form-data; boundary=x", b"--x--", {}),
        ("PUT", "", "text/plain; =x", b"abc", {}), ("PUT", "", ";", b"abc", {}), ("PUT", "", "/", b"abc", {}),
        ("PUT", "", "text/plain;;", b"abc", {}), ("PUT", "", "text/plain; a=1; a=2", b"abc", {}),
        ("PUT", "", "a/b/c", b"abc", {}), ("PUT", "", "text", b"abc", {}),
    ]
    for method, query, ctype, body, extra in cases:
        fid = t.fid()
        path = f"/{fid}{query or '?ts=1764000000'}"
        g, k = t.same(method, path, {"Content-Type": ctype, **extra}, body, what=f"{method} {query[:40]} {ctype} {body[:40]!r}")
        t.same("GET", f"/{fid}", what=f"read back {ctype} {body[:40]!r}")


def test_malformed_file_ids_answer_go_s_texts(twins):
    """Go wraps strconv's error in "needle id/cookie <s> format error" and quotes with %q."""
    t = Twins(*twins)
    for key in ("zz637037d6", "0163703zd6", "0163%22037d6x", "01%0a637037d6", "0163703zd6_5", "01637037d6_x",
                "01637037d6_99999999999999999999", "012345", "f" * 17 + "637037d6"):
        for method in ("DELETE", "POST"):
            g, k = t.same(method, f"/{VID},{key}", {"Content-Type": "text/plain"}, b"x" if method == "POST" else None,
                          what=f"{method} {key}")
            assert g[0] == 400, (method, key, g)
