#!/usr/bin/env bash
# The main job on the built-in default: set up, start a local fleet of 3 Apache hosts
# (tests/fleet/fleet: systemd containers on an internal podman network), then run
# certfleet.tls.site on the example inventory: keys and CSRs, issuance by the built-in private
# CA, rolling deployment with the apache_ssl role, and the verify table (host, site, served
# SHA-256 = intended, chain complete, trusted, days left).
# Extra arguments go to ansible-playbook (e.g. -v). FLEET_HOSTS changes the host count.
# The fleet keeps running afterwards; `tests/fleet/fleet down` removes it.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_and_load_env

step "local fleet: ${FLEET_HOSTS:-3} Apache hosts"
"$REPO/tests/fleet/fleet" image
"$REPO/tests/fleet/fleet" up "${FLEET_HOSTS:-3}"

step "certfleet.tls.site on examples/inventory + the fleet"
cd "$REPO/examples"
# The vault password file is the example's own; real inventories use --ask-vault-pass or a vault id.
ansible-playbook -i inventory/hosts.yml -i "${FLEET_CACHE:-$REPO/.cache/fleet}/inventory-ssh.yml" certfleet.tls.site \
    --vault-password-file vault-password.txt "$@"
