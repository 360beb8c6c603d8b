#!/usr/bin/env python
"""Benchmark: certfleet.tls.deploy (apache_ssl role) vs a hand-written CA-guide playbook on a fleet.

On an N-host fleet of systemd containers (tests/fleet/fleet, a benchmark-private FLEET_CACHE
and host prefix, so the default fleet in .cache/fleet is never touched) it measures, in the same
run,

  (a) certfleet.tls.deploy, first deploy          (install check, a2enmod, one transaction for
  (b) certfleet.tls.deploy, idempotent re-run      keys/certs/vhosts, apachectl -t, graceful
                                                   reload, TLS deploy check, history events)
  (c) benchmarks/handwritten_deploy.yml, first     (Cybertrust's Apache installation guide literally: copy key, certificate
  (d) benchmarks/handwritten_deploy.yml, re-run     and chain per site, a2enmod, lineinfile,
                                                    template, a2ensite, restart handler)

plus the start-up cost of ansible-playbook (an empty play, same inventories) as an anchor.
Every (a)/(c) runs on freshly created hosts; (b)/(d) follow on the same hosts. The order of the
two playbooks alternates between repetitions. Both deploy the same certificates (the example
inventory's private-CA definitions, issued once, untimed, by certfleet.tls.request into a
temporary copy of examples/inventory) to the same two SNI sites per host.

Checks, so that the comparison is honest: after every first deploy a TLS handshake from this
machine to every host:port of every site (its name as SNI, chain verified against the store's
private root) must serve a leaf whose SHA-256 equals the store's cert.pem; after every re-run
PLAY RECAP must show changed=0 (and failed=0, unreachable=0) for every host. Any failure exits
non-zero.

    .cache/venv/bin/python benchmarks/bench_deploy.py                 # 8 hosts, --repeat 3
    .cache/venv/bin/python benchmarks/bench_deploy.py --profile       # + per-task times of both re-runs

Needs root (rootful podman), the fleet image (tests/fleet/fleet image) and the venv. Only the
fleet's internal network and loopback are used. The bench fleet is removed at the end unless
--keep.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
# The tests' helper makes .cache/collections/ansible_collections/certfleet/tls point here.
sys.path.insert(0, str(REPO_ROOT / "tests"))
from collection_link import collections_root  # noqa: E402  pylint: disable=wrong-import-position

FLEET = REPO_ROOT / "tests" / "fleet" / "fleet"
FLEET_CACHE = REPO_ROOT / ".cache" / "fleet-bench"
PREFIX = "bench"
EXAMPLE = REPO_ROOT / "examples" / "inventory"
VAULT_PASSWORD = REPO_ROOT / "examples" / "vault-password.txt"
HANDWRITTEN = REPO_ROOT / "benchmarks" / "handwritten_deploy.yml"
OUT_DIR = REPO_ROOT / "benchmarks" / "out"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
EMPTY_PLAY = """- name: Empty play (ansible-playbook start-up, inventories and vault only)
  hosts: webservers
  gather_facts: false
  tasks: []
