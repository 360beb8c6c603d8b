# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only fake of ansible.windows.win_copy (src on the controller, dest a Windows path) on the fake Windows host.

The fake host runs with the local connection, so src is readable here; dest maps to FAKE_WINDOWS_ROOT.
"""
from __future__ import annotations

import hashlib
import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils.fake_windows import host_path, host_state, log


def _sha1(path):
    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()  # nosec - change detection only, as win_copy does


def main():
    module = AnsibleModule(argument_spec={"src": {"type": "path", "required": True}, "dest": {"type": "str", "required": True},
                                          "force": {"type": "bool", "default": True}}, supports_check_mode=True)
    with host_state(write=False) as state:
        if state.get("faults", {}).get("copy_fails"):
            module.fail_json(msg=state["faults"]["copy_fails"])
    src, dest = module.params["src"], host_path(module.params["dest"])
    if not os.path.isfile(src):
        module.fail_json(msg=f"Cannot copy src file: '{src}' as it does not exist")
    checksum = _sha1(src)
    changed = not os.path.exists(dest) or (module.params["force"] and _sha1(dest) != checksum)
    if changed and not module.check_mode:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(src, dest)
        with host_state() as state:
            log(state, f"win_copy {module.params['dest']}")
    module.exit_json(changed=changed, dest=module.params["dest"], checksum=checksum)


if __name__ == "__main__":
    main()
