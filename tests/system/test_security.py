"""JWT and white-list enforcement, against the Go volume server: the master
signs file ids with security.toml's key, both servers refuse what Go refuses."""
import base64
import hashlib
import hmac
import http.client
import json
import time

import requests

from conftest import Cluster, Proc, WEED, free_port, wait_http


class FakeResponse:
    def __init__(self, status, text):
        self.status_code, self.text, self.content = status, text, text.encode()


def b64(d):
    return base64.urlsafe_b64encode(d).rstrip(b"=").decode()


def token(claims, key, alg="HS256"):
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    digest = hashlib.sha256 if alg == "HS256" else hashlib.sha512
    return head + "." + b64(hmac.new(key.encode(), head.encode(), digest).digest())


def test_jwt_and_white_list_answer_as_go(tmp_path):
    key, read_key = "write-secret", "read-secret"
    conf = tmp_path / "security.toml"
    conf.write_text(f'[jwt.signing]\nkey = "{key}"\nexpires_after_seconds = 60\n'
                    f'[jwt.signing.read]\nkey = "{read_key}"\nexpires_after_seconds = 60\n')
    c = Cluster(tmp_path)
    try:
        # Go's master and volume server read security.toml from their working directory.
        c.master_port = free_port()
        (tmp_path / "m").mkdir()
        c.procs.append(Proc([WEED, "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={c.master_port}",
                             f"-mdir={tmp_path / 'm'}", "-peers=none", "-volumeSizeLimitMB=64"], tmp_path / "master.log",
                            cwd=tmp_path))
        wait_http(f"{c.master}/dir/status")
        (tmp_path / "go").mkdir()
        go = Proc([WEED, "volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={free_port()}", f"-dir={tmp_path / 'go'}",
                   "-max=16", "-readMode=local", f"-master=127.0.0.1:{c.master_port}", "-whiteList=127.0.0.1,10.0.0.0/8"],
                  tmp_path / "go.log", cwd=tmp_path)
        go.port = int(go.args[4].split("=")[1])
        go.url = f"http://127.0.0.1:{go.port}"
        c.procs.append(go)
        wait_http(go.url + "/healthz", timeout=30)
        kelp = c.start_kelp(tmp_path / "kelp", extra=[f"-securityFile={conf}", "-whiteList=127.0.0.1,10.0.0.0/8"])
        wait_http(kelp.url + "/healthz", timeout=30)
        servers = {"go": go, "kelp": kelp}
        for name, s in servers.items():
            # Assign until the master names this server.
            deadline = time.time() + 30
            while True:
                a = requests.get(f"{c.master}/dir/assign", timeout=10).json()
                if a.get("url", "").endswith(f":{s.port}"):
                    break
                assert time.time() < deadline, a
            fid = a["fid"]
            auth = token({"fid": fid, "exp": int(time.time()) + 60}, key)
            url = f"{s.url}/{fid}"
            results = []
            files = {"file": ("j.bin", b"jwt protected")}
            results.append(requests.post(url, files=files))  # no token
            results.append(requests.post(url, files=files, headers={"Authorization": "Bearer not.a.jwt"}))
            other = token({"fid": fid.split(",")[0] + ",ffff0123", "exp": int(time.time()) + 60}, key)
            results.append(requests.post(url, files=files, headers={"Authorization": f"Bearer {other}"}))
            expired = token({"fid": fid, "exp": int(time.time()) - 5}, key)
            results.append(requests.post(url, files=files, params={"jwt": expired}))
            wrong_key = token({"fid": fid, "exp": int(time.time()) + 60}, "guess")
            results.append(requests.post(url, files=files, cookies={"AT": wrong_key}))
            results.append(requests.get(url))  # nothing stored yet, and no read token
            results.append(requests.post(url, files=files, headers={"Authorization": f"BEARER {auth}"}))
            results.append(requests.get(url, params={"jwt": token({"fid": fid}, read_key)}))
            results.append(requests.get(url, params={"jwt": token({"fid": fid}, key)}))  # write key does not read
            results.append(requests.delete(url, cookies={"AT": token({"fid": fid}, read_key)}))
            results.append(requests.delete(url, cookies={"AT": token({"fid": fid}, key, "HS512")}))
            # A client outside the white list may read but not write.
            conn = http.client.HTTPConnection("127.0.0.1", s.port, source_address=("127.0.0.2", 0), timeout=10)
            conn.request("DELETE", "/" + fid, headers={"Authorization": f"Bearer {auth}"})
            outside = conn.getresponse()
            results.append(FakeResponse(outside.status, outside.read().decode()))
            conn.close()
            servers[name] = [(r.status_code, r.text if r.status_code != 200 else r.content.decode()) for r in results]
        assert servers["kelp"] == servers["go"], json.dumps(servers, indent=1)
        assert servers["kelp"][6][0] == 201 and servers["kelp"][7] == (200, "jwt protected")
        assert servers["kelp"][10][0] == 202
    finally:
        c.stop_all()


