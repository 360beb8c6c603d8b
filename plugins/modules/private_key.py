#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: private_key
short_description: Generate, re-encrypt or decrypt a TLS private key file
version_added: 0.1.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Ensures a private key file (RSA or ECDSA) exists with the requested type, size or curve, format and encryption.
  - When only the passphrase or format changes, the same key is re-encrypted, decrypted or converted in place
    (Apache on Windows cannot prompt for a passphrase and needs a decrypted copy of the same key).
  - The key is written atomically through a temporary file that is C(0600) from its creation. Key material is
    never returned, logged or shown in diffs.
attributes:
  diff_mode:
    support: full
    details: The diff shows key type, size, fingerprint, format and whether the key is encrypted, never key material.
extends_documentation_fragment:
  - certfleet.tls.attributes
  - ansible.builtin.files
options:
  path:
    description: Path of the private key file.
    type: path
    required: true
  state:
    description: Whether the key file should exist.
    type: str
    choices: [present, absent]
    default: present
  type:
    description: Key algorithm. V(ECC) means ECDSA.
    type: str
    choices: [RSA, ECC]
    default: RSA
  size:
    description: RSA key size in bits. Cybertrust and most public CAs ask for 2048 bits.
    type: int
    default: 2048
  curve:
    description: Curve of an V(ECC) key.
    type: str
    choices: [secp256r1, secp384r1]
    default: secp256r1
  passphrase:
    description:
      - Passphrase that encrypts the key (PKCS#8 PBES2 with AES-256-CBC; OpenSSL AES-256-CBC PEM encryption for V(pkcs1)).
      - Omit it for an unencrypted key.
    type: str
  current_passphrase:
    description:
      - Passphrase that opens the existing key when it differs from O(passphrase), to re-encrypt or decrypt the same key.
      - When given, the existing key is never replaced by a new one; a wrong value fails the task.
    type: str
  format:
    description: V(pkcs8) (C(BEGIN PRIVATE KEY)) or V(pkcs1), the traditional C(BEGIN RSA PRIVATE KEY) / C(BEGIN EC PRIVATE KEY) form.
    type: str
    choices: [pkcs8, pkcs1]
    default: pkcs8
  regenerate:
    description:
      - When an existing key may be replaced by a new one. A missing file is always generated.
      - V(never) keeps any existing key that opens; fails if it does not open.
      - V(fail) fails when the existing key does not match O(type), O(size) or O(curve).
      - V(partial_idempotence) replaces a key that does not match, but fails when it cannot be opened.
      - V(full_idempotence) also replaces a key that cannot be opened (broken file, unknown passphrase),
        unless O(current_passphrase) is given. Use O(backup) to keep the old file.
      - V(always) generates a new key on every run.
    type: str
    choices: [never, fail, partial_idempotence, full_idempotence, always]
    default: full_idempotence
  backup:
    description: Keep a timestamped copy of the previous key file when it is replaced or removed.
    type: bool
    default: false
  mode:
    description: Permissions of the key file. The file is C(0600) while it is written, whatever this says.
    type: raw
    default: '0600'
notes:
  - Changing O(passphrase) without O(current_passphrase) cannot open a key encrypted with the old passphrase;
    with the default O(regenerate=full_idempotence) that replaces the key. Give O(current_passphrase) to keep it.
seealso:
  - module: certfleet.tls.csr
  - module: certfleet.tls.csr_info
"""

EXAMPLES = r"""
- name: Generate an encrypted 2048-bit RSA key, as openssl genpkey -aes256 does
  certfleet.tls.private_key:
    path: /etc/ssl/private/www.example.co.jp.key
    passphrase: "{{ vault_key_passphrase }}"

- name: Decrypt the same key for Apache on Windows, which cannot prompt for a passphrase
  certfleet.tls.private_key:
    path: /etc/ssl/private/www.example.co.jp.key
    current_passphrase: "{{ vault_key_passphrase }}"

- name: ECDSA P-384 key in the traditional format, never replaced once it exists
  certfleet.tls.private_key:
    path: /etc/ssl/private/api.example.com.key
    type: ECC
    curve: secp384r1
    format: pkcs1
    regenerate: never
"""

RETURN = r"""
filename:
  description: Path of the key file.
  returned: always
  type: str
type:
  description: Key algorithm.
  returned: state=present
  type: str
  sample: RSA
size:
  description: Key size in bits.
  returned: state=present
  type: int
  sample: 2048
curve:
  description: Curve name of an ECC key, null for RSA.
  returned: state=present
  type: str
  sample: secp256r1
fingerprint:
  description: SHA-256 of the DER SubjectPublicKeyInfo; the same value for the key, its CSRs and its certificates.
  returned: state=present
  type: str
  sample: 05:B2:AD:15:A7:3A:87:82:88:54:08:AE:07:77:4F:D7:99:A4:59:1A:7A:4A:C1:30:5A:01:13:E9:B5:F1:09:DE
public_key:
  description: The public key in PEM.
  returned: state=present
  type: str
format:
  description: Format of the key file.
  returned: state=present
  type: str
  sample: pkcs8
encrypted:
  description: Whether the key file is encrypted.
  returned: state=present
  type: bool
action:
  description: What was done or, in check mode, would be done - V(keep), V(generate), V(convert) or V(remove).
  returned: always
  type: str
  sample: generate
reason:
  description: Why that action was chosen.
  returned: always
  type: str
backup_file:
  description: Path of the backup of the previous key file.
  returned: when O(backup=true) and a file was replaced or removed
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._common.files import (
    check_writable_directory,
    read_file,
    write_with_module,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import (
    REGENERATE_CHOICES,
    generate_private_key,
    inspect_private_key_pem,
    key_info,
    plan_private_key,
    serialize_private_key,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import require_cryptography, run_or_fail
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import HAS_CRYPTOGRAPHY

if HAS_CRYPTOGRAPHY:
    from cryptography.hazmat.primitives import serialization


def public_pem(key) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def diff_view(info: dict | None) -> dict:
    if not info:
        return {"exists": False}
    keys = ("type", "size", "curve", "fingerprint", "format", "encrypted")
    return dict({"exists": True}, **{key: info.get(key) for key in keys if key in info})


def remove_key(module: AnsibleModule, path: str) -> dict:
    result = {"filename": path, "changed": False, "action": "keep", "reason": "the key file does not exist"}
    if os.path.exists(path):
        result.update(changed=True, action="remove", reason="state=absent")
        if not module.check_mode:
            if module.params["backup"]:
                result["backup_file"] = module.backup_local(path)
            os.unlink(path)
    return result


def ensure_key(module: AnsibleModule, path: str) -> dict:
    params = module.params
    existing = read_file(path)
    plan = plan_private_key(
        existing,
        key_type=params["type"],
        size=params["size"],
        curve=params["curve"],
        key_format=params["format"],
        passphrase=params["passphrase"],
        current_passphrase=params["current_passphrase"],
        regenerate=params["regenerate"],
    )
    result = {"filename": path, "action": plan["action"], "reason": plan["reason"], "changed": plan["action"] != "keep"}
    key = plan["key"]
    if plan["action"] == "generate":
        check_writable_directory(path)
        key = generate_private_key(key_type=params["type"], size=params["size"], curve=params["curve"])
    elif plan["action"] == "convert":
        check_writable_directory(path)
    after = dict(key_info(key), format=params["format"], encrypted=bool(params["passphrase"]))
    if result["changed"] and not module.check_mode:
        content = serialize_private_key(key, key_format=params["format"], passphrase=params["passphrase"])
        backup_file = write_with_module(module, path, content, backup=params["backup"])
        if backup_file:
            result["backup_file"] = backup_file
        after.update(inspect_private_key_pem(content))
    if module.check_mode and plan["action"] == "generate":
        # A key that is not generated has no fingerprint yet.
        after["fingerprint"] = None
    result.update(after, public_key=None if after["fingerprint"] is None else public_pem(key))
    if module._diff:
        result["diff"] = {"before": diff_view(plan["before"]), "after": diff_view(after)}
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            type=dict(type="str", choices=["RSA", "ECC"], default="RSA"),
            size=dict(type="int", default=2048),
            curve=dict(type="str", choices=["secp256r1", "secp384r1"], default="secp256r1"),
            passphrase=dict(type="str", no_log=True),
            current_passphrase=dict(type="str", no_log=True),
            format=dict(type="str", choices=["pkcs8", "pkcs1"], default="pkcs8"),
            regenerate=dict(type="str", choices=list(REGENERATE_CHOICES), default="full_idempotence"),
            backup=dict(type="bool", default=False),
            mode=dict(type="raw", default="0600"),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    require_cryptography(module)
    path = module.params["path"]
    work = remove_key if module.params["state"] == "absent" else ensure_key
    result = run_or_fail(module, lambda: work(module, path), doing=f"handling {path}",
                         error_fields=lambda exc: {"filename": path})
    if module.params["state"] == "present" and os.path.exists(path):
        file_args = module.load_file_common_arguments(module.params)
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
