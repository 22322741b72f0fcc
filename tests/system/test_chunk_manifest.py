"""Chunk manifests (`cm=true`): a read assembles the chunks from the servers that
hold them, ranges cut across chunk borders, `cm=false` serves the manifest, a
delete removes the chunks first. The same manifest is stored on the Go volume
server and on kelp, and every answer is compared."""
import json
import random
import re

import pytest
import requests

from conftest import http_raw, fid_on, wait_http

TS = 1700000000


raw = http_raw


COMPARED = ("content-type", "content-length", "content-range", "etag", "last-modified", "content-disposition",
            "accept-ranges", "x-file-store", "cache-control", "content-language", "expires")


def compared(headers):
    out = {k: v for k, v in headers.items() if k in COMPARED}
    if out.get("content-type", "").startswith("multipart/byteranges"):
        out["content-type"] = "multipart/byteranges"
    return out


def unboundaried(body):
    return re.sub(rb"[0-9a-f]{60}", b"B", body)


def upload(server, fid, name, data, query=""):
    # A raw octet-stream body: neither server compresses it (their gzip bytes differ).
    r = requests.put(f"{server.url}/{fid}?ts={TS}{query}", data=data, timeout=60,
                     headers={"Content-Type": "application/octet-stream",
                              "Content-Disposition": f'attachment; filename="{name}"'})
    assert r.status_code == 201, r.text
    return r


@pytest.fixture
def pair(cluster, tmp_path):
    cluster.start_master()
    kelp = cluster.start_kelp(tmp_path / "kelp")
    go = cluster.start_go_volume(tmp_path / "go")
    wait_http(kelp.url + "/healthz", timeout=30)
    return cluster, kelp, go


def make_chunks(cluster, servers, sizes, rng):
    """Chunks spread over the servers in turn; returns the manifest chunk list and the whole."""
    chunks, whole = [], b""
    for i, size in enumerate(sizes):
        server = servers[i % len(servers)]
        data = rng.randbytes(size)
        fid = fid_on(cluster.master, server)
        upload(server, fid, f"c{i}.bin", data)
        chunks.append({"fid": fid, "offset": len(whole), "size": size})
        whole += data
    return chunks, whole


def put_manifest(cluster, server, manifest):
    fid = fid_on(cluster.master, server)
    upload(server, fid, "m.bin", json.dumps(manifest).encode(), "&cm=true")
    return fid


def test_reads_of_a_manifest_match_go(pair):
    cluster, kelp, go = pair
    rng = random.Random(11)
    chunks, whole = make_chunks(cluster, [kelp, go], [1000, 3 << 20, 7, 200000, 1], rng)
    # Out of order on purpose: readers sort by offset.
    manifest = {"name": "whole.txt", "mime": "text/plain", "size": len(whole), "chunks": chunks[::-1]}
    fk = put_manifest(cluster, kelp, manifest)
    fg = put_manifest(cluster, go, manifest)
    n = len(whole)
    cases = [
        ("GET", "", {}),
        ("HEAD", "", {}),
        ("GET", "?cm=false", {}),
        ("GET", "?cm=true", {}),
        ("GET", "?dl=true", {}),
        ("GET", "?response-content-type=x/y&response-cache-control=no-cache&response-expires=0", {}),
        ("GET", "", {"Range": "bytes=0-99"}),
        ("GET", "", {"Range": "bytes=990-1010"}),                 # across the first border
        ("GET", "", {"Range": f"bytes=1000-{1000 + (3 << 20) + 3}"}),  # a whole chunk and a bit
        ("GET", "", {"Range": "bytes=-5"}),
        ("GET", "", {"Range": f"bytes={n - 1}-"}),
        ("GET", "", {"Range": f"bytes={n}-"}),
        ("GET", "", {"Range": "bytes=5-1"}),
        ("GET", "", {"Range": "bytes=0-1,999-1001,-2"}),
        ("GET", "", {"If-None-Match": "whatever"}),
    ]
    for method, query, headers in cases:
        k = raw(kelp.url, method, f"/{fk}{query}", headers)
        g = raw(go.url, method, f"/{fg}{query}", headers)
        assert k[0] == g[0], (method, query, headers, k[0], g[0], k[2][:200])
        assert compared(k[1]) == compared(g[1]), (method, query, headers, k[1], g[1])
        assert unboundaried(k[2]) == unboundaried(g[2]), (method, query, headers)
    # The whole body and the ranges are the chunks' bytes, in offset order.
    assert raw(kelp.url, "GET", f"/{fk}")[2] == whole
    assert raw(kelp.url, "GET", f"/{fk}", {"Range": "bytes=990-1010"})[2] == whole[990:1011]
    # Through a file name in the path the name (and its type) win over the manifest's.
    vid, key = fk.split(",")
    k = raw(kelp.url, "GET", f"/{vid}/{key}/other.html")
    assert k[0] == 200 and k[1]["content-type"] == "text/plain" and "other.html" in k[1]["content-disposition"]


