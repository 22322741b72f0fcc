"""Image transforms on read (width/height/mode, crop_*) and the EXIF orientation
fix on upload (-images.fix.orientation), compared with the Go volume server.
The two use different resamplers and encoders, so the images are compared by
format and size, and the untouched cases byte for byte."""
import io
import random

import pytest
import requests
from PIL import Image

from conftest import fid_on, wait_http


def make(fmt, size, mode="RGB", exif_orientation=None):
    img = Image.new(mode, size)
    rng = random.Random(size[0] * 7 + size[1])
    px = img.load()
    for x in range(size[0]):
        for y in range(size[1]):
            v = (x * 255 // size[0], y * 255 // size[1], rng.randrange(256))
            px[x, y] = v + ((200,) if mode == "RGBA" else ()) if mode != "P" else v[0]
    buf = io.BytesIO()
    kwargs = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def shape(data):
    with Image.open(io.BytesIO(data)) as im:
        return im.format, im.size


@pytest.fixture
def pair(cluster, tmp_path):
    cluster.start_master()
    kelp = cluster.start_kelp(tmp_path / "k", extra=["-images.fix.orientation"])
    go = cluster.start_go_volume(tmp_path / "g", extra=["-images.fix.orientation"])
    wait_http(kelp.url + "/healthz", timeout=30)
    return cluster, kelp, go


def put_both(cluster, kelp, go, name, data):
    out = {}
    for server in (kelp, go):
        fid = fid_on(cluster.master, server)
        r = requests.post(f"{server.url}/{fid}", files={"file": (name, data)})
        assert r.status_code == 201, r.text
        out[server.port] = fid
    return out


CASES = [
    "width=100", "height=100", "width=100&height=100", "width=200&height=100", "mode=fit&width=100&height=100",
    "mode=fill&width=100&height=100", "width=1000", "width=-5", "width=abc",
    "crop_x1=10&crop_y1=10&crop_x2=110&crop_y2=60", "crop_x1=0&crop_y1=0&crop_x2=500&crop_y2=10",
    "crop_x1=10&crop_y1=10&crop_x2=210&crop_y2=160&width=50",
]


@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp")])
def test_transforms_match_go(pair, fmt, ext):
    cluster, kelp, go = pair
    data = make(fmt, (400, 300))
    fids = put_both(cluster, kelp, go, f"pic.{ext}", data)
    for query in CASES:
        k = requests.get(f"{kelp.url}/{fids[kelp.port]}?{query}")
        g = requests.get(f"{go.url}/{fids[go.port]}?{query}")
        assert k.status_code == g.status_code == 200, query
        assert k.headers["Content-Type"] == g.headers["Content-Type"], query
        assert k.headers["Etag"] == g.headers["Etag"], query
        if g.content == data:
            assert k.content == data, (query, "Go served the original")
        else:
            assert shape(k.content) == shape(g.content), (query, shape(k.content), shape(g.content))
            assert k.headers["Content-Length"] == str(len(k.content))
    # A range applies to the transformed image.
    k = requests.get(f"{kelp.url}/{fids[kelp.port]}?width=100", headers={"Range": "bytes=0-9"})
    assert k.status_code == 206 and len(k.content) == 10
    # HEAD is not transformed (Go answers from the needle's metadata).
    h = requests.head(f"{kelp.url}/{fids[kelp.port]}?width=100")
    assert h.headers["Content-Length"] == str(len(data))


def test_png_alpha_and_names_in_the_path(pair):
    cluster, kelp, go = pair
    data = make("PNG", (64, 64), "RGBA")
    fids = put_both(cluster, kelp, go, "a.bin", data)  # no image extension stored
    for server in (kelp, go):
        vid, key = fids[server.port].split(",")
        # Without an image extension nothing is transformed; a name in the path gives one.
        assert requests.get(f"{server.url}/{vid},{key}?width=32").content == data
        r = requests.get(f"{server.url}/{vid}/{key}/x.png?width=32")
        assert shape(r.content) == ("PNG", (32, 32)), server.url


def test_bad_images_are_served_as_stored(pair):
    cluster, kelp, go = pair
    junk = random.Random(1).randbytes(5000)
    # A PNG header declaring 100000 x 100000 pixels, and nothing behind it.
    bomb = bytes.fromhex("89504e470d0a1a0a0000000d49484452000186a0000186a00806000000") + b"\0" * 64
    for name, data in (("junk.jpg", junk), ("bomb.png", bomb)):
        fids = put_both(cluster, kelp, go, name, data)
        for server in (kelp, go):
            r = requests.get(f"{server.url}/{fids[server.port]}?width=10&crop_x1=0&crop_y1=0&crop_x2=5&crop_y2=5")
            assert r.status_code == 200 and r.content == data, (name, server.url)
    assert requests.get(kelp.url + "/status").status_code == 200


def test_jpeg_orientation_is_fixed_on_upload_like_go(pair):
    cluster, kelp, go = pair
    data = make("JPEG", (120, 80), exif_orientation=6)  # to be turned 90 degrees
    fids = put_both(cluster, kelp, go, "rot.jpg", data)
    k = requests.get(f"{kelp.url}/{fids[kelp.port]}").content
    g = requests.get(f"{go.url}/{fids[go.port]}").content
    assert shape(k) == shape(g) == ("JPEG", (80, 120))
    # Already upright: stored as sent.
    upright = make("JPEG", (120, 80), exif_orientation=1)
    fids = put_both(cluster, kelp, go, "up.jpg", upright)
    assert requests.get(f"{kelp.url}/{fids[kelp.port]}").content == upright
    assert requests.get(f"{go.url}/{fids[go.port]}").content == upright
