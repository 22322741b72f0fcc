"""Query over JSON needles (docs/scrub-query-receive.md §3), the same requests
to Go 4.48 and kelp. Never sent to Go: a request without input serialization
or filter, which makes the Go server crash."""
import pytest

from grpc_stubs import call, vs_pb2
from test_vacuum import KINDS, VID, fid, upload, with_volume

DATA = b'{"score":3}\n{"score":12}\n{"score":18, "name":"x"}\n'


def query(stub, fids, selections=(), field="", operand="", value="", json_input=True, csv_input=False):
    ser = vs_pb2.QueryRequest.InputSerialization()
    if json_input:
        ser.json_input.CopyFrom(vs_pb2.QueryRequest.InputSerialization.JSONInput(type="LINES"))
    if csv_input:
        ser.csv_input.CopyFrom(vs_pb2.QueryRequest.InputSerialization.CSVInput())
    req = vs_pb2.QueryRequest(selections=list(selections), from_file_ids=list(fids), input_serialization=ser,
                              filter=vs_pb2.QueryRequest.Filter(field=field, operand=operand, value=value))
    return call(lambda r, timeout: [m.records for m in stub.Query(r, timeout=timeout)], req)


@pytest.mark.parametrize("kind", KINDS)
def test_query_selects_and_filters_json_lines(cluster, tmp_path, kind):
    srv, stub = with_volume(cluster, kind, tmp_path / "v")
    upload(srv.url, VID, 1, DATA, name="d.bin")
    upload(srv.url, VID, 2, b'{"score":1}\n{"score":2}\n', name="e.bin")
    one, two = fid(VID, 1), fid(VID, 2)
    assert query(stub, [one], ["score", "name", "zz"], "score", ">", "10") == \
        ("OK", "", [b'{score:12,name:,zz:}{score:18,name:"x",zz:}'])
    assert query(stub, [one], [], "score", ">=", "3") == ("OK", "", [b"{}{}{}"])
    # One stripe per id, an empty one when nothing matches.
    assert query(stub, [one, two], ["score"], "score", ">", "10") == ("OK", "", [b"{score:12}{score:18}", b""])
    # CSV input produces nothing.
    assert query(stub, [one], ["score"], json_input=False, csv_input=True) == ("OK", "", [])
    # A cookie mismatch ends the stream at once, later ids unread.
    wrong = f"{VID},{1:x}{0x5eed1235:08x}"
    assert query(stub, [wrong, one], ["score"], "score", ">", "0") == ("OK", "", [])


@pytest.mark.parametrize("kind", KINDS)
def test_query_refusals(cluster, tmp_path, kind):
    srv, stub = with_volume(cluster, kind, tmp_path / "v")
    assert query(stub, ["bad-fid"], ["name"])[:2] == ("UNKNOWN", "Wrong fid format.")
    assert query(stub, ["98766,0100000001"], ["name"])[:2] == ("UNKNOWN", "volume 98766 not found")
    assert query(stub, [f"{VID},0100000001"], ["name"])[:2] == ("UNKNOWN", "not found")
    assert query(stub, [f"{VID},01"], ["name"])[:2] == ("UNKNOWN", f"Invalid fid: 01")
    assert query(stub, [], ["name"]) == ("OK", "", [])


def test_query_without_input_or_filter_answers_nothing(cluster, tmp_path):
    """Go dereferences nil here and the whole server dies; kelp reads the
    missing messages as empty."""
    srv, stub = with_volume(cluster, "kelp", tmp_path / "v")
    upload(srv.url, VID, 1, DATA, name="d.bin")
    req = vs_pb2.QueryRequest(selections=["score"], from_file_ids=[fid(VID, 1)])
    assert call(lambda r, timeout: [m.records for m in stub.Query(r, timeout=timeout)], req) == ("OK", "", [])
    req.input_serialization.json_input.type = "LINES"
    assert call(lambda r, timeout: [m.records for m in stub.Query(r, timeout=timeout)], req) == ("OK", "", [b""])
