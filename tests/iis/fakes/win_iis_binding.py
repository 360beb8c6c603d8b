# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only fake of certfleet.tls.win_iis_binding: the documented behaviour of win_iis_binding.ps1 (one commit
per binding, sslFlags above bit 2 kept, http.sys checked after each commit, rollback record) on the fake host."""
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils import fake_windows as fw

BINDING = {"site": {"type": "str", "required": True}, "ip": {"type": "str", "default": "*"}, "port": {"type": "int", "default": 443},
           "host": {"type": "str", "default": ""}, "sni": {"type": "bool", "default": True}, "ssl_flags": {"type": "int"},
           "previous_thumbprint": {"type": "str"}, "previous_ssl_flags": {"type": "int"}, "action": {"type": "str"}}
RECORD = {"site": {"type": "str", "required": True}, "ip": {"type": "str", "default": "*"}, "port": {"type": "int", "default": 443},
          "host": {"type": "str", "default": ""}, "existed": {"type": "bool", "default": True},
          "previous_thumbprint": {"type": "str"}, "previous_ssl_flags": {"type": "int", "default": 0}, "thumbprint": {"type": "str"}}


class Failed(Exception):
    pass


def main():  # pylint: disable=too-many-locals,too-many-statements
    module = AnsibleModule(argument_spec={
        "state": {"type": "str", "choices": ["present", "rollback"], "default": "present"},
        "thumbprint": {"type": "str"},
        "certificate_store": {"type": "str", "default": "My"},
        "bindings": {"type": "list", "elements": "dict", "default": [], "options": BINDING},
        "record": {"type": "list", "elements": "dict", "default": [], "options": RECORD},
        "verify_http_sys": {"type": "bool", "default": True},
    }, required_if=[("state", "present", ("thumbprint",))], supports_check_mode=True)
    p, check = module.params, module.check_mode
    result = {"changed": False, "record": [], "bindings": []}
    before, after = [], []

    def find_binding(state, target):
        site = next((site for site in state["sites"] if site["name"] == target["site"]), None)
        if site is None:
            raise Failed(f"IIS has no site named '{target['site']}'")
        for binding in site["bindings"]:
            if binding["protocol"] == "https" and (binding["ip"], binding["port"], binding["host"]) == (target["ip"], target["port"], target["host"]):
                return site, binding
        return site, None

    def set_binding(state, target):
        """One binding, one commit; the fault binding_update_fails makes that commit fail, http_sys_stale leaves http.sys behind."""
        site, binding = find_binding(state, target)
        info = f"{target['ip']}:{target['port']}:{target['host']}"
        entry = {"site": target["site"], "ip": target["ip"], "port": target["port"], "host": target["host"],
                 "existed": binding is not None,
                 "previous_thumbprint": binding.get("certificate_hash") if binding else None,
                 "previous_ssl_flags": binding["ssl_flags"] if binding else 0,
                 "thumbprint": target["thumbprint"], "ssl_flags": target["ssl_flags"]}
        if target["remove"]:
            changed = binding is not None
        else:
            changed = binding is None or binding.get("certificate_hash") != target["thumbprint"] or binding["ssl_flags"] != target["ssl_flags"]
        before.append({"binding": f"{target['site']} https/{info}", "thumbprint": entry["previous_thumbprint"], "ssl_flags": entry["previous_ssl_flags"]})
        after.append({"binding": f"{target['site']} https/{info}", "thumbprint": None if target["remove"] else target["thumbprint"],
                      "ssl_flags": None if target["remove"] else target["ssl_flags"]})
        entry["changed"] = changed
        if changed and not check:
            faults = state.setdefault("faults", {})
            failing = faults.get("binding_update_fails")
            if failing and failing.get("host") == target["host"] and failing.get("state", "present") == p["state"]:
                raise Failed(f"Updating the binding {info} of site '{target['site']}' failed: "
                             "The process cannot access the file because it is being used by another process. (0x80070020)")
            if target["remove"]:
                site["bindings"].remove(binding)
                fw.set_sslcert(state, binding, None)
            else:
                if binding is None:
                    binding = {"protocol": "https", "ip": target["ip"], "port": target["port"], "host": target["host"],
                               "ssl_flags": target["ssl_flags"], "certificate_hash": None, "certificate_store": p["certificate_store"]}
                    site["bindings"].append(binding)
                old = dict(binding)
                if target["thumbprint"]:
                    binding["certificate_hash"] = target["thumbprint"]
                    binding["certificate_store"] = p["certificate_store"]
                binding["ssl_flags"] = target["ssl_flags"]
                if old["ssl_flags"] != binding["ssl_flags"] and old.get("certificate_hash"):
                    fw.set_sslcert(state, old, None)
                if not faults.get("http_sys_stale"):
                    fw.set_sslcert(state, binding, binding["certificate_hash"])
            fw.log(state, f"commit {p['state']} {target['site']} {info} -> {target['thumbprint']} flags {target['ssl_flags']}")
        if changed:
            result["changed"] = True
        if target["record"]:
            result["record"].append(entry)
        result["bindings"].append(entry)
        if not check and not target["remove"] and target["thumbprint"] and p["verify_http_sys"] and not target["ssl_flags"] & 2:
            field, value = fw.sslcert_key({"ip": target["ip"], "port": target["port"], "host": target["host"], "ssl_flags": target["ssl_flags"]})
            served = next((item["thumbprint"] for item in state["sslcert"] if item.get(field) == value), None)
            if served is None and field == "host_port":
                served = next((item["thumbprint"] for item in state["sslcert"] if item.get("ip_port") == f"0.0.0.0:{target['port']}"), None)
            if served != target["thumbprint"]:
                return (f"The binding {info} of site '{target['site']}' is set to {target['thumbprint']} but http.sys serves {served} "
                        "on that endpoint (netsh http show sslcert)")
        return None

    # Each commit is its own write of the state: a later failure leaves the earlier bindings switched.
    try:
        if p["state"] == "present":
            thumbprint = fw.normalise(p["thumbprint"])
            with fw.host_state(write=False) as state:
                certificate = fw.find(state, p["certificate_store"], thumbprint) if p["certificate_store"] in state["stores"] else None
                if not check and (certificate is None or not fw.has_private_key(state, certificate)):
                    raise Failed(f"The certificate {thumbprint} is not in LocalMachine\\{p['certificate_store']} with its private key: "
                                 "no binding was changed")
            for item in p["bindings"]:
                wanted = item["ssl_flags"] if item["ssl_flags"] is not None else (1 if item["sni"] else 0)
                if wanted & 1 and not item["host"]:
                    raise Failed(f"The binding of site '{item['site']}' on port {item['port']} uses SNI but has no host name")
                with fw.host_state(write=not check) as state:
                    _site, current = find_binding(state, dict(item))
                    if current is not None:
                        wanted = (wanted & 3) | (current["ssl_flags"] & ~3)
                    problem = set_binding(state, {"site": item["site"], "ip": item["ip"], "port": item["port"], "host": item["host"],
                                                  "thumbprint": thumbprint, "ssl_flags": wanted, "remove": False, "record": True})
                if problem:
                    raise Failed(problem)
        else:
            for item in p["record"]:
                with fw.host_state(write=not check) as state:
                    problem = set_binding(state, {"site": item["site"], "ip": item["ip"], "port": item["port"], "host": item["host"],
                                                  "thumbprint": fw.normalise(item["previous_thumbprint"]),
                                                  "ssl_flags": item["previous_ssl_flags"], "remove": not item["existed"], "record": False})
                if problem:
                    raise Failed(problem)
    except Failed as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(diff={"before": {"bindings": before}, "after": {"bindings": after}}, **result)


if __name__ == "__main__":
    main()
