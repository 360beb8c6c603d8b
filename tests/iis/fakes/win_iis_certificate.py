# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only fake of certfleet.tls.win_iis_certificate: the documented behaviour of win_iis_certificate.ps1
(same options, same return) on the fake Windows host's JSON state."""
from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.certfleet.tls.plugins.module_utils import fake_windows as fw

CERT = {"thumbprint": {"type": "str", "required": True}, "subject": {"type": "str"}, "pem": {"type": "str"},
        "not_after": {"type": "str"}, "action": {"type": "str", "choices": ["remove", "report"], "default": "report"}}


class Failed(Exception):
    pass


def main():  # pylint: disable=too-many-branches,too-many-statements,too-many-locals
    module = AnsibleModule(argument_spec={
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "thumbprint": {"type": "str"},
        "pfx_path": {"type": "str"},
        "pfx_passphrase": {"type": "str", "no_log": True},
        "key_exportable": {"type": "bool", "default": False},
        "intermediates": {"type": "list", "elements": "dict", "default": [], "options": CERT},
        "root": {"type": "dict", "options": CERT},
        "conflicting_roots": {"type": "list", "elements": "dict", "default": [], "options": CERT},
        "repair": {"type": "list", "elements": "str", "default": []},
        "app_pool_identity": {"type": "str"},
        "remove_pfx": {"type": "bool", "default": True},
        "thumbprints": {"type": "list", "elements": "str", "default": []},
    }, required_if=[("state", "present", ("thumbprint",))], supports_check_mode=True)
    p, check = module.params, module.check_mode
    result = {"changed": False, "actions": [], "reported_roots": [], "kept_bound": [], "warnings": []}

    def act(thumbprint, store, action, detail=""):
        result["actions"].append({"thumbprint": thumbprint, "store": store, "action": action, "detail": detail})
        if action not in ("unchanged", "reported", "kept_bound"):
            result["changed"] = True

    with fw.host_state(write=not check) as state:
        before = {store: sorted(entry["thumbprint"] for entry in state["stores"][store]) for store in fw.STORES}
        faults = state.setdefault("faults", {})
        pfx_file = fw.host_path(p["pfx_path"]) if p["pfx_path"] else None
        try:
            if p["state"] == "absent":
                bound = fw.bound_thumbprints(state)
                for item in p["thumbprints"]:
                    thumbprint = fw.normalise(item)
                    if thumbprint in bound:
                        result["kept_bound"].append(thumbprint)
                        act(thumbprint, "My", "kept_bound", f"still bound ({bound[thumbprint]})")
                        result["warnings"].append(f"{thumbprint} is still bound ({bound[thumbprint]}): not removed")
                        continue
                    entry = fw.find(state, "My", thumbprint)
                    if entry is None:
                        act(thumbprint, "My", "unchanged", "not present")
                        continue
                    state["stores"]["My"].remove(entry)
                    state.get("keys", {}).pop(thumbprint, None)
                    act(thumbprint, "My", "removed", entry["subject"])
            else:
                thumbprint = fw.normalise(p["thumbprint"])
                result["thumbprint"] = thumbprint
                repair = [fw.normalise(item) for item in p["repair"]]
                existing = fw.find(state, "My", thumbprint)
                if existing is not None and (fw.has_private_key(state, existing) or thumbprint in repair):
                    act(thumbprint, "My", "unchanged", existing["subject"])
                else:
                    if not pfx_file or (not check and not os.path.exists(pfx_file)):
                        what = "is not in LocalMachine\\My" if existing is None else "has no private key in LocalMachine\\My"
                        raise Failed(f"The certificate {thumbprint} {what} and no PFX was given (pfx_path) to import it from")
                    if not check:
                        try:
                            key, leaf, others, friendly_name = fw.load_pfx(pfx_file, p["pfx_passphrase"], state["os"]["build"])
                        except ValueError as exc:
                            message = str(exc)
                            if "network password" in message:
                                raise Failed(f"Windows refused the PFX {p['pfx_path']} ({message}): Windows Server 2016 and older cannot read "
                                             "AES-256 PFX files; use iis_ssl_pfx_encryption=compatible for this host (or the passphrase is wrong)") from None
                            raise Failed(f"Windows could not read the PFX {p['pfx_path']}: {message}") from None
                        if leaf is None or fw.thumbprint_of(leaf) != thumbprint:
                            found = ", ".join(fw.thumbprint_of(c) for c in ([leaf] if leaf else []) + others)
                            raise Failed(f"The PFX {p['pfx_path']} does not hold the certificate {thumbprint} (it holds: {found})")
                        if key is None:
                            raise Failed(f"The PFX {p['pfx_path']} holds the certificate {thumbprint} without its private key")
                        for other in others:
                            result["warnings"].append(f"The PFX held {fw.windows_name(other.subject)} besides the leaf: not imported")
                        storage = "user" if faults.get("user_key_storage") else "machine"
                        state.setdefault("keys", {})[thumbprint] = {
                            "pem": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()).decode(),
                            "storage": storage, "exportable": bool(p["key_exportable"]), "acl": []}
                        # the fault: the import "loses" the association between certificate and key
                        lose = bool({thumbprint, "*"} & set(faults.get("lose_key_association") or []))
                        if existing is not None:
                            state["stores"]["My"].remove(existing)
                        state["stores"]["My"].append(fw.cert_entry(leaf, has_key=not lose, friendly_name=friendly_name))
                        fw.log(state, f"import {thumbprint} MachineKeySet,PersistKeySet{',Exportable' if p['key_exportable'] else ''}")
                        # test-only: lets the test look for the run's PFX passphrase in ansible-playbook's output
                        state.setdefault("pfx_passphrases", []).append(p["pfx_passphrase"])
                    act(thumbprint, "My", "imported", "machine key storage")

                for item in repair:
                    if fw.find(state, "My", item) is not None:
                        repair_store(state, item, check, act)

                for store, entries in (("CA", p["intermediates"]), ("Root", [p["root"]] if p["root"] else [])):
                    for entry in entries:
                        add_public(state, store, entry, check, act)

                for entry in p["conflicting_roots"]:
                    conflict = fw.normalise(entry["thumbprint"])
                    found = fw.find(state, "Root", conflict)
                    if found is None:
                        continue
                    text = f"a root with the same name as the chain's root ({found['subject']}, {conflict}, until {found['not_after'][:10]})"
                    if entry["action"] == "remove":
                        if not check:
                            state["stores"]["Root"].remove(found)
                        act(conflict, "Root", "removed", text)
                    else:
                        result["reported_roots"].append({"thumbprint": conflict, "subject": found["subject"]})
                        act(conflict, "Root", "reported", text)
                        result["warnings"].append(f"LocalMachine\\Root holds {text}; it can make Windows build an old chain (not removed)")

                if not check:
                    entry = fw.find(state, "My", thumbprint)
                    if entry is not None and not fw.has_private_key(state, entry) and thumbprint not in repair:
                        repair_store(state, thumbprint, check, act)
                    if entry is None or not fw.has_private_key(state, entry):
                        raise Failed(f"The certificate {thumbprint} in LocalMachine\\My has no usable private key (HasPrivateKey false, also after "
                                     "certutil -repairstore); a binding to it fails with 'A specified logon session does not exist'. "
                                     "Import the PFX again with machine key storage.")
                    result["has_private_key"] = True
                    if p["app_pool_identity"]:
                        acl = state["keys"][thumbprint].setdefault("acl", [])
                        if p["app_pool_identity"] in acl:
                            act(thumbprint, "My", "unchanged", f"read for {p['app_pool_identity']}")
                        else:
                            acl.append(p["app_pool_identity"])
                            act(thumbprint, "My", "granted", f"read for {p['app_pool_identity']}")
        except Failed as exc:
            result["failed"] = True
            result["msg"] = str(exc)
        finally:
            if p["remove_pfx"] and pfx_file and not check and os.path.exists(pfx_file):
                os.unlink(pfx_file)
                result["pfx_removed"] = True
        after = {store: sorted(entry["thumbprint"] for entry in state["stores"][store]) for store in fw.STORES}
    if check:
        for action in result["actions"]:
            listing = after[action["store"]]
            if action["action"] in ("added", "imported") and action["thumbprint"] not in listing:
                listing.append(action["thumbprint"])
            elif action["action"] == "removed" and action["thumbprint"] in listing:
                listing.remove(action["thumbprint"])
            listing.sort()
    result["diff"] = {"before": before, "after": after}
    for warning in result.pop("warnings"):
        module.warn(warning)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


