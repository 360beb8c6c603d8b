#!/usr/bin/env bash
# Every test: set up, then pytest (unit + system), ansible-test sanity, ansible-lint and
# ansible-test integration. Stops at the first failure with a non-zero exit code.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_and_load_env
started=$SECONDS

step "pytest: unit and system tests"
cd "$REPO"
# pytest exits 5 when it collects nothing; set -e turns that, like any failure, into a red run.
python -m pytest -p no:cacheprovider -n 2 tests/unit tests/system

"$REPO/scripts/sanity.sh"
"$REPO/scripts/lint.sh"
"$REPO/scripts/integration.sh"

step "all tests passed in $((SECONDS - started)) s"
