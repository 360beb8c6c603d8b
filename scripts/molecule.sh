#!/usr/bin/env bash
# molecule test for the apache_ssl role (molecule/default): two hosts from the test fleet's image
# on the fleet's internal network, with podman configured by tests/fleet/fleet. A fleet cache of
# its own (.cache/fleet-molecule), so the default fleet and the system tests' fleet stay untouched.
#   ./scripts/molecule.sh [molecule test arguments]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_and_load_env

export FLEET_CACHE=$CACHE/fleet-molecule
fleet=$REPO/tests/fleet/fleet
step "molecule: image and network (FLEET_CACHE=$FLEET_CACHE)"
"$fleet" image
"$fleet" network >/dev/null
# podman (the driver and the containers.podman connection) with the fleet's configuration
eval "$("$fleet" env)"
cd "$REPO"
step "molecule test (apache_ssl: converge, idempotence, verify)"
started=$SECONDS
molecule test --scenario-name default "$@"
step "molecule test passed in $((SECONDS - started)) s"
