# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only fake of certfleet.tls.win_iis_facts (same options and return) on the fake Windows host."""
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils.fake_windows import STORES, has_private_key, host_state


def main():
    module = AnsibleModule(argument_spec={"stores": {"type": "list", "elements": "str", "default": list(STORES)},
                                          "max_certificates": {"type": "int", "default": 2000}},
                           supports_check_mode=True)
    with host_state(write=False) as state:
        if state.get("faults", {}).get("facts_fail"):
            module.fail_json(msg=state["faults"]["facts_fail"])
        certificates = {}
        for store in module.params["stores"]:
            certificates[store] = [{"thumbprint": entry["thumbprint"], "subject": entry["subject"], "issuer": entry["issuer"],
                                    "not_after": entry["not_after"], "has_private_key": has_private_key(state, entry),
                                    "friendly_name": entry.get("friendly_name", "")}
                                   for entry in state["stores"].get(store, [])][:module.params["max_certificates"]]
        iis = {"os": state["os"], "iis_installed": True, "certificates": certificates,
               "sites": [{"name": site["name"], "id": site["id"],
                          "bindings": [dict(binding, certificate_store=binding.get("certificate_store") or ("My" if binding.get("certificate_hash") else None))
                                       for binding in site["bindings"]]} for site in state["sites"]],
               "sslcert": state["sslcert"]}
    module.exit_json(changed=False, iis=iis)


if __name__ == "__main__":
    main()
