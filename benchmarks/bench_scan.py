#!/usr/bin/env python
"""Benchmark: cert_scan vs sslyze vs community.crypto.get_certificate on N loopback TLS endpoints.

One run serves N TLS endpoints on 127.0.0.1 (one port each, N distinct leaf certificates up to
1,000 then reused, EC P-256 leaves under an RSA-2048 intermediate, from tests/scan_range/server.py
in --server-workers processes sharing the ports) and scans them with

* the cert_scan engine directly (ScanPlan + run_scan: full chain and every check),
* the cert_scan module through ansible-playbook (same work, plus Ansible),
* sslyze (certificate info only) from its own venv (.cache/bench-venv), at the best of a few
  concurrency settings, on a subset of --sslyze-count endpoints,
* community.crypto.get_certificate in an Ansible loop over --loop-count endpoints,

then prints endpoints/s, CPU of the scanner and of the servers, and the ratios. With --rss it
instead runs the cert_scan module (in a clean process, results streamed to a file) on 1,000
and on --rss-count (10,000) endpoints and prints the peak RSS.

    .cache/venv/bin/python benchmarks/bench_scan.py              # N = 1000
    .cache/venv/bin/python benchmarks/bench_scan.py --rss        # memory at 10,000 endpoints

Only loopback addresses are used. sslyze is installed on first use:
    python3 -m venv .cache/bench-venv && .cache/bench-venv/bin/pip install sslyze
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The tests' helper makes .cache/collections/ansible_collections/certfleet/tls point here.
sys.path.insert(0, str(REPO_ROOT / "tests"))
from collection_link import collections_root  # noqa: E402  pylint: disable=wrong-import-position

BENCH_VENV = REPO_ROOT / ".cache" / "bench-venv"
OUT_DIR = REPO_ROOT / "benchmarks" / "out"
SERVER = REPO_ROOT / "tests" / "scan_range" / "server.py"
MAX_DISTINCT = 1000


sys.path.insert(0, str(collections_root()))

# pylint: disable=wrong-import-position
from ansible_collections.certfleet.tls.plugins.module_utils._scan import runner as _runner  # noqa: E402
from ansible_collections.certfleet.tls.plugins.module_utils._scan import tls as _tls  # noqa: E402
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb  # noqa: E402

SSLYZE_DRIVER = r"""
import json, sys, time
from sslyze import Scanner, ServerScanRequest, ServerNetworkLocation, ScanCommand, ServerScanStatusEnum
from sslyze import ScanCommandAttemptStatusEnum
endpoints, concurrency = json.load(open(sys.argv[1])), int(sys.argv[2])
requests = [ServerScanRequest(server_location=ServerNetworkLocation(hostname=sni, port=port, ip_address="127.0.0.1"),
                              scan_commands={ScanCommand.CERTIFICATE_INFO}) for sni, port in endpoints]
started = time.perf_counter()
scanner = Scanner(concurrent_server_scans_limit=concurrency, per_server_concurrent_connections_limit=1)
scanner.queue_scans(requests)
ok = chains = 0
for result in scanner.get_results():
    if result.scan_status == ServerScanStatusEnum.COMPLETED:
        attempt = result.scan_result.certificate_info
        if attempt.status == ScanCommandAttemptStatusEnum.COMPLETED:
            ok += 1
            chains += len(attempt.result.certificate_deployments[0].received_certificate_chain)
print(json.dumps({"seconds": time.perf_counter() - started, "ok": ok, "certificates": chains}))
"""

LOOP_PLAYBOOK = """
- name: community.crypto.get_certificate in a loop
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Fetch each certificate
      community.crypto.get_certificate:
        host: 127.0.0.1
        port: "{{ item.port }}"
        server_name: "{{ item.sni }}"
        asn1_base64: true
      loop: "{{ endpoints }}"
"""

SCAN_PLAYBOOK = """
- name: certfleet.tls.cert_scan, one call
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Scan every endpoint
      certfleet.tls.cert_scan:
        targets: "{{ targets }}"
        trusted_ca_sets: {default: {system: true, certificates: ["{{ root_pem }}"]}}
        concurrency: "{{ concurrency }}"
        workers: "{{ workers }}"
        timeout: 10
      register: scan
    - name: Show the summary
      ansible.builtin.debug:
        msg: "SUMMARY {{ scan.summary | to_json }}"
