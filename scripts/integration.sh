#!/usr/bin/env bash
# ansible-test integration targets (tests/integration/targets/*) on this machine, against a
# clean copy of the collection. Extra arguments go to ansible-test (e.g. a target name).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_and_load_env

dest=$(make_collection_copy)
step "ansible-test integration"
cd "$dest"
# --local: the targets drive modules on the controller itself (localhost), which is where
# certfleet.tls runs its store, CA and scans. --python 3.11 for the same reason as sanity.sh.
ansible-test integration --local --python 3.11 --color yes "$@"
