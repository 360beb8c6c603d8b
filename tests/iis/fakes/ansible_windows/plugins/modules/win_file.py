# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only fake of ansible.windows.win_file (state absent only) on the fake Windows host."""
from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils.fake_windows import host_path


def main():
    module = AnsibleModule(argument_spec={"path": {"type": "str", "required": True}, "state": {"type": "str", "choices": ["absent"], "required": True}},
                           supports_check_mode=True)
    path = host_path(module.params["path"])
    changed = os.path.exists(path)
    if changed and not module.check_mode:
        os.unlink(path)
    module.exit_json(changed=changed)


if __name__ == "__main__":
    main()
