"""Python stubs for kelp's own proto/ files, generated once per test session
with grpc_tools (the same wire contract the Go master and shell speak)."""
import importlib
import sys
import tempfile
from pathlib import Path

import grpc
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
_OUT = Path(tempfile.mkdtemp(prefix="kelp-pb-"))


def _generate():
    protos = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "proto").glob("*.proto"))]
    include = str(Path(protoc.__file__).parent / "_proto")
    rc = protoc.main(["protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={_OUT}", f"--grpc_python_out={_OUT}", *protos])
    if rc != 0:
        raise RuntimeError(f"protoc failed on {protos}")
    sys.path.insert(0, str(_OUT))


_generate()
vs_pb2 = importlib.import_module("proto.volume_server_pb2")
vs_grpc = importlib.import_module("proto.volume_server_pb2_grpc")
master_pb2 = importlib.import_module("proto.master_pb2")


def volume_stub(http_port):
    # A channel of its own connection: the process-wide subchannel pool would
    # hand over a connection to the same address left in reconnect backoff by
    # an earlier server on that port, or by a worker a test killed.
    channel = grpc.insecure_channel(f"127.0.0.1:{http_port + 10000}", options=[("grpc.use_local_subchannel_pool", 1)])
    grpc.channel_ready_future(channel).result(timeout=20)
    return vs_grpc.VolumeServerStub(channel)


def call(stub_method, request, timeout=20):
    """(status code name, details, response or None)"""
    try:
        return "OK", "", stub_method(request, timeout=timeout)
    except grpc.RpcError as e:
        return e.code().name, e.details(), None
