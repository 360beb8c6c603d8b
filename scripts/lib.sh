# shellcheck shell=bash
# Shared by the scripts in scripts/: paths and messages. Source it, don't run it.
# CERTFLEET_CACHE moves every cache (venv, collections link, ansible-test copy);
# the default is the git-ignored .cache/ of the checkout.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CERTFLEET_CACHE:-$REPO/.cache}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
# shellcheck disable=SC2034  # used by the scripts that source this file
VENV=$CACHE/venv

step() { printf '==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Make sure the machine and the venv are ready, then load .cache/env.sh.
# setup.sh returns in well under a second when nothing is missing.
setup_and_load_env() {
    "$REPO/scripts/setup.sh"
    # shellcheck source=/dev/null
    source "$CACHE/env.sh"
}