def test_broken_manifests_fail_like_go(pair):
    cluster, kelp, go = pair
    rng = random.Random(12)
    chunks, _ = make_chunks(cluster, [go], [10], rng)
    gone = {"chunks": chunks}
    requests.delete(f"{go.url}/{chunks[0]['fid']}")
    cases = [
        ("missing chunk", json.dumps(gone).encode()),
        ("bad fid", json.dumps({"chunks": [{"fid": "zz", "offset": 0, "size": 3}]}).encode()),
        ("not json", b"not json"),
        ("empty", json.dumps({"chunks": []}).encode()),
    ]
    for label, body in cases:
        fk, fg = fid_on(cluster.master, kelp), fid_on(cluster.master, go)
        upload(kelp, fk, "m.bin", body, "&cm=true")
        upload(go, fg, "m.bin", body, "&cm=true")
        k = raw(kelp.url, "GET", f"/{fk}")
        g = raw(go.url, "GET", f"/{fg}")
        assert k[0] == g[0], (label, k, g)
        assert compared(k[1]) == compared(g[1]), (label, k[1], g[1])
        assert k[2] == g[2], (label, k[2], g[2])
        kd = requests.delete(f"{kelp.url}/{fk}")
        gd = requests.delete(f"{go.url}/{fg}")
        assert kd.status_code == gd.status_code, (label, kd.text, gd.text)
        if label == "not json":
            # The parser's words differ; the frame is Go's.
            assert kd.json()["error"].startswith("Load chunks manifest error: ")
        else:
            assert kd.json() == gd.json(), (label, kd.text, gd.text)
        # A manifest whose chunks cannot be deleted stays, to be retried.
        if kd.status_code == 500:
            assert raw(kelp.url, "GET", f"/{fk}?cm=false")[0] == 200


@pytest.mark.parametrize("holder_name", ["kelp", "go"])
def test_deleting_a_manifest_deletes_its_chunks(pair, holder_name):
    cluster, kelp, go = pair
    holder = kelp if holder_name == "kelp" else go
    rng = random.Random(13)
    chunks, whole = make_chunks(cluster, [kelp, go, kelp], [5, 6, 7], rng)
    fid = put_manifest(cluster, holder, {"size": 999, "chunks": chunks})
    r = requests.delete(f"{holder.url}/{fid}")
    assert r.status_code == 202 and r.json() == {"size": 999}
    for c in chunks:
        for server in (kelp, go):
            assert raw(server.url, "GET", "/" + c["fid"])[0] == 404
    assert raw(holder.url, "GET", "/" + fid)[0] == 404


def test_a_large_manifest_read_streams_with_bounded_memory(cluster, tmp_path):
    """40 MB assembled from 4 MB chunks on the Go server: the worker's resident
    memory does not grow by the size of the file (ASan's quarantine of freed
    memory is made small, or it alone would grow by more)."""
    cluster.start_master()
    kelp = cluster.start_kelp(tmp_path / "kelp", asan_options="quarantine_size_mb=4")
    go = cluster.start_go_volume(tmp_path / "go")
    wait_http(kelp.url + "/healthz", timeout=30)
    rng = random.Random(14)
    chunks, whole = make_chunks(cluster, [go], [4 << 20] * 10, rng)
    fid = put_manifest(cluster, kelp, {"chunks": chunks})
    from conftest import worker_pids

    def rss_kb(pid):
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    before = {pid: rss_kb(pid) for pid in worker_pids(kelp.pid)}
    got = b""
    with requests.get(f"{kelp.url}/{fid}", stream=True) as resp:
        assert resp.status_code == 200 and int(resp.headers["content-length"]) == len(whole)
        for piece in resp.iter_content(1 << 16):
            got += piece
    assert got == whole
    grown = max(rss_kb(pid) - before[pid] for pid in before)
    assert grown < 24 * 1024, f"a worker's peak RSS grew by {grown} kB"
