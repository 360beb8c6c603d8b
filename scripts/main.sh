#!/usr/bin/env bash
# The main job on the built-in default: set up, then run certfleet.tls.request on the
# example inventory (keys + CA-checked CSRs in examples/inventory/cert_store).
# Extra arguments go to ansible-playbook (e.g. --check --diff, -v).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_and_load_env

step "certfleet.tls.request on examples/inventory"
cd "$REPO/examples"
# The vault password file is the example's own; real inventories use --ask-vault-pass or a vault id.
ansible-playbook -i inventory certfleet.tls.request --vault-password-file vault-password.txt "$@"
