# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build tests/data/limbo/limbo-server.json.gz from an x509-limbo git repository, offline.

x509-limbo (https://github.com/C2SP/x509-limbo, Apache-2.0) generates its testcases with
Python (the ``limbo`` package); the real-world chains (``online::*``) are cached in the
repository as JSON. This script extracts the ``limbo`` package of one commit, runs the
generator with no network access, keeps the server-validation testcases and writes them,
trimmed to the fields the engine test reads, as gzip'd JSON.

The generator needs pydantic ~= 2.13 and cryptography ~= 46 (see upstream's pyproject.toml);
run this script with a throwaway virtual environment that has them, never the project's::

    python3 -m venv /tmp/limbo-venv
    /tmp/limbo-venv/bin/pip install 'pydantic~=2.13' 'cryptography~=46.0' 'pyyaml~=6.0' \\
        Jinja2 requests certifi pyOpenSSL
    git clone https://github.com/C2SP/x509-limbo /tmp/x509-limbo   # or any git dir of it
    /tmp/limbo-venv/bin/python tests/limbo/build_limbo.py --git-dir /tmp/x509-limbo/.git \\
        --commit <commit> --output tests/data/limbo/limbo-server.json.gz

The BetterTLS-derived testcases (``bettertls::*``) come from ``limbo/_assets/bettertls.json``,
a large generated asset (exported by Netflix's Go BetterTLS tool); when the commit's tree does
not carry its content the script leaves those testcases out and says so in the output's
``omitted`` field (tests/data/limbo/README.md records what the vendored file holds).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

_FIELDS = ("id", "description", "features", "importance", "conflicts_with", "trusted_certs", "untrusted_intermediates",
           "peer_certificate", "validation_time", "signature_algorithms", "key_usage", "extended_key_usage",
           "expected_result", "expected_peer_name", "max_chain_depth")

# Runs inside the extracted tree: the generator's own registry, as `limbo compile` fills it.
_GENERATE = r"""
import json, sys
from limbo import testcases
from limbo.testcases import online
try:
    from limbo.testcases import bettertls
    bettertls.register_testcases()
    omitted = []
except FileNotFoundError:
    omitted = ["bettertls::* (limbo/_assets/bettertls.json is not in the extracted tree)"]
online.register_testcases()
cases = [json.loads(factory().model_dump_json()) for _, factory in sorted(testcases.registry.items())]
with open(sys.argv[1], "w") as handle:
    json.dump({"omitted": omitted, "testcases": cases}, handle)
"""


def _git(git_dir: str, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True, stdout=subprocess.PIPE).stdout


def extract(git_dir: str, commit: str, target: str) -> list[str]:
    """Write the commit's limbo/ package under target; the paths whose content is not available."""
    missing = []
    for path in _git(git_dir, "ls-tree", "-r", "--name-only", commit, "limbo").decode().splitlines():
        result = subprocess.run(["git", "--git-dir", git_dir, "show", f"{commit}:{path}"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, check=False)
        if result.returncode != 0:
            missing.append(path)
            continue
        destination = os.path.join(target, path)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        with open(destination, "wb") as handle:
            handle.write(result.stdout)
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--git-dir", required=True, help="the .git directory (or bare repository) of x509-limbo")
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    commit = _git(args.git_dir, "rev-parse", args.commit).decode().strip()
    with tempfile.TemporaryDirectory(prefix="limbo-src-") as tree:
        missing = extract(args.git_dir, commit, tree)
        env = dict(os.environ, PYTHONPATH=tree, NO_PROXY="*", no_proxy="*", HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
        produced = os.path.join(tree, "generated.json")
        # The generator logs on stdout: the testcases go to a file.
        subprocess.run([sys.executable, "-c", _GENERATE, produced], cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
        with open(produced, encoding="utf-8") as handle:
            generated = json.load(handle)
    server = [{key: case.get(key) for key in _FIELDS} for case in generated["testcases"] if case["validation_kind"] == "SERVER"]
    document = {
        "upstream": "https://github.com/C2SP/x509-limbo",
        "commit": commit,
        "license": "Apache-2.0",
        "missing_assets": missing,
        "omitted": generated["omitted"],
        "testcases": server,
    }
    data = json.dumps(document, indent=None, sort_keys=True, separators=(",", ":")).encode()
    # mtime=0: the same commit always gives the same bytes.
    with open(args.output, "wb") as handle:
        with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0, compresslevel=9) as compressed:
            compressed.write(data)
    print(f"{args.output}: {len(server)} server testcases of {len(generated['testcases'])} from {commit}; "
          f"omitted: {generated['omitted'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
