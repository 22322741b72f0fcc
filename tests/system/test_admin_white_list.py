"""-whiteList guards gRPC administration, and security settings reach kelp the
ways they reach Go 4.48: -config_dir, the environment and -options. Each
check runs against the Go volume server and kelp side by side."""
import http.client
import json
import socket
import threading

import grpc
import requests

from conftest import Cluster, Proc, WEED, free_port, wait_http, fid_on
from grpc_stubs import call, vs_pb2, vs_grpc, volume_stub

# The master (and so volume growth) calls from 127.0.0.1, which is on the list;
# the outsider's calls reach the servers from 127.0.0.4 through a relay.
WHITE_LIST = "127.0.0.1"
OUTSIDER = "127.0.0.4"
AIMED_AT_THE_VOLUME = {"VolumeMarkReadonly", "VolumeDelete", "VolumeUnmount", "VolumeConfigure", "DeleteCollection",
                       "SetState", "VacuumVolumeCompact", "VacuumVolumeCommit", "VolumeEcShardsGenerate", "VolumeCopy",
                       "VolumeTierMoveDatToRemote", "VolumeServerLeave"}


def http_from(source_ip, url, method, path, body=None, headers=None):
    """A request sent from `source_ip` (loopback aliases work without setup)."""
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(source_ip, 0))
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def upload_from(source_ip, server, fid, payload):
    boundary = "kelpboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return http_from(source_ip, server.url, "POST", "/" + fid, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


class Relay:
    """Forwards 127.0.0.1:port to `target`, connecting from `source_ip`: the
    server sees every call as coming from source_ip."""

    def __init__(self, target_port, source_ip):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target_port, self.source_ip = target_port, source_ip
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port), source_address=(self.source_ip, 0))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()


def stub_at(port):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=20)
    return vs_grpc.VolumeServerStub(channel)


def invoke(stub, method, volume_id):
    """(status code name, details) of one call with a minimal request."""
    req = getattr(vs_pb2, method.input_type.name)()
    if hasattr(req, "volume_id"):
        req.volume_id = volume_id
    fn = getattr(stub, method.name)
    try:
        if method.client_streaming:
            out = fn(iter([req]), timeout=10)
            if method.server_streaming:
                list(out)
        elif method.server_streaming:
            list(fn(req, timeout=10))
        else:
            fn(req, timeout=10)
        return "OK", ""
    except grpc.RpcError as e:
        return e.code().name, e.details()


