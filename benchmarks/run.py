#!/usr/bin/env python3
"""kelp vs the Go volume server, same machine, same clients, one run.

Two kinds of load, each run alternately on Go and on kelp, REPEAT times; the
table reports medians and the kelp/Go ratio:
- `weed benchmark -n N -c 16` (1 KB files) through a fresh Go master per run,
  against an empty server: every write is assigned by the master;
- wrk keep-alive load on copies of one data directory written by the Go
  server: 1 KB, 64 KB, 1 MB and 8 MB random reads, 4 KB ranges of 8 MB files,
  1 KB and 1 MB writes. The peak resident memory of the serving processes
  during the 8 MB reads is reported too (kelp: the largest HTTP worker).
- the read cases also against nginx serving the same payloads as static files
  (sendfile on, 2 workers, no access log): the ceiling for reads. --no-nginx
  leaves it out.
With --baseline DIR, a second kelp build (the kelp-volume and workers in DIR,
for example an earlier commit's build/bench/bin) runs in the same rounds and
gets its own column: a before/after comparison measured in one run.
The servers take turns in a rotating order, and dirty pages are synced
before every case, so that no server pays for another one's writeback.
Usage: benchmarks/run.py [--repeat 3] [--seconds 10] [--weed-n 20000] [--no-weed] [--no-nginx] [--only TEXT] [--baseline DIR]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "system"))
from conftest import Cluster, assign  # noqa: E402  (the test harness starts the processes)
import requests  # noqa: E402

KELP_BENCH_BIN = ROOT / "build" / "bench" / "bin"


def wrk(url, script, seconds, connections, env):
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, env=dict(os.environ, **env), check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, int(errors.group(1)) if errors else 0


def weed_benchmark(tmp, server, n, concurrency):
    """(write req/s, read req/s) of `weed benchmark` against one server behind its own master."""
    c = Cluster(tmp / f"wb-{server}-{time.time_ns()}")
    c.tmp.mkdir(parents=True)
    try:
        c.start_master(volume_size_limit_mb=1000)
        d = c.tmp / "data"
        d.mkdir()
        p = c.start_go_volume(d) if server == "go" else c.start_kelp(d, workers=2)
        if server == "kelp":
            from conftest import wait_http
            wait_http(p.url + "/healthz", timeout=30)
        out = subprocess.run([conftest_weed(), "benchmark", f"-master=127.0.0.1:{c.master_port}", "-n", str(n), "-c", str(concurrency),
                              "-size", "1024", f"-list={c.tmp / 'bench.list'}"], capture_output=True, text=True, timeout=1200)
        text = out.stdout + out.stderr
        rps = [float(x) for x in re.findall(r"Requests per second:\s+([\d.]+)", text)]
        failed = [int(x) for x in re.findall(r"Failed requests:\s+(\d+)", text)]
        if out.returncode != 0 or len(rps) != 2 or any(failed):
            raise RuntimeError(f"weed benchmark against {server} failed:\n{text[-2000:]}")
        return rps[0], rps[1]
    finally:
        c.stop_all()


def serving_pids(proc, server):
    """The processes whose memory a read costs: Go's server, or kelp's HTTP workers."""
    if server == "go":
        return [proc.pid]
    from conftest import worker_pids
    return worker_pids(proc.pid)


def reset_peak_rss(pid):
    # Writing 5 to clear_refs resets VmHWM to the current RSS.
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class Nginx:
    """nginx serving `root` as static files on a free port: the read ceiling."""

    def __init__(self, tmp, root):
        from conftest import free_port, wait_http
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        prefix = tmp / f"nginx-{time.time_ns()}"
        prefix.mkdir()
        conf = prefix / "nginx.conf"
        conf.write_text(f"""user root;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  default_type application/octet-stream;
  server {{ listen 127.0.0.1:{self.port}; root {root}; }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        wait_http(self.url + "/", timeout=30, ok=(200, 403, 404))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def conftest_weed():
    import conftest
    return conftest.WEED


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--weed-n", type=int, default=20000)
    ap.add_argument("--no-weed", action="store_true", help="skip the weed benchmark rows")
    ap.add_argument("--only", default="", help="run only the wrk cases whose name contains this text")
    ap.add_argument("--baseline", default="", help="directory of another kelp build to measure in the same run")
    ap.add_argument("--no-nginx", action="store_true", help="skip the nginx column")
    args = ap.parse_args()
    use_nginx = not args.no_nginx
    if use_nginx and not shutil.which("nginx"):
        sys.exit("nginx is not installed (apt-get install nginx-light), or pass --no-nginx")
    subprocess.run(["make", "-C", str(ROOT), "-j2", "BUILD=build/bench", "OFFSET_BYTES=5", "all"], check=True,
                   stdout=subprocess.DEVNULL)
    os.environ["KELP_BIN"] = str(KELP_BENCH_BIN)
    import conftest
    conftest.KELP_BIN = KELP_BENCH_BIN

    tmp = Path(tempfile.mkdtemp(prefix="kelp-bench-"))
    c = Cluster(tmp)
    try:
        base = tmp / "data"
        base.mkdir()
        c.start_master(volume_size_limit_mb=1000)
        go = c.start_go_volume(base)
        fids = {1024: [], 64 << 10: [], 1 << 20: [], 8 << 20: []}
        www = tmp / "www"  # the same payloads as static files, for nginx
        www.mkdir()
        s = requests.Session()
        for size, count in ((1024, 2000), (64 << 10, 500), (1 << 20, 100), (8 << 20, 24)):
            body = os.urandom(size)
            for _ in range(count):
                fid, _ = assign(c.master)
                r = s.put(f"{go.url}/{fid}", data=body, headers={"Content-Type": "application/octet-stream"}, timeout=30)
                r.raise_for_status()
                fids[size].append(fid)
                if use_nginx:
                    (www / fid).write_bytes(body)
        vid = fids[1024][0].split(",")[0]
        go.stop()  # the master stays up: Go's volume server waits for one before serving
        lists = {}
        for size, ids in fids.items():
            lists[size] = tmp / f"fids-{size}"
            lists[size].write_text("\n".join(ids) + "\n")

        bench = ROOT / "benchmarks"
        cases = [
            ("1 KB random read", bench / "random_get.lua", {"FIDS": str(lists[1024])}),
            ("64 KB random read", bench / "random_get.lua", {"FIDS": str(lists[64 << 10])}),
            ("1 MB random read", bench / "random_get.lua", {"FIDS": str(lists[1 << 20])}),
            ("8 MB random read", bench / "random_get.lua", {"FIDS": str(lists[8 << 20])}),
            ("4 KB range of 8 MB files", bench / "random_get.lua",
             {"FIDS": str(lists[8 << 20]), "RANGE_BYTES": "4096", "FILE_BYTES": str(8 << 20)}),
            ("1 KB write", bench / "unique_put.lua", {"VID": vid, "SIZE": "1024"}),
            ("1 MB write", bench / "unique_put.lua", {"VID": vid, "SIZE": str(1 << 20)}),
            # Every write durable before its answer: concurrent ones share a sync in kelp (group commit).
            ("1 KB write, fsync=true", bench / "unique_put.lua", {"VID": vid, "SIZE": "1024", "QUERY": "fsync=true"}),
        ]
        cases = [c for c in cases if args.only in c[0]]
        results = {f"weed benchmark 1 KB write (c=16, n={args.weed_n})": {"go": [], "kelp": []},
                   f"weed benchmark 1 KB read (c=16, n={args.weed_n})": {"go": [], "kelp": []}}
        if args.no_weed:
            results = {}
        results.update({name: {"go": [], "kelp": []} for name, _, _ in cases})
        peak_kb = {"go": [], "kelp": [], "baseline": []}
        for rep in range(0 if args.no_weed else args.repeat):
            for server in ("go", "kelp"):
                w, r = weed_benchmark(tmp, server, args.weed_n, 16)
                results[f"weed benchmark 1 KB write (c=16, n={args.weed_n})"][server].append(w)
                results[f"weed benchmark 1 KB read (c=16, n={args.weed_n})"][server].append(r)
        servers = ("go", "kelp") + (("baseline",) if args.baseline else ()) + (("nginx",) if use_nginx else ())
        for name in results:
            results[name]["baseline"] = []
            results[name]["nginx"] = []
        for rep in range(args.repeat):
            # Each server takes each place in the order equally often: a
            # server measured right after another one's writes meets their
            # writeback otherwise.
            order = servers[rep % len(servers):] + servers[:rep % len(servers)]
            for server in order:
                index = servers.index(server)
                if server == "nginx":
                    ng = Nginx(tmp, www)
                    for name, script, env in cases:
                        if "read" not in name and "range" not in name:
                            continue
                        os.sync()
                        rps, errors = wrk(ng.url, script, args.seconds, args.connections, env)
                        if errors:
                            print(f"warning: nginx {name}: {errors} non-2xx responses", file=sys.stderr)
                        results[name]["nginx"].append(rps)
                    ng.stop()
                    continue
                d = tmp / f"{server}-{rep}"
                shutil.copytree(base, d)
                conftest.KELP_BIN = Path(args.baseline) if server == "baseline" else KELP_BENCH_BIN
                p = c.start_go_volume(d) if server == "go" else c.start_kelp(d, workers=2)
                for i, (name, script, env) in enumerate(cases):
                    env = dict(env, KEYBASE=str((rep * len(servers) + index) * (1 << 36) + (1 << 40)))
                    pids = serving_pids(p, server)
                    if name.startswith("8 MB"):
                        for pid in pids:
                            reset_peak_rss(pid)
                    os.sync()  # no writeback of earlier cases during this one
                    rps, errors = wrk(p.url, script, args.seconds, args.connections, env)
                    if name.startswith("8 MB"):
                        peak_kb[server].append(max(peak_rss_kb(pid) for pid in pids))
                    if errors:
                        print(f"warning: {server} {name}: {errors} non-2xx responses", file=sys.stderr)
                    results[name][server].append(rps)
                p.stop()
                c.procs.remove(p)
                shutil.rmtree(d)
        print(f"\nweed benchmark and wrk -t2 -c{args.connections} -d{args.seconds}s, {args.repeat} runs each, medians (req/s); "
              f"{os.cpu_count()} cores\n")
        if args.baseline:
            print(f"baseline: {args.baseline}\n")
        columns = ["Go weed volume"] + (["kelp baseline"] if args.baseline else []) + ["kelp"] + (["nginx"] if use_nginx else [])
        ratios = ["kelp/Go"] + (["kelp/baseline"] if args.baseline else []) + (["kelp/nginx"] if use_nginx else [])
        print("| case | " + " | ".join(columns + ratios) + " |")
        print("|---|" + "---:|" * (len(columns) + len(ratios)))
        for name, r in results.items():
            g, k = statistics.median(r["go"]), statistics.median(r["kelp"])
            b = statistics.median(r["baseline"]) if r["baseline"] else None
            n = statistics.median(r["nginx"]) if r["nginx"] else None
            cells = [f"{g:,.0f}"] + ([f"{b:,.0f}" if b else "—"] if args.baseline else []) + [f"{k:,.0f}"]
            cells += [f"{n:,.0f}" if n else "—"] if use_nginx else []
            cells += [f"{k / g:.2f}x"] + ([f"{k / b:.2f}x" if b else "—"] if args.baseline else [])
            cells += [f"{k / n:.2f}x" if n else "—"] if use_nginx else []
            print(f"| {name} | " + " | ".join(cells) + " |")
        if not peak_kb["go"] or not peak_kb["kelp"]:
            return
        g, k = max(peak_kb["go"]) / 1024, max(peak_kb["kelp"]) / 1024
        print(f"\npeak RSS during 8 MB reads ({args.connections} connections): Go {g:,.0f} MiB, "
              f"kelp {k:,.0f} MiB per HTTP worker")
    finally:
        c.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
