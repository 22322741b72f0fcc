"""Reads the needles of a version-3 volume file (.dat) into their fields, for
comparing what two servers stored byte for byte."""
import struct
from pathlib import Path

FLAG_COMPRESSED, FLAG_NAME, FLAG_MIME, FLAG_LAST_MODIFIED, FLAG_TTL, FLAG_PAIRS = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
HEADER, CHECKSUM, TIMESTAMP, PADDING = 16, 4, 8, 8


def _body_fields(body):
    """The fields inside a needle's body (its `size` bytes)."""
    f = {"data": b"", "flags": None, "name": None, "mime": None, "last_modified": None, "ttl": None, "pairs": None}
    if not body:
        return f
    (n,) = struct.unpack_from(">I", body, 0)
    pos = 4
    f["data"] = body[pos:pos + n]
    pos += n
    f["flags"] = flags = body[pos]
    pos += 1
    if flags & FLAG_NAME:
        f["name"] = body[pos + 1:pos + 1 + body[pos]]
        pos += 1 + body[pos]
    if flags & FLAG_MIME:
        f["mime"] = body[pos + 1:pos + 1 + body[pos]]
        pos += 1 + body[pos]
    if flags & FLAG_LAST_MODIFIED:
        f["last_modified"] = int.from_bytes(body[pos:pos + 5], "big")
        pos += 5
    if flags & FLAG_TTL:
        f["ttl"] = body[pos:pos + 2]
        pos += 2
    if flags & FLAG_PAIRS:
        (k,) = struct.unpack_from(">H", body, pos)
        f["pairs"] = body[pos + 2:pos + 2 + k]
        pos += 2 + k
    f["trailing"] = body[pos:]  # nothing, in a well-formed body
    return f


def read_needles(dat):
    """{needle id: fields} of the last record of each id in `dat`."""
    b = Path(dat).read_bytes()
    assert b[0] == 3, f"{dat}: version {b[0]}, not 3"
    pos = 8 + int.from_bytes(b[6:8], "big")
    out = {}
    while pos + HEADER <= len(b):
        cookie, nid, size = struct.unpack_from(">IQI", b, pos)
        body = b[pos + HEADER:pos + HEADER + size]
        after = pos + HEADER + size
        (crc,) = struct.unpack_from(">I", b, after)
        (append_at_ns,) = struct.unpack_from(">Q", b, after + CHECKSUM)
        padding_len = PADDING - (HEADER + size + CHECKSUM + TIMESTAMP) % PADDING
        end = after + CHECKSUM + TIMESTAMP + padding_len
        rec = {"offset": pos, "cookie": cookie, "id": nid, "size": size, "crc": crc, "append_at_ns": append_at_ns,
               "padding": b[end - padding_len:end]}
        rec.update(_body_fields(body))
        out[nid] = rec
        pos = end
    return out
