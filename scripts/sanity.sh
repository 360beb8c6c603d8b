#!/usr/bin/env bash
# Run every `ansible-test sanity` test on a clean copy of the collection, offline
# except for the package registries. Extra arguments go to ansible-test
# (e.g. --test pylint). Exits non-zero when a test fails.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_and_load_env

# ansible-test keeps its caches (pip bootstrap script, one venv per sanity test) under
# ~/.ansible/test and passes only HOME, PATH and a few others to what it runs. A home of
# our own keeps those caches under $CACHE; ANSIBLE_HOME (env.sh) is its .ansible.
test_home=$(dirname "$ANSIBLE_HOME")
mkdir -p "$ANSIBLE_HOME/test/cache" "$test_home/.config/pip"

step "pip settings for ansible-test's pip"
# ansible-test runs pip without our PIP_* variables and, with this home, without the user's
# pip.conf: write the effective settings (files, then PIP_* variables, which win) there.
python - "$test_home/.config/pip/pip.conf" <<'PY'
import ast, configparser, subprocess, sys
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                     capture_output=True, text=True, check=True).stdout
conf = configparser.ConfigParser(interpolation=None)
for line in sorted(out.splitlines(), key=lambda l: l.startswith(":env:")):
    name, _, value = line.partition("=")
    section, _, key = name.rpartition(".")
    section = "global" if section == ":env:" else section
    conf.setdefault(section, {})[key] = ast.literal_eval(value)
with open(sys.argv[1], "w") as f:
    conf.write(f)
PY
echo "    $test_home/.config/pip/pip.conf"

step "Offline stand-in for get-pip.py"
# ansible-test downloads get-pip.py from a host that is not reachable here. Name the
# stand-in after the pip version this ansible-test pins (get_venv_packages()).
reqs=$(python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" "$reqs")
[[ -n $pip_version ]] || die "cannot find the pip version ansible-test pins in $reqs"
get_pip=$ANSIBLE_HOME/test/cache/get_pip_${pip_version//./_}.py
cat >"$get_pip" <<'PY'
"""Offline stand-in for get-pip.py, written by scripts/sanity.sh.

Bootstraps pip from the wheel bundled with Python, then installs what ansible-test
asked for (the pinned pip) from the package index.
"""
import ensurepip
import os
import subprocess
import sys

# ensurepip drops PIP_* from os.environ and sets PIP_CONFIG_FILE=/dev/null: keep the
# environment from before, so the real pip install sees the pip configuration.
env = dict(os.environ)
ensurepip.bootstrap()
env.pop("PIP_CONFIG_FILE", None)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args], env=env))
PY
echo "    $get_pip"

dest=$(make_collection_copy)

step "ansible-test sanity"
cd "$dest"
# Default environment (the venv's Python, no delegation): --venv works too but rebuilds a
# controller venv in tests/output each run, and no sanity test needs it.
# --python 3.11: pyenv here has shims for Python versions that are not installed, which
# ansible-test would otherwise take for interpreters to test with.
# The filter drops pip's warning for each package the extra local indexes lack.
HOME=$test_home ansible-test sanity --color yes --python 3.11 "$@" 2>&1 |
    { grep -v "^WARNING: Location '.*' is ignored" || true; }
