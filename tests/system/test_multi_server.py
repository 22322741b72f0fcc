"""Several volume servers behind one Go master: reads of a volume a server does
not hold are proxied or redirected (-readMode) as the Go server does them."""
import http.client
import random

import requests

from conftest import assign, http_raw, wait_http


raw = http_raw


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
                              # Request data in the Location stays escaped.
                              (f"/{fid}?collection=%0d%0aSet-Cookie:%20x=y", {}),
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
    # A proxied answer: Go adds its own request id to the holder's, kelp keeps the holder's only.
    fid = next(iter(blobs))
    ids = {}
    for name, server in (("go", go_proxy), ("kelp", kelp_proxy)):
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        c.request("GET", f"/{fid}")
        r = c.getresponse()
        r.read()
        ids[name] = [v for k, v in r.getheaders() if k.lower() == "x-amz-request-id"]
        c.close()
    assert len(ids["go"]) == 2 and len(ids["kelp"]) == 1, ids
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


def lookup(master, vid):
    r = requests.get(f"{master}/dir/lookup", params={"volumeId": vid}, timeout=10)
    return sorted(l["url"] for l in r.json().get("locations", []))


def assign_replicated(master, replication, collection, timeout=30):
    import time
    deadline = time.time() + timeout
    while True:
        r = requests.get(f"{master}/dir/assign", params={"replication": replication, "collection": collection}, timeout=10)
        j = r.json()
        if "fid" in j:
            return j["fid"], j["url"]
        assert time.time() < deadline, j
        time.sleep(0.3)


def check_replicated_writes(cluster, servers, replication, collection):
    """Writes to every holder of a replicated volume land on all holders; deletes too."""
    by_url = {f"127.0.0.1:{s.port}": s for s in servers}
    rng = random.Random(replication)
    written = 0
    for i in range(6):
        fid, url = assign_replicated(cluster.master, replication, collection)
        vid = fid.split(",")[0]
        holders = lookup(cluster.master, vid)
        assert len(holders) == 2, holders
        # Alternate which holder takes the client's write.
        first = holders[i % 2]
        content = rng.randbytes(rng.choice((1, 900, 70000, 1_500_000))) if i % 3 else b"replicated text " * 500
        name = f"r{i}.txt" if i % 3 == 0 else f"r{i}.bin"
        r = requests.post(f"http://{first}/{fid}?ts=1764000000", files={"file": (name, content)},
                          headers={"Seaweed-Origin": "test"}, timeout=30)
        assert r.status_code == 201, r.text
        for h in holders:
            g = requests.get(f"http://{h}/{fid}", params={"readDeleted": "false"}, timeout=30)
            assert g.status_code == 200 and g.content == content, (h, g.status_code)
            assert g.headers.get("Origin") == "test"  # pairs come back without the prefix
            assert g.headers["Last-Modified"] == "Mon, 24 Nov 2025 16:00:00 GMT"
            assert g.headers["Content-Disposition"] == f"inline; filename={name}"
        written += 1
        if i % 2:
            d = requests.delete(f"http://{holders[1 - i % 2]}/{fid}", timeout=30)
            assert d.status_code == 202, d.text
            for h in holders:
                assert requests.get(f"http://{h}/{fid}", timeout=30).status_code == 404, h
    assert written == 6
    return by_url


def test_replicated_writes_between_kelp_servers(cluster, tmp_path):
    cluster.start_master()
    a = cluster.start_kelp(tmp_path / "a", extra=["-rack=r1"])
    b = cluster.start_kelp(tmp_path / "b", extra=["-rack=r2"])
    for s in (a, b):
        wait_http(s.url + "/healthz", timeout=30)
    check_replicated_writes(cluster, [a, b], "010", "rack")
    # A replica that is gone makes the write fail, as in Go.
    fid, _ = assign_replicated(cluster.master, "010", "rack")
    holders = lookup(cluster.master, fid.split(",")[0])
    b.stop()
    target = [h for h in holders if h != f"127.0.0.1:{b.port}"][0]
    r = requests.post(f"http://{target}/{fid}", files={"file": ("x.bin", b"abc")}, timeout=90)
    assert r.status_code == 500, r.text
    assert "replica" in r.json()["error"]


def test_replicated_writes_between_kelp_and_go(cluster, tmp_path):
    cluster.start_master()
    k = cluster.start_kelp(tmp_path / "k")
    g = cluster.start_go_volume(tmp_path / "g")
    wait_http(k.url + "/healthz", timeout=30)
    check_replicated_writes(cluster, [k, g], "001", "mixed")
    # A request that is itself a replica is not forwarded again.
    fid, _ = assign_replicated(cluster.master, "001", "mixed")
    r = requests.post(f"{k.url}/{fid}?type=replicate", files={"file": ("only-here.bin", b"local")}, timeout=30)
    assert r.status_code == 201
    assert requests.get(f"{k.url}/{fid}").content == b"local"
    assert requests.get(f"{g.url}/{fid}").status_code == 404
