#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_files
short_description: Deploy certificates from the store and server configuration in one transaction, or roll it back
version_added: 0.2.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - On the controller (action plugin), reads each entry of O(certificates) from the certificate store, decrypts the key
    with O(passphrase), checks that the key matches the certificate, that every intermediate of the store's chain issued the
    one before it and that none is expired; any problem fails the task before anything is sent to the host.
  - On the host, writes the key, certificate and chain files together with O(files) (vhosts, includes) and O(links)
    in one transaction - every file that differs is saved under O(transaction_dir) first, then all are written
    atomically (temporary file in the target directory, then rename; keys are 0600 from the first byte).
    Nothing differs, nothing is written.
  - O(state=rollback) puts back every path of O(transaction) exactly as it was (content, mode, owner; files that did
    not exist are removed). The apache_ssl role does this when C(apachectl -t), the reload or the deploy check fails.
  - The last O(keep) transactions are kept on the host.
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  diff_mode:
    support: full
    details: Certificates, vhosts and links are diffed; private keys only show that they change, never their content,
      and neither does any file that holds (or held) private key material or binary data, whatever its role.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes.flow
  - certfleet.tls.attributes
options:
  state:
    description:
      - V(present) deploys; V(rollback) restores the files of O(transaction); V(commit) marks O(transaction) finished
        once its files were tested, reloaded and checked.
      - With V(present), the host's deploy lock (C(deploy.lock) in O(transaction_dir)) is taken before anything is read
        and held from the first write until V(commit) or V(rollback); every transaction a previous run left unfinished
        (killed between writing and commit) is rolled back first, and RV(recovered) lists them.
    type: str
    choices: [present, rollback, commit]
    default: present
  store_path:
    description: Certificate store on the controller. Required with O(certificates).
    type: path
  passphrase:
    description: Passphrase of the store's keys.
    type: str
  certificates:
    description:
      - Certificates of the store to deploy. Each entry has C(name) (definition), C(key_path), C(certificate_path) and,
        for Apache before 2.4.8, C(chain_path) (then C(certificate_path) gets the leaf alone, otherwise the leaf and the
        intermediates), C(key_mode) (default V(0600)), C(key_owner), C(key_group), C(owner) and C(group) (default
        V(root)), C(certificate_mode) (default V(0644)), and C(key_passphrase) (the key stays encrypted with it;
        otherwise it is written decrypted, PKCS#8).
    type: list
    elements: dict
    default: []
  files:
    description:
      - Other files of the same transaction (vhosts, includes). Each has O(files[].content), or O(files[].template) which
        the controller renders first.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      content:
        description: Content. Required unless O(files[].template) is given.
        type: str
      template:
        description:
          - A Jinja2 template rendered on the controller into the content, found and rendered as the
            P(ansible.builtin.template#lookup) lookup does - the role's C(templates/), then the playbook's - with every
            variable of the task plus O(files[].template_vars). The text is written as it is, never parsed back.
        type: str
      template_vars:
        description: Extra variables of O(files[].template) only (for example the one site a vhost template renders).
        type: dict
      mode:
        description: Octal mode such as V('0644').
        type: raw
        default: "0644"
      owner:
        description: Owner name or uid; unset keeps the current one.
        type: str
      group:
        description: Group name or gid; unset keeps the current one.
        type: str
      secret:
        description: Never show the content in a diff.
        type: bool
        default: false
  absent:
    description:
      - Files and links the same transaction removes (the vhost, link, key and certificate files of a site that is
        gone). A rollback puts them back. Paths that do not exist are left alone.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of a file or symbolic link.
        type: path
        required: true
      secret:
        description: Never show the content in a diff (keys).
        type: bool
        default: false
  links:
    description: Symbolic links of the same transaction (Debian's C(sites-enabled), C(conf-enabled)).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The link.
        type: path
        required: true
      src:
        description: What it points to.
        type: path
        required: true
  transaction_dir:
    description: Where the host keeps the previous files of each transaction (0700).
    type: path
    default: /var/lib/certfleet/transactions
  transaction:
    description: Id of the transaction to roll back or commit (RV(transaction) of the deploying task).
    type: str
  keep:
    description: Transactions kept on the host.
    type: int
    default: 5
  lock_wait:
    description:
      - Seconds to wait for the deploy lock of another run that is alive; then the task fails naming the holder.
      - A lock of a C(ansible-playbook) run on this controller that is gone (killed) is taken over at once.
    type: int
    default: 300
  lock_stale:
    description: A lock older than this many seconds (its holder on another controller never finished) is taken over.
    type: int
    default: 3600
  lock_owner:
    description: The run taking the lock (controller, C(ansible-playbook) pid and its start time); set by the action plugin.
    type: dict
  takeover:
    description: Token of a lock whose run the action plugin found gone; set by the action plugin.
    type: str
seealso:
  - module: certfleet.tls.cert_chain
  - name: The apache_ssl role
    description: Deploys with this module and rolls back when Apache rejects the configuration.
    link: https://github.com/certfleet/certfleet.tls/tree/main/roles/apache_ssl
"""

EXAMPLES = r"""
- name: Key, fullchain and vhost of www in one transaction
  certfleet.tls.deploy_files:
    store_path: "{{ inventory_dir }}/cert_store"
    passphrase: "{{ certfleet_store_passphrase }}"
    certificates:
      - name: www-example-co-jp
        key_path: /etc/ssl/private/www.key
        certificate_path: /etc/ssl/certfleet/www.crt
    files:
      - path: /etc/apache2/sites-available/www-ssl.conf
        template: www-ssl.conf.j2
        template_vars:
          server_name: www.example.co.jp
    links:
      - path: /etc/apache2/sites-enabled/www-ssl.conf
        src: /etc/apache2/sites-available/www-ssl.conf
  register: deployed

- name: Put everything back when Apache rejects it
  certfleet.tls.deploy_files:
    state: rollback
    transaction: "{{ deployed.transaction }}"
  when: deployed.transaction is not none
"""

RETURN = r"""
recovered:
  description: Unfinished transactions of an earlier run that were rolled back before this one (state=present).
  returned: state=present
  type: list
  elements: dict
  contains:
    transaction:
      description: Its id.
      type: str
    state:
      description: The state it was left in (V(prepared) or V(applied)).
      type: str
    restored:
      description: Paths put back.
      type: list
      elements: str
lock_holder:
  description: The lock record of the run that holds the host (when the lock could not be taken).
  returned: failure
  type: dict
transaction:
  description: Id of the transaction that was applied (null when nothing changed or in check mode).
  returned: always
  type: str
  sample: 20261203T101500Z-1a2b3c4d
changed_files:
  description: Paths that were (or in check mode would be) written, linked or restored.
  returned: always
  type: list
  elements: str
reasons:
  description: Why each path changes (V(created), V(content), V(mode 0644 -> 0600), V(owner), ...), by path.
  returned: state=present
  type: dict
certificates:
  description: The certificates deployed, from the store (state=present); what the deploy check compares and the history records.
  returned: state=present
  type: list
  elements: dict
  contains:
    name:
      description: The certificate's definition in the store.
      type: str
    sha256:
      description: SHA-256 fingerprint of the leaf.
      type: str
    subject:
      description: Subject DN.
      type: str
    issuer:
      description: Issuer DN.
      type: str
    serial:
      description: Serial number (hex).
      type: str
    not_after:
      description: End of validity.
      type: str
    intermediates:
      description: Number of intermediates deployed with it.
      type: int
    key_encrypted:
      description: Whether the key was written encrypted (C(key_passphrase)).
      type: bool
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._deploy import transaction as _transaction
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError


def _wanted(params: dict) -> tuple[list, list, list]:
    files = [_transaction.WantedFile(path=item["path"], content=item["content"].encode("utf-8"),
                                     mode=_transaction.parse_mode(item["mode"], what=item["path"]),
                                     owner=item.get("owner"), group=item.get("group"), secret=item["secret"])
             for item in params["files"]]
    links = [_transaction.WantedLink(path=item["path"], src=item["src"]) for item in params["links"]]
    absent = [_transaction.WantedAbsent(path=item["path"], secret=item["secret"]) for item in params["absent"]]
    return files, links, absent


def run(module: AnsibleModule) -> dict:
    """Plan, then (unless in check mode) apply, commit or roll back; raises CertfleetError."""
    params = module.params
    directory = params["transaction_dir"]
    if params["state"] in ("rollback", "commit") and not params["transaction"]:
        raise CertfleetError(f"state={params['state']} needs transaction")
    if params["state"] == "rollback":
        if module.check_mode:
            paths = _transaction.rollback_plan(directory, params["transaction"])
        else:
            paths = _transaction.rollback(directory, params["transaction"])
        return {"changed": bool(paths), "changed_files": paths, "transaction": params["transaction"]}
    if params["state"] == "commit":
        committed = False if module.check_mode else _transaction.commit(directory, params["transaction"])
        return {"changed": committed, "changed_files": [], "transaction": params["transaction"]}
    files, links, absent = _wanted(params)
    if module.check_mode:
        return _planned(module, _transaction.plan_changes(files, links, absent), recovered=[])
    # The lock comes first: what is on disk is only stable while no other deployment writes, and a
    # transaction left unfinished (a run killed between writing and commit) is rolled back under it.
    transaction_id = _transaction.new_transaction_id()
    _transaction.acquire_lock(directory, transaction_id=transaction_id, owner=params["lock_owner"],
                              takeover=params["takeover"], stale_after=params["lock_stale"])
    try:
        recovered = _transaction.recover(directory)
        plan = _transaction.plan_changes(files, links, absent)
        result = _planned(module, plan, recovered=recovered)
        if plan.changed:
            result["transaction"] = _transaction.apply_plan(plan, transaction_dir=directory, keep=params["keep"],
                                                            transaction_id=transaction_id)
    except BaseException:
        _transaction.release_lock(directory, transaction_id)
        raise
    if not result["changed"]:
        _transaction.release_lock(directory, transaction_id)
        # a rolled-back unfinished transaction changed the host even when nothing new is written
        result["changed"] = any(item["restored"] for item in recovered)
        result["recovered_only"] = result["changed"]
    return result


def _planned(module: AnsibleModule, plan, *, recovered: list) -> dict:
    result = {"changed": plan.changed, "changed_files": [change.path for change in plan.changes],
              "reasons": {change.path: change.reasons for change in plan.changes}, "transaction": None,
              "recovered": recovered}
    if module._diff and plan.changed:
        result["diff"] = _transaction.diff_of(plan)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "rollback", "commit"], default="present"),
            files=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True),
                content=dict(type="str", no_log=True),
                # rendered into content by the action plugin on the controller
                template=dict(type="str"),
                template_vars=dict(type="dict"),
                mode=dict(type="raw", default="0644"),
                owner=dict(type="str"),
                group=dict(type="str"),
                secret=dict(type="bool", default=False),
            ), required_one_of=[("content", "template")], mutually_exclusive=[("content", "template")]),
            links=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True),
                src=dict(type="path", required=True),
            )),
            absent=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True),
                secret=dict(type="bool", default=False),
            )),
            transaction_dir=dict(type="path", default="/var/lib/certfleet/transactions"),
            transaction=dict(type="str"),
            keep=dict(type="int", default=_transaction.DEFAULT_KEEP),
            lock_wait=dict(type="int", default=300),
            lock_owner=dict(type="dict"),
            takeover=dict(type="str"),
            lock_stale=dict(type="int", default=_transaction.DEFAULT_LOCK_STALE),
            # handled by the action plugin on the controller; accepted here so the documented options validate
            store_path=dict(type="path"),
            passphrase=dict(type="str", no_log=True),
            certificates=dict(type="list", elements="dict", default=[]),
        ),
        supports_check_mode=True,
    )
    if module.params["certificates"] or any(item.get("template") for item in module.params["files"]):
        module.fail_json(msg="certificates are read and templates rendered on the controller: run deploy_files as a task "
                             "(its action plugin), not as a bare module")
    try:
        result = run(module)
    except _transaction.LockHeld as exc:
        module.fail_json(msg=str(exc), lock_held=True, lock_holder=exc.holder)
    except CertfleetError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename or 'deploy_files'}: {exc.strerror}", exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
