"""Several volume servers behind one Go master: reads of a volume a server does
not hold are proxied or redirected (-readMode) as the Go server does them."""
import http.client
import random

import requests

from conftest import assign, wait_http


def raw(url, method, path, headers=None):
    host, port = url.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


STABLE = ("content-type", "content-length", "content-range", "etag", "last-modified", "content-disposition",
          "accept-ranges", "location", "content-encoding")


def stable(headers):
    return {k: v for k, v in headers.items() if k in STABLE}


def test_reads_elsewhere_are_proxied_or_redirected_like_go(cluster, tmp_path):
    cluster.start_master()
    holder = cluster.start_kelp(tmp_path / "holder")
    wait_http(holder.url + "/healthz", timeout=30)
    rng = random.Random(5)
    blobs = {}
    for i, size in enumerate((0, 10, 5000, 3 << 20)):
        fid, url = assign(cluster.master)
        assert url.endswith(f":{holder.port}")
        content = rng.randbytes(size)
        name = f"f{i}.bin"
        r = requests.post(f"{holder.url}/{fid}", files={"file": (name, content)}, timeout=30)
        assert r.status_code == 201, r.text
        blobs[fid] = (name, content)
    text_fid, _ = assign(cluster.master)
    text = b"gzip me " * 1000
    assert requests.post(f"{holder.url}/{text_fid}", files={"file": ("t.txt", text, "text/plain")}).status_code == 201

    kelp_proxy = cluster.start_kelp(tmp_path / "kp", read_mode="proxy")
    kelp_redirect = cluster.start_kelp(tmp_path / "kr", read_mode="redirect")
    kelp_local = cluster.start_kelp(tmp_path / "kl", read_mode="local")
    go_proxy = cluster.start_go_volume(tmp_path / "gp", read_mode="proxy")
    go_redirect = cluster.start_go_volume(tmp_path / "gr", read_mode="redirect")

    for fid, (name, content) in blobs.items():
        vid, key = fid.split(",")
        for path, headers in ((f"/{fid}", {}), (f"/{vid}/{key}/{name}?dl=true&x=a%20b", {}),
                              (f"/{fid}", {"Range": "bytes=1-3"}), (f"/{fid}", {"Range": "bytes=0-0,2-2"})):
            direct = raw(holder.url, "GET", path, headers)
            g = raw(go_proxy.url, "GET", path, headers)
            k = raw(kelp_proxy.url, "GET", path, headers)
            assert k[0] == g[0] == direct[0], (path, headers, k[0], g[0], direct[0])
            multipart = "multipart" in direct[1].get("content-type", "")
            if multipart:
                assert k[2].count(b"Content-Range") == 2
            else:
                assert k[2] == g[2] == direct[2], (path, headers, direct[1], k[1], g[1])
                assert stable(k[1]) == stable(g[1]), (path, headers)
            gr = raw(go_redirect.url, "GET", path, headers)
            kr = raw(kelp_redirect.url, "GET", path, headers)
            assert kr[0] == gr[0] == 301
            assert stable(kr[1]) == stable(gr[1]) and kr[2] == gr[2], (kr, gr)
            assert kr[1]["location"].startswith(f"http://127.0.0.1:{holder.port}/")
            # Following the redirect gets the blob.
            followed = requests.get(kr[1]["location"], headers=headers)
            assert followed.status_code == direct[0] and (multipart or followed.content == direct[2])
            h = raw(kelp_proxy.url, "HEAD", path)
            assert h[0] == 200 and h[1]["content-length"] == str(len(content)) and h[2] == b""
        assert raw(kelp_local.url, "GET", f"/{fid}")[0] == 404
    # Compressed needles keep their encoding through the proxy.
    for accept in ("gzip", "identity"):
        g = raw(go_proxy.url, "GET", f"/{text_fid}", {"Accept-Encoding": accept})
        k = raw(kelp_proxy.url, "GET", f"/{text_fid}", {"Accept-Encoding": accept})
        assert k[0] == g[0] == 200 and k[2] == g[2] and stable(k[1]) == stable(g[1]), accept
    # Unknown volumes and missing needles.
    for path in ("/9999,0123456789", f"/{next(iter(blobs)).split(',')[0]},ffff0123456789"):
        g = raw(go_proxy.url, "GET", path)
        k = raw(kelp_proxy.url, "GET", path)
        assert k[0] == g[0], (path, k[0], g[0])
        g = raw(go_redirect.url, "GET", path)
        k = raw(kelp_redirect.url, "GET", path)
        assert k[0] == g[0], (path, k[0], g[0])
