"""Every flag `weed volume` accepts is accepted by kelp-volume, in both the
-flag=value and --flag value spellings; unknown flags are refused like Go."""
import re
import subprocess

from conftest import KELP_BIN, WEED

SAMPLE_VALUES = {"int": "7", "int64": "7", "uint": "7", "string": "x", "duration": "2s", "float": "1.5", "value": "x"}


def weed_volume_flags():
    out = subprocess.run([str(WEED), "volume", "-h"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    flags = {}
    for m in re.finditer(r"^  -([A-Za-z0-9._]+)(?: (\w+))?\s*$", text, re.M):
        flags[m.group(1)] = m.group(2) or "bool"
    assert len(flags) > 30, text[:500]
    return flags


def kelp(*args):
    return subprocess.run([str(KELP_BIN / "kelp-volume"), *args], capture_output=True, text=True, timeout=30)


def test_every_weed_volume_flag_is_accepted_in_both_spellings():
    flags = weed_volume_flags()
    help_text = kelp("--help").stdout
    refused = []
    for name, kind in sorted(flags.items()):
        assert f"-{name}" in help_text, f"--help does not list -{name}"
        if kind == "bool":
            forms = [[f"-{name}"], [f"--{name}=false"]]
        else:
            v = SAMPLE_VALUES.get(kind, "x")
            forms = [[f"-{name}={v}"], [f"--{name}", v]]
        for form in forms:
            r = kelp(*form, "-h")
            if r.returncode != 0:
                refused.append((form, r.stderr.strip().splitlines()[:1]))
    assert not refused, refused


def test_unknown_flags_and_bad_values_are_refused_like_go():
    r = kelp("-nosuchflag=1")
    assert r.returncode == 2 and "flag provided but not defined: -nosuchflag" in r.stderr
    r = kelp("-port=notanumber")
    assert r.returncode == 2 and "invalid value \"notanumber\" for flag -port" in r.stderr
    r = kelp("--port")
    assert r.returncode == 2 and "flag needs an argument: -port" in r.stderr


def test_an_empty_ip_is_detected_as_go_detects_it(tmp_path):
    """Without -ip, Go and kelp name themselves by the same detected address
    (the first non-loopback IPv4 of an interface that is up) and the master
    records that address. Both bind loopback here (-ip.bind)."""
    import time
    import requests
    from conftest import Cluster, free_port
    c = Cluster(tmp_path)
    try:
        c.start_master()
        learned = {}
        for kind in ("go", "kelp"):
            port = free_port()
            d = tmp_path / kind
            d.mkdir()
            if kind == "go":
                args = [WEED, "volume", "-ip.bind=127.0.0.1", f"-port={port}", f"-dir={d}", "-max=4", "-preStopSeconds=0"]
            else:
                args = [KELP_BIN / "kelp-volume", "-ip.bind=127.0.0.1", f"-port={port}", f"-dir={d}", "-max=4", "-preStopSeconds=0"]
            from conftest import Proc
            p = Proc(args + [f"-master=127.0.0.1:{c.master_port}"], tmp_path / f"{kind}.log")
            c.procs.append(p)
            deadline = time.time() + 30
            while time.time() < deadline and kind not in learned:
                topology = requests.get(f"{c.master}/dir/status", timeout=5).json()["Topology"]
                for dc in topology.get("DataCenters") or []:
                    for rack in dc.get("Racks") or []:
                        for node in rack.get("DataNodes") or []:
                            if node["Url"].endswith(f":{port}"):
                                learned[kind] = node["Url"].rsplit(":", 1)[0]
                time.sleep(0.3)
        assert learned.get("go") and learned["kelp"] == learned["go"], learned
        assert learned["go"] != "127.0.0.1"
    finally:
        c.stop_all()