def test_grpc_administration_is_refused_outside_the_white_list_as_go_refuses_it(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start_master()
        go = c.start_go_volume(tmp_path / "go", extra=[f"-whiteList={WHITE_LIST}"])
        kelp = c.start_kelp(tmp_path / "kelp", extra=[f"-whiteList={WHITE_LIST}"])
        wait_http(kelp.url + "/healthz", timeout=30)
        stored = {}
        for name, s in (("go", go), ("kelp", kelp)):
            fid = fid_on(c.master, s)
            status, _ = upload_from("127.0.0.1", s, fid, f"kept on {name}".encode())
            assert status == 201, (name, status)
            stored[name] = fid

        methods = list(vs_pb2.DESCRIPTOR.services_by_name["VolumeServer"].methods)
        answers = {}
        relays = []
        for name, s in (("go", go), ("kelp", kelp)):
            relays.append(Relay(s.port + 10000, OUTSIDER))
            stub = stub_at(relays[-1].port)
            vid = int(stored[name].split(",")[0])
            answers.setdefault("BatchDelete(skip_cookie_check)", {})[name] = invoke_batch_delete(stub, stored[name])
            for m in methods:
                # Calls that would change the volume are aimed at it; the others
                # (open on Go too) at a volume that does not exist.
                answers.setdefault(m.name, {})[name] = invoke(stub, m, vid if m.name in AIMED_AT_THE_VOLUME else 9999)

        gated = sorted(m for m, a in answers.items() if a["go"][0] == "PERMISSION_DENIED")
        print("gated by Go:", gated)
        # Go 4.48 guards 30 methods; if that set ever shrank to nothing the test would prove nothing.
        assert len(gated) >= 25, gated
        for m in ("BatchDelete", "VolumeMarkReadonly", "VolumeMarkWritable", "AllocateVolume", "VolumeDelete",
                  "VolumeUnmount", "VolumeMount", "DeleteCollection", "VolumeConfigure", "SetState", "VolumeServerLeave"):
            assert m in gated, m
        for m in gated:
            assert answers[m]["go"] == ("PERMISSION_DENIED", f"not authorized: {OUTSIDER}"), (m, answers[m])
            assert answers[m]["kelp"] == answers[m]["go"], (m, answers[m])
        # And nothing Go leaves open is closed by kelp.
        for m, a in answers.items():
            if m not in gated:
                assert a["kelp"][0] != "PERMISSION_DENIED", (m, a)

        # Nothing changed: the needles are still there and their volumes still take writes.
        for name, s in (("go", go), ("kelp", kelp)):
            r = requests.get(f"{s.url}/{stored[name]}", timeout=10)
            assert r.status_code == 200 and r.content == f"kept on {name}".encode(), (name, r.status_code)
            vid = stored[name].split(",")[0]
            status, _ = upload_from("127.0.0.1", s, f"{vid},{0x77:x}12345678", b"still writable")
            assert status == 201, (name, status)
            assert any(v["Id"] == int(vid) for v in requests.get(f"{s.url}/status", timeout=10).json()["Volumes"]), name
        for r in relays:
            r.close()
    finally:
        c.stop_all()


def invoke_batch_delete(stub, fid):
    code, details, resp = call(stub.BatchDelete, vs_pb2.BatchDeleteRequest(file_ids=[fid], skip_cookie_check=True), timeout=10)
    return (code, json.dumps([r.status for r in resp.results])) if resp else (code, details)


def test_a_white_listed_caller_may_still_administer(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start_master()
        kelp = c.start_kelp(tmp_path / "kelp", extra=["-whiteList=127.0.0.1"])
        wait_http(kelp.url + "/healthz", timeout=30)
        fid = fid_on(c.master, kelp)
        assert upload_from("127.0.0.1", kelp, fid, b"to be deleted")[0] == 201
        code, statuses = invoke_batch_delete(volume_stub(kelp.port), fid)
        assert (code, statuses) == ("OK", "[202]")
        assert requests.get(f"{kelp.url}/{fid}", timeout=10).status_code == 404
    finally:
        c.stop_all()


def start_go(c, tmp_path, name, global_args=(), extra=(), env=None, cwd=None):
    """`weed [global flags] volume ... [extra]`."""
    port = free_port()
    (tmp_path / name).mkdir()
    p = Proc([WEED, *global_args, "volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={port}", f"-dir={tmp_path / name}",
              "-max=4", "-readMode=local", f"-master=127.0.0.1:{c.master_port}", *extra],
             tmp_path / f"{name}.log", env=env, cwd=cwd)
    p.port, p.url = port, f"http://127.0.0.1:{port}"
    c.procs.append(p)
    wait_http(p.url + "/healthz", timeout=30)
    return p


def test_security_settings_from_config_dir_environment_and_options_file(tmp_path, monkeypatch):
    """Each way of naming a security setting must take effect on kelp as on Go:
    a PUT without a JWT, or from outside the white list, is refused with 401 by both."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "security.toml").write_text('[jwt.signing]\nkey = "config-dir-secret"\n')
    options = tmp_path / "volume.options"
    options.write_text(f"# security from a file\nwhiteList={WHITE_LIST}\n")
    ways = {
        "config_dir": dict(go_global=[f"-config_dir={conf}"], go_extra=[], kelp=[f"-config_dir={conf}"], env={},
                           log=f"security configuration from {conf}/security.toml"),
        "environment": dict(go_global=[], go_extra=[], kelp=[], env={"WHITELIST": WHITE_LIST},
                            log="flag -whiteList (from WHITELIST)"),
        "options": dict(go_global=[], go_extra=[f"-options={options}"], kelp=[f"-options={options}"], env={},
                        log=f"flag -whiteList (from {options})"),
    }
    c = Cluster(tmp_path)
    try:
        c.start_master()
        for way, w in ways.items():
            with monkeypatch.context() as m:
                for k, v in w["env"].items():
                    m.setenv(k, v)
                # Both run outside the directories Go searches by default (cwd: an empty directory).
                empty = tmp_path / f"cwd-{way}"
                empty.mkdir()
                go = start_go(c, tmp_path, f"go-{way}", w["go_global"], w["go_extra"], cwd=empty)
                kelp = c.start_kelp(tmp_path / f"kelp-{way}", extra=w["kelp"])
            wait_http(kelp.url + "/healthz", timeout=30)
            results = {}
            for name, s in (("go", go), ("kelp", kelp)):
                results[name] = upload_from(OUTSIDER, s, fid_on(c.master, s), b"x")[0]
            assert results == {"go": 401, "kelp": 401}, (way, results)
            log = (tmp_path / f"kelp-{kelp.port}.log").read_text()
            assert w["log"] in log, (way, log[-2000:])
            assert "accepted but not acted on" not in log
    finally:
        c.stop_all()