"""
PHASES = [("certfleet", "first"), ("certfleet", "rerun"), ("handwritten", "first"), ("handwritten", "rerun")]
LABELS = {
    ("certfleet", "first"): "(a) certfleet.tls.deploy first deploy",
    ("certfleet", "rerun"): "(b) certfleet.tls.deploy re-run",
    ("handwritten", "first"): "(c) handwritten CA-guide first deploy",
    ("handwritten", "rerun"): "(d) handwritten CA-guide re-run",
    ("anchor", "empty"): "ansible-playbook empty play",
}


def fail(message: str) -> None:
    print(f"\nFAILED: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


# --------------------------------------------------------------------------------------------
# the bench fleet


def fleet(*args: str) -> str:
    env = dict(os.environ, FLEET_CACHE=str(FLEET_CACHE))
    proc = subprocess.run([str(FLEET), *args], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        fail(f"tests/fleet/fleet {' '.join(args)} (FLEET_CACHE={FLEET_CACHE}):\n{proc.stdout}{proc.stderr}")
    return (proc.stdout + proc.stderr).strip().splitlines()[-1] if (proc.stdout + proc.stderr).strip() else ""


def fresh_fleet(count: int) -> str:
    """Removes the bench hosts and creates them again: new containers from the image, nothing deployed."""
    fleet("down", "--name", PREFIX)
    return fleet("up", str(count), "--name", PREFIX)


def fleet_hosts() -> dict[str, str]:
    data = yaml.safe_load((FLEET_CACHE / "inventory-ssh.yml").read_text())
    hosts = data["all"]["children"]["fleet"].get("hosts") or {}
    return {name: values["fleet_ip"] for name, values in hosts.items() if name.startswith(PREFIX)}


# --------------------------------------------------------------------------------------------
# ansible-playbook runs


class Runner:
    def __init__(self, work: Path, forks: int) -> None:
        self.work = work
        self.forks = forks
        self.bin = Path(sys.executable).parent / "ansible-playbook"
        self.inventory = work / "inventory"
        self.base_env = dict(
            os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([str(collections_root())] + [
                p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]),
            ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_HOME=str(work / "ansible-home"),
            ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"), ANSIBLE_RETRY_FILES_ENABLED="0")
        self.base_env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
        self.control_dir = work / "cp"

    def command(self, playbook: str, extra: list[str] | None = None) -> list[str]:
        return [str(self.bin), "-i", str(self.inventory / "hosts.yml"), "-i", str(FLEET_CACHE / "inventory-ssh.yml"),
                "--vault-password-file", str(VAULT_PASSWORD), "-f", str(self.forks), playbook, *(extra or [])]

    def new_connections(self, tag: str) -> None:
        """Closes the ssh masters of the previous hosts and gives the next ones their own ControlPath dir:
        a master of a removed container at the same IP must not be reused."""
        self.close_connections()
        self.control_dir = self.work / f"cp-{tag}"
        self.control_dir.mkdir()

    def close_connections(self) -> None:
        if not self.control_dir.is_dir():
            return
        for sock in self.control_dir.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "bench"], capture_output=True, check=False)

    def run(self, label: str, playbook: str, extra: list[str] | None = None, env: dict | None = None) -> tuple[float, str]:
        command = self.command(playbook, extra)
        run_env = dict(self.base_env, ANSIBLE_SSH_CONTROL_PATH_DIR=str(self.control_dir), **(env or {}))
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=self.work, env=run_env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            fail(f"{label} exited {proc.returncode}: {shlex.join(command)}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}")
        return seconds, proc.stdout


def recap(output: str) -> dict[str, dict[str, int]]:
    part = output[output.rfind("PLAY RECAP"):]
    return {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)), "unreachable": int(m.group(4)),
                         "failed": int(m.group(5))} for m in RECAP.finditer(part)}


def check_recap(label: str, output: str, hosts: dict[str, str], *, unchanged: bool) -> dict[str, dict[str, int]]:
    rows = recap(output)
    missing = sorted(set(hosts) - set(rows))
    if missing:
        fail(f"{label}: hosts missing from PLAY RECAP: {missing}\n{output[-3000:]}")
    bad = {host: row for host, row in rows.items() if row["failed"] or row["unreachable"] or (unchanged and row["changed"])}
    if bad:
        what = "changed/failed/unreachable" if unchanged else "failed/unreachable"
        fail(f"{label}: {what} in PLAY RECAP: {bad}\n{output[-6000:]}")
    return rows


# --------------------------------------------------------------------------------------------
# the deploy check from this machine


def served_leaf(ip: str, port: int, name: str, root_pem: Path, timeout: float = 5.0) -> bytes:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(root_pem))
    context.check_hostname = True
    with socket.create_connection((ip, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return tls.getpeercert(binary_form=True)


def check_served(label: str, hosts: dict[str, str], sites: list[dict], store: Path, root_pem: Path) -> int:
    """Every site of every host serves the store's certificate (verified chain, name), retried up to 10 s."""
    import hashlib  # pylint: disable=import-outside-toplevel

    checked = 0
    for host, ip in sorted(hosts.items()):
        for site in sites:
            wanted = hashlib.sha256(ssl.PEM_cert_to_DER_cert(
                (store / "certs" / site["certificate"] / "cert.pem").read_text())).hexdigest()
            deadline, error, got = time.monotonic() + 10, "", ""
            while True:
                try:
                    got = hashlib.sha256(served_leaf(ip, site["port"], site["server_name"], root_pem)).hexdigest()
                    if got == wanted:
                        break
                    error = f"served {got}, store has {wanted}"
                except (OSError, ssl.SSLError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                if time.monotonic() > deadline:
                    fail(f"{label}: {host} ({ip}:{site['port']}, SNI {site['server_name']}): {error}")
                time.sleep(0.5)
            checked += 1
    return checked


# --------------------------------------------------------------------------------------------
# profile_tasks: per-task wall time, summed over batches (serial) and hosts running in parallel


TASK_LINE = re.compile(r"^(TASK|RUNNING HANDLER) \[(.*?)\] \*+$")
TIME_LINE = re.compile(r"^\w+ \d+ \w+ \d{4}\s+[\d:]+ [+-]\d{4} \((\d+):(\d+):([\d.]+)\)")


def task_times(output: str) -> list[tuple[str, float, int]]:
    """profile_tasks prints, under each header, the time of the task before it: (name, seconds, batches)."""
    totals: dict[str, list] = {}
    previous = owed = None
    for line in output.splitlines():
        match = TASK_LINE.match(line)
        if match or line.startswith("PLAY [") or line.startswith("PLAY RECAP"):
            owed, previous = previous, (match.group(2) if match else None)
            continue
        match = TIME_LINE.match(line)
        if match and owed:
            entry = totals.setdefault(owed, [0.0, 0])
            entry[0] += int(match.group(1)) * 3600 + int(match.group(2)) * 60 + float(match.group(3))
            entry[1] += 1
            owed = None
    return sorted(((name, value[0], value[1]) for name, value in totals.items()), key=lambda row: -row[1])


# --------------------------------------------------------------------------------------------


def prepare_inventory(work: Path, runner: Runner) -> tuple[Path, list[dict]]:
    """Temporary copy of examples/inventory (without its store) + the bench hosts; the store is issued once."""
    shutil.copytree(EXAMPLE, runner.inventory, ignore=shutil.ignore_patterns("cert_store"))
    seconds, _out = runner.run("certfleet.tls.request (store preparation)", "certfleet.tls.request")
    store = runner.inventory / "cert_store"
    definitions = {d["name"]: d for d in yaml.safe_load(
        (runner.inventory / "group_vars" / "all" / "certificates.yml").read_text())["certfleet_certificates"]}
    site_vars = yaml.safe_load((runner.inventory / "group_vars" / "webservers" / "sites.yml").read_text())
    sites = [{"name": s["name"], "certificate": s["certificate"], "port": int(s.get("port", 443)),
              "server_name": s.get("server_name") or definitions[s["certificate"]]["common_name"]}
             for s in site_vars["apache_ssl_sites"]]
    for site in sites:
        if not (store / "certs" / site["certificate"] / "cert.pem").is_file():
            fail(f"the store has no certificate for {site['certificate']} after certfleet.tls.request")
    print(f"store prepared by certfleet.tls.request in {seconds:.1f} s (untimed): {store}", flush=True)
    return store, sites


def summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def main() -> None:  # pylint: disable=too-many-locals,too-many-statements
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=8, help="fleet hosts (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each phase; the median counts (default 3)")
    parser.add_argument("--forks", type=int, default=8, help="ansible-playbook -f, same for both (default 8)")
    parser.add_argument("--keep", action="store_true", help="leave the bench fleet up at the end")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, one more first deploy + re-run of each with ansible.posix.profile_tasks; "
                             "prints the re-runs' per-task times")
    options = parser.parse_args()
    if os.geteuid() != 0:
        fail("needs root (rootful podman for the fleet)")
    command_line = shlex.join([sys.executable, *sys.argv])
    loads = [os.getloadavg()]
    print(f"command: {command_line}")
    print(f"machine: {os.cpu_count()} CPUs, load average {'/'.join(f'{v:.2f}' for v in loads[0])} (1/5/15 min); "
          f"{options.hosts} hosts ({PREFIX}1..{PREFIX}{options.hosts}, FLEET_CACHE={FLEET_CACHE}, ssh inventory), "
          f"forks {options.forks}, repeat {options.repeat}", flush=True)
    print("handwritten: Cybertrust's Apache installation guide literally - copy key/cert/chain, a2enmod (LoadModule lines), lineinfile Listen, "
          "template vhost, a2ensite (Include), restart as a handler notified by changes (kindest reading)", flush=True)

    fleet("image")
    work = Path(tempfile.mkdtemp(prefix="certfleet-bench-deploy-"))
    runner = Runner(work, options.forks)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in PHASES + [("anchor", "empty")]}
    figures: dict = {"command": command_line, "hosts": options.hosts, "forks": options.forks, "repeat": options.repeat,
                     "runs": []}
    try:
        print(fresh_fleet(options.hosts), flush=True)
        runner.new_connections("prepare")
        store, sites = prepare_inventory(work, runner)
        root_pem = store / "ca" / "example-intranet" / "root.pem"
        empty = work / "empty.yml"
        empty.write_text(EMPTY_PLAY)
        playbooks = {"certfleet": ["certfleet.tls.deploy"],
                     "handwritten": [str(HANDWRITTEN), "-e", f"handwritten_store={store}"]}

        def pair(kind: str, tag: str, env: dict | None = None) -> dict:
            up = fresh_fleet(options.hosts)
            hosts = fleet_hosts()
            if len(hosts) != options.hosts:
                fail(f"bench fleet has {len(hosts)} hosts, wanted {options.hosts}: {up}")
            runner.new_connections(tag)
            extra = list(playbooks[kind][1:])
            if kind == "handwritten":
                key_dir = work / f"keys-{tag}"   # decrypted keys (the guide's key decryption step), fresh for every first deploy
                key_dir.mkdir(mode=0o700)
                extra += ["-e", f"handwritten_key_dir={key_dir}"]
            result = {"kind": kind, "tag": tag}
            loads.append(os.getloadavg())
            result["load_before"] = loads[-1][0]
            first, out1 = runner.run(f"{kind} first deploy", playbooks[kind][0], extra, env)
            rows1 = check_recap(f"{kind} first deploy", out1, hosts, unchanged=False)
            served = check_served(f"{kind} first deploy", hosts, sites, store, root_pem)
            rerun, out2 = runner.run(f"{kind} re-run", playbooks[kind][0], extra, env)
            check_recap(f"{kind} re-run", out2, hosts, unchanged=True)
            loads.append(os.getloadavg())
            changed = sum(row["changed"] for host, row in rows1.items() if host in hosts)
            result.update(first=round(first, 2), rerun=round(rerun, 2), served_ok=served, first_changed=changed,
                          load_after=loads[-1][0], output_rerun=out2)
            print(f"  {tag:14s} {kind:11s} first {first:6.1f} s ({changed} changed, {served} handshakes = store)   "
                  f"re-run {rerun:6.1f} s (0 changed)   load {result['load_before']:.2f} -> {result['load_after']:.2f}",
                  flush=True)
            return result

        for rep in range(options.repeat):
            anchor, _out = runner.run("empty play", str(empty))
            times[("anchor", "empty")].append(anchor)
            print(f"  run {rep + 1}: empty play {anchor:.2f} s", flush=True)
            order = ["certfleet", "handwritten"] if rep % 2 == 0 else ["handwritten", "certfleet"]
            for kind in order:
                result = pair(kind, f"run{rep + 1}-{kind}")
                result.pop("output_rerun")
                times[(kind, "first")].append(result["first"])
                times[(kind, "rerun")].append(result["rerun"])
                figures["runs"].append(result)

        profiles = {}
        if options.profile:
            print("\nprofile (ansible.posix.profile_tasks, one more pair each, not in the table):", flush=True)
            for kind in ("certfleet", "handwritten"):
                result = pair(kind, f"profile-{kind}", {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
                                                        "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all"})
                profiles[kind] = {"rerun": result["rerun"], "tasks": task_times(result["output_rerun"])}

        loads.append(os.getloadavg())
        med = {key: summary(values) for key, values in times.items()}
        print(f"\ncommand: {command_line}")
        print(f"{options.hosts} hosts x {len(sites)} SNI sites ({', '.join(s['name'] + ':' + str(s['port']) for s in sites)}), "
              f"forks {options.forks}, ssh + pipelining, median of {options.repeat} (order alternated)")
        print(f"{'phase':40s} {'median s':>9s} {'min s':>7s} {'max s':>7s}   runs")
        for key in PHASES + [("anchor", "empty")]:
            median, low, high = med[key]
            print(f"{LABELS[key]:40s} {median:9.2f} {low:7.2f} {high:7.2f}   {', '.join(f'{v:.1f}' for v in times[key])}")
        rerun_ratio = med[("certfleet", "rerun")][0] / med[("handwritten", "rerun")][0]
        first_ratio = med[("certfleet", "first")][0] / med[("handwritten", "first")][0]
        anchor = med[("anchor", "empty")][0]
        net = {key: med[key][0] - anchor for key in PHASES}
        print(f"ratio re-run        certfleet / handwritten = {rerun_ratio:.2f}  (target <= 0.5) "
              f"{'MET' if rerun_ratio <= 0.5 else 'NOT MET'}")
        print(f"ratio first deploy  certfleet / handwritten = {first_ratio:.2f}  (target <= 1.0, certfleet also tests the "
              f"config and verifies by handshake) {'MET' if first_ratio <= 1.0 else 'NOT MET'}")
        print(f"minus the empty play ({anchor:.2f} s): re-run {net[('certfleet', 'rerun')]:.1f} / "
              f"{net[('handwritten', 'rerun')]:.1f} s = {net[('certfleet', 'rerun')] / net[('handwritten', 'rerun')]:.2f}, "
              f"first {net[('certfleet', 'first')]:.1f} / {net[('handwritten', 'first')]:.1f} s = "
              f"{net[('certfleet', 'first')] / net[('handwritten', 'first')]:.2f}")
        print("checks: every first deploy served the store's leaf (SHA-256, chain verified to the private root, SNI name) "
              f"on all {options.hosts} x {len(sites)} endpoints; every re-run changed=0 on every host")
        print("handwritten restart: a handler notified by the changes (the kindest reading of step C of that guide)")
        print(f"load average (1 min): start {loads[0][0]:.2f}, end {loads[-1][0]:.2f}, max seen {max(l[0] for l in loads):.2f} "
              f"on {os.cpu_count()} CPUs")
        if profiles:
            for kind, profile in profiles.items():
                print(f"\nprofile of the {kind} re-run ({profile['rerun']:.1f} s), task wall time summed over batches:")
                for name, seconds, count in profile["tasks"]:
                    print(f"  {seconds:6.2f} s  {name}{f'  (x{count} batches)' if count > 1 else ''}")
        figures.update({"seconds": {f"{k[0]}_{k[1]}": v for k, v in times.items()},
                        "median": {f"{k[0]}_{k[1]}": v[0] for k, v in med.items()},
                        "ratio_rerun": rerun_ratio, "ratio_first": first_ratio, "load_averages": loads,
                        "profiles": {k: {"rerun": v["rerun"], "tasks": v["tasks"]} for k, v in profiles.items()}})
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        out = OUT_DIR / f"bench_deploy-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(figures, indent=2))
        print(f"figures: {out}")
    finally:
        runner.close_connections()
        if options.keep:
            print(f"bench fleet kept: FLEET_CACHE={FLEET_CACHE} tests/fleet/fleet down --name {PREFIX}", flush=True)
        else:
            print(fleet("down", "--name", PREFIX), flush=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