"""


# --------------------------------------------------------------------------------------------
# the loopback range


class Range:
    """N TLS endpoints on 127.0.0.1 served by --server-workers processes of tests/scan_range/server.py."""

    def __init__(self, work: Path, count: int, server_workers: int) -> None:
        self.work = work
        self.count = count
        self.distinct = min(count, MAX_DISTINCT)
        root = pb.make_root("Bench Root", key_type="rsa2048", days=3650)
        inter = pb.make_intermediate("Bench Int", issuer=root, key_type="rsa2048", days=3000)
        self.root_pem = work / "root.pem"
        self.root_pem.write_bytes(root.pem)
        for index in range(self.distinct):
            leaf = pb.make_leaf(self.sni(index), issuer=inter, days=90)
            (work / f"{index}.crt").write_bytes(leaf.pem + inter.pem)
            (work / f"{index}.key").write_bytes(leaf.key_pem)
        self.processes: list[subprocess.Popen] = []
        self.ports = self._start(None)
        for _extra in range(server_workers - 1):
            self._start(self.ports)

    def sni(self, index: int) -> str:
        return f"h{index % self.distinct}.bench.test"

    def _start(self, ports: list[int] | None) -> list[int]:
        spec = {"host": "127.0.0.1", "reuse_port": True, "listeners": [
            {"port": ports[i] if ports else 0, "kind": "tls", "cert": str(self.work / f"{i % self.distinct}.crt"),
             "key": str(self.work / f"{i % self.distinct}.key")} for i in range(self.count)]}
        path = self.work / f"spec{len(self.processes)}.json"
        path.write_text(json.dumps(spec))
        process = subprocess.Popen([sys.executable, str(SERVER), "--spec", str(path)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        self.processes.append(process)
        line = process.stdout.readline()
        if not line.startswith("ready "):
            sys.exit(f"the range server did not start: {line!r}")
        return json.loads(line.split(" ", 1)[1])

    def cpu(self) -> float:
        """CPU seconds the server processes used so far."""
        total = 0.0
        for process in self.processes:
            with open(f"/proc/{process.pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def targets(self, count: int | None = None) -> list[dict]:
        return [{"host": "127.0.0.1", "port": port, "server_name": self.sni(index)}
                for index, port in enumerate(self.ports[:count or self.count])]

    def stop(self) -> None:
        for process in self.processes:
            process.stdin.close()
            process.stdout.read()
            process.stdout.close()
            process.wait()


# --------------------------------------------------------------------------------------------
# measurements


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(label: str, count: int, rng: Range, action, *, repeat: int = 1) -> dict:
    """Run ``action()`` ``repeat`` times; the best run's wall time, scanner CPU (this process + finished
    children) and server CPU, plus the rate of every run (other work on the machine shows as spread)."""
    runs = []
    for _run in range(repeat):
        server0, self0, children0 = rng.cpu(), self_cpu(), children_cpu()
        started = time.perf_counter()
        detail = action() or {}
        seconds = time.perf_counter() - started
        server = rng.cpu() - server0
        scanner = (self_cpu() - self0) + (children_cpu() - children0)
        runs.append({"label": label, "endpoints": count, "seconds": round(seconds, 3), "per_second": round(count / seconds, 1),
                     "scanner_cpu_percent": round(100 * scanner / seconds), "server_cpu_percent": round(100 * server / seconds),
                     "server_ms_per_endpoint": round(1000 * server / count, 2), **detail})
    figure = dict(max(runs, key=lambda run: run["per_second"]))
    rates = sorted(run["per_second"] for run in runs)
    figure["runs_per_second"] = [run["per_second"] for run in runs]
    figure["median_per_second"] = rates[len(rates) // 2]
    spread = f"  (runs: {', '.join(f'{rate:.0f}' for rate in figure['runs_per_second'])}/s)" if repeat > 1 else ""
    print(f"{label:38s} {count:6d} endpoints {figure['seconds']:8.2f} s {figure['per_second']:8.1f} /s   "
          f"scanner CPU {figure['scanner_cpu_percent']:4d}%   server CPU {figure['server_cpu_percent']:4d}% "
          f"({figure['server_ms_per_endpoint']:.2f} ms/endpoint){spread}", flush=True)
    return figure


def engine(rng: Range, *, concurrency: int, workers: int) -> dict:
    plan = _runner.ScanPlan(targets=rng.targets(),
                            trusted_ca_sets={"default": {"system": True, "certificates": [str(rng.root_pem)]}})
    statuses: dict[str, int] = {}
    certificates = 0
    for report in _runner.run_scan(plan, concurrency=concurrency, workers=workers, timeout=10):
        statuses[report["status"]] = statuses.get(report["status"], 0) + 1
        certificates += len(report["chain"])
    if statuses.get("ok") != rng.count:
        sys.exit(f"engine: not every endpoint is ok: {statuses}")
    return {"statuses": statuses, "certificates": certificates}


def ansible_env(work: Path) -> dict:
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([str(collections_root())] + [
        p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]),
        ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"), ANSIBLE_HOME=str(work / "ansible-home"))


def playbook(work: Path, name: str, text: str, extra_vars: dict) -> str:
    path = work / name
    path.write_text(text)
    variables = work / f"{name}.vars.json"
    variables.write_text(json.dumps(extra_vars))
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(path), "-e", f"@{variables}",
               "-e", f"ansible_python_interpreter={sys.executable}"]
    proc = subprocess.run(command, cwd=work, env=ansible_env(work), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def module(rng: Range, work: Path, *, concurrency: int, workers: int) -> dict:
    variables = {"targets": rng.targets(), "root_pem": str(rng.root_pem), "concurrency": concurrency, "workers": workers}
    output = playbook(work, "scan.yml", SCAN_PLAYBOOK, variables)
    match = re.search(r'"msg": "SUMMARY (.*)"', output)
    if not match:
        sys.exit(f"module: no summary in the output:\n{output[-3000:]}")
    summary = json.loads(match.group(1).encode().decode("unicode_escape"))
    if summary["ok"] != rng.count:
        sys.exit(f"module: not every endpoint is ok: {summary}")
    return {"task_seconds": summary["elapsed_seconds"], "task_per_second": summary["endpoints_per_second"]}


def sslyze_available() -> bool:
    return (BENCH_VENV / "bin" / "python").exists() and subprocess.run(
        [str(BENCH_VENV / "bin" / "python"), "-c", "import sslyze"], capture_output=True, check=False).returncode == 0


def sslyze(rng: Range, work: Path, *, count: int, concurrency: int) -> dict:
    endpoints = work / "sslyze.json"
    endpoints.write_text(json.dumps([[target["server_name"], target["port"]] for target in rng.targets(count)]))
    driver = work / "sslyze_driver.py"
    driver.write_text(SSLYZE_DRIVER)
    proc = subprocess.run([str(BENCH_VENV / "bin" / "python"), str(driver), str(endpoints), str(concurrency)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"sslyze failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["ok"] != count:
        sys.exit(f"sslyze: only {result['ok']} of {count} endpoints scanned")
    return {"concurrency": concurrency, "certificates": result["certificates"]}


def get_certificate_loop(rng: Range, work: Path, *, count: int) -> dict:
    playbook(work, "loop.yml", LOOP_PLAYBOOK, {"endpoints": [{"port": t["port"], "sni": t["server_name"]} for t in rng.targets(count)]})
    return {}


# --------------------------------------------------------------------------------------------
# memory


def rss_child(args: list[str]) -> None:
    """In a fresh process: run the cert_scan module's main() as Ansible would, print the peak RSS."""
    from unittest import mock  # pylint: disable=import-outside-toplevel

    from ansible.module_utils import basic  # pylint: disable=import-outside-toplevel

    from ansible_collections.certfleet.tls.plugins.modules import cert_scan  # pylint: disable=import-outside-toplevel

    module_args = json.loads(Path(args[0]).read_text())
    payload = json.dumps({"ANSIBLE_MODULE_ARGS": dict(module_args, _ansible_remote_tmp="/tmp",
                                                      _ansible_keep_remote_files=False)}).encode()
    output = Path(args[1])
    with mock.patch.object(basic, "_ANSIBLE_ARGS", payload), mock.patch.object(basic, "_ANSIBLE_PROFILE", "legacy", create=True):
        with open(output, "w", encoding="utf-8") as handle, mock.patch("sys.stdout", handle):
            try:
                cert_scan.main()
            except SystemExit:
                pass
    result = json.loads(output.read_text())
    print(json.dumps({"summary": result.get("summary"), "msg": result.get("msg"),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def rss_run(rng: Range, work: Path, *, count: int, concurrency: int, workers: int) -> dict:
    args = {"targets": rng.targets(count), "concurrency": concurrency, "workers": workers, "timeout": 10,
            "trusted_ca_sets": {"default": {"system": True, "certificates": [str(rng.root_pem)]}},
            "results_path": str(work / f"results-{count}.jsonl")}
    args_path = work / f"rss-{count}.json"
    args_path.write_text(json.dumps(args))
    proc = subprocess.run([sys.executable, __file__, "--rss-child", str(args_path), str(work / f"rss-{count}.out")],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"rss child failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    if not data["summary"] or data["summary"]["ok"] != count:
        sys.exit(f"rss child: {data}")
    with open(work / f"results-{count}.jsonl", encoding="utf-8") as handle:
        lines = sum(1 for _line in handle)
    return {"peak_rss_mb": round(data["peak_rss_mb"], 1), "worker_peak_rss_mb": round(data["worker_peak_rss_mb"], 1),
            "result_lines": lines}


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="TLS endpoints (default 1000)")
    parser.add_argument("--concurrency", type=int, default=64, help="cert_scan concurrency (default 64)")
    parser.add_argument("--workers", type=int, default=2, help="cert_scan worker processes (default 2, one per core)")
    parser.add_argument("--server-workers", type=int, default=1, help="server processes sharing the ports (default 1)")
    parser.add_argument("--sslyze-count", type=int, default=300, help="endpoints scanned by sslyze (default 300)")
    parser.add_argument("--sslyze-concurrency", default="10,32,64", help="sslyze settings tried; the best counts")
    parser.add_argument("--loop-count", type=int, default=100, help="endpoints fetched by get_certificate (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the engine and the module; the best counts (default 3)")
    parser.add_argument("--rss", action="store_true", help="memory mode: peak RSS at 1,000 and --rss-count endpoints")
    parser.add_argument("--rss-count", type=int, default=10000)
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.rss_child:
        rss_child(options.rss_child)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="certfleet-bench-scan-"))
    count = options.rss_count if options.rss else options.count
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; backend {_tls.resolve_backend('auto')}; "
          f"{count} endpoints, {min(count, MAX_DISTINCT)} distinct certificates, {options.server_workers} server process(es)",
          flush=True)
    rng = Range(work, count, options.server_workers)
    figures: dict = {"count": count, "load_average_start": os.getloadavg()[0]}
    try:
        if options.rss:
            for size in (min(1000, count), count):
                detail = measure(f"cert_scan module, {size} (rss)", size, rng,
                                 lambda size=size: rss_run(rng, work, count=size, concurrency=options.concurrency,
                                                           workers=options.workers))
                figures[f"rss_{size}"] = detail
            print(f"peak RSS: module process {figures[f'rss_{count}']['peak_rss_mb']} MB at {count} endpoints "
                  f"({figures[f'rss_{min(1000, count)}']['peak_rss_mb']} MB at {min(1000, count)}); each worker process "
                  f"{figures[f'rss_{count}']['worker_peak_rss_mb']} MB (target <= 200 MB)")
        else:
            figures["engine"] = measure("cert_scan engine (module_utils)", count, rng,
                                        lambda: engine(rng, concurrency=options.concurrency, workers=options.workers),
                                        repeat=options.repeat)
            figures["module"] = measure("cert_scan module (ansible-playbook wall)", count, rng,
                                        lambda: module(rng, work, concurrency=options.concurrency, workers=options.workers),
                                        repeat=options.repeat)
            if sslyze_available():
                best = None
                for setting in [int(value) for value in options.sslyze_concurrency.split(",")]:
                    figure = measure(f"sslyze certinfo (concurrency {setting})", options.sslyze_count, rng,
                                     lambda setting=setting: sslyze(rng, work, count=options.sslyze_count, concurrency=setting))
                    if best is None or figure["per_second"] > best["per_second"]:
                        best = figure
                figures["sslyze"] = best
            else:
                print(f"sslyze not found in {BENCH_VENV}: python3 -m venv {BENCH_VENV} && {BENCH_VENV}/bin/pip install sslyze")
            figures["get_certificate"] = measure("community.crypto.get_certificate loop", options.loop_count, rng,
                                                 lambda: get_certificate_loop(rng, work, count=options.loop_count))
            engine_rate, module_rate = figures["engine"]["per_second"], figures["module"]["per_second"]
            loop_rate = figures["get_certificate"]["per_second"]
            print(f"\ncert_scan engine {engine_rate:.0f} endpoints/s, median of {options.repeat} "
                  f"{figures['engine']['median_per_second']:.0f}/s (target >= 500); module via ansible-playbook "
                  f"{module_rate:.0f} endpoints/s wall, the task alone {figures['module']['task_per_second']:.0f}/s")
            if figures.get("sslyze"):
                sslyze_rate = figures["sslyze"]["per_second"]
                print(f"ratio vs sslyze (best concurrency {figures['sslyze']['concurrency']}, {sslyze_rate:.1f}/s): "
                      f"engine {engine_rate / sslyze_rate:.1f}x, module {module_rate / sslyze_rate:.1f}x (target >= 8x)")
            print(f"ratio vs get_certificate loop ({loop_rate:.1f}/s): engine {engine_rate / loop_rate:.0f}x, "
                  f"module {module_rate / loop_rate:.0f}x (target >= 100x)")
        figures["load_average_end"] = os.getloadavg()[0]
        out = OUT_DIR / f"bench_scan-{time.strftime('%Y%m%d-%H%M%S')}{'-rss' if options.rss else ''}.json"
        out.write_text(json.dumps(figures, indent=2))
        print(f"figures: {out}")
    finally:
        rng.stop()


if __name__ == "__main__":
    main()