def repair_store(state, thumbprint, check, act):
    """certutil -repairstore my <thumbprint>: the certificate finds its key again (unless the key is gone or the fault says so)."""
    if not check:
        fw.log(state, f"certutil -repairstore my {thumbprint}")
        entry = fw.find(state, "My", thumbprint)
        if not state.get("faults", {}).get("repair_fails") and thumbprint in state.get("keys", {}):
            entry["has_key"] = True
    act(thumbprint, "My", "repaired", "certutil -repairstore")


def add_public(state, store, entry, check, act):
    thumbprint = fw.normalise(entry["thumbprint"])
    if fw.find(state, store, thumbprint) is not None:
        act(thumbprint, store, "unchanged", entry.get("subject") or "")
        return
    if not entry.get("pem"):
        raise Failed(f"The certificate {thumbprint} ({entry.get('subject')}) for LocalMachine\\{store} has no pem")
    certificate = x509.load_pem_x509_certificate(entry["pem"].encode())
    if fw.thumbprint_of(certificate) != thumbprint:
        raise Failed(f"The PEM given for {thumbprint} has the thumbprint {fw.thumbprint_of(certificate)}: refusing to import it")
    if not check:
        state["stores"][store].append(fw.cert_entry(certificate))
    act(thumbprint, store, "added", entry.get("subject") or "")


if __name__ == "__main__":
    main()
