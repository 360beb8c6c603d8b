#!/usr/bin/env bash
# Every test: set up, then pytest (unit + system), molecule (apache_ssl), ansible-test sanity,
# ansible-lint and ansible-test integration. Stops at the first failure with a non-zero exit code.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_and_load_env
started=$SECONDS

step "pytest: unit and system tests"
cd "$REPO"
# pytest exits 5 when it collects nothing; set -e turns that, like any failure, into a red run.
# --dist loadfile keeps each file's tests on one worker, in file order: a fleet's module fixture
# runs once. (loadgroup does not group under pytest 9 with xdist 3.8: it sets Node._nodeid, which
# pytest 9 no longer reads, so the two workers would each bring up the same fleet.)
python -m pytest -p no:cacheprovider -n 2 --dist loadfile tests/unit tests/system

"$REPO/scripts/molecule.sh"

"$REPO/scripts/sanity.sh"
"$REPO/scripts/lint.sh"
"$REPO/scripts/integration.sh"

step "all tests passed in $((SECONDS - started)) s"
