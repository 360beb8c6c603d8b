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

# Fresh copy of what git would ship at $CACHE/ansible-test/ansible_collections/certfleet/tls
# (where ansible-test wants a collection); prints its path. Used by sanity and integration.
make_collection_copy() {
    step "Copy of the collection for ansible-test" >&2
    local root=$CACHE/ansible-test
    local dest=$root/ansible_collections/certfleet/tls
    rm -rf "$root"
    mkdir -p "$dest"
    # Only what git would ship (tracked + untracked, not ignored): .cache and outputs stay out.
    (cd "$REPO" && git ls-files -z -co --exclude-standard |
        while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -xf - -C "$dest"
    echo "    $dest ($(find "$dest" -type f | wc -l) files)" >&2
    # ansible-test lists files with git from the nearest .git upwards, which would be the repo
    # (where .cache is ignored, so it would see no file at all): give the copy its own.
    git -C "$dest" init -q
    # ansible-test sets ANSIBLE_COLLECTIONS_PATH to the copy's root alone, so the collections
    # galaxy.yml depends on must sit beside it: link them from where ansible finds them.
    (cd "$dest" && python - "$root" >&2 <<'PY'
import os, sys, yaml
with open("galaxy.yml") as f:
    deps = yaml.safe_load(f).get("dependencies") or {}
for fqcn in deps:
    rel = os.path.join("ansible_collections", *fqcn.split("."))
    found = [os.path.join(p, rel) for p in os.environ["ANSIBLE_COLLECTIONS_PATH"].split(":")
             if os.path.isdir(os.path.join(p, rel))]
    if not found:
        sys.exit(f"ERROR: {fqcn}, a dependency in galaxy.yml, is not installed")
    os.makedirs(os.path.dirname(os.path.join(sys.argv[1], rel)), exist_ok=True)
    os.symlink(found[0], os.path.join(sys.argv[1], rel))
    print(f"    dependency {fqcn}: {found[0]}")
PY
    )
    echo "$dest"
}
