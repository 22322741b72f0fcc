#!/usr/bin/env python3
"""kelp vs the Go volume server, same machine, same clients, one run.

Two kinds of load, each run alternately on Go and on kelp, REPEAT times; the
table reports medians and the kelp/Go ratio:
- `weed benchmark -n N -c 16` (1 KB files) through a fresh Go master per run,
  against an empty server: every write is assigned by the master;
- wrk load on copies of one data directory written by the Go server, at each
  connection count of --connections (keep-alive): 1 KB, 64 KB, 1 MB and 8 MB
  random reads, 4 KB ranges of 8 MB files, 1 KB reads on a new connection per
  request, 1 KB reads while two connections upload 8 MB blobs (the mixed load:
  compare its p99 with the plain 1 KB read's), 1 KB, 64 KB, 1 MB and 8 MB
  writes, and 1 KB writes with fsync=true. Each row gives req/s and the p99
  latency; failed requests (non-2xx answers and socket errors) are listed.
  The peak resident memory of the serving processes during the 8 MB reads is
  reported too (kelp: the largest HTTP worker).
- the read cases also against nginx serving the same payloads as static files
  (sendfile on, 2 workers, no access log): the ceiling for reads. --no-nginx
  leaves it out.
With --baseline DIR, a second kelp build (the kelp-volume and workers in DIR,
for example an earlier commit's build/bench/bin) runs in the same rounds and
gets its own column: a before/after comparison measured in one run.
The servers take turns in a rotating order, and dirty pages are synced
before every case, so that no server pays for another one's writeback.
The whole matrix: benchmarks/run.py --connections 1,16,1000;
start-up and index memory at 10 M needles: benchmarks/scale.py.
Usage: benchmarks/run.py [--repeat 3] [--seconds 10] [--connections 16] [--weed-n 20000] [--no-weed] [--no-nginx] [--only TEXT] [--baseline DIR]
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
    """(req/s, failed requests, p99 latency in ms) of one wrk run. Failures are
    non-2xx/3xx answers and socket errors (connect, read, write, timeout)."""
    # wrk needs a connection per thread: one thread at c=1. A request counts
    # as failed after 60 s, not wrk's default 2 s: at c=1000 a server that
    # shares its bandwidth fairly takes longer than 2 s for every 8 MB answer.
    out = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", "--timeout", "60s", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, env=dict(os.environ, **env), check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = int(errors.group(1)) if errors else 0
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sockets:
        failed += sum(int(x) for x in sockets.groups())
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\b", out, re.M)
    p99_ms = float(p99.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)] if p99 else float("nan")
    return rps, failed, p99_ms


class Background:
    """A wrk load that runs alongside a measured one (the mixed-load case)."""

    def __init__(self, url, script, seconds, connections, env):
        self.proc = subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env=dict(os.environ, **env))

    def finish(self):
        out, _ = self.proc.communicate(timeout=600)
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


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
    ap.add_argument("--connections", default="16", help="comma-separated connection counts, e.g. 1,16,1000")
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
        get, put = bench / "random_get.lua", bench / "unique_put.lua"
        # (name, script, env, background load or None); a name with "read" or "range" is a read (nginx too).
        base_cases = [
            ("1 KB random read", get, {"FIDS": str(lists[1024])}, None),
            ("64 KB random read", get, {"FIDS": str(lists[64 << 10])}, None),
            ("1 MB random read", get, {"FIDS": str(lists[1 << 20])}, None),
            ("8 MB random read", get, {"FIDS": str(lists[8 << 20])}, None),
            ("4 KB range of 8 MB files", get,
             {"FIDS": str(lists[8 << 20]), "RANGE_BYTES": "4096", "FILE_BYTES": str(8 << 20)}, None),
            # A new TCP connection for every request: accept and close dominate.
            ("1 KB random read, a connection per request", get, {"FIDS": str(lists[1024]), "CLOSE": "1"}, None),
            # Small reads while two connections upload 8 MB blobs without pause:
            # compare its p99 with the plain 1 KB read's.
            ("1 KB random read during 8 MB writes", get, {"FIDS": str(lists[1024])},
             (put, {"VID": vid, "SIZE": str(8 << 20)}, 2)),
            ("1 KB write", put, {"VID": vid, "SIZE": "1024"}, None),
            ("64 KB write", put, {"VID": vid, "SIZE": str(64 << 10)}, None),
            ("1 MB write", put, {"VID": vid, "SIZE": str(1 << 20)}, None),
            ("8 MB write", put, {"VID": vid, "SIZE": str(8 << 20)}, None),
            # Every write durable before its answer: concurrent ones share a sync in kelp (group commit).
            ("1 KB write, fsync=true", put, {"VID": vid, "SIZE": "1024", "QUERY": "fsync=true"}, None),
        ]
        connection_counts = [int(x) for x in args.connections.split(",")]
        cases = [(f"{name} (c={n})", script, env, background, n)
                 for n in connection_counts for name, script, env, background in base_cases if args.only in name]
        servers = ("go", "kelp") + (("baseline",) if args.baseline else ()) + (("nginx",) if use_nginx else ())
        results = {}
        if not args.no_weed:
            for kind in ("write", "read"):
                results[f"weed benchmark 1 KB {kind} (c=16, n={args.weed_n})"] = {s: [] for s in servers}
        results.update({name: {s: [] for s in servers} for name, *_ in cases})
        p99 = {name: {s: [] for s in servers} for name, *_ in cases}
        failures = {name: {s: 0 for s in servers} for name, *_ in cases}
        peak_kb = {"go": [], "kelp": [], "baseline": []}
        for rep in range(0 if args.no_weed else args.repeat):
            for server in ("go", "kelp"):
                w, r = weed_benchmark(tmp, server, args.weed_n, 16)
                results[f"weed benchmark 1 KB write (c=16, n={args.weed_n})"][server].append(w)
                results[f"weed benchmark 1 KB read (c=16, n={args.weed_n})"][server].append(r)

        def run_case(server, url, name, script, env, background, connections):
            os.sync()  # no writeback of earlier cases during this one
            bg = None
            if background:
                bg_script, bg_env, bg_connections = background
                bg = Background(url, bg_script, args.seconds + 1, bg_connections, dict(env, **bg_env))
                time.sleep(0.5)  # the uploads are under way before the measured reads start
            rps, failed, latency = wrk(url, script, args.seconds, connections, env)
            if bg:
                bg.finish()
            if failed:
                print(f"warning: {server} {name}: {failed} failed requests", file=sys.stderr)
            results[name][server].append(rps)
            p99[name][server].append(latency)
            failures[name][server] += failed

        for rep in range(args.repeat):
            # Each server takes each place in the order equally often: a
            # server measured right after another one's writes meets their
            # writeback otherwise.
            order = servers[rep % len(servers):] + servers[:rep % len(servers)]
            for server in order:
                index = servers.index(server)
                if server == "nginx":
                    ng = Nginx(tmp, www)
                    for name, script, env, background, n in cases:
                        if ("read" in name or "range" in name) and not background:
                            run_case(server, ng.url, name, script, env, None, n)
                    ng.stop()
                    continue
                d = tmp / f"{server}-{rep}"
                shutil.copytree(base, d)
                conftest.KELP_BIN = Path(args.baseline) if server == "baseline" else KELP_BENCH_BIN
                p = c.start_go_volume(d) if server == "go" else c.start_kelp(d, workers=2)
                for i, (name, script, env, background, n) in enumerate(cases):
                    env = dict(env, KEYBASE=str((rep * len(servers) + index) * (1 << 36) + (1 << 40) + i * (1 << 30)))
                    pids = serving_pids(p, server)
                    if name.startswith("8 MB random read"):
                        for pid in pids:
                            reset_peak_rss(pid)
                    run_case(server, p.url, name, script, env, background, n)
                    if name.startswith("8 MB random read"):
                        peak_kb[server].append((n, max(peak_rss_kb(pid) for pid in pids)))
                p.stop()
                c.procs.remove(p)
                shutil.rmtree(d)
        print(f"\nweed benchmark and wrk -t2 (-t1 at c=1) -d{args.seconds}s at c={args.connections}, {args.repeat} runs each, "
              f"medians (req/s; p99 in ms); {os.cpu_count()} cores\n")
        if args.baseline:
            print(f"baseline: {args.baseline}\n")
        columns = ["Go weed volume"] + (["kelp baseline"] if args.baseline else []) + ["kelp"] + (["nginx"] if use_nginx else [])
        ratios = ["kelp/Go"] + (["kelp/baseline"] if args.baseline else []) + (["kelp/nginx"] if use_nginx else [])
        latencies = ["p99 Go", "p99 kelp"] + (["p99 nginx"] if use_nginx else [])
        print("| case | " + " | ".join(columns + ratios + latencies) + " |")
        print("|---|" + "---:|" * (len(columns) + len(ratios) + len(latencies)))

        def median(values):
            return statistics.median(values) if values else None

        def ratio(a, b):
            return f"{a / b:.2f}x" if b else "—"  # a server with no answer in the window has no ratio

        for name, r in results.items():
            g, k = median(r["go"]), median(r["kelp"])
            b, n = median(r.get("baseline", [])), median(r.get("nginx", []))
            cells = [f"{g:,.0f}"] + ([f"{b:,.0f}"] if args.baseline else []) + [f"{k:,.0f}"]
            cells += [f"{n:,.0f}" if n else "—"] if use_nginx else []
            cells += [ratio(k, g)] + ([ratio(k, b)] if args.baseline else [])
            cells += [ratio(k, n)] if use_nginx else []
            if name in p99:
                lat = p99[name]
                cells += [f"{median(lat['go']):.1f}", f"{median(lat['kelp']):.1f}"]
                cells += [f"{median(lat['nginx']):.1f}" if lat.get("nginx") else "—"] if use_nginx else []
            else:
                cells += ["—"] * len(latencies)
            print(f"| {name} | " + " | ".join(cells) + " |")
        failed = {f"{s} {name}": f for name, per in failures.items() for s, f in per.items() if f}
        print("\nfailed requests: " + (", ".join(f"{k}: {v}" for k, v in failed.items()) if failed else "none"))
        for n in connection_counts:
            go_peak = [kb for c_, kb in peak_kb["go"] if c_ == n]
            kelp_peak = [kb for c_, kb in peak_kb["kelp"] if c_ == n]
            if go_peak and kelp_peak:
                print(f"peak RSS during 8 MB reads (c={n}): Go {max(go_peak) / 1024:,.0f} MiB, "
                      f"kelp {max(kelp_peak) / 1024:,.0f} MiB per HTTP worker")
    finally:
        c.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
