#!/usr/bin/env bash
# ansible-lint, production profile (.ansible-lint), offline, on the whole repository.
# Extra arguments go to ansible-lint (e.g. a path, or --fix). Exits non-zero on a violation.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_and_load_env

# The example inventory keeps its store passphrase in a vault whose (example) password is
# in the repository: with it, ansible-lint checks the vaulted file instead of skipping it.
example_vault_password=$REPO/examples/vault-password.txt
if [[ -z ${ANSIBLE_VAULT_PASSWORD_FILE:-} && -f $example_vault_password ]]; then
    export ANSIBLE_VAULT_PASSWORD_FILE=$example_vault_password
fi

step "ansible-lint (production profile, offline)"
cd "$REPO"
ansible-lint --offline --profile production "$@"