def test_malformed_security_toml_stops_the_server_at_start(tmp_path):
    bad = tmp_path / "security.toml"
    bad.write_text("[jwt.signing\nkey = ")
    from conftest import KELP_BIN
    import subprocess
    r = subprocess.run([str(KELP_BIN / "kelp-volume"), f"-dir={tmp_path}", f"-port={free_port()}", "-master=127.0.0.1:1",
                        f"-securityFile={bad}"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert str(bad) in r.stderr and "expected ']'" in r.stderr


def signed(claims_json, key):
    """An HS256 token over claims given as raw JSON text (duplicate keys, odd types)."""
    head = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(claims_json.encode())
    return head + "." + b64(hmac.new(key.encode(), head.encode(), hashlib.sha256).digest())


def test_jwt_claims_are_decoded_as_go_decodes_them(tmp_path):
    """Go decodes the claims with encoding/json into golang-jwt's types: dates as
    numbers or as strings holding one, keys in any case (the last one counts),
    null, and a claim of the wrong type refusing the token. A read of a volume
    neither server holds answers 404 once the token passes and 401 otherwise."""
    read_key = "read-secret"
    (tmp_path / "security.toml").write_text(f'[jwt.signing.read]\nkey = "{read_key}"\nexpires_after_seconds = 60\n')
    c = Cluster(tmp_path)
    try:
        c.start_master()
        (tmp_path / "go").mkdir()
        port = free_port()
        go = Proc([WEED, "volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={port}", f"-dir={tmp_path / 'go'}",
                   "-max=4", f"-master=127.0.0.1:{c.master_port}"], tmp_path / "go.log", cwd=tmp_path)
        go.url = f"http://127.0.0.1:{port}"
        c.procs.append(go)
        wait_http(go.url + "/status")
        kelp = c.start_kelp(tmp_path / "kelp", extra=[f"-securityFile={tmp_path / 'security.toml'}"])
        now = int(time.time())
        fid = '"fid":"3,01637037d6"'
        claims = [f'{{{fid},"exp":{now + 600}}}', f'{{{fid},"exp":{now - 600}}}',
                  f'{{{fid},"exp":"{now + 600}"}}', f'{{{fid},"exp":"{now - 600}"}}', f'{{{fid},"exp":"{now + 600}.5"}}',
                  f'{{{fid},"exp":"{now + 600}e0"}}', f'{{{fid},"exp":"abc"}}', f'{{{fid},"exp":""}}',
                  f'{{{fid},"exp":" {now + 600}"}}', f'{{{fid},"exp":"+{now + 600}"}}', f'{{{fid},"exp":"0{now + 600}"}}',
                  f'{{{fid},"exp":null}}', f'{{{fid},"exp":true}}', f'{{{fid},"exp":[1]}}', f'{{{fid},"exp":1e400}}',
                  f'{{{fid},"exp":9223372036854775807}}', f'{{{fid},"exp":9223371974719180000}}',
                  f'{{{fid},"nbf":"{now + 600}"}}', f'{{{fid},"nbf":"{now - 600}"}}', f'{{{fid},"nbf":"x"}}',
                  f'{{{fid},"nbf":null}}', f'{{{fid},"iat":"x"}}', f'{{{fid},"iat":{now + 6000}}}',
                  f'{{{fid},"iss":5}}', f'{{{fid},"sub":false}}', f'{{{fid},"jti":{{}}}}', f'{{{fid},"iss":null}}',
                  f'{{{fid},"aud":"x"}}', f'{{{fid},"aud":["x","y"]}}', f'{{{fid},"aud":5}}', f'{{{fid},"aud":["x",null]}}',
                  f'{{{fid},"aud":null}}', '{"FID":"3,01637037d6"}', '{"Fid":"3,01637037d6"}', '{"fid":5}', '{}',
                  f'{{{fid},"EXP":{now - 600}}}', f'{{{fid},"exp":{now + 600},"Exp":{now - 600}}}',
                  f'{{{fid},"Exp":{now - 600},"exp":{now + 600}}}', f'{{{fid},"exp":{now - 600},"exp":null}}',
                  f'{{{fid},"fid":null}}', '{"fid":"other","fid":"3,01637037d6"}', '[1]', f'{{{fid},"x":{{"y":[1]}}}}']
        answers = {}
        for name, server in (("go", go), ("kelp", kelp)):
            answers[name] = [requests.get(f"{server.url}/3,01637037d6", params={"jwt": signed(cl, read_key)}, timeout=10).status_code
                             for cl in claims]
        assert answers["kelp"] == answers["go"], "\n".join(
            f"{g} {k} {cl}" for cl, g, k in zip(claims, answers["go"], answers["kelp"]) if g != k)
        assert set(answers["kelp"]) == {401, 404}
    finally:
        c.stop_all()
