# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of certfleet.tls.deploy_files: read and check the store, render templates, then run the module on the host."""

from __future__ import annotations

import base64
import os
import socket
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import lookup_loader

from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import load_private_key, same_public_key
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._deploy.artifacts import StoreNotReady, store_files
from ansible_collections.certfleet.tls.plugins.module_utils._deploy.transaction import TEMPLATE_KEYS, template_source

ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": ["present", "rollback", "commit"], "default": "present"},
    "store_path": {"type": "path"},
    "passphrase": {"type": "str", "no_log": True},
    "certificates": {"type": "list", "elements": "dict", "default": []},
    "files": {"type": "list", "elements": "dict", "default": []},
    "links": {"type": "list", "elements": "dict", "default": []},
    "absent": {"type": "list", "elements": "dict", "default": []},
    "transaction_dir": {"type": "path", "default": "/var/lib/certfleet/transactions"},
    "transaction": {"type": "str"},
    "keep": {"type": "int", "default": 5},
    "lock_wait": {"type": "int", "default": 300},
    "lock_stale": {"type": "int", "default": 3600},
}
LOCK_POLL = 2.0


def _start_time(pid: int) -> str | None:
    """Start time of a process (clock ticks since boot, Linux): a pid reused by another process differs."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def run_owner() -> dict:
    """This ansible-playbook run: the workers that run tasks are forked from it."""
    pid = os.getppid()
    return {"controller": socket.gethostname(), "pid": pid, "started": _start_time(pid)}


def run_is_gone(owner) -> bool:
    """Whether the run that holds a lock is known to be gone: an ansible-playbook of this controller that no
    longer runs. A run on another controller is never judged from here (its lock goes stale instead)."""
    if not isinstance(owner, dict) or owner.get("controller") != socket.gethostname():
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return owner.get("started") is not None and _start_time(pid) != owner.get("started")


class ActionModule(ActionBase):
    """Checks every certificate and renders every template on the controller before anything reaches the host."""

    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        module_args = {key: args[key] for key in ("state", "files", "links", "absent", "transaction_dir", "transaction", "keep",
                                                  "lock_stale")}
        module_args["lock_owner"] = run_owner()
        try:
            module_args["files"] = self._render(args["files"], task_vars or {})
        except CertfleetError as exc:
            result.update(failed=True, msg=str(exc), changed=False)
            return result
        facts = []
        if args["state"] == "present" and args["certificates"]:
            if not args["store_path"]:
                raise AnsibleActionFail("store_path is required with certificates")
            try:
                checked = store_files(args["store_path"], args["certificates"], passphrase=args["passphrase"])
            except StoreNotReady as exc:
                result.update(failed=True, msg=str(exc), problems=exc.problems, changed=False)
                return result
            extra = []
            for entry, files, info in checked:
                if entry.get("key_passphrase") and entry.get("key_passphrase") != args["passphrase"]:
                    files[0]["content"] = self._keep_equal_encrypted_key(files[0], entry["key_passphrase"], task_vars)
                extra.extend(files)
                facts.append(info)
            module_args["files"] = extra + module_args["files"]
        result.update(self._locked(module_args, args["lock_wait"], task_vars))
        if args["state"] == "present":
            result["certificates"] = facts
        return result

    def _locked(self, module_args: dict, lock_wait: int, task_vars) -> dict:
        """Run the module; while another live run holds the host's deploy lock, wait up to lock_wait seconds.
        The lock of a run of this controller that is gone (killed) is taken over at once."""
        deadline = time.monotonic() + max(lock_wait, 0)
        waited_for = None
        while True:
            answer = self._execute_module(module_name="certfleet.tls.deploy_files", module_args=module_args,
                                          task_vars=task_vars)
            if not answer.get("lock_held"):
                if waited_for:
                    answer["lock_waited_for"] = waited_for
                return answer
            holder = answer.get("lock_holder") or {}
            waited_for = holder
            if holder.get("token") and run_is_gone(holder.get("owner")) and module_args.get("takeover") != holder["token"]:
                module_args = dict(module_args, takeover=holder["token"])
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                answer["msg"] = (f"{answer.get('msg')}; waited {lock_wait} s (lock_wait). Another deployment is "
                                 f"running on this host: nothing was written. If that run is gone, its lock is taken "
                                 f"over after lock_stale ({module_args['lock_stale']} s) or by removing the lock file.")
                return answer
            time.sleep(min(LOCK_POLL, remaining))

    def _render(self, files: list, task_vars: dict) -> list:
        """Every file given as ``template`` with its text, rendered as ansible.builtin.template's lookup renders it."""
        rendered, template = [], None
        for item in files:
            source = template_source(item)
            if source is None:
                rendered.append(item)
                continue
            # The template lookup finds the file in the role's templates/ (then the playbook's) through
            # ansible_search_path, and gives the template every variable of the task plus template_vars.
            template = template or lookup_loader.get("ansible.builtin.template", loader=self._loader, templar=self._templar)
            name, template_vars = source
            text = template.run([name], variables=task_vars, template_vars=template_vars)[0]
            rendered.append(dict({key: value for key, value in item.items() if key not in TEMPLATE_KEYS}, content=str(text)))
        return rendered

    def _keep_equal_encrypted_key(self, wanted: dict, key_passphrase: str, task_vars) -> str:
        """Re-encryption is salted: keep the host's key file when it already holds the same key under that passphrase."""
        current = self._execute_module(module_name="ansible.builtin.slurp", module_args={"src": wanted["path"]},
                                       task_vars=task_vars)
        if current.get("failed") or "content" not in current:
            return wanted["content"]
        data = base64.b64decode(current["content"])
        if b"ENCRYPTED" not in data:
            # The host holds the key decrypted (apache_ssl_key_handling was decrypt): it must be replaced.
            return wanted["content"]
        try:
            on_host = load_private_key(data, source=wanted["path"], passphrase=key_passphrase)
            new = load_private_key(wanted["content"].encode("ascii"), source="new key", passphrase=key_passphrase)
        except CertfleetError:
            return wanted["content"]
        return data.decode("ascii") if same_public_key(on_host, new) else wanted["content"]
